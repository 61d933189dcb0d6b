"""The weekly calendar: when the schedule may start a rollout's next phase. Pure: no clock, no I/O.

A phase ends, and the next one may start, once it has run ``min_phase_seconds`` and a new
calendar week has begun since it started. "Calendar week" is the ISO week (Monday 00:00 to
Sunday 24:00) in the rollout's ``weekly_timezone``, the IANA zone its Monday cron fires in:
compared in UTC instead, a phase started early on a Monday in Auckland (still Sunday in UTC)
counted as last week's, and one started late on a Sunday in Los Angeles (already Monday in UTC)
as this week's, so the schedule ended a phase a week early or spent a week doing nothing.
Local wall time is read through ``zoneinfo``, so a week that holds a daylight-saving switch
(167 or 169 hours long) still ends at the local Monday's midnight.

``min_phase_seconds`` is the least time a phase runs, counted from its start; and a phase that
reached its last weight late (its run killed at 25 % and resumed the next week, its approval
answered after the weekend) runs at that weight until a new calendar week has begun since it got
there (``at_weight_since``). Counted from the start alone, a phase resumed a week late was
"already due" the moment its last stage passed, and the schedule moved the traffic on after
minutes at the phase's weight. Counted from the last weight instead, a 7-day minimum slipped a
week whenever the last weight came more than the slack after the cron (every phase with a bake
or an approval before its last stage), though the schedule runs weekly.
It is counted on the zone's wall clock, less the spec's
``schedule_slack_seconds`` (``DEFAULT_SCHEDULE_SLACK_SECONDS``, an hour, unless it says otherwise).
Counted in elapsed seconds, a minimum of exactly 7 days could never pass at a weekly cron: the
week of the spring switch is 167 hours, and in every other week the run that checks starts a few
seconds earlier after its cron time than the one that recorded the phase's start did, half the
time. The same held for 14, 21 and 28 days.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "UTC"

DEFAULT_SCHEDULE_SLACK_SECONDS = 3600.0
"""How much shorter than ``min_phase_seconds`` (on the weekly_timezone's clock) a phase may have run when the
schedule ends it, unless the spec's ``schedule_slack_seconds`` says otherwise. A phase's start is
recorded by a scheduled run some seconds to minutes after its cron time (a worker polls, a run
starts, the ledger is read), and so is the check a week later: the two delays differ, either way.
An hour covers a worker that was slow or briefly down when either run started, and ends a phase at
most an hour early on its minimum."""


HOST_SPECIFIC_FILES = {
    "localtime": "is this host's own zone setting",
    "posixrules": "is the file of rules this host applies to POSIX TZ strings",
}
"""Files ZoneInfo finds in a host's zoneinfo directory that are no IANA zone: what they mean (and
whether they exist) depends on the host."""

HOST_SPECIFIC_TREES = {
    "posix": "is a copy of the zone under another name, shipped by some hosts only",
    "right": "counts leap seconds, on hosts that ship such zones",
}
"""Directories of a host's zoneinfo that hold variants of the IANA zones, under their own names."""


def host_specific(name: str) -> str | None:
    """Why ``name`` is a file of this host's zoneinfo directory rather than an IANA zone; None if it is not."""
    # Folded: on a case-insensitive file system (macOS) ZoneInfo finds "Localtime" too.
    root, _, rest = name.partition("/")
    if name.casefold() in HOST_SPECIFIC_FILES:
        return (f"{HOST_SPECIFIC_FILES[name.casefold()]}; give the zone's IANA name instead, such as UTC or "
                "Europe/Berlin")
    if root.casefold() in HOST_SPECIFIC_TREES and rest:
        return f"{HOST_SPECIFIC_TREES[root.casefold()]}; give the IANA name instead, {rest!r}"
    return None


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Berlin``); ValueError, saying what is expected, if unknown."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("weekly_timezone must name an IANA time zone, such as UTC or Europe/Berlin")
    if (why := host_specific(name)) is not None:
        # ZoneInfo loads these, but the weeks they give (or whether they load at all) depend on
        # the host the worker runs on, not on the spec: a rollout's calendar must not.
        raise ValueError(f"weekly_timezone {name!r} names a file of a host's time zone directory, not an IANA "
                         f"time zone: what it means depends on the host the worker runs on ({name!r} {why})")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        # ZoneInfo raises ValueError for a malformed key ("../x", "/abs") and ZoneInfoNotFoundError
        # (a KeyError) for an unknown one; both mean the same to the person who typed it.
        raise ValueError(
            f"weekly_timezone {name!r} is not an IANA time zone this host knows (names are case-sensitive "
            "Area/Location keys such as UTC, Europe/Berlin, America/Los_Angeles, Asia/Kolkata)"
        ) from err


def local_week(seconds: float, timezone: str) -> tuple[int, int]:
    """The ISO (year, week) that the instant ``seconds`` falls in, on ``timezone``'s calendar."""
    iso = dt.datetime.fromtimestamp(seconds, zone(timezone)).isocalendar()
    return iso.year, iso.week


def wall_time(seconds: float, timezone: str) -> dt.datetime:
    """What the clocks in ``timezone`` read at the instant ``seconds`` (a naive datetime)."""
    return dt.datetime.fromtimestamp(seconds, zone(timezone)).replace(tzinfo=None)


def first_instant_reading(wall: dt.datetime, timezone: str) -> float:
    """The first instant at which the clocks in ``timezone`` read ``wall`` (naive) or later.

    A wall time read twice (the hour repeated when the clocks go back) is its first reading; one
    the clocks skip (going forward) is the moment of the jump, the first instant reading later.
    """
    tz = zone(timezone)
    first = wall.replace(tzinfo=tz, fold=0).timestamp()  # fold=0: the earlier of two readings (PEP 495)
    if wall_time(first, timezone) == wall:
        return first
    # Skipped: read with the offset from after the switch it is an instant before the jump, with
    # the one from before it an instant after. Zones switch on whole seconds: bisect to the jump.
    before, after = math.floor(wall.replace(tzinfo=tz, fold=1).timestamp()), math.ceil(first)
    while after - before > 1:
        middle = (before + after) // 2
        if wall_time(middle, timezone) >= wall:
            after = middle
        else:
            before = middle
    return float(after)


def next_week_starts(seconds: float, timezone: str) -> float:
    """The instant the calendar week after the one holding ``seconds`` begins: the next Monday,
    00:00 local time in ``timezone`` (on a day whose midnight a clock change skips, the moment
    the clocks jump)."""
    local = wall_time(seconds, timezone)
    monday = local.date() + dt.timedelta(days=7 - local.weekday())
    return first_instant_reading(dt.datetime.combine(monday, dt.time(0)), timezone)


def old_enough_at(started_at: float, *, timezone: str, min_phase_seconds: float, slack_seconds: float) -> float:
    """The first instant a phase started at ``started_at`` has run ``min_phase_seconds``, less
    ``slack_seconds`` (the spec's ``schedule_slack_seconds``), on ``timezone``'s wall clock: a week
    that holds a daylight-saving switch counts 7 days, whether it lasted 167 or 169 hours."""
    counted = max(0.0, min_phase_seconds - slack_seconds)
    return first_instant_reading(wall_time(started_at, timezone) + dt.timedelta(seconds=counted), timezone)


def next_phase_due(started_at: float, *, timezone: str, min_phase_seconds: float, slack_seconds: float,
                   at_weight_since: float | None = None) -> float:
    """The earliest instant the next phase may start after a phase that started at ``started_at``:
    a new calendar week has begun since it started, it is old enough (``old_enough_at``), and a new
    calendar week has begun since it reached its last weight at ``at_weight_since`` (None: it has
    not reached it yet, or the record does not say)."""
    due = max(next_week_starts(started_at, timezone),
              old_enough_at(started_at, timezone=timezone, min_phase_seconds=min_phase_seconds,
                            slack_seconds=slack_seconds))
    reached = reached_late(started_at, at_weight_since, timezone)
    return due if reached is None else max(due, next_week_starts(reached, timezone))


def reached_late(started_at: float, at_weight_since: float | None, timezone: str) -> float | None:
    """When a phase reached its last weight, if in a later calendar week than it started; else None.
    A weight recorded in its start's week (the usual bake or approval) holds nothing back, and one
    recorded before it started is the previous phase's."""
    if at_weight_since is None or local_week(at_weight_since, timezone) <= local_week(started_at, timezone):
        return None
    return at_weight_since


def phase_wait(started_at: float | None, now: float, *, timezone: str, min_phase_seconds: float,
               slack_seconds: float, at_weight_since: float | None = None) -> str | None:
    """Why the next phase may not start at ``now``; None when it may.

    Args:
        started_at: when the current phase started (None: no phase has, nothing holds it back).
        now: the rollout clock's time.
        timezone: the IANA zone whose calendar weeks count.
        min_phase_seconds: how long a phase runs at least...
        slack_seconds: ...less this (the spec's ``schedule_slack_seconds``), for the scheduled runs' start-up delays.
        at_weight_since: when the phase reached its last weight (None: it has not); reached in a later
            calendar week than the phase started, the next phase waits for the week after it.
    """
    if started_at is None:
        return None
    if now >= next_phase_due(started_at, timezone=timezone, min_phase_seconds=min_phase_seconds,
                             slack_seconds=slack_seconds, at_weight_since=at_weight_since):
        return None
    if now < started_at:
        # Read on a clock behind the one that started the phase (a rollout on a sped-up clock, looked
        # at on real time): "started -192.0 h ago, under min_phase_seconds" named neither the cause
        # nor a time that had come.
        return (f"the phase started {describe(started_at, timezone)}, which this run's clock has not reached (it "
                f"reads {describe(now, timezone)}): it runs behind the clock that started the phase")
    if local_week(now, timezone) == local_week(started_at, timezone):
        return f"the phase started this calendar week ({describe(started_at, timezone)})"
    reached = reached_late(started_at, at_weight_since, timezone)
    if reached is not None and local_week(now, timezone) == local_week(reached, timezone):
        return (f"the phase reached its last weight this calendar week ({describe(reached, timezone)}; it started "
                f"{describe(started_at, timezone)}): it runs at that weight until the next week begins")
    # A new week, but the phase is younger than min_phase_seconds (say, started on Sunday evening).
    return (f"the phase started {(now - started_at) / 3600:.1f} h ago ({describe(started_at, timezone)}), under "
            f"min_phase_seconds ({min_phase_seconds / 3600:g} h on the weekly_timezone's {timezone} clock, less "
            f"{slack_seconds / 3600:g} h of schedule slack)")


def describe(seconds: float, timezone: str) -> str:
    """``seconds`` as a person in ``timezone`` reads it: ``Mon 2027-03-29 09:00 CEST``."""
    return dt.datetime.fromtimestamp(seconds, zone(timezone)).strftime("%a %Y-%m-%d %H:%M %Z")


def due_since(due: float, timezone: str) -> str:
    """What to do about a next phase that fell due at ``due`` and has not started, after its name.

    Said where a phase's end or a schedule's run found it due already: "may start from" a day
    already past left people waiting for a time that had come.
    """
    return (f"has been due since {describe(due, timezone)}: run advance_phase to start it now (the weekly "
            "schedule's next run would too).")


def same_clocks(one: str, other: str, since: float, *, days: int = 2 * 366) -> bool:
    """Whether the clocks of zones ``one`` and ``other`` read alike at every hour of the ``days``
    after ``since`` (``UTC`` and ``Etc/UTC``, ``Europe/Berlin`` and ``Europe/Paris`` do): two names
    of one calendar are no disagreement, two zones whose daylight-saving rules differ are."""
    if one == other:
        return True
    first, second = zone(one), zone(other)
    start = math.floor(since / 3600) * 3600
    return all(dt.datetime.fromtimestamp(t, first).utcoffset() == dt.datetime.fromtimestamp(t, second).utcoffset()
               for t in range(start, start + days * 24 * 3600, 3600))


def schedule_disagrees(cron: str, cron_timezone: str, weekly_timezone: str, fires: Sequence[float]) -> str | None:
    """What goes wrong when advance_phase's ``cron`` fires in ``cron_timezone`` while a rollout
    counts its calendar weeks in ``weekly_timezone`` (None when the two zones keep the same clocks).
    ``fires``: the cron's next runs; the first whose hour the two zones read differently is shown as
    each reads it (the next run may fall where they agree: Europe/London and UTC, in winter). The
    caller adds the fix.

    A Monday 09:00 in UTC is 04:00 or 05:00 in New York: the phase starts, and its approval pause
    asks and (an hour later, by default) rolls back, while nobody there is at work. Cron and weeks
    in zones whose Mondays begin at other instants also end some phases a week late: a phase
    started on a Monday of one zone that is still Sunday in the other (``phase_wait``).
    """
    if not fires or same_clocks(cron_timezone, weekly_timezone, fires[0]):
        return None
    shown = next((t for t in fires if wall_time(t, cron_timezone) != wall_time(t, weekly_timezone)), fires[0])
    return (f"advance_phase's weekly schedule ({cron!r}) fires in {cron_timezone}, but the rollout counts its calendar "
            f"weeks in {weekly_timezone} (the spec's weekly_timezone): its {describe(shown, cron_timezone)} is "
            f"{describe(shown, weekly_timezone)} on the rollout's calendar, so each phase starts, and an approval "
            "pause asks and times out, at that hour there, and a phase started near a midnight of one zone may be "
            "ended a week late")
