"""progressive_rollout on fakes where a ledger write falls in a gap: a run blocked past its
lease, a kill between two writes that belong together, a late write of an older rollout."""

from __future__ import annotations

import pytest
from prefect import flow

from flows.canary import RolloutRefused
from flows.progressive import create_rollout, run_progressive
from flows.rollback import rollback_recorded
from rollway.approvals import ApprovalAnswer, auto_approve, scripted
from rollway.fakes import FakeFlagStore, FakeLedger
from rollway.flags import FlagState
from rollway.ledger import RolloutRecord, Transition, begin_rollback, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.flows.fake_env import fake_environment
from tests.flows.test_progressive_fakes import Intercept, Killed

IMAGE = "webordinary/edit-container:2.0.0"


def env_with_ledger():
    env = fake_environment()
    env.ledger = FakeLedger()
    return env


def quick_spec(*weights: int, **fields) -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in weights],
                       monitor_seconds=0, **fields)


def dies_after_recording(kind: str):
    """An Intercept hook: the process dies on the ledger call right after the one that recorded
    a transition of ``kind``."""
    seen = {"recorded": False}

    def hook(name, args, kwargs):
        if seen["recorded"]:
            raise Killed(f"killed right after {kind} was recorded")
        t = kwargs.get("transition")
        seen["recorded"] = name == "record" and getattr(t, "kind", None) == kind

    return hook


@flow
def progressive_on(env, spec, approver, owner="run-1"):
    return run_progressive(env, spec, approver, owner=owner, actor="alice", phased=False)


def test_a_shift_that_outlasts_the_lease_is_still_recorded_by_its_run():
    """ECS may take most of its 600 s wait to place the canary, then health checks run: the
    shift ends after the run's lease (also 600 s) expired. Nobody took the rollout over, so the
    run records its shift and goes on, instead of failing and having its hook roll back."""
    env = env_with_ledger()
    real_wait = env.deployer.wait_stable

    def slow_wait(services, timeout_seconds, expected=None, between=None):
        env.clock.sleep(590)
        return real_wait(services, timeout_seconds, expected, between=between)

    env.deployer.wait_stable = slow_wait
    healthy = env.router.healthy_targets
    env.router.healthy_targets = lambda version: (env.clock.sleep(15), healthy(version))[1]
    result = progressive_on(env, quick_spec(5, 50, 100), auto_approve())
    assert result.outcome == "promoted"
    record = env.ledger.get(env.targets.canary_service)
    assert [t.to_weights.canary for t in record.history if t.kind == "shift"] == [5, 50, 100]


@pytest.mark.parametrize(("answer", "kind", "reason"), [
    (ApprovalAnswer(action="reject", approver="bob", comment="error budget"), "reject", "rejected by bob: error budget"),
    # on_timeout: rollback (the default): nobody answered and the policy rejected.
    (ApprovalAnswer(action="reject", approver="timeout", timed_out=True, comment="no answer within 3600 s"),
     "timeout", "no answer within 3600 s to the pause"),
], ids=["a person's reject", "the timeout policy's reject"])
def test_a_recorded_rejection_is_carried_out_by_the_resumed_run_without_asking_again(answer, kind, reason):
    """The reject is written, then the run dies before the rollback's start is: the resumed run
    rolls back in the rejecter's name instead of asking again (an approval then promoted what
    a person, or the timeout policy, had rejected)."""
    env = env_with_ledger()
    spec = quick_spec(5, 50, 100).model_copy(update={"stages": (
        Stage(weight=5, bake_seconds=120), Stage(weight=50, bake_seconds=120, approval=True),
        Stage(weight=100, bake_seconds=120))})
    ledger = env.ledger
    env.ledger = Intercept(ledger, dies_after_recording(kind))
    with pytest.raises(Killed):
        progressive_on(env, spec, scripted(answer))
    env.ledger = ledger
    service = env.targets.canary_service
    assert ledger.get(service).history[-1].kind == kind
    assert ledger.get(service).phase is RolloutPhase.PROGRESSING
    env.clock.sleep(601)
    asked = []

    def approver(pause, summary):
        asked.append(pause.reason)
        return ApprovalAnswer(action="approve", approver="carol", comment="looks fine to me")

    result = progressive_on(env, spec, approver, owner="run-2")
    assert (result.outcome, asked) == ("rolled_back", [])
    assert reason in result.reason
    record = ledger.get(service)
    assert record.phase is RolloutPhase.ROLLED_BACK and env.router.weights == Weights(stable=100, canary=0)


def test_a_late_rollback_of_one_rollout_leaves_the_next_rollout_alone():
    """A hook's rollback of rollout 1 acts while `rollway abort`'s rollback of it finishes and a
    person starts rollout 2: the hook's record of its end must not end rollout 2."""
    env = env_with_ledger()
    ledger, service, now = env.ledger, env.targets.canary_service, env.clock.now()
    spec = quick_spec(5, 100)
    first = ledger.create(RolloutRecord(service=service, rollout_id=new_rollout_id(now), image=IMAGE,
                                        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING,
                                        weights=Weights.canary_at(5)), owner="run-1", now=now, lease_seconds=600)
    env.router.weights = Weights.canary_at(5)
    begin_rollback(ledger, service, actor="oncall", reason="5xx", now=now)
    real_notify, later = env.notifier.notify, {}

    def meanwhile(subject, message):
        if not later:
            t = env.clock.now() + 60
            ledger.record(service, owner=None, now=t, phase=RolloutPhase.ROLLED_BACK,
                          transition=Transition(at=t, kind="rollback", actor="oncall"))
            later["second"] = ledger.create(
                RolloutRecord(service=service, rollout_id=new_rollout_id(t + 60), image="app:3",
                              spec_json=spec.model_copy(update={"image": "app:3"}).model_dump_json()),
                owner="run-2", now=t + 60, lease_seconds=600)
        return real_notify(subject, message)

    env.notifier.notify = meanwhile
    hook_rollback(env, "run-1 ended crashed")
    second = ledger.get(service)
    assert second == later["second"] and second.rollout_id != first.rollout_id
    assert second.phase is RolloutPhase.PENDING and [t.kind for t in second.history] == []


@flow
def hook_rollback(env, reason):
    return rollback_recorded(env, reason, actor="state hook (crashed)")


def test_a_kill_right_after_a_shift_is_recorded_keeps_its_flag_moves_in_the_ledger():
    """The bound flag moves inside the shift; a run killed after recording the shift must not
    leave a ledger that never mentions the move (the resume sees nothing to re-record)."""
    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])
    spec = quick_spec(5, 50, 100, flags=[FlagBinding(feature="use_sqs_architecture")])
    ledger = env.ledger
    seen = {"shift to 50": False}

    def dies_after_the_shift_to_50_is_recorded(name, args, kwargs):
        if seen["shift to 50"]:
            raise Killed("killed right after the shift to 50% was recorded")
        t = kwargs.get("transition")
        seen["shift to 50"] = name == "record" and t.kind == "shift" and t.to_weights.canary == 50

    env.ledger = Intercept(ledger, dies_after_the_shift_to_50_is_recorded)
    with pytest.raises(Killed):
        progressive_on(env, spec, auto_approve())
    env.ledger = ledger
    assert env.flags.get("use_sqs_architecture").percentage == 50
    notes = [t.comment for t in ledger.get(env.targets.canary_service).history if t.kind == "flag"]
    assert any("-> on 50%" in note for note in notes), notes
    env.clock.sleep(601)
    assert progressive_on(env, spec, auto_approve(), owner="run-2").outcome == "promoted"


def test_a_run_whose_clock_is_behind_the_newest_rollout_id_still_starts_its_rollout():
    """The previous rollout was stamped by a clock an hour ahead (a skewed worker, a sped-up
    rollout clock) and has finished: the next one starts, with an id sorting after it."""
    env = env_with_ledger()
    service, real = env.targets.canary_service, env.clock.now()
    env.clock.t = real + 3600
    first = create_rollout(env, quick_spec(5, 100), owner="run-1", actor="alice", lease_seconds=600)
    env.ledger.record(service, owner=None, now=env.clock.now(), phase=RolloutPhase.ROLLED_BACK,
                      transition=Transition(at=env.clock.now(), kind="rollback", actor="alice"))
    env.clock.t = real + 60
    second = create_rollout(env, quick_spec(5, 100).model_copy(update={"image": "app:3"}), owner="run-2",
                            actor="alice", lease_seconds=600)
    assert second.rollout_id > first.rollout_id and env.ledger.get(service) == second


def test_a_rollout_the_ledger_refuses_to_create_is_a_refusal_the_hooks_leave_alone():
    env = env_with_ledger()
    with pytest.raises(RolloutRefused, match="before any write"):
        create_rollout(env, quick_spec(5, 100), owner="run-1", actor="alice", lease_seconds=-1)
    assert env.ledger.get(env.targets.canary_service) is None


def test_a_run_stopped_because_its_rollout_was_superseded_is_left_alone_by_its_hook():
    """Its rollout ended and another began: a rollback from its hook would move the traffic of
    the new rollout, which is not this run's to touch."""
    from prefect.states import Failed

    from flows.hooks import leave_alone
    from rollway.ledger import RolloutSuperseded

    superseded = RolloutSuperseded("rollout 20270115T080000Z-aa is not the newest: 20270115T090000Z-bb is")
    assert "no longer the newest" in (leave_alone(Failed(data=superseded), {}) or "")
