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
    assert f"services {t.stable_service} not stable after 600s" in said, said
    assert "or the rollback flow's if they only need longer" in said, said  # what the person can raise
    assert env.router.weights == Weights.canary_at(75)


def test_a_rollback_by_hand_waits_as_long_as_its_scale_timeout_seconds_says(monkeypatch):
    env, t = stable_slow_to_start(monkeypatch)
    with pytest.raises(ServiceNotStable) as longer:
        rollback(reason="errors after the canary run", actor="erin", scale_timeout_seconds=1800)
    assert f"services {t.stable_service} not stable after 1800s" in str(longer.value), str(longer.value)
    assert env.router.weights == Weights.canary_at(75)


@pytest.mark.parametrize("wait", [0, -5, float("inf")])
def test_a_rollback_by_hand_refuses_a_wait_that_is_no_wait_before_it_acts(monkeypatch, wait):
    env, _t = scaled_in_with_75_on_the_canary()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    with pytest.raises(Exception, match="scale_timeout_seconds"):
        rollback(reason="errors", actor="erin", scale_timeout_seconds=wait)
    assert env.router.weights == Weights.canary_at(75) and env.deployer.calls == []
