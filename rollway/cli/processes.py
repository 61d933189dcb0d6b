"""Child processes ``rollway up`` and the integration tests start: a Prefect server, the serve script.

Each child starts in a session of its own, so a Ctrl-C in the terminal reaches only the
parent, which then stops its children in order (the runner before the API it talks to).
A child is stopped by its pid; whatever it started in its own process group (the runner's
flow-run processes) is stopped after it, so nothing outlives ``rollway up``. A parent killed
outright runs none of that: each child runs under the toolchain's watchdog (``--exec``), which
notices the parent gone when a pipe only the parent holds closes, SIGTERMs the child and, once
it has stopped (or after ``STOP_SECONDS``), kills what is left of its process group.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Mapping, Sequence

from rollway.bounds import seconds_said
from rollway.clock import ClockSettings
from rollway.errors_pickle import PicklableError
from rollway.toolchain.alive import group_runs as _group_runs
from rollway.toolchain.process import on_path, start_watched

HOST = "127.0.0.1"
STOP_SECONDS = 15.0
"""How long a child asked to stop (SIGTERM) has before it and its process group are killed."""
SERVE_SCRIPT = Path(__file__).resolve().parents[2] / "deployments" / "serve.py"
"""The serve script of this checkout (rollway is installed in editable mode from it)."""


class ProcessFailed(PicklableError, RuntimeError):
    """A child process could not start, exited early, or did not become ready.

    Args:
        message: what happened.
        child: the child it happened to, when there is one (its log holds the why).
    """

    def __init__(self, message: str, child: "Child | None" = None) -> None:
        super().__init__(message)
        self.child = child


def how_it_ended(code: int) -> str:
    """How a child that ended with the Popen exit ``code`` ended, as a person reads it: a negative
    code is the signal that killed it ("exited with code -9" read as an exit status of its own)."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:  # a signal number Python has no name for (a real-time one)
        return f"was killed by signal {-code}"


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` of 127.0.0.1 now."""
    return port_unusable(port) is None


def port_unusable(port: int) -> OSError | None:
    """Why a server could not listen on ``port`` of 127.0.0.1 now (the bind's error: EADDRINUSE
    when something listens there, EACCES for a privileged port), None when it could.

    The probe binds the way servers do (uvicorn, hence ``prefect server start``), with
    SO_REUSEADDR: the closed connections a just-stopped server left in TIME_WAIT do not
    keep the next one off its port, while a socket still listening there does (Linux).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as err:
            return err
    return None


def first_unprivileged_port() -> int:
    """The lowest port anyone may listen on (Linux's net.ipv4.ip_unprivileged_port_start)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


def prefect_server_on(port: int, timeout_seconds: float = 2.0) -> bool:
    """Whether a Prefect server answers its health check on ``port`` of 127.0.0.1."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/api/health", timeout=timeout_seconds) as response:
            return response.read().strip() == b"true"
    except (OSError, ValueError):  # URLError, a reset, a timeout, something that is not HTTP
        return False


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if nothing listens on it, otherwise a port the OS says is free."""
    if preferred and port_is_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


# A child that makes no AWS call gets none of the AWS settings: what it never holds, it cannot
# leak. Not only the keys: the container credential provider's token and endpoint
# (AWS_CONTAINER_AUTHORIZATION_TOKEN, AWS_CONTAINER_CREDENTIALS_FULL_URI: ECS, EKS Pod Identity),
# a web identity's role and token file, a profile, all give credentials to whoever holds them.
AWS_PREFIX = "AWS_"


def child_env(extra: Mapping[str, str], *, aws: bool = True) -> dict[str, str]:
    """This process's environment, offline-safe, plus ``extra``; without any ``AWS_*`` setting
    (keys, credential providers, profiles) unless ``aws``."""
    env = {k: v for k, v in os.environ.items() if aws or not k.upper().startswith(AWS_PREFIX)}
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    env.update(extra)
    return env


def _unrunnable(program: str, env: Mapping[str, str]) -> str:
    """Why exec cannot run ``program``: a path given is not looked up on PATH (said as "not
    found", a venv moved from under `rollway up` sent people to their PATH), a bare name is."""
    if os.sep in program or (os.altsep and os.altsep in program):
        return f"{program} does not exist" if not os.path.exists(program) else f"{program} is not an executable file"
    return f"{program} is not on PATH ({os.pathsep.join(os.get_exec_path(env))})"


class Child:
    """One child process, started in its own session and stopped by its pid.

    Args:
        name: for messages.
        argv: the command (an argument list; never a shell string).
        env: its environment.
        log: file its stdout and stderr go to; None inherits this process's.
        pass_fds: descriptors it keeps open (a lock it must hold as long as it runs).
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path | None = None,
                 pass_fds: Sequence[int] = ()) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log = log
        self.pass_fds = tuple(pass_fds)
        self._process: subprocess.Popen | None = None
        self._alive: int | None = None  # the write end of the watchdog's pipe, while the child runs
        self._log_file: IO[bytes] | None = None
        self._log_start = 0  # where this start's output begins in ``log``

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ProcessFailed(f"{self.name} is not started")
        return self._process.pid

    def start(self) -> "Child":
        """Start it under the watchdog, which stops it and its process group once this process
        is gone, however it died (SIGKILL, the OOM killer), whatever thread started it.

        Raises:
            ProcessFailed: its program cannot be run (a path given that does not exist or is not an
                executable file, a name not on PATH).
        """
        if not on_path(self.argv[0], self.env):
            raise ProcessFailed(f"{self.name}: {_unrunnable(self.argv[0], self.env)}", self)
        output = None
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = output = self.log.open("ab")
            # The log is appended to across runs (the server's lives in the Prefect home): only
            # what this start wrote is this start's output.
            self._log_start = os.fstat(output.fileno()).st_size
        # The watchdog's pipe stays open until the child is stopped. Not the kernel's parent-death
        # signal: it fires when the *thread* that started the child exits, and it needs
        # preexec_fn, unsafe here once the embedded AWS and the simulator run threads.
        self._process, self._alive = start_watched(
            self.argv, exec_grace=STOP_SECONDS, pass_fds=self.pass_fds, env=self.env, stdout=output,
            stderr=subprocess.STDOUT if output else None, stdin=subprocess.DEVNULL,
        )
        return self

    def exit_code(self) -> int | None:
        """None while it runs."""
        return None if self._process is None else self._process.poll()

    def check_running(self) -> None:
        """Raises ProcessFailed naming the log when the child has exited."""
        code = self.exit_code()
        if code is not None:
            raise ProcessFailed(f"{self.name} {how_it_ended(code)}{self._log_hint()}", self)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the child wrote to its log since it was last started ("":
        none, or no log). An earlier run's lines are not this failure's."""
        return "\n".join(self._written()[-lines:])

    def _written(self) -> list[str]:
        """The lines the child wrote to its log since it was last started."""
        if self.log is None or not self.log.exists():
            return []
        with self.log.open("rb") as handle:
            handle.seek(self._log_start)
            return handle.read().decode(errors="replace").splitlines()

    def stop(self, timeout_seconds: float = STOP_SECONDS) -> int | None:
        """SIGTERM to the child, SIGKILL after ``timeout_seconds``; then the same for what it left
        in its process group (flow runs of a runner). Returns the exit code.

        Interrupted while waiting (a second Ctrl-C, SIGTERM), it SIGKILLs the whole group
        before the exception goes on: nothing else holds these pids, so whatever is left
        running now would outlive ``rollway up``.
        """
        process = self._process
        if process is None:
            return None
        try:
            code = _terminate(process, timeout_seconds)
            _stop_group(process.pid, timeout_seconds)
        except BaseException:
            _kill_group(process.pid)
            raise
        finally:
            self._process = None
            if self._alive is not None:
                # Only now, with its group stopped (or killed): closed earlier, the watchdog would
                # have killed the group under a child still stopping in order.
                os.close(self._alive)
                self._alive = None
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
        return code

    def _log_hint(self) -> str:
        return f" (see {self.log})" if self.log is not None else " (its output is above)"

    def __enter__(self) -> "Child":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(process: subprocess.Popen, timeout_seconds: float) -> int:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout_seconds``; its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=timeout_seconds)


def _stop_group(pgid: int, timeout_seconds: float) -> None:
    """The child led process group ``pgid`` (start_new_session); stop what is left in it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if not _group_runs(pgid):
                return
            time.sleep(0.1)


def _kill_group(pgid: int) -> None:
    """SIGKILL to process group ``pgid``, the child included; no wait."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# The welcome `prefect server start` prints before serving: its ASCII banner, the API's address,
# the docs' and the dashboard's (or why there is none). It is in every start's log, and says
# nothing of why the server stopped.
_WELCOME = re.compile(
    r"\s*(?:___ ___ ___ ___ ___ ___ _____|\| _ \\ _ \\ __\||\|  _/   / _\||\|_\| \|_\|_\\___\||"
    r"Configure Prefect to communicate with the server with:|prefect config set PREFECT_API_URL=|"
    r"View the API reference documentation at |Check out the dashboard at |The dashboard is |See `prefect dev`)"
)


def without_welcome(lines: Sequence[str]) -> list[str]:
    """``lines`` of a Prefect server's log without its welcome and the blank lines around it: what
    it said after (the tail under `rollway up`'s error showed the banner, and nothing of why, when
    the server was killed; a traceback's top was pushed out by it)."""
    kept = [line for line in lines if not _WELCOME.match(line)]
    while kept and not kept[0].strip():
        kept.pop(0)
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


class PrefectServer(Child):
    """``prefect server start`` on 127.0.0.1: SQLite under ``home``, the UI and the API.

    Args:
        home: PREFECT_HOME of the server (its database lives there).
        port: TCP port; must be free.
        log: where its output goes.
    """

    def __init__(self, home: Path, port: int, log: Path | None = None, pass_fds: Sequence[int] = ()) -> None:
        self.home = home
        self.port = port
        argv = [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)]
        super().__init__("prefect server", argv, child_env(self._settings(), aws=False), log, pass_fds)

    def _settings(self) -> dict[str, str]:
        """The environment that makes the server, and the UI it serves, use this server's API.

        The UI asks /ui-settings for its API, which Prefect takes from PREFECT_UI_API_URL, else
        PREFECT_API_URL, else PREFECT_SERVER_API_HOST/PORT (4200), never from ``--port``.
        Environment variables outrank a profile, .env and prefect.toml, so a PREFECT_API_URL
        meant for clients (the caller's, the profile's) cannot point the UI elsewhere.
        """
        api_url = self.api_url
        return {
            "PREFECT_HOME": str(self.home),
            # Concurrency leases in files under the home, not in the server's memory: a slot held
            # when the server stopped (a Ctrl-C mid-rollout, `rollway up` killed) was otherwise
            # never freed, since the next server knew no lease to let run out, and every later
            # canary run on this home was refused. The next server frees it once its lease ends.
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": os.environ.get(
                "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE", "prefect.server.concurrency.lease_storage.filesystem"
            ),
            "PREFECT_API_URL": api_url,
            "PREFECT_UI_API_URL": api_url,
            "PREFECT_SERVER_UI_API_URL": api_url,  # its newer name, which wins when both are set
            "PREFECT_SERVER_API_HOST": HOST,
            "PREFECT_SERVER_API_PORT": str(self.port),
        }

    def log_tail(self, lines: int = 40) -> str:
        """As ``Child.log_tail``, without the welcome the server prints on starting: the lines
        that say why it stopped ("" when it said nothing after it: killed, say)."""
        return "\n".join(without_welcome(self._written())[-lines:])

    @property
    def url(self) -> str:
        """The UI's address."""
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def wait_healthy(self, timeout_seconds: float = 120.0) -> None:
        """Wait for ``/api/health`` to answer (database migrations run first on a new home).

        Raises:
            ProcessFailed: the server exited, or did not answer within the timeout.
        """
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            self.check_running()
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            # Polling a server that is still migrating its database; nothing else to wait on.
            time.sleep(0.25)
        raise ProcessFailed(
            f"prefect server on {self.url} did not become healthy within {seconds_said(timeout_seconds)}{self._log_hint()}",
            self,
        )


def wait_served(runner: Child, api_url: str, *, deployment: str, since: float, timeout_seconds: float = 180.0) -> int:
    """Wait until ``runner`` has registered its deployments and looks for their runs; their count.

    A served deployment exists on the API as soon as it is registered, but its runs start only
    once the runner polls for them, after it registered every one: a run started in between
    waits, and a deployment not registered yet is missing from the UI. So this waits for the
    deployments named ``deployment`` registered (created or updated) since ``since`` (epoch
    seconds, taken before the runner started: a home's earlier runners left theirs in the
    database) to have all been polled since then, which the API records as each one's
    ``last_polled``.

    Raises:
        ProcessFailed: the runner exited, or did not poll within ``timeout_seconds``.
    """
    import json
    from datetime import datetime

    def stamp(value: str | None) -> float:
        return datetime.fromisoformat(value).timestamp() if value else 0.0

    body = json.dumps({"deployments": {"name": {"any_": [deployment]}}}).encode()
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        runner.check_running()
        request = urllib.request.Request(f"{api_url}/deployments/filter", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5.0) as response:
                found = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            found = []
        registered = [d for d in found if stamp(d.get("updated")) >= since]
        if registered and all(stamp(d.get("last_polled")) >= since for d in registered):
            return len(registered)
        # Waiting on another process's registrations; only the API can tell.
        time.sleep(0.25)
    raise ProcessFailed(
        f"{runner.name} did not register and serve its deployments within {seconds_said(timeout_seconds)}{runner._log_hint()}",
        runner,
    )


def serve_process(
    api_url: str,
    *,
    targets_block: str | None,
    credentials_block: str | None,
    clock: ClockSettings,
    poll_seconds: float = 1.0,
    approval_poll_seconds: int = 1,
    spec_json: str | None = None,
    validation_url: str | None = None,
    phased: bool = True,
    paused_schedules: bool = False,
    log: Path | None = None,
    home: Path | None = None,
    pass_fds: Sequence[int] = (),
    weekly_cron: str | None = None,
    weekly_timezone: str | None = None,
) -> Child:
    """The serve script as a child process, talking to the API at ``api_url`` (not started).

    ``validation_url``: base URL of the app validate_deployment checks by default (the serve
    script's ``--validation-url``); None: Webordinary's real addresses. ``weekly_cron`` /
    ``weekly_timezone``: its ``--weekly-cron`` / ``--weekly-timezone``; None: serve.py's defaults.
    """
    if not SERVE_SCRIPT.exists():
        raise ProcessFailed(
            f"{SERVE_SCRIPT} not found: `rollway up` serves the deployments of a rollway checkout "
            "(pip install -e .)"
        )
    argv = [sys.executable, str(SERVE_SCRIPT), "--speed", repr(clock.speed),
            "--poll-seconds", repr(poll_seconds), "--approval-poll-seconds", str(approval_poll_seconds)]
    if clock.anchor is not None:
        argv += ["--anchor", repr(clock.anchor)]
    for flag, value in (("--targets-block", targets_block), ("--credentials-block", credentials_block),
                        ("--spec-json", spec_json), ("--validation-url", validation_url),
                        ("--weekly-cron", weekly_cron), ("--weekly-timezone", weekly_timezone)):
        if value is not None:
            argv += [flag, value]
    argv += ["--phased" if phased else "--no-phased"]
    if paused_schedules:
        argv.append("--paused-schedules")
    extra = {"PREFECT_API_URL": api_url}
    if home is not None:
        extra["PREFECT_HOME"] = str(home)
    return Child("serve", argv, child_env(extra), log, pass_fds)
