"""The canary's scale-up wait before a stage: how long, and on which revision."""

from __future__ import annotations

import pytest
from prefect import flow
from pydantic import ValidationError

from flows.engine import shift_to
from rollway.aws.errors import ServiceNotStable
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment

IMAGE = "webordinary/edit-container:2.0.0"
NEW_TD = "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:2"


@flow
def first_stage(env, spec):
    return shift_to(env, spec, 5, 4, Weights(stable=100, canary=0), actor="operator", rollout="r-1")


def resumed_environment():
    """The canary already points at the rollout's revision, as a resumed run finds it: the
    process that pointed it is gone, so the ECS adapter remembers no revision of its own."""
    env = fake_environment()
    t = env.targets
    env.deployer.task_definitions[NEW_TD] = IMAGE
    env.deployer.services[t.canary_service] = env.deployer.services[t.canary_service].model_copy(
        update={"task_definition": NEW_TD})
    return env


def waits_recorded(env) -> list[tuple[list[str], float, dict | None]]:
    waits, real = [], env.deployer.wait_stable

    def wait_stable(services, timeout_seconds, expected=None):
        waits.append((list(services), timeout_seconds, dict(expected or {})))
        return real(services, timeout_seconds, expected)

    env.deployer.wait_stable = wait_stable
    return waits


def spec(**fields) -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=5), Stage(weight=100)], monitor_seconds=0, **fields)


def test_the_scale_up_waits_as_long_as_the_spec_allows():
    """A large image can take longer than ten minutes to start on Fargate; the wait is the spec's."""
    env = resumed_environment()
    waits = waits_recorded(env)
    first_stage(env, spec(scale_timeout_seconds=1500))
    assert [w[1] for w in waits] == [1500]
    assert env.router.weights == Weights(stable=95, canary=5)


def test_the_default_scale_up_wait_is_ten_minutes():
    env = resumed_environment()
    waits = waits_recorded(env)
    first_stage(env, spec())
    assert [w[1] for w in waits] == [600]


def test_a_resumed_scale_up_that_ecs_rolled_back_fails_before_any_traffic_moves():
    """ECS's circuit breaker put the canary back on the old revision while it scaled up: steady,
    but on the wrong version. The resumed run must not send the stage's traffic to it."""
    env = resumed_environment()
    t = env.targets
    env.deployer.rolls_back.add(t.canary_service)
    env.deployer._previous[t.canary_service] = STABLE_TD  # what ECS rolls back to
    with pytest.raises(ServiceNotStable, match=f"{t.canary_service} runs {STABLE_TD}, not {NEW_TD}"):
        first_stage(env, spec())
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_scale_timeout_over_an_hour_is_refused_with_its_bound():
    with pytest.raises(ValidationError, match="scale_timeout_seconds.*an hour"):
        spec(scale_timeout_seconds=7200)
    with pytest.raises(ValidationError, match="scale_timeout_seconds"):
        spec(scale_timeout_seconds=0)
