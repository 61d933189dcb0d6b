"""rollway's Targets as a Prefect Block, editable in the Prefect UI (Blocks -> Rollway Targets)."""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from prefect.client.schemas.objects import BlockDocument
from pydantic import ConfigDict, ValidationError, model_validator

from rollway.model import validation_problems
from rollway.targets import Targets

# What Prefect itself adds to a block's data (a loaded block's model_dump, for one): its
# document's metadata, and the block type's slug (dropped only when it is this block's).
_PREFECT_KEYS = ("_block_document_id", "_block_document_name", "_is_anonymous")


class RollwayTargets(Targets, Block):
    """Names of the service under rollout and everything around it (defaults: Webordinary).

    The same model as ``rollway.targets.Targets``: a saved block loads as a Targets. A key
    neither knows is refused, on save and on load, not dropped (Block alone allows any).
    """

    # Block's config (extra="allow") would otherwise win over Targets' (extra="forbid").
    model_config = ConfigDict(**{**Block.model_config, **Targets.model_config})

    _block_type_name = "Rollway Targets"
    _block_type_slug = "rollway-targets"
    _description = "AWS names rollway acts on: load balancer, target groups, ECS cluster and services, tables, queues, topic."

    @model_validator(mode="before")
    @classmethod
    def _without_prefect_keys(cls, data: Any) -> Any:
        """Prefect's own keys are Prefect's: not names, and not refused as unknown ones."""
        if not isinstance(data, dict):
            return data
        slug = cls.get_block_type_slug()
        return {key: value for key, value in data.items()
                if key not in _PREFECT_KEYS and not (key == "block_type_slug" and value == slug)}

    @classmethod
    def _load_from_block_document(cls, block_document: BlockDocument, validate: bool = True) -> "RollwayTargets":
        """Prefect's load, whose error for a saved block that does not validate says which
        keys are wrong, on one line: Prefect's says only "due to failed validation"."""
        try:
            return super()._load_from_block_document(block_document, validate=validate)
        except RuntimeError as err:
            if not isinstance(err.__cause__, ValidationError):
                raise
            raise RuntimeError(
                f"Unable to load {block_document.name!r} of block type {cls.get_block_type_slug()!r} due to failed "
                f"validation: {validation_problems(err.__cause__, 'block')}. Correct the block (Prefect UI: Blocks) and save it again."
            ) from err.__cause__

    def targets(self) -> Targets:
        """A plain Targets (no Block machinery) with the same values."""
        return Targets.model_validate(self.model_dump(include=set(Targets.model_fields)))
