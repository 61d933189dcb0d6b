"""A read's bound (``rollway.deadline.BoundClock``) that passes only as a test says.

On real time a test holding a call past its bound waited the whole bound out for each give-up,
and a loaded machine's embedded AWS answering another call later than the bound had that call
given up on, in place of the held one. On this clock time passes only by ``advance``: a held
call moves it past the bound as it is made, and is given up on at once.
"""

from __future__ import annotations

import threading

from rollway.deadline import BoundClock


class SteppedClock(BoundClock):
    """Starts at 0; moves only by ``advance``. ``waits``: how many waits for a call have begun,
    each with its end set (a test moving the clock step by step moves it once one has)."""

    def __init__(self) -> None:
        self._at = 0.0
        self._moved = threading.Condition()
        self.waits = 0

    def now(self) -> float:
        with self._moved:
            return self._at

    def advance(self, seconds: float) -> None:
        with self._moved:
            self._at += seconds
            self._moved.notify_all()

    def wait_until(self, worker: threading.Thread, until: float) -> None:
        with self._moved:
            self.waits += 1
            while worker.is_alive() and self._at < until:
                # A worker's end is not notified: looked at again this often.
                self._moved.wait(0.005)
