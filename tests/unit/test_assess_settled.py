"""assess(settled_until=...): a stage rolls back on every period but passes only on settled ones.

CloudWatch publishes a period's metrics late, and not all at once: a period whose 5xx count
has not landed yet looks healthier than it was. A pass is final, so it may rest only on
periods whose metrics can no longer change.
"""

from __future__ import annotations

from rollway.judge import assess
from rollway.judge.sequential import SequentialJudge
from rollway.judge.threshold import ThresholdJudge
from rollway.model import Interval, Observation, VersionSample
from rollway.phases import Phase
from rollway.spec import Analysis, Guardrails

GUARDRAILS = Guardrails()
ERRORS_ONLY = Analysis(judge="sequential", metrics=("errors",))


def v(requests: int, errors: int = 0) -> VersionSample:
    return VersionSample(requests=requests, errors=errors)


def minutes(*canary: VersionSample) -> tuple[Interval, ...]:
    """One 60-s period per canary sample, against a steady baseline at 0.1% errors."""
    return tuple(Interval(t=60.0 * (i + 1), canary=c, baseline=v(11400, 11)) for i, c in enumerate(canary))


def observed(intervals: tuple[Interval, ...]) -> Observation:
    return Observation(start=0, end=intervals[-1].t, intervals=intervals)


def first_pass(judge, healthy: VersionSample) -> int:
    """How many healthy periods the judge needs to pass (so the tests follow the judge's tuning)."""
    for n in range(1, 60):
        if judge.evaluate(minutes(*[healthy] * n), stage_over=False).phase is Phase.SUCCESSFUL:
            return n
    raise AssertionError("a healthy canary never passed")


def test_a_pass_waits_until_the_period_that_decided_it_has_settled():
    judge = SequentialJudge(ERRORS_ONLY)
    n = first_pass(judge, v(600))
    assert n >= 2
    obs = observed(minutes(*[v(600)] * n))
    newest = obs.intervals[-1].t

    waiting = assess(judge, GUARDRAILS, obs, stage_over=False, settled_until=newest - 1)
    assert waiting.phase is Phase.RUNNING
    assert "the newest 1 interval(s) would pass it; waiting for their metrics to settle" in waiting.reason
    # The figures shown are the settled ones.
    assert waiting.canary_requests == 600 * (n - 1)

    settled = assess(judge, GUARDRAILS, obs, stage_over=False, settled_until=newest)
    assert settled.phase is Phase.SUCCESSFUL and settled.decided_at_t == newest
    # Without a settling time every period is final, as before.
    assert assess(judge, GUARDRAILS, obs, stage_over=False).phase is Phase.SUCCESSFUL


def test_a_period_whose_5xx_count_is_late_cannot_pass_the_stage():
    judge = SequentialJudge(ERRORS_ONLY)
    n = first_pass(judge, v(600))
    # The newest period's requests are in but its 5xx count is not: it reads 0 errors.
    partial = observed(minutes(*[v(600)] * (n - 1), v(600, 0)))
    newest = partial.intervals[-1].t
    assert assess(judge, GUARDRAILS, partial, stage_over=False).phase is Phase.SUCCESSFUL, \
        "the partial period alone would pass the stage"
    assert assess(judge, GUARDRAILS, partial, stage_over=False, settled_until=newest - 60).phase is Phase.RUNNING
    # A tick later the count has landed: the period held 30 errors (5%), and nothing passed;
    # the failure goes on, and the next period rolls back.
    complete = observed(minutes(*[v(600)] * (n - 1), v(600, 30), v(600, 30), v(600, 30)))
    later = assess(judge, GUARDRAILS, complete, stage_over=False, settled_until=newest)
    assert later.phase is Phase.FAILED, later.reason


def test_a_rollback_does_not_wait_for_the_metrics_to_settle():
    judge = SequentialJudge(ERRORS_ONLY)
    bad = observed(minutes(v(600, 60), v(600, 60)))  # 10% errors in both minutes
    verdict = assess(judge, GUARDRAILS, bad, stage_over=False, settled_until=0)
    assert verdict.phase is Phase.FAILED
    assert verdict.decided_at_t == 120


def test_the_final_verdict_rests_on_the_settled_periods():
    judge = ThresholdJudge(Analysis(judge="threshold", min_requests=50), GUARDRAILS)
    # The bake's two periods have settled; the one after it has not.
    obs = observed(minutes(v(600, 1), v(600, 0), v(600, 0)))
    verdict = assess(judge, GUARDRAILS, obs, stage_over=True, settled_until=120)
    assert verdict.phase is Phase.SUCCESSFUL and verdict.canary_requests == 1200
    # Errors in an unsettled period still roll the stage back.
    worse = observed(minutes(v(600, 1), v(600, 0), v(600, 30)))
    assert assess(judge, GUARDRAILS, worse, stage_over=True, settled_until=120).phase is Phase.FAILED
    # Only unsettled periods at the end of the stage: inconclusive, never a silent pass.
    sequential = SequentialJudge(ERRORS_ONLY)
    early = observed(minutes(*[v(600)] * first_pass(sequential, v(600))))
    over = assess(sequential, GUARDRAILS, early, stage_over=True, settled_until=0)
    assert over.phase is Phase.INCONCLUSIVE
    assert "would pass it but may still be incomplete" in over.reason
