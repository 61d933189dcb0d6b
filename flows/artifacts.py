"""Artifacts are for people: making one must never fail the run that acts."""

from __future__ import annotations

from typing import Any, Callable, TypeVar
from uuid import UUID

from prefect import artifacts, get_run_logger

from rollway.failure_words import writable
from rollway.url_passwords import passwords_hidden

T = TypeVar("T")


# The flows' artifacts are made through these two, Prefect's with their text ``writable``: an
# artifact quoting an error whose text holds a lone surrogate (AWS echoing a name back, decoded
# with surrogateescape) could not be sent to the Prefect API, and was lost for the one run whose
# failure it was written to explain (the key's newest artifact, an older run's, read as its).
def create_markdown_artifact(*, markdown: str, **given: Any) -> UUID:
    return artifacts.create_markdown_artifact(markdown=writable(markdown), **given)


def create_table_artifact(*, table: list[dict[str, Any]], **given: Any) -> UUID:
    rows = [{key: writable(value) if isinstance(value, str) else value for key, value in row.items()}
            for row in table]
    return artifacts.create_table_artifact(table=rows, **given)


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
        # httpx's words quote the URL asked: PREFECT_API_URL's password with it, behind basic auth.
        get_run_logger().warning("the run's %s artifact could not be created: %s", what, passwords_hidden(str(err)))
        return None
