"""``calibration_seconds: 0`` turns the judge's calibration off, not the guardrail's measure of
the load balancer's own 5xx before each stage."""

from __future__ import annotations

from prefect import flow

from flows.canary import run_canary
from rollway.approvals import ApprovalAnswer
from rollway.fakes import FakeMetrics, steady
from rollway.judge import judge_for_stage
from rollway.model import Observation
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


class Background:
    """Healthy versions, and the load balancer answering 0.1 % of all requests 5xx itself, before
    and during the rollout (other rules, the baseline's targets cycling)."""

    def __init__(self, router, now: float) -> None:
        self.inner = FakeMetrics(router, steady(5000.0, 0.001, 0.001))
        # The fake samples a period when first read, at the weights of that moment: the hours
        # before the rollout are sampled now, at 100/0, as CloudWatch would hold them.
        self.inner.observe(now - 7200, now)
        self.windows = self.inner.windows

    def observe(self, start: float, end: float) -> Observation:
        observation = self.inner.observe(start, end)
        return observation.model_copy(update={"intervals": tuple(
            i.model_copy(update={"unserved": round(0.001 * sum(v.requests for v in (i.baseline, i.canary) if v))})
            for i in observation.intervals)})


@flow
def canary_on(env, rollout, approver):
    return run_canary(env, rollout, approver)


def test_a_healthy_canary_passes_over_the_load_balancers_background_with_calibration_off():
    """With calibration_seconds 0 the hour before was not read, every load-balancer 5xx of the
    stage counted as possibly the canary's (300 a minute against its 15,000: 1.96 %), and its
    5 % stage paused for a person as inconclusive however healthy it was."""
    env = fake_environment()
    env.metrics = Background(env.router, env.clock.now())
    rollout = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 25, 100)],
                          analysis={"calibration_seconds": 0}, monitor_seconds=0)
    pauses = []

    def person(pause, summary):
        pauses.append(pause.reason)
        return ApprovalAnswer(action="reject", approver="bob", comment="why is it held?")

    result = canary_on(env, rollout, person)

    assert pauses == [] and result.outcome == "promoted", pauses or result.reason
    # The hour before each stage was read (for the guardrail), one read per stage; the judge
    # still does not calibrate on it.
    assert len([w for w in env.metrics.windows if w[1] - w[0] == 3600]) == 3
    assert not judge_for_stage(rollout, 0).uses_history
