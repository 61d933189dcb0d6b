"""rollway's Targets as a Prefect Block, editable in the Prefect UI (Blocks -> Rollway Targets)."""

from __future__ import annotations

from prefect.blocks.core import Block

from rollway.targets import Targets


class RollwayTargets(Targets, Block):
    """Names of the service under rollout and everything around it (defaults: Webordinary).

    The same model as ``rollway.targets.Targets``: a saved block loads as a Targets.
    """

    _block_type_name = "Rollway Targets"
    _block_type_slug = "rollway-targets"
    _description = "AWS names rollway acts on: load balancer, target groups, ECS cluster and services, tables, queues, topic."

    def targets(self) -> Targets:
        """A plain Targets (no Block machinery) with the same values."""
        return Targets.model_validate(self.model_dump(include=set(Targets.model_fields)))
