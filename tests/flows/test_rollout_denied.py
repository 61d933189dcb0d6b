"""A rollout's or a rollback's AWS call the worker's role may not make, on the embedded AWS: the run
fails naming the refused action and the statement of deployments/iam-policy.json that grants it
(the statement a person adds to the role), asked once. It failed on AWS's bare ClientError text.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from flows.canary import RolloutRefused
from rollway.aws.denied import PassRoleDenied, PermissionDenied
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.environment import aws_environment
from rollway.fakes import FakeClock
from rollway.model import Weights
from rollway.spec import FlagBinding, RolloutSpec, Stage
from rollway.targets import Targets
from tests.botocore_events import on_operation
from tests.flows.moto_env import inbox, simulated
from tests.flows.test_canary_moto import canary_run, rollback_run

ROLE = "arn:aws:sts::123456789012:assumed-role/rollway-worker/run"
# The run's own names: a refusal naming them is matched to the statement written with the defaults.
ACME = Targets(load_balancer="acme-alb", canary_target_group="acme-canary", stable_target_group="acme-stable")


def refusing(code: str, action: str, resource: str, asked: list[str]):
    """A before-parameter-build handler answering every call as AWS refuses one for want of a permission."""
    def refuse(model, **_):
        asked.append(action)
        raise ClientError({"Error": {"Code": code, "Message": (
            f"User: {ROLE} is not authorized to perform: {action} on resource: {resource} because no "
            f"identity-based policy allows the {action} action")}}, model.name)
    return refuse


def test_a_canary_whose_update_service_is_refused_names_the_statement_granting_it_asked_once(aws):
    t = aws.targets
    service = f"arn:aws:ecs:{t.region}:123456789012:service/{t.cluster}/{t.canary_service}"
    ecs = aws.get_client("ecs")
    asked: list[str] = []
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        spec = RolloutSpec(image=image, stages=[Stage(weight=w, bake_seconds=900) for w in (5, 100)])
        with on_operation(ecs, "before-parameter-build", refusing("AccessDeniedException", "ecs:UpdateService",
                                                                  service, asked), operation="UpdateService"), \
                pytest.raises(PermissionDenied) as refused:
            canary_run(env, spec)
    said = str(refused.value)
    assert refused.value.action == "ecs:UpdateService", said
    assert "deployments/iam-policy.json, statement PointAndScaleTheTwoServices" in said
    assert "add that statement" in said
    assert asked == ["ecs:UpdateService"]  # not tried again: ECS refuses it the same way every time


@pytest.mark.parametrize("targets", [ACME])
def test_a_rollback_whose_modify_rule_is_refused_names_the_statement_granting_it(aws):
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    router.set_weights(Weights.canary_at(5))
    rule = f"arn:aws:elasticloadbalancing:{aws.targets.region}:123456789012:listener-rule/app/acme-alb/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
    url = inbox(aws)
    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    asked: list[str] = []
    with on_operation(elbv2, "before-parameter-build", refusing("AccessDenied", "elasticloadbalancing:ModifyRule",
                                                                rule, asked), operation="ModifyRule"), \
            pytest.raises(PermissionDenied) as refused:
        rollback_run(env, "error rate 9% over 1%")
    said = str(refused.value)
    assert refused.value.action == "elasticloadbalancing:ModifyRule", said
    # The run's own load balancer (acme-alb) is the one the statement's Resource stands for.
    assert refused.value.uncovered is None, said
    assert "deployments/iam-policy.json, statement ShiftTheWeightsOfItsListenerRules" in said
    # The page on-call gets says so too, not AWS's bare text.
    sqs = aws.get_client("sqs")
    pages = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    failed = [p["Message"] for p in pages if p["Subject"].startswith("Rollback FAILED")]
    assert failed and "statement ShiftTheWeightsOfItsListenerRules" in failed[0], pages
    assert router.get_weights() == Weights.canary_at(5)
    assert asked == ["elasticloadbalancing:ModifyRule"]  # refused for good: not sent again


def test_a_preflight_read_refused_names_the_statement_granting_it(aws):
    t = aws.targets
    service = f"arn:aws:ecs:{t.region}:123456789012:service/{t.cluster}/{t.stable_service}"
    ecs = aws.get_client("ecs")
    env = aws_environment(aws.get_client, t, FakeClock())
    spec = RolloutSpec(image=f"{aws.topology.repository_uri}:2.0.0", stages=[Stage(weight=w) for w in (5, 100)])
    asked: list[str] = []
    with on_operation(ecs, "before-parameter-build", refusing("AccessDeniedException", "ecs:DescribeServices",
                                                              service, asked), operation="DescribeServices"), \
            pytest.raises(RolloutRefused, match="refused before any write") as refused:
        canary_run(env, spec)
    assert "deployments/iam-policy.json, statement ReadTheTwoServices" in str(refused.value), str(refused.value)


def test_metrics_the_role_may_not_read_name_the_statement_in_the_observation(aws):
    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    cloudwatch = aws.get_client("cloudwatch")
    asked: list[str] = []
    with on_operation(cloudwatch, "before-parameter-build", refusing("AccessDenied", "cloudwatch:GetMetricData", "*",
                                                                     asked), operation="GetMetricData"):
        seen = env.metrics.observe(0.0, 600.0)
    assert seen.error and "deployments/iam-policy.json, statement ReadMetrics" in seen.error, seen.error


def test_a_canary_refused_pass_role_keeps_the_roles_it_names(aws):
    # Named as the run leaves, a PassRoleDenied (an adapter's error over the refusal) became a
    # plain PermissionDenied: the roles to put in the statement's Resource were gone.
    role = "arn:aws:iam::123456789012:role/Webordinary-TaskRole-1A2B3C"
    ecs = aws.get_client("ecs")
    asked: list[str] = []
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        spec = RolloutSpec(image=image, stages=[Stage(weight=w, bake_seconds=900) for w in (5, 100)])
        with on_operation(ecs, "before-parameter-build", refusing("AccessDeniedException", "iam:PassRole", role, asked),
                          operation="RegisterTaskDefinition"), pytest.raises(PassRoleDenied) as refused:
            canary_run(env, spec)
    assert role in refused.value.roles
    assert "deployments/iam-policy.json, statement PassTheTaskRolesTheRevisionsCopy" in str(refused.value)


def test_a_named_refusal_is_final_to_every_retry_condition():
    # ``again`` retried anything but AWS's own error codes: a refusal already named (the image
    # pinning's, or one named inside a task) was asked again by a bounded read and a ledger read.
    from tasks import retry

    named = [PermissionDenied("ecs:UpdateService", "AccessDeniedException: no", "deployments/iam-policy.json, statement X"),
             PassRoleDenied("webordinary-edit-task", ("arn:aws:iam::123456789012:role/r",), "AccessDeniedException: no",
                            None)]
    for err in named:
        assert not retry.again(err), err
        assert not retry.again(err, denied=retry.FINAL_DYNAMODB), err


def test_a_bound_flag_the_role_may_not_read_names_the_flags_statement(aws):
    # The flag store's own error over the refusal (FlagStoreUnavailable) reached the run as AWS's
    # bare text: "unreachable", where the table was there and the role could not read it.
    t = aws.targets
    table = f"arn:aws:dynamodb:{t.region}:123456789012:table/{t.flags_table}"
    dynamodb = aws.get_client("dynamodb")
    env = aws_environment(aws.get_client, t, FakeClock())
    spec = RolloutSpec(image=f"{aws.topology.repository_uri}:2.0.0", stages=[Stage(weight=w) for w in (5, 100)],
                       flags=[FlagBinding(feature="use_sqs_architecture")])
    asked: list[str] = []
    refuse = refusing("AccessDeniedException", "dynamodb:GetItem", table, asked)

    def on_the_flags_table(params, model, **_):
        if params.get("TableName") == t.flags_table:
            refuse(model=model)

    with on_operation(dynamodb, "before-parameter-build", on_the_flags_table, operation="GetItem"), \
            pytest.raises(RolloutRefused, match="refused before any write") as refused:
        canary_run(env, spec)
    said = str(refused.value)
    assert "dynamodb:GetItem" in said and "deployments/iam-policy.json, statement Flags:" in said, said


def test_a_finalize_whose_modify_rule_is_refused_stops_naming_the_statement_granting_it(aws):
    """finalize turns a failed step into FinalizeIncomplete with the step's error: a refused
    permission read as AWS's bare text there, with no word of what to add to the role."""
    from rollway.finalize import FinalizeIncomplete
    from tests.flows.test_finalize import finalize_on, promote_by_hand

    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    elbv2 = aws.get_client("elbv2")
    rule = f"arn:aws:elasticloadbalancing:{aws.targets.region}:123456789012:listener-rule/app/{aws.targets.load_balancer}/1/2/3"
    asked: list[str] = []
    with on_operation(elbv2, "before-parameter-build", refusing("AccessDenied", "elasticloadbalancing:ModifyRule",
                                                                rule, asked), operation="ModifyRule"), \
            pytest.raises(FinalizeIncomplete) as stopped:
        finalize_on(env)
    said = " ".join(str(stopped.value).split())
    assert "PermissionDenied: AWS refused elasticloadbalancing:ModifyRule" in said, said
    assert "deployments/iam-policy.json, statement ShiftTheWeightsOfItsListenerRules" in said, said
    assert "Run finalize again" in said, said  # still says where things stand and how to go on
    assert asked == ["elasticloadbalancing:ModifyRule"]
