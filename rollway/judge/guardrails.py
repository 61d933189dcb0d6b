"""The seed's absolute thresholds, applied on top of any comparison.

Error rate above the guardrail rolls back (1% during canary stages, 5% while monitoring after
promotion); DLQ messages and slow responses only alert, as in the seed's DeploymentMonitor
("Messages in DLQ during deployment"): messages that arrived during the stage or the monitoring
window, not those a DLQ held before (which alerted in every stage of every rollout).
Requests the load balancer answered 5xx itself (``Observation.unserved``) count too, see
``check_totals``.
"""

from __future__ import annotations

import math
import sys
from typing import Sequence

from rollway.judge import canary_rate, rate_beside, setting_percent
from rollway.model import Alert, Interval, Observation, QueueDepth, Verdict, VersionSample
from rollway.phases import Phase
from rollway.spec import Guardrails


# Verdict.metric of a check that found load-balancer 5xx and no request count to set them against.
UNATTRIBUTED = "unserved_without_requests"

# What every guardrail verdict on requests the load balancer refused itself says (``check_totals``).
LOAD_BALANCER_5XX = "answered 5xx by the load balancer itself"

GUARDRAIL = "guardrail"
"""Who asks for a rollback a guardrail's verdict calls for: the ledger, the page and the reports name it."""


def asked_by(reason: str) -> str:
    """Who asked for the rollback a stage's failed verdict calls for, from its reason: ``GUARDRAIL``
    when the guardrails' verdict was the worse (each of theirs names a guardrail, or the requests
    the load balancer refused itself when it has no rate to hold to one), "judge" otherwise."""
    return GUARDRAIL if GUARDRAIL in reason or LOAD_BALANCER_5XX in reason else "judge"


def check(guardrails: Guardrails, observation: Observation, *, monitoring: bool,
          history: Sequence[Interval] = (), healthy_targets: int | None = None) -> Verdict:
    """FAILED when the canary's error rate crosses the guardrail; alerts for DLQ and latency.

    ``history``: the periods before the stage (the judge's calibration read), which give the
    load balancer's own 5xx rate before the stage (``unserved_background``).
    ``healthy_targets``: see ``check_totals``.
    """
    return check_totals(guardrails, observation.totals("canary"), observation.totals("baseline").requests,
                        dead_letters=observation.dead_letters, unserved=observation.unserved(),
                        background=unserved_background(history), monitoring=monitoring,
                        healthy_targets=healthy_targets)


def unattributed(observation: Observation, *, monitoring: bool) -> bool:
    """Whether the observation holds load-balancer 5xx and no request count to set them against
    (``check_totals``): then only the guarded version's healthy targets say whose they are, and a
    flow reads them for ``check(healthy_targets=...)``."""
    served = observation.totals("canary").requests
    if not monitoring:
        served += observation.totals("baseline").requests
    return observation.unserved() > 0 and served == 0


def unserved_background(history: Sequence[Interval]) -> float | None:
    """Load-balancer 5xx per baseline request before the stage, in the periods when the canary
    served nothing; None when there are none (the hour before a later stage is the stage before).

    The count is the whole load balancer's (other rules, the baseline's targets cycling), so
    some of it is there whatever the canary does. Periods the canary served in are left out:
    a canary refused there (an earlier stage, or this one before a resume) would make its own
    failure the background.
    """
    quiet = [i for i in history if i.baseline is not None and (i.canary is None or i.canary.requests == 0)]
    rate = _unserved_rate(quiet)
    if rate is None:
        return None
    # A canary with weight and no target has no RequestCount either, so its refused periods
    # (an earlier attempt within the hour) look quiet; against the hour's own rate they are
    # outliers, and left out.
    return _unserved_rate([i for i in quiet if (i.unserved or 0) <= _poisson_ceiling(rate * i.baseline.requests)])


def _unserved_rate(periods: Sequence[Interval]) -> float | None:
    served = sum(i.baseline.requests for i in periods)
    return sum(i.unserved or 0 for i in periods) / served if served > 0 else None


def _poisson_ceiling(mean: float) -> float:
    """A count a steady Poisson rate of ``mean`` a period is very unlikely to exceed."""
    return mean + 3 * math.sqrt(mean) + 3


def check_totals(guardrails: Guardrails, canary: VersionSample, baseline_requests: int, *,
                 dead_letters: Sequence[QueueDepth] = (), unserved: int = 0,
                 background: float | None = None, monitoring: bool, healthy_targets: int | None = None) -> Verdict:
    """``check`` on totals already summed (``canary``: the stage's totals, see RunningTotals).

    ``dead_letters``: each dead-letter queue's depth at the start of the stage (or of the
    monitoring window) and its deepest since: an alert when, together, they gained more than
    ``guardrails.dlq_messages``, naming the queues that did.

    ``unserved``: requests the load balancer answered 5xx itself over the same intervals
    (``HTTPCode_ELB_5XX_Count``); a version with weight but no target shows up only there,
    with no request count of its own. That count has no target group, and the guardrail is
    not told the weights, so whose they were is bounded instead of guessed:

    - Monitoring (after promotion the canary has all the traffic): they are the canary's,
      requests and errors both, and count toward its error rate.
    - During a stage, FAILED when they alone are over the guardrail as a share of every
      request the load balancer received for the two versions (``baseline + canary +
      unserved``, from ``min_errors`` on): whoever they belong to, this rollout's users are
      refused at that rate, and rolling back returns to the state before it.
    - During a stage, never SUCCESSFUL (RUNNING: not passing yet, nothing to roll back on)
      while counting those that may be the canary's (``_canarys_share``: those above the
      rate before the stage, ``background``) as its errors would put it over the guardrail:
      a stage does not pass on errors that may be its own, yet a healthy canary at a small
      weight is neither rolled back nor held for the load balancer's steady background.
    - With no request count to set them against (no version the rate is taken over has a
      RequestCount in these intervals, e.g. at night), they make no error rate: an absent
      RequestCount is no data, not zero requests, and five stray 5xx are not "100 %". Nor do
      they pass: the verdict is RUNNING, metric ``UNATTRIBUTED``, with an alert. Only the
      guarded version's targets can tell whose they are, so a flow that reads them passes
      ``healthy_targets``: none means the version refuses everything sent to it, FAILED from
      ``min_errors`` on; some means they are not its (a target that is sent requests counts
      them), and the check saw nothing of it.
    """
    if unserved < 0:
        raise ValueError(f"unserved must not be negative, got {unserved}")
    limit = guardrails.monitor_error_rate if monitoring else guardrails.canary_error_rate
    alerts: list[Alert] = []
    arrived = sum(d.grown for d in dead_letters)
    if arrived > guardrails.dlq_messages:
        alerts.append(Alert(kind="dead_letters", message=_dead_letters_said(dead_letters, monitoring=monitoring),
                            about=tuple(d.queue for d in dead_letters if d.grown)))
    if canary.latency_avg_ms is not None and canary.latency_avg_ms > guardrails.response_time_seconds * 1000:
        alerts.append(Alert(kind="response_time", message=(
            f"canary average response time {_seconds_over(canary.latency_avg_ms / 1000, guardrails.response_time_seconds)}"
            f" s is over {guardrails.response_time_seconds:g} s"
        )))
    # After promotion the rate is the promoted version's alone; during a stage the refused share
    # is taken over both versions.
    served = canary.requests if monitoring else baseline_requests + canary.requests
    if unserved and not served:
        return _unattributed(guardrails, canary, baseline_requests, unserved, healthy_targets, limit, alerts,
                             monitoring=monitoring)
    received = baseline_requests + canary.requests + unserved
    refused = (f"; {unserved:,} of the {received:,} requests the load balancer received were answered 5xx by the "
               "load balancer itself, no target serving them" if unserved else "")
    if monitoring:
        errors, requests = canary.errors + unserved, canary.requests + unserved
    else:
        errors, requests = canary.errors, canary.requests
    rate = errors / requests if requests else 0.0
    metric, statistic = "error_rate", rate
    phase = Phase.SUCCESSFUL
    over = bool(requests) and rate > limit
    said_over = f"canary error rate {rate_beside(rate, limit)} ({errors:,}/{requests:,}) is over the {setting_percent(limit)} guardrail"
    # Over the rate on too few errors to act on (below): "15.00% within the 5% guardrail" was
    # false, and a person reading the monitoring log took the figure for a typo.
    reason = (f"{said_over} on {errors:,} error(s), fewer than the {guardrails.min_errors:,} it acts on{refused}" if over
              else f"{canary_rate(errors, requests, limit)} within the {setting_percent(limit)} guardrail{refused}"
              if requests else f"{canary_rate(errors, requests)} (nothing for the {setting_percent(limit)} guardrail "
                               f"to act on){refused}")
    # A couple of errors in the first requests of a stage is not a rate: the guardrail acts
    # alone only on min_errors errors (with 2, it rolled back 1-2% of healthy stages at 1
    # req/s in benchmarks/judge.py; with 5, none of 1,000).
    if over and errors >= guardrails.min_errors:
        phase = Phase.FAILED
        reason = f"{said_over}{refused}"
    elif unserved and not monitoring:
        share = unserved / received
        own = _canarys_share(unserved, background, canary.requests, baseline_requests)
        bound = (canary.errors + own) / (canary.requests + own) if canary.requests + own else 0.0
        if share > limit and unserved >= guardrails.min_errors:
            phase, metric, statistic = Phase.FAILED, "unserved_rate", share
            reason = (f"{unserved:,} of the {received:,} requests the load balancer received ({rate_beside(share, limit)}) were "
                      f"answered 5xx by the load balancer itself, no target serving them: over the {setting_percent(limit)} "
                      "guardrail")
        elif bound > limit:
            phase = Phase.RUNNING
            reason = (f"{canary_rate(errors, requests)}{refused}; with the {own:,.0f} of them that may be the canary's "
                      f"(beyond the rate before the stage), its error rate would be {rate_beside(bound, limit)}, over the "
                      f"{setting_percent(limit)} guardrail: not passing on it")
    return Verdict(
        phase=phase,
        reason=reason,
        metric=metric,
        statistic=statistic,
        thresholds={"error_rate": limit},
        canary_requests=canary.requests,
        baseline_requests=baseline_requests,
        alerts=tuple(alerts),
    )


def _dead_letters_said(dead_letters: Sequence[QueueDepth], *, monitoring: bool) -> str:
    """The dead-letter alert: what the queues gained, naming each (on-call opens that one: its
    redrive source says which consumer failed). A queue with no reading from before the window
    (``QueueDepth.first`` None) is said with what it holds, its starting depth unknown: "41 new"
    from a depth taken as 0 announced a queue's old failures as the release's."""
    known = [d for d in dead_letters if d.grown and d.first is not None]
    unknown = [d for d in dead_letters if d.grown and d.first is None]
    began = "monitoring" if monitoring else "the stage"
    parts = [f"{d.queue}: {d.first} → {d.deepest}" for d in known]
    parts += [f"{d.queue}: {d.deepest} (starting depth unknown)" for d in unknown]
    said = []
    if known:
        said.append(f"{sum(d.grown for d in known)} new message(s) in the dead-letter queues since {began} began")
    if unknown:
        said.append(f"{sum(d.deepest for d in unknown)} message(s) (starting depth unknown)"
                    + ("" if known else " in the dead-letter queues"))
    notes = ["messages they held before are not counted"] if known else []
    if unknown:
        notes.append(f"no CloudWatch reading of {'it' if len(unknown) == 1 else 'them'} from before {began} began: "
                     "SQS publishes nothing for a queue idle for hours, so some may be older")
    return f"{', and '.join(said)} ({', '.join(parts)}; {'; '.join(notes)})"


def _seconds_over(seconds: float, limit: float) -> str:
    """An average over ``limit`` with as many decimals as it takes to show it over: 10.04 s
    printed to one decimal read "10.0 s is over 10 s"."""
    digits = 1
    text = f"{seconds:.{digits}f}"
    while float(text) <= limit and digits < 6:
        digits += 1
        text = f"{seconds:.{digits}f}"
    return text


def _unattributed(guardrails: Guardrails, canary: VersionSample, baseline_requests: int, unserved: int,
                  healthy_targets: int | None, limit: float, alerts: list[Alert], *, monitoring: bool) -> Verdict:
    """The verdict on load-balancer 5xx with no request count to set them against (see ``check_totals``)."""
    who = "the promoted version" if monitoring else "the canary"
    nobody = "the promoted version has no" if monitoring else "neither version has a"
    counted = (f"{unserved:,} request(s) were answered 5xx by the load balancer itself, and {nobody} request count "
               "in these periods: no error rate (an absent RequestCount is no data, not zero requests)")
    phase = Phase.RUNNING
    if healthy_targets == 0:
        reason = f"{counted}; {who} has no healthy target, so they are requests it could not serve"
        if unserved >= guardrails.min_errors:
            phase = Phase.FAILED
    elif healthy_targets:
        reason = (f"{counted}; they are not {who}'s: its {healthy_targets} healthy target(s) would have counted "
                  "any request sent to them")
    else:
        reason = (f"{counted}; whose they are is unknown (a version with weight and no healthy target, or other "
                  "traffic of the load balancer): not passing on them")
    if phase is Phase.RUNNING and unserved >= guardrails.min_errors:
        # As many as would have rolled back before this rule: a person hears of them, since
        # after promotion a RUNNING verdict changes nothing by itself.
        alerts.append(Alert(kind="unattributed_5xx", message=reason))
    return Verdict(phase=phase, reason=reason, metric=UNATTRIBUTED, statistic=float(unserved),
                   thresholds={"error_rate": limit}, canary_requests=canary.requests,
                   baseline_requests=baseline_requests, alerts=tuple(alerts))


def _canarys_share(unserved: int, background: float | None, canary_requests: int, baseline_requests: int) -> float:
    """How many of a stage's load-balancer 5xx may be the canary's, for the bound that keeps
    a stage from passing on them.

    With the rate before the rollout known, everything above it may be the canary's (a target
    group losing its targets); the steady rest is the load balancer's background, which
    counted whole kept every 5 % stage of a healthy canary from passing. Without it, all of
    them may be the canary's: a canary whose targets fail serves less, so spreading them like
    the served traffic would hide exactly that canary.
    """
    if background is None:
        return float(unserved)
    return max(0.0, unserved - background * (baseline_requests + canary_requests))


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
