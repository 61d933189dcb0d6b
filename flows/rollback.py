"""Rollback: standalone, idempotent, and safe for users at every step.

Order matters. The stable service first gets the capacity and healthy targets to carry all
traffic (the seed's script scaled the new service to zero before moving traffic back, which
drops requests); only then does the ALB go to 100% stable, verified by reading it back; only
then is the canary scaled to zero and pointed back at its previous task definition. Bound
flags are disabled, and people are told why. Running it twice ends in the same state.

Once the traffic is back, a step that fails does not stop the ones after it: the canary is
still scaled down, the flags disabled and people told (including what failed), and only then
does the rollback fail, naming the step, so that it stays open to be run again.

The ledger never stops a rollback either: if DynamoDB refuses to record its start (a missing
table, an item grown past 400 KB, access denied, throttling), the rollback still does every
step, the notice says the ledger could not record it, and the run then fails with
RollbackUnrecorded; the same when recording its end fails.

One rollback at a time carries a rollout's rollback out: it holds the rollback's claim in the
ledger (who, and a lease of CLAIM_SECONDS, stamped on the wall clock as the run's own lease is,
renewed while it acts): `rollway abort`, a hook and runs on rollout clocks of other speeds judge
it alike. Another
(`rollway abort` and the cancelled run's hook, at once) waits for it to end, logging its
progress, and returns what it did from its ledger entry, moving nothing and paging nobody; once
the claim is given up (a step failed) or lapses (its holder died), it takes it over and finishes.
A holder that finds its claim taken over (its renewals stalled and it lapsed) stops before its
next step, moving nothing more and paging nobody (RollbackClaimLost): the new holder finishes.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import socket
import time
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import Annotated, Callable, Sequence

from botocore.exceptions import BotoCoreError, ClientError
from prefect import flow, get_run_logger
from pydantic import AfterValidator

from flows.engine import RefusedAfterLostAnswer, TakenNotReadBack, TooFewHealthyTargets, set_and_verify, wait_healthy
from flows.env import load_environment
from flows.params import Actor, Reason, RolloutId, TaskCount, WaitSeconds
from flows.renewing import Renewals, recovered_said, trouble_said
from flows.untraced import FAILED_STEP, PAGED, without_traceback
from rollway.aws.denied import PermissionDenied, is_denied, names_rollout_denials, rollout_said
from rollway.bounds import duration_said, seconds_said
from rollway.aws.ecs import task_family
from rollway.aws.errors import (NOT_TAKEN, AdapterError, RuleForwardsNowhere, RulesOnPath, ServiceNotStable,
                                TargetNotFound, TaskDefinitionInactive, WeightMismatch, answer_lost, never_reached)
from rollway.aws.ledger import STORAGE_ERRORS, storage_failure, write_or_why
from rollway.aws.ledger import ledger_failure as failure_said  # ``ledger_failure`` names a parameter here
from rollway.clock import ClockSettings
from rollway.deadline import ReadBackUnanswered
from rollway.environment import Environment
from rollway.errors_pickle import PicklableError
from rollway.failure_words import failures_writable, writable
from rollway.finalize import reversible_by_hand, reverted_by_hand, same_revision
from rollway.flag_binding import CANARY_RUN_ROLLOUT, FlagsNotDisabled
from rollway.flags import FlagWriteUnanswered
from rollway.image import image_parts, with_pin
from rollway.ledger import (CLAIM_SECONDS, NOTICE_ANSWER_LOST, NOTICE_FAILED, NOTICE_NOT_SENT, NOTICE_UNANSWERED,
                            NOTICE_UNREACHED, NOTIFIED, NOTIFYING, ROLLBACK_STOPPED, LedgerError,
                            RollbackClaimed, RollbackUnrecorded, RolloutClosed, RolloutEnded, RolloutNotFound,
                            RolloutRecord, RolloutSuperseded, Transition, check_claimable, check_rolling_back,
                            check_rollout, claim_changes, notice_answer_lost, notice_sent, notice_time,
                            notice_unconfirmed, rollback_start, rollback_stopped_comment, utc, wall_utc)
from rollway.model import ServiceState, ShiftedRule, Weights
from rollway.one_line import on_one_line
from rollway.phases import RolloutPhase
from rollway.report import RollbackResult, RolloutResult
from rollway.spec import FlagBinding
from rollway.targets import Targets
from rollway.weights_read import FirstRead
from tasks import ecs, metrics, traffic
from tasks.flags import PATIENT_ATTEMPTS

# How many times a rollback sends its move to stable (see set_and_verify's ``tries``): the one
# policy of writes Prefect runs once, as its flag disables (whose delays set_and_verify takes too).
ROLLBACK_WRITE_TRIES = PATIENT_ATTEMPTS


# A task definition ECS can name: its ARN or family:revision (families are 1-255 letters,
# digits, hyphens and underscores). A bare family is refused too: it means "the latest
# revision", which is not what the canary ran before.
_TASK_DEFINITION = re.compile(
    r"(arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:task-definition/)?[A-Za-z0-9_-]{1,255}:[1-9][0-9]*"
)


def validate_task_definition(value: str) -> str:
    """``value`` if it is a task definition ARN or ``family:revision``.

    Raises:
        ValueError: anything else (a rollback flow parameter fails validation before any call).
    """
    if not _TASK_DEFINITION.fullmatch(value):
        raise ValueError(
            f"previous_task_definition {value!r} is neither a task definition ARN nor family:revision "
            "(e.g. webordinary-edit-task:3)"
        )
    return value


TaskDefinitionRef = Annotated[str, AfterValidator(validate_task_definition)]


DEFAULT_VERIFY_SECONDS = 30.0
"""How long a rollback reads the load balancer back, at least (wall time)."""
DEFAULT_HEALTHY_SECONDS = 300.0
"""How long a stable service scaled up to take the traffic may take to pass its health checks."""


HEALTHY_SETTING = ("the rollout spec's healthy_timeout_seconds or the rollback flow's (a rollback waits it, and "
                   f"{seconds_said(DEFAULT_HEALTHY_SECONDS)} at least)")
"""What sets a rollback's wait for healthy stable targets (``rollback_healthy_seconds``), as its
refusal names it. The rollback flow's own parameter is what a person running it by hand sets: a
rollout's spec is recorded, and a rollback of no open rollout has none. The floor is the wait's, not
the spec's (whose healthy_timeout_seconds may be 60 s), as ``SCALE_SETTING`` says its own; in
seconds, as the wait beside it is said ("after 300 s")."""


DEFAULT_SCALE_SECONDS = 600.0
"""How long a stable service scaled up to take the traffic may take to be steady (ECS started its tasks)."""


SCALE_SETTING = ("the rollout spec's scale_timeout_seconds or the rollback flow's (a rollback waits the longest of "
                 f"those it has, and {duration_said(DEFAULT_SCALE_SECONDS)} at least)")
"""What sets a rollback's wait for the stable service it scaled up (``rollback_scale_seconds``), as
its refusal names it, as ``HEALTHY_SETTING``). The floor is the wait's, not the spec's (whose
scale_timeout_seconds may be 60 s): "scale_timeout_seconds, 600 s at least" read as the spec's, and
said the wait in seconds beside the refusal's "after 10 min"."""


def rollback_scale_seconds(scale_timeout_seconds: float | None) -> float:
    """How long a rollout's rollback waits for the stable service it scaled up to be steady: the
    rollout's own wait for ECS to start a stage's tasks when longer than the default (the old
    version's tasks are of the same service, and take as long to pull and start)."""
    return max(DEFAULT_SCALE_SECONDS, scale_timeout_seconds or 0.0)


def rollback_healthy_seconds(healthy_timeout_seconds: float | None) -> float:
    """How long a rollout's rollback waits for a healthy stable target: the rollout's own wait
    for healthy targets when longer than the default (the preflight checks the stable group's
    health check against it)."""
    return max(DEFAULT_HEALTHY_SECONDS, healthy_timeout_seconds or 0.0)


# The run's log line of a step that failed after the traffic moved: RollbackIncomplete lists the
# step again, and `rollway abort`, which prints that list, leaves the line off the terminal.
SAID_AGAIN = {FAILED_STEP: True}


class RollbackIncomplete(PicklableError, RuntimeError):
    """The traffic is back on stable, but a later step of the rollback failed.

    Every step after the failed one was still done; the rollback stays open to be run again.

    Attributes:
        failed_steps: each failed step and why.
        how: what a person does to finish it, when running the rollback again as it was run
            cannot (no revision it knows can be restored on the canary); None otherwise.
        paged: people were paged of these failed steps (by this rollback, or by the one it ran
            again); False when no page told them (SNS refused it, or another rollback paged).
        reason: why the rollback was run, for the one that finishes it; None when not known.
    """

    def __init__(self, failed_steps: Sequence[str], how: str | None = None, *, paged: bool = False,
                 reason: str | None = None) -> None:
        self.failed_steps = tuple(failed_steps)
        self.how = how
        self.paged = paged
        self.reason = reason
        super().__init__(
            "the traffic is back on the stable service, but the rollback could not: "
            + "; ".join(self.failed_steps)
            + ". Every other step was done; "
            + (how or "run the rollback again once the failed step can succeed")
        )


def _done(steps: Sequence[str]) -> str:
    """The steps a rollback did before it stopped, for a message ("nothing" when none)."""
    return "; ".join(steps) if steps else "nothing"


class MoveNotReadBack(ReadBackUnanswered):
    """The rollback's move to stable, which the load balancer took (its ModifyRule answered), or whose
    answer was lost (``lost``: the write's error), not read back: the load balancer did not answer a
    read of its weights by the read-back's bound, or at all (``no_answer``: a connection dropped or
    refused), or refused it for now (``answered``: a throttle).
    The traffic may be on stable already, or not (the rule read as others since): unlike a read not
    answered before the move, which moved nothing. Its message is the read's own, after the lost
    answer's, then the refusal of the move sent again (``refused``: a permission denied, a rule
    gone), which no later run gets past until it is put right."""

    lost: str | None = None  # a class default: one pickled before the field existed was a move taken
    refused: BaseException | None = None
    taken: bool = False  # as ``lost``: one pickled before it existed was refused when sent again
    again_lost = False  # as ``taken``

    def __init__(self, what: str, seconds: float, service: str, bound: str | None = None,
                 lost: str | None = None, refused: BaseException | None = None, answered: str | None = None,
                 no_answer: str | None = None, taken: bool = False, server_side: bool = False,
                 for_now: bool = True, again_lost: bool = False) -> None:
        super().__init__(what, seconds, service, bound, answered, no_answer, server_side, for_now)
        self.lost, self.refused, self.taken, self.again_lost = lost, refused, taken, again_lost
        said = self.args[0]
        if lost is not None:
            said = f"the answer to the move was lost ({lost}); {said}"
        if refused is not None:
            # ``taken``: the load balancer took the move sent again, and its read-back was refused
            # (the rule deleted in between): "the move was refused" was untrue of it, as of one sent again
            # whose answer was lost too (``again_lost``), its read-back refused.
            again = ("the move was taken but could not be read back" if taken
                     else "its answer was lost too and the move could not be read back" if again_lost
                     else "the move was refused")
            said = f"{said}; sent again, {again}: {refused}"
        self.args = (said,)

    @classmethod
    def of(cls, unanswered: ReadBackUnanswered, lost: BaseException | None = None,
           refused: BaseException | None = None, taken: bool = False, again_lost: bool = False) -> MoveNotReadBack:
        return cls(unanswered.what, unanswered.seconds, unanswered.service, unanswered.bound,
                   None if lost is None else str(lost), refused, unanswered.answered, unanswered.no_answer, taken,
                   unanswered.server_side, unanswered.for_now, again_lost)


class TrafficMoveFailed(PicklableError, RuntimeError):
    """A traffic-only move (``execute_rollback(traffic_only=True)``, from ``after_long_wait``) failed.

    Attributes:
        steps: what it did before it failed (stable scaled, the traffic read back).
        cause: the failure.
        weights: the weights read back once the traffic was on stable, if it got that far (None:
            the traffic was not moved).
    """

    def __init__(self, steps: Sequence[str], cause: BaseException, weights: Weights | None) -> None:
        self.steps, self.cause, self.weights = tuple(steps), cause, weights
        super().__init__(f"{cause}; done before it failed: {_done(self.steps)}")


def _rolled_back(env: Environment, image: str | None, ran: str | None, rollout: str | None) -> str:
    """The page's line naming what is rolled back, which on-call needs first: the image, the task
    definition the canary ran (``ran``; None once it is back on the one restored, as on a rollback
    run again) and the rollout (`rollway report --rollout` takes a ledgered one's id). Empty when
    neither the image nor the task definition says what is taken out (a closed rollout's record
    names a version this rollback does not take out of production)."""
    if not (image or ran):
        return ""
    ran_as = f"{env.targets.canary_service} ran {ran}" if ran else None
    line = "Version: " + (f"{image} ({ran_as})" if image and ran_as else image or ran_as)
    if rollout:
        line += f"; rollout {rollout}"
    return line + ".\n"


def _pinned_as_ran(env: Environment, image: str, ran: str | None) -> str:
    """``image`` (a run's spec's, which no record pins) as the page names it: with the digest the
    canary's revision ``ran`` runs when the registry says the tag names that digest still, so the
    digest is this image's (not an older rollout's revision of the same repository); the tag alone
    when that is not known (a tag pushed again since, a registry out of reach, no revision read)."""
    if ran is None or image_parts(image).digest is not None or env.images is None:
        return image
    try:
        runs = ecs.image_of(env.deployer, ran)
        pinned = env.images.pin(image) if image_parts(runs).name == image_parts(image).name else None
    except Exception as err:  # noqa: BLE001 - the page names the tag alone; the rollback goes on
        get_run_logger().info("could not tell which digest %s ran (%s): the page names %s alone", ran, err, image)
        return image
    return with_pin(image, runs) if pinned == runs else image


def _flag_errors(failures: Sequence[tuple[str, Exception]], targets: Targets) -> str:
    """``feature: error`` for each flag a rollback could not disable, a write the role may not make
    said as the statement of the rollout's policy granting it (``rollout_said``, with the run's
    ``targets``): the page told on-call to run the rollback again "once the flag store accepts
    writes" over AWS's bare refusal, which it never would until the role had that statement. A
    write whose answer was lost keeps its own words (it may have landed)."""
    def said(err: Exception) -> object:
        return err if isinstance(err, FlagWriteUnanswered) else rollout_said(err, targets)

    return "; ".join(f"{feature}: {said(err)}" for feature, err in failures)


def _flags_not_disabled(failed: FlagsNotDisabled, targets: Targets) -> str:
    """The page's lines for the bound flags a rollback could not disable (``_flag_errors``). A write
    whose answer was lost may have landed: listed apart, it is not "NOT disabled" (the page said so
    beside "may have been written", and on-call read the feature as still on)."""
    lost = [(f, e) for f, e in failed.failures if isinstance(e, FlagWriteUnanswered)]
    refused = [(f, e) for f, e in failed.failures if not isinstance(e, FlagWriteUnanswered)]

    def named(failures: list) -> str:
        return f"{', '.join(f for f, _ in failures)} ({_flag_errors(failures, targets)})"

    return ((f"Feature flags NOT disabled: {named(refused)}. Run the rollback again once the flag store accepts "
             "writes.\n" if refused else "")
            + (f"Feature flags that MAY NOT be disabled (the answer to their write was lost): {named(lost)}. "
               "Running the rollback again disables any that are still on.\n" if lost else ""))


def _next_steps(rollout: str | None) -> str:
    """The page's last line: the commands that show the evidence. The rollout's id alone left
    on-call to find out that `rollway report` takes it; a `canary` flow run keeps no ledger, so
    its rollback has no report to name: its id (which marks its flag writes) is in no record, and
    `rollway report --rollout` with it found none."""
    look = "look at the canary's logs and metrics since the rollout began before trying again."
    if rollout is None or rollout.startswith(CANARY_RUN_ROLLOUT):
        return look
    return (f"`rollway report --rollout {rollout}` prints the incident report (what triggered the rollback, the "
            "exposure, each stage's verdict, where to look) and `rollway status` where the rollout stands; "
            f"{look}")


def when_again(err: BaseException | None, stable: str, run: str, weights: Weights | None = None) -> str:
    """When to ``run`` (a person's words for it, "run `rollway abort` again") a rollback that ``err``
    stopped while it took the traffic off the canary (None: not known): the failed-move page's last
    line, and `rollway abort`'s. A move
    not read back (WeightMismatch) is not the stable service failing to take the traffic, which the
    page said it was: the load balancer was slow to show the move (it may show it by now:
    ``weights``, read after; None: not read), or another writer changed the rule."""
    fix = _put_right_first(err, run)
    if fix is not None:
        return fix
    if isinstance(err, MoveNotReadBack):
        # Nor when the load balancer took the move, or lost its answer, and did not answer its read-back:
        # stable was never the trouble, and the traffic may be on it already. Sent again, the move is harmless.
        sent = (f"the answer to the move to {stable} was lost and the load balancer" if err.lost is not None
                else f"the load balancer took the move to {stable} but")
        # How the read-back went (not answered, refused for now, failed on AWS's side) in the words
        # the error itself says it in.
        sent += f" {err.read_went('the read-back of its weights')}"
        if err.refused is not None:
            # The move sent again was refused for good: waiting for the load balancer to answer does
            # not get past a permission denied; what the refusal names must be put right first. Any
            # other refusal (AWS's answer: a ValidationError, a target group not found) is not stable
            # failing to take the traffic either, which "once <stable> can take the traffic" said it was.
            # Rollway's own refusal (a rule gone, another service's rule on the path) is said as when
            # it refuses a first send: AWS never saw the move it refused. Taken, the move sent again
            # had its read-back refused (``taken``), which fails the same way.
            again = (" was taken but could not be read back" if err.taken
                     else ", its answer lost too, could not be read back" if err.again_lost else " was refused")
            return _refused_for_good(f"{sent}, and the move sent again{again}",
                                     err.refused, err.taken or err.again_lost, stable, run)
        return (f"{sent}: "
                f"the traffic may be on {stable} already, or not. {run[:1].upper()}{run[1:]} once the load balancer "
                "answers (moving the traffic to stable again does no harm if it is there); `rollway status` shows the "
                "split it holds once it answers.")
    if isinstance(err, TakenNotReadBack):
        # Not "once <stable> can take the traffic": it took it, as far as the load balancer said (or its
        # answer was lost), and the read-back's refusal is what fails the next run the same way until
        # it is put right.
        sent = (f"the load balancer took the move to {stable}, but" if err.lost is None
                else f"the answer to the move to {stable} was lost, and")
        if err.again is not None:
            # The move sent again was refused for good: that refusal fails the next run first.
            return _refused_for_good(f"{sent} its read-back {err.went}, and the move sent again was refused",
                                     err.again, False, stable, run)
        return _refused_for_good(f"{sent} its read-back {err.went}", err.refused, True, stable, run)
    if not isinstance(err, WeightMismatch):
        return f"{run} once {stable} can take the traffic."
    if weights is not None and weights == err.expected:
        return f"the move has shown since: {run} to finish it (retire the canary, disable the flags and tell people)."
    return (f"{run}: the load balancer may only be slow to show the move; if it shows other weights than "
            f"{err.actual} or {err.expected} by then, another writer (a person, another run) is changing the rule: "
            "find who first.")


def _refused_for_good(said: str, refused: BaseException, read_back: bool, stable: str, run: str) -> str:
    """``when_again``'s line for a move that may have landed (``said``: how it went) whose send again,
    or whose read-back (``read_back``), was refused for good, or failed before AWS answered it
    (``refused``): what to put right first."""
    # A read-back that failed before AWS answered it (credentials not renewed for the read) was refused
    # by nobody: "AWS refuses the move's read-back" was untrue of it.
    fix = _put_right_first(refused, run) or (
        f"{run} once what the error above says is put right." if isinstance(refused, BotoCoreError)
        else f"{run} once what the refusal above says is put right: until then AWS refuses "
        + ("the move's read-back" if read_back else "the move") + " the same way.")
    return (f"{said}: the traffic may be on {stable} already, or not. {fix[:1].upper()}{fix[1:]} `rollway status` "
            "shows the split the load balancer holds once it answers.")


def _put_right_first(err: BaseException | None, run: str) -> str | None:
    """When to ``run`` a rollback again that ``err`` refused, when what it names must be put right
    first, whatever stable's state (``when_again``); None when ``err`` is no such refusal."""
    refused_rule = isinstance(err, TargetNotFound) and err.kind == "listener rule"
    if refused_rule or isinstance(err, (RuleForwardsNowhere, RulesOnPath)):
        # Not "once stable can take the traffic": the rule is the trouble, and each refusal of it says
        # what to put right (the rule gone, another service's on the path, one recorded forwarding to
        # other groups, one answering by itself, several on the path and none told apart). "Once a
        # rule on the path forwards to the groups again: there is none" was untrue of all but the first.
        return (f"{run} once what the error above says of the listener rule is put right: until then it fails the "
                "same way, moving no traffic.")
    if isinstance(err, TargetNotFound) and err.kind in ("ECS service", "ECS cluster"):
        # Nor when ECS has no such service or cluster (a name misspelt in the targets block, one
        # deleted): read before any write, it fails the same way however ready stable is.
        return (f"{run} once ECS has the {err.kind.removeprefix('ECS ')} the error above names (check the service and "
                "cluster names in the targets block): until then it fails the same way, moving no traffic.")
    if isinstance(err, PermissionDenied):
        # Nor when AWS refused the role a call of the move (ModifyRule, DescribeRules, UpdateService):
        # it refuses it again however ready stable is, until the statement the error names is added.
        return f"{run} once the permission the error above names is granted: until then AWS refuses it the same way."
    return None


def _page_failed_move(env: Environment, reason: str, actor: str, steps: Sequence[str], err: BaseException,
                      rolled_back: str, again: str, verify_seconds: float, replaced: str | None = None) -> Weights | None:
    """Page people that a rollback failed while taking the traffic off the canary (stable never got
    healthy targets, the load balancer refused the write): the rollback's own page comes only once
    the traffic is back, so without this one nobody heard that users are still on the version being
    rolled back. ``again``: how to run the rollback again (``_run_again``). ``replaced``: that the move
    went over a rule found again under a new ARN (``FirstRead.replaced``), which the page says too. A
    failure to page is logged; the rollback's own error is raised either way.

    Returns the weights the page names (read when the traffic did not move; None: not read), for
    the ledger's record of the stopped rollback: what users get until it is run again.

    The weights it names are read once, within ``verify_seconds`` (the rollback's verify timeout),
    and not at all after a read-back the load balancer did not answer: read on the run's clients
    and retried, that read held the page for minutes past the bound the verification ended at."""
    log = get_run_logger()
    t = env.targets
    weights = None
    try:
        if isinstance(err, ReadBackUnanswered):
            raise err
        weights = traffic.weights_once(env.router.reading(verify_seconds), verify_seconds)
        holds = f"the load balancer holds {weights} (stable/canary), read back"
    except Exception as read_err:  # noqa: BLE001 - the page still says what is known
        # A rule found gone fails the read as it failed the move: its paragraph was paged twice over.
        # The move may say more of the same rule not found (several rules on its path in its place):
        # the read's words beside it told people to put back a rule there, which would make one more.
        same = str(read_err) == str(err) or (isinstance(read_err, TargetNotFound) and isinstance(err, TargetNotFound)
                                             and (read_err.kind, read_err.name) == (err.kind, err.name))
        holds = ("the load balancer could not be read back, for the reason below" if same
                 else f"the load balancer could not be read back ({read_err})")
    # A move taken (or whose answer was lost) and not read back may have landed: "could NOT be moved
    # back" said it had not. Its weights are not read again above (the load balancer did not answer
    # the last read); the error, the steps and the advice below say whether its answer was lost.
    # A read showing all of it on stable (a move the read-back gave up on that shows since, or traffic
    # on stable before the move) was paged as "could NOT be moved back" beside the weights that say it is.
    if isinstance(err, (MoveNotReadBack, TakenNotReadBack)):
        where = f"The traffic may NOT be back on {t.stable_service}: the move was sent and not read back. It failed"
    elif weights == Weights(stable=100, canary=0):
        where = (f"All the traffic is on {t.stable_service} as far as the load balancer shows now: {holds} after the "
                 "failure. The rollback did not finish. It failed")
    else:
        where = f"The traffic could NOT be moved back to {t.stable_service}: {holds}. It failed"
    then = when_again(err, t.stable_service, f"run the rollback again ({again})", weights)
    message = "\n".join([
        f"The rollback of {t.canary_service} failed. Reason for the rollback: {reason} (asked by {actor}).",
        rolled_back + f"{where}: {err}",
        f"Done before it failed: {_done(steps)}.",
        *([_replaced_line(replaced).rstrip()] if replaced else []),
        f"{t.canary_service}, its task definition and the bound feature flags are as they were.",
        then[:1].upper() + then[1:],
    ])
    log.error("%s", message)
    try:
        metrics.notify_or_repeat(env.notifier, f"Rollback FAILED: {t.canary_service}", message)
    except Exception as page_err:  # noqa: BLE001 - the rollback's own failure is the one raised
        # Nobody was paged (or, its answer lost, maybe someone was), so this line is what tells a
        # person why: a publish the role may not make is said as sns:Publish's statement
        # (``rollout_said``), not AWS's bare refusal.
        log.error("the page that the rollback failed may have gone out or not: %s" if answer_lost(page_err)
                  else "could not page people that the rollback failed: %s", rollout_said(page_err, t))
    return weights


class RollbackClaimLost(PicklableError, RolloutEnded):
    """This rollback lost its claim while it acted (another rollback took over a claim that lapsed,
    or finished the rollback): it stopped before its next step, so that only the rollback holding
    the claim moves what is left and pages people, once.

    A RolloutEnded: the run it stopped is not rolled back again by its hook while the rollout is
    rolled back, and a hook that finds it still rolling back waits for the holder, paging nobody.

    Attributes:
        steps: the steps this rollback did before it stopped.
        next_step: the step it did not take.
        holder: who holds the claim now (None: the rollback ended, or nobody could say).
        cause: the ledger's answer that showed the claim lost.
    """

    def __init__(self, steps: Sequence[str], next_step: str, holder: str | None, cause: BaseException) -> None:
        self.steps, self.next_step, self.holder, self.cause = tuple(steps), next_step, holder, cause
        done = _done(self.steps)
        super().__init__(
            f"this rollback no longer holds its claim ({cause}); it stopped before it would {next_step}, and "
            f"notified nobody. Done before it stopped: {done}. "
            + (f"{holder} holds the claim now and finishes the rollback (its notice is the one people get)"
               if holder else "the rollback that took the claim over finishes it")
            + "; `rollway status` shows it"
        )


def execute_rollback(
    env: Environment,
    reason: str,
    *,
    actor: str = "rollway",
    previous_task_definition: str | None = None,
    stable_desired: int | None = None,
    bindings: Sequence[FlagBinding] = (),
    verify_timeout_seconds: float = DEFAULT_VERIFY_SECONDS,
    healthy_timeout_seconds: float = DEFAULT_HEALTHY_SECONDS,
    stable_timeout_seconds: float = DEFAULT_SCALE_SECONDS,
    quiet_if_unchanged: bool = False,
    ledger_failure: str | None = None,
    rollout: str | None = None,
    notify: bool = True,
    traffic_only: bool = False,
    image: str | None = None,
    ledgered: bool = False,
    unpinned: bool = False,
    paged_failing: Sequence[str] | None = None,
    began: float | None = None,
) -> RollbackResult:
    """Move all traffic back to the stable version, then retire the canary.

    Args:
        env: the ports.
        reason: why, for the notification and the record.
        actor: who asked (a person, the judge, a state hook).
        previous_task_definition: what the canary service ran before the rollout; by default
            the stable service's task definition (the canary mirrors stable when idle).
        stable_desired: tasks the stable service needs to carry all traffic; by default the
            larger of the two services' desired counts, so capacity never shrinks.
        bindings: feature flags bound to the rollout, disabled here.
        rollout: the id of the rollout rolled back, when known: the flags' audit entries name it,
            so its rollback ends a person's hold on a flag for it alone (see rollway.flag_binding).
        quiet_if_unchanged: send no notification when the rollback found nothing to change
            (a rollout already rolled back, asked again by a hook or a second flow run): people
            were told the first time, and a second page is noise. Told by what the move's write
            found on the rule before it wrote: no call of its own.
        ledger_failure: what the ledger could not record about this rollback and why (the
            caller rolls back anyway): said in the notification, which is then always sent.
        notify: False sends no notification at all: another rollback of this rollout told people
            already, and this one only makes sure of its end state (``rollback_overtaken``).
        traffic_only: stop once the traffic is back on stable (capacity and health first, as
            always), retiring nothing, disabling nothing and notifying nobody: another rollback
            still holds the claim and does the rest (``rollback_overtaken`` after a long wait).
        image: the image rolled back, when known: the notification names it.
        unpinned: ``image`` is a run's spec's, with no record of the digest the run pinned it to:
            the notification names the digest the canary ran when the tag is known to name it.
        ledgered: the rollback is of a rollout the ledger records as open, which `rollway abort`
            rolls back again; a page saying it failed names only the rollback flow otherwise.
        paged_failing: the failed steps of the rollback this one runs again, which paged people
            with them a moment ago (a run's own, whose hook runs it again): when the same steps
            fail the same way, nobody is paged a second time to be told the same thing. Anything
            else (a step that passes now, or fails otherwise) is paged.
        began: when the rollback began (wall epoch seconds; by default, as this is called): the
            page, the log and the result say how long the traffic took to get back on stable from then.
    """
    log = get_run_logger()
    began = env.wall() if began is None else began
    t = env.targets
    steps: list[str] = []
    guard = ClaimKeeper.acting()

    def still_holds(next_step: str) -> None:
        """Before each step that changes something: a rollback that lost its claim stops here, so
        that it moves nothing more and pages nobody; the holder now does the rest, and pages. A
        quiet restore or traffic-only move whose rollout is no longer the newest stops here too
        (``StillNewest``)."""
        error = guard.stop_before(steps, next_step) if guard is not None else None
        if error is not None:
            log.error("%s", error)
            raise error

    def scale_stable(why: str) -> None:
        still_holds(f"scale {t.stable_service} to {desired}")
        log.warning("%s; scaling %s to %s", why, t.stable_service, desired)
        ecs.update_service(env.deployer, t.stable_service, desired=desired)
        # Said as soon as ECS took it: the service stays asked for that many tasks when the wait
        # below fails (no capacity, tasks that never start), and the page and the report of the
        # stopped rollback said it had done nothing.
        steps.append(f"set {t.stable_service}'s desired count to {desired} ({why}), not seen steady")
        # On the revision it runs now: not one a run in this process pointed it at earlier and
        # ECS may have rolled back; the rollback moves the traffic to whatever stable runs.
        try:
            ecs.wait_stable(env.deployer, [t.stable_service], stable_timeout_seconds,
                            {t.stable_service: stable.task_definition}, bound="scale_timeout_seconds")
        except ServiceNotStable as short:
            if not short.timed_out:
                raise  # waiting longer would not help (a service rolled back to another revision, or gone)
            raise _scale_ran_out(short) from short
        steps[-1] = f"scaled {t.stable_service} to {desired} ({why})"

    target = Weights(stable=100, canary=0)
    # What the move's first read of the rule found (``set_and_verify``'s write reads it anyway): the
    # weights the traffic is moved from, recorded with the rollback's entries. A read of its own cost
    # users on the canary one more call before their move.
    read = FirstRead()
    ran: str | None = None  # the version taken out, for the pages, once the canary is read

    def version() -> str:
        """The page's "Version:" line, read when a page is sent (never before the traffic moves)."""
        named = _pinned_as_ran(env, image, ran) if image and unpinned else image
        return _rolled_back(env, named, ran, rollout)
    try:
        # Read in here: a service that cannot be read (DescribeServices denied, a service renamed)
        # fails the rollback with users still on the canary, and is paged like any such failure.
        try:
            stable = ecs.describe_service(env.deployer, t.stable_service)
            canary = ecs.describe_service(env.deployer, t.canary_service)
        except TargetNotFound as missing:
            if not ledgered:
                _refuse_unknown_service(env, missing, verify_timeout_seconds)
            raise
        needed = stable_desired or max(stable.desired, canary.desired, 1)
        # Never below what the service already asks for (autoscaling may have raised it since the
        # rollout recorded its count): this is the moment it takes all the traffic.
        desired = max(needed, stable.desired)
        restore = previous_task_definition or stable.task_definition
        ran = canary.task_definition if canary.task_definition != restore else None
        scaled = stable.desired < needed or stable.running < needed
        if scaled:
            # Its only write before the move: the rule the move goes over is found and checked first
            # (reads alone), and one the move would refuse (another service's on the path) is refused
            # before it, not after a scale-up for a move never made.
            _check_move(env, verify_timeout_seconds)
            scale_stable(f"it had {stable.running}/{stable.desired} tasks before taking the traffic")
        # Named in its refusal, as finalize's is: a bare "after 300 s" named neither the setting nor
        # that it is the rollout's own (never below the default). Tasks this rollback started are
        # waited for, all of them: the load balancer sends everything to the healthy targets
        # alone, and a move at the first one put every user on one task sized for a share of
        # them. A service it did not scale has carried its traffic all along: a target failing
        # its checks there is not one a wait would bring back, so one healthy target will do.
        # Short of them all at the bound, the traffic still leaves the version being rolled back.
        short_line = _wait_stable_healthy(env, needed if scaled else 1, healthy_timeout_seconds, steps)

        still_holds(f"move the traffic to {t.stable_service}")
        # A lost answer that moved the traffic all the same is read back, not failed on; one that
        # did not land, or a throttle, is sent again: users stay on the canary until this lands.
        # Over a rule that has come to forward to a third group as well: users off the version
        # rolled back come first, and the group is dropped from the rule, said and recorded.
        try:
            weights = set_and_verify(env, target, verify_timeout_seconds, tries=ROLLBACK_WRITE_TRIES, first=read,
                                     dropping=True, moving="the rollback's move back")
        except (ReadBackUnanswered, BotoCoreError, ClientError, RefusedAfterLostAnswer) as failed:
            # After a write the load balancer took, or one whose answer was lost and not read back
            # (``landed_although_lost`` raises the write's error from the read given up on): said as a
            # move that may have landed, and was sent ("Done before it failed: nothing" said it was not).
            # Refused for good when sent again (a permission denied, a rule gone): that refusal is said too
            # (a permission as the statement granting it), since running the rollback again fails the same
            # way until it is fixed.
            refused = rollout_said(failed.refused, t) if isinstance(failed, RefusedAfterLostAnswer) else None
            lost = failed.lost if isinstance(failed, RefusedAfterLostAnswer) else failed
            unanswered = lost if isinstance(lost, ReadBackUnanswered) else lost.__cause__
            if not isinstance(unanswered, ReadBackUnanswered):
                raise
            # Sent again and taken, its read-back refused for good (the rule deleted in between).
            taken = isinstance(failed, RefusedAfterLostAnswer) and failed.taken
            again_lost = isinstance(failed, RefusedAfterLostAnswer) and failed.again_lost
            moved = MoveNotReadBack.of(unanswered, None if lost is unanswered else lost, refused, taken, again_lost)
            steps.append(f"sent the move of all the traffic to {t.stable_service} ("
                         + ("the load balancer took it" if moved.lost is None
                            else "its answer lost, then taken when sent again" if taken
                            else "its answer lost, and lost again when sent again" if again_lost
                            else "its answer lost")
                         + "; not read back)")
            raise moved from failed
        except TakenNotReadBack as taken:
            # The load balancer took the move (or its answer was lost), and its read-back was refused for
            # good: the refusal said as any other (a permission as the statement granting it).
            steps.append(f"sent the move of all the traffic to {t.stable_service} ("
                         + ("the load balancer took it" if taken.lost is None else "its answer lost")
                         + "; not read back)")
            raise TakenNotReadBack(taken.target, rollout_said(taken.refused, t), lost=taken.lost,
                                   again=None if taken.again is None else rollout_said(taken.again, t)) from taken
        except WeightMismatch as shown:
            # Raised only after a send the load balancer took (its ModifyRule answered) whose read-back
            # showed other weights to its bound: "Done before it failed: nothing" said it was not sent.
            steps.append(f"sent the move of all the traffic to {t.stable_service} (the load balancer took it; its "
                         f"read-back showed {shown.actual})")
            raise
    except (LedgerError, RollbackRefused):
        raise
    except Exception as caught:
        # A move the role may not make (ModifyRule, UpdateService) is paged and raised as the
        # statement of the rollout's policy granting it: on-call got AWS's bare refusal.
        err = rollout_said(caught, t)
        if err is not caught:
            err.__cause__ = caught  # AWS's own error stays on the chain, under the traffic-only move's too
        if not traffic_only:
            if notify and (guard is None or guard.stop_before(steps, "page people") is None):
                held = _page_failed_move(env, reason, actor, steps, err, version(),
                                         _run_again(bindings, ledgered), verify_timeout_seconds, read.replaced)
                # Said whole in the page's line: the flow engine's ERROR line of it, and its
                # traceback, are left off the terminal of a command running the flow (`rollway abort`).
                setattr(err, PAGED, True)
                left = [f"scale {t.canary_service} to 0 and restore its task definition"]
                left += ["disable the bound feature flags"] if bindings else []
                _record_stopped(env, rollout if ledgered else None, actor, steps, held, ledger_failure, [
                    f"move the traffic to {t.stable_service} ({err})", *left, "notify people that the rollback is done"],
                    moved_from=_moved_from(read, held))
            if err is caught:
                raise
            raise err
        # The caller's error says what was done (stable scaled) as well as what failed: a person
        # finding stable at more tasks knows which run did it. The traffic was not read back on
        # stable: everything after that is outside this ``try``.
        raise TrafficMoveFailed(steps, err, None) from err
    # When users got off the version rolled back, for the page: read later (forwarded, a chat
    # digest), it gave no time at all to set the canary's logs and metrics against.
    back_at = env.wall()
    # How long users stayed on the version rolled back once the rollback began: the incident's
    # first question. The page gave two timestamps to subtract at best, and the ledger's end entry
    # is stamped once the canary, the flags and the page are done too (SNS may take a minute).
    # Not when it was on stable at this run's first read: a run before it moved it, at a time not known.
    moved = read.weights != target
    took = max(back_at - began, 0.0) if moved else None
    verified = back_at if moved else None
    if took is not None:
        log.info("all the traffic is back on %s (%s, read back) %s after this rollback began", t.stable_service,
                 weights, duration_said(took))
    if read.dropped is not None:
        log.warning("the rollback's move of all the traffic to %s dropped %s: a rollout's shift refuses such a "
                    "rule; add the group back to the rule if it is still wanted. What the traffic was moved "
                    "from is not recorded", t.stable_service, read.dropped)
        steps.append(f"dropped {read.dropped}")
    elif read.made and read.weights is None:
        log.warning("the load balancer's rule forwarded with weight 0 to both %s's and %s's target groups when "
                    "the rollback read it: all the traffic is on %s all the same, and what it was moved from is "
                    "not recorded", t.stable_service, t.canary_service, t.stable_service)
    if read.replaced is not None:
        # Said here once, and kept in the ledger's entry (``record_rollback_end``): nothing else says
        # the rule rollway writes is no longer the one the rollout was run with.
        log.warning("%s", read.replaced)
    steps.append(f"weights {weights} verified")
    # The traffic is back: from here on a failing step must not stop the ones after it. Each
    # failure is noted, told in the notification, and fails the run at the end.
    failed_steps: list[str] = []
    stable_line = ""
    try:
        # A decommission racing this rollback may have scaled the stable service down since the
        # check above; it carries all the traffic now, so look again (the monitor looks too).
        after = ecs.describe_service(env.deployer, t.stable_service)
        if after.desired < needed:
            scale_stable(f"it was scaled to {after.desired} during the rollback")
            scaled = True
    except LedgerError:
        raise  # this rollback lost its claim, or its rollout is no longer the newest: it stops here
    except Exception as caught:  # noqa: BLE001 - reported, and the run fails below
        # Failing here stopped the rollback with the traffic back: the canary kept its tasks, the
        # flags stayed on, and the page said "Rollback FAILED", which means the traffic is not back.
        err = rollout_said(caught, t)
        if traffic_only:
            raise TrafficMoveFailed(steps, err, weights) from caught
        log.error("could not make sure %s still runs %s tasks now that it takes all the traffic: %s",
                  t.stable_service, needed, err, extra=SAID_AGAIN)
        failed_steps.append(f"make sure {t.stable_service} still runs {needed} tasks ({err})")
        stable_line = (f"Making sure {t.stable_service} still runs the {needed} tasks it needs for all the traffic "
                       f"FAILED ({err}): check its desired count.\n")
    if traffic_only:
        log.warning("the traffic is back on %s (%s); leaving %s and the flags to the rollback that holds the claim",
                    t.stable_service, weights, t.canary_service)
        return RollbackResult(
            reason=reason, weights=weights, weights_before=read.weights, dropped=read.dropped,
            rule_replaced=read.replaced, stable_desired=max(stable.desired, needed),
            canary_desired=canary.desired, canary_task_definition=canary.task_definition,
            stable_task_definition=stable.task_definition, scaled_stable=scaled, traffic_back_seconds=took,
            traffic_back_at=verified,
            steps=(*steps, "the canary and the flags left to the rollback holding the claim; not notified"),
        )

    how = None  # what a person does to finish, when running the rollback again cannot
    still_holds(f"scale {t.canary_service} to 0 on {restore}")
    try:
        retired, canary_line, step, restore = _retire_canary(env, restore, stable.task_definition, still_holds)
        steps.append(step)
    except LedgerError:
        raise  # this rollback lost its claim, or its rollout is no longer the newest: it stops here
    except Exception as caught:  # noqa: BLE001 - any failure here is reported, and the run fails below
        # An UpdateService the role may not make is said as its statement (``rollout_said``), as
        # the traffic's move is: the page and the run's error gave AWS's bare refusal.
        err = rollout_said(caught, t)
        log.error("could not point %s back at %s: %s", t.canary_service, restore, err, extra=SAID_AGAIN)
        if isinstance(err, TaskDefinitionInactive):
            how = how_to_restore(t, err.task_definition)
            failed_steps.append(f"restore {t.canary_service}'s task definition: {err}")
            canary_line = f"Restoring {t.canary_service}'s task definition FAILED: {err}. To finish: {how}.\n"
        else:
            failed_steps.append(f"restore {t.canary_service}'s task definition {restore} ({err})")
            canary_line = f"Restoring {t.canary_service}'s task definition {restore} FAILED ({err}).\n"
        try:
            # Still stop the canary's tasks, on whatever task definition it runs.
            retired = ecs.update_service(env.deployer, t.canary_service, desired=0)
            canary_line += f"{t.canary_service} is at 0 tasks on {retired.task_definition}."
            steps.append(f"{t.canary_service} scaled to 0 on {retired.task_definition} (restoring {restore} failed)")
        except Exception as scale_caught:  # noqa: BLE001 - as above
            scale_err = rollout_said(scale_caught, t)
            log.error("could not scale %s to 0: %s", t.canary_service, scale_err, extra=SAID_AGAIN)
            failed_steps.append(f"scale {t.canary_service} to 0 ({scale_err})")
            canary_line += f"Scaling {t.canary_service} to 0 FAILED too ({scale_err})."

    disabled: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # flags a person turned back on after a rollback: left on, and said so
    held: tuple[str, ...] = ()  # flags another rollout holds that this one never set: left as they are, and said so
    off: tuple[str, ...] = ()  # bound flags off before this run came to them (an earlier run's, or never on)
    missing: tuple[str, ...] = ()  # bound flags the table does not hold (misspelt in the spec, or deleted)
    flags_failed = None
    if bindings and env.flags is not None:
        from rollway.flag_binding import FlagsNotDisabled
        from tasks.flags import disable_patiently

        still_holds("disable the bound feature flags")
        try:
            changes = disable_patiently(env.flags, list(bindings), actor=actor, reason=reason, now=env.clock.now(),
                                        rollout=rollout, sleep=lambda seconds: sleep_wall(env, seconds))
        except FlagsNotDisabled as failed:
            # Traffic is already back: tell people now, then fail so the rollback stays open
            # in the ledger and running it again finishes the flags.
            changes, flags_failed = failed.updates, failed
        disabled = tuple(getattr(c, "feature", str(c)) for c in changes
                         if getattr(c, "kept", None) is None and getattr(c, "held", None) is None)
        kept = tuple(c.describe() for c in changes if getattr(c, "kept", None) is not None)
        held = tuple(c.describe() for c in changes if getattr(c, "held", None) is not None)
        # Said on the page: the run finishing one that disabled the flags and died paged nothing of
        # them, and on-call could not tell whether the features still served.
        named = {getattr(c, "feature", None) for c in changes}
        named |= {feature for feature, _ in flags_failed.failures} if flags_failed is not None else set()
        off = tuple(b.feature for b in bindings if b.feature not in named)
        # A flag the table does not hold was skipped as "nothing to disable" and paged as "already
        # off", so on-call took a feature gated by a misspelt name for disabled, where no flag was
        # ever turned off for it. The disable says which (no read again per flag, after the traffic
        # moved and before the page, from a table that may be throttling).
        missing = tuple(f for f in getattr(changes, "missing", ()) if f in off)
        off = tuple(feature for feature in off if feature not in missing)
        if missing:
            log.warning("bound feature flag(s) %s not found in the flag table: nothing was disabled for them",
                        ", ".join(missing))
        # "none needed" only when nothing failed: a flag whose write failed is a step not done.
        if disabled or flags_failed is None:
            steps.append(f"flags disabled: {', '.join(disabled) or 'none needed'}")
        steps += [f"flag left on: {line}" for line in kept]
        steps += [f"flag not found in the flag table, nothing disabled: {feature}" for feature in missing]
        steps += [f"flag left as it is: {line}" for line in held]

    message = (
        f"rollway rolled back {t.canary_service} on cluster {t.cluster}.\n\n"
        + version()
        + f"Why: {reason}\nRequested by: {actor}\n\n"
        # Which version users get now, the first thing on-call asks: the revision stable runs.
        f"Traffic is back at 100% on {t.stable_service}, which runs {stable.task_definition} "
        f"(read back from the load balancer at {wall_utc(back_at)}"
        + (f", {duration_said(took)} after this rollback began" if took is not None else "")
        + f": {weights}).\n"
        + _moved_from_line(read.weights, target, t.stable_service)
        + short_line
        + stable_line
        + (f"The move to stable dropped {read.dropped}: add the group back to the rule if it is still wanted.\n"
           if read.dropped else "")
        + _replaced_line(read.replaced)
        + f"{canary_line}\n"
        + (f"The ledger could NOT record {ledger_failure}. It still shows the rollout in its earlier phase: "
           "fix the ledger, then run the rollback again (`rollway abort`), which records it.\n"
           if ledger_failure else "")
        + (f"Feature flags disabled: {', '.join(disabled)}.\n" if disabled else "")
        + (f"Feature flags already off: {', '.join(off)}.\n" if off else "")
        + (f"Bound feature flag NOT FOUND in the flag table: {', '.join(missing)}: nothing was disabled for "
           f"{'it' if len(missing) == 1 else 'them'}. If the rollout's spec misspells a flag, the feature it gates "
           "may still serve: find the flag it reads (`rollway flags list`) and turn it off (`rollway flags set NAME "
           "--no-enabled`).\n" if missing else "")
        # Said here, not only in the run's log: whoever reads the page learns the feature still serves.
        + "".join(f"Feature flag LEFT ON, as a person set it: {line}.\n" for line in kept)
        # Another rollout's users still get the feature: "disabled: none" alone read as off for all.
        + "".join(f"Feature flag LEFT AS IT IS, another rollout holds it: {line}.\n" for line in held)
        + (_flags_not_disabled(flags_failed, t) if flags_failed else "")
        # How, as the page of a rollback that could not move the traffic says: "Run the rollback
        # again" alone left on-call to find out that `rollway abort` does, for a ledgered rollout.
        + (f"Run the rollback again ({_run_again(bindings, ledgered)}) once the failed step above can succeed "
           "(with previous_task_definition set to what the canary ran before, if that was the step).\n"
           if failed_steps else "")
        + "Next steps: " + _next_steps(rollout)
    )
    unchanged = (read.weights == target and not scaled and not disabled and flags_failed is None
                 and not failed_steps and canary.desired == 0 and canary.task_definition == restore
                 and ledger_failure is None)
    # Named among the failed steps even alone: its bare error said nothing of the traffic being
    # back, and `rollway abort` told people to wait until stable "can take the traffic".
    flags_step = ("disable every bound flag (could not disable bound feature flag(s) "
                  f"{_flag_errors(flags_failed.failures, t)})" if flags_failed is not None else None)
    # Like with like: the steps the hook hands over left the run escaped (``made_writable``), this
    # run's as AWS said them; a byte that is not UTF-8 in either made the same steps new ones.
    paged_already = (bool(paged_failing) and notify and ledger_failure is None
                     and [writable(step) for step in [*failed_steps, *filter(None, [flags_step])]]
                     == [writable(step) for step in paged_failing])
    paged = paged_already  # whether people were told of this rollback's failed steps, if any
    if quiet_if_unchanged and unchanged:
        log.info("%s was already rolled back and nothing had changed: no notification", t.canary_service)
        message_id = None
        steps.append("nothing had changed since the rollback: not notified again")
    elif not notify:
        log.info("another rollback of this rollout told people: no notification")
        message_id = None
        steps.append("not notified (another rollback of this rollout told people)")
    elif paged_already:
        # A permission the role lacks fails the run's rollback and its hook's, seconds apart: the
        # second page told on-call nothing the first had not.
        log.warning("the same steps failed as in the rollback this one ran again, whose page told people of them: "
                    "not paged again")
        message_id = None
        steps.append("not paged again (the rollback this one ran again paged people of the same failed steps)")
    else:
        # Above all before the page: the rollback that took the claim over sends its own.
        still_holds("notify people")
        # Only the notice of a rollback with every step done is recorded and not sent again: one
        # that told people of a failed step is followed by the notice of the run that finishes it.
        # And only a ledgered rollout's: a `canary` flow run's id is in no record, so each write
        # would fail and warn that a rollback run again "would send it again", of a record never kept.
        recorded = not failed_steps and flags_failed is None and ledger_failure is None and ledgered
        told, intent, unanswered = _notice_recorded(env, rollout) if recorded else (None, None, None)
        if told is not None:
            message_id = told.message_id
            log.warning("people were told of this rollback already, by %s at %s (SNS message %s), before that run "
                        "stopped without recording the rollback's end: not notified again", on_one_line(told.actor),
                        utc(told.at), told.message_id)
            steps.append(f"notified already by {on_one_line(told.actor)} at {utc(told.at)} (SNS message "
                         f"{told.message_id}): not notified again")
        else:
            if intent is not None:
                # An earlier run set out to page and stopped before recording that SNS took it:
                # people may have heard already, and the page says so rather than looking new.
                log.warning("%s set out to send this rollback's notice at %s and stopped before recording it: "
                            "sending it, saying it may repeat that one", on_one_line(intent.actor), notice_time(intent))
                why = ("lost SNS's answer to it" if unanswered is not None
                       else "stopped before recording it")
                message = (f"This notice may repeat one sent at {notice_time(intent)} by {on_one_line(intent.actor)}, "
                           f"whose run {why}.\n\n" + message)
            if recorded:
                _record_notice(env, rollout, actor, None, sending=True)
            try:
                message_id = metrics.notify(env.notifier, f"Rollback: {t.canary_service}", message)
                paged = True
                steps.append("notified" if intent is None else
                             f"notified (may repeat the notice {on_one_line(intent.actor)} set out to send at "
                             f"{notice_time(intent)})")
            except Exception as caught:  # noqa: BLE001 - the run fails below, naming this and any earlier failure
                # A failed step like any other, even alone: the run's error says the traffic is back and
                # only the page failed. SNS's bare error said neither, and `rollway abort` told people
                # to wait until the stable service "can take the traffic", which it already had. A
                # publish the role may not make is said as sns:Publish's statement (``rollout_said``):
                # AWS's bare refusal said nothing of what to add before running the rollback again.
                lost = answer_lost(caught)
                err = rollout_said(caught, t)
                log.error("could not send the rollback notification%s: %s",
                          ": SNS's answer was lost, people may have been paged" if lost else "", err, extra=SAID_AGAIN)
                message_id = None
                failed_steps.append(f"notify (SNS's answer was lost, people may have been paged: {err})" if lost
                                    else f"notify ({err})")
                if recorded:
                    # Refused: nobody was paged, and the rollback run again says nothing of a page
                    # that may repeat. Lost: SNS may have taken it, and the one run again says so.
                    _record_notice(env, rollout, actor, None, failed=err, lost=lost)
            else:
                if recorded:
                    _record_notice(env, rollout, actor, message_id)
    if flags_step is not None:
        failed_steps.append(flags_step)
    if failed_steps:
        if notify:
            # Not a `canary` flow run's: its id is in no record (see ``recorded`` above).
            _record_stopped(env, rollout if ledgered else None, actor, steps, weights, ledger_failure, failed_steps,
                            stable_task_definition=stable.task_definition, moved_from=read.weights,
                            message_id=message_id, verified_wall=verified)
        raise RollbackIncomplete(failed_steps, how, paged=paged, reason=reason)
    # The run's log is where a person who ran the rollback flow by hand looks: its only lines were
    # the run's start and end, nothing of what moved or whether people were told.
    log.info("rolled back %s: %s. Next: %s", t.canary_service, "; ".join(steps), _next_steps(rollout))
    return RollbackResult(
        reason=reason,
        weights=weights,
        weights_before=read.weights,
        dropped=read.dropped,
        rule_replaced=read.replaced,
        stable_desired=max(stable.desired, needed),
        canary_desired=retired.desired,
        canary_task_definition=retired.task_definition,
        stable_task_definition=stable.task_definition,
        scaled_stable=scaled,
        flags_disabled=disabled,
        flags_kept=kept,
        flags_held=held,
        notification_id=message_id,
        traffic_back_seconds=took,
        traffic_back_at=verified,
        steps=tuple(steps),
    )


def _check_move(env: Environment, seconds: float) -> None:
    """The rule a rollback's move goes over, found and checked with reads alone (``check_move_within``)
    before the rollback scales the stable service up for it.

    Raises:
        AdapterError: the move would refuse the rule (``TrafficRouter.check_move``).
        ClientError: AWS refused the role a read of the check (AccessDenied): the move's own reads are
            refused the same way. A check that could not be made otherwise (throttled, not answered
            within ``seconds``) is logged and the rollback goes on: the move checks the rule again at
            its write, and users on the canary wait on it.
    """
    try:
        traffic.check_move_within(env.router, seconds)
    except AdapterError:
        raise
    except Exception as err:  # noqa: BLE001 - the move reads and checks the rule again before it writes
        if is_denied(err):
            raise  # said as the statement granting it (``rollout_said``), before stable is scaled up for nothing
        get_run_logger().warning("could not check the listener rule the move to %s goes over before scaling it "
                                 "up (%s): going on; the move checks it before it writes",
                                 env.targets.stable_service, err)


def _wait_stable_healthy(env: Environment, needed: int, timeout_seconds: float, steps: list[str]) -> str:
    """Wait for ``needed`` healthy stable targets before the rollback moves the traffic; the page's
    line when the wait ran out with fewer, but some (empty otherwise).

    Short of them at the bound, the traffic still goes to the healthy ones: the rollback takes users
    off a version found failing, and refusing left every one of them on it, paged "could NOT be moved
    back", where a stable service short of targets serves them (the rollback moved at the first
    healthy target before it waited for all). With none healthy, the wait's refusal is raised.
    """
    try:
        wait_healthy(env, "stable", timeout_seconds, needed, setting=HEALTHY_SETTING)
        return ""
    except TooFewHealthyTargets as short:
        # The count of the wait's last look, made at its bound: a look of the rollback's own after it
        # told nothing more, and one throttled or unanswered refused the move with targets healthy.
        if short.healthy == 0:
            raise
        healthy = short.healthy
    stable = env.targets.stable_service
    # The wait's figure as it was given (``seconds_said``): ``:g`` cut 1000.125 s to "1000.12 s".
    waited = f"{seconds_said(timeout_seconds)} ({HEALTHY_SETTING})"
    get_run_logger().warning("only %d of the %d %s targets needed for all the traffic are healthy after %s: moving "
                             "the traffic to them all the same, off the version being rolled back",
                             healthy, needed, stable, waited)
    # True of a move that then fails too: the page of a stopped rollback quotes it.
    steps.append(f"went on with {healthy} of {needed} {stable} targets healthy after {seconds_said(timeout_seconds)}")
    return (f"Only {healthy} of the {needed} {stable} targets needed for all the traffic were healthy after {waited}: "
            f"the traffic was moved to them all the same, off the version being rolled back. Watch {stable}'s errors "
            "and latency until the rest pass the load balancer's health checks (see why they fail: the target "
            "group's health check, the service's tasks and their logs).\n")


def _scale_ran_out(short: ServiceNotStable) -> ServiceNotStable:
    """The scale-up wait's timeout, naming its setting and where to look: "not stable after 600s"
    alone named neither, on the page of a rollback that left users on the version rolled back. The
    wait is said once, by the service's error ("after 10 min"): not again in seconds beside it."""
    bare = str(ServiceNotStable(short.services, short.timeout_seconds))
    said = str(short)
    detail = said[len(bare):].removeprefix(": ") if said.startswith(bare) else ""
    return ServiceNotStable(short.services, short.timeout_seconds, (f"{detail}; " if detail else "") + (
        "see why its tasks do not start (the service's events, its stopped tasks' reasons), or raise "
        f"{SCALE_SETTING} if they only need longer"))


def _moved_from_line(before: Weights | None, target: Weights, stable: str) -> str:
    """The page's line on how much of the traffic the canary took when the rollback first read the
    load balancer (``before``), which on-call asks right after which version users get now: the
    page gave only the weights read back, and a rollback run again after one that had moved the
    traffic and died read as if it had just moved users off the canary. Empty when not read (a
    rule that forwarded to a third group, or with weight 0 to both: the rollback's log says so)."""
    if before is None:
        return ""
    if before == target:
        # Of this run alone: one that moved the traffic may have died before recording its end.
        return (f"All of the traffic was on {stable} already when this rollback first read the load balancer "
                f"({before} stable/canary): it moved none of it.\n")
    return (f"Before the rollback moved it, the canary took {before.canary}% of the traffic ({before} "
            "stable/canary, read from the load balancer).\n")


def _replaced_line(replaced: str | None) -> str:
    """The page's line saying the move went over a rule found again under a new ARN (``FirstRead.replaced``),
    empty when it did not: only the run's log and the ledger said so, and on-call, reading the page, took
    the rule rollway writes for the one the rollout ran with."""
    if replaced is None:
        return ""
    return (f"{replaced[:1].upper()}{replaced[1:]}: that rule is the one rollway writes now, not the one the rollout "
            "ran with.\n")


def _moved_from(read: FirstRead, held: Weights | None) -> Weights | None:
    """What a rollback that stopped before the traffic was back on stable moved it from, for its
    rollback-stopped entry: what its write's first read of the rule found; when no write read it
    (none was sent: the rollback stopped before its move, or the move's DescribeRules failed), the
    weights read for its page (``held``), as nothing this rollback did had moved them."""
    return read.weights if read.made else held


def _record_stopped(env: Environment, rollout: str | None, actor: str, done: Sequence[str], weights: Weights | None,
                    ledger_failure: str | None, not_done: Sequence[str], *,
                    stable_task_definition: str | None = None, moved_from: Weights | None = None,
                    message_id: str | None = None, verified_wall: float | None = None) -> None:
    """Record in ``rollout``'s history that this rollback stopped before it finished: the steps it
    did, those it did not, the weights it read back (on stable, or still on the canary when the
    traffic could not move; None: not read), those it read before it moved anything
    (``moved_from``, its ``from_weights``; None: not read) and, once the traffic was on stable, the
    task definition stable ran: what users get until the rollback is run again. Only the end of a
    finished rollback was recorded, so the incident report of one whose notice SNS refused said the
    traffic's return was not confirmed and which steps were done not recorded, though the run knew
    both. ``message_id``: SNS's id of the page this run sent of its failed steps (None: it paged
    nobody), which no ``notified`` entry records: the report said the notice was "not confirmed"
    while on-call held it. ``verified_wall``: when it read the traffic back on stable (wall clock;
    None: it did not). Record-keeping: a write that fails is logged, and the
    rollback's own error is raised either way; with no ledger, no rollout, or a ledger that could
    not record the rollback's start, there is nothing to add it to."""
    if env.ledger is None or rollout is None or ledger_failure is not None:
        return
    now = env.clock.now()
    try:
        env.ledger.record(env.targets.canary_service, owner=None, now=now, rollout=rollout, rule=check_rolling_back,
                          transition=Transition(at=now, kind=ROLLBACK_STOPPED, actor=actor, from_weights=moved_from,
                                                to_weights=weights, stable_task_definition=stable_task_definition,
                                                message_id=message_id, wall=env.wall(), verified_wall=verified_wall,
                                                comment=rollback_stopped_comment(_done(done), "; ".join(not_done))),
                          # The rollout's own weights too: left as they were, `rollway status` showed the
                          # rollout at its weights from before the move beside a load balancer at 100/0.
                          **({"weights": weights} if weights is not None else {}))
    except (LedgerError, *STORAGE_ERRORS) as err:
        get_run_logger().warning("could not record in the ledger which steps this rollback did before it stopped "
                                 "(%s): the incident report says they are not recorded", err)


def _notice_recorded(env: Environment, rollout: str | None
                     ) -> tuple[Transition | None, Transition | None, Transition | None]:
    """What earlier runs of ``rollout``'s rollback recorded of its notice, from one read: the notice
    sent (``rollway.ledger.notice_sent``) and, when none was, a notice set out to be sent with no
    record that SNS took it (``notice_unconfirmed``), and whether that run lost SNS's answer to it
    (``notice_answer_lost``). (None, None, None): nothing recorded, no ledger or rollout to ask, or
    the ledger could not be read (then the notice is sent: twice is better than never)."""
    if env.ledger is None or rollout is None:
        return None, None, None
    try:
        record = env.ledger.get(env.targets.canary_service)
    except STORAGE_ERRORS as err:
        get_run_logger().warning("could not read whether this rollback's notice went out already (%s): sending it",
                                 storage_failure(err, env.targets))
        return None, None, None
    told, intent = notice_sent(record, rollout), notice_unconfirmed(record, rollout)
    return told, intent, (notice_answer_lost(record, intent) if told is None and intent is not None else None)


def _record_notice(env: Environment, rollout: str | None, actor: str, message_id: str | None, *,
                   sending: bool = False, failed: BaseException | None = None, lost: bool = False) -> None:
    """Record that the rollback's notice went out, right after it did: a rollback that dies before
    recording its end is finished by another, which then does not page people again. After the
    publish, not before: a rollback that dies in between pages twice, one recorded before it would
    page nobody. ``sending``: record instead, right before the publish, that this run sets out to
    send it, so that the page of a run finishing one that died in between says it may repeat a page;
    ``failed``: that SNS did not take it (refused it, or was never reached), or with ``lost`` that its
    answer was lost (SNS may have taken it: the run again says its notice may repeat it). A write that
    fails is logged and the rollback goes on (the page too): the rollback's end records the message id
    anyway."""
    if env.ledger is None or rollout is None:
        return
    now = env.clock.now()
    wall = env.wall() if sending else None  # when people may have been paged by it, as the next page says
    if sending:
        kind, comment, gone = (NOTIFYING, "the rollback's notice is being sent",
                               "sending it; a rollback run again before this one records it would not say it may "
                               "repeat it")
    elif failed is not None and lost:
        kind, comment, gone = (NOTICE_UNANSWERED, f"{NOTICE_ANSWER_LOST}{failed}",
                               "a rollback run again would say its notice may repeat one this run stopped before "
                               "recording")
    elif failed is not None:
        # Worded by what happened: no attempt that connected is no refusal of SNS's.
        why = NOTICE_UNREACHED if never_reached(failed) else NOTICE_NOT_SENT
        kind, comment, gone = (NOTICE_FAILED, f"{why}{failed}",
                               "a rollback run again would say its notice may repeat this one")
    else:
        kind, comment, gone = (NOTIFIED, "the rollback's notice was sent",
                               "a rollback run again before this one records its end would send it again")
    try:
        env.ledger.record(env.targets.canary_service, owner=None, now=now, rollout=rollout, rule=check_rolling_back,
                          transition=Transition(at=now, kind=kind, actor=actor, message_id=message_id,
                                                comment=comment, wall=wall))
    except (LedgerError, *STORAGE_ERRORS) as err:
        what = {NOTIFYING: "is being sent", NOTICE_FAILED: "was not sent", NOTIFIED: "was sent",
                NOTICE_UNANSWERED: "may have been sent (SNS's answer was lost)"}[kind]
        get_run_logger().warning("could not record that the rollback's notice %s (%s): %s", what, err, gone)


def _run_again(bindings: Sequence[FlagBinding], ledgered: bool) -> str:
    """How a person runs a failed rollback again. `rollway abort` rolls back only a rollout the
    ledger records as open: for any other (a `canary` flow run, which keeps no ledger) it answers
    "nothing to abort" while users stay on the canary, so only the rollback flow is named, with
    the flags it must be given (without the ledger, it disables only those it is given)."""
    if ledgered:
        return "`rollway abort`, or the rollback flow"
    flags = f" with bindings {', '.join(b.feature for b in bindings)}" if bindings else ""
    return (f"the `rollback` flow (the rollback deployment){flags}; `rollway abort` rolls back only rollouts the "
            "ledger records, and has none to roll back here")


def _retire_canary(env: Environment, restore: str, stable_runs: str,
                   still_holds: Callable[[str], None]) -> tuple[ServiceState, str, str, str]:
    """Scale the canary to 0 on ``restore``, or on ``stable_runs`` (the revision the stable service
    runs) when ECS refuses ``restore`` as INACTIVE (or DELETE_IN_PROGRESS).

    Returns:
        (the canary as ECS reports it, the page's line, the step done, the revision restored).

    Raises:
        TaskDefinitionInactive: ``restore`` is INACTIVE and stable runs it too, or runs another
            INACTIVE one (named with ``restore``; ``how_to_restore`` says what finishes it).
        RuntimeError: ``restore`` is INACTIVE and pointing the canary at ``stable_runs`` failed.
        Whatever the first UpdateService raised, and ``still_holds``' LedgerError.
    """
    t = env.targets
    try:
        retired = ecs.update_service(env.deployer, t.canary_service, task_definition=restore, desired=0)
        line, step = f"{t.canary_service} is at 0 tasks on {restore}.", f"{t.canary_service} scaled to 0 on {restore}"
        return retired, line, step, restore
    except TaskDefinitionInactive as refused:
        inactive = refused
    # Deregistered since it was recorded (a stack update replaced it, a cleanup by hand): ECS
    # will never take it again, and every rollback run again would fail on it. The canary
    # mirrors stable when idle: it goes to the revision stable runs now, and says so.
    if same_revision(stable_runs, restore):
        raise TaskDefinitionInactive(restore, t.canary_service, f"{t.stable_service} runs it too: no other revision "
                                     "to restore", status=inactive.status) from inactive
    get_run_logger().warning("%s; pointing %s at %s, the revision %s runs, instead", inactive, t.canary_service,
                             stable_runs, t.stable_service)
    still_holds(f"scale {t.canary_service} to 0 on {stable_runs}")
    try:
        retired = ecs.update_service(env.deployer, t.canary_service, task_definition=stable_runs, desired=0)
    except TaskDefinitionInactive as also:
        raise TaskDefinitionInactive(
            restore, t.canary_service, f"nor at {stable_runs}, which {t.stable_service} runs: {also.status} too",
            status=inactive.status,
        ) from also
    except Exception as also:  # noqa: BLE001 - said with the refusal that led to it
        # An UpdateService the role may not make is said as its statement (``rollout_said``), as
        # the first restore's is: inside this error it stayed AWS's bare refusal on the page.
        said = rollout_said(also, t)
        raise RuntimeError(f"{inactive}; pointing it at {stable_runs}, which {t.stable_service} runs, "
                           f"instead failed: {said}") from also
    line = (f"{restore}, which {t.canary_service} ran before the rollout, was {NOT_TAKEN[inactive.status]} since "
            f"({inactive.status}: ECS refuses it), so {t.canary_service} is at 0 tasks on {stable_runs}, the revision "
            f"{t.stable_service} runs.")
    step = (f"{t.canary_service} scaled to 0 on {stable_runs}, the revision {t.stable_service} runs "
            f"({restore} is {inactive.status})")
    return retired, line, step, stable_runs


def how_to_restore(t, task_definition: str) -> str:
    """What a person does when no revision the rollback knows can be restored on the canary
    (``task_definition``, INACTIVE or DELETE_IN_PROGRESS): running it again as it is (`rollway abort`
    passes the recorded revision) would fail the same. Said by the rollback's error and by `rollway status`."""
    return (f"register an ACTIVE revision for {t.canary_service} (a copy of the one it should run: "
            "`aws ecs describe-task-definition`, then `aws ecs register-task-definition`), then run the rollback "
            "flow with previous_task_definition set to it, which finishes the rollback (`rollway abort` would ask "
            f"for {task_definition} again)")


def no_revision_to_restore(deployer, targets: Targets, record) -> str | None:
    """Why a rollback of ``record`` cannot restore a revision on the canary, and what finishes it,
    or None when it can. Read from ECS (``deployer``) by `rollway status` and the reports, which
    say the same: a stopped rollback's line in the report said "run the rollback again" where
    status said `rollway abort` cannot finish it.

    The rollback's rule (``execute_rollback``): the recorded previous revision, or the one stable
    runs when that was deregistered (INACTIVE) or deleted (DELETE_IN_PROGRESS) since; with neither
    ACTIVE, every `rollway abort` ends with that step failed.

    Raises:
        Exception: ECS could not be read (the callers say so and give the advice as before).
    """
    stable = deployer.describe(targets.stable_service).task_definition
    previous = record.previous_task_definition or stable
    status = deployer.revision_status(previous)
    if status not in NOT_TAKEN:
        return None
    if not same_revision(stable, previous) and deployer.revision_status(stable) not in NOT_TAKEN:
        return None
    again = "" if same_revision(stable, previous) else f", nor is {stable}, which {targets.stable_service} runs"
    return (f"{previous}, which {targets.canary_service} ran before the rollout, is {status} ({NOT_TAKEN[status]})"
            f"{again}: "
            + how_to_restore(targets, previous))


def judge_rollback(env: Environment, spec, *, previous_task_definition: str | None,
                   stable_desired: int | None, rollout: str | None = None,
                   ledgered: bool = False, pinned_image: str | None = None) -> Callable[[str], RollbackResult]:
    """The rollback a rollout's stage loop performs when the judge or a person says so
    (``ledgered``: the rollout's ledgered, see ``execute_rollback``; ``pinned_image``: the digest
    the canary's revision names, which the page names beside the tag)."""
    return functools.partial(
        execute_rollback, env, actor="judge", previous_task_definition=previous_task_definition, rollout=rollout,
        image=with_pin(spec.image, pinned_image), ledgered=ledgered,
        stable_desired=stable_desired, bindings=spec.flags, **rollback_waits(spec),
    )


def rollback_waits(spec) -> dict[str, float]:
    """``execute_rollback``'s waits for a rollout whose spec is ``spec``: its read-back bound, and
    its health and scale-up waits when longer than the defaults."""
    return {"verify_timeout_seconds": spec.verify_timeout_seconds,
            "healthy_timeout_seconds": rollback_healthy_seconds(spec.healthy_timeout_seconds),
            "stable_timeout_seconds": rollback_scale_seconds(spec.scale_timeout_seconds)}


def record_rollback_end(env: Environment, *, rollout: str | None, actor: str, reason: str,
                        result: RollbackResult) -> None:
    """Record that ``rollout``'s rollback ended, lease-free (a rollback must always be able to
    act, whoever holds the lease), with the weights it moved the traffic from (read before it moved
    anything) and those it read back, the task definition it restored on the canary, the one the
    stable service ran when it took all the traffic (what users get) and its notice's SNS message
    id; its claim ends with it.

    If another rollback ended that rollout and a new rollout started while this one acted, the
    end belongs to the old record, never to the new one: nothing is written, and the log says so.
    Nor is a second end written on a rollout another rollback recorded as rolled back meanwhile
    (one that took this one's claim over after its last check): the reports name the rollback
    whose end the record keeps last as the one that finished it.
    """
    now = env.clock.now()
    try:
        env.ledger.record(
            env.targets.canary_service, owner=None, now=now, rollout=rollout, rule=_not_ended_by_another,
            # A group the move dropped from the rule, and a rule it went over in place of one gone, are kept
            # with the reason: no other record says so.
            transition=Transition(at=now, kind="rollback", actor=actor, from_weights=result.weights_before,
                                  to_weights=result.weights,
                                  comment="; ".join([reason, *([f"the move to stable dropped {result.dropped}"]
                                                               if result.dropped else []),
                                                     *([result.rule_replaced] if result.rule_replaced else [])]),
                                  message_id=result.notification_id, task_definition=result.canary_task_definition,
                                  stable_task_definition=result.stable_task_definition, wall=env.wall(),
                                  # When the traffic was back: this entry is written after the canary, the
                                  # flags and the page, which SNS may hold a minute.
                                  verified_wall=result.traffic_back_at),
            # The flags it left as they were (a person's re-enable, another rollout's hold): the incident
            # report says so from these.
            followed_by=tuple(Transition(at=now, kind="flag", actor=actor, comment=line)
                              for line in (*result.flags_kept, *result.flags_held)),
            phase=RolloutPhase.ROLLED_BACK, weights=result.weights, **claim_changes(None),
        )
    except (RolloutSuperseded, RollbackEndedBefore) as moved:
        get_run_logger().warning("this rollback's end is not recorded: %s", moved)


ROLLED_BACK_SINCE = "the rollout was rolled back since"
"""How an ``unheard`` entry the rollback records ends (``rollway.approvals.unheard_comment``)."""


def record_unheard_after_rollback(env: Environment, record: RolloutRecord) -> None:
    """Once the traffic is back on stable: record in the ledger the answers the flow run holding
    ``record``'s rollout was given in the Prefect UI after its process died
    (``flows.approvals.unheard_answers``), as a run taking a rollout over does, so the rolled-back
    rollout's history and `rollway status` still say who answered it, and how. Those recorded
    already (`rollway abort` records them before it runs this rollback) are not written again.

    Only now, never before the traffic moves: the read goes to the Prefect API, and a slow or
    unreachable one must not keep users on the canary. Record-keeping: a read or a write that
    fails is logged, and the rollback goes on.
    """
    from prefect.context import FlowRunContext

    from flows.approvals import unheard_answers
    from flows.env import owner_run_id
    from rollway.approvals import UNHEARD_AFTER, not_yet_recorded, unheard_transitions

    run_id = owner_run_id(record.owner)
    context = FlowRunContext.get()
    if run_id is None or (context is not None and context.flow_run is not None and context.flow_run.id == run_id):
        return  # no flow run held it, or this one does (a shift that lost a race): alive, it heard its answers
    log = get_run_logger()
    service = env.targets.canary_service
    try:
        unheard = unheard_answers(run_id)
    except Exception as err:  # noqa: BLE001 - record-keeping; the traffic is back either way
        log.warning("could not read whether flow run %s, which held %s's rollout, was answered %s (%s): any such "
                    "answer is not in the ledger", run_id, service, UNHEARD_AFTER, err)
        return
    if not unheard:
        return
    try:
        now = env.clock.now()
        history = env.ledger.get(service).history
        unheard = not_yet_recorded(unheard, history)
        if unheard:
            entries = unheard_transitions(unheard, now, then=ROLLED_BACK_SINCE, history=history)
            env.ledger.record(service, owner=None, now=now, rollout=record.rollout_id, rule=check_rolling_back,
                              transition=entries[0], followed_by=tuple(entries[1:]))
    except Exception as err:  # noqa: BLE001 - as above
        log.warning("could not record in the ledger the answers flow run %s was given %s (%s)", run_id,
                    UNHEARD_AFTER, err)
        return
    for u in unheard:
        log.warning("%s answered %s to flow run %s %s: nothing acted on it (recorded in the ledger)",
                    u.answer.who, u.answer.action, u.run, UNHEARD_AFTER)


class RollbackEndedBefore(LedgerError):
    """Another rollback recorded the rollout's rollback as ended before this one came to."""


def _not_ended_by_another(record: RolloutRecord) -> None:
    """The rule of a rollback's end: the rollout is not rolled back already.

    Raises:
        RollbackEndedBefore: naming who ended it and when.
    """
    if record.phase is not RolloutPhase.ROLLED_BACK:
        return
    end = record.last_transition("rollback")
    # Who, as the ledger has it, on one line as this module names every actor: control characters
    # in a name acted on the terminal reading the log.
    by = f" by {on_one_line(end.actor)} at {utc(end.at)}" if end is not None else ""
    raise RollbackEndedBefore(f"rollout {record.rollout_id} of {record.service} was recorded as rolled back{by} "
                              "already; its end is that rollback's")


# --- Two rollbacks of one rollout (`rollway abort` and a cancelled run's hook, say) -----------

CLAIM_WAIT_SECONDS = 900.0
"""How long a rollback waits for another one holding the claim to end (wall seconds): longer
than a rollback takes with the default waits for the stable service and its health checks."""
CLAIM_POLL_SECONDS = 10.0


def sleep_wall(env: Environment, wall_seconds: float) -> None:
    """Sleep ``wall_seconds`` of wall time, on the rollout clock (the one that sleeps; a scaled
    clock runs ``speed`` clock seconds per wall second, and a fake one moves its fake wall)."""
    env.clock.sleep(wall_seconds * getattr(env.clock, "speed", 1.0))


def claimant(actor: str) -> str:
    """Who holds a rollback's claim: ``actor`` and this flow run (or, outside one, this process)."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is not None:
        return f"{actor} (flow run {run.name}, {run.id})"
    return f"{actor} (process {os.getpid()} on {socket.gethostname()})"


class ClaimKeeper:
    """Renews a rollback's claim while it acts, so it stays short: a holder that dies loses it
    within CLAIM_SECONDS, and the next rollback finishes the work. On a failure the claim is given
    up at once (the rollback stays open for the next run to finish, without waiting).

    Renewals run on a daemon thread every third of the claim; one DynamoDB refuses is logged and
    tried again a tenth of that later (``Renewals``, as a run's lease is), a claim lost (taken
    over, the rollback ended) stops them. The rollback acting under it (``ClaimKeeper.acting()``)
    asks ``verify`` before each step, and stops once the claim is lost: another rollback carries
    on, and only that one pages people.

    Args:
        clock: what the renewals are timed on: real seconds (the wall clock claims are stamped
            on, in a live run); a test gives its own.
        log: where the renewals' warnings go (None: the run's logger).
    """

    def __init__(self, env: Environment, holder: str, rollout: str | None, *,
                 clock: Callable[[], float] = time.monotonic, log=None) -> None:
        self.env, self.holder, self.rollout = env, holder, rollout
        self.lost: LedgerError | None = None  # why the claim is no longer this rollback's
        self.lost_to: str | None = None  # who holds it since, when known
        # The run's logger, taken here for the thread (which has no run context).
        self._log = log if log is not None else get_run_logger()
        self._renewals = Renewals(lambda: self._claim(CLAIM_SECONDS), lease=CLAIM_SECONDS, clock=clock, look=None,
                                  lost=self._renewal_refused, trouble=self._trouble, recovered=self._recovered,
                                  name=f"rollback-claim {holder}")
        self._token = None

    @staticmethod
    def acting() -> "ClaimKeeper | StillNewest | None":
        """What the rollback running here checks before each step: the claim it acts under, if it
        took one, or (a quiet restore) that its rollout is still the newest."""
        return _ACTING.get()

    def stop_before(self, steps: Sequence[str], next_step: str) -> RollbackClaimLost | None:
        """The error that stops the rollback before ``next_step`` once its claim is lost, else None."""
        lost = self.verify()
        return RollbackClaimLost(steps, next_step, self.lost_to, lost) if lost is not None else None

    def _lose(self, lost: LedgerError, record: RolloutRecord | None = None) -> None:
        if self.lost is not None:
            return
        holder = getattr(lost, "holder", None)
        if holder is None and record is not None:
            end = record.last_transition("rollback")
            holder = record.rollback_holder or (f"{end.actor} (who finished it)" if end is not None
                                                and record.phase is RolloutPhase.ROLLED_BACK else None)
        # As the ledger has it: a name with an escape sequence in it acted on the terminal reading the log.
        self.lost_to, self.lost = (on_one_line(holder) if holder is not None else None), lost
        self._renewals.halt()

    def verify(self) -> LedgerError | None:
        """Why this rollback no longer holds its claim, or None while it does (or the ledger
        cannot say: a storage error never stops a rollback). Reads the rollout once, and judges
        it by the rule the ledger's own claim writes use."""
        if self.lost is None and self.env.ledger is not None:
            record = None
            try:
                record = self.env.ledger.get(self.env.targets.canary_service)
                if record is None:
                    raise RolloutNotFound(f"no rollout of {self.env.targets.canary_service} is recorded any more")
                check_rollout(record, self.rollout)
                check_claimable(self.holder, self.env.wall())(record)
            except LedgerError as lost:
                self._lose(lost, record)
            except Exception as err:  # noqa: BLE001 - storage trouble: the renewals say whether the claim holds
                said = failure_said(err, self.env.targets)
                self._log.warning("could not read this rollback's claim (%s); going on", said)
        return self.lost

    def _claim(self, lease_seconds: float) -> None:
        self.env.ledger.claim_rollback(self.env.targets.canary_service, holder=self.holder, now=self.env.wall(),
                                       lease_seconds=lease_seconds, rollout=self.rollout, at=self.env.clock.now())

    def _renewal_refused(self, lost: LedgerError) -> None:
        self._log.warning("this rollback no longer holds its claim: %s", lost)
        self._lose(lost)

    def _trouble(self, err: Exception, retry: float, left: float, failures: int) -> None:
        self._log.warning("%s", trouble_said("this rollback's claim", err, self.env.targets, retry, left, failures,
                                             "another rollback may take the rollback over mid-way"))

    def _recovered(self, failures: int, lapsed: float) -> None:
        self._log.log(*recovered_said("this rollback's claim", failures, lapsed, "rollback"))

    def __enter__(self) -> "ClaimKeeper":
        self._token = _ACTING.set(self)
        if self.env.ledger is not None:
            self._renewals.start()
        return self

    def __exit__(self, kind, error, trace) -> None:
        self._renewals.stop()
        if self._token is not None:
            try:
                _ACTING.reset(self._token)
            except ValueError:  # entered in another context (a journal's): just forget this claim
                _ACTING.set(None)
            self._token = None
        # A claim lost is another rollback's now: giving it "up" would be refused, or free it under that one.
        if kind is not None and self.env.ledger is not None and self.lost is None:
            try:
                self._claim(0.0)
            except LedgerError as taken:
                # Taken over (or the rollback ended) since the last renewal: that one's, not lapsing.
                self._log.info("this rollback's claim is no longer its own to give up: %s", taken)
            except Exception as err:  # noqa: BLE001 - the lease lapses by itself
                # Counted from its last renewal: up to a claim's length, not always the whole of it.
                left = self._renewals.left()
                when = (f"it lapses by itself in {left:.0f} s" if left >= 0.5 else
                        f"it lapsed {-left:.0f} s ago: another rollback may take it over now")
                self._log.warning("could not give up this rollback's claim (%s): %s", when, err)


class StillNewest:
    """The per-step check of ``rollback_overtaken``'s quiet restore and ``after_long_wait``'s
    traffic-only move, which act under no claim of their own (another rollback ended the rollout,
    or still holds its claim): before each step that changes something, the rollout is read again,
    and once another one is the service's newest the run stops (RolloutSuperseded): the load
    balancer's traffic and the canary are that rollout's now. Any check already in force (a claim
    this run holds) is asked first.

    Args:
        doing: what the run was doing, for the error ("put the traffic back after rollout X's
            rollback" by default).
    """

    def __init__(self, env: Environment, rollout: str, doing: str | None = None) -> None:
        self.env, self.rollout = env, rollout
        self.doing = doing or f"put the traffic back after rollout {rollout}'s rollback"
        self._outer: ClaimKeeper | StillNewest | None = None
        self._token = None

    @classmethod
    def around(cls, env: Environment, rollout: str | None, doing: str | None = None) -> AbstractContextManager:
        """The check, where there is one to make: without a ledger or a rollout id nothing says
        which rollout is the newest, and the run goes on unchecked (as it did before the check)."""
        return cls(env, rollout, doing) if env.ledger is not None and rollout is not None else nullcontext()

    def stop_before(self, steps: Sequence[str], next_step: str) -> LedgerError | None:
        """The error that stops the restore before ``next_step``, or None while its rollout is the
        newest (or the ledger cannot say: a storage error never stops putting traffic back)."""
        outer = self._outer.stop_before(steps, next_step) if self._outer is not None else None
        if outer is not None:
            return outer
        service = self.env.targets.canary_service
        try:
            record = self.env.ledger.get(service)
        except STORAGE_ERRORS as err:
            get_run_logger().warning("could not read the rollout before the next step (%s); going on",
                                     storage_failure(err, self.env.targets))
            return None
        if record is None or record.rollout_id == self.rollout:
            return None
        done = _done(steps)
        return RolloutSuperseded(
            f"rollout {record.rollout_id} of {service} began while this run {self.doing}: the traffic and the "
            f"canary are that rollout's now, so this run stopped before it would {next_step}, moving nothing of "
            f"that rollout's and notifying nobody. Done before it stopped: {done}")

    def __enter__(self) -> "StillNewest":
        self._outer = _ACTING.get()
        self._token = _ACTING.set(self)
        return self

    def __exit__(self, kind, error, trace) -> None:
        _ACTING.reset(self._token)


_ACTING: ContextVar[ClaimKeeper | StillNewest | None] = ContextVar("rollway_rollback_claim", default=None)
"""What the rollback running in this context checks before each step (execute_rollback asks it):
the claim it acts under, or that its rollout is still the newest."""


def wait_for_claim(env: Environment, held: RollbackClaimed, *, holder: str, rollout: str | None,
                   wait_seconds: float = CLAIM_WAIT_SECONDS) -> RolloutRecord | None:
    """Wait while another rollback holds the claim on the rollout's rollback, showing progress.

    Returns:
        The rollout once that rollback has ended (rolled back), or None once the claim is free to
        take: given up after a failed step, or lapsed (its holder died).

    Raises:
        RollbackClaimed: still held after ``wait_seconds`` (nothing was changed by this rollback).
        RolloutSuperseded: another rollout is the newest by now.
    """
    log = get_run_logger()
    service = env.targets.canary_service
    started = env.wall()
    log.warning("%s: waiting up to %.0f s for that rollback to end", held, wait_seconds)
    while True:
        record = env.ledger.get(service)
        if record is None:
            return None
        check_rollout(record, rollout)
        if record.phase is not RolloutPhase.ROLLING_BACK:
            return record
        if record.rollback_holder in (None, holder) or record.rollback_expires < env.wall():
            log.warning("the rollback by %s %s: this one takes it over",
                        on_one_line(record.rollback_holder or held.holder),
                        "gave up its claim" if record.rollback_holder is None else "stopped renewing its claim")
            return None
        waited = env.wall() - started
        if waited >= wait_seconds:
            # Since when, and what to run: the person who ran this rollback by hand reads this one line.
            start = rollback_start(record)
            since = (f" (under way since {utc(start.at)} (begun by {on_one_line(start.actor)}: "
                     f"{on_one_line(start.comment)}))"
                     if start is not None else "")
            raise RollbackClaimed(
                f"{held}. It was still under way after {waited:.0f} s of waiting{since}: it notifies people when it "
                "ends, and `rollway status` shows where it stands. If its run died, its claim lapses once it stops "
                "renewing it: then run `rollway abort`, which takes the rollback over and finishes it",
                holder=record.rollback_holder, expires=record.rollback_expires, waited=waited)
        log.info("rollback by %s still under way, its claim renewed until %s; waited %.0f s of %.0f s",
                 on_one_line(record.rollback_holder or ""), wall_utc(record.rollback_expires), waited, wait_seconds)
        sleep_wall(env, min(CLAIM_POLL_SECONDS, wait_seconds - waited))


def done_by_other(record: RolloutRecord, held: RollbackClaimed) -> RollbackResult:
    """What the rollback this one waited for did, from its ledger entry: nothing is done again,
    nobody is paged again."""
    end = record.last_transition("rollback")
    # Names and the reason as the ledger has them (an older release's item, one edited by hand), shown.
    holder = held.holder_shown
    by = on_one_line(end.actor) if end is not None else holder
    weights = (end.to_weights if end is not None and end.to_weights is not None else record.weights)
    restored = (end.task_definition if end is not None and end.task_definition
                else record.previous_task_definition or "not recorded")
    told = (f"notified (SNS message {end.message_id})" if end is not None and end.message_id
            else "its notice's id is not recorded")
    return RollbackResult(
        reason=on_one_line(end.comment) if end is not None and end.comment else "rolled back by another rollback",
        weights=weights, stable_desired=record.stable_desired or 0, canary_desired=0,
        canary_task_definition=restored, notification_id=end.message_id if end is not None else None,
        stable_task_definition=end.stable_task_definition if end is not None else None,
        done_by=holder,
        steps=(f"rolled back by {by} ({holder}) while this rollback waited"
               + (f", finished at {utc(end.at)}" if end is not None else "")
               + f": weights {weights}, canary on {restored}, {told}; not done or notified again",),
    )


def try_record(what: str, write: Callable[[], object], targets: Targets | None = None) -> str | None:
    """Make a ledger write a rollback needs; None when stored, else what was not recorded and why
    (a write the role may not make named as its statement, with the run's ``targets``: ``write_or_why``).

    A write DynamoDB refuses or cannot reach is logged and does not stop the rollback: its
    traffic comes first. The ledger's own refusals (RolloutEnded, NotOwner, ...) propagate.
    """
    why = write_or_why(write, targets)
    if why is None:
        return None
    get_run_logger().error("the ledger could not record %s: %s; rolling back anyway", what, why)
    return f"{what} ({why})"


def unrecorded(env: Environment, result: RollbackResult, failure: str, *, rollout_id: str | None,
               phase: RolloutPhase | None, tell: bool) -> RollbackUnrecorded:
    """The error a rollback fails with once it acted but the ledger could not record ``failure``.

    Logged; told to people too when ``tell`` (the rollback's notice went out before the failure).
    """
    error = RollbackUnrecorded(env.targets.canary_service, result, failure, rollout_id=rollout_id, phase=phase)
    log = get_run_logger()
    log.error("%s", error)
    if tell:
        try:
            metrics.notify_or_repeat(env.notifier, f"Rollback not recorded: {env.targets.canary_service}",
                                     "\n".join(error.facts))
        except Exception as err:  # noqa: BLE001 - the run fails with ``error`` either way
            # A publish refused since the rollback's own notice went out (the role changed in
            # between) is said as sns:Publish's statement (``rollout_said``).
            log.error("the notice that the rollback is not recorded may have gone out or not: %s" if answer_lost(err)
                      else "could not send the notice that the rollback is not recorded: %s",
                      rollout_said(err, env.targets))
    return error


def over_recorded_rule(env: Environment, recorded: ShiftedRule | None) -> Environment:
    """``env`` for a rollback of the rollout that recorded ``recorded`` as its rule (None: none
    recorded): its move goes over that rule (``TrafficRouter.rolling_back``). Found by listener and
    path alone, the rule may be another service's left on that path, whose users the move would
    send to this stable group."""
    return dataclasses.replace(env, router=env.router.rolling_back(recorded))


def act_recorded(env: Environment, act: Callable[[str | None], RollbackResult], *,
                 begin: Callable[[], object] | None = None, finish: Callable[[RollbackResult], object] | None = None,
                 failure: str | None = None, rollout_id: str | None = None,
                 phase: RolloutPhase | None = None, holder: str | None = None,
                 claim_rollout: str | None = None, wait_seconds: float = CLAIM_WAIT_SECONDS,
                 claimed: Callable[[], bool] = lambda: True) -> RollbackResult:
    """Record a rollback's start (``begin``), act (``act(ledger_failure)``), record its end
    (``finish(result)``), without letting the ledger stop the rollback.

    Args:
        failure: what the ledger could not do already (read the rollout), if anything.
        rollout_id: the rollout the ledger shows, if known.
        phase: the phase it shows before the rollback, if known.
        holder: who this rollback is (``claimant``), when ``begin`` takes the rollback's claim:
            while another rollback holds it, this one waits for it to end and returns what it
            did, acting on nothing and paging nobody (or takes over a claim its holder gave up
            or let lapse); while acting, this one renews its own.
        claim_rollout: the rollout whose rollback is claimed, when not ``rollout_id``.
        wait_seconds: how long to wait for another rollback (wall seconds).
        claimed: asked once ``begin`` is recorded: whether it took the claim (False: it found the
            rollout closed and the rollback goes ahead unrecorded, under no claim to keep).

    Raises:
        RollbackUnrecorded: after acting, when the ledger could not record the start or the end.
        RollbackClaimed: another rollback still held the claim after ``wait_seconds``.
    """
    rollout = claim_rollout if claim_rollout is not None else rollout_id
    take = begin
    while take is not None:
        try:
            failure = try_record("the rollback's start", take, env.targets)
            break
        except RollbackClaimed as held:
            if holder is None:
                raise
            ended = wait_for_claim(env, held, holder=holder, rollout=rollout, wait_seconds=wait_seconds)
            if ended is not None:
                get_run_logger().warning("the rollback by %s ended while this one waited: not rolling back or "
                                         "notifying again", held.holder_shown)
                return done_by_other(ended, held)

            def take():
                # A takeover of a claim that lapsed is stamped on the rollout clock, as the rollback's entries are.
                env.ledger.claim_rollback(env.targets.canary_service, holder=holder, now=env.wall(),
                                          lease_seconds=CLAIM_SECONDS, rollout=rollout, at=env.clock.now())
    if holder is not None and begin is not None and failure is None and claimed():
        with ClaimKeeper(env, holder, rollout):
            result = act(failure)
    else:
        result = act(failure)
    if failure is not None:
        raise unrecorded(env, result, failure, rollout_id=rollout_id, phase=phase, tell=False)
    if finish is not None:
        failure = try_record("the rollback's end", lambda: finish(result), env.targets)
        if failure is not None:
            raise unrecorded(env, result, failure, rollout_id=rollout_id, phase=RolloutPhase.ROLLING_BACK, tell=True)
    return result


def _reverts_promotion(env: Environment, record: RolloutRecord) -> bool:
    """Whether a rollback run by hand on ``record``, promoted and closed to `rollway abort`, takes
    the promoted version out of production, and so is recorded on it: the ledger shows no
    finalize (``reversible_by_hand``; a decommission, which scaled the stable service to 0 on the
    same revision, does not stop it), the stable service runs the version the promotion replaced
    (at any count) and the canary service the promoted one. A finalize done outside rollway (the
    stable service on the promoted revision) leaves the ledger as it was, hence the look at the
    services; so does a `canary` flow run started since on the canary service (the traffic moved
    back by hand first), whose hook's rollback is that run's, and says so (``leave_closed``).
    Not read, the rollback acts as on any closed rollout (its own read fails it, and pages)."""
    if not reversible_by_hand(record):
        return False
    t = env.targets
    try:
        stable = ecs.describe_service(env.deployer, t.stable_service)
        canary = ecs.describe_service(env.deployer, t.canary_service)
    except Exception as err:  # noqa: BLE001 - the rollback itself must still act
        get_run_logger().warning("reading %s and %s failed (%s): this rollback is not recorded on rollout %s",
                                 t.stable_service, t.canary_service, err, record.rollout_id)
        return False
    return reverted_by_hand(record, stable, canary)


def _unknown_rollout(env: Environment, newest: RolloutRecord, rollout: str) -> RolloutSuperseded | None:
    """The refusal of a rollback told to act on ``rollout``, which is not the service's newest
    (``newest`` is), when the ledger holds no such rollout of the service at all (a typo, another
    service's id): the ledger's own words said it was "no longer the newest", as if it had been,
    and not that nothing had changed. None when it is an older rollout of the service, or the
    ledger cannot say (those words stand then). A RolloutSuperseded all the same: the hooks leave
    alone a rollout that is not their run's (flows/hooks.py)."""
    service = env.targets.canary_service
    try:
        if any(r.rollout_id == rollout for r in env.ledger.history(service, unreadable={})):
            return None
    except Exception as err:  # noqa: BLE001 - a refusal either way; only its words depend on this read
        get_run_logger().warning("could not read %s's rollouts to tell whether rollout %r was one (%s)",
                                 service, rollout, storage_failure(err, env.targets))
        return None
    return RolloutSuperseded(
        f"no rollout {rollout!r} of {service} is recorded: its newest is {newest.rollout_id} ({newest.image}, "
        f"{newest.phase.value}), which `rollway status` shows. Nothing was changed. Give the id of a rollout of "
        f"{service}, or leave `rollout` empty to roll the service back regardless")


class RollbackRefused(RuntimeError):
    """The rollback did not act: without the ledger, nothing showed a rollout to roll back."""


def _refuse_unknown_service(env: Environment, missing: TargetNotFound, verify_seconds: float) -> None:
    """Refuse a rollback of no recorded rollout whose targets name a service (or cluster) ECS does
    not have, while the canary takes none of the traffic: a misspelt targets block, not a rollout to
    roll back. It paged everyone "Rollback FAILED: <the misspelt service>", saying the traffic could
    not be moved back (it was all on stable) and to run it again once that service "can take the
    traffic". Returns when the canary has traffic, or the load balancer cannot say: that failure is
    paged as before, since users may be on a version nobody watches.

    Raises:
        RollbackRefused: nothing was changed, nobody was paged.
    """
    try:
        live = traffic.weights_once(env.router.reading(verify_seconds), verify_seconds)
    except Exception:  # noqa: BLE001 - the rollback's own failure is paged and raised instead
        return
    if live.canary:
        return
    t = env.targets
    what = (f"no service {missing.name!r} in cluster {t.cluster}" if missing.kind == "ECS service"
            else f"no {missing.kind.removeprefix('ECS ')} {missing.name!r}")
    raise RollbackRefused(
        f"ECS has {what} ({missing}), and the load balancer sends "
        f"none of the traffic to {t.canary_service} ({live}, stable/canary, read back): nothing to roll back. "
        "Nothing was changed, and nobody was paged. Check the service and cluster names in the targets block "
        "(targets_block) and run the rollback again if a rollout needs it")


def _refuse_other_family(env: Environment, previous_task_definition: str, recorded: str | None) -> None:
    """Refuse, before any write, a revision to restore of another family than the canary service
    runs: its form alone was checked, and a revision copied from another service's page was
    restored on the canary after the traffic moved. One read of the service; one that fails is
    left to the rollback, which reads it again and says why it cannot. ``recorded``: the revision
    the open rollout recorded, which the rollback restores when none is given (None: it restores
    the one the stable service runs).

    Raises:
        RollbackRefused: the families differ (nothing was changed).
    """
    t = env.targets
    try:
        runs = ecs.describe_service(env.deployer, t.canary_service).task_definition
    except Exception:  # noqa: BLE001 - the rollback's own read fails the same way, and is paged
        return
    given, own = task_family(previous_task_definition), task_family(runs)
    if given != own:
        raise RollbackRefused(
            f"previous_task_definition {previous_task_definition} is of task definition family {given!r}, and "
            f"{t.canary_service} runs family {own!r} ({runs}): it is another application's. Nothing was changed. "
            f"Give a revision of {own!r} (`aws ecs list-task-definitions --family-prefix {own}` lists them), or "
            "leave previous_task_definition empty to restore "
            + (f"the one the rollout recorded ({recorded})" if recorded else f"the revision {t.stable_service} runs"))


def _refuse_blind(env: Environment, why: str, previous_task_definition: str | None) -> None:
    """Refuse a rollback the ledger cannot inform, unless a rollout is visibly under way.

    Without the record, a canary carrying all the traffic may be a promoted release (production
    since its window closed), and one carrying none has nothing to move back: rolling back blind
    would put the previous version back in production, for example from the hook of a run that
    failed on its first ledger read. A person who passes ``previous_task_definition`` says what
    to roll back to, and is obeyed.

    The weights are read within the rollback's verify timeout (``DEFAULT_VERIFY_SECONDS``: no
    recorded spec says another).

    Raises:
        ReadBackUnanswered: the load balancer did not answer by then.
    """
    if previous_task_definition is not None:
        return
    live = traffic.weights_within(env.router, DEFAULT_VERIFY_SECONDS)
    if 0 < live.canary < 100:
        return
    raise RollbackRefused(
        f"the rollout ledger could not be read ({why}) and the load balancer sends {live.canary}% of the traffic "
        f"to {env.targets.canary_service}: no rollout is visibly under way, and "
        + ("that may be a promoted release, which a rollback would take out of production"
           if live.canary else "there is no traffic to move back")
        + ". Nothing was changed. Fix the ledger and run the rollback again, or pass previous_task_definition "
        "to roll back to that task definition regardless"
    )


def _say_waits_raised(rollout: str | None, *, asked: dict[str, float | None], spec: dict[str, float | None],
                      used: dict[str, float]) -> None:
    """Log each wait asked of the rollback (by name) that it does not use, which one it uses and why:
    never less than the open rollout ``rollout``'s ``spec`` says, nor than the default. A person who
    gave the rollback flow a shorter wait saw it take longer, and nothing in its log said so."""
    for name, given in asked.items():
        if given is None or used[name] == given:
            continue
        why = (f"rollout {rollout}'s spec says {seconds_said(used[name])}" if spec[name] == used[name]
               else f"the default, {seconds_said(used[name])}, is the least a rollback waits")
        get_run_logger().info("%s: waiting %s, not the %s asked: %s (a rollback never waits less than the open "
                              "rollout's spec, nor than the default)", name, seconds_said(used[name]),
                              seconds_said(given), why)


def _longest(*waits: float | None) -> float | None:
    """The longest of the waits given (None: not given); None when none is."""
    return max((wait for wait in waits if wait is not None), default=None)


@names_rollout_denials
def rollback_recorded(env: Environment, reason: str, *, actor: str, previous_task_definition: str | None = None,
                      stable_desired: int | None = None, bindings: Sequence[FlagBinding] | None = None,
                      only_open: bool = False, leave_closed: bool = False,
                      fallback_bindings: Sequence[FlagBinding] | None = None,
                      rollout: str | None = None,
                      claim_wait_seconds: float = CLAIM_WAIT_SECONDS,
                      image: str | None = None, verify_timeout_seconds: float | None = None,
                      healthy_timeout_seconds: float | None = None, scale_timeout_seconds: float | None = None,
                      paged_failing: Sequence[str] | None = None) -> RollbackResult:
    """Roll back, taking what the ledger knows (previous task definition, stable capacity, bound
    flags) where the caller did not say, and record the rollback in the ledger.

    ``only_open``: refuse when the ledger's newest rollout was promoted and its monitoring
    window has closed. The rollout flows' hooks set it: such a run (say, a weekly
    ``advance_phase`` that failed on a read) drove nothing, and its rollback would put the
    previous version back in production. A person running the rollback flow may mean exactly
    that, so it is off by default; such a rollback is recorded on the promoted rollout when it
    takes the promoted version out of production (``_reverts_promotion``), as one inside the
    window is.

    ``leave_closed``: act as asked, but never record the rollback on a closed rollout (a promotion
    whose window closed): the hooks set it, whose run's rollback is that run's, not the
    promotion's (a `canary` flow run keeps no ledger, so its rollback is not refused on the
    ledger's rollout). A person running the rollback flow never sets it.

    ``fallback_bindings``: the flags to disable when the ledger cannot be read (a hook's run's
    own flags); with a readable ledger, the recorded spec's are disabled instead.

    ``rollout``: roll back only while this rollout is the service's newest (`rollway abort`
    passes the one it read): the traffic of a rollout started since belongs to nobody who asked.
    With no rollout of the service recorded, none is the newest: RolloutNotFound, nothing changed.

    ``claim_wait_seconds``: how long to wait for another rollback holding the claim (wall seconds).

    ``image``, ``verify_timeout_seconds``, ``healthy_timeout_seconds``, ``scale_timeout_seconds``: the
    failed run's own spec's (a `canary` flow run's hook: no record holds that run's), or the waits a
    person gave the rollback flow. The image is named on the page of a rollback of no open recorded
    rollout (a recorded rollout's own is named instead). Each wait is the longest of the default, the
    open recorded rollout's spec's and the one given; with neither a spec nor a wait given, the
    defaults, said in the run's log with the parameters that set them.

    ``paged_failing``: the failed steps of the run's own rollback, which this one runs again (a
    hook's): the same steps failing again page nobody (``execute_rollback``).

    Raises:
        RollbackUnrecorded: the rollback acted, but the ledger could not be read or written.
        RollbackRefused: the ledger could not be read and nothing says a rollout is under way,
            or ``only_open`` and the newest rollout is closed (nothing was changed).
        RolloutClosed: another rollback closed the rollout between this one's read and the
            record of its start (nothing was changed, nobody paged).
        RolloutSuperseded, RolloutNotFound: ``rollout`` is not the newest, or no rollout of the
            service is recorded (nothing was changed).
    """
    from rollway.ledger import RolloutClosed, begin_rollback, open_for_rollback
    from rollway.spec import RolloutSpec

    began = env.wall()  # before the ledger's reads and the claim: users wait on them too
    service = env.targets.canary_service
    record, unread = None, None
    try:
        record = env.ledger.get(service) if env.ledger is not None else None
    except STORAGE_ERRORS as err:
        said = storage_failure(err, env.targets)
        unread = f"this rollback: reading the rollout failed ({said})"
        _refuse_blind(env, said, previous_task_definition)
        # A canary carrying part of the traffic is a rollout under way: roll back on what the
        # caller said, since a ledger that cannot be read must not keep the bad version serving.
        get_run_logger().error("the ledger could not be read: %s; rolling back anyway", said)
        if bindings is None:
            bindings = fallback_bindings
    if record is not None:
        try:
            check_rollout(record, rollout)  # before anything is changed
        except RolloutSuperseded as other:
            raise _unknown_rollout(env, record, rollout) or other from None
    elif rollout is not None and env.ledger is not None and unread is None:
        # Named, yet not recorded (a typo, another service's id): no rollout is the newest, so the
        # one named is not, and acting would roll back whatever the service runs for nobody who asked.
        raise RolloutNotFound(
            f"no rollout of {service} is recorded, so rollout {rollout!r} is not its newest. Nothing was changed. "
            "To roll the service back regardless, run the rollback flow without `rollout`")
    recorded = RolloutSpec.for_rollback(record.spec_json) if record is not None else None
    active = record is not None and open_for_rollback(recorded, record)
    reverted = (not (only_open or leave_closed) and record is not None and not active
                and _reverts_promotion(env, record))
    ours = active or reverted
    # Before any write, and not of the revision the ledger recorded (`rollway abort` passes it):
    # that one is the application's own whatever family the canary runs now (a task family
    # renamed since), and refusing it left users on the canary and the abort no way to leave it out.
    if previous_task_definition is not None and (
            record is None or previous_task_definition != record.previous_task_definition):
        _refuse_other_family(env, previous_task_definition, record.previous_task_definition if ours else None)
    if only_open and record is not None and record.phase is RolloutPhase.PROMOTED and not active \
            and previous_task_definition is None:
        raise RollbackRefused(
            f"rollout {record.rollout_id} of {record.image} was promoted and its monitoring window has closed: it is "
            "production now, and a rollback would put the previous version back. Nothing was changed. To roll it "
            "back regardless, run the rollback flow by hand"
        )
    begin = finish = holder = None
    closed_since_read: list[bool] = []  # begin() found the window (or the promotion) closed since the read
    # The rollout's own read-back wait, if longer: a load balancer it was given longer to settle
    # must not fail its rollback on the default 30 s after the traffic moved.
    # A `canary` flow run's hook passes its run's spec's instead (None: the defaults).
    # A person's rollback by hand may give longer ones: a recorded spec cannot be edited, and a
    # rollback of no open rollout has none, yet its refusals said to raise the spec's.
    own_verify = _longest(recorded.verify_timeout_seconds if ours else None, verify_timeout_seconds)
    own_healthy = _longest(recorded.healthy_timeout_seconds if ours else None, healthy_timeout_seconds)
    verify_timeout = max(DEFAULT_VERIFY_SECONDS, own_verify or 0.0)
    healthy_timeout = rollback_healthy_seconds(own_healthy)
    # A recorded rollout's own wait for ECS to start its tasks, too: the default cut short a stable
    # service scaled up from 0 whose image takes longer to start (a `canary` flow run's hook passes its run's).
    scale_timeout = rollback_scale_seconds(
        _longest(recorded.scale_timeout_seconds if ours else None, scale_timeout_seconds))
    _say_waits_raised(record.rollout_id if ours else None,
                      asked={"verify_timeout_seconds": verify_timeout_seconds,
                             "healthy_timeout_seconds": healthy_timeout_seconds,
                             "scale_timeout_seconds": scale_timeout_seconds},
                      spec={"verify_timeout_seconds": recorded.verify_timeout_seconds if ours else None,
                            "healthy_timeout_seconds": recorded.healthy_timeout_seconds if ours else None,
                            "scale_timeout_seconds": recorded.scale_timeout_seconds if ours else None},
                      used={"verify_timeout_seconds": verify_timeout, "healthy_timeout_seconds": healthy_timeout,
                            "scale_timeout_seconds": scale_timeout})
    if not ours and (verify_timeout_seconds, healthy_timeout_seconds, scale_timeout_seconds) == (None, None, None):
        # A rollback by hand of no open rollout has no spec to take its waits from: a person whose
        # stable service needs longer learns which bounds ran, and that they were not a spec's.
        get_run_logger().info(
            "no open rollout's spec to take the rollback's waits from: the defaults, verify_timeout_seconds %g s, "
            "healthy_timeout_seconds %g s, scale_timeout_seconds %g s (the rollback flow's parameters of those names "
            "set longer ones)", verify_timeout, healthy_timeout, scale_timeout)
    if ours:
        previous_task_definition = previous_task_definition or record.previous_task_definition
        stable_desired = stable_desired or record.stable_desired
        if bindings is None:
            # A promotion reverted by hand too: its flags gate the promoted version's features,
            # which the previous version now serving everyone does not have.
            bindings = recorded.flags
        holder = claimant(actor)
        started = rollback_start(record)
        if record.phase is RolloutPhase.ROLLING_BACK and started is not None and started.wall is not None \
                and started.wall <= began:
            # Users have waited since the rollback began (`rollway abort`'s intent, a run that died
            # or failed a step), not since this run did: counted from then, as the incident report is.
            began = started.wall
        if record.phase is RolloutPhase.ROLLING_BACK:
            # Begun already (by `rollway abort`'s intent, or a rollback that died or failed a step):
            # carry it out only while no other rollback does, which would page people too.
            def begin():
                env.ledger.claim_rollback(service, holder=holder, now=env.wall(), lease_seconds=CLAIM_SECONDS,
                                          rollout=record.rollout_id, at=env.clock.now())
        else:
            # Intent before action: if this process dies half-way, the ledger says a rollback
            # is unfinished, and a resumed run or `rollway abort` finishes it.
            # Of the rollout read above: if another one started since, it is not this one to roll back.
            def begin():
                try:
                    begin_rollback(env.ledger, service, actor=actor, reason=reason, now=env.clock.now(),
                                   rollout=record.rollout_id, holder=holder, lease_seconds=CLAIM_SECONDS,
                                   wall=env.wall(), by_hand=reverted)
                except RolloutClosed:
                    if only_open or record.phase is not RolloutPhase.PROMOTED:
                        raise
                    # The window closed since the read (the monitor recorded its end), or a
                    # promotion reverted by hand was finalized since: a rollback
                    # run by hand rolls a promoted release back regardless, as it does one it read
                    # closed, and like that one it is not recorded on the closed rollout.
                    closed = ("rollout %s was finalized" if reverted
                              else "the monitoring window of rollout %s closed")
                    get_run_logger().warning(closed + " a moment ago; rolling back the promoted release regardless "
                                             "(not recorded)", record.rollout_id)
                    closed_since_read.append(True)

        def finish(result: RollbackResult):
            if not closed_since_read:
                record_rollback_end(env, rollout=record.rollout_id, actor=actor, reason=reason, result=result)

    def act(ledger_failure: str | None) -> RollbackResult:
        try:
            result = roll_back(ledger_failure)
        except RollbackIncomplete:  # the traffic is back all the same
            unheard_then(ledger_failure)
            raise
        unheard_then(ledger_failure)
        return result

    def unheard_then(ledger_failure: str | None) -> None:
        # After the traffic moved (and the page went out): a Prefect read before would delay both.
        if ours and ledger_failure is None and not closed_since_read:
            record_unheard_after_rollback(env, record)

    def roll_back(ledger_failure: str | None) -> RollbackResult:
        return execute_rollback(
            over_recorded_rule(env, record.shifted_rule if record is not None else None), reason, actor=actor,
            previous_task_definition=previous_task_definition,
            stable_desired=stable_desired, bindings=bindings or (), ledger_failure=ledger_failure,
            verify_timeout_seconds=verify_timeout, healthy_timeout_seconds=healthy_timeout,
            stable_timeout_seconds=scale_timeout,
            quiet_if_unchanged=record is not None and record.phase is RolloutPhase.ROLLED_BACK,
            # Only an open rollout is the one rolled back. A closed one's id (rolled back long ago, say)
            # on the flags' entries ended its own hold, ended long since, and left the one the flags
            # follow (a killed `canary` flow run's, which the ledger never had): naming none ends
            # every hold on the flags this rollback by hand was given (rollway.flag_binding.holder).
            rollout=record.rollout_id if ours else None,
            # A closed rollout's image may be production on stable (finalized): not what this takes out.
            image=with_pin(record.image, record.pinned_image) if ours else image, ledgered=ours,
            unpinned=not ours, paged_failing=paged_failing, began=began,
        )

    return act_recorded(env, act, begin=begin, finish=finish, failure=unread,
                        rollout_id=record.rollout_id if record else None, phase=record.phase if record else None,
                        holder=holder, claimed=lambda: not closed_since_read, wait_seconds=claim_wait_seconds)


def rollback_overtaken(env: Environment, reason: str, *, actor: str, rollout: str | None,
                       rollback: Callable[..., RollbackResult],
                       verify_timeout_seconds: float = DEFAULT_VERIFY_SECONDS) -> RollbackResult:
    """A run's shift lost a race with a rollback begun by someone else (`rollway abort`, a hook):
    it moved the weights just as that rollback began, maybe after that one put them back. Make
    sure the traffic is off the canary, going through the rollback's claim, so that people are
    paged once and the rollout gets one rollback record.

    While the rollback is under way (rolling_back), this run takes part as any rollback does
    (``rollback_recorded``): it waits for the claim's holder to end, or takes a claim nobody holds
    (a person's intent recorded, their rollback not begun) and carries the rollback out, paging
    once. Once another rollback has ended it, ``rollback`` (the run's own, idempotent) puts back
    what this run's shift moved, without a second rollback page; if it did move traffic off the
    canary, a short follow-up notice says so (``tell_put_back``): that rollback's page said the
    traffic was at 100% on stable, and for a while it was not.

    If the holder is still at it when the wait runs out (CLAIM_WAIT_SECONDS), the ledger is read
    again (``after_long_wait``): a rollback that ended just then gets the quiet restore; one still
    under way keeps its claim, and this run only takes the traffic off the canary (``rollback``'s
    traffic step, stable's capacity and health first), so that a shift that landed after that
    rollback moved the traffic does not stay on the canary until someone runs the rollback again.

    Args:
        rollback: the run's rollback, called with ``notify=False`` (and ``traffic_only=True``
            while another rollback holds the claim).
        verify_timeout_seconds: the spec's; bounds the reads of the weights made here.

    Returns:
        What this run did: the rollback it carried out, or the quiet restore after another's.

    Raises:
        RollbackClaimed: another rollback still held the claim after waiting for it (what this run
            did about the traffic is in its message).
        RolloutSuperseded: another rollout is the newest (it began once the rollback ended, before
            or after the wait): nothing was moved, nobody paged. Or it began during the quiet
            restore or the traffic-only move, which stopped before its next step that changes
            something (``StillNewest``), paging nobody; the message says which steps it did.
        RollbackUnrecorded: this run carried the rollback out and the ledger could not record it.
    """
    from rollway.ledger import RolloutClosed

    log = get_run_logger()
    record = None
    try:
        record = env.ledger.get(env.targets.canary_service) if env.ledger is not None else None
    except STORAGE_ERRORS as err:
        log.error("the ledger could not be read (%s): putting the traffic back without paging again",
                  storage_failure(err, env.targets))
    if record is not None and rollout is not None and record.rollout_id != rollout:
        # The rollback ended and a new rollout began since: the traffic on the load balancer is
        # that rollout's now, not this run's to move.
        raise RolloutSuperseded(
            f"rollout {rollout} was rolled back by someone else while this run shifted, and rollout "
            f"{record.rollout_id} has begun since: its traffic is not this run's to move, so nothing was moved")
    if record is not None and record.phase is RolloutPhase.ROLLING_BACK and record.rollout_id == rollout:
        try:
            done = rollback_recorded(env, reason, actor=actor, rollout=rollout)
        except RolloutClosed as moved:  # it ended meanwhile
            log.info("the rollback ended meanwhile: %s", moved)
        except RollbackClaimed as held:
            # returns once it ended
            after_long_wait(env, reason, held, rollout=rollout, rollback=rollback, seconds=verify_timeout_seconds)
        else:
            if done.done_by is None:
                return done  # this run carried it out: its notice is the one page
    log.warning("the rollout was rolled back by someone else while this run shifted: making sure the traffic is "
                "off the canary, without paging again")
    before = None
    try:
        before = traffic.weights_within(env.router, verify_timeout_seconds)
    except Exception as err:  # noqa: BLE001 - the rollback below reads it back anyway; only the notice needs it
        log.warning("could not read the load balancer before putting the traffic back (%s)", err)
    # The next rollout may begin while this restore waits for stable's capacity and health:
    # from then on the traffic is that rollout's, so the restore re-reads before each step.
    with StillNewest.around(env, rollout):
        result = rollback(reason, notify=False)
    if before is not None and before.canary > 0:
        result = tell_put_back(env, reason, before, result, rollout=rollout)
    return result


def after_long_wait(env: Environment, reason: str, held: RollbackClaimed, *, rollout: str | None,
                    rollback: Callable[..., RollbackResult], seconds: float = DEFAULT_VERIFY_SECONDS) -> None:
    """``rollback_overtaken``'s wait for the claim's holder ran out: read the rollout again.

    Returns (the caller puts the traffic back, quietly) when that rollback has ended by now.
    Otherwise it still holds the claim: the canary and the flags, and the page, stay its to do;
    but if the load balancer sends traffic to the canary (this run's shift, landed after that
    rollback moved the traffic back, or before it got there), this run moves it back to stable
    first (``rollback``'s traffic step: idempotent, stable's capacity and health checked first),
    paging nobody, and says so loudly. ``seconds`` (the spec's ``verify_timeout_seconds``)
    bounds its read of the weights.

    Raises:
        ReadBackUnanswered: the load balancer did not answer that read within ``seconds``.
        RollbackClaimed: always, when that rollback is still under way, saying what this run did.
        RolloutSuperseded: another rollout is the newest now; its traffic is not this run's to move.
            Or it became the newest during the traffic-only move (while stable scaled or got
            healthy), which stopped before its next step (``StillNewest``): the message says what
            was done (stable scaled, say); nothing of that rollout's was moved, nobody paged.
    """
    log = get_run_logger()
    service = env.targets.canary_service
    record = None
    try:
        record = env.ledger.get(service)
    except STORAGE_ERRORS as err:
        log.error("could not read the rollout again after waiting for %s (%s)", held.holder_shown,
                  storage_failure(err, env.targets))
    if record is not None and record.rollout_id != rollout:
        raise RolloutSuperseded(
            f"{held}. Since then rollout {record.rollout_id} became the newest of {service}: its traffic is not this "
            "run's to move, and nothing was moved")
    if record is not None and record.phase is not RolloutPhase.ROLLING_BACK:
        log.warning("the rollback by %s ended just after this run stopped waiting for it", held.holder_shown)
        return
    live = traffic.weights_within(env.router, seconds)
    if live.canary == 0:
        error = RollbackClaimed(f"{held}. The load balancer sends nothing to {service} ({live}): this run moved "
                                "nothing", holder=held.holder, expires=held.expires, waited=held.waited)
        log.warning("%s", error)
        raise error
    log.error("the rollback by %s is still under way after %.0f s, and the load balancer sends %s%% of the traffic "
              "to %s (%s, stable/canary): taking it off the canary now, paging nobody; that rollback keeps its claim "
              "and does the rest", held.holder_shown, CLAIM_WAIT_SECONDS, live.canary, service, live)
    try:
        # That rollback may end and the next rollout begin while this move waits for stable's
        # capacity and health: the traffic is that rollout's then, so re-read before each step.
        with StillNewest.around(env, rollout, doing=f"was taking the traffic off the canary, with rollout {rollout}'s "
                                                    f"rollback by {held.holder_shown} still under way"):
            moved = rollback(reason, notify=False, traffic_only=True)
    except RolloutSuperseded:
        # Not "could NOT move it back ... run `rollway abort`": there is nothing of this run's left
        # to move. The step that stopped logged it, naming what was done.
        raise
    except Exception as err:
        stable = env.targets.stable_service
        back = getattr(err, "weights", None)  # a TrafficMoveFailed after the traffic was read back on stable
        if back is not None:
            did = (f"this run put it back on {stable} ({back}, read back), paging nobody, but then failed ({err}); "
                   "that rollback still retires the canary and tells people")
        else:
            # Not "run `rollway abort` once that rollback has ended": it finds the rollout rolled back
            # by then, and moves nothing.
            then = (f"Once that rollback has ended, if `rollway status` shows the load balancer still sending traffic "
                    f"to {service}, run the `rollback` flow (the rollback deployment): `rollway abort` acts only on a "
                    "rollout not yet rolled back")
            unread = getattr(err, "cause", None)
            if isinstance(unread, (MoveNotReadBack, TakenNotReadBack)):
                # The load balancer took the move (or lost its answer) and did not answer its read-back,
                # or refused it for now (a throttle, which "did not answer" was untrue of): "could NOT
                # move it back" said it had not, beside its step "sent the move".
                read = (unread.read_went("its read-back") if not isinstance(unread, TakenNotReadBack)
                        else f"took it, but its read-back {unread.went}" if unread.lost is None
                        else f"may have taken it (its answer was lost), and its read-back {unread.went}")
                did = (f"this run sent it back to {stable}, which may or may not hold it: the load balancer {read} "
                       f"({err}). It paged nobody. {then}")
            else:
                did = f"this run could NOT move it back, and paged nobody ({err}). {then}"
        error = RollbackClaimed(
            f"{held}. The load balancer sent {live.canary}% of the traffic to {service} ({live}): {did}",
            holder=held.holder, expires=held.expires, waited=held.waited)
        log.error("%s", error)
        raise error from err
    error = RollbackClaimed(
        f"{held}. The load balancer sent {live.canary}% of the traffic to {service} ({live}): this run put it back on "
        f"{env.targets.stable_service} ({moved.weights}, read back), paging nobody; that rollback still retires the "
        "canary and tells people", holder=held.holder, expires=held.expires, waited=held.waited)
    log.error("%s", error)
    raise error


def tell_put_back(env: Environment, reason: str, before: Weights, result: RollbackResult, *,
                  rollout: str | None) -> RollbackResult:
    """One short notice after ``rollback_overtaken``'s quiet restore took traffic off the canary:
    the rollback that ended the rollout paged "100% on stable", and this run's shift, landing
    after it, made that briefly untrue. Not the rollback page again (that rollback's stands), and
    a notice that cannot be sent is logged only: the traffic is back either way.

    Returns:
        ``result``, its steps saying whether the notice went out.
    """
    log = get_run_logger()
    t = env.targets
    ended = None
    try:
        record = env.ledger.get(t.canary_service) if env.ledger is not None else None
        ended = record.last_transition("rollback") if record is not None and record.rollout_id == rollout else None
    except STORAGE_ERRORS as err:
        log.warning("could not read who ended the rollback (%s); the notice does without",
                    storage_failure(err, env.targets))
    by = (f"The rollback by {on_one_line(ended.actor)} (ended at {utc(ended.at)}"
          + (f", notice {ended.message_id})" if ended.message_id else ")")
          if ended is not None else "Another rollback of this rollout")
    message = (
        f"rollway put traffic back on {t.stable_service} (cluster {t.cluster}) after a rollback"
        + (f" of rollout {rollout}" if rollout else "") + ".\n\n"
        f"{by} said the traffic was at 100% on {t.stable_service}. A run of this rollout had begun shifting "
        f"to the canary just before, and its shift reached the load balancer after that rollback: for a short while "
        f"{before.canary}% of the traffic went to {t.canary_service} again (the load balancer showed {before}, "
        "stable/canary).\n\n"
        f"This run put it back: {result.weights} read back from the load balancer; {t.canary_service} is at "
        f"{result.canary_desired} tasks on {result.canary_task_definition}. ({reason}.)\n\n"
        "This is not a second rollback: nothing else to do. Include this short window when looking at the canary's "
        "metrics."
    )
    log.warning("this run's shift had put %s%% of the traffic back on %s after the rollback ended; put back (%s), "
                "telling people once", before.canary, t.canary_service, result.weights)
    try:
        message_id = metrics.notify_or_repeat(env.notifier, f"Rollback follow-up: {t.canary_service}", message)
        step = f"followed up: {before.canary}% had reached the canary again after the rollback (message {message_id})"
    except Exception as caught:  # noqa: BLE001 - the traffic is back; the run stops on RolloutEnded either way
        # A publish the role may not make is said as sns:Publish's statement (``rollout_said``) in
        # the step people read and the log: AWS's bare refusal said nothing of what to add.
        err = rollout_said(caught, t)
        lost = answer_lost(caught)
        log.error("the follow-up notice that the traffic was put back may have gone out or not: %s" if lost
                  else "could not send the follow-up notice that the traffic was put back: %s", err)
        step = (f"the follow-up notice that {before.canary}% had reached the canary again "
                f"{'may have gone out or not' if lost else 'could NOT be sent'} ({err})")
    return result.model_copy(update={"steps": (*result.steps, step)})


def finish_rollback(env: Environment, record, *, actor: str) -> RolloutResult:
    """Complete a rollback the ledger says was started but not finished (its run died, or failed
    a step), unless another rollback is at it.

    Said (logged, and as the result's reason) once it is known who finished it: this run; another
    rollback holding the claim, which this one waited for; or one that ended just after this run
    read the ledger, leaving nothing to do. It used to say "finishing the rollback ... that was
    interrupted" before the claim was asked for, whoever then finished it.

    Raises:
        RollbackClaimed: another rollback still held the claim after the wait (its message says so).
    """
    from rollway.ledger import RolloutClosed

    log = get_run_logger()
    started = rollback_start(record)
    # As the ledger has them: a name or reason with an escape sequence in it acted on the terminal reading the log.
    begun = (f"{on_one_line(started.actor)}: {on_one_line(started.comment)}" if started is not None
             else "reason not recorded")
    log.info("the ledger shows the rollback of rollout %s begun (%s) and not finished: finishing it, unless "
             "another rollback is at it", record.rollout_id, begun)
    # The page's "Why", sent only when this run carries the rollback out.
    reason = f"finishing the rollback of rollout {record.rollout_id} that was interrupted ({begun})"
    try:
        result = rollback_recorded(env, reason, actor=actor)
    except RolloutClosed as closed:
        said = _finished_meanwhile(env, record, closed)
        log.info("%s", said)
        now = _reread(env, record)
        return RolloutResult(outcome="rolled_back", reason=said, image=record.image,
                             final_weights=now.weights if now is not None else record.weights)
    if result.done_by is not None:
        reason = (f"the rollback of rollout {record.rollout_id} ({begun}) was finished by {result.done_by} while this "
                  "run waited for it: nothing was done or notified again")
        log.info("%s", reason)
    else:
        log.warning("finished the rollback of rollout %s, which was begun and not finished (%s)",
                    record.rollout_id, begun)
    return RolloutResult(outcome="rolled_back", reason=reason, image=record.image,
                         final_weights=result.weights, rollback=result)


def _reread(env: Environment, record: RolloutRecord) -> RolloutRecord | None:
    """``record``'s rollout read again, or None when it cannot be read or is no longer the newest."""
    try:
        now = env.ledger.get(env.targets.canary_service)
    except STORAGE_ERRORS:
        return None
    return now if now is not None and now.rollout_id == record.rollout_id else None


def _finished_meanwhile(env: Environment, record: RolloutRecord, closed: Exception) -> str:
    """What ``finish_rollback`` says of a rollback another run ended between its read and its claim."""
    now = _reread(env, record)
    end = now.last_transition("rollback") if now is not None else None
    if end is None:
        return (f"the rollback of rollout {record.rollout_id} was finished by another run just after this run read "
                f"the ledger ({closed}): nothing left to do")
    return (f"the rollback of rollout {record.rollout_id} was finished by {on_one_line(end.actor)} at {utc(end.at)}, "
            f"just after this run read the ledger: nothing left to do, nothing moved or notified again")


@flow(name="rollback", log_prints=True)
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def rollback(
    reason: Reason,
    actor: Actor = "operator",
    previous_task_definition: TaskDefinitionRef | None = None,
    stable_desired: TaskCount | None = None,
    bindings: list[FlagBinding] | None = None,
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    clock: ClockSettings = ClockSettings(),
    only_open_rollout: bool = False,
    fallback_bindings: list[FlagBinding] | None = None,
    rollout: RolloutId | None = None,
    claim_wait_seconds: WaitSeconds = CLAIM_WAIT_SECONDS,
    verify_timeout_seconds: WaitSeconds | None = None,
    healthy_timeout_seconds: WaitSeconds | None = None,
    scale_timeout_seconds: WaitSeconds | None = None,
) -> RollbackResult:
    """Roll the service back to its stable version (idempotent; safe to run by hand at any time).

    Each line of Args is that parameter's description in the Prefect UI's run form, written for a person
    running it by hand; ``rollback_recorded`` gives the details.

    Args:
        reason: why you roll back: it opens the page on-call gets and goes in the ledger and the flags' audit trail.
        actor: who rolls back (recorded in the ledger and the flags' audit trail).
        previous_task_definition: the canary's revision to restore (ARN or family:revision); empty: its pre-rollout one.
        stable_desired: tasks the stable service runs to carry all the traffic; empty: as recorded, or the larger service's.
        bindings: the feature flags to disable; empty: those the rollout rolled back binds (as recorded).
        targets_block: a saved RollwayTargets block; cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
        clock: the rollout clock; leave it for a real rollout (speed 1), the simulator speeds it up.
        only_open_rollout: for the state hooks, leave it off: on, a promotion whose window closed is not rolled back.
        fallback_bindings: flags to disable only if the ledger cannot be read (the state hooks pass their run's).
        rollout: act only while this rollout id (`rollway status` shows it) is the service's newest; empty: any.
        claim_wait_seconds: how long to wait for a rollback of the rollout already under way (wall seconds).
        verify_timeout_seconds: how long a weight read-back may lag (seconds); never below the rollout spec's, nor 30 s.
        healthy_timeout_seconds: how long stable's targets may take to pass health checks (seconds); never below the rollout spec's, nor 300 s.
        scale_timeout_seconds: how long ECS may take to start stable's tasks it scales up (seconds); never below the rollout spec's, nor 600 s.
    """
    # Refusals before anything moved (a rollout id not the newest, or not recorded) say everything on
    # their line and "Nothing was changed": a traceback under them in the run's log read as a crash.
    # So does the ledger's refusal of a rollout another rollback closed between this run's read and
    # its claim: raised before anything moves (``rollback_recorded``), naming who closed it. And the
    # wait given up on another rollback's claim: its line names the holder, since when, and what to run.
    without_traceback(RolloutSuperseded, RolloutNotFound, RollbackRefused, RolloutClosed, RollbackClaimed)
    env = load_environment(targets_block, aws_credentials_block, clock)
    return rollback_recorded(
        env, reason, actor=actor, previous_task_definition=previous_task_definition,
        stable_desired=stable_desired, bindings=bindings, only_open=only_open_rollout,
        fallback_bindings=fallback_bindings, rollout=rollout, claim_wait_seconds=claim_wait_seconds,
        verify_timeout_seconds=verify_timeout_seconds, healthy_timeout_seconds=healthy_timeout_seconds,
        scale_timeout_seconds=scale_timeout_seconds,
    )


@flow(name="rollback", log_prints=True)
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def hook_rollback(
    reason: Reason,
    actor: Actor,
    bindings: list[FlagBinding] | None,
    fallback_bindings: list[FlagBinding] | None,
    targets_block: str | None,
    aws_credentials_block: str | None,
    clock: ClockSettings,
    only_open_rollout: bool,
    rollout: RolloutId | None,
    claim_wait_seconds: WaitSeconds,
    image: str | None = None,
    verify_timeout_seconds: float | None = None,
    healthy_timeout_seconds: float | None = None,
    paged_failing: list[str] | None = None,
    scale_timeout_seconds: float | None = None,
) -> RollbackResult:
    """The state hooks' rollback (flows/hooks.py): a run of the `rollback` flow, as the UI shows it,
    whose rollback is the failed run's own, so never recorded on a closed rollout (``leave_closed``
    of ``rollback_recorded``). No deployment serves it: a person's rollback cannot switch that on.
    ``image`` and the three waits: a `canary` flow run's spec's (its hook validated it; None: the defaults).
    ``paged_failing``: the failed steps the run's own rollback paged people with, if it ended so."""
    env = load_environment(targets_block, aws_credentials_block, clock)
    return rollback_recorded(env, reason, actor=actor, bindings=bindings, only_open=only_open_rollout,
                             leave_closed=True, fallback_bindings=fallback_bindings, rollout=rollout,
                             claim_wait_seconds=claim_wait_seconds, image=image,
                             verify_timeout_seconds=verify_timeout_seconds,
                             healthy_timeout_seconds=healthy_timeout_seconds,
                             scale_timeout_seconds=scale_timeout_seconds, paged_failing=paged_failing)
