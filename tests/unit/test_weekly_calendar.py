"""The weekly calendar (rollway/weekly.py): when the schedule may start a rollout's next phase.

The Monday 09:00 cron fires in the zone the deployment names; the phase plan's weeks must be
that zone's weeks. Compared in UTC, the decision flipped for phases started near a local
midnight between Sunday and Monday: the rows marked ``utc_differs`` are those where the UTC
answer is wrong (checked in the last test, so each of them is a row the old check failed).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from rollway import weekly
from rollway.spec import RolloutSpec

H = 3600
D = 24 * H


def at(zone: str, *parts: int) -> float:
    """The instant that reads ``parts`` (year, month, day, hour[, minute]) on ``zone``'s wall clocks."""
    return dt.datetime(*parts, tzinfo=ZoneInfo(zone)).timestamp()


# (zone, phase started (local), now (local), min_phase_seconds, next phase due?, UTC would say otherwise)
CASES = [
    # UTC: the plain week, and the minimum age.
    ("UTC", (2027, 1, 11, 9, 5), (2027, 1, 18, 9, 0), 3 * D, True, False),
    ("UTC", (2027, 1, 18, 0, 30), (2027, 1, 18, 9, 0), 0, False, False),
    ("UTC", (2027, 1, 17, 23, 0), (2027, 1, 18, 9, 0), 3 * D, False, False),  # Sunday evening: too young
    ("UTC", (2027, 1, 17, 23, 59), (2027, 1, 18, 0, 0), 0, True, False),  # midnight Sunday -> Monday
    # Europe/Berlin: a week across the March switch is 167 h long, across October's 169 h.
    ("Europe/Berlin", (2027, 3, 22, 9, 0), (2027, 3, 29, 9, 0), 3 * D, True, False),
    ("Europe/Berlin", (2027, 3, 22, 9, 0), (2027, 3, 29, 9, 0), 167 * H, True, False),
    ("Europe/Berlin", (2027, 10, 25, 9, 0), (2027, 11, 1, 9, 0), 3 * D, True, False),
    # Monday 00:30 in Berlin is Sunday 22:30 (summer) / 23:30 (winter) UTC: this week, not last.
    ("Europe/Berlin", (2027, 3, 29, 0, 30), (2027, 3, 29, 9, 0), 0, False, True),
    ("Europe/Berlin", (2027, 11, 1, 0, 30), (2027, 11, 1, 9, 0), 0, False, True),
    # Sunday 23:30 in Berlin, the night the clocks went forward: next Monday 00:10 is a new week.
    ("Europe/Berlin", (2027, 3, 28, 23, 30), (2027, 3, 29, 0, 10), 0, True, True),
    # America/Los_Angeles: Sunday 18:00 PST is Monday 02:00 UTC, last week on the local calendar.
    ("America/Los_Angeles", (2027, 1, 17, 18, 0), (2027, 1, 18, 9, 0), 0, True, True),
    ("America/Los_Angeles", (2027, 1, 11, 9, 0), (2027, 1, 18, 9, 0), 3 * D, True, False),
    ("America/Los_Angeles", (2027, 3, 8, 9, 0), (2027, 3, 15, 9, 0), 3 * D, True, False),  # across PST -> PDT
    ("America/Los_Angeles", (2027, 1, 18, 0, 15), (2027, 1, 18, 9, 0), 0, False, False),
    # Asia/Kolkata (UTC+05:30): Monday 02:00 local is Sunday 20:30 UTC.
    ("Asia/Kolkata", (2027, 1, 18, 2, 0), (2027, 1, 18, 9, 0), 0, False, True),
    ("Asia/Kolkata", (2027, 1, 17, 23, 45), (2027, 1, 18, 0, 15), 0, True, True),
    ("Asia/Kolkata", (2027, 1, 11, 9, 0), (2027, 1, 18, 9, 0), 3 * D, True, False),
]


def _ids(case) -> str:
    zone, started, now, minimum, due, _ = case
    stamp = f"{started[1]:02d}{started[2]:02d}T{started[3]:02d}{started[4]:02d}"
    return f"{zone}-{stamp}-min{minimum // H}h-{'due' if due else 'wait'}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_the_next_phase_is_due_on_the_zones_own_calendar(case):
    zone, started, now, minimum, due, _ = case
    wait = weekly.phase_wait(at(zone, *started), at(zone, *now), timezone=zone, min_phase_seconds=minimum)
    assert (wait is None) == due, f"{zone}: phase started {started}, now {now}: {wait or 'due'}"


@pytest.mark.parametrize("case", [c for c in CASES if c[5]], ids=[_ids(c) for c in CASES if c[5]])
def test_these_rows_are_ones_a_utc_calendar_decides_the_other_way(case):
    zone, started, now, minimum, due, _ = case
    utc = weekly.phase_wait(at(zone, *started), at(zone, *now), timezone="UTC", min_phase_seconds=minimum)
    assert (utc is None) != due


@pytest.mark.parametrize("zone,started,monday_utc", [
    ("UTC", (2027, 1, 13, 12, 0), (2027, 1, 18, 0, 0)),
    ("Europe/Berlin", (2027, 3, 24, 12, 0), (2027, 3, 28, 22, 0)),  # CEST by then: UTC+2
    ("Europe/Berlin", (2027, 10, 27, 12, 0), (2027, 10, 31, 23, 0)),  # CET by then: UTC+1
    ("America/Los_Angeles", (2027, 1, 17, 23, 59), (2027, 1, 18, 8, 0)),
    ("Asia/Kolkata", (2027, 1, 17, 23, 59), (2027, 1, 17, 18, 30)),
])
def test_a_week_ends_at_the_local_mondays_midnight(zone, started, monday_utc):
    assert weekly.next_week_starts(at(zone, *started), zone) == at("UTC", *monday_utc)


def test_the_reason_to_wait_says_which_rule_holds_the_phase_and_when_it_started_locally():
    same_week = weekly.phase_wait(at("Europe/Berlin", 2027, 3, 29, 0, 30), at("Europe/Berlin", 2027, 3, 29, 9, 0),
                                  timezone="Europe/Berlin", min_phase_seconds=0)
    assert same_week is not None and "this calendar week" in same_week and "Mon 2027-03-29 00:30 CEST" in same_week
    too_young = weekly.phase_wait(at("UTC", 2027, 1, 17, 23, 0), at("UTC", 2027, 1, 18, 9, 0), timezone="UTC",
                                  min_phase_seconds=3 * D)
    assert too_young is not None and "min_phase_seconds" in too_young and "10.0 h ago" in too_young
    assert weekly.next_phase_due(at("UTC", 2027, 1, 17, 23, 0), timezone="UTC", min_phase_seconds=3 * D) \
        == at("UTC", 2027, 1, 20, 23, 0)


def test_a_spec_takes_its_weekly_timezone_as_an_iana_name_and_defaults_to_utc():
    assert RolloutSpec(image="repo/app:1").weekly_timezone == "UTC"
    assert RolloutSpec(image="repo/app:1", weekly_timezone=" Asia/Kolkata ").weekly_timezone == "Asia/Kolkata"
    # A rollout recorded before the field existed reads back on UTC weeks, as it ran.
    old = RolloutSpec(image="repo/app:1").model_dump(mode="json")
    del old["weekly_timezone"]
    assert RolloutSpec.model_validate(old).weekly_timezone == "UTC"


@pytest.mark.parametrize("name", ["Europe/Berln", "utc", "", "  ", "Europe", "../../etc/passwd", "+02:00", "CEST"])
def test_a_spec_with_an_unknown_weekly_timezone_is_refused_with_what_is_expected(name):
    with pytest.raises(ValidationError, match=r"weekly_timezone[\s\S]*(IANA time zone)"):
        RolloutSpec(image="repo/app:1", weekly_timezone=name)
