"""DynamoFlagStore against the embedded AWS (moto server): versions, audit, races, outages."""

from __future__ import annotations

import logging
import socket
import threading
from contextlib import contextmanager

import pytest

from blocks.credentials import client_factory, credentials_for_endpoint
from rollway.aws.flags import DynamoFlagStore
from rollway.flag_binding import FlagChange, apply_bindings, check_bindings, check_changes, disable_bindings, set_flag
from rollway.flags import (
    AUDIT_CAP,
    MAX_ACTOR,
    MAX_REASON,
    FlagConflict,
    FlagEvaluator,
    FlagState,
    FlagStoreUnavailable,
    InvalidPercentage,
    MissingUserId,
    UnknownFlag,
)
from rollway.spec import FlagBinding
from rollway.targets import Targets
from tasks.flags import store_unavailable

SQS = "use_sqs_architecture"
INTERRUPTS = "enable_interrupt_handling"
RESUMPTION = "enable_session_resumption"


@pytest.fixture
def client(aws):
    return aws.get_client("dynamodb")


@pytest.fixture
def store(aws, client) -> DynamoFlagStore:
    """The flags table with the seed's three flags, off, at version 1."""
    flags = DynamoFlagStore(client, aws.targets)
    for feature in (SQS, INTERRUPTS, RESUMPTION):
        flags.put(FlagState(feature=feature), expected_version=0, actor="seed", now=1.0)
    return flags


def test_flags_round_trip_with_versions_and_an_audit_trail(store, client, aws):
    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=5, reason="week 1"), actor="alice", now=10.0)
    set_flag(store, FlagChange(feature=SQS, percentage=25.5, reason="week 2"), actor="bob", now=20.0)
    got = store.get(SQS)
    assert (got.enabled, got.percentage, got.version, got.updated_by, got.updated_at) == (True, 25.5, 3, "bob", 20.0)
    assert [f.feature for f in store.list()] == sorted([SQS, INTERRUPTS, RESUMPTION])
    raw = client.scan(TableName=aws.targets.flags_table)["Items"]
    assert len(raw) == 3, "the audit trail lives in the flag items, not beside them"
    trail = store.audit(SQS)
    assert [(e.version, e.actor, e.reason, e.previous_percentage, e.percentage) for e in trail] == [
        (3, "bob", "week 2", 5.0, 25.5),
        (2, "alice", "week 1", 0.0, 5.0),
        (1, "seed", "", None, 0.0),
    ]
    assert store.get("no_such_flag") is None and store.audit("no_such_flag") == []


def test_the_audit_trail_is_capped(aws, client):
    capped = DynamoFlagStore(client, aws.targets, audit_cap=3)
    for version in range(5):
        capped.put(FlagState(feature=SQS, percentage=version), expected_version=version, actor="ops", now=float(version))
    assert [e.version for e in capped.audit(SQS)] == [5, 4, 3]


def written_up_to(store, client, aws, feature: str, version: int, *, reason: str, actor: str) -> None:
    """The flag as ``version - 1`` changes of ``reason`` by ``actor`` after the seed leave it.

    One change is written through the store; the item it wrote is then put back with that
    change's entry repeated up to ``version`` (each with its own version and time), so the trail
    is byte for byte what the writes would have left: a hundred 400 KB round trips to the
    embedded DynamoDB cost twenty seconds and test nothing the last few writes do not.
    """
    first = store.get(feature).version + 1
    set_flag(store, FlagChange(feature=feature, enabled=True, percentage=1, reason=reason), actor=actor, now=10.0)
    item = client.get_item(TableName=aws.targets.flags_table, Key={"feature": {"S": feature}},
                           ConsistentRead=True)["Item"]
    entry = item["audit"]["L"][-1]["M"]
    repeated = [{"M": {**entry, "version": {"N": str(v)}, "at": {"N": str(10.0 + v)}}} for v in range(first + 1, version + 1)]
    item["audit"]["L"] = [*item["audit"]["L"], *repeated][-AUDIT_CAP:]
    item["version"] = {"N": str(version)}
    client.put_item(TableName=aws.targets.flags_table, Item=item)
    assert store.get(feature).version == version and store.audit(feature, limit=1)[0].version == version


def test_the_longest_reasons_and_actors_keep_a_flag_writable_past_the_audit_cap(store, client, aws):
    """AUDIT_CAP entries of the longest reason and actor allowed stay under DynamoDB's 400 KB item limit."""
    written_up_to(store, client, aws, SQS, AUDIT_CAP, reason="r" * MAX_REASON, actor="a" * MAX_ACTOR)
    assert len(store.audit(SQS)) == AUDIT_CAP
    for i in range(5):
        set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=i % 2 + 2, reason="r" * MAX_REASON),
                 actor="a" * MAX_ACTOR, now=200.0 + i)
    assert store.get(SQS).version == AUDIT_CAP + 5
    assert len(store.audit(SQS)) == AUDIT_CAP


def test_an_item_written_by_the_seed_is_read_and_upgraded(store, client, aws):
    client.put_item(
        TableName=aws.targets.flags_table,
        Item={"feature": {"S": SQS}, "enabled": {"BOOL": True}, "percentage": {"N": "5"},
              "updatedAt": {"S": "2024-05-01T00:00:00.000Z"}},
    )
    legacy = store.get(SQS)
    assert (legacy.enabled, legacy.percentage, legacy.version) == (True, 5.0, 0)
    update = set_flag(store, FlagChange(feature=SQS, percentage=10), actor="ops", now=30.0)
    assert (update.after.version, update.after.salt, store.audit(SQS)[0].previous_percentage) == (1, "v1", 5.0)


def test_concurrent_writers_of_one_version_have_exactly_one_winner(store, aws):
    """Writers that all read version 1 before any of them writes: one wins, the rest are refused.

    Each writer waits at a barrier just before its PutItem, so the race is certain (a write that
    lost its condition would let several win) with few writers. They have a client of their own
    that waits long for moto: eight writers on the shared client's 10-s reads, on a CI machine of
    two cores running three test workers, once got no answer in time (``ReadUnanswered``).
    """
    import boto3
    from botocore.config import Config

    writers = 4
    patient = boto3.client(
        "dynamodb", endpoint_url=aws.endpoint_url, region_name=aws.targets.region, aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(read_timeout=120, max_pool_connections=writers,
                      retries={"mode": "standard", "total_max_attempts": 1}))
    racing = DynamoFlagStore(patient, aws.targets)
    all_read = threading.Barrier(writers, timeout=120)  # broken (the test fails) if one never writes

    def wait_for_every_read(**_) -> None:
        all_read.wait()  # and return None: an answer returned here would stand in for AWS's

    patient.meta.events.register("before-call.dynamodb.PutItem", wait_for_every_read)
    outcomes: list[object] = [None] * writers

    def write(i: int) -> None:
        try:
            outcomes[i] = racing.put(
                FlagState(feature=SQS, enabled=True, percentage=i), expected_version=1, actor=f"writer-{i}", now=5.0
            )
        except Exception as err:  # a conflict, or what the assertion below shows
            outcomes[i] = err

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if isinstance(o, FlagState)]
    assert len(winners) == 1 and sum(isinstance(o, FlagConflict) for o in outcomes) == writers - 1, outcomes
    stored = store.get(SQS)
    assert (stored.version, stored.percentage, stored.updated_by) == (2, winners[0].percentage, winners[0].updated_by)
    assert [e.version for e in store.audit(SQS)] == [2, 1], "losers left no audit entry"


def test_the_conditional_write_catches_a_change_after_the_read(store, client, aws):
    rival = DynamoFlagStore(client, aws.targets)

    def sneak_in(**_):
        # Runs between put()'s read and its PutItem: a rival write takes version 2.
        client.meta.events.unregister("before-call.dynamodb.PutItem", sneak_in)
        rival.put(FlagState(feature=SQS, enabled=True, percentage=50), expected_version=1, actor="rival", now=6.0)

    client.meta.events.register("before-call.dynamodb.PutItem", sneak_in)
    try:
        with pytest.raises(FlagConflict, match="expected version 1, found version 2") as raised:
            store.put(FlagState(feature=SQS, enabled=True, percentage=5), expected_version=1, actor="me", now=7.0)
    finally:
        client.meta.events.unregister("before-call.dynamodb.PutItem", sneak_in)
    assert raised.value.actual_version == 2
    assert (store.get(SQS).updated_by, store.get(SQS).percentage) == ("rival", 50.0)


@contextmanager
def puts_answer_lost(client, times: int = 1):
    """The answers of the next ``times`` PutItems are lost after they committed: botocore resends
    each at once, and the copy is refused by the version the first copy wrote."""
    lost = {"n": 0}

    def resend(response, **kwargs):
        if lost["n"] < times and response is not None and response[0].status_code == 200:
            lost["n"] += 1
            return 0  # retry now
        return None

    client.meta.events.register_first("needs-retry.dynamodb.PutItem", resend)
    try:
        yield lost
    finally:
        client.meta.events.unregister("needs-retry.dynamodb.PutItem", resend)


def test_a_write_whose_answer_was_lost_is_reported_as_made(store, client):
    """A person's change, or a stage's, whose PutItem committed and was resent: the refused copy
    is no concurrent change. It was taken for one: `flags set` said "unchanged" (or exit 3 with
    --expected-version), and a stage left the move out of its updates (the ledger, the put-back)."""
    with puts_answer_lost(client) as lost:
        update = set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=5), actor="alice", now=10.0,
                          expected_version=1)
    assert lost["n"] == 1
    assert update.describe() == f"{SQS}: off 0% -> on 5% (v2)"
    with puts_answer_lost(client) as lost:
        moved = apply_bindings(store, [FlagBinding(feature=SQS)], 25, actor="rollway", rollout="r1", now=20.0)
    assert lost["n"] == 1
    assert [u.describe() for u in moved] == [f"{SQS}: on 5% -> on 25% (v3)"]
    assert [(e.version, e.actor) for e in store.audit(SQS)] == [(3, "rollway"), (2, "alice"), (1, "seed")]


BAD_CHANGES = [
    ({"feature": SQS, "percentage": 100.5}, InvalidPercentage, []),
    ({"feature": SQS, "percentage": -3}, InvalidPercentage, []),
    ({"feature": SQS, "enabled": True, "actor": ""}, MissingUserId, []),
    ({"feature": "no_such_flag", "enabled": True}, UnknownFlag, ["GetItem"]),
]


def test_bad_input_writes_nothing_to_dynamodb(store, client, watch_calls):
    # One test over the cases: each provisioned account costs most of a second.
    for change, error, calls in BAD_CHANGES:
        seen = watch_calls(client)
        settings = dict(change)
        actor = settings.pop("actor", "ops")
        with pytest.raises(error):
            set_flag(store, FlagChange(**settings), actor=actor, now=9.0)
        assert seen == calls, change
    seen = watch_calls(client)
    with pytest.raises(UnknownFlag, match="typo_flag"):
        apply_bindings(store, [FlagBinding(feature=SQS), FlagBinding(feature="typo_flag")], 5, actor="r", rollout="r1", now=1.0)
    assert seen == ["GetItem", "GetItem"]
    assert store.get(SQS).version == 1 and store.get("no_such_flag") is None
    assert [e.version for e in store.audit(SQS)] == [1]



def test_checking_changes_reads_each_flag_once_however_many_changes_name_it(store, client, watch_calls):
    """A set-flags run that moves one flag twice (on at 5 %, then 25 %) and creates another then sets
    it: the check read the flag again for each change after its first, and left what it read
    unused (by then the flag was known to exist, or to be created). The writes read it themselves."""
    new = "enable_new_checkout"
    seen = watch_calls(client)
    check_changes(store, [FlagChange(feature=SQS, enabled=True, percentage=5), FlagChange(feature=SQS, percentage=25),
                          FlagChange(feature=new, create=True), FlagChange(feature=new, enabled=True),
                          FlagChange(feature=SQS, enabled=False)])
    assert seen == ["GetItem", "GetItem"], seen
    # Missing flags are named once each, however many changes name them.
    seen = watch_calls(client)
    with pytest.raises(UnknownFlag) as unknown:
        check_changes(store, [FlagChange(feature="typo_flag", enabled=True),
                              FlagChange(feature="typo_flag", percentage=5), FlagChange(feature=SQS, percentage=5)])
    assert unknown.value.features == ("typo_flag",) and seen == ["GetItem", "GetItem"], (unknown.value, seen)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_endpoint_or_a_missing_table_fails_closed_and_is_logged(client, aws, caplog):
    offline = client_factory(credentials_for_endpoint(f"http://127.0.0.1:{closed_port()}", aws.targets.region))
    unreachable = DynamoFlagStore(offline("dynamodb"), aws.targets)
    no_table = DynamoFlagStore(client, Targets(flags_table="no-such-flags-table"))
    with pytest.raises(FlagStoreUnavailable, match="no-such-flags-table.*ResourceNotFoundException"):
        set_flag(no_table, FlagChange(feature=SQS, enabled=True), actor="ops", now=1.0)
    with caplog.at_level(logging.WARNING, logger="rollway.flags"):
        for flags in (unreachable, no_table):
            assert FlagEvaluator(flags).is_enabled(SQS, "user-1") is False
        assert FlagEvaluator(no_table, on_unavailable="open").is_enabled(SQS, "user-1") is True
    warnings = [r.getMessage() for r in caplog.records]
    assert "unreachable: Could not connect to the endpoint URL" in warnings[0]
    assert warnings[0].endswith("answering off (fail closed) for 5 s")
    assert "ResourceNotFoundException" in warnings[1] and warnings[1].endswith("answering off (fail closed) for 5 s")
    assert warnings[2].endswith("answering on (fail open) for 5 s")


def test_a_rollouts_flag_store_names_a_missing_table_its_region_and_what_to_do(aws):
    """A rollout whose flags table is missing (misnamed in its targets block, or deleted mid-rollout)
    was refused, and its rollback paged, on DynamoDB's words ("feature flag table 'x':
    ResourceNotFoundException: Requested resource not found"), naming neither the region nor what to
    do, where the set-flags flow and `rollway flags` name both."""
    from flows.env import RunSession
    from rollway.clock import ClockSettings

    t = aws.targets
    flags = RunSession(t, None, aws.get_client).environment(ClockSettings()).flags
    aws.get_client("dynamodb").delete_table(TableName=t.flags_table)

    with pytest.raises(FlagStoreUnavailable) as missing:
        check_bindings(flags, [FlagBinding(feature=SQS)], starting=True)

    assert str(missing.value).startswith(
        f"the feature flag table {t.flags_table} (region {t.region}) does not exist: deploy the flags table's "
        "infrastructure (deploy_infrastructure), or name the table the feature flags are kept in as flags_table in "
        "the RollwayTargets block (DynamoDB "), missing.value
    assert not store_unavailable(missing.value), "refused again if asked again: not retried"
    # Said inside a rollback's line too, after the traffic moved back: not "nothing was written".
    assert "no flag was changed" in str(missing.value) and "nothing was written" not in str(missing.value), missing.value


def test_bound_flags_follow_the_stages_and_roll_back_in_dynamodb(store, client, watch_calls):
    bindings = [FlagBinding(feature=SQS), FlagBinding(feature=RESUMPTION, follow="schedule", schedule={50: 20.0})]
    clock = [0.0]
    flags = FlagEvaluator(store, clock=lambda: clock[0])
    users = [f"user-{i}" for i in range(4000)]
    shares = []
    for weight in (5, 25, 50, 75, 100):
        apply_bindings(store, bindings, weight, actor="rollout-1", rollout="r1", now=float(weight))
        clock[0] += 31
        shares.append(sum(flags.is_enabled(SQS, u) for u in users) / len(users))
    weights = [0.05, 0.25, 0.5, 0.75, 1.0]
    assert all(abs(share - w) < 0.025 for share, w in zip(shares, weights)), shares  # 4,000 users: ~3 sigma
    assert (store.get(RESUMPTION).enabled, store.get(RESUMPTION).percentage) == (True, 20.0)
    seen = watch_calls(client)
    assert apply_bindings(store, bindings, 100, actor="rollout-1", rollout="r1", now=101.0) == []
    assert "PutItem" not in seen, "re-applying a stage writes nothing"
    rolled_back = disable_bindings(store, bindings, actor="judge", reason="canary error rate 7%", now=200.0)
    assert sorted(c.feature for c in rolled_back) == [RESUMPTION, SQS]
    clock[0] += 31
    assert not any(flags.is_enabled(SQS, u) for u in users)
    assert store.audit(SQS, limit=1)[0].reason == "rollway rollback: canary error rate 7%"
    assert [e.percentage for e in reversed(store.audit(SQS))] == [0.0, 5.0, 25.0, 50.0, 75.0, 100.0, 100.0]


def test_running_a_rollback_again_leaves_on_a_flag_a_person_turned_back_on_after_it(store, caplog):
    """On-call turned a flag back on after the rollout's rollback disabled it; running that
    rollback again (to finish a step that failed) turned it off a second time, silently."""
    import io

    from rollway.flags_commands import EXIT_OK, flags_set

    bindings = [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)]
    apply_bindings(store, bindings, 25, actor="rollway", rollout="r1", now=10.0)
    first = disable_bindings(store, bindings, actor="rollway", reason="canary failed", now=20.0, rollout="r1")
    assert {u.feature for u in first} == {SQS, INTERRUPTS}
    out, err = io.StringIO(), io.StringIO()
    assert flags_set(store, out, SQS, err=err, actor="oncall", enabled=True, reason="stable needs it",
                     now=30.0) == EXIT_OK, err.getvalue()

    with caplog.at_level(logging.WARNING, logger="rollway.flags"):
        again = disable_bindings(store, bindings, actor="rollway", reason="canary failed", now=40.0, rollout="r1")

    flag = store.get(SQS)
    assert (flag.enabled, flag.updated_by) == (True, "oncall"), "the rollback run again undid on-call's re-enable"
    assert [u.feature for u in again] == [SQS] and not again[0].changed
    assert again[0].kept.startswith("oncall turned it back on after rollout r1's rollback disabled it")
    assert "oncall turned it back on after rollout r1's rollback" in caplog.text and "stable needs it" in caplog.text
    # Another rollout's rollback, and a re-enable made during the rollout, are still disabled.
    disable_bindings(store, bindings, actor="rollway", reason="other", now=50.0, rollout="r2")
    assert store.get(SQS).enabled is False


@pytest.mark.parametrize("first_rollout", ["r1", None])
def test_a_blind_rollback_run_again_leaves_on_a_flag_a_person_turned_back_on_after_a_rollback(store, first_rollout):
    """The rollback flow run by hand once the ledger has closed the rollout (or without one) knows
    no rollout: it disabled a flag on-call had turned back on after the first rollback, though the
    flag's audit trail shows no rollout moving it since that rollback."""
    import io

    from rollway.flags_commands import EXIT_OK, flags_set

    bindings = [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)]
    apply_bindings(store, bindings, 25, actor="rollway", rollout="r1", now=10.0)
    disable_bindings(store, bindings, actor="rollway", reason="canary failed", now=20.0, rollout=first_rollout)
    out, err = io.StringIO(), io.StringIO()
    assert flags_set(store, out, SQS, err=err, actor="oncall", enabled=True, reason="stable needs it",
                     now=30.0) == EXIT_OK, err.getvalue()

    again = disable_bindings(store, bindings, actor="carol", reason="make sure", now=40.0)

    flag = store.get(SQS)
    assert (flag.enabled, flag.updated_by, flag.version) == (True, "oncall", 4), "the blind rollback undid oncall"
    assert [u.feature for u in again] == [SQS] and "oncall turned it back on after" in again[0].kept
    assert "stable needs it" in again[0].kept
    # A flag a rollout moved after the rollback is its to disable, blind or not.
    apply_bindings(store, bindings, 5, actor="rollway", rollout="r2", now=50.0)
    disable_bindings(store, bindings, actor="carol", reason="r2 failed", now=60.0)
    assert store.get(SQS).enabled is False and store.get(INTERRUPTS).enabled is False


def test_a_change_whose_every_answer_was_lost_may_have_been_written_and_says_so(store, client, aws):
    """The PutItem reached DynamoDB and committed; its answer never came back. `flags set` said the
    table was "unreachable" (exit 4) with no word that the change may have landed, and a person
    set it again or took it as not made. A connection never made still says nothing was written."""
    import io

    from botocore.exceptions import ReadTimeoutError

    from rollway.flags_commands import EXIT_UNAVAILABLE, flags_set
    from tests.botocore_events import on_operation

    def lose_answer(**_):  # PutItem went through on the embedded AWS; its answer never arrives
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    out, err = io.StringIO(), io.StringIO()
    with on_operation(client, "after-call", lose_answer, operation="PutItem"):
        code = flags_set(store, out, SQS, err=err, actor="alice", enabled=True, percentage=5, now=10.0)
    assert code == EXIT_UNAVAILABLE and out.getvalue() == ""
    said = err.getvalue()
    assert "may have been written" in said and f"`rollway flags get {SQS}`" in said, said
    assert store.get(SQS).percentage == 5.0, "what the message allows for did happen"
    offline = client_factory(credentials_for_endpoint(f"http://127.0.0.1:{closed_port()}", aws.targets.region))
    err = io.StringIO()
    code = flags_set(DynamoFlagStore(offline("dynamodb"), aws.targets), io.StringIO(), SQS, err=err, actor="alice",
                     percentage=25, now=11.0)
    assert code == EXIT_UNAVAILABLE and "may have been written" not in err.getvalue(), err.getvalue()


def refusing(client, answered: int = 0):
    """The endpoint refuses every connection of ``client`` (after ``answered`` calls): nothing is sent
    (raised before botocore's own retries, which would wait up to a second each)."""
    from botocore.exceptions import EndpointConnectionError

    from tests.botocore_events import on_operation

    calls: list[int] = []

    def refuse(**_):
        calls.append(1)
        if len(calls) > answered:
            raise EndpointConnectionError(endpoint_url="http://dynamodb")

    return on_operation(client, "before-call", refuse, operation=None)


def test_a_retry_of_a_write_whose_answer_was_lost_that_cannot_reach_the_table_may_have_written_it(store, client):
    """A change's PutItem was sent and its answer lost; a task's retry of it then found the endpoint
    refusing connections before it sent anything. It said the table was "unreachable" alone, read as
    "not written", though the first attempt may have written it. Another write of the flag, refused the
    same way, was never sent, and says nothing of the first; an answer to the write settles it."""
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    from rollway.flags import FlagWriteUnanswered
    from tests.botocore_events import on_operation

    def lose_answer(**_):  # lost on the way (nothing written), as far as the sender can tell
        raise ReadTimeoutError(endpoint_url="http://dynamodb")

    change = FlagChange(feature=SQS, enabled=True, percentage=5, reason="week 1")
    with on_operation(client, "before-call", lose_answer, operation="PutItem"), pytest.raises(FlagWriteUnanswered):
        set_flag(store, change, actor="alice", now=10.0)
    with refusing(client):
        with pytest.raises(FlagWriteUnanswered, match="Could not connect to the endpoint URL.*, after an earlier "
                           "attempt's PutItem on 'use_sqs_architecture' was sent and its answer lost; the change to "
                           "'use_sqs_architecture' may have been written all the same") as retried:
            set_flag(store, change, actor="alice", now=10.0)  # the retry stops at its first read
        assert isinstance(retried.value.__cause__, EndpointConnectionError), "retried again as an outage"
        with pytest.raises(FlagWriteUnanswered):  # or at the write's own read
            store.put(FlagState(feature=SQS, enabled=True, percentage=5), expected_version=1, actor="alice",
                      now=10.0, reason="week 1")
        for other, now in ((FlagChange(feature=SQS, enabled=False, reason="week 1"), 10.0), (change, 11.0)):
            with pytest.raises(FlagStoreUnavailable) as refused:
                set_flag(store, other, actor="alice", now=now)
            assert not isinstance(refused.value, FlagWriteUnanswered), refused.value
    assert set_flag(store, change, actor="alice", now=10.0).describe() == f"{SQS}: off 0% -> on 5% (v2)"
    with refusing(client), pytest.raises(FlagStoreUnavailable) as refused:
        set_flag(store, change, actor="alice", now=10.0)
    assert not isinstance(refused.value, FlagWriteUnanswered), "the write was answered: it is settled"


@contextmanager
def answer_lost_once(client):
    """The next PutItem of ``client`` goes through on the embedded AWS; its answer never arrives."""
    from botocore.exceptions import ReadTimeoutError

    from tests.botocore_events import on_operation

    lost: list[str] = []

    def lose_answer(**_):
        if not lost:
            lost.append("PutItem")
            raise ReadTimeoutError(endpoint_url="http://dynamodb")

    with on_operation(client, "after-call", lose_answer, operation="PutItem"):
        yield lost


@pytest.mark.parametrize("answered", [0, 1, 2], ids=["check", "flag", "trail"])
def test_a_retried_stage_whose_write_lost_its_answer_and_cannot_reach_the_table_may_have_moved_the_flag(
        store, client, answered):
    """A stage's PutItem moving a bound flag committed and its answer was lost; the task's retry of
    the stage then found the endpoint refusing connections at a read before its write (the check of
    the bindings, the flag's or its trail's). The stage failed with the table "unreachable" alone, as
    if the flag had not moved, though it had (set-flags said so)."""
    from botocore.exceptions import EndpointConnectionError

    from rollway.flags import FlagWriteUnanswered

    bindings = [FlagBinding(feature=SQS)]
    with answer_lost_once(client) as lost, pytest.raises(FlagWriteUnanswered):
        apply_bindings(store, bindings, 25, actor="rollway", rollout="r1", now=10.0)
    assert lost == ["PutItem"] and store.get(SQS).percentage == 25.0
    with refusing(client, answered):
        with pytest.raises(FlagWriteUnanswered, match="Could not connect to the endpoint URL.*, after an earlier "
                           "attempt's PutItem on 'use_sqs_architecture' was sent and its answer lost; the change to "
                           "'use_sqs_architecture' may have been written all the same") as retried:
            apply_bindings(store, bindings, 25, actor="rollway", rollout="r1", now=10.0)
        assert isinstance(retried.value.__cause__, EndpointConnectionError), "retried again as an outage"
        # The next stage, refused the same way, sent nothing and says nothing of the first.
        with pytest.raises(FlagStoreUnavailable) as refused:
            apply_bindings(store, bindings, 50, actor="rollway", rollout="r1", now=20.0)
        assert not isinstance(refused.value, FlagWriteUnanswered), refused.value


def test_a_retried_rollback_whose_disable_lost_its_answer_and_cannot_reach_the_table_may_have_disabled_it(store,
                                                                                                         client):
    """The rollback's disable goes through set_flag's read, which tells a retry of a write whose
    answer was lost: its failure says the flag may have been disabled all the same."""
    from rollway.flag_binding import FlagsNotDisabled

    bindings = [FlagBinding(feature=SQS)]
    apply_bindings(store, bindings, 25, actor="rollway", rollout="r1", now=10.0)
    with answer_lost_once(client), pytest.raises(FlagsNotDisabled, match="may have been written all the same"):
        disable_bindings(store, bindings, actor="judge", reason="error rate", now=20.0, rollout="r1")
    with refusing(client), pytest.raises(FlagsNotDisabled) as retried:
        disable_bindings(store, bindings, actor="judge", reason="error rate", now=20.0, rollout="r1")
    assert "Could not connect to the endpoint URL" in str(retried.value), retried.value
    assert f"the change to '{SQS}' may have been written all the same" in str(retried.value), retried.value
    assert store.get(SQS).enabled is False, "what the failure allows for did happen"



def test_a_change_whose_lost_answer_is_read_back_on_its_retry_is_reported_written_not_unchanged(store, client):
    """The change's PutItem committed and its answer was lost; the retry of the same write then
    found the flag at its settings and reported it "unchanged": a person read that nothing was
    changed, though this run had changed it. Another write finding the flag so is unchanged."""
    import io

    from rollway.flags import FlagWriteUnanswered
    from rollway.flags_commands import EXIT_OK, EXIT_UNAVAILABLE, flags_set

    change = FlagChange(feature=SQS, enabled=True, percentage=5, reason="week 1")
    with answer_lost_once(client), pytest.raises(FlagWriteUnanswered):
        set_flag(store, change, actor="alice", now=10.0)
    update = set_flag(store, change, actor="alice", now=10.0)
    assert update.changed, update
    assert update.describe() == f"{SQS}: written (its answer was lost; read back): off 0% -> on 5% (v2)"
    assert [(e.version, e.reason) for e in store.audit(SQS)] == [(2, "week 1"), (1, "")], "the trail as it is"
    assert not set_flag(store, change, actor="alice", now=10.0).changed, "read back once: settled"
    assert not set_flag(store, change, actor="bob", now=11.0).changed

    out, err = io.StringIO(), io.StringIO()
    with answer_lost_once(client):
        code = flags_set(store, out, INTERRUPTS, err=err, actor="alice", enabled=True, now=30.0)
    assert code == EXIT_UNAVAILABLE and "may have been written" in err.getvalue(), err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert flags_set(store, out, INTERRUPTS, err=err, actor="alice", enabled=True, now=30.0) == EXIT_OK
    assert out.getvalue().startswith(f"{INTERRUPTS}: written (its answer was lost; read back): off 0% -> on 0% (v2)\n"
                                     f"note: {INTERRUPTS} is on at 0%"), out.getvalue()


def test_a_retried_stage_whose_lost_write_landed_records_the_move_from_where_the_flag_was(store, client):
    """A stage's PutItem moving a bound flag 5% -> 25% committed and its answer was lost; the task's
    retry of the stage found the flag at 25%, this rollout's write, and returned nothing: the ledger
    recorded no move for the stage, and where the flag had been before it (5%) was nowhere."""
    from rollway.flag_binding import flag_transition
    from rollway.flags import FlagWriteUnanswered

    bindings = [FlagBinding(feature=SQS)]
    apply_bindings(store, bindings, 5, actor="rollway", rollout="r1", now=5.0)
    with answer_lost_once(client) as lost, pytest.raises(FlagWriteUnanswered):
        apply_bindings(store, bindings, 25, actor="rollway", rollout="r1", now=10.0)
    assert lost == ["PutItem"] and store.get(SQS).percentage == 25.0
    retried = apply_bindings(store, bindings, 25, actor="rollway", rollout="r1", now=10.0)
    assert [u.describe() for u in retried] == [f"{SQS}: written (its answer was lost; read back): on 5% -> on 25% (v3)"]
    assert (retried[0].before.enabled, retried[0].before.percentage) == (True, 5.0), retried[0].before
    assert flag_transition(retried[0], at=10.0, actor="rollway").comment.startswith(
        f"{SQS}: written (its answer was lost; read back): on 5% -> on 25% (v3): rollout r1 stage 25%")
    assert [e.version for e in store.audit(SQS)] == [3, 2, 1], "written once: the retry wrote nothing"
    # Tried again at the same instant, the stage is still this try's (a retry after a later failure reports
    # the move, for its put-back and the ledger), but no longer a read back: settled.
    again = apply_bindings(store, bindings, 25, actor="rollway", rollout="r1", now=10.0)
    assert not any(u.read_back for u in again), "read back once: settled"
    assert [e.version for e in store.audit(SQS)] == [3, 2, 1], "nothing written"


def test_a_retried_stage_puts_a_read_back_flag_back_where_it_was_when_another_cannot_follow(store, client):
    """The retry read back the first flag's lost write (5% -> 25%), then the second flag's write was
    refused: the stage puts the flags it moved back as they were before it. Without the flag's
    before, the first was turned off rather than put back on at 5%, the stage the traffic is at."""
    from botocore.exceptions import ClientError

    from rollway.flags import FlagWriteUnanswered
    from tests.botocore_events import on_operation

    bindings = [FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)]
    apply_bindings(store, bindings, 5, actor="rollway", rollout="r1", now=5.0)
    with answer_lost_once(client), pytest.raises(FlagWriteUnanswered):
        apply_bindings(store, bindings, 25, actor="rollway", rollout="r1", now=10.0)

    def refuse_interrupts(params, **_):
        if params["Item"]["feature"]["S"] == INTERRUPTS:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "PutItem")

    with on_operation(client, "before-parameter-build", refuse_interrupts, operation="PutItem"), \
            pytest.raises(FlagStoreUnavailable, match="AccessDenied"):
        apply_bindings(store, bindings, 25, actor="rollway", rollout="r1", now=10.0)
    put_back = store.get(SQS)
    assert (put_back.enabled, put_back.percentage) == (True, 5.0), put_back
    assert (store.get(INTERRUPTS).enabled, store.get(INTERRUPTS).percentage) == (True, 5.0)


@pytest.mark.parametrize("kind", ["dynamodb", "fake"])
def test_a_rollout_id_that_is_not_utf8_is_refused_before_any_write(store, kind):
    """A rollout's write stores its id in the audit entry: DynamoDB's store failed building the
    request (a serialisation error, no flag error) and the fake stored it as given."""
    from rollway.fakes import FakeFlagStore
    from rollway.flags import InvalidFlagInput

    flags = store if kind == "dynamodb" else FakeFlagStore([FlagState(feature=SQS)])
    before = flags.get(SQS)
    rollout = b"r-2026\xff".decode("utf-8", "surrogateescape")
    with pytest.raises(InvalidFlagInput, match="the rollout id 'r-2026\\\\udcff' is not valid UTF-8 text"):
        flags.put(FlagState(feature=SQS, enabled=True, percentage=5.0), expected_version=before.version,
                  actor="rollway", now=10.0, reason="stage 5%", writer="rollout", rollout=rollout)
    assert flags.get(SQS) == before


def test_a_flag_change_dynamodb_throttles_says_nothing_was_written_and_to_run_it_again(store, client):
    """On-call turns a flag off mid-rollout (or frees a dead run's hold on one) and DynamoDB throttles
    the write past botocore's retries.
    The command said only DynamoDB's words ("ProvisionedThroughputExceededException: ..."), with no
    word of whether the flag had gone off, nor what to do: the refused write changed nothing."""
    import io

    from botocore.exceptions import ClientError

    from rollway.flags_commands import EXIT_UNAVAILABLE, flags_release, flags_set
    from tests.botocore_events import on_operation

    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=25), actor="rollway", now=5.0)

    def throttle(**_):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": (
            "The level of configured provisioned throughput for the table was exceeded.")}}, "PutItem")

    apply_bindings(store, [FlagBinding(feature=INTERRUPTS)], 5, actor="rollway", now=6.0, rollout="r1")
    commands = {
        "set": lambda out, err: flags_set(store, out, SQS, err=err, actor="oncall", enabled=False, now=10.0),
        # Freeing a dead run's hold, throttled alike.
        "release": lambda out, err: flags_release(store, out, INTERRUPTS, err=err, rollout="r1", actor="oncall",
                                                  reason="its run died", enabled=False, now=10.0),
    }
    for name, command in commands.items():
        out, err = io.StringIO(), io.StringIO()
        with on_operation(client, "before-parameter-build", throttle, operation="PutItem"):
            code = command(out, err)
        said = err.getvalue()
        assert code == EXIT_UNAVAILABLE and out.getvalue() == "" and said.count("\n") == 1, (name, said)
        assert "ProvisionedThroughputExceededException" in said, said
        feature = SQS if name == "set" else INTERRUPTS
        assert f"nothing was written: {feature} is as it was" in said and "run the command again" in said, said
        assert "may have been written" not in said, said
    assert store.get(SQS).enabled is True, "what the message says: the flag is still on"
    assert store.get(INTERRUPTS).version == 2, "and the hold is not freed"
