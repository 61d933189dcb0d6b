"""More of a rollback's and a monitoring window's refused calls, on the embedded AWS, with the run's
own names (``OWN``): each is said as the action and the statement of deployments/iam-policy.json
granting it, where a person reads it (the run's error, the page, the run's log). Each read as AWS's
bare refusal, which says nothing of what to add to the role.
"""

from __future__ import annotations

import time

import pytest
from prefect import flow

from rollway.aws.denied import PermissionDenied
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.environment import aws_environment
from rollway.aws.ledger import DynamoLedger
from rollway.fakes import FakeClock
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.botocore_events import on_operation
from tests.flows.test_rollout_denied import ACCOUNT, OWN, at_5_percent, granted, refusing

SPEC = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=w) for w in (5, 100)])


def on_table(table: str, refuse):
    """A before-parameter-build handler refusing (``refuse``) only the calls on ``table``."""
    def on_it(params, model, **_):
        if params.get("TableName") == table:
            refuse(model=model)
    return on_it


def promoted(aws) -> RolloutRecord:
    """A promoted rollout of ``SPEC`` in the run's own ledger table, its lease held by nobody."""
    now = time.time()
    t = aws.targets
    ledger = DynamoLedger(aws.get_client("dynamodb"), t)
    ledger.create(RolloutRecord(service=t.canary_service, rollout_id=new_rollout_id(now), image=SPEC.image,
                                spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROMOTED, stage_index=1,
                                weights=Weights(stable=0, canary=100)), owner="process/test", now=now,
                  lease_seconds=0)
    return ledger.get(t.canary_service)


@pytest.mark.parametrize("targets", [OWN])
def test_a_rollback_whose_page_is_refused_names_sns_publish_in_its_error(aws):
    # The traffic is back and only the page failed: the run's error is what on-call reads (no page
    # came), and its "notify (...)" step gave AWS's bare AuthorizationError.
    from flows.rollback import RollbackIncomplete, execute_rollback

    env = at_5_percent(aws)
    asked: list[str] = []

    @flow
    def rolling_back():
        return execute_rollback(env, "error rate 9% over 1%")

    with on_operation(aws.get_client("sns"), "before-parameter-build",
                      refusing("AuthorizationError", "sns:Publish", aws.topology.topic_arn, asked),
                      operation="Publish"), pytest.raises(RollbackIncomplete) as failed:
        rolling_back()
    (step,) = failed.value.failed_steps
    assert step.startswith("notify (AWS refused sns:Publish") and granted("Alert") in step, step
    said = str(failed.value)
    # Still says where things stand and how to go on.
    assert said.startswith("the traffic is back on the stable service"), said
    assert said.endswith("run the rollback again once the failed step can succeed"), said
    assert AlbRouter(aws.get_client("elbv2"), aws.targets).get_weights() == Weights(stable=100, canary=0)
    assert asked == ["sns:Publish"]  # refused for good: not sent again


@pytest.mark.parametrize("targets", [OWN])
def test_a_monitor_flow_whose_ledger_read_is_refused_names_the_ledger_statement(aws, monkeypatch):
    # The monitor flow reads which rollout it watches before run_monitor (named as it leaves):
    # refused there, the run failed on AWS's bare ClientError.
    from flows.monitor import monitor
    from tests.flows.fake_env import rollout_flows_see

    t = aws.targets
    env = aws_environment(aws.get_client, t, FakeClock())
    promoted(aws)
    rollout_flows_see(monkeypatch, env)
    asked: list[str] = []
    refuse = refusing("AccessDeniedException", "dynamodb:Query",
                      f"arn:aws:dynamodb:{t.region}:{ACCOUNT}:table/{t.rollouts_table}", asked)
    with on_operation(aws.get_client("dynamodb"), "before-parameter-build", on_table(t.rollouts_table, refuse),
                      operation="Query"), pytest.raises(PermissionDenied) as refused:
        monitor(spec=SPEC.model_dump(mode="json"), window_seconds=120)
    said = str(refused.value)
    assert refused.value.action == "dynamodb:Query" and granted("Ledger") in said, said
    assert refused.value.uncovered is None, said  # acme-rollouts is the table the statement stands for
    assert asked == ["dynamodb:Query"]


@pytest.mark.parametrize("targets", [OWN])
def test_a_canary_refused_the_revision_stable_runs_after_an_inactive_restore_names_the_statement(
        aws, ecs_refuses_inactive_revisions):
    # The recorded revision is INACTIVE, so the canary goes to the one stable runs: that
    # UpdateService refused was said inside the RuntimeError as AWS's bare text.
    from flows.rollback import RollbackIncomplete, execute_rollback
    from tests.flows.test_rollback_inactive_revision import deregistered_since

    t = aws.targets
    env, gone, stable_now = deregistered_since(aws, stable_moved=True)
    asked: list[str] = []
    refuse = refusing("AccessDeniedException", "ecs:UpdateService",
                      f"arn:aws:ecs:{t.region}:{ACCOUNT}:service/{t.cluster}/{t.canary_service}", asked)

    def onto_stables_revision(params, model, **_):
        if params.get("service") == t.canary_service and params.get("taskDefinition") == stable_now:
            refuse(model=model)

    @flow
    def judge_rolls_back():
        return execute_rollback(env, "error rate 7%", actor="judge", previous_task_definition=gone)

    with on_operation(aws.get_client("ecs"), "before-parameter-build", onto_stables_revision,
                      operation="UpdateService"), pytest.raises(RollbackIncomplete) as failed:
        judge_rolls_back()
    (step,) = failed.value.failed_steps  # the scale-down after it went through
    assert f"pointing it at {stable_now}, which {t.stable_service} runs, instead failed: " in step, step
    assert "AWS refused ecs:UpdateService" in step and granted("PointAndScaleTheTwoServices") in step, step
    assert f"{gone}" in step and "INACTIVE" in step, step  # what led to it is still said
    assert asked == ["ecs:UpdateService"]


@pytest.mark.parametrize("targets", [OWN])
def test_a_monitoring_window_whose_lease_is_refused_logs_the_ledger_statement(aws, caplog):
    # The lease's claim, renewals and release are logged and the window goes on: each said the
    # refusal without the run's names, so the run's own table matched no statement and every
    # statement granting UpdateItem was named (the flags' beside the ledger's).
    from flows.monitor import run_monitor

    t = aws.targets
    env = aws_environment(aws.get_client, t, FakeClock())
    record = promoted(aws)
    asked: list[str] = []
    refuse = refusing("AccessDeniedException", "dynamodb:UpdateItem",
                      f"arn:aws:dynamodb:{t.region}:{ACCOUNT}:table/{t.rollouts_table}", asked)

    @flow
    def watching():
        return run_monitor(env, SPEC, window_seconds=120, decommission=False, owner="process/monitor",
                           rollout=record.rollout_id)

    with on_operation(aws.get_client("dynamodb"), "before-parameter-build", on_table(t.rollouts_table, refuse),
                      operation="UpdateItem"):
        watching()
    logged = [r.getMessage() for r in caplog.records]
    claim = [m for m in logged if m.startswith("could not claim the rollout's lease to monitor it")]
    release = [m for m in logged if m.startswith("could not release the rollout's lease after monitoring")]
    for said in (claim, release):
        assert said and "AWS refused dynamodb:UpdateItem" in said[0] and granted("Ledger") in said[0], logged
    assert claim[0].endswith("watching anyway"), claim


def refused_publish(aws, asked: list[str], subject: str = ""):
    """SNS refusing the run's publishes (those whose subject starts with ``subject``) as it refuses
    one the role may not make."""
    refuse = refusing("AuthorizationError", "sns:Publish", aws.topology.topic_arn, asked)

    def on_it(params, model, **_):
        if params.get("Subject", "").startswith(subject):
            refuse(model=model)
    return on_operation(aws.get_client("sns"), "before-parameter-build", on_it, operation="Publish")


def logs_sns_publish_named(caplog, start: str) -> None:
    """The run logged one line starting with ``start``, naming sns:Publish's statement."""
    (said,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]
    assert "AWS refused sns:Publish" in said and granted("Alert") in said, said


def after_a_quiet_rollback(aws, caplog, then, logged: str, subject: str = ""):
    """A rollback paging nobody, then ``then(env, result)``, as a flow while SNS refuses the
    publishes whose subject starts with ``subject``: what ``then`` returned, once the run is seen
    to log the refusal on the line starting with ``logged``, asked once."""
    from flows.rollback import execute_rollback

    env = at_5_percent(aws)
    asked: list[str] = []

    @flow
    def rolled_back():
        return then(env, execute_rollback(env, "error rate 9% over 1%", notify=False))

    with refused_publish(aws, asked, subject):
        returned = rolled_back()
    logs_sns_publish_named(caplog, logged)
    assert asked == ["sns:Publish"]  # refused for good: not sent again
    return returned


def rolling_back_unmoved(aws, sns) -> None:
    """A rollback from 5 % whose move the load balancer refuses (a permission the role lacks), as a
    flow, with ``sns`` (a context: what SNS answers) around it: it fails with PermissionDenied."""
    from flows.rollback import execute_rollback

    t = aws.targets
    env = at_5_percent(aws)
    rule = f"arn:aws:elasticloadbalancing:{t.region}:{ACCOUNT}:listener-rule/app/{t.load_balancer}/1/2/3"

    @flow
    def rolling_back():
        return execute_rollback(env, "error rate 9% over 1%")

    with on_operation(aws.get_client("elbv2"), "before-parameter-build",
                      refusing("AccessDenied", "elasticloadbalancing:ModifyRule", rule, []), operation="ModifyRule"), \
            sns, pytest.raises(PermissionDenied):
        rolling_back()


@pytest.mark.parametrize("targets", [OWN])
def test_a_rollback_that_could_not_move_the_traffic_and_may_not_page_logs_sns_publish(aws, caplog):
    # The load balancer refused the move, and the "Rollback FAILED" page was refused too: the log
    # line saying nobody was paged gave AWS's bare AuthorizationError.
    t = aws.targets
    asked: list[str] = []
    rolling_back_unmoved(aws, refused_publish(aws, asked))
    logs_sns_publish_named(caplog, "could not page people that the rollback failed: ")
    assert AlbRouter(aws.get_client("elbv2"), t).get_weights() == Weights.canary_at(5)
    assert asked == ["sns:Publish"]


@pytest.mark.parametrize("targets", [OWN])
def test_a_rollback_not_recorded_whose_notice_is_refused_logs_sns_publish(aws, caplog):
    # The rollback's page went out, then the ledger could not record its end: the notice saying so
    # was refused (the role's publish taken away since), and its log line gave AWS's bare text.
    from flows.rollback import unrecorded
    from rollway.ledger import RollbackUnrecorded

    error = after_a_quiet_rollback(
        aws, caplog, lambda env, result: unrecorded(env, result, "the rollback's end (a write the ledger lost)",
                                                    rollout_id=None, phase=RolloutPhase.ROLLING_BACK, tell=True),
        "could not send the notice that the rollback is not recorded: ", subject="Rollback not recorded")
    assert isinstance(error, RollbackUnrecorded), error


@pytest.mark.parametrize("targets", [OWN])
def test_a_put_back_whose_follow_up_is_refused_names_sns_publish_in_its_step(aws, caplog):
    # The quiet put-back after another's rollback: its follow-up notice refused, the step (in the
    # run's result and summary) and the log line gave AWS's bare AuthorizationError.
    from flows.rollback import tell_put_back

    result = after_a_quiet_rollback(
        aws, caplog, lambda env, result: tell_put_back(env, "shift overtaken", Weights.canary_at(5), result,
                                                       rollout=None),
        "could not send the follow-up notice that the traffic was put back: ")
    step = result.steps[-1]
    assert step.startswith("the follow-up notice that 5% had reached the canary again could NOT be sent (AWS "
                           "refused sns:Publish"), step
    assert granted("Alert") in step, step
