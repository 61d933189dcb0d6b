"""How long the traffic took to get back on stable: the incident's first question, answered by the
rollback itself (its page, its log and its result), from its start to the load balancer's read-back
of all the traffic on stable, not to the end of its later steps (the canary, the flags, the page).
"""
from __future__ import annotations

import logging

import pytest

from flows.rollback import rollback
from rollway.fakes import FakeLedger, FakeRouter
from rollway.model import Weights
from tests.flows.test_rollback_claim import rolling_back


class SlowMove(FakeRouter):
    """A move of the weights the load balancer takes 42 s over (a throttled ModifyRule sent again)."""

    clock = None
    seconds = 42.0

    def set_weights(self, weights: Weights) -> Weights:
        self.clock.sleep(self.seconds)
        return super().set_weights(weights)


def test_the_rollback_says_how_long_the_traffic_took_to_get_back_on_stable(monkeypatch, caplog):
    env, _ = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    slow = SlowMove(weights=env.router.weights, healthy=env.router.healthy)
    slow.clock, env.router = env.clock, slow
    notify = env.notifier.notify

    def slow_page(subject, message):  # SNS slow to answer: after the traffic is back, not part of it
        env.clock.sleep(300.0)
        return notify(subject, message)

    env.notifier.notify = slow_page
    with caplog.at_level(logging.INFO):
        result = rollback(reason="abort")
    assert result.weights == Weights(stable=100, canary=0)
    assert result.traffic_back_seconds == 42.0, result.traffic_back_seconds
    (_, page), = env.notifier.messages
    assert "42 s after this rollback began" in page, page
    said = [r.getMessage() for r in caplog.records]
    assert any("42 s after this rollback began" in m for m in said), said


@pytest.mark.parametrize(("took", "said"), [(2.25, "2.3 s"), (90.46, "1 min 30 s")])
def test_the_time_back_on_stable_is_said_rounded_once_a_half_up(monkeypatch, caplog, took, said):
    """Rounded to the tenth half to even first, 2.25 s read "2.2 s", and 90.46 s, rounded again to the
    second, "1 min 31 s": the time said is the time taken, to the tenth under a minute, to the second above."""
    env, _ = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    slow = SlowMove(weights=env.router.weights, healthy=env.router.healthy)
    slow.clock, slow.seconds, env.router = env.clock, took, slow
    with caplog.at_level(logging.INFO):
        rollback(reason="abort")
    (_, page), = env.notifier.messages
    assert f", {said} after this rollback began" in page, page
    assert any(f") {said} after this rollback began" in r.getMessage() for r in caplog.records), caplog.text


def test_the_incident_report_counts_the_time_to_restore_to_the_read_back_not_to_the_end_entry(monkeypatch):
    """The rollback's end entry is stamped after the canary's scale-down, the flags and the page:
    with SNS taking five minutes to answer, the incident report said "Traffic back on stable: 5.7 min
    after the rollback began ... when the load balancer read back 100/0" of a move that took 42 s.
    The end entry keeps when the read-back verified the traffic on stable, and the report counts to that."""
    from rollway.reports import incident_report

    env = _at_5_percent(monkeypatch, Weights.canary_at(5))
    first = env.ledger.get(env.targets.canary_service)
    slow = SlowMove(weights=Weights.canary_at(5), healthy=env.router.healthy)
    slow.clock, env.router = env.clock, slow
    notify = env.notifier.notify

    def slow_page(subject, message):
        env.clock.sleep(300.0)
        return notify(subject, message)

    env.notifier.notify = slow_page
    result = rollback(reason="abort", actor="erin", rollout=first.rollout_id)
    assert result.traffic_back_seconds == 42.0, result

    record = env.ledger.get(env.targets.canary_service)
    start = next(t for t in record.history if t.kind == "rollback-start")
    end = record.last_transition("rollback")
    assert end.verified_wall == start.wall + 42.0, end
    (line,) = [x for x in incident_report(record).splitlines() if "**Traffic back on stable:**" in x]
    assert line.startswith("- **Traffic back on stable:** 42 s after the rollback began"), line
    assert "when the load balancer read back 100/0" in line, line


def _at_5_percent(monkeypatch, weights: Weights, *, begun_minutes_ago: float | None = None):
    """A rollout at 5%, the load balancer holding ``weights``; with ``begun_minutes_ago``, its rollback
    recorded that long ago by `rollway abort` (its intent, with the wall time), whose run went before
    it moved anything."""
    from rollway.ledger import RolloutRecord, begin_rollback, new_rollout_id
    from rollway.phases import RolloutPhase
    from tests.flows.fake_env import STABLE_TD, fake_environment
    from tests.flows.test_refusals import hooks_and_flows_see
    from tests.flows.test_rollback_claim import SERVICE_TD, SPEC

    env = fake_environment()
    env.ledger = FakeLedger()
    now = env.clock.now()
    first = RolloutRecord(service=env.targets.canary_service, rollout_id=new_rollout_id(now - 3600), image=SPEC.image,
                          spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                          weights=Weights.canary_at(5), previous_task_definition=STABLE_TD, stable_desired=4)
    env.ledger.create(first, owner="process/old", now=now - 3600, lease_seconds=0)
    if begun_minutes_ago is not None:
        begun = now - begun_minutes_ago * 60
        begin_rollback(env.ledger, env.targets.canary_service, actor="erin", reason="aborted by erin: errors",
                       now=begun, rollout=first.rollout_id, wall=begun)
    env.router.weights = weights
    env.deployer.services[env.targets.canary_service] = env.deployer.services[env.targets.canary_service].model_copy(
        update={"task_definition": SERVICE_TD, "desired": 2, "running": 2})
    hooks_and_flows_see(monkeypatch, env)
    return env


def test_a_resumed_rollback_counts_the_time_back_from_the_rollbacks_recorded_start_not_its_own(monkeypatch):
    """The rollback began 10 minutes ago and its run died before moving anyone: users stayed on the
    canary all that time, and the run finishing it paged "0 s after this rollback began", counted from
    its own start, where the incident report said 10 minutes."""
    env = _at_5_percent(monkeypatch, Weights.canary_at(5), begun_minutes_ago=10)
    result = rollback(reason="aborted by erin: errors", actor="erin")
    assert result.traffic_back_seconds == 600.0, result
    (_, page), = env.notifier.messages
    assert "10 min after this rollback began" in page, page


def test_a_rollback_that_found_the_traffic_on_stable_already_gives_no_time_it_took(monkeypatch):
    """A run before it moved the traffic and died: when, nobody knows, and "0 s after this rollback
    began" (and traffic_back_seconds 0) read as a restore that took no time."""
    env = _at_5_percent(monkeypatch, Weights(stable=100, canary=0), begun_minutes_ago=10)
    result = rollback(reason="aborted by erin: errors", actor="erin")
    assert (result.traffic_back_seconds, result.traffic_back_at) == (None, None), result
    (_, page), = env.notifier.messages
    assert "after this rollback began" not in page, page
    assert "it moved none of it" in page, page
    end = env.ledger.get(env.targets.canary_service).last_transition("rollback")
    assert end.verified_wall is None, end
