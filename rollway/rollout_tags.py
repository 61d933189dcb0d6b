"""Which rollout a flow run drove, as the run's tags say it.

The ledger does not record which flow run wrote which history entry (a rollout's owner is
released between phases and at rollbacks), so a rollout flow run tags itself with the rollout
it holds; its state hooks read the tag back, to roll back that rollout and no other.
"""

from __future__ import annotations

from typing import Iterable

ROLLOUT_TAG_PREFIX = "rollway:rollout:"
"""A rollout flow run that held rollout ``R`` is tagged ``rollway:rollout:R``."""


def rollout_tag(rollout_id: str) -> str:
    """The tag of a flow run that held the rollout ``rollout_id``."""
    return f"{ROLLOUT_TAG_PREFIX}{rollout_id}"


def tagged_rollout(tags: Iterable[str] | None) -> str | None:
    """The rollout a flow run's ``tags`` say it held last, or None when it held none.

    A run may hold two rollouts in turn (it finishes one's rollback, then starts the next), and a
    retried run keeps its first attempt's tags: the newest counts, and rollout ids sort by
    creation time (``rollway.ledger.new_rollout_id``).
    """
    held = [tag[len(ROLLOUT_TAG_PREFIX):] for tag in tags or () if tag.startswith(ROLLOUT_TAG_PREFIX)]
    held = [rollout for rollout in held if rollout]
    return max(held) if held else None
