"""Canary analysis: pure functions from per-interval counts to a Verdict with its reason.

``make_judge`` picks the comparison the spec asks for; ``assess`` puts the seed's absolute
guardrails on top, so a stage is judged by the worst of the two.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from rollway.model import Interval, Observation, Verdict
from rollway.phases import Phase, worst
from rollway.spec import Analysis, Guardrails, RolloutSpec


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


def judge_for_stage(spec: RolloutSpec, stage_index: int) -> Judge:
    """The judge of one stage of ``spec``.

    At 100 % the stable version serves nothing, so there is no baseline to compare with: a
    two-sample spec judges that stage against its SLO (one-sample) instead of finding every
    such stage inconclusive.
    """
    analysis = spec.analysis
    if spec.stages[stage_index].weight == 100 and analysis.mode == "two-sample":
        analysis = analysis.model_copy(update={"mode": "one-sample"})
    return make_judge(analysis, spec.guardrails)


def assess(
    judge: Judge,
    guardrails: Guardrails,
    observation: Observation,
    *,
    stage_over: bool,
    monitoring: bool = False,
    history: Sequence[Interval] = (),
) -> Verdict:
    """The judge's verdict combined with the absolute guardrails (worst wins, alerts merged)."""
    from rollway.judge.guardrails import check

    if observation.error is not None:
        return Verdict(phase=Phase.ERROR, reason=f"metrics unavailable: {observation.error}")
    verdict = judge.evaluate(observation.intervals, stage_over=stage_over, history=history)
    guard = check(guardrails, observation, monitoring=monitoring)
    alerts = verdict.alerts + guard.alerts
    if guard.phase.rank > verdict.phase.rank:
        return guard.model_copy(update={"alerts": alerts})
    return verdict.model_copy(update={"alerts": alerts})


__all__ = ["Judge", "assess", "judge_for_stage", "make_judge", "worst"]
