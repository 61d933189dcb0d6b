"""Two `canary` runs started at once on one service: the canary flow keeps no ledger, and its
preflight refused only once the canary carried traffic, so a second run started while the
first deployed went through, and both drove the same load balancer rule."""

from __future__ import annotations

import pytest
from prefect import flow

from flows.canary import RolloutRefused, run_canary
from rollway.approvals import scripted
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment
from tests.flows.test_progressive_fakes import Intercept

IMAGE = "webordinary/edit-container:2.0.0"
OTHER = "webordinary/edit-container:3.0.0"


def spec(image: str) -> RolloutSpec:
    return RolloutSpec(image=image, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=0)


@flow
def canary_on(env, rollout: RolloutSpec):
    return run_canary(env, rollout, scripted())


def test_a_second_canary_run_started_while_the_first_deploys_is_refused_and_changes_nothing():
    env = fake_environment()
    real = env.deployer
    second: dict = {}

    def start_the_second(name, args, kwargs):
        # Run 1 passed its preflight and registers its revision: run 2 starts now, and its
        # preflight finds the canary at 0 %, as run 1's did.
        if name == "register_revision" and not second:
            second["calls"] = len(real.calls)
            with pytest.raises(RolloutRefused, match="another canary run") as refused:
                canary_on(env, spec(OTHER))
            second["error"] = str(refused.value)
            second["writes"] = [c for c in real.calls[second["calls"]:] if not c.startswith("describe")]
            second["weights"] = list(env.router.calls)

    env.deployer = Intercept(real, start_the_second)

    result = canary_on(env, spec(IMAGE))

    assert second, "run 2 never started"
    assert "\n" not in second["error"]
    assert second["writes"] == [] and not [c for c in second["weights"] if c.startswith("set_weights")], second
    assert result.outcome == "promoted" and env.router.weights == Weights(stable=0, canary=100)
    assert real.image_of(real.services[env.targets.canary_service].task_definition) == IMAGE, "run 1's image serves"


def test_a_canary_run_after_another_has_finished_is_not_refused():
    env = fake_environment()
    assert canary_on(env, spec(IMAGE)).outcome == "promoted"
    env.router.weights = Weights(stable=100, canary=0)  # finalized by hand: the next release may start
    assert canary_on(env, spec(OTHER)).outcome == "promoted"


def test_a_canary_run_that_failed_frees_the_service_for_the_next_one():
    env = fake_environment()
    real = env.deployer

    def fail_the_deploy(name, args, kwargs):
        if name == "register_revision":
            raise RuntimeError("ECS refused the task definition")

    env.deployer = Intercept(real, fail_the_deploy)
    with pytest.raises(RuntimeError, match="ECS refused"):
        canary_on(env, spec(IMAGE))
    env.deployer = real
    assert canary_on(env, spec(OTHER)).outcome == "promoted"


def test_a_slot_release_the_api_refuses_does_not_fail_a_promoted_run(monkeypatch):
    """The Prefect API was unreachable at the moment the run gave its slot back: the error
    replaced the promotion's result, the run failed, and its hook rolled the promotion back."""
    import httpx
    from prefect.client.orchestration import SyncPrefectClient

    def unreachable(self, lease_id):
        raise httpx.ConnectError("Prefect API unreachable for a moment")

    monkeypatch.setattr(SyncPrefectClient, "release_concurrency_slots_with_lease", unreachable)
    env = fake_environment()
    assert canary_on(env, spec(IMAGE)).outcome == "promoted"
    assert env.router.weights == Weights(stable=0, canary=100)


def test_two_canary_services_never_share_a_slot():
    from flows.canary import canary_slot_name
    from rollway.targets import Targets

    one = Targets(cluster="prod", canary_service="eu-web-canary")
    other = Targets(cluster="prod-eu", canary_service="web-canary")
    assert canary_slot_name(one) != canary_slot_name(other)
