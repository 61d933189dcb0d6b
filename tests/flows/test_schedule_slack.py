"""The schedule's slack on ``min_phase_seconds`` is the spec's ``schedule_slack_seconds``.

It was a constant hour: a team whose worker may start the Monday run later than that (or whose
phases start by hand a little after the cron) could not widen it, and one that wants the minimum
counted exactly could not narrow it. A bad value refuses the spec before the run's body starts.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from prefect import flow

from flows.progressive import advance, progressive_rollout, run_progressive
from rollway.approvals import auto_approve
from tests.flows.test_progressive_fakes import env_with_ledger, full_spec, shifts
from tests.flows.test_refusals import NEWER, assert_left_alone, week_one_holding_at_5

H = 3600
D = 24 * H


def _utc(*parts) -> float:
    return dt.datetime(*parts, tzinfo=dt.timezone.utc).timestamp()


@flow
def week_1(env, spec):
    return run_progressive(env, spec, auto_approve("alice"), owner="run-1", actor="alice", phased=True)


@flow
def cron(env, owner):
    return advance(env, auto_approve("carol"), owner=owner)


def _week_2_started_at_the_cron(started: float, cron_at: float, **spec_fields) -> tuple[bool, list[str]]:
    """Week 1 started at ``started`` with a 7-day minimum; whether the cron at ``cron_at`` starts
    week 2, and what it logged."""
    env = env_with_ledger()
    spec = full_spec().model_copy(update={"min_phase_seconds": 7 * D, **spec_fields})
    env.clock.t = started
    assert week_1(env, spec).outcome == "holding"
    env.clock.t = cron_at
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger().addHandler(handler)
    try:
        cron(env, "cron-2")
    finally:
        logging.getLogger().removeHandler(handler)
    started_week_2 = env.ledger.get(env.targets.canary_service).weekly_phase_index == 1
    assert started_week_2 == (shifts(env) == [5, 25, 50])
    return started_week_2, [r.getMessage() for r in records]


def test_a_wider_slack_ends_a_phase_started_by_hand_late_at_the_next_weeks_cron():
    """Week 1 was started by hand at 10:30 on a Monday, an hour and a half after the 09:00 cron.
    With the default hour of slack the next Monday's cron leaves it for another week; a spec that
    gives two hours lets that cron start week 2."""
    started, cron_at = _utc(2027, 1, 11, 10, 30), _utc(2027, 1, 18, 9, 0)
    held, said = _week_2_started_at_the_cron(started, cron_at)
    assert not held and any("less 1 h of schedule slack" in m for m in said), said
    advanced, _ = _week_2_started_at_the_cron(started, cron_at, schedule_slack_seconds=2 * H)
    assert advanced


def test_no_slack_counts_the_minimum_exactly():
    """The cron run that checks started 3 s sooner after its cron time than the one that started
    week 1: the default slack covers it; none does not, and the log says so."""
    started, cron_at = _utc(2027, 1, 11, 9, 0, 5), _utc(2027, 1, 18, 9, 0, 2)
    advanced, _ = _week_2_started_at_the_cron(started, cron_at)
    assert advanced
    held, said = _week_2_started_at_the_cron(started, cron_at, schedule_slack_seconds=0)
    assert not held and any("less 0 h of schedule slack" in m for m in said), said


@pytest.mark.parametrize("bad", [-1, "an hour", float("inf"), 3 * D])
def test_a_run_given_a_bad_schedule_slack_is_refused_before_its_body(monkeypatch, bad):
    """3 days: as long as the default minimum, which would then count for nothing."""
    env = week_one_holding_at_5(monkeypatch)
    state = progressive_rollout(spec={"image": NEWER, "schedule_slack_seconds": bad}, return_state=True)
    assert state.is_failed() and "Validation of flow parameters failed" in (state.message or ""), state.message
    assert "schedule_slack_seconds" in state.message
    assert_left_alone(env)
