"""Thin tasks over the TrafficRouter port: one port call each, retries on the decorator."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NoConnection
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from rollway.aws.errors import (REFUSED_CODES, AdapterError, TargetNotFound, WeightMismatch, aws_message,
                                error_code, failed_in_passing, server_side)
from rollway.deadline import ReadBackUnanswered, read_back_within
from rollway.model import Weights
from rollway.ports import TrafficRouter
from tasks import retry
from tasks.inline import run_as

T = TypeVar("T")

# No retries: a ModifyRule that failed is safe to retry only after reading back, which the
# caller does; a blind retry could race a rollback.
@task(name="set-weights", cache_policy=NONE)
def set_weights(router: TrafficRouter, weights: Weights) -> Weights | None:
    """``router.set_weights``: the weights the load balancer held just before the write."""
    return router.set_weights(weights)


@task(name="verify-weights", cache_policy=NONE)
def verify_weights(router: TrafficRouter, expected: Weights, timeout_seconds: float = 30.0,
                   left: float | None = None) -> Weights:
    """Read the weights back until they match, or raise WeightMismatch after the timeout.

    The timeout is wall time: a load balancer's read-back lag does not speed up with the
    rollout clock. ``left``: what is left of it, for a wait that has spent some (all by default).
    """
    return read_back(router, expected, timeout_seconds, left=left)


@task(name="read-weights-again", cache_policy=NONE)
def weights_settled(router: TrafficRouter, expected: Weights, timeout_seconds: float = 30.0,
                    left: float | None = None) -> Weights:
    """The weights read back as ``verify_weights`` reads them, returned whether they match
    ``expected`` or not (at the timeout, the last read): a drift check's second look, for which
    other weights are a finding the run acts on. Read through ``verify_weights``, every drift found
    also showed a red failed task with a WeightMismatch traceback at ERROR level in the UI."""
    try:
        return read_back(router, expected, timeout_seconds, left=left)
    except WeightMismatch as mismatch:
        return mismatch.actual


def read_back(router: TrafficRouter, expected: Weights, timeout_seconds: float, *,
              left: float | None = None, bound: str = "verify_timeout_seconds") -> Weights:
    """``verify_weights`` outside a task of its own (for a task that reads back its own write).

    Each read is made on the router's bounded reads (``TrafficRouter.reading``) and given up on at
    the timeout: on the run's clients (six attempts of 10 s, kept for the writes), a load balancer
    that stopped answering held a read-back bounded at 20 s for about a minute, silent. ``left``:
    what is left of the timeout (all of it by default), for a wait that has spent some already; its
    errors still name the whole timeout. At least one read is made, given up on after the margin.
    ``bound``: what sets the timeout, as its errors name it (a spec's ``verify_timeout_seconds``
    unless the caller's own, shorter bound).

    Raises:
        WeightMismatch: the weights read back at the timeout are others.
        ReadBackUnanswered: a read did not answer by the timeout (``READ_BACK_MARGIN_SECONDS``).
        Whatever the last read raised, when it failed three times or at the timeout (``within_bound``).
    """
    reader = router.reading(timeout_seconds)
    deadline = time.monotonic() + (timeout_seconds if left is None else max(left, 0.0))
    delay = 0.05
    while True:
        # Each read is one of the wait's bounded reads: a throttled or failed DescribeRules is
        # read again within the bound, not taken for the shift's failure (the stage failed, and
        # its hook rolled back a shift that had landed).
        actual = within_bound(reader.get_weights, what=_WEIGHTS, seconds=timeout_seconds,
                              bound=bound, left=deadline - time.monotonic())
        if actual == expected:
            return actual
        left = deadline - time.monotonic()
        if left <= 0:
            raise WeightMismatch(expected=expected, actual=actual, seconds=timeout_seconds)
        time.sleep(min(delay, left))
        delay = min(delay * 2, 2.0)


LOOK_AGAIN_SECONDS = 1.0
"""How long after a failed bounded read (``within_bound``) it is made again, twice at most."""
_LOOKS = 3
_ELB = "Elastic Load Balancing"
_WEIGHTS = "the load balancer's weights"


# The load balancer's answers that a second ask gets again: no such listener, rule or target
# group, a rule or parameter it refuses, and what any AWS API refuses every ask of the same keys
# with (``REFUSED_CODES``: a permission refused, keys it does not know, a signature it cannot
# check). Throttling, an internal error and a dropped connection are worth another try; asking
# three times what is refused for good only delays the undos after this one (Prefect runs them in
# turn, in one hook each), and a move's read-back refused so after a send the load balancer took
# had the move sent again, logged as a setting that "failed", to be refused the same way.
_FINAL_ELB = REFUSED_CODES | frozenset({
    "ValidationError", "InvalidConfigurationRequest", "ListenerNotFound", "RuleNotFound", "TargetGroupNotFound",
    "LoadBalancerNotFound", "OperationNotPermitted", "IncompatibleProtocols", "TooManyTargetGroups",
    "TargetGroupAssociationLimit",
})


def final_for_elb(err: BaseException) -> bool:
    """Whether the load balancer would answer another ask as it answered ``err`` (the weight undo's
    ``final``, when a move with sends to spare stops sending it again, and whether a read-back it
    ended is refused for good, ``unknown_after``): an adapter's own refusal (a rule it will not
    touch, a name not found) or a code above."""
    if isinstance(err, (AdapterError, ValueError)):
        return True
    return isinstance(err, ClientError) and error_code(err) in _FINAL_ELB


def answered_with(err: ClientError, seconds: float, bound: str) -> ReadBackUnanswered:
    """A read-back of the weights (bounded at ``seconds``, set by ``bound``) that ended on a read the
    load balancer answered with ``err``, no refusal for good, at its bound or after the last of its
    reads (``within_bound``): what it holds is not known, as when it did not answer, and the error
    says what the answer was: a refusal for now (a throttle, ``failed_in_passing``), AWS's own side
    failing (an internal error, a 5xx: ``server_side``), or an error of no kind rollway knows,
    which says no more than that ("refused for now" was untrue of it)."""
    return ReadBackUnanswered(_WEIGHTS, seconds, _ELB, bound, aws_message(err), server_side=server_side(err),
                              for_now=failed_in_passing(err))


def not_answered(err: BaseException, seconds: float, bound: str) -> ReadBackUnanswered:
    """A read-back of the weights (bounded at ``seconds``, set by ``bound``) that ended on a read that
    got no answer at all (``err``: its connection dropped or refused, or the client's own timeout
    before the bound), after the last of its reads or too near its bound for another
    (``within_bound``): what the load balancer holds is not known, as when it did not answer by the
    bound, and the error says how the read failed. "Refused" would be untrue: nothing answered."""
    return ReadBackUnanswered(_WEIGHTS, seconds, _ELB, bound, no_answer=aws_message(err))


def unknown_after(err: BaseException, seconds: float, bound: str) -> ReadBackUnanswered | None:
    """A read-back of the weights (bounded at ``seconds``, set by ``bound``) that ended on ``err``, the
    last of its reads, as the ReadBackUnanswered it says as much as: no answer at all (a connection
    dropped or refused, ``not_answered``), or an answer that is no refusal for good (a throttle, AWS's
    own side failing, a code of no known kind: ``answered_with``). Each leaves what the load balancer
    holds not known. None for any other error: a read refused for good (``final_for_elb``: a
    permission, keys it refuses, a request it holds invalid) is raised as it is, its refusal what to
    fix; said "refused for now", a ValidationError had a rollback send its taken move again, to be
    refused the same way."""
    if isinstance(err, (HTTPClientError, NoConnection)):
        return not_answered(err, seconds, bound)
    if isinstance(err, ClientError) and not final_for_elb(err):
        return answered_with(err, seconds, bound)
    return None


def weights_once(reader: TrafficRouter, seconds: float, *, left: float | None = None) -> Weights:
    """One read of the load balancer's weights, not made again: ``reader`` is a router for the
    reads of ``seconds`` (``TrafficRouter.reading``), the spec's ``verify_timeout_seconds``, and
    the read is given up on after ``left`` of them (all by default) and ``READ_BACK_MARGIN_SECONDS``.

    Raises:
        ReadBackUnanswered: the load balancer did not answer by then.
    """
    return read_back_within(seconds if left is None else left, reader.get_weights, what=_WEIGHTS, seconds=seconds,
                            service=_ELB, bound="verify_timeout_seconds")


def within_bound(read: Callable[[], T], *, what: str, seconds: float, bound: str, left: float | None = None,
                 final: tuple[type[BaseException], ...] = ()) -> T:
    """``read()``, one read of the load balancer bounded at ``seconds`` (the parameter ``bound``),
    ``left`` of them left (all by default), ended by then and ``READ_BACK_MARGIN_SECONDS``.

    A read that failed (not refused for good, not unanswered, not one of ``final``: errors that
    come back the same every time) is made again 1 s later, twice at most, while its bound leaves
    the time: a task's own retries came a second after a read refused at once at the bound,
    twice, and the wait that made it ended seconds past it. A name the load balancer does not know
    (TargetNotFound: a rule deleted, none on the path) is one of them always: it is no throttle,
    and it held the failure of a run, its hook's rollback after it, and the page of a rollback that
    could not move anyone, two seconds more to read what the first read said.

    Raises:
        ReadBackUnanswered: the load balancer did not answer by then; it names ``what`` and ``bound``.
        Whatever the last read raised, as it raised it.
    """
    until = time.monotonic() + (seconds if left is None else left)
    look = 1
    while True:
        try:
            return read_back_within(until - time.monotonic(), read, what=what, seconds=seconds, service=_ELB,
                                    bound=bound)
        except Exception as err:
            if (look == _LOOKS or not retry.again(err, ReadBackUnanswered, TargetNotFound, *final,
                                                  denied=_FINAL_ELB)
                    or until - time.monotonic() < LOOK_AGAIN_SECONDS):
                raise
            get_run_logger().warning("%s could not be read (%s); reading them again in %g s (%d of %d)", what, err,
                                     LOOK_AGAIN_SECONDS, look + 1, _LOOKS)
            time.sleep(LOOK_AGAIN_SECONDS)
            look += 1


_LOOKUPS = "the load balancer, its listener, rule and target groups"
# Plural, as the others: the check reads the listener's rules as well as the rule (one gone is looked
# for again on its path), and its log line goes on "reading them again".
_RULE = "the listener and the rule the rollback moves the traffic over"


@task(name="look-up-load-balancer", cache_policy=NONE)
def resolve_within(router: TrafficRouter, seconds: float) -> None:
    """The router's lookups (load balancer, listener, target groups, rule: ``AlbRouter.resolve``),
    made on its bounded reads (``TrafficRouter.reading``) and bounded by the spec's
    ``verify_timeout_seconds`` (``seconds``), and kept on ``router`` for the writes that follow.
    On the run's clients (six attempts of 10 s, kept for the writes) a load balancer that stopped
    answering held a run's start about a minute, silent. A router that looks nothing up (no
    ``resolve``) is left as it is.

    Raises:
        TargetNotFound, AdapterError: a name the load balancer does not know, or a rule it cannot
            shift; at its first answer, not asked again.
        ReadBackUnanswered: the load balancer did not answer within ``seconds``.
    """
    resolve = getattr(router.reading(seconds), "resolve", None)
    if resolve is not None:
        within_bound(resolve, what=_LOOKUPS, seconds=seconds, bound="verify_timeout_seconds", final=(AdapterError,))


@task(name="check-rollback-rule", cache_policy=NONE)
def check_move_within(router: TrafficRouter, seconds: float) -> None:
    """``router.check_move`` (a rollback's rule found and checked, reads alone) on its bounded reads
    (``TrafficRouter.reading``), bounded by ``seconds`` (the rollback's ``verify_timeout_seconds``), as
    ``resolve_within`` makes its lookups.

    Raises:
        TargetNotFound, AdapterError: what the rollback's move would refuse; at its first answer.
        ReadBackUnanswered: the load balancer did not answer within ``seconds``.
    """
    within_bound(router.reading(seconds).check_move, what=_RULE, seconds=seconds, bound="verify_timeout_seconds",
                 final=(AdapterError,))


@task(name="get-weights", cache_policy=NONE)
def weights_within(router: TrafficRouter, seconds: float) -> Weights:
    """``get_weights`` bounded by the spec's ``verify_timeout_seconds`` (``seconds``), on the
    router's bounded reads (``TrafficRouter.reading``): on the run's clients (six attempts of
    10 s, kept for the writes) a load balancer that stopped answering held a check made before
    a stage about a minute, silent.

    Raises:
        ReadBackUnanswered: the load balancer did not answer within ``seconds``.
    """
    return within_bound(router.reading(seconds).get_weights, what=_WEIGHTS, seconds=seconds,
                        bound="verify_timeout_seconds")


@task(name="healthy-targets", cache_policy=NONE)
def healthy_targets(router: TrafficRouter, version: str, wait: tuple[float, float],
                    bound: str = "healthy_timeout_seconds") -> int:
    """The ``version``'s healthy targets; ``wait``: (seconds left, the wait's bound) of a
    wait bounded by the parameter ``bound``, by which the read is given up on (``within_bound``).
    ``router``: one for the reads of that bound (``TrafficRouter.reading``).

    Raises:
        ReadBackUnanswered: the load balancer did not answer within the seconds left.
    """
    left, seconds = wait
    return within_bound(lambda: router.healthy_targets(version), what=f"the {version} target group's healthy targets",
                        seconds=seconds, bound=bound, left=left)


def healthy_targets_or_unknown(router: TrafficRouter, version: str, seconds: float, *,
                               inline: bool = False) -> int | None:
    """``healthy_targets`` within the spec's ``verify_timeout_seconds`` (``seconds``: a single look,
    not a wait for health checks), or None (logged) when they cannot be read by then.

    For reads that only tell whose some load-balancer 5xx are (``guardrails.check_totals``):
    None is "unknown", on which a stage never passes and nothing is rolled back. Failing the
    run instead would have its hook roll back a canary, or a promoted release, over a read
    made only to attribute a few stray 5xx.

    ``inline``: read without a task run, as a paused run must (the Prefect server runs no task of it).
    """
    look = run_as(healthy_targets, inline)
    try:
        return look(router.reading(seconds), version, wait=(seconds, seconds), bound="verify_timeout_seconds")
    except Exception as err:  # noqa: BLE001 - any failure to read leaves them unknown, said in the log
        get_run_logger().error("could not read the %s's healthy targets (%s): whose the load balancer's 5xx "
                               "are stays unknown this tick", version, err)
        return None
