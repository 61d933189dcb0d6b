"""A rollback whose start the ledger refused is not undone by the run that owns the rollout: that
run, about to shift, sees weights it did not set and rolls back instead of moving traffic back
onto the canary."""

from __future__ import annotations

from botocore.exceptions import ClientError
from prefect import flow

import flows.env
import flows.rollback
from flows.engine import DRIFT_LOOK_SECONDS
from flows.progressive import run_progressive
from flows.rollback import rollback
from rollway.approvals import ApprovalAnswer
from rollway.fakes import FakeLedger, FakeMetrics, steady
from rollway.ledger import Transition
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


class ThrottledOnce(FakeLedger):
    """Refuses the next write of kind ``refuse_next`` once, as DynamoDB does under a throttling burst."""

    refuse_next: str | None = None

    def record(self, service, *, transition: Transition, **kwargs):
        if transition.kind == self.refuse_next:
            self.refuse_next = None
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateItem")
        return super().record(service, transition=transition, **kwargs)


def test_a_rollback_whose_start_was_throttled_is_not_undone_by_the_run_that_owns_the_rollout(monkeypatch):
    env = fake_environment()
    env.ledger = ThrottledOnce()
    for module in (flows.env, flows.rollback):
        monkeypatch.setattr(module, "load_environment", lambda *a, **k: env)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=25, approval=True,
                                                                                     bake_seconds=600),
                                            Stage(weight=100, bake_seconds=600)], monitor_seconds=0,
                       verify_timeout_seconds=1)
    seen: dict = {}

    def on_call_then_approver(pause, summary):
        # While the run waits for the approval before 25 %, on-call sees errors and runs the
        # rollback flow (its deployment). DynamoDB throttles the rollback-start write once.
        assert env.router.weights == Weights.canary_at(5)
        env.ledger.refuse_next = "rollback-start"
        state = rollback(reason="5xx spike seen by on-call", actor="oncall", return_state=True)
        seen["rollback"] = type(state.result(raise_on_failure=False)).__name__
        seen["after_rollback"] = env.router.weights
        # Someone else, looking at the form, approves (the run was never told of the rollback).
        return ApprovalAnswer(action="approve", approver="bob", comment="metrics looked fine earlier")

    @flow
    def owning_run():
        return run_progressive(env, spec, on_call_then_approver, owner="run-1", phased=False)

    result = owning_run()
    assert seen["rollback"] == "RollbackUnrecorded" and seen["after_rollback"] == Weights(stable=100, canary=0)
    # The rolled-back canary stays off: the owning run sees weights it did not set and rolls back.
    assert env.router.weights == Weights(stable=100, canary=0), (result.outcome, env.router.weights, env.router.calls)
    assert result.outcome == "rolled_back" and "moved by someone else" in result.reason


def test_a_stale_read_of_the_load_balancer_before_a_shift_does_not_roll_back(monkeypatch):
    """Only weights that stay different for the read-back lag the spec allows are someone else's."""
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=25, approval=True,
                                                                                     bake_seconds=600),
                                            Stage(weight=100, bake_seconds=600)], monitor_seconds=0,
                       verify_timeout_seconds=1)

    def approve_after_a_stale_read(pause, summary):
        # The next read (the check before the shift to 25%) sees the weights of before the 5% shift.
        env.router._stale, env.router.lag = Weights(stable=100, canary=0), 1
        return ApprovalAnswer(action="approve", approver="bob")

    @flow
    def owning_run():
        return run_progressive(env, spec, approve_after_a_stale_read, owner="run-1", phased=False)

    result = owning_run()
    assert result.outcome == "promoted", result.reason
    assert env.router.weights == Weights(stable=0, canary=100)


class MovedBackByHand(FakeMetrics):
    """On-call moves half the traffic back to stable by hand once the last stage (100 %) bakes."""

    def observe(self, start, end):
        if self.router.weights == Weights(stable=0, canary=100):
            self.router.weights = Weights(stable=50, canary=50)
        return super().observe(start, end)


def test_weights_moved_during_the_last_stage_are_not_recorded_as_promoted():
    """The check for weights this run did not set came only before a shift: a last stage that
    passed with traffic moved by hand recorded the rollout promoted at 0/100 and told people the
    new version served 100 %, while the load balancer held 50/50."""
    env = fake_environment()
    env.ledger = FakeLedger()
    env.metrics = MovedBackByHand(env.router, steady(5000.0, 0.001, 0.0))
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=600)],
                       monitor_seconds=0, verify_timeout_seconds=1)

    @flow
    def owning_run():
        return run_progressive(env, spec, None, owner="run-1", phased=False)

    result = owning_run()
    assert result.outcome == "rolled_back" and "moved by someone else" in result.reason, result.reason
    assert env.ledger.get(env.targets.canary_service).phase is not RolloutPhase.PROMOTED
    assert env.router.weights == Weights(stable=100, canary=0)
    assert not any(subject.startswith("Rollout complete") for subject, _ in env.notifier.messages)


class MovedByHandDuringFivePercent(FakeMetrics):
    """Someone moves the traffic to 50/50 by hand late in the 5 % stage's 600 s bake: after the bake's
    last read of the weights (one per DRIFT_LOOK_SECONDS from its first look), before its pause."""

    first_end: float | None = None

    def observe(self, start, end):
        if self.router.weights == Weights.canary_at(5):
            if self.first_end is None:
                self.first_end = end
            elif end - self.first_end > DRIFT_LOOK_SECONDS:
                self.router.weights = Weights(stable=50, canary=50)
        return super().observe(start, end)


def test_weights_moved_by_hand_during_a_stage_are_not_put_to_a_person_as_this_runs():
    """The pause's form said "traffic now 95/5 (stable/canary)" while the load balancer held 50/50:
    the person approved on a false picture, and the shift that followed rolled back anyway. The
    weights are checked before a person is asked, as before a shift."""
    env = fake_environment()
    env.ledger = FakeLedger()
    env.metrics = MovedByHandDuringFivePercent(env.router, steady(5000.0, 0.001, 0.0))
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=25, approval=True,
                                                                                     bake_seconds=600),
                                            Stage(weight=100, bake_seconds=600)], monitor_seconds=0,
                       verify_timeout_seconds=1)
    asked: list[str] = []

    def approver(pause, summary):
        asked.append(summary)
        return ApprovalAnswer(action="approve", approver="bob")

    @flow
    def owning_run():
        return run_progressive(env, spec, approver, owner="run-1", phased=False)

    result = owning_run()
    assert asked == [], asked
    assert result.outcome == "rolled_back" and "moved by someone else" in result.reason, result.reason
    assert "instead of asking" in result.reason, result.reason
    assert env.router.weights == Weights(stable=100, canary=0)
