"""A call given up on once its time is up, whatever it is stuck in.

A boto3 call bounds each connect and each socket read (60 s by default), then retries: a
service that accepts the connection and never answers held the caller for minutes, silent.
Its socket is botocore's, out of reach, and so is the DNS lookup before any connection (the C
library's getaddrinfo takes no timeout). The call runs in a thread of its own, left behind
when its time is up: a daemon, which ends when the call does.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")


class Unanswered(TimeoutError):
    """The call was still not done when its time was up."""


def within(seconds: float, work: Callable[[], T], *, name: str = "rollway-bounded-call",
           waiting: Callable[[float], None] | None = None, every: float = 10.0) -> T:
    """``work()``'s result or error, given up on after ``seconds``.

    ``waiting(elapsed)`` is called every ``every`` seconds while ``work`` is not done, so that a
    long wait says so while it lasts (not only once it ends).

    Raises:
        Unanswered: ``work`` was not done within ``seconds``.
        Whatever ``work`` raised, as it raised it.
    """
    done: dict[str, object] = {}

    def run() -> None:
        try:
            done["answer"] = work()
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread as it is
            done["error"] = err

    worker = threading.Thread(target=run, name=name, daemon=True)
    began = time.monotonic()
    worker.start()
    while True:
        left = seconds - (time.monotonic() - began)
        if left <= 0:
            break
        worker.join(min(left, every) if waiting is not None else left)
        if not worker.is_alive():
            break
        if waiting is not None and time.monotonic() - began < seconds:
            waiting(time.monotonic() - began)
    if worker.is_alive():
        raise Unanswered(f"not done within {seconds:g} s")
    if "error" in done:
        raise done["error"]  # type: ignore[misc]
    return done["answer"]  # type: ignore[return-value]
