"""finalize: after a promotion, move the promoted version onto the stable service and the traffic back to it.

A promotion leaves the canary service carrying all the traffic; another rollout needs it idle.
In order, each step logged and recorded:

1. refuse (``FinalizeRefused``, before any write) unless the newest rollout is promoted, its
   monitoring window is over and the canary carries the traffic on the revision the ledger
   recorded as promoted (a canary changed since is refused, never moved onto stable); a
   finalized one is reported and left alone;
2. take the rollout's lease (refused, naming its holder, while another run holds it: two
   finalizes at once would each act and page), then record ``finalize-start`` in the ledger;
3. point the stable service at the promoted task definition with the capacity to carry all
   traffic, and wait until it is steady with healthy targets: until then the canary serves
   everything, as before (a promoted revision deregistered, or deleted, since, which ECS points
   no service at, is found before any write, and the stable service takes an identical copy of it: the
   copy is registered under the lease and named in ``finalize-start``);
4. send 100 % to stable and read it back: both services run the same version now, so users
   see no change whichever one a request reaches;
5. scale the canary to 0 (it keeps the promoted task definition: idle, it mirrors stable, and
   the next rollout restores it on rollback), tell people, and record ``finalized``.

Every wait is bounded and said while it lasts: the first reads (the load balancer, the services,
the `canary` flow's runs) by ``verify_timeout_seconds``, the ledger's by ``ledger_read_seconds``,
each write by ``WRITE_SECONDS`` and the run's lease of the rollout (never sent once it lapsed), the
stable service's waits by their own settings; a read given up
on is made on clients that end within its bound. A run that stops part-way raises
``FinalizeIncomplete`` saying what users are served, and the next run carries on (a run whose
process was killed holds the lease until it lapses; the refusal says when), reading what a write
the stopped run gave up on left (its stable service's update, its canary's scale-down may land
after it stopped): one that landed is said and not sent again. The flow ends with a markdown artifact (``<canary service>-finalize``): what
it did, or why it refused, or what it had done when it stopped and how to go on. No state hooks: a failed finalize must not trigger a rollback, which
would put the previous version back in production.

With ``unrecorded`` it finalizes a promotion the ledger does not record (the ``canary`` flow
keeps none): the same steps, planned from what AWS shows (``plan_unrecorded``), refused while
the ledger's newest rollout is open or a ``canary`` flow run (or another ``finalize`` one) has not ended, and nothing is
written to the ledger. The ``canary`` flow runs the same steps in-run with ``finalize=True``.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Callable, Iterator, NamedTuple, Sequence, TypeVar

import prefect.runtime as prefect_runtime
from prefect import flow, get_run_logger

from flows.engine import TooFewHealthyTargets, set_and_verify, wait_healthy
from flows.env import CANARY_FLOW, load_environment, run_owner, unfinished_runs
from flows.artifacts import create_markdown_artifact, for_people
from flows.journal import artifact_key
from flows.params import Actor, BreachAcceptance, WaitSeconds
from flows.reports import publish_incident
from rollway.api_error import as_cause
from rollway.aws.denied import rollout_said
from rollway.aws.errors import NOT_TAKEN, OtherGroupsForwarded, ServiceNotStable, WeightMismatch, answer_lost
from rollway.aws.ledger import ledger_failure
from rollway.bounds import seconds_said, to_the_tenth, wait_said, whole_seconds
from rollway.clock import ClockSettings, ScaledClock
from rollway.deadline import READ_SECONDS, ReadBackUnanswered, Unanswered, answered, within
from rollway.environment import Environment
from rollway.failure_words import error_said, failures_writable
from rollway.finalize import (
    ALL_STABLE, DONE, NOTICE, UNRECORDED_ACCEPT, already_finalized, entry_words, finalized_said, START, FinalizeIncomplete, FinalizePlan,
    FinalizeNoticeRefused, FinalizeRefused, FinalizeResult, accepted_breach, finalize_unfinished, is_finalized, late_said,
    UNANSWERED_WHY, lost_before, notice_failed_said, notice_lost, notice_owed, owed_as_well, owed_notice,
    plan_finalize, plan_unrecorded, runs_promoted, same_revision,
)
from rollway.ledger import (
    BREACH_ACCEPTED, NOTICE_FAILED, NOTIFIED, TAKEOVER, LockHeld, RolloutEnded, RolloutMovedOn, RolloutRecord, RolloutSuperseded, Transition, utc, wall_utc,
)
from rollway.image import with_pin
from rollway.model import ServiceState, Weights
from rollway.one_line import shown
from rollway.report import markdown_cell
from rollway.reports import wants_incident
from rollway.spec import RolloutSpec
from rollway.targets import Targets
from rollway.url_passwords import passwords_hidden
from rollway.window_page import unsent
from tasks import ecs, metrics, traffic

T = TypeVar("T")

WRITE_SECONDS = 600.0
"""How long finalize waits on one write (ECS, SNS, the ledger) before it stops, saying so. The
run's clients give a call six attempts of up to 15 s and their backoff, and a task's retries send
it up to three times: a write still unanswered after this is held by something no retry ends (a
DNS lookup takes no timeout), and the run stopped at it says where things stand."""


def _written(what: str, seconds: float, work: Callable[[], T], *,
             lease: tuple[Callable[[], float], float] | None = None, stopped: threading.Event | None = None) -> T:
    """``work()``, a write to ``what`` ("ECS (UpdateService on 'x')"), said every 10 s while it
    lasts (a throttled or silent AWS held finalize minutes without a word) and given up on after
    ``seconds``.

    ``lease``: (the wall clock, when this run's lease of the rollout lapses), for a write made
    under it: never sent once the lease has lapsed, nor waited on past it. The lease (``ROOM``
    beyond the waits, 300 s) is shorter than ``seconds``: a write waited on past it ran while
    another finalize, which took the lapsed lease over, made the same moves and told people again.

    ``stopped``: set once the run stops waiting for ``work``, which goes on in its thread: ``work``
    reads it to send nothing more after (a notice's resend).

    Raises:
        Unanswered: "<what> did not answer within N s; the write may still land, ...", or
            "<what> was not sent: this run's lease ... lapsed ...".
        Whatever ``work`` raised, as it raised it.
    """
    log = get_run_logger()
    bound, lapses = seconds, None
    if lease is not None:
        wall, lapses = lease
        left = lapses - wall()
        if left <= 0:
            raise Unanswered(f"{what} was not sent: this run's lease of the rollout lapsed at {utc(lapses)}, and "
                             "another finalize may have taken the rollout over since; finalize reads what it finds "
                             "when run again")
        bound = min(seconds, left)
    # The bound as given, or what was left of the lease to the tenth of a second, a half up: rounded
    # half to even, a given 0.25 s read "0.2 s".
    said = seconds_said(seconds if bound == seconds else to_the_tenth(bound))
    try:
        return within(bound, work, name="rollway-write",
                      waiting=lambda elapsed: log.info("still waiting for %s after %d s of %s", what,
                                                       whole_seconds(elapsed), said))
    except Unanswered:
        if stopped is not None:
            stopped.set()
        if bound < seconds:
            raise Unanswered(f"{what} did not answer within {said}, what was left of this run's lease of the "
                             f"rollout (it lapses at {utc(lapses)}): finalize stops rather than wait past it, when "
                             "another finalize may take the rollout over; the write may still land, and finalize "
                             "reads what it finds when run again") from None
        raise Unanswered(f"{what} did not answer within {seconds_said(seconds)}; the write may still land, and finalize reads "
                         "what it finds when run again") from None


def _under(env: Environment, held: RolloutRecord | None) -> tuple[Callable[[], float], float] | None:
    """The ``lease`` of ``_written`` for writes made holding ``held`` (None: no lease held)."""
    return None if held is None else (env.wall, held.lease_expires)


def _ledger_write(env: Environment, seconds: float, work: Callable[[], T], *,
                  lease: tuple[Callable[[], float], float] | None = None) -> T:
    return _written(f"DynamoDB (the ledger, table {env.targets.rollouts_table!r})", seconds, work, lease=lease)


def _reading(port, seconds: float):
    """``port`` for reads given up on after ``seconds``: on clients whose calls end within them, where
    it has such clients (``reading``: the AWS adapters), else itself (the fakes)."""
    reading = getattr(port, "reading", None)
    return port if reading is None else reading(seconds)


class _Progress:
    """The steps of one run: logged as they happen, returned in the result, and turned into
    ``FinalizeIncomplete`` (saying what users are served) when one fails."""

    def __init__(self, *, unrecorded: bool, targets: Targets | None = None) -> None:
        self.log = get_run_logger()
        self.steps: list[str] = []
        self.unrecorded = unrecorded  # the error then says to run finalize again with --unrecorded
        self.targets = targets  # the run's own names, in a refused permission's statement

    def done(self, step: str) -> None:
        # A step may quote the ledger's names (who finalized, who began an earlier finalize) as
        # typed: logged with their control characters escaped, as the terminal shows the log too,
        # and on one line (a line break in a name began a line that read as a step of its own).
        self.log.info("finalize: %s", shown(step, keep=""))
        self.steps.append(step)

    def not_sent(self, refused: str, *, late: bool = False, lost: bool = False, before: str = "",
                 gave_up: bool = False) -> None:
        """Say that SNS did not take the "Finalized" notice (``late``: the one owed, sent late), or
        that its answer was lost (``lost``; ``gave_up``: the run stopped waiting for it): ``refused``,
        its answer, logged as a warning and listed among the steps. ``before``: a send before it
        whose answer was lost (``lost_before``), said after it, the refusal then said as the late
        notice's (``notice_failed_said``'s ``before``)."""
        said = notice_failed_said(refused, lost=lost, gave_up=gave_up, before=before)
        # Logged as the step says it: "the late " before a sentence beginning with its own article
        # read 'the late the "Finalized" notice'. A refusal after an earlier send (``before``) says
        # "the late notice" itself; a late send not known to be sent does not.
        line = f"late: {said}" if late and (lost or not before) else said
        self.log.warning("finalize: %s", shown(line, keep=""))
        self.steps.append(line)

    def stopped(self, step: str, why: str, state: str) -> FinalizeIncomplete:
        # Not logged here: raised, it fails the run, whose engine logs it (in the run's log; the
        # command keeps it off the terminal, where its own "error:" line says it). Logged here too,
        # a person read the whole stop twice on the terminal, above the command's own line.
        return FinalizeIncomplete(step, why, state, unrecorded=self.unrecorded, done=self.steps)

    def ran_out(self, step: str, said: str, seconds: float, bound: str, state: str) -> FinalizeIncomplete:
        """The stop of a wait bounded by the parameter ``bound`` (``seconds``) that ran out of time:
        ``said``, the wait's own words, with the parameter beside its figure, and how to give the
        next run more. Its words alone ("not stable after 600s", as a RuntimeError) named neither.
        The figure is found as a wait says it ("after 10 min", ``wait_said``; "after 45 s" as given,
        ``seconds_said``, as rollway.deadline writes it), and said as given (every digit, where
        ``:g`` wrote 1234567 s as "1.23457e+06 s"), beside the parameter a person gives it in."""
        given = seconds_said(seconds)
        figure = next((f for f in (f"after {given}", f"after {wait_said(seconds)}") if f in said), None)
        said = (said.replace(figure, f"after {given} ({bound})", 1) if figure is not None
                else said if f"{given} ({bound})" in said  # named already (ReadBackUnanswered)
                else f"{said} ({bound}: {given})")
        option = "--" + bound.replace("_", "-")
        return FinalizeIncomplete(step, said, state, unrecorded=self.unrecorded, done=self.steps,
                                  longer=f"if it only needs more time, give it more than the {given} it had: "
                                         f"`{option}` (the finalize deployment's {bound})")

    def read(self, step: str, state: str, what: str, seconds: float, work: Callable[[], T]) -> T:
        """``work()``, a read of ``what`` made during ``step`` that a person waits on: said every
        10 s while it lasts, and given up on after ``seconds``, the run's ``verify_timeout_seconds``
        (the stop names it, and how to give the next run more). ``work`` reads on clients bounded
        by it (``reading``), so that nothing goes on reading once the run has stopped."""
        try:
            return answered(what, seconds, work, self.log.info)
        except Unanswered as err:
            raise self.ran_out(step, str(err), seconds, "verify_timeout_seconds", state) from None

    @contextmanager
    def trying(self, step: str, state: str | Callable[[], str]) -> Iterator[None]:
        """Run a step; on failure raise FinalizeIncomplete with ``state`` (called then, if callable)."""
        try:
            yield
        except (FinalizeRefused, FinalizeIncomplete):
            # Refused: the step found, before changing anything, that this run must not act.
            # Incomplete: the step said its own stop (``ran_out``).
            raise
        except Exception as err:  # noqa: BLE001 - any failure is reported with where things stand
            # A refused permission is said as the rollout policy's statement granting it (what a
            # person adds to the role), not AWS's bare refusal; asking again would be refused too.
            said = _for_finalize(err) if isinstance(err, OtherGroupsForwarded) else rollout_said(err, self.targets)
            said = error_said(said)
            raise self.stopped(step, said, state() if callable(state) else state) from err


def _for_finalize(err: OtherGroupsForwarded) -> OtherGroupsForwarded:
    """The load balancer's refusal of a rule with a third group, with advice true after a
    promotion: its own (roll the rollout back) would move users back to the old version."""
    told = copy.copy(err)
    told.args = (f"{err.found}: remove {err.them} from the rule and run finalize again (a rollback after a promotion "
                 "would move users back to the old version)",)
    return told


def _record(env: Environment, record: RolloutRecord, transition: dict, *, owner: str | None,
            write_seconds: float = WRITE_SECONDS, held: RolloutRecord | None = None, **changes) -> RolloutRecord:
    # owner: the lease this run took on the rollout (``_holding``), so that a write after another
    # run took the lapsed lease over is refused (NotOwner). Tied to ``record``'s id as well: a write
    # that would land on a rollout begun since is refused (RolloutSuperseded), never applied to it.
    # ``held``: the lease's record, whose expiry bounds the write (``_written``).
    now = env.clock.now()
    return _ledger_write(env, write_seconds, lambda: env.ledger.record(
        env.targets.canary_service, owner=owner, now=now, rollout=record.rollout_id,
        transition=Transition(at=now, **transition), **changes), lease=_under(env, held))


def _newest(env: Environment, seconds: float) -> RolloutRecord | None:
    """The service's newest rollout, read from the ledger within ``seconds``.

    On the run's clients (several attempts of up to a minute, kept for its writes) a ledger table
    that throttled or stopped answering held the run, and the lease it holds, with no end, while
    `rollway finalize`'s own read gives up after its bound: this read does too, and the step it
    is part of stops saying what was done and to run finalize again.

    Raises:
        Unanswered: "DynamoDB (the ledger, table 'x') did not answer within N s".
    """
    t = env.targets
    # On clients whose calls end within ``seconds``: one given up on went on in its thread for a
    # minute or more on the run's clients.
    ledger = _reading(env.ledger, seconds)
    return answered(f"DynamoDB (the ledger, table {t.rollouts_table!r})", seconds,
                    lambda: ledger.get(t.canary_service), get_run_logger().info)


def _moved_on(read: RolloutRecord, stored: RolloutRecord) -> RolloutMovedOn:
    last = stored.history[-1] if stored.history else None
    return RolloutMovedOn(f"rollout {read.rollout_id} was written since this run read it"
                          + (f" (its newest entry: {last.kind!r} by {last.actor})" if last else ""))


def _as_read(read: RolloutRecord):
    """A ledger rule: the rollout is as this run read it when it planned (no write since)."""

    def rule(stored: RolloutRecord) -> None:
        if stored.version != read.version:
            raise _moved_on(read, stored)

    return rule


def _stale(err: Exception) -> FinalizeRefused:
    return FinalizeRefused(
        f"the ledger changed after this run read it ({err}): another finalize, or a rollout begun since, "
        "acted meanwhile, so what this run planned may no longer hold. Run finalize again, which reads "
        "the ledger afresh. Nothing was changed"
    )


@contextmanager
def _holding(env: Environment, record: RolloutRecord, holder: str, lease_seconds: float,
             progress: _Progress, before: str, ledger_seconds: float,
             write_seconds: float = WRITE_SECONDS) -> Iterator[RolloutRecord]:
    """Hold the promoted rollout's lease while this run acts on it, as a rollout's run does.

    Two finalizes of one promotion at once each moved the services and the traffic and told
    people twice: a finalize that read the ledger after another recorded its start found nothing
    in its way. The lease is taken before anything changes, refused (FinalizeRefused, naming who
    holds it) while another run's is live, and given back however this run ends; a run whose
    process was killed holds it until it lapses, ``lease_seconds`` (wall) after it was taken,
    and the next finalize then carries on from where that one stopped.

    Yields:
        The rollout as the lease's write left it (the version the next write must find).
    """
    t = env.targets
    with progress.trying("take the rollout's lease", before):
        try:
            held = _ledger_write(env, write_seconds, lambda: env.ledger.acquire(
                t.canary_service, owner=holder, now=env.clock.now(), lease_seconds=lease_seconds,
                rollout=record.rollout_id, wall=env.wall()))
        except LockHeld:
            raise FinalizeRefused(_held_by(env, record, ledger_seconds)) from None
        except (RolloutSuperseded, RolloutEnded) as err:
            raise _stale(err) from err
    try:
        written = held.history
        if written[-1:] and written[-1].kind == TAKEOVER and written[-1].actor == holder:
            written = written[:-1]  # this run's own takeover of a killed finalize's lapsed lease
        if written != record.history:
            # Written since this run planned (another finalize finished meanwhile, say).
            raise _stale(_moved_on(record, held))
        yield held
    finally:
        try:
            # Within the lease too: once it lapsed there is nothing of this run's to give back, and a
            # stop at the lease's end ("rather than wait past it") waited up to 600 s more here.
            _ledger_write(env, write_seconds, lambda: env.ledger.release(t.canary_service, owner=holder),
                          lease=_under(env, held))
        except Exception as err:  # noqa: BLE001 - the run's own outcome stands; the lease lapses on its own
            progress.log.warning("could not give back the rollout's lease (it lapses at %s): %s",
                                 utc(held.lease_expires), err)


def _held_by(env: Environment, record: RolloutRecord, ledger_seconds: float) -> str:
    """Why this finalize leaves the rollout alone: who holds its lease, and until when."""
    current = _newest(env, ledger_seconds) or record
    start = current.last_transition(START) if finalize_unfinished(current) else None
    # The lease runs on the wall clock, the ledger's entries on the rollout clock: hours apart
    # under `rollway up`'s 60x clock, so each time says which it is on.
    until = wall_utc(current.lease_expires)
    left = max(current.lease_expires - env.wall(), 0)
    lease = f"whose lease runs until {wall_utc(current.lease_expires, f'{left:.0f} s from now')}"
    which = f"rollout {record.rollout_id} of {with_pin(record.image, record.pinned_image)}"
    if is_finalized(current):
        # A finalize finished meanwhile and has not given the lease back yet: "recorded no finalize of
        # it" was untrue, and its "Finalized" notice owed went unsaid, as no other refusal leaves it.
        done = current.last_transition(DONE)
        return (f"{which} was finalized meanwhile, at {utc(done.at)} by {done.actor}, and is still held by "
                f"{current.owner}, {lease}: that run is ending. Run finalize again once it has given the lease back "
                f"(`rollway status` shows the holder), or after {until} if it died: it finds the rollout finalized "
                f"and moves nothing.{owed_as_well(current, env.targets)} Nothing was changed")
    if start is None:
        # No finalize recorded its start: the rollout's own run (its window's watch, a decommission),
        # a rollback, or a finalize between taking the lease and recording its start (it registers a
        # copy of a deregistered revision first), maybe killed there. The ledger cannot tell which.
        last = current.history[-1] if current.history else None
        newest = (f" (its newest entry: {last.kind!r} at {utc(last.at)} on the rollout clock, by {last.actor})"
                  if last else "")
        return (f"{which} is held by {current.owner}, which has recorded no finalize of it: the rollout's own run, a "
                f"rollback, or a finalize that has not recorded its start yet{newest}, {lease}: "
                "finalize does not act on a rollout another run holds. If that run is still going (`rollway status` "
                "shows the holder), let it end: a run gives its lease back as it ends. If it died, run finalize "
                f"again after {until}, when its lease has lapsed. Nothing was changed")
    return (
        f"{which} is held by a finalize by {start.actor} ({current.owner}), {lease}: that run is acting on it, and two "
        "finalizes at once would each move the services and the traffic and tell people twice. Let it finish "
        f"(`rollway status` shows the holder); if its process was killed, run finalize again after {until}: it "
        "carries on from where that run stopped. Nothing was changed"
    )


def run_finalize(env: Environment, *, actor: str, stable_timeout_seconds: float = 600.0,
                 verify_timeout_seconds: float = 30.0, healthy_timeout_seconds: float = 300.0, unrecorded: bool = False,
                 canary_runs: Callable[[], Sequence[str]] = tuple,
                 finalize_runs: Callable[[], Sequence[str]] = tuple, image: str | None = None,
                 promoted: str | None = None, owner: str | None = None,
                 pinned_image: str | None = None, ledger_read_seconds: float = READ_SECONDS,
                 write_seconds: float = WRITE_SECONDS, accept_breach: str | None = None) -> FinalizeResult:
    """Finalize the service's promoted rollout; see the module docstring for the order.

    Args:
        actor: who asked, recorded in the ledger and the notice.
        stable_timeout_seconds: how long the stable service may take to become steady.
        verify_timeout_seconds: how long to wait for the load balancer's read-back, and for each
            read of the services (and, with ``unrecorded``, of ``canary_runs`` and ``finalize_runs``).
        healthy_timeout_seconds: how long the stable service's targets may take to pass their
            health checks (a service scaled up from 0 starts new targets).
        unrecorded: finalize a promotion the ledger does not record, from what AWS shows;
            nothing is written to the ledger (``env.ledger`` may be None: nothing is read either).
        canary_runs: with ``unrecorded``, the `canary` flow runs that have not ended (any refuses).
        finalize_runs: with ``unrecorded``, the other `finalize` flow runs that have not ended (any
            refuses: with nothing recorded, no lease keeps two apart).
        image: the promoted image, for the notice and result, when the ledger does not say.
        pinned_image: the digest ``image`` was pinned to, when the ledger does not say.
        promoted: with ``unrecorded``, the task definition the promotion put on the canary, when
            known: a canary pointed elsewhere since is refused, not moved onto the stable service.
        owner: who holds the recorded rollout's lease while this run acts (default: this flow run,
            or outside one this process); another finalize is refused meanwhile.
        ledger_read_seconds: how long each read of the ledger may take (as `rollway finalize`'s own):
            one that runs out stops the run where it is, saying so (``FinalizeIncomplete``).
        write_seconds: how long each write (ECS, SNS, the ledger) may take, said every 10 s while it
            lasts; one that runs out stops the run where it is, saying so.
        accept_breach: why the person finalizing accepts the breach not rolled back that stands on
            the rollout (``unhandled_breach``), recorded as ``breach-accepted`` under the lease before
            ``finalize-start``; refused where none stands, and with ``unrecorded``.

    Raises:
        FinalizeRefused: before any write, when there is nothing this run may finalize.
        FinalizeIncomplete: a step failed; the message says what users are served.
    """
    t = env.targets
    if env.ledger is None and not unrecorded:
        raise FinalizeRefused("finalize needs the rollout ledger: it acts only on a rollout recorded as promoted")
    if unrecorded and accept_breach is not None:
        raise FinalizeRefused(UNRECORDED_ACCEPT)
    progress = _Progress(unrecorded=unrecorded, targets=env.targets)
    # A read that fails is a stop like any other: the run's error and summary say where it stopped
    # and that nothing changed (it failed with AWS's bare error, and left no summary).
    reading = "read the rollout, the load balancer and the services"
    unchanged = "Nothing was changed: the traffic and the services are as they were."

    def read(what: str, work: Callable[[], T]) -> T:
        return progress.read(reading, unchanged, what, verify_timeout_seconds, work)

    with progress.trying(reading, unchanged):
        newest = _newest(env, ledger_read_seconds) if env.ledger is not None else None
        spec = RolloutSpec.for_rollback(newest.spec_json) if newest is not None else None
        try:
            live = traffic.weights_within(env.router, verify_timeout_seconds)
        except ReadBackUnanswered as err:
            raise progress.ran_out(reading, str(err), verify_timeout_seconds, "verify_timeout_seconds",
                                   unchanged) from err
        # Bounded as the weights' read: a throttled or silent ECS (or Prefect API) held the run without a word.
        deployer = _reading(env.deployer, verify_timeout_seconds)
        stable = read(f"ECS (service {t.stable_service!r})", lambda: ecs.describe_service(deployer, t.stable_service))
        canary = read(f"ECS (service {t.canary_service!r})", lambda: ecs.describe_service(deployer, t.canary_service))
        running = read("the Prefect API (the `canary` flow's runs not ended)", canary_runs) if unrecorded else ()
        finalizing = (read("the Prefect API (the other `finalize` flow runs not ended)", finalize_runs)
                      if unrecorded else ())
    speed = getattr(env.clock, "speed", 1.0)  # a refusal for a window still open says when in wall time too
    if unrecorded:
        copy_of = None
        if (live == ALL_STABLE and not same_revision(stable.task_definition, canary.task_definition)
                and hasattr(deployer, "copied_from")):
            # A finalize that stopped after the traffic moved onto a copy of a deregistered revision.
            with progress.trying(reading, unchanged):
                copy_of = read(f"ECS (task definition {stable.task_definition!r})",
                               lambda: deployer.copied_from(stable.task_definition))
        plan = plan_unrecorded(newest, spec, live=live, stable=stable, canary=canary, canary_runs=running,
                               finalize_runs=finalizing, stable_copy_of=copy_of,
                               targets=t, now=env.clock.now(), promoted=promoted, speed=speed, wall=env.wall())
    else:
        plan = plan_finalize(newest, spec, live=live, stable=stable, canary=canary, targets=t, now=env.clock.now(),
                             speed=speed, wall=env.wall(), accept_breach=accept_breach)
    # The promoted rollout, when the ledger records it: what is written to and said about.
    record = None if unrecorded else newest
    rollout_id, image = (record.rollout_id, record.image) if record is not None else (None, image)
    # The digest the promoted revision names: the tag alone may name another image by now.
    pinned = record.pinned_image if record is not None else pinned_image
    version = with_pin(image, pinned) if image else None
    td = plan.task_definition

    if plan.action == "done" and unrecorded:
        # Without a record, AWS alone cannot tell a finalized promotion from a rolled-back one,
        # or from a service no promotion ever reached: say what it shows, claim nothing more.
        # The stable service may run a copy of the canary's revision (registered because that one
        # was deregistered): two task definitions, one version.
        progress.done(f"nothing to finalize: {t.stable_service} runs {td} and carries {live.stable}% of the "
                      f"traffic, {t.canary_service} is at 0 tasks on {_alike(canary.task_definition, td)}")
        return FinalizeResult(outcome="nothing_to_finalize", rollout_id=None, image=image,
                              pinned_image=pinned, task_definition=td, weights=live, stable_desired=stable.desired,
                              canary_desired=0,
                              steps=tuple(progress.steps))
    if plan.action == "done":
        # Found done, the run may follow one that recorded a breach accepted and died before its report.
        with ExitStack() as afterwards:
            _report_afterwards(afterwards, env, record, ledger_read_seconds)
            changed = ""
            if record.canary_task_definition is not None and not runs_promoted(record, td):
                # Pointed elsewhere since (a hotfix by hand): the rollout's image is not what it runs,
                # and the summary paired the two as if it were.
                changed = f" (not the finalized {record.canary_task_definition}: it was changed since)"
                image = pinned = None
            # A "Finalized" notice SNS refused is owed, as the decommission's page is: sent late now.
            # With ``changed`` in the late notice too: a hotfix put on by hand since read as the release finalized.
            runs = f"{td}{changed}"
            # The late notice names the release as the first one would have (its tag, pin and revision),
            # unless the stable service runs something else since.
            release = f"{version} ({td})" if version and not changed else runs
            # A send before this run's that lost its answer (the notice and its repeat, or a late send):
            # said after a refusal of this one.
            lost_earlier = lost_before(record)
            owed = _send_owed_notice(env, record, actor, release, live, progress, write_seconds, lost_earlier)
            # The command prints this step as its closing line: the log, the summary and the terminal agree.
            progress.done(already_finalized(record, runs=runs, weights=live, targets=t, sent_late=owed.message_id,
                                            refused_late=owed.latest))
            return FinalizeResult(outcome="already_finalized", rollout_id=rollout_id, image=image,
                                  pinned_image=pinned, task_definition=td, weights=live, stable_desired=stable.desired,
                                  canary_desired=0, notification_id=owed.message_id, notice_refused=owed.refused,
                                  notice_lost=owed.lost, notice_unanswered=owed.gave_up,
                                  notice_lost_before=lost_earlier if owed.refused is not None else "",
                                  steps=tuple(progress.steps))

    after = f"The traffic is on {t.stable_service}, which runs the promoted {td}: users see the promoted version."
    before = (f"The load balancer was not changed: {t.canary_service} still serves {live.canary}% of the traffic on "
              f"{td}." if plan.action == "start" else after)
    # A run finishing what another left (the traffic moved) has little left to do: a shorter lease,
    # so that a killed one holds up the next run less.
    lease_seconds = ROOM + (stable_timeout_seconds + healthy_timeout_seconds + verify_timeout_seconds
                            if plan.action == "start" else 0.0)
    holder = (owner or run_owner()) if record is not None else None
    leased = (_holding(env, record, holder, lease_seconds, progress, before, ledger_read_seconds, write_seconds)
              if record is not None else nullcontext())
    # A finalize of this rollout that began and did not finish: a write it gave up on may have
    # landed after it stopped, and what AWS shows now says whether it did.
    earlier = record.last_transition(START) if finalize_unfinished(record) else None
    # ECS points no service at a deregistered (INACTIVE) or deleted revision: one deregistered since the
    # promotion (a clean-up script; the canary keeps running it) stopped every finalize at its
    # UpdateService, and an unfinished finalize holds up the next rollout. Read before any write.
    stand_in = None
    if plan.action == "start":
        with progress.trying(reading, unchanged):
            stand_in = _stand_in(deployer, td, read, earlier=earlier)
    # The report after the lease is given back (``afterwards`` outermost): a write to the Prefect API,
    # which needs no lease, made under it kept every other run off the rollout for as long as the API
    # took to answer, and one slower than the lease had the lease's release refused as sent too late.
    with ExitStack() as afterwards, leased as held:
        if plan.accepts is not None:
            held = _accept(env, held, plan.accepts, accept_breach, actor, progress, owner=holder,
                           write_seconds=write_seconds, before=before)
        # However the run ends from here (finalized, or stopped at a step), the report of a breach accepted
        # by this run or by an earlier one (which may have died before writing it): recorded either way.
        _report_afterwards(afterwards, env, held, ledger_read_seconds)
        if plan.action == "start":
            weights = _move_to_stable(env, held, plan, live, actor, progress, owner=holder,
                                      stable_timeout_seconds=stable_timeout_seconds,
                                      verify_timeout_seconds=verify_timeout_seconds,
                                      healthy_timeout_seconds=healthy_timeout_seconds, write_seconds=write_seconds,
                                      stable=stable, earlier=earlier, stand_in=stand_in)
            if stand_in is not None:
                td = stand_in.revision
                after = (f"The traffic is on {t.stable_service}, which runs {td}, an identical copy of the promoted "
                         f"{stand_in.promoted}: users see the promoted version.")
        else:
            weights = live
            progress.done(f"a previous run moved the traffic already ({live} stable/canary, {t.stable_service} on {td}): "
                          "carrying on from there")

        scale_down = f"scale {t.canary_service} to 0"
        with progress.trying(scale_down, after):
            # The canary's revision as read at the start (the stable service may run a copy of it).
            taken = _taken_over(env, newest, canary.task_definition, unrecorded=unrecorded, ledger_seconds=ledger_read_seconds,
                                verify_seconds=verify_timeout_seconds,
                                read=lambda what, work: progress.read(scale_down, after, what,
                                                                      verify_timeout_seconds, work))
        if taken:
            # Once the traffic left the canary, a new rollout could start on it: that canary is not ours to scale down.
            raise progress.stopped(scale_down, taken, after)
        # Read before the traffic moved (this run's) or after (an earlier run's): at 0 already after
        # an earlier finalize whose scale-down landed, though that run stopped without its answer
        # (or a person's since: said as what was found, not as whose it was).
        idle = earlier is not None and plan.action == "after-traffic" and canary.desired == 0
        if idle:
            retired = canary
            progress.done(f"{t.canary_service} is at 0 tasks already, as the finalize {_begun(earlier)} set out to "
                          "leave it: not sent again")
        else:
            with progress.trying(scale_down, after):
                retired = _written(f"ECS (UpdateService on {t.canary_service!r})", write_seconds,
                                   lambda: ecs.update_service(env.deployer, t.canary_service, desired=0),
                                   lease=_under(env, held))
            progress.done(f"{t.canary_service} scaled to 0 on {retired.task_definition}, idle for the next rollout")
        # That run may have got past its scale-down to its notice (SNS keeps nothing a run can read
        # back), so people may have had this notice from it already.
        repeat = (f"\n\nThis notice may repeat one the finalize {_begun(earlier)} sent: it stopped after the "
                  f"traffic moved, and {t.canary_service} was at 0 tasks when this run began." if idle else "")
        # People were paged about the breach: the notice says who kept the release anyway, and why.
        accepted = (f" {actor} accepted the breach not rolled back of {utc(plan.accepts.at)} "
                    f"({entry_words(plan.accepts)}): {accept_breach}" if plan.accepts is not None else "")
        # Told before it is recorded: if the ledger write fails, the next run tells again rather than never.
        # A notice SNS does not take is recorded rather than stopped at: stopped, the finalize was never
        # recorded done, and every run again moved nothing and stopped at the same notice, holding up
        # the next rollout until SNS took a publish (a topic policy missing blocked a whole phase).
        # One whose answer was lost is sent once more at once, saying it may repeat it (``notify_or_repeat``):
        # the finalize is done by now, and stopping there failed it for a notice SNS may have delivered.
        # One the run stopped waiting for is recorded as not known, as that repeat lost is, unless this
        # run's lease lapsed: that stops the run here (``_told``). Not sent once more once the run stopped
        # waiting (``stopped``): it has said by then that nobody knows whether the notice went out, and a
        # finalize run again sends it late, saying it may repeat one.
        lease, stopped = _under(env, held), threading.Event()
        with progress.trying("notify", after):
            # One that may repeat an earlier run's (``idle``) says so in its subject too, as every notice that may
            # repeat one does: a mail client shows subjects.
            message_id, refused, lost, gave_up = _told(t, lambda: _written(f"SNS (topic {t.alert_topic!r})", write_seconds, lambda: metrics.notify_or_repeat(
                env.notifier, f"{metrics.REPEAT if idle else ''}Finalized: {t.stable_service}",
                f"{t.stable_service} now runs {f'{version} ({td})' if version else td} on {plan.stable_desired} tasks and "
                f"carries 100% of the traffic (read back from the load balancer: {weights} stable/canary). "
                f"{t.canary_service} is at 0 tasks on {_alike(retired.task_definition, td)}, ready for the next "
                "rollout.\n\n"
                f"{_which(rollout_id)}, finalized by {actor}.{accepted}{repeat}",
                waited=lambda: not stopped.is_set(),
            ), lease=lease, stopped=stopped), lease=lease)
        unrecorded_why = ""  # why the ledger could not record the notice owed ("": recorded, or none owed)
        if refused is None:
            progress.done("notified")
        else:
            progress.not_sent(refused, lost=lost, gave_up=gave_up)
        if record is not None:
            with progress.trying(f"record {DONE!r} in the ledger", after):
                _record(env, record, {"kind": DONE, "actor": actor, "from_weights": live, "to_weights": weights,
                              "comment": f"{t.stable_service} runs {td} and carries the traffic; {t.canary_service} at 0"},
                        owner=holder, write_seconds=write_seconds, held=held, weights=weights)
            progress.done(f"recorded {DONE!r} on rollout {record.rollout_id}")
            if refused is not None:
                _, unrecorded_why = _record_not_sent(env, record, refused, actor, progress, owner=holder,
                                                     write_seconds=write_seconds, held=held, lost=lost,
                                                     gave_up=gave_up)
    return FinalizeResult(outcome="finalized", rollout_id=rollout_id, image=image, pinned_image=pinned,
                          task_definition=td,
                          weights=weights, stable_desired=plan.stable_desired, canary_desired=retired.desired,
                          notification_id=message_id, notice_refused=refused, notice_lost=lost,
                          notice_unanswered=gave_up, notice_unrecorded=unrecorded_why, steps=tuple(progress.steps))


def _told(t: Targets, publish: Callable[[], str], *, lease: tuple[Callable[[], float], float] | None = None
          ) -> tuple[str | None, str | None, bool, bool]:
    """(SNS's message id, None, False, False) once ``publish`` went out; (None, SNS's answer as people
    read it: a refused permission as the statement granting it, False, False) when SNS did not take it. A
    publish whose answer was lost (SNS may have taken it: ``answer_lost``, wrapped as the SNS notifier
    raises it or bare) is returned as a refusal is, True third: the run says it is not known whether
    the notice went out, not that it was not sent. The first "Finalized" notice's ``publish`` sent it
    once more after a lost answer (``notify_or_repeat``), so this is that one lost (or refused) too.

    A publish this run gave up waiting on (``Unanswered``) is returned so too, True third and fourth
    (no answer was lost: the run stopped waiting for one), with the wait's words alone: its advice
    ("finalize reads what it finds when run again") is for a run that stops there. Raised, it stopped
    a finalize whose work was done: the first notice's before ``finalized`` was recorded (the rollout
    held up the next one until a run again finished it), a late one part-way. Recorded as not known
    instead (``notice-failed``), it is owed: a finalize run again sends it late, saying it may repeat
    it; of a promotion the ledger does not record, the run's error says to check the deliveries.

    ``lease``: the publish's (``_written``'s), for a publish under this run's lease. One given up on
    as the lease lapsed (not sent once it had, or not waited on past it) is raised: the run stops
    there, as every write of it does once the lease has lapsed (``finalized`` too, which it could no
    longer record), and says so; returned, a publish never sent was said to be one SNS may have taken."""
    try:
        return publish(), None, False, False
    except Unanswered as err:
        if lease is not None and lease[0]() >= lease[1]:
            raise
        return None, str(err).partition(";")[0], True, True
    except Exception as err:  # noqa: BLE001 - any refusal is recorded and said, and the run fails at its end
        answer = str(error_said(rollout_said(err, t)))
        return None, answer, answer_lost(err), False


class _Owed(NamedTuple):
    """What came of the late send of a "Finalized" notice owed (``_send_owed_notice``)."""

    message_id: str | None  # SNS's, once it took it
    refused: str | None = None  # SNS's answer (or the wait's words) when it did not, or its answer was lost
    latest: Transition | None = None  # the ``notice-failed`` this run recorded of it (or would have)
    lost: bool = False  # ``refused`` is a lost answer, or a wait given up on: it may have gone out
    gave_up: bool = False  # with ``lost``: the run stopped waiting for SNS's answer


def _send_owed_notice(env: Environment, record: RolloutRecord, actor: str, runs: str, live: Weights,
                      progress: _Progress, write_seconds: float, before: str) -> _Owed:
    """Send the "Finalized" notice of a finalize done whose notice SNS refused, or lost its answer to
    (``notice_owed``),
    late and saying why (``runs``: what the stable service runs now, as the first notice named it, or
    as ``already_finalized`` says it when pointed elsewhere since), then record it ``notified`` (its
    message id): status and the report stop saying it was not sent. Refused again, or its answer lost
    (or not waited for to its end: ``_told``), that is recorded (``notice-failed``, SNS's newest answer;
    after a send that lost its answer, without "nobody was told") and returned, with its entry (what
    this run says of the notice owed, not the earlier refusal), and the run fails at its end saying so,
    as the first did, naming a send before it that lost its answer (``before``: ``lost_before(record)``).
    Nothing but a message id when no notice is owed. At least once,
    as the decommission's page: a run that dies between the publish and its ``notified`` leaves it
    owed, and a finalize run sends it again while this rollout is the service's newest (a finalize
    reads no other)."""
    owed = notice_owed(record)
    if owed is None:
        return _Owed(None)
    t, done = env.targets, record.last_transition(DONE)
    body = (f"{late_said(record, owed)}.\n\n{t.stable_service} runs {runs} and carries {live.stable}% of "
            f"the traffic (read back from the load balancer: {live} stable/canary); {t.canary_service} is at 0 tasks, "
            f"ready for the next rollout.\n\n{_which(record.rollout_id)}, finalized by {done.actor} at {utc(done.at)}; "
            f"this notice sent by {actor}'s finalize run.")
    # After a send that may have gone out its subject says it may repeat one, as its first line does (``late_said``)
    # and every other notice that may repeat one: a mail client shows subjects.
    subject = f"{metrics.REPEAT if notice_lost(record) is not None else ''}Finalized (late): {t.stable_service}"
    with progress.trying("send the \"Finalized\" notice owed", "Nothing was moved: the rollout is finalized."):
        message_id, refused, lost, gave_up = _told(t, lambda: _written(
            f"SNS (topic {t.alert_topic!r})", write_seconds, lambda: metrics.notify(env.notifier, subject, body)))
    if refused is not None:
        # After a send that lost its answer, not said as if nobody may have had the notice.
        progress.not_sent(refused, late=True, lost=lost, gave_up=gave_up, before=before)
        # A lost answer (or a wait given up on) is recorded too, so that the next late send says it may
        # repeat this one (nothing else tells it this send was made). Unrecorded, the earlier
        # ``notice-failed`` still makes the notice owed: a finalize run again sends it late.
        latest, _ = _record_not_sent(env, record, refused, actor, progress, owner=None, write_seconds=write_seconds,
                                     held=None, lost=lost, late=True, gave_up=gave_up, after_lost=bool(before))
        return _Owed(None, refused, latest, lost, gave_up)
    progress.done(f"sent late {owed_notice(record)} (SNS message id {message_id})")  # as ``already_finalized`` says it
    try:
        _record(env, record, {"kind": NOTIFIED, "actor": actor, "wall": env.wall(), "message_id": message_id,
                              "comment": 'the "Finalized" notice was sent late'},
                owner=None, write_seconds=write_seconds)
    except Exception as err:  # noqa: BLE001 - sent; unrecorded, a finalize run may send it again
        # A finalize reads the service's newest rollout only: once another starts, none sends it again.
        progress.log.error("finalize: could not record on rollout %s that its late notice was sent (%s): a finalize "
                           "run sends it again while %s is the service's newest rollout; once another starts, none "
                           "does", record.rollout_id, ledger_failure(err, env.targets), record.rollout_id)
        return _Owed(message_id)
    progress.done(f"recorded {NOTIFIED!r} on rollout {record.rollout_id}")
    return _Owed(message_id)


def _record_not_sent(env: Environment, record: RolloutRecord, refused: str, actor: str, progress: _Progress, *,
                     owner: str | None, write_seconds: float, held: RolloutRecord | None,
                     lost: bool = False, late: bool = False, after_lost: bool = False,
                     gave_up: bool = False) -> tuple[Transition, str]:
    """Record on the rollout, after its ``finalized``, that SNS did not take the notice (as the
    rollback records its own, ``notice-failed``), or (``lost``) that its answer was lost, to the
    notice and its repeat (``notify_or_repeat``) or to a late send (``late``) (``notice_failed_said``):
    `rollway status` and the report say it, and the next late send says it may repeat that one
    (``late_said``); ``gave_up``: with ``lost``, the run stopped waiting for SNS's answer instead. ``after_lost``: a late send refused after one whose answer was lost, recorded without
    "nobody was told" (``notice_failed_said``). A write that fails is logged: the run fails anyway,
    saying what came of the notice.

    Returns:
        The entry, as recorded (or as it would have been): this run's refusal, as people read it; and
        why the write failed (``ledger_failure``'s words; "": recorded). The first notice's refusal
        unrecorded leaves no notice owed (unless the write lands all the same), and a finalize run
        again may send nothing late (``notice_unrecorded``).
    """
    entry = {"kind": NOTICE_FAILED, "actor": actor, "wall": env.wall(),
             "comment": notice_failed_said(refused, lost=lost, after_lost=after_lost, gave_up=gave_up)}
    said = Transition(at=env.clock.now(), **entry)
    try:
        _record(env, record, entry, owner=owner, write_seconds=write_seconds, held=held)
    except Exception as err:  # noqa: BLE001 - the run's own error says what came of the notice
        notice = "its late notice" if late else "its notice"
        what = (f"it stopped waiting for SNS's answer to {notice}" if lost and gave_up
                else "its late notice's answer was lost" if lost and late
                else "its notice may not have been sent (SNS's answer was lost, and its repeat's lost or refused)" if lost
                else f"{notice} was not sent")
        # A late send's earlier ``notice-failed`` stands (the notice stays owed): status shows that one.
        status = ("shows the earlier send's failure alone"
                  + (", and a late notice sent again does not say it may repeat this one" if lost else "") if late
                  else "shows it finalized without saying so")
        why = str(ledger_failure(err, env.targets))
        progress.log.error("finalize: could not record on rollout %s that %s (%s): `rollway status` %s",
                           record.rollout_id, what, why, status)
        return said, why
    progress.done(f"recorded {NOTICE_FAILED!r} on rollout {record.rollout_id}")
    return said, ""


def _accept(env: Environment, held: RolloutRecord, breach: Transition, reason: str, actor: str,
            progress: _Progress, *, owner: str | None, write_seconds: float, before: str) -> RolloutRecord:
    """Record that ``actor`` accepts ``breach`` (named by its time) for ``reason``, on the rollout as
    this run read it: a breach recorded since (or any other write) makes the write refused, and the
    run with it, so an acceptance never covers a breach its person did not see.

    Returns:
        The rollout as the write left it (the version ``finalize-start`` must find).
    """
    with progress.trying(f"record {BREACH_ACCEPTED!r} in the ledger", before):
        try:
            written = _record(env, held, {"kind": BREACH_ACCEPTED, "actor": actor, "comment": reason,
                                          "breach_at": breach.at},
                              owner=owner, rule=_as_read(held), write_seconds=write_seconds, held=held)
        except (RolloutSuperseded, RolloutMovedOn) as err:
            raise _stale(err) from err
    progress.done(f"recorded {BREACH_ACCEPTED!r} on rollout {held.rollout_id}: {actor} accepts the breach recorded at "
                  f"{utc(breach.at)} ({breach.actor}'s run: {entry_words(breach)}), because {reason}")
    return written


def _report_afterwards(afterwards: ExitStack, env: Environment, record: RolloutRecord | None,
                       ledger_seconds: float) -> None:
    """Have ``afterwards`` write the incident report of the breach accepted on ``record``
    (``_report_accepted``), when one is: recorded by this run, or by an earlier one. The run that
    records an acceptance writes the report last, and one that died before it left the report written
    while the breach stood (still in production, the `rollback` flow as the way out) the newest under
    its key: the next run, which has no acceptance of its own to record, wrote none. Every finalize of
    the rollout that gets this far (past its first reads and its refusals) writes it again, under the
    same key, from what the ledger holds. Written again even by a run that finds the rollout
    finalized: the newest report under the key may be one written before the finalize was done (the
    accepting run stopped at a step, and the run that finished it died before its report), and no
    cheaper look than the ledger's tells that one from the report of the finalize done."""
    if accepted_breach(record) is not None:
        afterwards.callback(_report_accepted, env, record, ledger_seconds)


def _report_accepted(env: Environment, accepted: RolloutRecord, ledger_seconds: float) -> None:
    """Write the incident report of the breach accepted on the rollout (by this run or an earlier one)
    again (``publish_incident``), from the ledger as the run's last write left it: the one written
    while the breach stood, the newest under its key in the Prefect UI, went on saying the release was
    "still in production as far as the ledger knows" after a person had kept it, and `rollway report`
    said nothing of it. A ledger that cannot be read again gives ``accepted``, the rollout as this run
    found it, with the acceptance when this run recorded it (its traffic then as recorded before this
    run moved it, which the report says is the ledger's last record). Never raises: the report is for
    people, and the run's own outcome stands."""
    log = get_run_logger()
    try:
        record = _newest(env, ledger_seconds)
    except Exception as err:  # noqa: BLE001 - said; the acceptance as written still makes the report true
        # "As the acceptance left it" was untrue of a run after the one that accepted, which found the
        # rollout further on (finalized, say) and wrote that.
        log.warning("could not read the ledger again for the incident report (%s): written from the rollout as this "
                    "run found it (with the acceptance, when this run recorded it), without what it recorded since",
                    error_said(err))
        record = None
    if record is None or record.rollout_id != accepted.rollout_id:
        record = accepted
    # The clock this run's entries were stamped on, for the report's window to read the logs in on the wall clock.
    clock = (ClockSettings(speed=env.clock.speed, anchor=env.clock.anchor)
             if isinstance(env.clock, ScaledClock) and env.clock.speed != 1.0 else None)
    if wants_incident(record):
        for_people("incident report", lambda: publish_incident(record, env.targets, now=env.wall(), clock=clock))


def _alike(canary: str, stable: str) -> str:
    """What the idle canary runs, beside the stable service's ``stable``: "the same task definition",
    or the promoted revision the stable service runs an identical copy of (``_StandIn``)."""
    return ("the same task definition" if same_revision(canary, stable)
            else f"{canary}, of which {stable} is an identical copy")


class _StandIn:
    """What the stable service takes instead of a promoted revision deregistered (or deleted)
    since: an identical copy of it, registered already (``revision``) or to be registered (None)."""

    def __init__(self, promoted: str, revision: str | None, status: str = "INACTIVE") -> None:
        self.promoted, self.revision, self.status = promoted, revision, status

    def gone(self) -> str:
        """What became of the promoted revision: deregistered (INACTIVE), or deleted (DELETE_IN_PROGRESS)."""
        return f"{NOT_TAKEN[self.status]} ({self.status})"

    def why(self) -> str:
        return (f"{self.promoted} was {self.gone()} since the promotion, and ECS points no service at "
                f"such a revision: {self.revision} is an identical copy of it (the same containers and image "
                "references, roles, cpu and memory, network mode and tags), which the canary keeps running as the original, "
                "so what users get does not change")


def _stand_in(deployer, td: str, read: Callable[[str, Callable[[], T]], T], *,
              earlier: Transition | None = None) -> _StandIn | None:
    """None while ``td`` is ACTIVE; else (INACTIVE, or DELETE_IN_PROGRESS) the copy the stable
    service takes (one registered by an earlier finalize: the one its ``earlier`` start names
    while ACTIVE, else found by its tag; else one to register). A deployer that cannot tell (the
    fakes) keeps ``td``."""
    if not hasattr(deployer, "revision_status"):
        return None
    status = read(f"ECS (task definition {td!r})", lambda: deployer.revision_status(td))
    if status not in NOT_TAKEN:
        return None
    # The tag is searched among the family's newest revisions only, and a copy of a revision
    # carrying 50 tags has none: the start that recorded the copy names it whatever came since.
    recorded = earlier.stable_task_definition if earlier is not None else None
    if recorded and read(f"ECS (task definition {recorded!r})",
                         lambda: deployer.revision_status(recorded)) == "ACTIVE":
        return _StandIn(td, recorded, status)
    return _StandIn(td, read(f"ECS (copies of {td!r})", lambda: deployer.copy_of(td)), status)


def _which(rollout_id: str | None) -> str:
    return f"Rollout {rollout_id}" if rollout_id else "The promotion the ledger does not record (the `canary` flow's)"


def _taken_over(env: Environment, newest: RolloutRecord | None, td: str, *, unrecorded: bool,
                ledger_seconds: float, verify_seconds: float, read: Callable[[str, Callable[[], T]], T]) -> str | None:
    """Why the canary service is no longer this finalize's to scale down, or None while it is.

    A new rollout that started meanwhile shows as a newer record in the ledger; a `canary` flow
    run, which keeps no ledger, as the canary service pointed at another task definition (read
    with ``read``: bounded, as the first step's describes are).
    """
    t = env.targets
    if env.ledger is not None:
        now = _newest(env, ledger_seconds)
        if (now.rollout_id if now else None) != (newest.rollout_id if newest else None):
            return (f"rollout {now.rollout_id if now else '?'} of {t.canary_service} started meanwhile and owns the "
                    "canary service now")
    if unrecorded:
        # Only on this path, so that a recorded finalize makes the same calls as before.
        deployer = _reading(env.deployer, verify_seconds)
        pointed = read(f"ECS (service {t.canary_service!r})",
                       lambda: ecs.describe_service(deployer, t.canary_service)).task_definition
        if not same_revision(pointed, td):
            return f"{t.canary_service} was pointed at {pointed} meanwhile: a new rollout deploys to it"
    return None


def _move_to_stable(env: Environment, record: RolloutRecord | None, plan: FinalizePlan, live: Weights, actor: str,
                    progress: _Progress, *, owner: str | None, stable_timeout_seconds: float, verify_timeout_seconds: float,
                    healthy_timeout_seconds: float, write_seconds: float = WRITE_SECONDS,
                    stable: ServiceState | None = None, earlier: Transition | None = None,
                    stand_in: _StandIn | None = None) -> Weights:
    """Record the intent (if the ledger records the promotion), bring the stable service onto the
    promoted version, then move the traffic.

    ``stable``: the stable service as this run read it; ``earlier``: the ``finalize-start`` of a
    finalize of this rollout that did not finish (None: none). That run's UpdateService of the
    stable service may have landed after it stopped (given up on at its bound): what the stable
    service runs says whether it did, and this run says so and does not send it again.

    Returns:
        The weights read back: 100 % stable.
    """
    t = env.targets
    promoted = plan.task_definition
    if stand_in is not None and stand_in.revision is None:
        # Under the lease, before the ledger says the stable service takes it: a run stopped
        # between the two finds this copy again by its tag rather than registering another.
        with progress.trying(f"register a copy of {promoted}, which was {stand_in.gone()}",
                             f"The load balancer was not changed: {t.canary_service} still serves {live.canary}% of "
                             f"the traffic on {promoted}."):
            stand_in.revision = _written(f"ECS (RegisterTaskDefinition, a copy of {promoted!r})", write_seconds,
                                         lambda: env.deployer.copy_revision(promoted), lease=_under(env, record))
        progress.done(f"registered {stand_in.revision}, a copy of the promoted {promoted}: {stand_in.why()}")
    elif stand_in is not None:
        progress.done(f"{t.stable_service} takes {stand_in.revision}, registered by an earlier finalize: "
                      f"{stand_in.why()}")
    # What the stable service runs: the promoted revision, or its copy.
    td = promoted if stand_in is None else stand_in.revision
    landed = (earlier is not None and stable is not None and same_revision(stable.task_definition, td)
              and stable.desired >= plan.stable_desired)
    found = None
    if earlier is not None and stable is not None:
        found = (f"{t.stable_service} already runs {td} with {stable.desired} tasks, where the finalize "
                 f"{_begun(earlier)} set out to point it: not sent again"
                 if landed else
                 f"the finalize {_begun(earlier)} did not leave {t.stable_service} on {td} with {plan.stable_desired} "
                 f"tasks (it runs {stable.task_definition} with {stable.desired}): this run points it there")
    before = (f"The load balancer was not changed: {t.canary_service} still serves {live.canary}% of the traffic on "
              f"{promoted}.")
    if record is not None:
        with progress.trying(f"record {START!r} in the ledger", before):
            try:
                # canary_task_definition: what the stable service must run, so that a run finding the
                # traffic already moved knows it was moved onto the promoted version. Only on the
                # rollout as planned: a finalize that ran meanwhile (and a rollout begun after it)
                # made this run's plan stale, and acting on it would move that rollout's traffic.
                _record(env, record, {"kind": START, "actor": actor, "from_weights": live,
                                      "comment": (f"{found}; " if found else "")
                                                 + (f"{stand_in.why()}; " if stand_in is not None else "")
                                                 + f"moving {td} onto {t.stable_service} at {plan.stable_desired} "
                                                   f"tasks, then the traffic from {t.canary_service} to it",
                                      # The copy the stable service takes (``stable_takes``): a run
                                      # finding the traffic moved onto it knows it for the promoted version.
                                      **({"stable_task_definition": td} if stand_in is not None else {})},
                        owner=owner, rule=_as_read(record), canary_task_definition=promoted,
                        write_seconds=write_seconds,
                        held=record)
            except (RolloutSuperseded, RolloutMovedOn) as err:
                raise _stale(err) from err
        progress.done(f"recorded {START!r} on rollout {record.rollout_id}")
    if landed:
        progress.done(found)
    else:
        if found:
            progress.log.info("finalize: %s", shown(found, keep=""))
        with progress.trying(f"point {t.stable_service} at {td}", before):
            _written(f"ECS (UpdateService on {t.stable_service!r})", write_seconds, lambda: ecs.update_service(
                env.deployer, t.stable_service, task_definition=td, desired=plan.stable_desired),
                lease=_under(env, record))
        progress.done(f"{t.stable_service} pointed at {td} with {plan.stable_desired} tasks")
    # Said of a stop from here on: "the load balancer was not changed" alone hid that the stable
    # service now asks for its tasks of the release (the next run finds that done).
    pointed = (f"{t.stable_service} was pointed at {td} with {plan.stable_desired} tasks before the wait, and keeps "
               f"them; the load balancer was not changed: {t.canary_service} still serves {live.canary}% of the "
               f"traffic on {promoted}.")
    # The waits the rollback makes before it moves traffic: steady, then healthy targets.
    waiting = f"wait until {t.stable_service} is steady with healthy targets"
    # Minutes pass here while ECS starts the tasks: said before and while it lasts, or `rollway
    # finalize` looks stuck.
    progress.log.info("waiting up to %s (stable_timeout_seconds) for %s to be steady on %s, then up to %s "
                      "(healthy_timeout_seconds) for healthy targets in the stable target group",
                      seconds_said(stable_timeout_seconds), t.stable_service, td, seconds_said(healthy_timeout_seconds))

    def still(elapsed: float) -> None:
        progress.log.info("still waiting for %s to be steady on %s after %d s of %s (stable_timeout_seconds)",
                          t.stable_service, td, whole_seconds(elapsed), seconds_said(stable_timeout_seconds))

    with progress.trying(waiting, pointed):
        try:
            # Bounded by the wait itself (stable_timeout_seconds): ``within`` only says it lasts.
            within(math.inf, lambda: ecs.wait_stable(env.deployer, [t.stable_service], stable_timeout_seconds,
                                                     {t.stable_service: td}, bound="stable_timeout_seconds"),
                   name="rollway-wait-stable", waiting=still)
        except ServiceNotStable as err:
            if not err.timed_out:
                raise  # waiting longer would not help (a service rolled back, or gone)
            raise progress.ran_out(waiting, str(err), stable_timeout_seconds, "stable_timeout_seconds",
                                   pointed) from err
        try:
            healthy = wait_healthy(env, "stable", healthy_timeout_seconds)
        except TooFewHealthyTargets as err:  # the wait ran out (an adapter's error is not one)
            raise progress.ran_out(waiting, str(err), healthy_timeout_seconds, "healthy_timeout_seconds",
                                   pointed) from err
    progress.done(f"{t.stable_service} is steady with {healthy} healthy target(s) in the stable target group")
    def during() -> str:
        # A refused or unverified write may or may not have landed: say what the load balancer holds.
        try:
            live = traffic.weights_within(env.router, verify_timeout_seconds)
            holds = f"the load balancer holds {live} (stable/canary), read back after the failure"
        except OtherGroupsForwarded as err:
            # A group added since finalize read the rule: said with finalize's advice, as the step's own error is.
            holds = f"read back after the failure, {_for_finalize(err)}"
        except Exception as err:  # noqa: BLE001 - the message still says what is known
            holds = f"the load balancer could not be read back ({err})"
        return (f"{t.stable_service} already runs {td}, as {t.canary_service} does, so users see the promoted version "
                f"whichever target group serves them; {holds}.")

    with progress.trying("move the traffic to the stable target group", during):
        # A lost answer that moved the traffic all the same is read back rather than failing the
        # finalize (one that did not land fails it, and a re-run sends it again).
        try:
            # Under the lease, as every other write: sent after it lapsed, it moved the traffic of a
            # rollout another finalize may have taken over meanwhile.
            weights = _written(f"Elastic Load Balancing (ModifyRule, the traffic to {ALL_STABLE} stable/canary)",
                               write_seconds, lambda: set_and_verify(env, ALL_STABLE, verify_timeout_seconds,
                                                                     moving="finalize's move of the traffic"),
                               lease=_under(env, record))
        except WeightMismatch as err:
            raise _not_read_back(progress, err, live, verify_timeout_seconds, during()) from err
    progress.done(f"traffic moved: the load balancer holds {weights} (stable/canary), read back")
    return weights


def _begun(start: Transition) -> str:
    """Which finalize: "begun at <time> by <actor>", from its ``finalize-start``."""
    return f"begun at {utc(start.at)} by {start.actor}"


def _not_read_back(progress: _Progress, err: WeightMismatch, before: Weights, seconds: float,
                   state: str) -> FinalizeIncomplete:
    """The stop of a traffic move whose read-back ran out: what was read against what was set, after
    how long and under which setting, and what the weights read say. The same as before the write:
    it has not shown yet (or did not land), and more time may do. Neither: another writer changed
    the rule meanwhile (a ModifyRule sets both weights at once), and more time would not help.
    Said alone ("load balancer holds weights 0/100 (stable/canary), expected 100/0"), it named
    neither the wait nor its setting, and left a person to guess which."""
    step = "move the traffic to the stable target group"
    read = (f"the load balancer held {err.actual} (stable/canary), not the {err.expected} this run set, when its "
            f"read-back ended after {seconds_said(seconds)}")
    if err.actual == before:
        return progress.ran_out(step, f"{read}: the weights it held before the write, which has not shown yet or did "
                                      "not land", seconds, "verify_timeout_seconds", state)
    return progress.stopped(step, f"{read} (verify_timeout_seconds): neither those nor the {before} it held before the "
                                  "write, so another writer (a person, or another run) most likely changed the rule "
                                  "since; find who before running finalize again", state)


FINALIZE_FLOW = "finalize"
"""The flow's name (``@flow(name=...)``), as the Prefect API lists its runs."""

# Seconds a finalize may take beyond its waits (reads, writes, notices): a `canary` run scheduled
# to start before the finalize can be over refuses it; one scheduled later does not.
ROOM = 300.0


@flow(name=FINALIZE_FLOW, log_prints=True)
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def finalize(
    actor: Actor = "operator",
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    clock: ClockSettings = ClockSettings(),
    stable_timeout_seconds: WaitSeconds = 600.0,
    verify_timeout_seconds: WaitSeconds = 30.0,
    healthy_timeout_seconds: WaitSeconds = 300.0,
    unrecorded: bool = False,
    accept_breach: BreachAcceptance = None,
) -> FinalizeResult:
    """After a promotion: put the promoted version on the stable service, move the traffic back to
    it and scale the canary to 0, ready for the next rollout (idempotent; run again after a failure).

    With ``unrecorded``, it finalizes a promotion the ledger does not record, made by the `canary`
    flow (which keeps no ledger): only when the canary carries 100 % of the traffic, the ledger's
    newest rollout is closed and no `canary` flow run is still going; nothing is written to the
    ledger.

    Args:
        actor: who finalizes (recorded in the ledger).
        targets_block: a saved RollwayTargets block; cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
        clock: the rollout clock; leave it for a real rollout (speed 1), the simulator speeds it up.
        stable_timeout_seconds: how long the stable service may take to become steady on the promoted version.
        verify_timeout_seconds: how long to wait for the load balancer to read back the new weights; also how long each of the first reads (the load balancer, the services, the `canary` flow's runs) may take.
        healthy_timeout_seconds: how long the stable service's targets may take to pass their health checks.
        unrecorded: finalize a promotion of the `canary` flow, which the ledger does not record (nor will).
        accept_breach: only if its monitoring window saw a breach it could not roll back and you judged it harmless: why (recorded with your name).
    """
    env = load_environment(targets_block, aws_credentials_block, clock)
    starting = stable_timeout_seconds + healthy_timeout_seconds + verify_timeout_seconds + ROOM
    this_run = prefect_runtime.flow_run.id
    try:
        result = run_finalize(env, actor=actor, stable_timeout_seconds=stable_timeout_seconds,
                              verify_timeout_seconds=verify_timeout_seconds,
                              healthy_timeout_seconds=healthy_timeout_seconds, unrecorded=unrecorded,
                              accept_breach=accept_breach,
                              canary_runs=lambda: runs_within(CANARY_FLOW, env.targets, verify_timeout_seconds,
                                                              starting_within_seconds=starting),
                              # Not this run itself, which has not ended either.
                              finalize_runs=lambda: [
                                  run for run in runs_within(FINALIZE_FLOW, env.targets, verify_timeout_seconds,
                                                             starting_within_seconds=starting)
                                  if f"({this_run}," not in run])
    except FinalizeRefused as refused:
        _summarise(env.targets, f"# Finalize refused: {env.targets.canary_service}\n\n{markdown_cell(str(refused))}\n")
        raise
    except FinalizeIncomplete as stopped:
        _summarise(env.targets, _stopped_markdown(stopped, env.targets))
        raise
    _summarise(env.targets, _result_markdown(result, env.targets))
    if result.notice_refused is not None:
        # Failed, not Completed: the work is done and recorded (a run again moves nothing), but nobody
        # was told (or nobody knows), and a green run on a schedule is one nobody reads. The run's error
        # names what to mend.
        raise FinalizeNoticeRefused(_not_told(result, env.targets))
    return result


def _not_told(result: FinalizeResult, t: Targets) -> str:
    """The error of a finalize done whose "Finalized" notice SNS did not take."""
    which = (f"rollout {result.rollout_id} is finalized and recorded so" if result.rollout_id
             else "the promotion is finalized (the ledger does not record it)")
    return f"{which}: {finalized_said(result, t)}"


def runs_within(flow_name: str, targets: Targets, seconds: float, *, starting_within_seconds: float) -> list[str]:
    """The runs of the flow ``flow_name`` not ended that act on ``targets``' service
    (``unfinished_runs``), asked of the Prefect API within ``seconds``: the query ends with its bound.

    On the run's own Prefect client (60 s a request, retried five times with backoff), a query the
    run gave up on at its bound went on in its thread after the run had stopped, and after its flow
    run had ended. Here its requests (the runs, each run's targets block) are made on a client of
    their own, each sent with the time left as its timeouts and never retried (the run is stopped
    at the bound anyway: a request refused once, a 503, stops it, where the run's client retried),
    and none is sent once the time is up.

    An API that cannot be reached, or answers with an error, is named with its address and the
    setting it comes from: httpx's own words ("ConnectError: [Errno 111] Connection refused")
    named neither, and read as any other endpoint's (the run's first reads are mostly AWS's).

    Raises:
        Unanswered: the time was up before a request was sent, or a request ran out of the time left.
        PrefectApiFailed: the API could not be reached, or answered with an error.
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.context import SyncClientContext
    from prefect.settings import (PREFECT_CLIENT_MAX_RETRIES, PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED,
                                  temporary_settings)

    ends = time.monotonic() + seconds

    def in_time(request: httpx.Request) -> None:
        left = ends - time.monotonic()
        if left <= 0:
            raise Unanswered(f"{api} did not answer within {seconds_said(seconds)}")
        # The connection pool tries a connection four times (Prefect's transport retries), each
        # with the connect timeout, 1.5 s of backoff between them: a quarter each ends the tries at
        # an unreachable API within the bound and those 1.5 s.
        request.extensions["timeout"] = httpx.Timeout(left, connect=left / 4).as_dict()

    # httpx_settings of its own: get_client hands a flow run's code the engine's client otherwise,
    # and the targets blocks' loads (which take no client) find this one as the context's.
    client = get_client(sync_client=True, httpx_settings={"event_hooks": {"request": [in_time]}})
    api = passwords_hidden(f"the Prefect API at {str(client.api_url).rstrip('/')} (PREFECT_API_URL)")
    try:
        with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0,
                                         PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED: False}), \
                SyncClientContext.model_construct(client=client):
            return unfinished_runs(flow_name, targets, starting_within_seconds=starting_within_seconds)
    except httpx.TimeoutException:
        raise Unanswered(f"{api} did not answer within {seconds_said(seconds)}") from None
    except httpx.HTTPStatusError as err:
        # Chained as ApiError says it: the run's log prints a failure's causes, and httpx's words
        # quote the URL asked, PREFECT_API_URL's password with it.
        raise PrefectApiFailed(f"{api} answered {err.response.status_code} {err.response.reason_phrase}"
                               ) from as_cause(err)
    except httpx.TransportError as err:
        raise PrefectApiFailed(f"{api} could not be reached: {error_said(err)}") from as_cause(err)


class PrefectApiFailed(RuntimeError):
    """The Prefect API, named with its address, could not be reached or answered with an error."""


def _summarise(targets: Targets, markdown: str) -> None:
    """The run's markdown artifact; one the Prefect API refuses is logged, and the run's own
    outcome (a result, or the error saying how to go on) stands."""
    for_people("finalize summary", lambda: create_markdown_artifact(
        key=artifact_key(targets.canary_service, "finalize"), markdown=markdown, description="finalize summary"))


def _steps(steps: Sequence[str]) -> list[str]:
    return [f"{number}. {markdown_cell(step)}" for number, step in enumerate(steps, start=1)]


def _result_markdown(result: FinalizeResult, t: Targets) -> str:
    title = {"finalized": "Finalized", "already_finalized": "Already finalized, nothing changed",
             "nothing_to_finalize": "Nothing to finalize, nothing changed"}[result.outcome]
    version = f"`{result.task_definition}`" + (f" (`{with_pin(result.image, result.pinned_image)}`)"
                                               if result.image else "")
    lines = [
        f"# {title}: {t.canary_service}", "",
        f"- **Rollout:** {result.rollout_id or 'a promotion the ledger does not record (the `canary` flow keeps none)'}",
        f"- **Stable service:** `{t.stable_service}` runs {version}, asking for {result.stable_desired} task(s)",
        f"- **Traffic, read back from the load balancer:** {result.weights} stable/canary",
        f"- **Canary service:** `{t.canary_service}` asks for {result.canary_desired} task(s)",
    ]
    if result.notification_id:
        lines.append(f"- **Notice:** SNS message id `{result.notification_id}` on `{t.alert_topic}`")
    elif result.notice_lost:
        said = unsent(NOTICE, lost=True, why=UNANSWERED_WHY) if result.notice_unanswered else unsent(NOTICE, lost=True)
        lines.append(f"- **Notice:** {said} on `{t.alert_topic}`: "
                     f"{markdown_cell(result.notice_refused or '')}")
    elif result.notice_refused is not None and result.notice_lost_before:
        # Not "nobody was told": the send before it whose answer was lost may have told them.
        said = notice_failed_said(result.notice_refused, lost=False, before=result.notice_lost_before)
        lines.append(f"- **Notice:** on `{t.alert_topic}`: {markdown_cell(said)}")
    elif result.notice_refused is not None:
        lines.append(f"- **Notice:** NOT sent on `{t.alert_topic}`, nobody was told: "
                     f"{markdown_cell(result.notice_refused)}")
    return "\n".join([*lines, "", "## Steps", "", *_steps(result.steps)]) + "\n"


def _stopped_markdown(stopped: FinalizeIncomplete, t: Targets) -> str:
    done = _steps(stopped.done) or ["Nothing: it stopped at its first step."]
    return "\n".join([f"# Finalize stopped: {t.canary_service}", "", markdown_cell(str(stopped)), "",
                      "## Done before it stopped", "", *done]) + "\n"
