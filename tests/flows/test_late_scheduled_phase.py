"""A weekly phase begun by a scheduled advance_phase run that started late.

The Prefect server (or the worker) was down on Monday: Monday's scheduled run ran on Tuesday
09:00 and started week 2 then. The phase counts from then, not from the time the run was
scheduled for: min_phase_seconds is the least time a phase runs at its weight, and counted from
the schedule a phase begun a day late could be ended a day short of it. The late run costs a week
unless schedule_slack_seconds covers the delay or a person starts the next phase early.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from prefect import get_client
from prefect.flow_engine import run_flow

from flows.progressive import advance_phase
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import fake_environment
from tests.flows.test_progressive_fakes import FakeLedger
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.test_weekly_schedule import IMAGE, WEEK, at, first_run, tick

MONDAY = at("UTC", 2027, 1, 11, 9, 0)


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


def _run_of_the_schedule(scheduled_for: float):
    """advance_phase as the weekly schedule runs it: a run the scheduler created for
    ``scheduled_for``, executed now (late)."""
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(advance_phase, parameters={})
    asyncio.run(_as_the_scheduler_made_it(run.id, scheduled_for))
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run.id)
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


def test_a_phase_a_scheduled_run_begins_a_day_late_still_runs_its_minimum(monkeypatch):
    env = _week_one_passed(monkeypatch)

    env.clock.t = MONDAY + WEEK + 24 * 3600  # Monday's run, a day late
    state = _run_of_the_schedule(MONDAY + WEEK)
    assert state.is_completed(), state.message
    record = env.ledger.get(env.targets.canary_service)
    assert record.weekly_phase_index == 1 and record.weekly_phase_started_at == MONDAY + WEEK + 24 * 3600, record

    env.clock.t = MONDAY + 2 * WEEK  # the next Monday: week 2 has run six of its seven days
    tick(env, "cron-3")
    assert env.ledger.get(env.targets.canary_service).weekly_phase_index == 1

    env.clock.t = MONDAY + 3 * WEEK  # the Monday after: seven days and more
    tick(env, "cron-4")
    assert env.ledger.get(env.targets.canary_service).weekly_phase_index == 2
