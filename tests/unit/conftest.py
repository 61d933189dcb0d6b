"""Fixtures shared by the unit tests of the command line."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture
def an_api_url() -> Iterator[str]:
    """PREFECT_API_URL set, to an address nothing answers: the commands refuse to run without one,
    and a test whose blocks are stand-ins makes no request to it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from rollway.cli.processes import free_port

    url = f"http://127.0.0.1:{free_port(None)}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url
