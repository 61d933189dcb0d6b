"""What the rollout flows' hooks, resumes and the operator commands do with a rollout that is
closed (promoted, its window over) or recorded under older spec rules.

A run that drove nothing must not roll production back, a resume that cannot run the recorded
policy refuses and leaves the rollout as it is, and the rollback of a resumed run disables the
flags its rollout bound, not the ones its form named.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from prefect import flow

import flows.hooks
import flows.progressive
import rollway.cli.ops as ops
from flows.canary import RolloutRefused
from flows.progressive import advance_phase, progressive_rollout, run_progressive
from flows.rollback import RollbackRefused, rollback
from rollway.approvals import auto_approve
from rollway.fakes import FakeFlagStore, FakeLedger
from rollway.flags import FlagState
from rollway.ledger import Transition
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import fake_environment
from tests.flows.test_refusals import hooks_and_flows_see, promote

IMAGE = "webordinary/edit-container:2.0.0"
PRODUCTION = Weights(stable=0, canary=100)


class ThrottledLedger(FakeLedger):
    """A ledger whose next ``fail_reads`` reads are throttled, as DynamoDB does under load."""

    fail_reads = 0

    def get(self, service):
        if self.fail_reads:
            self.fail_reads -= 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Query")
        return super().get(service)


def promoted_and_watched(monkeypatch):
    """2.0.0 promoted, its monitoring window over: the canary service is production and the old
    service still runs at 0 %."""
    env = fake_environment()
    env.ledger = ThrottledLedger()
    hooks_and_flows_see(monkeypatch, env)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=300)
    assert promote(env, spec).outcome == "promoted"
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.PROMOTED and record.last_transition("watched") is not None
    assert env.router.weights == PRODUCTION
    return env


def record_under_older_rules(env) -> None:
    """Rewrite the newest record's spec as an older release accepted it (30-s periods)."""
    service = env.targets.canary_service
    old = json.loads(env.ledger.get(service).spec_json)
    old["analysis"]["interval_seconds"] = 30
    rollouts = env.ledger._rollouts[service]
    rollouts[-1] = rollouts[-1].model_copy(update={"spec_json": json.dumps(old)})


def assert_production_untouched(env) -> None:
    rollbacks = [subject for subject, _ in env.notifier.messages if subject.startswith("Rollback")]
    canary = env.deployer.services[env.targets.canary_service]
    assert env.router.weights == PRODUCTION and not rollbacks, (
        f"production moved back to the old version: weights {env.router.weights}, canary {canary.desired} tasks "
        f"on {canary.task_definition}, alerts {rollbacks}")


def test_a_weekly_advance_whose_first_read_is_throttled_leaves_production_alone(monkeypatch):
    """Its failure used to reach the hook as a plain error, and the hook's rollback acted on the
    closed rollout: all traffic back on the old version, the promoted one scaled down, a page."""
    env = promoted_and_watched(monkeypatch)
    env.ledger.fail_reads = 1
    with pytest.raises(RolloutRefused, match="ThrottlingException"):
        advance_phase()
    assert_production_untouched(env)


def test_a_weekly_advance_after_a_rollout_recorded_under_older_rules_has_nothing_to_do(monkeypatch):
    env = promoted_and_watched(monkeypatch)
    record_under_older_rules(env)
    assert advance_phase() is None
    assert_production_untouched(env)


def test_a_weekly_advance_that_fails_after_its_reads_leaves_production_alone(monkeypatch):
    """Whatever fails in its body, the hook's rollback refuses the closed rollout."""
    env = promoted_and_watched(monkeypatch)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the weekly step")

    monkeypatch.setattr(flows.progressive, "advance", broken)
    with pytest.raises(RuntimeError, match="a bug in the weekly step"):
        advance_phase()
    assert_production_untouched(env)


def test_the_hooks_rollback_refuses_a_closed_rollout_and_a_person_may_still_roll_it_back(monkeypatch):
    """The rollout flows' hooks ask for ``only_open_rollout``; the rollback flow run by hand does
    not, and acts on a promoted release (that is what a person running it means)."""
    env = promoted_and_watched(monkeypatch)
    with pytest.raises(RollbackRefused, match="production now"):
        rollback(reason="run advance_phase-x ended failed", actor="state hook (failed)", only_open_rollout=True)
    assert_production_untouched(env)
    rollback(reason="on-call: the release corrupts sessions", actor="oncall")
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_canary_runs_hook_rollback_is_not_recorded_on_a_promotion_whose_window_closed(monkeypatch):
    """The promotion's traffic was moved back to the old service by hand, and a `canary` flow run of
    3.0.0 then failed before its deploy (ECS refused the new revision). The services still agree with
    the promotion (the old revision on stable, the promoted one on the canary), so its hook's
    rollback, the run's own, was recorded on the promotion as its rollback, by "state hook (failed)".
    The hook now says so: the rollback acts, and the promotion is left as it was."""
    from flows.canary import canary

    env = promoted_and_watched(monkeypatch)
    env.router.weights = Weights(stable=100, canary=0)  # moved back by hand
    before = env.ledger.get(env.targets.canary_service)

    def refused(image, base):
        raise ClientError({"Error": {"Code": "ClientException", "Message": "Too many revisions"}},
                          "RegisterTaskDefinition")

    monkeypatch.setattr(env.deployer, "register_revision", refused)
    spec = RolloutSpec(image="webordinary/edit-container:3.0.0",
                       stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=0)
    state = canary(spec=spec.model_dump(mode="json"), return_state=True)

    assert state.is_failed(), state
    assert any(subject.startswith("Rollback") for subject, _ in env.notifier.messages), "the hook rolled back"
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.ledger.get(env.targets.canary_service) == before


def test_a_rerun_of_a_promoted_rollout_recorded_under_older_rules_says_it_is_already_promoted(monkeypatch):
    """progressive_rollout run again with the promoted image: its window over, the release is
    production. It refused on the recorded spec and said to roll it back with `rollway abort`,
    which refuses a promoted rollout ("nothing to abort"); it now answers as it does for any
    promoted rollout, reading the recorded spec leniently as advance_phase does."""
    env = promoted_and_watched(monkeypatch)
    record_under_older_rules(env)
    again = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=300)

    result = progressive_rollout(spec=again.model_dump(mode="json"), phased=False)

    assert result.outcome == "promoted" and "already promoted" in result.reason, result
    assert_production_untouched(env)


def test_a_rerun_of_a_finalized_rollout_says_the_stable_service_runs_it(monkeypatch):
    """After `rollway finalize` the promoted version runs on the stable service and the canary
    service is idle at 0 tasks, yet a run of the same image said it "is already promoted on
    <canary service>": the service that no longer runs it, and no word of the finalize."""
    env = promoted_and_watched(monkeypatch)
    service = env.targets.canary_service
    rollouts = env.ledger._rollouts[service]
    at = rollouts[-1].history[-1].at
    rollouts[-1] = rollouts[-1].model_copy(update={"history": rollouts[-1].history + (
        Transition(at=at + 1, kind="finalize-start", actor="carol"), Transition(at=at + 2, kind="finalized", actor="carol"))})

    result = progressive_rollout(spec=RolloutSpec(image=IMAGE, monitor_seconds=300).model_dump(mode="json"),
                                 phased=False)

    assert result.outcome == "promoted", result
    assert (f"{IMAGE} was already promoted and finalized (rollout {rollouts[-1].rollout_id}): "
            f"{env.targets.stable_service} runs it") in result.reason, result.reason
    assert f"on {service}" not in result.reason, result.reason


def two_phase_spec(flags=()):
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)],
                       phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(100,))],
                       flags=list(flags), verify_timeout_seconds=0.5, healthy_timeout_seconds=0.5, monitor_seconds=0)


@flow
def week_one(env, spec):
    return run_progressive(env, spec, auto_approve(), owner="process/week-1", actor="alice", phased=True)


def holding_at_5(monkeypatch, flags=()):
    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([FlagState(feature="new_editor"), FlagState(feature="dark_mode")])
    hooks_and_flows_see(monkeypatch, env)
    assert week_one(env, two_phase_spec(flags)).outcome == "holding"
    assert env.router.weights == Weights.canary_at(5)
    return env


def test_a_resume_of_a_rollout_recorded_under_older_rules_refuses_and_keeps_it_holding(monkeypatch):
    """It used to take the rollout, fail on the recorded spec, and its hook rolled it back."""
    env = holding_at_5(monkeypatch)
    record_under_older_rules(env)
    with pytest.raises(RolloutRefused, match="interval_seconds.*cannot be resumed.*rollway abort"):
        progressive_rollout(spec=two_phase_spec().model_dump(mode="json"), phased=False)
    record = env.ledger.get(env.targets.canary_service)
    assert env.router.weights == Weights.canary_at(5) and record.phase is RolloutPhase.PAUSED, (
        f"{record.phase.value} at {env.router.weights}; history {[t.kind for t in record.history]}")
    assert record.owner is None, "a refused resume holds no lease"


def test_the_rollback_of_a_resumed_run_disables_the_flags_its_rollout_bound(monkeypatch):
    """The resume drives the recorded spec (new_editor moves with the traffic) whatever its form
    named (dark_mode). Its hook used to disable the form's flag and leave new_editor on at 5 %."""
    env = holding_at_5(monkeypatch, flags=[FlagBinding(feature="new_editor")])
    assert env.flags.flags["new_editor"].enabled
    env.router.healthy["canary"] = 0  # the shift to 100 % fails
    with pytest.raises(Exception):
        progressive_rollout(spec=two_phase_spec([FlagBinding(feature="dark_mode")]).model_dump(mode="json"),
                            phased=False)
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK and env.router.weights == Weights(stable=100, canary=0)
    assert not env.flags.flags["new_editor"].enabled, env.flags.flags["new_editor"]
    assert not env.flags.flags["dark_mode"].enabled and env.flags.flags["dark_mode"].percentage == 0, (
        "a flag the rollout never bound was changed")


def operator_commands_see(monkeypatch, env) -> None:
    service = ops.Service(targets=env.targets, targets_block=None, credentials_block=None,
                          ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a, **k: service)


def test_status_shows_a_rollout_recorded_under_older_rules(monkeypatch, capsys):
    env = holding_at_5(monkeypatch)
    record_under_older_rules(env)
    operator_commands_see(monkeypatch, env)
    assert ops.status(targets_block=None, credentials_block=None, history=5) == 0
    out = capsys.readouterr().out
    assert "can be rolled back, not resumed" in out and "paused" in out


def test_abort_whose_restore_step_fails_says_what_is_left_and_exits_1(monkeypatch, capsys):
    env = holding_at_5(monkeypatch)
    operator_commands_see(monkeypatch, env)
    real = env.deployer.update_service

    def inactive_revision(service, *, task_definition=None, desired=None):
        if task_definition is not None and service == env.targets.canary_service:
            raise RuntimeError(f"ClientException: TaskDefinition {task_definition} is inactive")
        return real(service, task_definition=task_definition, desired=desired)

    env.deployer.update_service = inactive_revision
    code = ops.abort(approver="bob", reason="bad canary", flow_run=None, wait_seconds=0,
                     targets_block=None, credentials_block=None)
    assert code == 1
    assert env.router.weights == Weights(stable=100, canary=0)
    err = capsys.readouterr().err
    assert "is inactive" in err and "Run `rollway abort` again" in err
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLING_BACK, "left open to finish"


def read_back_waits(monkeypatch) -> list[float]:
    """How long each read-back of the load balancer is allowed to take, from here on."""
    import tasks.traffic

    timeouts: list[float] = []
    real = tasks.traffic.verify_weights

    def verify(router, expected, timeout_seconds=30.0):
        timeouts.append(timeout_seconds)
        return real(router, expected, timeout_seconds)

    monkeypatch.setattr(tasks.traffic, "verify_weights", verify)
    return timeouts


@pytest.mark.parametrize("recorded,waited", [(120.0, 120.0), (0.5, 30.0)])
def test_a_rollback_by_hand_reads_the_load_balancer_back_as_long_as_the_rollout_allows(monkeypatch, recorded, waited):
    """It used to wait the default 30 s whatever the rollout's spec said: a load balancer given
    two minutes to settle failed the rollback with WeightMismatch after the traffic moved. It
    never waits less than the default."""
    env = fake_environment()
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    spec = two_phase_spec().model_copy(update={"verify_timeout_seconds": recorded})
    assert week_one(env, spec).outcome == "holding"
    timeouts = read_back_waits(monkeypatch)
    rollback(reason="on-call: bad canary", actor="oncall")
    assert env.router.weights == Weights(stable=100, canary=0)
    assert timeouts == [waited]


FEATURE = "use_sqs_architecture"


def test_a_hooks_rollback_on_an_unreadable_ledger_disables_the_flags_its_run_named(monkeypatch):
    """The hook's rollback reads the recorded spec's flags; when that read is throttled it still
    rolls the visible canary back, and used to leave the bound flag on for 5 % of users."""
    env = fake_environment()
    env.ledger = ThrottledLedger()
    env.flags = FakeFlagStore([FlagState(feature=FEATURE)])
    hooks_and_flows_see(monkeypatch, env)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)],
                       flags=[FlagBinding(feature=FEATURE)], monitor_seconds=0)

    real_observe = env.metrics.observe

    def observe(start, end):
        if env.router.weights.canary == 5 and env.flags.flags[FEATURE].enabled:
            env.ledger.fail_reads = 1  # DynamoDB throttles the hook's first read
            raise RuntimeError("a bug mid-stage")
        return real_observe(start, end)

    env.metrics.observe = observe
    with pytest.raises(Exception):
        progressive_rollout(spec=spec.model_dump(mode="json"), phased=False)
    assert env.router.weights == Weights(stable=100, canary=0), "the hook did roll the traffic back"
    flag = env.flags.flags[FEATURE]
    assert not flag.enabled, f"traffic rolled back but {FEATURE} is still on at {flag.percentage}%"


def test_the_rollback_of_an_old_rules_record_reads_back_as_long_as_its_spec_allows(monkeypatch):
    """A record today's rules refuse is read for a rollback field by field; its read-back wait
    used to fall back to the default 30 s."""
    env = fake_environment()
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    assert week_one(env, two_phase_spec().model_copy(update={"verify_timeout_seconds": 120.0})).outcome == "holding"
    record_under_older_rules(env)
    timeouts = read_back_waits(monkeypatch)
    rollback(reason="on-call: bad canary", actor="oncall")
    assert env.router.weights == Weights(stable=100, canary=0) and timeouts == [120.0]


def test_the_hook_of_a_run_whose_rollout_record_was_deleted_still_rolls_the_traffic_back(monkeypatch, caplog):
    """The run held its rollout at 5 % and failed; before its hook acted, the rollout's item was
    deleted by hand. The hook names the rollout its run held, and a rollback naming a rollout the
    ledger does not hold is refused: the traffic stayed on a version nobody watched, and `rollway
    abort` refuses an unrecorded rollout too. No later rollout is recorded either, so the hook
    rolls back what the service runs, and says why."""
    env = holding_at_5(monkeypatch)
    real = flows.hooks.leave_alone

    def deleted_before_the_hook(state, params, *args, **kwargs):
        env.ledger._rollouts.pop(env.targets.canary_service, None)
        return real(state, params, *args, **kwargs)

    monkeypatch.setattr(flows.hooks, "leave_alone", deleted_before_the_hook)
    env.router.healthy["canary"] = 0  # the shift to 100 % fails
    with pytest.raises(Exception):
        progressive_rollout(spec=two_phase_spec().model_dump(mode="json"), phased=False)
    assert env.router.weights == Weights(stable=100, canary=0), "the traffic was left on the unwatched canary"
    assert "is no longer recorded" in caplog.text and "rolling back what the service runs" in caplog.text
