"""A run's shift overtaken by a rollback someone else began (flows/engine.py, ``journal.overtaken``).

The run claimed the rollout for its tick, moved the weights, and found the rollout rolling back
when it came to record the shift (RolloutEnded). Its shift may have landed after that rollback
put the traffic back, so the run must take the traffic off the canary before it stops. It used
to call its own rollback directly, which paged people a second time (and, with the rollback
still to be carried out, its hook then rolled back again and paged a third). Now it goes
through the rollback's claim: people get one page, the rollout one rollback record.
"""
from __future__ import annotations

import logging

import pytest

from flows.progressive import progressive_rollout
from rollway.fakes import FakeLedger
from rollway.ledger import RolloutEnded, begin_rollback
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.fake_env import fake_environment
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.test_rollback_claim import SPEC, FinishesWhileWatched, OtherRollback

ERIN = "erin (flow run calm-heron, 7f1c...)"


def shift_raced_by(monkeypatch, ledger, erin_acts):
    """A progressive rollout on fakes whose first shift to the canary meets erin's rollback:
    ``erin_acts(env, rollout_id)`` runs just before the run's weights reach the load balancer."""
    env = fake_environment()
    env.ledger = ledger
    hooks_and_flows_see(monkeypatch, env)
    real_set = env.router.set_weights
    raced: list[bool] = []

    def set_weights(weights):
        if weights.canary > 0 and not raced:
            raced.append(True)
            erin_acts(env, env.ledger.get(env.targets.canary_service).rollout_id)
        real_set(weights)

    env.router.set_weights = set_weights
    with pytest.raises(RolloutEnded):
        progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False)
    assert raced, "the rollout never shifted"
    return env


def rollback_pages(env) -> list[str]:
    return [subject for subject, _ in env.notifier.messages if subject.startswith("Rollback")]


def ended_once(env):
    """The traffic is off the canary and the rollout holds one rollback record."""
    record = env.ledger.get(env.targets.canary_service)
    assert env.router.weights == Weights(stable=100, canary=0), env.router.calls
    assert env.deployer.services[env.targets.canary_service].desired == 0
    assert record.phase is RolloutPhase.ROLLED_BACK
    assert [t.kind for t in record.history].count("rollback") == 1, [t.kind for t in record.history]
    assert [t.kind for t in record.history].count("rollback-start") == 1, [t.kind for t in record.history]
    return record


def test_a_shift_landing_after_a_finished_rollback_is_put_back_without_a_second_page(monkeypatch):
    """Erin's rollback began, moved the traffic back, paged and ended; then the run's shift set
    5% on the canary again. The run puts it back, quietly: erin's page is the only one."""

    def erin_rolls_back(env, rollout_id):
        service = env.targets.canary_service
        begin_rollback(env.ledger, service, actor="erin", reason="aborted by erin", now=env.clock.now(),
                       rollout=rollout_id, holder=ERIN)
        OtherRollback(env, ERIN).finish(env.ledger, service, rollout_id)

    env = shift_raced_by(monkeypatch, FakeLedger(), erin_rolls_back)

    assert rollback_pages(env) == ["Rollback: " + env.targets.canary_service], env.notifier.messages
    assert ended_once(env).history[-1].actor == "erin"
    assert env.router.calls.count("set_weights 100/0") == 2, env.router.calls  # erin's, and the run's put-back


def test_a_shift_overtaken_by_a_rollback_under_way_waits_for_it_and_pages_nobody(monkeypatch, caplog):
    """Erin's rollback holds the claim and is still acting when the run finds its shift
    overtaken: the run waits for it to end (as a second rollback does), then makes sure the
    traffic is off the canary, paging nobody."""
    ledger = FinishesWhileWatched()

    def erin_begins(env, rollout_id):
        ledger.other = OtherRollback(env, ERIN)
        begin_rollback(ledger, env.targets.canary_service, actor="erin", reason="aborted by erin",
                       now=env.clock.now(), rollout=rollout_id, holder=ERIN)

    with caplog.at_level(logging.INFO):
        env = shift_raced_by(monkeypatch, ledger, erin_begins)

    assert rollback_pages(env) == ["Rollback: " + env.targets.canary_service], env.notifier.messages
    assert ended_once(env).history[-1].message_id == "msg-1"  # erin's notice, kept with her rollback's end
    said = [r.getMessage() for r in caplog.records]
    assert any(ERIN in m and "waiting up to" in m for m in said), said


def test_a_shift_overtaken_by_an_abort_not_yet_carried_out_carries_it_out_and_pages_once(monkeypatch):
    """`rollway abort` recorded erin's intent (no claim yet: its rollback flow has not begun).
    The run takes the claim and carries the rollback out, paging once and recording its end;
    the abort's rollback then finds it done. Its hook rolls back nothing."""

    def erin_aborts(env, rollout_id):
        begin_rollback(env.ledger, env.targets.canary_service, actor="erin", reason="aborted by erin: errors",
                       now=env.clock.now(), rollout=rollout_id)

    env = shift_raced_by(monkeypatch, FakeLedger(), erin_aborts)

    assert len(rollback_pages(env)) == 1, env.notifier.messages
    record = ended_once(env)
    assert record.history[-1].message_id == "msg-" + str(len(env.notifier.messages))
