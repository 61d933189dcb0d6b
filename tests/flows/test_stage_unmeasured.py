"""A stage whose metrics could never be read is not a stage that served no requests.

CloudWatch unreadable for a whole stage: its row in the stage table (the run's artifacts, the
summary, the approval form) read "0" requests for both versions, which a reader takes for
traffic measured at zero, and a person accepting the stage for a canary nobody used.
"""

from __future__ import annotations

from prefect import flow

from flows.canary import run_canary
from rollway.approvals import ApprovalAnswer
from rollway.fakes import FakeMetrics, steady
from rollway.model import Observation, VersionSample
from rollway.report import HEADERS, RolloutResult, markdown_table, stage_rows
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


def accepted_at_five_then_full(env) -> tuple[RolloutResult, list[dict[str, str]], list[str]]:
    """A 5 % and a 100 % stage, alice accepting whatever she is asked: the result, its rows by
    column and the approval forms she was shown."""
    forms: list[str] = []

    def alice(pause, summary):
        forms.append(summary)
        return ApprovalAnswer(action="approve", approver="alice", comment="dashboards look fine")

    spec = RolloutSpec(image="webordinary/edit-container:2.0.0",
                       stages=[Stage(weight=w, bake_seconds=300) for w in (5, 100)], monitor_seconds=0)
    result = canary_on(env, spec, alice)
    assert result.outcome == "promoted", result.reason
    return result, [dict(zip(HEADERS, row)) for row in stage_rows(result.stages)], forms


def test_a_stage_without_metrics_says_so_apart_from_a_version_without_a_request_count():
    env = fake_environment()
    env.metrics = DarkAtFivePercent(env.router, env.metrics.behaviour)
    result, (dark, full), forms = accepted_at_five_then_full(env)

    assert dark["decision"] == "accepted by alice", dark
    assert {k: dark[k] for k in COUNTS} == {"base req": "not measured", "base err": "-",
                                           "canary req": "not measured", "canary err": "-"}, dark
    # At 100 % the stable group's metrics were read: it had no request count, and the row says why.
    assert full["base req"] == "no baseline traffic at 100%" and full["base err"] == "-", full
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
    # A stage that counted settled periods reads what they held.
    assert full["base req"] == "no baseline traffic at 100%" and int(full["canary req"].replace(",", "")) > 0, full


def test_a_version_with_no_request_count_in_any_counted_period_says_no_data_not_zero():
    """A quiet service: at 5 % the canary got no request in any minute, and the load balancer
    publishes no RequestCount for such a minute. Its row read "0" requests, a count nobody made
    (the judge takes an absent RequestCount for no data, not zero traffic); so did the stable
    group's at 100 %."""
    env = fake_environment(rps=0.1)  # 6 requests a minute: the canary's 5 % rounds to none
    _, (quiet, full), forms = accepted_at_five_then_full(env)

    assert int(quiet["base req"].replace(",", "")) > 0, quiet
    assert {k: quiet[k] for k in ("canary req", "canary err", "canary rate", "canary p99 ms")} == {
        "canary req": "no data", "canary err": "-", "canary rate": "-", "canary p99 ms": "-"}, quiet
    assert {k: full[k] for k in ("base req", "base err")} == {"base req": "no baseline traffic at 100%",
                                                              "base err": "-"}, full
    assert int(full["canary req"].replace(",", "")) > 0, full
    # The form that asked alice to accept the quiet stage showed its row the same way.
    row = next(line for line in forms[0].splitlines() if line.startswith("| 1 |"))
    assert "| no data | - | - | - | inconclusive |" in row, row


def test_a_count_of_zero_requests_still_reads_zero():
    """A source that does count a quiet minute (a replay's ``"requests": 0``) measured zero: 0."""
    env = fake_environment()
    counted = steady(5000.0, 0.001, 0.0)

    def zero_counted(weights, t):
        baseline, canary = counted(weights, t)
        return baseline or VersionSample(requests=0), canary or VersionSample(requests=0)

    env.metrics = FakeMetrics(env.router, zero_counted)
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0",
                       stages=[Stage(weight=w, bake_seconds=300) for w in (5, 100)], monitor_seconds=0)
    result = canary_on(env, spec, lambda pause, summary: None)
    assert result.outcome == "promoted", result.reason
    full = dict(zip(HEADERS, stage_rows(result.stages)[-1]))
    assert {k: full[k] for k in ("base req", "base err", "base rate")} == {
        "base req": "0", "base err": "0", "base rate": "-"}, full
