"""On-call turns a bound flag off (the kill switch) while the rollout bakes at 5 %: the next
shifts leave it off and say so in the ledger and the stage notices; a rollback still disables
a bound flag whoever changed it last."""

from __future__ import annotations

from rollway.approvals import ApprovalAnswer, auto_approve, scripted
from rollway.fakes import FakeFlagStore
from rollway.flag_binding import FlagChange, set_flag
from rollway.flags import FlagState
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.flows.test_progressive_fakes import IMAGE, Intercept, env_with_ledger, progressive_on

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
    flag = env.flags.get(F)
    assert (flag.enabled, flag.updated_by) == (False, "oncall"), "the rollout turned the kill switch back on"
    assert [(e.actor, e.enabled) for e in env.flags.trails[F]] == [("alice", True), ("oncall", False)]
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
