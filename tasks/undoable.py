"""Tasks whose effects are undone together when a later step of the same transaction fails.

Used inside ``with prefect.transactions.transaction():``. Each task stashes what its undo
needs in its own transaction record; Prefect runs the on_rollback hooks in reverse order.
"""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.transactions import get_transaction, transaction

from rollway.aws.denied import ROLLOUT_POLICY, PassRoleDenied, refusal_said, rollout_said
from rollway.aws.errors import SERVER_SIDE_CODES, AdapterError, WeightMismatch, error_code, tried
from rollway.deadline import ReadBackUnanswered
from rollway.ledger import RolloutEnded, check_not_ended
from rollway.model import Weights
from rollway.ports import Ledger, ServiceDeployer, TrafficRouter
from tasks import traffic
from tasks.ecs import FINAL_ECS as _FINAL_ECS
from tasks.flags import PATIENT_ATTEMPTS as UNDO_ATTEMPTS
from tasks.flags import PATIENT_FIRST_DELAY_SECONDS as UNDO_FIRST_DELAY_SECONDS
from tasks.flags import store_unavailable

log = logging.getLogger("rollway.undo")
T = TypeVar("T")


def _never_final(err: BaseException) -> bool:
    return False


class _KeptVerdict:
    """An undo's ``final``, keeping its verdict on the failed try it judged last: the undo that says
    its last failure itself (``_undo_failed``) words it by the verdict ``_patiently`` got, rather
    than asking ``final`` a second time about the same error."""

    def __init__(self, final: Callable[[BaseException], bool]) -> None:
        self.final = final
        self.err: BaseException | None = None
        self.verdict = False

    def __call__(self, err: BaseException) -> bool:
        verdict = self.final(err)
        self.err, self.verdict = err, verdict
        return verdict

    def of(self, err: BaseException) -> bool:
        """The verdict on ``err``: the one kept, if ``err`` is the error judged last (else asked now)."""
        return self.verdict if err is self.err else self.final(err)


def _patiently(what: str, call: Callable[[], T], final: Callable[[BaseException], bool] = _never_final, *,
               on_error: Callable[[BaseException], None] | None = None, role: str = "undo", said: bool = False,
               sleep: Callable[[float], None] | None = None) -> T:
    """``call()``, tried up to three times with a doubling wait between (``tried``): an undo is one
    hook that Prefect runs once and whose error it only logs, so one throttled call must not leave
    the step done. An error ``final`` names (one a second ask gets again) is raised at once.
    ``on_error`` sees every failed try; ``role`` starts the log lines. ``said``: the caller says the
    last failure itself (``_undo_failed``), so it is not logged here too. ``sleep`` waits between
    tries: the rollout clock's (``Clock.sleep``), so a fake clock waits on no real time (None:
    ``time.sleep``, looked up at each wait)."""
    # ``final``'s verdict on the newest failed try: ``tried`` asks it before it calls ``logged``,
    # which words its line by it rather than asking ``final`` a second time.
    # One kept by the caller (its undo words its own failure) is that one: wrapped again, each verdict
    # was stored twice.
    kept = final if isinstance(final, _KeptVerdict) else _KeptVerdict(final)

    def judged(err: BaseException) -> bool:
        # ``on_error`` sees the try before ``final`` judges it: a ``final`` that raised left the
        # failure unseen (a pointing's ``_Write.failed``, and its staged undo then did nothing).
        if on_error is not None:
            on_error(err)
        return kept(err)

    def logged(err: BaseException, made: int, wait: float | None) -> None:
        if wait is not None:
            log.warning("%s: %s failed (%s); trying again in %g s", role, what, err, wait)
        elif not said and kept.verdict:
            log.error("%s: %s failed, not tried again (another ask gets the same answer): %s", role, what, err)
        elif not said:
            log.error("%s: %s failed %d times, last: %s", role, what, made, err)

    return tried(call, UNDO_ATTEMPTS, lambda attempt: UNDO_FIRST_DELAY_SECONDS * 2 ** attempt, final=judged,
                 failed=logged, sleep=sleep)


def _undo_failed(undoing: str, lost: bool, putting_back: str, err: BaseException,
                 refused: bool, leaves: str, remedy: str) -> None:
    """Say an undo's write that failed for good as a person acts on it: what was being undone (a
    write whose answer was lost, when ``lost``), what AWS said (a refused permission as the statement
    of the rollout's policy granting it; ``refused``: an answer another ask gets again, the undo's
    ``final`` verdict on ``err``), what it ``leaves`` and the ``remedy``. The undo's own line was
    AWS's bare error text, which said none of it."""
    how = "was refused" if refused else f"failed {UNDO_ATTEMPTS} times"
    log.error("could not undo %s%s: %s %s (%s). %s; %s", undoing, ", whose answer was lost" if lost else "",
              putting_back, how, refusal_said(err, ROLLOUT_POLICY), leaves, remedy)


def _sleep_of(txn) -> Callable[[float], None] | None:
    """The wait an undo's tries take between them: the one its task was given (the rollout clock's;
    None: ``time.sleep``, looked up at each wait by ``tried``)."""
    kept = txn.get("sleep", None)
    return kept.obj if kept is not None else None


class Live:
    """Keeps a port itself in a transaction record.

    ``Transaction.get`` deep-copies what it returns; an undo acting on a copy of a router or
    a boto3 client would act on nothing (or fail to copy at all), so this one copies as itself.
    """

    def __init__(self, obj) -> None:
        self.obj = obj

    def __deepcopy__(self, memo) -> "Live":
        return self


class _Write:
    """What became of a write (a shift's ModifyRule, a pointing's UpdateService), for its undo to
    read: kept in the undo's record, where it copies as itself (``Transaction.get`` deep-copies),
    so the write's task can fill it in."""

    def __init__(self) -> None:
        self.not_applied: str | None = None  # why the write certainly did not land, once known
        self.may_have_landed = False  # a try succeeded, or lost its answer
        self.succeeded = False
        # Its undo failed and left the service on the revision the write pointed it at: the
        # registration's undo then keeps that revision (its tasks could not start again).
        self.left_on: str | None = None

    def failed(self, err: BaseException) -> None:
        """A try failed with ``err``. Once one try may have landed, a later refusal does not make
        the write 'certainly not applied'."""
        why = not_applied(err)
        self.may_have_landed = self.may_have_landed or why is None
        self.not_applied = None if self.may_have_landed else why

    def __deepcopy__(self, memo) -> "_Write":
        return self


def not_applied(err: BaseException) -> str | None:
    """Why a failed write certainly changed nothing, or None when it may have landed.

    An adapter's own error is raised before it writes (a rule it refuses, a name not found), and
    an answer naming a refusal (throttling, access denied, a parameter) is AWS saying it did not
    act. A lost answer (a dropped connection, a read timeout) or an internal error says nothing
    of what AWS did.
    """
    if isinstance(err, AdapterError):
        return f"refused before the write: {err}"
    if isinstance(err, ClientError):
        code = error_code(err)
        if code and code not in SERVER_SIDE_CODES:
            return f"refused: {code}"
    return None


def set_weights(router: TrafficRouter, weights: Weights, previous: Weights, ledger: Ledger | None = None,
                service: str | None = None, rollout: str | None = None, lost_answer_seconds: float = 0.0,
                sleep: Callable[[float], None] | None = None) -> None:
    """Set ``weights``; undone back to ``previous``, unless the ledger by then records
    ``rollout`` of ``service`` as being or having been rolled back (None: no ledger to ask).

    The undo is staged before the write is sent: Prefect stages a task's undo only when the task
    succeeds, and a ModifyRule whose answer was lost (a dropped connection, a timeout) may have
    moved the traffic while its task failed. The undo then finds the weights written, or those
    from before, and puts ``previous`` back either way. A write that certainly did not land (AWS
    refused it, or the adapter refused before sending) drops the undo: there is nothing to undo.

    ``lost_answer_seconds`` > 0: a write whose answer was lost is read back for up to that long,
    and one that landed succeeds (its undo staged as for any shift). It is read back inside the
    write's task: a failed task rolls back the whole transaction at once (Prefect), so a caller
    that caught the error and read back would find the shift already undone.

    ``sleep``: the wait between the undo's tries (the rollout clock's).
    """
    write = _Write()
    _stage_weights_undo(router, weights, previous, ledger, service, rollout, write, sleep)
    _write_weights(router, weights, write, lost_answer_seconds)


@task(name="stage-weights-undo", cache_policy=NONE)
def _stage_weights_undo(router: TrafficRouter, weights: Weights, previous: Weights, ledger: Ledger | None,
                        service: str | None, rollout: str | None, write: _Write,
                        sleep: Callable[[float], None] | None = None) -> None:
    txn = get_transaction()
    txn.set("sleep", Live(sleep))
    txn.set("router", Live(router))
    txn.set("previous", previous)
    txn.set("written", weights)
    txn.set("ledger", Live(ledger))
    txn.set("rollout", (service, rollout))
    txn.set("write", write)


@task(name="set-weights-undoable", cache_policy=NONE)
def _write_weights(router: TrafficRouter, weights: Weights, write: _Write, lost_answer_seconds: float) -> None:
    try:
        router.set_weights(weights)
    except Exception as err:
        write.failed(err)
        if lost_answer_seconds <= 0:
            raise
        landed_although_lost(router, weights, err, lost_answer_seconds)


def landed_although_lost(router: TrafficRouter, weights: Weights, err: Exception, timeout_seconds: float, *,
                         bound: str = "verify_timeout_seconds", moving: str = "the shift") -> Weights:
    """The weights read back after a write of ``weights`` failed with ``err``: a lost answer (a
    dropped connection, a timeout) may have moved the traffic all the same. ``err`` is raised
    when it cannot be a lost answer (not an AWS call's failure, or AWS said it did not act) or
    the read-back does not show ``weights`` within ``timeout_seconds``, which ``bound`` sets (as
    the read-back's errors name it). Not known to have landed (the read-back not answered at its
    bound, its last read given no answer at all, a connection dropped or refused, or its reads
    refused for now, a throttle, or failed on AWS's side, an internal error), ``err`` is raised from
    a ReadBackUnanswered saying which. ``moving``: what the write is, as the run's log names it (a
    rollback's "the rollback's move back", which "the shift" was untrue of)."""
    # Any other error (a bug, a refusal named before the write) is raised at once rather than
    # waited on for the read-back.
    if not isinstance(err, (BotoCoreError, ClientError)) or not_applied(err) is not None:
        raise err
    run_log = get_run_logger()  # the run's own log: this is the shift's story, not an undo's
    run_log.warning("the answer to setting the weights to %s was lost (%s); reading them back", weights, err)
    try:
        verified = traffic.read_back(router, weights, timeout_seconds, bound=bound)
    except WeightMismatch:
        run_log.error("the weights did not become %s after the lost answer: %s did not land", weights, moving)
        raise err from None
    except ReadBackUnanswered as unanswered:
        # Not known to have landed: the write's own error, which a rollback sends again on.
        run_log.error("%s; %s to %s is not known to have landed", unanswered, moving, weights)
        raise err from unanswered
    except (BotoCoreError, ClientError) as read_err:
        # A read whose connection dropped or was refused (read again while the bound left time:
        # ``within_bound``) says no more of the write than one not answered: the network fault that
        # lost the write's answer often breaks its read-back too. So does a read refused for now (a
        # throttle), the last one made. Raised itself, either failed the write as if AWS had said it
        # did not act, and a rollback forgot a send that may have landed (its page: "could NOT be
        # moved back"). A read refused for good (a permission) is raised as it is: its refusal is what to fix.
        unknown = traffic.unknown_after(read_err, timeout_seconds, bound)
        if unknown is None:
            raise
        run_log.error("%s; %s to %s is not known to have landed", unknown, moving, weights)
        raise err from unknown
    run_log.info("%s to %s landed although its answer was lost; going on", moving, weights)
    return verified


def _rolled_back(ledger: Ledger | None, service: str | None, rollout: str | None,
                 sleep: Callable[[float], None] | None = None) -> str | None:
    """Why the traffic must not go back on the canary: the ledger records the rollout as being or
    having been rolled back (that rollback moves the traffic to stable; a read-back may not show it
    yet). None when it does not, or there is no ledger, or its newest rollout is another one (the
    canary flow's runs keep none), or it cannot be read: the undo then does what it did before it
    asked, since a DynamoDB outage that failed the flags' write usually fails this read too, and
    leaving the shift in place would leave the traffic and the flags apart."""
    if ledger is None:
        return None
    try:
        record = _patiently("reading the rollout", lambda: ledger.get(service), sleep=sleep)
    except Exception as err:  # noqa: BLE001 - unreadable is "not known to be rolled back", said in the log
        log.warning("the ledger could not be read before the undo (%s): undoing as if no rollback had begun", err)
        return None
    if record is None or record.rollout_id != rollout:
        return None
    try:
        check_not_ended(record)
    except RolloutEnded as ended:
        return str(ended)
    return None


@_stage_weights_undo.on_rollback
def _restore_weights(txn) -> None:
    router, previous, written = txn.get("router").obj, txn.get("previous"), txn.get("written")
    not_applied = txn.get("write").not_applied
    if not_applied is not None:
        log.info("no shift to %s to undo: its write was %s", written, not_applied)
        return
    sleep = _sleep_of(txn)
    now = _patiently("reading the weights", router.get_weights, final=traffic.final_for_elb, sleep=sleep)
    if now not in (written, previous):
        # Someone else moved the traffic since this shift (a rollback by hand, say): putting
        # the old weights back would undo their change, not ours. Reading the weights from
        # before is a read-back still lagging behind the write (the reason verify failed, often),
        # not someone else: writing them again is harmless, and the write cannot land later.
        log.warning("not undoing the shift to %s: the load balancer now holds %s", written, now)
        return
    # The read above may be as stale as the one that failed verify, and hide a rollback that
    # already put the traffic on stable: the ledger, asked last, says so before the write.
    ended = _rolled_back(txn.get("ledger").obj, *txn.get("rollout"), sleep=sleep)
    if ended is not None:
        log.warning("not undoing the shift to %s: %s", written, ended)
        return
    log.warning("undoing a weight shift: back to %s", previous)
    final = _KeptVerdict(traffic.final_for_elb)
    try:
        _patiently(f"setting the weights back to {previous}", lambda: router.set_weights(previous),
                   final=final, said=True, sleep=sleep)
    except Exception as err:
        service = txn.get("rollout")[0]
        _undo_failed(f"the shift of the weights{f' of {service}' if service else ''} to {written} (stable/canary)",
                     txn.get("write").may_have_landed, f"setting them back to {previous}", err, final.of(err),
                     f"The load balancer holds {now}: the canary takes {now.canary} % of the traffic, and the "
                     "bound feature flags may not have followed it",
                     "roll the rollout back (`rollway abort`), which moves all the traffic to stable, once the load "
                     "balancer takes the call")
        raise


# No task retries: RegisterTaskDefinition makes a new revision on every call, so a retry after a
# lost response would leave an unused revision behind. (botocore's own resending after a dropped
# connection is caught by the adapter: EcsDeployer.register_revision tags each call with a token,
# uses the revision a call whose answer was lost made, and deregisters a second copy.)
@task(name="register-task-definition-undoable", cache_policy=NONE)
def register_revision(deployer: ServiceDeployer, image: str, base_task_definition: str,
                      pointing: _Write | None = None, sleep: Callable[[float], None] | None = None) -> str:
    """Register ``image`` on ``base_task_definition``; undone by deregistering it, unless the undo of
    ``pointing`` (the service's pointing at it) failed and left the service on it."""
    try:
        arn = deployer.register_revision(image, base_task_definition)
    except PassRoleDenied as denied:
        # The adapter cannot tell whose role registers, so it names every policy's PassRole
        # statement: the rollout's role holds iam-policy.json, and the release policy's
        # statement beside it sent people to a role the rollout does not run under.
        raise rollout_said(denied, None) from denied.__cause__
    txn = get_transaction()
    txn.set("deployer", Live(deployer))
    txn.set("arn", arn)
    txn.set("pointing", pointing)
    txn.set("sleep", Live(sleep))
    return arn


@register_revision.on_rollback
def _deregister(txn) -> None:
    arn = txn.get("arn")
    pointing = txn.get("pointing", None)
    if pointing is not None and pointing.left_on == arn:
        log.warning("not deregistering %s: the service may still run it, and its tasks could not start again", arn)
        return
    log.warning("undoing a task definition registration: deregistering %s", arn)
    # What ECS refuses for good (no such revision, a denied permission) is asked once, as for
    # point_service's undo: three tries only delay the rest of the undo.
    _patiently(f"deregistering {arn}", lambda: txn.get("deployer").obj.deregister_revision(arn),
               final=_final_for_ecs, sleep=_sleep_of(txn))


def _final_for_ecs(err: BaseException) -> bool:
    """Whether ECS would answer another ask as it answered ``err`` (point_service's retry_condition_fn;
    its undo's and the registration undo's ``final``)."""
    if isinstance(err, (AdapterError, ValueError)):
        return True
    return isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") in _FINAL_ECS


# UpdateService with the same arguments is idempotent, so a try after a lost answer is safe;
# what ECS refuses the same way every time (a missing cluster, a denied permission) fails at once:
# trying it again only delays the undo of the registration, which deploy_revision runs on failure.
# Tried inside the task, not with Prefect's task retries: Prefect rolls the enclosing transaction
# back on a task's first failed attempt and then runs the retry all the same, so one throttled
# UpdateService deregistered the new revision and the retry pointed the canary at it.
@task(name="point-service-undoable", cache_policy=NONE)
def point_service(deployer: ServiceDeployer, service: str, task_definition: str, previous: str,
                  write: _Write | None = None, sleep: Callable[[float], None] | None = None) -> None:
    """Point ``service`` at ``task_definition``; undone back to ``previous``. ``write``: where each
    try's outcome is kept for the undo staged before it (``stage_pointing_undo``)."""
    txn = get_transaction()
    txn.set("deployer", Live(deployer))
    txn.set("service", service)
    txn.set("previous", previous)
    txn.set("written", task_definition)
    txn.set("write", write)
    txn.set("sleep", Live(sleep))
    try:
        _patiently(f"pointing {service} at {task_definition}",
                   lambda: deployer.update_service(service, task_definition=task_definition),
                   final=_final_for_ecs, on_error=None if write is None else write.failed, role="deploy", sleep=sleep)
    except BaseException as err:
        if write is not None and not isinstance(err, Exception):
            # The process is stopping (a signal, an interrupt) with the call's answer unread, and
            # Prefect still runs the undos: the pointing is left as a kill leaves it, and the new
            # revision kept registered, since the service may run it (a resume records it, a
            # rollback points the service back). Deregistered, it left the canary on a revision
            # ECS reports INACTIVE, which the resume then had to deploy from.
            write.left_on = task_definition
        raise
    if write is not None:
        write.succeeded = True


@task(name="stage-pointing-undo", cache_policy=NONE)
def stage_pointing_undo(deployer: ServiceDeployer, service: str, previous: str, write: _Write,
                        task_definition: str | None = None, sleep: Callable[[float], None] | None = None) -> None:
    """Stage, before the pointing is sent, its undo for when every try fails: Prefect stages a
    task's own undo only when it succeeds, and an UpdateService that landed but lost its answer on
    every try left the canary on the new revision, which the registration's undo then deregistered
    (tasks could not start again). A pointing that succeeded is undone by its own task's undo; one
    that certainly did not land needs none."""
    txn = get_transaction()
    txn.set("deployer", Live(deployer))
    txn.set("service", service)
    txn.set("previous", previous)
    txn.set("write", write)
    txn.set("written", task_definition)
    txn.set("sleep", Live(sleep))


@stage_pointing_undo.on_rollback
def _restore_after_a_failed_pointing(txn) -> None:
    write: _Write = txn.get("write")
    if write.succeeded or not write.may_have_landed:
        return
    _restore_task_definition(txn)


@point_service.on_rollback
def _restore_task_definition(txn) -> None:
    service, previous = txn.get("service"), txn.get("previous")
    log.warning("undoing a task definition change: %s back to %s", service, previous)
    # The same policy as point_service's own retries: one throttled or dropped UpdateService used
    # to leave the canary on the new revision (and the registration's undo then deregistered the
    # revision it runs); what ECS refuses the same way every time fails at once.
    deployer, written, write = txn.get("deployer").obj, txn.get("written", None), txn.get("write", None)
    final = _KeptVerdict(_final_for_ecs)
    try:
        _patiently(f"pointing {service} back at {previous}",
                   lambda: deployer.update_service(service, task_definition=previous), final=final,
                   said=True, sleep=_sleep_of(txn))
    except Exception as err:
        runs = _runs(deployer, service)
        if write is not None and runs is not None and runs == written:
            write.left_on = runs
        at = f" at {written}" if written else ""
        # What the failed undo leaves: the revision ECS says the service runs (kept registered when
        # the registration's undo will keep it, see ``left_on``), or, when ECS could not say, what
        # it may still run.
        if runs is None:
            leaves = f"{service} may still run{at or ' what it was pointed at'}"
        elif write is not None and write.left_on:
            leaves = f"{service} runs {runs}, kept registered so that its tasks can start again"
        else:
            leaves = f"{service} runs {runs}"
        _undo_failed(f"the pointing of ECS service {service}{at}", write is not None and not write.succeeded,
                     f"pointing it back at {previous}", err, final.of(err), leaves,
                     f"roll the rollout back (`rollway abort`), which points {service} back at its previous "
                     "revision, once ECS takes the call")
        raise


def _runs(deployer: ServiceDeployer, service: str) -> str | None:
    """The task definition ``service`` runs, for a failed undo's line; None: ECS could not say."""
    try:
        return deployer.describe(service).task_definition
    except Exception as err:  # noqa: BLE001 - the undo's own failure is the one raised
        log.warning("could not read which task definition %s runs: %s", service, err)
        return None


# Tried inside the task, as point_service is, not with Prefect's task retries (which roll the
# shift back on the first failed attempt): one flags-table write throttled past botocore's own
# retries moved the traffic back and failed the healthy rollout. Tried again only on what
# tasks.flags retries a stage's flags on: not a refusal, nor a lost race (read again inside).
# ``ledger`` and ``service``: as the start check reads them, for a flag another rollout moved since
# (rollway.flag_binding._first_write).
@task(name="apply-flag-bindings", cache_policy=NONE)
def apply_flags(store, bindings, weight: int, actor: str, now: float, rollout: str, ledger: Ledger | None = None,
                service: str | None = None, sleep: Callable[[float], None] | None = None) -> list:
    from rollway.flag_binding import apply_bindings

    return _patiently(f"moving the bound feature flags to the {weight}% stage",
                      lambda: apply_bindings(store, bindings, weight, actor=actor, now=now, rollout=rollout,
                                             exclusive=True, ledger=ledger, service=service),
                      final=lambda err: not store_unavailable(err), role="shift", sleep=sleep)


def deploy_revision(deployer: ServiceDeployer, service: str, image: str, base_task_definition: str,
                    previous: str | None, sleep: Callable[[float], None] | None = None) -> str:
    """Register ``image`` as a new revision and point ``service`` at it, undone together.

    If pointing the service fails, the new revision is deregistered (and a half-made pointing
    put back): a failed deploy leaves no revision nobody runs. ``sleep``: the wait between the
    tries of the pointing and of the undos (the rollout clock's).
    """
    with transaction():
        pointing = _Write()
        revision = register_revision(deployer, image, base_task_definition, pointing, sleep)
        stage_pointing_undo(deployer, service, previous, pointing, revision, sleep)
        point_service(deployer, service, revision, previous, pointing, sleep)
    return revision
