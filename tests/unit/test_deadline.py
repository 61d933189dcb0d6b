"""rollway.deadline.within: a call given up on once its time is up, saying while it waits."""

from __future__ import annotations

import threading
import time

import pytest

from rollway.deadline import Unanswered, within
from tests.bound_clock import SteppedClock


def test_a_call_done_in_time_gives_its_answer_or_its_own_error():
    assert within(5, lambda: 42) == 42

    def refuses():
        raise KeyError("refused")

    with pytest.raises(KeyError, match="refused"):
        within(5, refuses)


def test_a_call_still_stuck_when_its_time_is_up_is_given_up_on_and_the_wait_said_while_it_lasted():
    # On a clock that passes only as the call says: each step of it one line, none once its time is up.
    release = threading.Event()
    clock = SteppedClock()
    said: list[float] = []

    def stuck() -> None:
        for step in range(1, 4):
            while clock.waits < step:  # moved once the wait of this step has begun, with its end set
                time.sleep(0.001)
            clock.advance(0.5)
        release.wait()

    try:
        with pytest.raises(Unanswered, match="not done within 1.5 s"):
            within(1.5, stuck, waiting=said.append, every=0.5, clock=clock)
    finally:
        release.set()
    assert said == [0.5, 1.0], said


def test_a_call_still_stuck_when_its_real_time_is_up_is_given_up_on():
    release = threading.Event()
    began = time.monotonic()
    try:
        with pytest.raises(Unanswered, match="not done within 0.3 s"):
            within(0.3, release.wait)
    finally:
        release.set()
    took = time.monotonic() - began
    assert 0.3 <= took < 10, took  # the bug waited for ever; 10 s holds under CI load
