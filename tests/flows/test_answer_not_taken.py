"""`rollway promote` / `abort` whose answer reaches a pause that was just answered or timed out.

The command was told only "Cannot resume a flow run that is not paused": the second of two
people answering at once could not tell whether the rollout went on (and on whose word) or
rolls back, nor could one whose answer came as the pause timed out.
"""

from __future__ import annotations

import threading
import time

from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client

from flows.approvals import prefect_approver
from rollway.cli import ops
from rollway.decide import Pause
from rollway.spec import Approvals
from tests.flows.test_promote_race import commands_see_a_rollout_owned_by

QUESTION = "approval needed before 50%"


@flow(name="approval-answered-elsewhere")
def waits_for_an_answer(timeout: float) -> str:
    approver = prefect_approver(Approvals(timeout_seconds=timeout, on_timeout="rollback"), poll_interval=1)
    answer = approver(Pause(reason=QUESTION, cause="approval", stage_index=1), "summary")
    return f"{answer.action} by {answer.approver}"


def paused_with_its_form(timeout: float):
    """Start a run that pauses for an answer; returns the thread and the run, its form stored."""
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(waits_for_an_answer(timeout)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = [r for r in client.read_flow_runs() if r.state and r.state.is_paused()
                    and r.state.message and QUESTION in r.state.message]
            keyset = runs[0].state.state_details.run_input_keyset if runs else None
            if keyset:
                try:
                    client.read_flow_run_input(runs[0].id, keyset["schema"])
                    return thread, outcome, runs[0]
                except Exception:  # noqa: BLE001 - stored a moment after the pause
                    pass
            time.sleep(0.2)
    raise TimeoutError("the run never paused")


def test_the_second_of_two_answers_says_who_answered_first_and_how(monkeypatch, capsys):
    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    original = SyncPrefectClient.resume_flow_run

    def ann_answers_first_in_the_ui(self, flow_run_id, run_input=None):
        # Ann's answer from the Resume form lands between bob's read of the paused run and his resume.
        assert original(self, flow_run_id, run_input={"action": "approve", "approver": "ann",
                                                        "comment": "dashboards look fine"}).status.value == "ACCEPT"
        return original(self, flow_run_id, run_input=run_input)

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", ann_answers_first_in_the_ui)
    code = ops.abort(approver="bob", reason="error budget", flow_run=None, wait_seconds=0, targets_block=None,
                     credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(30)
    assert outcome == ["approve by ann"]
    assert code == 1 and "rejected by bob" not in out, out
    assert "was answered first by ann: approve (dashboards look fine)" in " ".join(err.split()), err
    assert "this answer was not taken" in err, err


def test_an_answer_after_the_pause_timed_out_says_so_and_what_the_run_does(monkeypatch, capsys):
    thread, outcome, run = paused_with_its_form(timeout=3)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    original = SyncPrefectClient.resume_flow_run

    def arrives_after_the_timeout(self, flow_run_id, run_input=None):
        thread.join(30)  # the run timed out and took itself out of its pause meanwhile
        return original(self, flow_run_id, run_input=run_input)

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", arrives_after_the_timeout)
    code = ops.promote(approver="alice", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    assert outcome == ["reject by timeout"]
    assert code == 1 and "approved by alice" not in out, out
    said = " ".join(err.split())
    assert "pause timed out at" in said and "before this answer" in said, err
    assert "the rollout rolls back" in said and "this answer was not taken" in said, err
