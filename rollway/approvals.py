"""Answers people give at a pause, as plain data (the Prefect form lives in flows/approvals.py)."""

from __future__ import annotations

import inspect
import re
from datetime import datetime, timezone
from typing import Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from rollway.bounds import seconds_said, wait_said
from rollway.decide import Pause
from rollway.ledger import (TAKEOVER, UNHEARD, OpenPause, RolloutRecord, Transition, answer_comment,
                            dropped_at_said, held_by_timeout, refused_after, utc, utc_read, wall_utc)
from rollway.one_line import on_one_line, shown
from rollway.spec import Approvals


COMMENT_LIMIT = 2_000


class ApprovalAnswer(BaseModel):
    """approve: go on; reject: roll back; hold: stay at the current weights and ask again."""

    model_config = ConfigDict(frozen=True)

    action: Literal["approve", "reject", "hold"]
    approver: str = Field(min_length=1)
    # Bounded: the comment is the rollback's reason, in the ledger item (400 KB in all) and the
    # SNS notice; the Prefect form allows 1,000 characters, scripted and API answers this many.
    comment: str = Field(default="", max_length=COMMENT_LIMIT)
    next_weight: int | None = Field(default=None, ge=1, le=100)
    timed_out: bool = False
    # Wall-clock epoch seconds the person gave it (Prefect's stamp on the stored answer): the ledger
    # keeps it for an answer read after the run's look ended its pause (recorded as not applied,
    # read maybe long after it was given). None: not a Prefect answer, or the API could not say.
    answered_at: float | None = None

    @property
    def who(self) -> str:
        """``approver`` as the run's log lines, refusals and states name them: escaped (``shown``),
        since an answer an older form took, or a script's, can hold what today's form refuses: a
        line break wrote a line of its own under the real one, and a right-to-left override
        reordered the words after it."""
        return shown(self.approver, keep="")


_UNANSWERED_BY = re.compile(r"unanswered by (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC) \(wall clock\)")


def unanswered_by(deadline: datetime) -> str:
    """The words of a pause's question that say when it times out (``deadline``, aware, wall clock):
    a pause times out in wall seconds, whatever clock the rollout runs on."""
    return f"unanswered by {wall_utc(deadline.timestamp())}"


def pause_deadline(question: str | None) -> float | None:
    """When a pause times out (wall clock, epoch seconds), read back from its question
    (``unanswered_by``, in the ``pause`` entry the run records); None when it does not say."""
    found = _UNANSWERED_BY.search(question or "")
    if found is None:
        return None
    return utc_read(found.group(1))


def asked_again(question: str, deadline: float) -> str:
    """``question`` (a pause's, ``unanswered_by``) as it is asked again: with ``deadline`` (wall
    clock, epoch seconds), the deadline of the question now open, in place of its own."""
    return _UNANSWERED_BY.sub(unanswered_by(datetime.fromtimestamp(deadline, timezone.utc)), question, count=1)


def timed_out(approvals: Approvals, late: str | None = None, *, unanswered: str | None = None,
              besides: str = "") -> ApprovalAnswer:
    """The answer a pause nobody answered within ``approvals.timeout_seconds`` gets: its policy's
    action, and a comment giving the wait in whole seconds (a 14-day timeout read "1.2096e+06 s").

    ``late``: why and how late it is acted on (``late_timeout``), when the Prefect API could not be
    reached as it fell due. The comment is the rollback's reason, in the ledger and the page: without
    it, on-call could not tell a timeout acted on at once from one acted on minutes after its deadline.
    ``unanswered``: what is known of the answers, in place of "no answer within ..." (answers given
    went unread); ``besides``: what else is, said after it (refused answers the ledger may have dropped)."""
    said = (unanswered or f"no answer within {seconds_said(approvals.timeout_seconds)}") + besides
    return ApprovalAnswer(
        action="reject" if approvals.on_timeout == "rollback" else "hold", approver="timeout", timed_out=True,
        comment=said + (f"; {late}" if late else ""),
    )


def late_timeout(due: float | None, late: str) -> str:
    """The words of a timeout acted on ``late`` (a duration said) past its deadline ``due`` (wall clock,
    epoch seconds; None: unknown), the Prefect API away when it fell due."""
    when = f" at {wall_utc(due)}" if due is not None else ""
    return f"acted on {late} late: the Prefect API could not be reached when it fell due{when}"


class TakenOver(BaseModel):
    """The pause a run that died while it waited left open, as the run that took the rollout over
    asks it again (``taken_over_pause``)."""

    model_config = ConfigDict(frozen=True)

    began: float | None = Field(description="when that pause began, for its timeout (wall clock): its deadline "
                                            "stands; None: it passed under `on_timeout: hold`, and a new one is set")
    deadline: float = Field(description="that pause's deadline (wall clock)")
    run: str | None = Field(default=None, description="the run that asked it, as people know it, when recorded")
    unread: float | None = Field(default=None, description="when the answers given to that run after it died could "
                                                           "not be read (wall clock): asked anew (``began`` None)")
    retried: bool = Field(default=False, description="the run that asked it is the one asking again, started anew "
                                                     "(the Prefect UI's Retry of the crashed run): no other run took over")
    unrecorded: str | None = Field(default=None, description="at ``unread``, the answers read but not recorded in the "
                                                             "ledger, who gave what (None: they could not be read)")
    unread_again: float | None = Field(default=None, description="when a run taking the rollout over could not read "
                                                                 "(or record) the answers given since it was asked "
                                                                 "anew (wall clock): its timeout is no \"no answer\"")
    unrecorded_again: str | None = Field(default=None, description="at ``unread_again``, as ``unrecorded``")
    unread_unsaid: bool = Field(default=False, description="``unread`` was recorded by an older version, which kept "
                                                           "no word of whether the answers were not read or were read "
                                                           "and not recorded (``unrecorded`` None then says neither)")
    dropped: str = Field(default="", description="that refused answers the ledger dropped past its bound may have "
                                                 "been given to that pause (``dropped_at_said``), which this run "
                                                 "cannot see: an answer refused there has it asked anew (\"\": none)")


def taken_over_pause(record: RolloutRecord | None, pause: Pause, approvals: Approvals,
                     fresh: bool = False, this_run: str | None = None) -> TakenOver | None:
    """The pause ``pause`` asks again when its run died waiting for the answer and this run took the
    rollout over (``record``: as this run last read it), or None when it asks anew.

    The same pause: the rollout's open question (``open_pause``) is at its stage and of its cause,
    and nothing but ``takeover`` entries came after its entries; or none did, and this run has asked
    no pause yet (``fresh``): it is the run that asked it, started again (the Prefect UI's Retry of
    the crashed run keeps its owner, so no ``takeover`` is written). Asked afresh, its timeout began again
    from zero at every takeover (a worker restarted every 50 minutes kept a pause that rolls back
    after an hour waiting for ever), and one past its deadline was asked for another whole timeout.
    An ``unheard`` answer (given after that run died) closes it, and so does an answer to it that was
    refused (``refused_answers``: `rollway promote` at the run found dead, say): the run asks anew.

    ``this_run``: this run as the ledger names runs (``Transition.run``), given when the lease it took
    had been released, so that no ``takeover`` was written whoever held it before (the retry of the run
    that asked, refused, gave it back, say): the pause is this run's own, retried, only if it asked it.
    Without it a run started by hand after such a release was told the run that asked "was started again".
    """
    asked = record.open_pause if record is not None else None
    if asked is None or record.asked_until is None or (asked.stage, asked.cause) != (pause.stage_index, pause.cause):
        return None
    history = list(record.history)
    taken = len(history)
    while taken and history[taken - 1].kind == TAKEOVER:
        taken -= 1
    last = history[taken - 1] if 0 < taken < len(history) or (fresh and taken) else None
    if last is None or last.to_stage != pause.stage_index or not (last.kind == "pause" or held_by_timeout(last)):
        return None
    asking = next((t for t in reversed(history[:taken]) if t.kind == "pause"), None)
    # Recorded after it (``refused_after``: by recording order; an answer's time is its writer's clock,
    # `rollway promote`'s machine's, which may be behind the run's).
    if asking is not None and any(r.to_stage == pause.stage_index and refused_after(record, r, asking)
                                  for r in record.refused_answers):
        # A person answered it meanwhile, and the answer was not taken (`rollway promote` at the
        # run found dead, told the run taking over asks again where it can be given): as after an
        # ``unheard`` one, it is asked anew. Acted on at once past the deadline, it rolled back
        # over a recorded approval, saying nobody had answered.
        return None
    run = asking.run if asking is not None else None
    # One the ledger dropped past its bound since, it cannot see: what it says of it is said.
    dropped = dropped_at_said(record, asking, to="the pause") if asking is not None else ""
    # No ``takeover`` since: this run is the one that asked it, retried (one that took a released lease
    # is, only if it asked it).
    retried = taken == len(history) and (this_run is None or this_run == run)
    if asked.answers_unread is not None:
        # The answers its run was given in the UI after it died could not be read, or recorded (an
        # ``unheard`` one closes the pause): one may be an approval, so its deadline passing is no
        # "no answer". Asked with a new deadline, as under `on_timeout: hold`, saying why; once:
        # asked anew since (its deadline a whole timeout after), that deadline stands. Renewed at
        # every takeover whose read failed too, the pause never timed out.
        if record.asked_until >= asked.answers_unread + approvals.timeout_seconds:
            began = record.asked_until - approvals.timeout_seconds
            # A read (or record) failing again since it was asked anew: answers to it went unread, and
            # its timeout, acted on, said "no answer within" of answers nobody could look at.
            again = asked.answers_unread_again
            unread_again = again if again is not None and again > began else None
            return TakenOver(began=began, deadline=record.asked_until, run=run, unread=asked.answers_unread,
                             retried=retried, unread_again=unread_again, dropped=dropped,
                             unrecorded_again=asked.answers_unrecorded_again if unread_again is not None else None,
                             **_unrecorded(asked))
        return TakenOver(began=None, deadline=record.asked_until, run=run, unread=asked.answers_unread,
                         retried=retried, dropped=dropped, **_unrecorded(asked))
    return TakenOver(began=record.asked_until - approvals.timeout_seconds, deadline=record.asked_until, run=run,
                     retried=retried, dropped=dropped)


def _unrecorded(asked: OpenPause) -> dict:
    """``TakenOver``'s ``unrecorded`` and ``unread_unsaid`` of the answers ``asked`` says went unread:
    an older version's record (neither who gave what nor ``answers_not_read``) read as what it says,
    neither "not read" nor who gave what."""
    said = asked.answers_unrecorded
    return {"unrecorded": said, "unread_unsaid": said is None and not asked.answers_not_read}


def taken_over_said(taken: TakenOver) -> str:
    """What the notice and the form say of a pause asked again by the run that took the rollout over,
    and of refused answers given to it that the ledger may have dropped (``TakenOver.dropped``): one
    it keeps has the pause asked anew, and a person who gave one read as if nobody had tried."""
    return _taken_over_said(taken) + (f"; {taken.dropped} ({_KEEPS_NEWEST})" if taken.dropped else "")


_KEEPS_NEWEST = "the ledger keeps only the newest refused answers"


def _taken_over_said(taken: TakenOver) -> str:
    """``taken_over_said`` but for the refused answers the ledger may have dropped."""
    who = f"flow run {taken.run}" if taken.run else "the run that asked it"
    if taken.unread is not None:
        unread = _unread_said(taken.unread, taken.unrecorded, "to it", unsaid=taken.unread_unsaid)
        # The Prefect UI's Retry of the crashed run asks it itself: no other run took the rollout over.
        took, given = (("it was started again", "it while it was stopped") if taken.retried else
                       ("this run took the rollout over", "that run"))
        if taken.began is not None:
            return (f"{who} stopped while it waited for this answer, asked anew after {unread}: {took}, and asks the "
                    f"same pause again, its deadline unchanged (one given to {given} is not acted on: answer here)")
        return (f"{who} stopped while it waited for this answer, and {unread}: {took}, and asks again with a new "
                f"deadline (one given to {given} is not acted on: answer here)")
    if taken.retried:
        return (f"{who} stopped while it waited for this answer, and was started again: it asks the same pause "
                + ("again, its deadline unchanged" if taken.began is not None else
                   f"again with a new deadline, its own ({wall_utc(taken.deadline)}) having passed meanwhile "
                   "(approvals.on_timeout: hold)"))
    if taken.began is None:
        return (f"{who} stopped while it waited for this answer, and its deadline ({wall_utc(taken.deadline)}) "
                "passed meanwhile: this run took the rollout over, and asks again with a new deadline "
                "(approvals.on_timeout: hold)")
    return (f"{who} stopped while it waited for this answer: this run took the rollout over, and asks the same "
            "pause again, its deadline unchanged")


def _unread_said(at: float, unrecorded: str | None, given: str, *, unsaid: bool = False) -> str:
    """What became of the answers a dead run was given (``given``: to whom, "to it"), as a run taking
    the rollout over found at ``at`` (wall clock): read and not recorded, who gave what
    (``unrecorded``), or not read. Said as "could not be read, or recorded", a person whose answer
    the run knew read that nobody knew of it. ``unsaid``: recorded by an older version, which kept no
    word of which: "could not be read" was said of answers it may have read and not recorded."""
    if unsaid:
        return (f"the answers given {given} could not be read from the Prefect API, or were read and could not be "
                f"recorded in the ledger, at {wall_utc(at)} (recorded by an older version of rollway, which does not "
                "say which)")
    if unrecorded is not None:
        # Escaped again: an older version kept it in the ledger as it was typed (``unheard_said``).
        return f"{shown(unrecorded, keep='')} {given} after it stopped, which could not be recorded in the ledger at {wall_utc(at)}"
    return f"the answers given {given} could not be read from the Prefect API at {wall_utc(at)}"


def unheard_said(unheard: Sequence[UnheardAnswer]) -> str:
    """Who gave what of ``unheard``, on one line: ``dana answered approve (looks good)``, their words'
    control characters escaped (``on_one_line``): said in the run's log, and kept in the ledger for
    the form and the notice of the pause asked again, an escape sequence in a comment acted on the
    terminal of whoever read them."""
    return "; ".join(f"{u.answer.who} answered {u.answer.action}"
                     + (f" ({said})" if (said := on_one_line(u.answer.comment)) else "") for u in unheard)


def taken_over_timeout(approvals: Approvals, taken: TakenOver, now: float) -> ApprovalAnswer:
    """The timeout of a pause whose deadline passed while no run waited for its answer (its run died),
    acted on by the run that took the rollout over, at ``now`` (wall clock)."""
    who = f"flow run {taken.run}" if taken.run else "the run that asked it"
    acts = "it was started again, and acts on it" if taken.retried else "the run that took the rollout over acts on it"
    late = (f"{who} stopped while it waited; {acts} {wait_said(now - taken.deadline)} after it "
            f"fell due at {wall_utc(taken.deadline)}")
    # "No answer" beside refused answers the ledger may have dropped, one of which would have had it asked anew.
    dropped = f", though {taken.dropped} ({_KEEPS_NEWEST})" if taken.dropped else ""
    if taken.unread_again is None:
        return timed_out(approvals, late, besides=dropped)
    # Answers given since it was asked anew went unread (or unrecorded): "no answer" is not known.
    # The policy acts all the same: asked anew again, the pause never timed out.
    taken_words = "taken" if taken.unrecorded_again is not None else "read"
    return timed_out(approvals, late, unanswered=f"no answer could be {taken_words} within "
                     f"{seconds_said(approvals.timeout_seconds)}: "
                     + _unread_said(taken.unread_again, taken.unrecorded_again, "to the run that asked it")
                     + (", and is not acted on" if taken.unrecorded_again is not None else ""), besides=dropped)


# What an approver calls while it waits for an answer, every poll: None to keep waiting, or why
# the pause ends without an answer (the canary failed the judge, or its traffic was moved), said
# by the watch in the run's log. The engine keeps the rollout clock and the judge; the approver
# only leaves the pause when told.
Watch = Callable[[], "str | None"]


def act_now(watch: Watch | None, *, paused: bool = True) -> None:
    """Have ``watch`` act now on the end it called, when it can (an ``act_now`` method: the
    engine's watch rolls back): the approver cannot leave the pause yet (the Prefect API cannot
    be reached), and the rollback needs AWS alone. Without one, the engine acts once the pause is left.
    ``paused``: False when the pause was never known to be made (the API went away as the run
    paused): what the watch says then names no pause it leaves."""
    act = getattr(watch, "act_now", None)
    if act is not None:
        act(paused=paused)


# Called by the engine at each Pause with the decision and a markdown summary of the stage, and
# ``watch=`` when the canary has traffic meanwhile (``ask``). Returns the answer; None only when
# the watch ended the pause and no answer had been given (one given at that moment is returned,
# and the engine says it was not applied).
Approver = Callable[..., "ApprovalAnswer | None"]


def ask(approver: Approver, pause: Pause, summary: str, watch: Watch | None,
        began: float | None = None) -> ApprovalAnswer | None:
    """``approver``'s answer to ``pause``, given ``watch`` when it takes one (a ``watch``
    parameter: rollway's approvers do). One written for the two-argument form (a script's, a
    test's) answers without it: the run then judges nothing while it waits in it.

    ``began``: when the pause began for its timeout (wall clock), when it began before this asking
    (``TakenOver``: a run that died waiting asked it first), given to an approver that takes it (a
    ``began`` parameter: rollway's Prefect approver does); None: it begins now."""
    given: dict = {}
    if watch is not None and takes_watch(approver):
        given["watch"] = watch
    if began is not None and _takes(approver, "began"):
        given["began"] = began
    return approver(pause, summary, **given)


def takes_watch(approver: Approver) -> bool:
    """Whether ``ask`` gives ``approver`` the pause's watch (it has a ``watch`` parameter)."""
    return _takes(approver, "watch")


def _takes(approver: Approver, name: str) -> bool:
    """Whether ``approver`` has a parameter ``name`` (or takes any keyword)."""
    try:
        parameters = inspect.signature(approver).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): the two-argument form
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def scripted(*answers: ApprovalAnswer, clock=None, after_seconds: float = 0.0, poll_seconds: float = 2.0) -> Approver:
    """An approver that replays given answers in order (tests, and unattended demo runs).

    ``clock`` and ``after_seconds``: each answer comes that many seconds of ``clock`` (the
    rollout's) after its pause began, as from a person who takes a while; the pause's watch is
    called every ``poll_seconds`` meanwhile, and a watch that ends the pause takes no answer.
    """
    queue = list(answers)

    def answer(pause: Pause, summary: str, watch: Watch | None = None) -> ApprovalAnswer | None:
        if clock is not None and after_seconds > 0:
            due = clock.now() + after_seconds
            while clock.now() < due:
                if watch is not None and watch() is not None:
                    return None  # nobody answered: the pause ended first
                clock.sleep(min(poll_seconds, due - clock.now()))
        if not queue:
            raise RuntimeError(f"no scripted answer left for pause: {pause.reason}")
        return queue.pop(0)

    return answer


def auto_approve(actor: str = "auto") -> Approver:
    """Approves every pause: for flows run with approvals explicitly turned off. It answers at
    once, so its pauses have nothing to watch (``watch`` is taken and never called)."""
    def answer(pause: Pause, summary: str, watch: Watch | None = None) -> ApprovalAnswer:
        return ApprovalAnswer(action="approve", approver=actor, comment="approvals disabled")

    return answer


def next_stage_for(spec, pause: Pause, next_weight: int, until_stage: int | None = None) -> int:
    """The stage index an approver's ``next_weight`` asks for.

    A person may skip ahead to a later stage of the spec (never back, never to a weight the
    spec does not list, never past the current weekly phase); anything else is refused with
    the reason, so a typo never becomes a traffic shift.
    """
    later = {s.weight: i for i, s in enumerate(spec.stages) if i >= pause.stage_index}
    if next_weight not in later:
        # Those this phase takes: one past it, listed, was refused in turn an interval later.
        allowed = sorted(w for w, i in later.items() if until_stage is None or i <= until_stage)
        raise ValueError(
            f"next weight {next_weight}% is not a stage of this rollout at or after "
            f"{spec.stages[pause.stage_index].weight}% (choose from {allowed})"
        )
    index = later[next_weight]
    if until_stage is not None and index > until_stage:
        raise ValueError(
            f"next weight {next_weight}% is past this phase, which ends at {spec.stages[until_stage].weight}%"
        )
    return index


# A paused run says every this many seconds (or every poll, when it polls less often) that it
# still waits for its answer. Prefect keeps a run Paused after its process died (a worker
# restart, a lost machine) until the pause times out, and a resume then makes it Running with
# nothing to run it: `rollway promote` said "resumed" while nothing went on, ever.
WAITING_EVERY_SECONDS = 30.0
# Silent this many of its periods (and a minute more, for a slow API or clocks a little apart)
# before a paused run counts as having no process: a live run paused through a blocked poll
# or two must not be taken for dead.
WAITING_SILENT_PERIODS = 3
WAITING_SILENT_MARGIN_SECONDS = 60.0


def stopped_waiting(when: str | None = None) -> str:
    """What is known of a paused run found silent too long (``when``: what it last said, if known):
    that it stopped saying it waits, not why. Said as "its process died" alone (in its Crashed mark,
    the log of the run taking its rollout over), a live run whose every write a rate limit or a
    proxy refused was recorded dead as a fact, and nobody looked at the API in front of it."""
    said = f" ({when})" if when else ""
    return (f"it stopped saying it waits for an answer{said}: its process died, or, if it lives, the Prefect API "
            "(or a proxy in front of it) has refused its every write since")


def waiting_prefix(pause_key: str) -> str:
    """The flow-run-input keys under which a run paused with ``pause_key`` says it still waits."""
    return f"{pause_key}-waiting-"


def silent_since(stamps: list[tuple[float, float]], now: float) -> float | None:
    """When a paused run last said it waited, if it has been silent too long since; else None.

    ``stamps``: (wall time it said so, its period) pairs, as the run wrote them; none (a run of an
    earlier rollway, or one that has just paused) judges nothing. ``now``: the wall clock, as
    leases are judged across processes.
    """
    if not stamps:
        return None
    at, every = max(stamps)
    return at if now - at > WAITING_SILENT_PERIODS * every + WAITING_SILENT_MARGIN_SECONDS else None


class UnheardAnswer(BaseModel):
    """An answer a dead paused run was resumed with (the Prefect UI, or the API)."""

    model_config = ConfigDict(frozen=True)

    answer: ApprovalAnswer
    run: str = Field(description="the paused flow run, as people know it: its name and id")
    answered_at: float = Field(description="when the answer was stored (wall clock, epoch seconds)")
    silent_since: float = Field(description="when the run last said it waited (wall clock): its process died after")
    question: str | None = Field(default=None, description="what the pause asked, when its form says")


def answered_dead(stamps: list[tuple[float, float]], answered_at: float) -> float | None:
    """When the paused run last said it waited, if by ``answered_at`` it had been silent too long
    (``silent_since``): the answer came after its process died, and nothing read it. None when
    the run still said it waited then (it took the answer and recorded it), or said nothing."""
    return silent_since(stamps, answered_at)


# How an ``unheard`` entry ends when a run taking the rollout over records it (the default).
ASKED_AGAIN = "the run that took the rollout over asks again"


_GIVEN_TO = " (given to flow run "
"""What follows the answer in an ``unheard`` entry's comment (``unheard_comment``)."""


def _given_to(unheard: UnheardAnswer) -> str:
    """The words of an ``unheard`` entry that name the answer: the run it was given to and when."""
    return f"{_GIVEN_TO}{unheard.run} at {utc(unheard.answered_at)}, wall clock"


UNHEARD_AFTER = "after it had stopped saying it waits"
"""When an unheard answer was given, as far as is known (``stopped_waiting``): "after its process
had died", in the ledger, the reports and the logs, recorded as a fact the death of a live run whose
every write a rate limit or a proxy refused."""

UNHEARD_WHY = "its run had stopped saying it waits"
"""Why the reports say an unheard answer was not acted on (``UNHEARD_AFTER``)."""


def unheard_comment(unheard: UnheardAnswer, then: str = ASKED_AGAIN) -> str:
    """The comment of an ``unheard`` entry: the answer as an answer is recorded, and why it was
    not acted on, then what became of the rollout (``then``: the resumed rollout asks again, say)."""
    return (f"{answer_comment(unheard.answer.action, unheard.answer.comment)}{_given_to(unheard)}, "
            f"{UNHEARD_AFTER}: it last said it waited at {utc(unheard.silent_since)}; not acted on, {then})")


def unheard_answer(comment: str | None) -> str:
    """The answer an ``unheard`` entry's ``comment`` records, as ``answer_comment`` recorded it
    ("approve: looks fine"), without what ``unheard_comment`` says of it after: up to the last "given
    to flow run", since the person's words come first and may say it too."""
    return (comment or "").rsplit(_GIVEN_TO, 1)[0]


def unheard_transitions(unheard: list[UnheardAnswer], at: float, then: str = ASKED_AGAIN,
                        history: Sequence[Transition] = ()) -> list[Transition]:
    """The ``unheard`` history entries of ``unheard``, stamped ``at`` (the rollout clock), each at the
    stage its pause asked about (``answered_stage`` in ``history``, the rollout's as it stands: none
    given, none is recorded, and the reports place it themselves)."""
    return [Transition(at=at, kind=UNHEARD, actor=u.answer.approver, comment=unheard_comment(u, then),
                       verdict=u.question, to_stage=answered_stage(u.question, history))
            for u in unheard]


def answered_stage(question: str | None, history: Sequence[Transition]) -> int | None:
    """The stage index the pause an answer to a dead paused run answered asked about, from the
    rollout's ``history`` up to the answer's entry: its newest pause entry asking ``question`` (the
    form's, ``UnheardAnswer.question``), else its newest pause entry (a run that died paused pauses no
    more); None when it has none. Recorded after the rollback its answer did not stop (the rollback
    flow writes it once the traffic is back), the answer was placed by the wait it closed, which the
    rollback had ended: it showed at no stage."""
    pauses = [t for t in history if t.kind == "pause" and t.to_stage is not None]
    asked = " ".join((question or "").split())
    named = next((t for t in reversed(pauses) if asked and asked in " ".join(f"{t.comment or ''} {t.verdict or ''}".split())), None)
    found = named or (pauses[-1] if pauses else None)
    return None if found is None else found.to_stage


def not_yet_recorded(unheard: list[UnheardAnswer], history: Sequence[Transition]) -> list[UnheardAnswer]:
    """Those of ``unheard`` that ``history`` has no ``unheard`` entry for: `rollway abort` records
    them before the rollback it runs, which looks again once the traffic is back. An entry is
    known by who answered and the run and time it names; how it ends differs with who wrote it."""
    recorded = [t for t in history if t.kind == UNHEARD]
    return [u for u in unheard
            if not any(t.actor == u.answer.approver and _given_to(u) in (t.comment or "") for t in recorded)]
