"""Register rollway's block types with a Prefect API, and save the blocks its flows load.

``python -m blocks.register`` (or ``prefect block register -m blocks.targets``) makes the
"Rollway Targets" and prefect-aws's "AWS Credentials" block types appear under Blocks in
the Prefect UI, where a user creates and edits them. ``rollway up`` and the tests call
``save_blocks`` to store the embedded account's targets and credentials under the names the
deployments default to.
"""

from __future__ import annotations

import sys

from prefect_aws import AwsCredentials

from blocks.targets import RollwayTargets
from rollway.targets import Targets

from rollway.cli.blocks import CREDENTIALS_BLOCK, TARGETS_BLOCK  # noqa: F401  (re-exported)

BLOCK_TYPES = (RollwayTargets, AwsCredentials)


def register_block_types() -> list[str]:
    """Register every block type rollway's flows load; returns their slugs."""
    for block_type in BLOCK_TYPES:
        block_type.register_type_and_schema()
    return [block_type.get_block_type_slug() for block_type in BLOCK_TYPES]


def save_blocks(
    targets: Targets,
    credentials: AwsCredentials,
    *,
    targets_block: str = TARGETS_BLOCK,
    credentials_block: str = CREDENTIALS_BLOCK,
) -> None:
    """Save ``targets`` and ``credentials`` under the given names, replacing older versions."""
    RollwayTargets.model_validate(targets.model_dump()).save(targets_block, overwrite=True)
    credentials.save(credentials_block, overwrite=True)


def main() -> int:
    slugs = register_block_types()
    print(f"registered block types: {', '.join(slugs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
