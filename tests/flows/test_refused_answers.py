"""An answer the run refuses at a pause (a skip ahead at a pause the judge could not decide, a
weight that is no later stage) is part of the record, on the real ledger (DynamoDB on the embedded
AWS) and the Prefect harness.

It was only in the run's log and the next form: nothing was written, so `rollway status` and the
rollout report's Approvals table never showed it, and an auditor could not see that someone had
tried to skip ahead. It is recorded beside the history, which it leaves as it was: the pause it
answered is still the one the rollout waits at.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from prefect import flow

from flows.approvals import prefect_approver
from flows.progressive import run_progressive
from rollway.approvals import ApprovalAnswer, pause_deadline, scripted
from rollway.aws.ledger import DynamoLedger
from rollway.cli import ops
from rollway.cli.ops import print_status
from rollway.ledger import utc, wall_utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import rollout_report, waiting_pause
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.fake_env import fake_environment
from tests.flows.moto_env import saved_blocks
from tests.flows.test_approvals import answer_when_paused
from tests.flows.test_progressive_fakes import progressive_on

IMAGE = "webordinary/edit-container:2.0.0"
SKIP_REFUSED = "next_weight (50%) applies only at an approval pause; this is an inconclusive pause"


def on_dynamodb(aws, **kwargs):
    """The fake cloud for the rollout's traffic, its ledger the real one on the embedded AWS."""
    env = fake_environment(**kwargs)
    env.ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    return env


def inconclusive_spec() -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 25, 50, 100)],
                       monitor_seconds=0)


def approvals_rows(record) -> list[str]:
    report = rollout_report(record)
    section = report.split("## Approvals", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| when")]


def answering_takes(env, approver, seconds: float = 30.0):
    """``approver`` whose every answer comes ``seconds`` later on the rollout's clock, as a person's
    does: the fake clock stands still otherwise, and an answer refused and the next one given at
    the very same time cannot be told apart in the record's order."""

    def answer(pause, summary):
        env.clock.sleep(seconds)
        return approver(pause, summary)

    return answer


@flow
def rollout_with_pauses(env, rollout: RolloutSpec):
    return run_progressive(env, rollout, answering_takes(env, prefect_approver(rollout.approvals, poll_interval=1)),
                           owner="run-1", phased=False)


class Died(BaseException):
    """The run's process dying while it waits at the pause asked again (nothing in the run catches it)."""


def test_a_refused_skip_ahead_is_recorded_and_the_accepted_answer_after_it_too(aws):
    env = on_dynamodb(aws, rps=0.01)  # too little traffic: the 5 % stage ends inconclusive
    answers = scripted(ApprovalAnswer(action="approve", approver="dana", next_weight=50, comment="in a hurry"),
                       ApprovalAnswer(action="approve", approver="erin", comment="accepting 5%"),
                       *[ApprovalAnswer(action="approve", approver="erin")] * 3)
    result = progressive_on(env, inconclusive_spec(), answering_takes(env, answers))
    assert result.outcome == "promoted", result.reason

    record = env.ledger.get(env.targets.canary_service)
    (refused,) = record.refused_answers
    assert (refused.actor, refused.action, refused.next_weight, refused.comment, refused.to_stage) == \
        ("dana", "approve", 50, "in a hurry", 0), refused
    assert refused.reason.startswith(SKIP_REFUSED), refused.reason
    assert refused.run, "the run that refused it is named, to find in the UI"
    # The history is as it was: one pause for the stage, answered by erin's approval next.
    kinds = [t.kind for t in record.history]
    first_pause = kinds.index("pause")
    assert kinds[first_pause + 1] == "approve" and record.history[first_pause + 1].actor == "erin", kinds
    assert "refused" not in kinds, kinds
    rows = approvals_rows(record)
    assert "| dana | **refused** approve (next_weight 50%): " + SKIP_REFUSED in rows[0], rows
    assert "| 5% | in a hurry |" in rows[0], rows
    assert "| erin | approve | 5% | accepting 5% |" in rows[1], rows
    timeline = rollout_report(record).split("## Every recorded transition", 1)[1]
    assert "| refused | dana |" in timeline, timeline


def test_a_run_dying_after_a_refusal_leaves_the_pause_open_and_a_resume_asks_it_again(aws, capsys):
    env = on_dynamodb(aws, rps=0.01)
    asked = []

    def refuses_then_dies(pause, summary):
        asked.append(pause)
        if len(asked) == 1:
            return ApprovalAnswer(action="approve", approver="dana", next_weight=50)
        raise Died()

    with pytest.raises(Died):
        progressive_on(env, inconclusive_spec(), refuses_then_dies)
    service = env.targets.canary_service
    record = env.ledger.get(service)
    pause = waiting_pause(record)
    assert pause is not None and record.history[-1] is pause and pause.to_stage == 0, record.history[-3:]
    assert record.phase is RolloutPhase.PROGRESSING and len(record.refused_answers) == 1
    assert len([t for t in record.history if t.kind == "pause"]) == 1, "asked again: no second pause entry"

    # `rollway status` says the pause is open and who was refused there, and why.
    blocks = saved_blocks(aws, "refused")
    capsys.readouterr()
    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "refused answer: dana answered approve (next_weight 50%) at " in said, said
    # Its time is the rollout clock's, as the history's: said, as the rows beside it are, or under
    # `rollway up`'s sped-up clock it read as a wall time days ahead.
    at = utc(record.refused_answers[0].at)
    assert f"(next_weight 50%) at {at} (rollout clock), refused:" in said, said
    assert f"refused: {SKIP_REFUSED}" in said and "the pause is still open" in said, said
    assert "refused dana" in said, said  # and among the history's rows
    assert "older refused answer" not in said, said  # none was dropped
    # The report's outcome line said "it timed out at <the time it was asked again>": the pause is
    # asked again after the refusal (its asking count includes it), and nothing timed out.
    assert record.open_pause is not None and record.open_pause.asked == 2, record.open_pause
    asked_again = pause_deadline(record.open_pause.question) - inconclusive_spec().approvals.timeout_seconds
    outcome = rollout_report(record).split("- **Outcome:** ", 1)[1].splitlines()[0]
    assert "timed out" not in outcome, outcome
    assert f"; an answer was refused (dana's), and it is asked again at {wall_utc(asked_again)}: " in outcome, outcome

    # The run taking the rollout over asks the same pause again (not a stage further), and goes on.
    resumed_asked = []

    def approves(pause, summary):
        resumed_asked.append(pause)
        return ApprovalAnswer(action="approve", approver="erin")

    resumed = progressive_on(env, inconclusive_spec(), approves, owner="run-2")
    assert resumed.outcome == "promoted", resumed.reason
    assert (resumed_asked[0].cause, resumed_asked[0].stage_index) == ("inconclusive", 0), resumed_asked[0]
    assert env.router.weights == Weights(stable=0, canary=100)
    assert len(env.ledger.get(service).refused_answers) == 1


def test_a_weight_that_is_no_stage_answered_in_the_ui_is_recorded_refused(aws):
    """Through Prefect's resume, as a person answers the form."""
    env = on_dynamodb(aws)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=25, bake_seconds=120, approval=True),
                                            Stage(weight=100, bake_seconds=120)],
                       approvals=Approvals(timeout_seconds=60, on_timeout="rollback"), monitor_seconds=0)
    thread = answer_when_paused([{"action": "approve", "approver": "dana", "next_weight": 7, "comment": "go"},
                                 {"action": "approve", "approver": "erin", "comment": "25 then"}])
    result = rollout_with_pauses(env, spec)
    thread.join(5)
    assert result.outcome == "promoted", result.reason
    record = env.ledger.get(env.targets.canary_service)
    (refused,) = record.refused_answers
    assert (refused.actor, refused.next_weight, refused.to_stage) == ("dana", 7, 1), refused
    assert "7" in refused.reason, refused.reason
    rows = approvals_rows(record)
    assert "| dana | **refused** approve (next_weight 7%): " in rows[0] and "| 25% | go |" in rows[0], rows
    assert "| erin | approve | 25% | 25 then |" in rows[1], rows


def test_a_refusal_given_after_the_lease_ran_out_takes_it_back_first(aws):
    """Nothing renews the lease while a run waits at a pause: the refusal's write takes it back, as
    an accepted answer's does, and the run goes on owning the rollout."""
    env = on_dynamodb(aws, rps=0.01)
    service = env.targets.canary_service
    held = []

    def answers(pause, summary):
        record = env.ledger.get(service)
        held.append((record.owner, record.lease_expires > time.time(), len(record.refused_answers)))
        if len(held) == 1:
            # The person answers an hour late: the run's lease lapsed while it waited.
            env.ledger.acquire(service, owner="run-1", now=env.clock.now(), lease_seconds=1,
                               wall=time.time() - 3600)
            return ApprovalAnswer(action="approve", approver="dana", next_weight=50)
        return ApprovalAnswer(action="approve", approver="erin")

    result = progressive_on(env, inconclusive_spec(), answers)
    assert result.outcome == "promoted", result.reason
    assert held[1] == ("run-1", True, 1), held  # asked again: refused on record, the lease this run's again


def test_a_refused_answer_past_the_bound_is_recorded_over_the_oldest_and_the_rollout_goes_on(monkeypatch, caplog,
                                                                                            capsys):
    """Refused answers are bounded (``REFUSED_KEPT``): one past it is recorded, the oldest dropped
    (the newest, refused at the pause asked now, is the one a resumed run and status read), and the
    run asks again and carries on as it would; the rollout is otherwise unaffected."""
    import logging

    from tests.flows.test_progressive_fakes import env_with_ledger

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 1)
    env = env_with_ledger(rps=0.01)
    skip = ApprovalAnswer(action="approve", approver="dana", next_weight=50, comment="in a hurry")
    again = ApprovalAnswer(action="approve", approver="erin", next_weight=50, comment="still in a hurry")
    answers = scripted(skip, again, *[ApprovalAnswer(action="approve", approver="erin")] * 4)
    with caplog.at_level(logging.WARNING):
        result = progressive_on(env, inconclusive_spec(), answering_takes(env, answers))
    assert result.outcome == "promoted", result.reason
    record = env.ledger.get(env.targets.canary_service)
    (refused,) = record.refused_answers
    assert (refused.actor, refused.comment) == ("erin", "still in a hurry"), refused
    assert "is not recorded in the ledger" not in caplog.text, caplog.text
    # Dropped, dana's answer was gone without a word: status and the report listed one refusal as
    # if it were all there had been. The record counts those dropped, and both say so.
    assert record.refused_dropped == 1, record.refused_dropped
    print_status(SimpleNamespace(name=record.service, targets=env.targets), record, record.weights, None, limit=1)
    said = " ".join(capsys.readouterr().out.split())
    assert "1 older refused answer was dropped" in said, said
    report = " ".join(rollout_report(record).split())
    assert "1 older refused answer was dropped" in report, report
