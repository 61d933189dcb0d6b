"""Thin tasks over the FlagStore port: one call each, retries on the decorator.

Only a store that could not be reached is retried: bad input, unknown flags and items rollway
cannot use (``MalformedFlag``, a store error for evaluators) fail the same way every time, and
``set_flag`` already retries a lost race by reading again.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from botocore.exceptions import ClientError
from prefect import task
from prefect.cache_policies import NONE

from rollway import flag_binding
from rollway.aws.errors import error_code, tried
from rollway.flag_binding import FlagChange, FlagUpdate
from rollway.flags import FlagState, FlagStoreUnavailable, FlagWriteUnanswered, MalformedFlag, MalformedFlags
from rollway.ports import FlagStore, Ledger
from rollway.spec import FlagBinding
from tasks import retry


# DynamoDB's answers a second ask gets again (retry.FINAL_DYNAMODB) reach the task as
# FlagStoreUnavailable, which a throttled or dropped call is too: told apart by its cause.


def store_unavailable(err: BaseException) -> bool:
    """Whether a flag call failed with ``err`` because the flag store could not be reached, and
    another ask may reach it (a refused permission or a missing table is refused again; a lost
    race, FlagConflict, is no outage: the call reads the flag again itself)."""
    if isinstance(err, (MalformedFlag, MalformedFlags)):
        return False  # an item rollway cannot use reads the same way every time: no outage
    if isinstance(err, FlagStoreUnavailable):
        cause = err.__cause__
        return not (isinstance(cause, ClientError) and error_code(cause) in retry.FINAL_DYNAMODB)
    return False  # any other failure is final


def _store_unavailable(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry condition: ``store_unavailable`` of the task's failure."""
    try:
        state.result()
    except Exception as err:  # noqa: BLE001 - judged by store_unavailable
        return store_unavailable(err)
    return False


_RETRY = {"retries": 2, "retry_delay_seconds": [1, 5], "retry_condition_fn": _store_unavailable, "cache_policy": NONE}


@task(name="get-flag", **_RETRY)
def get_flag(store: FlagStore, feature: str) -> FlagState | None:
    return store.get(feature)


@task(name="list-flags", **_RETRY)
def list_flags(store: FlagStore) -> list[FlagState]:
    return store.list()


@task(name="check-flag-changes", **_RETRY)
def check_changes(store: FlagStore, changes: Sequence[FlagChange]) -> None:
    flag_binding.check_changes(store, changes)


@task(name="set-flag", **_RETRY)
def set_flag(store: FlagStore, change: FlagChange, *, actor: str, now: float) -> FlagUpdate:
    # Safe to retry: the target settings are absolute and an unchanged flag is not written.
    return flag_binding.set_flag(store, change, actor=actor, now=now)


@task(name="apply-flag-bindings", **_RETRY)
def apply_bindings(
    store: FlagStore, bindings: Sequence[FlagBinding], weight: int, *, actor: str, now: float, rollout: str,
    reason: str | None = None, exclusive: bool = False, ledger: Ledger | None = None, service: str | None = None,
) -> list[FlagUpdate]:
    return flag_binding.apply_bindings(store, bindings, weight, actor=actor, now=now, rollout=rollout, reason=reason,
                                       exclusive=exclusive, ledger=ledger, service=service)


@task(name="check-flag-bindings", **_RETRY)
def check_bindings(store: FlagStore, bindings: Sequence[FlagBinding], ledger: Ledger | None = None,
                   service: str | None = None) -> None:
    # A new rollout's preflight: flags another rollout's stages are moving are refused too, unless
    # the service's ledger records that rollout ended.
    flag_binding.check_bindings(store, bindings, starting=True, ledger=ledger, service=service)


# How patient rollway is with a write Prefect runs once and does not retry: a rollback's flag
# disables (below), an undo's calls (tasks.undoable, which takes them from here) and a rollback's
# move to stable (flows.engine.set_and_verify): one policy, three tries in all, 1 s then 2 s apart.
PATIENT_ATTEMPTS = 3
PATIENT_FIRST_DELAY_SECONDS = 1.0  # then doubled

log = logging.getLogger("rollway.flags")  # under "rollway": sent to the run's log (flows/run_log.py)


def disable_patiently(store: FlagStore, bindings: Sequence[FlagBinding], *, actor: str, reason: str, now: float,
                      rollout: str | None = None, sleep: Callable[[float], None] | None = None
                      ) -> flag_binding.DisabledFlags:
    """``flag_binding.disable_bindings`` for a rollback, the flags it could not write for an outage
    tried again (three tries in all, 1 s then 2 s apart), those alone: the rollback called it
    once, so one write DynamoDB throttled past botocore's retries left a flag serving the
    rolled-back feature, paged "NOT disabled" and failed the rollback. A refused permission, a
    missing table or an item rollway cannot use is not tried again (another ask gets the same).
    ``sleep`` waits that many wall seconds between tries, on the rollout's clock (a rollback passes
    ``sleep_wall``): a test's fake clock waits on no real time, and a clock faster than the wall
    still gives DynamoDB's throttling its wall seconds (None: ``time.sleep``, looked up at each
    wait, as ``tried`` does, so that a test patching it is the one that waits).

    Raises:
        FlagsNotDisabled: with every flag disabled over the tries, and the last try's failures.
    """
    done = flag_binding.DisabledFlags()  # and the flags found missing: a retry reads only those that failed
    unanswered: dict[str, FlagWriteUnanswered] = {}
    left = list(bindings)

    def disabling() -> flag_binding.DisabledFlags:
        nonlocal done, left
        try:
            last = flag_binding.disable_bindings(store, left, actor=actor, reason=reason, now=now, rollout=rollout)
        except flag_binding.FlagsNotDisabled as failed:
            done = flag_binding.DisabledFlags(done + failed.updates,
                                              done.missing + tuple(getattr(failed.updates, "missing", ())))
            unanswered.update((f, err) for f, err in failed.failures if isinstance(err, FlagWriteUnanswered))
            features = {feature for feature, _ in failed.failures}
            left = [binding for binding in left if binding.feature in features]
            raise
        return flag_binding.DisabledFlags(done + last, done.missing + last.missing)

    def final(err: BaseException) -> bool:
        # Only flags the store could not be reached for are tried again; anything else is raised as it came.
        return not (isinstance(err, flag_binding.FlagsNotDisabled)
                    and all(store_unavailable(failure) for _, failure in err.failures))

    def said(err: Any, _made: int, wait: float | None) -> None:  # a FlagsNotDisabled when it is tried again
        if wait is not None:
            log.warning("rollback: could not disable %s (%s); trying again in %g s",
                        ", ".join(sorted({feature for feature, _ in err.failures})), err, wait)

    try:
        return tried(disabling, PATIENT_ATTEMPTS, lambda attempt: PATIENT_FIRST_DELAY_SECONDS * 2 ** attempt,
                     final=final, failed=said, sleep=sleep)
    except flag_binding.FlagsNotDisabled as failed:
        # A write of an earlier try whose answer was lost may have landed: said so, not "not
        # disabled" for the later try that could not read it back.
        failures = [(f, unanswered.get(f, err)) for f, err in failed.failures]
        raise flag_binding.FlagsNotDisabled(done, failures) from failed


@task(name="unrecorded-flag-moves", **_RETRY)
def unrecorded_moves(store: FlagStore, bindings: Sequence[FlagBinding], weight: int, *, rollout: str,
                     skip: Sequence[str] = ()) -> list[str]:
    return flag_binding.unrecorded_moves(store, bindings, weight, rollout=rollout, skip=skip)


@task(name="flags-at-another-stage", **_RETRY)
def stage_writes_elsewhere(store: FlagStore, bindings: Sequence[FlagBinding], weight: int, *,
                           rollout: str) -> list[str]:
    return flag_binding.stage_writes_elsewhere(store, bindings, weight, rollout=rollout)
