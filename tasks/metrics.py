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
