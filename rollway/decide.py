"""decide(): the only place a rollout decides what happens next. Pure: no I/O, no clock.

The flows observe (weights, metrics), ask the judge for a verdict, call ``decide`` with the
time they read, act on the Decision, and record it. Because the inputs are plain values, every
branch is tested table-driven (tests/unit/test_decide.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Union

from pydantic import BaseModel, ConfigDict

from rollway.bounds import seconds_said
from rollway.ledger import TAKEOVER, PassedLooks, held_by_timeout
from rollway.model import Verdict, Weights
from rollway.phases import Phase, RolloutPhase
from rollway.spec import Analysis, RolloutSpec, phase_end_stage

if TYPE_CHECKING:
    from rollway.ledger import RolloutRecord, Transition


class StageState(BaseModel):
    """Where the rollout stands, as far as deciding goes.

    ``stage_index`` is the last stage whose weights were set and verified (-1: none);
    ``started_at`` when that happened; ``passed`` whether its bake passed; ``approved`` the
    index of the stage a person approved moving to (approvals are per stage);
    ``until_stage`` the last stage of the weekly phase being run (None: run to the end);
    ``accepted`` the stages of the rollout a person accepted on their word, the judge unable to
    pass them, and who: (stage index, name), in the order they were accepted.
    """

    model_config = ConfigDict(frozen=True)

    stage_index: int = -1
    started_at: float | None = None
    passed: bool = False
    approved: int | None = None
    until_stage: int | None = None
    accepted: tuple[tuple[int, str], ...] = ()

    @property
    def accepted_by(self) -> str | None:
        """Who accepted the current stage on their word; None when the judge passed it, or it has not passed."""
        return dict(self.accepted).get(self.stage_index) if self.passed else None


class _Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str
    stage_passed: bool = False


class SetWeight(_Decision):
    kind: Literal["set_weight"] = "set_weight"
    stage_index: int
    weight: int


class Hold(_Decision):
    kind: Literal["hold"] = "hold"
    until: float


class Pause(_Decision):
    kind: Literal["pause"] = "pause"
    cause: Literal["approval", "inconclusive", "metrics"]
    stage_index: int


class Rollback(_Decision):
    kind: Literal["rollback"] = "rollback"


class Promote(_Decision):
    kind: Literal["promote"] = "promote"


class PhaseComplete(_Decision):
    """The weekly phase's last stage passed: hold these weights until the next phase starts."""

    kind: Literal["phase_complete"] = "phase_complete"


Decision = Union[SetWeight, Hold, Pause, Rollback, Promote, PhaseComplete]

# The stage's final look, when it cannot read the metrics (CloudWatch throttling the read, a
# GetMetricData that timed out), is read again this many times, this far apart, before a person
# is asked: one throttled read at the end of a healthy stage paused it for on-call, where a read
# seconds later would have passed it. The monitoring window's last look (flows/monitor.py) reads
# again by these too.
FINAL_READ_RETRIES = 3
FINAL_READ_RETRY_SECONDS = 15.0


def stage_end(spec: RolloutSpec, state: StageState) -> float:
    """When the current stage's final verdict is due: its bake, plus the time its last
    period's metrics may take to arrive.

    The bake lasts at least until the first whole period after the shift has ended: a shift
    lands mid-period, so a bake of one interval would otherwise end before any whole period
    did, and a healthy canary would always pause as inconclusive.
    """
    baked = max(state.started_at + spec.stages[state.stage_index].bake_seconds,
                analysis_start(spec, state) + spec.analysis.interval_seconds)
    return baked + spec.analysis.metrics_delay_seconds


def window_settled(start: float, window_seconds: float, analysis: Analysis) -> float:
    """When a monitoring window opened at ``start`` gets its final verdict: the end of the period
    its end falls in (the window lasts at least two periods, so a window resumed with little or
    no time left still holds a whole period), plus the wait for that period's metrics, as a
    stage's final verdict waits.

    A window opens whenever the promotion landed, mid-period as a rule: its last seconds are in
    a period that ends after it, and waiting only the metrics delay after the window's end
    decided before that period was published, so a regression in those seconds went unjudged.
    """
    end = start + max(window_seconds, 2 * analysis.interval_seconds)
    period = analysis.interval_seconds
    return math.ceil(end / period) * period + analysis.metrics_delay_seconds


def stage_over(spec: RolloutSpec, state: StageState, now: float) -> bool:
    """Whether the current stage's bake (and the wait for its last metrics) is over."""
    if state.stage_index < 0 or state.started_at is None:
        return False
    return now >= stage_end(spec, state)


def analysis_start(spec: RolloutSpec, state: StageState) -> float:
    """Start of the first whole metric period after the shift.

    A period that straddles the shift mixes two weightings; judging it would blame the canary
    for traffic it never served (or credit it for traffic it did not get).
    """
    if state.started_at is None:
        raise ValueError("no stage has started")
    return first_whole_period(spec, state.started_at)


def first_whole_period(spec: RolloutSpec, at: float) -> float:
    """Start of the first whole metric period at or after ``at``."""
    period = spec.analysis.interval_seconds
    return math.ceil(at / period) * period


def passed_window(spec: RolloutSpec, stage_index: int, passed_at: float, now: float) -> tuple[float, int]:
    """The window a passed stage's look at ``now`` judges (its start) and its index on the grid.

    The windows lie on a grid of the rollout clock from the stage's pass, ``passed_at``: each as long
    as the stage's bake (two periods at least), begun half of one after the one before, and judged
    until it is that long. Every look at ``now``, whichever made it (a pause's, a scale-up's, a run's
    that resumed the rollout), judges the same window at the same alpha: one test, valid at any look.
    Windows counted per look-out instead began again at the first, at half the alpha, in each run
    that resumed the rollout, and the stage's windows together could spend more than the alpha.
    Its alpha is counted by the windows looked at (``window_looked``), not by this index: those
    nobody looked at spend nothing.
    """
    period = spec.analysis.interval_seconds
    length = max(spec.stages[stage_index].bake_seconds, 2 * period)
    first = first_whole_period(spec, passed_at)
    step = math.ceil(length / 2 / period) * period  # a whole number of periods
    index = max(0, math.ceil((now - first - length) / step))
    return first + index * step, index


def window_looked(looks: PassedLooks | None, stage_index: int, window: float) -> PassedLooks:
    """The looks at a passed stage once one looks at its window beginning at ``window``
    (``passed_window``): the window's share of the alpha is the ``windows``-th (``window_alpha`` of
    ``windows - 1``).

    Only windows someone looked at are counted, in the order they were first looked at, by whichever
    run: a window nobody looked at (its run dead, the rollout taken up again days later) was never
    tested and can cost nothing, while each window looked at is a test of its own, with a share of
    its own. Every look at one window, by any watch or run, is one test at one share.
    ``looks`` as the ledger holds them; those of another stage count nothing here.
    """
    if looks is None or looks.stage != stage_index:
        return PassedLooks(stage=stage_index, window=window, windows=1)
    if looks.window == window:
        return looks
    return looks.model_copy(update={"window": window, "windows": looks.windows + 1})


def looks_shown(spec: RolloutSpec, record: RolloutRecord, passed_at: float | None) -> PassedLooks | None:
    """The windows of ``record``'s passed stage looked at before this run, as its ledger shows them:
    its ``passed_looks``, or, in a record written before they were counted, the windows its pause
    spans; None when none were looked at, or the stage has not passed. ``passed_at``: when its looks
    began (``stage_passed_at``), from which its windows lie on their grid (``passed_window``).

    A record written before ``passed_looks`` existed counted nothing, and its run had judged the
    windows of its pause all the same: counted from none, the run resuming it after the upgrade gave
    its first window the first share again, and the stage could spend one more alpha. The pause's
    entries after the pass (its asking, each timeout whose policy held and asked it again) show its
    run waiting there, looking at the canary every period: one at least a period after the asking
    shows looks made, at every window from the asking's to its own, and those count as looked at;
    after a ``takeover`` (the run that asked died waiting), the run taking over shows its own from
    the takeover on, and the windows between the two count nothing; so too after an entry naming
    another flow run (``Transition.run``) than the entries before it: one that took a released
    lease, which writes no takeover, shows its own from its first entry (which names it) on. A
    retry of the run that died, the same flow run, cannot be told from it. The looks recorded
    nothing else: its run's looks after the last entry (until it died), or a scale-up's without a
    pause, are not shown, and count nothing (none more can be told from the record). A pause asked
    and left before its first look was due shows no look: a run of this release that died there had
    judged nothing, and its resumed run's first window takes the first share. Not written back: a
    run resuming the rollout later reads the same entries again.
    """
    if record.passed_looks is not None or not record.stage_passed or passed_at is None:
        return record.passed_looks if record.stage_passed else None
    # Each run's entries apart: between the last entry of a run that died and the takeover of the
    # run that took the rollout up (days later, say), nobody is shown looking. Spanned as one, those
    # windows counted as looked at, and the resumed run's looks took shares too small to roll back.
    runs: list[list[float]] = [[]]
    named = None  # the flow run the entries since the last split name, once one does
    for t in record.history:
        if t.at < passed_at:
            continue
        if t.kind == TAKEOVER:
            runs.append([t.at])  # it asks the same pause again, and looks from here
            named = None  # the taker's first entry names it: no other run's
            continue
        if t.run is not None and named is not None and t.run != named:
            # Another flow run, which took a released lease (no ``takeover`` is written): it is
            # shown looking from its first entry on, and nobody between the two.
            runs.append([])
        named = t.run or named
        if t.kind == "pause" or held_by_timeout(t):
            runs[-1].append(t.at)
    spans = [(ats[0], ats[-1]) for ats in runs if ats and ats[-1] >= ats[0] + spec.analysis.interval_seconds]
    if not spans:
        return None
    windows = 0
    for begun, ended in spans:
        _, first = passed_window(spec, record.stage_index, passed_at, begun)
        window, last = passed_window(spec, record.stage_index, passed_at, ended)
        windows += last - first + 1
    return PassedLooks(stage=record.stage_index, window=window, windows=windows)


def _next_step(spec: RolloutSpec, state: StageState, *, passed: bool, why: str) -> Decision:
    """What follows a passed stage (or the start): the next shift, an approval pause, or promotion."""
    nxt = state.stage_index + 1
    if nxt >= len(spec.stages):
        return Promote(reason=f"{why}; {all_stages_done(spec, state.accepted)}", stage_passed=passed)
    if state.until_stage is not None and state.stage_index >= state.until_stage:
        return PhaseComplete(
            reason=f"{why}; this phase ends at {spec.stages[state.until_stage].weight}%", stage_passed=passed
        )
    last = len(spec.stages) - 1 if state.until_stage is None else state.until_stage
    if state.approved is not None and nxt < state.approved <= last:
        # A person approved skipping ahead and the shift has not happened yet (a resumed run
        # finds the approval in the ledger): the stages in between count as approved by it.
        target = spec.stages[state.approved]
        return SetWeight(reason=f"{why}; shifting to {target.weight}%, as approved", stage_index=state.approved,
                         weight=target.weight, stage_passed=passed)
    stage = spec.stages[nxt]
    if stage.approval and state.approved != nxt:
        return Pause(
            reason=f"{why}; approval needed before {stage.weight}%",
            cause="approval",
            stage_index=nxt,
            stage_passed=passed,
        )
    return SetWeight(reason=f"{why}; shifting to {stage.weight}%", stage_index=nxt, weight=stage.weight, stage_passed=passed)


def all_stages_done(spec: RolloutSpec, accepted: tuple[tuple[int, str], ...]) -> str:
    """How every stage of the rollout ended, for the promotion: that they passed, or how many
    passed the judge and which a person accepted on their word, and who. The promotion is what
    people read last, in the ledger, the notice and the run's summary: it said "all N stages
    passed" over a stage nobody but a person had vouched for."""
    total = len(spec.stages)
    if not accepted:
        return f"all {total} stages passed"
    took = ", ".join(f"{spec.stages[index].weight}% accepted by {who}" for index, who in accepted)
    return (f"all {total} stages done: {total - len(accepted)} passed the judge, {len(accepted)} accepted on a "
            f"person's word, the judge unable to pass {'it' if len(accepted) == 1 else 'them'} ({took})")


def decide(spec: RolloutSpec, state: StageState, verdict: Verdict | None, now: float) -> Decision:
    """Decide the next step of a rollout.

    Args:
        spec: the rollout's policy.
        state: where the rollout stands.
        verdict: the judge's verdict on the current stage so far (None before the first stage
            or once the stage has passed).
        now: the time the observation was made, on the rollout's clock.

    Returns:
        A frozen Decision: FAILED always rolls back; a stage passes only on a SUCCESSFUL verdict
        after its minimum bake; INCONCLUSIVE, or metrics still failing at the end of the bake
        (read again ``FINAL_READ_RETRIES`` times first), pause for a person; otherwise hold until the next analysis tick.
    """
    if state.stage_index >= len(spec.stages):
        raise ValueError(f"stage index {state.stage_index} is past the last stage")
    if state.stage_index < 0:
        return _next_step(spec, state, passed=False, why="rollout starting")
    if state.passed:
        # The shift's reason is recorded in the ledger and read by people: a stage a person
        # accepted did not pass the judge, and "passed" said it had.
        how = f"accepted by {state.accepted_by}" if state.accepted_by else "passed"
        return _next_step(spec, state, passed=False, why=f"stage {spec.stages[state.stage_index].weight}% {how}")
    if verdict is None:
        raise ValueError("a stage in progress needs a verdict")
    if state.started_at is None:
        raise ValueError("a stage in progress needs its start time")

    stage = spec.stages[state.stage_index]
    elapsed = now - state.started_at
    end = stage_end(spec, state)
    over = now >= end
    next_tick = min(now + spec.analysis.interval_seconds, end)

    if verdict.phase is Phase.FAILED:
        return Rollback(reason=f"{stage.weight}%: {verdict.reason}")
    if verdict.phase is Phase.INCONCLUSIVE:
        return Pause(reason=f"{stage.weight}%: {verdict.reason}", cause="inconclusive", stage_index=state.stage_index)
    if verdict.phase is Phase.ERROR:
        if over:
            bound = FINAL_READ_RETRIES * FINAL_READ_RETRY_SECONDS
            if now < end + bound:
                left = math.ceil((end + bound - now) / FINAL_READ_RETRY_SECONDS)
                return Hold(reason=f"{stage.weight}%: {verdict.reason}; the stage's final look, read again in "
                                   f"{seconds_said(FINAL_READ_RETRY_SECONDS)} ({left} more read{'s' if left != 1 else ''}; a "
                                   "person is asked if the last still fails)",
                            until=min(now + FINAL_READ_RETRY_SECONDS, end + bound))
            return Pause(reason=f"{stage.weight}%: {verdict.reason} (the stage's final look, read "
                                f"{FINAL_READ_RETRIES + 1} times over {seconds_said(bound)})",
                         cause="metrics", stage_index=state.stage_index)
        return Hold(reason=f"{stage.weight}%: {verdict.reason}; retrying", until=next_tick)
    if verdict.phase is Phase.SUCCESSFUL and elapsed >= stage.earliest_pass_seconds:
        return _next_step(spec, state, passed=True, why=f"{stage.weight}%: {verdict.reason}")
    if over:
        # The judge was told the stage is over yet is still observing: that is not a pass.
        return Pause(
            reason=f"{stage.weight}%: bake ended without a decision ({verdict.reason})",
            cause="inconclusive",
            stage_index=state.stage_index,
        )
    return Hold(reason=f"{stage.weight}%: {verdict.reason}", until=next_tick)


def unrecorded_shift(spec: RolloutSpec, record: RolloutRecord, live: Weights) -> int | None:
    """The stage whose weights ``live`` shows, if this rollout's own next shift explains them.

    Only a shift the run was entitled to make counts: to the next stage once the current one
    passed (or from the start), with its approval if it needs one, or to the later stage a
    person approved skipping ahead to. Anything else on the load balancer was not this run's.

    Here, beside ``decide``, because a resumed run (``flows.progressive.reconcile``) records such a
    shift as its own and `rollway status` must say so, rather than call it drift.
    """
    if record.phase is RolloutPhase.PAUSED or (record.stage_index >= 0 and not record.stage_passed):
        # A completed phase holds its weights: the next shift comes after a run records that
        # it goes on (start_phase, record_mode), so one found before that was not this rollout's.
        return None
    approved = record.approved_stage if record.approved_stage is not None else -1
    nxt = record.stage_index + 1
    if record.phased and record.weekly_phase_index >= 0:
        # A phased run stops at its phase's last stage (and refuses an approval past it): a shift
        # beyond it was made by hand. Taken for the dead run's, it started the next phase days
        # before the calendar allowed, and the resumed run went on through it.
        last = phase_end_stage(spec, record.weekly_phase_index)
        if nxt > last:
            return None
        approved = min(approved, last)
    allowed = []
    if nxt < len(spec.stages) and (not spec.stages[nxt].approval or approved == nxt):
        allowed.append(nxt)
    if nxt < approved < len(spec.stages):
        allowed.append(approved)  # an approval that skipped ahead
    return next((i for i in allowed if live == Weights.canary_at(spec.stages[i].weight)), None)


def accepted_stages(record: RolloutRecord) -> tuple[tuple[int, str], ...]:
    """The stages of the recorded rollout a person accepted on their word (an approval at a pause
    the judge could not pass), and who: (stage index, name), in the order they were accepted.

    An approval names the stage the rollout stood at only when it accepts that stage: one at an
    approval pause names the stage it lets the rollout shift to, a later one.

    A run resumed from the ledger (a weekly phase, a run that died) builds its ``StageState``
    from the record, and without this its next shift said the stage had "passed", and its
    promotion that every stage had, where a person had accepted one in a run before it.
    """
    stage, accepted = -1, {}
    for t in record.history:
        if t.to_weights is not None and t.to_stage is not None:
            # A shift (or weights adopted): the stage the rollout stands at from here, run anew, as
            # is any later one, whatever ended them before.
            stage = t.to_stage
            accepted = {index: who for index, who in accepted.items() if index < stage}
        elif t.kind == "approve" and t.to_stage == stage >= 0:
            accepted[stage] = t.actor
    return tuple(accepted.items())


PERSON_HELD = "a person held this stage"
"""What a pause's reason says when the judge passes a stage a person's hold keeps waiting for a
person (``flows.engine.run_stages``); `rollway status` names that person from the ledger."""


def held_by_person(record: RolloutRecord) -> Transition | None:
    """The recorded rollout's ``hold`` entry when a person's hold is the last answer to the pause of
    the stage it stands at; None when nobody held it, or a later answer (an approval, a rejection, a
    timeout: no person's), a shift or a rollback's start came after (the pause ended with it: nothing
    waits on that person, though the rollback's run may stop before it is recorded as finished).

    A hold says "stay and ask again", and the run that took it keeps it in memory only
    (``flows.engine.run_stages``): a run resumed from the ledger after it died moved the stage on as
    soon as the judge passed it, as if nobody had held it.
    """
    for t in reversed(record.history):
        if t.to_weights is not None or t.kind in ("approve", "reject", "timeout", "rollback-start"):
            return None
        if t.kind == "hold":
            return t
    return None
