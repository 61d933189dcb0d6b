"""The thread that renews a hold on a real-time clock (flows.renewing.Renewals), as a rollback's claim is.

The wall-clock looks of a run's lease are tested through LeaseKeeper (tests/unit/test_lease_keeper.py).
"""

from __future__ import annotations

import threading
import time

from flows.renewing import Renewals
from rollway.ledger import LedgerError, RollbackClaimed


def eventually(done, seconds: float = 5.0) -> None:
    """Wait (real time, bounded) for the thread to have acted: under load it may lag."""
    give_up = time.monotonic() + seconds
    while not done() and time.monotonic() < give_up:
        time.sleep(0.01)


def renewals(renew, *, every: float = 0.2, retry: float = 0.2) -> tuple[Renewals, list, list]:
    lost, trouble = [], []
    return (Renewals(renew, every=every, retry=retry, clock=time.monotonic, look=None, lost=lost.append,
                     trouble=lambda err, after: trouble.append((str(err), after)), name="test-renewals"),
            lost, trouble)


def test_renewals_come_a_period_apart_and_storage_trouble_is_tried_again_after_the_retry_spacing() -> None:
    started, tries = time.monotonic(), []

    def renew():
        tries.append(time.monotonic() - started)
        if len(tries) == 2:
            raise ConnectionError("DynamoDB did not answer")

    keeper, lost, trouble = renewals(renew, every=0.2, retry=0.4)
    keeper.start()
    eventually(lambda: len(tries) == 3)
    keeper.stop()
    assert lost == [] and trouble == [("DynamoDB did not answer", 0.4)]
    assert len(tries) == 3, tries
    # A period to the first, a period to the second (which fails), the retry spacing to the third.
    assert tries[0] >= 0.2 and tries[1] - tries[0] >= 0.2 and tries[2] - tries[1] >= 0.4, tries


def test_a_hold_taken_by_another_ends_the_renewals() -> None:
    tries = []

    def renew():
        tries.append(time.monotonic())
        raise RollbackClaimed("carol holds the rollback's claim", holder="carol", expires=0.0)

    keeper, lost, trouble = renewals(renew, every=0.05)
    keeper.start()
    eventually(lambda: lost)
    time.sleep(0.3)  # some six more periods
    keeper.stop()
    assert len(tries) == 1 and trouble == []
    assert [type(err) for err in lost] == [RollbackClaimed] and isinstance(lost[0], LedgerError)


def test_no_renewal_lands_after_stop_returns_and_halt_ends_them_without_waiting() -> None:
    under_way, landed = threading.Event(), []

    def renew():
        under_way.set()
        time.sleep(0.2)  # a slow write, under way when the holder stops the renewals
        landed.append(time.monotonic())

    keeper, _lost, _trouble = renewals(renew, every=0.05)
    keeper.start()
    assert under_way.wait(5)
    keeper.stop()
    stopped = time.monotonic()
    assert len(landed) == 1 and landed[0] <= stopped

    halted, _lost, _trouble = renewals(lambda: landed.append(time.monotonic()), every=0.2)
    halted.start()
    halted.halt()  # as a rollback that found its claim lost does, from its own thread
    time.sleep(0.4)  # two periods
    assert len(landed) == 1
    halted.stop()
