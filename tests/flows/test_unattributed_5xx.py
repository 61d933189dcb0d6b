"""Load-balancer 5xx with no request count to set them against (at night): no error rate, no
rollback, no silent pass; the guarded version's targets say whose they are."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from prefect import flow

from tasks import traffic

from flows.monitor import run_monitor
from rollway.approvals import ApprovalAnswer
from rollway.fakes import FakeMetrics
from rollway.model import Observation, Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment
from tests.flows.test_progressive_fakes import IMAGE, env_with_ledger, progressive_on


class Strays:
    """No RequestCount for either version, and ``count`` 5xx from the load balancer itself in
    the periods ``pick`` chooses (other rules' traffic, or a version refusing its own)."""

    def __init__(self, router, pick, count: int = 5) -> None:
        self.inner = FakeMetrics(router, lambda weights, t: (None, None))
        self.pick, self.count = pick, count

    def observe(self, start: float, end: float) -> Observation:
        observation = self.inner.observe(start, end)
        return observation.model_copy(update={"intervals": tuple(
            i.model_copy(update={"unserved": self.count if self.pick(i.t) else None}) for i in observation.intervals)})


@flow
def monitor_on(env, window):
    return run_monitor(env, RolloutSpec(image=IMAGE), window_seconds=window, stable_desired=4)


def night(healthy_canary: int, pick):
    env = fake_environment()
    env.router.weights = Weights(stable=0, canary=100)
    env.router.healthy["canary"] = healthy_canary
    env.deployer.update_service(env.targets.canary_service, desired=4)
    start = env.clock.now()
    env.metrics = Strays(env.router, lambda t: pick(t - start))
    return env


def test_five_stray_5xx_at_night_do_not_roll_the_release_back_nor_pass_silently():
    env = night(healthy_canary=2, pick=lambda since: 600 < since <= 660)  # one minute, ten minutes in

    result = monitor_on(env, 1800)

    # Was: "canary error rate 100.00% (5/5) is over the 5% guardrail", and a rollback.
    assert result.outcome == "passed", result.reason
    assert env.router.weights == Weights(stable=0, canary=100)
    # No check saw the release (no request count): the window is not a clean one, the old
    # service stays, and a person heard of the 5xx once.
    assert not result.verified and env.deployer.services[env.targets.stable_service].desired == 4
    alerts = [body for subject, body in env.notifier.messages if subject.startswith("Alert")]
    assert len(alerts) == 1 and "no error rate" in alerts[0] and "its 2 healthy target(s)" in alerts[0], alerts


def test_a_release_without_targets_refusing_its_few_requests_at_night_is_rolled_back():
    env = night(healthy_canary=0, pick=lambda since: since > 120)

    result = monitor_on(env, 1800)

    assert result.outcome == "rolled_back" and "has no healthy target" in result.reason, result.reason
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_stage_at_night_is_neither_rolled_back_nor_passed_on_stray_5xx():
    env = env_with_ledger()
    start = env.clock.now()
    env.metrics = Strays(env.router, lambda t: t - start > 120)
    pauses = []

    def person(pause, summary):
        pauses.append((pause.cause, pause.reason))
        return ApprovalAnswer(action="reject", approver="bob", comment="nothing to judge on")

    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=0)
    result = progressive_on(env, spec, person)

    # Was: rolled back by the guardrail at 100 % of "5 of the 5 requests". Now the stage bakes,
    # ends without a decision and a person decides.
    assert [cause for cause, _ in pauses] == ["inconclusive"], pauses
    assert result.outcome == "rolled_back" and result.reason.startswith("rejected by bob"), result.reason
    assert result.stages[0].ended_at - result.stages[0].started_at >= 600
    alerts = [body for subject, body in env.notifier.messages if subject.startswith("Alert")]
    assert len(alerts) == 1 and "neither version has a request count" in alerts[0], alerts
    assert "its 1 healthy target(s)" in alerts[0]  # the run asked the load balancer (one task at 5 %)


@pytest.fixture
def retried_at_once(monkeypatch):
    """The health read's retries without their 1-s waits: every look of a throttled stage slept
    2 s, and these tests judge what the run does once the retries are spent, not their spacing."""
    monkeypatch.setattr(traffic, "LOOK_AGAIN_SECONDS", 0.0)


def throttled(*_args, **_kwargs):
    raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeTargetHealth")


def test_a_throttled_target_health_read_at_night_leaves_the_stage_to_a_person(retried_at_once):
    """The read made only to attribute stray 5xx failed after its retries: the exception escaped
    the stage loop, the run failed and its hook rolled the canary back."""
    env = env_with_ledger()
    start = env.clock.now()
    env.metrics = Strays(env.router, lambda t: t - start > 120)
    real = env.router.healthy_targets

    def healthy(version):
        if version == "canary" and env.router.weights.canary > 0:  # the waits before a shift still read them
            throttled()
        return real(version)

    env.router.healthy_targets = healthy
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=0)
    pauses = []

    def person(pause, summary):
        pauses.append(pause.cause)
        return ApprovalAnswer(action="reject", approver="bob", comment="nothing to judge on")

    result = progressive_on(env, spec, person)
    assert pauses == ["inconclusive"], pauses
    assert result.outcome == "rolled_back" and result.reason.startswith("rejected by bob"), result.reason


def test_a_throttled_target_health_read_while_monitoring_keeps_the_release(retried_at_once):
    env = night(healthy_canary=2, pick=lambda since: 600 < since <= 660)
    env.router.healthy_targets = throttled
    result = monitor_on(env, 1800)
    assert result.outcome == "passed", result
    assert env.router.weights == Weights(stable=0, canary=100)
