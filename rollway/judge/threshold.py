"""Judge v1: the seed's fixed thresholds, as the default to compare better judges against.

It passes a stage when the bake is over and the canary's error rate stayed at or under the
canary guardrail; it never passes early, and a stage with too few canary requests is
inconclusive rather than a silent pass.
"""

from __future__ import annotations

from typing import Sequence

from rollway.judge import canary_rate, rate_beside, setting_percent
from rollway.model import Interval, Observation, Verdict
from rollway.phases import Phase
from rollway.spec import Analysis, Guardrails


class ThresholdJudge:
    def __init__(self, analysis: Analysis, guardrails: Guardrails) -> None:
        self.analysis = analysis
        self.guardrails = guardrails

    uses_history = False

    def evaluate(self, intervals: Sequence[Interval], *, stage_over: bool, history: Sequence[Interval] = ()) -> Verdict:
        observation = Observation(start=0, end=0, intervals=tuple(intervals))
        canary = observation.totals("canary")
        baseline = observation.totals("baseline")
        limit = self.guardrails.canary_error_rate
        rate = canary.errors / canary.requests if canary.requests else 0.0
        common = dict(
            metric="error_rate",
            statistic=rate,
            thresholds={"error_rate": limit, "min_requests": float(self.analysis.min_requests)},
            canary_requests=canary.requests,
            baseline_requests=baseline.requests,
            decided_at_t=intervals[-1].t if intervals else None,
        )
        if canary.requests and rate > limit:
            return Verdict(
                phase=Phase.FAILED,
                reason=f"canary error rate {rate_beside(rate, limit)} ({canary.errors:,}/{canary.requests:,}) is over {setting_percent(limit)}",
                **common,
            )
        if not stage_over:
            yet = " so far" if canary.requests else " yet"
            return Verdict(phase=Phase.RUNNING, reason=f"{canary_rate(canary.errors, canary.requests)}{yet}; baking",
                           **common)
        if canary.requests < self.analysis.min_requests:
            # No count in any period reads "no data" in the stage table, not a count of 0.
            counted = (f"only {canary.requests:,} canary requests by the end of the stage (need "
                       if observation.counted("canary") is not None else
                       "no period had a canary request count by the end of the stage (no data, not 0 requests; need ")
            return Verdict(phase=Phase.INCONCLUSIVE, reason=f"{counted}{self.analysis.min_requests:,})", **common)
        return Verdict(
            phase=Phase.SUCCESSFUL,
            reason=f"canary error rate {rate_beside(rate, limit)} ({canary.errors:,}/{canary.requests:,}) stayed within {setting_percent(limit)}",
            **common,
        )
