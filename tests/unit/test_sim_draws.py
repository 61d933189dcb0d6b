"""The simulator's draws follow the model's distributions, in time that does not grow with the
number of requests.

Moment checks compare a sample of seeded draws with theory, allowing 5 standard errors (the
standard error of a variance estimated from the sample's own fourth moment): a seeded run is
deterministic, and a wrong distribution is off by many more.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from rollway.sim.draws import binomial, poisson, uniform_order_statistics
from rollway.sim.profiles import BehaviourProfile

SIGMAS = 5.0


class CountingRandom(random.Random):
    """A Random that counts the uniforms drawn (gauss, betavariate etc. draw through random())."""

    def __init__(self, seed):
        super().__init__(seed)
        self.calls = 0

    def random(self):
        self.calls += 1
        return super().random()


def assert_moments(xs: list[float], mean: float, variance: float | None = None) -> None:
    n = len(xs)
    m = statistics.fmean(xs)
    s2 = statistics.variance(xs)
    assert abs(m - mean) <= SIGMAS * math.sqrt(s2 / n), (m, mean)
    if variance is not None:
        fourth = statistics.fmean((x - m) ** 4 for x in xs)
        se = math.sqrt(max(fourth - s2 * s2 * (n - 3) / (n - 1), 0.0) / n)
        assert abs(s2 - variance) <= SIGMAS * se, (s2, variance)


def assert_fits(draws: list[int], pmf, low: int, high: int) -> None:
    """Chi-square goodness of fit over the values low..high (the rest pooled into two tails)."""
    n = len(draws)
    cells = [sum(pmf(k) for k in range(low))] + [pmf(k) for k in range(low, high + 1)]
    cells.append(max(1.0 - sum(cells), 0.0))
    observed = [0] * len(cells)
    for d in draws:
        observed[0 if d < low else len(cells) - 1 if d > high else d - low + 1] += 1
    chi2 = sum((o - n * p) ** 2 / (n * p) for o, p in zip(observed, cells) if n * p > 0)
    df = sum(1 for p in cells if n * p > 0) - 1
    assert chi2 <= df + SIGMAS * math.sqrt(2 * df), (chi2, df)


def poisson_pmf(mean):
    return lambda k: math.exp(k * math.log(mean) - mean - math.lgamma(k + 1))


def binomial_pmf(n, p):
    return lambda k: math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                              + k * math.log(p) + (n - k) * math.log1p(-p))


# --- counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("mean", [0.5, 3.0, 29.9, 30.0, 40.0, 250.0, 12_345.6, 600_000.0])
def test_poisson_has_the_poisson_mean_and_variance(mean):
    rng = random.Random(f"poisson/{mean}")
    assert_moments([poisson(rng, mean) for _ in range(4000)], mean, mean)


@pytest.mark.parametrize("mean", [30.0, 45.5, 1000.0])
def test_poisson_fits_the_poisson_distribution(mean):
    rng = random.Random(f"poisson-fit/{mean}")
    spread = 3 * math.sqrt(mean)
    assert_fits([poisson(rng, mean) for _ in range(20_000)], poisson_pmf(mean), int(mean - spread), int(mean + spread))


@pytest.mark.parametrize("n, p", [(500, 0.002), (500, 0.02), (500, 0.7), (60_000, 0.001), (100, 0.5),
                                  (600_000, 0.3), (600_000, 0.99995)])
def test_binomial_has_the_binomial_mean_and_variance(n, p):
    rng = random.Random(f"binomial/{n}/{p}")
    assert_moments([binomial(rng, n, p) for _ in range(4000)], n * p, n * p * (1 - p))


@pytest.mark.parametrize("n, p", [(60_000, 0.001), (400, 0.3), (10_000, 0.8)])
def test_binomial_fits_the_binomial_distribution(n, p):
    rng = random.Random(f"binomial-fit/{n}/{p}")
    spread = 3 * math.sqrt(n * p * (1 - p))
    assert_fits([binomial(rng, n, p) for _ in range(20_000)], binomial_pmf(n, p),
                int(n * p - spread), int(n * p + spread))


def test_binomial_edges():
    rng = random.Random(0)
    assert binomial(rng, 0, 0.5) == 0 and binomial(rng, 10, 0.0) == 0 and binomial(rng, 10, 1.0) == 10


def test_uniform_order_statistics_have_the_beta_means_and_covariances():
    m, ranks, n = 50, [1, 25, 50], 6000
    rng = random.Random("order")
    draws = [uniform_order_statistics(rng, m, ranks) for _ in range(n)]
    assert all(a < b < c for a, b, c in draws)
    for i, k in enumerate(ranks):
        column = [d[i] for d in draws]
        assert_moments(column, k / (m + 1), k * (m - k + 1) / ((m + 1) ** 2 * (m + 2)))
    # Cov(U_(i), U_(j)) = i (m - j + 1) / ((m + 1)^2 (m + 2)) for i < j: drawn jointly, not apart.
    products = [d[1] * d[2] for d in draws]
    expected = 25 * 1 / ((m + 1) ** 2 * (m + 2)) + (25 / (m + 1)) * (50 / (m + 1))
    assert_moments(products, expected)


# --- one interval ------------------------------------------------------------------------

CALM = BehaviourProfile(error_probability=0.001, median_ms=120, sigma=0.5)
ROUGH = BehaviourProfile(error_probability=0.05, median_ms=300, sigma=1.0, dlq_rate=0.01, burst_concentration=50)


def brute_force(rng: random.Random, profile: BehaviourProfile, requests: int, slow_ms: float) -> dict[str, float]:
    """The latency figures of ``requests`` latencies drawn one by one."""
    latencies = sorted(math.exp(math.log(profile.median_ms) + profile.sigma * rng.gauss()) for _ in range(requests))
    return {"slow": sum(1 for x in latencies if x > slow_ms), "sum": math.fsum(latencies), "min": latencies[0],
            "max": latencies[-1], "p99": latencies[math.ceil(0.99 * requests) - 1]}


@pytest.mark.parametrize("profile, requests, slow_ms", [
    (CALM, 3, 250.0), (CALM, 150, 250.0), (CALM, 1000, 250.0), (ROUGH, 1000, 500.0), (ROUGH, 700, 5000.0),
])
def test_latency_figures_are_distributed_as_a_sample_drawn_one_by_one(profile, requests, slow_ms):
    """Two-sample comparison of means and variances with the per-request model."""
    n = 1500
    rng, reference = random.Random(f"fast/{requests}"), random.Random(f"slow/{requests}")
    ours = [profile.draw(rng, requests, slow_ms) for _ in range(n)]
    theirs = [brute_force(reference, profile, requests, slow_ms) for _ in range(n)]
    ours_figures = {"slow": [d.slow for d in ours], "sum": [d.latency_sum_ms for d in ours],
                    "min": [d.latency_min_ms for d in ours], "max": [d.latency_max_ms for d in ours],
                    "p99": [d.latency_p99_ms for d in ours]}
    for name, xs in ours_figures.items():
        ys = [t[name] for t in theirs]
        if name == "slow" or min(xs + ys) <= 0:
            assert_same(xs, ys)
        else:  # latencies: compare their logs too, whose moments are far less heavy-tailed
            assert_same(xs, ys, variances=False)
            assert_same([math.log(x) for x in xs], [math.log(y) for y in ys])


def assert_same(xs: list[float], ys: list[float], *, variances: bool = True) -> None:
    """Two samples have the same mean (and variance), within 5 standard errors of the difference."""
    def mean_variance_and_errors(zs):
        n, m, s2 = len(zs), statistics.fmean(zs), statistics.variance(zs)
        fourth = statistics.fmean((z - m) ** 4 for z in zs)
        return m, s2, s2 / n, max(fourth - s2 * s2 * (n - 3) / (n - 1), 0.0) / n

    mx, vx, mex, vex = mean_variance_and_errors(xs)
    my, vy, mey, vey = mean_variance_and_errors(ys)
    assert abs(mx - my) <= SIGMAS * math.sqrt(mex + mey), (mx, my)
    if variances:
        assert abs(vx - vy) <= SIGMAS * math.sqrt(vex + vey), (vx, vy)


@pytest.mark.parametrize("profile, slow_ms", [(CALM, 250.0), (ROUGH, 500.0)])
def test_a_large_interval_has_the_lognormal_sum_and_slow_count(profile, slow_ms):
    requests, rng = 60_000, random.Random("large")
    draws = [profile.draw(rng, requests, slow_ms) for _ in range(3000)]
    s = profile.sigma
    mean = profile.median_ms * math.exp(s * s / 2)
    variance = mean * mean * (math.exp(s * s) - 1)
    assert_moments([d.latency_sum_ms for d in draws], requests * mean, requests * variance)
    q = profile.slow_probability(slow_ms)
    assert_moments([d.slow for d in draws], requests * q, requests * q * (1 - q))


@pytest.mark.parametrize("seed", range(5))
def test_the_p99_of_a_large_interval_is_the_profiles_p99(seed):
    """600,000 requests (10,000 a second for a minute): the sample p99 of sigma 0.5 has a relative
    standard error of 0.25 %."""
    draw = CALM.draw(random.Random(seed), 600_000, 250.0)
    assert draw.latency_p99_ms == pytest.approx(CALM.p99_ms, rel=SIGMAS * 0.0025)


@pytest.mark.parametrize("profile", [
    CALM, ROUGH, BehaviourProfile(median_ms=50, sigma=5.0), BehaviourProfile(median_ms=50, sigma=0.001),
    BehaviourProfile(median_ms=300, sigma=0.0), BehaviourProfile(median_ms=100, sigma=0.0),
])
@pytest.mark.parametrize("slow_ms", [1e-3, 120.0, 250.0, 301.0, 1e9])
@pytest.mark.parametrize("requests", [1, 2, 3, 99, 100, 101, 201, 202, 1000, 60_000, 600_000])
def test_latency_figures_are_those_of_one_sample(profile, slow_ms, requests):
    rank = math.ceil(0.99 * requests)
    for seed in range(3):
        d = profile.draw(random.Random(seed), requests, slow_ms)
        assert d.requests == requests and 0 <= d.slow <= requests
        assert 0 < d.latency_min_ms <= d.latency_p99_ms <= d.latency_max_ms
        assert d.latency_min_ms * (1 - 1e-12) <= d.latency_avg_ms <= d.latency_max_ms * (1 + 1e-12)
        assert (d.slow > 0) == (d.latency_max_ms > slow_ms)
        assert (d.slow < requests) == (d.latency_min_ms <= slow_ms)
        # The p99 is the rank-th fastest: slow iff all requests from that rank up are.
        assert (d.latency_p99_ms > slow_ms) == (d.slow >= requests - rank + 1)


def test_an_empty_interval_has_no_latency():
    d = CALM.draw(random.Random(0), 0, 250.0)
    assert (d.requests, d.errors, d.slow, d.dlq, d.latency_sum_ms, d.latency_p99_ms) == (0, 0, 0, 0, None, None)


@pytest.mark.parametrize("requests", [200, 60_000])
def test_bursty_errors_have_the_documented_variance(requests):
    """Beta(p k, (1 - p) k) error probability per interval: variance n p (1 - p) (1 + (n - 1) / (k + 1))."""
    p, k = 0.05, 10.0
    bursty = BehaviourProfile(error_probability=p, sigma=0.5, burst_concentration=k)
    rng = random.Random(f"burst/{requests}")
    errors = [bursty.draw(rng, requests, 1e9).errors for _ in range(4000)]
    assert_moments(errors, requests * p, requests * p * (1 - p) * (1 + (requests - 1) / (k + 1)))


def test_dead_letters_are_binomial():
    requests = 60_000
    rng = random.Random("dlq")
    dlq = [ROUGH.draw(rng, requests, 500.0).dlq for _ in range(4000)]
    assert_moments(dlq, requests * ROUGH.dlq_rate, requests * ROUGH.dlq_rate * (1 - ROUGH.dlq_rate))


def test_an_interval_costs_the_same_few_draws_whatever_its_requests():
    """The cost does not grow with the rate: a tick of 600,000 requests takes a few hundred
    uniforms, as does one of 6,000 (the requests between known order statistics are drawn one
    by one only when there are at most 200 of them)."""
    for requests in (6_000, 600_000):
        rng = CountingRandom(requests)
        count = poisson(rng, requests)
        ROUGH.draw(rng, count, 500.0)
        CALM.draw(rng, count, 250.0)
        assert rng.calls < 1500, (requests, rng.calls)


@pytest.mark.parametrize("profile", [CALM, ROUGH])
def test_the_same_seed_gives_the_same_draw(profile):
    assert profile.draw(random.Random("x"), 12_345, 250.0) == profile.draw(random.Random("x"), 12_345, 250.0)
