"""State hooks that roll a rollout back when its run fails, crashes or is cancelled.

The hook rebuilds the environment from the run's own parameters (block names, clock) and
runs ``flows.rollback.hook_rollback``, a run of the `rollback` flow in the UI, of its own; not the
deployed one, whose form a person fills in. A rollout flow's
hook rolls back only the rollout its run held (``flows.env.mark_rollout`` / ``run_rollout``): once
that one ended and the next began, the next is someone else's and is left alone. A `canary` run that
failed handed its Prefect concurrency slot to the hook (flows/slot.py): the hook holds it until its
rollback is over, so no second `canary` run of the service starts under that rollback.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

from prefect.client.schemas.objects import StateType
from prefect.logging.loggers import flow_run_logger

from flows.parameter_errors import HEADING
from flows.slot import releases_handed_over_slot
from rollway.clock import ClockSettings
from rollway.failure_words import end_said
from rollway.url_passwords import passwords_hidden

if TYPE_CHECKING:
    from rollway.spec import RolloutSpec

# How Prefect 3's flow engine words the failure of a run whose parameters did not validate,
# whatever the validation raised (ParameterTypeError, ParameterBindError, or anything a
# model's validator let escape): the run's body never started.
PARAMETERS_FAILED = "Validation of flow parameters failed"


def _exception(state) -> BaseException | None:
    """The exception the run ended with, None when it holds none or it cannot be read. Read once
    per hook and handed to each question (``leave_alone``, ``_reason``): it is the run's result,
    which a hook outside the run's process reads from the result storage."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # the result is not retrievable: treat the run as one that acted
        return None
    return exc if isinstance(exc, BaseException) else None


def _ledger_record(params: dict):
    """The run's rollout as its ledger has it now (None without a ledger or a rollout), and the wall
    time (which stamps leases)."""
    from flows.env import load_environment

    env = load_environment(params.get("targets_block"), params.get("aws_credentials_block"),
                           ClockSettings.of_run(params.get("clock")))
    record = env.ledger.get(env.targets.canary_service) if env.ledger is not None else None
    return record, env.wall()


def _someone_else_owns(read: Callable[[], tuple]) -> bool:
    """Whether another run holds a live lease on the rollout (it took over from this one)."""
    from rollway.ledger import lease_held

    record, now = read()
    return record is not None and lease_held(record, now)


def _rolled_back_already(read: Callable[[], tuple]) -> bool:
    """Whether the rollout's rollback has finished (one still under way may have died: finish it)."""
    from rollway.phases import RolloutPhase

    record, _now = read()
    return bool(record and record.phase is RolloutPhase.ROLLED_BACK)


def _next_rollout(read: Callable[[], tuple], rollout: str | None) -> str | None:
    """The newest rollout's id when it is not ``rollout``, the one the run held: the run's ended
    and the next one (someone else's) began before the hook acted. None when it is the run's, or
    the run's is not known (nothing read then)."""
    if rollout is None:
        return None
    record, _now = read()
    return record.rollout_id if record is not None and record.rollout_id != rollout else None


# ``leave_alone``'s exception when its caller has not read it.
_UNREAD: Any = object()


class LedgerUnread(Exception):
    """``leave_alone`` could not read the ledger it needed to decide: whether the run that took
    the rollout over still drives it, or whether the rollback that stopped the run finished. The
    message says what is not known and what a person runs; the hook does not roll back blind."""


def _unread_said(err: BaseException) -> str:
    """Why the ledger could not be read, as the ledger's other failures are said."""
    from rollway.aws.ledger import ledger_failure

    return ledger_failure(err)


def leave_alone(state, params: dict, finalizing: bool = False, rollout: str | None = None,
                exc: BaseException | None = _UNREAD) -> str | None:
    """Why this failed run must not be rolled back, or None when it must.

    A run that refused to start (parameters Prefect could not validate, whatever the error, a missing block, a failure before its first
    write, drift, a lock, another unfinished rollout) moved nothing, and the traffic belongs to
    someone else's rollout. A run stopped because its rollout was rolled back (by hand, or by a
    hook) has nothing left to roll back once that rollback has finished: a second one would
    only alert again, or hit the next rollout. A run whose rollout another run drove while it
    waited for an answer leaves it to that run. A run that lost its lease mid-way leaves the
    rollout to the run that took it over, if that run is alive; if nobody holds it, traffic is
    on a version nobody watches, and it is rolled back. A run that rolled back itself but could
    not record it in the ledger has moved the traffic already: a second rollback would only
    fail on the same ledger and page again, and the error tells a person how to record it. A
    canary run whose promotion passed its window and whose finalize then refused or stopped
    keeps the promoted version in production: a rollback would put the previous one back. The
    same holds when its latest attempt crashed or was cancelled while finalizing
    (``finalizing``, from ``flows.env.began_finalizing``).

    ``rollout``: the rollout the run held (``flows.env.run_rollout``), or None when it held none
    (or cannot tell: then the newest rollout is judged, as before runs said which they held). A
    run stopped because its rollout ended, or because it lost its lease, whose rollout is no longer
    the newest leaves the next one alone: it is someone else's.

    ``exc``: the exception the run ended with, as the hook read it (``_exception``); read here
    when not given.

    Raises:
        LedgerUnread: the run stopped because another run held its rollout, or because its
            rollout was being rolled back, and the ledger could not be read to tell whether that
            is still so: a rollback then could hit a live run's rollout, and one that cannot
            read the ledger fails the same way. What to run is in the message.
    """
    from prefect.exceptions import ParameterTypeError, SignatureMismatchError

    from flows.approvals import MarkedCrashed
    from flows.canary import RolloutRefused
    from flows.env import AccountNotLoaded
    from flows.progressive import DriftDetected, PhaseRefused
    from rollway.finalize import UNRECORDED_AGAIN, FinalizeIncomplete, FinalizeRefused
    from rollway.ledger import (LockHeld, NotOwner, RollbackUnrecorded, RolloutEnded, RolloutInProgress,
                                RolloutMovedOn, RolloutSuperseded)

    if exc is _UNREAD:
        exc = _exception(state)
    if (state.message or "").startswith(PARAMETERS_FAILED):
        # Checked by the message, not only the exception's type: a validator that raised a bare
        # TypeError reached the hook as a TypeError, and the hook rolled back another rollout.
        # The fields' own lines (flows.parameter_errors), not the engine's prefix and Prefect's
        # heading before them again in brackets.
        _, heading, fields = state.message.partition(HEADING)
        return ("its parameters failed validation, so it did not start" + (f":{fields}" if heading
                                                                          else f" ({state.message})"))
    if finalizing:
        return (f"its promotion passed its window and it {_ended(state)} while finalizing "
                f"({_end_said(state, exc)}): the promoted version stays; run {UNRECORDED_AGAIN} to finish")
    # AccountNotLoaded: the run could not even build its clients, and the rollback would load
    # the same blocks and fail the same way.
    if isinstance(exc, (ParameterTypeError, SignatureMismatchError, RolloutRefused, DriftDetected, PhaseRefused,
                        RolloutInProgress, AccountNotLoaded)):
        return f"it refused to start ({exc})"
    if isinstance(exc, (FinalizeRefused, FinalizeIncomplete)):
        # Raised only once a promotion passed its window (flows/canary.py's finalize_in_run).
        return f"its promotion passed and only its finalize did not finish ({exc})"
    if isinstance(exc, RollbackUnrecorded):
        return f"it rolled back itself, only the ledger could not record it ({exc})"
    if isinstance(exc, MarkedCrashed):
        # Someone was told the run's process had died and the rollout stays, for a new run to
        # take over or for `rollway abort`: a rollback now would be nobody's decision. "At" its
        # pause, not "while it waited": found also as it left the pause, or took an answer found
        # at its timeout (the exception says which).
        return f"it was marked Crashed at its approval pause ({exc})"
    if isinstance(exc, RolloutMovedOn):
        return f"another run drove the rollout while this one waited ({exc})"
    if isinstance(exc, RolloutSuperseded):
        # Its rollout ended and another started: a rollback now would hit that other rollout.
        return f"its rollout is no longer the newest ({exc})"
    # The ledger read once, when first needed, on one session: each of the questions below built
    # its own, and asked STS again who the keys are.
    cached = functools.cache(lambda: _ledger_record(params))

    def read() -> tuple:
        try:
            return cached()
        except Exception as err:  # noqa: BLE001 - a storage error, a block that no longer loads: undecided
            raise _undecided(exc, rollout, err) from err

    if isinstance(exc, (RolloutEnded, LockHeld, NotOwner)) and (newest := _next_rollout(read, rollout)):
        # Judged below on the newest record, which is the next rollout's: "not rolled back yet",
        # "nobody holds it", and the hook would roll that one back.
        return (f"its rollout is no longer the newest (this run held {rollout}; {newest} began since, and a "
                f"rollback now would hit that one) ({exc})")
    if isinstance(exc, RolloutEnded) and _rolled_back_already(read):
        return f"its rollout was already rolled back ({exc})"
    if isinstance(exc, (LockHeld, NotOwner)) and _someone_else_owns(read):
        return f"another run owns the rollout now ({exc})"
    return None


def _undecided(exc: BaseException | None, rollout: str | None, err: BaseException) -> LedgerUnread:
    """``leave_alone``'s LedgerUnread for a run that stopped with ``exc`` (RolloutEnded, LockHeld or
    NotOwner), the ledger's read having failed with ``err``."""
    from rollway.ledger import RolloutEnded

    which = f"rollout {rollout}" if rollout is not None else "its rollout"
    unread = f"the ledger could not be read ({_unread_said(err)})"
    if isinstance(exc, RolloutEnded):
        return LedgerUnread(
            f"it stopped because {which} was being rolled back ({exc}), and {unread} to tell whether that rollback "
            "finished: `rollway status` says; if it did not, `rollway abort` finishes it")
    return LedgerUnread(
        f"it stopped because another run held {which} ({exc}), and {unread} to tell whether that run still drives "
        "it: `rollway status` says who holds it; if no run does, `rollway abort` rolls it back")


def hook_spec(params: dict, log) -> "RolloutSpec | None":
    """The run's spec, validated as the flow validates it, for its rollback's page and waits; None
    (said in ``log``) when the run has none or it does not validate, and the rollback then takes
    the defaults. A `canary` flow run keeps no ledger: its parameters are all a hook has of it."""
    from flows.rollback import DEFAULT_HEALTHY_SECONDS, DEFAULT_SCALE_SECONDS, DEFAULT_VERIFY_SECONDS
    from rollway.spec import RolloutSpec

    raw = params.get("spec")
    if raw is None:
        return None
    try:
        return RolloutSpec.model_validate(raw)
    except Exception as err:  # noqa: BLE001 - any validator's error: the run's own would have been this
        log.warning("the run's spec does not validate (%s): rolling back without naming its image, with the default "
                    "waits (verify_timeout_seconds %.0f s, healthy_timeout_seconds %.0f s, scale_timeout_seconds %.0f s)",
                    err, DEFAULT_VERIFY_SECONDS, DEFAULT_HEALTHY_SECONDS, DEFAULT_SCALE_SECONDS)
        return None


@releases_handed_over_slot
def _rollback_from_state(flow, flow_run, state) -> None:
    from flows.env import CANARY_FLOW, began_finalizing, run_rollout
    from flows.params import fit_reason
    from flows.rollback import (CLAIM_POLL_SECONDS, CLAIM_WAIT_SECONDS, RollbackIncomplete, RollbackRefused,
                                hook_rollback)
    from rollway.ledger import (CLAIM_SECONDS, RollbackClaimed, RollbackUnrecorded, RolloutClosed, RolloutNotFound,
                                RolloutSuperseded)

    log = flow_run_logger(flow_run, flow)
    params = dict(flow_run.parameters or {})
    finalizing = False
    if flow.name == CANARY_FLOW:  # the only flow that finalizes in its run; the others need not ask
        try:
            finalizing = began_finalizing(flow_run)
        except Exception as err:  # only a hook outside the run's process asks the API: it cannot tell
            log.warning("could not ask the Prefect API whether run %s was finalizing (%s): treating it as a run that "
                        "was not", flow_run.name, passwords_hidden(str(err)))
    # The rollout the run held: its rollback must be that one's, never the next rollout's, which
    # may have begun (someone else's) once the run's own ended. The canary flow keeps no ledger.
    rollout = None
    if flow.name != CANARY_FLOW:
        try:
            rollout = run_rollout(flow_run)
        except Exception as err:  # only a hook outside the run's process asks the API: it cannot tell
            log.warning("could not ask the Prefect API which rollout run %s held (%s): rolling back the newest "
                        "rollout, if it is open", flow_run.name, passwords_hidden(str(err)))
    exc = _exception(state)
    try:
        why_not = leave_alone(state, params, finalizing, rollout, exc)
    except LedgerUnread as undecided:
        # Said as loudly as a failed rollback: nothing was rolled back, and a person decides.
        log.error("not rolling back after run %s: %s", flow_run.name, undecided)
        return
    if why_not:
        log.info("not rolling back after run %s: %s", flow_run.name, why_not)
        return
    # The canary flow keeps no ledger, so the flags its run bound are in its parameters. A
    # rollout flow's rollback takes the recorded spec's flags (a resumed run drives the recorded
    # spec, whatever its form said), and its form's only if the ledger cannot be read.
    ledgered = flow.name != CANARY_FLOW
    spec = params.get("spec") or {}
    flags = (spec.get("flags") if isinstance(spec, dict) else None) or None
    # Nor its image and waits: the page names the image the run shipped, and the rollback waits as
    # long as the run's spec allows (a rollout flow's rollback takes the recorded spec's instead).
    own = None if ledgered else hook_spec(params, log)
    # Cut to the rollback flow's limit: a failure's message may be any length, and refused as a
    # parameter, the rollback would not run at all.
    reason = fit_reason(_reason(flow_run.name, state, exc))
    claim_wait = CLAIM_WAIT_SECONDS
    if isinstance(exc, RollbackClaimed) and exc.waited > 0:
        # The run waited its full CLAIM_WAIT_SECONDS for that rollback already: wait only long enough
        # to see whether its holder still renews the claim (it does every third of CLAIM_SECONDS), and
        # take it over if it lapsed (the holder died), rather than the whole wait again.
        claim_wait = CLAIM_SECONDS + CLAIM_POLL_SECONDS
        log.info("run %s waited %.0f s for the rollback by %s already: waiting at most %.0f s more, to see whether "
                 "it is still alive", flow_run.name, exc.waited, exc.holder_shown, claim_wait)
    # The run's own rollback put the traffic back, failed a step and paged people with it: run
    # again (a step that failed for a moment may pass now), it pages only if something changed.
    paged_failing = list(exc.failed_steps) if isinstance(exc, RollbackIncomplete) and exc.paged else None

    def roll_back(held: str | None):
        # Never recorded on a closed rollout: a `canary` flow run's rollback is its own, not a
        # promotion's, which only a person's rollback by hand takes out of production.
        return hook_rollback(
            reason=reason,
            actor=f"state hook ({state.type.value.lower()})",
            bindings=None if ledgered else flags,
            fallback_bindings=flags if ledgered else None,
            targets_block=params.get("targets_block"),
            aws_credentials_block=params.get("aws_credentials_block"),
            clock=ClockSettings.of_run(params.get("clock")),
            only_open_rollout=ledgered,
            rollout=held,
            claim_wait_seconds=claim_wait,
            image=own.image if own else None,
            verify_timeout_seconds=own.verify_timeout_seconds if own else None,
            healthy_timeout_seconds=own.healthy_timeout_seconds if own else None,
            scale_timeout_seconds=own.scale_timeout_seconds if own else None,
            paged_failing=paged_failing,
        )

    try:
        try:
            result = roll_back(rollout)
        except RolloutNotFound as err:
            # The run's rollout is no longer recorded (its item deleted by hand): no later rollout
            # is either, so the traffic this run moved is nobody else's. Refusing left it on a
            # version nobody watches, and `rollway abort` refuses an unrecorded rollout too.
            log.warning("run %s's rollout %s is no longer recorded (%s): rolling back what the service runs",
                        flow_run.name, rollout, err)
            result = roll_back(None)
    except RollbackUnrecorded as err:  # the traffic did move: say so, not that the rollback failed
        log.error("rolled back after run %s, but the ledger could not record it: %s", flow_run.name, err)
        raise
    except RollbackRefused as err:  # nothing moved, on purpose: say why, not that the rollback failed
        log.error("no automatic rollback after run %s: %s", flow_run.name, err)
        raise
    except (RolloutClosed, RollbackClaimed, RolloutSuperseded) as err:
        # Another rollback (`rollway abort`, say) finished between this one's read and its start,
        # or is still carrying it out after this one waited: it does (or did) everything and tells
        # people; nothing is left to do or to page about. Or the run's rollout ended and the next
        # one began: that one is someone else's, and the rollback moved nothing.
        log.info("not rolling back after run %s: %s", flow_run.name, err)
        return
    except RollbackIncomplete as err:
        # The traffic is back on stable: "the rollback failed" sent people to move it by hand.
        log.error("rolled back the traffic after run %s, but later steps failed: %s", flow_run.name, err)
        raise
    except Exception:  # a hook must not hide the original failure; log loudly instead
        # A `canary` flow run keeps no ledger, and `rollway abort` rolls back only rollouts the
        # ledger records: it would answer "nothing to abort" here.
        log.exception("automatic rollback after %s failed; run %s by hand", flow_run.name,
                      "`rollway abort`" if ledgered else "the `rollback` flow (the rollback deployment)")
        raise
    if result.done_by is not None:
        log.info("not rolling back after run %s: %s", flow_run.name, "; ".join(result.steps))
        return
    log.warning("rolled back after run %s %s", flow_run.name, _ended(state))


def _ended(state) -> str:
    """How the run ended, in words: Prefect's state names ("ended cancelling") read, in the page,
    status and the incident report, as if the run stopped half-way through its cancellation."""
    if state.type in (StateType.CANCELLING, StateType.CANCELLED):
        return "was cancelled"
    return state.type.value.lower()  # "failed", "crashed"


PREFECT_CANCELLED = ("Flow run was cancelled.", "Flow run was cancelled successfully.")
"""The messages Prefect's engine and runner give a cancellation nobody gave words to."""


def own_words(message: str | None) -> str:
    """A cancellation's message, "" when it is none or only Prefect's own (``PREFECT_CANCELLED``):
    after rollway's words that the run was cancelled, those said it a second time."""
    said = (message or "").strip()
    return "" if said in PREFECT_CANCELLED else said


def _reason(run_name: str, state, exc: BaseException | None) -> str:
    """The rollback's reason: how the run ended, and the state's message. Prefect's own words for
    a cancellation only said again what "was cancelled" had said ("run x was cancelled: Flow run
    was cancelled."), in the page, status and the incident report; a person's message is kept.
    A run whose own rollback ended with a step undone is finished, saying why it began: its error
    ("... run the rollback again once the failed step can succeed") was the Why of the page saying
    the rollback had finished, which no longer named the guardrail or person that began it.
    ``exc``: the exception the run ended with (``_exception``)."""
    from flows.rollback import RollbackIncomplete

    if isinstance(exc, RollbackIncomplete):
        began = f" ({exc.reason})" if exc.reason else ""
        return (f"finishing the rollback of run {run_name}{began}, which put the traffic back on stable and could "
                f"not: {'; '.join(exc.failed_steps)}")
    if state.type in (StateType.CANCELLING, StateType.CANCELLED):
        said = own_words(state.message)
        return f"run {run_name} {_ended(state)}" + (f": {said}" if said else "")
    return f"run {run_name} {_ended(state)}: {_end_said(state, exc)}"


def _end_said(state, exc: BaseException | None) -> str:
    """How the run ended, never empty: the state's message, else ``exc``, the exception it ended
    with, and where it was raised, else the state's name (``end_said``)."""
    from prefect.exceptions import CancelledRun, CrashedRun, FailedRun

    # Prefect's stand-ins for a state that holds no exception: they carry only its message, or
    # "Run failed." when it has none, which is not what ended the run.
    if isinstance(exc, (CancelledRun, CrashedRun, FailedRun)):
        exc = None
    return end_said(state.message, exc, state.name or state.type.value)


def rollback_hooks() -> dict:
    """Keyword arguments for @flow: the same rollback on failure, crash and cancellation."""
    return {
        "on_failure": [_rollback_from_state],
        "on_crashed": [_rollback_from_state],
        "on_cancellation": [_rollback_from_state],
    }
