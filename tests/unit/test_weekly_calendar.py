"""The weekly calendar (rollway/weekly.py): when the schedule may start a rollout's next phase.

The Monday 09:00 cron fires in the zone the deployment names; the phase plan's weeks must be
that zone's weeks. Compared in UTC, the decision flipped for phases started near a local
midnight between Sunday and Monday: the rows marked ``utc_differs`` are those where the UTC
answer is wrong (checked in the last test, so each of them is a row the old check failed).
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from rollway import weekly
from rollway.spec import RolloutSpec

H = 3600
D = 24 * H
SLACK = RolloutSpec.model_fields["schedule_slack_seconds"].default  # a spec's slack unless it says otherwise


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
    wait = weekly.phase_wait(at(zone, *started), at(zone, *now), timezone=zone, min_phase_seconds=minimum,
                             slack_seconds=SLACK)
    assert (wait is None) == due, f"{zone}: phase started {started}, now {now}: {wait or 'due'}"


@pytest.mark.parametrize("case", [c for c in CASES if c[5]], ids=[_ids(c) for c in CASES if c[5]])
def test_these_rows_are_ones_a_utc_calendar_decides_the_other_way(case):
    zone, started, now, minimum, due, _ = case
    utc = weekly.phase_wait(at(zone, *started), at(zone, *now), timezone="UTC", min_phase_seconds=minimum,
                            slack_seconds=SLACK)
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
                                  timezone="Europe/Berlin", min_phase_seconds=0, slack_seconds=SLACK)
    assert same_week is not None and "this calendar week" in same_week and "Mon 2027-03-29 00:30 CEST" in same_week
    too_young = weekly.phase_wait(at("UTC", 2027, 1, 17, 23, 0), at("UTC", 2027, 1, 18, 9, 0), timezone="UTC",
                                  min_phase_seconds=3 * D, slack_seconds=SLACK)
    assert too_young is not None and "min_phase_seconds" in too_young and "10.0 h ago" in too_young
    # Three days less the schedule's hour of slack.
    assert weekly.next_phase_due(at("UTC", 2027, 1, 17, 23, 0), timezone="UTC", min_phase_seconds=3 * D,
                                 slack_seconds=SLACK) == at("UTC", 2027, 1, 20, 22, 0)


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


@pytest.mark.parametrize("name,instead", [
    ("localtime", "such as UTC or Europe/Berlin"), ("posixrules", "such as UTC or Europe/Berlin"),
    ("right/UTC", "'UTC'"), ("posix/Europe/Berlin", "'Europe/Berlin'"), ("posix/UTC", "'UTC'"),
])
def test_a_weekly_timezone_that_names_a_file_of_this_hosts_zoneinfo_is_refused(name, instead):
    """ZoneInfo finds these in /usr/share/zoneinfo, so they were accepted: `localtime` is the
    host's own setting and `posixrules` a file some hosts lack, `right/` zones count leap seconds,
    and `posix/` is a copy some hosts do not ship. The weeks (and whether the spec loads at all)
    then depended on which machine the worker ran on."""
    with pytest.raises(ValueError, match=rf"weekly_timezone {name!r} [\s\S]*depends on the host[\s\S]*{instead}"):
        weekly.zone(name)
    with pytest.raises(ValidationError, match=rf"weekly_timezone {name!r}"):
        RolloutSpec(image="repo/app:1", weekly_timezone=name)


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "Etc/GMT+5", "America/Argentina/Buenos_Aires", "GMT"])
def test_plain_iana_keys_are_still_taken(name):
    assert RolloutSpec(image="repo/app:1", weekly_timezone=name).weekly_timezone == name


# --- min_phase_seconds on the local clock, with the schedule's slack ------------------------------
#
# The cron fires on Mondays at 09:00 local time; each run starts some seconds after its cron time
# (here the run that recorded the phase's start took 5 s, the one that checks 2 s). Counted in
# elapsed seconds, a 7-day minimum failed at every such tick, and in any zone's spring week (167 h)
# at every tick: the schedule never ended the phase. ``elapsed_fails`` marks those rows.

# (zone, phase started (local, with seconds), now (local, with seconds), min_phase_seconds, due?, elapsed_fails)
MIN_PHASE_CASES = [
    # A 7-day minimum at the next Monday's cron, with the check's run starting 3 s "earlier".
    ("UTC", (2027, 1, 11, 9, 0, 5), (2027, 1, 18, 9, 0, 2), 7 * D, True, True),
    ("UTC", (2027, 1, 11, 9, 0, 5), (2027, 1, 18, 9, 0, 9), 7 * D, True, False),
    # 14 days: not at the first Monday, at the second (jitter as above).
    ("UTC", (2027, 1, 11, 9, 0, 5), (2027, 1, 18, 9, 0, 2), 14 * D, False, False),
    ("UTC", (2027, 1, 11, 9, 0, 5), (2027, 1, 25, 9, 0, 2), 14 * D, True, True),
    # The slack is an hour, no more: a phase started by hand at 10:30 has not run 7 days by 09:00.
    ("UTC", (2027, 1, 11, 10, 30, 0), (2027, 1, 18, 9, 0, 0), 7 * D, False, False),
    ("UTC", (2027, 1, 11, 9, 0, 0), (2027, 1, 18, 8, 0, 0), 7 * D, True, True),
    ("UTC", (2027, 1, 11, 9, 0, 0), (2027, 1, 18, 7, 59, 59), 7 * D, False, False),
    # Europe/Berlin: the spring week (clocks forward on 2027-03-28) is 167 h, the autumn week
    # (back on 2027-10-31) 169 h; both count 7 days.
    ("Europe/Berlin", (2027, 3, 22, 9, 0, 5), (2027, 3, 29, 9, 0, 9), 7 * D, True, True),
    ("Europe/Berlin", (2027, 3, 22, 9, 0, 5), (2027, 3, 29, 9, 0, 2), 7 * D, True, True),
    ("Europe/Berlin", (2027, 10, 25, 9, 0, 5), (2027, 11, 1, 9, 0, 2), 7 * D, True, False),
    ("Europe/Berlin", (2027, 3, 22, 10, 30, 0), (2027, 3, 29, 9, 0, 0), 7 * D, False, False),  # 1.5 h short
    # America/New_York: forward on 2027-03-14, back on 2027-11-07.
    ("America/New_York", (2027, 3, 8, 9, 0, 5), (2027, 3, 15, 9, 0, 2), 7 * D, True, True),
    ("America/New_York", (2027, 3, 8, 9, 0, 5), (2027, 3, 15, 9, 0, 9), 7 * D, True, True),
    ("America/New_York", (2027, 11, 1, 9, 0, 5), (2027, 11, 8, 9, 0, 2), 7 * D, True, False),
    ("America/New_York", (2027, 3, 1, 9, 0, 5), (2027, 3, 15, 9, 0, 2), 14 * D, True, True),
    # A 3-day minimum across the spring switch: 3 local days less the slack, 70 hours elapsed.
    ("America/New_York", (2027, 3, 12, 9, 0, 0), (2027, 3, 15, 7, 59, 0), 3 * D, False, False),
    ("America/New_York", (2027, 3, 12, 9, 0, 0), (2027, 3, 15, 8, 0, 0), 3 * D, True, True),
]


def _min_ids(case) -> str:
    zone, started, now, minimum, due, _ = case
    return (f"{zone}-{started[1]:02d}{started[2]:02d}T{started[3]:02d}{started[4]:02d}{started[5]:02d}-"
            f"{now[1]:02d}{now[2]:02d}T{now[3]:02d}{now[4]:02d}{now[5]:02d}-"
            f"min{minimum // D}d-{'due' if due else 'wait'}")


@pytest.mark.parametrize("case", MIN_PHASE_CASES, ids=[_min_ids(c) for c in MIN_PHASE_CASES])
def test_min_phase_seconds_counts_local_days_less_the_schedules_slack(case):
    zone, started, now, minimum, due, _ = case
    wait = weekly.phase_wait(at(zone, *started), at(zone, *now), timezone=zone, min_phase_seconds=minimum,
                             slack_seconds=SLACK)
    assert (wait is None) == due, \
        f"{zone}: phase started {started}, now {now}, minimum {minimum / D:g} d: {wait or 'due'}"


def test_a_phase_started_after_now_on_this_clock_is_not_said_to_have_started_hours_ago():
    """Read on a clock behind the one the phase was started on (a rollout started on `rollway up`'s
    sped-up clock, looked at by a run on real time), the wait said "the phase started -192.0 h ago
    ..., under min_phase_seconds", a time that had not come and a minimum that was not the reason."""
    started, now = at("UTC", 2027, 3, 29, 9), at("UTC", 2027, 3, 21, 9)
    wait = weekly.phase_wait(started, now, timezone="UTC", min_phase_seconds=0, slack_seconds=0)
    assert wait is not None and "h ago" not in wait, wait
    assert wait == ("the phase started Mon 2027-03-29 09:00 UTC, which this run's clock has not reached (it reads "
                    "Sun 2027-03-21 09:00 UTC): it runs behind the clock that started the phase"), wait


def test_a_phase_too_young_names_the_zone_whose_clock_counts_its_minimum():
    """"72 h on the local clock" left the reader to guess whose: the host's, theirs, or the
    spec's weekly_timezone, the one that counts."""
    wait = weekly.phase_wait(at("America/New_York", 2027, 3, 12, 9), at("America/New_York", 2027, 3, 15, 7, 59),
                             timezone="America/New_York", min_phase_seconds=3 * D, slack_seconds=SLACK)
    assert "under min_phase_seconds (72 h on the weekly_timezone's America/New_York clock, less 1 h of schedule " \
           "slack)" in (wait or ""), wait


ELAPSED_FAILS = [c for c in MIN_PHASE_CASES if c[5]]


@pytest.mark.parametrize("case", ELAPSED_FAILS, ids=[_min_ids(c) for c in ELAPSED_FAILS])
def test_these_rows_are_ones_elapsed_seconds_decide_the_other_way(case):
    zone, started, now, minimum, due, _ = case
    start, then = at(zone, *started), at(zone, *now)
    by_elapsed = then >= max(weekly.next_week_starts(start, zone), start + minimum)
    assert by_elapsed != due


def test_the_slack_is_an_hour_and_the_fields_description_says_how_the_minimum_is_counted():
    assert SLACK == weekly.DEFAULT_SCHEDULE_SLACK_SECONDS == H == RolloutSpec(image="repo/app:1").schedule_slack_seconds
    said = RolloutSpec.model_fields["min_phase_seconds"].description
    assert "wall clock" in said and "schedule_slack_seconds" in said
    assert "from its start" in said and "a week late, into the next week" in said


@pytest.mark.parametrize("zone,wall,first_utc", [
    # Skipped by the spring switch: the first instant reading 02:30 or later is the jump (01:00 UTC).
    ("Europe/Berlin", (2027, 3, 28, 2, 30), (2027, 3, 28, 1, 0)),
    ("America/New_York", (2027, 3, 14, 2, 59), (2027, 3, 14, 7, 0)),
    # Read twice in autumn: the first reading (still summer time).
    ("Europe/Berlin", (2027, 10, 31, 2, 30), (2027, 10, 31, 0, 30)),
    ("America/New_York", (2027, 11, 7, 1, 30), (2027, 11, 7, 5, 30)),
    ("Europe/Berlin", (2027, 7, 5, 9, 0), (2027, 7, 5, 7, 0)),
])
def test_a_wall_time_is_reached_at_its_first_reading_or_at_the_jump_past_it(zone, wall, first_utc):
    assert weekly.first_instant_reading(dt.datetime(*wall), zone) == at("UTC", *first_utc)


def test_a_minimum_ending_in_a_skipped_hour_is_reached_when_the_clocks_jump():
    # Started Saturday 02:30 CET; 1 day + the slack later is Sunday 02:30, which Berlin skips.
    started = at("Europe/Berlin", 2027, 3, 27, 2, 30)
    reached = weekly.old_enough_at(started, timezone="Europe/Berlin", min_phase_seconds=D + H, slack_seconds=SLACK)
    assert reached == at("UTC", 2027, 3, 28, 1, 0)


# --- the schedule's slack is the spec's -------------------------------------------------------

def test_a_spec_takes_its_schedule_slack_and_an_old_record_reads_back_with_an_hour():
    assert RolloutSpec(image="repo/app:1", schedule_slack_seconds=0).schedule_slack_seconds == 0
    assert RolloutSpec(image="repo/app:1", schedule_slack_seconds=2 * H).phase_calendar() == {
        "timezone": "UTC", "min_phase_seconds": 3 * D, "slack_seconds": 2 * H}
    # A rollout recorded before the field existed reads back with the hour it ran with.
    old = RolloutSpec(image="repo/app:1").model_dump(mode="json")
    del old["schedule_slack_seconds"]
    for read in (RolloutSpec.model_validate, lambda raw: RolloutSpec.from_record(json.dumps(raw)),
                 lambda raw: RolloutSpec.for_rollback(json.dumps(raw))):
        assert read(old).schedule_slack_seconds == H


@pytest.mark.parametrize("fields,says", [
    ({"schedule_slack_seconds": -1}, "schedule_slack_seconds must be at least 0, not -1"),
    ({"schedule_slack_seconds": float("nan")}, "schedule_slack_seconds must be at least 0, not nan"),
    ({"schedule_slack_seconds": "soon"}, "valid number"),
    ({"schedule_slack_seconds": 3 * D}, r"must be less than min_phase_seconds \(259200 s\)"),
    ({"min_phase_seconds": 1800}, r"schedule_slack_seconds \(3600 s\) must be less than min_phase_seconds \(1800 s\)"),
    ({"min_phase_seconds": 2 * H, "schedule_slack_seconds": 2 * H}, "or the minimum counts for nothing"),
])
def test_a_schedule_slack_not_under_the_minimum_is_refused_saying_what_to_do(fields, says):
    with pytest.raises(ValidationError, match=f"schedule_slack_seconds[\\s\\S]*{says}|{says}"):
        RolloutSpec(image="repo/app:1", **fields)


def test_a_minimum_of_0_takes_any_slack_and_a_recorded_spec_runs_as_it_was_recorded():
    assert RolloutSpec(image="repo/app:1", min_phase_seconds=0).schedule_slack_seconds == H
    recorded = RolloutSpec(image="repo/app:1").model_dump(mode="json") | {"min_phase_seconds": 1800}
    assert RolloutSpec.from_record(json.dumps(recorded)).min_phase_seconds == 1800


def test_the_slack_given_is_the_slack_counted():
    started = at("UTC", 2027, 1, 11, 10, 30)  # by hand, 1.5 h after the Monday cron
    monday = at("UTC", 2027, 1, 18, 9, 0)
    assert weekly.phase_wait(started, monday, timezone="UTC", min_phase_seconds=7 * D, slack_seconds=SLACK)
    assert weekly.phase_wait(started, monday, timezone="UTC", min_phase_seconds=7 * D, slack_seconds=2 * H) is None
    said = weekly.phase_wait(started, monday, timezone="UTC", min_phase_seconds=7 * D, slack_seconds=0)
    assert said and "less 0 h of schedule slack" in said


def test_a_schedule_in_another_zone_than_the_rollouts_weeks_is_shown_at_a_run_where_their_clocks_differ():
    """A Monday 09:00 cron in Europe/London beside a rollout on UTC weeks, read in January: the
    next run reads 09:00 in both zones, and the warning showed "09:00 GMT is 09:00 UTC", a
    disagreement it did not show. The first run where they differ is shown (in summer time)."""
    mondays = [at("Europe/London", *(dt.date(2027, 1, 18) + dt.timedelta(weeks=week)).timetuple()[:3], 9)
               for week in range(40)]  # 09:00 on London's clocks, as the cron fires there
    said = weekly.schedule_disagrees("0 9 * * MON", "Europe/London", "UTC", mondays)
    assert said is not None and "its Mon 2027-03-29 09:00 BST is Mon 2027-03-29 08:00 UTC on the rollout's " \
                                "calendar" in said, said
    assert said.startswith("advance_phase's weekly schedule ('0 9 * * MON') fires in Europe/London, but the rollout "
                           "counts its calendar weeks in UTC"), said


@pytest.mark.parametrize("one, other", [("UTC", "Etc/UTC"), ("Europe/Berlin", "Europe/Paris"), ("UTC", "UTC")])
def test_two_names_of_one_calendar_are_no_schedule_disagreement(one, other):
    assert weekly.schedule_disagrees("0 9 * * MON", one, other, [at(one, 2027, 1, 18, 9)]) is None


def test_a_phase_that_reached_its_last_weight_a_week_late_waits_for_the_week_after_and_a_record_says_when():
    """A week 2 started on a Monday whose 50 % (its last weight) was set only the next Monday (its
    run killed at 25 % and resumed a week late) was "due" the moment 50 % was set, and the schedule
    moved the traffic on after minutes at it. Read from the ledger's record, as the schedule, the
    summary and `rollway status` read it."""
    from rollway.ledger import RolloutRecord

    spec = RolloutSpec(image="repo/app:1")
    started, at_weight = at("UTC", 2027, 1, 11, 9), at("UTC", 2027, 1, 18, 9, 30)
    record = RolloutRecord(service="s", rollout_id="r", image="repo/app:1", spec_json="{}", weekly_phase_index=1,
                           weekly_phase_started_at=started, stage_index=2, stage_started_at=at_weight)
    calendar = spec.phase_calendar(record)
    assert weekly.next_phase_due(started, **calendar) == at("UTC", 2027, 1, 25)
    wait = weekly.phase_wait(started, at("UTC", 2027, 1, 18, 10), **calendar)
    assert wait == ("the phase reached its last weight this calendar week (Mon 2027-01-18 09:30 UTC; it started Mon "
                    "2027-01-11 09:00 UTC): it runs at that weight until the next week begins"), wait
    # At 25 % still (not its last weight): counted from its start, as before, and so is a spec alone.
    at_25 = record.model_copy(update={"stage_index": 1})
    assert weekly.next_phase_due(started, **spec.phase_calendar(at_25)) == at("UTC", 2027, 1, 18) \
        == weekly.next_phase_due(started, **spec.phase_calendar())


@pytest.mark.parametrize("hours_after_the_cron", [2, 6, 54])
def test_a_seven_day_minimum_passes_at_the_next_mondays_cron_whenever_in_its_week_the_last_weight_came(
        hours_after_the_cron):
    """A 7-day minimum counted from a phase's last weight slipped a week whenever that weight came
    more than the slack after the cron: a bake, or an approval answered that afternoon or on Wednesday."""
    from rollway.ledger import RolloutRecord

    spec = RolloutSpec(image="repo/app:1", min_phase_seconds=7 * 24 * H)
    started = at("UTC", 2027, 1, 11, 9)
    record = RolloutRecord(service="s", rollout_id="r", image="repo/app:1", spec_json="{}", weekly_phase_index=1,
                           weekly_phase_started_at=started, stage_index=2,
                           stage_started_at=started + hours_after_the_cron * H)
    next_cron = at("UTC", 2027, 1, 18, 9, 0, 5)  # the checking run starts seconds after 09:00
    assert weekly.next_phase_due(started, **spec.phase_calendar(record)) == at("UTC", 2027, 1, 18, 8)
    assert weekly.phase_wait(started, next_cron, **spec.phase_calendar(record)) is None
