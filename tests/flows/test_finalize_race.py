"""Two finalizes of one promotion at once: the one whose plan went stale changes nothing.

Finalize's ledger writes are lease-free. Before, they landed on whatever rollout was the
service's newest when they arrived: a finalize that had read the ledger before another finalize
finished (and a new rollout began on the idle canary) wrote its ``finalize-start`` onto the new
rollout, overwrote its canary task definition, and moved that rollout's traffic to stable.
"""

from __future__ import annotations

import pytest

from flows.finalize import run_finalize
from rollway.finalize import FinalizeRefused
from rollway.ledger import RolloutRecord, Transition, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.test_canary_moto import read_back
from tests.flows.test_finalize import ALL_STABLE, finalize_on, promote_by_hand, rollout_spec

NEXT_SHIFT = Weights.canary_at(5)


def raced(monkeypatch, meanwhile) -> None:
    """Right after the next finalize run made its plan, and before it writes, ``meanwhile`` runs."""
    import flows.finalize

    planned = flows.finalize.plan_finalize

    def then_meanwhile(*args, **kwargs):
        plan = planned(*args, **kwargs)
        monkeypatch.setattr(flows.finalize, "plan_finalize", planned)  # once: the racing run plans as usual
        meanwhile()
        return plan

    monkeypatch.setattr(flows.finalize, "plan_finalize", then_meanwhile)


def _next_rollout_begins(aws, env) -> RolloutRecord:
    """What the next rollout's run leaves after its first shift: its record, 5 % on the canary."""
    t = aws.targets
    now = env.clock.now()
    newest = env.ledger.get(t.canary_service)
    spec = rollout_spec(f"{aws.topology.repository_uri}:3.0.0")
    record = RolloutRecord(
        service=t.canary_service, rollout_id=new_rollout_id(now, after=newest.rollout_id), image=spec.image,
        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, weights=NEXT_SHIFT,
        canary_task_definition="webordinary-edit:next", previous_task_definition=newest.canary_task_definition,
        history=(Transition(at=now, kind="start", actor="erin"),),
    )
    created = env.ledger.create(record, owner="process/next", now=now, lease_seconds=600)
    env.router.set_weights(NEXT_SHIFT)
    return created


def test_a_finalize_whose_plan_another_finalize_and_the_next_rollout_overtook_changes_nothing(aws, monkeypatch):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    t = aws.targets
    begun = {}

    def other_finalize_then_next_rollout():
        assert run_finalize(env, actor="alice", stable_timeout_seconds=30, verify_timeout_seconds=5).outcome == "finalized"
        begun["next"] = _next_rollout_begins(aws, env)

    raced(monkeypatch, other_finalize_then_next_rollout)
    with pytest.raises(FinalizeRefused, match="the ledger changed after this run read it") as refused:
        finalize_on(env, actor="bob")
    assert "Run finalize again" in str(refused.value) and "Nothing was changed" in str(refused.value)
    assert read_back(aws)[0] == NEXT_SHIFT, "the next rollout's traffic stays where its run put it"
    assert env.ledger.get(t.canary_service) == begun["next"], "nothing was written onto the next rollout"
    # Run again, the finalize reads the ledger afresh and finds nothing of its own to do.
    with pytest.raises(FinalizeRefused, match="is progressing, not promoted"):
        finalize_on(env, actor="bob")
    assert read_back(aws)[0] == NEXT_SHIFT


def test_two_finalizes_planned_together_one_acts_and_the_other_is_told_to_run_again(aws, monkeypatch):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")

    def other_finalize():
        run_finalize(env, actor="alice", stable_timeout_seconds=30, verify_timeout_seconds=5)

    raced(monkeypatch, other_finalize)
    with pytest.raises(FinalizeRefused, match="'finalized' by alice"):
        finalize_on(env, actor="bob")
    weights, stable, canary = read_back(aws)
    assert (weights, stable.task_definition, canary.desired) == (ALL_STABLE, release, 0)
    assert finalize_on(env, actor="bob").outcome == "already_finalized"
