"""A promotion after a stage a person accepted, the judge unable to pass it, says so and who: on a
real Prefect API, the pause answered as `rollway promote` answers it (``ops.resume``).

The promotion said "all 3 stages passed", in its result, the ledger, the notice and the run's
summary, while the judge had passed two of them and a person had taken the third on their word.
"""

from __future__ import annotations

import threading
import time

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType

from flows.approvals import prefect_approver
from flows.progressive import run_progressive
from rollway.cli.ops import resume
from rollway.fakes import FakeLedger, FakeMetrics, steady
from rollway.reports import rollout_report
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"
SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 25, 100)],
                   approvals=Approvals(timeout_seconds=60, on_timeout="rollback"), monitor_seconds=0)


@flow(name="stage-accepted-then-promoted")
def rollout(env, spec: RolloutSpec):
    return run_progressive(env, spec, prefect_approver(spec.approvals, poll_interval=1), owner="run-1", phased=False)


def dana_accepts_then_traffic_returns(env) -> threading.Thread:
    """Approve the first pause as dana; the traffic is back once the run has taken her answer, so the
    judge passes every later stage on its own."""
    low, back = env.metrics.behaviour, steady(5000.0, 0.001, 0.0)

    def accepted() -> bool:
        record = env.ledger.get(env.targets.canary_service)
        return record is not None and any(t.kind == "approve" for t in record.history)

    # Traffic comes back when the ledger shows dana's answer taken, not when the answer is sent: sent
    # first, a resume the test server's busy SQLite aborted (and sent again) left the paused run
    # judging its stage on the traffic already back, and the judge passed 5 % before dana's answer.
    env.metrics = FakeMetrics(env.router, lambda weights, t: (back if accepted() else low)(weights, t))

    def run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with get_client(sync_client=True) as client:
                paused = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
            for run_ in paused:
                try:
                    resume(run_.id, {"action": "approve", "approver": "dana", "comment": "quiet night, dashboards fine"},
                           paused=run_.state)
                except Exception:
                    continue  # refused: try again
                return
            time.sleep(0.3)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_promotion_after_an_accepted_stage_says_who_accepted_it_not_that_every_stage_passed():
    env = fake_environment(rps=0.01)  # too little traffic: the judge cannot pass 5 %, dana accepts it
    env.ledger = FakeLedger()
    thread = dana_accepts_then_traffic_returns(env)
    result = rollout(env, SPEC)
    thread.join(5)
    assert result.outcome == "promoted", result.reason
    record = env.ledger.get(env.targets.canary_service)
    assert [(t.kind, t.actor) for t in record.history if t.kind in ("approve", "verdict")] == [
        ("approve", "dana"), ("verdict", "judge"), ("verdict", "judge")]
    promote = record.last_transition("promote")
    subject, notice = env.notifier.messages[-1]
    assert subject.startswith("Rollout complete"), subject
    (last_stage,) = [line for line in rollout_report(record).splitlines() if line.startswith("| 3/3 ")]
    for said in (result.reason, promote.comment, notice, last_stage):
        assert "all 3 stages passed" not in said, said
        assert "5% accepted by dana" in said, said
        assert "2 passed the judge" in said, said
