"""The weekly schedule's next runs as rollway says them, across daylight-saving switches.

``schedule_fires`` is what `rollway up` prints as the advance_phase schedule's next run, and what
the zone checks (serve.py's, each tick's) compare the rollout's weeks with. Counted from an instant
before a switch, croniter kept that instant's UTC offset: the weekend before Europe's spring
switch, a Monday 09:00 Berlin cron was said to run at 08:00 CEST, and then again at 09:00, while
Prefect's scheduler runs it once, at 09:00. The oracle here is Prefect's own scheduler.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from flows.progressive import schedule_fires
from rollway.cli.up import schedule_words
from rollway.weekly import describe


def _at(zone: str, *parts: int) -> float:
    return dt.datetime(*parts, tzinfo=ZoneInfo(zone)).timestamp()


def prefects_own(cron: str, zone: str, after: float, count: int) -> list[float]:
    """The runs Prefect's scheduler makes for the schedule (it counts from ``after`` inclusive)."""
    from prefect.server.schemas.schedules import CronSchedule

    start = dt.datetime.fromtimestamp(after + 1, dt.timezone.utc)
    dates = asyncio.run(CronSchedule(cron=cron, timezone=zone).get_dates(n=count, start=start))
    return [d.timestamp() for d in dates]


def test_rollway_up_says_the_run_after_the_spring_switch_at_its_local_hour():
    saturday = _at("Europe/Berlin", 2027, 3, 27, 12)  # the clocks go forward on Sunday 28 March
    said = schedule_words([("0 9 * * MON", "Europe/Berlin")], saturday)
    assert "next at Mon 2027-03-29 09:00 CEST" in said, said


@pytest.mark.parametrize("zone, cron, after", [
    ("Europe/Berlin", "0 9 * * MON", (2027, 3, 27, 12)),       # spring forward
    ("Europe/Berlin", "0 9 * * MON", (2027, 10, 30, 12)),      # fall back
    ("America/New_York", "0 9 * * MON", (2027, 3, 13, 12)),
    ("America/New_York", "0 9 * * MON", (2027, 11, 6, 12)),
    ("Pacific/Auckland", "0 9 * * MON", (2027, 4, 3, 12)),
    ("Pacific/Auckland", "0 9 * * MON", (2027, 9, 25, 12)),
    ("Europe/Berlin", "30 2 * * SUN", (2027, 3, 27, 12)),      # a run in the hour the clocks skip
    ("Europe/Berlin", "30 2 * * SUN", (2027, 10, 30, 12)),     # ... and in the hour they repeat
    ("UTC", "0 9 * * MON", (2027, 3, 27, 12)),
])
def test_the_next_runs_are_the_ones_prefects_scheduler_makes(zone, cron, after):
    start = _at(zone, *after)
    ours, prefect = schedule_fires(cron, zone, start, count=4), prefects_own(cron, zone, start, 4)
    assert ours == prefect, ([describe(t, zone) for t in ours], [describe(t, zone) for t in prefect])
