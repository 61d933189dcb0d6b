"""What people read when a run fails or crashes with no message: never a reason ending in ": "
and nothing, nor "(no message)", but the exception and where it was raised, or the state's name.

The hook's reason is the rollback's: it is the page's "Why", the ledger's entry that `rollway
status` lists, and the incident report's trigger.
"""

from __future__ import annotations

import threading
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Crashed, Failed

import flows.env
import flows.rollback
from flows.approvals import PauseInterrupted, _back_to_running
from flows.hooks import _exception, _reason, leave_alone
from flows.progressive import progressive_rollout
from rollway.fakes import FakeLedger
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import incident_report
from tests.flows.fake_env import fake_environment
from tests.flows.test_approvals import paused_run, paused_with_form, rollout_with_rollback_hooks, spec
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.test_rollback_claim import SPEC


def assert_said(words: str, *expected: str) -> None:
    assert not words.rstrip().endswith(":") and "no message)" not in words, words
    for part in expected:
        assert part in words, words


def failing_metrics(env):
    """The canary's metrics read raises an exception with no message once traffic is on it."""
    real = env.metrics.observe

    def observe(start, end):
        if env.router.weights.canary == 5:
            raise ValueError()
        return real(start, end)

    env.metrics.observe = observe


def test_a_run_failing_with_an_exception_without_a_message_is_rolled_back_naming_it_and_where(monkeypatch):
    env = fake_environment()
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    failing_metrics(env)

    state = progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False, return_state=True)

    assert state.is_failed(), state
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK and env.router.weights == Weights(stable=100, canary=0)
    said = record.last_transition("rollback").comment
    assert_said(said, "failed: ValueError with no message, raised at tests/flows/test_hook_reasons.py:",
                "in observe")
    page = next(body for subject, body in env.notifier.messages if subject.startswith("Rollback: "))
    assert f"Why: {said}\n" in page, page
    assert said in incident_report(record)


@pytest.mark.parametrize("state,said", [
    # Prefect's words for an exception with no message end where its message would be.
    (Crashed(message="Execution was interrupted by an unexpected exception: ValueError: "),
     "run r1 crashed: Execution was interrupted by an unexpected exception: ValueError, with no message"),
    (Failed(message="Flow run encountered an exception: TimeoutError: "),
     "run r1 failed: Flow run encountered an exception: TimeoutError, with no message"),
    # Set by hand (the UI, the API) with no message: only its name is known.
    (Failed(), "run r1 failed: its Prefect state Failed came with no message and no exception"),
    (Crashed(message="  "), "run r1 crashed: its Prefect state Crashed came with no message and no exception"),
], ids=["crashed, prefect's words", "failed, prefect's words", "failed by hand", "crashed, blank"])
def test_the_reason_of_a_run_ended_without_a_message_says_what_is_known(state, said):
    assert _reason("r1", state, _exception(state)) == said


def test_a_run_that_crashed_finalizing_without_a_message_is_left_alone_saying_how():
    why = leave_alone(Crashed(), {}, finalizing=True)
    assert_said(why, "it crashed while finalizing (its Prefect state Crashed came with no message and no exception)")


def test_a_run_found_crashed_as_it_took_an_answer_at_its_timeout_is_not_said_to_have_waited():
    """MarkedCrashed comes also from a run found Crashed once it had left its timed-out pause, as it
    took the answer given at the deadline: its hook said "marked Crashed while it waited for an
    answer" of a run that had its answer and no longer waited."""
    from flows.approvals import MarkedCrashed, _left_for

    stopped = _left_for(Crashed(message="marked crashed by hand"),
                        "as it took the answer given at its approval pause's timeout, before acting on it")
    assert isinstance(stopped, MarkedCrashed), stopped
    assert leave_alone(Failed(data=stopped), {}) == f"it was marked Crashed at its approval pause ({stopped})"


def test_a_pause_left_for_a_failed_state_without_a_message_says_the_state():
    """A person marks a paused run Failed in the UI and gives no message."""
    with get_client(sync_client=True) as client:
        run_id, paused = paused_run(client, timeout_seconds=60)
        client.set_flow_run_state(run_id, Failed(), force=True)
        with pytest.raises(PauseInterrupted) as stopped:
            _back_to_running(client, run_id, paused)
    assert_said(str(stopped.value), "left its approval pause for Failed",
                "its Prefect state Failed came with no message and no exception")


def test_a_paused_run_marked_failed_without_a_message_is_rolled_back_saying_so(monkeypatch):
    """The whole way: the pause stops, the run fails, its hook rolls back, and the ledger, the page
    and the incident report say the run left its pause for Failed, with no message given."""
    env = fake_environment()
    env.ledger = FakeLedger()
    for module in (flows.env, flows.rollback):
        monkeypatch.setattr(module, "load_environment", lambda *a, **k: env)

    def mark_failed() -> None:
        run = paused_with_form("approvals-rollout-with-rollback-hooks")
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Failed(), force=True)

    marker = threading.Thread(target=mark_failed, daemon=True)
    marker.start()
    with pytest.raises(PauseInterrupted):
        rollout_with_rollback_hooks(env, spec(timeout=30, on_timeout="hold"))
    marker.join(5)
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK, record.phase
    said = record.last_transition("rollback").comment
    assert_said(said, "left its approval pause for Failed", "came with no message")
    assert said in incident_report(record)


def test_a_finalize_step_failing_without_a_message_says_the_exception_and_where():
    """The step's error is the finalize's stop reason: the ledger's, the run's and the summary's."""
    from prefect import flow

    from flows.finalize import _Progress
    from rollway.finalize import FinalizeIncomplete

    @flow
    def one_step() -> None:
        with _Progress(unrecorded=False).trying("move the traffic to the stable target group", "Nothing moved."):
            raise TimeoutError()

    with pytest.raises(FinalizeIncomplete) as stopped:
        one_step()
    assert_said(str(stopped.value), "to the stable target group: TimeoutError with no message, raised at "
                "tests/flows/test_hook_reasons.py:")


def test_a_holder_the_prefect_api_could_not_be_asked_about_says_the_exception_and_where(monkeypatch):
    """The refusal a weekly tick or a resume stops with, and its hook's reason for leaving the rollout alone."""
    import uuid

    import prefect.client.orchestration

    from flows.env import owner_finished
    from rollway.ledger import OWNER_PREFIX, RolloutInProgress

    class Unanswered:
        api_url = "http://127.0.0.1:4200/api"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read_flow_run(self, run_id):
            raise ConnectionResetError()

    monkeypatch.setattr(prefect.client.orchestration, "get_client", lambda **kwargs: Unanswered())
    with pytest.raises(RolloutInProgress) as refused:
        owner_finished(f"{OWNER_PREFIX}{uuid.uuid4()}")
    assert "(ConnectionResetError with no message, raised at tests/flows/test_hook_reasons.py:" in str(refused.value)
    assert "(ConnectionResetError: )" not in str(refused.value)


def test_the_hook_reads_the_runs_failure_once(monkeypatch):
    """The run's exception is its result, which a hook outside the run's process reads from the
    result storage: it was read for each question the hook asked (whether to leave the run alone,
    how it ended and where, whether its own rollback had paged), the same file read again each
    time, and a read that failed once made the hook judge a run it had judged otherwise a moment
    before. Read once, every answer is about the same failure."""
    from prefect.client.schemas.objects import State

    env = fake_environment()
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    failing_metrics(env)
    reads: list[str] = []
    real = State.result

    def result(self, *args, **kwargs):
        if self.is_failed():
            reads.append(self.message or "")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(State, "result", result)
    state = progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False, return_state=True)

    assert state.is_failed(), state
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK  # the hook ran, and rolled back
    assert reads == [state.message], reads
