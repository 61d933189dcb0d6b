"""A call given up on once its time is up, whatever it is stuck in.

A boto3 call bounds each connect and each socket read (60 s by default), then retries: a
service that accepts the connection and never answers held the caller for minutes, silent.
Its socket is botocore's, out of reach, and so is the DNS lookup before any connection (the C
library's getaddrinfo takes no timeout). The call runs in a thread of its own, left behind
when its time is up: a daemon, which ends when the call does.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")

READ_SECONDS = 30.0
"""How long a read a person waits on may take, by default: a describe answers in well under a
second, and botocore's backoff for throttling stays within it."""
MAX_READ_SECONDS = 600.0
"""The longest such bound taken: past ten minutes a read is not waited on, it is lost."""


def read_bound(seconds: float) -> float:
    """``seconds``, checked as a read's bound (positive, at most ``MAX_READ_SECONDS``).

    Raises:
        ValueError: saying which values are taken; before any call is made with it.
    """
    if not (0 < seconds <= MAX_READ_SECONDS):  # also NaN
        raise ValueError(f"a read's bound must be more than 0 and at most {MAX_READ_SECONDS:g} s, not {seconds!r}")
    return seconds


class Unanswered(TimeoutError):
    """The call was still not done when its time was up; the message says what did not answer."""


def within(seconds: float, work: Callable[[], T], *, name: str = "rollway-bounded-call",
           waiting: Callable[[float], None] | None = None, every: float = 10.0) -> T:
    """``work()``'s result or error, given up on after ``seconds``.

    ``waiting(elapsed)`` is called every ``every`` seconds while ``work`` is not done, so that a
    long wait says so while it lasts (not only once it ends). ``work`` runs in a copy of the
    caller's context: a Prefect task it calls is one of the caller's run, and logs there.

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

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(run,), name=name, daemon=True)
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


def answered(what: str, seconds: float, work: Callable[[], T], say: Callable[[str], None]) -> T:
    """``work()``, a read a person waits on from ``what`` (a service: "CloudWatch"), given up on
    after ``seconds``; ``say`` gets a line every 10 s while it waits.

    Raises:
        Unanswered: "<what> did not answer within N s".
        Whatever ``work`` raised, as it raised it.
    """
    try:
        return within(seconds, work, name=f"rollway-read-{what}",
                      waiting=lambda elapsed: say(f"still waiting for {what} after {elapsed:.0f} s of {seconds:g} s"))
    except Unanswered:
        raise Unanswered(f"{what} did not answer within {seconds:g} s") from None
