"""A notice that only tells of progress (the rollout complete) is sent if SNS takes it and logged if it refuses:
it never fails the run, whose hooks would roll back the release it told of."""

from __future__ import annotations

import logging

import pytest

from rollway.aws.elbv2 import AlbRouter
from rollway.model import Weights
from tests.botocore_events import on_operation
from tests.flows.moto_env import simulated
from tests.flows.test_canary_moto import canary_run, spec
from tests.flows.test_rollout_denied import refusing


def _refused_on_subject(aws, prefix: str, asked: list[str]):
    """SNS refusing, for good, every publish whose subject starts with ``prefix`` (the others go out)."""
    refuse = refusing("AuthorizationError", "sns:Publish", aws.topology.topic_arn, asked)

    def on_publish(params, model, **_):
        if params.get("Subject", "").startswith(prefix):
            refuse(model=model)

    return on_operation(aws.get_client("sns"), "before-parameter-build", on_publish, operation="Publish")


# "Monitoring passed" is sent after the ledger closed the window: refused, the run failed after
# the fact, the release healthy on 100 %.
@pytest.mark.parametrize("subject", ["Rollout complete", "Monitoring passed"])
def test_a_canary_whose_progress_notice_is_refused_is_still_promoted_and_watched(aws, caplog, subject):
    asked: list[str] = []
    with simulated(aws, canary_error_rate=0.001) as (env, image), caplog.at_level(logging.ERROR), \
            _refused_on_subject(aws, subject, asked):
        result = canary_run(env, spec(image))
    assert result.outcome == "promoted", result.reason
    assert result.monitoring_verified, result.reason  # the window ran, as it does when the notice goes out
    assert AlbRouter(aws.get_client("elbv2"), aws.targets).get_weights() == Weights(stable=0, canary=100)
    assert asked == ["sns:Publish"]  # refused for good: not asked again
    (said,) = [r.getMessage() for r in caplog.records if subject in r.getMessage()]
    assert "AWS refused sns:Publish" in said, said


def test_a_progressive_rollout_whose_stage_and_completion_notices_are_refused_goes_on_to_promotion(caplog):
    from botocore.exceptions import ClientError

    from rollway.approvals import auto_approve
    from rollway.phases import RolloutPhase
    from tests.flows.test_progressive_fakes import env_with_ledger, full_spec, progressive_on

    env = env_with_ledger()
    real = env.notifier.notify
    refused = []

    def notify(subject, message):
        if subject.startswith(("Rollout stage", "Rollout complete")):
            refused.append(subject)
            raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "not authorized"}}, "Publish")
        return real(subject, message)

    env.notifier.notify = notify
    with caplog.at_level(logging.ERROR):
        result = progressive_on(env, full_spec(), auto_approve())
    assert result.outcome == "promoted", result.reason
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.PROMOTED
    assert len(refused) == 6, refused  # five stages' notices and the completion's, each asked once
    assert sum("could not send" in r.getMessage() for r in caplog.records) == 6


def test_a_canary_whose_starting_notice_is_refused_is_refused_before_any_write(aws):
    """The first publish comes before the first write: refused, the run failed as any failure, and
    its hooks set out to roll back a rollout that had changed nothing."""
    from flows.canary import RolloutRefused
    from rollway.aws.ecs import EcsDeployer

    asked: list[str] = []
    deployer = EcsDeployer(aws.get_client("ecs"), aws.targets)
    before = deployer.describe(aws.targets.canary_service).task_definition
    with simulated(aws, canary_error_rate=0.001) as (env, image), \
            _refused_on_subject(aws, "Rollout starting", asked), pytest.raises(RolloutRefused) as refused:
        canary_run(env, spec(image))
    said = str(refused.value)
    assert said.startswith("refused before any write: AWS refused sns:Publish"), said
    assert "statement Alert" in said, said
    assert deployer.describe(aws.targets.canary_service).task_definition == before  # nothing deployed
    assert asked == ["sns:Publish"]

