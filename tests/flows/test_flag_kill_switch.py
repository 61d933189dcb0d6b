"""On-call turns a bound flag off (the kill switch) while the rollout bakes at 5 %: the next
shifts leave it off and say so in the ledger and the stage notices; a rollback still disables
a bound flag whoever changed it last."""

from __future__ import annotations

import pytest

from rollway.approvals import ApprovalAnswer, auto_approve, scripted
from rollway.fakes import FakeFlagStore
from rollway.flag_binding import FlagChange, apply_bindings, check_bindings, set_flag
from rollway.flags import FlagState
from rollway.model import Weights
from rollway.spec import FlagBinding, RolloutSpec, Stage, WeeklyPhase
from tests.flows.test_progressive_fakes import (
    IMAGE, Intercept, Killed, dies_recording_the_shift_to, env_with_ledger, progressive_on,
)

F = "use_sqs_architecture"


def rollout_with_oncall(change: FlagChange, stages=(5, 50, 100), approval_at: int | None = None):
    """A progressive rollout whose bound flag on-call changes once while the 5 % stage bakes."""
    spec = RolloutSpec(
        image=IMAGE,
        stages=[Stage(weight=w, bake_seconds=180, approval=(w == approval_at)) for w in stages],
        flags=[FlagBinding(feature=F)], monitor_seconds=0,
    )
    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature=F)])
    done: list[bool] = []

    def oncall(name, args, kwargs):
        if name == "observe" and env.router.weights.canary == 5 and not done:
            done.append(True)
            set_flag(env.flags, change, actor="oncall", now=env.clock.now())

    env.metrics = Intercept(env.metrics, oncall)
    return env, spec


def test_a_kill_switch_thrown_during_the_bake_stays_off_through_the_promotion():
    env, spec = rollout_with_oncall(FlagChange(feature=F, enabled=False, reason="kill switch: bad writes"))

    result = progressive_on(env, spec, auto_approve())

    assert result.outcome == "promoted"
    assert not env.flags.get(F).enabled, "the rollout turned the kill switch back on"
    # The 100 % stage records that the rollout is done with the flag, changing nothing: without it,
    # the flag read as held by this (promoted) rollout, and the next release could not start.
    assert [(e.actor, e.writer, e.previous_enabled, e.enabled) for e in env.flags.trails[F]] == [
        ("alice", "rollout", False, True), ("oncall", "person", True, False), ("alice", "rollout", False, False)]
    rollout = env.ledger.get(env.targets.canary_service).rollout_id
    assert env.flags.trails[F][-1].reason.startswith(f"rollout {rollout} stage 100%")
    check_bindings(env.flags, spec.flags, starting=True)
    record = env.ledger.get(env.targets.canary_service)
    left = [t.comment for t in record.history if t.kind == "flag" and "left off" in (t.comment or "")]
    assert len(left) == 2 and all("oncall" in c and "kill switch: bad writes" in c for c in left), left
    notices = [m for s, m in env.notifier.messages if s.startswith("Rollout stage")]
    assert any("left off 5%" in m and "oncall" in m for m in notices), notices


def test_a_rollback_disables_a_bound_flag_a_person_changed():
    env, spec = rollout_with_oncall(FlagChange(feature=F, percentage=1, reason="fewer users for now"),
                                    approval_at=50)

    result = progressive_on(env, spec, scripted(ApprovalAnswer(action="reject", approver="dana", comment="latency")))

    assert result.outcome == "rolled_back"
    flag = env.flags.get(F)
    assert (flag.enabled, flag.updated_by) == (False, "dana")


# --- the same rollout at the same or a lower weight (a resume, an adopt) -----------------------

F = "use_sqs_architecture"


def test_a_resume_after_an_unrecorded_shift_leaves_the_kill_switch_off():
    """The run shifts weights+flags to 50 % and dies before the ledger records it. On-call,
    seeing a dead run, throws the kill switch. The resumed run recognises its own shift and
    re-applies stage 50: the flag was back on (a rollout's writes are now known by its id, not
    by its weights going up)."""
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 50, 100)],
                       flags=[FlagBinding(feature=F)], monitor_seconds=0)
    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature=F)])
    real = env.ledger
    env.ledger = Intercept(real, dies_recording_the_shift_to(50))
    with pytest.raises(Killed):
        progressive_on(env, spec, auto_approve())
    env.ledger = real
    assert env.router.weights.canary == 50 and env.flags.get(F).percentage == 50
    set_flag(env.flags, FlagChange(feature=F, enabled=False, reason="kill switch: bad writes"),
             actor="oncall", now=env.clock.now())
    env.clock.sleep(601)
    seen = []
    env.metrics = Intercept(env.metrics, lambda n, a, k: n == "observe" and seen.append(
        (env.router.weights.canary, env.flags.get(F).enabled)))
    progressive_on(env, spec, auto_approve(), owner="run-2")
    at_50 = {e for w, e in seen if w == 50}
    assert at_50 == {False}, f"the flag was on while the 50 % stage baked after the kill switch: {sorted(set(seen))}"


def test_adopting_lower_live_weights_leaves_the_kill_switch_off():
    """A phased rollout holds at 25 %; on-call sees trouble, lowers the canary to 5 % by hand and
    throws the kill switch; the rollout resumed with adopt_live_weights turned the flag back on."""
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 25, 100)],
                       phases=[WeeklyPhase(name="w1", weights=(5, 25)), WeeklyPhase(name="w2", weights=(100,))],
                       flags=[FlagBinding(feature=F)], monitor_seconds=0)
    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature=F)])
    progressive_on(env, spec, auto_approve(), phased=True)
    assert env.router.weights.canary == 25 and env.flags.get(F).enabled
    env.router.weights = Weights(stable=95, canary=5)
    set_flag(env.flags, FlagChange(feature=F, enabled=False, reason="kill switch"), actor="oncall",
             now=env.clock.now())
    progressive_on(env, spec, auto_approve(), owner="run-2", phased=True, adopt=True)
    flag = env.flags.get(F)
    assert (flag.enabled, flag.updated_by) == (False, "oncall"), flag


# --- another service's rollout bound to the same flag --------------------------------------

def test_a_kill_switch_thrown_after_another_services_stage_stays_off_through_this_rollout():
    """billing's rollout sets the shared flag to 25 % while this rollout bakes at 5 %, then
    on-call throws the kill switch: this rollout's next stages used to take the flag over
    from billing's write and turn it back on."""
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 50, 100)],
                       flags=[FlagBinding(feature=F)], monitor_seconds=0)
    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature=F)])
    done: list[bool] = []

    def billing_then_oncall(name, args, kwargs):
        if name == "observe" and env.router.weights.canary == 5 and not done:
            done.append(True)
            apply_bindings(env.flags, [FlagBinding(feature=F)], 25, actor="bob", now=env.clock.now(),
                           rollout="billing-r7")
            set_flag(env.flags, FlagChange(feature=F, enabled=False, reason="kill switch: bad writes"),
                     actor="oncall", now=env.clock.now())

    env.metrics = Intercept(env.metrics, billing_then_oncall)

    result = progressive_on(env, spec, auto_approve())

    assert result.outcome == "promoted"
    assert not env.flags.get(F).enabled, "this rollout turned the kill switch back on"
    # The newest change of a setting is on-call's (the 100 % stage's write after it changes none).
    changed = [e.actor for e in env.flags.trails[F]
               if (e.previous_enabled, e.previous_percentage) != (e.enabled, e.percentage)]
    assert changed[-1] == "oncall", changed
    left = [t.comment for t in env.ledger.get(env.targets.canary_service).history
            if t.kind == "flag" and "left off 25%" in (t.comment or "")]
    assert len(left) == 2 and all("oncall" in c and "rollout billing-r7" in c for c in left), left


def test_a_bound_flag_deleted_by_hand_during_the_bake_is_named_so_and_not_recreated():
    """Someone deletes the bound flag from the table while 5 % bakes. The 50 % stage failed with
    "unknown feature flag ...: create it first", the start check's words, which said neither that
    the flag had existed (this rollout set it) nor what its deletion did to the stage."""
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 50, 100)],
                       flags=[FlagBinding(feature=F)], monitor_seconds=0)
    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature=F)])

    def deleted(name, args, kwargs):
        if name == "observe" and env.router.weights.canary == 5:
            env.flags.flags.pop(F, None)

    env.metrics = Intercept(env.metrics, deleted)
    with pytest.raises(Exception, match=f"bound feature flag '{F}' is gone from the flags table") as failed:
        progressive_on(env, spec, auto_approve())
    for phrase in ("this rollout's 50% stage does not recreate it and wrote nothing",
                   f"`rollway flags set {F} --create --no-enabled`"):
        assert phrase in str(failed.value), failed.value
    assert F not in env.flags.flags  # not recreated
    assert env.router.weights == Weights(stable=95, canary=5)  # the shift went back with the flag's failure

