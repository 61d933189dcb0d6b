"""The per-stage table counts what the verdict was based on.

A stage passes only on periods whose metrics have settled; the table (in the demo, the run's
artifacts and the approval form) used to add the newest, unsettled period as well, so its
counts disagreed with the reason printed in the same row.
"""

from __future__ import annotations

import re

from prefect import flow

from flows.canary import run_canary
from rollway.approvals import scripted
from rollway.model import Interval, Observation, VersionSample
from rollway.spec import Analysis, RolloutSpec, Stage
from tests.flows.fake_env import fake_environment


def counts(match: re.Match) -> tuple[int, ...]:
    """The errors/requests a verdict names, written with thousands separators ("750/15,000")."""
    return tuple(int(g.replace(",", "")) for g in match.groups())


@flow
def canary_on(env, rollout):
    return run_canary(env, rollout, scripted())


def test_each_stage_row_counts_the_requests_and_errors_its_verdict_names():
    env = fake_environment(canary_error_rate=0.0005)
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0",
                       stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 25, 100)],
                       monitor_seconds=0)
    result = canary_on(env, spec)
    assert result.outcome == "promoted"
    for stage in result.stages:
        judged = re.search(r"canary errors ([\d,]+)/([\d,]+)", stage.verdict.reason)
        assert judged, stage.verdict.reason
        errors, requests = counts(judged)
        assert (stage.canary.errors, stage.canary.requests) == (errors, requests), (
            f"stage {stage.weights}: table canary {stage.canary.errors}/{stage.canary.requests}, "
            f"verdict {stage.verdict.reason}")


def test_a_rolled_back_stage_row_counts_every_period_the_rollback_saw():
    env = fake_environment(canary_error_rate=0.05)
    result = canary_on(env, RolloutSpec(image="webordinary/edit-container:2.1.0",
                                        stages=[Stage(weight=w, bake_seconds=900) for w in (5, 100)],
                                        monitor_seconds=0))
    assert result.outcome == "rolled_back"
    (stage,) = result.stages
    assert stage.canary.errors > 0 and stage.canary.requests > 0
    shown = re.search(r"\(([\d,]+)/([\d,]+)\)", stage.verdict.reason) or re.search(r"([\d,]+)/([\d,]+)", stage.verdict.reason)
    assert shown and (stage.canary.errors, stage.canary.requests) == counts(shown), (
        stage.canary, stage.verdict.reason)


class LateErrors:
    """5xx counts land a period late (as CloudWatch's do): a period still settling shows none."""

    def __init__(self, router, delay: float, rate: float = 0.015, rps: float = 100.0) -> None:
        self.router, self.delay, self.rate, self.rps = router, delay, rate, rps

    def observe(self, start: float, end: float) -> Observation:
        out, t = [], (start // 60 + 1) * 60
        while t <= end:
            w = self.router.weights
            b, c = round(self.rps * 60 * w.stable / 100), round(self.rps * 60 * w.canary / 100)
            settled = t <= end - self.delay
            out.append(Interval(t=t, baseline=VersionSample(requests=b, errors=0) if b else None,
                                canary=VersionSample(requests=c, errors=round(c * self.rate) if settled else 0) if c else None))
            t += 60
        return Observation(start=start, end=end, intervals=tuple(out))


@flow
def canary_on(env, spec):
    return run_canary(env, spec, scripted())


def test_a_rollback_judged_on_the_settled_periods_counts_those_periods():
    """A verdict can roll back on the settled periods alone (the newest, still filling in, show
    no errors yet): its row counts those, not every period read."""
    env = fake_environment()
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0",
                       stages=[Stage(weight=w, bake_seconds=900) for w in (50, 100)], monitor_seconds=0,
                       analysis=Analysis(judge="threshold", metrics_delay_seconds=120))
    env.metrics = LateErrors(env.router, delay=spec.analysis.metrics_delay_seconds)
    result = canary_on(env, spec)
    assert result.outcome == "rolled_back", result.reason
    stage = result.stages[-1]
    named = re.search(r"\(([\d,]+)/([\d,]+)\)", stage.verdict.reason)
    assert named, stage.verdict.reason
    assert (stage.canary.errors, stage.canary.requests) == counts(named), (
        f"row canary {stage.canary.errors}/{stage.canary.requests} vs verdict {stage.verdict.reason!r}")
