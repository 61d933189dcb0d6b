"""How a simulated version of the service behaves: errors, latency and dead-lettered messages.

A ``BehaviourProfile`` is attached to a container image; the traffic simulator looks up the
image each ECS service runs and draws that version's requests from its profile. The model is
deliberately small:

- each request fails (HTTP 5xx from the target) with probability ``error_probability``;
- its latency is lognormal with median ``median_ms`` and log-scale spread ``sigma``, so that
  ``p99 = median_ms * exp(z99 * sigma)`` with ``z99 ~= 2.326``: sigma 0.5 puts the p99 at
  3.2x the median, sigma 1.0 at 10.2x;
- its message ends up in a dead-letter queue with probability ``dlq_rate``;
- error, latency and dead letter are independent of each other (a failing request is as
  fast as any other);
- with ``burst_concentration`` set, errors come in bursts: every interval draws its own error
  probability from Beta(p*k, (1-p)*k), whose mean is p, instead of using p itself. The count
  of errors in an interval of n requests then has variance
  ``n*p*(1-p) * (1 + (n-1)/(k+1))``, more than the binomial ``n*p*(1-p)``; a smaller k means
  burstier errors, and k -> infinity gives back the plain binomial.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

from pydantic import BaseModel, ConfigDict, Field

from rollway.sim.draws import LatencyBand, binomial, normal_cdf

_Z99 = NormalDist().inv_cdf(0.99)


@dataclass(frozen=True)
class IntervalDraw:
    """What one version served in one simulated interval.

    Latency figures are None for an interval without requests. ``latency_p99_ms`` is the
    nearest-rank 99th percentile of the interval's own requests.
    """

    requests: int
    errors: int
    slow: int
    dlq: int
    latency_sum_ms: float | None = None
    latency_min_ms: float | None = None
    latency_max_ms: float | None = None
    latency_p99_ms: float | None = None

    @property
    def latency_avg_ms(self) -> float | None:
        return None if self.latency_sum_ms is None else self.latency_sum_ms / self.requests


class BehaviourProfile(BaseModel):
    """The behaviour of one version (one container image) under simulated traffic.

    Attributes:
        error_probability: probability that a request gets a 5xx from the target.
        median_ms: median request latency, in milliseconds.
        sigma: standard deviation of the latency's natural log (lognormal spread).
        dlq_rate: probability that a request's message ends in a dead-letter queue.
        burst_concentration: if set, the Beta concentration k of the per-interval error
            probability (see the module docstring); None means independent errors.
    """

    model_config = ConfigDict(frozen=True)

    error_probability: float = Field(default=0.001, ge=0, le=1)
    median_ms: float = Field(default=120.0, gt=0)
    sigma: float = Field(default=0.5, ge=0, le=5)
    dlq_rate: float = Field(default=0.0, ge=0, le=1)
    burst_concentration: float | None = Field(default=None, gt=0)

    @property
    def p99_ms(self) -> float:
        """The latency's 99th percentile implied by ``median_ms`` and ``sigma``."""
        return self.median_ms * math.exp(_Z99 * self.sigma)

    def slow_probability(self, threshold_ms: float) -> float:
        """Probability that one request is slower than ``threshold_ms``."""
        if self.sigma == 0:
            return 1.0 if self.median_ms > threshold_ms else 0.0
        # The upper tail as the lower tail of the mirror: 1 - cdf(z) would cancel for large z.
        return normal_cdf(-math.log(threshold_ms / self.median_ms) / self.sigma)

    def interval_error_probability(self, rng: random.Random) -> float:
        """This interval's error probability: the profile's own, or a Beta draw around it."""
        p, k = self.error_probability, self.burst_concentration
        if k is None or p in (0.0, 1.0):
            return p
        return rng.betavariate(p * k, (1.0 - p) * k)

    def draw(self, rng: random.Random, requests: int, slow_threshold_ms: float) -> IntervalDraw:
        """Draw the outcome of ``requests`` requests served in one interval, in time that does
        not grow with ``requests``.

        The latency figures are those of one consistent sample of ``requests`` lognormal
        latencies, drawn without drawing each: the slow count is Binomial(requests, P(slow));
        the fast and the slow requests are then two iid samples of the lognormal cut at the
        threshold; the minimum, maximum and nearest-rank p99 are order statistics of the group
        they fall in, and the requests between two of them are iid in the band between their
        values, whose sum is drawn exactly or from its normal law (``LatencyBand``).

        Args:
            rng: the random stream of this version and interval (consumed deterministically).
            requests: how many requests this version served.
            slow_threshold_ms: a request slower than this counts as slow.
        """
        if requests <= 0:
            return IntervalDraw(requests=0, errors=0, slow=0, dlq=0)
        errors = binomial(rng, requests, self.interval_error_probability(rng))
        dlq = binomial(rng, requests, self.dlq_rate)
        if self.sigma == 0:  # every request takes exactly the median
            slow = requests if self.median_ms > slow_threshold_ms else 0
            return IntervalDraw(requests, errors, slow, dlq, requests * self.median_ms,
                                self.median_ms, self.median_ms, self.median_ms)
        mu = math.log(self.median_ms)
        cut = (math.log(slow_threshold_ms) - mu) / self.sigma  # normal score of the threshold
        slow = binomial(rng, requests, self.slow_probability(slow_threshold_ms))
        fast = requests - slow
        p99_rank = math.ceil(0.99 * requests)  # nearest rank, 1-based
        known: dict[int, float] = {}  # overall rank -> latency
        total = 0.0
        # Rounding in exp(mu + sigma * z) may put a latency an ulp across the threshold its
        # score is on the right side of: each group is clamped to its side, so that "slow" and
        # "latency > threshold" agree.
        above = math.nextafter(slow_threshold_ms, math.inf)
        for band, size, offset, floor, ceiling in (
            (LatencyBand(mu, self.sigma, -math.inf, cut), fast, 0, 0.0, slow_threshold_ms),
            (LatencyBand(mu, self.sigma, cut, math.inf), slow, fast, above, math.inf),
        ):
            if size == 0:
                continue
            # The group's own ranks of the overall minimum, p99 and maximum, and both of its
            # extremes, so that every other request of the group lies between two known ones.
            ranks = sorted({1, size} | {k - offset for k in (1, p99_rank, requests) if 0 < k - offset <= size})
            scores = band.order_scores(rng, size, ranks)
            for rank, score in zip(ranks, scores):
                known[offset + rank] = min(max(band.latency(score), floor), ceiling)
                total += known[offset + rank]
            for (r_lo, z_lo), (r_hi, z_hi) in zip(zip(ranks, scores), zip(ranks[1:], scores[1:])):
                total += band.sum_between(rng, r_hi - r_lo - 1, z_lo, z_hi)
        # The gap sums are bounded by their ends' latencies before the clamp above: keep the
        # average between the minimum and the maximum exactly.
        total = min(max(total, requests * known[1]), requests * known[requests])
        return IntervalDraw(
            requests=requests,
            errors=errors,
            slow=slow,
            dlq=dlq,
            latency_sum_ms=total,
            latency_min_ms=known[1],
            latency_max_ms=known[requests],
            latency_p99_ms=known[p99_rank],
        )
