"""`rollway status` says which version users get now, read from ECS and the load balancer.

Its "image" row is the rollout's: after a rollback users no longer get it, and status said nothing
of what the stable service runs, which is what they get (on moto, through the saved blocks).
"""
from __future__ import annotations

import rollway.cli.ops as ops
from rollway.aws.ecs import EcsDeployer
from rollway.aws.environment import aws_environment
from rollway.clock import ClockSettings
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.moto_env import saved_blocks


def on_moto(aws):
    """The service on moto for status to read: its targets, ECS client, deployer and environment, the
    revision the stable service runs, and a rollout's spec of image 2.1.0 at 5 % then 100 %."""
    t = aws.targets
    ecs = aws.get_client("ecs")
    deployer = EcsDeployer(ecs, t)
    env = aws_environment(aws.get_client, t, ClockSettings().build())
    spec = RolloutSpec(image=f"{aws.topology.repository_uri}:2.1.0", stages=[Stage(weight=5), Stage(weight=100)])
    return t, ecs, deployer, env, deployer.describe(t.stable_service).task_definition, spec


def test_status_says_which_version_users_get_at_5_percent_and_after_the_rollback(aws, capsys):
    t, ecs, deployer, env, stable, spec = on_moto(aws)
    release = deployer.register_revision(spec.image, stable)
    ecs.update_service(cluster=t.cluster, service=t.canary_service, taskDefinition=release, desiredCount=1)
    env.router.set_weights(Weights.canary_at(5))
    now = env.clock.now()
    env.ledger.create(RolloutRecord(
        service=t.canary_service, rollout_id=new_rollout_id(now - 600), image=spec.image,
        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0, weights=Weights.canary_at(5),
        previous_task_definition=stable, canary_task_definition=release), owner="process/gone", now=now - 600,
        lease_seconds=0)
    blocks = saved_blocks(aws, "users-get")
    stable_runs = f"{deployer.image_of(stable)} ({t.stable_service} runs {stable})"

    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    out = capsys.readouterr().out
    assert f"\nusers get    95%: {stable_runs}; 5%: {spec.image} ({t.canary_service} runs {release})\n" in out, out

    env.router.set_weights(Weights(stable=100, canary=0))  # the traffic back on stable, as a rollback leaves it
    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    out = capsys.readouterr().out
    assert f"\nusers get    {stable_runs}: all the traffic\n" in out, out
