"""A failure whose text is a third party's (botocore's, a subprocess's) reaches the places a person
reads on one line as one line, with no raw control character; rollway's own messages written on
several lines keep them.

botocore's ParamValidationError is several lines ("Parameter validation failed:\\nInvalid type for
parameter ..."). It was the failed run's state message as it was: the Prefect UI's one-line state,
the rollback's reason its hook builds from it (the page's Why, the ledger's entry, `rollway
status`) and the CLI's "error:" line each broke off after "failed:", the rest on lines of their
own. A tool's output quoted in rollway's own error (docker's, cdk's) carried its colours' escape
sequences raw to the terminal and the UI.
"""

from __future__ import annotations

import sys

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from prefect import flow

from rollway.failure_words import end_said, error_said, failures_writable
from rollway.toolchain.process import ToolFailed, run_tool

_COLOURED_FAILURE = ("import sys; "
                     "sys.stderr.write('\\x1b[31mStack web failed\\x1b[0m\\nResource handler returned\\r\\n'); "
                     "sys.exit(1)")


def _refused_parameters() -> ParamValidationError:
    """botocore's own error for a call it will not send, from a real client (no request is made)."""
    sns = boto3.client("sns", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    with pytest.raises(ParamValidationError) as raised:
        sns.publish(TopicArn=42, Message="rolled back")
    assert "\n" in str(raised.value)  # botocore's text is several lines
    return raised.value


def test_a_failed_runs_state_message_says_botocores_parameter_error_on_one_line():
    @flow(name="third-party-error")
    @failures_writable  # as every flow's body
    def run() -> None:
        sns = boto3.client("sns", region_name="eu-west-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        sns.publish(TopicArn=42, Message="rolled back")

    state = run(return_state=True)
    assert state.is_failed()
    # Before: "...ParamValidationError: Parameter validation failed:\nInvalid type for parameter TopicArn, ..."
    assert "\n" not in state.message, state.message
    assert "ParamValidationError: Parameter validation failed: Invalid type for parameter TopicArn" in state.message


def test_a_tools_output_in_a_failed_runs_state_keeps_its_lines_with_its_escapes_shown():
    @flow(name="tool-error")
    @failures_writable
    def run() -> None:
        # A tool as cdk fails: its error in colour on standard error, a carriage return after it.
        run_tool([sys.executable, "-c", _COLOURED_FAILURE], timeout_seconds=60)

    state = run(return_state=True)
    assert "\x1b" not in state.message and "\r" not in state.message, repr(state.message)
    assert "exited with 1; its last output:\n\\x1b[31mStack web failed\\x1b[0m\nResource handler returned" \
        in state.message, state.message


def test_the_rollback_reason_from_a_failed_run_is_one_line():
    err = _refused_parameters()
    said = end_said(f"Flow run encountered an exception: ParamValidationError: {err}", err, "Failed")
    assert "\n" not in said and said.startswith("Flow run encountered an exception: ParamValidationError: Parameter "
                                                "validation failed: Invalid type for parameter TopicArn"), said


def test_a_third_partys_error_is_said_on_one_line_and_rollways_own_keeps_its_lines():
    assert error_said(_refused_parameters()).startswith(
        "ParamValidationError: Parameter validation failed: Invalid type for parameter TopicArn, value: 42")
    said = error_said(ToolFailed(["docker", "push"], 1, ["\x1b[31mdenied\x1b[0m", "retrying"]))
    assert said == "ToolFailed: `docker push` exited with 1; its last output:\n\\x1b[31mdenied\\x1b[0m\nretrying"


def test_the_clis_error_line_says_botocores_parameter_error_on_one_line(capsys):
    from rollway.cli.ops import reporting

    @reporting
    def command() -> int:
        raise _refused_parameters()

    assert command() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # before: the problem on a line of its own
    assert err.startswith("error: AWS refused or could not be reached: Parameter validation failed: Invalid type for "
                          "parameter TopicArn"), err


_BAD_SPEC = {"image": "repo/app:2.0.0", "stages": [{"weight": 150}]}


def test_a_failed_runs_state_message_says_pydantics_validation_error_on_one_line_naming_the_field():
    """pydantic's text is its own lines ("1 validation error for RolloutSpec\\nstages.0.weight\\n
    weight must be ... [type=less_than_equal, input_value=150, input_type=int]"), not its
    exception's one argument, so it was left as it was: the Prefect UI's one-line state broke
    after the model's name, and the field and what was wrong were on lines of their own."""
    from rollway.spec import RolloutSpec

    @flow(name="validation-error")
    @failures_writable
    def run() -> None:
        RolloutSpec.model_validate(_BAD_SPEC)

    state = run(return_state=True)
    assert state.is_failed()
    assert "\n" not in state.message, state.message
    assert state.message.endswith(
        "RolloutSpec: stages.0.weight: weight must be at least 1 and at most 100, not 150"), state.message
    assert "[type=" not in state.message, state.message


def test_pydantics_validation_error_is_said_on_one_line_naming_each_field():
    from pydantic import ValidationError

    from rollway.spec import RolloutSpec

    with pytest.raises(ValidationError) as raised:
        RolloutSpec.model_validate({**_BAD_SPEC, "stagse": []})
    said = error_said(raised.value)
    assert said == ("ValidationError: RolloutSpec: stages.0.weight: weight must be at least 1 and at most 100, not "
                    "150; stagse: Extra inputs are not permitted: unknown key (did you mean 'stages'?)"), said
