"""The thread that keeps a run's lease while a shift waits (flows.lease_keeper.LeaseKeeper)."""

from __future__ import annotations

import logging
import time

import pytest

from flows import lease_keeper
from flows.lease_keeper import LeaseKeeper
from rollway.ledger import LedgerError


class Wall:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def wall(self) -> float:
        return self.now


def eventually(done, seconds: float = 5.0) -> None:
    """Wait (real time, bounded) for the keeper's thread to have acted: under load it may lag."""
    give_up = time.monotonic() + seconds
    while not done() and time.monotonic() < give_up:
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def quick_looks(monkeypatch):
    monkeypatch.setattr(lease_keeper, "LOOK_SECONDS", 0.01)


def test_a_renewal_refused_by_an_outage_is_retried_a_tenth_of_the_period_later_not_at_each_look(caplog):
    # Once a second through an outage during an hour's scale-up: thousands of writes and warnings.
    env, tries = Wall(), []

    def renew():
        tries.append(env.now)
        raise ConnectionError("DynamoDB did not answer")

    keeper = LeaseKeeper(env, renew, lease_seconds=600.0, log=logging.getLogger("test-lease"))
    with caplog.at_level(logging.WARNING), keeper:
        env.now += 200.0  # a third of the lease: due
        eventually(lambda: tries)
        time.sleep(0.3)  # some 30 more looks
        assert len(tries) == 1, tries
        assert "trying again in 20 s; the lease lapses in 400 s unless a renewal succeeds first; then another " \
               "run may take the rollout over" in caplog.text, caplog.text
        env.now += 20.0
        eventually(lambda: len(tries) == 2)
    assert len(tries) == 2, tries


def test_renewals_come_every_third_of_the_lease_and_stop_once_the_lease_is_lost(caplog):
    env, tries = Wall(), []

    def renew():
        tries.append(env.now)
        if len(tries) == 2:
            raise LedgerError("run-2 holds the rollout")

    keeper = LeaseKeeper(env, renew, lease_seconds=600.0, log=logging.getLogger("test-lease"))
    with caplog.at_level(logging.WARNING), keeper:
        time.sleep(0.1)
        assert tries == []  # not due before a third of the lease
        env.now += 200.0
        eventually(lambda: tries)
        assert len(tries) == 1
        env.now += 200.0
        eventually(lambda: len(tries) == 2)
        env.now += 200.0
        time.sleep(0.1)  # the lease is lost: no third renewal
    assert len(tries) == 2, tries
    assert "no longer holds the rollout's lease" in caplog.text


def test_a_renewal_that_fails_slowly_is_retried_when_its_warning_says_counted_from_the_failure(caplog):
    # The spacing was counted from before the write: a write DynamoDB took 15 s to refuse was tried
    # again 5 s after a warning saying 20, and one slower than the spacing at the very next look.
    env, tries = Wall(), []

    def renew():
        tries.append(env.now)
        env.now += 15.0  # the write hangs for 15 s, then fails
        raise ConnectionError("DynamoDB did not answer")

    keeper = LeaseKeeper(env, renew, lease_seconds=600.0, log=logging.getLogger("test-lease"))
    with caplog.at_level(logging.WARNING), keeper:
        env.now += 200.0
        eventually(lambda: "trying again in 20 s" in caplog.text)
        env.now += 19.0  # 19 s after the failure
        time.sleep(0.3)  # some 30 more looks
        assert len(tries) == 1, tries
        env.now += 1.0
        eventually(lambda: len(tries) == 2)
    assert tries == [1_800_000_200.0, 1_800_000_235.0], tries
