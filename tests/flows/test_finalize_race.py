"""Two finalizes of one promotion at once: the one whose plan went stale changes nothing.

Finalize's ledger writes are lease-free. Before, they landed on whatever rollout was the
service's newest when they arrived: a finalize that had read the ledger before another finalize
finished (and a new rollout began on the idle canary) wrote its ``finalize-start`` onto the new
rollout, overwrote its canary task definition, and moved that rollout's traffic to stable.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import flows.finalize
from flows.finalize import run_finalize
from rollway.finalize import FinalizeRefused
from rollway.ledger import RolloutRecord, Transition, new_rollout_id, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.test_canary_moto import read_back
from tests.flows.moto_env import inbox, received_subjects
from tests.flows.test_finalize_unrecorded import ProcessDied
from tests.flows.test_finalize import (ALL_CANARY, ALL_STABLE, dies_at, finalize_on, kinds, promote_by_hand,
                                      rollout_spec)

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


def test_a_finalize_started_while_another_one_acts_is_refused_naming_it(aws, monkeypatch):
    """A second finalize that read the ledger after the first recorded its ``finalize-start``
    found nothing in its way: it moved the stable service, the traffic and the canary again
    alongside the first, and people got two "Finalized" notices."""
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    url = inbox(aws)
    t = aws.targets
    second = {}
    waited = flows.finalize.wait_healthy

    def second_finalize_meanwhile(*args, **kwargs):
        # The first run recorded its intent and waits for the stable service: a second one starts.
        monkeypatch.setattr(flows.finalize, "wait_healthy", waited)  # once: the second run waits as usual
        try:
            second["result"] = finalize_on(env, actor="bob")
        except Exception as err:  # noqa: BLE001 - asserted below, after the first run ends
            second["error"] = err
        second["state"] = read_back(aws)
        return waited(*args, **kwargs)

    monkeypatch.setattr(flows.finalize, "wait_healthy", second_finalize_meanwhile)
    assert finalize_on(env, actor="alice").outcome == "finalized"
    assert isinstance(second.get("error"), FinalizeRefused), second
    message = str(second["error"])
    assert "alice" in message and "Nothing was changed" in message, message
    assert second["state"][0] == ALL_CANARY, "the second run moved no traffic"
    assert received_subjects(aws, url).count(f"Finalized: {t.stable_service}") == 1
    assert kinds(aws)[-2:] == ["finalize-start", "finalized"] and kinds(aws).count("finalize-start") == 1
    weights, stable, canary = read_back(aws)
    assert (weights, stable.task_definition, canary.desired) == (ALL_STABLE, release, 0)
    assert env.ledger.get(t.canary_service).owner is None, "the lease is given back once finalized"


def test_a_finalize_killed_part_way_holds_the_next_one_off_until_its_lease_lapses_which_then_finishes(aws, monkeypatch):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    url = inbox(aws)
    t = aws.targets

    # The process dies while it waits for the stable service: nothing of it runs after that.
    dies_at(monkeypatch, env, flows.finalize, "wait_healthy", ProcessDied())
    with pytest.raises(ProcessDied):
        finalize_on(env, actor="alice")
    monkeypatch.undo()
    held = env.ledger.get(t.canary_service)
    assert held.owner is not None and kinds(aws)[-1] == "finalize-start"

    with pytest.raises(FinalizeRefused, match=f"a finalize by alice .*run finalize again after {utc(held.lease_expires)}"):
        finalize_on(env, actor="bob")
    assert read_back(aws)[0] == ALL_CANARY and env.ledger.get(t.canary_service) == held

    lapsed = replace(env, wall=lambda: held.lease_expires + 1)  # the dead run's lease has run out
    assert finalize_on(lapsed, actor="bob").outcome == "finalized"
    weights, stable, canary = read_back(aws)
    assert (weights, stable.task_definition, canary.desired) == (ALL_STABLE, release, 0)
    assert received_subjects(aws, url).count(f"Finalized: {t.stable_service}") == 1
    assert env.ledger.get(t.canary_service).owner is None
