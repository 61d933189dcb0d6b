"""A rollout's image in ECR of another region (a shared-services registry) is pinned there, by the
deployed flows, on the run's own credentials block: it was refused, and the person had to look the
digest up by hand."""

from __future__ import annotations

import pytest
from prefect import flow

from blocks.credentials import credentials_for_endpoint
from blocks.register import save_blocks
from flows.canary import RolloutRefused, canary, pin_image, pinning_in_any_region
from flows.env import load_session
from flows.progressive import progressive_rollout
from rollway.clock import ClockSettings
from rollway.spec import RolloutSpec, Stage
from tests.adapters.test_ecr_pin import shared_registry

TARGETS_BLOCK, CREDENTIALS_BLOCK = "pin-regions-targets", "pin-regions-aws"
WRITES = {"RegisterTaskDefinition", "UpdateService", "ModifyRule", "PutItem", "UpdateItem", "TransactWriteItems",
          "Publish"}


@pytest.fixture
def shared(aws, _get_client_for_region):
    save_blocks(aws.targets, credentials_for_endpoint(aws.endpoint_url, aws.targets.region),
                targets_block=TARGETS_BLOCK, credentials_block=CREDENTIALS_BLOCK)
    return shared_registry(_get_client_for_region)


def spec(image: str) -> RolloutSpec:
    return RolloutSpec(image=image, stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 100)])


@flow
def pinned_by_the_run(image: str) -> str:
    session = load_session(TARGETS_BLOCK, CREDENTIALS_BLOCK)
    env = pinning_in_any_region(session.environment(ClockSettings()), session.credentials)
    return pin_image(env, spec(image))


def test_a_tag_in_ecr_of_another_region_is_pinned_with_the_runs_credentials(shared):
    uri, digest = shared
    assert pinned_by_the_run(f"{uri}:2.0.0") == f"{uri}@{digest}"


@pytest.mark.parametrize("run", [canary, progressive_rollout], ids=["canary", "progressive_rollout"])
def test_the_rollout_flows_read_the_tag_in_its_own_region(shared, every_call, credentials_loaded, run):
    uri, _ = shared
    calls = [every_call(service) for service in ("ecs", "elbv2", "dynamodb", "sns")]
    asked = every_call("sts")
    # A tag the shared repository lacks: the refusal is ECR's answer in eu-west-1, not "another region".
    with pytest.raises(RolloutRefused) as refused:
        run(spec=spec(f"{uri}:9.9.9"), targets_block=TARGETS_BLOCK, aws_credentials_block=CREDENTIALS_BLOCK)
    assert str(refused.value) == (f"refused before any write: image '{uri}:9.9.9': ECR repository "
                                  "shared/edit-container holds no tag '9.9.9'; push it (publish_container) or give "
                                  "one it holds")
    assert not WRITES.intersection(name for names in calls for name in names)
    # One session in the targets' region and one in the registry's, each checked once, on the
    # block as the run loaded it: the pinner loaded it again from the Prefect API.
    assert asked == ["GetCallerIdentity"] * 2, asked
    assert credentials_loaded == [CREDENTIALS_BLOCK], credentials_loaded
