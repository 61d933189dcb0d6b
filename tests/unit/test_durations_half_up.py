"""Durations a person reads, rounded one way: a half up (``rollway.bounds.whole_seconds``).

Python's ``round`` takes a half to the even whole: a lease that lapsed 150 s ago read "2 min ago",
where one of 90 s read "2 min" too; and ``:g`` said a span under a minute to six digits, 59.9999999 s
as "60 s" (where 60 s reads "1 min") and 0.0001 s as it was.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from rollway.bounds import duration_said, duration_words

UNDER_A_MINUTE = [(59.9999999, "1 min"), (59.96, "1 min"), (59.94, "59.9 s"), (12.3456789, "12.3 s"),
                  (2.25, "2.3 s"), (0.05, "0.1 s"), (0.0001, "under 0.1 s"), (0, "0 s"), (45, "45 s"),
                  (0.5, "0.5 s")]


@pytest.mark.parametrize(("seconds", "said"), UNDER_A_MINUTE)
def test_a_span_under_a_minute_is_said_to_the_tenth_of_a_second_a_half_rounded_up(seconds, said):
    assert duration_said(seconds) == said


@pytest.mark.parametrize(("seconds", "said"), [(0.0001, "under 0.1 seconds"), (12.3456789, "12.3 seconds"),
                                               (2.25, "2.3 seconds"), (59.96, "1 minute"), (0.95, "1 second")])
def test_a_window_under_a_minute_is_said_as_a_span_is(seconds, said):
    assert duration_words(seconds) == said


@pytest.mark.parametrize(("seconds", "minutes"), [(150, 3), (90, 2), (89.9, 1), (210, 4), (60, 1), (0, 0)])
def test_a_span_to_the_minute_rounds_a_half_minute_up(seconds, minutes):
    from rollway.bounds import whole_minutes

    assert whole_minutes(seconds) == 60 * minutes


@pytest.mark.parametrize(("late", "said"), [(100.5, "1 min 41 s"), (2.5, "3 s"), (0.4, "under a second")])
def test_a_timeout_acted_on_by_the_run_that_took_over_says_how_late_a_half_second_rounded_up(late, said):
    from rollway.approvals import TakenOver, taken_over_timeout
    from rollway.spec import Approvals

    due = 1_800_000_000.0
    answer = taken_over_timeout(Approvals(timeout_seconds=600), TakenOver(began=due - 600, deadline=due), due + late)
    assert f"the run that took the rollout over acts on it {said} after it fell due" in answer.comment, answer.comment


@pytest.mark.parametrize(("seconds", "said"), [(150, "3 min"), (89.9, "1 min"), (59.5, "1 min"), (2.5, "3 s"),
                                               (0.4, "under a second")])
def test_a_prefect_outage_is_said_to_the_minute_a_half_minute_rounded_up(seconds, said):
    from flows.approvals import _said_to_the_minute

    assert _said_to_the_minute(seconds) == said


@pytest.mark.parametrize(("since", "ago"), [(150, "3 min ago"), (90, "2 min ago"), (89, "1 min ago"),
                                            (59, "under a minute ago")])
def test_a_lapsed_lease_says_how_long_ago_to_the_minute_a_half_minute_rounded_up(since, ago):
    from flows.progressive import lapsed_said

    expires = 1_800_000_000.0
    said = lapsed_said(SimpleNamespace(wall=lambda: expires + since), SimpleNamespace(lease_expires=expires))
    assert said.endswith(f"(wall clock), {ago}"), said
