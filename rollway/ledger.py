"""The rollout ledger's records: where a rollout stands and every transition it went through.

Pure data, plus the rules every Ledger implementation shares (who may start a rollout, take
the lease, write; which fields a write may change). ``rollway.aws.ledger`` stores it in
DynamoDB; ``rollway.fakes`` keeps it in memory.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from rollway.errors_pickle import PicklableError
from rollway.model import ShiftedRule, Weights
from rollway.one_line import on_one_line, shown
from rollway.phases import RolloutPhase

if TYPE_CHECKING:  # the spec module does not need the ledger; only the annotation does
    from rollway.report import RollbackResult
    from rollway.spec import RolloutSpec


class LedgerError(RuntimeError):
    """Base of the ledger's named errors."""


class RolloutInProgress(LedgerError):
    """Another, unfinished rollout of the same service exists."""


class LockHeld(LedgerError):
    """Another run owns the rollout and its lease has not expired."""


class NotOwner(LedgerError):
    """A write from a run that no longer owns the rollout (another run took it over, or it was released)."""


class RolloutEnded(LedgerError):
    """The rollout is being or has been rolled back: the run that owned it must stop acting."""


class RolloutClosed(RolloutEnded):
    """A rollback found its rollout closed (already rolled back, or promoted with its monitoring
    window over) when it came to record its start: nothing was written, and it must not act.

    Raised by the ledger write itself, so two rollbacks that both read the rollout open cannot
    both begin: the second would move the traffic and page people again.
    """


class WindowClosed(RolloutClosed):
    """The rollout a rollback found closed is promoted, its monitoring window over: the release is
    production and nothing moved (not rolled back by another run). Said by the refusal itself, so
    that its caller need not read the ledger again (a read throttled then said "rolled back").
    ``window``: the same without "this rollback ... pages anyone", for a caller that pages (the
    monitoring window's "Breach not rolled back" page said it paged nobody)."""

    window: str = ""


class RollbackClaimed(PicklableError, RolloutEnded):
    """Another rollback of the rollout is under way: it holds the rollback's claim, and its lease
    has not lapsed. This one must not act (it would move the traffic and page people again): it
    waits for that one to end, or, once its holder died and the lease lapsed, takes it over.

    Attributes:
        holder: who holds the claim (actor, and the flow run or process).
        expires: when the claim lapses unless its holder renews it (wall clock, epoch seconds).
        waited: wall seconds this rollback already waited for the holder before giving up (0: it
            did not wait); the failed run's hook then does not wait for it all over again.
    """

    def __init__(self, message: str, *, holder: str, expires: float, waited: float = 0.0) -> None:
        super().__init__(message)
        self.holder, self.expires, self.waited = holder, expires, waited

    @property
    def holder_shown(self) -> str:
        """``holder`` as a person reads it, in a log line or a message: on one line, escaped
        (``on_one_line``). As the ledger has it, a name with an escape sequence in it acted on the
        terminal reading the log."""
        return on_one_line(self.holder)


class RolloutMovedOn(LedgerError):
    """Someone else wrote the rollout while this run waited (for an approval): its answer is stale."""


class WindowUnrecorded(LedgerError):
    """A passed stage's window a look would judge could not be recorded in the ledger
    (``PassedLooks``): the look is not judged, since the shares of the alpha are counted there."""


class RolloutSuperseded(LedgerError):
    """A write meant for one rollout found another one the service's newest: it is not applied.

    Lease-free writes (a rollback's) would otherwise land on whatever rollout is newest when
    they arrive: a late rollback of one rollout would end the next one.
    """


class RolloutNotFound(LedgerError):
    """No rollout recorded for that service."""


class MalformedRollout(LedgerError):
    """A rollout item in the table that rollway cannot read (edited by hand, or written by
    another release): named, so a person can repair or remove it."""


class RollbackUnrecorded(PicklableError, LedgerError):
    """A rollback moved the traffic back to the stable version, but the ledger could not record it.

    Raised after the rollback acted, so that the run fails where people look and nobody
    believes a record that still shows the rollout in its old phase.

    Attributes:
        result: what the rollback did and read back.
        failure: what the ledger could not record, and the storage's own words for why.
        rollout_id: the rollout the ledger shows (None: the ledger could not even be read).
        phase: the phase the ledger still shows it in (None: as for ``rollout_id``).
        facts: the message, one sentence per fact (``rollway abort`` prints one per line).
    """

    def __init__(self, service: str, result: "RollbackResult", failure: str, *,
                 rollout_id: str | None, phase: RolloutPhase | None) -> None:
        self.result, self.failure, self.rollout_id, self.phase = result, failure, rollout_id, phase
        which = f"rollout {rollout_id}" if rollout_id is not None else "the rollout"
        shown = (f"The ledger still shows {which} of {service} as {phase.value}: do not trust it until the "
                 "rollback is recorded." if phase is not None
                 else f"Nothing about this rollback of {service} is in the ledger.")
        self.facts = (
            f"The traffic was moved back to the stable version: the load balancer holds {result.weights} "
            f"(stable/canary), read back after the rollback; the canary is at {result.canary_desired} tasks.",
            f"The ledger could not record {failure}.",
            shown,
            "Fix the ledger (the rollout item's size, the table, permissions or throughput), then run "
            "`rollway abort` or the rollback flow again: it is idempotent and records the rollback.",
        )
        super().__init__(" ".join(self.facts))


class Transition(BaseModel):
    """One entry of the append-only history."""

    model_config = ConfigDict(frozen=True)

    at: float
    kind: str = Field(description="start, shift, verdict, pause, approve, reject, hold, timeout, adopt, rollback-start, notifying, notified, notice-failed, notice-unanswered, rollback-stopped, rollback, promote, phase, resume, takeover, unheard, not-applied, flag, decommission, decommission-paged, decommission-page-refused, window-page-refused, watched, breach-not-rolled-back, breach-accepted, monitor")
    actor: str
    from_weights: Weights | None = None
    to_weights: Weights | None = None
    from_stage: int | None = None
    to_stage: int | None = None
    verdict: str | None = Field(default=None, description="verdict summary a person can read")
    comment: str | None = None
    # A rollback's end (kind "rollback") records what it did that nothing else keeps: the id SNS
    # gave its notice (None: not notified, or recorded before ids were kept), the task
    # definition it pointed the canary service back at, and the one the stable service ran when
    # it took all the traffic (what users got: the canary's restored one need not be it).
    message_id: str | None = Field(default=None, description="SNS message id of the notice a rollback sent")
    task_definition: str | None = Field(default=None, description="task definition a rollback restored on the canary")
    # A rollback's notifying entry records the wall-clock time beside ``at`` (the rollout clock): the
    # page of a run finishing it says when people may have been paged, and under a sped-up clock
    # (`rollway up`'s) ``at`` runs hours ahead of that. None: recorded before it was kept. A
    # decommission's too: a page sent late says when, and a decommission without one was recorded
    # before its page was tracked (``rollway.decommission_page``).
    # A rollback's start, stop and end keep it too: the incident report's time to restore is their
    # wall span, the two stamped on different clocks (`rollway abort` on real time, a run on 60x).
    wall: float | None = Field(default=None, description="wall-clock epoch seconds of a rollback's notifying entry, "
                                                         "start, stop or end, or of a decommission")
    # A rollback's end (or its stop once the traffic was back) is written after the canary, the flags
    # and the page (SNS may take a minute): the incident report's time to restore counts to this instead.
    verified_wall: float | None = Field(default=None, description="wall-clock epoch seconds a rollback's read-back "
                                                                  "verified all the traffic on stable, on its end or "
                                                                  "stop (None: recorded before it was kept)")
    stable_task_definition: str | None = Field(
        default=None, description="task definition the stable service ran when a rollback put all the traffic on it, "
                                  "or, on a finalize's start, the copy of a deregistered promoted revision it takes")
    # The Prefect flow run that wrote the entry under the rollout's lease, so a person reading a
    # report can find it in the UI: the owner is recorded only while it holds the lease, and
    # released when it ends. Set on a rollout's start, on each run's first write and on a pause
    # (None: no flow run, or recorded before runs were).
    run: str | None = Field(default=None, description="flow run that wrote it: '<name> (<id>)'")
    # An answer to a pause asked more than once (each timeout whose policy holds asks it again)
    # says how many times: those askings have no entry each (``OpenPause``), and the report's
    # row of the answer says how long it went unanswered.
    asked: int | None = Field(default=None, description="times the pause an answer answers was asked, when more "
                                                        "than once (None: once, or recorded before it was kept)")
    # A not-applied answer's ``at`` is when the run read it, which an outage may have put long after
    # the person gave it: when they did is kept beside it, on the wall clock (Prefect's own stamp).
    answered_at: float | None = Field(default=None, description="wall-clock epoch seconds a not-applied answer was "
                                                                "given (None: not known, or recorded before it was kept)")
    # A person who judged a breach not rolled back harmless finalizes all the same, on the record:
    # the acceptance names the breach it covers by its time, so that a breach recorded after it
    # stands again (``rollway.finalize.unhandled_breach``).
    breach_at: float | None = Field(default=None, description="on a breach-accepted entry, the time (``at``) of the "
                                                              "breach-not-rolled-back entry it accepts")


REFUSED = "refused"
"""The kind shown for a ``RefusedAnswer`` where one is listed beside the history (`rollway status`, the
report's timeline): never the kind of an entry stored in the history."""


class RefusedAnswer(BaseModel):
    """An answer to a pause that its run refused (a ``next_weight`` that is no later stage, or given
    at a pause the judge could not decide): the run asked again, and nothing else was written. Or
    one `rollway promote`, `hold` or `abort` could not give the run (another answered first, the
    pause timed out, the run was found silent): its ``reason`` names the command.

    Kept in the record's ``refused_answers``, beside the history and not in it: the history's
    newest entry is what the rollout is taken to be doing (``history[-1].kind`` is read by status,
    resume, finalize, the weekly schedule, the pause's dedup and the reports), and a refused answer
    changes none of that: the pause is still open. An entry of its own kind there would have had
    every one of those reads skip it, and a release reading the ledger without knowing it would
    have taken a paused rollout for one no longer paused; a field it does not know it ignores.
    """

    model_config = ConfigDict(frozen=True)

    at: float = Field(description="when the run refused it (rollout clock, as the history's entries)")
    actor: str = Field(description="who answered")
    action: str = Field(description="what they answered: approve, reject or hold")
    next_weight: int | None = Field(default=None, description="the weight they asked to skip to, if any")
    comment: str | None = None
    to_stage: int | None = Field(default=None, description="the stage index the pause asked about")
    question: str | None = Field(default=None, description="the pause's reason, as its answers record it")
    reason: str = Field(description="why the run refused it, as the next form said")
    run: str | None = Field(default=None, description="flow run that refused it: '<name> (<id>)'")
    # Which pause it answered is told by recording order, as RolloutRecord.refused_dropped_before
    # tells which those dropped may have (``refused_after``). Set by Ledger.refuse alone, whatever
    # its caller gave. None: recorded before it was kept, or its list rewritten by such a rollway.
    recorded_after: int | None = Field(default=None, ge=0, description=(
        "how many entries the history held as the ledger read it to record this answer: it was given after "
        "each of them (None: not known, told by its time, at, against the entries', as before)"))

    def said(self) -> str:
        """What was answered, without the comment: ``approve (next_weight 50%)``."""
        return self.action + (f" (next_weight {self.next_weight}%)" if self.next_weight is not None else "")

    def as_transition(self) -> Transition:
        """The refusal as a history row, kind ``refused``, to list it among the history's entries;
        never stored in the history (see the class)."""
        said = answer_comment(self.said(), self.comment or "")
        return Transition(at=self.at, kind=REFUSED, actor=self.actor, to_stage=self.to_stage,
                          comment=f"{said}; refused: {self.reason}", verdict=self.question, run=self.run)


REFUSED_KEPT = 200
"""The most refused answers a rollout records (``Ledger.refuse``): past it, the oldest are dropped."""

REFUSED_BYTES = 100_000
"""The most bytes its refused answers take, as JSON: 200 answers with 2,000-character comments
would take more than DynamoDB's 400 KB item limit alone."""


def may_have_dropped(answers: tuple[RefusedAnswer, ...]) -> bool:
    """Whether a rollway that did not count the refused answers it dropped (``refused_dropped``
    came later) may have dropped some older than ``answers``: any list it kept may have lost some.
    It dropped at ``REFUSED_KEPT`` answers or past ``REFUSED_BYTES``, and capped no answer's actor,
    question or reason: one answer of nearly the whole bytes, dropped to make room for the next,
    left a list as short as that one answer, so no size of the list kept tells that it lost none
    (a test of more than half the bytes read such a list as every one there was). An empty one
    lost none: a drop keeps the answer it made room for.
    """
    return bool(answers)


class RefusalsFull(LedgerError):
    """A refused answer that alone takes more than the refused answers may (``refusals_kept``): it was not recorded."""


def refusals_kept(record: "RolloutRecord", answer: RefusedAnswer) -> tuple[tuple[RefusedAnswer, ...], int | None]:
    """``record``'s refused answers with ``answer`` appended, the oldest dropped while they are more
    than ``REFUSED_KEPT`` or take more than ``REFUSED_BYTES``; and how many the rollout has dropped
    then, those before included (``RolloutRecord.refused_dropped``; None: not known), written with
    them. Unbounded, a script answering in a loop grew the item towards DynamoDB's 400 KB limit,
    past which every write of the rollout failed, its rollback's too. Bounded by refusing the
    newest, the answer lost was the one that matters: a refusal at the pause asked now, which the
    run resuming the rollout reads to ask it anew (``rollway.approvals``) and status shows, while
    those of pauses long answered stayed.

    Raises:
        RefusalsFull: ``answer`` alone takes more than ``REFUSED_BYTES`` (or none are kept); nothing
            of the rollout is affected.
    """
    kept = (*record.refused_answers, answer)
    sizes = [len(r.model_dump_json().encode()) for r in kept]
    size, dropped = sum(sizes), 0
    while dropped < len(kept) and (len(kept) - dropped > REFUSED_KEPT or size > REFUSED_BYTES):
        size -= sizes[dropped]
        dropped += 1
    if dropped < len(kept):
        # Not counted before (None): how many were dropped stays unknown, whatever this drop adds.
        return kept[dropped:], None if record.refused_dropped is None else record.refused_dropped + dropped
    raise RefusalsFull(
        f"a refused answer to rollout {record.rollout_id!r} of service {record.service!r} ({sizes[-1]:,} bytes) does "
        f"not fit in the refused answers it keeps (at most {REFUSED_KEPT} answers, {REFUSED_BYTES // 1000} KB), which "
        "keep its ledger item under DynamoDB's 400 KB limit, past which no write of the rollout is recorded. This "
        "refused answer was not recorded; nothing else of the rollout changed")


def history_index(record: "RolloutRecord", entry: Transition) -> int | None:
    """Where ``entry`` is in ``record``'s history: the entry itself, else an equal one (a copy the
    reports made of it), the newest; None when it holds neither."""
    at = next((i for i, held in enumerate(record.history) if held is entry), None)
    if at is None:
        at = next((i for i in reversed(range(len(record.history))) if record.history[i] == entry), None)
    return at


def refused_after(record: "RolloutRecord", answer: RefusedAnswer, entry: Transition) -> bool:
    """Whether the refused ``answer`` was recorded after ``entry`` of ``record``'s history (a pause:
    whether it may have been given to it). Told by recording order (``RefusedAnswer.recorded_after``):
    the answers' and the entries' times are their writers' clocks, which may disagree, and an answer
    stamped before the pause it was given to was read as given to the pause before, or to none. An
    answer recorded before the order was kept (None), or an entry the history does not hold, is
    told by time, as then: at or after the entry's."""
    at = history_index(record, entry) if answer.recorded_after is not None else None
    return answer.at >= entry.at if at is None else at < answer.recorded_after


def dropped_may_answer(record: "RolloutRecord", pause: Transition) -> bool:
    """Whether refused answers the ledger dropped past the bound (``refused_dropped``) may have been
    given to ``pause``, an entry of ``record``'s history. Only a total is counted, not whom or when
    they answered; every one was recorded before the drop, written while the history held
    ``refused_dropped_before`` entries, so a pause recorded at that index or later was asked about
    none of them, and one before it may have been about any. Told by position: the answers' and the
    pauses' times are their writers' clocks, which may disagree (``RolloutRecord.refused_dropped_before``).
    Not known how many (None), or when (recorded before it was kept): any pause may have been."""
    if record.refused_dropped == 0 or not record.refused_answers:
        return False  # a drop keeps the answer it made room for
    before = record.refused_dropped_before
    if record.refused_dropped is None or before is None:
        return True
    at = history_index(record, pause)  # of equal ones, the newest: the nearest the drop
    return at is None or at < before


def dropped_at_said(record: "RolloutRecord", pause: Transition, to: str = "it") -> str:
    """That refused answers the ledger dropped may have been given to ``pause`` (named ``to``), and
    up to how many; "" when none can have been (``dropped_may_answer``)."""
    if not dropped_may_answer(record, pause):
        return ""
    dropped = record.refused_dropped
    if dropped is None and record.refused_dropped_least:  # some were, how many more is not known
        return (f"refused answers no longer kept (at least {record.refused_dropped_least}, how many more is not "
                f"known) may have been given to {to}")
    if dropped is None:  # as the reports' count of them says it: maybe none was dropped
        return f"refused answers dropped uncounted, if any were, may have been given to {to}"
    some = f"up to {dropped} refused answers" if dropped != 1 else "a refused answer"
    return f"{some} no longer kept may have been given to {to}"


class OpenPause(BaseModel):
    """The pause a rollout's run waits at now, and the question it asks: written with every asking,
    cleared by the answer (a timeout whose policy holds is no answer: the pause is asked again).

    A pause nobody answers is asked again after each timeout, for as long as nobody does, and its
    cause may change from one asking to the next (metrics unreadable at one, readable but
    inconclusive at the next). The history records each question once per wait and one timeout
    (an entry per asking grew the item towards DynamoDB's 400 KB limit), so its newest pause entry
    need not be the question asked now: `rollway status` and the reports read that here. Records
    written before it was kept read the question from the history, as they always did.
    """

    model_config = ConfigDict(frozen=True)

    stage: int = Field(description="the stage index the pause asks about")
    cause: str = Field(description="why it asks now: approval, inconclusive or metrics")
    question: str = Field(description="the question asked now, with its deadline, as a pause entry's comment says it")
    since: float = Field(description="when the wait began: its first asking (wall clock, as the deadlines)")
    asked: int = Field(default=1, description="times it has been asked since, this asking included")
    causes: tuple[str, ...] = Field(default=(), description="the causes it was asked for, in the order first asked")
    notice_refused: str | None = Field(
        default=None, description="why its newest \"Rollout waits for a person\" notice was not sent, or (notice_lost) "
                                  "may not have been: SNS's answer (None: sent, or not recorded)")
    # Older records lack it and read as a refusal, as they were said before.
    notice_lost: bool = Field(
        default=False, description="``notice_refused`` is a lost answer: SNS may have delivered the notice (so it "
                                   "may not have been sent, not \"not sent\"), not a refusal")
    # The run asking now, which a person answers: a run that took the rollout over from one that died
    # waiting asks the same pause (one history entry, naming the dead run).
    run: str | None = Field(default=None, description="flow run asking it now: '<name> (<id>)' (None: not recorded)")
    answers_unread: float | None = Field(
        default=None, description="when the run that took the rollout over could not read from the Prefect API (or "
                                  "record in the ledger) the answers its run was given after that run stopped saying "
                                  "it waits (wall clock): one may be a person's, so the pause is asked anew, its "
                                  "timeout no \"no answer\"; kept while the pause stays open, for it is asked anew "
                                  "once (None: read, or not tried)")
    # Who answered is known when the answers were read and only their record failed: said as
    # "could not be read, or recorded", the person who had answered read that nobody knew of it.
    answers_unrecorded: str | None = Field(
        default=None, description="at ``answers_unread``, the answers read but not recorded in the ledger, who gave "
                                  "what (``unheard_said``); None: they could not be read (``answers_not_read``), or, "
                                  "without that, recorded by an older version, which kept no word of which")
    # Beside ``answers_unrecorded``, not in it: a version before this field reads None as "could not
    # be read", as it wrote it, and ignores a field it does not know; an empty ``answers_unrecorded``
    # it said as answers read and not recorded, naming nobody.
    answers_not_read: bool | None = Field(
        default=None, description="at ``answers_unread``, True: the answers could not be read from the Prefect API "
                                  "at all (None: read and not recorded, ``answers_unrecorded``, or recorded by an "
                                  "older version, which kept no word of which)")
    answers_unread_again: float | None = Field(
        default=None, description="when a later run taking the rollout over could not read (or record) the answers "
                                  "given to the run it took over from, the pause asked anew already (wall clock; the "
                                  "newest such): its deadline passing is then no \"no answer\" either (None: none)")
    answers_unrecorded_again: str | None = Field(
        default=None, description="at ``answers_unread_again``, the answers read but not recorded, as "
                                  "``answers_unrecorded`` (None: they could not be read)")


class OpenWindowEnd(BaseModel):
    """What the two ways a watched window ends open (``UnverifiedWindow``, ``KeptForTraffic``) both
    record: when, and whose run; and, in records written since they were kept, that run's lease
    owner (to tell it from a run watching the window again, whose own end replaces it) and the old
    service it kept (the record names only the canary's)."""

    model_config = ConfigDict(frozen=True)

    at: float = Field(description="when the window ended (rollout clock, as the history's entries)")
    actor: str = Field(description="whose run watched it")
    owner: str | None = Field(default=None, description="the lease owner of the run that recorded it (None: recorded "
                                                        "before it was kept, or by a run holding no lease)")
    stable_service: str | None = Field(default=None, description="the old service the window kept (None: recorded "
                                                                 "before it was named)")


class UnverifiedWindow(OpenWindowEnd):
    """How the newest monitoring window of a promotion that did not pass cleanly ended: how many of
    its looks counted requests to the new version, of how many. Such a window keeps the old service
    and stays open (the next monitor run, or the weekly tick, watches again), and it wrote nothing:
    `rollway status` could only say that no run had closed it.

    Kept in the record's ``unverified_window``, beside the history and not in it, as
    ``RefusedAnswer`` is and for its reason: the history's newest entry is what the rollout is taken
    to be doing (the promotion, whose window is still open), and an entry there would have had
    every reader of ``history[-1]`` skip it. Replaced by the next unverified end, and cleared
    (None) by the run that verifies the window, in the lease renewal it writes before closing it
    (or before keeping the old service for traffic moved back by hand): a window that closes says
    its own counts in its closing entry. Readers take it through ``owed_unverified``, which leaves
    out counts that no longer describe the window owed (a rollback, or a record written before
    runs cleared it).
    """

    counted: int = Field(description="looks that counted requests to the new version")
    looks: int = Field(description="looks the window made")
    failed: int = Field(default=0, description="looks whose read of the metrics failed (of the others)")
    last_unread: str | None = Field(
        default=None, description="why the final look could not read the window's last period, which was then not "
                                  "judged (None: it was read, or recorded before this was kept); with "
                                  "unjudged_from, why the periods no look had judged could not be read")
    unjudged_from: float | None = Field(
        default=None, description="the start of the window's periods no look had judged that its final look could "
                                  "not read (rollout clock; None: none, or recorded before this was kept)")
    unjudged_to: float | None = Field(default=None, description="the end of those periods (rollout clock)")
    # Apart from the periods the final look could not read: these no look could read any more, and
    # said as the final look's failed read, they sent people to mend a CloudWatch that had answered.
    aged_out: str | None = Field(
        default=None, description="how long CloudWatch keeps the window's periods (\"1-minute data for 15 days\") "
                                  "when some that no look had judged were older than that (a window resumed that "
                                  "late), so not judged; None: none were (or recorded before this was kept)")
    aged_out_from: float | None = Field(default=None, description="the start of those periods (rollout clock)")
    aged_out_to: float | None = Field(default=None, description="the end of those periods (rollout clock)")


class KeptForTraffic(OpenWindowEnd):
    """How the newest monitoring window of a promotion ended when it passed cleanly but kept the old
    service because traffic was back on it (put back by hand): a scale-down would have dropped that
    share of requests. Such a window stays open (put all of the traffic back on the new version, and
    the next monitor run or weekly tick closes it), and wrote nothing: `rollway status` said "no run
    closed it (the run watching it stopped, or too few looks ...)", neither of which was so.

    Kept in the record's ``kept_for_traffic``, beside the history, for ``UnverifiedWindow``'s reason;
    the two are the two ways a watched window ends open, and each run's end replaces the other's
    (a window that closes clears both). Readers take it through ``owed_kept``.
    """

    stable: int = Field(description="the percent of traffic the old service still carried at the window's end")


class PassedLooks(BaseModel):
    """The windows the looks at a passed stage judged (``rollway.decide.window_looked``), whichever
    run made them: each window a test of its own, the ``windows``-th at its share of the alpha
    (``rollway.judge.window_alpha``). Written before the first look at each window judges it.

    Counted by the time since the pass instead, a run resuming the rollout a day after its run died
    judged its first window at the share of the 287th or a later one (an alpha of 1e-9 while the
    shares were halved): the windows nobody looked at meanwhile, never tested, had their share spent
    all the same, and a canary that went bad meanwhile was all but unjudged.
    """

    model_config = ConfigDict(frozen=True)

    stage: int = Field(description="the stage index whose pass the windows follow")
    window: float = Field(description="when the newest window looked at begins (rollout clock)")
    windows: int = Field(ge=1, description="windows looked at since the pass, that one included")


class RolloutRecord(BaseModel):
    """One rollout of one service.

    ``stage_index`` is the index into the spec's stages of the last stage whose weights were
    set and verified (-1: none yet). ``stage_passed`` says whether that stage's bake passed,
    so a resumed run knows whether to bake again or move on, and never repeats a shift.
    """

    model_config = ConfigDict(frozen=True)

    service: str
    rollout_id: str
    image: str
    spec_json: str = Field(description="the RolloutSpec the rollout runs, as JSON")
    phase: RolloutPhase = RolloutPhase.PENDING
    stage_index: int = -1
    stage_passed: bool = False
    stage_started_at: float | None = Field(default=None, description="when the current stage's weights were verified")
    approved_stage: int | None = Field(default=None, description="stage index a person approved moving to")
    weights: Weights = Weights(stable=100, canary=0)
    weekly_phase_index: int = Field(default=-1, description="last weekly phase started (-1: none)")
    weekly_phase_passed: bool = False
    weekly_phase_started_at: float | None = Field(default=None, description="when the current weekly phase started")
    phased: bool = Field(default=True, description="whether the run driving it stops at the end of each weekly phase "
                                                   "(the watchdog resumes a dead run the same way)")
    canary_task_definition: str | None = None
    previous_task_definition: str | None = None
    stable_desired: int | None = Field(default=None, description="tasks the stable service needs to carry all traffic")
    monitor_until: float | None = Field(
        default=None, description="end of the post-promotion window, recorded with the promotion (None: no window "
                                  "was recorded; records from before windows without a decommission)")
    owner: str | None = None
    lease_expires: float = Field(
        default=0.0, description="when the owner's lease runs out unless renewed (wall clock; records written before "
                                 "leases were on the wall clock hold a rollout-clock time, the same at speed 1)")
    # Judged by the tick that finds the owner's run not ended and its lease lapsed: hung only once a
    # whole lease of the owner's own has passed since (a tick of a shorter lease called a live run hung).
    lease_seconds: float | None = Field(
        default=None, description="the length of the lease the owner last took or renewed (wall seconds; None: "
                                  "recorded before it was kept)")
    rollback_holder: str | None = Field(
        default=None, description="who is carrying out the rollback (phase rolling_back): actor and flow run or process")
    rollback_expires: float = Field(
        default=0.0, description="when the rollback's claim lapses unless its holder renews it (wall clock; as "
                                 "lease_expires for records written before)")
    version: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    history: tuple[Transition, ...] = ()
    asked_until: float | None = Field(
        default=None, description="when the question of the pause its run waits at times out (wall clock), written "
                                  "each time the pause is asked, again included: a pause asked again (after a "
                                  "timeout whose policy holds) adds no history entry (None: recorded before)")
    open_pause: OpenPause | None = Field(
        default=None, description="the pause its run waits at and the question it asks now (OpenPause): written "
                                  "with each asking, cleared by the answer (None: none, or recorded before it was "
                                  "kept: the history's pause entries say it)")
    pinned_image: str | None = Field(
        default=None, description="the image the canary's revision names: the spec's image pinned to the digest "
                                  "its tag named when the rollout started (None: recorded before images were pinned)")
    refused_answers: tuple[RefusedAnswer, ...] = Field(
        default=(), description="answers to its pauses that their run, or the command giving them, refused, in the "
                                "order recorded (RefusedAnswer; appended only, by Ledger.refuse, the oldest "
                                "dropped past REFUSED_KEPT or REFUSED_BYTES): beside the history, which they "
                                "leave as it was")
    refused_dropped: int | None = Field(
        default=0, ge=0, description="how many of its refused answers were dropped past the bound (written with "
                                     "refused_answers, by Ledger.refuse alone): status and the report say so, "
                                     "or the answers kept read as every one there was (0: none, or recorded "
                                     "before they were counted with none kept; None: not known, recorded "
                                     "before they were counted with some kept (may_have_dropped), or a count "
                                     "a rollway from before it may have dropped some beside (its oldest "
                                     "answer kept not the one counted with), never stored)")
    # Those counted were dropped whatever else was: a count read as not known still tells the least
    # there were, where status and the report said only that some "may have been" dropped.
    refused_dropped_least: int | None = Field(
        default=None, ge=0, description="while refused_dropped is not known (None): how many were dropped at "
                                        "least, those counted before the count was found not to tell every drop, "
                                        "and those Ledger.refuse dropped since (written by it alone; None: none "
                                        "known)")
    # Which pauses those dropped may have answered is told by recording order, not by the answers'
    # times: each is its writer's clock (the run's, or `rollway promote`'s machine), and another
    # machine's clock behind the run's stamped an answer given to a pause before the pause.
    refused_dropped_before: int | None = Field(
        default=None, ge=0, description="how many entries the history held when refused answers were last "
                                        "dropped (written with refused_dropped, by Ledger.refuse alone): every "
                                        "answer dropped was recorded before its entry at that index, so a pause "
                                        "recorded there or later was given none of them (None: none dropped, or "
                                        "dropped before it was kept: any pause may have been)")
    unverified_window: UnverifiedWindow | None = Field(
        default=None, description="how its newest monitoring window that did not pass cleanly ended, the window "
                                  "left open (UnverifiedWindow): beside the history, which it leaves as it was; "
                                  "cleared by a run whose window passes (read through owed_unverified)")
    shifted_rule: ShiftedRule | None = Field(
        default=None, description="the listener rule its shifts write and the two target groups they shift the "
                                  "traffic between (ShiftedRule), written when its canary is deployed and with each "
                                  "shift: a rollback moves the traffic over this rule, or over one found on its path "
                                  "only if it forwards to both groups (None: recorded before it was kept)")
    kept_for_traffic: KeptForTraffic | None = Field(
        default=None, description="how its newest monitoring window ended when it passed cleanly but kept the old "
                                  "service for the traffic still on it, the window left open (KeptForTraffic): "
                                  "beside the history; cleared by a run whose window closes or ends unverified (read "
                                  "through owed_kept)")
    passed_looks: PassedLooks | None = Field(
        default=None, description="the windows the looks at its passed stage judged, counted across runs "
                                  "(PassedLooks; None: none yet, or recorded before they were counted)")

    def last_transition(self, kind: str) -> Transition | None:
        """The newest transition of ``kind`` in the history, or None."""
        return next((t for t in reversed(self.history) if t.kind == kind), None)

    def newest_while_promoted(self, *kinds: str) -> Transition | None:
        """The newest transition of any of ``kinds`` of a promoted rollout, or None (not promoted,
        or none of them): which of them came last says whether a notice of the promotion (the
        decommission's page, a window end's page, the "Finalized" notice) is owed, sent, or old news."""
        if self.phase is not RolloutPhase.PROMOTED:
            return None
        return next((t for t in reversed(self.history) if t.kind in kinds), None)


def rollback_start(record: RolloutRecord) -> Transition | None:
    """The rollout's ``rollback-start``: what triggered its rollback (who, why), or None.

    The first one: ``begin_rollback`` writes one per rollout, but records written before it
    did can hold a second, by a rollback that took over one that died, and that one is not
    what triggered the rollback."""
    return next((t for t in record.history if t.kind == "rollback-start"), None)


NOTIFIED = "notified"
"""The history entry of a rollback's notice sent (its SNS message id), recorded right after the
publish: a rollback that dies before recording its end is finished by another, which must not page
people a second time for the same rollback."""


def notice_sent(record: RolloutRecord | None, rollout: str | None) -> Transition | None:
    """The notice the rollback under way of ``rollout`` already sent, as recorded, or None.

    Only while ``record`` is that rollout and still rolling back: one rollout has one rollback,
    so a ``notified`` entry in it is this rollback's. Recorded after the publish, never before, so
    a notice that failed (or a rollback that died before sending it) leaves none, and the rollback
    run again sends it."""
    if record is None or rollout is None or record.rollout_id != rollout:
        return None
    if record.phase is not RolloutPhase.ROLLING_BACK:
        return None
    return record.last_transition(NOTIFIED)


NOTIFYING = "notifying"
"""The history entry of a rollback setting out to send its notice (who, when), recorded right
before the publish: with no ``notified`` after it, the run stopped (or its write of ``notified``
failed) somewhere between the two, and whether people were paged is not known."""

def notice_time(intent: Transition) -> str:
    """When the ``notifying`` entry ``intent`` set out to send the rollback's notice, for people:
    on the wall clock, labelled so, as they were paged by it; an entry recorded before its wall
    time was kept gives its own time (the rollout clock, real time but on a sped-up clock)."""
    return wall_utc(intent.wall) if intent.wall is not None else utc(intent.at)


NOTICE_FAILED = "notice-failed"
"""The history entry of a rollback's notice SNS did not take (the error in its comment, after
``NOTICE_NOT_SENT``, or ``NOTICE_UNREACHED`` when no attempt reached SNS), after its ``notifying``:
that rollback is known to have paged nobody, so the one run again does not say it may repeat a page."""

NOTICE_NOT_SENT = "the rollback's notice was not sent: "
"""How a ``notice-failed`` entry's comment begins, SNS's error after it: the reports quote the error
alone."""

NOTICE_UNREACHED = "the rollback's notice was not sent, SNS could not be reached: "
"""How the comment of a ``notice-failed`` entry begins when no attempt of the publish connected to
SNS (``rollway.aws.errors.never_reached``), botocore's error after it: SNS refused nothing, and the
reports say it could not be reached."""

ROLLBACK_STOPPED = "rollback-stopped"
"""The history entry of a rollback that stopped before it finished (a step failed): the steps it did
and those it did not in its comment (``rollback_stopped_comment``), the weights it read back (on
stable, or still on the canary when the traffic could not move; None: not read) and, once the traffic
was on stable, the task definition stable ran. The rollout stays rolling back; the reports and
`rollway status` say from it what was done, what users get until the rollback is run again, and what
that run has left to do."""

ROLLBACK_DONE = "done: "
ROLLBACK_NOT_DONE = "; not done: "


def rollback_stopped_comment(done: str, not_done: str) -> str:
    """A ``rollback-stopped`` entry's comment, which ``rollback_stopped_steps`` reads back."""
    return f"{ROLLBACK_DONE}{done}{ROLLBACK_NOT_DONE}{not_done}"


def rollback_stopped_steps(entry: Transition) -> tuple[str, str]:
    """(done, not done) of a ``rollback-stopped`` entry, as its rollback said them."""
    comment = (entry.comment or "").removeprefix(ROLLBACK_DONE)
    done, _, not_done = comment.partition(ROLLBACK_NOT_DONE)
    return done or "nothing", not_done or "not recorded"


NOTICE_UNANSWERED = "notice-unanswered"
"""The history entry of a rollback's notice whose publish lost SNS's answer (a read timeout, a
connection dropped after sending, an internal error: ``rollway.aws.errors.answer_lost``), the error
in its comment after ``NOTICE_ANSWER_LOST``, after its ``notifying``: SNS may have taken it, so
people may have been paged, and the rollback run again says its notice may repeat that one."""

NOTICE_ANSWER_LOST = "the rollback's notice may have been sent, SNS's answer was lost: "
"""How a ``notice-unanswered`` entry's comment begins, SNS's error after it."""


def notice_unconfirmed(record: RolloutRecord | None, rollout: str | None) -> Transition | None:
    """The newest ``notifying`` entry of ``rollout``'s rollback under way that may have paged
    people, or None: no ``notice-failed`` after it (SNS refused that one) and no ``notified``
    after it (SNS took a notice since). Its run stopped before recording SNS's answer, or recorded
    that the answer was lost (``notice-unanswered``, see ``notice_answer_lost``): the notice it
    set out to send may have gone out, so the one sent now says it may repeat it. A refused
    notice of a later run does not hide it: that one paged nobody, the earlier may have. Only
    while ``record`` is that rollout and rolling back, as ``notice_sent``."""
    if record is None or rollout is None or record.rollout_id != rollout:
        return None
    if record.phase is not RolloutPhase.ROLLING_BACK:
        return None
    refused = 0  # notice-failed entries not yet matched with the notifying entry before each
    for t in reversed(record.history):
        if t.kind == NOTIFIED:
            return None
        if t.kind == NOTICE_FAILED:
            refused += 1
        elif t.kind == NOTIFYING:
            if not refused:
                return t
            refused -= 1
    return None


def notice_answer_lost(record: RolloutRecord, intent: Transition) -> Transition | None:
    """The ``notice-unanswered`` entry recorded after ``intent`` (a ``notifying`` entry, as
    ``notice_unconfirmed`` returns it), or None: its run sent the notice and lost SNS's answer,
    rather than stopping before recording one."""
    after = record.history[record.history.index(intent) + 1:]
    for t in after:
        if t.kind == NOTIFYING:
            return None
        if t.kind == NOTICE_UNANSWERED:
            return t
    return None


def check_rolling_back(record: RolloutRecord) -> None:
    """Allow a write that belongs to a rollback under way (``record`` is rolling back).

    Raises:
        LedgerError: the rollout is not rolling back (its rollback ended, or none began).
    """
    if record.phase is not RolloutPhase.ROLLING_BACK:
        raise LedgerError(f"rollout {record.rollout_id!r} of service {record.service!r} is {record.phase.value}, "
                          "not rolling back")


# --- Rules every Ledger implementation shares (DynamoDB and the in-memory fake) -----------

RESERVED_ID_PREFIX = "~"
"""Rollout ids must sort before this: implementations keep bookkeeping items from it on."""

MANAGED_FIELDS = frozenset(
    {"service", "rollout_id", "owner", "lease_expires", "lease_seconds", "version", "created_at", "updated_at",
     "history", "refused_answers", "refused_dropped", "refused_dropped_before", "refused_dropped_least"}
)
"""Fields only the ledger itself writes (create, acquire, release, record, refuse); never ``**changes``:
``refused_answers`` is appended to by ``refuse`` alone, since a list set whole from what its writer
read drops what another appended in between (`rollway promote` refusing an answer, say), and
``refused_dropped`` counts what ``refuse`` dropped of it (``refused_dropped_before``: when)."""


_ID_STAMP = "%Y%m%dT%H%M%SZ"


def new_rollout_id(now: float, after: str | None = None) -> str:
    """A rollout id that sorts by creation time: ``20261129T063000Z-1a2b3c4d``.

    The random suffix keeps ids from two runs started in the same second apart; a ledger
    refuses an id that does not sort after the service's newest rollout.

    Args:
        now: creation time, seconds since the epoch.
        after: the service's newest rollout id, if any. A clock behind the one that stamped it
            (another worker's skew, or a previous run on a sped-up rollout clock) would make an
            id the ledger refuses, and no rollout could start until this clock caught up: the id
            is stamped a second after it instead.
    """
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime(_ID_STAMP)
    newest = after.split("-", 1)[0] if after else None
    if newest is not None and stamp <= newest:
        try:
            then = datetime.strptime(newest, _ID_STAMP).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:  # not an id of ours: the ledger decides
            pass
        else:
            stamp = datetime.fromtimestamp(then + 1, tz=timezone.utc).strftime(_ID_STAMP)
    return f"{stamp}-{secrets.token_hex(4)}"


UTC_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
"""How messages write an instant (``utc``); a pause's question is read back with it."""


def utc(seconds: float) -> str:
    """An epoch instant as a readable UTC time, for messages."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime(UTC_FORMAT)


def utc_read(said: str) -> float:
    """The epoch instant ``utc`` said as ``said``; ValueError when it is not such a time."""
    return datetime.strptime(said, UTC_FORMAT).replace(tzinfo=timezone.utc).timestamp()


def wall_utc(seconds: float, note: str = "") -> str:
    """An instant on the wall clock (a lease's or rollback claim's end) as a readable UTC time,
    labelled so, with ``note`` inside the label: the history's times beside it are on the rollout
    clock, hours apart from it under `rollway up`'s sped-up clock."""
    return f"{utc(seconds)} (wall clock{'; ' + note if note else ''})"


def check_new_rollout(newest: RolloutRecord | None, record: RolloutRecord) -> None:
    """Refuse to start ``record`` unless the service's newest rollout has finished.

    Raises:
        RolloutInProgress: ``newest`` is not terminal.
        ValueError: ``record``'s id is reserved or does not sort after ``newest``'s id.
    """
    if record.rollout_id >= RESERVED_ID_PREFIX:  # where bookkeeping items sort; never a rollout
        raise ValueError(f"rollout id {record.rollout_id!r} sorts at or after the reserved {RESERVED_ID_PREFIX!r}")
    if newest is None:
        return
    if not newest.phase.terminal:
        raise RolloutInProgress(
            f"service {record.service!r} already has rollout {newest.rollout_id!r} in phase "
            f"{newest.phase.value} (owner {newest.owner or 'none'}); finish, roll back or abort it first"
        )
    if record.rollout_id <= newest.rollout_id:
        raise ValueError(
            f"rollout id {record.rollout_id!r} does not sort after the newest rollout "
            f"{newest.rollout_id!r} of service {record.service!r}; make one with new_rollout_id(now, after=<that id>)"
        )


# A rollback (by the judge, a hook, or a person with `rollway abort` or the rollback flow) may
# act on a rollout whoever holds its lease. Once it has begun, no owner may take the lease or
# write progress, so a run still going cannot undo it by shifting traffic back to the canary.
ENDED_PHASES = (RolloutPhase.ROLLING_BACK, RolloutPhase.ROLLED_BACK)


def check_not_ended(record: RolloutRecord) -> None:
    """Refuse an owner's action on a rollout that is being or has been rolled back.

    Raises:
        RolloutEnded: naming who rolled it back and why.
    """
    if record.phase not in ENDED_PHASES:
        return
    by = _by(rollback_start(record) or record.last_transition("rollback"))
    raise RolloutEnded(
        f"rollout {record.rollout_id!r} of service {record.service!r} is {record.phase.value}{by}; "
        "this run stops without moving traffic"
    )


def _by(transition: Transition | None) -> str:
    """The " by <actor> at <time>: <comment>" of a message; empty without a transition, and no
    ": <comment>" for a transition recorded without one (it read ": None").

    The actor and the comment escaped (``shown``, its line breaks as ``\\n``, as the monitor quotes
    such a refusal): a person's name and words (a rejection's, an abort's reason), kept as typed,
    wrote lines of their own under the refusal in the run's log, and a right-to-left override
    reordered the words after it."""
    if transition is None:
        return ""
    said = f": {shown(transition.comment, keep='')}" if transition.comment else ""
    return f" by {shown(transition.actor, keep='')} at {utc(transition.at)}{said}"


def check_lease(record: RolloutRecord, owner: str, now: float) -> None:
    """Allow ``owner`` to take the lease: nobody holds it, ``owner`` does, or it expired at
    ``now`` (the wall clock, which stamps leases).

    Raises:
        RolloutEnded: the rollout is being or has been rolled back.
        LockHeld: another owner's lease runs at ``now``.
    """
    check_not_ended(record)
    if record.owner == owner or lease_free(record, now):
        return
    raise LockHeld(
        f"rollout {record.rollout_id!r} of service {record.service!r} is owned by "
        f"{record.owner!r} until {utc(record.lease_expires)} "
        f"({record.lease_expires - now:.0f} s from now); {owner!r} cannot take it"
    )


def lease_free(record: RolloutRecord, wall: float) -> bool:
    """Whether no run's lease keeps another from taking ``record``'s at ``wall`` (the wall clock):
    no owner is recorded, or its lease ran out before ``wall``. The rule the ledgers' writes judge
    by (``check_lease``, and the DynamoDB ledger's conditions), for runs deciding whether they
    could take the rollout.

    Any recorded owner holds the lease here, as the conditions on the stored item say;
    ``lease_held`` and ``lease_has_lapsed``, for what the readers tell people, name only a
    non-empty owner. They would differ only on an owner ``""``, which every write refuses
    (``check_names_somebody``), so none is stored."""
    return record.owner is None or record.lease_expires < wall


def lease_has_lapsed(record: RolloutRecord, wall: float | None) -> bool:
    """Whether the run named as ``record``'s owner stopped renewing its lease by ``wall`` (the wall
    clock, as leases are stamped): an owner is recorded and its lease ran out before ``wall``. At
    ``wall`` itself it is still held: ``check_lease`` lets another run take it only once
    ``lease_expires < now``, and the ledgers' conditional writes say the same.

    ``wall`` None: the time is not told, and no lapse is claimed (False), nor a holder
    (``lease_held``): callers say only what the record holds. Whether a lapse means anything (a
    paused run renews no lease; an ended rollout keeps its last owner) is left to the callers, as
    for ``claim_has_lapsed``; status, the reports, window_said and the run hooks all ask these two,
    so that they cannot disagree on one record at one instant."""
    return bool(record.owner) and wall is not None and record.lease_expires < wall


def lease_held(record: RolloutRecord, wall: float | None) -> bool:
    """Whether a run holds ``record``'s lease at ``wall`` (the wall clock; None: not told, so not
    known to be): an owner is recorded and its lease has not lapsed (``lease_has_lapsed``)."""
    return bool(record.owner) and wall is not None and not lease_has_lapsed(record, wall)


TAKEOVER = "takeover"
"""The history entry of a run taking over a rollout whose holder's lease lapsed."""
RECONCILE = "reconcile"
"""The actor of a shift a resumed run found on the load balancer and recorded: a run that died
moved the traffic after its last entry, and the shift is stamped when it was found."""
OWNER_PREFIX = "flow-run/"
"""A rollout owned by a flow run records ``flow-run/<id>`` as its owner (``flows.env.run_owner``)."""

UNHEARD = "unheard"
"""The history entry of an answer given to a paused run whose process had died: stored by
Prefect with the resume, never read by a run, so never acted on. Recorded by the run that takes
the rollout over (or by `rollway abort`, before its rollback), so the ledger still says who
answered, how, and that it was not acted on. Defined here, beside ``TAKEOVER``, since
``owed_rejection`` reads past both (rollway.approvals, which builds the entries, imports this
module)."""


NOT_APPLIED = "not-applied"
"""The history entry of an answer a run read only after it had rolled the rollout back (its look at
the canary ended the pause while the Prefect API could not be reached, and the answer could be read
once it answered again): written after the rollback's end, lease-free, by that run
(``flows.journal.LedgerJournal.not_applied``). Refused answers of an open pause are kept beside the
history (``RefusedAnswer``); a closed rollout takes no lease write, and its history's newest entry
no longer says what the rollout is doing."""


def takeover(record: RolloutRecord, owner: str, now: float) -> Transition | None:
    """The history entry for ``owner`` taking ``record``'s lease (``check_lease`` allowed it), or
    None when that takes nothing from another run: nobody held it, or ``owner`` already did.

    Taken from another run, its lease lapsed: the run that held it stopped or died, and the
    rollout's history says from then on who drives it, since when, and whose run it was before.
    """
    if record.owner is None or record.owner == owner:
        return None
    return Transition(at=now, kind=TAKEOVER, actor=owner,
                      comment=f"took the rollout over from {record.owner}, whose lease lapsed at "
                              f"{wall_utc(record.lease_expires)}")


def written_since(read: RolloutRecord, taken: RolloutRecord) -> tuple[Transition, ...]:
    """The history entries other runs wrote on a rollout between ``read`` (the record a run decided
    on) and ``taken`` (the same rollout as that run's ``acquire`` returned it). The takeover entry an
    acquire appends is left out: taking a lapsed lease changes nothing a decision was made on."""
    return tuple(entry for entry in taken.history[len(read.history):] if entry.kind != TAKEOVER)


def check_rollout(record: RolloutRecord, rollout: str | None) -> None:
    """Allow a write meant for the rollout whose id is ``rollout`` (None: for the newest,
    whichever it is) to land on ``record``, the service's newest rollout.

    Raises:
        RolloutSuperseded: ``record`` is another rollout.
    """
    if rollout is None or record.rollout_id == rollout:
        return
    raise RolloutSuperseded(
        f"rollout {rollout!r} of service {record.service!r} is no longer the newest: rollout "
        f"{record.rollout_id!r} ({record.image}, {record.phase.value}) is; the write meant for "
        f"{rollout!r} is not applied"
    )


def check_owner(record: RolloutRecord, owner: str | None, now: float) -> None:
    """Allow a write by ``owner``: None (a lease-free action) or the recorded owner.

    The recorded owner may write even after its lease expired (a write that passes
    ``lease_seconds`` renews it): a run blocked longer than its lease (ECS placing the canary's
    tasks, health checks) is still the only one driving the rollout, and refusing its record
    of a shift it made would leave the traffic moved and unrecorded. Two runs are still kept
    apart: another run can only take an expired lease through ``acquire``, which makes it the
    owner, and from then on the old owner's writes are refused. ``now`` is kept for the
    callers' symmetry with ``check_lease``.

    Raises:
        RolloutEnded: an owner writes to a rollout that is being or has been rolled back.
        NotOwner: another run took the rollout over, or ``owner`` released it.
    """
    if owner is None:
        return
    check_not_ended(record)
    if record.owner == owner:
        return
    held = f"it is owned by {record.owner!r}" if record.owner else "it was released"
    raise NotOwner(
        f"{owner!r} no longer owns rollout {record.rollout_id!r} of service {record.service!r}: {held}"
    )


def validate_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check that ``changes`` name writable RolloutRecord fields with valid values.

    Returns:
        The changes as validated field values (e.g. a dict for ``weights`` becomes Weights).

    Raises:
        ValueError: a name is not a field, is one the ledger manages, or a value is invalid
            (pydantic's ValidationError is a ValueError).
    """
    unknown = sorted(set(changes) - set(RolloutRecord.model_fields))
    if unknown:
        raise ValueError(
            f"not fields of RolloutRecord: {', '.join(unknown)}; "
            f"writable fields: {', '.join(sorted(set(RolloutRecord.model_fields) - MANAGED_FIELDS))}"
        )
    managed = sorted(set(changes) & MANAGED_FIELDS)
    if managed:
        raise ValueError(f"{', '.join(managed)} are written by the ledger itself, not through changes")
    # Validating against a throwaway record runs the field validators and coercions.
    probe = RolloutRecord.model_validate(
        {"service": "-", "rollout_id": "-", "image": "-", "spec_json": "-", **changes}
    )
    return {name: getattr(probe, name) for name in changes}


def check_names_somebody(name: str | None, what: str) -> None:
    """Refuse an owner or a claim's holder (``what``) that names nobody: empty, or blank.

    Stored, one read as nobody to status, the reports and the hooks (``lease_held``,
    ``claim_has_lapsed``), and as a holder to the writes (``lease_free``, DynamoDB's conditions,
    which compare the attribute): "no run drives the rollout" beside a lease no run could take.
    Refused at every write, it is never stored, and the readers and writers cannot disagree.

    Raises:
        ValueError: ``name`` is "" or blank (None, a lease-free write, is not refused here).
    """
    if name is not None and not name.strip():
        raise ValueError(f"the {what} names nobody ({name!r}): name the run or process that holds it")


def check_lease_seconds(lease_seconds: float, owner: str | None) -> None:
    """Refuse a negative lease, a lease for nobody (``owner=None`` writes hold no lease), and an
    owner that names nobody (``check_names_somebody``).

    Raises:
        ValueError: any of those.
    """
    check_names_somebody(owner, "owner")
    if lease_seconds < 0:
        raise ValueError(f"lease_seconds must not be negative, got {lease_seconds}")
    if lease_seconds > 0 and owner is None:
        raise ValueError(f"only the lease's owner can renew it, but owner is None (lease_seconds={lease_seconds})")


def as_started(record: RolloutRecord, *, owner: str, now: float, lease_seconds: float,
               wall: float | None = None) -> RolloutRecord:
    """``record`` as ``create`` stores it: owned by ``owner``, version 1, created at ``now``, its
    lease running ``lease_seconds`` from ``wall`` (None: ``now``)."""
    now = float(now)
    leased = float(wall) if wall is not None else now
    return record.model_copy(
        update={"owner": owner, "lease_expires": leased + lease_seconds, "lease_seconds": float(lease_seconds),
                "version": 1, "created_at": now, "updated_at": now}
    )


def lease_time(now: float, wall: float | None) -> float:
    """The time a ledger write stamps and judges leases with: ``wall`` (the wall clock) when the
    caller gives it, else ``now`` (callers on the wall clock, or at speed 1, where they agree)."""
    return float(wall) if wall is not None else float(now)


WINDOW_ENDS = ("decommission", "rollback", "watched")
"""Transitions that close a post-promotion window."""

BREACH_KEPT = "breach-not-rolled-back"
"""A monitoring window's look saw the guardrail breached, but its rollback was refused: another run
had closed the window meanwhile (``WindowClosed``), so the release that breached stays in production.
Written after the window's closing entry, which it leaves the window's close."""

BREACH_ACCEPTED = "breach-accepted"
"""A person judged a ``BREACH_KEPT`` breach harmless and finalized the release all the same
(`rollway finalize --accept-breach`): who (``actor``), why (``comment``) and which breach, by its
time (``breach_at``). Written by finalize under the rollout's lease, before its ``finalize-start``."""


def monitoring_owed(spec: "RolloutSpec", record: RolloutRecord) -> bool:
    """Whether a promoted rollout still owes its post-promotion window: no decommission, no
    rollback and no end of a window without decommission ("watched") recorded since the
    promotion. The old service is still running, so a rollback is still cheap.
    """
    if record.phase is not RolloutPhase.PROMOTED or spec.monitor_seconds <= 0:
        return False
    if any(t.kind in WINDOW_ENDS for t in record.history):
        return False
    if record.last_transition("promote") is None:
        return False
    # A record promoted before windows without a decommission existed carries no
    # ``monitor_until``: only a decommissioning plan owed it a window, and reopening the others
    # would let `rollway abort` roll back a version long in production.
    return spec.phases[-1].decommission or record.monitor_until is not None


_End = TypeVar("_End", UnverifiedWindow, KeptForTraffic)


def owed_unverified(spec: "RolloutSpec", record: RolloutRecord) -> UnverifiedWindow | None:
    """The recorded end of a run that watched the window the promoted rollout still owes and
    found it unverified (``RolloutRecord.unverified_window``), or None: no such end, or the counts
    no longer describe that window (none is owed any more: it closed, or the rollout was rolled
    back; or they were recorded before the promotion)."""
    return _of_the_owed_window(spec, record, record.unverified_window)


def owed_kept(spec: "RolloutSpec", record: RolloutRecord) -> KeptForTraffic | None:
    """The recorded end of a run whose window of the promoted rollout passed cleanly but kept the old
    service for the traffic on it (``RolloutRecord.kept_for_traffic``), or None, by
    ``owed_unverified``'s rule."""
    return _of_the_owed_window(spec, record, record.kept_for_traffic)


def _of_the_owed_window(spec: "RolloutSpec", record: RolloutRecord, end: _End | None) -> _End | None:
    """``end`` (a run's recorded end of an open window), if it still describes the window the
    promoted rollout owes: one is owed, and the end came after the promotion."""
    if end is None or not monitoring_owed(spec, record):
        return None
    return end if end.at >= record.last_transition("promote").at else None


def monitoring_left(spec: "RolloutSpec", record: RolloutRecord, now: float) -> float | None:
    """Seconds of the post-promotion window a promoted rollout still owes, or None if it owes none.

    A run that died while monitoring leaves the rollout PROMOTED without a decommission; the
    next run finishes the window (what is left of it, from the recorded promotion) instead
    of leaving the old service running unwatched.
    """
    if not monitoring_owed(spec, record):
        return None
    return max(0.0, record.last_transition("promote").at + spec.monitor_seconds - now)


def open_for_rollback(spec: "RolloutSpec", record: RolloutRecord) -> bool:
    """Whether a rollback is still this rollout's to do: it is unfinished, or it was promoted
    and its monitoring window is owed (the old service still runs). After that, the record
    belongs to history and a rollback must not rewrite it."""
    if record.phase is RolloutPhase.PROMOTED:
        return monitoring_owed(spec, record)
    return not record.phase.terminal


def check_open_for_rollback(record: RolloutRecord) -> None:
    """Allow a rollback to begin on ``record``: the rule of ``open_for_rollback`` with the
    record's own spec. A rollback already under way (ROLLING_BACK) stays open, so a run or a
    person can finish one whose process died half-way.

    Raises:
        RolloutClosed: naming who closed it and when.
    """
    if not record.phase.terminal:
        return
    if record.phase is RolloutPhase.PROMOTED:
        from rollway.spec import RolloutSpec  # the spec module does not need the ledger

        if open_for_rollback(RolloutSpec.for_rollback(record.spec_json), record):
            return
        window = (f"rollout {record.rollout_id!r} of service {record.service!r} was promoted"
                  f"{_by(record.last_transition('promote'))} and its monitoring window has closed: it is production")
        closed = WindowClosed(f"{window}, and this rollback neither moves the traffic nor pages anyone")
        closed.window = window
        raise closed
    done = "already rolled back" if record.phase is RolloutPhase.ROLLED_BACK else record.phase.value
    raise RolloutClosed(
        f"rollout {record.rollout_id!r} of service {record.service!r} was {done}"
        f"{_by(record.last_transition('rollback'))}; this rollback neither moves the traffic again nor pages anyone"
    )


def timeout_action(entry: Transition) -> str | None:
    """The action a ``timeout`` entry records its policy took ("reject" or "hold"), or None for any
    other entry: its comment is ``answer_comment(action, ...)``, "<action>: <what was waited>", read
    as every answer's is (``answer_action``)."""
    if entry.kind != "timeout":
        return None
    return answer_action(entry.comment)


def held_by_timeout(entry: Transition) -> bool:
    """Whether ``entry`` is a timeout whose policy held: no answer, the pause is asked again."""
    return timeout_action(entry) == "hold"


def pause_cause(entry: Transition) -> str | None:
    """The cause a ``pause`` entry's question was asked for (approval, inconclusive, metrics: its
    comment opens "<cause> pause: ..."), or None for any other entry."""
    said = entry.comment or ""
    return said.split(" pause:", 1)[0] if entry.kind == "pause" and " pause:" in said else None


def unanswered_wait(record: RolloutRecord, stage: int | None = None) -> tuple[Transition, ...]:
    """The entries of the pause an unfinished rollout waits at, oldest first: its pause entries (one
    per question asked) and the timeout whose policy held, at the newest entry's stage (``stage``:
    at that one only); () when the newest entry is neither (an answer, a shift ended the wait, or
    none began). A wait asked for weeks keeps these few entries (``OpenPause``).

    A ``takeover`` does not end it: the run taking the lease of one that died waiting asks the same
    pause again (``rollway.approvals.taken_over_pause``). Ended there, the pause was recorded a
    second time, and `rollway status` and the report listed two pauses where one waited."""
    if record.phase.terminal or record.phase is RolloutPhase.ROLLING_BACK or not record.history:
        return ()
    entries = [entry for entry in record.history if entry.kind != TAKEOVER]
    if not entries:
        return ()
    at = entries[-1].to_stage if stage is None else stage
    wait: list[Transition] = []
    for entry in reversed(entries):
        if entry.to_stage != at or not (entry.kind == "pause" or held_by_timeout(entry)):
            break
        wait.append(entry)
    return tuple(reversed(wait))


def pause_asked_now(record: RolloutRecord) -> OpenPause | None:
    """The question the rollout's run asks now (``RolloutRecord.open_pause``), if it is the pause
    the history shows the rollout waiting at (``unanswered_wait``) and that question is among its
    entries; else None, and the history's entries say it (records written before it was kept)."""
    asked = record.open_pause
    if asked is None:
        return None
    wait = unanswered_wait(record, asked.stage)
    return asked if any(pause_cause(t) == asked.cause for t in wait) else None


def owed_rejection(record: RolloutRecord) -> Transition | None:
    """The rejection (a person's, or the approval timeout policy's) an unfinished rollout's run
    recorded and did not get to act on, or None: it is the newest transition, as the run records
    the rollback's start next, so a rollback is owed.

    A ``takeover`` after it does not hide it: a run taking the dead run's lapsed lease over
    changes who drives the rollout, not the answer it was given. Nor does an ``unheard`` entry:
    it records an answer nothing acted on (`rollway abort` writes it just before the rollback's
    start, and an abort stopped between the two left the person's rejection unowed, so the next
    run resumed the rollout and asked again)."""
    last = next((t for t in reversed(record.history) if t.kind not in (TAKEOVER, UNHEARD)), None)
    if record.phase.terminal or record.phase is RolloutPhase.ROLLING_BACK or last is None:
        return None
    if last.kind == "reject" or timeout_action(last) == "reject":
        return last
    return None


def rejection_owed(record: RolloutRecord) -> bool:
    """Whether a rollback is owed for a rejection its run did not act on (``owed_rejection``)."""
    return owed_rejection(record) is not None


def answer_comment(action: str, comment: str) -> str:
    """The comment recorded for a person's answer: ``"<action>: <comment>"``, or the action alone.

    Only the comment's surrounding spaces go: a comment ending in a colon (``see INC-42:``) lost
    it, and every other trailing colon, when the line was cut with ``strip(": ")``."""
    said = comment.strip()
    return f"{action}: {said}" if said else action


def answer_action(comment: str | None) -> str:
    """The action an answer's ``comment`` recorded by ``answer_comment`` names ("<action>: <words>",
    or the action alone): the words before its first colon, else the whole comment. Read whole, so
    that a comment merely opening with an action's letters ("rejected because x", "holding for
    INC-7", by hand or by an older rollway) names none of them; and read as ``answer_said`` reads
    the words, so that a comment naming no action keeps all of its words."""
    said = (comment or "").strip()
    action, colon, _words = said.partition(":")
    return action if colon else said


def answer_said(action: str, comment: str | None) -> str:
    """The person's own words in an answer's ``comment`` recorded by ``answer_comment`` ("<action>:
    <words>", or the action alone): "" when they gave none. Only the action with its colon goes: a
    comment not written so ("rejected because x", by hand or by an older rollway) is theirs whole,
    where cutting the bare word read "ed because x"."""
    said = (comment or "").strip()
    return said.partition(":")[2].strip() if answer_action(said) == action else said


def rejection_reason(reject: Transition) -> str:
    """The reason the engine gives a rollback it does for a rejection, from the recorded answer
    (its comment is "reject: <the person's comment>", its verdict the pause's reason)."""
    said = answer_said("reject", reject.comment)
    if reject.kind == "timeout":
        return timeout_reason(said, reject.verdict)
    return f"rejected by {reject.actor}: {said or reject.verdict or 'no reason given'}"


def timeout_reason(waited: str, question: str | None) -> str:
    """The reason of a rollback for a pause nobody answered: ``waited`` ("no answer within 3600 s")
    and the pause's ``question``. It read "rejected by timeout", and the page on-call got then
    told them to look at the canary's metrics, as if the judge had found it bad."""
    asked = f' to the pause "{question}"' if question else ""
    return (f"{waited or 'no answer in time'}{asked}: approvals.on_timeout is rollback; "
            "the judge had not failed the canary")


CLAIM_SECONDS = 60.0
"""How long a rollback's claim lasts without renewal (wall seconds: claims are stamped on the wall
clock, ``Environment.wall``, whatever the speed of the rollout clock). Its holder renews it while it
acts; a holder that died loses it this long after its last renewal, and the next rollback
finishes its work."""


def claim_changes(holder: str | None, now: float = 0.0, lease_seconds: float = 0.0) -> dict[str, Any]:
    """The record fields of a rollback's claim: ``holder``'s until ``now + lease_seconds``, or
    released (no holder, or a lease of 0: given up, or the rollback ended)."""
    if holder is None or lease_seconds <= 0:
        return {"rollback_holder": None, "rollback_expires": 0.0}
    return {"rollback_holder": holder, "rollback_expires": now + lease_seconds}


def claim_has_lapsed(record: RolloutRecord, now: float | None) -> bool:
    """Whether ``record``'s rollback claim has lapsed at ``now`` (wall clock, as claims are
    stamped): a holder is recorded and its claim ran out before ``now`` (at ``now`` itself it is
    still live), so its run stopped renewing it and the next rollback takes it over.

    ``now`` None: the time is not told, and no lapse is claimed (False): the claim is taken as
    live, its holder named with the time it is renewed until. The phase is left to the callers:
    a claim is recorded only while the rollout is rolling back, and each of them does something
    else in the other phases. ``check_rollback_claim``, the incident report and `rollway status`
    all ask this one, so that they cannot disagree on whether one record's claim is live.
    """
    return bool(record.rollback_holder) and now is not None and record.rollback_expires < now


def claim_lapsed(record: RolloutRecord) -> str:
    """What a rollback claim whose holder stopped renewing it means, for people (the incident
    report and `rollway status`, once the wall clock passed ``rollback_expires``)."""
    lapsed = wall_utc(record.rollback_expires, "it stopped renewing it: its run stopped or died")
    return f"whose claim lapsed at {lapsed}; a rollback started now takes it over at once"


def check_rollback_claim(record: RolloutRecord, holder: str, now: float) -> None:
    """Allow ``holder`` to carry out the rollout's rollback: nobody holds the claim, ``holder``
    does, or the claim lapsed at ``now``: its holder died.

    Raises:
        RollbackClaimed: another rollback holds a live claim.
    """
    held = record.rollback_holder
    # An empty holder names nobody, as the reports and status read it (``claim_has_lapsed``); the
    # writes refuse one (``check_names_somebody``), so only an item edited by hand holds it.
    if record.phase is not RolloutPhase.ROLLING_BACK or not held or held == holder or claim_has_lapsed(record, now):
        return
    raise RollbackClaimed(
        f"rollout {record.rollout_id!r} of service {record.service!r} is being rolled back by {on_one_line(held)}, its "
        f"claim held until {wall_utc(record.rollback_expires)} unless renewed; {holder} neither moves the traffic nor "
        "pages anyone",
        holder=held, expires=record.rollback_expires,
    )


def claim_takeover(record: RolloutRecord, holder: str, now: float, lease_seconds: float,
                   at: float | None = None) -> Transition | None:
    """The history entry for ``holder`` taking ``record``'s rollback claim at ``now`` (wall clock;
    ``check_claimable`` allowed it), or None when that takes it from no other rollback: nobody
    held it (given up after a failed step, or `rollway abort`'s intent took none), ``holder``
    already does (a renewal), or ``lease_seconds`` is 0 (giving a claim up takes nothing).

    Taken from another rollback whose claim lapsed: that rollback's process stopped or died
    part-way, and the rollout's history says who finished the rollback, since when, and whose
    it was before, as ``takeover`` says of a rollout's lease. ``at``: the rollout clock the entry
    is stamped with, as the rollback's other entries are (None: ``now``).
    """
    held = record.rollback_holder
    if record.phase is not RolloutPhase.ROLLING_BACK or held is None or held == holder or lease_seconds <= 0:
        return None
    return Transition(at=now if at is None else at, kind=TAKEOVER, actor=holder,
                      comment=f"took the rollback over from {held}, whose claim lapsed at "
                              f"{wall_utc(record.rollback_expires)}")


def check_claimable(holder: str, now: float) -> Callable[[RolloutRecord], None]:
    """The rule of ``claim_rollback``: a rollback is under way (rolling_back) and ``holder`` may hold it.

    Raises:
        ValueError: ``holder`` names nobody (``check_names_somebody``), before any rule is made.

    Raises (from the rule):
        RolloutClosed: the rollback has finished (or the rollout is closed).
        RollbackClaimed: another rollback holds a live claim.
        LedgerError: no rollback has begun (begin_rollback records one).
    """

    check_names_somebody(holder, "claim's holder")

    def rule(record: RolloutRecord) -> None:
        check_open_for_rollback(record)
        if record.phase is not RolloutPhase.ROLLING_BACK:
            raise LedgerError(f"rollout {record.rollout_id!r} of service {record.service!r} is {record.phase.value}: "
                              "no rollback has begun to claim")
        check_rollback_claim(record, holder, now)

    return rule


class _AlreadyBegun(LedgerError):
    """``begin_rollback``'s rule found the rollback begun already (rolling_back); its ``record``
    attribute is the rollout as the write found it. Never raised out of ``begin_rollback``."""

    record: RolloutRecord


def begin_rollback(ledger: Any, service: str, *, actor: str, reason: str, now: float,
                   rollout: str | None = None, holder: str | None = None,
                   lease_seconds: float = CLAIM_SECONDS, wall: float | None = None,
                   by_hand: bool = False) -> RolloutRecord:
    """Record a rollback's intent (phase rolling_back, who and why) before it acts.

    Lease-free: a rollback acts whoever holds the lease. From here no owner may record
    progress (RolloutEnded), and a run that dies half-way leaves a rollback to finish.
    ``rollout``: the id of the rollout the rollback read; RolloutSuperseded if another one is newest
    by now (None only where no rollout was read).

    ``holder``: the rollback that will carry it out takes its claim in the same write, lasting
    ``lease_seconds`` from ``wall`` (the wall clock; None: ``now``, the rollout clock the transition
    is stamped with, which is the same at speed 1). Without one
    (`rollway abort` recording a person's intent before it stops the owning run) the claim is
    left as it is.

    A rollout found rolling back already (another rollback began between the caller's read and
    this write, and maybe died) keeps its one ``rollback-start``: its actor and reason are what
    triggered the rollback, which the reports name. ``holder`` then takes the claim as any
    rollback finishing another's does (``claim_rollback``: a ``takeover`` entry naming the
    rollback whose claim lapsed, nothing when nobody held it); without a holder nothing is written.

    ``by_hand``: the `rollback` flow run by hand on a promoted rollout whose window closed (with a
    decommission or without) and that no finalize touched (``rollway.finalize.reversible_by_hand``),
    its stable service found on the previous revision: the rollback takes the promoted version out
    of production, so it is recorded on the rollout. Checked by the write too: a finalize recorded
    since the caller's read refuses it (RolloutClosed), as for any closed rollout.

    Raises:
        RolloutClosed: the rollout was closed since the caller read it (say, the judge's own
            rollback finished first); checked by the write itself (``check_open_for_rollback``),
            so it cannot reopen a finished rollback and have it done twice.
        RollbackClaimed: ``holder`` is given and another rollback holds a live claim on it.
    """
    check_names_somebody(holder, "claim's holder")
    changes: dict[str, Any] = {}
    claimed = lease_time(now, wall)
    if holder is not None:
        changes = {"rollback_holder": holder, "rollback_expires": claimed + lease_seconds}

    def rule(record: RolloutRecord) -> None:
        from rollway.finalize import reversible_by_hand  # rollway.finalize reads this module's records

        if not (by_hand and reversible_by_hand(record)):
            check_open_for_rollback(record)
        if record.phase is RolloutPhase.ROLLING_BACK:
            begun = _AlreadyBegun(f"rollout {record.rollout_id!r} of service {record.service!r} is rolling back already")
            begun.record = record
            raise begun

    try:
        # The reason on one line, escaped (``on_one_line``), as the rollback flow takes its own: a
        # rollback finishing this one quotes it as its page's Why, above "Requested by:", where a
        # line break in the words of `rollway abort --reason` or of a reject wrote a line of its own.
        return ledger.record(
            service, owner=None, now=now, rollout=rollout, rule=rule,
            transition=Transition(at=now, kind="rollback-start", actor=actor, comment=on_one_line(reason),
                                  wall=wall),
            phase=RolloutPhase.ROLLING_BACK, **changes,
        )
    except _AlreadyBegun as begun:
        if holder is None:
            return begun.record
        return ledger.claim_rollback(service, holder=holder, now=claimed, lease_seconds=lease_seconds,
                                     rollout=rollout, at=now)
