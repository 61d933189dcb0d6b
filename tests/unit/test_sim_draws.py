"""The simulator's bulk draws give exactly what one Python call per value gave, so every seeded
demo and test figure is unchanged by drawing faster."""

from __future__ import annotations

import heapq
import math
import random

import pytest

from rollway.sim.profiles import BehaviourProfile, IntervalDraw, binomial, standard_normals
from rollway.sim.traffic import poisson


def one_call_per_value(rng: random.Random, profile: BehaviourProfile, requests: int, slow_ms: float) -> IntervalDraw:
    """The draw as it was written before: a gauss() call per request, then one pass per figure."""
    errors = binomial(rng, requests, profile.interval_error_probability(rng))
    dlq = binomial(rng, requests, profile.dlq_rate)
    mu, sigma = math.log(profile.median_ms), profile.sigma
    latencies = [math.exp(mu + sigma * rng.gauss()) for _ in range(requests)]
    rank = math.ceil(0.99 * requests)
    return IntervalDraw(requests=requests, errors=errors, slow=sum(1 for x in latencies if x > slow_ms), dlq=dlq,
                        latency_sum_ms=math.fsum(latencies), latency_min_ms=min(latencies),
                        latency_max_ms=max(latencies), latency_p99_ms=heapq.nlargest(requests - rank + 1, latencies)[-1])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 101, 5_000])
@pytest.mark.parametrize("kept", [False, True])
def test_standard_normals_are_gauss_calls_value_for_value_and_leave_the_same_state(n, kept):
    ours, theirs = random.Random(f"n{n}"), random.Random(f"n{n}")
    if kept:  # a pair's second value already waiting, as after an odd number of gauss() calls
        ours.gauss(), theirs.gauss()
    assert standard_normals(ours, n) == [theirs.gauss() for _ in range(n)]
    assert (ours.gauss(), ours.random()) == (theirs.gauss(), theirs.random())


@pytest.mark.parametrize("profile", [
    BehaviourProfile(error_probability=0.001, median_ms=120, sigma=0.5),
    BehaviourProfile(error_probability=0.05, median_ms=300, sigma=1.0, dlq_rate=0.01, burst_concentration=50),
])
@pytest.mark.parametrize("requests", [1, 2, 99, 100, 3_001])
def test_an_interval_draw_is_the_one_a_call_per_request_gave(profile, requests):
    for seed in range(5):
        got = profile.draw(random.Random(f"{seed}/draw"), requests, 250.0)
        assert got == one_call_per_value(random.Random(f"{seed}/draw"), profile, requests, 250.0)
        assert got.latency_min_ms <= got.latency_p99_ms <= got.latency_max_ms
    assert requests < 99 or got.slow > 0  # a case where the slow count is not trivially 0


@pytest.mark.parametrize("mean", [0.0, 0.5, 3.0, 250.0, 12_345.6])
def test_poisson_is_the_count_expovariate_calls_gave(mean):
    for seed in range(5):
        rng, reference = random.Random(seed), random.Random(seed)
        count, elapsed = 0, reference.expovariate(1.0)
        while elapsed <= mean:
            count += 1
            elapsed += reference.expovariate(1.0)
        assert poisson(rng, mean) == count
        assert rng.random() == reference.random()
