"""A thread renewing one time-bound hold in the ledger while its holder acts.

A run's lease on its rollout while a shift waits (``flows.lease_keeper``) and a rollback's claim
while it acts (``flows.rollback.ClaimKeeper``) are kept the same way: a write every so often,
storage trouble tried again later, and a write the ledger refuses (the hold is another's now)
ending the renewals. What each says, and how soon it tries again, is its own.

Prefect concurrency slots (``flows.slot``) are renewed otherwise: over the Prefect API, backing
off after failures, and taking a lease the API lost again instead of giving up.
"""

from __future__ import annotations

import threading
from typing import Callable

from rollway.ledger import LedgerError


class Renewals:
    """Calls ``renew`` (one write, raising a LedgerError once the hold is no longer this holder's)
    from a daemon thread, ``every`` seconds on ``clock``, from ``start`` until ``stop``.

    A LedgerError goes to ``lost`` and ends the renewals. Anything else is storage trouble: it goes
    to ``trouble`` with the seconds until the next try, which comes ``retry`` seconds after the
    failure.

    Args:
        look: How often (real seconds) the thread reads ``clock``, for a clock a test or a sped-up
            run may move faster than real time; None: ``clock`` is real time, and the thread sleeps
            until the next renewal is due.
    """

    def __init__(self, renew: Callable[[], object], *, every: float, retry: float, clock: Callable[[], float],
                 look: float | None, lost: Callable[[LedgerError], None],
                 trouble: Callable[[Exception, float], None], name: str) -> None:
        self.every, self.retry = every, retry
        self._renew, self._clock, self._look = renew, clock, look
        self._lost, self._trouble = lost, trouble
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
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

    def _pause(self, due: float) -> float:
        return self._look if self._look is not None else max(0.0, due - self._clock())

    def _run(self) -> None:
        due = self._clock() + self.every
        while not self._stop.wait(self._pause(due)):
            if self._clock() < due:
                continue
            try:
                self._renew()
            except LedgerError as lost:
                self._lost(lost)
                return
            except Exception as err:  # noqa: BLE001 - storage trouble: tried again shortly
                self._trouble(err, self.retry)
                due = self._clock() + self.retry
                continue
            due = self._clock() + self.every
