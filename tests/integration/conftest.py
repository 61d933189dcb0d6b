"""The real things, once per session: `prefect server start`, the served deployments, live traffic.

- ``prefect_server``: ``prefect server start`` (SQLite in a temporary PREFECT_HOME, 127.0.0.1,
  a free port), waited on until healthy, stopped by its pid at the end; the test process
  talks to it through PREFECT_API_URL.
- ``served``: ``deployments/serve.py`` as a subprocess against that server, its runs
  defaulting to the saved blocks of the embedded AWS and to the session's fast clock.
- ``live``: per test, a freshly provisioned account (tests/conftest.py's ``aws``) with the
  traffic simulator publishing on that clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from blocks.credentials import credentials_for_endpoint
from blocks.register import CREDENTIALS_BLOCK, TARGETS_BLOCK, save_blocks
from rollway.cli.processes import Child, PrefectServer, free_port, serve_process, wait_served
from rollway.cli.up import simulator_for
from rollway.clock import ClockSettings
from rollway.sim.app import ValidationApp
from rollway.sim.traffic import TrafficSimulator
from tests.conftest import AwsAccount
from tests.prefect_db import seed

# Simulated seconds per wall second: a 60 s analysis tick takes half a wall second.
SPEED = 120.0


def _tail_on_failure(child: Child) -> str:
    return f"\n--- last lines of {child.log} ---\n{child.log_tail()}"


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory, prefect_database: Path) -> Iterator[PrefectServer]:
    home = seed(tmp_path_factory.mktemp("prefect-home"), prefect_database)
    server = PrefectServer(home, free_port(), log=home / "server.log")
    with server:
        try:
            server.wait_healthy(timeout_seconds=180)
        except Exception as err:
            pytest.fail(f"{err}{_tail_on_failure(server)}")
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server


@pytest.fixture(scope="session")
def clock() -> ClockSettings:
    """The rollout clock shared by the simulator and every served run."""
    return ClockSettings(speed=SPEED, anchor=time.time())


@dataclass(frozen=True)
class Served:
    server: PrefectServer
    process: Child
    clock: ClockSettings


@pytest.fixture(scope="session")
def served(prefect_server: PrefectServer, embedded_aws, clock: ClockSettings,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Every deployment served by a subprocess; the blocks point at the embedded AWS."""
    from deployments.serve import DEPLOYMENT, build_deployments
    from rollway.targets import Targets

    targets = Targets()
    save_blocks(targets, credentials_for_endpoint(embedded_aws.endpoint_url, targets.region))
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    since = time.time()
    # As `rollway up` serves them: validate_deployment checks a stand-in edit API by default.
    with ValidationApp() as app, serve_process(
        prefect_server.api_url, targets_block=TARGETS_BLOCK, credentials_block=CREDENTIALS_BLOCK, clock=clock,
        poll_seconds=1.0, approval_poll_seconds=1, paused_schedules=True, log=log, home=prefect_server.home,
        validation_url=app.url,
    ) as process:
        try:
            # As `rollway up` waits: every deployment registered by this process and polled for
            # runs. One on the API is only registered; its runs start once the runner polls,
            # after registering every one (and a test may use any).
            serving = wait_served(process, prefect_server.api_url, deployment=DEPLOYMENT, since=since,
                                  timeout_seconds=120)
            assert serving == len(build_deployments()), f"serve.py serves {serving} deployments"
        except Exception as err:
            pytest.fail(f"{err}{_tail_on_failure(process)}")
        yield Served(prefect_server, process, clock)


@dataclass(frozen=True)
class Live:
    account: AwsAccount
    simulator: TrafficSimulator
    clock: ClockSettings
    log: Path


@pytest.fixture
def live(served: Served, aws: AwsAccount) -> Iterator[Live]:
    """A clean, provisioned account with simulated users hitting both versions."""
    simulator = simulator_for(aws.get_client, aws.targets, aws.topology, served.clock.build())
    with simulator:
        yield Live(aws, simulator, served.clock, served.process.log)
    assert not simulator.errors, f"the traffic simulator failed: {simulator.errors[:3]}"
