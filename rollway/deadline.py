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

from rollway.bounds import seconds_said, whole_seconds
from rollway.errors_pickle import PicklableError

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


class Unanswered(Exception):
    """The call was still not done when its time was up; the message says what did not answer.

    Not a TimeoutError: Prefect's engines take any TimeoutError out of a task or flow for their
    own ``timeout_seconds``, and the run showed "TimedOut: ... failed due to timeout" on a task that
    set none, with its exception not persisted for a hook or the UI to read back. Catch it by name.
    """


WAITING_SAID_EVERY_SECONDS = 10.0
"""How often a wait a person is shown says it still waits (``within``'s ``waiting``, a read of
``answered``): often enough that a command or a run's log does not look stuck, rarely enough that
a slow answer is not a wall of lines."""


class BoundClock:
    """What ``within`` measures a bound on, and how it waits for a call until then: real time
    (``REAL_TIME``), unless a caller gives its own. A test gives one that passes only as it says,
    so that a call it holds past its bound is given up on at once: on real time, each give-up it
    ran cost the whole bound in wall time."""

    def now(self) -> float:
        """The time on this clock, in seconds (a time said with it: how long into a read)."""
        return time.monotonic()

    def wait_until(self, worker: threading.Thread, until: float) -> None:
        """Until ``worker`` has ended, or this clock reads ``until``: an end, not a length, so that
        a clock moved since the caller read it is not waited on for longer than meant."""
        worker.join(max(until - self.now(), 0.0))


REAL_TIME = BoundClock()
"""The clock every bound is measured on unless a caller gives another."""


def within(seconds: float, work: Callable[[], T], *, name: str = "rollway-bounded-call",
           waiting: Callable[[float], None] | None = None, every: float | None = None,
           clock: BoundClock = REAL_TIME) -> T:
    """``work()``'s result or error, given up on after ``seconds`` on ``clock``.

    ``waiting(elapsed)`` is called every ``every`` seconds (``WAITING_SAID_EVERY_SECONDS`` unless
    given) while ``work`` is not done, so that a long wait says so while it lasts (not only once
    it ends). ``work`` runs in a copy of the caller's context: a Prefect task it calls is one of
    the caller's run, and logs there.

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
    every = WAITING_SAID_EVERY_SECONDS if every is None else every
    began = clock.now()
    worker.start()
    while True:
        at = clock.now()
        left = seconds - (at - began)
        if left <= 0:
            break
        clock.wait_until(worker, at + (min(left, every) if waiting is not None else left))
        if not worker.is_alive():
            break
        if waiting is not None and clock.now() - began < seconds:
            waiting(clock.now() - began)
    if worker.is_alive():
        raise Unanswered(f"not done within {seconds_said(seconds)}")
    if "error" in done:
        raise done["error"]  # type: ignore[misc]
    return done["answer"]  # type: ignore[return-value]


def answered(what: str, seconds: float, work: Callable[[], T], say: Callable[[str], None], *,
             every: float | None = None, clock: BoundClock = REAL_TIME) -> T:
    """``work()``, a read a person waits on from ``what`` (a service: "CloudWatch"), given up on
    after ``seconds`` on ``clock``; ``say`` gets a line every ``every`` s (``WAITING_SAID_EVERY_SECONDS``,
    10 s, unless given) while it waits.

    Raises:
        Unanswered: "<what> did not answer within N s".
        Whatever ``work`` raised, as it raised it.
    """
    try:
        return within(seconds, work, name=f"rollway-read-{what}", every=every, clock=clock,
                      waiting=lambda elapsed: say(f"still waiting for {what} after {whole_seconds(elapsed)} s of "
                                                  f"{seconds_said(seconds)}"))
    except Unanswered:
        raise Unanswered(f"{what} did not answer within {seconds_said(seconds)}") from None


class Hushable:
    """A ``say`` for the work of a bounded call (``within``, ``answered``), silent once ``hush``ed:
    a call given up on goes on in its thread, and a line it said after (a read asked again while
    throttled) reached the log after its caller had said it was given up on, as if still waited on."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._lock = threading.Lock()
        self._hushed = False

    def __call__(self, line: str) -> None:
        # Said under the lock: a line begun before ``hush`` is said before it returns, none after.
        with self._lock:
            if not self._hushed:
                self._say(line)

    def hush(self) -> None:
        """No line said from now on."""
        with self._lock:
            self._hushed = True


READ_BACK_MARGIN_SECONDS = 1.0
"""How far past its bound a wait that reads AWS back (a weight read-back, a health or scale wait)
may end: each of its reads is given up on at the time left to it plus this, so that the last read,
made at the bound, still gets the second a describe takes to answer."""


class ReadBackUnanswered(PicklableError, Unanswered):
    """A wait that reads AWS back ended at its bound on a read that did not answer, on a read
    refused for now (``answered``), or on a read that got no answer at all (``no_answer``: its
    connection dropped or refused); the message names what was not read back, the bound (only for
    a read not answered by it: the others need not have reached it) and who did not answer or refused.

    Attributes:
        what: what was not read back ("the load balancer's weights").
        seconds: the wait's bound.
        bound: the parameter that sets it ("verify_timeout_seconds"), or None when not known.
        service: who did not answer ("Elastic Load Balancing").
        answered: what ``service`` answered the last read instead, when it answered an error short of
            a refusal for good (a throttle, its own failure, a code of no known kind: ``for_now``): it
            did not say what it holds either; None when it did not answer.
        no_answer: how the last read failed with no answer from ``service`` (botocore's words: a
            connection dropped or refused, a client timeout before the bound), when it did; None
            when it was not answered by the bound, or was refused.
        server_side: ``answered`` is ``service`` failing on its own side (an internal error, a 5xx),
            not a refusal for now: it answered, with its own failure.
        for_now: ``answered`` is a refusal for now (a throttle) or ``server_side``; False: an error
            of no kind known (neither those nor a refusal for good), said as an error, no more.
    """

    answered: str | None = None  # a class default: one pickled before the field existed did not answer
    no_answer: str | None = None  # as ``answered``: one pickled before it existed ran out its bound
    server_side = False  # as ``answered``: one pickled before it existed was refused for now
    for_now = True  # as ``server_side``

    def __init__(self, what: str, seconds: float, service: str, bound: str | None = None,
                 answered: str | None = None, no_answer: str | None = None, server_side: bool = False,
                 for_now: bool = True) -> None:
        self.what, self.seconds, self.service, self.bound, self.answered = what, seconds, service, bound, answered
        self.no_answer, self.server_side, self.for_now = no_answer, server_side, for_now
        named = f" ({bound})" if bound else ""
        if answered is not None or no_answer is not None:
            # No bound named: a read refused for now is read again twice at most (``within_bound``),
            # and three throttles end the read-back seconds into a bound of a minute. "Within 30 s
            # (verify_timeout_seconds)" sent people to raise a setting that does not read it longer.
            # Nor for a read whose connection failed: it is read again twice at most too.
            said = (f"{what} could not be read back: {service} {self.read_went('the read')} "
                    f"({answered if answered is not None else no_answer})")
        else:
            said = f"{what} could not be read back within {seconds_said(seconds)}{named}: {service} did not answer"
        super().__init__(said)

    def read_went(self, read: str) -> str:
        """What ``service`` did with ``read``, the last read of ``what`` (in the caller's words: "the
        read", "its read-back"), as every message about the read-back words it: this error's own, and
        a rollback's page and claim of a move not read back. Said in one place, the three had
        drifted apart in which answer each called what."""
        if self.answered is None:
            # No answer at all (a connection dropped or refused), or none by the bound: "refused"
            # would be untrue, nothing answered.
            return f"did not answer {read}"
        if self.server_side:
            # Not "refused ... for now": AWS's own side failed it (InternalFailure, a 5xx).
            return f"failed {read} with an error on its own side"
        if not self.for_now:
            # Neither a throttle nor AWS's own failure, nor a refusal for good (raised as it is): a code
            # not known to be any of them, of which "refused for now" claimed what it did not say.
            return f"answered {read} with an error"
        return f"refused {read} for now"

    def named(self, bound: str) -> ReadBackUnanswered:
        """The same error, naming the parameter ``bound`` that set the wait's bound."""
        return ReadBackUnanswered(self.what, self.seconds, self.service, bound, self.answered, self.no_answer,
                                  self.server_side, self.for_now)


def read_back_within(left: float, work: Callable[[], T], *, what: str, seconds: float, service: str,
                     bound: str | None = None, clock: BoundClock = REAL_TIME) -> T:
    """``work()``, one read of a wait bounded at ``seconds`` with ``left`` of them left, given up on
    after ``left`` (at least 0) and ``READ_BACK_MARGIN_SECONDS``, on ``clock`` (``BoundClock``: real
    time unless given), as ``within``, ``answered`` and the checklist's reads are: on real time alone,
    a test of a give-up waited the whole bound out.

    A client's own timeout once the time left has passed is the same finding: the client's bound
    (the wait's, ``blocks.credentials.SessionClients.reading``) may end the call first, and its
    error, a BotoCoreError, was taken for a failed write by a rollback that then sent it again.

    Raises:
        ReadBackUnanswered: ``work`` was not done by then.
        Whatever ``work`` raised, as it raised it.
    """
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    began = clock.now()
    try:
        return within(max(left, 0.0) + READ_BACK_MARGIN_SECONDS, work, name=f"rollway-read-{service}", clock=clock)
    except ReadBackUnanswered:
        raise
    except Unanswered:
        raise ReadBackUnanswered(what, seconds, service, bound) from None
    except (ReadTimeoutError, ConnectTimeoutError) as err:
        if clock.now() - began < left:
            raise
        raise ReadBackUnanswered(what, seconds, service, bound) from err
