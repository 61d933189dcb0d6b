"""A weekly phase that reached its last weight in a later calendar week than it started (here: its
approval answered eight days late) runs at that weight until a new week begins. Counted from the
phase's start alone, it ended "due since" a day already past, and the schedule's next run moved
the traffic on after minutes at the phase's weight; a run resuming the rollout keeps when it got
there, recorded in the ledger.
"""

from __future__ import annotations

import logging

from prefect import flow

from flows.progressive import advance, run_progressive
from rollway.approvals import ApprovalAnswer, auto_approve
from tests.flows.test_progressive_fakes import env_with_ledger, full_spec, shifts
from tests.flows.test_weekly_schedule import MONDAY, WEEK, at

DAY = 24 * 3600


@flow
def late_answer(env, spec):
    def answer(pause, summary):
        env.clock.sleep(WEEK + DAY)  # nobody answered until the following Tuesday
        return ApprovalAnswer(action="approve", approver="dan", comment="back from leave")
    return run_progressive(env, spec, answer, owner="run-1", actor="alice", phased=True)


@flow
def tick(env, owner):
    return advance(env, auto_approve("carol"), owner=owner)


def test_a_phase_that_reaches_its_weight_a_week_late_runs_at_it_into_the_next_week(caplog):
    env = env_with_ledger()
    env.clock.t = at("UTC", *MONDAY)
    spec = full_spec()
    spec = spec.model_copy(update={"stages": (spec.stages[0].model_copy(update={"approval": True}),) + spec.stages[1:]})
    with caplog.at_level(logging.INFO):
        assert late_answer(env, spec).outcome == "holding"
    said = [r.getMessage() for r in caplog.records if "complete: holding at" in r.getMessage()]
    (subject, message), = [(s, m) for s, m in env.notifier.messages if s.startswith("Rollout phase complete")]
    # 5 % from Tuesday 2027-01-19 09:00, a week after the phase began: at it until the next week begins.
    for text in said + [message]:
        assert "week 2 may start from Mon 2027-01-25 00:00" in text, text
        assert "has been due" not in text, text
    # A run started at once (by hand, or the schedule's) leaves week 1 at its weight...
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert tick(env, "cron-1") is None
    assert shifts(env) == [5]
    assert any("the phase reached its last weight this calendar week" in r.getMessage()
               and "week 2 may start from Mon 2027-01-25"
               in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    # ...and the next Monday's starts week 2.
    env.clock.t = at("UTC", *MONDAY) + 2 * WEEK
    tick(env, "cron-2")
    assert shifts(env)[:2] == [5, 25]
