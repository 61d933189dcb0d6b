"""Thin tasks over the Ledger port's reads."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from rollway.ledger import LedgerError, RolloutRecord
from rollway.ports import Ledger
from tasks import retry


# A read: safe to try again. An item rollway cannot read (MalformedRollout, a LedgerError) reads
# the same every time: the retries only delayed the refusal and logged it three times.
@task(name="read-rollout-history", retries=2, retry_delay_seconds=1, cache_policy=NONE,
      retry_condition_fn=retry.unless(LedgerError, denied=retry.FINAL_DYNAMODB))
def rollout_history(ledger: Ledger, service: str) -> tuple[list[RolloutRecord], dict[str, str]]:
    """Every readable rollout of ``service``, newest first, and the ids of those whose items
    cannot be read, with why (a report of one is not refused for another's item)."""
    unreadable: dict[str, str] = {}
    return ledger.history(service, unreadable=unreadable), unreadable
