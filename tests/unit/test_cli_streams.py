"""Where the ``rollway`` commands print: data on standard output, errors on standard error.

A caller pipes ``rollway flags list --json`` or ``rollway judge --replay`` into another
program; an error line on standard output would be parsed as data. The flags commands run on
the embedded DynamoDB; only the Prefect blocks that name the account are replaced.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollway.cli import app
from rollway.flags_commands import EXIT_CONFLICT, EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE

DATA = Path(__file__).parent / "data"
SQS = "use_sqs_architecture"


def rollway(*args: str) -> int:
    """Run the ``rollway`` command in this process; its exit code."""
    try:
        return app(list(args), result_action="return_value")
    except SystemExit as stop:
        return int(stop.code)


@pytest.fixture
def flags(aws, monkeypatch, capsys):
    """The flags commands on the embedded account's table, holding one flag on for 25%."""

    def load_account(targets_block, credentials_block):
        return aws.targets, aws.get_client

    monkeypatch.setattr("rollway.cli.ops.load_account", load_account)
    assert rollway("flags", "set", SQS, "--create", "--enabled", "--percentage", "25", "--actor", "gina") == EXIT_OK
    capsys.readouterr()
    return aws


@pytest.mark.parametrize(
    "args",
    [
        ("flags", "list", "--json"),
        ("flags", "get", SQS, "--json"),
        ("flags", "eval", SQS, "user-1", "user-2", "--json"),
    ],
    ids=["list", "get", "eval"],
)
def test_flags_json_is_alone_on_stdout(flags, capsys, args):
    assert rollway(*args) == EXIT_OK
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # the whole of standard output is one JSON document
    assert SQS in captured.out and data
    assert captured.err == ""


def test_flags_set_prints_the_change_on_stdout_only(flags, capsys):
    assert rollway("flags", "set", SQS, "--percentage", "50", "--actor", "gina") == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out == f"{SQS}: on 25% -> on 50% (v2)\n"
    assert captured.err == ""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("flags", "get", "no_such_flag", "--json"), EXIT_INVALID, "unknown feature flag 'no_such_flag'"),
        (("flags", "eval", SQS, "", "--json"), EXIT_INVALID, "user id '' is empty"),
        (("flags", "set", SQS, "--percentage", "140", "--actor", "gina"), EXIT_INVALID, "140"),
        (("flags", "set", SQS, "--enabled", "--expected-version", "7", "--actor", "gina"), EXIT_CONFLICT,
         "not at --expected-version 7"),
    ],
    ids=["get unknown", "eval empty user", "set bad percentage", "set conflict"],
)
def test_flags_errors_go_to_stderr_with_their_exit_code(flags, capsys, args, code, message):
    assert rollway(*args) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and message in captured.err
    assert captured.err.count("\n") == 1


class NoAws:
    """A client that fails the test on any AWS call."""

    def __getattr__(self, name):
        raise AssertionError(f"AWS was called ({name}) before the input was checked")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("flags", "set", SQS, "--enabled", "--actor", ""), "needs the id of who makes it"),
        (("flags", "set", SQS, "--enabled", "--actor", "  "), "needs the id of who makes it"),
        (("flags", "set", SQS, "--enabled", "--expected-version", "-1", "--actor", "gina"), "expected version -1"),
        (("flags", "eval", SQS, "user-1", ""), "user id '' is empty"),
        (("flags", "release", SQS, "--rollout", "a b", "--reason", "killed", "--actor", "gina"), "rollout id 'a b'"),
        # An escape sequence is no space, and was taken for an id: the ledger and the table were read for it.
        (("flags", "release", SQS, "--rollout", "r1\x1b[2J", "--reason", "killed", "--actor", "gina"),
         "rollout id 'r1\\x1b[2J'"),
        (("flags", "release", SQS, "--rollout", "r1", "--reason", " ", "--actor", "gina"), "needs its reason"),
        (("flags", "release", SQS, "--rollout", "r1", "--reason", "killed", "--percentage", "150", "--actor", "gina"),
         "--percentage 150 is not a share of users"),
        (("flags", "release", "new flag", "--rollout", "r1", "--reason", "killed", "--actor", "gina"), "new flag"),
        (("flags", "release", SQS, "--rollout", "r1", "--reason", "killed", "--actor", " "), "needs the id of who"),
    ],
    ids=["empty actor", "blank actor", "negative version", "empty user", "release bad rollout",
         "release rollout with an escape sequence", "release no reason",
         "release bad percentage", "release bad name", "release blank actor"],
)
def test_flags_bad_input_is_refused_before_any_aws_call(monkeypatch, capsys, args, message):
    """An empty --actor is refused, not replaced by the OS user name (only an omitted one is)."""
    from rollway.targets import Targets

    monkeypatch.setattr("rollway.cli.ops.load_account", lambda targets_block, credentials_block: (Targets(), lambda _: NoAws()))
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    assert rollway(*args) == EXIT_INVALID
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and message in captured.err and captured.err.count("\n") == 1


def test_flags_set_without_actor_records_the_os_user(flags, monkeypatch, capsys):
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    assert rollway("flags", "set", SQS, "--percentage", "30") == EXIT_OK
    capsys.readouterr()
    assert rollway("flags", "get", SQS, "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out)["updated_by"] == "os-user"


def test_flags_set_without_actor_or_os_user_says_so(flags, monkeypatch, capsys):
    def no_user():
        raise OSError("No username set in the environment")

    monkeypatch.setattr("getpass.getuser", no_user)
    assert rollway("flags", "set", SQS, "--percentage", "30") == EXIT_INVALID
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and "--actor" in captured.err


@pytest.mark.parametrize("args", [("list", "--json"), ("get", SQS), ("set", SQS, "--percentage", "30", "--actor", "gina"),
                                  ("eval", SQS, "u1")], ids=["list", "get", "set", "eval"])
def test_flags_on_a_missing_table_say_so_on_stderr(flags, capsys, args):
    """DynamoDB's "Requested resource not found" named neither the region nor what to do, where
    the other commands say it of the ledger's table."""
    t = flags.targets
    flags.get_client("dynamodb").delete_table(TableName=t.flags_table)
    assert rollway("flags", *args) == EXIT_UNAVAILABLE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: the feature flag table {t.flags_table} (region {t.region}) does not "
                                   "exist: deploy the flags table's infrastructure (deploy_infrastructure), or name the "
                                   "table the feature flags are kept in as flags_table in the RollwayTargets block "
                                   "(DynamoDB "), captured.err
    assert "ResourceNotFoundException" in captured.err and captured.err.count("\n") == 1, captured.err


@pytest.mark.parametrize("on", [" on resource: arn:aws:dynamodb:{region}:123456789012:table/{table}", ""],
                         ids=["aws", "moto"])
@pytest.mark.parametrize(("args", "operation"), [(("list", "--json"), "Scan"),
                                               (("set", SQS, "--percentage", "30", "--actor", "gina"), "PutItem")],
                         ids=["list", "set"])
def test_flags_on_a_table_the_credentials_may_not_use_name_it_and_the_statement(flags, capsys, args, operation, on):
    """DynamoDB's "not authorized to perform" named neither the table's region nor what to grant:
    the store's own words, where the other commands name the statement of the policy. A refusal
    naming no table (moto's) names the flag table's statement too, the one the command read."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    t = flags.targets
    action = f"dynamodb:{operation}"

    def refuse(**_):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": (
            f"User: arn:aws:iam::123456789012:user/gina is not authorized to perform: {action}"
            + on.format(region=t.region, table=t.flags_table))}}, operation)

    with on_operation(flags.get_client("dynamodb"), "before-parameter-build", refuse, operation=operation):
        assert rollway("flags", *args) == EXIT_UNAVAILABLE
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"error: the feature flag table {t.flags_table} (region {t.region}): AWS refused "
                                   f"{action} (AccessDeniedException: "), captured.err
    # PutItem is granted on the ledger too (statement Ledger): the flag table's statement is Flags only.
    assert "it is granted by deployments/iam-policy.json, statement Flags: " in captured.err, captured.err
    assert captured.err.endswith(": add that statement (with your names) to that role or user, then run again\n")


@pytest.mark.parametrize("on", [" on resource: arn:aws:dynamodb:{region}:123456789012:table/{table}", ""],
                         ids=["aws", "moto"])
def test_flags_on_a_table_of_the_users_name_name_its_statement_only(aws, monkeypatch, capsys, on):
    """The policy spells Webordinary's table names: a refused GetItem on a flags table of the
    user's own name named the ledger's statement beside the flags' (both grant GetItem)."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    t = aws.targets.model_copy(update={"flags_table": "acme-flags", "rollouts_table": "acme-rollouts"})
    monkeypatch.setattr("rollway.cli.ops.load_account", lambda targets_block, credentials_block: (t, aws.get_client))

    def refuse(**_):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": (
            "User: arn:aws:iam::123456789012:user/gina is not authorized to perform: dynamodb:GetItem"
            + on.format(region=t.region, table=t.flags_table))}}, "GetItem")

    with on_operation(aws.get_client("dynamodb"), "before-parameter-build", refuse, operation="GetItem"):
        assert rollway("flags", "get", SQS, "--json") == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert err.startswith(f"error: the feature flag table acme-flags (region {t.region}): AWS refused "
                          "dynamodb:GetItem (AccessDeniedException: "), err
    assert "it is granted by deployments/iam-policy.json, statement Flags: add that statement" in err, err


def test_flags_without_the_saved_blocks_say_so_on_stderr(monkeypatch, capsys):
    from rollway.cli.ops import OpsError

    def load_account(targets_block, credentials_block):
        raise OpsError(f"no block named {targets_block!r}")

    monkeypatch.setattr("rollway.cli.ops.load_account", load_account)
    # 1, as for every other command: 2 says the command line itself was wrong.
    assert rollway("flags", "list", "--json", "--targets-block", "nope") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: no block named 'nope'\n"


@pytest.mark.parametrize("region", ["", "eu west"])
@pytest.mark.parametrize("args", [("flags", "list"), ("flags", "set", SQS, "--enabled", "--actor", "gina"),
                                  ("status",), ("report",)], ids=["list", "set", "status", "report"])
def test_flags_with_a_region_boto3_refuses_say_so_on_one_line(monkeypatch, capsys, region, args, an_api_url):
    """botocore refuses such a region when the client is built (ValueError: Invalid endpoint,
    InvalidRegionError); the command says so on one line instead of printing a traceback (which
    `rollway status` did for ""), with exit code 1 (flags said 2, a command line's mistake)."""
    from prefect_aws import AwsCredentials

    from rollway.targets import Targets

    # model_copy: the region is the blocks' mistake, whatever Targets itself accepts.
    targets = Targets().model_copy(update={"region": region})
    monkeypatch.setattr("flows.env.load_targets", lambda block: targets)
    # Keys given: a block with none on a worker with none is refused first, for its credentials.
    keyed = AwsCredentials(aws_access_key_id="testing", aws_secret_access_key="testing")
    monkeypatch.setattr("flows.env.load_credentials", lambda block, region: keyed)
    assert rollway(*args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and f"region {region!r}" in captured.err
    assert captured.err.count("\n") == 1


@pytest.mark.parametrize("args", [("flags", "list"), ("status",), ("report",)], ids=["flags", "status", "report"])
def test_blocks_that_disagree_are_said_without_advice_about_block_names(monkeypatch, capsys, args, an_api_url):
    """Blocks that loaded but cannot make a session (a credentials block for another region, one
    holding a session token, a region AWS lacks): the line went on "(Prefect API ...); pass
    --targets-block and --credentials-block, or set PREFECT_API_URL ...", sending people to the
    names and the API, which were right."""
    from prefect_aws import AwsCredentials

    from rollway.targets import Targets

    monkeypatch.setattr("flows.env.load_targets", lambda block: Targets())
    monkeypatch.setattr("flows.env.load_credentials", lambda block, region: AwsCredentials(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"))
    assert rollway(*args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("error: the AWS credentials are for region eu-west-1, the service is in us-west-2 "
                            "(Targets.region): set one of them so that they agree\n")


@pytest.mark.parametrize("args", [("flags", "list"), ("status",)], ids=["flags", "status"])
def test_no_credentials_anywhere_is_one_line_naming_the_credentials(monkeypatch, capsys, args, an_api_url,
                                                                     no_aws_credentials):
    """A block with no keys, profile or role on a machine with none: the command's first AWS call
    failed on botocore's "Unable to locate credentials". It is said before any call, with what to
    change, and not followed by advice about block names and the Prefect API, which are right."""
    from prefect_aws import AwsCredentials

    from rollway.targets import Targets

    monkeypatch.setattr("flows.env.load_targets", lambda block: Targets())
    monkeypatch.setattr("flows.env.load_credentials", lambda block, region: AwsCredentials(region_name=region))
    assert rollway(*args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: could not load the AWS credentials: NoCredentialsError: Unable to locate credentials; nothing was "
        "changed; the AwsCredentials block gives no keys, profile or role, and the worker has none (AWS_* variables, "
        "~/.aws, an instance or task role): give the block credentials, or the worker\n")


def test_judge_replay_prints_its_decisions_on_stdout_only(capsys):
    assert rollway("judge", "--replay", str(DATA / "regression.jsonl"), "--metrics", "errors") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[-1])["verdict"] == "rollback"
    assert captured.err == ""
    # A file with no slow counts, slow judged: the note that says so goes to stderr, never to the output.
    assert rollway("judge", "--replay", str(DATA / "regression.jsonl")) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[-1])["verdict"] == "rollback"
    assert "note:" not in captured.out and captured.err.startswith("note: ")


def test_judge_help_lists_the_modes(capsys):
    """``--mode`` was shown as ``--mode STR``: which modes exist was left to the option's prose."""
    rollway("judge", "--help")
    shown = " ".join(capsys.readouterr().out.replace("│", " ").split())  # the help box's text, unwrapped
    assert "--mode STR" not in shown
    assert "choices: two-sample, one-sample" in shown


def test_judge_help_says_the_margin_is_the_canarys_own_rate(capsys):
    """``--margin`` read "error-rate margin tolerated when passing": not whose rate, nor that it
    holds for slow requests too (a margin over the baseline's rate, it would be another setting)."""
    rollway("judge", "--help")
    shown = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "--margin FLOAT the canary passes once its own rate" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--replay", str(DATA / "malformed_json.jsonl")), "line 3"),
        (("--replay", str(DATA / "no_such_file.jsonl")), "cannot read"),
        (("--replay", str(DATA / "healthy.jsonl"), "--alpha", "0.9"), "alpha"),
        (("--replay", "--no-guardrails"), "'--no-guardrails' is not a replay file"),
    ],
    ids=["malformed line", "missing file", "bad option", "option for a file"],
)
def test_judge_replay_errors_go_to_stderr(capsys, args, message):
    assert rollway("judge", *args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and message in captured.err


def test_up_reports_a_server_that_cannot_start_on_stderr(tmp_path):
    """A database URL no server can open: the server exits, and ``up`` says why on stderr."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path), "PREFECT_API_DATABASE_CONNECTION_URL": "bogus://nowhere"}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("rollway")), "up"], env=env, capture_output=True, text=True,
        timeout=180, check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: prefect server exited" in done.stderr
    assert "bogus" in done.stderr, "the server log's tail, which names the cause, is shown"
    # Without Prefect's welcome, which pushed the traceback's top out of the tail and says nothing of why.
    assert "Configure Prefect" not in done.stderr and "Traceback (most recent call last)" in done.stderr
    assert done.stderr.rstrip().endswith("An exception occurred."), done.stderr
    assert "exited" not in done.stdout and "bogus" not in done.stdout


def test_a_reader_that_stops_early_ends_the_command_without_a_traceback():
    """``rollway judge --replay f | head -1``, a pager quit early: the reader closes the pipe,
    and the command used to end in a BrokenPipeError traceback on standard error, read as a
    failure of the work. It now stops quietly with 141, as a command killed by SIGPIPE does."""
    rollway_bin = Path(sys.executable).with_name("rollway")
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first line is written
    try:
        done = subprocess.run([str(rollway_bin), "judge", "--replay", str(DATA / "healthy.jsonl")], stdout=writer,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(writer)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 141, done.stderr


@pytest.mark.parametrize("argv", [["judge", "--replay", str(DATA / "healthy.jsonl")], ["flags", "get", "f"]])
def test_a_command_started_with_standard_output_closed_says_so_before_doing_anything(argv):
    """``rollway ... >&-``: Python gives no standard output at all. A command then did its work
    with nowhere to say what it did (a flags set's or a promote's answer lost), and ended in an
    AttributeError traceback. It now refuses on one line, before reading the account, with 74."""
    done = subprocess.run([str(Path(sys.executable).with_name("rollway")), *argv], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60, check=False,
                          env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"},
                          preexec_fn=lambda: os.close(1))
    assert (done.returncode, done.stderr) == (74, "error: standard output is closed: nothing was done, as what "
                                                  "it did could not be said; run it with an output\n"), done.stderr


def test_a_flag_change_whose_output_cannot_be_written_says_the_change_stands(flags, monkeypatch, capsys):
    """`rollway flags set F --no-enabled >> oncall.log` on a full disk: the flag was turned off, and
    the command ended in an OSError traceback from the exit's flush, which read as the change
    having failed. One line says the output was lost and the command ran; exit 74 (EX_IOERR)."""
    from rollway.aws.flags import DynamoFlagStore
    from rollway.cli import main

    full = open("/dev/full", "w")  # noqa: SIM115 - standard output for the command; closed below
    monkeypatch.setattr(sys, "argv", ["rollway", "flags", "set", SQS, "--no-enabled", "--actor", "gina"])
    monkeypatch.setattr(sys, "stdout", full)
    try:
        with pytest.raises(SystemExit) as stop:
            main()
    finally:
        monkeypatch.undo()
        full.close()
    err = capsys.readouterr().err
    assert stop.value.code == 74, err
    assert err == ("error: standard output could not be written (No space left on device): the command ran to its "
                   "end (exit code 0), so what it changed stays changed; only what it printed is lost\n"), err
    assert DynamoFlagStore(flags.get_client("dynamodb"), flags.targets).get(SQS).enabled is False


def test_a_command_whose_output_cannot_be_written_part_way_says_so_on_one_line():
    """The same under a command that prints as it goes (the help, `rollway status`'s tables): the
    traceback came from inside the command, at its first print that reached the disk."""
    with open("/dev/full", "w") as full:
        done = subprocess.run([str(Path(sys.executable).with_name("rollway")), "flags", "set", "--help"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (74, "error: standard output could not be written (No space left on "
                                                  "device): the command stopped when it could not print, and what it "
                                                  "had changed by then stays changed\n"), done.stderr


def test_an_output_encoding_without_the_verdicts_characters_still_ends_in_the_summary():
    """A rollback's reason holds "—". Under an ASCII or Latin-1 output encoding printing it raised
    UnicodeEncodeError: a traceback, exit 1, and no JSON summary for the pipe reading it."""
    done = subprocess.run([str(Path(sys.executable).with_name("rollway")), "judge", str(DATA / "regression.jsonl")],
                          env={**os.environ, "PYTHONIOENCODING": "ascii"}, capture_output=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode()
    summary = json.loads(done.stdout.decode("ascii").splitlines()[-1])  # \u2014 inside a JSON string
    assert summary["verdict"] == "rollback" and "canary is worse — roll back" in summary["reason"]


@pytest.mark.parametrize(("argv", "named"), [
    (["judge", "--alpha", "abc", "x.jsonl"], ('--alpha: unable to convert "abc"', "rollway judge --help")),
    (["status", "--bogus"], ("Unknown option: --bogus", "rollway status --help")),
    (["flags", "get", "--bogus", "f"], ("Unknown option: --bogus", "rollway flags get --help")),
    (["nosuch"], ('Unknown command "nosuch"', "rollway --help")),
    # Said what is wrong, and not what to do.
    (["promote", "--approver", "ann", "--approver", "bob"], ("--approver specified multiple times. Give it once.",
                                                             "rollway promote --help")),
    # An on/off option given both ways is reported as the second spelling "repeated".
    (["flags", "set", "f", "--enabled", "--no-enabled"], ("Give --enabled or --no-enabled, once.",)),
    (["flags", "set", "f", "--no-enabled", "--enabled"], ("Give --enabled or --no-enabled, once.",)),
    (["flags", "set", "f", "--percentage", "50%"], ("Write it without the % sign: --percentage 50.",
                                                     "rollway flags set --help")),
    (["promote", "--weight", "25%"], ("Write it without the % sign: --weight 25.",)),
    # A rate is a fraction: "--alpha 5" was the advice, and then refused for its range.
    (["judge", "x.jsonl", "--alpha", "5%"], ("Write it as a fraction: --alpha 0.05 for 5%.",)),
    (["judge", "x.jsonl", "--slo-error-rate", "0.1%"], ("Write it as a fraction: --slo-error-rate 0.001 for 0.1%.",)),
])
def test_a_command_line_that_does_not_parse_is_refused_on_one_error_line(monkeypatch, capsys, argv, named):
    """cyclopts drew its own box of several lines for these, unlike every other refusal."""
    from rollway.cli import main

    monkeypatch.setattr(sys, "argv", ["rollway", *argv])
    with pytest.raises(SystemExit) as stop:
        main()
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and all(n in err for n in named), err


@pytest.mark.parametrize("argv, said", [
    (["flags", "show", SQS], f"`rollway flags get {SQS}` shows a flag and its latest changes."),
    (["flags", "disable", SQS], f"`rollway flags set {SQS} --no-enabled` turns a flag off."),
    (["flags", "off", "a.b"], "`rollway flags set a.b --no-enabled` turns a flag off."),
    (["flags", "enable", SQS, "--reason", "x"], f"`rollway flags set {SQS} --enabled` turns a flag on."),
    (["flags", "percentage", SQS, "5%"], f"`rollway flags set {SQS} --percentage 5` sets the share of users"),
    (["flags", "percentage", SQS, "25"], f"`rollway flags set {SQS} --percentage 25` sets the share of users"),
    (["flags", "percentage", SQS], f"`rollway flags set {SQS} --percentage N` sets the share of users"),
    (["flags", "percentage", SQS, "150"], f"`rollway flags set {SQS} --percentage N` sets the share of users"),
    (["flags", "disable", "--reason", "x", SQS], "`rollway flags set NAME --no-enabled` turns a flag off."),
    (["flags", "disable"], "`rollway flags set NAME --no-enabled` turns a flag off."),
    (["flags", "disable", "it's"], "`rollway flags set 'it'\"'\"'s' --no-enabled`"),
    (["flags", "create", SQS], f"`rollway flags set {SQS} --create` creates a flag"),
    (["approve"], "`rollway promote` approves the paused run"),
    (["reject"], "`rollway abort` rolls the rollout back"),
    (["rollback"], "`rollway abort` rolls the rollout back"),
])
def test_a_command_named_in_other_words_is_refused_naming_the_one_that_does_it(monkeypatch, capsys, argv, said):
    """On call, `rollway flags disable F`, `flags show F` or `flags percentage F 5` (the words of a
    dashboard or a runbook) were told only "Unknown command ... Available commands: list, get,
    set, release, eval", leaving the person to find in the help that `set --no-enabled` turns a
    flag off. Still refused (exit 2, nothing read), now naming the command line that does it."""
    from rollway.cli import main

    def started(**_):
        raise AssertionError("the account was loaded for a command line that does not parse")

    monkeypatch.setattr("rollway.cli.ops.load_account", started)
    monkeypatch.setattr(sys, "argv", ["rollway", *argv])
    with pytest.raises(SystemExit) as stop:
        main()
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and out == "", (out, err)
    assert err.count("\n") == 1 and err.startswith("error: Unknown command") and said in err, err


@pytest.mark.parametrize("argv", [["demo", "--rps", "50%"], ["up", "--speed", "10%"]])
def test_a_percent_sign_on_an_option_that_is_no_share_is_not_told_to_drop_the_sign(monkeypatch, capsys, argv):
    """"--rps 50%" was told to write "--rps 50": a request rate has no percent reading."""
    from rollway.cli import main

    monkeypatch.setattr(sys, "argv", ["rollway", *argv])
    with pytest.raises(SystemExit) as stop:
        main()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and f'Invalid value for {argv[1]}: unable to convert "{argv[2]}"' in err, err
    assert "% sign" not in err and "fraction" not in err, err


@pytest.mark.parametrize(("argv", "named"), [
    (["flags", "set", SQS, "--enabled", "--expected-version", "1.5", "--actor", "gina"], "--expected-version: '1.5'"),
    (["flags", "set", SQS, "--enabled", "--expected-version", "2.5", "--actor", "gina"], "--expected-version: '2.5'"),
    (["flags", "get", SQS, "--audit", "2.9"], "--audit: '2.9'"),
], ids=["version 1.5", "version 2.5", "audit 2.9"])
def test_flags_refuse_a_count_that_is_not_a_whole_number_before_any_aws_call(monkeypatch, capsys, argv, named):
    """cyclopts rounded "1.5" to 2 (and "2.5" to 2): the write was made conditional on a version
    nobody gave, and `--audit 2.9` showed 3 changes."""
    from rollway.cli import main
    from rollway.targets import Targets

    monkeypatch.setattr("rollway.cli.ops.load_account", lambda targets_block, credentials_block: (Targets(), lambda _: NoAws()))
    monkeypatch.setattr(sys, "argv", ["rollway", *argv])
    with pytest.raises(SystemExit) as stop:
        main()
    out, err = capsys.readouterr()
    assert stop.value.code == EXIT_INVALID and out == "", (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and named in err and "not a whole number" in err, err


# Every whole-number option of every command, as typed wrong: a count, a weight, a version, a port
# or a seed given as "1.5" was rounded to 2 (and "2.5" to 2) by the parser, and the command ran on
# a number nobody gave (`rollway promote --weight 12.5` skipped to 12 %).
WHOLE_OPTIONS = {
    ("status", "--history"): ["status", "--history", "1.5"],
    ("promote", "--weight"): ["promote", "--weight", "12.5", "--approver", "ann"],
    ("judge", "--min-requests"): ["judge", "x.jsonl", "--min-requests", "49.5"],
    ("judge", "--stage"): ["judge", "x.jsonl", "--stage", "25.5"],
    ("up", "--port"): ["up", "--port", "4200.5"],
    ("up", "--seed"): ["up", "--seed", "7.5"],
    ("demo", "--seed"): ["demo", "--seed", "7.5"],
    ("flags get", "--audit"): ["flags", "get", SQS, "--audit", "2.5"],
    ("flags set", "--expected-version"): ["flags", "set", SQS, "--enabled", "--expected-version", "3.5"],
}


def _int_options(command, path=()):
    """(command path, --option) of every int (or int | None) option of ``command`` and its sub-commands."""
    import inspect
    import types
    import typing

    found = set()
    for name in command:
        if name.startswith("-"):  # --help, --version
            continue
        sub = command[name]
        if sub.default_command is None:  # a group of commands: `flags`
            found |= _int_options(sub, (*path, name))
            continue
        hints = typing.get_type_hints(sub.default_command, include_extras=True)
        for param in inspect.signature(sub.default_command).parameters.values():
            hint = hints.get(param.name)
            union = typing.get_origin(hint) in (typing.Union, types.UnionType)
            for arg in typing.get_args(hint) if union else (hint,):
                if arg is int or typing.get_args(arg)[:1] == (int,):  # int, or Annotated[int, ...]
                    found.add((" ".join((*path, name)), "--" + param.name.replace("_", "-")))
    return found


def test_every_whole_number_option_is_in_the_list_refused_below():
    """A new int option joins WHOLE_OPTIONS, so its refusal of "1.5" is tested."""
    from rollway.cli import app as rollway_app

    assert _int_options(rollway_app) == set(WHOLE_OPTIONS)


@pytest.mark.parametrize("argv", list(WHOLE_OPTIONS.values()), ids=[" ".join(k) for k in WHOLE_OPTIONS])
def test_every_whole_number_option_refuses_a_fraction_before_doing_anything(monkeypatch, capsys, argv):
    from rollway.cli import main
    from rollway.targets import Targets

    def started(**_):
        raise AssertionError("the command ran on a rounded number")

    monkeypatch.setattr("rollway.cli.ops.load_account", lambda targets_block, credentials_block: (Targets(), lambda _: NoAws()))
    # The modules, not the commands of the same names on rollway.cli.
    monkeypatch.setattr(importlib.import_module("rollway.cli.up"), "run_up", started)
    monkeypatch.setattr(importlib.import_module("rollway.cli.demo"), "run_demo", started)
    monkeypatch.setattr(sys, "argv", ["rollway", *argv])
    with pytest.raises(SystemExit) as stop:
        main()
    out, err = capsys.readouterr()
    option = next(a for a in argv if a.startswith("--") and argv[argv.index(a) + 1][:1].isdigit())
    assert stop.value.code == EXIT_INVALID and out == "", (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert f"{option}: '{argv[argv.index(option) + 1]}' is not a whole number" in err, err


@pytest.mark.parametrize("args", [("flags", "list", "--json"), ("flags", "get", SQS),
                                  ("flags", "set", SQS, "--enabled", "--actor", "gina"), ("flags", "eval", SQS, "u1")],
                         ids=["list", "get", "set", "eval"])
def test_flags_with_the_prefect_api_down_say_so_on_one_line(capsys, args, an_api_url):
    """The flags commands read their blocks from the Prefect API: with it down they printed
    httpx's traceback, where every other command says it cannot reach the API."""
    assert rollway(*args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: cannot reach the Prefect API ({an_api_url})"), captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_a_command_the_role_may_not_run_names_the_permission_and_its_statement(aws, monkeypatch, capsys, an_api_url):
    """`rollway status` under credentials without dynamodb:Query on the ledger said "AWS refused or
    could not be reached" and boto's text: not which statement of the policy grants it."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    monkeypatch.setattr("rollway.cli.ops.load_account", lambda targets_block, credentials_block: (aws.targets,
                                                                                                  aws.get_client))

    def refuse(**_):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "User: arn:aws:iam::123456789012:user/"
                                     "gina is not authorized to perform: dynamodb:Query on resource: table"}}, "Query")

    # The command reads the ledger on the clients of its bounded reads (ledger_read).
    from rollway.cli.ops import LEDGER_READ_SECONDS

    reads = aws.get_client.reading(LEDGER_READ_SECONDS)("dynamodb")
    with on_operation(reads, "before-parameter-build", refuse, operation="Query"):
        assert rollway("status") == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error: AWS refused dynamodb:Query (AccessDeniedException: "), err
    assert "it is granted by deployments/iam-policy.json, statement Ledger" in err and "could not be reached" not in err


_EXPIRED = {"Error": {"Code": "ExpiredTokenException",
                     "Message": "The security token included in the request is expired"}}
_RENEW = ("the credentials have expired: renew the keys of the AwsCredentials block (or of its profile) and run "
          "again")


def test_a_command_whose_credentials_expire_part_way_says_to_renew_them(aws, monkeypatch, capsys, an_api_url):
    """Credentials proved at the start (STS) that expired before the ledger's read (a session's
    last minutes): `rollway status` said "AWS refused or could not be reached" and boto's text,
    which sent people to the network. It says the credentials expired, and what to renew."""
    from botocore.exceptions import ClientError

    from rollway.cli.ops import LEDGER_READ_SECONDS
    from tests.botocore_events import on_operation

    monkeypatch.setattr("rollway.cli.ops.load_account", lambda targets_block, credentials_block: (aws.targets,
                                                                                                  aws.get_client))

    def expired(**_):
        raise ClientError(_EXPIRED, "Query")

    reads = aws.get_client.reading(LEDGER_READ_SECONDS)("dynamodb")
    with on_operation(reads, "before-parameter-build", expired, operation="Query"):
        assert rollway("report") == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err == (f"error: AWS refused the credentials on dynamodb Query (ExpiredTokenException: The security token "
                   f"included in the request is expired): {_RENEW}"), err


@pytest.mark.parametrize("args", [("flags", "list"), ("flags", "get", SQS),
                                  ("flags", "set", SQS, "--percentage", "5", "--actor", "gina")],
                         ids=["list", "get", "set"])
def test_flags_whose_credentials_expire_part_way_say_to_renew_them(flags, capsys, args):
    """"feature flag table 'x': ExpiredTokenException: ..." read as the table's failure; the
    credentials are what to renew. Still exit 4, and nothing on standard output."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    def expired(**_):
        raise ClientError(_EXPIRED, "GetItem")

    with on_operation(flags.get_client("dynamodb"), "before-parameter-build", expired, operation=None):
        assert rollway(*args) == EXIT_UNAVAILABLE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: AWS refused the credentials on dynamodb "), captured.err
    assert captured.err.endswith(f"(ExpiredTokenException: The security token included in the request is expired): "
                                 f"{_RENEW}\n"), captured.err


@pytest.mark.parametrize("on", [" on resource: arn:aws:dynamodb:eu-west-1:123456789012:table/acme-rollouts", ""],
                         ids=["aws", "moto"])
def test_a_command_refused_on_a_ledger_of_the_users_name_names_the_ledgers_statement_only(capsys, on):
    """A refused GetItem on the ledger (a promote's read of its rollout) named the flags table's
    statement beside the ledger's: the policy spells Webordinary's names, and the command's refusal
    named no table."""
    from botocore.exceptions import ClientError

    from rollway.cli.ops import _loaded_targets, reporting
    from rollway.targets import Targets

    @reporting
    def command() -> int:
        _loaded_targets.set(Targets(region="eu-west-1", rollouts_table="acme-rollouts", flags_table="acme-flags"))
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": (
            "User: arn:aws:iam::123456789012:user/gina is not authorized to perform: dynamodb:GetItem" + on)}},
            "GetItem")

    assert command() == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error: AWS refused dynamodb:GetItem (AccessDeniedException: "), err
    assert "it is granted by deployments/iam-policy.json, statement Ledger: add that statement" in err, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # "percentage 150.0 is outside 0..100" named no option, and a number nobody typed.
        (("flags", "set", SQS, "--percentage", "150", "--actor", "gina"),
         "error: --percentage 150 is not a share of users: it must be from 0 to 100; nothing was read or changed"),
        (("flags", "set", "bad name", "--enabled", "--actor", "gina"), "feature flag name 'bad name'"),
        (("flags", "get", SQS, "--audit", "-1"), "--audit -1 is negative"),
        # Flags hold basis points: 0.004 was stored as 0 % (off for everyone), with no word of it.
        (("flags", "set", SQS, "--percentage", "0.004", "--actor", "gina"),
         "error: --percentage 0.004: flags are stored in basis points, so the finest step is 0.01 % (it would be "
         "stored as 0%); give 0 or 0.01; nothing was read or changed"),
        (("flags", "set", SQS, "--percentage", "12.345", "--actor", "gina"), "error: --percentage 12.345: "),
        # The store was reached for (`store.get`) before the name was checked: the account's error instead.
        (("flags", "get", "bad name"), "feature flag name 'bad name'"),
        (("flags", "eval", "bad name", "u1"), "feature flag name 'bad name'"),
    ],
    ids=["percentage", "name", "audit", "percentage below a basis point", "percentage between basis points",
         "get name", "eval name"],
)
def test_flags_bad_input_is_named_even_when_the_account_cannot_be_loaded(monkeypatch, capsys, args, message):
    """Bad input was answered with the account's error (PREFECT_API_URL unset, exit 1), and refused
    for itself only once that was fixed."""
    from rollway.cli.ops import OpsError

    def unloadable(targets_block, credentials_block):
        raise OpsError("PREFECT_API_URL is not set")

    monkeypatch.setattr("rollway.cli.ops.load_account", unloadable)
    assert rollway(*args) == EXIT_INVALID
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("error: ") and message in captured.err and "PREFECT_API_URL" not in captured.err


def test_flags_with_good_input_still_say_the_account_cannot_be_loaded(monkeypatch, capsys):
    from rollway.cli.ops import OpsError

    def unloadable(targets_block, credentials_block):
        raise OpsError("PREFECT_API_URL is not set")

    monkeypatch.setattr("rollway.cli.ops.load_account", unloadable)
    assert rollway("flags", "set", SQS, "--no-enabled", "--actor", "gina") == 1
    assert capsys.readouterr().err == "error: PREFECT_API_URL is not set\n"


def test_python_dash_m_rollway_cli_runs_the_same_commands():
    """``python -m rollway.cli`` (a venv whose ``rollway`` script imports another checkout, a
    machine without the script on its PATH) stopped with "No module named rollway.cli.__main__":
    the package's ``if __name__ == "__main__"`` never runs under ``-m``."""
    replay = ["judge", "--replay", str(DATA / "healthy.jsonl")]
    by_module = subprocess.run([sys.executable, "-m", "rollway.cli", *replay], capture_output=True, text=True,
                               timeout=60, check=False)
    by_script = subprocess.run([str(Path(sys.executable).with_name("rollway")), *replay], capture_output=True,
                               text=True, timeout=60, check=False)
    assert by_module.returncode == 0, by_module.stderr
    assert by_module.stdout == by_script.stdout and by_module.stdout.strip(), by_module.stdout


@pytest.mark.parametrize("typed, write", [("1e2", "100"), ("1E2", "100"), ("2.5e1", "25"), ("50.0", "50"),
                                          ("0x10", "16"), ("0o20", "16"), ("0b10000", "16")])
def test_a_whole_number_written_in_another_notation_is_refused_saying_how_to_write_it(monkeypatch, capsys, typed,
                                                                                      write):
    """`--weight 1e2` and `--weight 0x10` were refused as "not a whole number", which they are:
    the person was left to find what the parser wanted. Still refused (cyclopts took them as 100
    and 16 before the option was a Whole: a notation nobody reads back is no weight to act on),
    now saying what to write."""
    from rollway.cli import main

    def started(**_):
        raise AssertionError("the command ran on a number written in another notation")

    monkeypatch.setattr("rollway.cli.ops.load_account", started)
    monkeypatch.setattr(sys, "argv", ["rollway", "promote", "--weight", typed, "--approver", "ann"])
    with pytest.raises(SystemExit) as stop:
        main()
    out, err = capsys.readouterr()
    assert stop.value.code == EXIT_INVALID and out == "", (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert f"--weight: '{typed}' is not written as a whole number; write {write}" in err, err


@pytest.mark.parametrize("typed", ["1.5", "1e-2", "inf", "nan", "0x", "abc", ""])
def test_a_number_that_is_no_whole_number_is_not_told_how_to_write_it(typed):
    from rollway.cli.whole import _whole

    class Token:
        value = typed

    with pytest.raises(ValueError) as refused:
        _whole(int, [Token()])
    assert str(refused.value) == f"{typed!r} is not a whole number", str(refused.value)


@pytest.mark.parametrize("typed, digits", [("1e400000000", "400,000,001"), ("-2.5e40", "41"), ("1E30", "31")])
def test_a_whole_number_too_long_to_write_out_here_is_told_its_size_and_the_form_taken(typed, digits):
    """"'1e400000000' is not written as a whole number; write it in digits" told a person to type
    400 million digits, and named neither what was wrong with the number nor the form an option
    takes. The refusal says how long the number is and that it is in exponent notation, and how
    a whole number is written."""
    from rollway.cli.whole import _whole

    class Token:
        value = typed

    with pytest.raises(ValueError) as refused:
        _whole(int, [Token()])
    assert str(refused.value) == (f"{typed!r} is a number {digits} digits long in exponent notation: options take a "
                                  "whole number in plain digits (0-9, an optional leading -), and no count, weight, "
                                  "port or version is anywhere near this long"), str(refused.value)


@pytest.mark.parametrize("typed, digits", [("9" * 5000, "5,000"), ("1" + "0" * 40 + ".0", "41")])
def test_a_whole_number_too_long_written_in_digits_is_not_said_to_be_in_exponent_notation(typed, digits):
    """Digits past Python's 4,300 (or a long number with ".0") came to the same refusal as
    1e400000000, which said it was "in exponent notation" and that options take "plain digits",
    which is what was typed."""
    from rollway.cli.whole import _whole

    class Token:
        value = typed

    with pytest.raises(ValueError) as refused:
        _whole(int, [Token()])
    said = str(refused.value)
    assert f"is a number {digits} digits long" in said and "exponent" not in said, said[-300:]
    assert said.endswith("no count, weight, port or version is anywhere near this long"), said[-300:]


@pytest.mark.parametrize("typed", ["0x" + "f" * 5000, "-0b" + "1" * 200, "0o" + "7" * 60])
def test_a_long_number_in_hex_octal_or_binary_is_refused_in_the_cli_words_not_pythons(typed):
    """0x and 5,000 hex digits is a number int() reads, but spelling it in decimal for the
    refusal's "write N" is past Python's limit: the person read Python's advice to call
    sys.set_int_max_str_digits(). Refused like other numbers too long for any option, without
    repeating thousands of characters."""
    from rollway.cli.whole import _whole

    class Token:
        value = typed

    with pytest.raises(ValueError) as refused:
        _whole(int, [Token()])
    said = str(refused.value)
    assert said.startswith(f"{typed[:30]!r}... is a number {len(typed):,} characters long"), said[:300]
    assert said.endswith("no count, weight, port or version is anywhere near this long") and len(said) < 300, said


@pytest.mark.parametrize("weight", ["0", "-5", "101"])
def test_promote_refuses_a_weight_out_of_range_repeating_the_weight_given(monkeypatch, capsys, weight):
    """"--weight: Input should be greater than or equal to 1" did not repeat what was typed, where
    every other refusal of the command line does ("--percentage 101 is not a share of users")."""
    from rollway.cli import main

    def started(**_):
        raise AssertionError("the account was loaded for a weight the form refuses")

    monkeypatch.setattr("rollway.cli.ops.load_account", started)
    monkeypatch.setattr(sys, "argv", ["rollway", "promote", f"--weight={weight}", "--approver", "ann"])
    with pytest.raises(SystemExit) as stop:
        main()
    out, err = capsys.readouterr()
    assert stop.value.code == EXIT_INVALID and out == "", (out, err)
    assert err == (f"error: --weight {weight}: must be the canary weight of a later stage of the rollout, from 1 to "
                   "100; nothing was done\n"), err


def test_a_file_the_command_cannot_read_is_not_said_to_be_its_output(monkeypatch, capsys):
    """Any OSError of a full or failing disk was taken for standard output's: a config file the
    command read on a failing disk (EIO) was reported as "standard output could not be written",
    exit 74, sending the person to the output's disk instead of the file's. Only a write to
    standard output (or error) is said so; the file's failure stands as itself."""
    import errno

    from rollway.cli import main

    def failing_disk(*_, **__):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("rollway.cli.ops.load_account", failing_disk)
    monkeypatch.setattr(sys, "argv", ["rollway", "status"])
    with pytest.raises(OSError) as raised:
        main()
    assert raised.value.errno == errno.EIO
    assert "standard output could not be written" not in capsys.readouterr().err


def test_a_command_aws_refused_says_awss_words_on_one_line_escaped_naming_the_call(aws, monkeypatch, capsys,
                                                                                   an_api_url):
    """Any other refusal (throttling outlasting botocore's retries, an endpoint's own error) was
    printed as boto's text, AWS's message as it came: an escape sequence in it acted on the
    terminal (here, cleared the screen) and a line break began a line of its own. It is one line,
    its control characters escaped, still naming the call and AWS's code."""
    from botocore.exceptions import ClientError

    from rollway.cli.ops import LEDGER_READ_SECONDS
    from tests.botocore_events import on_operation

    monkeypatch.setattr("rollway.cli.ops.load_account", lambda targets_block, credentials_block: (aws.targets,
                                                                                                  aws.get_client))

    def throttled(**_):
        raise ClientError({"Error": {"Code": "ThrottlingException",
                                     "Message": "Rate exceeded\n\x1b[2J\x1b[Herror: nothing wrong"}}, "Query")

    reads = aws.get_client.reading(LEDGER_READ_SECONDS)("dynamodb")
    with on_operation(reads, "before-parameter-build", throttled, operation="Query"):
        assert rollway("status") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err, repr(err)
    assert err == ("error: AWS refused or could not be reached: ThrottlingException on Query: Rate exceeded "
                   "\\x1b[2J\\x1b[Herror: nothing wrong\n"), repr(err)
