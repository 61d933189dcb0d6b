"""One Prefect test harness for every flow test: it costs ~14 s to start (DB migration)."""

from __future__ import annotations

from typing import Iterator

import pytest
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API for the session, without flow-run heartbeats.

    The heartbeat thread's join adds about a second to every flow run; tests do not need it.
    """
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), prefect_test_harness():
        yield
