"""Artifacts are for people: making one must never fail the run that acts."""

from __future__ import annotations

from typing import Callable, TypeVar

from prefect import get_run_logger

T = TypeVar("T")


def for_people(what: str, make: Callable[[], T]) -> T | None:
    """Make an artifact; one the Prefect API refuses is logged, never raised (None then).

    Artifacts are for people to read, and every flow makes them after, or while, it acts:
    raised, the error failed the run, and its hook rolled back a healthy canary or a release
    just promoted, or it replaced the error saying what was done. The ledger, the log and SNS
    keep what the artifact would have shown.
    """
    try:
        return make()
    except Exception as err:  # noqa: BLE001 - see above
        get_run_logger().warning("the run's %s artifact could not be created: %s", what, err)
        return None
