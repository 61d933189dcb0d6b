"""The hour before a stage is read again when its first read failed."""

from __future__ import annotations

from prefect import flow

from flows.canary import run_canary
from rollway.approvals import scripted
from rollway.fakes import FakeMetrics, steady
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"
SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=0)


class SteadyBackground(FakeMetrics):
    """The load balancer answers 0.5 % of all requests 503 itself, every period (another rule of
    the shared ALB, say); the first read of the hour before a stage is throttled."""

    def __init__(self, router) -> None:
        super().__init__(router, steady(5000.0, 0.001, 0.0))
        self.throttled_once = False

    def observe(self, start, end):
        if end - start == 3600 and not self.throttled_once:
            self.throttled_once = True
            self.calls += 1
            return super().observe(start, start).model_copy(update={
                "error": "metrics unavailable: An error occurred (Throttling) when calling the GetMetricData "
                         "operation: Rate exceeded"})
        seen = super().observe(start, end)
        return seen.model_copy(update={"intervals": tuple(
            i.model_copy(update={"unserved": round(0.005 * ((i.baseline.requests if i.baseline else 0)
                                                             + (i.canary.requests if i.canary else 0)))})
            for i in seen.intervals)})


@flow
def canary_on(env):
    return run_canary(env, SPEC, scripted())


def test_a_throttled_read_of_the_hour_before_a_stage_is_tried_again():
    """One throttled GetMetricData at a stage's first look left the whole stage without the
    load balancer's 5xx rate from before it: every such 5xx then counted as possibly the
    canary's, and a healthy canary at 5 % could not pass (it paused for a person at the end of
    its bake). The read is now tried again at the next look, and the stage passes."""
    env = fake_environment()
    env.metrics = SteadyBackground(env.router)
    result = canary_on(env)
    assert env.metrics.throttled_once
    assert result.outcome == "promoted", result.reason
    assert result.stages[0].decision == "passed", result.stages[0]
