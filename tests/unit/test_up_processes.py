"""`rollway up`'s own checks and child processes: ports, option checks, the server's UI, stopping.

One test starts a real `prefect server start` (on 127.0.0.1, stopped when it ends): the UI's
API address is only visible on a running server. The rest start nothing, or a plain Python child.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rollway.cli import app
from rollway.cli.processes import Child, PrefectServer, ProcessFailed, child_env, free_port, port_is_free
from tests.prefect_db import seed
from tests.unit.alive import alive

# --- the Prefect server child ----------------------------------------------------------------


def test_the_ui_of_a_server_not_on_4200_talks_to_its_own_api(tmp_path: Path, monkeypatch, prefect_database) -> None:
    """The UI reads its API address from /ui-settings, which Prefect derives from
    PREFECT_UI_API_URL, PREFECT_API_URL or PREFECT_SERVER_API_PORT, never from `--port`.
    A server on another port than 4200 tells its UI to use its own API, even when the caller's
    environment and the active profile name another API."""
    home = seed(tmp_path / "home", prefect_database)
    (home / "profiles.toml").write_text(
        'active = "elsewhere"\n\n[profiles.elsewhere]\nPREFECT_API_URL = "http://127.0.0.1:9/api"\n'
    )
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:8/api")
    monkeypatch.delenv("PREFECT_PROFILES_PATH", raising=False)
    port = free_port()
    assert port != 4200
    server = PrefectServer(home, port, log=tmp_path / "server.log")
    with server:
        pid = server.pid
        server.wait_healthy(timeout_seconds=180)
        with urllib.request.urlopen(f"{server.url}/ui-settings", timeout=10) as response:
            settings = json.loads(response.read())
        # Asked for its port, `rollway up` says what holds it: most often a server started before.
        from rollway.cli.up import server_port

        with pytest.raises(ValueError) as taken:
            server_port(port)
        assert str(taken.value) == (
            f"--port {port} is taken on 127.0.0.1 by a Prefect server (another `rollway up`, or `prefect server "
            "start`): stop what listens there, or choose another --port, or leave --port out to use 4200 or any free "
            "port")
    assert not alive(pid), "the server outlived the test"
    assert settings["api_url"] == server.api_url, (
        f"the UI at {server.url} is told to use the API at {settings['api_url']}"
    )


# --- ports -----------------------------------------------------------------------------------


def _leave_time_wait_on(port: int) -> None:
    """What a stopped server leaves behind: connections it closed itself, in TIME_WAIT."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first -> TIME_WAIT on (127.0.0.1, port)
    time.sleep(0.05)
    client.close()
    listener.close()


def test_free_port_keeps_the_preferred_port_right_after_a_server_on_it_stopped() -> None:
    """Stop `rollway up` and start it again within a minute: the old server's closed
    connections sit in TIME_WAIT on its port. `prefect server start` binds with SO_REUSEADDR
    and can use that port again, so free_port() keeps it rather than moving to a random one."""
    port = free_port()
    _leave_time_wait_on(port)
    with socket.socket() as prefect_like:  # what `prefect server start` does before it serves
        prefect_like.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        prefect_like.bind(("127.0.0.1", port))
    assert free_port(port) == port


def test_a_port_something_listens_on_is_taken_even_for_a_probe_with_so_reuseaddr() -> None:
    """SO_REUSEADDR lets the probe past TIME_WAIT, not past a live server (on Linux), even one
    that bound with SO_REUSEADDR itself."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not port_is_free(port)
        assert free_port(port) != port


@pytest.fixture
def no_server(monkeypatch, tmp_path) -> list[int]:
    """`rollway up` with a stand-in for PrefectServer that stops it where the server would
    start (and without signal handlers); returns the ports a server was set up on."""
    import rollway.cli.up as up

    constructed: list[int] = []

    class NoServer:
        url = "http://127.0.0.1:0"

        def __init__(self, home, port, log=None, pass_fds=()) -> None:
            constructed.append(port)
            self.log = log

        def __enter__(self):
            raise ProcessFailed("test: the server would have been started here")

        def __exit__(self, *exc) -> None:
            pass

        def log_tail(self) -> str:
            return ""

    monkeypatch.setattr(up, "PrefectServer", NoServer)
    monkeypatch.setattr(up, "stop_on_signals", lambda: None)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    return constructed


def test_up_with_an_explicit_port_that_is_taken_does_not_start_on_another_one(no_server, capsys) -> None:
    """`rollway up --port N` with N taken is refused with one `error:` line on standard error
    and exit code 2, before anything starts: the user asked for that port, and a server on a
    random one would be somewhere they do not look."""
    import rollway.cli.up as up

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = up.run_up(port=port, speed=60.0, rps=1000.0, seed=7, poll_seconds=1.0)
    captured = capsys.readouterr()
    assert code == 2
    assert no_server == [], f"asked for port {port}, a server was set up on {no_server}"
    assert captured.err.startswith("error: ") and f"--port {port}" in captured.err, captured.err
    assert captured.err.count("\n") == 1, captured.err
    assert captured.out == ""


def _rollway_as_an_ordinary_user(args: list[str], *, home: Path, user_home: Path):
    """`rollway <args>` run to its end with PREFECT_HOME ``home``, as nobody when this is root
    (root may listen on any port and write anywhere; an ordinary user may not)."""
    import shutil
    import subprocess

    demote: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to run as another user")
        demote = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run([*demote, sys.executable, "-c", "from rollway.cli import main; main()", *args],
                          env={**os.environ, "PREFECT_HOME": str(home), "HOME": str(user_home)},
                          capture_output=True, text=True, timeout=120)


def test_a_prefect_home_this_user_cannot_write_is_one_error_line_not_a_traceback() -> None:
    """A PREFECT_HOME naming a file ended every command in a traceback, and a home this user
    cannot write (a read-only directory, another user's ~/.prefect) ended `rollway up` and
    `rollway demo` in one:
    each is one `error:` line naming the home and what to do, exit code 2, before anything starts."""
    import shutil
    import tempfile

    place = Path(tempfile.mkdtemp(prefix="rollway-up-home-"))  # outside tmp_path: nobody may look in it
    place.chmod(0o755)
    a_file, read_only = place / "not-a-directory", place / "read-only"
    a_file.write_text("")
    read_only.mkdir(mode=0o555)
    try:
        for command in (["status"], ["up"]):
            done = _rollway_as_an_ordinary_user(command, home=a_file, user_home=place)
            assert done.returncode == 2, done.stderr
            assert done.stderr == (f"error: PREFECT_HOME {a_file} cannot be used as Prefect's home: it is a file, "
                                   "not a directory; set PREFECT_HOME to a directory this user can write\n"), done.stderr
        runs = {command: _rollway_as_an_ordinary_user([command], home=read_only, user_home=read_only)
                for command in ("up", "demo")}
    finally:
        shutil.rmtree(place, ignore_errors=True)
    for command, done in runs.items():
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr == (f"error: Prefect home {read_only} cannot be used: Permission denied; set PREFECT_HOME "
                               "to a directory this user can write\n"), (command, done.stderr)
    assert runs["up"].stdout == ""


def test_up_with_a_port_this_user_may_not_listen_on_says_so_not_that_it_is_taken(tmp_path) -> None:
    """`rollway up --port 80` as an ordinary user said the port was "taken", and the user looked
    for a process on a port nothing listened on. It says why and what to do, exit code 2."""
    import shutil
    import tempfile

    from rollway.cli.processes import first_unprivileged_port

    if first_unprivileged_port() <= 1:
        pytest.skip("every port may be listened on by anyone here")
    home = Path(tempfile.mkdtemp(prefix="rollway-up-port-"))  # where nobody can write
    home.chmod(0o777)
    try:
        done = _rollway_as_an_ordinary_user(["up", "--port", "1"], home=home / "home", user_home=home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"error: --port 1 on 127.0.0.1 needs privileges this user does not have (ports below "
                           f"{first_unprivileged_port()} do): choose another --port, or leave --port out to use 4200 "
                           "or any free port\n"), done.stderr
    assert done.stdout == ""


def test_up_without_a_port_moves_off_a_taken_default_and_says_so(no_server, monkeypatch, capsys) -> None:
    """Only the default port falls back to a free one, and `up` says which."""
    import rollway.cli.up as up

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        default = taken.getsockname()[1]
        monkeypatch.setattr(up, "DEFAULT_PORT", default)
        code = up.run_up(port=None, speed=60.0, rps=1000.0, seed=7, poll_seconds=1.0)
    assert code == 1  # NoServer stops it where the server would start
    (port,) = no_server
    assert port != default
    assert f"port {default} is taken on 127.0.0.1; using port {port} instead" in capsys.readouterr().out


# --- one instance per Prefect home -------------------------------------------------------------


def _holding(home: Path):
    """A stand-in for another `rollway up` holding ``home``, started and holding it; the caller kills it."""
    import subprocess

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from rollway.cli.up import home_lock\n"
         "with home_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)", str(home)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_up_on_the_same_prefect_home_is_refused_before_anything_starts(no_server, tmp_path, capsys):
    """Two instances on one home share the server's database: the second one's blocks would
    point the first one's runs at its own embedded AWS. The second is refused (exit 2, one
    `error:` line naming the holder and PREFECT_HOME) instead of moving to another port."""
    holder = _holding(tmp_path)
    try:
        import rollway.cli.up as up

        code = up.run_up(port=None, speed=60.0, rps=1000.0, seed=7, poll_seconds=1.0)
        captured = capsys.readouterr()
        assert code == 2
        assert no_server == [], "a second server was set up on a home another `rollway up` runs on"
        assert captured.err.startswith("error: another `rollway up` (pid ") and str(holder.pid) in captured.err
        assert "PREFECT_HOME" in captured.err and captured.err.count("\n") == 1, captured.err

        # A killed instance leaves nothing behind that keeps the next one out.
        holder.kill()
        holder.wait(timeout=10)
        assert up.run_up(port=None, speed=60.0, rps=1000.0, seed=7, poll_seconds=1.0) == 1  # NoServer
        assert len(no_server) == 1
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_a_home_whose_name_reads_as_markup_is_named_as_it_is_when_refused(no_server, tmp_path, monkeypatch, capsys):
    """A Prefect home such as ``/tmp/runs[/b]`` was read as rich markup: the refusal ended in a
    MarkupError traceback instead of its one `error:` line."""
    import rollway.cli.up as up

    home = tmp_path / "runs[/b]"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    holder = _holding(home)
    try:
        code = up.run_up(port=None, speed=60.0, rps=1000.0, seed=7, poll_seconds=1.0)
        captured = capsys.readouterr()
        assert code == 2
        assert captured.err.startswith("error: another `rollway up` (pid "), captured.err
        assert f"Prefect home {home}: stop it first" in captured.err and captured.err.count("\n") == 1, captured.err
    finally:
        holder.kill()
        holder.wait(timeout=10)


def _killed_up(tmp_path, child_code: str):
    """A stand-in for `rollway up` holding the home lock, with one child running ``child_code``;
    it is started, and the child's pid read. Returns (parent, child pid)."""
    import subprocess

    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from rollway.cli.processes import Child\n"
        "from rollway.cli.up import home_lock\n"
        "with home_lock(Path(sys.argv[1])) as lock:\n"
        f"    child = Child('server', [sys.executable, '-c', {child_code!r}], {{}}, pass_fds=(lock,)).start()\n"
        "    print(child.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    return parent, int(parent.stdout.readline())


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_the_children_of_a_killed_up_stop_with_it(no_server, tmp_path):
    """kill -9 (or the OOM killer) ends `rollway up` without its cleanup. Its server and runner
    run in sessions of their own (a Ctrl-C reaches only `up`), and used to outlive it, holding
    its port and its Prefect home; they now get SIGTERM when it dies, and the home is free."""
    import rollway.cli.up as up

    parent, child = _killed_up(tmp_path, "import time; time.sleep(60)")
    try:
        parent.kill()
        parent.wait(timeout=10)
        assert _gone(child, within=10), "the child outlived the `rollway up` that started it"
        assert up.run_up(port=None, speed=60.0, rps=1000.0, seed=7, poll_seconds=1.0) == 1  # NoServer: home free
    finally:
        parent.kill()
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_what_the_children_of_a_killed_up_started_stops_with_them(no_server, tmp_path):
    """The kernel's SIGTERM reached the runner alone: a flow run it had started (in its process
    group) went on running after a kill -9 of `rollway up`, with nobody to stop it. Both the
    child and what it started are gone within seconds."""
    pid_file = tmp_path / "grandchild.pid"
    parent, child = _killed_up(
        tmp_path, "import pathlib, subprocess, sys, time\n"
                  "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                  f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid))\n"
                  "time.sleep(60)\n")
    grandchild = None
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the child never started its own child"
            time.sleep(0.05)
        grandchild = int(pid_file.read_text())
        parent.kill()
        parent.wait(timeout=10)
        assert _gone(child, within=5), "the child outlived the `rollway up` that started it"
        assert _gone(grandchild, within=5), "what the child started outlived the `rollway up` that started it"
    finally:
        parent.kill()
        for pid in (child, grandchild):
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_child_started_from_a_thread_that_ended_keeps_running(tmp_path):
    """The kernel's parent-death signal fires when the *thread* that started the child exits: a
    child started from a worker thread was stopped as soon as that thread was done."""
    import threading

    started: list[Child] = []
    thread = threading.Thread(target=lambda: started.append(
        Child("server", [sys.executable, "-c", "import time; time.sleep(60)"], child_env({}), tmp_path / "log").start()))
    thread.start()
    thread.join(timeout=30)
    (child,) = started
    try:
        time.sleep(2)  # what a signal on the thread's end would have needed to stop it
        assert child.exit_code() is None, f"the child exited with {child.exit_code()} when its thread ended"
    finally:
        child.stop(timeout_seconds=5)


def test_stopping_a_child_does_not_wait_on_an_exited_process_nobody_has_reaped():
    """Every child leaves one such process in its group: the watchdog's watcher, an orphan whose
    exit pid 1 reaps when it gets to it (here about 1.5 s later; in a container whose pid 1 never
    reaps, never). Stopping the group waited for it as if it ran: up to 15 s after SIGTERM and 15
    after SIGKILL, for each child of a Ctrl-C'd `rollway up`. Here the exited process is this
    test's own unreaped child, leading its group."""
    import subprocess

    from rollway.cli.processes import _stop_group

    exited = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    try:
        while open(f"/proc/{exited.pid}/stat").read().rsplit(")", 1)[-1].split()[0] != "Z":
            time.sleep(0.01)
        began = time.monotonic()
        _stop_group(exited.pid, timeout_seconds=5)
        assert time.monotonic() - began < 2.5, "the stop waited on a process that had exited"
    finally:
        exited.wait(timeout=5)


def test_a_child_whose_program_is_missing_is_refused_before_it_starts(tmp_path):
    """A missing program is said at once, naming it, and not as the watchdog's exit code 127.
    A path given is not looked up on PATH: "was not found" sent people to their PATH for a file
    that does not exist (a venv moved or deleted under `rollway up`)."""
    missing = tmp_path / "no-such-prefect"
    with pytest.raises(ProcessFailed, match=f"server: {missing} does not exist$"):
        Child("server", [str(missing), "server", "start"], child_env({}), tmp_path / "log").start()


def test_a_child_whose_program_is_not_executable_or_not_on_path_says_which(tmp_path):
    """A file that cannot be run, and a bare name PATH does not hold, are each said as what they are."""
    plain = tmp_path / "prefect"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    with pytest.raises(ProcessFailed, match=f"server: {plain} is not an executable file$"):
        Child("server", [str(plain), "server", "start"], child_env({}), tmp_path / "log").start()
    with pytest.raises(ProcessFailed, match=f"server: {tmp_path} is not an executable file$"):
        Child("server", [str(tmp_path)], child_env({}), tmp_path / "log").start()
    with pytest.raises(ProcessFailed, match=f"server: no-such-prefect-anywhere is not on PATH \\({tmp_path}\\)$"):
        Child("server", ["no-such-prefect-anywhere"], child_env({"PATH": str(tmp_path)}), tmp_path / "log").start()


def test_a_child_still_stopping_after_up_was_killed_keeps_its_prefect_home(no_server, tmp_path, capsys):
    """A child slow to stop (here one that ignores SIGTERM) still uses the home: a second
    instance is refused until it is gone."""
    import rollway.cli.up as up

    ready = tmp_path / "ignoring-sigterm"
    parent, child = _killed_up(
        tmp_path, "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                  f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)")
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():  # killed before it ignores SIGTERM, it would just stop
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        parent.kill()
        parent.wait(timeout=10)
        assert alive(child)
        assert up.run_up(port=None, speed=60.0, rps=1000.0, seed=7, poll_seconds=1.0) == 2
        # Not "stop it first" of the `rollway up` that is gone: the child still holding the home, by its pid.
        assert no_server == [] and capsys.readouterr().err == (
            f"error: a `rollway up` that has exited (pid {parent.pid}) left what it started running on Prefect home "
            f"{tmp_path} (pid {child}): wait until it has stopped, or stop it (kill {child}), or set PREFECT_HOME to "
            "another directory to run a second one\n")
        os.kill(child, signal.SIGKILL)
        assert _gone(child, within=10)
        assert up.run_up(port=None, speed=60.0, rps=1000.0, seed=7, poll_seconds=1.0) == 1  # NoServer
    finally:
        parent.kill()
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_failed_serve_child_is_reported_with_its_own_output_not_the_servers(no_server, monkeypatch, tmp_path, capsys):
    """When the runner dies, the lines under the error are the runner's (or a pointer to its
    output above), not 40 lines of the server's log pushing its traceback off the screen."""
    import blocks.register
    import rollway.cli.up as up

    class QuietServer(Child):
        def __init__(self, home, port, log=None, pass_fds=()) -> None:
            super().__init__("prefect server", [sys.executable, "-c",
                             "print('uvicorn: server log line', flush=True); import time; time.sleep(60)"], {}, log,
                             pass_fds)
            self.url = self.api_url = f"http://127.0.0.1:{port}"

        def wait_healthy(self, timeout_seconds: float = 0) -> None:
            time.sleep(0.3)

    monkeypatch.setattr(up, "PrefectServer", QuietServer)
    monkeypatch.setattr(blocks.register, "save_blocks", lambda *args, **kwargs: None)
    monkeypatch.setattr(up, "simulator_for", lambda *args, **kwargs: _Nothing())
    for log in (tmp_path / "serve.log", None):
        def dying_serve(api_url, log=log, **kwargs):
            code = "import sys; print('Traceback: the runner could not register', flush=True); sys.exit(3)"
            return Child("serve", [sys.executable, "-c", code], {}, log)

        monkeypatch.setattr(up, "serve_process", dying_serve)
        assert up.run_up(port=None, speed=60.0, rps=0.0, seed=7, poll_seconds=1.0) == 1
        err = capsys.readouterr().err
        assert "serve exited with code 3" in err
        assert "server log line" not in err, err
        if log is None:
            assert "(its output is above)" in err, err
        else:
            assert f"(see {log})" in err and "the runner could not register" in err, err


class _Recorded:
    """A stand-in for what `rollway up` starts, recording that it was stopped."""

    def __init__(self, stopped: list[str], name: str, **attributes) -> None:
        self.stopped, self.name = stopped, name
        self.__dict__.update(attributes)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.append(self.name)


@pytest.mark.parametrize("step", ["provision", "save_blocks"])
def test_a_start_up_step_that_fails_is_one_error_line_naming_it_and_all_started_is_stopped(
        no_server, monkeypatch, capsys, step) -> None:
    """Moto refusing a call while the topology is provisioned, or the server gone while the blocks
    are saved, ended `rollway up` in a traceback: now one `error:` line saying which step failed
    and why, exit code 1, and what was started (the server, the embedded AWS) stopped."""
    import blocks.register
    import rollway.cli.up as up
    import rollway.sim.server
    import rollway.sim.topology
    from botocore.exceptions import ClientError

    stopped: list[str] = []
    refused = ClientError({"Error": {"Code": "InternalFailure", "Message": "moto fell over"}}, "CreateCluster")
    monkeypatch.setattr(up, "PrefectServer", lambda home, port, log=None, pass_fds=(): _Recorded(
        stopped, "server", url=f"http://127.0.0.1:{port}", api_url=f"http://127.0.0.1:{port}/api", log=log,
        wait_healthy=lambda timeout_seconds=0: None))
    monkeypatch.setattr(rollway.sim.server, "EmbeddedAws", lambda: _Recorded(stopped, "aws",
                                                                                endpoint_url="http://127.0.0.1:1"))

    def fails(*args, **kwargs):
        raise refused

    if step == "provision":
        monkeypatch.setattr(rollway.sim.topology, "provision", fails)
    else:
        monkeypatch.setattr(rollway.sim.topology, "provision", lambda *a, **k: object())
        monkeypatch.setattr(up, "prepare_checklist", lambda *a, **k: "queue")
        monkeypatch.setattr(rollway.sim.topology, "put_release_image", lambda *a, **k: None)
        monkeypatch.setattr(blocks.register, "save_blocks", fails)
    assert up.run_up(port=None, speed=60.0, rps=0.0, seed=7, poll_seconds=1.0) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    said = {"provision": "provisioning the embedded AWS", "save_blocks": "saving the blocks"}[step]
    assert said in err and "moto fell over" in err and "CreateCluster" in err, err
    assert stopped == ["aws", "server"]
    # The traceback behind the one line (a bug in a step, not only a refusal) is kept where the
    # line says, not at a debug level nobody can switch on.
    kept = up.prefect_home() / up.FAILURE_LOG
    assert f"(its traceback: {kept})" in " ".join(err.split()), err
    trace = kept.read_text()
    assert trace.startswith("Traceback") and "moto fell over" in trace and f"in {fails.__name__}" in trace, trace


def test_a_failed_childs_log_tail_is_what_it_wrote_this_time_not_an_earlier_runs_log(tmp_path):
    """The server's log (in the Prefect home) is appended to by every `rollway up`. A server that
    died this time without a word (killed, out of memory) was reported with the last lines of an
    earlier run's log under its error, as if they said why; one that wrote something had them
    mixed in above its own lines."""
    log = tmp_path / "rollway-up-server.log"
    log.write_text("INFO:     Uvicorn running on http://127.0.0.1:4200\nINFO:     Shutting down (last week)\n")
    for code, said in (("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", ""),
                       ("print('this run: database is locked', flush=True); raise SystemExit(1)",
                        "this run: database is locked")):
        child = Child("prefect server", [sys.executable, "-c", code], child_env({}), log).start()
        deadline = time.monotonic() + 30
        while child.exit_code() is None:
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.05)
        with pytest.raises(ProcessFailed):
            child.check_running()
        assert child.log_tail() == said
        child.stop()
    assert "last week" in log.read_text(), "the earlier runs' lines stay in the log"


def test_a_child_killed_by_a_signal_is_said_to_be_killed_by_it_by_name(tmp_path):
    """`rollway up`'s error for a server or runner killed outright (the OOM killer, `kill -9`)
    read "exited with code -9", as if it had exited with a status of its own."""
    child = Child("serve", [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
                  child_env({}), tmp_path / "serve.log").start()
    deadline = time.monotonic() + 30
    while child.exit_code() is None:
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.05)
    with pytest.raises(ProcessFailed) as failed:
        child.check_running()
    child.stop()
    assert "serve was killed by SIGKILL" in str(failed.value), failed.value
    # The message names the log file, whose path may hold "-9" (pytest-91/...), so only the
    # sentence before it is checked for the raw code.
    assert "code -9" not in str(failed.value)
    assert "-9" not in str(failed.value).split(str(tmp_path))[0]


def test_a_killed_servers_log_tail_holds_no_banner(tmp_path, prefect_database):
    """A server killed once up (SIGKILL, the OOM killer) wrote nothing after its welcome: the tail
    under `rollway up`'s error was Prefect's ASCII banner, the last thing on the terminal, as if it
    said why. Now the tail is empty, and the error line naming the exit code is the last word."""
    server = PrefectServer(seed(tmp_path, prefect_database), free_port(), log=tmp_path / "rollway-up-server.log")
    with server:
        server.wait_healthy(timeout_seconds=180)
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while server.exit_code() is None:
            assert time.monotonic() < deadline, "the server did not exit"
            time.sleep(0.05)
        assert "___ ___ ___" in server.log.read_text(), "the log holds the banner"
        assert server.log_tail() == ""


def test_a_servers_log_tail_is_what_it_said_after_its_welcome(tmp_path):
    """The banner took lines of the tail's 40 that the server's own words needed."""
    from prefect.cli._server_utils import generate_welcome_blurb

    why = ["Server stopped!", "Traceback (most recent call last):",
           *[f'  File "x.py", line {n}, in f' for n in range(26)], "ValueError: bogus", "An exception occurred."]
    for ui in (True, False):
        server = PrefectServer(tmp_path, free_port(), log=tmp_path / f"server-{ui}.log")
        server.log.write_text(generate_welcome_blurb(server.url, ui_enabled=ui) + "\n\n\n" + "\n".join(why) + "\n")
        assert server.log_tail() == "\n".join(why)


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


# --- option checks ---------------------------------------------------------------------------


def test_up_refuses_a_negative_request_rate_before_starting_anything(no_server, capsys) -> None:
    """`rollway up --rps -5` is refused before the Prefect server starts (a first start
    migrates its database), as --speed is: one `error:` line on standard error, exit code 2."""
    command, bound, _ = app.parse_args(["up", "--rps", "-5"])
    code = command(*bound.args, **bound.kwargs)
    captured = capsys.readouterr()
    assert no_server == [], "a Prefect server was set up for a run that cannot work"
    assert code == 2
    assert captured.err.startswith("error: --rps -5 ") and captured.err.count("\n") == 1, captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--rps", "nan"], "--rps"),
        (["--rps", "inf"], "--rps"),
        (["--poll-seconds", "0"], "--poll-seconds"),
        (["--poll-seconds", "-1"], "--poll-seconds"),
        (["--poll-seconds", "nan"], "--poll-seconds"),
        (["--poll-seconds", "inf"], "--poll-seconds"),
        (["--poll-seconds", "1e12"], "--poll-seconds 1e+12 is too long: at most 300"),
        (["--port", "0"], "--port"),
        (["--port", "70000"], "--port"),
        (["--speed", "0"], "--speed"),
        (["--speed", "0.5"], "--speed 0.5 is not a usable rollout clock speed: it must be from 1 (real time) to"),
    ],
)
def test_up_refuses_unusable_options_before_starting_anything(no_server, capsys, args, option) -> None:
    """--rps must be finite and 0 or more, --poll-seconds finite and over 0, --port a TCP port,
    --speed a usable clock speed: each is checked before anything starts, with one `error:`
    line on standard error naming the option and exit code 2."""
    command, bound, _ = app.parse_args(["up", *args])
    code = command(*bound.args, **bound.kwargs)
    captured = capsys.readouterr()
    assert no_server == [], "a Prefect server was set up for a run that cannot work"
    assert code == 2
    assert captured.err.startswith(f"error: {option} ") and captured.err.count("\n") == 1, captured.err
    assert captured.out == ""


@pytest.mark.parametrize("command_name", ["up", "demo"])
def test_a_request_rate_the_simulator_cannot_draw_is_refused_naming_the_maximum(
        no_server, monkeypatch, capsys, command_name) -> None:
    """The simulator draws every request: --rps 1e12 was taken, and its first tick never ended
    (nor did the demo), after the server or the embedded AWS had started."""
    import rollway.cli.demo

    demos: list[dict] = []
    monkeypatch.setattr(rollway.cli.demo, "run_demo", lambda **options: demos.append(options) or 0)
    command, bound, _ = app.parse_args([command_name, "--rps", "1e12"])
    assert command(*bound.args, **bound.kwargs) == 2
    captured = capsys.readouterr()
    assert no_server == [] and demos == []
    assert captured.err == ("error: --rps 1e+12 is more than the traffic simulator can draw: at most 10,000 requests "
                            "per simulated second\n"), captured.err


def test_the_demos_options_are_named_not_taken_by_position() -> None:
    """`rollway demo 7` (the seed meant) ran the demo at speed 7, 17 times slower, without a word."""
    from cyclopts import CycloptsError

    with pytest.raises(CycloptsError, match="Unused Tokens"):
        app.parse_args(["demo", "7"], exit_on_error=False, print_error=False)
    _command, bound, _ = app.parse_args(["demo", "--seed", "7"])
    assert bound.arguments == {"seed": 7}


def test_up_accepts_no_traffic(no_server) -> None:
    """--rps 0 is a quiet service, not a mistake: `up` goes on to start the server."""
    command, bound, _ = app.parse_args(["up", "--rps", "0", "--poll-seconds", "0.5"])
    assert command(*bound.args, **bound.kwargs) == 1  # NoServer stops it where the server would start
    assert len(no_server) == 1


# --- stopping children -----------------------------------------------------------------------


# The test raises its second Ctrl-C from SIGALRM; pytest-timeout must not use that signal too.
@pytest.mark.timeout(120, method="thread")
def test_a_second_ctrl_c_while_a_child_stops_does_not_orphan_it_and_its_runs(tmp_path: Path) -> None:
    """Ctrl-C, then (the runner is slow to stop) Ctrl-C again while Child.stop() waits for its
    SIGTERM: the child's whole process group (the runner and the flow runs it started) is
    SIGKILLed before the KeyboardInterrupt goes on, so nothing outlives `rollway up`."""
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import pathlib, signal, subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"  # a runner that takes its time to stop
        f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    child = Child("slow runner", [sys.executable, "-c", script], child_env({}), tmp_path / "log").start()
    leader = child.pid
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            child.check_running()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        grandchild = int(pid_file.read_text())

        def second_ctrl_c(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGALRM, second_ctrl_c)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.5)
            with pytest.raises(KeyboardInterrupt):
                child.stop(timeout_seconds=10)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        deadline = time.monotonic() + 5
        while (alive(leader) or alive(grandchild)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in (leader, grandchild) if alive(pid)]
        assert left == [], f"processes {left} outlived `rollway up` and nothing tracks them"
    finally:
        try:
            os.killpg(leader, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_the_prefect_server_child_gets_no_aws_keys(monkeypatch, tmp_path):
    """The server makes no AWS call: it must not hold the caller's keys in its environment
    (readable in /proc by anything that can read the server's)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-server")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    server = PrefectServer(home=tmp_path, port=free_port())
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(server.env)
    assert server.env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    # Children that act on AWS keep them.
    assert child_env({})["AWS_SECRET_ACCESS_KEY"] == "not-for-the-server"


def test_the_prefect_server_child_gets_no_credential_provider_of_the_worker(monkeypatch, tmp_path):
    """Keys are not the only credentials in an environment: on ECS or EKS Pod Identity the
    container provider's token and endpoint give whoever holds them the task's role, and a web
    identity's role and token file do the same. The server was handed all of them."""
    providers = {"AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-token",
                 "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/secrets/pods.eks.amazonaws.com/token",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc",
                 "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
                 "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/worker", "AWS_PROFILE": "prod"}
    for name, value in providers.items():
        monkeypatch.setenv(name, value)
    server = PrefectServer(home=tmp_path, port=free_port())
    assert not set(providers) & set(server.env)
    # The serve process runs the flows, which may use the worker's chain (a block without keys).
    assert {k: child_env({})[k] for k in providers} == providers


@pytest.mark.parametrize("speed, week", [(60.0, "2.8 wall hours"), (1200.0, "8 wall minutes"),
                                         (10_000.0, "60 wall seconds"), (1.0, None)])
def test_up_says_how_to_start_the_next_weekly_phase_on_its_fast_clock(speed, week, capsys) -> None:
    """At `make up`'s 60x a rollout week is 2.8 wall hours and a phased run's summary says the next
    phase is due in wall minutes, but advance_phase's cron fires on Monday 09:00 UTC of the wall
    calendar: the instructions said only "runs Mondays 09:00 UTC", and a person waited for a run
    that came days later."""
    from types import SimpleNamespace

    import rollway.cli.up as up
    from rollway.targets import Targets

    server = SimpleNamespace(url="http://127.0.0.1:4200", api_url="http://127.0.0.1:4200/api", log="server.log")
    topology = SimpleNamespace(repository_uri="123456789012.dkr.ecr.us-west-2.amazonaws.com/edit")
    up._instructions(server, topology, speed, Path("/tmp/home"), validation_url="http://127.0.0.1:5000",
                     targets=Targets(), schedules=[("0 9 * * MON", "UTC")])
    shown = " ".join(capsys.readouterr().out.split())
    told = "start each next phase yourself (Deployments -> advance_phase/rollway -> Run)"
    assert (told in shown) == (speed > 1), shown
    if speed > 1:
        # At 1200x the week was "0.1 wall hours", which a person had to work out was 8 minutes.
        assert f"At {speed:g}x a rollout week passes in {week}," in shown, shown


# Wed 2026-12-02 12:00 UTC: the next Monday 09:00 UTC is the 7th, the next Tuesday 07:30 in Berlin the 8th.
_WEDNESDAY = 1796212800.0


@pytest.mark.parametrize("schedules, said", [
    ([("0 9 * * MON", "UTC")], "runs on its schedule '0 9 * * MON' in UTC, next at Mon 2026-12-07 09:00 UTC"),
    ([("30 7 * * TUE", "Europe/Berlin")],
     "runs on its schedule '30 7 * * TUE' in Europe/Berlin, next at Tue 2026-12-08 07:30 CET"),
    ([], "has no active schedule: run it yourself (Deployments -> advance_phase/rollway -> Run) to start each "
         "next phase"),
    (None, "runs on the schedule its deployment shows in the UI (it could not be read here)"),
])
def test_up_says_the_weekly_schedule_the_advance_phase_deployment_has(schedules, said, capsys) -> None:
    """The instructions said "runs Mondays 09:00 UTC" whatever schedule advance_phase was served on:
    a schedule in another zone, or at another hour, was announced as Monday's. They say the
    schedule read from the served deployment, and when its next run is."""
    from types import SimpleNamespace

    import rollway.cli.up as up
    from rollway.targets import Targets

    server = SimpleNamespace(url="http://127.0.0.1:4200", api_url="http://127.0.0.1:4200/api", log="server.log")
    topology = SimpleNamespace(repository_uri="123456789012.dkr.ecr.us-west-2.amazonaws.com/edit")
    up._instructions(server, topology, 1.0, Path("/tmp/home"), validation_url="http://127.0.0.1:5000",
                     targets=Targets(), schedules=schedules, now=_WEDNESDAY)
    shown = " ".join(capsys.readouterr().out.split())
    assert f"The weekly advance_phase deployment {said}" in shown, shown
    if schedules != [("0 9 * * MON", "UTC")]:
        assert "Monday" not in shown, shown


def test_up_names_hold_beside_approve_and_reject(capsys) -> None:
    """The Resume form and the command line both answer a pause "hold" (stay and ask again), but
    `rollway up`'s instructions offered only approve or reject, and promote or abort."""
    from types import SimpleNamespace

    import rollway.cli.up as up
    from rollway.targets import Targets

    server = SimpleNamespace(url="http://127.0.0.1:4200", api_url="http://127.0.0.1:4200/api", log="server.log")
    topology = SimpleNamespace(repository_uri="123456789012.dkr.ecr.us-west-2.amazonaws.com/edit")
    up._instructions(server, topology, 60.0, Path("/tmp/home"), validation_url="http://127.0.0.1:5000",
                     targets=Targets(), schedules=[("0 9 * * MON", "UTC")])
    shown = " ".join(capsys.readouterr().out.split())
    assert "choose approve, reject or hold" in shown, shown
    assert ".venv/bin/rollway hold --approver you" in shown, shown


# --- "rollway is up" -------------------------------------------------------------------------

# A runner as `prefect serve` behaves: it registers its deployments one by one, and only then
# looks for their runs (which the API records as each deployment's last_polled).
_SLOW_RUNNER = """
import json, pathlib, sys, time, urllib.request
api, marker = sys.argv[1], pathlib.Path(sys.argv[2])
def post(path, body):
    request = urllib.request.Request(api + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
ids = []
for flow in ("canary", "progressive_rollout", "advance_phase"):
    flow_id = post("/flows/", {"name": flow})["id"]
    body = {"name": "rollway", "flow_id": flow_id}
    if flow == "advance_phase":  # served on another schedule than serve.py's default, and one paused
        body["schedules"] = [{"schedule": {"cron": "30 7 * * TUE", "timezone": "Europe/Berlin"}, "active": True},
                             {"schedule": {"cron": "0 9 * * MON", "timezone": "UTC"}, "active": False}]
    ids.append(post("/deployments/", body)["id"])
    time.sleep(1.0)  # registering the rest
marker.write_text("polling")
while True:
    post("/deployments/get_scheduled_flow_runs", {"deployment_ids": ids})
    time.sleep(0.5)
"""


def test_up_says_it_is_up_only_once_the_runner_serves_the_deployments(monkeypatch, tmp_path, capsys, prefect_database):
    """`rollway up` printed "rollway is up" and where to click while the runner was still
    registering the deployments: the UI listed some or none of them, and a run started then
    waited. The address is printed once the runner looks for runs of every deployment it
    registered; a deployment an earlier `rollway up` on the home left there does not hold it up.
    The weekly schedule the instructions name is the one the runner served advance_phase on (they
    said "Mondays 09:00 UTC" of any)."""
    import rollway.cli.up as up

    home = seed(tmp_path / "home", prefect_database)
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.setattr(up, "stop_on_signals", lambda: None)
    monkeypatch.setattr(up, "simulator_for", lambda *args, **kwargs: _Nothing())
    marker = tmp_path / "runner-polls"
    seen: list[bool] = []
    schedules: list = []

    def slow_runner(api_url, **kwargs):
        # Left behind by an earlier runner of the home: registered before this one started, never polled again.
        stale = _post(api_url, "/flows/", {"name": "retired_flow"})["id"]
        _post(api_url, "/deployments/", {"name": "rollway", "flow_id": stale})
        time.sleep(0.1)
        return Child("serve", [sys.executable, "-c", _SLOW_RUNNER, api_url, str(marker)], child_env({}),
                     tmp_path / "serve.log")

    def instructions(*args, **kwargs):
        seen.append(marker.exists())
        schedules.append(kwargs.get("schedules"))
        raise KeyboardInterrupt  # as a Ctrl-C right after the address is printed

    monkeypatch.setattr(up, "serve_process", slow_runner)
    monkeypatch.setattr(up, "_instructions", instructions)
    assert up.run_up(port=free_port(), speed=60.0, rps=0.0, seed=7, poll_seconds=1.0) == 130  # Ctrl-C's code
    assert seen == [True], "the address was printed before the runner served the deployments"
    assert schedules == [[("30 7 * * TUE", "Europe/Berlin")]], schedules
    assert "serving every deployment" in capsys.readouterr().out


def _post(api_url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(api_url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


# --- what `rollway demo` prints ----------------------------------------------------------------


_LONG_LINE = " ".join(f"word{i}" for i in range(60))  # 469 characters, breakable at every space


def test_the_demo_s_lines_fit_a_terminal_at_its_width_and_stay_whole_in_a_log(monkeypatch, capsys) -> None:
    """The demo printed every line on a console 200 columns wide, wherever it went: a terminal of
    80 or 120 columns broke each long line where the terminal did, not where the words did, and a
    log or CI page ran to 200. Its lines now fit the terminal; in a file a line of text is left
    whole (a message broken at a column is found by no search for it) and a table fits 200."""
    from rich.table import Table
    from rich.text import Text

    from rollway.cli.demo import console

    monkeypatch.delenv("COLUMNS", raising=False)
    console.print(_LONG_LINE)
    table = Table("stage", "verdict")
    table.add_row("5%", _LONG_LINE)
    console.print(table)
    line, *drawn = capsys.readouterr().out.splitlines()
    assert line == _LONG_LINE
    assert max(map(len, drawn)) <= 200 and max(map(len, drawn)) > 190, drawn

    class Tty:  # a terminal of 72 columns
        def __init__(self) -> None:
            self.written: list[str] = []

        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> None:
            self.written.append(text)

        def flush(self) -> None:
            pass

    terminal = Tty()
    monkeypatch.setattr(os, "get_terminal_size", lambda *_: os.terminal_size((72, 24)))
    monkeypatch.setattr(sys, "stdout", terminal)
    console.print(_LONG_LINE)
    shown = Text.from_ansi("".join(terminal.written)).plain.splitlines()
    assert max(map(len, shown)) <= 72 and max(map(len, shown)) > 60, shown


def test_scenario_a_s_heading_names_the_stages_it_runs() -> None:
    """Scenario A's heading said "5% -> 100%", read as one step from 5 % to all the traffic,
    where the scenario runs four stages (and the module says 5 -> 25 -> 50 -> 100%)."""
    from rollway.cli.demo import SCENARIOS, demo_spec

    (healthy,) = [s for s in SCENARIOS if s.expect == "promoted"]
    weights = [stage.weight for stage in demo_spec("repo/edit-container:2.0.0").stages]
    assert " -> ".join(map(str, weights)) + "%" in healthy.name, (healthy.name, weights)


# --- stopped by a signal -----------------------------------------------------------------------

# One Python process pays for the imports `rollway up` and `rollway demo` make before their first
# child (Prefect, moto: about 3 of the 4 s of CPU a start took) and forks a process for each
# command and signal. Each fork runs the `rollway` command as the shell does (its own Prefect home,
# standard output and error), sends itself the signal where up's server (the demo's embedded AWS)
# would start, and exits through the interpreter as a started one would: its exit status and output
# are what a script sees.
_SIGNALLED = """\
import importlib, json, os, signal, sys, threading
import prefect, moto
import rollway.cli.up as up
import rollway.sim.server as server
importlib.import_module("rollway.cli.demo")
from rollway.cli import main

class Signalled:
    url = "http://127.0.0.1:4200"
    def __init__(self, *args, **kwargs):
        pass
    def __enter__(self):
        os.kill(os.getpid(), SIGNAL)
        signal.pause()  # delivered on return from kill; never reached
    def __exit__(self, *exc):
        return None

up.PrefectServer = Signalled
server.EmbeddedAws = Signalled
# A fork copies only the thread that calls it: none may hold a lock the forks would need.
assert threading.active_count() == 1, threading.enumerate()
where, codes = sys.argv[1], {}
for case in sys.argv[2:]:
    command, name = case.split("-")
    home = os.path.join(where, case)
    os.mkdir(home)
    pid = os.fork()
    if pid == 0:
        os.environ["PREFECT_HOME"] = home
        out = os.open(os.path.join(home, "output"), os.O_WRONLY | os.O_CREAT)
        os.dup2(out, 1)
        os.dup2(out, 2)
        SIGNAL = getattr(signal, name)
        sys.argv = ["rollway", command]
        main()
        raise SystemExit(0)  # main() returned: the interpreter exits 0, as `rollway` would
    codes[case] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(codes))
"""
_COMMANDS, _SIGNALS = ("up", "demo"), ("SIGTERM", "SIGINT", "SIGHUP")


@pytest.fixture(scope="module")
def signalled(tmp_path_factory) -> dict[str, tuple[int, str]]:
    """Each "<command>-<signal>": the exit code and output of `rollway <command>` stopped by that signal."""
    import subprocess

    where = tmp_path_factory.mktemp("signalled")
    cases = [f"{command}-{sig}" for command in _COMMANDS for sig in _SIGNALS]
    env = {**os.environ, "PREFECT_HOME": str(where), "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", _SIGNALLED, str(where), *cases], env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    codes = json.loads(done.stdout.splitlines()[-1])
    return {case: (codes[case], (where / case / "output").read_text()) for case in cases}


@pytest.mark.parametrize("command", _COMMANDS)
@pytest.mark.parametrize("sig", _SIGNALS)
def test_up_and_the_demo_stopped_by_a_signal_exit_with_its_code_and_no_traceback(signalled, command, sig) -> None:
    """A supervisor stopping `rollway demo` (or `up`) with SIGTERM read 130, Ctrl-C's code (the demo
    with a KeyboardInterrupt traceback; `up` exited 0, as if it had ended on its own): the exit code
    is 128 + the signal's number (143 for SIGTERM, 130 for Ctrl-C, 129 for the terminal closed),
    as a shell reports a command that signal stopped, and one line names the signal."""
    code, output = signalled[f"{command}-{sig}"]
    assert code == 128 + getattr(signal, sig), output
    assert "Traceback" not in output
    assert f"stopped ({sig})" in output


def test_a_demo_scenario_ended_by_sigterm_stops_the_demo_not_counted_as_failed(monkeypatch, capsys) -> None:
    """SIGTERM to the demo's process group (a supervisor, `timeout`) stopped its temporary Prefect
    server too: Prefect's own SIGTERM handler, in the flow run, failed reporting the crash to it, and
    the ConnectError it raised instead was taken for the scenario's failure: the demo went on for a
    minute and more, each scenario "NOT as expected", and exited 1, not 143."""
    import importlib
    import types

    import httpx
    from prefect.exceptions import TerminationSignal

    import flows.canary
    import rollway.sim.topology as topology
    import rollway.sim.traffic as traffic
    from rollway.cli.up import stopped_by

    demo = importlib.import_module("rollway.cli.demo")  # the module; rollway.cli.demo is also the command

    def crashed_reporting_the_signal(**kwargs):
        try:
            raise TerminationSignal(signal.SIGTERM)
        except TerminationSignal:
            raise httpx.ConnectError("[Errno 111] Connection refused")

    class NoTraffic:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(flows.canary, "canary", crashed_reporting_the_signal)
    monkeypatch.setattr(topology, "provision", lambda *a, **k: types.SimpleNamespace(topic_arn="t", initial_image="i"))
    monkeypatch.setattr(topology, "put_release_image", lambda *a, **k: "repo/app:2.0.0")
    monkeypatch.setattr(traffic, "TrafficSimulator", NoTraffic)
    monkeypatch.setattr(demo, "_inbox", lambda *a, **k: None)
    aws = types.SimpleNamespace(reset=lambda: None)
    with pytest.raises(KeyboardInterrupt) as stopped:
        demo.run_scenario(demo.SCENARIOS[0], aws, None, demo.Targets(), speed=120.0, seed=7, rps=100.0)
    assert stopped_by(stopped.value) == ("SIGTERM", 143)
    assert "NOT as expected" not in capsys.readouterr().out
