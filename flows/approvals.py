"""Approval pauses in the Prefect UI: a typed form, the stage's table above it, a timeout policy.

The run pauses with an ApprovalInput form until a person (or ``rollway promote``, or the API)
resumes it with an answer the server has validated against the form. A pause that times out
never promotes: the spec's ``approvals.on_timeout`` says whether it rolls back or keeps
holding. A run cancelled while it waits stops at once: the approver raises
CancelledWhilePaused. A cancellation begun (Cancelling, as the UI sets it) is kept, and the run's
on_cancellation hook rolls the rollout back. A run set to Cancelled outright ends Failed instead:
Prefect's engine proposes Failed for the error and the server takes it over Cancelled, so the
run's on_failure hook rolls the rollout back, the same rollback, its reason saying the run was
cancelled (``CancelledWhilePaused`` says why no other way keeps Cancelled).

Why not ``prefect.flow_runs.pause_flow_run``: its wait only looks for Running, so a
cancellation (Cancelling) went unnoticed until the timeout, and taking the run out of a
timed-out pause then had to force Running over whatever the run was in, a cancellation
included. Here the wait reads the run's state itself and never forces a state.

A pause lasts up to its timeout (an hour by default), long enough for the Prefect server to be
restarted or upgraded meanwhile: the wait rides out an API it cannot reach, for as long as the
pause lasts and ``OUTAGE_GRACE_SECONDS`` after, and then takes the answer the server stored.
The pause's watch is called meanwhile, and acts (rolls back) without waiting for the API; the
run then waits for the API however long it stays away, to leave its pause and end.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Literal, TypeVar
from uuid import UUID, uuid4

import httpx
import orjson
from prefect import get_run_logger
from prefect.client import orchestration
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import State
from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus
from prefect.context import FlowRunContext
from prefect.exceptions import Abort, ObjectNotFound, PrefectHTTPStatusError
from prefect.exceptions import Pause as PauseRefused
from prefect.input import RunInput, keyset_from_paused_state
from prefect.states import Paused, Running
from pydantic import ConfigDict, Field, ValidationError

from flows.env import run_logger
from flows.hooks import own_words
from rollway.api_error import request_left_out
from rollway.approvals import (WAITING_EVERY_SECONDS, ApprovalAnswer, Approver, UnheardAnswer, Watch, act_now,
                               answered_dead, late_timeout, timed_out, unanswered_by,
                               waiting_prefix)
# duration_said: imported from here by the engine and the progressive flow too.
from rollway.bounds import duration_said, seconds_said, wait_said, whole_minutes, whole_seconds
from rollway.decide import Pause
from rollway.errors_pickle import PicklableError
from rollway.failure_words import end_said
# The form's rule for a name, as `rollway flags --actor` holds a name to it.
from rollway.flags import NAME_PATTERN
from rollway.ledger import utc
from rollway.one_line import on_one_line, shown
from rollway.spec import Approvals
from rollway.url_passwords import passwords_hidden

T = TypeVar("T")

# How long past a pause's deadline its run keeps trying a Prefect API it cannot reach: the
# answer (or the timeout) is the server's to tell, and a run that gave up while the server
# restarted failed, and its failure hook rolled back a rollout a person had just approved.
OUTAGE_GRACE_SECONDS = 600.0


class ApprovalInput(RunInput):
    """The form a person fills in to answer a rollout's pause."""

    action: Literal["approve", "reject", "hold"] = Field(
        description="approve: shift to the stage asked about (at a pause the judge could not decide: accept "
                    "this stage as passed); reject: roll back now; hold: stay at the current weights and ask again"
    )
    # The pattern is read by Python's re in the run too (``regex_engine``), as the server reads it:
    # pydantic's own engine ends ``$`` elsewhere, and a name the server took would fail the run.
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    # pattern, not a Python validator: the server checks the form's JSON schema when the run is
    # resumed, so a blank name is refused there and the person can answer again. A check that
    # only ran in Python would fail inside the run, after the resume, and roll the rollout back.
    # Something to read, and no control character (``NAME_PATTERN``): the run's log prints the name.
    approver: str = Field(
        min_length=1, max_length=200, pattern=NAME_PATTERN, description="who is answering (recorded in the ledger)"
    )
    # Bounded: the comment goes into the ledger item (400 KB in all), SNS and the artifacts.
    comment: str = Field(default="", max_length=1000, description="why (recorded in the ledger and the notifications)")
    next_weight: int | None = Field(
        # "a different next canary weight within the spec's stages" read as if an earlier stage,
        # or any weight, would do: the run refuses those and asks again an interval later.
        default=None, ge=1, le=100,
        description="only with approve, at an approval pause: skip ahead to this later stage's canary weight "
                    "(the text above lists them); empty: shift to the stage asked about"
    )


class CancelledWhilePaused(Exception):
    """The run was cancelled at its pause: while it waited for an answer, before it began to, or
    as it took one.

    An ordinary exception on purpose: the flow engine proposes Failed, the server keeps the
    cancellation (a Cancelling run may only become Cancelled), and the engine runs the flow's
    on_cancellation hooks.

    A run set to Cancelled outright ends Failed: the server takes Failed over Cancelled (one
    terminal state may follow another), and the engine runs the flow's on_failure hooks, which
    roll back the same. No other way keeps Cancelled with the rollback done once: the engine runs
    on_cancellation hooks only for a Cancelling state the server answers it with, which it never
    gives a Cancelled run; Prefect's Abort would leave the run Cancelled with no hook run (nothing
    rolled back), and past every handler of an ordinary error in the rollout's own code; a state
    the flow returned (Cancelled) runs no hook either; and forcing Cancelling back over Cancelled
    would overwrite a person's state and leave the run Cancelling, with no runner to finish it.
    """


class PauseInterrupted(RuntimeError):
    """The run left its pause for a state that is neither an answer, a timeout nor a cancellation
    (for instance a person marked it Failed in the UI): the run stops rather than overwrite it."""


class MarkedCrashed(PauseInterrupted):
    """The paused run was marked Crashed (``rollway promote`` does so when the run has not said for
    minutes that it still waits, taking its process for dead): the person was told the rollout
    stays where it is, for a new run to take over, so this run stops without rolling it back."""


# The moment of its pause a run found its cancellation at, unless said otherwise: while it waited there.
_WAITED = "while it waited for an answer"


def _stop_if_cancelled(state: State, when: str = _WAITED) -> None:
    """Raise CancelledWhilePaused when ``state`` is a cancellation, begun (Cancelling) or done;
    ``when``: the moment of the pause the run found it at, as its message says it."""
    if state.is_cancelling() or state.is_cancelled():
        # Escaped: a message set through the API is anyone's words, shown in the run's log.
        said = on_one_line(own_words(state.message))
        why = f" ({said})" if said else ""
        raise CancelledWhilePaused(f"the run was cancelled {when}{why}")


def _expired(state: State, paused: State) -> bool:
    """Whether ``state`` is what the server makes of a pause nobody answered in time: Failed, at
    or after the pause's deadline (the server's own pause-expiry service, or its refusal to
    resume an expired pause)."""
    deadline = paused.state_details.pause_timeout
    return state.is_failed() and deadline is not None and state.timestamp >= deadline


def _left_for(state: State, when: str | None = None) -> PauseInterrupted:
    """The error for a run found in ``state``, neither Running nor a cancellation, as it leaves its
    pause; ``when``: the moment it found it at, when not as it left a pause it waited at (once it
    had left the pause through a resume, say)."""
    # Set by a person or the API: no exception came with it, and its message may be none.
    name = state.name or state.type.value
    said = end_said(state.message, None, name)
    return (MarkedCrashed if state.is_crashed() else PauseInterrupted)(
        f"the run left its approval pause for {name} ({said}), not through a resume; stopping" if when is None
        else f"the run was moved to {name} ({said}) {when}; stopping"
    )


def _stateless(aborted: Abort | None = None) -> PauseInterrupted:
    """The error for a run read without any state at its pause: after the server ``aborted`` its
    Running as it left the pause (None: at a read of its own, ``_state_of``). Checked as any other
    state, None failed the run on an AttributeError that said nothing of it."""
    how = (f"the Prefect server aborted the run's Running as it left its pause ({on_one_line(str(aborted))}), and "
           "then read" if aborted is not None else "the Prefect API read")
    return PauseInterrupted(f"{how} the run without any state: stopping rather than guess where it is")


def _state_of(client: SyncPrefectClient, run_id: UUID,
              through: Callable[[Callable[[], T]], T] = lambda call: call()) -> State:
    """The run's state, read through ``through`` (which makes the call to the API: riding out an
    outage, say), as the pause reads it to act on it: as it waits, as it leaves the pause (the
    canary's look ended it, or its timeout), and as it acts on an answer found as it left.

    Raises:
        PauseInterrupted: the API read the run without any state (``_stateless``).
    """
    state = _state_if_any(client, run_id, through)
    if state is None:
        raise _stateless()
    return state


def _state_if_any(client: SyncPrefectClient, run_id: UUID,
                  through: Callable[[Callable[[], T]], T] = lambda call: call()) -> State | None:
    """The run's state as ``_state_of`` reads it, or None when the API read it without any: the
    checks after a refused pause (``_pause``) take that for no pause of theirs, and the refusal
    stands, where ``_state_of`` stops the run."""
    return through(lambda: client.read_flow_run(run_id).state)


def _unreachable(err: Exception) -> bool:
    """Whether ``err`` says the Prefect API is away (down, restarting, overloaded), not that it
    refused the request: another try later may be answered. A 429 or 408 (the API, or a proxy in
    front of it, saying to come back later) is one: the pause's client gives a read up after a
    minute of them (``WHOLE_REQUEST_MOST_SECONDS``), and the run failed, its rollout rolled back."""
    if isinstance(err, httpx.HTTPStatusError):
        return err.response.status_code >= 500 or err.response.status_code in (408, 429)
    return isinstance(err, httpx.TransportError)


def _through_outages(call: Callable[[], T], give_up_at: float, poll_interval: float,
                     doing: str = "still waiting for an answer", meanwhile: Callable[[], None] | None = None,
                     then: str = "the run goes on", *, clock: Callable[[], float] | None = None,
                     sleep: Callable[[float], None] | None = None) -> T:
    """``call()``, tried again every ``poll_interval`` seconds while the Prefect API cannot be
    reached, until the monotonic ``give_up_at``; the log says when it went, what the run is
    ``doing`` meanwhile and ``then`` does once it answers, and when it came back. ``meanwhile`` is
    called before each wait: what the run does without the API (it may raise, which ends the wait).

    Said again while it stays away (``OUTAGE_SAID_FIRST_SECONDS``, then gaps doubling up to
    ``OUTAGE_SAID_MOST_SECONDS``), with how long it has been away: said once, an outage of 20
    minutes read as a run that hung, to the person on call watching its log.

    ``clock`` and ``sleep``: the monotonic clock and its wait (None: the ``time`` module's).

    Raises:
        httpx.HTTPError: the API refused the request, or was still away at ``give_up_at``.
    """
    clock = clock or (lambda: time.monotonic())
    sleep = sleep or (lambda seconds: time.sleep(seconds))
    down_since: float | None = None
    said_at = gap = 0.0
    while True:
        try:
            result = call()
        except httpx.HTTPError as err:
            now = clock()
            if not _unreachable(err) or now >= give_up_at:
                raise
            # httpx's words for a 5xx quote the URL asked: PREFECT_API_URL's password with it, behind basic auth.
            if down_since is None:
                down_since, said_at, gap = now, now, OUTAGE_SAID_FIRST_SECONDS
                get_run_logger().warning(
                    "the Prefect API cannot be reached (%s): %s; trying again every %s; once it answers, %s%s",
                    passwords_hidden(str(err)), doing, seconds_said(poll_interval), then, _giving_up(give_up_at, now))
            elif now - said_at >= gap:
                said_at, gap = now, min(gap * 2, OUTAGE_SAID_MOST_SECONDS)
                get_run_logger().warning(
                    "the Prefect API still cannot be reached, %s after it went away (%s): %s; once it answers, %s%s",
                    _said_to_the_minute(now - down_since), passwords_hidden(str(err)), doing, then,
                    _giving_up(give_up_at, now))
            if meanwhile is not None:
                meanwhile()
            sleep(max(0.0, min(poll_interval, give_up_at - clock())))
            continue
        if down_since is not None:
            get_run_logger().info("the Prefect API answers again after %s", _said_to_the_minute(clock() - down_since))
        return result


# When a Prefect outage is said again while it lasts: a minute after it began, then at gaps
# doubling up to five minutes (not at every poll: a run polls every few seconds).
OUTAGE_SAID_FIRST_SECONDS = 60.0
OUTAGE_SAID_MOST_SECONDS = 300.0


def _giving_up(give_up_at: float, now: float) -> str:
    """When the run stops riding out the outage (the monotonic ``give_up_at``), as the outage's
    line ends; "" when it never does."""
    if math.isinf(give_up_at):
        return ""
    return (f"; if it is still away {_said_to_the_minute(give_up_at - now)} from now (the pause's timeout and "
            f"{duration_said(OUTAGE_GRACE_SECONDS)} of grace), the run gives up and fails")


def _said_to_the_minute(seconds: float) -> str:
    """``seconds`` of an outage as a person reads it: "43 min", not "42 min 59 s" (under a minute: "45 s",
    or "under a second"), a half rounded up (``whole_minutes``, ``wait_said``)."""
    return duration_said(whole_minutes(seconds)) if seconds >= 60 else wait_said(seconds)


def propose_state(client: SyncPrefectClient, state: State, run_id: UUID, leaving: State | None = None) -> State:
    """Propose ``state`` for the flow run ``run_id`` through the server's orchestration rules,
    never forced, and return the state the run is in after: ``state`` with the server's id and
    details when it accepted it, else the state it kept the run in.

    Never forced: a forced Running would overwrite a person's cancellation, and a forced Paused
    would skip the server's refusal of a pause key that already fired. The client's public
    ``set_flow_run_state`` answered as the engine answers it: waits when told to wait, and
    stops on an abort or a refusal that leaves the run paused.

    An abort after which the run is still where it was is the server failing to take the proposal,
    not refusing it: its state validation erred ("Error validating state: ...", a database busy
    for a moment: SQLite under load), or one of its rules did, and nothing was written. Proposed
    again then, up to ``ABORTED_TRIES`` times, said in one warning: taken for a refusal, a busy
    moment at a pause failed the run, and its failure hook rolled back a rollout nobody had
    answered. Where it was: ``leaving``, the state the caller last read the run in; None: Running,
    the run's own as it executes its flow. An abort after which the run is elsewhere (cancelled, or
    already in a terminal state, which the server never lets pause) is the server's refusal.

    Raises:
        LeftElsewhere: the server aborted the transition, the run elsewhere than ``leaving`` after
            it (an Abort).
        NotTaken: the server failed to take it ``ABORTED_TRIES`` times, the run where it was.
        PauseRefused: the server refused it, and the run is paused (an earlier try of the same
            pause landed, its answer lost, say).
    """
    wait = ABORTED_FIRST_WAIT_SECONDS
    for tried in range(1, ABORTED_TRIES + 1):
        result = _proposed(client, state, run_id)
        if result.status != SetStateStatus.ABORT:
            break
        now = _state_if_any(client, run_id)
        if now is None or not (now.id == leaving.id if leaving is not None else now.is_running()):
            raise LeftElsewhere(result.details.reason, state=now)
        proposed, kept = state.name or state.type.value, now.name or now.type.value
        # The server's words: an exception's repr, which may quote anything.
        why = on_one_line(result.details.reason)
        if tried == ABORTED_TRIES:
            raise NotTaken(f"the Prefect server failed to take the run's {proposed} {tried} times in a row, the run "
                           f"still {kept} each time ({why})")
        if tried == 1:
            run_logger(__name__).warning(
                "the Prefect server failed to take the run's %s (%s), the run still %s: proposing it again, up to "
                "%d more times", proposed, why, kept, ABORTED_TRIES - 1)
        time.sleep(wait)
        wait *= 2
    if result.status == SetStateStatus.ACCEPT:
        # As the engine keeps it: the state proposed, with what the server gave it (the pause's
        # input keyset among its details).
        state.id, state.timestamp = result.state.id, result.state.timestamp
        if result.state.state_details:
            state.state_details = result.state.state_details
        return state
    if result.status == SetStateStatus.REJECT:
        if result.state.is_paused():
            raise PauseRefused(result.details.reason, state=result.state)
        return result.state
    raise ValueError(f"the Prefect API answered a state proposal with {result.status!r}")


# How many times a proposal the server failed to take (an abort, the run left where it was) is
# made, and the first wait between two (doubling: 0.5 + 1 + 2 + 4 s in all): a database busy for
# a moment, not an outage, which the pause's calls ride out on their own (``_through_outages``).
ABORTED_TRIES = 5
ABORTED_FIRST_WAIT_SECONDS = 0.5


class NotTaken(Abort):
    """The server failed to take a proposal ``ABORTED_TRIES`` times, the run left where it was each
    time: an Abort, as a refusal is, for the callers that handle one."""


class LeftElsewhere(PicklableError, Abort):
    """The server aborted a proposal, the run elsewhere than where it was after it: its refusal.
    ``state``: where the run is, as read to tell the two apart (None: without a state), so that
    the callers, which act on it, need not read it again."""

    def __init__(self, *args: object, state: State | None = None) -> None:
        super().__init__(*args)
        self.state = state


def _proposed(client: SyncPrefectClient, state: State, run_id: UUID) -> OrchestrationResult:
    """The server's answer to ``state`` proposed for the run, once it stops saying to wait."""
    result = client.set_flow_run_state(run_id, state, force=False)
    while result.status == SetStateStatus.WAIT:
        time.sleep(result.details.delay_seconds)
        result = client.set_flow_run_state(run_id, state, force=False)
    return result


def _pause(client: SyncPrefectClient, run_id: UUID, form: type[RunInput], deadline: float, question: str,
           through: Callable[[Callable[[], T]], T], key: str) -> State:
    """Pause the run for an answer to ``form`` until the monotonic ``deadline`` and store the
    form; returns the Paused state. ``key``: the pause's own (``pause_key``), new for every pause:
    the server refuses a pause key that already fired.

    ``question`` is the state's message: what the pause asks and what a timeout does, for
    ``rollway status`` and ``promote``, which read the run's state, not its form.

    ``through`` makes each call to the API, riding out an outage: a Prefect API that could not be
    reached at the moment the run paused failed the run, and its failure hook rolled back a
    rollout nobody had been asked about. A call whose answer an outage lost may have landed: the
    pause is then found on the run (the server refuses its key a second time), and a form part
    already stored is kept.

    Raises:
        CancelledWhilePaused: the run was cancelled before it could pause.
    """
    def propose() -> State:
        # What is left of the pause's time: an outage at the pause must not lengthen it. Rounded up,
        # never down: the server's deadline must not come before the run's, which leaves the pause
        # at its own. Rounded down (a pause made 0.6 s into its time), the server turned that way
        # out into Failed ("never resumed"): a failed run in the UI, and its automations fired.
        left = max(1, math.ceil(deadline - time.monotonic()))
        proposed = Paused(timeout_seconds=left, pause_key=key, message=question)
        proposed.state_details.run_input_keyset = keyset_from_paused_state(proposed)
        try:
            return propose_state(client, proposed, run_id)
        except (Abort, PauseRefused) as refused:  # refused: already paused ("not running"), or its key already fired
            # Where the run is: read already after an abort that left it elsewhere.
            current = refused.state if isinstance(refused, LeftElsewhere) else _state_if_any(client, run_id)
            if current is not None and current.is_paused() and current.state_details.pause_key == key:
                return current  # an earlier try landed; its answer was lost to the outage
            raise

    def expired_meanwhile() -> None:
        # A try landed, its answer lost, and the outage outlasted the pause's timeout: the server
        # failed the run for a pause nobody resumed. Taken as any timed-out pause (its policy: hold
        # and ask again, or roll back): failing the run rolled the rollout back even under "hold".
        current = _state_if_any(client, run_id, through)
        made = through(lambda: _made(client, run_id, key))
        if current is not None and made is not None and _expired(current, made):
            raise _ExpiredUnheard(made)

    try:
        state = through(propose)
    except (Abort, PauseRefused) as refused:
        expired_meanwhile()
        if isinstance(refused, NotTaken):  # not a refusal: the server kept failing to take it
            raise RuntimeError(f"the run could not pause for an approval: {refused}") from refused
        if isinstance(refused, LeftElsewhere) and refused.state is not None:
            # Aborted for a cancellation (a Cancelled run's pause, or one proposed as a person's cancel
            # was written): said as the refusal of an API, the run failed, its failure hook rolled
            # back, and its cancellation was never said.
            _stop_if_cancelled(refused.state, _BEFORE_THE_PAUSE)
        raise RuntimeError(f"the Prefect API refused to pause the run for an approval: {refused}") from refused
    _stop_if_cancelled(state, _BEFORE_THE_PAUSE)
    if not state.is_paused():
        expired_meanwhile()
        raise RuntimeError(f"the run could not pause for an approval: the Prefect API left it {state.type.value}")
    keyset = state.state_details.run_input_keyset
    through(lambda: _save_form(client, run_id, form, keyset))
    return state


# When a cancellation the pause's proposal met was made: before the run waited (it may have paused
# all the same, on a try whose answer an outage lost, and been cancelled then).
_BEFORE_THE_PAUSE = "before it began to wait for an answer"
# When a cancellation (or another state) found at a pause made during an outage was made: the
# canary's look ended that pause before the run could wait at it (``_unpaused``).
_NEVER_WAITED = "after its pause was made while the Prefect API came and went, before it could wait for an answer"


def _save_form(client: SyncPrefectClient, run_id: UUID, form: type[RunInput], keyset: dict[str, str]) -> None:
    """Store ``form`` on the paused run as ``pause_flow_run(wait_for_input=form)`` does (Prefect's
    own schema for the UI's form, then the description above it), through ``client``.

    Not through ``RunInput.save``: that opens a client of its own, unbounded, and an API that took
    the connection and said nothing held the pause there for Prefect's own retries (minutes), where
    every other request of the pause is given up after ``WHOLE_REQUEST_MOST_SECONDS`` and tried
    again through the outage, saying so. A part an earlier try stored (its answer lost) is kept."""
    # The schema ``save`` stores for a pydantic v2 model: its JSON schema, as the UI renders it.
    _store(client, run_id, keyset["schema"], orjson.dumps(form.model_json_schema(by_alias=True)).decode())
    if isinstance(form._description, str) and form._description:
        _store(client, run_id, keyset["description"], orjson.dumps(form._description).decode())


def _store(client: SyncPrefectClient, run_id: UUID, key: str, value: str) -> None:
    """Store one part of the form; a part an earlier try stored (its answer lost) is kept."""
    try:
        client.create_flow_run_input(run_id, key, value)
    except httpx.HTTPStatusError as err:
        if err.response.status_code != 409:
            raise


class _Waiting:
    """Says, on the paused run, that its process still waits for the answer, every
    ``WAITING_EVERY_SECONDS`` (or every poll, when it polls less often): ``rollway promote`` reads
    it, and does not answer a run whose process died (nothing would act on the answer).

    Each saying is a flow-run input of its own (the API does not overwrite one), the ones before
    deleted after it; one the API refuses is skipped: it must never fail the pause.
    """

    def __init__(self, client: SyncPrefectClient, run_id: UUID, paused: State, poll_interval: float) -> None:
        self.client, self.run_id = client, run_id
        self.prefix = waiting_prefix(paused.state_details.pause_key or "approval")
        self.every = max(WAITING_EVERY_SECONDS, float(poll_interval))
        self.said: str | None = None
        self.stale: list[str] = []  # sayings before ``said`` whose delete the API has not taken yet
        self.last = -math.inf
        self.count = 0

    def say(self) -> None:
        if time.monotonic() - self.last < self.every:
            return
        key = f"{self.prefix}{self.count}"
        self.count += 1
        try:
            # Tried once: the poll reads the run's state after it. Retried through a 429's Retry-After
            # (up to WHOLE_REQUEST_MOST_SECONDS), an answer given meanwhile waited a minute to be acted
            # on; a note refused now is tried again at the next poll.
            with _tried_once():
                self.client.create_flow_run_input(self.run_id, key, json.dumps(
                    {"at": time.time(), "every": self.every, "backoff": client_backoff()}))
        except httpx.HTTPError as err:
            get_run_logger().debug("could not say the run still waits (%s)", passwords_hidden(str(err)))
            if _may_have_landed(err):
                # Stored, its reply lost (the connection dropped after the write): deleted as any
                # earlier saying (a 404 if it was not). Forgotten, each such loss left one more for
                # good, and past the 100 the commands read (the oldest first) a live run was found silent.
                self.stale.append(key)
            return
        self.last = time.monotonic()
        self.stale += [self.said] if self.said is not None else []
        self.said = key
        # A delete refused (tried once: a rate limiter taking the saying and refusing the request right
        # after it) is tried again at the next saying. Left behind, such sayings piled up over a long
        # pause, and past the 100 the commands read (the oldest first) a live run was found silent.
        while self.stale:
            try:
                with _tried_once():
                    self.client.delete_flow_run_input(self.run_id, self.stale[0])
            except httpx.HTTPError as err:
                # A 404: gone already (an earlier try landed, its answer lost).
                if not isinstance(err, httpx.HTTPStatusError) or err.response.status_code != 404:
                    get_run_logger().debug("could not delete an earlier saying that the run waits (%s)",
                                           passwords_hidden(str(err)))
                    return
            self.stale.pop(0)


def _may_have_landed(err: httpx.HTTPError) -> bool:
    """Whether a write that failed with ``err`` may have been stored all the same: no reply came (the
    connection dropped, the request was given up), or a server error, which a proxy answers after
    passing the write on; not a refusal (a 4xx: a 429 or 408 is answered before the write)."""
    if isinstance(err, httpx.HTTPStatusError):
        return err.response.status_code >= 500
    return isinstance(err, httpx.TransportError)


def _heard(client: SyncPrefectClient, run_id: UUID, paused: State, poll_interval: float) -> None:
    """Say on the run, once, that its process read the answer to the pause ``paused``: a saying
    among those it writes while it waits (``_Waiting``), dated after the answer was stored.

    ``unheard_answers`` takes an answer stored while the run had been silent for several periods
    for one its dead process never read. A run silent through a Prefect outage, answered the moment
    the API came back (before its next saying), was taken for dead: `rollway status` told people
    nothing had acted on the answer (and to mark the live run Crashed), and `rollway abort` recorded
    so in the ledger, of an answer the run had acted on. Record-keeping: a write the API refuses is
    said in the run's log, and never fails the run."""
    key = f"{waiting_prefix(paused.state_details.pause_key or 'approval')}heard"
    said = json.dumps(
        {"at": time.time(), "every": max(WAITING_EVERY_SECONDS, float(poll_interval)), "backoff": client_backoff()})
    try:
        try:
            with _tried_once():
                _store(client, run_id, key, said)
            return
        except httpx.HTTPError as err:
            if not _unreachable(err):
                raise
            # Its retries (a 429's Retry-After, say) hold the answer up to a minute: said now, or the
            # person who answered saw the run do nothing, its log silent, for as long.
            get_run_logger().warning(
                "the Prefect API did not take the run's note that it read its answer (%s): the run tries it again "
                "for up to %s before acting on the answer, as without it `rollway status` may take the answer for "
                "one given after the run had died", passwords_hidden(str(err)),
                duration_said(WHOLE_REQUEST_MOST_SECONDS))
        _store(client, run_id, key, said)  # a first try that landed, its answer lost, is kept (409)
    except httpx.HTTPError as err:
        get_run_logger().warning("could not say on the run that it read its answer (%s): after a Prefect outage, "
                                 "`rollway status` may take the answer for one given after the run had died",
                                 passwords_hidden(str(err)))


def silent_since(client: SyncPrefectClient, run, now: float) -> tuple[float, float] | None:
    """When the paused ``run`` last said that its process waited for the answer, and how long a live
    run may stay silent past the API's return (its period, or its Prefect client's longest backoff,
    as the run wrote them: ``look_again_after``), if it has been silent too long by the wall clock
    ``now`` (its process died); None while it says so, or when it never did (a run of an earlier
    rollway, or one paused a moment ago: nothing is judged)."""
    from rollway.approvals import silent_since as judged

    key = getattr(getattr(getattr(run, "state", None), "state_details", None), "pause_key", None)
    if not isinstance(key, str) or not key:
        return None
    said = _sayings(client, run.id, key)
    stamps = [(at, every) for at, every, _ in said]
    since = judged(stamps, now)
    if since is None:
        return None
    _, every, backoff = max(said)
    return since, max(every, backoff)


def look_again_after(every: float) -> float:
    """How long after finding a paused run silent to look again: by when a live run that could not
    say it waited while the Prefect API was away has said so again, ``every`` (``silent_since``: its
    period or its client's longest backoff, as the run wrote them) or this process's client's
    longest backoff (``client_backoff``: a run of an earlier rollway wrote none), and 5 s; at most
    ``LOOK_AGAIN_MOST_SECONDS`` and 5 s.

    The run's client retries a read the API does not answer (a refused connection, a 503) itself,
    with backoffs doubling to 2**``max_retries`` s and a jitter of up to ``retry_jitter_factor`` of
    that, before the run's outage poll sees the read fail: with the API back as that last backoff
    began, 32 s and up to a fifth more by default, the run said it waited again past its period of
    30 s and 5 s, and a live run was taken for dead and marked Crashed. Read from this process's
    Prefect profile alone, a worker whose client retried longer than the command's was still
    taken for dead; and a command whose profile retried 20 times waited 2**20 s (12 days) before
    answering."""
    return min(max(every, client_backoff()), LOOK_AGAIN_MOST_SECONDS) + 5.0


# The longest `rollway promote` (or a run taking a rollout over) waits to look again at a silent
# paused run: a live run's client backs off this long only under a Prefect profile retrying ten
# times or more, and a wait of hours for an answer to be sent is no wait a person can tell from a hang.
LOOK_AGAIN_MOST_SECONDS = 600.0

# The longest wait a 503's (or 429's) Retry-After gets from the paused run's client: honoured as
# sent (Prefect's client sleeps whatever the API or a proxy in front of it asks), the run said
# nothing for as long, and was taken for dead once the API was back; and its watch did not look
# at the canary meanwhile. Its own poll rides out the outage (``_through_outages``). The commands
# that answer a pause (`rollway promote`, `hold`, `abort`) bound it alike: one read of a day's
# Retry-After kept the command silent for a day, and the person took it for hung.
RETRY_AFTER_MOST_SECONDS = 30.0


def client_backoff() -> float:
    """The longest this process's Prefect client stays in one read after the API comes back: its
    last backoff (2**``max_retries`` s) or a Retry-After as the pause's client bounds it
    (``RETRY_AFTER_MOST_SECONDS``), and its jitter (up to ``retry_jitter_factor`` more)."""
    from prefect.settings import get_current_settings

    client = get_current_settings().client
    longest = max(2.0 ** client.max_retries if client.max_retries > 0 else 0.0, RETRY_AFTER_MOST_SECONDS)
    return longest * (1.0 + max(0.0, client.retry_jitter_factor))


# The longest one request of the pause's client (and of the commands that answer a pause) is
# retried: Prefect's client retries a 503 five times, each up to RETRY_AFTER_MOST_SECONDS and its
# jitter (about three minutes in which a command said nothing, taken for hung), and one marked
# Prefect-Maintenance without limit. The paused run's own poll rides out a longer outage, saying
# so (``_through_outages``); a command says the API is away and gives up.
WHOLE_REQUEST_MOST_SECONDS = 60.0

# The statuses Prefect's client retries (``PrefectHttpxSyncClient.send``), and a profile's
# PREFECT_CLIENT_RETRY_EXTRA_CODES (``_retried``).
_RETRIED = frozenset({408, 429, 502, 503})
_FIRST_SENT = "rollway.first_sent"
_LAST_ANSWER = "rollway.last_answer"
# How long a request's tries may take in all (``_tried_once``: 0, one try), kept on the request.
_MOST = "rollway.most_seconds"
_request_most: ContextVar[float] = ContextVar("rollway_request_most", default=WHOLE_REQUEST_MOST_SECONDS)


@contextmanager
def _tried_once() -> Iterator[None]:
    """The pause's client's requests made inside are tried once: a status or an error Prefect's
    client would retry is raised at once (its try still given ``TRY_LEAST_SECONDS``)."""
    token = _request_most.set(0.0)
    try:
        yield
    finally:
        _request_most.reset(token)

# The least a try begun within ``WHOLE_REQUEST_MOST_SECONDS`` is given to be answered: cut to what
# was left of the minute, a retry sent 59 s into it had a second, and an API back from its outage
# that answered in a few seconds timed out, the read given up as if nothing had answered it (and a
# write it took had its answer lost). A request may so run this much past its minute.
TRY_LEAST_SECONDS = 5.0


def _retried() -> frozenset[int]:
    """The statuses this process's Prefect client retries: a profile's extra codes (a 500, say) too,
    or the read given up on them said the API "did not answer" of one that answered each try."""
    from prefect.settings import PREFECT_CLIENT_RETRY_EXTRA_CODES

    return _RETRIED | frozenset(PREFECT_CLIENT_RETRY_EXTRA_CODES.value())


class RequestGaveUp(httpx.TransportError):
    """One request of the pause's client went unanswered for ``WHOLE_REQUEST_MOST_SECONDS`` of
    tries (timed out, refused, reset): a TransportError, as the API is away, but none Prefect's
    client retries."""


def _request_clock() -> float:
    """The monotonic clock a request's tries are timed on (a test's own, in tests)."""
    return time.monotonic()


def _request_sent(request: httpx.Request) -> None:
    """The pause's client's request hook, before each try: when the request was first sent
    (Prefect's client sends the same request again at each retry), and each try's timeouts cut to
    what is left of ``WHOLE_REQUEST_MOST_SECONDS`` (``TRY_LEAST_SECONDS`` at least). An API that
    took the connection and never answered timed out at Prefect's 60 s, retried five times with
    backoffs up to 32 s: about seven minutes in one read, in which `rollway promote` said nothing.

    Raises:
        RequestGaveUp, PrefectHTTPStatusError: none of the request's time is left (the latter when
            the API's last answer was a status Prefect's client retries).
    """
    now = _request_clock()
    retry = _FIRST_SENT in request.extensions
    first = request.extensions.setdefault(_FIRST_SENT, now)
    most = request.extensions.setdefault(_MOST, _request_most.get())
    left = most - (now - first)
    if retry and left <= 0:
        answered = request.extensions.get(_LAST_ANSWER)
        if isinstance(answered, httpx.Response):
            raise _gave_up(answered, now - first)
        raise RequestGaveUp(
            f"the Prefect API did not answer {request.method} {_asked(request)} in {whole_seconds(now - first)} s of "
            f"tries; gave up, as {_given(most)}", request=request)
    request.extensions.pop(_LAST_ANSWER, None)  # said only of the try right before (this one may go unanswered)
    timeout = request.extensions.get("timeout")
    if isinstance(timeout, dict):  # httpx's per-request timeouts (connect, read, write, pool); None: no limit
        given = max(left, TRY_LEAST_SECONDS)
        request.extensions["timeout"] = {kind: given if seconds is None else min(seconds, given)
                                         for kind, seconds in timeout.items()}


def _bounded_retry_after(response: httpx.Response) -> None:
    """The pause's client's response hook: a Retry-After (seconds, or a date) further off than
    ``RETRY_AFTER_MOST_SECONDS`` is read as that many seconds; one Prefect's client cannot read
    (it then backs off as ever) is left as sent.

    Raises:
        PrefectHTTPStatusError: a status Prefect's client would retry, when its wait would take
            the request past ``WHOLE_REQUEST_MOST_SECONDS`` since it was first sent
            (``_request_sent``): what the API answered, for how long, and that it gave up.
    """
    said = response.headers.get("Retry-After")
    _give_up_when_too_long(response, said)
    if said is None:
        return
    try:
        seconds = float(said)
    except ValueError:
        try:
            at = parsedate_to_datetime(said)
        except (TypeError, ValueError, OverflowError):
            return
        # A date with no zone ("-0000", or none) is UTC to Prefect's client: it sleeps until then.
        at = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
        seconds = (at - datetime.now(timezone.utc)).total_seconds()
    if math.isfinite(seconds) and seconds > RETRY_AFTER_MOST_SECONDS:
        response.headers["Retry-After"] = f"{RETRY_AFTER_MOST_SECONDS:g}"


def _give_up_when_too_long(response: httpx.Response, retry_after: str | None) -> None:
    """Raise, instead of a retry, for a retried status whose next wait ends past the request's bound."""
    first = response.request.extensions.get(_FIRST_SENT) if response.status_code in _retried() else None
    if first is None:
        return
    try:
        wait = min(max(0.0, float(retry_after)), RETRY_AFTER_MOST_SECONDS) if retry_after is not None else 0.0
    except ValueError:
        wait = RETRY_AFTER_MOST_SECONDS  # a date: at most this, as the hook bounds it
    elapsed = _request_clock() - first
    most = response.request.extensions.get(_MOST, WHOLE_REQUEST_MOST_SECONDS)
    if most > 0 and elapsed + wait <= most:
        # Its backoff (or the jitter of its Retry-After) may still take it past: the next try's hook says so.
        response.request.extensions[_LAST_ANSWER] = response
        return
    raise _gave_up(response, elapsed)


def _gave_up(response: httpx.Response, elapsed: float) -> PrefectHTTPStatusError:
    """The error of a request given up on after ``elapsed`` s of tries, the API's last answer ``response``."""
    maintenance = " (down for maintenance)" if response.headers.get("Prefect-Maintenance") == "true" else ""
    request = response.request
    # Prefect's own class, as its client raises for a status once its retries are spent.
    return PrefectHTTPStatusError(
        f"the Prefect API answered {response.status_code}{maintenance} to {request.method} {_asked(request)} for "
        f"{whole_seconds(elapsed)} s of tries; gave up, as "
        f"{_given(request.extensions.get(_MOST, WHOLE_REQUEST_MOST_SECONDS))}",
        request=request, response=response)


def _asked(request: httpx.Request) -> str:
    """The URL a request given up on asked, without its query (a token sent as a parameter) or its
    password (an API behind basic auth): the error's text reaches the run's log and state message."""
    return passwords_hidden(str(request.url.copy_with(query=None)))


def _given(most: float) -> str:
    """How long a request was given, as its error ends (``_tried_once``: one try)."""
    return f"one request is given at most {seconds_said(most)}" if most > 0 else "this request is tried once"


def bounded_client() -> SyncPrefectClient:
    """A synchronous Prefect client that waits at most ``RETRY_AFTER_MOST_SECONDS`` of a
    Retry-After and retries a request at most ``WHOLE_REQUEST_MOST_SECONDS`` in all
    (``_bounded_retry_after``): the paused run's, and the commands' that answer it."""
    return orchestration.get_client(httpx_settings={"event_hooks": {"request": [_request_sent],
                                                                    "response": [_bounded_retry_after]}},
                                    sync_client=True)


def waiting_stamps(client: SyncPrefectClient, run_id: UUID, pause_key: str) -> list[tuple[float, float]]:
    """What the run said while it waited at the pause ``pause_key``: (wall time, its period) pairs."""
    return [(at, every) for at, every, _ in _sayings(client, run_id, pause_key)]


def _sayings(client: SyncPrefectClient, run_id: UUID, pause_key: str) -> list[tuple[float, float, float]]:
    """What the run said while it waited at the pause ``pause_key``: (wall time, its period, its
    client's longest backoff) triples; the backoff 0 where a run of an earlier rollway wrote none."""
    stamps = []
    for said in client.filter_flow_run_input(run_id, waiting_prefix(pause_key), 100, set()):
        try:
            value = json.loads(said.value)
            stamps.append((float(value["at"]), float(value["every"]), float(value.get("backoff", 0.0))))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # not one of ours
    return stamps


class _ExpiredUnheard(Exception):
    """The pause was made during a Prefect outage that outlasted its timeout: the server expired it
    before the run could wait for its answer. Its one argument is the Paused state made. Caught by
    the approver, never raised out of it."""

    @property
    def paused(self) -> State:
        return self.args[0]


class _Ended(Exception):
    """The pause's watch ended it (its one argument says why): the run leaves it without waiting
    for an answer. Caught by the approver, never raised out of it: no constructor of its own, so
    it pickles as any exception does."""

    @property
    def reason(self) -> str:
        return self.args[0]


def _look(watch: Watch | None) -> None:
    """Call the pause's ``watch``; raise _Ended when it ends the pause."""
    if watch is not None and (reason := watch()) is not None:
        raise _Ended(reason)


def _wait_for_resume(
    client: SyncPrefectClient, run_id: UUID, paused: State, deadline: float, poll_interval: float,
    watch: Watch | None = None,
) -> float | None:
    """Read the run's state every ``poll_interval`` seconds until it is resumed (None) or its
    pause times out (at the monotonic ``deadline`` or when the server expired it): how many seconds
    late the run acts on the timeout, the Prefect API away when it fell due (0: on time).

    ``watch`` is called at each poll of a run still paused (``rollway.approvals.Watch``): the
    engine judges the canary meanwhile, on the rollout clock. It is called while the Prefect API
    cannot be reached too: its looks need AWS alone, and a canary failing during an outage served
    its errors for as long as the API was down.

    Raises:
        _Ended: the watch ended the pause.
        CancelledWhilePaused: the run was cancelled while it waited.
        PauseInterrupted: it was moved to any other state, or read without any.
    """
    give_up_at = deadline + OUTAGE_GRACE_SECONDS
    waiting = _Waiting(client, run_id, paused, poll_interval)

    def look() -> None:
        _look(watch)

    # What the person on call reads while the API is away: the rollout is not left unwatched.
    doing = "still waiting for an answer" + (
        "; meanwhile the run judges the canary on AWS alone, and rolls the rollout back on its own if the canary "
        "fails"
        if watch is not None else "")
    then = "the run takes the answer given meanwhile, or the pause's timeout once it is past"
    away_at = -math.inf  # when a read of the run's state last found the API away (monotonic)

    def noted(call: Callable[[], T]) -> T:
        nonlocal away_at
        try:
            return call()
        except httpx.HTTPError as err:
            if _unreachable(err):
                away_at = time.monotonic()
            raise

    def through(call: Callable[[], T]) -> T:
        return _through_outages(lambda: noted(call), give_up_at, poll_interval, doing, meanwhile=look, then=then)

    def timed_out_late() -> float:
        # The timeout is the server's to tell: with the API away when it was due, the run acts on
        # it only once the API answers. Said, or a rollback (or a hold) minutes after the deadline
        # the form gave read as a run that ignored its own timeout.
        if away_at < deadline:
            return 0.0
        late = time.monotonic() - deadline
        due = paused.state_details.pause_timeout
        get_run_logger().warning(
            "the pause's timeout was due at %s (wall clock), while the Prefect API could not be reached: the "
            "run acts on it only now that the API answers, %s late", utc(due.timestamp()) if due else "its end",
            _said_to_the_minute(late))
        return late

    while True:
        state = _state_of(client, run_id, through)
        if state.is_running():
            return None
        _stop_if_cancelled(state)
        if _expired(state, paused):
            return timed_out_late()
        if not state.is_paused():
            raise _left_for(state)
        waiting.say()
        look()
        left = deadline - time.monotonic()
        if left <= 0:
            return timed_out_late()
        time.sleep(min(poll_interval, left))


def _back_to_running(client: SyncPrefectClient, run_id: UUID, paused: State,
                     through: Callable[[Callable[[], T]], T] = lambda call: call(), message: str | None = None,
                     when: str | None = None) -> None:
    """Take the run out of a pause nobody answered, so the rollback (or the next pause) can run.
    ``message``: the Running state's, which says why to whoever then tries to answer. ``when``:
    the moment of the pause, as the errors say it (None: a pause the run waited at).

    A person's resume may land at any moment of this, even between a read of Paused and the
    proposal of Running (the server accepts Running over Running): the caller looks for a
    stored answer afterwards whatever happened here.

    Running is proposed, never forced: a person may cancel at this very moment, and the server
    refuses Running for a Cancelling run. A terminal state could be left without force, so the
    state is checked before every proposal. Past its deadline the server answers a Paused run's
    Running with Failed (the pause expired); Running is then proposed once more, from Failed.

    ``through`` makes each call to the API (the approver's rides out outages).

    Raises:
        CancelledWhilePaused: the run was cancelled in the meantime.
        PauseInterrupted: it was moved to any other state, or read without any.
        RuntimeError: the server failed to take its Running ``ABORTED_TRIES`` times in a row, the
            run left where it was (``propose_state``'s NotTaken).
    """
    state = _state_of(client, run_id, through)
    for _ in range(3):  # Paused -> (Failed: expired) -> Running
        # Each a state type of its own: a Paused or expired run is neither Running nor a cancellation.
        if not (state.is_paused() or _expired(state, paused)):
            _still_running(state, when)
            return
        try:
            # Proposed again after an outage even if the first one landed: Running over Running is accepted.
            state = _proposed_running(client, run_id, message, state, through)
        except NotTaken as not_taken:
            # An ordinary error, not Prefect's Abort: raised as that, it went out of the run, which
            # ended with no state of its own and no hook run, left Paused with its rollout at the
            # canary's weights and nothing watching it. Failed, the run's failure hook rolls back.
            raise RuntimeError(
                f"the run could not leave its pause: {not_taken}. It fails here, for its failure hook to roll the "
                "rollout back; should it still show Paused (the server took none of its states), nothing acts on an "
                # A `canary` run keeps no ledger: `rollway abort` then says to run the rollback flow.
                "answer to it, and `rollway abort` rolls the rollout back or says how to") from not_taken
    _still_running(state, when)


def _proposed_running(client: SyncPrefectClient, run_id: UUID, message: str | None, state: State,
                      through: Callable[[Callable[[], T]], T]) -> State:
    """Propose Running, saying ``message``, for the run last read in ``state``; returns the state
    the run is in after it.

    Aborted, the run no longer where it was: a person's resume (or cancel) written at that very
    moment, the likeliest writer to have had the server's database busy. Taken where it is (read
    by the proposal), as before any proposal: raised, Prefect's Abort went out of the run, left
    Running on the person's answer (or Cancelling) with nothing to run it.

    Raises:
        PauseInterrupted: the server aborted it, and then read the run without any state.
        NotTaken: the server failed to take it ``ABORTED_TRIES`` times, the run where it was.
    """
    try:
        return through(lambda: propose_state(client, Running(message=message), run_id, leaving=state))
    except LeftElsewhere as left:
        if left.state is None:
            raise _stateless(left) from left
        return left.state


def _still_running(state: State, when: str | None = None) -> None:
    """Stop the run unless ``state``, the one it is in after leaving its pause, is Running: a
    cancellation stops it as one at its pause does, any other state as it is (``when``: the
    moment it found it at, as the errors say it; None: as it left the pause it waited at).

    Raises:
        CancelledWhilePaused: ``state`` is a cancellation.
        PauseInterrupted: it is any other state but Running.
    """
    _stop_if_cancelled(state, when or _WAITED)
    if not state.is_running():
        raise _left_for(state, when)


def _acting_on(client: SyncPrefectClient, run_id: UUID, message: str, when: str,
               through: Callable[[Callable[[], T]], T]) -> None:
    """Say ``message`` on the run's Running: it left its pause as unanswered, and then found the
    answer it acts on. Never over a state set meanwhile (``when``: that moment, as the errors say
    it): a cancellation stops the run as one at its pause does, any other state stops it as it is.
    The state is read before the proposal, as ``_back_to_running`` does: the server takes Running
    over Cancelled or Failed, and its refusal of Running for a Cancelling run changes nothing.

    Raises:
        CancelledWhilePaused: the run was cancelled meanwhile.
        PauseInterrupted: it was moved to any other state, or read without any.
    """
    state = _state_of(client, run_id, through)
    if state.is_running():
        try:
            state = _proposed_running(client, run_id, message, state, through)
        except NotTaken as not_taken:
            # Running all the same, only its words not the answer's: the person was told it was taken.
            # Raised as Prefect's Abort, it went out of the run, left Running with nothing to run it.
            get_run_logger().warning("the run's Running could not say it acts on the answer (%s): it acts on it all "
                                     "the same, its state not saying so", not_taken)
            return
    _still_running(state, when)


def _given_answer(client: SyncPrefectClient, form: type[ApprovalInput], paused: State, run_id: UUID) -> ApprovalInput:
    """The answer stored with a resume of the pause ``paused``, read as ``RunInput.load`` reads it
    (none stored: the form built from nothing), through ``client``: ``load`` opens an unbounded
    client of its own (``_save_form``).

    Raises:
        ValidationError: no answer is stored, or the one stored does not fit the form.
    """
    try:
        value = orjson.loads(client.read_flow_run_input(run_id, paused.state_details.run_input_keyset["response"]))
    except httpx.HTTPStatusError as err:
        if err.response.status_code != 404:
            raise
        value = None
    return form(**value) if value else form()


def _stored_answer(client: SyncPrefectClient, form: type[ApprovalInput], paused: State,
                   run_id: UUID) -> ApprovalInput | None:
    """The answer stored with a resume, or None when the run was resumed without one."""
    try:
        return _given_answer(client, form, paused, run_id)
    except ValidationError:  # no input stored: the form built from nothing needs an approver
        return None


def when_unanswered(approvals: Approvals, paused_at: datetime) -> str:
    """The form's line saying when the pause times out and what the rollout then does.

    The Prefect UI shows a pause's timeout nowhere, so without this line a person could not
    tell that a pause left open rolls the rollout back, nor by when to answer.
    """
    due = _due(approvals, paused_at)
    then = ("the rollout **rolls back**" if approvals.on_timeout == "rollback"
            else "the rollout stays at these weights and this pause is asked again")
    return (f"Without an answer by **{due}** ({duration_said(approvals.timeout_seconds, given=True)} after this "
            f"pause began), {then} (`approvals.on_timeout: {approvals.on_timeout}`); a timeout never promotes.")


def question_deadline(approvals: Approvals, paused_at: datetime) -> datetime:
    """When a pause begun at ``paused_at`` (aware) times out, on the wall clock."""
    return paused_at + timedelta(seconds=approvals.timeout_seconds)


def _due(approvals: Approvals, paused_at: datetime) -> str:
    return utc(question_deadline(approvals, paused_at).timestamp())


def pause_question(pause: Pause, approvals: Approvals, paused_at: datetime) -> str:
    """The Paused state's message, on one line: the pause's cause and reason, and what a timeout
    does. A person at a terminal sees no form: without it, ``rollway promote`` at a stage the
    judge could not pass accepted that stage while the person may have thought they approved
    the routine next shift."""
    then = "rolls back" if approvals.on_timeout == "rollback" else "asks again"
    # "wall clock": a pause times out in wall seconds, while `rollway status` shows the history
    # on the rollout clock, hours ahead under `rollway up`'s 60x: unlabelled, the deadline read
    # as long past.
    deadline = unanswered_by(question_deadline(approvals, paused_at))
    return " ".join(f"{pause.cause} pause: {pause.reason}; {deadline} the rollout {then}".split())


def prefect_approver(approvals: Approvals, poll_interval: int = 2) -> Approver:
    """An Approver that pauses the flow run with an ApprovalInput form.

    Args:
        approvals: the spec's timeout policy.
        poll_interval: how often the paused run checks for an answer or a cancellation
            (seconds); Prefect's default of 10 s makes a person wait for nothing.

    The approver raises CancelledWhilePaused when the run is cancelled during the pause, and
    PauseInterrupted when it is moved out of the pause some other way, and ``ApiError``
    (``rollway.api_error``: the status and what was asked, without the request and its API key)
    when the Prefect API refused a request, or stayed away past the pause's timeout and grace.

    Given a ``watch`` (``rollway.approvals.Watch``), it calls it at every poll, and leaves the
    pause when it says so: the run goes back to Running, no answer is waited for, and it returns
    None (or the answer stored at that very moment, which the engine does not apply).
    """

    def answer(pause: Pause, summary: str, watch: Watch | None = None,
               began: float | None = None) -> ApprovalAnswer | None:
        with request_left_out():
            return asked(pause, summary, watch, began)

    def asked(pause: Pause, summary: str, watch: Watch | None, began: float | None) -> ApprovalAnswer | None:
        log = get_run_logger()
        context = FlowRunContext.get()
        if context is None or context.flow_run is None:
            raise RuntimeError("an approval pause needs a flow run: call the approver inside a @flow")
        run_id = context.flow_run.id
        # ``began``: a pause a run that died waiting asked first (wall clock), asked again by the run
        # that took the rollout over: its timeout runs from then, not from zero again.
        now = time.time()
        paused_at = datetime.fromtimestamp(min(began, now) if began is not None else now, timezone.utc)
        form = ApprovalInput.with_initial_data(
            description=f"## rollway: {pause.cause} pause\n\n{summary}\n\n"
            "Answer **approve** to continue, **reject** to roll back now, **hold** to stay here.\n\n"
            + when_unanswered(approvals, paused_at),
            action="approve" if pause.cause == "approval" else "hold",
        )
        # The deadline starts before the pause is proposed, as the server's does.
        deadline = time.monotonic() + approvals.timeout_seconds - (now - paused_at.timestamp())
        # Its client bounds a Retry-After (``RETRY_AFTER_MOST_SECONDS``): it reads the run's state and
        # says the run waits, and a long one kept the run silent past `rollway promote`'s second look.
        with bounded_client() as client:

            def through(call, doing: str = "still waiting for an answer", then: str = "the run goes on"):
                return _through_outages(call, deadline + OUTAGE_GRACE_SECONDS, poll_interval, doing, then=then)

            # Said where `rollway promote` and `status` show the pause: its answer may be too late.
            judged = ("; meanwhile the run keeps judging the canary and rolls back on its own if it fails"
                      if watch else "")
            # The canary is judged while the pause cannot be made too: tried again up to the pause's
            # timeout and its grace, the pause judged nothing, and a canary failing meanwhile served
            # its errors for as long as the API was down.
            trying = "still trying to pause for an answer" + (
                "; meanwhile the run judges the canary on AWS alone, and rolls the rollout back on its own if the "
                "canary fails" if watch is not None else "")
            # A key of our own for every pause: the server refuses a pause key that already fired.
            key = f"approval-{uuid4().hex}"
            expired_late = 0.0  # how late the run could wait at all, its pause expired in an outage
            try:
                paused = _pause(client, run_id, form, deadline, pause_question(pause, approvals, paused_at) + judged,
                                lambda call: _through_outages(
                                    call, deadline + OUTAGE_GRACE_SECONDS, poll_interval, trying,
                                    meanwhile=lambda: _look(watch),
                                    then="the run pauses for the answer (the pause's time runs meanwhile)"), key)
            except _Ended as ended:
                return _unpaused(client, run_id, pause, ended, watch, deadline, poll_interval, form, key)
            except _ExpiredUnheard as expired:
                # The wait below finds the pause expired at once, and the timeout policy acts.
                paused = expired.paused
                expired_late = time.monotonic() - deadline
                log.warning("the %s pause timed out during the Prefect outage: it was made as the API went away, "
                            "and the API came back only after its timeout (%s)", pause.cause,
                            duration_said(approvals.timeout_seconds, given=True))
            else:
                # On the wall clock, whatever the rollout clock's speed: "within 3600.0s" read as rollout
                # seconds under `rollway up`, where an hour of them is a wall minute.
                # What it asks, as the form and the notice say it: "paused for approval" alone did not name
                # the stage, and the canary flow sends no notice of its pauses.
                log.info("paused for %s (%s): resume the run with an answer by %s (wall clock, %s from now); "
                         "unanswered, %s",
                         pause.cause, " ".join(pause.reason.split()), _due(approvals, paused_at),
                         # What is left of it: a pause a dead run asked first keeps its deadline.
                         duration_said(approvals.timeout_seconds, given=True) if began is None
                         else _said_to_the_minute(max(0.0, deadline - time.monotonic())),
                         "the rollout rolls back" if approvals.on_timeout == "rollback" else "it holds and asks again")
            given = None

            try:
                late = _wait_for_resume(client, run_id, paused, deadline, poll_interval, watch)
            except _Ended as ended:
                # Running again, with no answer waited for: a resume from now on is refused (the
                # run is not paused), its message saying why. One stored at this very moment is
                # handed to the engine, which records it as not applied. The watch said why in the
                # run's log already.
                left = f"left its {pause.cause} pause without an answer: {ended.reason}"
                # The API away, the rollout does not wait for it: the watch acts (rolls back) first.
                # One that acts without the API leaves only the run's state to the API, so the run
                # waits for it however long it is away: given up at the pause's deadline and grace,
                # the run failed, stayed Paused, and never said the rollback had been done.
                acts = callable(getattr(watch, "act_now", None))
                give_up_at = math.inf if acts else deadline + OUTAGE_GRACE_SECONDS
                leaving = (f"the {pause.cause} pause ends without waiting for an answer, and the run leaves it (and "
                           "reads any answer given at that moment) once the API answers") + (
                    "; the rollback needs AWS alone, and does not wait for it" if acts else "")
                _back_to_running(client, run_id, paused, lambda call: _through_outages(
                    call, give_up_at, poll_interval, leaving, meanwhile=lambda: act_now(watch),
                    then="the run leaves its pause and ends"), message=left)
                given = _through_outages(lambda: _stored_answer(client, form, paused, run_id), give_up_at,
                                         poll_interval,
                                         "the pause has ended; looking for an answer given at that moment",
                                         then="the run ends, saying whether one was given")
                # Said once it is known: "ends unanswered" read above the line saying the answer
                # given at that moment was not applied.
                log.warning("the %s pause ends %s; an answer given from now on is refused", pause.cause,
                            "unanswered" if given is None
                            else f"as it was answered {_said(_answer_of(given))}: the run's look at the canary "
                                 "came first")
                if given is None:
                    return None
                return _heard_answer(client, run_id, paused, poll_interval, given, read_late=True)
            if late is None:
                given = through(lambda: _given_answer(client, form, paused, run_id),
                                "the run was resumed, and reads the answer it was given", "the run acts on that answer")
            else:
                timed = f"the {pause.cause} pause timed out, and the run leaves it once the API answers"
                policy = ("the run takes an answer that landed at the deadline, or else "
                          + ("rolls the rollout back" if approvals.on_timeout == "rollback" else "holds and asks again")
                          + f" (approvals.on_timeout: {approvals.on_timeout})")
                # Said on the state it leaves for, as a pause the judge ended says it: in the UI, and to
                # `rollway promote` ("it is Running (...), not paused"), a bare Running told a person
                # who came to answer nothing of the timeout.
                _back_to_running(client, run_id, paused, lambda call: through(call, timed, policy),
                                 message=f"left its {pause.cause} pause at its timeout, unanswered: it "
                                 + ("rolls the rollout back" if approvals.on_timeout == "rollback"
                                    else "holds and asks again") + f" (approvals.on_timeout: {approvals.on_timeout})")
                # The server stores an answer only with a resume it accepted, so one found now
                # landed at the deadline, after the last poll: the person was told it was taken,
                # and it wins over the timeout policy.
                given = through(lambda: _stored_answer(client, form, paused, run_id), timed, policy)
                if given is not None:
                    # Its resume landed between the read of Paused and the run's Running, which then
                    # said "unanswered" over it: said again as it is, the run acting on that answer.
                    _acting_on(client, run_id, f"answered at its {pause.cause} pause's timeout "
                               f"({_said(_answer_of(given))}): it acts on that answer",
                               f"as it took the answer given at its {pause.cause} pause's timeout, before acting on it",
                               lambda call: through(call, timed, policy))
            if given is not None:
                return _heard_answer(client, run_id, paused, poll_interval, given)
        # Carried by the answer's comment into the ledger's reason and the rollback's page: the log alone
        # said it, and on-call reading the page could not tell it from a timeout acted on at once.
        late = max(float(late or 0.0), expired_late)
        due = paused.state_details.pause_timeout
        unanswered = timed_out(approvals, late_timeout(due.timestamp() if due else None, _said_to_the_minute(late))
                               if late >= 1.0 else None)
        log.warning("nobody answered within %s (wall clock): %s", duration_said(approvals.timeout_seconds, given=True),
                    unanswered.action)
        return unanswered

    return answer


def _unpaused(client: SyncPrefectClient, run_id: UUID, pause: Pause, ended: _Ended, watch: Watch | None,
              deadline: float, poll_interval: float, form: type[ApprovalInput], key: str) -> ApprovalAnswer | None:
    """The watch ended a pause the run was still trying to make (the Prefect API away): roll back
    on AWS alone (``act_now``) while the API stays away, and once it answers leave the pause if a
    try of it (keyed ``key``) landed, its answer lost, so the run ends Running.

    Such a pause was shown in the UI once its form was stored, and the API may have come back for
    long enough meanwhile for a person to answer it (the run then finds itself Running): that
    answer is looked for and returned, as the wait's own end returns one given at that moment, for
    the engine to say and record as not applied (the watch's end stands). Unread, the person who
    approved was told nothing, and the run said the pause "was not made"."""
    acts = callable(getattr(watch, "act_now", None))
    give_up_at = math.inf if acts else deadline + OUTAGE_GRACE_SECONDS

    def through(call):
        return _through_outages(
            call, give_up_at, poll_interval,
            f"the {pause.cause} pause is not known to be made, and the run leaves it if a try of it landed"
            + ("; the rollback needs AWS alone, and does not wait for it" if acts else ""),
            meanwhile=lambda: act_now(watch, paused=False),
            then="the run ends without the pause, saying whether a try of it landed and was answered")

    state = _state_of(client, run_id, through)
    made = through(lambda: _made(client, run_id, key))
    given = None
    if made is None:
        _stop_if_cancelled(state, _BEFORE_THE_PAUSE)
        fate = "was not made"
    else:
        if state.is_paused() or _expired(state, made):
            _back_to_running(client, run_id, made, through,
                             message=f"left its {pause.cause} pause without an answer: {ended.reason}",
                             when=_NEVER_WAITED)
        else:
            # Running: a person answered it. A cancellation, or another state (marked Crashed, its
            # process taken for dead, or Failed), stops the run as it stops one that waited: gone on
            # as from a pause left unanswered, it acted past the state it was moved to.
            _still_running(state, _NEVER_WAITED)
        # Looked for whatever happened above: a resume may land at any moment of it.
        given = through(lambda: _stored_answer(client, form, made, run_id))
        fate = "made while the Prefect API came and went " + (
            "is left, unanswered" if given is None else
            f"was answered {_said(_answer_of(given))} before the run could read it")
    get_run_logger().warning("the %s pause %s: the run's look at the canary ended it first", pause.cause, fate)
    if given is None:
        return None
    return _heard_answer(client, run_id, made, poll_interval, given, read_late=True)


def _made(client: SyncPrefectClient, run_id: UUID, key: str) -> State | None:
    """The Paused state a try of the pause keyed ``key`` put the run in, if one landed (its answer
    lost to an outage), whatever the run is in now; None when none did."""
    return next((state for state in client.read_flow_run_states(run_id)
                 if state.is_paused() and state.state_details.pause_key == key), None)


def _said(answer: ApprovalAnswer) -> str:
    """``answer`` as the run's log and its state name it: ``approve by dana (looks fine)``, the comment
    on one line and its control characters escaped (``on_one_line``), as the name's: an escape
    sequence in a comment acted on the terminal of whoever read the log, and a right-to-left
    override reordered the words after it."""
    comment = on_one_line(answer.comment)
    return f"{answer.action} by {answer.who}" + (f" ({comment})" if comment else "")


def _answer_of(given: ApprovalInput, answered_at: float | None = None) -> ApprovalAnswer:
    return ApprovalAnswer(action=given.action, approver=given.approver.strip(), comment=given.comment,
                          next_weight=given.next_weight, answered_at=answered_at)


def _heard_answer(client: SyncPrefectClient, run_id: UUID, paused: State, poll_interval: float,
                  given: ApprovalInput, *, read_late: bool = False) -> ApprovalAnswer:
    """The answer ``given`` to the pause ``paused``, once the run has said it read it (``_heard``):
    the one way every answer the run took leaves the approver. One ``read_late`` (after the run's
    look at the canary ended the pause) carries when it was stored: the ledger records it as
    not applied, with that time; an answer the run acts on is recorded when it acts, and the read
    of its time would be one more API call per approval for nothing."""
    _heard(client, run_id, paused, poll_interval)
    return _answer_of(given, _given_at(client, run_id, paused) if read_late else None)


def _given_at(client: SyncPrefectClient, run_id: UUID, paused: State) -> float | None:
    """When the answer to the pause ``paused`` was stored (wall-clock epoch seconds, Prefect's stamp),
    for the ledger's record of one read late (``not-applied``); None when the API cannot say
    (record-keeping: never fails the run; said in the run's log, where the person reading that
    record without its time looks for why)."""
    key = paused.state_details.run_input_keyset["response"]
    try:
        stored = client.filter_flow_run_input(run_id, key, 1, set())
    except (httpx.HTTPError, ValueError) as err:
        # ValueError: a 2xx body that is not JSON (a proxy's page) or lacks the input's fields
        # (pydantic's ValidationError is one); the answer itself was read, and stands without it.
        get_run_logger().warning("could not read when the answer was stored (%s): the ledger records it as not "
                                 "applied without the time it was given", passwords_hidden(str(err)))
        return None
    return next((given.created.timestamp() for given in stored if given.key == key and given.created), None)


def _earlier_form_took(value: str) -> ApprovalInput | None:
    """The answer ``value`` as an earlier rollway's form took it, or None when it is no answer to
    any: the server checks a resume against the form the run stored as it paused, and an earlier
    one let a name with a control character through (``NAME_PATTERN`` refuses it now). Its control
    characters are shown as escapes (``shown``): the run's log and the ledger print the name.
    Skipped as no answer to the form, it was recorded by nobody and told to nobody."""
    try:
        data = json.loads(value)
        name = data["approver"]
        if not isinstance(name, str) or not name.strip():
            return None
        form = ApprovalInput.model_validate({**data, "approver": "-"})
    except (ValueError, TypeError, KeyError):  # ValueError: ValidationError is one
        return None
    return form.model_copy(update={"approver": shown(name.strip(), keep="")})


_RESPONSE = "-response"
_FORM_PREFIX = "paused-approval-"  # keyset_from_paused_state of a pause keyed "approval-<hex>" (``_pause``)
# The pause's reason, as the engine opens the form's summary with it ("**<reason>**").
_ASKED = re.compile(r"\*\*(.+?)\*\*")


def unheard_answers(run_id: UUID) -> list[UnheardAnswer]:
    """The answer the flow run ``run_id`` was resumed with after its process died while it was
    paused for it (none or one: the run pauses no more), as a list: Prefect stored it with the
    resume, and no process read it.

    Told apart from an answer the run took by what the run said while it waited: it says every
    ``WAITING_EVERY_SECONDS`` that it still waits, so an answer stored while it had been silent
    for several periods (``answered_dead``) came after its process died. A run that read its
    answer says so once more, after it (``_heard``): silent through a Prefect outage and answered
    as it ended, it was alive all the same. A run of an earlier rollway, which said nothing, gives none.
    """
    with bounded_client() as client:
        try:
            run = client.read_flow_run(run_id)
        except ObjectNotFound:  # deleted, or run against another Prefect API: nothing to read
            return []
        # The last pause it made alone: a run whose process died pauses no more, and one that paused
        # again after an answer had read it. Read by its key: a run asked again at every timeout
        # for weeks kept over a thousand earlier forms' parts, which Prefect gives oldest first up
        # to the limit asked for, and the answer to the pause the run died in was past it.
        last = next((state.state_details.pause_key for state in reversed(client.read_flow_run_states(run_id))
                     if state.is_paused() and state.state_details.pause_key), None)
        if last is None:
            return []
        # The form's parts are keyed by the Paused state's keyset ("paused-<pause key>-..."), what
        # the run says while it waits by the pause key alone (``waiting_prefix``).
        inputs = [*client.filter_flow_run_input(run_id, f"paused-{last}-", 10, set()),
                  *client.filter_flow_run_input(run_id, waiting_prefix(last), 100, set())]
    by_key = {given.key: given for given in inputs}
    found = []
    for key, given in by_key.items():
        if not (key.startswith(_FORM_PREFIX) and key.endswith(_RESPONSE)) or given.created is None:
            continue
        base = key[:-len(_RESPONSE)]
        pause_key = base.removeprefix("paused-")
        stamps = []
        for said in inputs:
            if said.key.startswith(waiting_prefix(pause_key)):
                try:
                    value = json.loads(said.value)
                    stamps.append((float(value["at"]), float(value["every"])))
                except (ValueError, TypeError, KeyError):
                    continue  # not one of ours
        answered_at = given.created.timestamp()
        silent = answered_dead(stamps, answered_at)
        if silent is None:
            continue
        try:
            form = ApprovalInput.model_validate_json(given.value)
        except ValidationError:
            form = _earlier_form_took(given.value)
            if form is None:
                continue  # not an answer to rollway's form
        described = by_key.get(f"{base}-description")
        asked = _ASKED.search(str(json.loads(described.value))) if described is not None else None
        found.append(UnheardAnswer(
            answer=_answer_of(form),
            run=f"{run.name} ({run.id})", answered_at=answered_at, silent_since=silent,
            question=asked.group(1) if asked else None))
    return sorted(found, key=lambda unheard: unheard.answered_at)
