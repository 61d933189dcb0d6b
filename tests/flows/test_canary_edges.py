"""Edges of the canary flow and its rollback hooks: bad parameters, failed deploys, rollbacks by hand."""

from __future__ import annotations

import pytest
from prefect import flow

import flows.env
import flows.rollback
from flows.canary import RolloutRefused, canary, preflight
from flows.rollback import DEFAULT_HEALTHY_SECONDS, rollback_healthy_seconds
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment, rollout_flows_see

IMAGE = "webordinary/edit-container:2.0.0"


def _hooks_see(monkeypatch, env) -> None:
    """The hooks (and the rollback flow they run) build their environment from blocks: give them the fakes."""
    monkeypatch.setattr(flows.env, "load_environment", lambda *a, **k: env)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)


def test_a_run_with_invalid_parameters_does_not_roll_back_someone_elses_rollout(monkeypatch):
    """A canary run started (from the UI) with stages that are not increasing fails parameter
    validation before any AWS call; its on_failure hook does not then run a rollback that would
    take the traffic off another rollout live at 25%."""
    env = fake_environment()
    env.router.weights = Weights(stable=75, canary=25)  # a rollout in progress, owned by someone else
    _hooks_see(monkeypatch, env)
    bad = {"image": IMAGE, "stages": [{"weight": 25}, {"weight": 5}]}
    with pytest.raises(Exception):
        canary(spec=bad)
    assert env.router.weights == Weights(stable=75, canary=25), env.router.calls
    assert not [c for c in env.router.calls if c.startswith("set_weights")], env.router.calls
    assert not [c for c in env.deployer.calls if not c.startswith("describe")], env.deployer.calls


def test_a_run_stopped_by_a_rollback_by_hand_is_not_rolled_back_again_by_its_hook(monkeypatch):
    """On-call rolls the rollout back while its run waits at an approval. When the answer
    comes, the run finds the rollout ended (RolloutEnded) and stops without moving traffic;
    its on_failure hook runs no second rollback (a second Rollback alert, and a rollback that
    would hit whatever rollout owns the service by then)."""
    import flows.progressive
    from flows.progressive import progressive_rollout
    from flows.rollback import rollback_recorded
    from rollway.approvals import ApprovalAnswer
    from rollway.fakes import FakeLedger
    from rollway.ledger import RolloutEnded

    env = fake_environment()
    env.ledger = FakeLedger()
    _hooks_see(monkeypatch, env)
    rollout_flows_see(monkeypatch, env)

    def approver(pause, summary):
        rollback_recorded(env, "on-call: support tickets up", actor="oncall")
        return ApprovalAnswer(action="approve", approver="dana", comment="go")

    monkeypatch.setattr(flows.progressive, "prefect_approver", lambda *a, **k: approver)
    # The answer's look finds the traffic moved back: its drift check reads the weights again for
    # the read-back lag, on real time; the fakes answer at once, so half a second (not 30 s) will do.
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)], monitor_seconds=0,
                       verify_timeout_seconds=0.5)
    with pytest.raises(RolloutEnded):
        progressive_rollout(spec=spec, phased=False)
    rollbacks = [s for s, _ in env.notifier.messages if s.startswith("Rollback")]
    assert len(rollbacks) == 1, rollbacks
    assert env.router.calls.count("set_weights 100/0") == 1, env.router.calls


@pytest.mark.parametrize("phases", [
    [{"name": "week 1", "weights": [5]}, {"name": "week 2", "weights": [50, 100]}],
    [{"name": "all", "weights": [5, 50, 100], "decommission": True}],
], ids=["weekly", "decommission"])
def test_a_canary_run_given_a_phase_plan_it_would_ignore_is_refused_before_any_aws_call(monkeypatch, phases):
    """The canary flow runs every stage in one run and never decommissions: it used to accept
    weekly phases and run 5 -> 50 -> 100 in one go, without a word."""
    from flows.canary import RolloutRefused

    env = fake_environment()
    _hooks_see(monkeypatch, env)
    rollout_flows_see(monkeypatch, env)
    spec = {"image": IMAGE, "stages": [{"weight": w, "bake_seconds": 120} for w in (5, 50, 100)], "phases": phases}

    with pytest.raises(RolloutRefused, match="canary flow .*use the progressive flow") as refused:
        canary(spec=spec)

    assert "\n" not in str(refused.value)
    assert env.router.calls == [] and env.deployer.calls == [] and env.notifier.messages == []


@pytest.mark.parametrize("given", [{}, {"phases": [{"name": "all", "weights": [5, 50, 100]}]}],
                         ids=["no phases", "one phase"])
def test_a_canary_run_of_stages_without_weekly_phases_is_not_refused(given):
    from flows.canary import phase_plan_refusal

    spec = RolloutSpec.model_validate({"image": IMAGE, "stages": [{"weight": w} for w in (5, 50, 100)], **given})
    assert phase_plan_refusal(spec) is None
    assert phase_plan_refusal(RolloutSpec(image=IMAGE)) is None  # the default plan every spec carries


# --- the preflight refuses a set-up no stage could pass (on the embedded AWS) ------------------


def _on_aws(aws, targets=None):
    import time

    from rollway.aws.environment import aws_environment
    from rollway.clock import ClockSettings

    return aws_environment(aws.get_client, targets or aws.targets, ClockSettings(speed=1.0, anchor=time.time()).build())


@flow
def _preflight_on(env, rollout: RolloutSpec):
    return preflight(env, rollout)


def _untouched(aws):
    """The rollout wrote nothing: the traffic on stable, the canary on its revision, no new revision."""
    from rollway.aws.elbv2 import AlbRouter

    ecs = aws.get_client("ecs")
    canary = ecs.describe_services(cluster=aws.targets.cluster, services=[aws.targets.canary_service])["services"][0]
    families = ecs.list_task_definitions()["taskDefinitionArns"]
    return (AlbRouter(aws.get_client("elbv2"), aws.targets).get_weights(), canary["taskDefinition"], families)


def test_a_healthy_timeout_shorter_than_the_canary_groups_health_checks_is_refused_before_any_write(aws):
    """Webordinary's canary group checks a new target up to 15 s after it registers and waits 5 s
    for the answer: a rollout given 10 s for it timed out at shifts and rolled back. It is refused
    up front, naming the figures and the two ways out, with nothing changed."""
    said = _refused_untouched(aws, healthy_timeout_seconds=10)
    assert "healthy_timeout_seconds is 10 s" in said, said
    assert "HealthCheckIntervalSeconds 15 s" in said and "HealthCheckTimeoutSeconds 5 s" in said, said
    assert "may need 20 s" in said, said
    assert aws.targets.canary_target_group in said, said
    assert "raise healthy_timeout_seconds to at least 20" in said and "shorten" in said, said


def _refused_untouched(aws, healthy_timeout_seconds: float) -> str:
    """The preflight's refusal of a two-stage rollout given ``healthy_timeout_seconds``, once
    checked that it wrote nothing."""
    before = _untouched(aws)
    rollout = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)],
                          healthy_timeout_seconds=healthy_timeout_seconds)
    with pytest.raises(RolloutRefused) as refused:
        _preflight_on(_on_aws(aws), rollout)
    assert _untouched(aws) == before
    return str(refused.value)


def test_a_healthy_timeout_the_canary_groups_health_checks_fit_in_is_not_refused(aws):
    """The same 10 s with the group's checks 5 s apart, answered within 2 s (7 s): the preflight
    passes; so does the ALB guide's one check with AWS's default HealthyThresholdCount of 5, which
    counts only for a target that was unhealthy."""
    aws.get_client("elbv2").modify_target_group(TargetGroupArn=aws.topology.canary_target_group_arn,
                                                HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                                HealthyThresholdCount=5)
    rollout = RolloutSpec(image=IMAGE, healthy_timeout_seconds=10)
    stable, canary_service = _preflight_on(_on_aws(aws), rollout)
    assert (stable.name, canary_service.name) == (aws.targets.stable_service, aws.targets.canary_service)


def test_a_stable_group_whose_health_check_outlasts_the_rollbacks_wait_is_refused_before_any_write(aws):
    """The stable group checks a new target up to 300 s after it registers and waits 60 s for the
    answer (360 s); a rollback waits 300 s for a healthy stable target (the spec's 120 s being
    shorter). A rollback that found the stable service without targets timed out with users left
    on the canary. Refused up front, naming the figures and the two ways out, nothing changed."""
    aws.get_client("elbv2").modify_target_group(TargetGroupArn=aws.topology.stable_target_group_arn,
                                                HealthCheckIntervalSeconds=300, HealthCheckTimeoutSeconds=60)
    said = _refused_untouched(aws, healthy_timeout_seconds=120)
    assert f"the stable target group {aws.targets.stable_target_group}" in said, said
    assert "HealthCheckIntervalSeconds 300 s" in said and "HealthCheckTimeoutSeconds 60 s" in said, said
    assert "may need 360 s" in said and "a rollback waits 300 s" in said, said
    # The floor the refusal names by hand is the rollback's own (rollway/ cannot import flows/).
    assert f"the longer of {DEFAULT_HEALTHY_SECONDS:g} s and healthy_timeout_seconds" in said, said
    assert rollback_healthy_seconds(120) == 300
    assert "raise healthy_timeout_seconds to at least 360" in said and "shorten the stable group's" in said, said


def test_a_stable_group_whose_health_check_fits_the_rollouts_longer_wait_is_not_refused(aws):
    """The same stable group, with healthy_timeout_seconds 400: the rollback waits 400 s too."""
    aws.get_client("elbv2").modify_target_group(TargetGroupArn=aws.topology.stable_target_group_arn,
                                                HealthCheckIntervalSeconds=300, HealthCheckTimeoutSeconds=60)
    stable, _canary = _preflight_on(_on_aws(aws), RolloutSpec(image=IMAGE, healthy_timeout_seconds=400))
    assert stable.name == aws.targets.stable_service


def _service_elsewhere(aws, name: str, groups: list[str]) -> None:
    """A service of the cluster on the topology's revision, attached to ``groups`` (none: no load balancer)."""
    aws.get_client("ecs").create_service(
        cluster=aws.targets.cluster, serviceName=name, taskDefinition=aws.topology.task_definition_arn,
        desiredCount=0, launchType="FARGATE",
        loadBalancers=[{"targetGroupArn": arn, "containerName": aws.targets.container_name,
                        "containerPort": aws.targets.container_port} for arn in groups])


@pytest.mark.parametrize("attached", ["stable", "none"])
def test_a_canary_service_not_attached_to_the_canary_group_is_refused_before_any_write(aws, attached):
    """A canary service registered in another group (or behind no load balancer) gets none of the
    requests the rule sends to the canary group: every stage saw no canary requests, inconclusive,
    for hours. Refused, naming the service, its groups and the group the targets name."""
    groups = {"stable": [aws.topology.stable_target_group_arn], "none": []}[attached]
    _service_elsewhere(aws, "edit-canary-elsewhere", groups)
    targets = aws.targets.model_copy(update={"canary_service": "edit-canary-elsewhere"})
    before = _untouched(aws)
    with pytest.raises(RolloutRefused) as refused:
        _preflight_on(_on_aws(aws, targets), RolloutSpec(image=IMAGE, stages=[Stage(weight=w) for w in (5, 100)]))
    said = str(refused.value)
    assert "canary service edit-canary-elsewhere" in said, said
    assert f"canary target group {aws.targets.canary_target_group}" in said, said
    if attached == "stable":
        assert f"attached to target group {aws.targets.stable_target_group}" in said, said
    else:
        assert "attached to no load balancer target group" in said, said
    assert _untouched(aws) == before


def test_a_stable_service_attached_to_the_canary_group_is_refused_before_any_write(aws):
    """The stable service registered in the canary group as well: at 5 % the canary group's
    requests would reach the old version too, and the judge would count them as the canary's."""
    _service_elsewhere(aws, "edit-stable-both", [aws.topology.stable_target_group_arn,
                                                 aws.topology.canary_target_group_arn])
    targets = aws.targets.model_copy(update={"stable_service": "edit-stable-both"})
    with pytest.raises(RolloutRefused) as refused:
        _preflight_on(_on_aws(aws, targets), RolloutSpec(image=IMAGE))
    said = str(refused.value)
    assert "stable service edit-stable-both" in said, said
    assert f"also attached to the canary target group {aws.targets.canary_target_group}" in said, said
