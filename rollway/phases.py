"""Closed enums with a ranking, so that several results combine into the worst one."""

from __future__ import annotations

from enum import StrEnum
from typing import Iterable


class Phase(StrEnum):
    """Outcome of one analysis (one metric, or a whole stage).

    Ranked: SUCCESSFUL < RUNNING < INCONCLUSIVE < ERROR < FAILED. RUNNING means the evidence
    is not yet decisive either way (a sequential test still observing); INCONCLUSIVE means a
    person has to look (too little data by the end of a stage); ERROR means we could not
    measure; FAILED means roll back.
    """

    SUCCESSFUL = "successful"
    RUNNING = "running"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return _PHASE_RANK[self]


_PHASE_RANK = {p: i for i, p in enumerate(Phase)}


def worst(phases: Iterable[Phase]) -> Phase:
    """The highest-ranked phase; SUCCESSFUL for an empty input is wrong, so it raises."""
    items = list(phases)
    if not items:
        raise ValueError("worst() needs at least one phase")
    return max(items, key=lambda p: p.rank)


class RolloutPhase(StrEnum):
    """Where a rollout stands, as recorded in its ledger.

    A rollout ends promoted or rolled back: a run that fails rolls its rollout back (its state
    hooks), or leaves it open for the next run, `rollway abort` or the weekly schedule to finish.
    There is no "failed" phase: nothing ever recorded one (a stage the judge fails is rolled
    back, and ends ROLLED_BACK), so an item holding it was edited by hand and is named unreadable.
    """

    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTED = "promoted"
    # Recorded before a rollback acts, so a run that dies half-way is finished on resume
    # (or by `rollway abort`) instead of being mistaken for drift.
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"

    @property
    def terminal(self) -> bool:
        return self in (RolloutPhase.PROMOTED, RolloutPhase.ROLLED_BACK)
