"""What the ledger, `rollway status` and the rollout report say of a pause asked again.

A pause whose policy holds (``approvals.on_timeout: hold``) is asked again after each timeout,
with no history entry for it (weeks of them would outgrow the ledger item). Its entry kept the
first question's deadline, and status and the report went on showing it, long past, while the
pause still waited with a new one. Run as `rollway up` runs it: the rollout clock 60 times
faster than the wall clock its deadlines are on.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from prefect import flow
from rich.console import Console

from flows.progressive import run_progressive
from rollway.approvals import ApprovalAnswer
from rollway.cli import ops
from rollway.ledger import utc
from rollway.reports import rollout_report
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.test_progressive_fakes import IMAGE, env_with_ledger

SPEED = 60.0
TIMEOUT = 600
DEADLINE = re.compile(r"unanswered by (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC) \(wall clock\)")


def sped_up_env():
    """Fakes on `rollway up`'s clock: the rollout clock runs SPEED times the wall clock."""
    env = env_with_ledger()
    start = env.clock.now()
    env.wall = lambda: start + (env.clock.now() - start) / SPEED
    return env


@flow
def rollout_on(env, spec, approver):
    return run_progressive(env, spec, approver, owner="run-1", actor="alice", phased=False)


def test_a_pause_asked_again_after_a_timeout_shows_the_deadline_of_the_question_now_open(monkeypatch, capsys):
    monkeypatch.setattr(ops, "console", Console(highlight=False, soft_wrap=True, width=1000))  # a row a line
    env = sped_up_env()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)],
                       approvals=Approvals(timeout_seconds=TIMEOUT, on_timeout="hold"), monitor_seconds=0)
    seen = []

    def nobody_answers_twice(pause, summary):
        # What a person reads while the run waits at this asking, and the deadline it has.
        record = env.ledger.get(env.targets.canary_service)
        ops.print_status(SimpleNamespace(name=record.service, targets=env.targets), record, record.weights, None,
                         limit=10)
        seen.append((env.wall(), capsys.readouterr().out, rollout_report(record)))
        env.clock.sleep(TIMEOUT * SPEED)  # the pause's wall seconds, on the rollout clock
        if len(seen) < 3:
            return ApprovalAnswer(action="hold", approver="timeout", timed_out=True,
                                  comment=f"no answer within {TIMEOUT} s")
        return ApprovalAnswer(action="approve", approver="alice", comment="back")

    assert rollout_on(env, spec, nobody_answers_twice).outcome == "promoted"
    assert len(seen) == 3
    first_asked = seen[0][0]
    for asked, status, report in seen:
        # Every deadline either shows is the one of the question now open: none has passed.
        due = utc(asked + TIMEOUT)
        assert set(DEADLINE.findall(status)) == {due}, (due, status)
        outcome = next(line for line in report.splitlines() if line.startswith("- **Outcome:**"))
        assert DEADLINE.findall(outcome) == [due], (due, outcome)
        # The timeline's row of the pause too (it read the first asking's deadline, long past).
        timeline = report.split("## Every recorded transition")[1]
        (pause,) = [line for line in timeline.splitlines() if line.split(" | ")[1:2] == ["pause"]]
        assert DEADLINE.findall(pause) == [due], (due, pause)
        (row,) = [line for line in report.splitlines() if "**waiting for an answer**" in line]
        assert DEADLINE.findall(row) == [due], (due, row)
        # Since when it waits, on the wall clock its deadline is on (the rollout clock ran hours ahead).
        assert row.startswith(f"| since {utc(first_asked)} (wall clock) | - |"), row
