"""A Prefect server that fails to take the run's own state change: it aborts it, its state
validation having erred (its SQLite busy for a moment under load), the run left where it was.

Taken for a refusal, a busy moment as the run paused failed the run, and its failure hook rolled
back a rollout nobody had answered; leaving a pause raised Prefect's Abort out of the run. Such an
abort is now proposed again, a few times; one after which the run is elsewhere (cancelled) is
still the server's refusal.
"""

from __future__ import annotations

import logging
import time

import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus, StateAbortDetails
from prefect.exceptions import Abort
from prefect.states import Cancelled, Cancelling, Paused, Running

import flows.approvals
from flows.approvals import (ApprovalInput, CancelledWhilePaused, PauseInterrupted, _back_to_running, _pause,
                             prefect_approver, propose_state)
from rollway.decide import Pause
from rollway.spec import Approvals
from tests.flows.test_approvals import bare, paused_run
from tests.flows.test_pause_outage import answered_by_dana, pauses_once

BUSY = "Error validating state: OperationalError('database is locked')"


def server_fails_to_take(monkeypatch, kind: StateType, times: int | None, meanwhile=None) -> list[int]:
    """``SyncPrefectClient.set_flow_run_state`` as a server whose state validation erred answers a
    proposal of ``kind`` (ABORT, nothing written) for its first ``times`` calls (every call: None);
    ``meanwhile(client, run_id)`` is called before each such answer. Returns the calls of ``kind``."""
    original, calls = SyncPrefectClient.set_flow_run_state, []

    def set_state(self, flow_run_id, state, force=False):
        if state.type is not kind:
            return original(self, flow_run_id, state, force=force)
        calls.append(1)
        if times is None or len(calls) <= times:
            if meanwhile is not None:
                meanwhile(self, flow_run_id)
            return OrchestrationResult(state=None, status=SetStateStatus.ABORT,
                                       details=StateAbortDetails(reason=BUSY))
        return original(self, flow_run_id, state, force=force)

    monkeypatch.setattr(SyncPrefectClient, "set_flow_run_state", set_state)
    return calls


def cancelled_meanwhile(client, run_id, original=SyncPrefectClient.set_flow_run_state) -> None:
    """A person cancels the run, through the server's own ``set_flow_run_state`` (not one patched)."""
    original(client, run_id, Cancelling(message="cancelled from the UI"))


def reads_of_the_run(monkeypatch) -> list[int]:
    """Counts ``SyncPrefectClient.read_flow_run``: the run's state is read once after an abort, by
    the proposal, and its callers act on that read instead of making their own."""
    original, reads = SyncPrefectClient.read_flow_run, []
    monkeypatch.setattr(SyncPrefectClient, "read_flow_run",
                        lambda self, *args, **kwargs: reads.append(1) or original(self, *args, **kwargs))
    return reads


def test_a_pause_the_server_failed_to_take_is_made_on_the_next_try_and_answered(monkeypatch, caplog):
    calls = server_fails_to_take(monkeypatch, StateType.PAUSED, times=1)
    with caplog.at_level(logging.WARNING):
        _thread, outcome = answered_by_dana()
    assert outcome == ["approve by dana: fine"], outcome
    assert len(calls) == 2, calls
    said = [r.getMessage() for r in caplog.records if "failed to take" in r.getMessage()]
    assert said == [f"the Prefect server failed to take the run's Paused ({BUSY}), the run still Running: proposing "
                    f"it again, up to {flows.approvals.ABORTED_TRIES - 1} more times"], said


def test_a_pause_the_server_never_takes_fails_the_run_saying_it_could_not_pause(monkeypatch):
    monkeypatch.setattr(flows.approvals, "ABORTED_FIRST_WAIT_SECONDS", 0.01)
    calls = server_fails_to_take(monkeypatch, StateType.PAUSED, times=None)
    with pytest.raises(RuntimeError) as failed:
        pauses_once()
    assert str(failed.value) == (
        f"the run could not pause for an approval: the Prefect server failed to take the run's Paused "
        f"{flows.approvals.ABORTED_TRIES} times in a row, the run still Running each time ({BUSY})"), failed.value
    assert len(calls) == flows.approvals.ABORTED_TRIES, calls


def test_leaving_a_pause_the_server_failed_to_take_is_proposed_again():
    """Running, proposed to leave a timed-out pause (or one the canary's judge ended): Prefect's
    Abort went out of the run, which stayed Paused."""
    with get_client(sync_client=True) as client:
        run_id, paused = paused_run(client, timeout_seconds=60)
        with pytest.MonkeyPatch.context() as monkeypatch:
            calls = server_fails_to_take(monkeypatch, StateType.RUNNING, times=1)
            _back_to_running(client, run_id, paused)
        assert client.read_flow_run(run_id).state.is_running()
        assert len(calls) == 2, calls


@pytest.mark.parametrize("meanwhile", ["resumed", "cancelled"])
def test_leaving_a_pause_as_a_person_answers_or_cancels_it_reads_where_the_run_is_now(meanwhile):
    """The run's Running, leaving a timed-out pause, is aborted at the moment a person's resume (or
    cancel) is written, the likeliest writer to have had the server's database busy: Prefect's Abort
    went out of the run, which stayed Running on the person's answer (or Cancelling) with nothing to
    run it. The run reads where it is instead: Running, it goes on to read the answer; Cancelling,
    it stops as a run cancelled while it waited."""
    original_resume, original_set = SyncPrefectClient.resume_flow_run, SyncPrefectClient.set_flow_run_state

    def a_person_acts(client, run_id):
        if meanwhile == "resumed":
            original_resume(client, run_id)
        else:
            original_set(client, run_id, Cancelling(message="cancelled from the UI"))

    with get_client(sync_client=True) as client:
        run_id, paused = paused_run(client, timeout_seconds=60)
        with pytest.MonkeyPatch.context() as monkeypatch:
            calls = server_fails_to_take(monkeypatch, StateType.RUNNING, times=1, meanwhile=a_person_acts)
            reads = reads_of_the_run(monkeypatch)
            if meanwhile == "resumed":
                _back_to_running(client, run_id, paused)
            else:
                with pytest.raises(CancelledWhilePaused, match="cancelled while it waited for an answer"):
                    _back_to_running(client, run_id, paused)
        now = client.read_flow_run(run_id).state
    assert (now.is_running() if meanwhile == "resumed" else now.is_cancelling()), now
    assert calls == [1], calls
    assert len(reads) == 2, reads  # before the proposal, and after its abort


def test_a_cancelled_runs_abort_is_the_servers_refusal_and_not_proposed_again(monkeypatch):
    """A run already Cancelled cannot pause: the server aborts, and asking again changes nothing."""
    original, calls = SyncPrefectClient.set_flow_run_state, []
    monkeypatch.setattr(SyncPrefectClient, "set_flow_run_state",
                        lambda self, *args, **kwargs: calls.append(1) or original(self, *args, **kwargs))
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(bare, state=Running())
        original(client, run.id, Cancelled(message="cancelled from the UI"))
        with pytest.raises(Abort) as aborted:
            propose_state(client, Paused(timeout_seconds=60, pause_key="k"), run.id)
    assert not isinstance(aborted.value, flows.approvals.NotTaken)
    assert "terminal state CANCELLED" in str(aborted.value) and calls == [1], (aborted.value, calls)


def test_an_abort_as_a_person_cancels_is_not_proposed_again(monkeypatch):
    """The server failed to take the pause while a person cancelled the run: the run is no longer
    where it was, and the proposal is not made again over the cancellation."""
    calls = server_fails_to_take(monkeypatch, StateType.PAUSED, times=None, meanwhile=cancelled_meanwhile)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(bare, state=Running())
        with pytest.raises(Abort) as aborted:
            propose_state(client, Paused(timeout_seconds=60, pause_key="k"), run.id)
        assert client.read_flow_run(run.id).state.is_cancelling()
    assert str(aborted.value) == BUSY and calls == [1], (aborted.value, calls)


def test_a_pause_aborted_as_a_person_cancels_reads_the_run_once_after_the_abort(monkeypatch):
    """The pause, aborted as a person cancels the run, looks whether an earlier try of it landed on
    the state its proposal read after the abort, and stops the run as cancelled: refused, it failed
    the run (its failure hook rolled back, as for any failure), though the person had cancelled it."""
    server_fails_to_take(monkeypatch, StateType.PAUSED, times=None, meanwhile=cancelled_meanwhile)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(bare, state=Running())
        reads = reads_of_the_run(monkeypatch)
        with pytest.raises(CancelledWhilePaused) as stopped:
            _pause(client, run.id, ApprovalInput, time.monotonic() + 60, "approve?", lambda call: call(), "k")
    assert str(stopped.value) == "the run was cancelled before it began to wait for an answer (cancelled from the UI)"
    assert len(reads) == 2, reads  # by the proposal after its abort, and for a pause expired meanwhile


@flow(name="cancelled-before-its-pause")
def cancelled_then_paused(cancel: str) -> str:
    """Cancelled (``cancel``: Cancelling or Cancelled, as a person or a runner sets it) just before
    it pauses once."""
    from prefect.context import FlowRunContext

    run_id = FlowRunContext.get().flow_run.id
    with get_client(sync_client=True) as client:
        state = (Cancelling if cancel == "Cancelling" else Cancelled)(message="cancelled from the UI")
        client.set_flow_run_state(run_id, state, force=True)
    approver = prefect_approver(Approvals(timeout_seconds=60, on_timeout="rollback"), poll_interval=1)
    answer = approver(Pause(reason="approval needed before 25%", cause="approval", stage_index=1), "summary")
    return answer.action


@pytest.mark.parametrize("cancel", ["Cancelling", "Cancelled"])
def test_a_run_cancelled_before_it_pauses_stops_as_cancelled(cancel):
    """The server refuses to pause a cancelled run: its abort for a Cancelled one (a terminal
    state) was taken for a refusal to pause, and the run failed ("the Prefect API refused to pause
    the run"), as if the API had failed, rather than stopping as the cancellation it was."""
    with pytest.raises(CancelledWhilePaused) as stopped:
        cancelled_then_paused(cancel)
    assert str(stopped.value) == "the run was cancelled before it began to wait for an answer (cancelled from the UI)"


def test_a_run_cancelled_while_its_pause_could_not_be_made_is_not_said_to_have_waited():
    """The canary's look ended a pause the run was still trying to make (the Prefect API away), and
    no try of it had landed, the run cancelled meanwhile: it stopped saying it "was cancelled while
    it waited for an answer", of a pause never made and an answer never waited for."""
    from flows.approvals import _Ended, _unpaused

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(bare, state=Running())
        client.set_flow_run_state(run.id, Cancelling(message="cancelled from the UI"), force=True)
        with pytest.raises(CancelledWhilePaused) as stopped:
            _unpaused(client, run.id, Pause(reason="approval needed before 25%", cause="approval", stage_index=1),
                      _Ended("the canary failed"), None, time.monotonic() + 60, 0.05, ApprovalInput, "k")
    assert str(stopped.value) == "the run was cancelled before it began to wait for an answer (cancelled from the UI)"


def test_leaving_a_pause_the_server_aborted_and_then_read_without_a_state_stops_saying_so():
    """The server aborts the run's Running as it leaves its pause, and the run's read after it has
    no state: the run went on to ask whether None was a cancellation, and failed on an
    AttributeError ('NoneType' object has no attribute 'is_cancelling') that said nothing of it."""
    with get_client(sync_client=True) as client:
        run_id, paused = paused_run(client, timeout_seconds=60)
        with pytest.MonkeyPatch.context() as monkeypatch:
            server_fails_to_take(monkeypatch, StateType.RUNNING, times=1)
            original, reads = SyncPrefectClient.read_flow_run, []

            def without_a_state_after_the_abort(self, *args, **kwargs):
                run = original(self, *args, **kwargs)
                reads.append(1)
                return run if len(reads) == 1 else run.model_copy(update={"state": None})

            monkeypatch.setattr(SyncPrefectClient, "read_flow_run", without_a_state_after_the_abort)
            with pytest.raises(PauseInterrupted) as stopped:
                _back_to_running(client, run_id, paused)
    assert str(stopped.value) == (
        f"the Prefect server aborted the run's Running as it left its pause ({BUSY}), and then read the run without "
        "any state: stopping rather than guess where it is"), stopped.value


def test_leaving_a_pause_of_a_run_read_without_a_state_stops_saying_so():
    """The run's state, read before it proposes Running to leave its pause, is none: it failed on
    an AttributeError ('NoneType' object has no attribute 'is_cancelling') that said nothing of it."""
    with get_client(sync_client=True) as client:
        run_id, paused = paused_run(client, timeout_seconds=60)
        with pytest.MonkeyPatch.context() as monkeypatch:
            original = SyncPrefectClient.read_flow_run
            monkeypatch.setattr(SyncPrefectClient, "read_flow_run", lambda self, *args, **kwargs: original(
                self, *args, **kwargs).model_copy(update={"state": None}))
            with pytest.raises(PauseInterrupted) as stopped:
                _back_to_running(client, run_id, paused)
        assert client.read_flow_run(run_id).state.is_paused()  # nothing proposed over a state it could not see
    assert str(stopped.value) == ("the Prefect API read the run without any state: stopping rather than guess where "
                                  "it is"), stopped.value


def test_a_run_the_server_never_lets_leave_its_pause_fails_saying_so_and_its_failure_hook_acts(monkeypatch):
    """The pause times out, and the server fails to take the run's Running every time: NotTaken, a
    Prefect Abort, went out of the run, which ended without a state of its own and with no hook run:
    the Prefect run stayed Paused, nothing rolled the rollout back, and nothing said why. The run
    now fails, saying it could not leave its pause, and its failure hook acts."""
    monkeypatch.setattr(flows.approvals, "ABORTED_FIRST_WAIT_SECONDS", 0.01)
    hooked = []

    def timed_out_as_the_server_fails(client, run_id, paused, deadline, poll_interval, watch=None):
        server_fails_to_take(monkeypatch, StateType.RUNNING, times=None)
        return 0.0  # the pause timed out, on time

    monkeypatch.setattr(flows.approvals, "_wait_for_resume", timed_out_as_the_server_fails)

    @flow(name="left-paused", on_failure=[lambda _flow, run, state: hooked.append(state)])
    def left_paused() -> str:
        approver = prefect_approver(Approvals(timeout_seconds=60, on_timeout="rollback"), poll_interval=1)
        return approver(Pause(reason="approval needed before 25%", cause="approval", stage_index=1), "summary").action

    with pytest.raises(RuntimeError) as failed:
        left_paused()
    said = (f"the run could not leave its pause: the Prefect server failed to take the run's Running "
            f"{flows.approvals.ABORTED_TRIES} times in a row, the run still Paused each time ({BUSY})")
    assert str(failed.value).startswith(said), failed.value
    # Left Paused, a `canary` run (no ledger) is not rolled back by `rollway abort`, which says how to.
    assert str(failed.value).endswith("nothing acts on an answer to it, and `rollway abort` rolls the rollout back "
                                      "or says how to"), failed.value
    assert [state.type for state in hooked] == [StateType.FAILED], hooked
    assert said in hooked[0].message, hooked[0].message
