"""A rollout whose metrics cannot be read is refused before it moves any traffic."""

from __future__ import annotations

import pytest
from prefect import flow

from flows.canary import RolloutRefused, run_canary
from flows.progressive import run_progressive
from rollway.approvals import auto_approve, scripted
from rollway.fakes import FakeLedger
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment

IMAGE = "webordinary/edit-container:2.0.0"
SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=0)
DENIED = ("metrics for [1799999880, 1800000000) unavailable: An error occurred (AccessDenied) when calling the "
          "GetMetricData operation: not authorized to perform cloudwatch:GetMetricData")


@flow
def canary_on(env):
    return run_canary(env, SPEC, scripted())


@flow
def progressive_on(env):
    return run_progressive(env, SPEC, auto_approve(), owner="run-1", actor="alice", phased=False)


def test_a_canary_whose_metrics_cannot_be_read_is_refused_before_any_traffic_moves():
    """The role could not call GetMetricData: the run used to deploy the canary, send it 5 % of
    the traffic, and only then find that no stage could be judged (every look an error, the
    stage paused at its end with the canary serving users). It is now refused up front,
    naming CloudWatch's answer, with nothing changed."""
    env = fake_environment()
    env.metrics.error = DENIED
    with pytest.raises(RolloutRefused, match="AccessDenied"):
        canary_on(env)
    assert env.router.weights == Weights(stable=100, canary=0)
    canary = env.deployer.services[env.targets.canary_service]
    assert canary.desired == 0 and canary.task_definition == STABLE_TD
    assert env.notifier.messages == []


def test_a_progressive_rollout_whose_metrics_cannot_be_read_records_nothing():
    env = fake_environment()
    env.ledger = FakeLedger()
    env.metrics.error = DENIED
    with pytest.raises(RolloutRefused, match="AccessDenied"):
        progressive_on(env)
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.ledger.get(env.targets.canary_service) is None
