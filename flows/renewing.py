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

import logging
import threading
from typing import Callable

from rollway.aws.ledger import ledger_failure
from rollway.ledger import LedgerError
from rollway.targets import Targets

RETRIES_PER_PERIOD = 10
"""A renewal refused by storage trouble is tried again after this fraction of the renewal period:
2 s for a rollback's 60 s claim, about twenty tries before it could lapse. At the next renewal (a
third of the hold later) two failures in a row let the hold lapse while its holder still acted;
at each look (every second) an outage through an hour's scale-up cost thousands of writes and
warnings."""


class Renewals:
    """Calls ``renew`` (one write, raising a LedgerError once the hold is no longer this holder's)
    from a daemon thread, every third of ``lease`` seconds on ``clock``, from ``start`` until ``stop``.

    A LedgerError goes to ``lost`` and ends the renewals. Anything else is storage trouble: the
    next try comes a tenth of the period after the failure, or when the hold lapses if that is
    sooner. ``trouble`` hears of the first failure in a row, and of one a period while they go on
    (a run's log is not flooded by an outage through a long step), with the seconds until the
    next try, the seconds until the hold lapses unless a renewal succeeds first (negative: lapsed
    already) and the failures in a row so far; ``recovered`` hears of the renewal that ends them,
    with their number and how long the hold had lapsed by then (0: it had not).

    The hold is taken to run ``lease`` seconds from when the renewals start (its holder took or
    renewed it just before) and from when each successful renewal was sent.

    Args:
        look: How often (real seconds) the thread reads ``clock``, for a clock a test or a sped-up
            run may move faster than real time; None: ``clock`` is real time, and the thread sleeps
            until the next renewal is due.
    """

    def __init__(self, renew: Callable[[], object], *, lease: float, clock: Callable[[], float],
                 look: float | None, lost: Callable[[LedgerError], None],
                 trouble: Callable[[Exception, float, float, int], None], name: str,
                 recovered: Callable[[int, float], None] | None = None) -> None:
        self.lease = lease
        self.every = lease / 3
        self.retry = self.every / RETRIES_PER_PERIOD
        self._renew, self._clock, self._look = renew, clock, look
        self._lost, self._trouble, self._recovered = lost, trouble, recovered
        self._failures = 0  # renewals failed in a row
        self._said: float | None = None  # when ``trouble`` last heard of them
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
            self._failures += 1
            failed, left = self._clock(), self.left()
            # Never past the lapse: a try then may still keep the hold before another takes it.
            wait = min(self.retry, left) if left > 0 else self.retry
            if self._said is None or failed - self._said >= self.every:
                self._said = failed
                self._trouble(err, wait, left, self._failures)
            self._due = failed + wait
            return True
        lapsed = max(0.0, sent - (self._held + self.lease))
        # The write stamped the hold at or after ``sent``: it runs a lease from then at least.
        self._held = sent
        self._due = self._clock() + self.every
        if self._failures and self._recovered is not None:
            self._recovered(self._failures, lapsed)
        self._failures, self._said = 0, None
        return True

    def _pause(self) -> float:
        return self._look if self._look is not None else max(0.0, self._due - self._clock())

    def _run(self) -> None:
        while not self._stop.wait(self._pause()):
            if not self.tick():
                return


def trouble_said(hold: str, err: Exception, targets: Targets | None, retry: float, left: float, failures: int,
                 then: str, during: str = "") -> str:
    """A renewal's warning (``Renewals``' ``trouble``): ``hold`` ("the rollout's lease") could not be
    renewed ``during`` a step, ``failures`` tries in a row, for ``err``; when it is tried again, and
    when it lapses. A refused permission names the statement granting it (``targets``: the run's
    names), as the ledger's other writes do: waiting does not cure it."""
    said = ledger_failure(err, targets)
    head = f"could not renew {hold}" if failures == 1 else f"still could not renew {hold} after {failures} tries"
    head += f" {during}" if during else ""
    return f"{head} (trying again in {retry:.0f} s; {lapse_said('the ' + hold.split()[-1], left, then)}): {said}"


def recovered_said(hold: str, failures: int, lapsed: float, taker: str) -> tuple[int, str]:
    """The log level and line of the renewal that ended ``failures`` failed ones (``Renewals``'
    ``recovered``), ``lapsed`` seconds after ``hold`` had lapsed (0: it had not); ``taker`` ("rollback")
    names who could have taken it over meanwhile, and did not: the renewal would have been refused."""
    if lapsed > 0:
        return logging.WARNING, (f"renewed {hold} again after {failures} failed tries, {lapsed:.0f} s after it had "
                                 f"lapsed: no other {taker} took it over meanwhile")
    return logging.INFO, f"renewed {hold} again after {failures} failed tries"


def lapse_said(hold: str, left: float, then: str) -> str:
    """When ``hold`` ("the lease", "the claim") lapses if its renewals keep failing, ``left``
    seconds from now (``Renewals.left``), and what ``then`` may happen, for a renewal's warning."""
    if left > 0:
        return f"{hold} lapses in {left:.0f} s unless a renewal succeeds first; then {then}"
    return f"{hold} lapsed {-left:.0f} s ago, and {then} now"
