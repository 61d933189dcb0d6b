"""The seed's absolute thresholds, applied on top of any comparison.

Error rate above the guardrail rolls back (1% during canary stages, 5% while monitoring after
promotion); DLQ messages and slow responses only alert, as in the seed's DeploymentMonitor.
"""

from __future__ import annotations

import math
import sys

from rollway.model import Interval, Observation, Verdict, VersionSample
from rollway.phases import Phase
from rollway.spec import Guardrails


def check(guardrails: Guardrails, observation: Observation, *, monitoring: bool) -> Verdict:
    """FAILED when the canary's error rate crosses the guardrail; alerts for DLQ and latency."""
    return check_totals(guardrails, observation.totals("canary"), observation.totals("baseline").requests,
                        dlq_messages=observation.dlq_messages, monitoring=monitoring)


def check_totals(guardrails: Guardrails, canary: VersionSample, baseline_requests: int, *,
                 dlq_messages: int = 0, monitoring: bool) -> Verdict:
    """``check`` on totals already summed (``canary``: the stage's totals, see RunningTotals)."""
    limit = guardrails.monitor_error_rate if monitoring else guardrails.canary_error_rate
    alerts: list[str] = []
    if dlq_messages > guardrails.dlq_messages:
        alerts.append(f"{dlq_messages} message(s) in the dead-letter queues")
    if canary.latency_avg_ms is not None and canary.latency_avg_ms > guardrails.response_time_seconds * 1000:
        alerts.append(
            f"canary average response time {canary.latency_avg_ms / 1000:.1f} s is over "
            f"{guardrails.response_time_seconds:g} s"
        )
    rate = canary.errors / canary.requests if canary.requests else 0.0
    phase = Phase.SUCCESSFUL
    reason = f"canary error rate {rate:.2%} within the {limit:.0%} guardrail"
    # A couple of errors in the first requests of a stage is not a rate: the guardrail acts
    # alone only on min_errors errors (with 2, it rolled back 1-2% of healthy stages at 1
    # req/s in benchmarks/judge.py; with 5, none of 1,000).
    if canary.requests and rate > limit and canary.errors >= guardrails.min_errors:
        phase = Phase.FAILED
        reason = (
            f"canary error rate {rate:.2%} ({canary.errors}/{canary.requests}) is over the "
            f"{limit:.0%} guardrail"
        )
    return Verdict(
        phase=phase,
        reason=reason,
        metric="error_rate",
        statistic=rate,
        thresholds={"error_rate": limit},
        canary_requests=canary.requests,
        baseline_requests=baseline_requests,
        alerts=tuple(alerts),
    )


class RunningTotals:
    """``Observation.totals(version)`` kept up to date one interval at a time.

    A replay checks the guardrails after every interval of a file; re-totalling all of them
    each time made it quadratic in the file's length. ``sample()`` equals ``totals`` over the
    intervals added so far, to the last bit of the latency average, so the guardrail decides
    exactly as it does on the whole observation.
    """

    def __init__(self, version: str) -> None:
        self.version = version
        self.requests = self.errors = self.slow = 0
        self._latency_sum = _FloatSum()  # of latency_avg_ms * requests, as totals() weighs it
        self._latency_requests = 0  # requests of the intervals that have an average latency
        self._p99: float | None = None

    def add(self, interval: Interval) -> None:
        """Count one more interval (one with no data for the version counts nothing)."""
        sample: VersionSample | None = getattr(interval, self.version)
        if sample is None:
            return
        self.requests += sample.requests
        self.errors += sample.errors
        self.slow += sample.slow
        if sample.latency_avg_ms is not None:
            self._latency_sum.add(sample.latency_avg_ms * sample.requests)
            self._latency_requests += sample.requests
        # As max() does: keep the first of equal values, replace only on a greater one.
        if sample.latency_p99_ms is not None and (self._p99 is None or sample.latency_p99_ms > self._p99):
            self._p99 = sample.latency_p99_ms

    def sample(self) -> VersionSample:
        """The totals so far, as ``Observation.totals`` returns them."""
        avg = (self._latency_sum.total() / max(1, self._latency_requests)
               if self._latency_sum.count else None)
        return VersionSample(requests=self.requests, errors=self.errors, slow=self.slow,
                             latency_avg_ms=avg, latency_p99_ms=self._p99)


class _FloatSum:
    """What builtin ``sum()`` returns for the floats added so far, one float at a time.

    From Python 3.12 ``sum()`` compensates rounding errors (Neumaier's algorithm, as in
    CPython's bltinmodule.c); before, it adds left to right. A plain running ``+=`` would
    differ from ``Observation.totals`` in the last bits on 3.12 and later.
    """

    _COMPENSATED = sys.version_info >= (3, 12)

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0.0
        self._compensation = 0.0

    def add(self, x: float) -> None:
        # sum() starts from the int 0: the first float is just 0 + x, uncompensated.
        if self.count == 0 or not self._COMPENSATED:
            self._sum += x
        else:
            t = self._sum + x
            if abs(self._sum) >= abs(x):
                self._compensation += (self._sum - t) + x
            else:
                self._compensation += (x - t) + self._sum
            self._sum = t
        self.count += 1

    def total(self) -> float:
        # As sum() ends: a zero compensation is not added (it would turn -0.0 into 0.0), nor a
        # non-finite one (it would turn an overflowed sum into NaN).
        if self._compensation and math.isfinite(self._compensation):
            return self._sum + self._compensation
        return self._sum
