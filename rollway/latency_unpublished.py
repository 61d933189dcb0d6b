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


def published(intervals: Sequence[Interval], version: str) -> bool:
    """Whether ``version``'s application published any of its latency metrics in ``intervals`` (a
    slow request or a p99 in one of them)."""
    return _published(_samples(intervals, version))


def served_unpublished(intervals: Sequence[Interval], version: str) -> int:
    """The requests ``version`` served in ``intervals`` when its application published none of its
    latency metrics for them (no slow request and no p99 in any); 0 when it published some."""
    samples = _samples(intervals, version)
    return 0 if _published(samples) else sum(s.requests for s in samples)


def _published(samples: list) -> bool:
    return any(s.slow or s.latency_p99_ms is not None for s in samples)


def _samples(intervals: Sequence[Interval], version: str) -> list:
    return [s for s in (getattr(i, version) for i in intervals) if s is not None]


# The slow requests a canary as slow as the stable service would have counted, at or above which
# counting none is a sign its publisher does not publish: e^-7, under 0.1 %, for a healthy one.
EXPECTED_SLOW_FLOOR = 7.0


def stable_evidence(intervals: Sequence[Interval], history: Sequence[Interval], served: int) -> str | None:
    """What says the canary's application should have published a latency metric for its ``served``
    requests, from the stable service's periods in the stage and before it; None when nothing does.

    A ``SlowRequestCount`` of 0 reads as one never published, and many publishers (EMF, statsd)
    send it only when above 0: a canary as fast as the stable one, at 5 % of its traffic, can count
    none in a stage while the stable service counts a few. So the stable service's p99 is evidence
    (a publisher of p99 publishes it for every period it serves), and its slow counts only when, at
    their rate, the canary would have counted at least ``EXPECTED_SLOW_FLOOR``."""
    samples = _samples((*intervals, *history), "baseline")
    if any(s.latency_p99_ms is not None for s in samples):
        return f"while the stable service's {RESPONSE_TIME_P99} is there"
    requests, slow = sum(s.requests for s in samples), sum(s.slow for s in samples)
    expected = served * slow / requests if requests else 0.0
    if expected < EXPECTED_SLOW_FLOOR:
        return None
    return (f"while at the stable service's rate ({slow:,} slow of {requests:,}) it would have counted about "
            f"{expected:,.0f}")


def unmeasured_slow(verdict: Verdict, analysis: Analysis, intervals: Sequence[Interval],
                    history: Sequence[Interval], *, stage_over: bool) -> Verdict:
    """``verdict``, unless it passes a stage whose slow requests the canary never measured.

    ``intervals``: the stage's settled periods (those a pass stands on); ``history``: the baseline's
    periods before the stage. When slow requests are judged, the canary served requests in them and
    its application published none of its latency metrics, while the stable service's say it should
    have (``stable_evidence``; in the stage, or before it at a stage of 100 %: the namespace is
    right, the new version is what does not publish), the stage does not pass on a slow count of 0:
    it goes on (RUNNING) and, once over, is INCONCLUSIVE, for a person to decide. A spec that does
    not judge slow requests, or a service whose stable version publishes too little to tell (the
    rollout's start warns when it publishes none), is left as it was.
    """
    if verdict.phase is not Phase.SUCCESSFUL or "slow" not in analysis.metrics:
        return verdict
    served = served_unpublished(intervals, "canary")
    evidence = stable_evidence(intervals, history, served) if served else None
    if evidence is None:
        return verdict
    then = ("a person decides: approve accepts it, reject rolls back" if stage_over
            else "the stage goes on, still judged, and a person decides at its end if they stay missing")
    return verdict.model_copy(update={
        "phase": Phase.INCONCLUSIVE if stage_over else Phase.RUNNING,
        "reason": (f"{verdict.reason}; but the canary's application published no {RESPONSE_TIME_P99} and no "
                   f"{SLOW_REQUEST_COUNT} above 0 for its {served:,} requests, {evidence}: its slow requests look "
                   f"unmeasured, not 0, so the stage does not pass on them ({then})"),
    })
