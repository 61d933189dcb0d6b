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
    from rollway.decide import FINAL_READ_RETRY_SECONDS

    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    # A look's reads go to the client bounded at its read's bound.
    cloudwatch = aws.get_client.reading(FINAL_READ_RETRY_SECONDS)("cloudwatch")
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


# --- What a rollback tells once the traffic is back, and what an alert logs ------------------

# The run's own names for the tables and the topic: a refusal naming them is matched to the
# statement written with the defaults only when the run's targets are passed along.
OWN = ACME.model_copy(update={"flags_table": "acme-flags", "rollouts_table": "acme-rollouts",
                              "alert_topic": "acme-alerts"})
SQS = "use_sqs_architecture"
ACCOUNT = "123456789012"


def at_5_percent(aws):
    """The embedded AWS with 5% on a canary of 2 tasks and a bound flag on at 5%: its environment."""
    from rollway.flags import FlagState

    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    env.router.set_weights(Weights.canary_at(5))
    aws.get_client("ecs").update_service(cluster=aws.targets.cluster, service=aws.targets.canary_service,
                                         desiredCount=2)
    env.flags.put(FlagState(feature=SQS, enabled=True, percentage=5), expected_version=0, actor="t", now=1.0)
    return env


def refused_rollback(aws, rollback, raises, client: str, operation: str, action: str, resource: str,
                     **only: str) -> tuple[list[str], str]:
    """``rollback()``, run as a flow while AWS refuses ``action`` (``client``'s ``operation``, on
    the calls whose parameters hold ``only``), failing with ``raises``: its page's lines and its
    error, once the traffic is seen back on stable."""
    from prefect import flow

    url = inbox(aws)
    refuse = refusing("AccessDeniedException", action, resource, [])

    def on_those(params, model, **_):
        if all(params.get(key) == value for key, value in only.items()):
            refuse(model=model)

    @flow
    def rolling_back():
        return rollback()

    with on_operation(aws.get_client(client), "before-parameter-build", on_those, operation=operation), \
            pytest.raises(raises) as failed:
        rolling_back()
    assert AlbRouter(aws.get_client("elbv2"), aws.targets).get_weights() == Weights(stable=100, canary=0)
    got = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    page = {body["Subject"]: body["Message"] for body in (json.loads(m["Body"]) for m in got)}
    return page[f"Rollback: {aws.targets.canary_service}"].splitlines(), str(failed.value)


def granted(statement: str) -> str:
    """How a refusal matched to ``statement`` with the run's own names says it."""
    return f"deployments/iam-policy.json, statement {statement}: add that statement (with your names)"


@pytest.mark.parametrize("targets", [OWN])
def test_a_rollback_whose_flag_write_is_refused_names_the_flags_statement_on_its_page(aws):
    from flows.rollback import RollbackIncomplete, execute_rollback

    t = aws.targets
    env = at_5_percent(aws)
    page, error = refused_rollback(
        aws, lambda: execute_rollback(env, "error rate 9% over 1%", bindings=[FlagBinding(feature=SQS)]),
        RollbackIncomplete, "dynamodb", "PutItem", "dynamodb:PutItem",
        f"arn:aws:dynamodb:{t.region}:{ACCOUNT}:table/{t.flags_table}", TableName=t.flags_table)
    line = next(line for line in page if line.startswith("Feature flags NOT disabled"))
    assert f"{SQS}: AWS refused dynamodb:PutItem" in line and granted("Flags") in line, line
    assert line.endswith("Run the rollback again once the flag store accepts writes."), line
    assert granted("Flags") in error, error


@pytest.mark.parametrize("targets", [OWN])
def test_a_rollback_the_ledger_may_not_record_names_the_ledger_statement_on_its_page(aws):
    import time

    from flows.rollback import rollback_recorded
    from rollway.aws.ledger import DynamoLedger
    from rollway.ledger import RollbackUnrecorded, RolloutRecord, new_rollout_id
    from rollway.phases import RolloutPhase

    t = aws.targets
    env = at_5_percent(aws)
    now = time.time()
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=w) for w in (5, 100)])
    DynamoLedger(aws.get_client("dynamodb"), t).create(
        RolloutRecord(service=t.canary_service, rollout_id=new_rollout_id(now), image=spec.image,
                      spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                      weights=Weights.canary_at(5)), owner="process/test", now=now, lease_seconds=0)
    page, error = refused_rollback(
        aws, lambda: rollback_recorded(env, "error rate 9% over 1%", actor="carol"), RollbackUnrecorded,
        "dynamodb", "UpdateItem", "dynamodb:UpdateItem",
        f"arn:aws:dynamodb:{t.region}:{ACCOUNT}:table/{t.rollouts_table}", TableName=t.rollouts_table)
    line = next(line for line in page if line.startswith("The ledger could NOT record"))
    assert "AWS refused dynamodb:UpdateItem" in line and granted("Ledger") in line, line
    assert "fix the ledger, then run the rollback again (`rollway abort`)" in line, line
    assert granted("Ledger") in error, error


@pytest.mark.parametrize("targets", [OWN])
def test_a_canary_restore_refused_after_the_traffic_is_back_names_the_statement_on_its_page(aws):
    from flows.rollback import RollbackIncomplete, execute_rollback

    t = aws.targets
    env = at_5_percent(aws)
    page, error = refused_rollback(
        aws, lambda: execute_rollback(env, "error rate 9% over 1%"), RollbackIncomplete, "ecs", "UpdateService",
        "ecs:UpdateService", f"arn:aws:ecs:{t.region}:{ACCOUNT}:service/{t.cluster}/{t.canary_service}",
        service=t.canary_service)
    restoring = next(i for i, line in enumerate(page) if line.startswith(f"Restoring {t.canary_service}"))
    # The restore, then the scale-down tried after it: each names the statement, on its own line.
    restore, scale = page[restoring:restoring + 2]
    assert "FAILED (AWS refused ecs:UpdateService" in restore and granted("PointAndScaleTheTwoServices") in restore
    assert scale.startswith(f"Scaling {t.canary_service} to 0 FAILED too (AWS refused ecs:UpdateService"), scale
    assert granted("PointAndScaleTheTwoServices") in scale, scale
    assert granted("PointAndScaleTheTwoServices") in error, error


@pytest.mark.parametrize("targets", [OWN])
def test_a_refused_alert_logs_the_statement_granting_sns_publish(aws, caplog):
    from prefect import flow

    from tasks import metrics

    t = aws.targets
    env = aws_environment(aws.get_client, t, FakeClock())
    topic = aws.topology.topic_arn
    asked: list[str] = []

    @flow
    def alerting():
        return metrics.alert(env.notifier, f"Alert: {t.canary_service}", "p99 over 2 s", targets=t)

    with on_operation(aws.get_client("sns"), "before-parameter-build",
                      refusing("AuthorizationError", "sns:Publish", topic, asked), operation="Publish"):
        assert alerting() is None  # logged and passed on: an alert acts on nothing
    logged = [r.getMessage() for r in caplog.records if "could not send the alert" in r.getMessage()]
    assert logged and "AWS refused sns:Publish" in logged[0] and granted("Alert") in logged[0], logged
    assert asked == ["sns:Publish"]


@pytest.mark.parametrize("targets", [OWN])
def test_a_monitoring_window_whose_page_is_refused_names_the_statement(aws):
    # The monitor flow's own window: a window nobody could see pages people; refused, that page was
    # said on AWS's bare text (the rollout flows' windows were named, through their runs). It no
    # longer fails the window's own steps (the `monitor` flow fails at its end, WindowPageRefused).
    from prefect import flow

    from flows.monitor import run_monitor

    t = aws.targets
    env = aws_environment(aws.get_client, t, FakeClock())
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=w) for w in (5, 100)])
    asked: list[str] = []

    @flow
    def watching():
        return run_monitor(env, spec, window_seconds=120, decommission=False)

    with on_operation(aws.get_client("sns"), "before-parameter-build",
                      refusing("AuthorizationError", "sns:Publish", aws.topology.topic_arn, asked),
                      operation="Publish"):
        watched = watching()
    refused = watched.window_page.answer if watched.window_page is not None else None
    assert refused is not None and "AWS refused sns:Publish" in refused and granted("Alert") in refused, refused
    assert "page was NOT sent" in watched.reason, watched.reason
    assert asked == ["sns:Publish"]
