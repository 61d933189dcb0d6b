"""Thin tasks over the Ledger port's reads."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from rollway.ledger import RolloutRecord
from rollway.ports import Ledger


# A read: safe to try again (botocore's own retries cover throttling; these cover a dropped connection).
@task(name="read-rollout-history", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def rollout_history(ledger: Ledger, service: str) -> list[RolloutRecord]:
    return ledger.history(service)
