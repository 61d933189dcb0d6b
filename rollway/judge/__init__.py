"""Canary analysis: pure functions from per-interval counts to a Verdict with its reason.

``make_judge`` picks the comparison the spec asks for; ``assess`` puts the seed's absolute
guardrails on top, so a stage is judged by the worst of the two.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Callable, Protocol, Sequence

from rollway.model import Interval, Observation, Verdict
from rollway.phases import Phase, worst
from rollway.spec import Analysis, Guardrails, RolloutSpec


def setting_percent(rate: float, decimals: int = 0) -> str:
    """A configured rate (a guardrail, a margin, an SLO) as a percentage, never rounded.

    A reason states the threshold it was judged against: a 0.5 % guardrail printed with no
    decimals read "0.70% is over the 0% guardrail", a 1.5 % one "1.60% is over the 2%
    guardrail". ``decimals`` is the usual form, kept whenever it is exact; otherwise the
    figure prints with as many digits as it has.
    """
    text = f"{rate:.{decimals}%}"
    if math.isclose(float(text[:-1]) / 100, rate, rel_tol=1e-9, abs_tol=0.0):
        return text
    return f"{rate * 100:.6g}%"


def rate_percent(rate: float) -> str:
    """A measured rate (errors or slow requests over requests) as a percentage a person reads.

    Two decimals from 0.1 %, three below; a rate that is not zero never prints as zero, nor
    one that is not 100 % as 100: "1 of 11400 (0.00%)" read as no errors at all, and a
    baseline of 1 error in 3,600,000 requests printed "0.000%".
    """
    if rate == 0 or rate >= 0.001:
        text = f"{rate:.2%}"
        return ">99.99%" if text == "100.00%" and rate < 1 else text
    return f"{rate:.3%}" if rate >= 0.00001 else "<0.001%"


NO_RATE = "no requests, no rate measured"
"""What a rate over no requests is said as: "0.00%" read as a version measured without an error."""


def canary_rate(errors: int, requests: int, *bars: float) -> str:
    """"canary error rate 0.10%" (as ``rate_beside`` prints it beside ``bars``), or, over no
    requests, that none was measured (``NO_RATE``): "canary error rate 0.00% within the 5%
    guardrail" was printed for a minute that counted no request."""
    return f"canary error rate {rate_beside(errors / requests, *bars)}" if requests else f"canary error rate: {NO_RATE}"


def rate_beside(rate: float, *bars: float) -> str:
    """A measured rate as ``rate_percent`` prints it, with the decimals it takes to read on the
    right side of each configured rate printed beside it (``setting_percent``).

    0.0997 % printed "0.100%" beside a "0.10%" margin, and 1.001 % "1.00%" as "over the 1%
    guardrail": equal numbers in a sentence saying one is below or over the other. A rate equal
    to its bar still reads equal; one decimal more at a time keeps the figure short.
    """
    text = rate_percent(rate)
    decimals = 2 if rate == 0 or rate >= 0.001 else 3
    # 17 significant digits tell any two floats apart: the loop always ends on an ordered text.
    while not all(_reads_ordered(text, rate, bar) for bar in bars) and decimals < 20:
        decimals += 1
        text = f"{rate:.{decimals}%}"
    return text


def _reads_ordered(text: str, rate: float, bar: float) -> bool:
    """Whether ``text`` (``rate`` as printed) reads as below, equal to or over ``bar`` as printed,
    as ``rate`` is; and not as 0 or 100 % when it is neither."""
    shown_bar = Decimal(setting_percent(bar)[:-1])
    if text[0] in "<>":  # "<0.001%", ">99.99%": ordered when its bound is on the bar's side
        bound = Decimal(text[1:-1])
        return rate < bar and bound <= shown_bar if text[0] == "<" else rate > bar and bound >= shown_bar
    shown = Decimal(text[:-1])
    if (rate != 0 and shown == 0) or (rate < 1 and shown == 100):
        return False
    return (shown > shown_bar) - (shown < shown_bar) == (rate > bar) - (rate < bar)


class Judge(Protocol):
    # Whether ``evaluate`` uses the baseline's intervals from before the stage (a flow fetches
    # them only then).
    uses_history: bool

    def evaluate(self, intervals: Sequence[Interval], *, stage_over: bool, history: Sequence[Interval] = ()) -> Verdict:
        """Judge a stage from its intervals so far; ``stage_over`` means no more data will come.

        ``history``: the baseline's intervals from before the stage, for judges that calibrate on it.
        """


def make_judge(analysis: Analysis, guardrails: Guardrails) -> Judge:
    """The judge the spec names. An unknown kind raises instead of falling back."""
    if analysis.judge == "threshold":
        from rollway.judge.threshold import ThresholdJudge

        return ThresholdJudge(analysis, guardrails)
    if analysis.judge == "sequential":
        from rollway.judge.sequential import SequentialJudge

        return SequentialJudge(analysis)
    raise ValueError(f"unknown judge {analysis.judge!r}")


def stage_mode(mode: str, weight: int) -> str:
    """The comparison a stage at ``weight`` % is judged by, for a spec whose ``analysis.mode`` is
    ``mode``: the flows' (``judge_for_stage``) and the replay's (``judge --replay --stage``).

    At 100 % the stable version serves nothing, so there is no baseline to compare with: a
    two-sample spec judges that stage against its SLO (one-sample) instead of finding every
    such stage inconclusive.
    """
    return "one-sample" if weight == 100 else mode


def judge_for_stage(spec: RolloutSpec, stage_index: int) -> Judge:
    """The judge of one stage of ``spec``, by the comparison ``stage_mode`` gives that stage."""
    analysis = spec.analysis
    mode = stage_mode(analysis.mode, spec.stages[stage_index].weight)
    if mode != analysis.mode:
        analysis = analysis.model_copy(update={"mode": mode})
    return make_judge(analysis, spec.guardrails)


def window_alpha(alpha: float, window: int) -> float:
    """The alpha of the ``window``-th (0-based) window a passed stage is judged on
    (``rollway.decide.passed_window``, counted by the windows looked at, ``window_looked``: its pause's
    looks, its scale-up's, those of a run that resumes either): ``alpha / ((window + 1)(window + 2))``,
    half of ``alpha``, then a sixth, a twelfth, and so on. A pause can last weeks (each timeout asking
    again), a window begun again every half of the stage's bake: at ``alpha`` each, a healthy canary
    was all but sure to be rolled back by one of them. The shares of any number ``n`` of windows add
    up to ``alpha * n / (n + 1)``: all the stage's windows together stay within ``alpha``.

    Halved instead (a half, a quarter, ...), a share fell below 1e-9 at the 24th window (two hours of
    a pause at the default bake) and was held there, since an alpha of 0 cannot be inverted into the
    rollback bar: each window past it added 1e-9 over ``alpha``, unbounded, and the windows of a
    day's pause were judged at 1e-9, all but unable to roll back. This series never reaches 0: a
    window a minute for a year of a pause still gets ``alpha`` over 3e11."""
    return alpha / ((window + 1) * (window + 2))


def judge_for_pause_window(spec: RolloutSpec, stage_index: int, window: int) -> Judge:
    """The judge of the ``window``-th window a passed stage is judged on (``window_alpha``)."""
    analysis = spec.analysis.model_copy(update={"alpha": window_alpha(spec.analysis.alpha, window)})
    return judge_for_stage(spec.model_copy(update={"analysis": analysis}), stage_index)


def assess(
    judge: Judge,
    guardrails: Guardrails,
    observation: Observation,
    *,
    stage_over: bool,
    monitoring: bool = False,
    history: Sequence[Interval] = (),
    settled_until: float | None = None,
    healthy_targets: int | None = None,
    interval_said: Callable[[float], str] = lambda t: f"interval ending {t:.0f}",
) -> Verdict:
    """The judge's verdict combined with the absolute guardrails (worst wins, alerts merged).

    ``settled_until``: intervals ending after it may still be filling in (CloudWatch publishes
    late). They count toward a rollback, but a stage passes only on intervals ending by then;
    None judges every interval as final.

    ``healthy_targets``: the canary's, when the flow has read them; they tell whether
    load-balancer 5xx with no request count to set them against are its (see
    ``guardrails.check_totals``).

    ``interval_said``: how a reason names the period ending at an interval's ``t``: by default
    "interval ending 120", the replay file's own ``t``; the flows name it in UTC, as CloudWatch
    shows it (an epoch second, "ending 1764950400", said nothing to a person).

    A version whose counts contradicted each other in a period has no data there
    (``Interval.inconsistent``): while the period may still be filling in, that is what it is.
    Once settled, the stage can no longer pass on its own, unless the rest rolls back: it goes
    on (RUNNING, judged every tick, so a rollback still acts) to the end of its bake and is then
    INCONCLUSIVE, a person decides. Pausing at once would let an approval meant for "ignore that
    minute" accept the whole stage before its minimum bake. Not an ERROR, which holds the stage
    to read again: settled figures do not change on a second read, so that hold would only end
    in a pause that looks like CloudWatch being unreachable.
    """
    from rollway.judge.guardrails import check

    if observation.error is not None:
        return Verdict(phase=Phase.ERROR, reason=f"metrics unavailable: {observation.error}")
    # The flows read the hour before every stage, for the guardrail's load-balancer 5xx
    # background; only a judge that calibrates on it is given it.
    verdict = _settled_verdict(judge, observation.intervals, stage_over=stage_over,
                               history=history if judge.uses_history else (), settled_until=settled_until)
    verdict = with_guardrails(verdict, check(guardrails, observation, monitoring=monitoring, history=history,
                                             healthy_targets=healthy_targets))
    wrong = [(i.t, v) for i in observation.intervals if settled_until is None or i.t <= settled_until
             for v in i.inconsistent]
    if wrong and verdict.phase is not Phase.FAILED:
        periods = ", ".join(f"the {v}'s {interval_said(t)}" for t, v in wrong)
        then = ("approve accepts it, reject rolls back" if stage_over
                else "it goes on to the end of its bake, still judged, and then a person decides")
        return Verdict(phase=Phase.INCONCLUSIVE if stage_over else Phase.RUNNING, alerts=verdict.alerts,
                       metric="inconsistent",
                       reason=f"metrics inconsistent: more 5xx than requests in {periods}, settled by now; reading "
                              f"again will not change them, so the stage cannot pass on its own ({then})")
    return verdict


def with_guardrails(verdict: Verdict, guard: Verdict) -> Verdict:
    """The judge's verdict with the guardrails' on top: the worse of the two, alerts merged."""
    alerts = verdict.alerts + guard.alerts
    worse = guard if guard.phase.rank > verdict.phase.rank else verdict
    return worse.model_copy(update={"alerts": alerts})


def _settled_verdict(judge: Judge, intervals: Sequence[Interval], *, stage_over: bool,
                     history: Sequence[Interval], settled_until: float | None) -> Verdict:
    """Roll back on every interval; pass only on the settled ones.

    A period whose 5xx count arrives after its request count looks healthier than it was
    until the count lands. Rolling back on it early costs nothing (its errors are real), but a
    pass is final: a stage never passes on a period its metrics may still change.
    """
    settled = intervals if settled_until is None else [i for i in intervals if i.t <= settled_until]
    if len(settled) == len(intervals):
        return judge.evaluate(intervals, stage_over=stage_over, history=history)
    everything = judge.evaluate(intervals, stage_over=False, history=history)
    if everything.phase is Phase.FAILED:
        return everything
    verdict = judge.evaluate(settled, stage_over=stage_over, history=history)
    if everything.phase is Phase.SUCCESSFUL and verdict.phase is not Phase.SUCCESSFUL:
        # Say why the stage has not passed although the newest figures would pass it.
        pending = len(intervals) - len(settled)
        note = (f"the newest {pending} interval(s) would pass it but may still be incomplete" if stage_over
                else f"the newest {pending} interval(s) would pass it; waiting for their metrics to settle")
        verdict = verdict.model_copy(update={"reason": f"{verdict.reason}; {note}"})
    return verdict


__all__ = ["Judge", "assess", "judge_for_stage", "make_judge", "stage_mode", "with_guardrails", "worst"]
