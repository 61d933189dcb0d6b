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

import heapq
import math
import random
from dataclasses import dataclass
from statistics import NormalDist

from pydantic import BaseModel, ConfigDict, Field

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


def standard_normals(rng: random.Random, n: int) -> list[float]:
    """``n`` standard normal draws: the values, and the state ``rng`` is left in, of ``n``
    calls of ``rng.gauss()``, drawn in bulk.

    The simulator draws a latency per request, tens of thousands per tick at the demo's rates,
    and ``gauss()`` per call was most of its CPU: enough, on a loaded machine, for the thread to
    fall behind the sped-up clock and publish periods late. This is the same Box-Muller
    transform ``gauss()`` uses (two uniforms give a pair; the second value of a pair is kept for
    the next draw) without a Python call per value, so every seeded figure stays as it was.
    """
    out: list[float] = []
    if n <= 0:
        return out
    kept = rng.gauss_next  # type: ignore[attr-defined] - gauss()'s cached second value
    rng.gauss_next = None  # type: ignore[attr-defined]
    if kept is not None:
        out.append(kept)
    pairs = (n - len(out) + 1) // 2
    rand, log, sqrt, cos, sin, two_pi = rng.random, math.log, math.sqrt, math.cos, math.sin, 2.0 * math.pi
    # gauss() draws the angle's uniform first, then the radius's, pair after pair.
    uniforms = [rand() for _ in range(2 * pairs)]
    angles = [u * two_pi for u in uniforms[0::2]]
    radii = [sqrt(-2.0 * log(1.0 - u)) for u in uniforms[1::2]]
    for angle, radius in zip(angles, radii):
        out.append(cos(angle) * radius)
        out.append(sin(angle) * radius)
    if len(out) > n:
        rng.gauss_next = out.pop()  # type: ignore[attr-defined] - as gauss() keeps it
    return out


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Successes in ``n`` trials of probability ``p``, exactly, in O(n * min(p, 1 - p)) draws.

    Skips from one success to the next with geometric gaps, which is cheap for the small
    probabilities (errors, dead letters) the simulator mostly draws.
    """
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    log_q = math.log1p(-p)
    count = position = 0
    while True:
        # 1 - random() lies in (0, 1], so the log is finite.
        position += int(math.log(1.0 - rng.random()) / log_q) + 1
        if position > n:
            return count
        count += 1


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
        return 1.0 - NormalDist().cdf(math.log(threshold_ms / self.median_ms) / self.sigma)

    def interval_error_probability(self, rng: random.Random) -> float:
        """This interval's error probability: the profile's own, or a Beta draw around it."""
        p, k = self.error_probability, self.burst_concentration
        if k is None or p in (0.0, 1.0):
            return p
        return rng.betavariate(p * k, (1.0 - p) * k)

    def draw(self, rng: random.Random, requests: int, slow_threshold_ms: float) -> IntervalDraw:
        """Draw the outcome of ``requests`` requests served in one interval.

        Every request gets its own latency, so the average, p99, maximum and slow count are
        those of one consistent sample. Cost: about 0.3 microseconds of CPU per request (0.46
        with a ``gauss()`` call per request).

        Args:
            rng: the random stream of this version and interval (consumed deterministically).
            requests: how many requests this version served.
            slow_threshold_ms: a request slower than this counts as slow.
        """
        if requests <= 0:
            return IntervalDraw(requests=0, errors=0, slow=0, dlq=0)
        errors = binomial(rng, requests, self.interval_error_probability(rng))
        dlq = binomial(rng, requests, self.dlq_rate)
        mu, sigma, exp = math.log(self.median_ms), self.sigma, math.exp
        latencies = [exp(mu + sigma * z) for z in standard_normals(rng, requests)]
        rank = math.ceil(0.99 * requests)  # nearest rank, 1-based
        return IntervalDraw(
            requests=requests,
            errors=errors,
            slow=sum(1 for x in latencies if x > slow_threshold_ms),
            dlq=dlq,
            latency_sum_ms=math.fsum(latencies),
            latency_min_ms=min(latencies),
            latency_max_ms=max(latencies),
            latency_p99_ms=heapq.nlargest(requests - rank + 1, latencies)[-1],
        )
