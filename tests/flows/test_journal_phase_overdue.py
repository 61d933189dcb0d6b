"""A weekly phase that took longer than its calendar slot (here: its approval answered eight days
late) ended with a log line and a message saying the next phase "may start from" a day already
past, not that it was due now nor how to start it."""

from __future__ import annotations

import logging

from prefect import flow

from flows.progressive import run_progressive
from rollway.approvals import ApprovalAnswer
from tests.flows.test_progressive_fakes import env_with_ledger, full_spec
from tests.flows.test_weekly_schedule import MONDAY, WEEK, at

DAY = 24 * 3600


@flow
def late_answer(env, spec):
    def answer(pause, summary):
        env.clock.sleep(WEEK + DAY)  # nobody answered until the following Tuesday
        return ApprovalAnswer(action="approve", approver="dan", comment="back from leave")
    return run_progressive(env, spec, answer, owner="run-1", actor="alice", phased=True)


def test_a_phase_that_ends_after_the_next_one_fell_due_says_it_is_due_now(caplog):
    env = env_with_ledger()
    env.clock.t = at("UTC", *MONDAY)
    spec = full_spec()
    spec = spec.model_copy(update={"stages": (spec.stages[0].model_copy(update={"approval": True}),) + spec.stages[1:]})
    with caplog.at_level(logging.INFO):
        assert late_answer(env, spec).outcome == "holding"
    said = [r.getMessage() for r in caplog.records if "complete: holding at" in r.getMessage()]
    (subject, message), = [(s, m) for s, m in env.notifier.messages if s.startswith("Rollout phase complete")]
    for text in said + [message]:
        assert "week 2 has been due since Mon 2027-01-18 00:00 UTC: run advance_phase to start it now" in text, text
        assert "may start from" not in text, text
