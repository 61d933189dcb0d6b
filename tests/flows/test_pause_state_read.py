"""The run's state as the pause reads it to act on it: one read (``_state_of``), wherever it is read for that.

A run read without any state stopped saying so where the run left its pause, and on an
AttributeError ('NoneType' object has no attribute ...) that said nothing of it where it polled
for the answer, or where the canary's look had ended a pause it was still trying to make.
"""

from __future__ import annotations

import logging
import time

import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.input import keyset_from_paused_state
from prefect.states import Cancelled, Cancelling, Crashed, Failed, Paused, Running

from flows.approvals import (ApprovalInput, CancelledWhilePaused, MarkedCrashed, PauseInterrupted, _Ended, _unpaused,
                             _wait_for_resume, prefect_approver, propose_state)
from rollway.decide import Pause
from rollway.spec import Approvals
from tests.flows.test_approvals import bare, paused_run
from tests.flows.test_pause_not_taken import cancelled_meanwhile, server_fails_to_take

STATELESS = "the Prefect API read the run without any state: stopping rather than guess where it is"
PAUSE = Pause(reason="approval needed before 25%", cause="approval", stage_index=1)


def read_without_a_state(monkeypatch) -> None:
    """``SyncPrefectClient.read_flow_run`` as an API that gives the run without any state."""
    original = SyncPrefectClient.read_flow_run
    monkeypatch.setattr(SyncPrefectClient, "read_flow_run", lambda self, *args, **kwargs: original(
        self, *args, **kwargs).model_copy(update={"state": None}))


def test_a_paused_run_its_poll_reads_without_a_state_stops_saying_so():
    with get_client(sync_client=True) as client:
        run_id, paused = paused_run(client, timeout_seconds=60)
        with pytest.MonkeyPatch.context() as monkeypatch:
            read_without_a_state(monkeypatch)
            with pytest.raises(PauseInterrupted) as stopped:
                _wait_for_resume(client, run_id, paused, time.monotonic() + 60, 0.05)
    assert str(stopped.value) == STATELESS, stopped.value


@pytest.mark.parametrize("made", [True, False], ids=["a try of the pause landed", "no try landed"])
def test_a_pause_the_canary_ended_before_it_was_known_made_of_a_run_read_without_a_state_stops_saying_so(made):
    with get_client(sync_client=True) as client:
        run_id = paused_run(client, timeout_seconds=60)[0] if made else client.create_flow_run(bare, state=Running()).id
        with pytest.MonkeyPatch.context() as monkeypatch:
            read_without_a_state(monkeypatch)
            with pytest.raises(PauseInterrupted) as stopped:
                _unpaused(client, run_id, PAUSE, _Ended("the canary failed"), None, time.monotonic() + 60, 0.05,
                          ApprovalInput, "k")
    assert str(stopped.value) == STATELESS, stopped.value


@pytest.mark.parametrize("when", ["before", "as it leaves"], ids=["cancelled before the run looked",
                                                                  "cancelled as the run leaves the pause"])
def test_a_run_cancelled_at_a_pause_made_while_the_api_came_and_went_is_not_said_to_have_waited(when):
    """A try of the pause landed during a Prefect outage, its answer lost, and the canary's look
    ended the pause before the run could wait for an answer; the run was cancelled meanwhile, or as
    its Running was proposed to leave the pause (the server, busy, aborted it). It stopped saying
    it "was cancelled while it waited for an answer", which it never did."""
    with get_client(sync_client=True) as client:
        run_id, _paused = paused_run(client, timeout_seconds=60)
        with pytest.MonkeyPatch.context() as monkeypatch:
            if when == "before":
                cancelled_meanwhile(client, run_id)
            else:
                server_fails_to_take(monkeypatch, StateType.RUNNING, times=None, meanwhile=cancelled_meanwhile)
            with pytest.raises(CancelledWhilePaused) as stopped:
                _unpaused(client, run_id, PAUSE, _Ended("the canary failed"), None, time.monotonic() + 60, 0.05,
                          ApprovalInput, "k")
        assert client.read_flow_run(run_id).state.is_cancelling()
    assert str(stopped.value) == ("the run was cancelled after its pause was made while the Prefect API came and "
                                  "went, before it could wait for an answer (cancelled from the UI)"), stopped.value


@pytest.mark.parametrize("when", ["before", "as it leaves"], ids=["moved before the run looked",
                                                                  "moved as the run leaves the pause"])
@pytest.mark.parametrize("moved,stopped_as", [
    (Crashed(message="its process died"), MarkedCrashed),
    (Failed(message="failed from the API"), PauseInterrupted),
], ids=["marked crashed", "failed by hand"])
def test_a_run_moved_elsewhere_at_a_pause_made_while_the_api_came_and_went_stops_there(monkeypatch, moved, stopped_as,
                                                                                       when):
    """A try of the pause landed during a Prefect outage, its answer lost, and the canary's look
    ended the pause before the run could wait at it; the run was marked Crashed (its process taken
    for dead) or Failed meanwhile, or as its Running was proposed to leave the pause (the server,
    busy, aborted it). Found before it looked, it went on as from a pause left unanswered, saying
    so, past the state it was moved to (a Crashed run's rollout is left for a new run to take
    over), where its wait, or its leaving of a pause it waited at, stops. Found as it left, it was
    said to have left a pause it waited at."""
    monkeypatch.setattr("flows.approvals.get_run_logger", lambda: logging.getLogger("flows.approvals"))
    set_state = SyncPrefectClient.set_flow_run_state
    with get_client(sync_client=True) as client:
        run_id = client.create_flow_run(bare, state=Running()).id
        # As the pause makes it: with the keyset its answer is stored under.
        paused = Paused(timeout_seconds=60, pause_key="k")
        paused.state_details.run_input_keyset = keyset_from_paused_state(paused)
        assert propose_state(client, paused, run_id).is_paused()
        if when == "before":
            client.set_flow_run_state(run_id, moved, force=True)
        else:
            server_fails_to_take(monkeypatch, StateType.RUNNING, times=None,
                                 meanwhile=lambda client, run_id: set_state(client, run_id, moved, force=True))
        with pytest.raises(stopped_as) as stopped:
            _unpaused(client, run_id, PAUSE, _Ended("the canary failed"), None, time.monotonic() + 60, 0.05,
                      ApprovalInput, "k")
        assert client.read_flow_run(run_id).state.type is moved.type
    assert type(stopped.value) is stopped_as, stopped.value
    assert str(stopped.value) == (f"the run was moved to {moved.name} ({moved.message}) after its pause was made while "
                                  "the Prefect API came and went, before it could wait for an answer; stopping"), \
        stopped.value


hooked: list[tuple[str, StateType]] = []


@flow(name="cancelled-outright-before-its-pause",
      on_failure=[lambda _flow, _run, state: hooked.append(("on_failure", state.type))],
      on_cancellation=[lambda _flow, _run, state: hooked.append(("on_cancellation", state.type))])
def cancelled_outright_then_paused() -> str:
    """Set to Cancelled outright (not Cancelling) just before it pauses once."""
    from prefect.context import FlowRunContext

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(FlowRunContext.get().flow_run.id, Cancelled(message="cancelled from the UI"),
                                  force=True)
    approver = prefect_approver(Approvals(timeout_seconds=60, on_timeout="rollback"), poll_interval=1)
    return approver(PAUSE, "summary").action


def test_a_run_cancelled_outright_at_its_pause_ends_failed_through_its_failure_hook_once():
    """As the module says: Prefect's engine proposes Failed for the run's CancelledWhilePaused and
    the server takes it over Cancelled; the failure hook (the same rollback) runs once, the
    cancellation hook (run for a Cancelling state alone) never, and the state says why."""
    hooked.clear()
    state = cancelled_outright_then_paused(return_state=True)
    assert state.type is StateType.FAILED, state
    assert "the run was cancelled before it began to wait for an answer (cancelled from the UI)" in state.message
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(state.state_details.flow_run_id).state.type is StateType.FAILED
    assert hooked == [("on_failure", StateType.FAILED)], hooked
