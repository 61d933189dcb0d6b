"""`rollway demo` says it is starting its own Prefect API before waiting on it, and one that does not
start in time is one error line saying how to wait longer, not a traceback of Prefect's internals.

A first start in a fresh Prefect home creates the database: over a minute of silence on a busy
machine, and a traceback once it took longer than Prefect's startup timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_demo_api_that_does_not_start_in_time_is_one_error_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
        # No wait at all: Prefect gives up before its first health check, however fast the machine.
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="0",
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run([sys.executable, "-m", "rollway.cli", "demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "starting the demo's Prefect API" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 1, done.stderr
    assert said[0].startswith("error: the demo's Prefect API did not start: Timed out while attempting to connect "
                              "to ephemeral Prefect API server (waited 0 s); "), said
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=300 rollway demo" in said[0], said
    assert "Scenario" not in done.stdout, done.stdout
