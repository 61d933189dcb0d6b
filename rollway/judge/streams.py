"""Seeded Poisson traffic for judging the judge: exact draws, fast enough for Monte Carlo.

The benchmark (benchmarks/judge.py) and the property tests draw per-interval request and
event counts from here. Draws are exact (inversion on a cached table of the Poisson
distribution), at any mean: the tests of alpha are only as good as the traffic they use.
"""

from __future__ import annotations

import bisect
import functools
import math
import random


@functools.lru_cache(maxsize=256)
def poisson_table(mean: float) -> tuple[tuple[float, ...], int]:
    """Cumulative Poisson(mean) probabilities from ``low`` on, covering all but ~1e-12 of the mass.

    Returns:
        ``(cdf, low)``: ``cdf[i]`` is P(X <= low + i).
    """
    if mean <= 0:
        return (1.0,), 0
    width = 12 * math.sqrt(mean) + 20
    low = max(0, int(mean - width))
    log_mean = math.log(mean)
    cdf, total = [], 0.0
    for k in range(low, int(mean + width) + 1):
        total += math.exp(k * log_mean - mean - math.lgamma(k + 1))
        cdf.append(total)
    return tuple(cdf), low


def poisson_counts(rng: random.Random, mean: float, size: int) -> list[int]:
    """``size`` independent Poisson(mean) draws."""
    cdf, low = poisson_table(mean)
    top, hi = cdf[-1], len(cdf) - 1
    return [low + bisect.bisect(cdf, rng.random() * top, 0, hi) for _ in range(size)]


def poisson(rng: random.Random, mean: float) -> int:
    """One Poisson(mean) draw."""
    return poisson_counts(rng, mean, 1)[0]


def add_events(
    rng: random.Random,
    counts: list[int],
    rate: float,
    tick: float,
    *,
    start: float = 0.0,
    end: float | None = None,
    cluster: float = 1.0,
) -> None:
    """Add events arriving at ``rate`` per second to per-tick ``counts``, within [start, end).

    With ``cluster`` > 1 events come in bursts (compound Poisson): bursts arrive at
    ``rate / cluster`` per second and each holds a geometric number of events with mean
    ``cluster``, all in the tick the burst arrives in; the mean rate stays ``rate`` and the
    variance of a count is ``2*cluster - 1`` times its mean.
    """
    end = len(counts) * tick if end is None else end
    if rate <= 0:
        return
    arrivals = rate / cluster
    log_stay = math.log(1 - 1 / cluster) if cluster > 1 else None
    t = start
    while True:
        t += rng.expovariate(arrivals)
        if t >= end:
            return
        size = 1 if log_stay is None else 1 + int(math.log(1.0 - rng.random()) / log_stay)
        counts[int(t / tick)] += size
