"""Thin tasks over the MetricSource and Notifier ports."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from rollway.model import Observation
from rollway.ports import MetricSource, Notifier


# No retries: a failed query comes back as an Observation with its error, and the next
# analysis tick is the retry.
@task(name="observe-metrics", cache_policy=NONE)
def observe(metrics: MetricSource, start: float, end: float) -> Observation:
    return metrics.observe(start, end)


@task(name="notify", retries=3, retry_delay_seconds=2, cache_policy=NONE)
def notify(notifier: Notifier, subject: str, message: str) -> str:
    return notifier.notify(subject, message)


def alert(notifier: Notifier, subject: str, message: str) -> str | None:
    """Send an alert, which acts on nothing: if SNS still refuses after ``notify``'s retries, log
    it and go on. A rollout (or a monitoring window) must not fail, and its hooks roll back,
    because a message about slow responses could not be sent.

    Returns:
        The message id, or None when it was not sent.
    """
    from prefect import get_run_logger

    try:
        return notify(notifier, subject, message)
    except Exception as err:  # noqa: BLE001 - any failure to send is the same to the caller
        get_run_logger().error("could not send the alert %r (%s): %s", subject, message, err)
        return None
