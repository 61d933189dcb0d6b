"""Monte Carlo benchmark of the sequential canary judge (issue 3).

Traffic is Poisson: the canary serves 5% of 20 or 200 req/s (1 or 10 req/s), the baseline the
other 95%, judged on 10-s or 60-s ticks. The baseline's error rate is 0.1%; the canary's is
0.1% (healthy), 0.2% (2x), 1% (10x) or 5% (50x). Two more healthy scenarios stress the
model: "bursty" errors come in clusters (compound Poisson, geometric cluster sizes with mean
``--burst-size``, independently in each version: the hard case for a two-sample test, a
cluster on the canary looks like a regression) and "incident" adds one 5-minute incident that
multiplies both versions' error rate by 20 (the case a two-sample test is built for);
"canary-bursty" clusters the canary's errors only, at the baseline's mean rate (a healthy canary
that the conditional test's Poisson model misreads unless it measures the canary too). Both
versions also serve 1% slow requests (the judge's second metric), bursty and hit by the
incident like the errors, so false rollbacks count both metrics together.

Every stage's stream is generated once (seeded per stage, so results do not depend on the
number of processes) and judged by these rules:

* judge: ``rollway.judge.sequential`` with the default ``Analysis`` (errors and slow requests
  judged, alpha = 1% split across them, margin 0.1 percentage point or 2x), fed the same
  per-interval counts the flows would feed it;
* naive: the seed's rule, roll back when the canary's error rate over the last 5 minutes is
  above 1%, checked every minute; it never passes early (it promotes at the end of the stage);
* SPRT/tick: Wald's SPRT (alpha = beta = 1%) that knows p0 = 0.1% and the scenario's p1
  (p0 + margin for the healthy ones) and looks at the canary's counts once per tick: what a
  clairvoyant one-sample test could do at this tick length;
* 2-sample/tick: the judge's conditional comparison with the baseline, at its per-metric alpha,
  told the regression's ratio;
* SPRT/tick@alpha and 2-sample@alpha_m (10x and 50x): the same two with the rollback bar set by
  simulation on healthy paths of the same traffic so that they roll back exactly alpha (alpha_m)
  of healthy stages. Wald's bars are conservative when a tick carries the statistic far past
  them, so these, not the Wald SPRTs, are the per-tick bounds the targets are judged against.

The optimum column is Wald's expected sample size of the SPRT for p0 against each p1, looking
at every request (``wald_sample_sizes``; a lower bound for any test with these error
probabilities); "exact SPRT" is that SPRT's real expected sample size, overshoot included,
estimated by simulation. Ratios are judge / optimum.

Stage length: ``--stage-factor`` times the largest optimum among the scenarios (the healthy
pass at p1 = 0.2%, 14,670 canary requests), i.e. 44,010 canary requests with the default 3:
12.2 hours at 1 req/s, 73 minutes at 10 req/s. The optimum finishes well within it.

Run ``python benchmarks/judge.py`` for the full run (5,000 healthy and 2,000 bad stages per
scenario) or ``--quick`` for CI.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field, replace
from multiprocessing import Pool
from pathlib import Path
from typing import Iterable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rollway.judge.msprt import conditional_log_lr, wald_sample_sizes  # noqa: E402
from rollway.judge.streams import add_events, poisson_counts  # noqa: E402
from rollway.judge.sequential import EvidenceSettings, StageEvidence  # noqa: E402
from rollway.spec import Analysis, Guardrails  # noqa: E402

P0 = 0.001
# Both versions' share of slow requests (the default slo_slow_rate): the judge's second metric,
# healthy in every scenario (the regressions are in the errors).
SLOW_RATE = Analysis().slo_slow_rate
CANARY_SHARE = 0.05
SPRT_ALPHA = SPRT_BETA = 0.01
NAIVE_LIMIT = 0.01
NAIVE_WINDOW = 300.0
NAIVE_EVERY = 60.0
GUARDRAIL_LIMIT = Guardrails().canary_error_rate
GUARDRAIL_MIN_ERRORS = Guardrails().min_errors
INCIDENT_SECONDS = 300.0
INCIDENT_FACTOR = 20.0


RULES = ("judge", "naive", "sprt_tick", "sprt2_tick", "guardrail", "policy", "sprt_exact", "sprt2_exact")
# Scenarios with a target on requests served, for which the references are calibrated.
TARGET_SCENARIOS = ("10x", "50x")
# The targets for bad-canary requests / optimum, by tick length (10x and 50x).
REQUEST_TARGETS = {10.0: 1.5, 60.0: 2.5}


@dataclass(frozen=True)
class Scenario:
    """What the canary (and the baseline) do during a stage."""

    name: str
    multiplier: float = 1.0
    bursty: bool = False
    incident: bool = False
    canary_bursty: bool = False  # only the canary's events come in clusters

    @property
    def bad(self) -> bool:
        return self.multiplier > 1

    @property
    def canary_rate(self) -> float:
        return P0 * self.multiplier


SCENARIOS = (
    Scenario("healthy"),
    Scenario("bursty", bursty=True),
    Scenario("incident", incident=True),
    Scenario("canary-bursty", canary_bursty=True),
    Scenario("2x", 2.0),
    Scenario("10x", 10.0),
    Scenario("50x", 50.0),
)


@dataclass(frozen=True)
class Setting:
    """Traffic and tick length of one benchmark cell."""

    canary_rps: float
    tick: float
    stage_seconds: float
    burst_size: float = 3.0
    history_seconds: float = 3600.0

    @property
    def baseline_rps(self) -> float:
        return self.canary_rps * (1 - CANARY_SHARE) / CANARY_SHARE

    @property
    def ticks(self) -> int:
        return int(math.ceil(self.stage_seconds / self.tick))

    @property
    def label(self) -> str:
        return f"{self.canary_rps:g} req/s, {self.tick:g}-s ticks"


@dataclass(frozen=True)
class Outcome:
    """One rule on one stage: rollback, promote or none (the stage ended), when, at what cost."""

    decision: str
    t: float
    canary_requests: float


@dataclass
class Stream:
    """Per-tick counts of one stage."""

    n_c: list[int]
    e_c: list[int]
    n_b: list[int]
    e_b: list[int]
    history_n_b: list[int] = field(default_factory=list)
    history_e_b: list[int] = field(default_factory=list)
    s_c: list[int] = field(default_factory=list)
    s_b: list[int] = field(default_factory=list)
    history_s_b: list[int] = field(default_factory=list)


# -- traffic -----------------------------------------------------------------------------------


def make_stream(setting: Setting, scenario: Scenario, seed: str) -> Stream:
    """One stage's per-tick counts; non-error requests and errors are independent (Poisson thinning)."""
    rng = random.Random(seed)
    ticks, tick = setting.ticks, setting.tick
    p_c = scenario.canary_rate
    ok_c = poisson_counts(rng, setting.canary_rps * tick * (1 - p_c), ticks)
    ok_b = poisson_counts(rng, setting.baseline_rps * tick * (1 - P0), ticks)
    e_c, e_b = [0] * ticks, [0] * ticks
    cluster = setting.burst_size if scenario.bursty else 1.0
    canary_cluster = setting.burst_size if scenario.bursty or scenario.canary_bursty else 1.0
    add_events(rng, e_c, setting.canary_rps * p_c, tick, cluster=canary_cluster)
    add_events(rng, e_b, setting.baseline_rps * P0, tick, cluster=cluster)
    if scenario.incident:
        start = rng.uniform(0, ticks * tick - INCIDENT_SECONDS)
        extra = INCIDENT_FACTOR - 1
        add_events(rng, e_c, setting.canary_rps * p_c * extra, tick, start=start, end=start + INCIDENT_SECONDS)
        add_events(rng, e_b, setting.baseline_rps * P0 * extra, tick, start=start, end=start + INCIDENT_SECONDS)
    n_c = [a + b for a, b in zip(ok_c, e_c)]
    n_b = [a + b for a, b in zip(ok_b, e_b)]
    # The baseline's hour before the stage (all traffic on it, same burstiness, no incident),
    # from its own generator so the stage's counts do not depend on it.
    past = random.Random(f"{seed}:history")
    h_ticks = int(setting.history_seconds // tick)
    rps = setting.canary_rps + setting.baseline_rps
    h_e = [0] * h_ticks
    add_events(past, h_e, rps * P0, tick, cluster=cluster)
    h_n = [a + b for a, b in zip(poisson_counts(past, rps * tick * (1 - P0), h_ticks), h_e)]
    # Slow requests, from generators of their own so the error streams (and every error-only
    # rule) are the same with or without them; bursty like the errors, and hit by the same
    # shared incident.
    slow = random.Random(f"{seed}:slow")
    s_c, s_b = [0] * ticks, [0] * ticks
    add_events(slow, s_c, setting.canary_rps * SLOW_RATE, tick, cluster=canary_cluster)
    add_events(slow, s_b, setting.baseline_rps * SLOW_RATE, tick, cluster=cluster)
    if scenario.incident:
        add_events(slow, s_c, setting.canary_rps * SLOW_RATE * extra, tick, start=start, end=start + INCIDENT_SECONDS)
        add_events(slow, s_b, setting.baseline_rps * SLOW_RATE * extra, tick, start=start, end=start + INCIDENT_SECONDS)
    h_s = [0] * h_ticks
    add_events(random.Random(f"{seed}:history:slow"), h_s, rps * SLOW_RATE, tick, cluster=cluster)
    # A request is slow or not: never more slow requests than requests in a tick.
    return Stream(n_c, e_c, n_b, e_b, h_n, h_e, [min(a, b) for a, b in zip(s_c, n_c)],
                  [min(a, b) for a, b in zip(s_b, n_b)], [min(a, b) for a, b in zip(h_s, h_n)])


# -- the rules ---------------------------------------------------------------------------------


def run_judge(stream: Stream, setting: Setting, analysis: Analysis, settings: EvidenceSettings) -> Outcome:
    """The sequential judge, fed tick by tick exactly as the flows would feed it."""
    state = StageEvidence(analysis, settings)
    metrics = state.metrics
    for n_b, e_b, s_b in zip(stream.history_n_b, stream.history_e_b, stream.history_s_b):
        state.calibrate_counts(n_b, e_b, s_b)
    served = 0
    for i, (n_c, e_c, s_c, n_b, e_b, s_b) in enumerate(
            zip(stream.n_c, stream.e_c, stream.s_c, stream.n_b, stream.e_b, stream.s_b)):
        t = (i + 1) * setting.tick
        state.observe(t, n_c, e_c, s_c, n_b, e_b, s_b)
        served += n_c
        if any(m.rollback is not None for m in metrics):
            return Outcome("rollback", t, served)
        if served >= analysis.min_requests and all(m.passed is not None for m in metrics):
            return Outcome("promote", t, served)
    return Outcome("none", setting.ticks * setting.tick, served)


def run_naive(stream: Stream, setting: Setting) -> Outcome:
    """Roll back when the canary's error rate over the last 5 minutes exceeds 1%, checked each minute."""
    tick = setting.tick
    per_minute = max(1, int(round(NAIVE_EVERY / tick)))
    window = max(1, int(round(NAIVE_WINDOW / tick)))
    errors = [0, *itertools.accumulate(stream.e_c)]
    requests = [0, *itertools.accumulate(stream.n_c)]
    ticks = setting.ticks
    # Only a minute whose window holds a canary error can fire.
    candidates = sorted({
        end
        for i, e in enumerate(stream.e_c) if e
        for end in range((i // per_minute + 1) * per_minute, min(ticks, i + window) + 1, per_minute)
    })
    for end in candidates:
        start = max(0, end - window)
        n = requests[end] - requests[start]
        if n and (errors[end] - errors[start]) / n > NAIVE_LIMIT:
            return Outcome("rollback", end * tick, requests[end])
    return Outcome("promote", ticks * tick, requests[ticks])


def run_guardrail(stream: Stream, setting: Setting) -> Outcome:
    """rollway's absolute guardrail: the canary's stage error rate over 1%, from GUARDRAIL_MIN_ERRORS errors."""
    errors = requests = 0
    for i, (n, e) in enumerate(zip(stream.n_c, stream.e_c)):
        errors += e
        requests += n
        # The rate only rises in a tick with an error, so only those can fire.
        if e and errors >= GUARDRAIL_MIN_ERRORS and errors / requests > GUARDRAIL_LIMIT:
            return Outcome("rollback", (i + 1) * setting.tick, requests)
    return Outcome("none", setting.ticks * setting.tick, requests)


def combine(judge: Outcome, guardrail: Outcome) -> Outcome:
    """The flows' policy: the guardrail on top of the judge, whichever acts first."""
    if guardrail.decision == "rollback" and guardrail.t <= judge.t:
        return guardrail
    return judge


def wald_per_tick(steps: Iterable[float], served: Iterable[int], setting: Setting, alpha: float) -> Outcome:
    """Wald's boundaries (``alpha``, beta = 1%) on a log likelihood ratio growing by ``steps`` per tick."""
    upper = math.log((1 - SPRT_BETA) / alpha)
    lower = math.log(SPRT_BETA / (1 - alpha))
    llr = 0.0
    total = 0
    for i, (step, n) in enumerate(zip(steps, served)):
        llr += step
        total += n
        if llr >= upper:
            return Outcome("rollback", (i + 1) * setting.tick, total)
        if llr <= lower:
            return Outcome("promote", (i + 1) * setting.tick, total)
    return Outcome("none", setting.ticks * setting.tick, total)


def run_tick_sprt(stream: Stream, setting: Setting, p1: float) -> Outcome:
    """Wald's SPRT of p0 against p1 on the canary's counts, looked at once per tick."""
    up = math.log(p1 / P0)
    down = math.log((1 - p1) / (1 - P0))
    steps = (e * up + (n - e) * down for n, e in zip(stream.n_c, stream.e_c))
    return wald_per_tick(steps, stream.n_c, setting, SPRT_ALPHA)


def run_tick_sprt2(stream: Stream, setting: Setting, theta: float, alpha: float) -> Outcome:
    """A two-sample SPRT that knows the regression's size: the conditional test of ratio ``theta``.

    It compares the canary with the baseline exactly as the judge does (conditional on each
    tick's total, so the baseline's rate cancels), but bets on the scenario's true ratio
    instead of a mixture, at the judge's per-metric alpha; beta = 1%. Against the judge, which
    uses the same kind of bar, it shows what not knowing the ratio costs; the target verdicts
    use its calibrated form (``calibrate``), since Wald's bar is conservative at these ticks.
    """
    steps = (
        conditional_log_lr(e_c, e_b, n_c, n_b, theta) if n_c and n_b else 0.0
        for n_c, e_c, n_b, e_b in zip(stream.n_c, stream.e_c, stream.n_b, stream.e_b)
    )
    return wald_per_tick(steps, stream.n_c, setting, alpha)


# -- per-tick references at exactly alpha -----------------------------------------------------
#
# Wald's bars are conservative: a tick can carry the log likelihood ratio far past them
# (overshoot), so the SPRTs above roll back a healthy canary far less often than alpha and
# wait longer than they must. Wald and Wolfowitz's optimality holds only against tests no more
# error-prone than the SPRT really is, so the per-tick bound has to come from an SPRT whose
# rollback bar is set where its false-rollback rate really is alpha. The bar is found by
# simulation on healthy traffic of the cell's own rates (``calibrate``); the lower bar stays
# Wald's, so these references miss at most beta of the bad stages.

CALIBRATION_CHUNK = 64  # ticks drawn at a time: most healthy paths end within one chunk


@dataclass(frozen=True)
class Bar:
    """The rollback bar of one per-tick reference, calibrated on healthy paths to exactly ``alpha``."""

    setting: Setting
    kind: str  # "sprt_exact" (knows p0 and p1) or "sprt2_exact" (two-sample, knows the ratio)
    multiplier: float
    alpha: float
    upper: float
    lower: float
    calibration_rate: float  # false rollbacks on the paths the bar was set on
    check_rate: float  # false rollbacks on as many independent paths
    check_upper95: float


def healthy_ticks(rng: random.Random, setting: Setting) -> Iterable[tuple[int, int, int, int]]:
    """Per-tick (n_c, e_c, n_b, e_b) of a healthy stage, both versions at P0, drawn lazily."""
    c, b = setting.canary_rps * setting.tick, setting.baseline_rps * setting.tick
    while True:
        ok_c = poisson_counts(rng, c * (1 - P0), CALIBRATION_CHUNK)
        e_c = poisson_counts(rng, c * P0, CALIBRATION_CHUNK)
        ok_b = poisson_counts(rng, b * (1 - P0), CALIBRATION_CHUNK)
        e_b = poisson_counts(rng, b * P0, CALIBRATION_CHUNK)
        for i in range(CALIBRATION_CHUNK):
            yield ok_c[i] + e_c[i], e_c[i], ok_b[i] + e_b[i], e_b[i]


def reference_step(kind: str, multiplier: float, n_c: int, e_c: int, n_b: int, e_b: int) -> float:
    """One tick's log likelihood ratio of a reference: one-sample (p1 against P0) or two-sample (the ratio)."""
    if kind == "sprt_exact":
        p1 = P0 * multiplier
        return e_c * math.log(p1 / P0) + (n_c - e_c) * math.log((1 - p1) / (1 - P0))
    return conditional_log_lr(e_c, e_b, n_c, n_b, multiplier) if n_c and n_b else 0.0


def wald_bars(alpha: float) -> tuple[float, float]:
    """Wald's (upper, lower) bars for ``alpha`` and beta = 1%."""
    return math.log((1 - SPRT_BETA) / alpha), math.log(SPRT_BETA / (1 - alpha))


def path_maxima(setting: Setting, kind: str, multiplier: float, alpha: float, runs: int, seed: str) -> list[float]:
    """The highest log likelihood ratio each healthy path reaches before the lower bar (or the stage's end).

    A path is followed only until it reaches Wald's upper bar, above any bar calibration can choose.
    """
    upper, lower = wald_bars(alpha)
    rng = random.Random(seed)
    out = []
    for _ in range(runs):
        llr, top = 0.0, -math.inf
        for _tick, counts in zip(range(setting.ticks), healthy_ticks(rng, setting)):
            llr += reference_step(kind, multiplier, *counts)
            if llr <= lower:
                break
            top = max(top, llr)
            if llr >= upper:
                break
        out.append(top)
    return out


def calibrate(task: tuple[Setting, str, float, float, int, int]) -> Bar:
    """The lowest rollback bar whose false-rollback rate on ``runs`` healthy paths is at most ``alpha``.

    The rate is then measured again on as many paths from another seed, so the reader can see
    how much of the calibration is sampling noise.
    """
    setting, kind, multiplier, alpha, runs, seed = task
    wald_upper, lower = wald_bars(alpha)
    name = f"{seed}:{setting.label}:{kind}:{multiplier:g}"
    maxima = sorted(path_maxima(setting, kind, multiplier, alpha, runs, f"{name}:calibrate"), reverse=True)
    allowed = int(alpha * runs)  # paths that may reach the bar
    upper = min(wald_upper, math.nextafter(maxima[allowed], math.inf)) if allowed < runs else -math.inf
    check = path_maxima(setting, kind, multiplier, alpha, runs, f"{name}:check")
    crossed = sum(m >= upper for m in check)
    return Bar(setting, kind, multiplier, alpha, upper, lower, sum(m >= upper for m in maxima) / runs,
               crossed / runs, upper95(crossed, runs))


def run_bar(stream: Stream, setting: Setting, bar: Bar) -> Outcome:
    """A calibrated reference on one stage's counts."""
    llr = 0.0
    total = 0
    for i, counts in enumerate(zip(stream.n_c, stream.e_c, stream.n_b, stream.e_b)):
        llr += reference_step(bar.kind, bar.multiplier, *counts)
        total += counts[0]
        if llr >= bar.upper:
            return Outcome("rollback", (i + 1) * setting.tick, total)
        if llr <= bar.lower:
            return Outcome("promote", (i + 1) * setting.tick, total)
    return Outcome("none", setting.ticks * setting.tick, total)


def exact_sprt_sample_size(p: float, p1: float, runs: int, seed: int) -> float:
    """Mean requests the per-request SPRT of P0 against ``p1`` needs when the rate is ``p`` (simulated)."""
    rng = random.Random(seed)
    upper = math.log((1 - SPRT_BETA) / SPRT_ALPHA)
    lower = math.log(SPRT_BETA / (1 - SPRT_ALPHA))
    up = math.log(p1 / P0)
    down = -math.log((1 - p1) / (1 - P0))  # > 0: what each good request takes away
    log_fail = math.log(1 - p)
    total = 0
    for _ in range(runs):
        llr, n = 0.0, 0
        while True:
            gap = int(math.log(1.0 - rng.random()) / log_fail)  # good requests before the next error
            if llr - gap * down <= lower:
                n += math.ceil((llr - lower) / down)
                break
            llr -= gap * down
            n += gap + 1
            llr += up
            if llr >= upper:
                break
        total += n
    return total / runs


# -- running ---------------------------------------------------------------------------------


def p1_for(scenario: Scenario, analysis: Analysis) -> float:
    """The SPRT alternative the scenario is compared with: its own rate, or p0 + margin when healthy."""
    return scenario.canary_rate if scenario.bad else P0 + analysis.margin


Task = tuple[Setting, Scenario, int, int, int, Analysis, EvidenceSettings, tuple["Bar", ...]]


def simulate(task: Task) -> list[tuple[Outcome | None, ...]]:
    """Stages ``first``..``first+count-1`` of one cell: the outcome of each rule in RULES.

    The calibrated references run only where ``bars`` has one (None otherwise).
    """
    setting, scenario, seed, first, count, analysis, settings, bars = task
    by_kind = {bar.kind: bar for bar in bars}
    p1 = p1_for(scenario, analysis)
    theta = scenario.multiplier if scenario.bad else analysis.margin_ratio
    alpha_m = analysis.alpha / len(set(analysis.metrics))
    out = []
    for index in range(first, first + count):
        # A string seed is hashed deterministically by random.Random (hash() of a str is not).
        stream = make_stream(setting, scenario, f"{seed}:{setting.canary_rps:g}:{setting.tick:g}:{scenario.name}:{index}")
        judge = run_judge(stream, setting, analysis, settings)
        guardrail = run_guardrail(stream, setting)
        out.append((
            judge,
            run_naive(stream, setting),
            run_tick_sprt(stream, setting, p1),
            run_tick_sprt2(stream, setting, theta, alpha_m),
            guardrail,
            combine(judge, guardrail),
            *(run_bar(stream, setting, by_kind[kind]) if kind in by_kind else None
              for kind in ("sprt_exact", "sprt2_exact")),
        ))
    return out


def stage_seconds(rps: float, factor: float, analysis: Analysis) -> float:
    """``factor`` times the largest optimum (in canary requests) of the scenarios, in seconds at ``rps``."""
    largest = 0.0
    for scenario in SCENARIOS:
        n0, n1 = wald_sample_sizes(P0, p1_for(scenario, analysis), SPRT_ALPHA, SPRT_BETA)
        largest = max(largest, n1 if scenario.bad else n0)
    return factor * largest / rps


@dataclass
class Cell:
    setting: Setting
    scenario: Scenario
    outcomes: list[tuple[Outcome | None, ...]] = field(default_factory=list)


def upper95(k: int, n: int) -> float:
    """Wilson 95% upper bound of a proportion."""
    if n == 0:
        return float("nan")
    z = 1.96
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + half) / (1 + z * z / n)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summarize(cell: Cell, analysis: Analysis, exact: dict[float, float]) -> dict[str, object]:
    """The figures of one cell, per rule."""
    scenario, setting = cell.scenario, cell.setting
    p1 = p1_for(scenario, analysis)
    n0, n1 = wald_sample_sizes(P0, p1, SPRT_ALPHA, SPRT_BETA)
    optimum = n1 if scenario.bad else n0
    row: dict[str, object] = {
        "setting": setting.label,
        "tick": setting.tick,
        "scenario": scenario.name,
        "stages": len(cell.outcomes),
        "optimum_requests": optimum,
        "optimum_seconds": optimum / setting.canary_rps,
        "exact_sprt_requests": exact.get(p1 if scenario.bad else -p1, float("nan")),
        "tick_requests": setting.canary_rps * setting.tick,
    }
    for k, rule in enumerate(RULES):
        results = [o[k] for o in cell.outcomes if o[k] is not None]
        if not results:
            continue
        rolled = [r for r in results if r.decision == "rollback"]
        promoted = [r for r in results if r.decision == "promote"]
        row[f"{rule}_rollback"] = len(rolled) / len(results)
        row[f"{rule}_rollback_upper95"] = upper95(len(rolled), len(results))
        row[f"{rule}_promote"] = len(promoted) / len(results)
        row[f"{rule}_requests_to_rollback"] = mean([r.canary_requests for r in rolled])
        row[f"{rule}_seconds_to_promote"] = mean([r.t for r in promoted])
        row[f"{rule}_requests_to_promote"] = mean([r.canary_requests for r in promoted])
    return row


def run_cells(settings_list: Iterable[Setting], scenarios: Sequence[Scenario], healthy: int, bad: int,
              seed: int, analysis: Analysis, evidence: EvidenceSettings, workers: int,
              bars: Sequence[Bar] = (), chunk: int = 100) -> list[Cell]:
    """Simulate every (setting, scenario) cell, spread over ``workers`` processes."""
    cells, tasks, owners = [], [], []
    for setting in settings_list:
        for scenario in scenarios:
            cell = Cell(setting, scenario)
            cells.append(cell)
            stages = bad if scenario.bad else healthy
            own = tuple(b for b in bars if b.setting == setting and b.multiplier == scenario.multiplier)
            for first in range(0, stages, chunk):
                tasks.append((setting, scenario, seed, first, min(chunk, stages - first), analysis, evidence, own))
                owners.append(cell)
    # Longest cells first keeps both workers busy to the end.
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i][0].ticks)
    if workers > 1:
        with Pool(workers) as pool:
            results = pool.map(simulate, [tasks[i] for i in order], chunksize=1)
    else:
        results = [simulate(tasks[i]) for i in order]
    for i, outcomes in zip(order, results):
        owners[i].outcomes.extend(outcomes)
    return cells


def calibrate_bars(settings_list: Sequence[Setting], scenarios: Sequence[Scenario], analysis: Analysis,
                   runs: int, seed: int, workers: int) -> list[Bar]:
    """The calibrated references of every cell with a target, in parallel."""
    alpha_m = analysis.alpha / len(set(analysis.metrics))
    tasks = [
        (setting, kind, scenario.multiplier, alpha, runs, seed)
        for setting in settings_list
        for scenario in scenarios if scenario.name in TARGET_SCENARIOS
        for kind, alpha in (("sprt_exact", SPRT_ALPHA), ("sprt2_exact", alpha_m))
    ]
    if workers > 1 and len(tasks) > 1:
        with Pool(workers) as pool:
            return pool.map(calibrate, tasks, chunksize=1)
    return [calibrate(task) for task in tasks]


# -- printing --------------------------------------------------------------------------------


def fmt(value: object, kind: str = "") -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if kind == "%":
            return f"{value:.2%}"
        if kind == "x":
            return f"{value:.2f}x"
        return f"{value:,.0f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) if i > 1 else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def two_sample_efficiency(multiplier: float) -> float:
    """Information per canary request of the conditional two-sample test, over the one-sample test's.

    The one-sample test knows p0; the two-sample test learns it from the baseline (19 times the
    canary's traffic) and conditions on each interval's total, which is what makes it immune to
    shared incidents. The ratio bounds how close any two-sample test can get to the optimum.
    """
    p1 = P0 * multiplier
    ratio = (1 - CANARY_SHARE) / CANARY_SHARE
    q0 = 1 / (1 + ratio)
    q1 = multiplier / (multiplier + ratio)
    conditional = (p1 + ratio * P0) * (q1 * math.log(q1 / q0) + (1 - q1) * math.log((1 - q1) / (1 - q0)))
    one_sample = p1 * math.log(p1 / P0) + (1 - p1) * math.log((1 - p1) / (1 - P0))
    return conditional / one_sample


def ratio(a: object, b: object) -> float:
    return a / b if isinstance(a, float) and isinstance(b, float) and b else float("nan")  # type: ignore[operator]


def target_verdict(target: float, judge: float, tick: float, one_sample: float, two_sample: float) -> str:
    """Whether the judge meets a requests/optimum target and, if not, how far the references get.

    Only one bound is a proof: a test that decides once per tick serves at least one tick's
    requests, so a target below one tick's share of the optimum is out of reach. The
    calibrated references are the SPRTs at exactly alpha: by Wald and Wolfowitz (1948) no test
    that looks once per tick with error probabilities no larger than theirs needs fewer
    requests on average, but their miss rate is below beta, so a test allowed to miss exactly
    beta could be a little faster still.
    """
    if judge <= target:
        return "met"
    if tick > target:
        return f"missed: out of reach, one tick holds {tick:.2f}x the optimum"
    if one_sample > target:
        return f"missed: the SPRT/tick at alpha needs {one_sample:.2f}x"
    if two_sample > target:
        return f"missed: a two-sample test knowing the ratio needs {two_sample:.2f}x at alpha_m"
    return f"missed: a two-sample test knowing the ratio gets {two_sample:.2f}x at alpha_m"


TARGET_RULES = ("judge", "policy", "sprt_tick", "sprt2_tick", "sprt_exact", "sprt2_exact")


def target_rows(bad: Sequence[dict[str, object]]) -> list[tuple[str, ...]]:
    """One row per 10x/50x cell whose tick length the issue sets a target for."""
    out = []
    for r in bad:
        target = REQUEST_TARGETS.get(float(str(r["tick"])))
        if target is None or r["scenario"] not in TARGET_SCENARIOS:
            continue
        figures = [ratio(r.get(f"{rule}_requests_to_rollback", math.nan), r["optimum_requests"])
                   for rule in TARGET_RULES]
        tick = ratio(r["tick_requests"], r["optimum_requests"])
        out.append((
            str(r["setting"]), str(r["scenario"]), f"{target:g}x", fmt(tick, "x"), *(fmt(f, "x") for f in figures),
            target_verdict(target, figures[0], tick, figures[4], figures[5]),
        ))
    return out


def bar_rows(bars: Sequence[Bar]) -> list[tuple[str, ...]]:
    """How each calibrated reference's rollback bar compares with Wald's, and its false-rollback rate."""
    return [
        (
            bar.setting.label, f"{bar.multiplier:g}x",
            "SPRT/tick" if bar.kind == "sprt_exact" else "2-sample/tick", f"{bar.alpha:.1%}",
            # A bar at or below the lower one: every path that does not promote at once rolls back.
            f"{wald_bars(bar.alpha)[0]:.2f}", f"{bar.upper:.2f}" if bar.upper > bar.lower else "any",
            fmt(bar.calibration_rate, "%"),
            fmt(bar.check_rate, "%"), fmt(bar.check_upper95, "%"),
        )
        for bar in bars
    ]


def report(rows: list[dict[str, object]], bars: Sequence[Bar] = ()) -> str:
    """Two tables: healthy scenarios (false rollbacks, time to promote) and bad ones (detection, cost)."""
    healthy = [r for r in rows if r["scenario"] in ("healthy", "bursty", "incident", "canary-bursty")]
    bad = [r for r in rows if r not in healthy]
    h_rows = [
        (
            str(r["setting"]), str(r["scenario"]), fmt(r["stages"]),
            fmt(r["judge_rollback"], "%"), fmt(r["judge_rollback_upper95"], "%"),
            fmt(r["guardrail_rollback"], "%"), fmt(r["policy_rollback"], "%"),
            fmt(r["naive_rollback"], "%"), fmt(r["sprt_tick_rollback"], "%"),
            fmt(r["judge_promote"], "%"),
            fmt(r["judge_seconds_to_promote"]), fmt(r["optimum_seconds"]),
            fmt(ratio(r["judge_seconds_to_promote"], r["optimum_seconds"]), "x"),
            fmt(r["sprt_tick_seconds_to_promote"]), fmt(r["naive_seconds_to_promote"]),
        )
        for r in healthy
    ]
    b_rows = [
        (
            str(r["setting"]), str(r["scenario"]), fmt(r["stages"]),
            fmt(r["judge_rollback"], "%"), fmt(r["naive_rollback"], "%"), fmt(r["sprt_tick_rollback"], "%"),
            fmt(r["judge_requests_to_rollback"]), fmt(r["optimum_requests"]), fmt(r["exact_sprt_requests"]),
            fmt(ratio(r["judge_requests_to_rollback"], r["optimum_requests"]), "x"),
            fmt(r["sprt_tick_requests_to_rollback"]), fmt(r["sprt2_tick_requests_to_rollback"]),
            fmt(r.get("sprt_exact_requests_to_rollback", math.nan)),
            fmt(r.get("sprt2_exact_requests_to_rollback", math.nan)),
            fmt(ratio(r["judge_requests_to_rollback"], r["sprt_tick_requests_to_rollback"]), "x"),
            fmt(r["policy_requests_to_rollback"]), fmt(r["naive_requests_to_rollback"]), fmt(r["judge_promote"], "%"),
        )
        for r in bad
    ]
    efficiency = ", ".join(f"{m:g}x: {two_sample_efficiency(m):.0%}" for m in (2.0, 10.0, 50.0))
    parts = [
        "Healthy canaries: false rollbacks (FRB) per stage, and time to promote (seconds)",
        table(
            ("setting", "scenario", "stages", "judge FRB", "(95% up)", "guardrail FRB", "judge+guardrail FRB",
             "naive FRB", "SPRT/tick FRB", "judge promotes", "judge s", "optimum s", "ratio", "SPRT/tick s",
             "naive s"),
            h_rows,
        ),
        "Bad canaries: detection, and canary requests served before the rollback decision",
        table(
            ("setting", "scenario", "stages", "judge detects", "naive detects", "SPRT/tick detects",
             "judge req", "optimum", "exact SPRT", "ratio", "SPRT/tick req", "2-sample/tick req",
             "SPRT/tick@alpha req", "2-sample@alpha_m req", "judge/tick",
             "judge+guardrail req",
             "naive req", "judge promotes"),
            b_rows,
        ),
        "optimum: Wald's expected sample size (alpha = beta = 1%; healthy: p1 = p0 + margin), a lower bound\n"
        "for any test; exact SPRT: that SPRT looking at every request, overshoot included; SPRT/tick: the same\n"
        "SPRT looking once per tick; 2-sample/tick: the judge's conditional comparison with the baseline at its\n"
        "per-metric alpha, but knowing the regression's ratio. A two-sample test conditional on the total gets\n"
        f"this share of the one-sample test's information per canary request ({efficiency}).\n"
        "Both use Wald's bars, which overshoot makes conservative. @alpha: the same two tests with the rollback\n"
        "bar calibrated on healthy traffic so that they really roll back alpha (alpha_m) of healthy stages.\n"
        "judge+guardrail: the flows' policy.",
        "Calibrated rollback bars (log likelihood ratio; false rollbacks on the calibration paths and on as many\n"
        "independent paths)",
        table(("setting", "scenario", "reference", "alpha", "Wald bar", "bar", "FRB calibration", "FRB check",
               "(95% up)"), bar_rows(bars)),
        "Targets: bad-canary requests / optimum (10x and 50x)",
        table(("setting", "scenario", "target", "one tick", "judge", "judge+guardrail", "SPRT/tick", "2-sample/tick",
               "SPRT/tick@alpha", "2-sample@alpha_m", "verdict"),
              target_rows(bad)),
    ]
    # Leave out a table (and its title) when no scenario of its kind was run.
    keep = [bool(h_rows), bool(h_rows), bool(b_rows), bool(b_rows), True, bool(bars), bool(bars),
            bool(target_rows(bad)), bool(target_rows(bad))]
    return "\n\n".join(part for part, shown in zip(parts, keep) if shown)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred stages per cell (CI)")
    parser.add_argument("--healthy", type=int, help="healthy stages per scenario (default 5000, quick 300)")
    parser.add_argument("--bad", type=int, help="bad stages per scenario (default 2000, quick 150)")
    parser.add_argument("--stage-factor", type=float, default=3.0,
                        help="stage length as a multiple of the largest optimum (default 3)")
    parser.add_argument("--burst-size", type=float, default=3.0, help="mean error cluster size, bursty scenario")
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 10.0], help="canary req/s")
    parser.add_argument("--ticks", type=float, nargs="+", default=[10.0, 60.0], help="tick lengths, seconds")
    parser.add_argument("--scenarios", nargs="+", default=[s.name for s in SCENARIOS])
    parser.add_argument("--metrics", nargs="+", choices=["errors", "slow"], default=["errors", "slow"],
                        help="what the judge compares (alpha is split across them); the streams have no slow requests")
    parser.add_argument("--cap", default=None,
                        help="per-interval cap as a fraction of log(1/alpha_m), or 'none' (default: the judge's)")
    parser.add_argument("--history", type=float, default=3600.0,
                        help="seconds of the baseline's counts before each stage the judge may calibrate on (0: none)")
    parser.add_argument("--lift-cap-below", default=None,
                        help="lift the cap below this baseline dispersion bound, or 'never' (default: the judge's)")
    parser.add_argument("--no-local-tempering", action="store_true",
                        help="do not divide the rollback evidence by the canary's neighbour-to-neighbour dispersion")
    parser.add_argument("--calibration-runs", type=int,
                        help="healthy paths each calibrated reference's bar is set on (default 20000, quick 2000)")
    parser.add_argument("--seed", type=int, default=20240603)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)

    healthy = args.healthy or (300 if args.quick else 5000)
    bad = args.bad or (150 if args.quick else 2000)
    analysis = Analysis(judge="sequential", metrics=tuple(args.metrics))
    evidence = EvidenceSettings()
    if args.cap is not None:
        evidence = replace(evidence, cap_fraction=None if args.cap == "none" else float(args.cap))
    if args.lift_cap_below is not None:
        evidence = replace(evidence, lift_cap_below=None if args.lift_cap_below == "never" else float(args.lift_cap_below))
    if args.no_local_tempering:
        evidence = replace(evidence, local_canary_tempering=False)
    scenarios = [s for s in SCENARIOS if s.name in args.scenarios]
    settings_list = [
        Setting(rps, tick, stage_seconds(rps, args.stage_factor, analysis), args.burst_size, args.history)
        for rps in args.rates for tick in args.ticks
    ]
    started = time.perf_counter()
    bars = calibrate_bars(settings_list, scenarios, analysis, args.calibration_runs or (2000 if args.quick else 20000),
                          args.seed, args.workers)
    cells = run_cells(settings_list, scenarios, healthy, bad, args.seed, analysis, evidence, args.workers, bars)
    exact_runs = 4000 if args.quick else 40000
    exact = {}
    for scenario in scenarios:
        p1 = p1_for(scenario, analysis)
        key = p1 if scenario.bad else -p1
        exact[key] = exact_sprt_sample_size(scenario.canary_rate, p1, exact_runs, args.seed)
    rows = [summarize(c, analysis, exact) for c in cells]
    elapsed = time.perf_counter() - started
    print(f"judge benchmark: {healthy} healthy / {bad} bad stages per cell; stage = {args.stage_factor:g} x "
          f"the largest optimum ({', '.join(f'{s.label}: {s.stage_seconds:,.0f} s' for s in settings_list)}); "
          f"bursty cluster size {args.burst_size:g}; judged: {' and '.join(args.metrics)}, cap "
          f"{evidence.cap_fraction}, lifted below dispersion {evidence.lift_cap_below}; baseline history "
          f"{args.history:g} s; seed {args.seed}")
    print()
    print(report(rows, bars))
    print()
    print(f"wall time {elapsed:.1f} s on {args.workers} process(es)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
