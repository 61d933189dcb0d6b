"""DynamoLedger on moto: the shared Ledger contract, plus what only DynamoDB has (item layout,
the provisioned table, no request for a refused change).

The contract runs on a moto server that answers one request at a time. DynamoDB applies
each request atomically; moto 5.2.5 does not: it writes without a lock, and a cancelled
transaction puts back a copy of the whole table taken when it began, which can erase a
concurrent winner. Measured with this ledger on the threaded embedded server: two threads
appending 20 entries each lost entries in 54 of 100 runs, and 8 of 100 pairs of racing
creates did not end with exactly one winner stored. Serving requests one by one gives back
per-request atomicity without touching moto, while the clients still race exactly as two
runs would: read, decide, write.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Iterator

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from blocks.credentials import client_factory, credentials_for_endpoint
from rollway.aws.ledger import POINTER_ID, DynamoLedger, _values
from rollway.ledger import MalformedRollout, RolloutClosed, RolloutRecord, begin_rollback
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.targets import Targets
from tests.unit.test_fake_ledger import (LEASE, SERVICE, START, LedgerContract, RollbackClaimContract, finish,
                                         recorded, started, step, together)


@pytest.fixture(scope="module")
def one_at_a_time_endpoint() -> Iterator[str]:
    """moto's server app on 127.0.0.1, serving one request at a time (see the module docstring)."""
    server = make_server(
        "127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=False,
        request_handler=MotoRequestHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def dynamodb(one_at_a_time_endpoint: str) -> Any:
    region = Targets().region
    return client_factory(credentials_for_endpoint(one_at_a_time_endpoint, region))("dynamodb")


@pytest.fixture
def ledger_targets(dynamodb: Any) -> Iterator[Targets]:
    """Targets naming a fresh rollouts table with the key schema the topology provisions."""
    targets = Targets(rollouts_table=f"webordinary-rollouts-{uuid.uuid4().hex[:8]}")
    dynamodb.create_table(
        TableName=targets.rollouts_table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "service", "KeyType": "HASH"}, {"AttributeName": "rollout_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "service", "AttributeType": "S"},
            {"AttributeName": "rollout_id", "AttributeType": "S"},
        ],
    )
    yield targets
    dynamodb.delete_table(TableName=targets.rollouts_table)


class TestDynamoLedger(LedgerContract, RollbackClaimContract):
    @pytest.fixture
    def ledger(self, dynamodb: Any, ledger_targets: Targets) -> DynamoLedger:
        return DynamoLedger(dynamodb, ledger_targets)

    def refused_already(self, ledger: DynamoLedger, rollout_id: str, answers: list[Any]) -> None:
        """The list ``refuse``'s appends would leave, set in one UpdateItem, in the form ``refuse``
        writes: 199 appends to one growing item, each answered with the whole item, took the bound's
        test 65 s of a loaded machine (and 300 s once). The test still appends the last one the
        bound lets in, and reads the whole list back."""
        from rollway.aws.ledger import _head_mark
        from rollway.ledger import RefusedAnswer

        # Each recorded after the history as it stands, as refuse records it (``recorded_after``); an
        # earlier rollway's, given as its JSON, as it wrote them.
        after = len(ledger.get(SERVICE).history)
        answers = [recorded(a, after) if isinstance(a, RefusedAnswer) else a for a in answers]
        # The count's mark of the oldest answer kept, as refuse writes it with the count.
        head = _head_mark(RefusedAnswer.model_validate(answers[0])) if answers else ""
        ledger._client.update_item(
            TableName=ledger._table, Key=_values({"service": SERVICE, "rollout_id": rollout_id}),
            UpdateExpression="SET refused_answers = :answers, refused_counted_head = :head",
            ConditionExpression="attribute_exists(rollout_id)",
            ExpressionAttributeValues=_values({":answers": answers, ":head": head}))

    def count_made_stale(self, ledger: DynamoLedger, rollout_id: str) -> None:
        """The count's mark of the oldest answer kept removed, as a drop by a rollway from before the
        count leaves it stale: ``_from_item`` reads the count as not known."""
        from rollway.aws.ledger import COUNTED_HEAD

        ledger._client.update_item(TableName=ledger._table, Key=_values({"service": SERVICE, "rollout_id": rollout_id}),
                                   UpdateExpression=f"REMOVE {COUNTED_HEAD}")

    def test_a_refused_change_sends_no_request(self, ledger, dynamodb, watch_calls):
        started(ledger)
        calls = watch_calls(dynamodb)
        with pytest.raises(ValueError, match="stage"):
            ledger.record(SERVICE, owner="run-1", now=START, transition=step(START), stage=3)
        assert calls == []

    def test_items_hold_maps_exact_numbers_and_a_pointer_to_the_newest(self, ledger, dynamodb, ledger_targets):
        first = started(ledger, weights=Weights.canary_at(5))
        ledger.record(SERVICE, owner="run-1", now=START + 0.5, transition=step(START + 0.5, to_weights=Weights.canary_at(25)))
        finish(ledger, START + 1)
        second = started(ledger, now=START + 10, owner="run-2")

        items = dynamodb.query(
            TableName=ledger_targets.rollouts_table,
            KeyConditionExpression="service = :s",
            ExpressionAttributeValues={":s": {"S": SERVICE}},
        )["Items"]
        by_id = {item["rollout_id"]["S"]: item for item in items}
        assert set(by_id) == {first.rollout_id, second.rollout_id, POINTER_ID}
        assert by_id[POINTER_ID]["current"] == {"S": second.rollout_id}
        stored = by_id[first.rollout_id]
        assert stored["weights"] == {"M": {"stable": {"N": "95"}, "canary": {"N": "5"}}}
        assert stored["lease_expires"] == {"N": str(START + LEASE)}
        shift = stored["history"]["L"][0]["M"]
        assert shift["at"] == {"N": str(START + 0.5)} and "canary" in shift["to_weights"]["M"]
        assert "from_weights" not in shift and "canary_task_definition" not in stored  # None: absent
        assert stored["phase"] == {"S": RolloutPhase.PROMOTED.value}
        # The pointer sorts after every rollout id, yet is never taken for a rollout.
        assert ledger.get(SERVICE) == second
        assert [r.rollout_id for r in ledger.history(SERVICE)] == [second.rollout_id, first.rollout_id]


def test_the_provisioned_rollouts_table_keeps_the_ledger(aws):
    """The table the embedded topology provisions (and a real account has) fits the ledger."""
    ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    created = started(ledger)
    written = ledger.record(
        SERVICE, owner="run-1", now=START + 1, transition=step(START + 1), stage_index=0, weights=Weights.canary_at(5)
    )
    assert ledger.get(SERVICE) == written
    assert written.history == (step(START + 1),) and written.version == created.version + 1
    assert isinstance(ledger.history(SERVICE)[0], RolloutRecord)


def test_the_flow_run_an_entry_names_outlives_the_lease_and_old_entries_read_without_one(dynamodb, ledger_targets):
    """The owner (a flow run) is on the item only while it holds the lease: once released, the
    reports could name no run that drove the rollout. An entry's ``run`` stays; entries written
    before it was kept (no attribute) still read, as None."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    started(ledger)
    run = "russet-spoonbill (2ddcc4ef-24fb-4e82-b796-38b8f8a1ed3d)"
    ledger.record(SERVICE, owner="run-1", now=START + 1, transition=step(START + 1, "pause", run=run))
    ledger.release(SERVICE, owner="run-1")
    stored = ledger.get(SERVICE)
    assert stored.owner is None
    assert [(t.kind, t.run) for t in stored.history] == [("pause", run)]
    old = dynamodb.get_item(TableName=ledger_targets.rollouts_table,
                            Key={"service": {"S": SERVICE}, "rollout_id": {"S": stored.rollout_id}})["Item"]
    assert old["history"]["L"][0]["M"]["run"] == {"S": run}
    del old["history"]["L"][0]["M"]["run"]  # as an entry written before runs were kept
    dynamodb.put_item(TableName=ledger_targets.rollouts_table, Item=old)
    assert ledger.get(SERVICE).history[0].run is None


NOT_UTF8 = b"role web\xff".decode("utf-8", "surrogateescape")  # a byte that is not UTF-8, as Python decodes it


def resent_once(dynamodb: Any, write: Any) -> Any:
    """``write()`` with the answer of its first UpdateItem lost: botocore sends that one again."""
    lost = {"n": 0}

    def answer_lost_once(response, **kwargs):
        if lost["n"] == 0:  # the first UpdateItem was applied; botocore is told to retry it at once
            lost["n"] += 1
            return 0
        return None

    dynamodb.meta.events.register_first("needs-retry.dynamodb.UpdateItem", answer_lost_once)
    try:
        return write()
    finally:
        dynamodb.meta.events.unregister("needs-retry.dynamodb.UpdateItem", answer_lost_once)
        assert lost["n"] == 1


def test_a_resent_update_whose_first_copy_committed_records_its_transition_once(dynamodb, ledger_targets):
    """botocore resends an UpdateItem whose answer was lost (a timeout, a 500 after the commit):
    list_append would append the transition twice. The version condition refuses the copy, and
    record returns the item, which holds the transition once."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    started(ledger)
    stored = resent_once(dynamodb, lambda: ledger.record(SERVICE, owner="run-1", now=START + 1,
                                                         transition=step(START + 1), weights=Weights.canary_at(5)))
    assert [t.kind for t in stored.history] == ["shift"] and stored.version == 2
    assert ledger.get(SERVICE) == stored


def test_a_resent_refused_answer_is_appended_once(dynamodb, ledger_targets):
    """list_append is not idempotent: the length condition refuses the resent copy, and refuse
    returns the item, which holds the answer once."""
    from rollway.ledger import RefusedAnswer

    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    answer = RefusedAnswer(at=START + 1, actor="erin", action="approve", reason=f"timed out {NOT_UTF8}")
    stored = resent_once(dynamodb, lambda: ledger.refuse(SERVICE, rollout=first.rollout_id, answer=answer))
    assert len(stored.refused_answers) == 1 and ledger.get(SERVICE) == stored


def test_a_refused_answer_appended_while_the_run_appends_and_writes_its_own_keeps_both(dynamodb, ledger_targets):
    """`rollway promote` refuses an answer (the pause timed out) as the paused run refuses another
    (a next_weight that is no stage) and records its next step: the run set the list whole from
    what it had read, and dropped the command's entry. Appended, both are kept, and the run's
    version-conditioned write still lands."""
    from rollway.ledger import RefusedAnswer

    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    by_run = RefusedAnswer(at=START + 1, actor="dana", action="approve", next_weight=5, reason="no later stage")
    by_cli = RefusedAnswer(at=START + 1, actor="erin", action="reject", reason="answered first by dana")
    # The command's append lands between the run's read of the list and its own write.
    raced = {"n": 0}

    def command_first(params, **kwargs):
        if raced["n"] == 0 and "refused_answers" in params.get("UpdateExpression", ""):
            raced["n"] += 1
            ledger.refuse(SERVICE, rollout=first.rollout_id, answer=by_cli)

    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", command_first)
    try:
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=by_run)
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", command_first)
    assert raced["n"] == 1
    assert set(ledger.get(SERVICE).refused_answers) == {recorded(by_run), recorded(by_cli)}
    # And all at once, with the run's lease-held write: nothing lost, nothing twice.
    more = [RefusedAnswer(at=START + 2 + i, actor=f"p{i}", action="hold", reason="timed out") for i in range(4)]
    outcomes = together(*(lambda a=a: ledger.refuse(SERVICE, rollout=first.rollout_id, answer=a) for a in more),
                        lambda: ledger.record(SERVICE, owner="run-1", now=START + 3, transition=step(START + 3)))
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    stored = ledger.get(SERVICE)
    # Each recorded after the history as read, the run's entry written before or after that read.
    assert {r.recorded_after for r in stored.refused_answers} <= {0, 1}
    assert len(stored.refused_answers) == 6 and {recorded(r) for r in stored.refused_answers} == set(
        map(recorded, (by_run, by_cli, *more)))
    assert [t.kind for t in stored.history] == ["shift"] and stored.version == first.version + 1


def test_text_that_is_not_utf8_is_written_escaped(dynamodb, ledger_targets):
    """A rollback's stop records the step that failed in AWS's words, which may echo a name holding
    a byte that is not UTF-8: DynamoDB's request could not be encoded, and the rollback failed on
    the write instead of saying which step to finish. The text is stored with the byte escaped."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    started(ledger)
    comment = f"restore failed: {NOT_UTF8} is not authorized to perform: ecs:UpdateService"
    stored = ledger.record(SERVICE, owner="run-1", now=START + 1, transition=step(START + 1, comment=comment))
    assert stored.history[-1].comment == comment.replace(NOT_UTF8, "role web\\udcff")
    assert ledger.get(SERVICE) == stored


def test_a_resent_update_whose_text_is_not_utf8_records_its_transition_once(dynamodb, ledger_targets):
    """The resent copy of a committed write is known by its transition in the history read back,
    which holds the text escaped: compared with the text as written, it was taken for another
    run's write and the transition was appended a second time."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    started(ledger)
    comment = f"restore failed: {NOT_UTF8} is not authorized"
    stored = resent_once(dynamodb, lambda: ledger.record(SERVICE, owner="run-1", now=START + 1,
                                                         transition=step(START + 1, comment=comment)))
    assert [t.kind for t in stored.history] == ["shift"] and stored.version == 2
    assert ledger.get(SERVICE) == stored


def test_a_rollout_starts_after_the_newest_rollouts_item_was_deleted(dynamodb, ledger_targets):
    """A person deletes the newest rollout's item (the way out of a corrupt record): the
    pointer still names it, and no create could ever pass its pointer condition again. The
    create replaces a pointer to a rollout that does not exist, on condition that it still
    does not and that the pointer still names it."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    table = ledger_targets.rollouts_table

    def delete(record: RolloutRecord) -> None:
        dynamodb.delete_item(TableName=table, Key={"service": {"S": SERVICE}, "rollout_id": {"S": record.rollout_id}})

    def pointer() -> dict:
        return dynamodb.get_item(TableName=table, Key={"service": {"S": SERVICE}, "rollout_id": {"S": POINTER_ID}})["Item"]

    first = started(ledger)
    finish(ledger, START + 1, RolloutPhase.ROLLED_BACK)
    second = started(ledger, now=START + 10, owner="run-2")
    finish(ledger, START + 11, RolloutPhase.ROLLED_BACK)
    delete(second)  # an older rollout is left: it is the newest now
    third = started(ledger, now=START + 20, owner="run-3")
    assert ledger.get(SERVICE) == third and pointer()["current"] == {"S": third.rollout_id}
    finish(ledger, START + 21, RolloutPhase.ROLLED_BACK)
    delete(third)
    delete(first)  # none is left
    fourth = started(ledger, now=START + 30, owner="run-4")
    assert ledger.history(SERVICE) == [fourth] and pointer()["current"] == {"S": fourth.rollout_id}


def test_a_rollback_start_refused_when_another_rollback_ends_the_rollout_between_its_read_and_its_write(
        dynamodb, ledger_targets):
    """`rollway abort` reads the rollout open; the judge's rollback records its end just before the
    abort's UpdateItem. The write's version condition refuses it, and the item it was refused on
    names who rolled back: the abort does not reopen the rollout (and so does not act again)."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    raced = {"done": False}

    def judge_finishes_first(**kwargs):
        if not raced["done"]:
            raced["done"] = True  # before the judge's own write, which fires this event too
            begin_rollback(ledger, SERVICE, actor="judge", reason="5xx", now=START + 1, rollout=first.rollout_id)
            ledger.record(SERVICE, owner=None, now=START + 2, transition=step(START + 2, "rollback", "judge"),
                          phase=RolloutPhase.ROLLED_BACK, rollout=first.rollout_id)

    dynamodb.meta.events.register_first("before-call.dynamodb.UpdateItem", judge_finishes_first)
    try:
        with pytest.raises(RolloutClosed, match="already rolled back by judge at"):
            begin_rollback(ledger, SERVICE, actor="erin", reason="errors", now=START + 3, rollout=first.rollout_id)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.UpdateItem", judge_finishes_first)
    stored = ledger.get(SERVICE)
    assert stored.phase is RolloutPhase.ROLLED_BACK
    assert [(t.kind, t.actor) for t in stored.history] == [("rollback-start", "judge"), ("rollback", "judge")]


@pytest.mark.parametrize("phase", ["paused-ish", "failed"])
def test_an_item_rollway_cannot_read_is_named_not_a_validation_traceback(dynamodb, ledger_targets, phase):
    """An item edited by hand (a phase no release knows): every command and flow reading the
    ledger failed with pydantic's traceback, naming neither the service nor the rollout.

    "failed" too: no release ever recorded it, yet it was read as a finished rollout, which a new
    rollout could start over."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    started(ledger)
    record = ledger.get(SERVICE)
    dynamodb.update_item(TableName=ledger_targets.rollouts_table,
                         Key={"service": {"S": SERVICE}, "rollout_id": {"S": record.rollout_id}},
                         UpdateExpression="SET phase = :p", ExpressionAttributeValues={":p": {"S": phase}})
    for read in (lambda: ledger.get(SERVICE), lambda: ledger.history(SERVICE)):
        with pytest.raises(MalformedRollout, match=rf"item of '{SERVICE}', rollout '{record.rollout_id}', is not one "
                                                   r"rollway can read \(1 problem\(s\); first: phase: "):
            read()


@pytest.mark.parametrize("spec_json", ['{"image": "webordinary/edit-container:v2", "stages": [', '{"stages": []}'],
                         ids=["a JSON typo", "no image"])
def test_an_item_whose_recorded_spec_rollway_cannot_read_is_named(dynamodb, ledger_targets, spec_json):
    """A spec edited by hand in the console (a bake shortened, with a typo): the item read, and every
    rollback of it (`rollway abort`, a hook) then failed on the spec with a bare JSONDecodeError or
    KeyError naming nothing, after `rollway status` had said the rollout could still be rolled back."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    started(ledger)
    record = ledger.get(SERVICE)
    dynamodb.update_item(TableName=ledger_targets.rollouts_table,
                         Key={"service": {"S": SERVICE}, "rollout_id": {"S": record.rollout_id}},
                         UpdateExpression="SET spec_json = :s", ExpressionAttributeValues={":s": {"S": spec_json}})
    for read in (lambda: ledger.get(SERVICE), lambda: ledger.history(SERVICE)):
        with pytest.raises(MalformedRollout, match=rf"item of '{SERVICE}', rollout '{record.rollout_id}', is not one "
                                                   r"rollway can read \(.*spec_json.*\): repair or delete that item"):
            read()


def test_a_lapsed_claim_given_up_while_it_is_taken_over_is_claimed_without_a_takeover(dynamodb, ledger_targets):
    """The hook's rollback, stalled past its claim, wakes and gives the claim up (a step failed)
    between erin's refused renewal and her takeover: the takeover's condition (still the hook's)
    fails, and erin's rollback failed with 'the ledger refused a write ... for no known reason'
    although the claim was free. It takes the free claim instead, with nothing to record."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    begin_rollback(ledger, SERVICE, actor="hook", reason="cancelled", now=START + 1, holder="hook",
                   lease_seconds=LEASE)
    updates = {"n": 0}

    def hook_gives_up_before_the_takeover(**kwargs):
        updates["n"] += 1
        if updates["n"] == 2:  # erin's takeover, about to be sent: the hook gives its claim up first
            ledger.claim_rollback(SERVICE, holder="hook", now=START + 2 + LEASE, lease_seconds=0)

    dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", hook_gives_up_before_the_takeover)
    try:
        taken = ledger.claim_rollback(SERVICE, holder="erin", now=START + 2 + LEASE, lease_seconds=LEASE,
                                      rollout=first.rollout_id, at=START + 2 + LEASE)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.UpdateItem", hook_gives_up_before_the_takeover)
    assert updates["n"] == 4  # refused, takeover refused (the hook's give-up in between), taken
    assert (taken.rollback_holder, taken.rollback_expires) == ("erin", START + 2 + 2 * LEASE)
    assert [t.kind for t in taken.history] == ["rollback-start"]  # taken from no one: nothing to record
    assert ledger.get(SERVICE) == taken


def test_a_lapsed_lease_released_while_it_is_taken_over_is_taken_without_a_takeover(dynamodb, ledger_targets):
    """run-1, stalled past its lease, wakes and releases it (it finished) between run-2's refused
    acquire and its takeover: run-2 failed with 'the ledger refused a write ... for no known
    reason' although the lease was free. It takes the free lease, taken from no one."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)  # run-1 holds the lease until START + LEASE
    updates = {"n": 0}

    def run_1_releases_before_the_takeover(**kwargs):
        updates["n"] += 1
        if updates["n"] == 2:
            ledger.release(SERVICE, owner="run-1")

    dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", run_1_releases_before_the_takeover)
    try:
        taken = ledger.acquire(SERVICE, owner="run-2", now=START + LEASE + 1, lease_seconds=LEASE,
                               rollout=first.rollout_id)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.UpdateItem", run_1_releases_before_the_takeover)
    assert updates["n"] == 4  # refused, takeover refused (run-1's release in between), taken
    assert taken.owner == "run-2" and taken.history == ()
    assert ledger.get(SERVICE) == taken


def test_an_open_windows_end_keeps_its_run_and_old_service_and_older_ends_read_without_them(dynamodb,
                                                                                           ledger_targets):
    """A window left open records the lease owner of its run (status tells it from a run watching
    again) and the old service it kept (status names it); ends written before they were kept (no
    attribute) still read, as None, and are said as before."""
    from rollway.ledger import KeptForTraffic, UnverifiedWindow

    ledger = DynamoLedger(dynamodb, ledger_targets)
    started(ledger)
    seen = UnverifiedWindow(at=START + 1, actor="monitor", counted=3, looks=29, owner="run-1",
                            stable_service="webordinary-edit-service")
    kept = KeptForTraffic(at=START + 2, actor="monitor", stable=20, owner="run-1", stable_service="edit-old")
    ledger.acquire(SERVICE, owner="run-1", now=START + 2, lease_seconds=LEASE, unverified_window=seen,
                   kept_for_traffic=kept)
    stored = ledger.get(SERVICE)
    assert (stored.unverified_window, stored.kept_for_traffic) == (seen, kept)
    key = {"service": {"S": SERVICE}, "rollout_id": {"S": stored.rollout_id}}
    old = dynamodb.get_item(TableName=ledger_targets.rollouts_table, Key=key)["Item"]
    for end in ("unverified_window", "kept_for_traffic"):
        del old[end]["M"]["owner"], old[end]["M"]["stable_service"]  # as ends written before they were kept
    dynamodb.put_item(TableName=ledger_targets.rollouts_table, Item=old)
    older = ledger.get(SERVICE)
    assert older.unverified_window == seen.model_copy(update={"owner": None, "stable_service": None})
    assert older.kept_for_traffic == kept.model_copy(update={"owner": None, "stable_service": None})


def test_a_passed_stages_windows_looked_at_are_noted_by_their_owner_leaving_the_lease_as_it_is(dynamodb,
                                                                                                ledger_targets):
    """The count of a passed stage's windows looked at is written by the run that holds the rollout,
    its lease lapsed or not (a paused run renews none), the lease and history left as they are, and
    read back as written; once another run took the rollout over, the write is refused."""
    from rollway.ledger import NotOwner, PassedLooks

    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    assert first.passed_looks is None
    looks = PassedLooks(stage=1, window=START + 1680.0, windows=3)
    noted = ledger.note(SERVICE, owner="run-1", now=START + LEASE + 5, rollout=first.rollout_id, passed_looks=looks)
    assert (noted.passed_looks, noted.lease_expires, noted.history) == (looks, first.lease_expires, first.history)
    assert ledger.get(SERVICE) == noted
    ledger.acquire(SERVICE, owner="run-2", now=START + LEASE + 10, lease_seconds=LEASE)
    with pytest.raises(NotOwner, match="it is owned by 'run-2'"):
        ledger.note(SERVICE, owner="run-1", now=START + LEASE + 15, rollout=first.rollout_id,
                    passed_looks=looks.model_copy(update={"windows": 4}))
    assert ledger.get(SERVICE).passed_looks == looks


def test_the_open_pause_is_kept_with_its_asking_and_removed_by_the_answer(dynamodb, ledger_targets):
    """The question a paused run asks now lives on the item, written with each asking and removed
    (no attribute left) by the answer, whose entry keeps how many times it was asked."""
    from rollway.ledger import OpenPause

    ledger = DynamoLedger(dynamodb, ledger_targets)
    started(ledger)
    asked = OpenPause(stage=0, cause="metrics", question="metrics pause: 5%: metrics unavailable", since=START,
                      asked=7, causes=("inconclusive", "metrics"))
    ledger.record(SERVICE, owner="run-1", now=START + 1, transition=step(START + 1, "pause"), open_pause=asked)
    assert ledger.get(SERVICE).open_pause == asked
    answer = step(START + 2, "reject").model_copy(update={"asked": 7})
    ledger.record(SERVICE, owner="run-1", now=START + 2, transition=answer, open_pause=None)
    stored = ledger.get(SERVICE)
    assert stored.open_pause is None and stored.history[-1].asked == 7
    key = {"service": {"S": SERVICE}, "rollout_id": {"S": stored.rollout_id}}
    assert "open_pause" not in dynamodb.get_item(TableName=ledger_targets.rollouts_table, Key=key)["Item"]


def _promoted(ledger, record):
    return finish(ledger, START + 5)


def _rollback_begun(ledger, record):
    return begin_rollback(ledger, SERVICE, actor="erin", reason="errors", now=START + 3, rollout=record.rollout_id)


@pytest.mark.parametrize("write", [_promoted, _rollback_begun], ids=["a promote", "a rollback begun"])
@pytest.mark.parametrize("version", [None, {"S": "3"}], ids=["no version", "a text version"])
def test_a_write_to_an_item_without_a_readable_version_says_which_item(dynamodb, ledger_targets, version, write):
    """An item made by hand (or by a rollway before items had a version) without a numeric
    ``version``: it read as version 0, but the next write to it (a shift, `rollway abort`'s
    record, a promote) stopped with a bare KeyError: 'version' naming no item. It says which item
    to repair, as any other unreadable item does, and writes nothing.

    A rollback reads the whole item before its write (its rule): read as version 0 (or 3), the
    write conditioned on that version was refused, and the rollback (a hook's, `rollway abort`'s)
    failed with 'the ledger refused a write ... for no known reason', naming neither the item nor
    what to repair. It says both too."""
    ledger = DynamoLedger(dynamodb, ledger_targets)
    record = started(ledger)
    key = {"service": {"S": SERVICE}, "rollout_id": {"S": record.rollout_id}}
    if version is None:
        dynamodb.update_item(TableName=ledger_targets.rollouts_table, Key=key, UpdateExpression="REMOVE version")
    else:
        dynamodb.update_item(TableName=ledger_targets.rollouts_table, Key=key, UpdateExpression="SET version = :v",
                             ExpressionAttributeValues={":v": version})
    before = dynamodb.get_item(TableName=ledger_targets.rollouts_table, Key=key, ConsistentRead=True)["Item"]
    with pytest.raises(MalformedRollout, match=rf"item of '{SERVICE}', rollout '{record.rollout_id}', is not one "
                                               r"rollway can read \(no numeric version, .*\): repair or delete that "
                                               "item"):
        write(ledger, record)
    assert dynamodb.get_item(TableName=ledger_targets.rollouts_table, Key=key, ConsistentRead=True)["Item"] == before


def test_a_refused_answer_that_could_not_be_recorded_names_its_giver_escaped(dynamodb, ledger_targets):
    """Other refusals appended before each of this one's attempts: the error names who answered,
    escaped (``rollway.one_line``). A name a script gave (the form refuses a line break in a name,
    not a right-to-left override) wrote a line of its own under the error in the run's log, and
    an override (U+202E) reordered the words after it."""
    from rollway.aws.ledger import _RECORD_ATTEMPTS
    from rollway.ledger import LedgerError, RefusedAnswer

    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    ours = RefusedAnswer(at=START + 1, actor="dana\n\u202eenoN", action="approve", next_weight=5, reason="no stage")
    others = iter(RefusedAnswer(at=START + 2, actor=f"p{i}", action="hold", reason="timed out") for i in range(99))
    raced = {"n": 0}

    def another_first(params, **kwargs):
        # Another refusal lands between each of this answer's reads of the list and its append.
        if raced["n"] < _RECORD_ATTEMPTS and "dana" in str(params.get("ExpressionAttributeValues", "")):
            raced["n"] += 1
            ledger.refuse(SERVICE, rollout=first.rollout_id, answer=next(others))

    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", another_first)
    try:
        with pytest.raises(LedgerError, match="refused answers kept changing") as unrecorded:
            ledger.refuse(SERVICE, rollout=first.rollout_id, answer=ours)
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", another_first)
    said = str(unrecorded.value)
    assert said.startswith(r"could not record dana\n\u202eenoN's refused answer"), said
    assert "\n" not in said and "\u202e" not in said, said


def test_a_resent_refused_answer_past_the_bound_is_kept_once(dynamodb, ledger_targets, monkeypatch):
    """Past the bound the list is set whole, on condition that it is as read: the resent copy of a
    write that committed is refused, and refuse returns the item, which holds the answer once."""
    from rollway.ledger import RefusedAnswer

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 2)
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    answers = [RefusedAnswer(at=START + i, actor=f"p{i}", action="hold", reason="timed out") for i in range(3)]
    for answer in answers[:2]:
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=answer)
    stored = resent_once(dynamodb, lambda: ledger.refuse(SERVICE, rollout=first.rollout_id, answer=answers[2]))
    assert stored.refused_answers == tuple(map(recorded, answers[1:])) and ledger.get(SERVICE) == stored


def test_refused_answers_past_the_bound_appended_together_keep_the_newest_of_them_all(dynamodb, ledger_targets,
                                                                                     monkeypatch):
    """Refusals past the bound made at once, each dropping the oldest as it read the list: none of
    them sets the list over another's, and those kept are the newest."""
    from rollway.ledger import RefusedAnswer

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 3)
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    old = [RefusedAnswer(at=START + i, actor=f"old{i}", action="hold", reason="timed out") for i in range(3)]
    for answer in old:
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=answer)
    new = [RefusedAnswer(at=START + 10 + i, actor=f"new{i}", action="hold", reason="timed out") for i in range(3)]
    outcomes = together(*(lambda a=a: ledger.refuse(SERVICE, rollout=first.rollout_id, answer=a) for a in new))
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    stored = ledger.get(SERVICE)
    assert set(stored.refused_answers) == set(map(recorded, new)) and stored.refused_dropped == 3


def test_a_refused_answer_past_the_bound_sends_the_list_once(dynamodb, ledger_targets, monkeypatch):
    """The write that drops the oldest refused answer set the list whole on condition that the
    stored list was the one read, so it sent the list twice (up to 200 KB in one request). It is
    conditioned on the list's length and its oldest answer instead (answers are appended at its end
    and dropped from its start, so the two still tell a list another refusal changed meanwhile),
    and the list is sent once, as it is kept, with that one answer."""
    import json

    from rollway.ledger import RefusedAnswer

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 3)
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    said = [RefusedAnswer(at=START + i, actor=f"bot-{i}", action="hold", comment="x" * 1_000, reason="timed out")
            for i in range(5)]
    for answer in said[:3]:
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=answer)
    sent: list[int] = []

    def measure(params, **_):
        if "refused_answers" in params.get("UpdateExpression", ""):
            sent.append(len(json.dumps(params["ExpressionAttributeValues"])))

    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", measure)
    try:
        for answer in said[3:]:
            ledger.refuse(SERVICE, rollout=first.rollout_id, answer=answer)
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", measure)
    kept_size = len(json.dumps(_values({":kept": [recorded(a).model_dump(mode="json") for a in said[2:]]})))
    oldest_size = len(json.dumps(_values({":oldest": recorded(said[0]).model_dump(mode="json")})))
    assert len(sent) == 2 and all(size < kept_size + oldest_size + 500 for size in sent), (sent, kept_size)
    stored = ledger.get(SERVICE)
    assert stored.refused_answers == tuple(map(recorded, said[2:])) and stored.refused_dropped == 2


def test_refused_answers_an_earlier_rollway_kept_are_dropped_past_the_bound_uncounted(dynamodb, ledger_targets,
                                                                                      monkeypatch):
    """An item an earlier rollway wrote holds no count of those dropped, and its list at the bound
    may have lost some: not known how many (None), and it stays so through this release's drops,
    where counting from 0 there read as every one dropped; drops made at once still keep the newest
    of them all."""
    from rollway.ledger import RefusedAnswer

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 3)
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    old = [RefusedAnswer(at=START + i, actor=f"old{i}", action="hold", reason="timed out") for i in range(3)]
    TestDynamoLedger().refused_already(ledger, first.rollout_id, [a.model_dump(mode="json") for a in old])
    # This release creates the item with a count of 0: without it, as an earlier rollway wrote it.
    key = _values({"service": SERVICE, "rollout_id": first.rollout_id})
    ledger._client.update_item(TableName=ledger._table, Key=key, UpdateExpression="REMOVE refused_dropped")
    assert ledger.get(SERVICE).refused_dropped is None
    new = [RefusedAnswer(at=START + 10 + i, actor=f"new{i}", action="hold", reason="timed out") for i in range(3)]
    outcomes = together(*(lambda a=a: ledger.refuse(SERVICE, rollout=first.rollout_id, answer=a) for a in new))
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    stored = ledger.get(SERVICE)
    assert set(stored.refused_answers) == set(map(recorded, new)) and stored.refused_dropped is None
    item = ledger._client.get_item(TableName=ledger._table, Key=key, ConsistentRead=True)["Item"]
    assert "refused_dropped" not in item, item  # never stored: an earlier rollway reads only a number there


def test_an_earlier_rollways_refused_answers_say_whether_some_may_have_been_dropped(dynamodb, ledger_targets,
                                                                                    monkeypatch):
    """An item an earlier rollway wrote holds no count of the refused answers it dropped, read as
    0: status and the report listed those kept as every one there was, though that rollway dropped
    the oldest past the bound without a word. Its list says that older ones may have been dropped,
    not how many; an empty one lost none, and this release counts from there."""
    from rollway.ledger import RefusedAnswer
    from rollway.reports import refusals_dropped_said, rollout_report

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 3)
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    key = _values({"service": SERVICE, "rollout_id": first.rollout_id})
    old = [RefusedAnswer(at=START + i, actor=f"old{i}", action="hold", reason="timed out") for i in range(3)]
    TestDynamoLedger().refused_already(ledger, first.rollout_id, [a.model_dump(mode="json") for a in old])
    ledger._client.update_item(TableName=ledger._table, Key=key, UpdateExpression="REMOVE refused_dropped")
    full = ledger.get(SERVICE)
    said = ("older refused answers may have been dropped, and how many is not known: the ledger keeps only the "
            "newest, and these may have been kept by a rollway that did not count those it dropped")
    assert refusals_dropped_said(full) == said
    assert f"**{said}.**" in rollout_report(full).split("## Approvals", 1)[1], rollout_report(full)
    # None kept, that rollway dropped none: nothing said, and counted from 0.
    TestDynamoLedger().refused_already(ledger, first.rollout_id, [])
    empty = ledger.get(SERVICE)
    assert empty.refused_dropped == 0 and refusals_dropped_said(empty) is None
    for at in (10, 11, 12, 13):
        ledger.refuse(SERVICE, rollout=first.rollout_id,
                      answer=RefusedAnswer(at=START + at, actor="new", action="hold", reason="timed out"))
    assert ledger.get(SERVICE).refused_dropped == 1


def test_an_earlier_rollways_refused_answers_of_any_size_may_have_lost_some(dynamodb, ledger_targets):
    """That rollway dropped past REFUSED_BYTES too, and capped no answer's actor, question or
    reason: one long answer dropped to make room for the next left a list as short as that one.
    A list read as having lost none because it took half the bytes or less said of such a list that
    the answers kept were every one there was; and once this release's own drop had left a list so
    short, it read the answers kept through that rollway's drops as counted from 0."""
    from rollway.ledger import RefusedAnswer
    from rollway.reports import refusals_dropped_said

    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    key = _values({"service": SERVICE, "rollout_id": first.rollout_id})
    # What that rollway kept after dropping a 60 KB answer (a script's name) for this one: one short answer.
    after = RefusedAnswer(at=START + 2, actor="dana", action="hold", reason="timed out")
    TestDynamoLedger().refused_already(ledger, first.rollout_id, [after.model_dump(mode="json")])
    ledger._client.update_item(TableName=ledger._table, Key=key, UpdateExpression="REMOVE refused_dropped")
    kept = ledger.get(SERVICE)
    assert kept.refused_dropped is None, kept.refused_dropped
    assert refusals_dropped_said(kept).startswith("older refused answers may have been dropped"), \
        refusals_dropped_said(kept)
    # Not known stays not known through this release's appends, however short the list.
    stored = ledger.refuse(SERVICE, rollout=first.rollout_id,
                           answer=RefusedAnswer(at=START + 3, actor="erin", action="hold", reason="timed out"))
    assert stored.refused_dropped is None and ledger.get(SERVICE).refused_dropped is None
    # An item without a refused answer lost none.
    TestDynamoLedger().refused_already(ledger, first.rollout_id, [])
    assert ledger.get(SERVICE).refused_dropped == 0


def test_refused_answers_from_before_any_bound_are_not_said_to_have_been_dropped(dynamodb, ledger_targets):
    """A rollway from before any bound kept every refused answer: an item it wrote with exactly
    REFUSED_KEPT of them lost none, and the ledger cannot tell it from one a rollway that dropped
    uncounted left at the bound. "May have been dropped" is what the ledger knows; "the rollway that
    recorded them did not count those it dropped" said that rollway dropped some, which this one never
    did: said so that it holds of both."""
    from rollway.ledger import REFUSED_KEPT, RefusedAnswer, Transition, dropped_at_said
    from rollway.reports import refusals_dropped_said

    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    key = _values({"service": SERVICE, "rollout_id": first.rollout_id})
    every = [RefusedAnswer(at=START + 10 + i, actor=f"p{i}", action="hold", reason="timed out").model_dump(mode="json")
             for i in range(REFUSED_KEPT)]
    TestDynamoLedger().refused_already(ledger, first.rollout_id, every)
    ledger._client.update_item(TableName=ledger._table, Key=key, UpdateExpression="REMOVE refused_dropped")
    held = ledger.get(SERVICE)
    assert len(held.refused_answers) == REFUSED_KEPT and held.refused_dropped is None
    assert refusals_dropped_said(held) == (
        "older refused answers may have been dropped, and how many is not known: the ledger keeps only the newest, "
        "and these may have been kept by a rollway that did not count those it dropped")
    pause = Transition(at=START + 5, kind="pause", actor="alice", to_stage=0, comment="approval pause")
    assert dropped_at_said(held, pause) == "refused answers dropped uncounted, if any were, may have been given to it"


def test_a_drop_a_rollway_without_the_count_makes_beside_this_one_leaves_the_count_not_known(dynamodb, ledger_targets,
                                                                                            monkeypatch):
    """During an upgrade a release from before the count drops the oldest refused answer past the
    bound and leaves the count this one wrote as it was: status and the report said "1 older
    refused answer was dropped" where 2 were, and of a pause "up to 1". The count is written with
    a mark of the oldest answer kept, which such a drop changes: read without it, the count is not
    known, and said so; so is a count written before the mark was, by a release that may have run
    beside one without it."""
    from rollway.ledger import RefusedAnswer
    from rollway.reports import refusals_dropped_said

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 3)
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    key = _values({"service": SERVICE, "rollout_id": first.rollout_id})
    said = [RefusedAnswer(at=START + i, actor=f"p{i}", action="hold", reason="timed out") for i in range(5)]
    for answer in said[:4]:
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=answer)
    assert ledger.get(SERVICE).refused_dropped == 1
    # The earlier release's drop: the list set whole, the count left as it was.
    ledger._client.update_item(TableName=ledger._table, Key=key, UpdateExpression="SET refused_answers = :kept",
                               ExpressionAttributeValues=_values({":kept": [a.model_dump(mode="json")
                                                                            for a in said[2:]]}))
    held = ledger.get(SERVICE)
    assert held.refused_dropped is None, held.refused_dropped
    # The one counted was dropped, whatever else was: said as the least there were.
    assert refusals_dropped_said(held).startswith("at least 1 older refused answer was dropped, and how many more is "
                                                  "not known"), refusals_dropped_said(held)
    # Not known stays so: this release's next refusal does not count on from the stale count.
    stored = ledger.refuse(SERVICE, rollout=first.rollout_id,
                           answer=RefusedAnswer(at=START + 9, actor="p9", action="hold", reason="timed out"))
    assert stored.refused_dropped is None and ledger.get(SERVICE).refused_dropped is None
    item = ledger._client.get_item(TableName=ledger._table, Key=key, ConsistentRead=True)["Item"]
    assert "refused_dropped" not in item, item
    # A count an earlier release wrote with answers kept (no mark): it may have run beside one without it.
    ledger._client.update_item(TableName=ledger._table, Key=key, UpdateExpression="SET refused_dropped = :n",
                               ExpressionAttributeValues=_values({":n": 2}))
    assert ledger.get(SERVICE).refused_dropped is None


def test_the_count_of_dropped_refused_answers_reads_the_same_to_a_release_whose_answers_have_one_more_field(
        dynamodb, ledger_targets, monkeypatch):
    """The count is written with a mark of the oldest refused answer kept, which the reading release
    makes again from the answer as it parses it. Made from every field, a later release whose
    refused answers have one more (unset on the answers this one wrote) made another mark of the
    same answer: after the upgrade, status and the reports of every rollout with refused answers
    said "how many is not known" where this release had counted them, and the next refusal removed
    the count for good."""
    from pydantic import Field

    from rollway.ledger import RefusedAnswer

    class LaterAnswer(RefusedAnswer):
        channel: str | None = Field(default=None, description="a field a later release adds")

    class LaterRecord(RolloutRecord):
        refused_answers: tuple[LaterAnswer, ...] = ()

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 2)
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    for i in range(3):
        ledger.refuse(SERVICE, rollout=first.rollout_id,
                      answer=RefusedAnswer(at=START + i, actor=f"p{i}", action="hold", reason="timed out"))
    assert ledger.get(SERVICE).refused_dropped == 1
    monkeypatch.setattr("rollway.aws.ledger.RolloutRecord", LaterRecord)  # the later release reads the item
    later = ledger.get(SERVICE)
    assert isinstance(later.refused_answers[0], LaterAnswer)
    assert later.refused_dropped == 1, later.refused_dropped


@pytest.mark.parametrize("counted", [True, False], ids=["count-kept", "no-count-yet"])
def test_an_earlier_rollways_drop_made_while_a_refusal_past_the_bound_is_written_keeps_its_answer(
        dynamodb, ledger_targets, monkeypatch, counted):
    """During an upgrade, a release from before the count drops the oldest refused answer as this
    one writes: it sets the list whole on condition that it is the one it read, and leaves the
    count and the length as they were. This release's write, made on the list it read before, set
    its own list over it, and that refusal was gone; conditioned on the oldest answer too, it is
    made again on the list as it stands."""
    from rollway.ledger import RefusedAnswer

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 3)
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    old = [RefusedAnswer(at=START + i, actor=f"old{i}", action="hold", reason="timed out") for i in range(4)]
    TestDynamoLedger().refused_already(ledger, first.rollout_id, [a.model_dump(mode="json") for a in old[:3]])
    key = _values({"service": SERVICE, "rollout_id": first.rollout_id})
    if counted:  # a drop this release made: the item counts it
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=old[3])
    else:  # the item as an earlier release wrote it, without the count
        ledger._client.update_item(TableName=ledger._table, Key=key, UpdateExpression="REMOVE refused_dropped")
    held = ledger.get(SERVICE)
    assert held.refused_dropped == (1 if counted else None)
    earlier = RefusedAnswer(at=START + 10, actor="earlier", action="hold", reason="timed out")
    client = ledger._client

    class Upgrading:
        """The ledger's client, with the earlier release's drop made once before this one's write."""

        dropped = False

        def __getattr__(self, name):
            return getattr(client, name)

        def update_item(self, **params):
            if not self.dropped:
                self.dropped = True
                stored = client.get_item(TableName=ledger._table, Key=key, ConsistentRead=True)["Item"]
                kept = _values({":kept": [a.model_dump(mode="json") for a in (*held.refused_answers[1:], earlier)]})
                client.update_item(TableName=ledger._table, Key=key, UpdateExpression="SET refused_answers = :kept",
                                   ConditionExpression="refused_answers = :held",
                                   ExpressionAttributeValues={**kept, ":held": stored["refused_answers"]})
            return client.update_item(**params)

    monkeypatch.setattr(ledger, "_client", Upgrading())
    new = RefusedAnswer(at=START + 11, actor="new", action="hold", reason="timed out")
    ledger.refuse(SERVICE, rollout=first.rollout_id, answer=new)
    stored = ledger.get(SERVICE)
    assert stored.refused_answers == (held.refused_answers[2], earlier, recorded(new)), stored.refused_answers


def test_a_refused_answer_to_an_item_without_the_list_is_appended(dynamodb, ledger_targets):
    """An item that holds no ``refused_answers`` (written by a rollway from before them, or the
    list removed by hand): the refusal's condition tells whether the list is there before it
    compares its ``size``. DynamoDB reads a comparison of ``size`` of a missing attribute as false;
    moto answered HTTP 500, and the refusal went unrecorded."""
    from rollway.ledger import RefusedAnswer

    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    key = _values({"service": SERVICE, "rollout_id": first.rollout_id})
    dynamodb.update_item(TableName=ledger_targets.rollouts_table, Key=key, UpdateExpression="REMOVE refused_answers")
    answer = RefusedAnswer(at=START + 1, actor="erin", action="approve", reason="timed out")
    stored = ledger.refuse(SERVICE, rollout=first.rollout_id, answer=answer)
    assert stored.refused_answers == (recorded(answer),) and ledger.get(SERVICE) == stored
    # Removed between the read that held it and the write: the write's condition is false (no
    # size of a list not there), and the answer is appended to the list as read again.
    removed = {"n": 0}

    def remove_first(params, **kwargs):
        if removed["n"] == 0 and "refused_answers" in params.get("UpdateExpression", ""):
            removed["n"] += 1
            dynamodb.update_item(TableName=ledger_targets.rollouts_table, Key=key,
                                 UpdateExpression="REMOVE refused_answers")

    again = RefusedAnswer(at=START + 2, actor="dana", action="hold", reason="timed out")
    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", remove_first)
    try:
        stored = ledger.refuse(SERVICE, rollout=first.rollout_id, answer=again)
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", remove_first)
    assert removed["n"] == 1
    assert stored.refused_answers == (recorded(again),) and ledger.get(SERVICE) == stored


def test_a_count_of_dropped_answers_reads_the_same_to_a_release_from_before_their_recording_order(
        dynamodb, ledger_targets, monkeypatch):
    """The count of refused answers dropped is written with a mark of the oldest answer kept, which
    a release checks its count by. Marked with the order the ledger records answers in
    (``recorded_after``), a release from before it, reading the answer without it, read every count
    this one wrote as not known, and its next refusal removed it."""
    from rollway.aws.ledger import COUNTED_HEAD, _head_mark
    from rollway.ledger import RefusedAnswer

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 1)
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    ledger.record(SERVICE, owner="run-1", now=START + 1, transition=step(START + 1))
    for i in range(2):
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=RefusedAnswer(
            at=START + 2 + i, actor=f"p{i}", action="hold", reason="timed out"))
    key = _values({"service": SERVICE, "rollout_id": first.rollout_id})
    item = dynamodb.get_item(TableName=ledger_targets.rollouts_table, Key=key, ConsistentRead=True)["Item"]
    (head,) = ledger.get(SERVICE).refused_answers
    assert head.recorded_after == 1 and ledger.get(SERVICE).refused_dropped == 1
    # That release's model has no such field: it reads the answer without it.
    as_before = RefusedAnswer.model_validate(head.model_dump(exclude={"recorded_after"}))
    assert _head_mark(as_before) == item[COUNTED_HEAD]["S"]


def test_a_count_that_no_longer_tells_every_drop_is_said_as_the_least_there_were(dynamodb, ledger_targets,
                                                                                  monkeypatch):
    """A count of refused answers dropped written before its mark was (or one an earlier rollway's
    uncounted drop made stale) reads as not known, and the next refusal removes it: status and the
    report said older answers "may have been dropped", of a rollout the ledger had counted 2 drops
    of. Those counted were dropped whatever else was: said as the least there were, kept through the
    refusals after it, and those they drop added."""
    from rollway.aws.ledger import COUNTED_HEAD
    from rollway.ledger import RefusedAnswer
    from rollway.reports import refusals_dropped_said

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 2)
    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    for i in range(4):
        ledger.refuse(SERVICE, rollout=first.rollout_id, answer=RefusedAnswer(
            at=START + 1 + i, actor=f"p{i}", action="hold", reason="timed out"))
    assert ledger.get(SERVICE).refused_dropped == 2
    key = _values({"service": SERVICE, "rollout_id": first.rollout_id})
    dynamodb.update_item(TableName=ledger_targets.rollouts_table, Key=key, UpdateExpression=f"REMOVE {COUNTED_HEAD}")
    stale = ledger.get(SERVICE)
    assert stale.refused_dropped is None and stale.refused_dropped_least == 2
    assert refusals_dropped_said(stale).startswith(
        "at least 2 older refused answers were dropped, and how many more is not known: the ledger keeps only the "
        "newest"), refusals_dropped_said(stale)
    ledger.refuse(SERVICE, rollout=first.rollout_id, answer=RefusedAnswer(
        at=START + 9, actor="p9", action="hold", reason="timed out"))
    after = ledger.get(SERVICE)
    assert after.refused_dropped is None and after.refused_dropped_least == 3
    item = dynamodb.get_item(TableName=ledger_targets.rollouts_table, Key=key, ConsistentRead=True)["Item"]
    assert "refused_dropped" not in item, item  # never a count an earlier rollway reads as every drop
    assert refusals_dropped_said(after).startswith("at least 3 older refused answers were dropped"), after


def test_a_refused_list_rewritten_without_recording_order_is_read_by_time_and_said_so(dynamodb, ledger_targets):
    """A release from before ``recorded_after`` sets the list whole past the bound with its own form
    of each answer, which leaves it out: those answers are matched to pauses and listed by their
    times, as that release did, status and the report say they are, and answers recorded since
    keep their place; the count stays known (its mark leaves the field out)."""
    from rollway.ledger import RefusedAnswer, refused_after
    from rollway.reports import as_listed, refusals_by_time_said, refusals_dropped_said

    ledger = DynamoLedger(dynamodb, ledger_targets)
    first = started(ledger)
    pause = step(START + 10, "pause", to_stage=0, comment="approval pause: 5%")
    ledger.record(SERVICE, owner="run-1", now=START + 10, transition=pause)
    # As that release wrote them, after the pause was recorded: one stamped by a clock behind the run's.
    behind = RefusedAnswer(at=START + 5, actor="bob", action="hold", to_stage=0, reason="answered first by ann")
    ahead = RefusedAnswer(at=START + 20, actor="cat", action="hold", to_stage=0, reason="answered first by ann")
    TestDynamoLedger().refused_already(ledger, first.rollout_id, [a.model_dump(mode="json", exclude={"recorded_after"})
                                                                  for a in (behind, ahead)])
    held = ledger.get(SERVICE)
    assert held.refused_answers == (behind, ahead) and held.refused_dropped == 0
    assert [refused_after(held, r, held.history[0]) for r in held.refused_answers] == [False, True]
    assert [(t.kind, t.actor) for t in as_listed(held)] == [("refused", "bob"), ("pause", "run-1"), ("refused", "cat")]
    assert refusals_by_time_said(held).startswith("the 2 refused answers kept are placed among the entries by their "
                                                  "times"), refusals_by_time_said(held)
    # This release's next refusal keeps its place, stamped before the pause though it is.
    later = RefusedAnswer(at=START + 3, actor="dan", action="hold", to_stage=0, reason="answered first by ann")
    stored = ledger.refuse(SERVICE, rollout=first.rollout_id, answer=later)
    assert stored.refused_answers == (behind, ahead, later.model_copy(update={"recorded_after": 1}))
    assert [(t.kind, t.actor) for t in as_listed(stored)][-1] == ("refused", "dan")
    assert refusals_by_time_said(stored).startswith("2 of the 3 refused answers kept are placed"), stored
    assert stored.refused_dropped == 0 and refusals_dropped_said(stored) is None
