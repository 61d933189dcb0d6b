"""The weekly schedule outlives a stop of the process serving the deployments.

Prefect's runner pauses the deployments it served when it stops, and a pause deletes their
scheduled runs: a serve process stopped for an upgrade or a reboot across Monday 09:00 lost
that advance_phase run, so the rollout's next phase started a week late, and the UI showed the
schedule paused until the process was back. This test has a server of its own: stopping the
session's served deployments would take them from every other integration test.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.serve import DEPLOYMENT, deployment_path
from rollway.cli.processes import PrefectServer, free_port, serve_process, wait_served
from rollway.clock import ClockSettings
from tests.prefect_db import seed


def _mondays(client, deployment) -> list:
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterId, FlowRunFilter,
                                                FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType

    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
    )


def test_stopping_the_serve_process_keeps_the_weekly_runs_scheduled(tmp_path: Path, prefect_database: Path) -> None:
    from prefect.client.orchestration import get_client

    server = PrefectServer(seed(tmp_path / "home", prefect_database), free_port(), log=tmp_path / "server.log")
    with server:
        server.wait_healthy(timeout_seconds=180)
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
            since = time.time()
            with serve_process(server.api_url, targets_block=None, credentials_block=None, clock=ClockSettings(),
                               home=server.home, log=tmp_path / "serve.log") as serve:
                wait_served(serve, server.api_url, deployment=DEPLOYMENT, since=since, timeout_seconds=120)
                weekly = client.read_deployment_by_name(deployment_path("advance_phase"))
                deadline = time.monotonic() + 60
                # The server's scheduler creates the coming Mondays' runs shortly after the deployment.
                while not (scheduled := _mondays(client, weekly)) and time.monotonic() < deadline:
                    time.sleep(0.5)
                assert scheduled, "the server scheduled no advance_phase run"
            # Stopped now by SIGTERM, as a service manager stops it for an upgrade.
            after = client.read_deployment_by_name(deployment_path("advance_phase"))
            assert not after.paused, "stopping the serve process paused the weekly schedule"
            left = {run.id for run in _mondays(client, after)}
            assert {run.id for run in scheduled} <= left, (
                "the Mondays scheduled before the stop were deleted: one passed while the process is down is lost")
