"""A `rollway` command given a block name the Prefect API does not hold names the saved ones;
one whose targets name a DynamoDB table AWS does not hold says which names to check.

It repeated Prefect's "Unable to find block document named team-targts for block type
rollway-targets" and said to pass --targets-block: the person had to list the blocks in the UI
to find which name they had misspelt.
"""

from __future__ import annotations

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_aws import AwsCredentials

from blocks.credentials import credentials_for_endpoint
from blocks.targets import RollwayTargets
from rollway.cli import ops
from rollway.targets import Targets


@pytest.fixture(scope="module")
def saved_blocks(prefect_harness: str) -> None:
    # Saved on the harness the tests read: a module fixture runs before the autouse
    # ``on_the_harness``, and after an integration file in the same worker PREFECT_API_URL names
    # that file's `prefect server start`, where the blocks went unseen.
    with temporary_settings(updates={PREFECT_API_URL: prefect_harness}):
        RollwayTargets(**Targets().model_dump()).save("team-targets", overwrite=True)
        AwsCredentials(region_name="us-west-2").save("team-aws", overwrite=True)


@pytest.mark.parametrize(("blocks", "kind", "option", "meant"), [
    ({"targets_block": "team-targts", "credentials_block": "team-aws"}, "rollway-targets", "--targets-block",
     "team-targets"),
    ({"targets_block": "team-targets", "credentials_block": "team-awz"}, "aws-credentials", "--credentials-block",
     "team-aws"),
], ids=["targets", "credentials"])
def test_a_misspelt_block_name_is_refused_naming_the_saved_ones_and_the_one_meant(saved_blocks, capsys, blocks, kind,
                                                                                   option, meant):
    assert ops.status(**blocks) == 1
    err = " ".join(capsys.readouterr().err.split())
    given = blocks["targets_block" if option == "--targets-block" else "credentials_block"]
    assert err.startswith(f"error: no {kind} block named {given!r} on the Prefect API "), err
    assert "saved there: " in err and f"did you mean {option} {meant}?" in err, err
    assert f"pass the name of a saved one as {option}" in err, err


@pytest.mark.parametrize("command", ["status", "hold"])
def test_a_ledger_table_aws_does_not_hold_says_which_names_to_check(aws, capsys, command):
    """DynamoDB's "Requested resource not found" named no table: a misspelt rollouts_table, or an
    account whose tables were never created, read as AWS failing. Said as `rollway report` says it."""
    RollwayTargets(**{**aws.targets.model_dump(), "rollouts_table": "team-rollouts"}).save("no-ledger", overwrite=True)
    credentials_for_endpoint(aws.endpoint_url, aws.targets.region).save("no-ledger", overwrite=True)
    extra = {"approver": "ann", "comment": "", "flow_run": None} if command == "hold" else {}
    assert getattr(ops, command)(targets_block="no-ledger", credentials_block="no-ledger", **extra) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith(f"error: the ledger table team-rollouts (region {aws.targets.region}) does not exist: deploy "
                          "the ledger's infrastructure (deploy_infrastructure), or name the table the rollouts are "
                          "recorded in as rollouts_table in the RollwayTargets block"), err
    assert "ResourceNotFoundException" in err and "nothing was written" in err, err


_EXTRA = {"promote": {"approver": "ann", "comment": "", "weight": None, "flow_run": None},
          "abort": {"approver": "ann", "reason": "sessions lost", "flow_run": None, "wait_seconds": 0}}


@pytest.mark.parametrize("command", ["status", "promote", "abort"])
@pytest.mark.parametrize(("field", "kind"), [("load_balancer", "load balancer"), ("cluster", "ECS cluster"),
                                             ("canary_service", "ECS service")])
def test_no_rollout_with_a_name_aws_does_not_know_names_it_and_the_region(aws, capsys, command, field, kind):
    """With no rollout recorded, a misspelt load balancer, cluster or service was answered only
    "no rollout recorded" and how to start one: a rollout that could only fail. `rollway abort`
    made the same reads and answered "nothing to abort" regardless."""
    wrong = f"{getattr(aws.targets, field)}-x"
    RollwayTargets(**{**aws.targets.model_dump(), field: wrong}).save("misnamed", overwrite=True)
    credentials_for_endpoint(aws.endpoint_url, aws.targets.region).save("misnamed", overwrite=True)
    assert getattr(ops, command)(targets_block="misnamed", credentials_block="misnamed",
                                 **_EXTRA.get(command, {})) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith(f"error: AWS does not know {kind} {wrong!r} ({field}) in region {aws.targets.region}, "
                          "named by the targets block 'misnamed': fix the name"), err
    assert "no rollout recorded for" in err and "start one from" not in err, err
    if command == "abort":
        assert err.endswith("; nothing was rolled back") and "nothing to abort" not in err, err


def test_no_rollout_with_every_name_known_still_says_how_to_start_one(aws, capsys):
    RollwayTargets(**aws.targets.model_dump()).save("named", overwrite=True)
    credentials_for_endpoint(aws.endpoint_url, aws.targets.region).save("named", overwrite=True)
    assert ops.status(targets_block="named", credentials_block="named") == 0  # no rollout yet is no error
    out, err = capsys.readouterr()
    said = " ".join(out.split())
    assert not err, err
    assert "none yet: no rollout recorded for" in said and "start one from" in said, said
    assert "AWS does not know" not in said and "load balancer 100/0" in said, said


def test_the_prefect_apis_address_is_said_without_the_password_it_holds(saved_blocks, prefect_harness):
    # A server behind basic auth is reached as https://<user>:<password>@host/api: the refusal,
    # shown on the terminal and in a failed run's state, printed the password with the address.
    from blocks.saved import unsaved_block

    scheme, rest = prefect_harness.split("://", 1)
    with temporary_settings(updates={PREFECT_API_URL: f"{scheme}://ops:hunter2-55@{rest}"}):
        said = unsaved_block("team-targts", "rollway-targets", "--targets-block")
    assert said is not None and "team-targets" in said, said  # the saved blocks were read
    assert "hunter2-55" not in said, said
    assert f"on the Prefect API {scheme}://ops:***@{rest} " in said, said


def test_a_prefect_api_that_does_not_answer_is_said_without_the_password_its_address_holds(prefect_harness):
    # `rollway status` and the other commands said PREFECT_API_URL as set, and the HTTP client's
    # error quoted it again: the basic-auth password was on the terminal twice.
    import httpx

    scheme, rest = prefect_harness.split("://", 1)
    host = rest.split("/", 1)[0]
    with temporary_settings(updates={PREFECT_API_URL: f"{scheme}://ops:hunter2-55@{host}/not-the-api"}):
        wrong_path = ops.not_a_prefect_api()
        down = ops.api_unreachable(httpx.ConnectError(f"All connection attempts failed for "
                                                      f"{scheme}://ops:hunter2-55@{host}/not-the-api/health"))
    assert wrong_path is not None and "does not answer as a Prefect API" in wrong_path, wrong_path
    for said in (wrong_path, down):
        assert "hunter2-55" not in said, said
        assert f"{scheme}://ops:***@{host}/not-the-api" in said, said


def test_passwords_hidden_masks_every_address_in_a_text_and_nothing_else():
    from blocks.saved import passwords_hidden

    said = passwords_hidden("asked https://ops:s3cr:et@h.example/api and http://u:p@10.0.0.1:4200/api; "
                            "user@example.com and https://h.example/api stay; ratio 1:2 @ noon")
    assert said == ("asked https://ops:***@h.example/api and http://u:***@10.0.0.1:4200/api; "
                    "user@example.com and https://h.example/api stay; ratio 1:2 @ noon"), said


def test_a_password_holding_an_unencoded_at_sign_is_hidden_whole():
    # The host is after the last "@" before the path, as urlsplit reads it: "ss" was left showing.
    from blocks.saved import passwords_hidden, without_password

    assert without_password("https://u:p@ss@h.example/api") == "https://u:***@h.example/api"
    assert passwords_hidden("at https://u:p@ss@h.example/api now") == "at https://u:***@h.example/api now"
