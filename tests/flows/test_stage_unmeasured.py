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
