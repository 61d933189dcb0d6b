"""The waits of a rollback run by hand, which a person can set on the `rollback` flow.

A rollback of no open rollout (a `canary` flow's, which keeps no ledger, or one run after the
rollout closed) has no spec to take its waits from: its log named the defaults it used, and a
stable service that needed longer failed it with "raise the rollout spec's
scale_timeout_seconds", which no rollout held and the flow had no parameter for.
"""

from __future__ import annotations

import pytest

import flows.rollback
from flows.rollback import rollback
from rollway.aws.errors import ServiceNotStable
from rollway.model import Weights
from tests.flows.test_healthy_wait import scaled_in_with_75_on_the_canary


def stable_slow_to_start(monkeypatch):
    """Autoscaling scaled the old service in while the canary, which keeps no ledger, took 75 %:
    the rollback scales stable up, and its tasks never get steady within the wait."""
    env, t = scaled_in_with_75_on_the_canary()
    env.deployer.unstable.add(t.stable_service)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    return env, t


def test_a_rollback_by_hand_names_the_rollback_flow_s_scale_timeout_seconds_as_what_to_raise(monkeypatch):
    env, t = stable_slow_to_start(monkeypatch)
    with pytest.raises(ServiceNotStable) as short:
        rollback(reason="errors after the canary run", actor="erin")
    said = str(short.value)
    assert f"services {t.stable_service} not stable after 10 min" in said, said
    assert "or raise the rollout spec's scale_timeout_seconds or the rollback flow's (" in said, said  # what to raise
    assert env.router.weights == Weights.canary_at(75)


def test_a_rollback_by_hand_waits_as_long_as_its_scale_timeout_seconds_says(monkeypatch):
    env, t = stable_slow_to_start(monkeypatch)
    with pytest.raises(ServiceNotStable) as longer:
        rollback(reason="errors after the canary run", actor="erin", scale_timeout_seconds=1800)
    assert f"services {t.stable_service} not stable after 30 min" in str(longer.value), str(longer.value)
    assert env.router.weights == Weights.canary_at(75)


def test_a_rollback_whose_scale_up_ran_out_says_how_long_it_waited_once(monkeypatch):
    """The wait is said where the service's error says it ("after 30 min"): the page of a rollback
    that left users on the version rolled back went on "waited 1800 s (...)", the same wait again."""
    env, t = stable_slow_to_start(monkeypatch)
    with pytest.raises(ServiceNotStable) as longer:
        rollback(reason="errors after the canary run", actor="erin", scale_timeout_seconds=1800)
    assert str(longer.value) == (
        f"services {t.stable_service} not stable after 30 min: see why its tasks do not start (the service's "
        "events, its stopped tasks' reasons), or raise the rollout spec's scale_timeout_seconds or the rollback flow's "
        "(a rollback waits the longest of those it has, and 10 min at least) if they only need longer")


@pytest.mark.parametrize("wait", [0, -5, float("inf")])
def test_a_rollback_by_hand_refuses_a_wait_that_is_no_wait_before_it_acts(monkeypatch, wait):
    env, _t = scaled_in_with_75_on_the_canary()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    with pytest.raises(Exception, match="scale_timeout_seconds"):
        rollback(reason="errors", actor="erin", scale_timeout_seconds=wait)
    assert env.router.weights == Weights.canary_at(75) and env.deployer.calls == []


def test_a_rollback_by_hand_says_it_waits_longer_than_asked_and_why(monkeypatch, caplog):
    """A wait shorter than the open rollout's spec's (or the default) is raised to it: the run's log
    said nothing of it, and a person who asked for ten minutes watched it wait twenty."""
    import logging
    import time

    from rollway.fakes import FakeLedger
    from rollway.ledger import RolloutRecord, new_rollout_id
    from rollway.phases import RolloutPhase
    from tests.flows.fake_env import STABLE_TD, fake_environment
    from tests.flows.test_abort_races import SPEC

    env = fake_environment()
    env.ledger = FakeLedger()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    service, now = env.targets.canary_service, time.time()
    spec = SPEC.model_copy(update={"scale_timeout_seconds": 1200.0})
    record = RolloutRecord(service=service, rollout_id=new_rollout_id(now - 600), image=spec.image,
                           spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                           weights=Weights.canary_at(5), previous_task_definition=STABLE_TD, stable_desired=4)
    env.ledger.create(record, owner=None, now=now - 600, lease_seconds=0)
    env.router.weights = Weights.canary_at(5)
    with caplog.at_level(logging.INFO):
        rollback(reason="errors", actor="erin", scale_timeout_seconds=700, healthy_timeout_seconds=60,
                 verify_timeout_seconds=45)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert (f"scale_timeout_seconds: waiting 1200 s, not the 700 s asked: rollout {record.rollout_id}'s spec says "
            "1200 s" in said), said
    assert ("healthy_timeout_seconds: waiting 300 s, not the 60 s asked: " in said), said
    assert "verify_timeout_seconds: waiting" not in said, said  # 45 s is used as asked
    assert env.router.weights == Weights.canary_at(0)


def test_a_rollback_by_hand_of_no_open_rollout_says_it_waits_the_default_not_the_shorter_wait_asked(monkeypatch,
                                                                                                     caplog):
    import logging

    env, _t = scaled_in_with_75_on_the_canary()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    with caplog.at_level(logging.INFO):
        rollback(reason="errors", actor="erin", scale_timeout_seconds=60)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert ("scale_timeout_seconds: waiting 600 s, not the 60 s asked: the default, 600 s, is the least a rollback "
            "waits" in said), said
    assert env.router.weights == Weights.canary_at(0)
