"""How a monitoring window's length is said on its pages, its log and finalize's refusals."""

from __future__ import annotations

import pytest

from rollway.bounds import duration_words

# A window of 0.4 s (monitor_seconds takes any value from 0) said "0 minutes of monitoring", and
# the monitor's log said it was "watching the 0 minutes left" of a window with 0.3 s left; 2.5 s,
# rounded half to even, was "2 seconds", and 90.5 s "1 minute 30 seconds".
UNDER_A_MINUTE = [(0.4, "0.4 seconds"), (0.3, "0.3 seconds"), (0.5, "0.5 seconds"), (2.5, "2.5 seconds"),
                  (1, "1 second"), (45, "45 seconds"), (59.7, "59.7 seconds")]
# Longer windows keep their words; none at all (a check at the window's opening) is "0 minutes".
LONGER = [(90.5, "1 minute 31 seconds"), (60, "1 minute"), (59.9999999, "1 minute"), (1800, "30 minutes"),
          (7200, "120 minutes"), (86399.4, "23 hours 59 minutes 59 seconds"), (2 * 86400 + 60, "2 days 1 minute"),
          (0, "0 minutes")]


@pytest.mark.parametrize(("seconds", "said"), UNDER_A_MINUTE + LONGER)
def test_a_window_is_said_as_it_is_never_0_minutes_when_it_is_not_none(seconds: float, said: str) -> None:
    assert duration_words(seconds) == said
