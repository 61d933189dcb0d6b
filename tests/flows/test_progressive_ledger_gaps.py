"""progressive_rollout on fakes where a ledger write falls in a gap: a run blocked past its
lease, a kill between two writes that belong together, a late write of an older rollout."""

from __future__ import annotations

from prefect import flow

from flows.progressive import run_progressive
from rollway.approvals import auto_approve
from rollway.fakes import FakeLedger
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


def env_with_ledger():
    env = fake_environment()
    env.ledger = FakeLedger()
    return env


def quick_spec(*weights: int, **fields) -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in weights],
                       monitor_seconds=0, **fields)


@flow
def progressive_on(env, spec, approver, owner="run-1"):
    return run_progressive(env, spec, approver, owner=owner, actor="alice", phased=False)


def test_a_shift_that_outlasts_the_lease_is_still_recorded_by_its_run():
    """ECS may take most of its 600 s wait to place the canary, then health checks run: the
    shift ends after the run's lease (also 600 s) expired. Nobody took the rollout over, so the
    run records its shift and goes on, instead of failing and having its hook roll back."""
    env = env_with_ledger()
    real_wait = env.deployer.wait_stable

    def slow_wait(services, timeout_seconds):
        env.clock.sleep(590)
        return real_wait(services, timeout_seconds)

    env.deployer.wait_stable = slow_wait
    env.router.healthy_targets = lambda version: (env.clock.sleep(15), 1)[1]
    result = progressive_on(env, quick_spec(5, 50, 100), auto_approve())
    assert result.outcome == "promoted"
    record = env.ledger.get(env.targets.canary_service)
    assert [t.to_weights.canary for t in record.history if t.kind == "shift"] == [5, 50, 100]
