"""A stage whose metrics could never be read is not a stage that served no requests.

CloudWatch unreadable for a whole stage: its row in the stage table (the run's artifacts, the
summary, the approval form) read "0" requests for both versions, which a reader takes for
traffic measured at zero, and a person accepting the stage for a canary nobody used.
"""

from __future__ import annotations

from prefect import flow

from flows.canary import run_canary
from rollway.approvals import ApprovalAnswer
from rollway.fakes import FakeMetrics
from rollway.model import Observation
from rollway.report import HEADERS, markdown_table, stage_rows
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

COUNTS = ("base req", "base err", "canary req", "canary err")


class DarkAtFivePercent(FakeMetrics):
    """CloudWatch answers with throttling throughout the 5 % stage, and normally otherwise."""

    def observe(self, start: float, end: float) -> Observation:
        if self.router.weights.canary == 5:
            return Observation(start=start, end=end, error="ThrottlingException: Rate exceeded")
        return super().observe(start, end)


@flow
def canary_on(env, spec, approver):
    return run_canary(env, spec, approver)


def test_a_stage_without_metrics_says_so_and_a_stage_that_measured_none_says_zero():
    env = fake_environment()
    env.metrics = DarkAtFivePercent(env.router, env.metrics.behaviour)
    forms: list[str] = []

    def alice(pause, summary):
        forms.append(summary)
        return ApprovalAnswer(action="approve", approver="alice", comment="dashboards look fine")

    spec = RolloutSpec(image="webordinary/edit-container:2.0.0",
                       stages=[Stage(weight=w, bake_seconds=300) for w in (5, 100)], monitor_seconds=0)
    result = canary_on(env, spec, alice)
    assert result.outcome == "promoted", result.reason
    dark, full = (dict(zip(HEADERS, row)) for row in stage_rows(result.stages))

    assert dark["decision"] == "accepted by alice", dark
    assert {k: dark[k] for k in COUNTS} == {"base req": "not measured", "base err": "-",
                                           "canary req": "not measured", "canary err": "-"}, dark
    # At 100 % the stable group was read and served nothing: a measured zero stays 0.
    assert full["base req"] == "0" and full["base err"] == "0", full
    assert int(full["canary req"].replace(",", "")) > 0, full

    # The approval form that asked alice to accept the dark stage showed its row the same way.
    assert len(forms) == 1 and "metrics unavailable" in forms[0], forms
    row = next(line for line in forms[0].splitlines() if line.startswith("| 1 |"))
    assert "| not measured | - | - | - | not measured | - | - | - |" in row, row
    assert "| 0 |" not in markdown_table(result.stages[:1])


class ReadOnlyBeforeAnythingSettled(FakeMetrics):
    """At 5 %, CloudWatch answers while the stage's first period is still within the metrics'
    delay (read, not yet settled) and throttles every read after it, to the stage's end."""

    def __init__(self, router, behaviour, delay: float) -> None:
        super().__init__(router, behaviour)
        self.delay = delay
        self.unsettled_reads = 0

    def observe(self, start: float, end: float) -> Observation:
        if self.router.weights.canary == 5:
            observation = super().observe(start, end)
            if observation.intervals and all(i.t > end - self.delay for i in observation.intervals):
                self.unsettled_reads += 1
                return observation
            if observation.intervals:
                return Observation(start=start, end=end, error="ThrottlingException: Rate exceeded")
            return observation
        return super().observe(start, end)


def test_a_stage_whose_read_periods_never_settled_says_none_settled_not_zero():
    env = fake_environment()
    spec = RolloutSpec.model_validate({
        "image": "webordinary/edit-container:2.0.0", "monitor_seconds": 0,
        "stages": [{"weight": w, "bake_seconds": 300} for w in (5, 100)],
        "analysis": {"metrics_delay_seconds": 120}})
    env.metrics = ReadOnlyBeforeAnythingSettled(env.router, env.metrics.behaviour,
                                                spec.analysis.metrics_delay_seconds)

    def alice(pause, summary):
        return ApprovalAnswer(action="approve", approver="alice", comment="dashboards look fine")

    result = canary_on(env, spec, alice)
    assert result.outcome == "promoted", result.reason
    # The 5 % stage's metrics were read, with periods in them, but none had settled.
    assert env.metrics.unsettled_reads > 0
    unsettled, full = (dict(zip(HEADERS, row)) for row in stage_rows(result.stages))
    assert {k: unsettled[k] for k in COUNTS} == {"base req": "none settled", "base err": "-",
                                                "canary req": "none settled", "canary err": "-"}, unsettled
    assert "| 0 |" not in markdown_table(result.stages[:1])
    # A stage that counted settled periods still reads its measured zero as 0.
    assert full["base req"] == "0" and int(full["canary req"].replace(",", "")) > 0, full
