"""A run paused for an approval outlives a restart of the Prefect server.

A pause waits up to an hour by default, long enough for the server to be restarted or upgraded
meanwhile. The paused run gave up on the first read the API did not answer (after the client's
own retries, about a minute): it failed, a person's approval sent once the server was back was
accepted and then lost, and a rollout run's failure hook rolled the approved rollout back. The
run here is told not to retry (PREFECT_CLIENT_MAX_RETRIES=0), so a few seconds of downtime show
what a longer restart does. This test has a server of its own: stopping the session's would take
it from every other integration test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from prefect.settings import PREFECT_API_URL, temporary_settings

from rollway.cli.processes import PrefectServer, free_port
from tests.prefect_db import seed

ROOT = Path(__file__).resolve().parents[2]

# A rollout on the in-memory ports whose last stage needs an approval; prints its outcome.
ROLLOUT = """
from prefect import flow
from flows.approvals import prefect_approver
from flows.progressive import run_progressive
from rollway.fakes import FakeLedger
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

@flow(name="paused-across-a-server-restart")
def rollout():
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(
        image="webordinary/edit-container:2.0.0",
        stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100, bake_seconds=120, approval=True)],
        approvals=Approvals(timeout_seconds=300, on_timeout="rollback"), monitor_seconds=0,
    )
    result = run_progressive(env, spec, prefect_approver(spec.approvals, poll_interval=1), owner="run-1",
                             phased=False)
    approvals = [t.actor for t in env.ledger.get(env.targets.canary_service).history if t.kind == "approve"]
    print("OUTCOME", result.outcome, "APPROVED BY", approvals, flush=True)

rollout()
"""


def _paused_with_form(api_url: str, timeout: float = 120.0):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    deadline = time.monotonic() + timeout
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
            keyset = runs[0].state.state_details.run_input_keyset if runs else None
            if keyset:
                try:
                    client.read_flow_run_input(runs[0].id, keyset["schema"])
                    return runs[0]
                except Exception:  # noqa: BLE001 - the form is stored a moment after the pause
                    pass
            time.sleep(0.3)
    raise TimeoutError("the rollout never paused for its approval")


def _outage_lived_through(child: subprocess.Popen, run_log: Path, polls: int, timeout: float = 120.0) -> None:
    """Once the run has logged the API's outage, ``polls`` more of its one-second polls pass with
    the run still waiting."""
    deadline = time.monotonic() + timeout
    while "the Prefect API cannot be reached" not in run_log.read_text():
        assert child.poll() is None, f"the paused run gave up while the server was down:\n{run_log.read_text()}"
        assert time.monotonic() < deadline, f"the paused run never noticed the server was down:\n{run_log.read_text()}"
        time.sleep(0.1)
    for _ in range(polls):
        time.sleep(1)
        assert child.poll() is None, f"the paused run gave up while the server was down:\n{run_log.read_text()}"


def test_an_approval_given_after_the_prefect_server_restarted_is_taken(tmp_path: Path, prefect_database: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus

    port, home = free_port(), seed(tmp_path / "server-home", prefect_database)
    server = PrefectServer(home, port, log=tmp_path / "server.log")
    server.__enter__()
    run_log = tmp_path / "run.log"
    env = dict(os.environ, PREFECT_API_URL=server.api_url, PREFECT_HOME=str(tmp_path / "run-home"),
               PREFECT_CLIENT_MAX_RETRIES="0", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PYTHONPATH=str(ROOT))
    child = None
    try:
        server.wait_healthy(timeout_seconds=180)
        with run_log.open("w") as out:
            child = subprocess.Popen([sys.executable, "-c", ROLLOUT], env=env, cwd=ROOT, stdout=out,
                                     stderr=subprocess.STDOUT)
        run = _paused_with_form(server.api_url)

        server.__exit__(None, None, None)  # stopped for an upgrade, say, while the run waits
        # The run's reads the API did not answer: the first (the run once gave up on it) and the next (its poll
        # is every second), not a fixed wait of seconds on a machine that may be slow to poll at all.
        _outage_lived_through(child, run_log, polls=1)
        server = PrefectServer(home, port, log=tmp_path / "server-again.log")
        server.__enter__()
        server.wait_healthy(timeout_seconds=180)

        with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
            answer = {"action": "approve", "approver": "dana", "comment": "after the upgrade"}
            assert client.resume_flow_run(run.id, run_input=answer).status == SetStateStatus.ACCEPT
            child.wait(timeout=120)
            final = client.read_flow_run(run.id).state
        output = run_log.read_text()
        assert child.returncode == 0 and final.is_completed(), output
        assert "OUTCOME promoted APPROVED BY ['dana']" in output, output
        assert "the Prefect API cannot be reached" in output and "the Prefect API answers again" in output, output
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        server.__exit__(None, None, None)
