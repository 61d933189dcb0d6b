"""A thread renewing one time-bound hold in the ledger while its holder acts.

A run's lease on its rollout while a shift waits (``flows.lease_keeper``) and a rollback's claim
while it acts (``flows.rollback.ClaimKeeper``) are kept the same way: a write every third of the
hold, storage trouble tried again a tenth of that later (never later than the hold would lapse),
and a write the ledger refuses (the hold is another's now) ending the renewals. What each says
is its own.

Prefect concurrency slots (``flows.slot``) are renewed otherwise: over the Prefect API, backing
off after failures, and taking a lease the API lost again instead of giving up.
"""

from __future__ import annotations

import threading
from typing import Callable

from rollway.ledger import LedgerError

RETRIES_PER_PERIOD = 10
"""A renewal refused by storage trouble is tried again after this fraction of the renewal period:
2 s for a rollback's 60 s claim, about twenty tries before it could lapse. At the next renewal (a
third of the hold later) two failures in a row let the hold lapse while its holder still acted;
at each look (every second) an outage through an hour's scale-up cost thousands of writes and
warnings."""


class Renewals:
    """Calls ``renew`` (one write, raising a LedgerError once the hold is no longer this holder's)
    from a daemon thread, every third of ``lease`` seconds on ``clock``, from ``start`` until ``stop``.

    A LedgerError goes to ``lost`` and ends the renewals. Anything else is storage trouble: it goes
    to ``trouble`` with the seconds until the next try and the seconds until the hold lapses
    unless a renewal succeeds first (negative: lapsed already). The next try comes a tenth of
    the period after the failure, or when the hold lapses if that is sooner.

    The hold is taken to run ``lease`` seconds from when the renewals start (its holder took or
    renewed it just before) and from when each successful renewal was sent.

    Args:
        look: How often (real seconds) the thread reads ``clock``, for a clock a test or a sped-up
            run may move faster than real time; None: ``clock`` is real time, and the thread sleeps
            until the next renewal is due.
    """

    def __init__(self, renew: Callable[[], object], *, lease: float, clock: Callable[[], float],
                 look: float | None, lost: Callable[[LedgerError], None],
                 trouble: Callable[[Exception, float, float], None], name: str) -> None:
        self.lease = lease
        self.every = lease / 3
        self.retry = self.every / RETRIES_PER_PERIOD
        self._renew, self._clock, self._look = renew, clock, look
        self._lost, self._trouble = lost, trouble
        self._held = self._clock()  # when the hold was last written, as far as the renewals know
        self._due = self._held + self.every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._held = self._clock()
        self._due = self._held + self.every
        self._thread.start()

    def halt(self) -> None:
        """End the renewals without waiting: from the renewing thread itself too."""
        self._stop.set()

    def stop(self) -> None:
        """End the renewals. A renewal under way finishes first: none may land after the holder's
        own next write."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def left(self) -> float:
        """Seconds until the hold lapses unless a renewal succeeds first (negative: lapsed already)."""
        return self._held + self.lease - self._clock()

    def tick(self) -> bool:
        """One look: renew if due. False once the hold is lost (the renewals are over)."""
        sent = self._clock()
        if sent < self._due:
            return True
        try:
            self._renew()
        except LedgerError as lost:
            self._lost(lost)
            return False
        except Exception as err:  # noqa: BLE001 - storage trouble: tried again shortly
            left = self.left()
            # Never past the lapse: a try then may still keep the hold before another takes it.
            wait = min(self.retry, left) if left > 0 else self.retry
            self._trouble(err, wait, left)
            self._due = self._clock() + wait
            return True
        # The write stamped the hold at or after ``sent``: it runs a lease from then at least.
        self._held = sent
        self._due = self._clock() + self.every
        return True

    def _pause(self) -> float:
        return self._look if self._look is not None else max(0.0, self._due - self._clock())

    def _run(self) -> None:
        while not self._stop.wait(self._pause()):
            if not self.tick():
                return


def lapse_said(hold: str, left: float, then: str) -> str:
    """When ``hold`` ("the lease", "the claim") lapses if its renewals keep failing, ``left``
    seconds from now (``Renewals.left``), and what ``then`` may happen, for a renewal's warning."""
    if left > 0:
        return f"{hold} lapses in {left:.0f} s unless a renewal succeeds first; then {then}"
    return f"{hold} lapsed {-left:.0f} s ago, and {then} now"
