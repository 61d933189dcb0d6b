"""Random draws of the traffic simulator whose cost does not grow with the number of requests.

A tick at 1,000 requests per second is 60,000 requests; drawing each (a Poisson arrival and a
latency per request) cost tens of milliseconds of CPU per tick and made the request rate a
limit of the simulator. Everything here is exact in distribution and costs O(1) expected time
for large counts:

- ``poisson``: Hormann's PTRS transformed rejection for large means, arrival counting below;
- ``binomial``: Hormann's BTRS for large ``n * min(p, 1 - p)``, geometric skips below;
- ``LatencyBand``: lognormal latencies restricted to a band of normal scores, with the order
  statistics of a sample drawn as Beta-distributed uniform order statistics mapped through the
  band's inverse CDF, and the sum of the requests between two known order statistics drawn
  exactly (few requests) or from the normal law of their sum (many requests).

References: W. Hormann, "The transformed rejection method for generating Poisson random
variables" (1993) and "The generation of binomial random variates" (1993).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist

# Means below this are drawn by counting unit-rate arrivals (O(mean), cheap here); PTRS is
# exact for means of 10 and more.
_POISSON_COUNTING_BELOW = 30.0
# Binomials with fewer expected successes (or failures) than this skip geometrically (O(n*p));
# BTRS is exact from 10 on.
_BINOMIAL_SKIPPING_BELOW = 10.0
# Up to this many requests between two known order statistics are drawn one by one; more are
# summed with the central limit theorem (200 iid terms of a distribution bounded to the gap).
EXACT_SUM_MAX = 200

_INV_CDF = NormalDist().inv_cdf
_BELOW_ONE = math.nextafter(1.0, 0.0)
_SQRT2 = math.sqrt(2.0)


def poisson(rng: random.Random, mean: float) -> int:
    """One Poisson(``mean``) draw in O(1) expected time (O(mean) for small means)."""
    if mean < _POISSON_COUNTING_BELOW:
        # Arrivals of a unit-rate process within ``mean``; 1 - random() is in (0, 1].
        rand, log = rng.random, math.log
        count, elapsed = 0, -log(1.0 - rand())
        while elapsed <= mean:
            count += 1
            elapsed += -log(1.0 - rand())
        return count
    # PTRS, as in Hormann (1993) and numpy's random_poisson_ptrs.
    slam, loglam = math.sqrt(mean), math.log(mean)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = rng.random() - 0.5
        v = 1.0 - rng.random()  # in (0, 1]: log(v) is finite
        us = 0.5 - abs(u)
        if us <= 0.0:
            continue  # random() was exactly 0; the paper's u is open at both ends
        k = math.floor((2.0 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + log_inv_alpha - math.log(a / (us * us) + b) <= -mean + k * loglam - math.lgamma(k + 1):
            return k


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Successes in ``n`` trials of probability ``p``, exactly, in O(1) expected time
    (O(n * min(p, 1 - p)) when that is small)."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    if n * p < _BINOMIAL_SKIPPING_BELOW:
        log_q = math.log1p(-p)
        count = position = 0
        while True:
            # Geometric gap to the next success; 1 - random() lies in (0, 1], so the log is finite.
            position += int(math.log(1.0 - rng.random()) / log_q) + 1
            if position > n:
                return count
            count += 1
    # BTRS, as in Hormann (1993) and CPython 3.12's random.binomialvariate.
    spq = math.sqrt(n * p * (1.0 - p))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    vr = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    lpq = math.log(p / (1.0 - p))
    m = math.floor((n + 1) * p)  # the mode
    h = math.lgamma(m + 1) + math.lgamma(n - m + 1)
    while True:
        u = rng.random() - 0.5
        us = 0.5 - abs(u)
        if us <= 0.0:
            continue  # random() was exactly 0
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        v = 1.0 - rng.random()  # in (0, 1]: log(v) is finite
        if us >= 0.07 and v <= vr:
            return k
        v *= alpha / (a / (us * us) + b)
        if math.log(v) <= h - math.lgamma(k + 1) - math.lgamma(n - k + 1) + (k - m) * lpq:
            return k


def uniform_order_statistics(rng: random.Random, m: int, ranks: list[int]) -> list[float]:
    """The ``ranks``-th smallest (1-based, ascending ranks) of ``m`` iid uniforms, drawn jointly.

    The highest rank k is Beta(k, m - k + 1); given it, the k - 1 uniforms below it are iid
    uniform under it, so each lower rank is the one above times a Beta draw. Products keep the
    relative precision of the smallest values.
    """
    out = [0.0] * len(ranks)
    above_rank, above = m + 1, 1.0
    for i in range(len(ranks) - 1, -1, -1):
        k = ranks[i]
        above *= rng.betavariate(k, above_rank - k)
        out[i], above_rank = above, k
    return out


def normal_cdf(z: float) -> float:
    """The standard normal CDF, accurate far into the lower tail (erfc does not cancel)."""
    return 0.5 * math.erfc(-z / _SQRT2)


def _mass(lo: float, hi: float) -> float:
    """P(lo < Z <= hi) for a standard normal Z, taken in the tail where it does not cancel."""
    return normal_cdf(-lo) - normal_cdf(-hi) if lo + hi > 0 else normal_cdf(hi) - normal_cdf(lo)


@dataclass(frozen=True)
class LatencyBand:
    """Latencies ``exp(mu + sigma * z)`` of requests whose normal score z lies in (lo, hi].

    Positions in the band are uniforms measured from its outer end: from the top for a band
    in the upper half of the normal (its extreme values are its slowest), from the bottom
    otherwise, so that the extreme order statistics keep their precision.
    """

    mu: float
    sigma: float
    lo: float
    hi: float

    @property
    def from_top(self) -> bool:
        return self.lo + self.hi > 0

    def latency(self, z: float) -> float:
        return math.exp(self.mu + self.sigma * z)

    @cached_property
    def _tail_and_mass(self) -> tuple[float, float]:
        """The normal mass beyond the band's outer end, and the band's own mass."""
        outer = normal_cdf(-self.hi) if self.from_top else normal_cdf(self.lo)
        return outer, _mass(self.lo, self.hi)

    def score(self, w: float) -> float:
        """The normal score at position ``w`` in (0, 1] (clamped inside the open unit interval)."""
        outer, mass = self._tail_and_mass
        z = _INV_CDF(min(max(outer + w * mass, 5e-324), _BELOW_ONE))
        return -z if self.from_top else z

    def order_scores(self, rng: random.Random, m: int, ranks: list[int]) -> list[float]:
        """Scores of the ``ranks``-th fastest (ascending 1-based ranks) of ``m`` requests in the band."""
        if self.from_top:  # the k-th fastest is the (m - k + 1)-th from the top
            own = uniform_order_statistics(rng, m, [m - k + 1 for k in reversed(ranks)])
            return [self.score(w) for w in reversed(own)]
        return [self.score(w) for w in uniform_order_statistics(rng, m, ranks)]

    def sum_between(self, rng: random.Random, count: int, lo: float, hi: float) -> float:
        """The latency sum of ``count`` iid requests with scores in (lo, hi] (finite ends)."""
        if count <= 0:
            return 0.0
        inner = LatencyBand(self.mu, self.sigma, lo, hi)
        if count <= EXACT_SUM_MAX:
            return math.fsum(inner.latency(inner.score(1.0 - rng.random())) for _ in range(count))
        x_lo, x_hi = self.latency(lo), self.latency(hi)
        mean, variance = inner.moments()
        if not (math.isfinite(mean) and math.isfinite(variance)):
            mean, variance = (x_lo + x_hi) / 2, 0.0  # a band too narrow to resolve its mass
        total = rng.gauss(count * mean, math.sqrt(count * variance))
        # The normal law of the sum has unbounded support, but every term lies in
        # [x_lo, x_hi]: clamping keeps the tick a possible sample (its average between its
        # minimum and maximum) at the cost of a sliver of the tails, where the normal
        # approximation is off anyway.
        return min(max(total, count * x_lo), count * x_hi)

    def moments(self) -> tuple[float, float]:
        """Mean and variance of one latency in the band: E[X^k | band] for a lognormal is
        exp(k*mu + k^2*sigma^2/2) * P(lo - k*sigma < Z <= hi - k*sigma) / P(lo < Z <= hi)."""
        mass, mu, s = _mass(self.lo, self.hi), self.mu, self.sigma
        if mass <= 0.0:
            return math.nan, math.nan
        first = math.exp(mu + s * s / 2) * _mass(self.lo - s, self.hi - s) / mass
        second = math.exp(2 * mu + 2 * s * s) * _mass(self.lo - 2 * s, self.hi - 2 * s) / mass
        return first, max(second - first * first, 0.0)  # cancellation can dip below 0 for tiny sigma
