"""Fixtures shared by the unit tests of the command line."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture
def an_api_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """PREFECT_API_URL set, to an address nothing answers: the commands refuse to run without one,
    and a test whose blocks are stand-ins makes no request to it.

    A Prefect client tries a refused connection three more times, 0, 0.5 and 1 s apart (httpcore's
    backoff): a test whose command does ask this address slept 1.5 s before its "cannot reach the
    Prefect API". Nothing ever answers here, so the retries are still made, without the waits.
    """
    import httpcore._async.connection
    import httpcore._sync.connection
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from rollway.cli.processes import free_port

    for connection in (httpcore._sync.connection, httpcore._async.connection):
        monkeypatch.setattr(connection, "RETRIES_BACKOFF_FACTOR", 0)
    url = f"http://127.0.0.1:{free_port(None)}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url
