"""Reports read from the ledger: a rollout report, and an incident report for a rollback. Pure.

``rollway.report`` renders what a run measured while it ran (its stage tables, from the
metrics); these render what the ledger kept of a whole rollout afterwards, from its record
alone: every shift, verdict, person's answer and rollback transition, with who and when. So
they can be written for any recorded rollout, long after its runs ended, by whoever asks.

What the ledger does not hold is not invented: the per-stage request counts are in the runs'
stage artifacts. A rollback's end records the SNS message id of its notice and the task
definition it restored on the canary; for an end recorded before it kept them, what the ledger's
writes imply is said as such, marked "inferred": the rollback flow records a rollback's end only
after every step succeeded (traffic moved and read back, canary scaled to 0 on its previous task
definition, bound flags disabled, people notified); a step that failed leaves the rollout
``rolling_back``, with a ``rollback-stopped`` entry naming the steps done and not done.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict

from rollway import weekly
from rollway.approvals import UNHEARD, UNHEARD_WHY, answered_stage, asked_again, pause_deadline, unheard_answer
from rollway.bounds import to_the_tenth, whole_seconds
from rollway.clock import ClockSettings
from rollway.decommission_page import PAGE_REFUSED as DECOMMISSION_PAGE_REFUSED, page_said, refusal_read
from rollway.finalize import (accepted_breach, breach_way_out, DONE as FINALIZED, START as FINALIZE_START, entry_words,
                              finalize_unfinished, is_finalized, last_index, notice_not_sent, unhandled_breach)
from rollway.flag_binding import LEFT_TO_ANOTHER
from rollway.judge.guardrails import GUARDRAIL, LOAD_BALANCER_5XX, asked_by
from rollway.ledger import (BREACH_KEPT, NOT_APPLIED, NOTICE_ANSWER_LOST, NOTICE_FAILED, NOTICE_NOT_SENT,
                            NOTICE_UNREACHED, NOTIFIED, OWNER_PREFIX, RECONCILE, ROLLBACK_STOPPED, TAKEOVER, OpenPause, RefusedAnswer,
                            RolloutRecord, Transition, answer_action, answer_said, claim_has_lapsed, claim_lapsed,
                            dropped_at_said, held_by_timeout, lease_has_lapsed, monitoring_owed, notice_answer_lost, notice_sent, notice_time, notice_unconfirmed,
                            pause_asked_now, pause_cause, refused_after, rollback_start, rollback_stopped_steps, unanswered_wait,
                            utc, wall_utc)
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.one_line import shown
from rollway.report import artifact_key, markdown_cell as cell
from rollway.spec import RolloutSpec
from rollway.targets import Targets
from rollway.window_page import (BREACH_PAGE, CHECK_DELIVERY, WINDOW_PAGE_REFUSED, breach_page_refused, page_outcome,
                                 unsent, window_page_refused)
from rollway.window_said import acceptance_said, breach_said, looks_said, nobody_watching, not_closed, watching_run, window_end

ANSWERS = ("approve", "reject", "hold", "timeout", UNHEARD)
"""Transition kinds that record a person's answer to a pause (or its timeout, or an answer given to
a paused run whose process had died, which nothing acted on)."""

_MOVES = ("shift", "adopt")

R = TypeVar("R")


class StageLine(BaseModel):
    """One stretch of the rollout at one split of the traffic, as the ledger recorded it."""

    model_config = ConfigDict(frozen=True)

    stage: int | None  # index into the spec's stages; None when recorded without one
    weights: Weights
    started_at: float
    ended_at: float | None  # None: still at these weights
    how: str  # who moved the traffic there and why
    verdict: str  # passed / accepted / rolled back / left / current, with the reason
    # A shift a resumed run found on the load balancer (``reconcile``) is stamped when it was found:
    # the run that made it died after its last entry, stamped here, and the stage began in between.
    moved_after: float | None = None
    # The approval the traffic waited for before it moved here (``_gate_said``); "" when none was asked.
    approval: str = ""


class Trigger(BaseModel):
    """What started a rollback, from the ledger's ``rollback-start`` (or, lacking it, ``rollback``)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["judge", "guardrail", "monitor", "abort", "reject", "approval-timeout", "hook", "drift", "manual"]
    who: str
    at: float
    reason: str

    def describe(self) -> str:
        # ``who`` is a person's name as typed (the pause form's text area): one line, or a line
        # break in it would start a heading or a list of its own in the report.
        who = cell(self.who)
        return {
            "judge": "the canary judge's verdict" + _judged_against(self.reason),
            "guardrail": ("an absolute guardrail on the requests the load balancer answered 5xx itself, no target "
                          "serving them (a fixed limit, not a comparison with the baseline)"
                          if _load_balancer_refused(self.reason) else
                          "an absolute guardrail on the canary's errors (a fixed limit, not a comparison with the "
                          "baseline)"),
            # The monitor checks only the absolute guardrails: named so, as the judge's guardrail rollbacks are.
            "monitor": ("the post-promotion monitor's absolute guardrail on the requests the load balancer answered "
                        "5xx itself, the promoted version having no healthy target to serve them (a fixed limit, not "
                        "a comparison with the baseline)"
                        if _load_balancer_refused(self.reason) else
                        "the post-promotion monitor's absolute guardrail on the promoted version's errors (a fixed "
                        "limit, not a comparison with the baseline)"),
            "abort": f"a person, {who}, with `rollway abort`",
            "reject": f"a person, {who}, who rejected the rollout at an approval pause",
            # The spec's setting as it is spelled (rollway.spec.Approvals), so a person can find it.
            "approval-timeout": "an approval pause nobody answered in time, under the spec's "
                                "`approvals.on_timeout: rollback` (the default)",
            # The hook's actor names the state it ran in ("state hook (cancelling)").
            "hook": f"a rollout run's {who.removeprefix('state ')}: " + (
                "the run was cancelled (Cancel in the Prefect UI, or the process serving it stopped)"
                if "(cancel" in who else "the run crashed" if "(crashed)" in who else "the run failed"
                if "(failed)" in who else "the run failed, crashed or was cancelled"),
            "drift": "the load balancer's weights moved by someone else while the rollout ran",
            "manual": f"{who}, with the rollback flow",
        }[self.kind]


def _load_balancer_refused(reason: str) -> bool:
    """Whether a guardrail failed on requests the load balancer refused itself, not on an error
    rate (its reason then names the error rate, with those requests beside it): no comparison with
    the baseline is made on them."""
    return LOAD_BALANCER_5XX in reason and "canary error rate" not in reason


def _judged_against(reason: str) -> str:
    """What the judge held the new version to, as its reason says (the sequential judge's own
    words, ``MetricEvidence.describe``: "... vs baseline ..." or "... vs SLO ..."). At 100 % no
    baseline serves traffic and the judge holds the canary to the spec's SLO (as in the spec's
    one-sample mode): "compared with the baseline" was wrong there. Other judges say neither."""
    if " vs SLO " in reason:
        return " (the new version held to the spec's SLO, not compared with the baseline)"
    if " vs baseline " in reason:
        return " (the new version compared with the baseline)"
    return ""


def stage_weights(record: RolloutRecord) -> tuple[int, ...]:
    """The canary weight of each of the rollout's stages, from its recorded spec (empty when unreadable)."""
    try:
        stages = json.loads(record.spec_json).get("stages") or ()
        return tuple(int(s["weight"]) for s in stages)
    except (ValueError, TypeError, KeyError, AttributeError):
        return ()


def _recorded_spec(record: RolloutRecord) -> RolloutSpec | None:
    """The rollout's recorded spec, or None when it cannot be read (the report then leaves out
    what needs it rather than failing)."""
    try:
        return RolloutSpec.for_rollback(record.spec_json)
    except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
        return None


def bound_flags(record: RolloutRecord) -> tuple[str, ...]:
    """The feature flags the rollout's recorded spec binds (empty when none, or unreadable)."""
    try:
        return tuple(str(f["feature"]) for f in json.loads(record.spec_json).get("flags") or ())
    except (ValueError, TypeError, KeyError, AttributeError):
        return ()


def stage_lines(record: RolloutRecord) -> list[StageLine]:
    """Each stretch at one split of the traffic, in order, with how it ended."""
    lines: list[dict] = []
    # One rollout has one rollback: a record written before a rollback that took over one that died
    # kept its one start can hold a second, which showed the stage "rolled back" twice.
    first_start = rollback_start(record)
    stopped = stopped_back(record)
    since_move: list[Transition] = []  # the entries since the last move: the gate the next one passed
    for t in record.history:
        current = lines[-1] if lines and lines[-1]["ended_at"] is None else None
        if t.kind == "rollback-start" and t is not first_start:
            continue
        if t.kind in _MOVES and t.to_weights is not None:
            gate = _gate_said(since_move, current)
            since_move = []
            if current is not None:
                current["ended_at"] = t.at
                current["verdict"] = current["verdict"] or f"left for {t.to_weights.canary}%"
            above = current["verdict"] if current is not None else ""
            said = _without_repeat(t.comment, above, "the reason in the row above")
            how = f"{t.kind} by {t.actor}" + (f": {said}" if said else "")
            lines.append({"stage": t.to_stage, "weights": t.to_weights, "started_at": t.at, "ended_at": None,
                          "how": how, "verdict": "", "approval": gate,
                          "moved_after": _dead_runs_last_entry(record, t) if t.actor == RECONCILE else None})
            continue
        since_move.append(t)
        if current is None:
            continue
        if t.kind == "verdict" and (t.from_stage is None or t.from_stage == current["stage"]):
            current["verdict"] = f"passed: {t.verdict or 'no reason recorded'}"
        elif t.kind == "approve" and t.verdict and not current["verdict"]:
            # An approval while the stage bakes accepts a stage the judge could not pass.
            current["verdict"] = f"accepted by {t.actor}: {t.verdict}"
        elif t.kind == "rollback-start" or (t.kind == "rollback" and "rolled back" not in current["verdict"]):
            # After a stage passed (a rejection at the next approval, the monitor after a promotion), both show.
            current["rollback_from"] = len(current["verdict"])
            # Named as status names it: an abort's reason names its person already ("aborted by carol: ...").
            current["verdict"] = _then(current["verdict"], f"rolled back ({begun_by(t)})")
            if t.kind == "rollback" and _traffic_back(t, record):
                current["ended_at"] = read_back_at(record, t)
        elif t.kind == "rollback" and _traffic_back(t, record):
            current["ended_at"] = read_back_at(record, t)
        elif t is stopped:  # its traffic back on stable, however long the rollback took to finish
            current["ended_at"] = read_back_at(record, t)
        elif t.kind == "promote":
            said = _without_repeat(t.comment, current["verdict"], "the reason given in this row")
            current["verdict"] = _then(current["verdict"], f"promoted: {said or ''}".rstrip(": "))
        elif t.kind == FINALIZED:
            current["ended_at"] = t.at
            current["verdict"] = current["verdict"] or "finalized"
    for line in lines:
        began = line.pop("rollback_from", None)
        if line["ended_at"] is None and not line["verdict"]:
            line["verdict"] = "current" if not record.phase.terminal else record.phase.value
        elif line["ended_at"] is None and began is not None and record.phase is RolloutPhase.ROLLING_BACK:
            # Begun, and the traffic's return not recorded: "rolled back" told a reader of a
            # stalled rollback that the stage's traffic was back on stable.
            verdict = line["verdict"]
            line["verdict"] = verdict[:began] + verdict[began:].replace(
                "rolled back (", "rollback begun, not recorded as finished (", 1)
    return [StageLine(**line) for line in lines]


def _gate_said(entries: list[Transition], current: dict | None) -> str:
    """The approval the traffic waited for before a move (``entries``: those since the move before
    it; ``current``: the stage it waited at, None before the first): who approved and when, how long
    after the question was first asked, at what weight, and what came between (a person's hold, a
    timeout that held and asked again, a run that took the rollout over from a dead one and asked
    again); "" when no approval was asked. A pause about the stage it
    waited at (its acceptance, the judge unable to pass it) is that stage's verdict, not this gate.

    The stage table said "shift by alice" of a stage dana approved, and nothing of the time users
    stayed at the weight before it waiting for her: the Approvals table had it, by the stage asked for."""
    at = current["stage"] if current is not None else None
    gate = [t for t in entries if (t.kind == "pause" or t.kind in ANSWERS) and t.to_stage is not None
            and t.to_stage != at]
    asked = next((t for t in gate if t.kind == "pause"), None)
    approved = next((t for t in reversed(gate) if t.kind == "approve"), None)
    if approved is None:
        return f"asked from {utc(asked.at)}; no approval recorded" if asked is not None else ""
    # A run that took the rollout over asked again: the wait was its dead predecessor's too.
    between = [f"held by {cell(t.actor)} at {utc(t.at)}" if t.kind == "hold" else
               f"timed out at {utc(t.at)} and asked again" if held_by_timeout(t) else
               f"{cell(t.actor)} took the rollout over at {utc(t.at)} from a run that had stopped, and asked again"
               if t.kind == TAKEOVER else f"{cell(t.actor)}'s answer not acted on ({UNHEARD_WHY})"
               for t in entries if t.at <= approved.at and (
                   (t in gate and t.kind in ("hold", "timeout", UNHEARD))
                   # An unheard answer recorded with the question it answered and no stage index
                   # (``unheard_transitions`` given no history, or before it was kept) was left out here.
                   or ((t.kind == TAKEOVER or (t.kind == UNHEARD and t.to_stage is None)) and asked is not None
                       and t.at >= asked.at))]
    said = f"by {cell(approved.actor)} at {utc(approved.at)}"
    if asked is None:
        return said
    waited = _span(asked.at, approved.at) or "two clocks"
    why = _unmeasurable(waited)
    waited = f"a wait not measurable ({why})" if why else waited
    weight = f" at {current['weights'].canary}%" if current is not None else ""
    return f"{said}, after {waited}{weight} (asked from {utc(asked.at)}{''.join(f'; {x}' for x in between)})"


_STAGE_LEAD = re.compile(r"\d+%")


def _without_repeat(comment: str | None, above: str, where: str) -> str | None:
    """A shift's (or promotion's) recorded comment, "25%: <the stage's reason>; shifting to 50%",
    with the reason replaced by ``where`` it is already said when the stage's verdict (``above``)
    holds it: every row of the table said its reason twice, as its verdict and again in the next
    row's "how". Any other comment as recorded (the timeline keeps them all as they were)."""
    if not comment:
        return comment
    lead, sep, rest = comment.partition(": ")
    if not sep or not _STAGE_LEAD.fullmatch(lead):
        return comment
    parts = rest.split("; ")
    # The longest run of its leading parts the verdict holds: a reason may hold "; " itself.
    for k in range(len(parts), 0, -1):
        reason = "; ".join(parts[:k])
        if reason.strip() and reason in above:
            tail = "; ".join(parts[k:])
            return f"{lead}: {where}" + (f"; {tail}" if tail else "")
    return comment


def _traffic_back(end: Transition, record: RolloutRecord) -> bool:
    """Whether ``end`` (a ``rollback``) marks the traffic back: it says the weights read back,
    or it is the end of a finished rollback (the monitor's records no weights)."""
    return end.to_weights is not None or (record.phase is RolloutPhase.ROLLED_BACK
                                          and end is record.last_transition("rollback"))


def _then(before: str, after: str) -> str:
    return f"{before}; then {after}" if before else after


MONITORING_ROLLBACK = "monitoring after promotion: "
"""How the reason of a rollback the monitoring window began opens: the window is watched by the
`monitor` flow (actor "monitor") or by the rollout run itself (its own actor), and either is the
post-promotion monitor's."""


def rollback_trigger(record: RolloutRecord) -> Trigger | None:
    """What started the rollout's rollback, or None when the ledger records none."""
    start = rollback_start(record) or record.last_transition("rollback")
    if start is None:
        return None
    reason, actor = start.comment or "no reason recorded", start.actor
    if reason.startswith("aborted by "):
        kind = "abort"
    elif actor == "monitor" or reason.startswith(MONITORING_ROLLBACK):
        # Before "reject": the rollout run watching its window records it as its own actor, who
        # may have rejected a pause of the same rollout earlier.
        kind = "monitor"
    elif actor == "timeout":
        kind = "approval-timeout"
    elif reason.startswith("rejected by ") or any(t.kind == "reject" and t.actor == actor for t in record.history):
        kind = "reject"
    elif actor.startswith("state hook"):
        kind = "hook"
    elif actor == "drift":
        kind = "drift"
    elif actor == GUARDRAIL:
        kind = "guardrail"
    elif actor == "judge":
        # Recorded before the engine named a guardrail's rollback as the guardrail's: the reason
        # says which (as the engine now reads it, ``asked_by``). The guardrail on load-balancer 5xx
        # with no request count to set them against names no "guardrail": it was reported as the
        # canary judge's comparison with the baseline, which never ran.
        kind = asked_by(reason)
    else:
        kind = "manual"
    return Trigger(kind=kind, who=actor, at=start.at, reason=reason)


def begun_by(start: Transition) -> str:
    """Who began a rollback and why, as status says it: "judge: canary errors 9/600", or the reason
    alone where it names its person already: `rollway abort` and a rejection record "aborted by
    root: ..." as root's, which read "root: aborted by root: ..."."""
    reason = start.comment or "no reason recorded"
    return reason if reason.partition(":")[0].endswith(f" by {start.actor}") else f"{start.actor}: {reason}"


def duration(seconds: float) -> str:
    """``seconds`` as a person reads a span: "45 s", "12.5 min", "3.1 h", "4.2 days"."""
    seconds = max(0.0, seconds)
    # Each bound is compared with the figure as it is printed: 119.6 s compared raw read "120 s",
    # and 7198 s "120.0 min", past the bound where the next unit takes over. Rounded once, a half
    # up, as every span a person reads (``whole_seconds``): Python's half to even said 2.5 s "2 s".
    if (whole := whole_seconds(seconds)) < 120:
        return f"{whole} s"
    if (minutes := to_the_tenth(seconds / 60)) < 120:
        return f"{minutes:.1f} min"
    if (hours := to_the_tenth(seconds / 3600)) < 48:
        return f"{hours:.1f} h"
    return f"{to_the_tenth(seconds / 86400):.1f} days"


# How far an entry may be stamped before the one ahead of it in the history and still be taken
# as on the same clock: workers' clocks differ by a few seconds at most; a rollback stamped on
# real time under `rollway up`'s 60x clock is minutes or hours behind.
_SKEW_SECONDS = 60.0

_TWO_CLOCKS = ("the rollback's entries are stamped before entries ahead of them in the history: they were "
               "written on another clock than the rollout's (`rollway abort` stamps real time when no run owns "
               "the rollout, or the Prefect API cannot say which clock it ran on; the rollout ran on a faster one)")


def _one_clock(start: float, end: float) -> bool:
    """Whether ``end``, recorded after ``start``, is stamped on the same clock: not well before it."""
    return end >= start - _SKEW_SECONDS


def _span(start: float, end: float) -> str | None:
    """``end - start`` as a duration, or None when they are on two clocks (no duration can be
    read from them). An end stamped a little before its start (hosts whose clocks disagree by
    seconds) is said so: "0 s" read as a span measured at nothing."""
    if not _one_clock(start, end):
        return None
    return duration(end - start) if end >= start else f"clocks disagree by {duration(start - end)}"


def _outcome(record: RolloutRecord, waits: "Waits", sped: bool = False, *, now: float | None = None,
             unrestorable: str | None = None) -> str:
    """The rollout report's outcome line; ``sped``: the rollout clock ran ahead of the wall
    (``_ran_ahead``), and a rollback's end says which clock its time is on (``_stamped``).
    ``now`` and ``unrestorable``: for a rollback not finished, as ``_finish``."""
    phase = record.phase
    if phase is RolloutPhase.PROMOTED:
        done = record.last_transition(FINALIZED)
        watched = _window_closing(record)
        owed = "" if watched else _window_open(record)
        closed = f"; monitoring window closed ({watched.kind}, {_stamped(record, watched, sped)})" if watched else owed
        closed = _accepted_said(record) + closed
        if not owed and unhandled_breach(record) is not None:
            # Before a finalize begun and not finished: one that began before the breach was
            # recorded refuses to carry on past it (``unhandled_breach``), so "run it again" failed.
            # And before "finalized": one done before the breach was recorded left the release on
            # the stable service, which its way out says (the breach's entry holds only the facts).
            # A "Finalized" notice owed stays said: the breach bars its late send (``notice_not_sent``).
            unsent = notice_not_sent(record)
            return (f"promoted{closed}; **breach not rolled back**: {breach_way_out(record)}"
                    + (f"; **{cell(unsent)}**" if unsent else ""))
        if finalize_unfinished(record):
            # Begun and not recorded as finished: its run stopped part-way (or is still going),
            # and the canary service is not free for the next rollout until finalize runs again.
            began = record.last_transition(FINALIZE_START)
            return (f"promoted{closed}; **finalize began** ({cell(began.actor)}, {_stamped(record, began, sped)}) **and is not "
                    f"recorded as finished**: {FINALIZE_AGAIN}")
        if done is None and not owed:
            # Nothing owed but the finalize: "promoted; monitoring window closed" read as a release
            # finished, while the canary service carries all the traffic and a new rollout is refused.
            return f"promoted{closed}; **not finalized**: {FINALIZE_OWED}"
        unsent = notice_not_sent(record)
        return ("promoted" + closed + (f"; finalized by {cell(done.actor)} at {_stamped(record, done, sped)}" if done else "")
                + (f"; **{cell(unsent)}**" if unsent else ""))
    if phase is RolloutPhase.ROLLED_BACK:
        end = record.last_transition("rollback")
        return "rolled back" + (f" at {_stamped(record, end, sped)}" if end else "")
    if phase is RolloutPhase.ROLLING_BACK:
        # What finishes it, and who carries it out now: the report read alone said neither. A
        # rollback that stopped with its traffic back says it on its "Users get" line (``users_get``).
        finish = "" if stopped_traffic(record) is not None else (
            f"; {_finish(cannot_finish(unrestorable), record, now, first=False)}")
        return "rolling back: the rollback began but is not recorded as finished" + finish
    held = between_phases(record) or _waiting(record, waits)
    return held or f"{phase.value} (not finished) at {record.weights} stable/canary"


FINALIZE_OWED = ("run `rollway finalize` (or the finalize deployment), which puts the promoted version on the stable "
                 "service and readies the canary service; a new rollout of the service is refused until then")
"""What a promotion whose monitoring window closed owes until it is finalized, and what does it."""

FINALIZE_AGAIN = "run `rollway finalize` (or the finalize deployment) again, which carries on from where it stopped"
"""What finishes a finalize that began and is not recorded as finished."""


def finalize_row(record: RolloutRecord, live: Weights | None = None,
                 canary: tuple[str, int] | None = None) -> str | None:
    """Status's "finalize" row of a promotion: done (by whom, when), begun and not recorded as
    finished, or not run with nothing else owed (``FINALIZE_OWED``); None for a rollout not
    promoted, or one whose monitoring window is still owed (its "monitoring" row says that
    `rollway finalize` refuses until it closes). Status showed "promoted", its last stage "passed"
    and "owner none" either way: only the report, or the next rollout refused, said a finalize was owed.
    ``live``: the load balancer's weights status read (None: unread), for a "Finalized" notice owed
    (``notice_not_sent``): status shows the service's newest rollout, and the weights settle whether
    a finalize run again sends it late; ``canary``: the canary service's name and desired count, read
    as well (None: unread), which settle it when the weights are all on stable."""
    if record.phase is not RolloutPhase.PROMOTED:
        return None
    began = record.last_transition(FINALIZE_START) if finalize_unfinished(record) else None
    if unhandled_breach(record) is not None:
        # Finalize refuses while the breach stands (``unhandled_breach``), one begun before it too;
        # one done before it was recorded left the release on the stable service, and "the next
        # rollout can start" read as a window that closed cleanly. The way out is said here alone:
        # the breach's entry holds only the facts.
        unsent = notice_not_sent(record)  # a "Finalized" notice owed, which the breach bars
        return ((f"began ({began.actor}, {utc(began.at)}), and refuses to carry on past the breach recorded since: "
                 if began is not None else "done: " if is_finalized(record) else "not run: ") + breach_way_out(record)
                + (f"; {unsent}" if unsent else ""))
    if began is not None:
        return f"began ({began.actor}, {utc(began.at)}) and is not recorded as finished: {FINALIZE_AGAIN}"
    done = record.last_transition(FINALIZED)
    if done is not None:
        # A notice SNS refused, said beside "done": the finalize is, its announcement is not.
        unsent = notice_not_sent(record, live=live, canary=canary)
        return (f"done by {done.actor} at {utc(done.at)}: the next rollout of the service can start"
                + (f"; {unsent}" if unsent else ""))
    if window_owed(record):
        return None
    return f"not run: {FINALIZE_OWED}"


def _accepted_said(record: RolloutRecord) -> str:
    """The stages a person accepted on their word, the judge unable to pass them (``stage_lines``'
    "accepted by"), for a promotion's outcome: ", 1 stage accepted on a person's word (...): 5% by
    dana", or "" when the judge passed every stage. "Promoted" alone read as a release the judge had
    passed throughout."""
    weights = stage_weights(record)
    accepted = [(line.stage, line.verdict.removeprefix("accepted by ").partition(": ")[0])
                for line in stage_lines(record) if line.verdict.startswith("accepted by ")]
    if not accepted:
        return ""
    said = ", ".join(f"{weights[stage]}% by {cell(who)}" if weights and stage is not None and 0 <= stage < len(weights)
                     else f"a stage by {cell(who)}" for stage, who in accepted)
    many = len(accepted) > 1
    return (f", {len(accepted)} stage{'s' if many else ''} accepted on a person's word (the judge unable to pass "
            f"{'them' if many else 'it'}): {said}")


# How a person answers a paused run: the Prefect UI's Resume form, or rollway's commands.
_HOW_TO_ANSWER = ("answer it in the Prefect UI (the paused flow run{run}: **Resume**) or with `rollway promote` "
                  "(approve), `rollway hold` (stay, asked again later) or `rollway abort` (reject: roll back)")


class Waits(NamedTuple):
    """What a rollout waits at, read once for all the report says of it: the question its run asks
    now (``pause_asked_now``) and the pause entry that question stands for (``waiting_pause``)."""

    asked: OpenPause | None
    pause: Transition | None


def waits_at(record: RolloutRecord) -> Waits:
    """``record``'s ``Waits``: ``pause_asked_now`` read once, everything else derived from it."""
    asked = pause_asked_now(record)
    return Waits(asked, _waiting_pause(record, asked))


def waiting_pause(record: RolloutRecord) -> Transition | None:
    """The pause an unfinished rollout waits at for a person's answer, as its run recorded it
    (``pause``), or None: its newest entry is not one. A timeout whose policy holds, newest, asks
    the same pause again (not recorded again, so that weeks of it do not fill the item): its
    pause is returned. A run that died while paused leaves its pause newest: the holder line says
    whether its lease still runs.

    Asked again for another cause (metrics unreadable at one asking, inconclusive at the next),
    the entry of the question asked now (``pause_asked_now``), which need not be the newest: each
    question is recorded once per wait."""
    return waits_at(record).pause


def _waiting_pause(record: RolloutRecord, asked: OpenPause | None) -> Transition | None:
    """``waiting_pause``, given the question asked now (``pause_asked_now``)."""
    wait = unanswered_wait(record)
    if not wait:
        return None
    pauses = [t for t in wait if t.kind == "pause"]
    if asked is not None:
        return next(t for t in reversed(pauses) if pause_cause(t) == asked.cause)
    if pauses:
        return pauses[-1]
    # A timeout whose pause entry is not next to it (written before the two were kept together).
    return next((t for t in reversed(record.history) if t.kind == "pause" and t.to_stage == wait[-1].to_stage), None)


def open_question(record: RolloutRecord, pause: Transition) -> str:
    """What the waiting ``pause`` (``waiting_pause``) asks now: the question recorded with its
    latest asking (``pause_asked_now``); in records written before that was kept, its question,
    with the deadline of the question now open when it has been asked again since
    (``asked_until``). Its entry keeps the first asking's deadline: asked again after a timeout
    whose policy holds, the pause read "unanswered by" a time long past while it still waited."""
    return _open_question(record, pause, pause_asked_now(record))


def _open_question(record: RolloutRecord, pause: Transition, asked: OpenPause | None) -> str:
    """``open_question``, given the question asked now (``pause_asked_now``)."""
    if asked is not None and pause.to_stage == asked.stage:
        return asked.question
    question = pause.comment or pause.verdict or ""
    first = pause_deadline(pause.comment)
    if first is not None and record.asked_until is not None and record.asked_until > first:
        return asked_again(question, record.asked_until)
    return question


def as_asked_now(record: RolloutRecord) -> tuple[Transition, ...]:
    """The history, the pause the rollout waits at with the question now open (``open_question``):
    asked again after a timeout whose policy holds, its entry gave the first deadline, long past.
    `rollway status`'s history and the report's timeline both list it so."""
    return _as_asked_now(record, waits_at(record))


def _as_asked_now(record: RolloutRecord, waits: Waits) -> tuple[Transition, ...]:
    waiting = waits.pause
    if waiting is None or (asked := _open_question(record, waiting, waits.asked)) == (
            waiting.comment or waiting.verdict or ""):
        return record.history
    return tuple(t.model_copy(update={"comment": asked}) if t is waiting else t for t in record.history)


def as_listed(record: RolloutRecord) -> tuple[Transition, ...]:
    """The history as `rollway status` and the report's timeline list it: ``as_asked_now``, with
    the answers the rollout's runs refused (``RolloutRecord.refused_answers``) among its entries
    in the order recorded (``_merged``), each a row of kind ``refused``. Only listed: whatever reads
    the rollout's state reads the history alone, which a refused answer left as it was."""
    return _as_listed(record, waits_at(record))


def _as_listed(record: RolloutRecord, waits: Waits) -> tuple[Transition, ...]:
    listed = enumerate(map(_page_as_read, _as_asked_now(record, waits)))
    return _merged(record, listed, RefusedAnswer.as_transition)


def _page_as_read(entry: Transition) -> Transition:
    """``entry`` as listed: a page's entry (a window page's, the decommission's) in the words the
    page's own line reads it with (``page_outcome``), whichever rollway wrote it. An older one whose
    page's SNS answer was lost opened as a refusal does, and the history said "was not sent" under a
    line saying nobody knows whether it went out; an older decommission page's held SNS's words
    alone, naming no page."""
    outcome = (page_outcome(entry.comment) if entry.kind == WINDOW_PAGE_REFUSED
               else refusal_read(entry) if entry.kind == DECOMMISSION_PAGE_REFUSED else None)
    if outcome is None or outcome.said() == entry.comment:
        return entry
    return entry.model_copy(update={"comment": outcome.said()})


def refused_at_pause(record: RolloutRecord) -> list[RefusedAnswer]:
    """The answers refused since the pause the rollout waits at (``waiting_pause``), oldest first:
    that pause is still open, and whoever answers next should know someone tried and why it was
    refused. None for a rollout that waits at no pause."""
    return _refused_since(record, waiting_pause(record))


def refusals_dropped_said(record: RolloutRecord) -> str | None:
    """That the rollout's oldest refused answers were dropped past the bound (``refusals_kept``),
    and how many, or None when none was: the answers kept read as every one there had been."""
    dropped = record.refused_dropped
    if dropped is None and (least := record.refused_dropped_least):  # those counted were, whatever else was
        return (f"at least {least} older refused answer{'s were' if least != 1 else ' was'} dropped, and how many "
                "more is not known: the ledger keeps only the newest, and these may have been kept by a rollway "
                "that did not count those it dropped")
    if dropped is None:  # a list an earlier rollway kept, which may have lost some uncounted (``may_have_dropped``)
        # Not "the rollway that recorded them did not count those it dropped": one from before any
        # bound kept every answer, and the ledger cannot tell its list from one a drop left.
        return ("older refused answers may have been dropped, and how many is not known: the ledger keeps only the "
                "newest, and these may have been kept by a rollway that did not count those it dropped")
    if not dropped:
        return None
    return (f"{dropped} older refused answer{'s were' if dropped != 1 else ' was'} dropped: the ledger keeps only "
            "the newest")


def _refused_since(record: RolloutRecord, pause: Transition | None) -> list[RefusedAnswer]:
    """``refused_at_pause``, given the pause the rollout waits at (``waiting_pause``): those recorded
    after it (``refused_after``: by recording order, not by clocks that may disagree), about its
    stage. `rollway promote` records the stage of the pause it read, and its refusal may be recorded
    once the run waits at the next one: said as this pause's, it read as answered and refused. One
    recorded with no stage (no pause was recorded yet as it read the rollout) may be this pause's."""
    if pause is None:
        return []
    return [r for r in record.refused_answers
            if r.to_stage in (None, pause.to_stage) and refused_after(record, r, pause)]


def _merged(record: RolloutRecord, entries: Iterable[tuple[int, Transition]],
            shown: Callable[[RefusedAnswer], R]) -> tuple[Transition | R, ...]:
    """``entries`` (each an entry of ``record``'s history as listed, with its index there) with the
    rollout's refused answers among them, each as ``shown``, in the order recorded: an answer after
    the entries the history held as the ledger recorded it (``RefusedAnswer.recorded_after``), as
    ``refused_after`` tells which pause it answered. By time, one stamped by a clock behind the run's
    stood above the pause it answered. One recorded without it (before it was kept, or its list
    rewritten by such a rollway) is placed by its time, as then: after an entry of an equal time (a
    refusal follows the pause it answered), and before the entries the next answer kept with its
    place was recorded before (it was recorded earlier still: by its time alone, a clock ahead of the
    run's put it below them, and every answer after it with it). The answers keep the list's order, which is recording order."""
    refused, taken = record.refused_answers, 0
    # Where each answer goes at the latest: its own place, else that of the next answer that has one.
    latest: list[int | None] = []
    bound = None
    for answer in reversed(refused):
        bound = bound if answer.recorded_after is None else answer.recorded_after
        latest.append(bound)
    latest.reverse()
    merged: list[Transition | R] = []
    for index, entry in entries:
        while taken < len(refused) and ((latest[taken] is not None and index >= latest[taken])
                                        or (refused[taken].recorded_after is None and entry.at > refused[taken].at)):
            merged.append(shown(refused[taken]))
            taken += 1
        merged.append(entry)
    return (*merged, *map(shown, refused[taken:]))


def _waiting(record: RolloutRecord, waits: Waits) -> str:
    """A rollout paused for a person's answer: at which stage, since when, what it asks and how to
    answer it; "" for any other. It read "progressing (not finished)", as if a run moved it on."""
    pause = waits.pause
    if pause is None:
        return ""
    stage = _for_stage(record, pause)
    since, asked_at = _pause_times(record, pause, waits.asked)
    # The run asking now: the pause's entry names the run that first asked it, dead when another took it over.
    asking = waits.asked.run if waits.asked is not None and waits.asked.run else pause.run
    run = f" {cell(asking)}" if asking else ""
    unsent = waits.asked.notice_refused if waits.asked is not None else None
    lost = waits.asked is not None and waits.asked.notice_lost
    return (f"**waiting for a person's approval**{stage}, at {record.weights} stable/canary, since "
            f"{since}{_asked_again(record, waits, asked_at)}: "
            f"{cell(_open_question(record, pause, waits.asked) or 'no question recorded')}; "
            + _HOW_TO_ANSWER.format(run=run)
            # Nobody was paged (or maybe not): whoever reads the report may be the only one who knows it waits.
            + (f" **The \"Rollout waits for a person\" {NOTICE_LOST if lost else 'notice was NOT sent'}:** "
               f"{cell(unsent)}" if unsent else ""))


PAUSE_NOT_TOLD = "waiting for a person; the notice was NOT sent: "
"""How status and the report begin the line of a pause whose "Rollout waits for a person" notice
SNS did not take, its answer after it."""

NOTICE_LOST = "notice may not have been sent (SNS's answer was lost: it may have delivered it)"
"""What the form, status and the report say of a "Rollout waits for a person" notice whose answer
SNS lost, where a refused one's say "NOT sent" (and "nobody was told"): someone may have been."""


def pause_notice_unsent(record: RolloutRecord) -> str | None:
    """What `rollway status` says of a pause whose "Rollout waits for a person" notice SNS did not
    take (recorded on the open pause), or None: nobody was told an answer is waiting, and the
    pause times out as its question says unless someone who looks answers it. One whose answer
    SNS lost may have gone out: said so."""
    asked = pause_asked_now(record)
    if asked is None or not asked.notice_refused:
        return None
    if asked.notice_lost:
        return f"waiting for a person; the {NOTICE_LOST}: {asked.notice_refused}; make sure whoever answers it knows"
    return f"{PAUSE_NOT_TOLD}{asked.notice_refused}; nobody was told it waits: tell whoever answers it"


def _for_stage(record: RolloutRecord, pause: Transition) -> str:
    """The stage ``pause`` asks about, as " for stage 2/3 (25%)"; "" when the record cannot say."""
    weights = stage_weights(record)
    return (f" for stage {pause.to_stage + 1}/{len(weights)} ({weights[pause.to_stage]}%)"
            if weights and pause.to_stage is not None and 0 <= pause.to_stage < len(weights) else "")


def _asked_again(record: RolloutRecord, waits: Waits, asked_at: str) -> str:
    """Why the waiting pause (``waits.pause``) was asked again, and when last (``asked_at``), for the waiting
    line; "" when it has been asked once. The open pause's asking count includes every asking
    (after a timeout whose policy holds, after a refused answer, by a run taking it over): counted
    alone, it said "it timed out at <the re-asking>" after an answer refused where nothing had
    timed out, and beside a policy that rolls back on timeout."""
    last = record.history[-1] if record.history else None
    timed_out = (last is not None and last.kind == "timeout") or any(
        held_by_timeout(t) for t in unanswered_wait(record, waits.pause.to_stage))
    refused = _refused_since(record, waits.pause)
    asked = waits.asked
    again = asked is not None and asked.asked > 1  # else its run stopped before asking again
    # Asked again by a run that took the rollout over from the one that asked it (which died waiting).
    taken = next((t for t in reversed(record.history) if t.kind == TAKEOVER and t.at >= waits.pause.at), None)
    by = f" by {cell(taken.actor)}, which {cell(taken.comment or 'took the rollout over')}" if taken and again else ""
    if not refused:
        if timed_out:
            return f"; it timed out at {asked_at} and is asked again{by}"
        return f"; asked again at {asked_at}{by}" if again else ""
    who = ", ".join(dict.fromkeys(cell(r.actor) for r in refused))
    said = f"an answer was refused ({who}'s)" if len(refused) == 1 else f"{len(refused)} answers were refused ({who})"
    # Past the bound, those counted above are the ones kept: they read as every one there was.
    said += f", and {more}" if (more := dropped_at_said(record, waits.pause)) else ""
    before = "it timed out, and " if timed_out else ""
    return f"; {before}{said}" + (f", and it is asked again at {asked_at}{by}" if again else "")


def _pause_times(record: RolloutRecord, pause: Transition, asked: OpenPause | None) -> tuple[str, str]:
    """When ``pause`` began and when it was last asked (or timed out), both on the wall clock its
    deadline is on.

    The pause's entry is stamped on the rollout clock, and its question says its deadline on the
    wall clock (a pause times out in wall seconds): under `rollway up`'s 60x the line read "since
    20:42 ... unanswered by 19:35", and nobody could subtract one from the other. The wall time it
    began is its deadline less the spec's timeout; a timeout that holds is recorded once, when
    that deadline came. A pause recorded without a deadline, or with a spec that cannot be read,
    keeps its entry's time, said to be on the rollout clock.

    Asked again since (``asked``, ``pause_asked_now``): since its first asking, recorded with it, and the time
    the question now open was asked (its deadline less the timeout), after a timeout or a refused
    answer (``_asked_again`` says which)."""
    deadline = pause_deadline(pause.comment)
    spec = _recorded_spec(record)
    timeout = spec.approvals.timeout_seconds if spec is not None else None
    last = record.history[-1]
    now_due = pause_deadline(asked.question) if asked is not None else None
    if asked is not None and asked.asked > 1 and now_due is not None and timeout is not None:
        return wall_utc(asked.since), wall_utc(now_due - timeout)
    if deadline is None or timeout is None:
        return f"{utc(pause.at)} (rollout clock)", f"{utc(last.at)} (rollout clock)"
    return wall_utc(deadline - timeout), wall_utc(deadline)


class NextPhase(BaseModel):
    """The weekly phase a rollout holding between phases starts next, and when it is due."""

    model_config = ConfigDict(frozen=True)

    passed: str  # the name of the phase that passed
    name: str
    weights: tuple[int, ...]  # the stages it runs
    due: float  # the first instant it may start, on the rollout clock (``weekly.next_phase_due``)
    timezone: str  # the spec's ``weekly_timezone``, whose calendar weeks count


def next_phase(record: RolloutRecord) -> NextPhase | None:
    """The next weekly phase of a rollout holding at the end of one that passed, or None for any
    other (or one whose spec cannot be read). One reading of the calendar for the report, `rollway
    status`, `promote` and `hold`, so that they never disagree on when it is due."""
    index = record.weekly_phase_index
    if record.phase is not RolloutPhase.PAUSED or not record.weekly_phase_passed or index < 0:
        return None
    spec = _recorded_spec(record)
    if spec is None or index + 1 >= len(spec.phases) or record.weekly_phase_started_at is None:
        return None
    following = spec.phases[index + 1]
    return NextPhase(passed=spec.phases[index].name, name=following.name, weights=following.weights,
                     due=weekly.next_phase_due(record.weekly_phase_started_at, **spec.phase_calendar(record)),
                     timezone=spec.weekly_timezone)


def _due_said(nxt: NextPhase) -> str:
    """When the next weekly phase may start, in UTC as the report's other times are, with the
    weekly_timezone's reading beside it (the calendar the phases count in): given in that zone
    alone, the line was an hour or more off every other time of the report."""
    local = weekly.describe(nxt.due, nxt.timezone)
    return local if nxt.timezone == "UTC" else f"{utc(nxt.due)} ({local})"


def between_phases(record: RolloutRecord) -> str:
    """A rollout holding at the end of a weekly phase that passed: which, and when the next may
    start (as `progressive_rollout` says when it finds one), or "" for any other.

    "paused (not finished)" told a reader neither that the phase had passed nor that the rollout
    waits for the schedule, nor until when."""
    nxt = next_phase(record)
    if nxt is None:
        return ""
    return (f"holding between weekly phases: {cell(nxt.passed)} passed, at {record.weights} "
            f"stable/canary; the next phase, {cell(nxt.name)}, may start from "
            f"{_due_said(nxt)} (the first advance_phase run from then on starts it)")


def _window_closing(record: RolloutRecord) -> Transition | None:
    """The entry that closed a promotion's monitoring window (its decommission, or "watched" for a
    plan that keeps the old service), or None."""
    return next((t for t in reversed(record.history) if t.kind in ("decommission", "watched")), None)


def _window_line(record: RolloutRecord) -> list[str]:
    """What a promotion's closed monitoring window measured, in its closing entry's words: how many
    of its looks counted requests to the new version when some did not. "Monitoring window closed"
    alone read as a watched, healthy window when most looks had measured no error rate."""
    closing = _window_closing(record) if record.phase is RolloutPhase.PROMOTED else None
    if closing is None or not closing.comment:
        return []
    return [f"- **Monitoring window:** {cell(closing.comment)} ({cell(closing.actor)}, {utc(closing.at)})"]


def _window_open(record: RolloutRecord) -> str:
    """What a promoted rollout whose monitoring window is not recorded as closed still owes (the
    ledger's own rule, ``monitoring_owed``), or "" when it owes none or its spec is unreadable.

    Without it the outcome read plain "promoted" while a run still watched the release, or after
    that run died with the window owed: the previous version still runs, and a rollback still
    puts it back."""
    spec = _recorded_spec(record)
    if spec is None or not monitoring_owed(spec, record):
        return ""
    ends = window_end(spec, record)
    # A window its run recorded unverified is said in status's words (``looks_said``): "not
    # recorded as closed" alone read the same as a run that died watching it.
    looks = looks_said(spec, record)
    kept = "the previous version still runs"
    if looks is not None:
        kept = cell(looks[0]) if looks[1] else f"{kept}; {cell(looks[0])}"
    return (f"; **monitoring window not recorded as closed** (due to end {utc(ends)}): {kept}, and `rollway abort` "
            "can still roll the release back")


def _owed_spec(record: RolloutRecord) -> RolloutSpec | None:
    """The recorded spec of a promotion that owes a monitoring window not recorded as closed, or
    None: it owes none (or its spec cannot be read)."""
    spec = _recorded_spec(record)
    return spec if spec is not None and monitoring_owed(spec, record) else None


def window_owed(record: RolloutRecord) -> bool:
    """Whether a promotion owes a monitoring window not recorded as closed, by its recorded spec:
    when ``monitoring_row`` has a row to show."""
    return _owed_spec(record) is not None


def monitoring_row(record: RolloutRecord, now: float | None, speed: float = 1.0,
                   wall: float | None = None) -> str | None:
    """Status's "monitoring" row of a promotion whose window is not recorded as closed: until when
    it runs or, once over (or ``now`` unknown), that no run closed it and what does; None when it
    owes none. Status said "promoted", its last phase "passed" and "owner none" of a window whose
    run ended with too few checks able to read the metrics: only a refused finalize and the report
    told that the previous version still runs and what to do. A window whose run recorded it
    unverified (``RolloutRecord.unverified_window``) says how many of its looks counted requests,
    and one that passed cleanly but kept the old service for the traffic on it
    (``RolloutRecord.kept_for_traffic``) says that, as the report does (``looks_said``), and, while
    another run holds the rollout's lease at ``wall`` (the wall clock), that it watches again and
    the end said is the previous run's (``watching_run``); so too, past the window's end, a run
    watching what is left of it. Inside the window, while no run holds the lease, that none is
    watching it and what does (``nobody_watching``)."""
    from rollway.clock import on_the_wall

    spec = _owed_spec(record)
    if spec is None:
        return None
    ends = window_end(spec, record)
    abort = "`rollway abort` can still roll the release back (the previous version still runs)"
    looks = looks_said(spec, record)
    watching, unsure = watching_run(spec, record, wall)
    if looks is not None and looks[1] and unsure is not None:
        return (f"{looks[0]}; {unsure}: once the lease lapses with the window open, the next monitor run or weekly "
                f"tick looks again; until the window closes `rollway finalize` refuses, and {abort}")
    if looks is not None and looks[1] and watching is not None:
        return (f"being watched again now by {watching}, whose end replaces the previous run's: {looks[0]}; until the "
                f"window closes `rollway finalize` refuses, and {abort}")
    if looks is not None and looks[1]:
        # The run that watched it to its end recorded why it did not close it: said, where "no run
        # closed it (the run watching it stopped, or ...)" left a person to guess which. Said
        # whatever ``now`` is: that run's clock, which stamped it, is the rollout's.
        return (f"{looks[0]}; the next monitor run or weekly tick looks again (or run "
                f"`progressive_rollout` of {record.image} again now); until then `rollway finalize` refuses, and "
                f"{abort}")
    so_far = f"; {looks[0]}" if looks is not None else ""
    so_far += f"; {unsure}" if unsure is not None else ""
    if now is not None and now < ends:
        # "Open until" alone read as a release being watched, a failing one to be rolled back by
        # the monitor, while the run watching it had been killed: nothing looked until the end.
        why = nobody_watching(record, wall)
        if why is None:
            return (f"open until {utc(ends)} (rollout clock){on_the_wall(speed, ends, now)}; `rollway finalize` "
                    f"waits for it to close; {abort}{so_far}")
        # Unwatched, "`rollway finalize` waits for it to close" ended the row, read as a window that
        # closes if one waits, where finalize refuses and says waiting does not close it: the row
        # says what watches it and closes it, as the row of a window past its end does.
        return (f"open until {utc(ends)} (rollout clock){on_the_wall(speed, ends, now)}; the ledger shows no run "
                f"watching it now ({why}): a failing release is not rolled back until one does: run "
                f"`progressive_rollout` of {record.image} again, which watches what is left of it and closes it (or "
                f"the weekly advance_phase does); until then `rollway finalize` refuses, and {abort}{so_far}")
    if watching is not None:
        # Past its end, a run resumed it (the weekly tick, a monitor run): "no run closed it ... run
        # `progressive_rollout` again" while that run watched what was left of it.
        return (f"its window was due to end {utc(ends)} (rollout clock) and {watching} is watching what is left of it "
                f"now, and closes it; until then `rollway finalize` refuses, and {abort}{so_far}")
    return (f"not recorded as closed: its window was due to end {utc(ends)} (rollout clock) and "
            f"{not_closed(record, wall)}: run `progressive_rollout` of {record.image} again, which watches what is left of it and closes it (or the "
            f"weekly advance_phase does); until then `rollway finalize` refuses, and {abort}{so_far}")


def ran_ahead(record: RolloutRecord, now: float | None = None) -> bool:
    """Whether ``record``'s rollout clock ran ahead of the wall (``_ran_ahead``): its reports then
    label times by clock, and read the clock its runs ran on to give wall times."""
    return _ran_ahead(record, now)


def _ran_ahead(record: RolloutRecord, now: float | None = None) -> bool:
    """Whether the record shows its rollout clock running ahead of the wall (`rollway up`'s 60x):
    an entry that kept the wall time beside its own, a pause whose question says its deadline on the
    wall clock (asked at that less the spec's timeout), or, given ``now`` (the wall clock), times
    recorded ahead of it. At speed 1 the two agree, and the tables need not say which they are on."""
    if any(_sped_up(t) for t in record.history):
        return True
    if now is not None and _clock_note(record, now):
        return True
    spec = _recorded_spec(record)
    if spec is None:
        return False
    timeout = spec.approvals.timeout_seconds
    return any(t.kind == "pause" and (deadline := pause_deadline(t.comment)) is not None
               and t.at - (deadline - timeout) > _SKEW_SECONDS for t in record.history)


_ROLLOUT_CLOCK = " (rollout clock)"
"""The label of a column on the rollout clock, in a report of a rollout whose clock ran ahead of
the wall: the leases, claims and pause deadlines beside them are on the wall clock."""


def _stage_table(record: RolloutRecord, sped: bool = False) -> list[str]:
    """The stages' rows; ``sped``: the rollout clock ran ahead of the wall (``_ran_ahead``), and
    the times and spans are labelled as the rollout clock's."""
    weights = stage_weights(record)
    on = _ROLLOUT_CLOCK if sped else ""
    rows = [f"| stage | weights s/c | from{on} | until{on} | lasted{on} | how | approval{on} | verdict and reason |",
            "|---|---|---|---|---|---|---|---|"]
    for line in stage_lines(record):
        stage = "-" if line.stage is None or line.stage < 0 else (
            f"{line.stage + 1}/{len(weights)}" if weights else str(line.stage + 1))
        until = utc(line.ended_at) if line.ended_at is not None else "(still)"
        lasted = _lasted(line) or "-"
        began = utc(line.started_at)
        if line.moved_after is not None:
            # As the incident report's exposure gives it: the finding's time alone read as when the
            # stage began, and its span understated the stage by as long as the rollout lay dead.
            began = f"between {utc(line.moved_after)} and {began} (found there by a resumed run)"
        rows.append(f"| {stage} | {line.weights} | {began} | {until} | {lasted} | {cell(line.how)} | "
                    f"{cell(line.approval or '-')} | {cell(line.verdict)} |")
    return rows if len(rows) > 2 else ["No shift to the new version is recorded."]


def _lasted(line: StageLine) -> str | None:
    """How long the traffic stayed at ``line``'s weights, as its row says it; None while it still
    does. A span whose ends are on two clocks says so; one a resumed run found (``moved_after``)
    runs from the finding to as long as from the dead run's last entry."""
    if line.ended_at is None:
        return None
    lasted = _span(line.started_at, line.ended_at) or "two clocks"
    longest = _span(line.moved_after, line.ended_at) if line.moved_after is not None else None
    if longest is not None and line.ended_at >= line.started_at and lasted != "two clocks":
        return f"{lasted} to {longest}"
    return lasted


def _unmeasurable(span: str) -> str | None:
    """Why a span as a table gives it (``_span``, or "two clocks") cannot be measured, said in a
    sentence; None: it is a duration. "25% for two clocks" read as one."""
    if span == "two clocks":
        return "its ends are stamped on two clocks"
    if span.startswith("clocks disagree"):
        return f"the hosts' {span}"
    return None


def _at_weight(line: StageLine, still: str = "its end not recorded") -> str:
    """How long the traffic stayed at ``line``'s canary weight, for ``_each_weight``: a span that
    cannot be measured says why ("25% for two clocks" read as a duration); ``still``: what is said
    of a weight whose end is not recorded."""
    weight, lasted = f"{line.weights.canary}%", _lasted(line)
    if lasted is None:
        return f"{weight} from {utc(line.started_at)}, {still}"
    why = _unmeasurable(lasted)
    return f"{weight} (not measurable: {why})" if why else f"{weight} for {lasted}"


def _each_weight(record: RolloutRecord, sped: bool, back_at: float | None = None,
                 still: str = "its end not recorded") -> list[str]:
    """The incident's exposure weight by weight: how long users had the new version at each share
    of the traffic, in order (the stage table's spans), to the traffic's return (``back_at``, the
    exposure's). The total and the highest weight left the reader to work out from the table how
    long the users at 25 % had it, against those at 5 %."""
    lines = [line for line in stage_lines(record) if line.weights.canary > 0]
    if not lines:
        return []
    if lines[-1].ended_at is None and back_at is not None:
        # A rollback that read the traffic back and stopped on a later step ends no stage row, but
        # "Exposed for" counts to its read-back: the last weight's span said "its end not recorded".
        lines[-1] = lines[-1].model_copy(update={"ended_at": back_at})
    said = [_at_weight(line, still) for line in lines]
    back = ", to the traffic's return" if lines[-1].ended_at is not None else ""
    return [f"- **At each weight:** {', then '.join(said)}{back}" + (" (on the rollout clock)" if sped else "")]


PHASE_ENDS = "; this phase ends at "
"""How the reason of the ``phase`` entry a weekly phase's run writes when its last stage passed
reads (``rollway.decide``: "<why>; this phase ends at 5%"); its starts read "starting <name>"
(``flows.progressive.start_phase``) or "in <name>: ..." (a run that took the rollout past a phase's end)."""


def _phase_named(spec: RolloutSpec, entry: Transition) -> int | None:
    """The index of the weekly phase a ``phase`` entry starts, or None when it starts none."""
    said = entry.comment or ""
    # Longest first: "week 1" would also open "starting week 10".
    for index, name in sorted(enumerate(p.name for p in spec.phases), key=lambda p: -len(p[1])):
        for lead in (f"starting {name}", f"in {name}:"):
            if said.startswith(lead) and not said[len(lead):len(lead) + 1].isalnum():
                return index
    return None


def _weekly_phases(record: RolloutRecord, sped: bool = False) -> list[str]:
    """The "Weekly phases" section of a rollout run by weekly phases: each phase's stages, when it
    started, when its last stage passed, when the next phase started and how long the rollout held
    between the two, with the total held. The stage table alone said a stage "lasted 7.0 days" after
    minutes of judging: the days held for the schedule read as days of baking. Empty for a rollout
    run as one phase (or whose spec cannot be read). ``sped``: as ``_stage_table``'s."""
    spec = _recorded_spec(record)
    # An unphased run records its start as week 1's ("going on through every stage"): a section
    # would show it all as week 1's. A rollout some phase of which passed shows, however run since.
    if spec is None or len(spec.phases) < 2 or not (
            record.phased or any(t.kind == "phase" and PHASE_ENDS in (t.comment or "") for t in record.history)):
        return []
    rows: list[dict] = []
    for t in record.history:
        if t.kind == "phase" and (index := _phase_named(spec, t)) is not None:
            if rows and rows[-1]["passed"] is not None and rows[-1]["next"] is None:
                rows[-1]["next"] = t.at
            if not rows or rows[-1]["index"] != index:
                rows.append({"index": index, "started": t.at, "passed": None, "next": None, "ended": None})
        elif not rows:
            continue
        elif t.kind == "phase" and PHASE_ENDS in (t.comment or "") and rows[-1]["passed"] is None:
            rows[-1]["passed"] = t.at
        elif t.kind == "promote" and rows[-1]["passed"] is None:
            rows[-1]["ended"] = f"promoted {utc(t.at)}"
        elif t.kind in ("rollback-start", "rollback") and rows[-1]["ended"] is None:
            rows[-1]["ended"] = f"rolled back {utc(t.at)}"
    if not rows:
        return []
    on = _ROLLOUT_CLOCK if sped else ""
    lines = [f"| phase | stages | started{on} | passed{on} | next phase started{on} | held between phases{on} |",
             "|---|---|---|---|---|---|"]
    held, apart = 0.0, 0
    for row in rows:
        phase = spec.phases[row["index"]]
        passed = utc(row["passed"]) if row["passed"] is not None else row["ended"] or "(under way)"
        if row["next"] is not None:
            span = _span(row["passed"], row["next"])
            if span is None:
                apart += 1
            else:
                held += max(0.0, row["next"] - row["passed"])
            nxt, lasted = utc(row["next"]), span or "two clocks"
        elif row["passed"] is not None and (due := next_phase(record)) is not None:
            nxt, lasted = f"not yet: may start from {_due_said(due)}", "(holding)"
        else:
            nxt, lasted = "-", "-"
        lines.append(f"| {cell(phase.name)} | {', '.join(f'{w}%' for w in phase.weights)} | {utc(row['started'])} | "
                     f"{cell(passed)} | {cell(nxt)} | {lasted} |")
    # After a blank line: a line right under the table would be read as one more row.
    return ["## Weekly phases", "", *lines, "",
            f"**Held between weekly phases:** {duration(held)} in all{' on the rollout clock' if sped else ''} (from a "
            "phase's last stage passing to the next phase's start: the schedule's wait, no stage being judged)"
            f"{_left_out(apart, 'span')}", ""]


def _left_out(count: int, what: str) -> str:
    """What a total under a table leaves out: the ``count`` rows whose span reads "two clocks" (their
    ends stamped on two clocks, no duration between them), so that the total is not read as every
    row's sum; "" when none."""
    if not count:
        return ""
    its = "its two ends" if count == 1 else "each one's two ends"
    return (f"; {count} {what}{'s' if count > 1 else ''} left out, {its} stamped on two clocks (a run on real time "
            "after one on a faster clock): no duration can be read between them")


def _askings(record: RolloutRecord, waits: Waits) -> tuple[dict[int, str], set[int]]:
    """How the Approvals table sums up a pause asked more than once: one row for the wait, its
    answer's (or its waiting row), saying "asked N times, causes: ..." and the last question,
    keyed by the row's entry id; and the ids of the timeouts that held, which that row stands for.
    Only where the ledger counted the askings (``Transition.asked``, ``OpenPause.asked``): older
    records keep a row per recorded timeout, as they were written."""
    summed: dict[int, str] = {}
    folded: set[int] = set()
    held: list[Transition] = []  # timeouts that held since the wait began
    causes: list[str] = []  # the causes of its pause entries, first asked first

    def sum_up(row: Transition, asked: int, said: tuple[str, ...], question: str) -> None:
        if asked > 1:
            summed[id(row)] = f"asked {asked} times, causes: {', '.join(said)}; last asked: {question}"
            folded.update(id(t) for t in held)

    for t in record.history:
        if t.kind == "pause":
            cause = pause_cause(t)
            if cause is not None and cause not in causes:
                causes.append(cause)
            continue
        if held_by_timeout(t):
            held.append(t)
            continue
        if t.kind in ANSWERS and t.kind != UNHEARD and t.asked is not None:
            sum_up(t, t.asked, tuple(causes), t.verdict or "")
        held, causes = [], []
    if waits.pause is not None and waits.asked is not None:
        sum_up(waits.pause, waits.asked.asked, waits.asked.causes, waits.asked.question)
    return summed, folded


# What ends a wait at a pause nobody answered: the traffic moved on, or the rollout ended.
_WAIT_ENDERS = (*_MOVES, "rollback-start", "rollback", "promote")


def _left_unanswered(record: RolloutRecord, waiting: Transition | None) -> list[tuple[Transition, Transition]]:
    """The pauses whose wait ended with no answer recorded (a person ran the rollback flow while
    the rollout waited, its run was cancelled while paused), oldest first, each with the entry that
    ended the wait. The Approvals table listed answers alone, and said "No approval was asked for or
    answered" of a pause a rollback cut short. A wait's last pause stands for it (asked again for
    another cause, or after a timeout whose policy holds); the pause the rollout still waits at
    (``waiting``) has its own row, and a wait an answer (or a timeout that rolled back) ended has
    theirs."""
    left: list[tuple[Transition, Transition]] = []
    pending: Transition | None = None
    for t in record.history:
        if t.kind == "pause":
            pending = None if t is waiting else t
        elif t.kind in ANSWERS and not held_by_timeout(t):  # a timeout that holds asks the pause again
            pending = None
        elif t.kind in _WAIT_ENDERS and pending is not None:
            left.append((pending, t))
            pending = None
    return left


def _read_late(record: RolloutRecord, left: list[tuple[Transition, Transition]]) -> dict[int, Transition]:
    """The ``not-applied`` entries (``NOT_APPLIED``) of the pauses ``left`` (``_left_unanswered``),
    by the pause's id: an answer its run read only after its look at the canary had ended the wait
    and rolled the rollout back. Each is recorded after the rollback's end, about the stage its
    pause asked for: it belongs to the last such pause whose wait ended before it."""
    at = {id(t): i for i, t in enumerate(record.history)}
    found: dict[int, Transition] = {}
    for i, t in enumerate(record.history):
        if t.kind != NOT_APPLIED:
            continue
        pause = next((p for p, ended in reversed(left)
                      if at[id(ended)] < i and p.to_stage == t.to_stage and id(p) not in found), None)
        if pause is not None:
            found[id(pause)] = t
    return found


def _not_applied_said(entry: Transition) -> tuple[str, str]:
    """A ``not-applied`` entry's answer (approve, reject or hold) and the person's own words ("" when
    none): its comment is the answer as every answer's is recorded (``answer_comment``), then
    "; not applied: " and the run's reason, which names no person (the look's verdict)."""
    comment = entry.comment or ""
    said, sep, _why = comment.rpartition("; not applied: ")
    return _answer_and_words(said if sep else comment)


def _answer_and_words(said: str) -> tuple[str, str]:
    """An answer as ``answer_comment`` records it ("approve: looks fine") as its answer (approve,
    reject or hold; "answered" when it names none) and the person's own words ("" when none)."""
    action = answer_action(said)
    answer = action if action in ("approve", "reject", "hold") else "answered"
    return answer, answer_said(answer, said)


def _read_when(entry: Transition, sped: bool) -> str:
    """A ``not-applied`` answer as its line says when it was read: "the answer given at <UTC>, read"
    (labelled the wall clock's where the report's times are the rollout clock's, ``sped``), or "the
    answer read" when the ledger does not say when it was given (recorded before it was kept).
    Said with its reading alone, an answer given before the rollback's start read as one given
    after its end."""
    if entry.answered_at is None:
        return "the answer read"
    return f"the answer given at {utc(entry.answered_at)}{' (wall clock)' if sped else ''}, read"


def _unheard_after(record: RolloutRecord, pause: Transition, ended: Transition) -> list[tuple[str, str, str]]:
    """The answers given to ``pause``'s dead paused run that were recorded (``unheard``) after what
    ``ended`` its wait, before the next pause: the rollback flow writes them once the traffic is
    back, after the rollback's start. Each as (who, their answer, their own words). The pause read
    "not answered" above the answer, and the incident report said nobody had answered it."""
    at = next(i for i, t in enumerate(record.history) if t is ended)
    found = []
    for i, t in enumerate(record.history[at + 1:], start=at + 1):
        if t.kind == "pause":
            break
        stage = t.to_stage if t.to_stage is not None else answered_stage(t.verdict, record.history[:i])
        if t.kind == UNHEARD and stage == pause.to_stage:
            found.append((t.actor, *_answer_and_words(unheard_answer(t.comment))))
    return found


def _refused_at(record: RolloutRecord, pause: Transition) -> list[RefusedAnswer]:
    """The answers the run refused (``RolloutRecord.refused_answers``) to ``pause``: given while it
    was the last pause asked, about its stage. One given as the run's look rolled the rollout back
    is refused ("not applied"), and the pause reads as left without an answer taken."""
    pauses = [t for t in record.history if t.kind == "pause"]
    # The newest pause of its stage recorded before it (``refused_after``): by recording order, not
    # by the answer's clock, which may be another machine's, behind or ahead of the run's. Of its
    # stage: `rollway promote`'s refusal of an answer to this pause may be recorded once the run
    # asks the next one, and the newest pause of any stage left this one "not answered".
    return [r for r in record.refused_answers if r.to_stage == pause.to_stage
            and next((p for p in reversed(pauses) if p.to_stage == r.to_stage and refused_after(record, r, p)),
                     None) is pause]


# What a ``not-applied`` answer was not applied for: written only when the run's look rolled back first.
_LOOK_FIRST = "**not applied**: the canary's look had rolled the rollout back first"


def _pause_cut_short(record: RolloutRecord, start: Transition | None, sped: bool = False) -> list[str]:
    """The incident report's line for a pause the rollback ``start`` ended with no answer taken (the
    rollback flow run by hand, a run cancelled, or the run's look, while the rollout waited for a
    person): the trigger alone did not tell that the rollout had been waiting, since when, nor what
    it asked; and the answers given to it that were not taken (refused, or read only after the
    rollback, ``_read_late``), by whom and why. ``sped``: its time says its clock (``_stamped``)."""
    if start is None:
        return []
    left = _left_unanswered(record, None)
    pause = next((p for p, ended in left if ended is start), None)
    if pause is None:
        return []
    late = _read_late(record, left).get(id(pause))
    # Each answer given to it, and why none was taken: "not answered" told the postmortem nobody had.
    answered = [f"answered {cell(r.said())} by {cell(r.actor)} at {utc(r.at)}{_ROLLOUT_CLOCK if sped else ''} "
                f"({f'comment: {cell(r.comment)}; ' if r.comment else ''}refused: {cell(r.reason)})"
                for r in _refused_at(record, pause)]  # given as the look rolled back, say
    answered += [f"answered {said} by {cell(who)}" + (f" (comment: {cell(words)})" if words else "")
                 + f", not acted on: {UNHEARD_WHY}" for who, said, words in _unheard_after(record, pause, start)]
    if late is not None:  # read once the Prefect API was back, after the rollback's end
        said, comment = _not_applied_said(late)
        answered.append(f"answered {said} by {cell(late.actor)}" + (f" (comment: {cell(comment)})" if comment else "")
                        + f", {_LOOK_FIRST} ({_read_when(late, sped)} at {_stamped(record, late, sped)}"
                        ", after the rollback's end)")
    if dropped := dropped_at_said(record, pause):  # "not answered" would say what the ledger cannot know
        answered.append(f"no answer taken ({dropped})" if not answered else dropped)
    return [f"- **While it waited at a pause:** asked at {_stamped(record, pause, sped)}{_for_stage(record, pause)}, "
            f"{'; '.join(answered) or 'not answered'}: {cell(pause.comment or pause.verdict or '-')}"]


def _answers(record: RolloutRecord, waits: Waits, sped: bool = False) -> list[str]:
    """The Approvals table; ``sped``: the rollout clock ran ahead of the wall (``_ran_ahead``): the
    answers' times and waits are labelled as the rollout clock's, beside a waiting pause's "since"
    on the wall clock (which its deadline is on)."""
    weights = stage_weights(record)
    on = _ROLLOUT_CLOCK if sped else ""
    waiting = waits.pause
    summed, folded = _askings(record, waits)
    left = _left_unanswered(record, waiting)
    # An answer read after the look rolled back stands in its pause's row, at its own time.
    read = _read_late(record, left)
    late = {id(read[id(pause)]): (pause, ended) for pause, ended in left if id(pause) in read}
    read_late = {id(pause) for pause, _ in late.values()}
    unanswered = {id(pause): ended for pause, ended in left if id(pause) not in read_late}
    answers = _merged(record, ((i, t) for i, t in enumerate(record.history)
                               if (t.kind in ANSWERS and id(t) not in folded) or t is waiting or id(t) in unanswered
                               or t.kind == NOT_APPLIED),
                      lambda r: r)
    if not answers:
        return ["No approval was asked for or answered."]
    rows = [f"| when{on} | waited{on} | who | answer | stage | comment | what was asked |",
            "|---|---|---|---|---|---|---|"]
    waited: list[float] = []  # each closed wait's span, for the total under the table
    apart: list[float] = []  # one per closed wait on two clocks, left out of it
    for t in answers:
        index = t.to_stage
        # A refused answer has no kind: one `rollway promote` refused at a pause never recorded has no stage.
        if index is None and isinstance(t, Transition) and t.kind == UNHEARD:  # the stage its pause asked about
            index = answered_stage(t.verdict, record.history[:next(i for i, e in enumerate(record.history) if e is t)])
        stage = f"{weights[index]}%" if weights and index is not None and 0 <= index < len(weights) else "-"
        if isinstance(t, RefusedAnswer):  # what was answered and why the run refused it: the pause stayed open
            rows.append(f"| {utc(t.at)} | - | {cell(t.actor)} | **refused** {cell(t.said())}: {cell(t.reason)} | "
                        f"{stage} | {cell(t.comment or '')} | {cell(t.question or '')} |")
            continue
        answer = "timed out" if t.kind == "timeout" else t.kind
        if t is waiting:  # asked, and not answered yet: its question is its comment
            # Since when on the wall clock, as the outcome line and `rollway status` give it: under
            # `rollway up`'s 60x the entry's rollout-clock time is hours away from the deadline beside it.
            since, _ = _pause_times(record, t, waits.asked)
            rows.append(f"| since {since} | - | - | **waiting for an answer** | {stage} | - | "
                        f"{cell(summed.get(id(t)) or _open_question(record, t, waits.asked))} |")
            continue
        if t.kind == NOT_APPLIED:  # answered, and read only once the look had rolled the rollout back
            pause, ended = late.get(id(t), (None, None))
            said, comment = _not_applied_said(t)
            how = (f"the pause asked at {utc(pause.at)}; its wait ended with {ended.kind} ({cell(ended.actor)}, "
                   f"{utc(ended.at)}); " if pause is not None else "")
            span = _waited(record, ended, waited, apart) if ended is not None else "-"
            asked = pause.comment or pause.verdict if pause is not None else t.verdict
            rows.append(f"| {utc(t.at)} | {span} | {cell(t.actor)} | {said}, {_LOOK_FIRST} ({how}{_read_when(t, sped)} "
                        f"after the rollback's end) | {stage} | {cell(comment or '-')} | {cell(asked or '')} |")
            continue
        ended = unanswered.get(id(t))
        if ended is not None:  # asked, and the rollout went on (or ended) without an answer
            # Answers refused meanwhile have rows of their own: "not answered" beside them read as nobody had.
            refused = "; ".join(f"{cell(r.said())} by {cell(r.actor)} at {utc(r.at)}" for r in _refused_at(record, t))
            # Given to its dead run, and recorded once the rollback that ended the wait had begun.
            dead = "; ".join(f"{said} by {cell(who)}" for who, said, _ in _unheard_after(record, t, ended))
            # Refused answers dropped past the bound may have been given to it: "not answered" did not know.
            taken = [part for part in (f"refused: {refused}" if refused else "",
                                       f"not acted on: {dead}, {UNHEARD_WHY}" if dead else "",
                                       dropped_at_said(record, t)) if part]
            said = f"**no answer taken** ({'; '.join(taken)})" if taken else "**not answered**"
            rows.append(f"| {utc(t.at)} | {_waited(record, ended, waited, apart)} | - | {said} | {stage} | "
                        "the wait "
                        f"ended with {ended.kind} ({cell(ended.actor)}, {utc(ended.at)}) | "
                        f"{cell(t.comment or t.verdict or '')} |")
            continue
        comment = t.comment or ""
        if t.kind == UNHEARD:  # its comment opens with the answer, as every answer's does (answer_comment)
            said = _answer_and_words(unheard_answer(comment))[0]
            answer = f"{said}, not acted on ({UNHEARD_WHY})"
        else:
            said = t.kind
        if t.kind != "timeout":  # a timeout's comment is what it did ("reject: no answer within 3600 s")
            # The answer has its own column: "approve | approve: looks fine" said it twice.
            comment = answer_said(said, comment)
        # A timeout that held asks the pause again: the wait goes on, and its answer's row counts all of it.
        span = _waited(record, t, *((None, None) if held_by_timeout(t) else (waited, apart)))
        rows.append(f"| {utc(t.at)} | {span} | {cell(t.actor)} | {answer} | {stage} | {cell(comment or '-')} | "
                    f"{cell(summed.get(id(t)) or t.verdict or '')} |")
    if waited or apart:
        # After a blank line: a line right under the table would be read as one more row.
        still = "; one still waits (above)" if waiting is not None else ""
        clock = " on the rollout clock" if sped else ""
        rows += ["", f"**Waited for people's answers:** {duration(sum(waited))} in all{clock}, at {len(waited)} "
                     f"pause{'s' if len(waited) != 1 else ''}{still} (from each pause's first asking to its answer, "
                     f"or to what ended it unanswered){_left_out(len(apart), 'wait')}"]
    return rows


def _wait_began(record: RolloutRecord, end: Transition) -> Transition | None:
    """The first asking (``pause`` entry) of the wait ``end`` closed (an answer, a timeout, or what
    ended it unanswered), or None when none is recorded: back through its askings and the timeouts
    that held, to the answer or move that came before it."""
    i = next(i for i, t in enumerate(record.history) if t is end)
    began = None
    for t in reversed(record.history[:i]):
        if t.kind == "pause":
            began = t
        elif not held_by_timeout(t) and (t.kind in ANSWERS or t.kind in _WAIT_ENDERS):
            break
    return began


def _waited(record: RolloutRecord, end: Transition, total: list[float] | None,
            apart: list[float] | None = None) -> str:
    """How long the wait ``end`` closed had waited for a person (``_wait_began``), added to
    ``total`` when given: "-" when no asking is recorded, "two clocks" when they cannot be
    subtracted (an answer `rollway abort` stamped on real time under a faster clock), counted in
    ``apart`` when given (the total says how many it leaves out)."""
    began = _wait_began(record, end)
    if began is None:
        return "-"
    if not _one_clock(began.at, end.at):
        if apart is not None:
            apart.append(end.at)
        return "two clocks"
    if total is not None:
        total.append(max(0.0, end.at - began.at))
    return _span(began.at, end.at) or "two clocks"


def _timeline(record: RolloutRecord, waits: Waits, sped: bool = False) -> list[str]:
    """Every entry, as listed (``as_listed``); ``sped``: as ``_answers``'."""
    rows = [f"| when{_ROLLOUT_CLOCK if sped else ''} | what | who | weights s/c | detail |", "|---|---|---|---|---|"]
    # The pause waited at with the question now open, as `rollway status` lists it.
    for t in _as_listed(record, waits):
        moved = f"{t.from_weights} → {t.to_weights}" if t.from_weights and t.to_weights else str(t.to_weights or "")
        # A breach not rolled back an older rollway recorded ends with a way out that may be stale
        # now: the outcome says the current one.
        detail = "; ".join(x for x in (entry_words(t), t.verdict,
                                       f"canary restored to {t.task_definition}" if t.task_definition else None,
                                       f"SNS message {t.message_id}" if t.message_id else None) if x)
        rows.append(f"| {utc(t.at)} | {t.kind} | {cell(t.actor)} | {moved} | {cell(detail)} |")
    return rows


def _takeovers(record: RolloutRecord, *, of_rollback: bool = False, sped: bool = False) -> list[str]:
    """One line per run that took the rollout over from one that stopped renewing its lease: the
    run that drove the rollout until the incident may not be the one that started it.

    ``of_rollback``: instead, one line per rollback that took the rollback over from one whose
    claim lapsed (``claim_takeover``): those come after the rollback began, when no run can take
    the rollout's lease any more, so the first ``rollback-start`` tells the two apart.
    ``sped``: their times say their clock (``_stamped``).
    """
    began = next((i for i, t in enumerate(record.history) if t.kind == "rollback-start"), len(record.history))
    return [f"- {_stamped(record, t, sped)}: {cell(t.actor)} {cell(t.comment or 'took it over')}"
            for i, t in enumerate(record.history) if t.kind == TAKEOVER and (i > began) == of_rollback]


def lapsed_lease_said(record: RolloutRecord, *, waiting: bool = False) -> str:
    """What a rollout's lease whose run stopped renewing it (``lease_has_lapsed``) leaves, by where
    the rollout stands, for `rollway status`'s owner row and the report's holder line of a
    promotion. ``waiting``: a run waits for an answer (status shows it), and a paused run renews no
    lease, so the lapse is no dead run.

    Said in one place for every phase a lease is held in: a pending, paused, rolling back or promoted
    rollout's lapsed lease read "lease until <a time long past>", a run renewing it where none did."""
    since = f"{record.owner}, whose lease lapsed at {wall_utc(record.lease_expires)}: "
    if record.phase is RolloutPhase.ROLLING_BACK:
        # A rollback needs no lease (a run still paused waits for nothing now): the rollback's own
        # lines, printed below it by status (who carries it out, its claim renewed or lapsed, what
        # finishes it), say what a person does; said here too, they would read twice.
        return (f"{since}no run drives the rollout forward; a rollback of it began, which needs no lease (below: "
                "who carries it out, and what finishes it)")
    if waiting:
        return (f"{since}a run waiting for an answer (below) renews no lease, and no other run takes the rollout "
                "over while it waits")
    if record.phase in (RolloutPhase.PROGRESSING, RolloutPhase.PENDING):
        # Under way: users on the canary, and no judge; pending, its run died before the first stage.
        judge = "; nothing judges the canary" if record.phase is RolloutPhase.PROGRESSING else ""
        return (f"{since}no run drives the rollout (its run stopped or died{judge}); once that run has ended, a "
                "progressive_rollout run of the same image takes it over and resumes it, or `rollway abort` rolls "
                "it back")
    # Promoted, or holding between weekly phases: its run stopped or died (a window it watched is
    # then watched by none: the monitoring row says so), or ended without giving the lease back,
    # and the ledger lets the next one take it.
    return (f"{since}no run holds the rollout (its run stopped or died, or ended without giving the lease back); "
            "the next run to act on it takes it over at once")


def _holder(record: RolloutRecord, now: float | None) -> str | None:
    """Which run holds an unfinished rollout's lease and whether it still renews it, or None for
    a rollout that has ended or is rolling back (the incident report names the rollback's holder).
    A promotion whose monitoring window is not recorded as closed has not ended for this: the run
    watching the window holds the lease, and one whose lease lapsed is said in status's words
    (``lapsed_lease_said``); the report read the same whether that run watched or had died.

    Leases are on the wall clock, ``now`` too (None: not told). A run paused for an approval
    renews no lease, so a lapsed one is not taken for a dead run."""
    watched = record.phase is RolloutPhase.PROMOTED and window_owed(record)
    if (record.phase.terminal and not watched) or record.phase is RolloutPhase.ROLLING_BACK:
        return None
    if not record.owner:
        return "no run (its lease is free)"
    if lease_has_lapsed(record, now):
        if watched:
            return cell(lapsed_lease_said(record))
        return (f"{cell(record.owner)}, whose lease lapsed at {wall_utc(record.lease_expires)}: that run stopped "
                "renewing it (it stopped or died, or it waits for an approval, which renews no lease: `rollway "
                "status` shows a paused run); once that run has ended, a progressive_rollout run of the same image "
                "takes the rollout over and resumes it")
    live = "live when this report was written" if now is not None else ""
    return f"{cell(record.owner)}, lease until {wall_utc(record.lease_expires, live)}"


_TAKEN_FROM = re.compile(r"over from flow-run/([0-9A-Za-z-]+),")


def flow_runs(record: RolloutRecord, sped: bool = False) -> list[tuple[str, str]]:
    """The Prefect flow runs the ledger names as having driven the rollout, oldest first: each as
    ``(run, how)``, the run ``<name> (<id>)`` where its entries named it, its id alone where only a
    lease did (a takeover's, or the lease held now). ``sped``: the rollout clock ran ahead of the
    wall (``_ran_ahead``), and the times say which clock they are on (``_stamped``)."""
    found: dict[str, tuple[str, str]] = {}  # by flow run id (or label, when it holds none)

    def add(run: str, how: str) -> None:
        key = run.rsplit("(", 1)[-1].rstrip(")") if run.endswith(")") else run
        if key not in found:
            found[key] = (run, how)

    for t in record.history:
        if t.run:
            add(t.run, f"{'started it' if t.kind == 'start' else f'first entry: {t.kind}'}, {_stamped(record, t, sped)}")
        if t.kind == TAKEOVER:
            # Written by ``rollway.ledger.takeover`` (or ``claim_takeover``): "... from <owner>, whose ..."
            taken = _TAKEN_FROM.search(t.comment or "")
            if taken:
                add(taken.group(1), f"drove it until its lease lapsed, before {_stamped(record, t, sped)}")
            if t.actor.startswith(OWNER_PREFIX):
                add(t.actor.removeprefix(OWNER_PREFIX), f"took it over, {_stamped(record, t, sped)}")
    if record.owner and record.owner.startswith(OWNER_PREFIX):
        add(record.owner.removeprefix(OWNER_PREFIX), "holds its lease")
    return list(found.values())


def _runs_line(record: RolloutRecord, sped: bool = False) -> list[str]:
    """The flow runs that drove the rollout, so a person can find them (their logs, artifacts and
    state) in the Prefect UI: the reports named none. ``sped``: as ``flow_runs``'."""
    runs = flow_runs(record, sped)
    said = ("; ".join(f"`{cell(run)}` ({how})" for run, how in runs) if runs else
            "none recorded (the rollout was recorded before its runs were, or driven outside a Prefect flow run)")
    # A weekly tick that finds nothing to do (the phase not due yet, a live run driving it) reads
    # the ledger and returns before it takes the lease: it writes nothing, so the ledger can neither
    # name nor count it, and an entry per tick would grow the item every week for as long as a
    # rollout stays open. Said, so that a reader does not take the list for every run that looked.
    return [f"- **Flow runs** (Prefect UI, Runs; search by name or id): {said}. Weekly `advance_phase` runs that "
            "found nothing to do are not listed: they write nothing to the ledger (not even a lease), so it does not "
            "count them; the advance_phase deployment's runs, and their logs, say what each found"]


def _clock_note(record: RolloutRecord, now: float | None) -> list[str]:
    """A line saying the recorded times run ahead of the wall clock, when they do at ``now`` (the
    wall clock): the rollout ran on a sped-up clock (`rollway up`'s), and its times and the
    leases' and claims' (wall clock) are not to be read against each other."""
    if now is None:
        return []
    ahead = max([record.updated_at, *(t.at for t in record.history)]) - now
    if ahead <= _SKEW_SECONDS:
        return []
    return [f"- **Clock:** the recorded times run ahead of the wall clock (by {duration(ahead)} when this report was "
            "written): the rollout ran on a sped-up clock (`rollway up`'s); leases and claims are on the wall clock"]


def _pinned_line(record: RolloutRecord) -> list[str]:
    """What the canary's revision names, when the tag was pinned to a digest (the image the stages
    judged, whatever the tag names by the time the report is read); nothing for an image given by
    digest, and a note for a rollout recorded before images were pinned."""
    if record.pinned_image is None:
        return ["- **Pinned as:** not recorded (the rollout predates pinning: its revision may name the tag, whose "
                "image may have changed since)"]
    if record.pinned_image == record.image:
        return []
    return [f"- **Pinned as:** `{record.pinned_image}` (what the canary ran: the digest the tag named when the "
            "rollout started)"]


def _left_because(comment: str) -> str:
    """Why the rollback left a flag as it was, from its line (``FlagUpdate.describe``): the words
    after its settings, ``F: left on 5% (v4): <why>``."""
    return comment.partition("): ")[2] or comment


def _flag_settings(comment: str) -> str:
    """The settings a flag entry's line (``FlagUpdate.describe``) leaves the flag at, e.g. ``on 25% (v3)``;
    the line itself when it is not one of those."""
    line = comment.partition(": ")[2]
    for lead in ("left ", "unchanged, "):
        if line.startswith(lead):
            line = line[len(lead):]
    line = line.split(" -> ", 1)[-1]  # the first arrow: a reason after the settings may hold one too
    settings, found, version = line.partition(" (v")
    return f"{settings} (v{version.partition(')')[0]})" if found else comment


def _flags_line(record: RolloutRecord, sped: bool = False) -> list[str]:
    """Where the rollout left each flag it binds, as the ledger recorded it: the last setting a
    stage gave it, or what the rollback did to it (disabled, or left on as a person set it).
    ``sped``: the rollout clock ran ahead of the wall (``_ran_ahead``), and the times say which
    clock they are on, as the outcome's "rolled back at" does (``_stamped``).

    The flags' moves were only in the list of every transition, and a rolled-back rollout's
    disable in none: a reader could not tell whether a bound flag still served users."""
    bound = bound_flags(record)
    if not bound:
        return []
    end = record.last_transition("rollback")
    finished = record.phase is RolloutPhase.ROLLED_BACK and end is not None
    said = []
    for feature in bound:
        moves = [t for t in record.history if t.kind == "flag" and (t.comment or "").startswith(f"{feature}: ")]
        last = moves[-1] if moves else None
        if finished and last is not None and last.at >= end.at and last.comment.startswith(f"{feature}: left "):
            why = (f": {cell(_left_because(last.comment))}" if LEFT_TO_ANOTHER in last.comment
                   else ", as a person had set it")
            said.append(f"`{feature}` **left {cell(_flag_settings(last.comment))}** by the rollback{why}")
        elif finished:
            said.append(f"`{feature}` disabled by the rollback at {_stamped(record, end, sped)}")
        else:
            where = (f"{cell(_flag_settings(last.comment))}, set by {cell(last.actor)} at {_stamped(record, last, sped)}"
                     if last else "not moved by this rollout")
            if last is not None and last.comment.startswith(f"{feature}: left "):
                # A stage that left the flag as a person set it (the kill switch): "set by" the run's
                # actor at that stage read as the rollout's doing, and not that the flag had stopped
                # following the stages. Its line names who changed it and what hands it back.
                where = (f"**left {cell(_flag_settings(last.comment))}** as a person had set it (the stage at "
                         f"{_stamped(record, last, sped)}): {cell(_left_because(last.comment))}")
            if record.phase is RolloutPhase.ROLLING_BACK:
                where += "; the rollback disables it, not recorded as done"
            said.append(f"`{feature}` {where}")
    return [f"- **Feature flags it binds** (as the ledger recorded them; `rollway flags list` shows them now): "
            f"{'; '.join(said)}"]


def _traffic_now(record: RolloutRecord, sped: bool) -> str:
    """The weights the ledger last recorded: the rollout's own, or newer, those a rollback that
    stopped part-way read back (its ``rollback-stopped`` entry), which leaves the rollout's as they
    were. "Traffic now: 95/5" sat above a "Users get" line saying all of it was back on stable. A
    later stop that read no weights (it stopped before it could read the load balancer) leaves the
    newest reading an earlier stop's."""
    stopped = next((t for t in reversed(record.history) if t.kind == ROLLBACK_STOPPED and t.to_weights is not None),
                   None) if record.phase is RolloutPhase.ROLLING_BACK else None
    if stopped is None or stopped.to_weights == record.weights:
        return f"{record.weights} stable/canary"
    return (f"{stopped.to_weights} stable/canary, as {cell(stopped.actor)}'s rollback read it back at "
            f"{_stamped(record, stopped, sped)} before it stopped (the rollout's weights, {record.weights}, are from "
            "before the rollback moved the traffic)")


def _started_line(record: RolloutRecord, sped: bool) -> str:
    """When the rollout started and was last recorded, each said with its clock as the tables'
    times are (``_stamped``, from the entry stamped then where there is one): under a faster
    clock the two were bare beside tables labelled "(rollout clock)" and leases on the wall."""
    def when(at: float) -> str:
        entry = next((t for t in reversed(record.history) if t.at == at), None)
        return _stamped(record, entry, sped) if entry is not None else utc(at) + (_ROLLOUT_CLOCK if sped else "")

    return f"- **Started:** {when(record.created_at)}; **last recorded:** {when(record.updated_at)}"


def rollout_report(record: RolloutRecord, *, now: float | None = None, unrestorable: str | None = None,
                   targets: Targets | None = None) -> str:
    """The rollout as markdown: outcome, stages (weights, times, verdicts and reasons), approvals, timeline.

    ``now``: the wall clock when the report is written (what leases are stamped on), to tell an
    unfinished rollout's run still renewing its lease from one that stopped; None: not told.
    ``unrestorable``: a rollback under way cannot restore a revision on the canary, and what
    finishes it instead (``flows.rollback.no_revision_to_restore``; None: it can, or not read).
    ``targets``: where the service runs, to name its stable service (None: "the stable service")."""
    weights = stage_weights(record)
    waits = waits_at(record)  # one reading of the pause for the outcome, the approvals and the timeline
    sped = _ran_ahead(record, now)
    lines = [
        f"# Rollout report: {record.service}, rollout {record.rollout_id}",
        "",
        f"- **Image:** `{record.image}`",
        *_pinned_line(record),
        f"- **Outcome:** {_outcome(record, waits, sped, now=now, unrestorable=unrestorable)}",
        _started_line(record, sped),
        *_clock_note(record, now),
        f"- **Stages planned:** {', '.join(f'{w}%' for w in weights) if weights else 'not readable from the record'}",
        f"- **Traffic now (ledger):** {_traffic_now(record, sped)}",
    ]
    held = _holder(record, now)
    if held is not None:
        lines.append(f"- **Held by:** {held}")
    lines += _runs_line(record, sped)
    if record.canary_task_definition or record.previous_task_definition:
        # "previous" is the canary service's, which a rollback points it back at: not what users get.
        lines.append(f"- **Task definitions:** new {record.canary_task_definition or '-'}, "
                     f"previous {record.previous_task_definition or '-'} ({record.service}'s before the rollout, "
                     "taking no traffic)")
    lines += users_get(record, unrestorable=unrestorable)
    lines += _flags_line(record, sped)
    # In `rollway status`'s words: the report listed the decommission as done, and a page nobody
    # received (its run died before paging) read as people told.
    lines += _window_line(record)
    breach = breach_said(record)
    if breach is not None:
        lines.append(f"- **Breach not rolled back:** {cell(breach)}")
    accepted = acceptance_said(record)
    if accepted is not None:
        lines.append(f"- **Breach accepted:** {cell(accepted)}")
    paging = page_said(record, targets.stable_service if targets is not None else "the stable service")
    if paging is not None:
        lines.append(f"- **Decommission page:** {cell(paging[0])}")
    unsent = window_page_refused(record)
    if unsent is not None:
        # SNS's answer lost, the page may have gone out: "not sent" claimed what nobody knows.
        said, lost = unsent
        lines.append(f"- **Window page {'not confirmed' if lost else 'not sent'}:** {cell(said)}")
    trigger = rollback_trigger(record)
    if trigger is not None:
        # The entry the trigger was read from (``rollback_trigger``), its time with its clock.
        began = rollback_start(record) or record.last_transition("rollback")
        # Not "rolled back" of one not finished: its canary may still take traffic.
        done = "Rollback begun" if record.phase is RolloutPhase.ROLLING_BACK else "Rolled back"
        lines.append(f"- **{done} because:** {cell(trigger.reason)} (by {cell(trigger.who)}, "
                     f"{_stamped(record, began, sped)})")
    lines += ["", "## Stages", "", *_stage_table(record, sped), "", *_weekly_phases(record, sped), "## Approvals", "",
              *_answers(record, waits, sped), *_dropped_line(record),
              "", "## Every recorded transition", "", *_timeline(record, waits, sped)]
    # Whatever the ledger quotes (names, reasons, AWS's words), never a control character as it is.
    return shown("\n".join(lines) + "\n")


def _dropped_line(record: RolloutRecord) -> list[str]:
    """Under a table listing refused answers (the rollout report's Approvals, the incident report's
    timeline), after a blank line (right under it, it is read as one more row):
    ``refusals_dropped_said`` and ``refusals_by_time_said``, or nothing."""
    return [line for said in (refusals_dropped_said(record), refusals_by_time_said(record)) if said is not None
            for line in ("", f"**{said}.**")]


def refusals_by_time_said(record: RolloutRecord) -> str | None:
    """That refused answers kept without their place in the history (``recorded_after``: recorded
    before it was kept, or their list rewritten by a release from before it, which drops it) are
    placed among the entries, and matched to the pauses they answered, by their times (``_merged``,
    ``refused_after``), or None when none is: listed with the others, placed where recorded, they
    read as in the order recorded too."""
    placed = sum(r.recorded_after is None for r in record.refused_answers)
    if not placed or not record.history:
        return None
    if len(record.refused_answers) == 1:
        return ("the refused answer kept is placed among the entries by its time, not where the ledger recorded it "
                "(recorded, or its list rewritten, by a rollway that did not keep that): the time is its writer's "
                "clock, which may be behind or ahead of the run's, so it may stand above the pause it answered, or "
                "below a later entry, and be read as given to another pause")
    which = (f"the {placed} refused answers kept are" if placed == len(record.refused_answers)
             else f"{placed} of the {len(record.refused_answers)} refused answers kept are" if placed != 1
             else f"1 of the {len(record.refused_answers)} refused answers kept is")
    them = "their times, not where the ledger recorded them" if placed != 1 else "its time, not where the ledger recorded it"
    return (f"{which} placed among the entries by {them} (recorded, or their list rewritten, by a rollway that did "
            "not keep that): each time is its writer's clock, which may be behind or ahead of the run's, so "
            f"{'one' if placed != 1 else 'it'} may stand above the pause it answered, or below a later entry, and "
            "be read as given to another pause")


def users_get(record: RolloutRecord, targets: Targets | None = None, unrestorable: str | None = None) -> list[str]:
    """The report's line saying which version users get after a rollback: the task definition the
    stable service ran when the rollback put all the traffic on it, as the rollback recorded it;
    for a rollback that recorded none, or is not recorded as finished, that it is not recorded and
    where to read it. Empty for a rollout not rolled back. ``unrestorable``: as ``finish_advice``."""
    if record.phase not in (RolloutPhase.ROLLED_BACK, RolloutPhase.ROLLING_BACK):
        return []
    stable = f"`{targets.stable_service}`" if targets is not None else "the stable service"
    end = record.last_transition("rollback") if record.phase is RolloutPhase.ROLLED_BACK else None
    if end is not None and end.stable_task_definition:
        return [f"- **Users get since the rollback:** {cell(end.stable_task_definition)}, the task definition "
                f"{stable} ran when the rollback put all the traffic on it (recorded by the rollback; `rollway "
                "status` reads what it runs now)"]
    stopped = stopped_traffic(record, stable, again=finish_advice(unrestorable))
    if stopped is not None:
        return [f"- **Users get since the rollback:** {cell(stopped)} (`rollway status` reads where the traffic is "
                "now)"]
    why = ("the rollback is not recorded as finished" if end is None
           else "this rollback's end was recorded before rollbacks kept it")
    return [f"- **Users get since the rollback:** not recorded ({why}): `rollway status` reads where the traffic "
            f"is and what {stable} runs"]


RUN_AGAIN = "run the rollback again"
"""What finishes a rollback that stopped part-way, when running it again can (``stopped_traffic``)."""


def cannot_finish(unrestorable: str | None) -> str | None:
    """What `rollway status` and the reports say of a rollback `rollway abort` cannot finish, or
    None when it can. ``unrestorable``: why no revision can be restored on the canary, and what
    finishes the rollback instead (``flows.rollback.no_revision_to_restore``; None: one can)."""
    return f"`rollway abort` cannot finish it ({unrestorable})" if unrestorable else None


def finish_advice(unrestorable: str | None) -> str:
    """What finishes a rollback that stopped part-way, said on its line where no line above says it
    (the reports): running it again, unless no revision can be restored (``cannot_finish``). The
    reports said "run the rollback again" where status said `rollway abort` cannot finish it: every
    run of it again fails the same way."""
    return cannot_finish(unrestorable) or RUN_AGAIN


def stopped_traffic(record: RolloutRecord, stable: str = "the stable service",
                    again: str | None = RUN_AGAIN) -> str | None:
    """What users get while a rollback that stopped part-way is open, from the weights it read back
    (its ``rollback-stopped`` entry): the canary's share when the traffic could not move, or what
    ``stable`` ran once it took all of it. None: the rollout is not rolling back, or no run of its
    rollback read the weights back. "Not recorded" was said of a rollback that stopped after reading
    them, and a responder could not tell whether users were still on the version rolled back.

    ``again``: what finishes the rollback, said last; None: nothing (the caller says it elsewhere:
    `rollway status`, when running it again cannot finish it)."""
    stopped = record.last_transition(ROLLBACK_STOPPED) if record.phase is RolloutPhase.ROLLING_BACK else None
    if stopped is None or stopped.to_weights is None:
        return None
    read, at = stopped.to_weights, utc(stopped.at)
    by = f"by the rollback of {stopped.actor}, which then stopped before it finished" + (f": {again}" if again else "")
    if read.canary > 0:
        return f"the canary still takes {read.canary} % ({read} stable/canary) as read back at {at} {by}"
    runs = f"{stopped.stable_task_definition}, the task definition {stable} ran" if stopped.stable_task_definition \
        else f"{stable} alone"
    return f"{runs} when the load balancer read back {read} (stable/canary) at {at}, {by}"


def _exposure(record: RolloutRecord) -> tuple[Transition | None, int, Weights | None, float | None]:
    """The first move of traffic onto the canary, the highest canary weight, the weights when
    the rollback began, and when the canary stopped taking traffic (the rollback's read-back).

    "Before the rollback began" is by the history's order, which is the order things happened
    in: a rollback stamped on another clock than the rollout's (real time under a faster one)
    is stamped before moves it followed."""
    first, peak, at_trigger = None, 0, None
    began = next((i for i, t in enumerate(record.history) if t.kind == "rollback-start"), None)
    for i, t in enumerate(record.history):
        if t.kind in _MOVES and t.to_weights is not None:
            if first is None and t.to_weights.canary > 0:
                first = t
            if began is None or i < began:
                peak = max(peak, t.to_weights.canary)
                at_trigger = t.to_weights
    if began is None:
        at_trigger = None
    # One that stopped on a later step read the traffic back on stable first, and recorded that:
    # the run that finished it (a day later, say) read 100/0 again, and the exposure counted to
    # that second read-back was a day too long.
    back = stopped_back(record)
    if back is not None:
        return first, peak, at_trigger, read_back_at(record, back)
    end = record.last_transition("rollback")
    # A finished rollback records its end only once the traffic is back, so its end bounds the
    # exposure even when it kept no read-back weights (the monitor's rollback records none).
    if end is not None and _traffic_back(end, record):
        return first, peak, at_trigger, read_back_at(record, end)
    return first, peak, at_trigger, None


def read_back_at(record: RolloutRecord, back: Transition) -> float:
    """When users were back on stable by ``back`` (a rollback's end, or its stop once the traffic was
    back), on the clock of the rollout's entries. ``back`` is written after the steps that follow the
    read-back (the canary's scale-down, the flags, the page: SNS may hold it a minute), which users did
    not wait through: counted to its stamp, "Exposed for" and the stage's row ran that much long. The
    rollback's start plus the wall time from it to the read-back (``verified_wall``), as the time to
    restore counts it, when both entries keep the wall time on a clock not ahead of it; ``back.at``
    otherwise (recorded before the read-back's time was kept, or on a faster clock), and never later."""
    start = rollback_start(record)
    if (start is None or back.verified_wall is None or start.wall is None or start.wall > back.verified_wall
            or _sped_up(start) is not False or _sped_up(back) is not False):
        return back.at
    return min(back.at, start.at + (back.verified_wall - start.wall))


def stopped_back(record: RolloutRecord) -> Transition | None:
    """The first run of the rollout's rollback that read the traffic back on stable (100/0) and then
    stopped on a later step (``ROLLBACK_STOPPED``): when the traffic was back, whenever a later run
    finished the rollback. None: no run stopped after putting the traffic back."""
    return next((t for t in record.history if t.kind == ROLLBACK_STOPPED and t.to_weights is not None
                 and t.to_weights.canary == 0), None)


# What a resumed run writes before it finds a shift on the load balancer: none of it is the dead
# run's (an entry of these the dead run wrote, skipped too, only widens the span, never wrongs it).
_RESUME_KINDS = (TAKEOVER, "resume", UNHEARD, "phase")


def _dead_runs_last_entry(record: RolloutRecord, found: Transition) -> float:
    """When the run that made the shift ``found`` (a resumed run's ``reconcile`` entry) last wrote:
    it moved the traffic after that. The resumed run's own entries before ``found`` (its takeover
    of the lapsed lease, say) are stamped after the move and do not bound it."""
    before = record.history[:record.history.index(found)]
    while len(before) > 1 and before[-1].kind in _RESUME_KINDS:
        before = before[:-1]
    return before[-1].at if before else record.created_at


def moved_from(record: RolloutRecord) -> Transition | None:
    """The rollback's first entry (its end, or a run's that stopped part-way) that records the
    weights it moved the traffic from (``from_weights``: what the load balancer held when that run
    first read it, before it moved anything), or None: records from before rollbacks kept them, or
    no run of the rollback could read them."""
    return next((t for t in record.history if t.kind in ("rollback", ROLLBACK_STOPPED) and t.from_weights is not None),
                None)


def _no_move_recorded(record: RolloutRecord, start: Transition | None, back_at: float | None) -> str:
    """The exposure of a rolled-back rollout that records no shift to the canary.

    Taking no traffic is certain only before its revision was deployed on the canary: a run moves
    the traffic only after recording that. After, a run that moved the traffic and died before
    recording the move left no entry of it: "never took traffic" could be untrue. The rollback's
    own entries say what it found on the canary (``moved_from``). Found taking traffic, that is
    what the canary took; a record from before rollbacks kept it, or a rollback that found none
    (one before it may have moved the traffic back and died before recording anything), leaves
    the ledger unable to tell.
    """
    deployed = record.last_transition("deploy")
    found = moved_from(record)
    # What the rollback read on the load balancer outweighs what the rollout recorded: a canary it
    # found taking traffic was said to have "never taken traffic" when no deploy was recorded, above
    # a "Traffic moved back" saying it still took its share.
    took_some = found is not None and found.from_weights.canary > 0
    if deployed is None and record.canary_task_definition is None and not took_some:
        return ("The new version never took traffic: its revision was never deployed on the canary, and no shift "
                "to it is recorded.")
    before = record.history[:record.history.index(start)] if start is not None else record.history
    last = before[-1].at if before else record.created_at
    until = f"until {utc(back_at)}, when the rollback read the traffic back" if back_at is not None else (
        "until the rollback, whose traffic's return is not recorded")
    if took_some:
        took = found.from_weights
        return (f"**No shift to the canary is recorded**, but the rollback found it taking **{took.canary}%** of the "
                f"traffic ({took} stable/canary) when {found.actor}'s rollback first read the load balancer, before "
                f"it moved anything (recorded at {utc(found.at)}): no entry records that move (a run that made it "
                f"and died before recording it, or a hand on the load balancer). The canary took {took.canary}% from "
                f"after {utc(last)} (the last entry before the rollback) {until}: the load balancer's metrics for its "
                "target group say since when.")
    weights = stage_weights(record)
    stage = f"{weights[0]}% (its first stage)" if weights else "its first stage's weight"
    when = f" at {utc(deployed.at)}" if deployed is not None else ""
    read = ("the rollback records only the weights it read back" if found is None else
            f"{found.actor}'s rollback found none of the traffic on it ({found.from_weights} stable/canary when it "
            "first read the load balancer), as it would after an earlier run of the rollback moved the traffic back "
            "and died before recording anything")
    return (f"**No shift to the canary is recorded**, but its revision was deployed on it{when}, so the ledger "
            "cannot tell that it took no traffic: a run that moved the traffic and died before recording the move "
            f"leaves no entry of it, and {read}. If that happened, the "
            f"canary took {stage} from after {utc(last)} (the last entry before the rollback) {until}: the load "
            "balancer's metrics for its target group say which.")


def _highest_weight(record: RolloutRecord, recorded: int, drift: bool) -> str:
    """The highest canary weight: of the recorded moves (``recorded``) and of what the rollback read
    on the load balancer before it moved anything (``moved_from``). The recorded moves alone read
    lower than the weight the report gives for when the rollback began, after a run that moved the
    traffic and died before recording it (or a hand on the load balancer)."""
    found = moved_from(record)
    if found is None or found.from_weights.canary <= recorded:
        return f"{recorded}%" + (" (of the recorded moves)" if drift else "")
    return (f"{found.from_weights.canary}%, as {found.actor}'s rollback found it on the load balancer (the recorded "
            f"moves reached {recorded}%)")


def _weight_at_rollback(record: RolloutRecord, recorded: Weights | None, drift: bool) -> str:
    """The weights users had when the rollback began: those it read on the load balancer before it
    moved anything (``moved_from``), else the rollout's last recorded move (``recorded``), saying
    which. The last recorded move alone was given while the rollback recorded moving the traffic
    from more: a run that moved it and died before recording the move, or a hand on the load balancer."""
    found = moved_from(record)
    if found is not None:
        took = found.from_weights
        said = f"{took.canary}% ({took} stable/canary), as {found.actor}'s rollback read the load balancer before it " \
               "moved anything"
        if recorded is None or recorded == took:
            return said
        # Found back on stable: a run of the rollback before it may have moved it and died unrecorded.
        earlier = ("; a run of the rollback before it may have moved the traffic back and died before recording it"
                   if took.canary == 0 else "")
        return f"{said} (the rollout last recorded {recorded.canary}%, {recorded} stable/canary{earlier})"
    if recorded is None:
        return "not recorded"
    why = ("; the load balancer held other weights then (the reason above says which), and those are not counted "
           "here" if drift else " (the rollback recorded no weights it moved the traffic from)")
    return f"{recorded.canary}% ({recorded} stable/canary) as the rollout last recorded them{why}"


def _last_move_before(record: RolloutRecord, end: Transition | None) -> Transition | None:
    """The newest move of the traffic recorded ahead of ``end`` in the history (all when None)."""
    moves = [t for t in record.history[:record.history.index(end) if end is not None else None]
             if t.kind in _MOVES and t.to_weights is not None]
    return moves[-1] if moves else None


def _time_to_restore(record: RolloutRecord, start: Transition | None, back_at: float | None) -> list[str]:
    """How long the traffic took to come back on stable once the rollback began (its ``start``,
    written as it was caught, before anything moved), to when its read-back verified it there (the
    end's or stop's ``verified_wall``): two timestamps lines apart, which on-call had to subtract.
    An entry that does not keep that time (recorded before it was kept) is counted to ``back_at``
    (``_exposure``'s: when the entry was written, after the canary, the flags and the page), said as
    at most that long. Empty when neither is recorded, or they are on two clocks."""
    if start is None or back_at is None:
        return []
    read = next((t for t in record.history if t.to_weights is not None and t.to_weights.canary == 0
                 and t.kind in ("rollback", ROLLBACK_STOPPED) and read_back_at(record, t) == back_at), None)
    back = read or next((t for t in record.history if t.kind == "rollback" and read_back_at(record, t) == back_at),
                        None)
    if back is not None and back.verified_wall is not None and start.wall is not None:
        # Both on the wall clock: the time users waited, whatever clocks stamped the entries.
        if back.verified_wall < start.wall:
            return [_hosts_disagree(start.wall, back.verified_wall, back)]
        label = " on the wall clock" if _sped_up(start) or _sped_up(back) else ""
        weights = f" {back.to_weights}" if back.to_weights is not None else " the traffic on stable"
        return [f"- **Traffic back on stable:** {duration(back.verified_wall - start.wall)} after the rollback began "
                f"({utc(start.wall)} to {utc(back.verified_wall)}{label}, when the load balancer read back{weights})"]
    # Written once the steps after the read-back were done too (the canary, the flags, the page):
    # the read-back came before, at a time not recorded, so the figure is a bound, not the time.
    entry = "its stop was recorded" if back is not None and back.kind == ROLLBACK_STOPPED else "its end was recorded"
    how = (f"when {entry}, after the load balancer read back {read.to_weights} and the steps after it: the read-back's "
           "own time is not recorded" if read is not None else f"when {entry}")
    if back is not None and start.wall is not None and back.wall is not None:
        if back.wall < start.wall:
            return [_hosts_disagree(start.wall, back.wall, read)]
        walls = (f"{utc(start.wall)} to {utc(back.wall)} on the wall clock"
                 if _sped_up(start) or _sped_up(back) else f"{utc(start.at)} to {utc(back_at)}")
        return [f"- **Traffic back on stable:** at most {duration(back.wall - start.wall)} after the rollback began "
                f"({walls}, {how})"]
    span = _span(start.at, back_at)
    if span is None or _clocks_differ(record, start, back):
        return []
    if back_at < start.at:
        return [_hosts_disagree(start.at, back_at, read)]
    return [f"- **Traffic back on stable:** at most {span} after the rollback began ({utc(start.at)} to "
            f"{utc(back_at)}, {how})"]


def _hosts_disagree(began: float, back: float, read: Transition | None) -> str:
    """The time-to-restore line of a rollback whose traffic's return is stamped before its start
    (``began``): the two were written on hosts whose clocks disagree, by that much at least. It
    read "0 s after the rollback began", a restore faster than any."""
    what = "the load balancer's read-back" if read is not None else "the rollback's recorded end"
    return (f"- **Traffic back on stable:** not measurable: the hosts' clocks disagree by at least "
            f"{duration(began - back)} ({what}, {utc(back)}, is stamped {duration(began - back)} before the "
            f"rollback's start, {utc(began)})")


def _stamped(record: RolloutRecord, entry: Transition, sped: bool) -> str:
    """When the rollback's ``entry`` was recorded, labelled with its clock as the tables' times are
    (``sped``: the rollout clock ran ahead of the wall, ``_ran_ahead``), with the wall time it kept
    beside its own: the intent's and the read-back's times were bare, beside a time to restore on
    the wall clock. An entry stamped behind the moves ahead of it (`rollway abort` on real time
    under a faster clock) is said to be on another clock, sped or not."""
    last = _last_move_before(record, entry)
    if entry.wall is None and last is not None and not _one_clock(last.at, entry.at):
        return f"{utc(entry.at)} (another clock than the rollout's)"
    if not sped:
        return utc(entry.at)
    if entry.wall is None:
        return f"{utc(entry.at)}{_ROLLOUT_CLOCK}"
    if _sped_up(entry):
        return f"{utc(entry.at)} (rollout clock; {utc(entry.wall)} on the wall clock)"
    return wall_utc(entry.at)


def _read_back_stamped(record: RolloutRecord, entry: Transition, sped: bool) -> str:
    """When the read-back ``entry`` records put the traffic back (``read_back_at``, the time "Exposed
    for" and the stage table count to), labelled as ``_stamped`` labels it: the entry's own stamp,
    written after the canary, the flags and the page, stood beside them as the read-back's time."""
    at = read_back_at(record, entry)
    if at == entry.at:
        return _stamped(record, entry, sped)
    # Counted from the wall time kept on a clock not ahead of it (``read_back_at``): a wall time.
    return wall_utc(at) if sped else utc(at)


def _sped_up(entry: Transition) -> bool | None:
    """Whether ``entry`` was stamped on a clock ahead of the wall (`rollway up`'s 60x), by the wall
    time it kept beside its own; None: it kept none."""
    return None if entry.wall is None else entry.at - entry.wall > _SKEW_SECONDS


def _clocks_differ(record: RolloutRecord, start: Transition, back: Transition | None) -> bool:
    """Whether the rollback's ``start`` and the entry the traffic's return was read from (``back``)
    may be on two clocks, by the entries that kept the wall time beside their own: the start's,
    and the newest of the rollback's up to ``back`` (its notice's, written by the run that finished
    it) for the end. A start on real time and an end stamped hours ahead by a run on a faster
    clock is no span; the check of a time stamped behind the start cannot see it. Either known to
    be sped up: True (its span is on a clock running ahead of the wall, maybe not the other's, and
    no wall span can be read from entries that did not both keep the wall time)."""
    i = record.history.index(start)
    j = record.history.index(back) if back is not None else len(record.history) - 1
    ending = next((t for t in reversed(record.history[i + 1:j + 1]) if t.wall is not None), None)
    return bool(_sped_up(start)) or (ending is not None and bool(_sped_up(ending)))


def _finish(cannot: str | None, record: RolloutRecord, now: float | None, first: bool = True) -> str:
    """What finishes a rollback not recorded as finished, with who carries it out now
    (``_claim_advice``): as a sentence of its own (``first``), or after "Finish the rollback:"."""
    # Running it again cannot finish a rollback with no revision to restore: say what does.
    run = "Run" if first else "run"
    finish = (f"{cannot}." if cannot else f"{run} `rollway abort` (or the rollback flow) to finish it: it is "
              "idempotent, never moves traffic toward the canary, and records the end.")
    return finish + _claim_advice(record, now)


def _claim_advice(record: RolloutRecord, now: float | None) -> str:
    """Who holds the claim on a rollback not recorded as finished, for the advice to finish it.

    A rollback under way renews its claim, and one started meanwhile waits for it instead of
    acting: "run `rollway abort`" alone left a reader to start a second rollback beside the
    first without knowing there was one, or which run to follow.
    """
    holder = record.rollback_holder
    if record.phase is not RolloutPhase.ROLLING_BACK or not holder:
        return ""
    if claim_has_lapsed(record, now):
        return f" It was carried out by {cell(holder)}, {claim_lapsed(record)}."
    # Claims are on the wall clock, the report's other times on the rollout clock.
    until = wall_utc(record.rollback_expires, "live when this report was written" if now is not None else "")
    return (f" **It is being carried out by {cell(holder)}**, its claim renewed until {until}: "
            "follow that run; a rollback started meanwhile waits for it, and takes over only once the claim lapses.")


def _flags_step(record: RolloutRecord, end: Transition) -> str:
    """The rollback's flag step: the bound flags it disabled, and those it left on as a person set
    them after a rollback disabled them or after `rollway flags release` freed the rollout's hold
    (recorded with its end, ``kind`` flag; each line says which).
    The report said every bound flag was disabled while one of them still served users."""
    bound = bound_flags(record)
    if not bound:
        return "4. no feature flag is bound to it: none to disable;"
    left = {feature: t.comment for t in record.history if t.kind == "flag" and t.at >= end.at and t.comment
            for feature in bound if t.comment.startswith(f"{feature}: left ")}
    # A flag another rollout holds, which this one never set, is that rollout's to turn off, not a person's choice.
    held = {feature: comment for feature, comment in left.items() if LEFT_TO_ANOTHER in comment}
    kept = {feature: comment for feature, comment in left.items() if feature not in held}
    disabled = [f for f in bound if f not in left]
    line = "4. the feature flags it binds disabled"
    if disabled:
        # What users had of each until then, from the rollout's last move of it: "disabled" alone
        # did not say whether a quarter of them had had the feature on. A flag with no move recorded
        # is named alone: its setting may have been written by a run that died before recording it.
        before = [f"`{f}`" + (f", {cell(_flag_settings(last.comment))} until then" if (last := _last_flag_move(
            record, f, end)) is not None else "") for f in disabled]
        line += f" ({'; '.join(before)}; their audit trail names this rollout)"
    else:
        line = "4. none of the feature flags it binds disabled"
    if kept:
        line += "; **left on** as a person set it: " + "; ".join(cell(comment) for comment in kept.values())
    for feature, comment in held.items():
        line += (f"; `{feature}` **left {cell(_flag_settings(comment))}**, another rollout holds it: "
                 f"{cell(_left_because(comment))}")
    return line + ";"


def _last_flag_move(record: RolloutRecord, feature: str, end: Transition) -> Transition | None:
    """The rollout's last ``flag`` entry for ``feature`` ahead of the rollback's ``end``, or None."""
    before = record.history[:record.history.index(end)]
    return next((t for t in reversed(before) if t.kind == "flag" and (t.comment or "").startswith(f"{feature}: ")),
                None)


def notice_unsure(record: RolloutRecord, now: float | None = None) -> str | None:
    """Plain words for a rollback under way whose run set out to send its notice and recorded
    neither that SNS took it nor that SNS refused it (``notice_unconfirmed``), or None.

    People may or may not have been paged: the incident report and `rollway status` said nothing,
    or "the finishing run sends it", and a reader could neither tell on-call nor expect the second
    page to open with "This notice may repeat one". ``now`` (wall clock, as the rollback's claim):
    a claim still renewed with no takeover since may be the run sending it right now. None: no lapse
    is claimed (``claim_has_lapsed``), as the report's advice and `rollway status` name the holder
    as carrying the rollback out: said "its run stopped", the same page contradicted them."""
    intent = notice_unconfirmed(record, record.rollout_id)
    if intent is None:
        return None
    lost = notice_answer_lost(record, intent)
    if lost is not None:
        # Sent, and SNS's answer lost: the run knows no more than a reader does, and is over.
        error = (lost.comment or "").removeprefix(NOTICE_ANSWER_LOST) or "no error recorded"
        return (f"people may have been paged: {intent.actor}'s run sent the rollback's notice at {notice_time(intent)} "
                f"and SNS's answer was lost ({error}), so whether SNS took it is not known; check with the topic's "
                "subscribers whether they were paged, or run the rollback again (`rollway abort`, or the rollback "
                "flow): it pages, its notice opening with a line saying it may repeat that one")
    taken_over = any(t.kind == TAKEOVER and t.at >= intent.at for t in record.history)
    if record.rollback_holder and not claim_has_lapsed(record, now) and not taken_over:
        return (f"the rollback's notice may not have been sent yet: {intent.actor} set out to send it at "
                f"{notice_time(intent)} and has not recorded whether SNS took it; the rollback's claim is renewed "
                f"until {wall_utc(record.rollback_expires)}, so its run may be sending it now")
    return (f"the rollback's notice may not have been sent: {intent.actor}'s run stopped after {notice_time(intent)}, "
            "between sending it and recording whether SNS took it; check with the topic's subscribers whether they "
            "were paged, or run the rollback again (`rollway abort`, or the rollback flow): it pages, its notice "
            "opening with a line saying it may repeat that one")


def _paged_of_failed_steps(record: RolloutRecord) -> Transition | None:
    """The newest ``rollback-stopped`` entry whose run paged people of the steps it could not do,
    or None. Its SNS message id when recorded; an entry from before ids were kept lists the page
    among its done steps, as flows/rollback.py words it: "notified", or "notified (may repeat ...)"."""
    for entry in reversed(record.history):
        if entry.kind != ROLLBACK_STOPPED:
            continue
        done, _not_done = rollback_stopped_steps(entry)
        if entry.message_id or any(step == "notified" or step.startswith("notified (") for step in done.split("; ")):
            return entry
    return None


def notice_refused(record: RolloutRecord) -> str | None:
    """The newest notice SNS did not take (``notice-failed``, its error in the comment), or None.

    A rollback whose page failed stays open and the next run sends its own; the report said only
    "not confirmed", so a reader could not tell a page refused (nobody paged: a topic, policy or
    key to fix) from one not yet tried. A publish none of whose attempts connected is said to
    have found SNS out of reach, not refused by it: the network or endpoint is what to fix."""
    refused = record.last_transition(NOTICE_FAILED)
    if refused is None:
        return None
    comment = refused.comment or ""
    unreached = comment.startswith(NOTICE_UNREACHED)
    what = "SNS could not be reached for the notice" if unreached else "SNS refused the notice"
    reason = comment.removeprefix(NOTICE_UNREACHED).removeprefix(NOTICE_NOT_SENT) or "no reason recorded"
    return f"{what}: {reason} ({refused.actor}'s run, at {utc(refused.at)})"


def _refused_then_sent(record: RolloutRecord, refused: str, end: Transition | None) -> str:
    """``refused`` (``notice_refused``), said to be an earlier run's when a later run sent the notice
    (``notified``, or the finished rollback's ``end``): shown bare under that run's message id, it
    read as if the notice people got had been refused."""
    failed = record.last_transition(NOTICE_FAILED)
    assert failed is not None  # notice_refused said it from this entry
    sent = min((t for t in (record.last_transition(NOTIFIED), end) if t is not None and t.at >= failed.at),
               key=lambda t: t.at, default=None)
    if sent is None:
        return refused
    return (f"An earlier run's notice did not go out: {refused}; {sent.actor}'s run sent the notice later, "
            f"at {utc(sent.at)}.")


# Triggers that are a person's word on the new version, not a measurement's.
_PERSONS = ("reject", "abort", "manual")


_LOGS_READ = "the times CloudWatch Logs Insights reads"

_CONVERT = (", which ran ahead of the wall clock: CloudWatch Logs Insights reads wall time, which is anchor + "
            "(time - anchor) / speed by the `clock` parameter of the rollout's flow runs (Prefect UI)")


def _on_wall(clock: ClockSettings, at: float) -> float:
    """The wall time of ``at`` on the sped-up ``clock`` (``ScaledClock.now``, inverted)."""
    return clock.anchor + (at - clock.anchor) / clock.speed


def _on_rollout_clock(at: float, sped: bool, clock: ClockSettings | None) -> str:
    """What follows a rollout-clock time ``at`` in parentheses when that clock ran ahead of the wall
    (``sped``): that it is the rollout clock's and, given the sped-up ``clock``, its wall time;
    "" at real time."""
    if not sped:
        return ""
    if clock is None or clock.speed == 1.0:
        return "; on the rollout clock"
    return f"; on the rollout clock, {utc(_on_wall(clock, at))} on the wall clock"


def _log_window(record: RolloutRecord, begin: float, end: float, sped: bool, clock: ClockSettings | None) -> str:
    """The window of the next steps' "read the canary's logs", from ``begin`` (the first traffic to
    the canary) to ``end`` (its return to stable, or the last record), both on the rollout clock,
    given on the wall clock: a person pastes it into CloudWatch Logs Insights, which reads wall
    time, and under `rollway up`'s 60x the rollout clock's window began hours after the canary's
    first request. ``clock``: the rollout's (None: not known); ``sped``: ``_ran_ahead``.

    Its end is the entry's own wall time where it kept one, its own time where it was stamped on
    another clock than the moves (`rollway abort` on real time). Not known to be the wall's, the
    window is said to be the rollout clock's, with how to convert it."""
    one_clock = _one_clock(max(t.at for t in record.history if t.kind in _MOVES), end)
    scaled = clock is not None and clock.speed != 1.0
    if not scaled and not sped and one_clock:
        # Real time: the rollout clock is the wall's, and a label would name the only clock there is.
        return f" from {utc(begin)} to {utc(end)}"
    if scaled:
        ending = next((t for t in reversed(record.history) if t.at == end and t.wall is not None), None)
        wall_end = ending.wall if ending is not None else _on_wall(clock, end) if one_clock else end
        rollout = f"{utc(begin)} to {utc(end)}" if one_clock else f"{utc(begin)} on"
        return (f" from {utc(_on_wall(clock, begin))} to {utc(wall_end)} (wall clock, {_LOGS_READ}; on the rollout "
                f"clock, {clock.speed:g}x wall time, which the embedded AWS stamps its metrics on: {rollout})")
    if not one_clock:
        return f" from {utc(begin)} on the rollout clock (the rollback's own times are on another clock){_CONVERT}"
    return f" from {utc(begin)} to {utc(end)} on the rollout clock{_CONVERT}"


def breach_before(record: RolloutRecord, start: Transition | None) -> Transition | None:
    """The first breach the monitoring window saw and could not roll back (``BREACH_KEPT``: another
    run had closed the window) recorded before the rollback's ``start``, or None: when users were
    first hurt, and what the guardrail measured, though a person's rollback came later."""
    if start is None:
        return None
    for entry in record.history:
        if entry is start:
            return None
        if entry.kind == BREACH_KEPT:
            return entry
    return None


def _breach_line(record: RolloutRecord, start: Transition | None, sped: bool) -> list[str]:
    """The incident report's line for a breach not rolled back before the rollback (``breach_before``):
    the trigger alone named the person who ran the rollback flow and their words, not when the
    guardrail was breached nor by what. Its entry's advice (run the `rollback` flow) is left out:
    it was followed."""
    breach = breach_before(record, start)
    if breach is None or start is None:
        return []
    saw = (breach.comment or "no reason recorded").partition("; not rolled back: ")[0]
    # No span across two clocks (`rollway abort` stamps real time), nor one the hosts' skew turned negative.
    later = (f", {duration(start.at - breach.at)} before the rollback began"
             if start.at >= breach.at and _one_clock(breach.at, start.at) else "")
    return [f"- **Breach before it:** the post-promotion monitor saw its guardrail breached at "
            f"{_stamped(record, breach, sped)}{later} ({cell(breach.actor)}'s run), and could not roll back (another "
            f"run had closed the monitoring window), so the release stayed in production until this rollback: "
            f"{cell(saw)}"]


def _what_to_confirm(trigger: Trigger | None) -> str:
    """What the canary's logs and metrics are read for: after an approval timeout nothing failed
    (nobody answered), and "confirm what failed" sent a responder looking for a fault."""
    if trigger is not None and trigger.kind == "approval-timeout":
        return "nothing failed (nobody answered the pause in time); see whether users were affected while it took traffic"
    return "confirm what failed and whether users were affected"


def _fix_steps(trigger: Trigger | None, breached: bool = False) -> list[str]:
    """The incident's next steps about the new version, by what triggered the rollback. An approval
    timeout found no fault, and a person's rollback raised no threshold: "find the cause and fix
    it" and "adjust the spec's thresholds" of a false alarm sent a responder after a fault nobody
    found, or thresholds that raised no alarm."""
    if trigger is not None and trigger.kind == "approval-timeout":
        return ["- [ ] No fault of the new version was found: nobody answered its approval pause in time. "
                "Start the rollout of the same image again when an approver can answer; if the pause came when "
                "nobody could, review `approvals.timeout_seconds`, who is told of a pause, or "
                "`approvals.on_timeout` set to `hold` (an unanswered pause then keeps the weights and asks again)."]
    fix = "- [ ] Find the cause and fix it; ship the fix as a new image tag (a new rollout)."
    # A person's rollback after the monitor's guardrail was breached (``breached``): the guardrail
    # saw it, and "the judge passed what the person saw" was not so.
    if trigger is not None and trigger.kind in _PERSONS and not breached:
        return [fix, "- [ ] If the person's reason is confirmed, the judge passed what the person saw: tighten the "
                     "spec's thresholds or analysis, or add the signal it did not watch; if not, record why."]
    return [fix, "- [ ] If the trigger was wrong (a false alarm), record why and adjust the spec's thresholds."]


def _evidence(record: RolloutRecord, targets: Targets | None, trigger: Trigger | None,
              start: Transition | None) -> list[str]:
    """Where the incident's evidence is kept, for the postmortem to cite: the ledger item the report
    is read from, and the keys of the artifacts the rollout's runs wrote (each stage's canary vs
    baseline counts, which the ledger does not hold; the run's summary; the post-promotion
    monitor's window). The report named the runs, neither the item nor the keys."""
    breached = record.phase is RolloutPhase.PROMOTED  # a breach standing, not rolled back (``wants_incident``)
    table = (f"the DynamoDB table `{targets.rollouts_table}` (region {targets.region})" if targets is not None
             else "the ledger table (`rollouts_table` in the RollwayTargets block)")
    weights = stage_weights(record)
    stages = dict.fromkeys(weights[line.stage] if weights and line.stage is not None and 0 <= line.stage < len(weights)
                           else line.weights.canary for line in stage_lines(record) if line.weights.canary > 0)
    keys = [f"`{artifact_key(record.service, f'stage-{weight}')}`" for weight in stages]
    # The judge's looks while a passed stage's approval pause waited rolled back: they have a table
    # of their own (flows.journal.stage_table). A person's rollback there writes none.
    cut = next((p for p, ended in _left_unanswered(record, None) if ended is start), None) if start else None
    if (cut is not None and pause_cause(cut) == "approval" and trigger is not None
            and trigger.kind in ("judge", "guardrail") and cut.to_stage is not None and weights
            and 0 < cut.to_stage <= len(weights)):
        keys.append(f"`{artifact_key(record.service, f'stage-{weights[cut.to_stage - 1]}-pause')}` (the looks "
                    "taken while the approval pause waited)")
    per_stage = (f"each stage's canary vs baseline requests, errors and p99: {', '.join(keys)}; " if keys else "")
    monitor = (f"; the post-promotion monitor's window: `{artifact_key(record.service, 'monitoring')}`"
               if trigger is not None and (trigger.kind == "monitor"
                                           or breach_before(record, start or record.last_transition("rollback")))
               else "")
    where = ("of the flow runs named above (each run's Artifacts tab; a key's newest version may be a later rollout's)"
             if flow_runs(record) else "(Prefect UI, Artifacts, by key; no flow run of the rollout is recorded: take "
             f"the versions written between its start and {'the breach' if breached else 'its rollback'}, a key's newest "
             "may be a later rollout's)")
    return ["## Evidence", "",
            f"- **Ledger:** the rollout's item in {table}, key `service` {record.service}, `rollout_id` "
            f"{record.rollout_id}: every entry this report is read from, with who and when (`rollway report --rollout "
            f"{record.rollout_id}` writes both reports again)",
            f"- **Prefect artifacts** {where}: {per_stage}the run's summary: "
            f"`{artifact_key(record.service, 'summary')}`{monitor}",
            "- **Metrics and logs:** the load balancer's and the canary's, in the window the next steps give"]


def incident_report(record: RolloutRecord, *, alert_topic: str | None = None, now: float | None = None,
                    targets: Targets | None = None, unrestorable: str | None = None,
                    clock: ClockSettings | None = None, timeline_above: bool = False) -> str:
    """The incident report of a rolled-back (or rolling-back) rollout, or of a promoted one whose
    breach not rolled back stands or was accepted (``wants_incident``), as markdown.

    Args:
        record: the rollout, as the ledger holds it.
        alert_topic: the SNS topic rollback notices go to (``Targets.alert_topic``), named in the report.
        now: the wall clock when the report is written (what rollback claims are stamped on), to
            tell a rollback still carried out from one whose holder stopped; None: not told.
        targets: where the service runs (cluster, region, metrics namespace, dashboard, dead-letter
            queues), named in the next steps so a reader knows where to look; None: not named.
        unrestorable: a rollback under way cannot restore a revision on the canary, and what
            finishes it instead (``cannot_finish``; None: it can, or it was not read).
        clock: the clock the rollout's runs ran on (``flows.reports.report_clock``), to give the
            window to read the logs in on the wall clock; None: not known.
        timeline_above: printed right after the rollout report (`rollway report`), whose every
            recorded transition is the same table: named there rather than listed twice.

    Raises:
        ValueError: the rollout was not rolled back, nor promoted with a breach standing or accepted
            (nothing to report as an incident).
    """
    if not wants_incident(record):
        raise ValueError(f"rollout {record.rollout_id} of {record.service} is {record.phase.value}, with no breach "
                         "standing or accepted, not rolled back: there is no incident to report")
    topic = f"`{alert_topic}`" if alert_topic else "the alert topic"
    accepted = accepted_breach(record)
    breach = unhandled_breach(record) or (accepted[0] if accepted is not None else None)
    if breach is not None:
        return _breach_incident(record, breach, topic=topic, now=now, targets=targets, clock=clock,
                                timeline_above=timeline_above, accepted=accepted[1] if accepted is not None else None)
    trigger = rollback_trigger(record)
    start = rollback_start(record)
    end = record.last_transition("rollback")
    finished = record.phase is RolloutPhase.ROLLED_BACK and end is not None
    # The newest run of the rollback that stopped part-way, if no run finished it since.
    stopped = None if finished else record.last_transition(ROLLBACK_STOPPED)
    first, peak, at_trigger, back_at = _exposure(record)
    # A shift a resumed run found on the load balancer is stamped when it was found: the run
    # that made it died after its last entry, and the canary took traffic from some time between
    # the two, unrecorded. Its time alone understated the exposure by as long as the rollout lay dead.
    found = first is not None and first.actor == RECONCILE
    made_after = _dead_runs_last_entry(record, first) if found else first.at if first is not None else 0.0

    pinned = f" (`{record.pinned_image}`)" if record.pinned_image not in (None, record.image) else ""
    # The rollout clock ran ahead of the wall: the rollback's own times say which clock each is on.
    sped = _ran_ahead(record, now)
    lines = [f"# Incident report: rollback of {record.service}, rollout {record.rollout_id}", "",
             # Not "was rolled back" of one not finished: the rest of the report says nobody knows it was.
             # Nor "the canary may still take traffic" of one whose read-back of 100/0 is recorded
             # (``back_at``): "Traffic moved back" below says users get the stable service alone.
             f"`{record.image}`{pinned} " + (f"was rolled back at {_stamped(record, end, sped)}." if finished else
                                            "is being rolled back: the rollback began and is **not recorded as "
                                            "finished** (" + ("the canary may still take traffic" if back_at is None
                                                              else "the ledger records the traffic back on the stable "
                                                              "service; not every step after it is recorded as done")
                                            + ")."), ""]
    note = _clock_note(record, now)
    if note:
        lines += [*note, ""]
    lines += [*_runs_line(record, sped), ""]
    lines += ["## What triggered it", ""]
    if trigger is None:
        lines.append("The ledger records no rollback transition for this rollout (its phase says "
                     f"{record.phase.value}); the trigger is unknown.")
    else:
        lines += [f"- **Trigger:** {trigger.describe()}",
                  # The entry the trigger was read from (``rollback_trigger``).
                  f"- **Recorded by:** {cell(trigger.who)} at {_stamped(record, start or end, sped)}",
                  f"- **Reason:** {cell(trigger.reason)}"]
        asked = next((t for t in reversed(record.history) if t.kind in ("reject", "timeout") and t.at <= trigger.at),
                     None)
        if asked is not None and trigger.kind == "approval-timeout":
            # Recorded as the answer the timeout stood for ("reject: no answer within 3600 s"):
            # quoted under "The pause answered", it read as someone's rejection.
            waited = (asked.comment or "").partition(": ")[2] or "no answer in time"
            lines.append(f"- **The pause nobody answered:** {cell(asked.verdict or '-')} ({cell(waited)})")
        elif asked is not None and trigger.kind == "reject":
            # Recorded with its answer ("reject: latency looks off"), which "answered" under a
            # rejection's trigger says already.
            lines.append(f"- **The pause answered:** {cell(asked.verdict or '-')} "
                         f"(comment: {cell(answer_said('reject', asked.comment) or '-')})")
        lines += _pause_cut_short(record, start, sped)
        lines += _breach_line(record, start or end, sped)
    lines += ["", "## Exposure", ""]
    if first is None:
        lines.append(_no_move_recorded(record, start, back_at))
    else:
        until = back_at if back_at is not None else (start.at if start is not None else record.updated_at)
        # Checked against the last move ahead of it, not only the first: a rollback stamped on
        # real time after hours of a faster clock can still fall after the first shift.
        last_move = _last_move_before(record, end if back_at is not None else start)
        one_clock = _one_clock(last_move.at if last_move else first.at, until)
        # A span of the rollout clock's entries: the time to restore below is the wall clock's.
        ahead = " on the rollout clock (it ran ahead of the wall clock)" if one_clock and sped else ""
        span = duration(until - first.at) + ahead
        if not one_clock:
            exposed = f"not measurable from the ledger: {_TWO_CLOCKS}"
        elif until < first.at:
            # Within the clocks' skew of the first shift, on hosts whose clocks disagree: "0 s".
            what = "the traffic's return" if back_at is not None else "the rollback's start"
            exposed = (f"not measurable: the hosts' clocks disagree by at least {duration(first.at - until)} ({what}, "
                       f"{utc(until)}, is stamped {duration(first.at - until)} before the first shift, "
                       f"{utc(first.at)})")
        elif back_at is not None and found:
            # Both bounds named with what they count from, and on which clock: "and at most 60.1 min"
            # said neither, beside a lower bound said to be on the rollout clock.
            both = f", both{ahead}" if ahead else ""
            exposed = (f"at least {duration(until - first.at)} (from {utc(first.at)}, when a resumed run found the "
                       f"shift) and at most {duration(until - made_after)} (from {utc(made_after)}, the dead run's "
                       f"last entry), to the traffic's return{both}: the first shift was made by a run that died "
                       "before recording it")
        elif back_at is not None:
            exposed = span
        else:
            # Counted only up to the rollback's start (or the last record): the canary may still
            # carry traffic, so this is a floor, not the exposure "so far".
            when = "when the rollback began" if start is not None else "when the ledger last recorded it"
            exposed = f"at least {span} (until {utc(until)}, {when}; the traffic's return is not recorded)"
        first_at = (f"between {utc(made_after)} and {utc(first.at)} ({first.to_weights.canary}%): a run moved the "
                    "traffic after its last entry and died before recording the move, which the next run found on "
                    f"the load balancer and recorded at {utc(first.at)}{'; both on the rollout clock' if sped else ''}"
                    if found else
                    f"{utc(first.at)} ({first.to_weights.canary}%{_on_rollout_clock(first.at, sped, clock)})")
        # A drift rollback began because the load balancer held weights nobody recorded: the
        # ledger keeps them only in its reason, so the figures below are the recorded moves'.
        drift = trigger is not None and trigger.kind == "drift"
        lines += [
            f"- **First traffic to the new version:** {first_at}",
            f"- **Highest canary weight:** {_highest_weight(record, peak, drift)}",
            f"- **Weight when the rollback began:** {_weight_at_rollback(record, at_trigger, drift)}",
            f"- **Exposed for:** {exposed}",
            *_each_weight(record, sped, back_at),
        ]
    cannot = cannot_finish(unrestorable)
    lines += ["", "## Traffic moved back", "", *users_get(record, targets, unrestorable)]
    lines += _time_to_restore(record, start, back_at)
    if start is not None:
        lines.append(f"- {_stamped(record, start, sped)}: rollback intent recorded by {cell(start.actor)} before "
                     "anything moved.")
    # A rollback that stopped part-way and the one that finished its work: the page and the end name the latter.
    lines += _takeovers(record, of_rollback=True, sped=sped)
    back = stopped_back(record) if finished else None
    if back is not None:
        # Said first: the traffic was back from then, not from the end another run recorded later.
        lines.append(f"- by {_read_back_stamped(record, back, sped)}: the load balancer read back "
                     f"**{back.to_weights}** (stable/canary), by {cell(back.actor)}, whose rollback then stopped "
                     f"before it finished; {cell(end.actor)}'s finished it.")
    if finished and end.to_weights is not None:
        recorded = ("" if read_back_at(record, end) == end.at else f" at {_stamped(record, end, sped)}")
        lines.append(f"- {_read_back_stamped(record, end, sped)}: the load balancer read back **{end.to_weights}** "
                     "(stable/canary); "
                     f"recorded by {cell(end.actor)}{recorded}.")
    elif finished:
        # The monitor's rollback records its end without the weights it read back: finished all
        # the same, and not to be "finished" again by hand.
        lines.append(f"- {_stamped(record, end, sped)}: the rollback was recorded as finished by {cell(end.actor)}, "
                     "after the "
                     f"traffic was back; its record keeps no read-back weights (the rollout shows {record.weights} "
                     "stable/canary).")
    else:
        if stopped is not None and stopped.to_weights is not None:
            lines.append(f"- by {_stamped(record, stopped, sped)}: the load balancer read back "
                         f"**{stopped.to_weights}** "
                         f"(stable/canary), by {cell(stopped.actor)}, whose rollback then stopped before it finished "
                         "(see its steps below).")
        lines.append(f"- **Not confirmed:** the ledger records no finished rollback. {_finish(cannot, record, now)}")
    lines += ["", "## Rollback steps", ""]
    if finished:
        if end.task_definition:
            restored = f"{end.task_definition} (recorded by the rollback)"
        else:
            # An end recorded before rollbacks kept it. Without a previous task definition the
            # rollback points the canary at the stable service's (flows/rollback.py): say so,
            # not "its previous", which nothing recorded.
            restored = ((f"{record.previous_task_definition} (inferred: the rollout's previous task definition; "
                         "this rollback's record does not say which it restored)") if record.previous_task_definition
                        else "the stable service's task definition (inferred: the ledger records none from before "
                             "the rollout, nor which this rollback restored)")
        lines += [
            "The rollback records its end only after every step succeeded, in this order:",
            "",
            "1. the stable service made ready to take all traffic (scaled up and healthy if it was short);",
            "2. 100 % of the traffic to the stable target group, read back"
            + (f" ({end.to_weights});" if end.to_weights is not None else ";"),
            f"3. the canary service scaled to 0 and pointed back at {restored};",
            _flags_step(record, end),
            f"5. people notified over SNS on {topic} (subject `Rollback: {record.service}`, with the reason "
            "and who asked).",
        ]
    elif stopped is not None:
        done, not_done = rollback_stopped_steps(stopped)
        left = f"{cell(cannot)}; what it did and did not do" if cannot else (
            "the rollback run again does what is left")
        lines += [f"The rollback by {cell(stopped.actor)} stopped at {_stamped(record, stopped, sped)}, before it "
                  f"finished; it stays open (`rolling_back`), and {left}:", "",
                  f"- **Done:** {cell(done)}",
                  f"- **Not done:** {cell(not_done)}"]
    else:
        lines.append("Which steps were done is not recorded: a rollback whose step failed stays open "
                     "(`rolling_back`), and its run's error names the failed step. The traffic comes first: "
                     "check the load balancer with `rollway status`.")
    lines += ["", "## Notification", ""]
    if finished and end.message_id:
        lines.append(f"Sent on {topic} when the traffic was back: SNS message id `{cell(end.message_id)}` (recorded "
                     "with the rollback's end). A rollback of a rollout already rolled back, or one that waited for "
                     "this rollback to end, sends none again.")
    elif finished:
        lines.append(f"Inferred: sent on {topic} when the traffic was back (a rollback records its end only after "
                     "notifying), but this rollback's record keeps no message id (it was recorded before ids were "
                     "kept): the id is in the rollback run's result. A rollback of a rollout already rolled back "
                     "sends none again.")
    elif (told := notice_sent(record, record.rollout_id)) is not None:
        # Its run died after paging: the run that finishes the rollback does not page again, and a
        # reader told "the finishing run sends it" would wait for a page that never comes.
        lines.append(f"Sent on {topic} at {_stamped(record, told, sped)} by {cell(told.actor)}: SNS message id "
                     f"`{cell(told.message_id or '-')}` (recorded when SNS took it). The rollback is not recorded as "
                     "finished; the run that finishes it does not send it again.")
    elif (unsure := notice_unsure(record, now)) is not None:
        lines.append(f"**Not known whether people were paged:** {cell(unsure)}.")
    elif (paged := _paged_of_failed_steps(record)) is not None:
        # Not a ``notified`` entry, by design: that one is the notice of a rollback with every step
        # done, which the finishing run still sends. Said "not confirmed", as if nobody was told.
        sent = (f"SNS message id `{cell(paged.message_id)}` (recorded when it stopped)" if paged.message_id
                else "its steps record it as notified; its SNS message id is not recorded")
        lines.append(f"People were paged on {topic} by {_stamped(record, paged, sped)} by {cell(paged.actor)}, whose "
                     "rollback put the traffic back and stopped with a step not done; the page named it: "
                     f"{sent}. Not sent yet: "
                     "the run that finishes the rollback sends the notice that it finished.")
    else:
        lines.append(f"Not confirmed: the rollback's notice on {topic} goes out after the traffic is back and the "
                     "canary retired; the finishing run sends it.")
    if (refused := notice_refused(record)) is not None:
        lines += ["", cell(_refused_then_sent(record, refused, end if finished else None))]
    window = ""
    if first is not None:
        window = _log_window(record, made_after, back_at if back_at is not None else record.updated_at, sped, clock)
        if back_at is None:
            # The ledger's last record is no end: errors after it are the canary's too.
            window += (" and on: the traffic's return to stable is not recorded, and the canary may still take "
                       "traffic")
    # First: what the rollback left undone (the traffic, the flags, the page) outranks the post-mortem.
    first_steps = [] if finished else [f"- [ ] Finish the rollback: {_finish(cannot, record, now, first=False)}"]
    lines += _closing_sections(record, targets, trigger, start, sped, timeline_above, first_steps, window,
                               breach_before(record, start or end) is not None)
    return shown("\n".join(lines) + "\n")


def _closing_sections(record: RolloutRecord, targets: Targets | None, trigger: Trigger | None,
                      start: Transition | None, sped: bool, timeline_above: bool, first_steps: list[str],
                      window: str, breached: bool) -> list[str]:
    """The incident report's sections after what happened to the traffic: the runs that took the
    rollout over, its stages, timeline and evidence, and the next steps (``first_steps`` first,
    then reading the logs in ``window``, the dead-letter queues, the fix and the post-mortem)."""
    lines: list[str] = []
    taken = _takeovers(record, sped=sped)
    if taken:
        lines += ["", "## Runs that took the rollout over", "", *taken]
    # Where to look, by name: "the canary's logs" and "the dead-letter queues" left a responder to
    # find the cluster, the dashboard and which queues from the targets block.
    where = dlqs = ""
    if targets is not None:
        where = (f" (ECS service `{targets.canary_service}` in cluster `{targets.cluster}`, region {targets.region}; "
                 f"metrics in `{targets.metrics_namespace}`, dashboard `{targets.dashboard}`)")
        dlqs = f" ({', '.join(f'`{q.dlq_name}`' for q in targets.queues)})" if targets.queues else ""
    # Every entry, as the rollout report lists them: who approved what, in which words, and when
    # each step was recorded, is what a post-mortem's timeline is written from.
    # Below the rollout report (``timeline_above``), a big ledger's table was printed twice in a row.
    # The timeline lists the refused answers kept: those dropped are said under it (above it, the
    # rollout report says so under its Approvals table already).
    timeline = (["Every recorded transition is listed in the rollout report above (its \"Every recorded "
                 "transition\" table)."] if timeline_above else
                [*_timeline(record, waits_at(record), sped), *_dropped_line(record)])
    return lines + ["", "## Stages", "", *_stage_table(record, sped), "", "## Timeline", "",
                    *timeline, "", *_evidence(record, targets, trigger, start), "",
                    "## Next steps", "",
                    *first_steps,
                    f"- [ ] Read the canary's logs and metrics{window}{where}: {_what_to_confirm(trigger)}.",
                    f"- [ ] Check the dead-letter queues{dlqs} for messages the new version failed to process.",
                    *_fix_steps(trigger, breached),
                    "- [ ] Tell users what happened and what comes next (the seed's communication plan).",
                    "- [ ] Update the runbook and the lessons-learned notes."]


def wants_incident(record: RolloutRecord) -> bool:
    """Whether ``record`` calls for an incident report beside its rollout report: it was rolled back
    (or its rollback began), or it is promoted with a breach its monitoring window could not roll back
    standing (``unhandled_breach``: not accepted, no finalize begun since) or accepted by a person
    (``accepted_breach``). The one answer for the `rollout_report` flow, `rollway report` and the
    finalize that records an acceptance: a breach left in production got none, its rollout report
    alone saying "breach not rolled back"; once accepted it got none either, and the newest one
    written under its key went on saying the breach was still going."""
    return (record.phase in (RolloutPhase.ROLLED_BACK, RolloutPhase.ROLLING_BACK)
            or unhandled_breach(record) is not None or accepted_breach(record) is not None)


def incident_of(record: RolloutRecord) -> str:
    """What ``record``'s incident report (``wants_incident``) is about, as its title names it:
    promoted here is a breach left in production, standing or accepted: "rollback of" misnamed it."""
    if record.phase is not RolloutPhase.PROMOTED:
        return "rollback"
    return "breach accepted" if accepted_breach(record) is not None else "breach not rolled back"


def _breach_incident(record: RolloutRecord, breach: Transition, *, topic: str, now: float | None,
                     targets: Targets | None, clock: ClockSettings | None, timeline_above: bool,
                     accepted: Transition | None = None) -> str:
    """``incident_report`` of a promotion whose monitoring window saw a guardrail breached and could
    not roll it back (``breach``, the ``unhandled_breach``): no rollback began, so the trigger is the
    breach's entry, the exposure has no end (the release is still in production), the traffic did not
    move back, and the first next step is the way out of it (``breach_way_out``).

    ``accepted``: the person's acceptance of ``breach`` (``accepted_breach``), which kept the release:
    who and when are said, and the exposure as kept by that choice, not as still going with a way out
    owed. Written again once accepted (``wants_incident``), so that the newest report says so."""
    sped = _ran_ahead(record, now)
    trigger = Trigger(kind="monitor", who=breach.actor, at=breach.at,
                      reason=entry_words(breach) or "no reason recorded")
    first, peak, _, _ = _exposure(record)
    pinned = f" (`{record.pinned_image}`)" if record.pinned_image not in (None, record.image) else ""
    saw = (f"`{record.image}`{pinned} was promoted; its post-promotion monitor saw a guardrail breached and could "
           "not roll it back (another run had closed the monitoring window)")
    if accepted is None:
        lines = [f"# Incident report: breach not rolled back of {record.service}, rollout {record.rollout_id}", "",
                 f"{saw}: no rollback is recorded, so the release is **still in production** as far as the ledger "
                 "knows.", ""]
    else:
        who, when = cell(accepted.actor), _stamped(record, accepted, sped)
        lines = [f"# Incident report: breach accepted of {record.service}, rollout {record.rollout_id}", "",
                 f"{saw}. **{who} accepted the breach** at {when} and kept the release in production: "
                 f"{cell(accepted.comment or 'no reason recorded')}.", ""]
    note = _clock_note(record, now)
    if note:
        lines += [*note, ""]
    runs = _runs_line(record, sped)
    if runs:
        lines += [*runs, ""]
    lines += ["## What triggered it", "",
              f"- **Trigger:** {trigger.describe()}",
              f"- **Recorded by:** {cell(trigger.who)} at {_stamped(record, breach, sped)}",
              f"- **Reason:** {cell(trigger.reason)}",
              *_window_line(record)]
    if accepted is not None:
        lines.append(f"- **Accepted by:** {who} at {when}, keeping the release in production: "
                     f"{cell(accepted.comment or 'no reason recorded')}")
    lines += ["", "## Exposure", ""]
    spec, promote = _recorded_spec(record), record.last_transition("promote")
    end = window_end(spec, record) if spec is not None and promote is not None else None
    # The ledger knows only what is recorded on the rollout: the `rollback` flow records nothing on a
    # promotion past a finalize (``HISTORY_KINDS``) nor when its look at the services fails, and traffic
    # moved by hand leaves no entry. "Nothing moved the traffic back" was said after the traffic went back.
    # Accepted, the release stays by a person's choice: "still going" read as an incident nobody had acted on.
    # Accepted, the acceptance is recorded, its release being in production still is inferred as the
    # standing breach's is: said flatly, it claimed what a rollback after the finalize (recorded on no
    # rollout) or traffic moved by hand would have made untrue.
    unseen = ("no rollback of it is recorded (one recorded on no rollout, or traffic moved by hand, is not seen here; "
              "`rollway status` reads the load balancer now)")
    still = (f"and still going as far as the ledger knows: {unseen}" if accepted is None else
             f"and on as far as the ledger knows: kept in production since {who} accepted the breach at {when}, and "
             f"{unseen}")
    window = ""
    if first is None:
        lines.append("- **First traffic to the new version:** not recorded (no move of the traffic is in the "
                     f"ledger); {still}")
    else:
        ahead = " on the rollout clock (it ran ahead of the wall clock)" if sped else ""
        exposed = (f"at least {duration(end - first.at)}{ahead} (from {utc(first.at)} to {utc(end)}, the monitoring "
                   f"window's end) {still}" if end is not None and end >= first.at else f"from {utc(first.at)} {still}")
        kept_on = "still in production" if accepted is None else "kept in production"
        lines += [f"- **First traffic to the new version:** {utc(first.at)} ({first.to_weights.canary}%"
                  f"{_on_rollout_clock(first.at, sped, clock)})",
                  f"- **Highest canary weight:** {_highest_weight(record, peak, False)}",
                  f"- **Exposed for:** {exposed}",
                  # A breach left in production: the last weight has no end, nor is one missing from the record.
                  *_each_weight(record, sped, still=kept_on)]
        window = (_log_window(record, first.at, max(record.updated_at, breach.at), sped, clock)
                  + f" and on (the release is {kept_on})")
    # Past a finalize begun before the breach was recorded, the stable service may run the release (as
    # ``breach_way_out`` says): "the new version still takes 0%" of a finalized one said users were off it.
    # One begun after it follows an acceptance (finalize refuses a breach standing): said so, not "before".
    on = f"({record.weights} stable/canary, as the ledger last recorded it; `rollway status` reads the load balancer now)"
    began = "after" if record.history.index(breach) < last_index(record, FINALIZE_START) else "before"
    kept = (f"the stable service runs the release that breached (put there by a finalize begun {began} the breach was "
            f"recorded) and takes {record.weights.stable}% of the traffic {on}" if is_finalized(record) else
            f"a finalize began {began} the breach was recorded, so the stable service may run the release that "
            f"breached already {on}" if record.last_transition(FINALIZE_START) is not None else
            f"the new version {'still ' if accepted is None else ''}takes {record.weights.canary}% of the traffic {on}")
    # Accepted, "none" alone claimed the same as above: past the finalize the acceptance begins, the
    # `rollback` flow records nothing on the rollout either.
    moved = kept if accepted is None else f"{who} accepted the breach at {when} and kept the release; {kept}"
    lines += ["", "## Traffic moved back", "", f"- **Traffic moved back:** none recorded: {moved}",
              "", "## Notification", "", _breach_page(record, breach, topic)]
    way_out = ([f"- [ ] The way out of the breach: {breach_way_out(record)}"] if accepted is None else
               [f"- [x] Decided: {who} accepted the breach at {when} and kept the release: "
                f"{cell(accepted.comment or 'no reason recorded')}"])
    lines += _closing_sections(record, targets, trigger, None, sped, timeline_above, way_out, window, False)
    return shown("\n".join(lines) + "\n")


def _breach_page(record: RolloutRecord, breach: Transition, topic: str) -> str:
    """The incident report's line on the page of ``breach`` ("Breach not rolled back: <service>"),
    which the monitor's run sends right after recording the breach (``flows.monitor._breach_kept``)
    and records only when SNS did not take it (``breach_page_refused``, SNS's answer in its comment).

    Read from that entry alone, the first after the breach naming this page: the newest refusal of
    any window page gave another page's as this one's, and a finalize begun since made a refused one
    old news, so "Paged on ..." was said of a page nobody received, where no later run sends it
    again. With nothing recorded, the page is inferred: SNS took it, or the run died before it or
    could not record its refusal."""
    page = f"{BREACH_PAGE}: {record.service}"
    refused = breach_page_refused(record, breach)
    run = f"{cell(breach.actor)}'s run"
    if refused is None:
        return (f"Inferred: paged on {topic} by {run} when it recorded the breach (subject `{page}`): the run pages "
                "right after recording it and records a page SNS did not take, and none is recorded (nor is the "
                "message id of one it took). A run that died between the two, or could not record SNS's refusal "
                "(its log says so), paged nobody.")
    outcome = page_outcome(refused.comment)
    why = cell(outcome.answer if outcome is not None and outcome.answer else "no answer recorded")
    stamped = f"({cell(refused.actor)}'s run, at {notice_time(refused)})"
    if outcome is not None and outcome.lost:
        return (f"**Page not confirmed:** {why} {stamped}: {unsent(f'the `{page}` page on {topic}', lost=True)}, and no "
                f"run sends it again; {CHECK_DELIVERY}.")
    return (f"**Page not sent:** {why} {stamped}: the `{page}` page on {topic} reached nobody, and no run sends it "
            "again; mend what SNS refused (the topic, the role's sns:Publish, its key).")
