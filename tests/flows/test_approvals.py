"""Approval pauses on a real Prefect API: answers through resume_flow_run, timeouts, cancellation."""

from __future__ import annotations

import logging
import re

import threading
import time
from types import SimpleNamespace
from uuid import uuid4

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from prefect.states import Cancelled, Cancelling, Paused, Running

import flows.env
import flows.rollback
from flows.approvals import CancelledWhilePaused, _back_to_running, prefect_approver, propose_state
from flows.hooks import rollback_hooks
from flows.progressive import run_progressive
from rollway.cli.ops import resume
from rollway.fakes import FakeLedger
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.fake_env import fake_environment
from tests.flows.test_answer_not_taken import form_stored, says_it_waits

IMAGE = "webordinary/edit-container:2.0.0"


def spec(timeout: float, on_timeout: str) -> RolloutSpec:
    return RolloutSpec(
        image=IMAGE,
        stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100, bake_seconds=120, approval=True)],
        approvals=Approvals(timeout_seconds=timeout, on_timeout=on_timeout),
        monitor_seconds=0,
    )


@flow
def rollout_with_pauses(env, rollout: RolloutSpec):
    return run_progressive(env, rollout, prefect_approver(rollout.approvals, poll_interval=1), owner="run-1", phased=False)


def answer_when_paused(answers: list[dict], timeout: float = 60.0, not_before: float = 0.0) -> threading.Thread:
    """Resume each paused run with the next answer, as a person in the UI would.

    ``not_before`` seconds pass before the first answer: a person who is away for a while.
    """

    def run() -> None:
        time.sleep(not_before)
        deadline = time.monotonic() + timeout
        pending = list(answers)
        answered: set = set()
        while pending and time.monotonic() < deadline:
            with get_client(sync_client=True) as client:
                paused = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
                )
            for run_ in paused:
                key = (run_.id, run_.state.id)
                if key in answered:
                    continue
                try:
                    # As `rollway promote` answers: it waits for the form, stored a moment after
                    # the pause, and sends again a resume the server failed to take (aborted, its
                    # SQLite busy as the run wrote), which prefect's resume_flow_run drops quietly.
                    resume(run_.id, pending[0], paused=run_.state)
                except Exception:
                    continue  # refused: try again
                answered.add(key)
                pending.pop(0)
                break
            time.sleep(0.3)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def history(env) -> list:
    return list(env.ledger.get(env.targets.canary_service).history)


def ledger_env():
    env = fake_environment()
    env.ledger = FakeLedger()
    return env


def test_approve_through_the_api_records_the_approver():
    env = ledger_env()
    thread = answer_when_paused([{"action": "approve", "approver": "dana", "comment": "metrics look fine"}])
    result = rollout_with_pauses(env, spec(timeout=60, on_timeout="rollback"))
    thread.join(5)
    assert result.outcome == "promoted" and env.router.weights == Weights(stable=0, canary=100)
    approvals = [t for t in history(env) if t.kind == "approve"]
    assert [(t.actor, t.comment) for t in approvals] == [("dana", "approve: metrics look fine")]


def test_timeout_rolls_back_and_never_promotes(caplog, monkeypatch):
    """The pause is made 0.6 s into its time (a slow API as the run pauses): its timeout, in whole
    seconds, was rounded down to 1 s, the server's deadline came before the run's, and the run's
    way out of the pause at its own deadline was turned into Failed ("The flow was paused and never
    resumed"): a failed run in the UI at every such timeout, and the failure automations fired,
    before the run went on."""
    import flows.approvals

    env = ledger_env()
    later, runs = [0.0], []
    monkeypatch.setattr(flows.approvals, "time", SimpleNamespace(
        monotonic=lambda: time.monotonic() + later[0], sleep=time.sleep, time=time.time))
    bounded = flows.approvals.bounded_client

    def slow_to_pause():
        from prefect.context import FlowRunContext

        later[0] += 0.6  # the pause's time started 0.6 s before the run could propose it
        runs.append(FlowRunContext.get().flow_run.id)
        return bounded()

    monkeypatch.setattr(flows.approvals, "bounded_client", slow_to_pause)
    with caplog.at_level(logging.INFO):
        result = rollout_with_pauses(env, spec(timeout=2, on_timeout="rollback"))
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(runs[0])
    went = [state.name for state in states]
    assert "Failed" not in went, went
    # The state it left the pause for says why, in the UI and to `rollway promote` ("it is Running
    # (...), not paused"), as a pause the judge ended does: a bare Running told a person who came to
    # answer nothing of the timeout.
    left = states[went.index("Paused") + 1]
    assert left.message == ("left its approval pause at its timeout, unanswered: it rolls the rollout back "
                            "(approvals.on_timeout: rollback)"), left
    # "within 3600.0s" on `rollway up`'s 60x clock read as rollout seconds (a minute of wall time);
    # the pause's timeout is on the wall clock, as the form, status and the notice say.
    said = [r.getMessage() for r in caplog.records]
    # What the pause asks is said too: the log read "paused for approval" without naming the stage.
    assert any(re.fullmatch(r"paused for approval \(5%: .+; approval needed before 100%\): resume the run with an "
                            r"answer by \S+ \S+ UTC \(wall clock, 2 s from now\); unanswered, the rollout rolls back",
                            m) for m in said), said
    assert "nobody answered within 2 s (wall clock): reject" in said, said
    assert result.outcome == "rolled_back"
    assert env.router.weights == Weights(stable=100, canary=0)
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    timeouts = [t for t in record.history if t.kind == "timeout"]
    assert len(timeouts) == 1 and timeouts[0].actor == "timeout"


def test_timeout_with_hold_keeps_the_weights_and_asks_again():
    env = ledger_env()
    # Nobody answers the first pause; the second is rejected by a person.
    thread = answer_when_paused(
        [{"action": "reject", "approver": "erin", "comment": "not this week"}], timeout=90, not_before=6
    )
    result = rollout_with_pauses(env, spec(timeout=3, on_timeout="hold"))
    thread.join(5)
    kinds = [t.kind for t in history(env)]
    assert kinds.count("timeout") >= 1  # the unanswered pauses were recorded
    assert kinds[-5:] == ["reject", "rollback-start", "notifying", "notified", "rollback"]
    assert result.outcome == "rolled_back"


def paused_with_form(flow_name: str, timeout: float = 20.0):
    """The paused run of the flow called ``flow_name``, once its input form is stored (it is
    stored a moment after the pause, and a resume before that is refused) and it has first said
    that it waits: a resume sent as the run wrote that saying had the test harness's SQLite busy,
    and its server aborted the resume (a test took the pause's timeout for the answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))),
            )
            if runs and form_stored(client, runs[0]) and says_it_waits(client, runs[0]):
                return runs[0]
        time.sleep(0.2)
    raise TimeoutError(f"no paused run of {flow_name}")


@flow(name="approvals-rollout-with-rollback-hooks", **rollback_hooks())
def rollout_with_rollback_hooks(env, rollout: RolloutSpec):
    return run_progressive(env, rollout, prefect_approver(rollout.approvals, poll_interval=1), owner="run-1", phased=False)


@pytest.mark.parametrize("message,reason", [
    ("cancelled from the UI", r"run \S+ was cancelled: cancelled from the UI"),
    # Prefect's own words when nobody gave any (its engine's, its runner's): after "run x was
    # cancelled" they said it a second time, in the page, status and the incident report.
    ("Flow run was cancelled.", r"run \S+ was cancelled"),
], ids=["a person's message", "prefect's message"])
def test_cancelling_a_paused_run_stops_the_pause_and_its_cancellation_hook_rolls_back(monkeypatch, message, reason):
    """A person cancels a run that waits at an approval (the Prefect UI sets it to Cancelling).

    The pause notices within a poll and stops the run: it is never put back to Running or
    Paused, the pause does not wait for its timeout (no timeout in the ledger), the run keeps
    its cancellation state (in-process there is no runner to finish it to Cancelled), and its
    on_cancellation hook rolls the rollout back.
    """
    env = ledger_env()
    # The hook and the rollback flow build their environment from blocks: give them the fakes.
    for module in (flows.env, flows.rollback):
        monkeypatch.setattr(module, "load_environment", lambda *a, **k: env)
    seen: list[StateType] = []
    ended = threading.Event()

    def cancel_then_watch() -> None:
        run = paused_with_form("approvals-rollout-with-rollback-hooks")
        with get_client(sync_client=True) as client:
            response = client.set_flow_run_state(run.id, Cancelling(message=message))
        seen.append(response.state.type)
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and not ended.is_set():
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(run.id).state
            if seen[-1] != state.type:
                seen.append(state.type)
            if state.is_paused():
                # Asked again as if nobody had cancelled: answer, so that the run ends.
                try:
                    resume_flow_run(run.id, run_input={"action": "reject", "approver": "test", "comment": "end it"})
                except Exception:
                    pass
            time.sleep(0.1)

    watcher = threading.Thread(target=cancel_then_watch, daemon=True)
    watcher.start()
    try:
        with pytest.raises(CancelledWhilePaused):
            rollout_with_rollback_hooks(env, spec(timeout=4, on_timeout="hold"))
    finally:
        ended.set()
        watcher.join(5)
    assert seen and set(seen) <= {StateType.CANCELLING, StateType.CANCELLED}, f"states after the cancel: {seen}"
    assert env.router.weights == Weights(stable=100, canary=0)
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    kinds = [t.kind for t in record.history]
    assert "timeout" not in kinds and kinds[-4:] == ["rollback-start", "notifying", "notified", "rollback"], kinds
    assert record.history[-1].actor == "state hook (cancelling)"
    # In words: "run x ended cancelling" named Prefect's state, which reads as if the run stopped half-way
    # through cancelling, in the page, status and the incident report.
    assert re.fullmatch(reason, record.history[-1].comment or ""), \
        record.history[-1].comment


@flow(name="approvals-rollout-with-pauses")
def rollout_to_answer(env, rollout: RolloutSpec):
    return run_progressive(env, rollout, prefect_approver(rollout.approvals, poll_interval=1), owner="run-1", phased=False)


def test_a_blank_or_forging_approver_is_refused_at_resume_and_names_are_recorded_without_surrounding_spaces(caplog):
    """The form refuses an approver name of only spaces when the run is resumed (the server
    checks the form's schema), so the run keeps waiting and the person can answer again; the
    name that is accepted is recorded in the ledger without its surrounding spaces.

    So is a name with a control character. A name is printed in the run's log as typed ("pause
    (approval) answered approve by <name>"): one with a line break wrote a line of its own there,
    another answer forged beneath the real one, and one with an escape sequence rewrote the
    terminal line of a console showing the log."""
    env = ledger_env()
    refused_names = ["   ", "eve\n01:02:03.000 | INFO    | Flow run 'x' - pause (approval) answered reject by the-cto",
                     "mallory\x1b[1A\x1b[2K", "tab\tbed", "trudy\u2028line"]
    refused: list[str] = []

    def answer() -> None:
        run = paused_with_form("approvals-rollout-with-pauses")
        for name in refused_names:
            try:
                resume_flow_run(run.id, run_input={"action": "reject", "approver": name, "comment": "refused"})
            except RuntimeError as err:
                refused.append(str(err))
        try:
            resume(run.id, {"action": "approve", "approver": "  dana ", "comment": "fine"}, paused=run.state)
        except Exception:
            pass  # a refused name's answer was taken: nothing is paused any more

    helper = threading.Thread(target=answer, daemon=True)
    helper.start()
    result = rollout_to_answer(env, spec(timeout=30, on_timeout="rollback"))
    helper.join(5)
    answers = [(t.kind, t.actor, t.comment) for t in history(env) if t.kind in ("approve", "reject")]
    assert answers == [("approve", "dana", "approve: fine")], answers
    assert len(refused) == len(refused_names), refused
    assert all("Validation failed for field 'approver'" in r for r in refused), refused
    assert result.outcome == "promoted"
    assert "the-cto" not in caplog.text and "mallory" not in caplog.text, caplog.text


# --- leaving a pause that timed out, against the API directly ------------------------------------


@flow(name="approvals-bare")
def bare() -> None:
    pass


def paused_run(client, timeout_seconds: int):
    """A flow run (no process behind it) that is Paused with ``timeout_seconds``, and its Paused state."""
    run = client.create_flow_run(bare, state=Running())
    paused = propose_state(client, Paused(timeout_seconds=timeout_seconds, pause_key="k"), run.id)
    assert paused.is_paused()
    return run.id, paused


@pytest.mark.parametrize("cancel", [Cancelling, Cancelled], ids=["cancelling", "cancelled"])
def test_leaving_a_timed_out_pause_never_overwrites_a_cancellation(cancel):
    """A person cancels the run just as its pause times out: taking the run back to Running
    stops instead (CancelledWhilePaused), and the run keeps the cancellation."""
    with get_client(sync_client=True) as client:
        run_id, paused = paused_run(client, timeout_seconds=60)
        client.set_flow_run_state(run_id, cancel(message="cancelled from the UI"))
        with pytest.raises(CancelledWhilePaused):
            _back_to_running(client, run_id, paused)
        assert client.read_flow_run(run_id).state.type is cancel().type


@pytest.mark.parametrize("message,said", [
    ("cancelled from the UI", "the run was cancelled while it waited for an answer (cancelled from the UI)"),
    ("Flow run was cancelled.", "the run was cancelled while it waited for an answer"),
    ("stop\x1b[2J\u202e now", "the run was cancelled while it waited for an answer (stop\\x1b[2J\\u202e now)"),
], ids=["a person's message", "prefect's message", "a message with control characters, escaped"])
def test_a_cancellation_at_a_pause_is_said_once(message, said):
    """Prefect's own words for a cancellation, in brackets after rollway's, said it twice."""
    with get_client(sync_client=True) as client:
        run_id, paused = paused_run(client, timeout_seconds=60)
        client.set_flow_run_state(run_id, Cancelling(message=message))
        with pytest.raises(CancelledWhilePaused) as stopped:
            _back_to_running(client, run_id, paused)
    assert str(stopped.value) == said


def test_leaving_a_pause_the_server_expired_goes_back_to_running():
    """Past its deadline the server answers Running with Failed (the pause expired); the run
    still goes back to Running, so that the timeout policy (roll back, or hold) can act."""
    with get_client(sync_client=True) as client:
        run_id, paused = paused_run(client, timeout_seconds=1)
        time.sleep(1.2)
        _back_to_running(client, run_id, paused)
        assert client.read_flow_run(run_id).state.is_running()


# --- a pause its watch ends: the judge rolls back while the run waits -----------------------------

FAILED_LOOK = "5%: canary error rate 5.00% (50/1,000) is over the 1% guardrail"


@flow(name="approvals-watched-pause")
def watched_pause(looks_until_failed: int):
    from prefect.context import FlowRunContext

    from rollway.cli import ops
    from rollway.decide import Pause

    looks: list[int] = []

    def watch():
        looks.append(1)
        return FAILED_LOOK if len(looks) >= looks_until_failed else None

    asked = Pause(reason="5%: passed; approval needed before 25%", cause="approval", stage_index=1)
    # A timeout of a minute: the test ends in well under a second unless the watch is not heard.
    answer = prefect_approver(Approvals(timeout_seconds=60, on_timeout="rollback"), poll_interval=0.05)(
        asked, "the stage's table", watch=watch)
    run_id = FlowRunContext.get().flow_run.id
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    try:
        ops.resume(run_id, {"action": "approve", "approver": "dana", "comment": "late"})
        refused = None
    except ops.ResumeRefused as err:
        refused = str(err)
    with get_client(sync_client=True) as client:
        try:
            ops.find_paused_run(client, None, None, run_id)  # `rollway promote --flow-run <it>`
            found = None
        except ops.NoPausedRun as err:
            found = str(err)
    return answer, len(looks), state.type, state.message, refused, found


def test_a_pause_its_watch_ends_is_left_at_once_and_a_resume_after_it_is_refused():
    started = time.monotonic()
    answer, looks, state, message, refused, found = watched_pause(3)
    assert answer is None and looks == 3
    assert time.monotonic() - started < 30, "the pause waited for its timeout"
    assert state is StateType.RUNNING and FAILED_LOOK in message and message.startswith("left its approval pause")
    # The person who answers next is told the run no longer waits, and why.
    assert refused is not None and "cannot be resumed: it is Running" in refused and FAILED_LOOK in refused, refused
    assert found is not None and "is Running (left its approval pause without an answer" in found, found


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b'[{"key": "paused-approval-1-response"}]'],
                         ids=["not-json", "no-created-field"])
def test_when_an_answer_was_stored_is_none_when_prefect_answers_2xx_with_what_is_no_stored_input(body, caplog):
    """A proxy answering 200 with its own page, or a Prefect whose answer lacks the fields, raised
    out of the record-keeping that never fails the run: the approver's answer was lost with it."""
    import httpx
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.input import keyset_from_paused_state

    from flows.approvals import _given_at

    paused = Paused(timeout_seconds=60, pause_key="approval-1")
    paused.state_details.run_input_keyset = keyset_from_paused_state(paused)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body)
                                    if request.url.path.endswith("/input/filter") else httpx.Response(404))

    @flow(name="approvals-given-at-unread")
    def read_late() -> float | None:
        with SyncPrefectClient("http://prefect.test/api", httpx_settings={"transport": transport}) as client:
            return _given_at(client, uuid4(), paused)

    assert read_late() is None
    # Said in the run's log, where the person reading the not-applied record looks for why it has no time
    # (a debug line of the stdlib's logger was shown nowhere).
    said = [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs" and r.levelno == logging.WARNING]
    assert any("could not read when the answer was stored" in m and "without the time it was given" in m
               for m in said), caplog.text
