"""Whether a version's application published its latency metrics: slow requests unmeasured are not 0.

The slow-request counts the judge compares come from the application's own ``SlowRequestCount``
(with its ``ResponseTimeP99``), not from the load balancer, and an absent slow count reads as 0
(``rollway.aws.cloudwatch``). A version that serves requests and publishes neither has no slow
count at all; judged as 0 slow requests, a new version whose metrics publisher broke (a renamed
namespace, an exporter that died) passed every stage however slow it was.
"""

from __future__ import annotations

from typing import Sequence

from rollway.aws.metric_schema import RESPONSE_TIME_P99, SLOW_REQUEST_COUNT
from rollway.model import Interval, Verdict
from rollway.phases import Phase
from rollway.spec import Analysis


def served_unpublished(intervals: Sequence[Interval], version: str) -> int:
    """The requests ``version`` served in ``intervals`` when its application published none of its
    latency metrics for them (no slow request and no p99 in any); 0 when it published some."""
    samples = [s for s in (getattr(i, version) for i in intervals) if s is not None]
    if any(s.slow or s.latency_p99_ms is not None for s in samples):
        return 0
    return sum(s.requests for s in samples)


def published(intervals: Sequence[Interval], version: str) -> bool:
    """Whether ``version``'s application published a latency metric in any of ``intervals``."""
    return any(s is not None and (s.slow or s.latency_p99_ms is not None)
               for s in (getattr(i, version) for i in intervals))


def unmeasured_slow(verdict: Verdict, analysis: Analysis, intervals: Sequence[Interval],
                    history: Sequence[Interval], *, stage_over: bool) -> Verdict:
    """``verdict``, unless it passes a stage whose slow requests the canary never measured.

    ``intervals``: the stage's settled periods (those a pass stands on); ``history``: the baseline's
    periods before the stage. When slow requests are judged, the canary served requests in them and
    its application published none of its latency metrics, while the stable service's are there (in
    the stage, or before it at a stage of 100 %: the namespace is right, the new version is what does
    not publish), the stage does not pass on a slow count of 0: it goes on (RUNNING) and, once over,
    is INCONCLUSIVE, for a person to decide. A spec that does not judge slow requests, or a service
    whose stable version publishes none either (the rollout's start warns of it), is left as it was.
    """
    if verdict.phase is not Phase.SUCCESSFUL or "slow" not in analysis.metrics:
        return verdict
    served = served_unpublished(intervals, "canary")
    if not served or not (published(intervals, "baseline") or published(history, "baseline")):
        return verdict
    then = ("a person decides: approve accepts it, reject rolls back" if stage_over
            else "the stage goes on, still judged, and a person decides at its end if they stay missing")
    return verdict.model_copy(update={
        "phase": Phase.INCONCLUSIVE if stage_over else Phase.RUNNING,
        "reason": (f"{verdict.reason}; but the canary's application published no {SLOW_REQUEST_COUNT} nor "
                   f"{RESPONSE_TIME_P99} for its {served:,} requests, while the stable service's are there: its slow "
                   f"requests are unmeasured, not 0, so the stage does not pass on them ({then})"),
    })
