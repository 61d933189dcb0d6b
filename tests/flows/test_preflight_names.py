"""Names first used after a rollout's first write are checked before it.

The container a new image goes into and the alert topic used to be looked up only when the
rollout registered its revision or sent its first notice. A misspelt one then failed the run
after it had written, not as a refusal, so its state hook rolled back (paging people and
disabling the bound flags) over a rollout that never started.
"""

from __future__ import annotations

import pytest
from prefect import flow

from flows.canary import RolloutRefused, run_canary
from flows.hooks import leave_alone
from flows.progressive import run_progressive
from rollway.approvals import auto_approve, scripted
from rollway.aws.environment import aws_environment
from rollway.fakes import FakeClock
from rollway.spec import RolloutSpec, Stage

WRITES = {"RegisterTaskDefinition", "UpdateService", "ModifyRule", "Publish", "PutItem", "UpdateItem",
          "TransactWriteItems"}


@flow
def canary_run(env, rollout):
    return run_canary(env, rollout, scripted())


@flow
def progressive_run(env, rollout):
    return run_progressive(env, rollout, auto_approve(), owner="run-1", phased=False)


@pytest.mark.parametrize("run", [canary_run, progressive_run], ids=["canary", "progressive"])
@pytest.mark.parametrize(("field", "value", "named"), [
    ("alert_topic", "webordinary-alert", "SNS topic 'webordinary-alert' not found"),
    ("container_name", "edit-containr", "container 'edit-containr' not found"),
])
def test_a_misnamed_container_or_alert_topic_is_refused_before_any_write(aws, watch_calls, run, field, value, named):
    targets = aws.targets.model_copy(update={field: value})
    env = aws_environment(aws.get_client, targets, FakeClock())
    calls = [call for service in ("ecs", "elbv2", "sns", "dynamodb") for call in [watch_calls(aws.get_client(service))]]
    rollout = RolloutSpec(image=f"{aws.topology.repository_uri}:2.0.0",
                          stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 100)])
    state = run(env, rollout, return_state=True)
    with pytest.raises(RolloutRefused, match=named):
        state.result()
    assert leave_alone(state, {}) is not None, "the run's hook would roll back a rollout that never started"
    written = WRITES.intersection(name for names in calls for name in names)
    assert not written, f"refused only after writing: {sorted(written)}"


@flow
def describe(env, service):
    from tasks import ecs

    return ecs.describe_service(env.deployer, service)


def test_a_misnamed_service_is_asked_for_once_not_three_times(aws, watch_calls):
    """ECS answers a misspelt service the same every time: the task asked three times, a
    second and more apart, and logged the failure each time before the refusal came."""
    from rollway.aws.errors import TargetNotFound

    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    calls = watch_calls(aws.get_client("ecs"))
    with pytest.raises(TargetNotFound, match="edit-servce"):
        describe(env, "edit-servce")
    assert calls.count("DescribeServices") == 1, calls
    # A service that is there is still read.
    assert describe(env, aws.targets.stable_service).name == aws.targets.stable_service


def _queues_renamed(targets, work: str, dlq_name: str):
    """``targets`` with the dead-letter queue of work queue ``work`` named ``dlq_name``."""
    queues = tuple(q.model_copy(update={"dlq_name": dlq_name}) if q.name == work else q for q in targets.queues)
    return targets.model_copy(update={"queues": queues})


def _refused_before_writing(aws, watch_calls, run, targets) -> str:
    """The refusal of ``run`` on ``targets``, checked as one the hooks leave alone, made before any write."""
    env = aws_environment(aws.get_client, targets, FakeClock())
    calls = [watch_calls(aws.get_client(service)) for service in ("ecs", "elbv2", "sns", "dynamodb")]
    rollout = RolloutSpec(image=f"{aws.topology.repository_uri}:2.0.0",
                          stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 100)])
    state = run(env, rollout, return_state=True)
    with pytest.raises(RolloutRefused) as refused:
        state.result()
    assert leave_alone(state, {}) is not None, "the run's hook would roll back a rollout that never started"
    written = WRITES.intersection(name for names in calls for name in names)
    assert not written, f"refused only after writing: {sorted(written)}"
    return str(refused.value)


@pytest.mark.parametrize("run", [canary_run, progressive_run], ids=["canary", "progressive"])
def test_a_dead_letter_queue_that_does_not_exist_is_refused_before_any_write(aws, watch_calls, run):
    """CloudWatch has no data for a misspelt DLQ, which read as an empty one: the DLQ guardrail
    watched nothing for the whole rollout, and nobody was told."""
    targets = _queues_renamed(aws.targets, "webordinary-edit-input", "webordinary-edit-inptu-dlq")
    said = _refused_before_writing(aws, watch_calls, run, targets)
    assert "dead-letter queue webordinary-edit-inptu-dlq" in said and f"{targets.region}" in said
    assert "SQS did not find the dead-letter queue" in said and "these credentials may not reach it" in said, said
    assert "fix the queue names in the targets block" in said and "deploy the queues" in said, said


def test_a_work_queue_redriving_to_another_dead_letter_queue_is_refused(aws, watch_calls):
    # The email queue's failures go to its own DLQ: the one named here never sees them.
    targets = _queues_renamed(aws.targets, "webordinary-email-queue", "webordinary-edit-input-dlq")
    said = _refused_before_writing(aws, watch_calls, canary_run, targets)
    assert "work queue webordinary-email-queue redrives its failures to" in said and "webordinary-email-dlq" in said
    assert "not to its dlq_name webordinary-edit-input-dlq" in said, said


def test_a_throttled_queue_lookup_is_refused_saying_so(aws, watch_calls):
    from botocore.exceptions import ClientError

    from rollway.deadline import READ_SECONDS
    from tests.botocore_events import on_operation

    def throttle(model, **_):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, model.name)

    sqs = aws.get_client.reading(READ_SECONDS)("sqs")
    with on_operation(sqs, "before-parameter-build", throttle, operation="GetQueueUrl"):
        said = _refused_before_writing(aws, watch_calls, canary_run, aws.targets)
    assert f"SQS did not answer the check that the watched queues exist in {aws.targets.region}" in said, said
    assert "ThrottlingException: Rate exceeded" in said and "start the rollout again once SQS answers" in said


@pytest.mark.parametrize("action", ["sqs:GetQueueUrl", "sqs:getqueueurl"], ids=["as-policies-spell-it", "as-sqs-says-it"])
def test_a_queue_lookup_the_role_may_not_make_names_the_statement_granting_it(aws, watch_calls, action):
    """SQS names the action it refused in lowercase ("not authorized to perform: sqs:getqueueurl"),
    IAM's names are case-insensitive: the refusal said only "grant sqs:getqueueurl", not the
    statement of the rollout's policy a person adds to the role."""
    from rollway.deadline import READ_SECONDS
    from tests.botocore_events import on_operation
    from tests.flows.test_rollout_denied import refusing

    queue = f"arn:aws:sqs:{aws.targets.region}:123456789012:webordinary-email-queue"
    sqs = aws.get_client.reading(READ_SECONDS)("sqs")
    with on_operation(sqs, "before-parameter-build", refusing("AccessDenied", action, queue, []),
                      operation="GetQueueUrl"):
        said = _refused_before_writing(aws, watch_calls, canary_run, aws.targets)
    assert "deployments/iam-policy.json, statement FindTheWatchedQueues" in said, said
