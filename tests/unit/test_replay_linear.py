"""The replay keeps running totals for the guardrails: linear in the file, same verdicts.

Re-totalling every interval at every tick made ``rollway judge --replay`` quadratic (4,000
lines took 12.8 s). These tests pin that the running totals equal ``Observation.totals`` and
``guardrails.check`` bit for bit, and that a replay decides exactly as the tick-by-tick
``assess`` over the whole observation did.
"""

from __future__ import annotations

import math
import random
import sys
import time
from typing import Sequence

import pytest

from rollway.judge import assess
from rollway.judge.guardrails import RunningTotals, _FloatSum, check, check_totals
from rollway.judge.replay import Decisions, ReplayResult, replay
from rollway.judge.sequential import SequentialJudge
from rollway.model import Interval, Observation, VersionSample
from rollway.spec import Analysis, Guardrails


def random_sample(rng: random.Random, requests: int) -> VersionSample | None:
    """A version's interval: sometimes no data, errors from none to a bad canary's, latency or not."""
    if rng.random() < 0.1:
        return None
    errors = min(requests, int(rng.expovariate(1.0) * requests * rng.choice((0.001, 0.01, 0.05))))
    slow = min(requests, rng.randrange(0, requests // 10 + 1))
    latency = rng.choice((None, rng.uniform(5, 400), rng.lognormvariate(8, 2)))
    p99 = rng.choice((None, rng.uniform(50, 20_000)))
    return VersionSample(requests=requests, errors=errors, slow=slow, latency_avg_ms=latency, latency_p99_ms=p99)


def random_stream(rng: random.Random, length: int) -> list[Interval]:
    canary_rate = rng.choice((0, 1, 10, 60, 600))
    return [
        Interval(t=60.0 * (i + 1), baseline=random_sample(rng, rng.randrange(500, 2000)),
                 canary=random_sample(rng, rng.randrange(0, 2 * canary_rate + 1)))
        for i in range(length)
    ]


def test_float_sum_is_builtin_sum_to_the_last_bit():
    """Neumaier-compensated from Python 3.12, left to right before; either way as sum() does."""
    rng = random.Random(3)
    for _ in range(2000):
        values = [rng.choice((rng.uniform(0, 1), rng.lognormvariate(0, 30), -rng.lognormvariate(0, 30), 1e300,
                              -0.0, 0.0, 1e-300, 3.0)) for _ in range(rng.randrange(1, 30))]
        running = _FloatSum()
        for i, value in enumerate(values, start=1):
            running.add(value)
            assert repr(running.total()) == repr(sum(values[:i])), values[:i]
    for values in ([math.inf, 1.0], [1.0, math.inf, -math.inf], [1e308, 1e308, -1e308], [-0.0], [-0.0, -0.0]):
        running = _FloatSum()
        for value in values:
            running.add(value)
        assert repr(running.total()) == repr(sum(values)), values


@pytest.mark.parametrize("seed", range(40))
def test_running_totals_and_check_equal_the_full_ones_at_every_tick(seed):
    rng = random.Random(seed)
    stream = random_stream(rng, 60)
    guardrails = Guardrails()
    canary, baseline = RunningTotals("canary"), RunningTotals("baseline")
    for i, interval in enumerate(stream):
        canary.add(interval)
        baseline.add(interval)
        observation = Observation(start=0.0, end=interval.t, intervals=tuple(stream[: i + 1]))
        assert canary.sample() == observation.totals("canary")
        assert baseline.sample() == observation.totals("baseline")
        for monitoring in (False, True):
            full = check(guardrails, observation, monitoring=monitoring)
            assert check_totals(guardrails, canary.sample(), baseline.requests, monitoring=monitoring) == full


def replay_as_before(intervals: Sequence[Interval], analysis: Analysis, guardrails: Guardrails | None,
                     history: Sequence[Interval] = ()) -> ReplayResult:
    """The replay before running totals: assess() on the whole observation at every tick."""

    class Incremental:
        uses_history = False

        def __init__(self) -> None:
            self.state = SequentialJudge(analysis).start()
            self.seen = 0

        def evaluate(self, seen, *, stage_over, history=()):
            for interval in seen[self.seen:]:
                self.state.observe_interval(interval)
            self.seen = len(seen)
            return self.state.verdict(stage_over=stage_over)

    judge = Incremental()
    judge.state.calibrate(history)
    decisions = Decisions()
    for i, interval in enumerate(intervals):
        seen = intervals[: i + 1]
        stage_over = i == len(intervals) - 1
        if guardrails is None:
            verdict = judge.evaluate(seen, stage_over=stage_over)
        else:
            observation = Observation(start=intervals[0].t, end=interval.t, intervals=tuple(seen))
            verdict = assess(judge, guardrails, observation, stage_over=stage_over)
        ended = decisions.see(interval, verdict, stage_over=stage_over)
        if ended is not None:
            return ended
    raise AssertionError("unreachable")


def test_replay_verdicts_are_unchanged_on_random_streams():
    rng = random.Random(11)
    verdicts = set()
    for _ in range(150):
        stream = random_stream(rng, rng.randrange(1, 40))
        history = random_stream(rng, rng.choice((0, 60)))
        analysis = Analysis(mode=rng.choice(("two-sample", "one-sample")), alpha=rng.choice((0.01, 0.05)))
        for guardrails in (Guardrails(), None):
            result = replay(stream, analysis, guardrails, history)
            assert result == replay_as_before(stream, analysis, guardrails, history)
            verdicts.add((result.verdict, guardrails is None))
    # The streams reach every verdict, with and without the guardrails.
    assert {v for v, _ in verdicts} == {"rollback", "promote", "inconclusive"}


def steady(n: int) -> list[Interval]:
    return [Interval(t=60.0 * (i + 1), baseline=VersionSample(requests=1000, errors=1 if i % 3 == 0 else 0),
                     canary=VersionSample(requests=1, errors=0)) for i in range(n)]


def best_time(intervals: list[Interval]) -> float:
    # This thread's CPU time, not wall time: on a machine running other suites alongside, a replay
    # that waited for a core looked quadratic (the test failed at random under load); nor the
    # process's, which counts its other threads too.
    times = []
    for _ in range(3):
        start = time.thread_time()
        replay(intervals, Analysis(), Guardrails())
        times.append(time.thread_time() - start)
    return min(times)


def test_replay_time_grows_linearly_with_the_file():
    small, large = best_time(steady(400)), best_time(steady(1600))
    # Four times the lines: about four times the time when linear, sixteen when quadratic.
    assert large / small < 8, f"400 lines {small:.3f} s, 1600 lines {large:.3f} s"
