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
