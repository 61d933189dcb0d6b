"""A weekly phase begun by a scheduled advance_phase run that started late.

The Prefect server (or the worker) was down on Monday: Monday's scheduled run ran on Tuesday
09:00 and started week 2 then. Counted from Tuesday, week 2 was old enough only from the next
Tuesday: the next Monday's run said "may start from Tue ..." and week 3 came a week late. A phase
begun by a late scheduled run counts from the time the run was scheduled for, and the ledger's
entry says so; a run by hand keeps its own time.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from prefect import get_client
from prefect.flow_engine import run_flow
from prefect.states import Failed, Running, Scheduled

from flows.progressive import advance_phase
from rollway import weekly
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import fake_environment
from tests.flows.test_progressive_fakes import FakeLedger
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.test_weekly_schedule import IMAGE, WEEK, at, first_run, tick

MONDAY = at("UTC", 2027, 1, 11, 9, 0)
CALENDAR = {"timezone": "UTC", "min_phase_seconds": 7 * 24 * 3600.0, "slack_seconds": 3600.0}


def _three_weeks() -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 25, 100)],
                       phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(25,)),
                               WeeklyPhase(name="week 3", weights=(100,))],
                       min_phase_seconds=7 * 24 * 3600.0, monitor_seconds=0, verify_timeout_seconds=0.5, healthy_timeout_seconds=0.5)


async def _as_the_scheduler_made_it(run_id, scheduled_for: float) -> None:
    """Mark flow run ``run_id`` as Prefect's scheduler writes the runs it creates (auto_scheduled,
    expected at ``scheduled_for``): its API creates no such run, the scheduler writes them to the
    database itself."""
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface

    db = provide_database_interface()
    async with db.session_context(begin_transaction=True) as session:
        await session.execute(sa.update(db.FlowRun).where(db.FlowRun.id == run_id).values(
            auto_scheduled=True, expected_start_time=dt.datetime.fromtimestamp(scheduled_for, dt.timezone.utc)))


def _run_of_the_schedule(scheduled_for: float, *, retried: bool = False):
    """advance_phase as the weekly schedule runs it: a run the scheduler created for
    ``scheduled_for``, executed now (late). ``retried``: its first attempt ran (and failed), and a
    person retried it now (the UI's Retry, `prefect flow-run retry`)."""
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(advance_phase, parameters={})
    asyncio.run(_as_the_scheduler_made_it(run.id, scheduled_for))
    with get_client(sync_client=True) as client:
        if retried:
            for state in (Running(), Failed(message="ECS DescribeServices: ThrottlingException"),
                          Scheduled(message="Retried via CLI")):
                client.set_flow_run_state(run.id, state, force=True)
        run = client.read_flow_run(run.id)
    assert run.run_count == (1 if retried else 0), run.run_count
    assert run.auto_scheduled and run.expected_start_time.timestamp() == scheduled_for, run
    return run_flow(advance_phase, flow_run=run, parameters={}, return_type="state")


def _week_one_passed(monkeypatch):
    """Week 1 started on Monday 2027-01-11 09:00 UTC and passed; the flows see these fakes."""
    env = fake_environment()
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    env.clock.t = MONDAY
    assert first_run(env, _three_weeks()).outcome == "holding"
    return env


def test_a_phase_begun_by_a_scheduled_run_a_day_late_keeps_the_plans_weeks(monkeypatch):
    env = _week_one_passed(monkeypatch)

    env.clock.t = MONDAY + WEEK + 24 * 3600  # Monday's run, a day late
    state = _run_of_the_schedule(MONDAY + WEEK)
    assert state.is_completed(), state.message
    record = env.ledger.get(env.targets.canary_service)
    assert record.weekly_phase_index == 1 and record.weekly_phase_started_at == MONDAY + WEEK, record
    started = next(t for t in record.history if t.kind == "phase" and t.comment.startswith("starting week 2"))
    assert "counted from the schedule's Mon 2027-01-18 09:00 UTC (this run started 1 d late)" in started.comment, \
        started.comment

    env.clock.t = MONDAY + 2 * WEEK  # the next Monday's run, on time
    tick(env, "cron-3")
    assert env.ledger.get(env.targets.canary_service).weekly_phase_index == 2


def test_a_run_by_hand_a_day_after_the_schedule_keeps_its_own_time(monkeypatch):
    env = _week_one_passed(monkeypatch)
    env.clock.t = MONDAY + WEEK + 24 * 3600
    advance_phase()  # called directly: no schedule created it
    assert env.ledger.get(env.targets.canary_service).weekly_phase_started_at == MONDAY + WEEK + 24 * 3600


def test_a_scheduled_run_retried_by_hand_days_later_keeps_its_own_time(monkeypatch):
    """Monday's run started on time and failed before starting week 2 (AWS throttled it); a person
    retried it on Thursday. Still marked as the schedule's, expected on Monday, it counted week 2
    from Monday, said it "started 72.0 h late", and the next Monday's run started week 3 after four
    days: a retry is a run by hand, counted from its start."""
    env = _week_one_passed(monkeypatch)
    env.clock.t = MONDAY + WEEK + 3 * 24 * 3600
    state = _run_of_the_schedule(MONDAY + WEEK, retried=True)
    assert state.is_completed(), state.message
    record = env.ledger.get(env.targets.canary_service)
    assert record.weekly_phase_index == 1 and record.weekly_phase_started_at == MONDAY + WEEK + 3 * 24 * 3600, record
    started = next(t for t in record.history if t.kind == "phase" and t.comment.startswith("starting week 2"))
    assert "counted from the schedule" not in started.comment, started.comment


def test_a_late_scheduled_run_counts_from_its_start_a_phase_that_passed_after_its_scheduled_time(monkeypatch):
    """Week 1's last stage was inconclusive and waited for a person, who approved it on Tuesday: at
    Monday's cron week 2 could not start (week 1 had not passed). Monday's run, late, ran on Tuesday
    an hour after the approval: counted from Monday, week 2 was given a day it never had."""
    env = _week_one_passed(monkeypatch)
    service = env.targets.canary_service
    passed = env.ledger.get(service)
    approved_at = MONDAY + WEEK + 23 * 3600  # Tuesday 08:00: week 1's completion, as the approval recorded it
    assert passed.weekly_phase_passed and passed.history[-1].kind == "phase", passed.history[-1]
    env.ledger._rollouts[service][-1] = passed.model_copy(update={"history": passed.history[:-1] + (
        passed.history[-1].model_copy(update={"at": approved_at}),)})

    env.clock.t = MONDAY + WEEK + 24 * 3600  # Monday's run, a day late: an hour after the approval
    state = _run_of_the_schedule(MONDAY + WEEK)
    assert state.is_completed(), state.message
    record = env.ledger.get(env.targets.canary_service)
    assert record.weekly_phase_index == 1 and record.weekly_phase_started_at == MONDAY + WEEK + 24 * 3600, record
    started = next(t for t in record.history if t.kind == "phase" and t.comment.startswith("starting week 2"))
    assert "counted from the schedule" not in started.comment, started.comment


def test_a_run_more_than_a_week_late_counts_from_its_start():
    """Counted from its schedule, the phase would be due again at once and the next run would
    start the next phase the same day: it counts from its start instead."""
    now = MONDAY + WEEK + 8 * 24 * 3600
    assert weekly.counted_from_schedule(now, MONDAY + WEEK, MONDAY, **CALENDAR) is None
    assert weekly.counted_from_schedule(MONDAY + WEEK + 30, MONDAY + WEEK, MONDAY, **CALENDAR) is None  # on time
    assert weekly.counted_from_schedule(MONDAY + WEEK + 3600, MONDAY + WEEK, MONDAY, **CALENDAR) == MONDAY + WEEK
    # The phase was not due yet at the scheduled time (the current one began on a Tuesday).
    assert weekly.counted_from_schedule(MONDAY + WEEK + 2 * 24 * 3600, MONDAY + WEEK, MONDAY + 24 * 3600,
                                        **CALENDAR) is None
