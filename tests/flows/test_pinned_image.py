"""A rollout runs the image its tag named when it started: the canary's revision names the digest,
recorded in the ledger, whatever the tag names later (on the embedded AWS, simulated traffic)."""

from __future__ import annotations

import logging
import time

import pytest
from prefect import flow

from flows.canary import RolloutRefused
from flows.hooks import leave_alone
from flows.progressive import run_progressive
from rollway.approvals import auto_approve
from rollway.aws.ecs import EcsDeployer
from rollway.aws.environment import aws_environment
from rollway.fakes import FakeClock
from rollway.ledger import RolloutRecord, Transition
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from tests.flows.moto_env import put_image, simulated
from tests.flows.test_preflight_names import WRITES, canary_run, progressive_run


def two_weeks(image: str) -> RolloutSpec:
    return RolloutSpec(
        image=image, stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 100)],
        phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(100,))],
        monitor_seconds=0,
    )


@flow
def progressive(env, spec, phased=True):
    return run_progressive(env, spec, auto_approve("alice"), owner="run-1", phased=phased)


def canary_image(aws) -> str:
    deployer = EcsDeployer(aws.get_client("ecs"), aws.targets)
    return deployer.image_of(deployer.describe(aws.targets.canary_service).task_definition)


def revisions(aws) -> list[str]:
    return aws.get_client("ecs").list_task_definitions(familyPrefix=aws.targets.task_family)["taskDefinitionArns"]


def test_a_rollout_keeps_the_digest_it_started_with_after_the_tag_is_pushed_again(aws, caplog):
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        judged = env.images.pin(image)
        assert "@sha256:" in judged
        first = progressive(env, two_weeks(image))
        assert first.outcome == "holding", first.reason
        assert first.pinned_image == judged
        record = env.ledger.get(aws.targets.canary_service)
        assert record.image == image and record.pinned_image == judged
        assert record.history[0].comment == f"rollout of {image} (pinned as {judged})"
        assert canary_image(aws) == judged
        registered = revisions(aws)
        # The tag is pushed again between the weeks: the resumed rollout still runs what week 1 judged.
        put_image(aws, image.rsplit(":", 1)[1], "e")
        assert env.images.pin(image) != judged
        with caplog.at_level(logging.WARNING):
            second = progressive(env, two_weeks(image), phased=False)
    assert second.outcome == "promoted", second.reason
    assert canary_image(aws) == judged
    assert revisions(aws) == registered
    assert env.ledger.get(aws.targets.canary_service).pinned_image == judged
    # The resume says the tag names another image now, and that it goes on with the one judged.
    (moved,) = [r.getMessage() for r in caplog.records if "pinned it to" in r.getMessage()]
    assert moved.startswith(f"{image} names {env.images.pin(image)} now, but rollout ")
    assert f"this run goes on with {judged}, the image its stages judged" in moved


@pytest.mark.parametrize("image, refusal", [
    ("{repo}:9.9.9", "holds no tag '9.9.9'; push it"),
    ("docker.io/webordinary/edit-container:2.0.0", "not in an ECR registry"),
])
def test_an_image_that_cannot_be_pinned_is_refused_before_any_write(aws, image, refusal):
    with simulated(aws, canary_error_rate=0.001) as (env, _):
        before = revisions(aws), canary_image(aws)
        with pytest.raises(RolloutRefused, match=refusal) as refused:
            progressive(env, two_weeks(image.format(repo=aws.topology.repository_uri)))
    assert str(refused.value).startswith("refused before any write: image ") and "\n" not in str(refused.value)
    assert env.ledger.get(aws.targets.canary_service) is None
    assert (revisions(aws), canary_image(aws)) == before
    assert env.router.get_weights() == Weights(stable=100, canary=0)


def recorded_before_pinning(aws, env, spec: RolloutSpec) -> RolloutRecord:
    """What an older release recorded before it died, ahead of its deploy: no pinned image."""
    service = aws.targets.canary_service
    now = env.clock.now()
    canary = EcsDeployer(aws.get_client("ecs"), aws.targets).describe(service)
    old = RolloutRecord(service=service, rollout_id=f"{int(now * 1000):015d}-old", image=spec.image,
                        spec_json=spec.model_dump_json(), phase=RolloutPhase.PENDING,
                        previous_task_definition=canary.task_definition, stable_desired=4, created_at=now,
                        updated_at=now, history=(Transition(at=now, kind="start", actor="operator",
                                                            comment=f"rollout of {spec.image}"),))
    assert old.pinned_image is None
    return env.ledger.create(old, owner="dead-run", now=now, lease_seconds=0.001, wall=time.time() - 10)


def test_a_rollout_recorded_before_images_were_pinned_is_resumed_on_the_digest(aws):
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        judged = env.images.pin(image)
        spec = two_weeks(image)
        service = aws.targets.canary_service
        recorded_before_pinning(aws, env, spec)
        result = progressive(env, spec)
    assert result.outcome == "holding", result.reason
    assert canary_image(aws) == judged
    assert env.ledger.get(service).pinned_image == judged


@pytest.mark.parametrize("run", [canary_run, progressive_run], ids=["canary", "progressive"])
def test_both_flows_refuse_an_unpinnable_image_with_no_write_and_hooks_that_leave_it_alone(aws, watch_calls, run):
    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    calls = [call for service in ("ecs", "elbv2", "sns", "dynamodb") for call in [watch_calls(aws.get_client(service))]]
    rollout = RolloutSpec(image="ghcr.io/webordinary/edit-container:2.0.0",
                          stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 100)])
    state = run(env, rollout, return_state=True)
    with pytest.raises(RolloutRefused, match="not in an ECR registry.*give the image by digest instead"):
        state.result()
    assert leave_alone(state, {}) is not None, "the run's hook would roll back a rollout that never started"
    written = WRITES.intersection(name for names in calls for name in names)
    assert not written, f"refused only after writing: {sorted(written)}"


def test_a_rollout_recorded_before_pinning_whose_image_cannot_be_pinned_says_to_roll_it_back(aws):
    with simulated(aws, canary_error_rate=0.001) as (env, _):
        spec = two_weeks("ghcr.io/webordinary/edit-container:2.0.0")
        old = recorded_before_pinning(aws, env, spec)
        before = revisions(aws)
        with pytest.raises(RolloutRefused) as refused:
            progressive(env, spec)
    said = str(refused.value)
    assert said.startswith("refused before any write: image 'ghcr.io/webordinary/edit-container:2.0.0' is not in an ")
    assert said.endswith(f"Rollout {old.rollout_id} was recorded before images were pinned and has not deployed yet, "
                         "so its image cannot be changed: roll it back (`rollway abort`) and start it again with an "
                         "image that can be pinned") and "\n" not in said
    assert env.ledger.get(aws.targets.canary_service).owner == "dead-run"  # not taken: nothing was written
    assert revisions(aws) == before


def test_the_tag_revision_a_run_before_pinning_left_on_the_canary_is_replaced_and_deregistered(aws):
    """An older release died after pointing the canary at a revision naming the tag, before
    recording it: the resume runs the digest, and that revision was left ACTIVE and unused."""
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        judged = env.images.pin(image)
        spec = two_weeks(image)
        service = aws.targets.canary_service
        recorded_before_pinning(aws, env, spec)
        deployer = EcsDeployer(aws.get_client("ecs"), aws.targets)
        stable = deployer.describe(aws.targets.stable_service).task_definition
        by_tag = deployer.register_revision(image, stable)
        deployer.update_service(service, task_definition=by_tag)
        result = progressive(env, spec)
    assert result.outcome == "holding", result.reason
    assert canary_image(aws) == judged
    assert by_tag not in revisions(aws), "the tag's revision was left ACTIVE"
    status = aws.get_client("ecs").describe_task_definition(taskDefinition=by_tag)["taskDefinition"]["status"]
    assert status == "INACTIVE"
    (deployed,) = [t for t in env.ledger.get(service).history if t.kind == "deploy"]
    assert f"deregistered {by_tag}, registered for {image} before pinning and replaced" in deployed.comment


def test_the_monitoring_windows_summary_names_the_digest_that_ran(aws):
    """Its title named the tag only, which names another image once pushed again."""
    from tests.flows.test_monitor import monitoring_artifact

    with simulated(aws, canary_error_rate=0.001) as (env, image):
        judged = env.images.pin(image)
        spec = two_weeks(image).model_copy(update={"monitor_seconds": 120})
        result = progressive(env, spec, phased=False)
    assert result.outcome == "promoted", result.reason
    title = monitoring_artifact(env).splitlines()[0]
    assert title.startswith(f"# Monitoring of `{image} (pinned as {judged})` on "), title


PINNED = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:" + "ab" * 32


def pinned_record(phase: RolloutPhase, canary: int = 0) -> RolloutRecord:
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=w) for w in (5, 100)])
    return RolloutRecord(service="svc-canary", rollout_id="20261129T063000Z-1a2b3c4d", image=spec.image,
                         pinned_image=PINNED, spec_json=spec.model_dump_json(), phase=phase,
                         weights=Weights.canary_at(canary), history=(Transition(at=1.0, kind="start", actor="alice"),))


@pytest.mark.parametrize("phase,canary", [(RolloutPhase.PAUSED, 0), (RolloutPhase.ROLLING_BACK, 0),
                                          (RolloutPhase.PROGRESSING, 5)])
def test_a_refusal_to_start_over_an_open_rollout_names_its_digest_beside_the_tag(phase, canary):
    """The tag alone names another image once it is pushed again: the refusal named only the tag,
    while the rollback page and finalize's title name the digest the open rollout runs."""
    from flows.canary import open_rollout_refusal

    message = open_rollout_refusal(pinned_record(phase, canary), "svc-canary")
    assert message.startswith(f"rollout 20261129T063000Z-1a2b3c4d of repo/app:2.0.0 (pinned as {PINNED}) holds "), message


def test_finalizes_lease_refusal_names_the_digest_beside_the_tag():
    from types import SimpleNamespace

    from flows.finalize import _held_by
    from rollway.fakes import FakeLedger
    from rollway.targets import Targets

    held = pinned_record(RolloutPhase.PROMOTED, 100)
    ledger = FakeLedger()
    ledger.create(held, owner="flow-run/another", now=1.0, lease_seconds=600)
    env = SimpleNamespace(ledger=ledger, targets=Targets(canary_service="svc-canary"), wall=lambda: 100.0)

    @flow
    def held_by():  # its ledger read logs to the run
        return _held_by(env, held, ledger_seconds=5)

    message = held_by()
    assert message.startswith(f"rollout 20261129T063000Z-1a2b3c4d of repo/app:2.0.0 (pinned as {PINNED}) is held by "
                              "flow-run/another"), message
