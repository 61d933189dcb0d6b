"""``rollway judge --replay FILE --spec SPEC``: the spec's stage bakes as the flows bake it.

The flows pass a stage only once it has baked its ``min_bake_seconds`` (``bake_seconds`` when that
is empty), judging on until then, so a rollback before it still wins; and the stage ends at its
``bake_seconds``. The replay asks ``rollway.decide.decide`` (the flows' own rule) at every line,
rather than restating it, on the file's clock: the stage starts one analysis period before the
file's first ``t`` (the start of the first period it records), and the metrics delay is not waited
out (the records are complete; see ``NO_DELAY`` in ``rollway.judge.replay``). That clock is the
spec's only if the file steps by its period (``replay_clock.off_period``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rollway.decide import Hold, StageState, decide, stage_end, stage_over
from rollway.judge.replay_clock import format_t
from rollway.model import Verdict
from rollway.phases import Phase
from rollway.spec import RolloutSpec


@dataclass(frozen=True)
class Bake:
    """One stage of a spec, started at ``started_at`` on the replay file's clock."""

    spec: RolloutSpec
    stage_index: int
    started_at: float

    @classmethod
    def of(cls, spec: RolloutSpec, stage_index: int, first_t: float) -> "Bake":
        # The replay's records are complete: decide on the file's clock, not a metrics delay later.
        analysis = spec.analysis.model_copy(update={"metrics_delay_seconds": 0})
        return cls(spec.model_copy(update={"analysis": analysis}), stage_index,
                   first_t - spec.analysis.interval_seconds)

    @property
    def _edge(self) -> float:
        """How far past the clock's whole periods the file's period edges fall (0 for CloudWatch's).

        The stage starts at one of the file's edges, but ``decide`` times the end of a short bake
        from the clock's next whole period (a flow's shift lands mid-period): on a file of t=90,
        150, ... a one-period stage ended at t=120 and was judged a line late. ``decide`` is asked
        on the clock moved back by this much, where the file's edges are whole periods.
        """
        return self.started_at % self.spec.analysis.interval_seconds

    @property
    def _state(self) -> StageState:
        return StageState(stage_index=self.stage_index, started_at=self.started_at - self._edge)

    @property
    def passes_from(self) -> float:
        """The ``t`` from which the stage may pass: its start plus its minimum bake."""
        return self.started_at + self.spec.stages[self.stage_index].earliest_pass_seconds

    def timeline(self, path: str) -> str:
        """The stage's clock as the replay takes it from ``path``, for a note before any line is
        judged: a file of CloudWatch's own timestamps (period starts) would start it a period early."""
        period = self.spec.analysis.interval_seconds
        start, first = format_t(self.started_at), format_t(self.started_at + period)
        return (f"the stage starts at t={start}, one analysis period ({period} s) before the first t={first} of {path}: a "
                f"line's t is the end of its period (CloudWatch's timestamp, the period's start, plus {period} s), and "
                f"the first line is taken as the stage's first period; it may pass from t={format_t(self.passes_from)} "
                f"(min bake) and its bake ends at t={format_t(stage_end(self.spec, self._state) + self._edge)}")

    def over(self, t: float) -> bool:
        """Whether the stage's bake has ended by ``t`` (the judge then gives its final verdict)."""
        return stage_over(self.spec, self._state, t - self._edge)

    def held(self, verdict: Verdict, t: float) -> bool:
        """Whether the flows would hold this passing verdict at ``t``, for the minimum bake."""
        if verdict.phase is not Phase.SUCCESSFUL:
            return False
        return isinstance(decide(self.spec, self._state, verdict, t - self._edge), Hold)
