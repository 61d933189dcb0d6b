"""`rollway promote` / `abort` whose answer reaches a pause that was just answered or timed out.

The command was told only "Cannot resume a flow run that is not paused": the second of two
people answering at once could not tell whether the rollout went on (and on whose word) or
rolls back, nor could one whose answer came as the pause timed out.
"""

from __future__ import annotations

import threading
import time
from uuid import uuid4

import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from flows.approvals import prefect_approver
from rollway.approvals import waiting_prefix
from rollway.cli import ops
from rollway.decide import Pause
from rollway.fakes import FakeLedger, FakeRouter
from rollway.ledger import RolloutRecord, Transition
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import Approvals, RolloutSpec, Stage
from rollway.targets import Targets
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

    def run() -> None:
        # What the run raised is kept on the thread (``thread.raised``), for the tests that stop it
        # on purpose, instead of surfacing as an unhandled thread exception in pytest's output.
        try:
            outcome.append(waits_for_an_answer.with_options(flow_run_name=name)(timeout))
        except Exception as err:  # noqa: BLE001 - kept for the test to assert on
            thread.raised = err

    # Named for this call alone: the worker's harness keeps every earlier test's runs of this flow,
    # and one an earlier test left paused (it failed, or its thread outlived its join) was picked
    # up as this test's run, answered and judged in its stead.
    name = f"answered-elsewhere-{uuid4().hex}"
    thread = threading.Thread(target=run, daemon=True)
    thread.raised = None
    thread.start()
    return thread, outcome, paused_run("approval-answered-elsewhere", QUESTION, run_name=name)


def paused_run(flow_name: str, question: str, timeout: float = 90, run_name: str | None = None):
    """The run of flow ``flow_name`` (named ``run_name``, when given) once it is paused asking
    ``question``, with its form stored and its first saying that it still waits made."""
    # The worker's harness holds every earlier test's runs: an unfiltered read returns only the
    # API's first page of them, in id order, which missed this run once there were enough. And
    # the first pause on a loaded 2-core machine can take longer than half a minute.
    named = FlowRunFilterName(any_=[run_name]) if run_name is not None else None
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = [r for r in client.read_flow_runs(
                        flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                        flow_run_filter=FlowRunFilter(name=named, state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
                    if r.state and r.state.message and question in r.state.message]
            if runs and form_stored(client, runs[0]) and says_it_waits(client, runs[0]):
                return runs[0]
            time.sleep(0.2)
    raise TimeoutError(f"the run never paused at {question!r} with its form stored, saying it waits")


def form_stored(client: SyncPrefectClient, run) -> bool:
    """Whether the paused ``run``'s form is stored (a moment after the pause)."""
    keyset = run.state.state_details.run_input_keyset
    if not keyset:
        return False
    try:
        client.read_flow_run_input(run.id, keyset["schema"])
    except Exception:  # noqa: BLE001 - not stored yet
        return False
    return True


def says_it_waits(client: SyncPrefectClient, run) -> bool:
    """Whether the paused ``run`` has said that its process waits for the answer (``_Waiting``),
    a moment after its form is stored. Until then the commands judge nothing of it (a run paused a
    moment ago): a test of a run taken for dead that looked before it said so saw it answered."""
    return bool(client.filter_flow_run_input(run.id, waiting_prefix(run.state.state_details.pause_key), 1, set()))


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
    assert "nothing was rolled back by this command" in err and "`rollway abort` again" in " ".join(err.split()), err
    # Said on bob's terminal alone, the report read after the incident showed nobody had tried to reject.
    (refused,) = ops.connect(None, None).ledger.get(Targets().canary_service).refused_answers
    assert (refused.actor, refused.action, refused.comment, refused.run) == ("bob", "reject", "error budget",
                                                                             f"{run.name} ({run.id})")
    assert refused.reason.startswith("given with `rollway abort`, not taken: flow run "), refused.reason
    assert "was answered first by ann: approve (dashboards look fine)" in refused.reason, refused.reason
    assert refused.at > 1.0  # after the pause, on the run's clock: listed among its entries, not before them


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
    # The rollout rolled back on the timeout: its report now shows alice tried to approve, and when.
    (refused,) = ops.connect(None, None).ledger.get(Targets().canary_service).refused_answers
    assert (refused.actor, refused.action) == ("alice", "approve"), refused
    assert "pause timed out at" in refused.reason and "before this answer" in refused.reason, refused.reason


def rollout_answered(monkeypatch, phase: RolloutPhase, answer: Transition) -> None:
    """The commands see a rollout whose last pause got ``answer``, and no paused run."""
    targets = Targets()
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=w) for w in (5, 50, 100)])
    ledger = FakeLedger()
    ledger.create(RolloutRecord(
        service=targets.canary_service, rollout_id="20261129T063000Z-1a2b3c4d", image=spec.image,
        spec_json=spec.model_dump_json(), phase=phase, stage_index=1, weights=Weights.canary_at(50),
        history=(Transition(at=1_799_999_000.0, kind="start", actor="alice"), answer),
    ), owner=f"flow-run/{uuid4()}", now=1_799_999_000.0, lease_seconds=600)
    # A block name of its own: the session's other paused runs are not this service's.
    service = ops.Service(targets=targets, targets_block=f"answered-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=ledger, router=FakeRouter(Weights.canary_at(50)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)


@pytest.mark.parametrize("phase,answer,said", [
    (RolloutPhase.PROGRESSING, Transition(at=1_800_000_000.0, kind="approve", actor="ann",
                                          comment="approve: dashboards look fine"),
     "is progressing at 50/50 (stable/canary); its last pause was answered by ann at 2027-01-15 08:00:00 UTC "
     "(rollout clock): approve: dashboards look fine"),
    (RolloutPhase.ROLLED_BACK, Transition(at=1_800_000_000.0, kind="timeout", actor="timeout",
                                          comment="reject: no answer within 3600 s"),
     "is rolled_back at 50/50 (stable/canary); its last pause went unanswered and timed out at "
     "2027-01-15 08:00:00 UTC (rollout clock) (reject: no answer within 3600 s)"),
], ids=["answered", "timed-out"])
def test_promote_with_nothing_paused_says_how_the_last_pause_ended(monkeypatch, capsys, phase, answer, said):
    """Bob comes to answer after ann did, or after the pause timed out: he was told only where the
    rollout stands, not that it had been answered (by whom, how) or had timed out."""
    rollout_answered(monkeypatch, phase, answer)
    code = ops.promote(approver="bob", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "no paused rollout run" in err and said in err, err


def server_aborts(times: int | None):
    """``SyncPrefectClient.resume_flow_run`` as a server whose state validation erred answers it
    (ABORT, the run left paused) for its first ``times`` calls (every call: None)."""
    from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus, StateAbortDetails

    original, calls = SyncPrefectClient.resume_flow_run, []

    def resume(self, flow_run_id, run_input=None):
        calls.append(run_input)
        if times is None or len(calls) <= times:
            return OrchestrationResult(state=None, status=SetStateStatus.ABORT, details=StateAbortDetails(
                reason="Error validating state: OperationalError('database is locked')"))
        return original(self, flow_run_id, run_input=run_input)

    return resume, calls


def test_an_answer_the_server_failed_to_take_is_sent_again_and_taken(monkeypatch, capsys):
    """The server aborted the resume (its state validation erred under load), the run still at its
    pause: the command said the run "cannot be resumed: it is Paused now, not paused", and the
    answer was lost unless someone sent it again."""
    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    resume, calls = server_aborts(1)
    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", resume)
    code = ops.promote(approver="alice", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(30)
    assert code == 0 and outcome == ["approve by alice"], (code, outcome, out, err)
    assert len(calls) == 2, calls


def test_an_answer_the_server_never_takes_says_the_run_is_still_paused_and_to_answer_again(monkeypatch):
    thread, outcome, run = paused_with_its_form(timeout=120)
    resume, calls = server_aborts(None)
    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", resume)
    with pytest.raises(ops.ResumeRefused) as refused:
        ops.resume(run.id, {"action": "approve", "approver": "alice", "comment": ""}, paused=run.state,
                   patience_seconds=1)
    said = str(refused.value)
    assert said.startswith("the Prefect API did not take this answer (Error validating state: "), said
    assert f"flow run {run.name} ({run.id}) is still paused at this pause, unanswered: answer again" in said, said
    assert "not paused" not in said and len(calls) >= 2, (said, calls)
    monkeypatch.undo()
    ops.resume(run.id, {"action": "reject", "approver": "alice", "comment": ""}, paused=run.state)
    thread.join(30)
    assert outcome == ["reject by alice"], outcome
