"""rollway.deadline.within: a call given up on once its time is up, saying while it waits."""

from __future__ import annotations

import threading
import time

import pytest

from rollway.deadline import Unanswered, within


def test_a_call_done_in_time_gives_its_answer_or_its_own_error():
    assert within(5, lambda: 42) == 42

    def refuses():
        raise KeyError("refused")

    with pytest.raises(KeyError, match="refused"):
        within(5, refuses)


def test_a_call_still_stuck_when_its_time_is_up_is_given_up_on_and_the_wait_said_while_it_lasted():
    release = threading.Event()
    said: list[float] = []
    began = time.monotonic()
    with pytest.raises(Unanswered, match="not done within 1.5 s"):
        within(1.5, release.wait, waiting=said.append, every=0.1)
    took = time.monotonic() - began
    release.set()
    assert 1.5 <= took < 10, took  # the bug waited for ever; 10 s holds under CI load
    # A line every 0.1 s while it waited (at most 14: each comes after a wait of 0.1 s; a loaded
    # machine wakes the waiter late, so fewer), none once its time was up.
    assert 2 <= len(said) <= 14 and all(0 < elapsed < 1.5 for elapsed in said), said
