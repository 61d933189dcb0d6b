"""Approval pauses on a real Prefect API: answers through resume_flow_run, and timeouts."""

from __future__ import annotations

import threading
import time

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from flows.approvals import prefect_approver
from flows.progressive import run_progressive
from rollway.fakes import FakeLedger
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

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
                    resume_flow_run(run_.id, run_input=pending[0])
                except Exception:
                    continue  # the input form is stored a moment after the pause: try again
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


def test_timeout_rolls_back_and_never_promotes():
    env = ledger_env()
    result = rollout_with_pauses(env, spec(timeout=2, on_timeout="rollback"))
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
    assert kinds[-3:] == ["reject", "rollback-start", "rollback"]
    assert result.outcome == "rolled_back"
