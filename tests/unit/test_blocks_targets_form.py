"""The form the Prefect UI shows for a Rollway Targets block (Blocks -> + -> Rollway Targets): the
block schema Prefect registers for the type, which is ``RollwayTargets.model_json_schema()``."""

from __future__ import annotations

import pytest

from blocks.targets import RollwayTargets
from rollway.targets import Targets

SCHEMA = RollwayTargets._to_block_schema().fields  # what register_type_and_schema sends the API


def _undescribed(properties: dict) -> list[str]:
    return [name for name, field in properties.items() if not (field.get("description") or "").strip()]


def test_every_name_the_block_holds_says_what_it_is() -> None:
    """Every field but rule_host showed as its bare title ("Stacks", "Rule Path", "Metrics
    Namespace"): what each name is for was in the README only."""
    properties = SCHEMA["properties"]
    assert set(properties) == set(Targets.model_fields)
    assert not _undescribed(properties), f"the block's form shows these without a description: {_undescribed(properties)}"
    long = {name: field["description"] for name, field in properties.items()
            if "\n" in field["description"] or len(field["description"]) > 200}
    assert not long, long


@pytest.mark.parametrize("model", ["QueueSpec", "TableSpec"])
def test_every_field_of_a_queue_or_table_says_what_it_is(model) -> None:
    properties = SCHEMA["definitions"][model]["properties"]
    assert not _undescribed(properties), f"{model}: {_undescribed(properties)}"


def test_the_descriptions_leave_the_defaults_and_checks_as_they_are() -> None:
    """Webordinary's names stay the form's defaults, and a saved block still loads as Targets."""
    properties = SCHEMA["properties"]
    assert properties["load_balancer"]["default"] == "webordinary-edit-alb"
    assert properties["listener_port"]["maximum"] == 65535
    assert RollwayTargets(canary_service="acme-canary").targets() == Targets(canary_service="acme-canary")


def test_a_block_given_its_clusters_arn_loads_the_cluster_by_name() -> None:
    arn = "arn:aws:ecs:us-west-2:123456789012:cluster/acme-cluster"
    assert "ARN" in SCHEMA["properties"]["cluster"]["description"]
    block = RollwayTargets(cluster=arn)
    assert block.targets().cluster == "acme-cluster"
    # Saved (Block.save dumps the block) and loaded again, the ARN's account is still known.
    assert block.model_dump()["cluster"] == arn
    assert block.targets().arns == (("cluster", arn),) == RollwayTargets.model_validate(block.model_dump()).arns
