"""DynamoFlagStore on the embedded AWS against items written outside rollway, long multi-byte
audit text, and command-line bytes that are not UTF-8."""

from __future__ import annotations

import io
import logging
import re

import pytest

from rollway.aws.flags import DynamoFlagStore
from rollway.flag_binding import FlagChange, apply_bindings, check_bindings, disable_bindings, set_flag
from rollway.flags import AUDIT_CAP, MAX_ACTOR, MAX_REASON, FlagEvaluator, FlagState, MalformedFlag
from rollway.flags_commands import EXIT_INVALID, EXIT_OK, EXIT_PARTIAL, flags_get, flags_list, flags_set
from rollway.spec import FlagBinding
from tests.botocore_events import on_operation
from tests.adapters.test_dynamo_flags import SQS, client, written_up_to  # noqa: F401 - the DynamoDB client fixture


@pytest.fixture
def store(aws, client) -> DynamoFlagStore:
    flags = DynamoFlagStore(client, aws.targets)
    flags.put(FlagState(feature=SQS), expected_version=0, actor="seed", now=1.0)
    return flags


def put_raw(client, aws, **attributes) -> None:
    """An item as the console or another tool writes it."""
    client.put_item(TableName=aws.targets.flags_table, Item=attributes)


# --- 3. items written outside rollway ---------------------------------------------------------

def test_enabled_written_as_the_text_false_is_off_and_named(store, client, aws, caplog):
    put_raw(client, aws, feature={"S": "legacy"}, enabled={"S": "false"}, percentage={"N": "100"})
    with caplog.at_level(logging.WARNING, logger="rollway.flags"):
        assert FlagEvaluator(store).is_enabled("legacy", "user-1") is False
        assert FlagEvaluator(store).is_enabled("legacy") is False
    assert "'legacy' is malformed" in caplog.text and "fail closed" in caplog.text
    with pytest.raises(MalformedFlag, match="'legacy'.*enabled 'false' is not a boolean"):
        store.get("legacy")
    put_raw(client, aws, feature={"S": "numeric"}, enabled={"N": "1"}, percentage={"N": "100"})
    assert store.get("numeric").enabled is True  # DynamoDB's number 1, as other tools write it


def test_a_percentage_written_as_text_is_refused_by_name_and_hides_no_other_flag(store, client, aws, caplog):
    """The console's default attribute type is String: a percentage typed there as "50" was read
    as 50, and the flag half on, while a reader of the table that expects the Number the layout
    names (the application's own flag client) finds no percentage: two answers for one flag."""
    put_raw(client, aws, feature={"S": "typed"}, enabled={"BOOL": True}, percentage={"S": "50"})
    put_raw(client, aws, feature={"S": "fine"}, enabled={"BOOL": True}, percentage={"N": "100"})

    with pytest.raises(MalformedFlag, match=r"'typed'.*percentage '50' is stored as text \(a String attribute\), "
                                            r"not a number: store it as a Number"):
        store.get("typed")
    with caplog.at_level(logging.WARNING, logger="rollway.flags"):
        evaluator = FlagEvaluator(store)
        assert [evaluator.is_enabled("typed", f"user-{i}") for i in range(50)] == [False] * 50
        assert evaluator.is_enabled("fine", "user-1") is True
    assert "'typed' is malformed" in caplog.text and "fail closed" in caplog.text, "said, not a silent answer"

    out, err = io.StringIO(), io.StringIO()
    assert flags_list(store, out, err=err) == EXIT_PARTIAL
    assert "fine" in out.getvalue() and "typed" not in out.getvalue()
    assert "'typed' is malformed" in err.getvalue() and "String attribute" in err.getvalue()
    # Set as a number, it is repaired.
    out, err = io.StringIO(), io.StringIO()
    assert flags_set(store, out, "typed", err=err, actor="alice", percentage=50, now=2.0) == EXIT_OK, err.getvalue()
    assert store.get("typed").percentage == 50.0
    assert client.get_item(TableName=aws.targets.flags_table, Key={"feature": {"S": "typed"}})["Item"][
        "percentage"] == {"N": "50.0"}


@pytest.mark.parametrize("stored,said", [
    ({"BOOL": True}, "percentage True is stored as a Boolean attribute, not a number"),
    ({"NULL": True}, "percentage None is stored as a Null attribute, not a number"),
    ({"L": [{"N": "50"}]}, "percentage [50] is stored as a List attribute, not a number"),
    ({"SS": ["50"]}, "percentage {'50'} is stored as a Set attribute, not a number"),
])
def test_a_percentage_of_another_attribute_type_is_named_by_its_type(store, client, aws, stored, said):
    """A Boolean percentage was said to be "outside 0..100", which sent a person looking for a
    number out of range where there was no number at all."""
    put_raw(client, aws, feature={"S": "typed"}, enabled={"BOOL": True}, percentage=stored)
    with pytest.raises(MalformedFlag, match=re.escape(said) + ": store it as a Number"):
        store.get("typed")
    assert FlagEvaluator(store).is_enabled("typed", "user-1") is False


def test_one_out_of_range_item_hides_no_other_flag_and_can_be_repaired(store, client, aws):
    put_raw(client, aws, feature={"S": "bad_flag"}, enabled={"BOOL": True}, percentage={"N": "150"})

    out, err = io.StringIO(), io.StringIO()
    assert flags_list(store, out, err=err) == EXIT_PARTIAL, "a script reading the list can tell it is not whole"
    assert SQS in out.getvalue() and "bad_flag" not in out.getvalue()
    assert err.getvalue().startswith("warning: feature flag 'bad_flag' is malformed") and "150" in err.getvalue()

    out, err = io.StringIO(), io.StringIO()
    assert flags_get(store, out, "bad_flag", err=err) != EXIT_OK and "'bad_flag'" in err.getvalue()
    assert FlagEvaluator(store).is_enabled("bad_flag", "user-1") is False  # fails closed, no raise

    # A change that leaves the unreadable percentage as it is writes nothing, and says what to give.
    out, err = io.StringIO(), io.StringIO()
    assert flags_set(store, out, "bad_flag", err=err, actor="alice", enabled=True, now=2.0) == EXIT_INVALID
    assert "--percentage" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert flags_set(store, out, "bad_flag", err=err, actor="alice", percentage=50, now=3.0) == EXIT_OK, err.getvalue()
    assert "malformed" in out.getvalue() and "on 50%" in out.getvalue()
    repaired = store.get("bad_flag")
    assert (repaired.enabled, repaired.percentage, repaired.version, repaired.updated_by) == (True, 50.0, 1, "alice")
    assert store.audit("bad_flag")[0].previous_enabled is True
    # The repair's audit entry has the settings that could be read before it, and no percentage:
    # `flags get` showed a traceback on it (formatting None as a number).
    out, err = io.StringIO(), io.StringIO()
    assert flags_get(store, out, "bad_flag", err=err) == EXIT_OK, err.getvalue()
    assert "alice: malformed -> on 50%" in out.getvalue()


def test_an_item_under_a_name_no_flag_can_have_is_named_with_a_repair_that_can_be_made(store, client, aws):
    """An item added in the console as "new feature" was listed with the advice to repair it by
    `rollway flags set new feature ...`, which every flags command refuses for its name: the list
    stayed partial (exit 5) with no way out named."""
    put_raw(client, aws, feature={"S": "new feature"}, enabled={"BOOL": True}, percentage={"N": "10"})

    out, err = io.StringIO(), io.StringIO()
    assert flags_list(store, out, err=err) == EXIT_PARTIAL
    warning = err.getvalue()
    assert warning.startswith("warning: feature flag 'new feature' is malformed in the table (feature flag name "), warning
    assert "`rollway flags set new feature" not in warning, "a command every flags command refuses"
    assert "no flag can have that name" in warning and "delete the item in the DynamoDB console" in warning, warning
    assert "`rollway flags set <a usable name> --create`" in warning, warning
    # The advice given before, refused indeed:
    assert flags_set(store, io.StringIO(), "new feature", err=io.StringIO(), actor="alice", enabled=False) == EXIT_INVALID


def test_a_rollback_disables_a_malformed_bound_flag(store, client, aws):
    put_raw(client, aws, feature={"S": "bad_flag"}, enabled={"S": "yes"}, percentage={"N": "150"},
            version={"S": "seven"})
    updates = disable_bindings(store, [FlagBinding(feature="bad_flag"), FlagBinding(feature=SQS)],
                               actor="judge", reason="error rate 7%", now=2.0)
    assert [u.feature for u in updates] == ["bad_flag"]
    flag = store.get("bad_flag")
    assert (flag.enabled, flag.percentage, flag.version) == (False, 0.0, 1)
    assert not FlagEvaluator(store).is_enabled("bad_flag")


# --- 5. the audit trail fits DynamoDB's item in bytes, not characters ---------------------------

def test_long_multibyte_reasons_and_actors_never_lock_the_flag(store, client, aws):
    # Within both limits, four bytes a character: about 5 KB an entry, so some 80 fit in the item.
    # 78 are there, then five more changes and a rollback's disable go past that.
    reason, actor = "\U0001F680" * MAX_REASON, "\U0001F464" * MAX_ACTOR
    written_up_to(store, client, aws, SQS, 78, reason=reason, actor=actor)
    for i in range(5):
        set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=i % 2 + 2, reason=reason), actor=actor,
                 now=200.0 + i)
    updates = disable_bindings(store, [FlagBinding(feature=SQS)], actor="state hook (failed)", reason="x" * 2000,
                               now=999.0)
    assert [u.after.enabled for u in updates] == [False]
    assert store.get(SQS).enabled is False
    trail = store.audit(SQS)
    assert trail[0].actor == "state hook (failed)" and trail[1].version == 83
    assert trail[-1].version > 1, "84 changes, fewer than AUDIT_CAP: the oldest made room by size, not by count"
    assert len(trail) >= 80, "the newest entries are kept (README: at least 80)"
    # (test_dynamo_flags.py: ASCII entries of the longest kind still keep all AUDIT_CAP.)


# --- 4. command-line bytes that are not UTF-8 -----------------------------------------------

BAD_BYTE = "user-\udcff"  # os.fsdecode(b"user-\xff"), as sys.argv holds it


def rollway(*args):
    from rollway.cli import app

    try:
        return app(list(args), result_action="return_value")
    except SystemExit as stop:
        return int(stop.code)


@pytest.mark.parametrize("args", [
    ("flags", "eval", SQS, BAD_BYTE),
    ("flags", "set", SQS, "--percentage", "30", "--actor", BAD_BYTE),
    ("flags", "set", SQS, "--percentage", "30", "--actor", "gina", "--reason", "ticket \udcff"),
], ids=["eval user", "set actor", "set reason"])
def test_the_cli_refuses_bytes_that_are_not_utf8_with_one_error_line(store, aws, monkeypatch, capsys, args):
    monkeypatch.setattr("rollway.cli.ops.load_account", lambda t, c: (aws.targets, aws.get_client))
    assert rollway(*args) == EXIT_INVALID
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "not valid UTF-8" in captured.err, captured.err
    assert captured.out == "" and store.get(SQS).version == 1


# --- which code wrote a change is stored, not read from the reason --------------------------

def test_a_persons_reason_typed_as_a_rollout_mark_leaves_the_kill_switch_off_on_dynamodb(store, client, aws):
    bound = [FlagBinding(feature=SQS)]
    apply_bindings(store, bound, 5, actor="alice", now=2.0, rollout="r1")
    set_flag(store, FlagChange(feature=SQS, enabled=False, reason="rollout stage 5%"), actor="oncall", now=3.0)

    assert apply_bindings(store, bound, 25, actor="alice", now=4.0, rollout="r1")[0].kept
    flag = store.get(SQS)
    assert (flag.enabled, flag.percentage, flag.updated_by) == (False, 5.0, "oncall")
    assert [(e.actor, e.writer, e.rollout) for e in store.audit(SQS)] == [
        ("oncall", "person", None), ("alice", "rollout", "r1"), ("seed", "person", None)]


def test_audit_entries_an_earlier_release_wrote_read_without_a_writer(store, client, aws):
    """Their maps lack ``writer`` and ``rollout``: they read as None, and a write carries them on."""
    legacy = {"M": {"feature": {"S": SQS}, "version": {"N": "1"}, "at": {"N": "1"}, "actor": {"S": "seed"},
                    "reason": {"S": "rollout stage 5%"}, "enabled": {"BOOL": True}, "percentage": {"N": "5"},
                    "salt": {"S": "v1"}}}
    put_raw(client, aws, feature={"S": SQS}, enabled={"BOOL": True}, percentage={"N": "5"}, salt={"S": "v1"},
            version={"N": "1"}, audit={"L": [legacy]})
    set_flag(store, FlagChange(feature=SQS, enabled=False), actor="oncall", now=2.0)
    assert [(e.actor, e.writer) for e in store.audit(SQS)] == [("oncall", "person"), ("seed", None)]


def test_a_rollback_names_its_rollout_on_dynamodb_and_another_services_hold_stays(store, client, aws):
    bound = [FlagBinding(feature=SQS)]
    apply_bindings(store, bound, 5, actor="alice", now=2.0, rollout="edit-r1")
    apply_bindings(store, bound, 5, actor="bob", now=3.0, rollout="billing-r7")
    apply_bindings(store, bound, 25, actor="alice", now=4.0, rollout="edit-r1")
    set_flag(store, FlagChange(feature=SQS, percentage=0, reason="kill"), actor="oncall", now=5.0)
    disable_bindings(store, bound, actor="judge", reason="edit: 5xx", now=6.0, rollout="edit-r1")

    assert apply_bindings(store, bound, 50, actor="bob", now=7.0, rollout="billing-r7")[0].kept
    flag = store.get(SQS)
    assert (flag.enabled, flag.percentage) == (False, 0.0)
    assert [(e.actor, e.writer, e.rollout) for e in store.audit(SQS)][:2] == [
        ("judge", "rollback", "edit-r1"), ("oncall", "person", None)]


# --- an audit entry written outside rollway ---------------------------------------------------

def add_unreadable_entry(client, aws) -> None:
    """An entry appended by hand (the console): no version, time, settings."""
    client.update_item(TableName=aws.targets.flags_table, Key={"feature": {"S": SQS}},
                       UpdateExpression="SET audit = list_append(audit, :bad)",
                       ExpressionAttributeValues={":bad": {"L": [{"M": {"note": {"S": "by hand"}}}]}})


def test_one_unreadable_audit_entry_is_reported_and_does_not_stop_a_rollout_moving_the_flag(store, client, aws,
                                                                                           caplog):
    """It made the whole trail unreadable: every stage on the flag failed (retried as an outage, the
    shift undone, the rollout rolled back), while a rollback, which reads no trail, still disabled it."""
    add_unreadable_entry(client, aws)
    bound = [FlagBinding(feature=SQS)]

    with caplog.at_level(logging.WARNING, logger="rollway.flags"):
        apply_bindings(store, bound, 5, actor="alice", now=2.0, rollout="r1")
    flag = store.get(SQS)
    assert (flag.enabled, flag.percentage) == (True, 5.0)
    assert f"{SQS!r}: its audit trail holds 1 entry rollway cannot read" in caplog.text
    assert "1st newest" in caplog.text, "the bad entry is named by its place"
    # The trail around it still counts: a kill switch thrown after the stage holds.
    set_flag(store, FlagChange(feature=SQS, enabled=False, reason="kill"), actor="oncall", now=3.0)
    assert apply_bindings(store, bound, 25, actor="alice", now=4.0, rollout="r1")[0].kept
    assert store.get(SQS).enabled is False


def test_flags_get_shows_the_entries_it_can_read_and_names_the_one_it_cannot(store, client, aws):
    add_unreadable_entry(client, aws)
    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=5), actor="erin", now=2.0)

    out, err = io.StringIO(), io.StringIO()
    assert flags_get(store, out, SQS, err=err) == EXIT_PARTIAL, "a script reading --json can tell it is not whole"
    assert "erin" in out.getvalue() and "seed" in out.getvalue()
    assert err.getvalue().startswith("warning: ") and "2nd newest" in err.getvalue(), err.getvalue()
    # A limit counts changes, read or not: the newest one is erin's, the next the unreadable one.
    out, err = io.StringIO(), io.StringIO()
    assert flags_get(store, out, SQS, err=err, audit=1) == EXIT_OK and "erin" in out.getvalue()


def test_flags_get_reads_the_flag_and_its_trail_once_whatever_audit_asks(store, client, aws):
    """`flags get --audit N` read the trail twice (the entries shown, then again for the hold line);
    the one read the hold needs now also gives the entries shown, and `--audit 0` shows none."""
    apply_bindings(store, [FlagBinding(feature=SQS)], 5, actor="alice", now=2.0, rollout="r1")
    add_unreadable_entry(client, aws)
    set_flag(store, FlagChange(feature=SQS, enabled=False, reason="kill"), actor="erin", now=3.0)
    reads: list[str] = []
    for audit in (0, 1, 2, 10):
        out, err = io.StringIO(), io.StringIO()
        with on_operation(client, "before-call", lambda model, **_: reads.append(model.name), operation=None):
            code = flags_get(store, out, SQS, err=err, audit=audit)
        assert reads == ["GetItem", "GetItem"], (audit, reads)
        reads.clear()
        changes = [line for line in out.getvalue().splitlines() if line.startswith("  v")]
        assert "held by rollout r1" in out.getvalue(), "the hold line needs no --audit"
        # A limit counts changes, read or not: the second newest is the unreadable one.
        assert [line.split()[0] for line in changes] == {0: [], 1: ["v3"], 2: ["v3"], 10: ["v3", "v2", "v1"]}[audit]
        assert (code == EXIT_PARTIAL) == (audit >= 2) and ("2nd newest" in err.getvalue()) == (audit >= 2), err.getvalue()


def test_a_rollout_promoted_past_a_kill_switch_frees_the_flag_in_dynamodb(store, client, aws):
    """On-call's `rollway flags set --no-enabled` at 5 % kept the flag off through the promotion, and
    every later rollout bound to it was refused as held by the promoted one."""
    bound = [FlagBinding(feature=SQS)]
    apply_bindings(store, bound, 5, actor="alice", now=2.0, rollout="edit-r1")
    out, err = io.StringIO(), io.StringIO()
    code = flags_set(store, out, SQS, err=err, actor="oncall", enabled=False, reason="bad writes", now=3.0)
    assert code == EXIT_OK, err.getvalue()
    for step, weight in enumerate((50, 100)):
        (update,) = apply_bindings(store, bound, weight, actor="alice", now=4.0 + step, rollout="edit-r1")
        assert update.kept, update

    assert not store.get(SQS).enabled
    check_bindings(store, bound, starting=True)  # the next release may start
    apply_bindings(store, bound, 5, actor="alice", now=7.0, rollout="edit-r2")
    assert (store.get(SQS).enabled, store.get(SQS).percentage) == (True, 5.0)


def test_a_table_holding_only_unusable_items_is_not_listed_as_holding_no_flags(aws, client):
    """`flags list` on a table whose only item rollway cannot use printed "no feature flags": read
    without its standard error (a script, `2>/dev/null`), the table was empty, though the
    application evaluates that flag (closed) and a `flags set` repairs it."""
    store = DynamoFlagStore(client, aws.targets)
    put_raw(client, aws, feature={"S": "typed"}, enabled={"BOOL": True}, percentage={"S": "50"})

    out, err = io.StringIO(), io.StringIO()
    assert flags_list(store, out, err=err) == EXIT_PARTIAL
    assert out.getvalue() == ("no feature flags rollway can read: 1 item it cannot use, named on standard error\n"), \
        out.getvalue()
    assert err.getvalue().startswith("warning: feature flag 'typed' is malformed"), err.getvalue()
    # An empty table is still said as one.
    client.delete_item(TableName=aws.targets.flags_table, Key={"feature": {"S": "typed"}})
    out, err = io.StringIO(), io.StringIO()
    assert flags_list(store, out, err=err) == EXIT_OK
    assert (out.getvalue(), err.getvalue()) == ("no feature flags\n", "")


def test_a_flag_table_dynamodb_failed_on_says_its_words_on_one_line_escaped(store, client, aws):
    """A rollout's flag step logs it and the ledger records it: DynamoDB's message went there raw,
    a line break beginning a log line of its own and an escape sequence acting on the terminal."""
    from botocore.exceptions import ClientError

    from rollway.flags import FlagStoreUnavailable

    def throttled(**_):
        raise ClientError({"Error": {"Code": "ThrottlingException",
                                     "Message": "Rate exceeded\n12:00:00 INFO flags done\x1b[2K"}}, "GetItem")

    with on_operation(client, "before-call", throttled, operation="GetItem"), \
            pytest.raises(FlagStoreUnavailable) as failed:
        store.get(SQS)
    assert str(failed.value) == (f"feature flag table {aws.targets.flags_table!r}: ThrottlingException: Rate exceeded "
                                 "12:00:00 INFO flags done\\x1b[2K"), str(failed.value)
