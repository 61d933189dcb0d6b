"""Thin tasks over the TrafficRouter port: one port call each, retries on the decorator."""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NONE

from rollway.aws.errors import REFUSED_CODES, WeightMismatch
from rollway.model import Weights
from rollway.ports import TrafficRouter
from tasks import retry

# A read the role may not make (or whose credentials AWS does not know) is refused again a second
# later: asked three times, it only delayed the failure and logged it three times.
_read_again = retry.unless(denied=REFUSED_CODES)


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
    """``verify_weights`` outside a task of its own (for a task that reads back its own write)."""
    deadline = time.monotonic() + timeout_seconds
    delay = 0.05
    while True:
        actual = router.get_weights()
        if actual == expected:
            return actual
        if time.monotonic() >= deadline:
            raise WeightMismatch(expected=expected, actual=actual)
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


@task(name="healthy-targets", retries=2, retry_delay_seconds=1, cache_policy=NONE, retry_condition_fn=_read_again)
def healthy_targets(router: TrafficRouter, version: str) -> int:
    return router.healthy_targets(version)


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
