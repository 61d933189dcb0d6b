"""`rollway demo` says it is starting its own Prefect API before waiting on it, and one that does not
start in time is one error line saying how to wait longer, not a traceback of Prefect's internals.

A first start in a fresh Prefect home creates the database: over a minute of silence on a busy
machine, and a traceback once it took longer than Prefect's startup timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc: no process library in the venv)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The name, in parentheses, may hold spaces: the parent's pid is the second field after it.
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _importing_prefect(pid: int) -> bool:
    """Whether a child of ``pid`` has loaded pydantic's compiled core."""
    for child in _children(pid):
        try:
            if "pydantic_core" in (Path("/proc") / str(child) / "maps").read_text():
                return True
        except OSError:
            continue
    return False


def test_ctrl_c_while_the_demos_api_starts_ends_in_the_demos_one_line(tmp_path):
    """Ctrl-C reaches every process of the terminal's foreground group: the temporary server, still
    starting, printed its own "Aborted!" among the demo's lines, and Prefect's "Stopping temporary
    server" came after the demo's last line. The demo's line saying it stopped is now all its error
    output says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               PYTHONPATH=str(ROOT))
    # Its own session, as a terminal's job: the signal goes to the whole group, server included.
    demo = subprocess.Popen([sys.executable, "-m", "rollway.cli", "demo"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Sent once the server's process is importing Prefect's app (pydantic's compiled core is
        # loaded: uvicorn and its command line use no pydantic), seconds before it answers and
        # before it handles signals of its own, however fast the machine: there it said "Aborted!".
        deadline = time.monotonic() + 300
        while not _importing_prefect(demo.pid):
            assert demo.poll() is None and time.monotonic() < deadline, "the demo started no server process"
            time.sleep(0.02)
        os.killpg(demo.pid, signal.SIGINT)
        out, err = demo.communicate(timeout=300)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == 130, (out, err)
    said = [line for line in err.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("demo stopped (SIGINT) after "), err
    # The server's own messages are kept where the demo said they go.
    assert (tmp_path / "home" / "rollway-demo-api.log").exists(), out
    assert "Scenario" not in out, out
