"""Thin tasks over the TrafficRouter port: one port call each, retries on the decorator."""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NONE

from rollway.aws.errors import REFUSED_CODES, WeightMismatch
from rollway.deadline import ReadBackUnanswered, read_back_within
from rollway.model import Weights
from rollway.ports import TrafficRouter
from tasks import retry

# A read the role may not make (or whose credentials AWS does not know) is refused again a second
# later: asked three times, it only delayed the failure and logged it three times.
_read_again = retry.unless(denied=REFUSED_CODES)
# A read past its wait's bound (ReadBackUnanswered) is not asked again: the wait's time is up.
_read_again_in_time = retry.unless(ReadBackUnanswered, denied=REFUSED_CODES)


@task(name="get-weights", retries=2, retry_delay_seconds=1, cache_policy=NONE, retry_condition_fn=_read_again)
def get_weights(router: TrafficRouter) -> Weights:
    return router.get_weights()


# No retries: a ModifyRule that failed is safe to retry only after reading back, which the
# caller does; a blind retry could race a rollback.
@task(name="set-weights", cache_policy=NONE)
def set_weights(router: TrafficRouter, weights: Weights) -> None:
    router.set_weights(weights)


@task(name="verify-weights", cache_policy=NONE)
def verify_weights(router: TrafficRouter, expected: Weights, timeout_seconds: float = 30.0) -> Weights:
    """Read the weights back until they match, or raise WeightMismatch after the timeout.

    The timeout is wall time: a load balancer's read-back lag does not speed up with the
    rollout clock.
    """
    return read_back(router, expected, timeout_seconds)


def read_back(router: TrafficRouter, expected: Weights, timeout_seconds: float) -> Weights:
    """``verify_weights`` outside a task of its own (for a task that reads back its own write).

    Each read is made on the router's bounded reads (``TrafficRouter.reading``) and given up on at
    the timeout: on the run's clients (six attempts of 10 s, kept for the writes), a load balancer
    that stopped answering held a read-back bounded at 20 s for about a minute, silent.

    Raises:
        WeightMismatch: the weights read back at the timeout are others.
        ReadBackUnanswered: a read did not answer by the timeout (``READ_BACK_MARGIN_SECONDS``).
    """
    reader = router.reading(timeout_seconds)
    deadline = time.monotonic() + timeout_seconds
    delay = 0.05
    while True:
        actual = read_back_within(deadline - time.monotonic(), reader.get_weights, what="the load balancer's weights",
                                  seconds=timeout_seconds, service="Elastic Load Balancing",
                                  bound="verify_timeout_seconds")
        if actual == expected:
            return actual
        left = deadline - time.monotonic()
        if left <= 0:
            raise WeightMismatch(expected=expected, actual=actual)
        time.sleep(min(delay, left))
        delay = min(delay * 2, 2.0)


@task(name="healthy-targets", retries=2, retry_delay_seconds=1, cache_policy=NONE,
      retry_condition_fn=_read_again_in_time)
def healthy_targets(router: TrafficRouter, version: str, wait: tuple[float, float] | None = None) -> int:
    """The ``version``'s healthy targets; ``wait``: (seconds left, the wait's bound) of a
    health wait (``healthy_timeout_seconds``), by which the read is given up on.

    Raises:
        ReadBackUnanswered: the load balancer did not answer within the seconds left.
    """
    if wait is None:
        return router.healthy_targets(version)
    left, seconds = wait
    return read_back_within(left, lambda: router.healthy_targets(version),
                            what=f"the {version} target group's healthy targets", seconds=seconds,
                            service="Elastic Load Balancing", bound="healthy_timeout_seconds")


def healthy_targets_or_unknown(router: TrafficRouter, version: str) -> int | None:
    """``healthy_targets``, or None (logged) when they cannot be read after its retries.

    For reads that only tell whose some load-balancer 5xx are (``guardrails.check_totals``):
    None is "unknown", on which a stage never passes and nothing is rolled back. Failing the
    run instead would have its hook roll back a canary, or a promoted release, over a read
    made only to attribute a few stray 5xx.
    """
    from prefect import get_run_logger

    try:
        return healthy_targets(router, version)
    except Exception as err:  # noqa: BLE001 - any failure to read leaves them unknown, said in the log
        get_run_logger().error("could not read the %s's healthy targets (%s): whose the load balancer's 5xx "
                               "are stays unknown this tick", version, err)
        return None
