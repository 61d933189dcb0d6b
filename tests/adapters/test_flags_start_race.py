"""Two rollouts of two services bound to one flag, started at the same moment, both passed the start
check (no rollout held the flag yet) and both moved it, each to its own stage: the check reads, the
first write comes minutes later. A rollout's first write of a flag checks the hold again on the same
read its write is conditional on, on the embedded AWS (DynamoDB flags table and ledger)."""

from __future__ import annotations

import pytest

from rollway.aws.flags import DynamoFlagStore
from rollway.aws.ledger import DynamoLedger
from rollway.flag_binding import FlagHeld, RolloutRolledBack, apply_bindings, check_bindings, disable_bindings
from rollway.flags import FlagState
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage

F = "use_sqs_architecture"
BOUND = [FlagBinding(feature=F)]
EDIT, BILLING = "webordinary-edit-service-canary", "webordinary-billing-service-canary"
SPEC = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=5), Stage(weight=100)], flags=BOUND)


@pytest.fixture
def stores(aws):
    client = aws.get_client("dynamodb")
    flags, ledger = DynamoFlagStore(client, aws.targets), DynamoLedger(client, aws.targets)
    flags.put(FlagState(feature=F), expected_version=0, actor="seed", now=1.0)
    return flags, ledger


def started(ledger: DynamoLedger, service: str, now: float, phase: RolloutPhase = RolloutPhase.PROGRESSING,
            after: str | None = None) -> str:
    rollout = new_rollout_id(now, after=after)
    ledger.create(RolloutRecord(service=service, rollout_id=rollout, image=SPEC.image, spec_json=SPEC.model_dump_json(),
                                phase=phase, previous_task_definition="webordinary-edit-task:1",
                                stable_desired=4), owner=f"process/{service}", now=now, lease_seconds=0)
    return rollout


def test_the_second_of_two_rollouts_started_together_is_refused_at_its_first_flag_write(stores):
    flags, ledger = stores
    # Both start checks read the flag before either rollout wrote it: both pass.
    check_bindings(flags, BOUND, starting=True, ledger=ledger, service=BILLING)
    check_bindings(flags, BOUND, starting=True, ledger=ledger, service=EDIT)
    billing, edit = started(ledger, BILLING, 10.0), started(ledger, EDIT, 11.0)
    apply_bindings(flags, BOUND, 5, actor="bob", now=20.0, rollout=billing, exclusive=True, ledger=ledger,
                   service=BILLING)

    with pytest.raises(FlagHeld) as refused:
        apply_bindings(flags, BOUND, 5, actor="alice", now=21.0, rollout=edit, exclusive=True, ledger=ledger,
                       service=EDIT)

    said = str(refused.value)
    assert f"'{F}' follows rollout {billing} (its stage 5%, set by bob" in said, said
    assert "wrote it after this rollout's start check" in said and "this stage moved none" in said, said
    flag = flags.get(F)
    assert (flag.enabled, flag.percentage, flag.version) == (True, 5.0, 2), "the flag is as the first rollout set it"
    assert [(e.writer, e.rollout) for e in flags.audit(F)][:1] == [("rollout", billing)], "the second wrote nothing"

    # The refused rollout's rollback turns off no flag it never moved: the first rollout's users keep
    # it, and the rollback says which rollout it left the flag to.
    [left] = disable_bindings(flags, BOUND, actor="alice", reason="first stage failed", now=22.0, rollout=edit)
    assert not left.changed and left.kept is None and f"rollout {billing} holds it (its stage 5%" in left.held, left
    assert left.describe().startswith(f"{F}: left on 5% (v2): rollout {billing}"), left.describe()
    assert flags.get(F).enabled and flags.get(F).version == 2
    # The first rollout goes on moving it.
    [moved] = apply_bindings(flags, BOUND, 100, actor="bob", now=30.0, rollout=billing, exclusive=True, ledger=ledger,
                             service=BILLING)
    assert (moved.after.enabled, moved.after.percentage) == (True, 100.0)


def test_a_write_landing_between_the_first_writes_read_and_its_put_is_refused_too(stores, monkeypatch):
    """The other rollout's write lands after this stage read the flag and before it wrote: the put,
    conditional on the version read, is refused, and the flag read again is found held."""
    flags, ledger = stores
    billing, edit = started(ledger, BILLING, 10.0), started(ledger, EDIT, 11.0)
    real_audit = flags.audit
    landed = []

    def audit_then_the_other_writes(feature, limit=None):
        trail = real_audit(feature, limit=limit)
        if not landed:
            landed.append(True)
            apply_bindings(flags, BOUND, 5, actor="bob", now=20.0, rollout=billing)
        return trail

    monkeypatch.setattr(flags, "audit", audit_then_the_other_writes)
    with pytest.raises(FlagHeld, match=f"follows rollout {billing}"):
        apply_bindings(flags, BOUND, 5, actor="alice", now=21.0, rollout=edit, exclusive=True, ledger=ledger,
                       service=EDIT)
    assert landed and [(e.writer, e.rollout) for e in real_audit(F)][:1] == [("rollout", billing)]


def test_a_hold_the_ledger_records_ended_is_taken_over_at_the_first_write(stores):
    """As the start check reads past it, so does the first write: the next release of the service."""
    flags, ledger = stores
    old = started(ledger, EDIT, 10.0, RolloutPhase.ROLLED_BACK)  # its trail written before its end was
    apply_bindings(flags, BOUND, 5, actor="alice", now=20.0, rollout=old)
    new = started(ledger, EDIT, 30.0, after=old)

    [moved] = apply_bindings(flags, BOUND, 25, actor="alice", now=40.0, rollout=new, exclusive=True, ledger=ledger,
                             service=EDIT)
    assert (moved.after.percentage, moved.after.version) == (25.0, 3) and flags.audit(F)[0].rollout == new



def test_a_stage_landing_after_its_rollout_was_rolled_back_says_so_even_when_another_rollout_moved_the_flag(stores):
    """`rollway abort` ended this rollout while its run shifted, and another service's rollout took the
    flag since: the late stage is refused as rolled back (what happened to it), not as held."""
    flags, ledger = stores
    billing, edit = started(ledger, BILLING, 10.0), started(ledger, EDIT, 11.0)
    apply_bindings(flags, BOUND, 5, actor="alice", now=20.0, rollout=edit, exclusive=True, ledger=ledger,
                   service=EDIT)
    disable_bindings(flags, BOUND, actor="oncall", reason="abort", now=21.0, rollout=edit)
    apply_bindings(flags, BOUND, 5, actor="bob", now=22.0, rollout=billing, exclusive=True, ledger=ledger,
                   service=BILLING)

    with pytest.raises(RolloutRolledBack, match=f"rollout {edit} was rolled back"):
        apply_bindings(flags, BOUND, 25, actor="alice", now=23.0, rollout=edit, exclusive=True, ledger=ledger,
                       service=EDIT)
    assert (flags.get(F).enabled, flags.get(F).percentage) == (True, 5.0)
