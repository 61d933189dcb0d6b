"""`rollway promote` / `hold` whose answer would reach the run's next pause, not the one it was read at.

Between promote's read of the paused run and its resume (a look again at a silent run waits 43 s,
the flow's name and the ledger are read), another person answered in the UI and the run went on
to its next pause. The resume only asked whether the run was paused, so the answer landed on a
pause its giver had never seen: "approved" at the stage after the one they came to approve.
"""

from __future__ import annotations

import threading

from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client

from flows.approvals import prefect_approver
from rollway.cli import ops
from rollway.decide import Pause
from rollway.spec import Approvals
from tests.flows.test_answer_not_taken import paused_run
from tests.flows.test_promote_race import commands_see_a_rollout_owned_by

FIRST, SECOND = "approval needed before 50%", "approval needed before 100%"


@flow(name="approval-asked-twice")
def asks_twice() -> list[str]:
    approver = prefect_approver(Approvals(timeout_seconds=120, on_timeout="rollback"), poll_interval=1)
    answers = []
    for index, question in enumerate((FIRST, SECOND), start=1):
        answer = approver(Pause(reason=question, cause="approval", stage_index=index), "summary")
        answers.append(f"{answer.action} by {answer.approver}")
    return answers


def paused_at(question: str):
    """The run of ``asks_twice`` once it is paused at ``question`` with its form stored."""
    return paused_run("approval-asked-twice", question)


def test_an_answer_is_not_given_to_the_pause_after_the_one_it_was_read_at(monkeypatch, capsys):
    outcome: list[list[str]] = []
    thread = threading.Thread(target=lambda: outcome.append(asks_twice()), daemon=True)
    thread.start()
    run = paused_at(FIRST)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    original = SyncPrefectClient.read_flow_run
    answered: list[bool] = []

    def ann_answers_and_the_run_asks_again(self, flow_run_id):
        # After promote found the run paused at the first question: ann approves it in the UI, and
        # the run goes on to its second pause before bob's answer is sent.
        if not answered and flow_run_id == run.id and threading.current_thread() is bob:
            answered.append(True)
            ops.resume(run.id, {"action": "approve", "approver": "ann", "comment": "dashboards look fine"},
                       paused=run.state)
            paused_at(SECOND)
        return original(self, flow_run_id)

    bob = threading.current_thread()  # the run's own thread reads its state too
    monkeypatch.setattr(ops, "find_paused_run", lambda *a, **k: run)
    monkeypatch.setattr(SyncPrefectClient, "read_flow_run", ann_answers_and_the_run_asks_again)
    code = ops.promote(approver="bob", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    monkeypatch.setattr(SyncPrefectClient, "read_flow_run", original)
    assert answered, "the race was not staged"
    with get_client(sync_client=True) as client:
        now = client.read_flow_run(run.id).state
    assert now.is_paused() and SECOND in now.message, f"bob's approval was given to the second pause: {now}"
    said = " ".join(err.split())
    assert code == 1 and "approved by bob" not in out, out
    assert "was answered first by ann: approve (dashboards look fine)" in said, err
    assert "this answer was not taken" in said and "paused at a later pause, which asks again" in said, err
    ops.resume(run.id, {"action": "reject", "approver": "test", "comment": ""}, paused=now)  # let the run end
    thread.join(30)
    assert outcome == [["approve by ann", "reject by test"]]
