"""run_tool against real child processes (the Python interpreter as the tool)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from rollway.toolchain.process import ToolFailed, ToolMissing, ToolTimeout, resolve, run_tool

PY = sys.executable


def test_output_is_streamed_line_by_line_and_kept():
    seen: list[str] = []
    result = run_tool([PY, "-c", "print('one'); import sys; print('two', file=sys.stderr)"],
                      timeout_seconds=30, on_line=seen.append)
    assert seen == ["one", "two"]
    assert result.output == ("one", "two")


def test_a_failure_names_the_exit_code_and_the_last_output():
    with pytest.raises(ToolFailed) as caught:
        run_tool([PY, "-c", "print('stack X failed: quota'); raise SystemExit(3)"], timeout_seconds=30)
    assert caught.value.returncode == 3
    assert "stack X failed: quota" in str(caught.value)
    assert "exited with 3" in str(caught.value)


def test_secrets_on_stdin_reach_the_tool_and_never_its_output():
    seen: list[str] = []
    code = "import sys; s = sys.stdin.read(); print('got', s); raise SystemExit(0 if s == 'hunter2' else 1)"
    result = run_tool([PY, "-c", code], timeout_seconds=30, stdin="hunter2", secrets=["hunter2"], on_line=seen.append)
    assert result.output == ("got ****",)
    assert seen == ["got ****"]
    with pytest.raises(ToolFailed) as caught:
        run_tool([PY, "-c", "print('token hunter2'); raise SystemExit(1)"], timeout_seconds=30, secrets=["hunter2"])
    assert "hunter2" not in str(caught.value)


def parent_of_a_sleeper(pid_file: Path) -> str:
    """A Python program that starts a sleeping child, writes its pid to ``pid_file``, prints
    'started' and sleeps too: a tool with a process of its own to stop."""
    return (
        "import subprocess, sys, time;"
        f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pid_file)!r}, 'w').write(str(c.pid));"
        "print('started', flush=True); time.sleep(60)"
    )


def test_a_timeout_kills_the_tool_and_the_processes_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = parent_of_a_sleeper(pid_file)
    started = time.monotonic()
    with pytest.raises(ToolTimeout) as caught:
        run_tool([PY, "-c", code], timeout_seconds=2)
    assert time.monotonic() - started < 20
    assert caught.value.tail == ("started",)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the tool's child outlived the timeout"


def test_a_missing_tool_is_named_with_the_hint():
    with pytest.raises(ToolMissing, match="'no-such-tool-xyz' was not found on PATH; install it"):
        resolve("no-such-tool-xyz", "install it")
    with pytest.raises(ToolMissing):
        run_tool(["/nonexistent/bin/tool"], timeout_seconds=5)


def test_a_tool_given_by_a_path_that_is_not_there_or_not_runnable_says_so_not_path(tmp_path):
    """cdk_executable=/opt/cdk/bin/cdk misspelt was said "not found on PATH": PATH is not where
    anyone would look for a path they typed."""
    missing = tmp_path / "bin" / "cdk"
    with pytest.raises(ToolMissing) as caught:
        resolve(str(missing), "install the AWS CDK CLI")
    assert str(caught.value) == f"{str(missing)!r} does not exist; install the AWS CDK CLI"
    with pytest.raises(ToolMissing, match="does not exist"):
        run_tool([str(missing)], timeout_seconds=5)
    plain = tmp_path / "cdk"
    plain.write_text("#!/bin/sh\n")
    with pytest.raises(ToolMissing, match=f"^{str(plain)!r} is not executable \\(chmod \\+x it\\)$"):
        resolve(str(plain))
    with pytest.raises(ToolMissing, match=f"^{str(tmp_path)!r} is a directory, not a program$"):
        resolve(str(tmp_path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its parent, which is gone too) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


class _Cancelled(BaseException):
    """Stands for Prefect's TerminationSignal: a cancel from the UI raises it in the waiting thread."""


def test_an_interrupted_wait_stops_the_tool_and_its_children(tmp_path, monkeypatch):
    # Cancelling a run from the UI raises (a BaseException) in the thread waiting for the tool;
    # the tool runs in a session of its own, so nothing else would stop it: a cancelled
    # `cdk deploy` would go on deploying with nobody watching.
    import subprocess

    pid_file = tmp_path / "child.pid"
    code = parent_of_a_sleeper(pid_file)
    real_wait = subprocess.Popen.wait
    tool: list[subprocess.Popen] = []

    def interrupted_wait(self, timeout=None):
        if timeout is None:  # the kill's own wait
            return real_wait(self)
        tool.append(self)
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)  # until the tool has started its child: the state a cancel finds
        raise _Cancelled()

    monkeypatch.setattr(subprocess.Popen, "wait", interrupted_wait)
    try:
        with pytest.raises(_Cancelled):
            run_tool([PY, "-c", code], timeout_seconds=300)
        monkeypatch.undo()
        child = int(pid_file.read_text())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (_alive(child) or _alive(tool[0].pid)):
            time.sleep(0.05)
        assert not _alive(tool[0].pid), "the tool outlived the interrupted run"
        assert not _alive(child), "the tool's child outlived the interrupted run"
    finally:
        if tool:
            try:
                os.killpg(tool[0].pid, 9)
            except ProcessLookupError:
                pass


def test_a_child_left_holding_the_output_is_stopped_when_the_tool_exits():
    # A tool that exits leaving a child with its stdout open: the reader never saw the end of
    # the output, so run_tool waited 30 s more, returned while still reading, and the child
    # went on running, outside any timeout.
    code = ("import subprocess, sys;"
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            "print(c.pid, flush=True)")
    started = time.monotonic()
    result = run_tool([PY, "-c", code], timeout_seconds=60)
    child = int(result.output[0])
    try:
        deadline = time.monotonic() + 5  # killed: its output is closed a moment before it is gone
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child), "the tool's child outlived it"
        assert time.monotonic() - started < 20
    finally:
        try:
            os.kill(child, 9)
        except ProcessLookupError:
            pass


def test_a_huge_line_is_cut_where_it_is_kept_or_shown():
    # A tool printing one enormous line (a template, a JSON blob) put all of it into the error
    # message, the tail and every log line: megabytes in the run's state message and artifact.
    seen: list[str] = []
    code = "import sys; sys.stdout.write('hunter2' + 'x' * 3_000_000 + '\\n'); sys.stdout.flush(); raise SystemExit(2)"
    with pytest.raises(ToolFailed) as caught:
        run_tool([PY, "-c", code], timeout_seconds=60, secrets=["hunter2"], on_line=seen.append)
    assert len(str(caught.value)) < 50_000
    assert len(seen) == 1 and len(seen[0]) < 50_000 and seen[0].startswith("****xxx")
    assert "characters cut" in caught.value.tail[0]


class _ScriptedTool:
    """A tool on a fake clock for ``_wait``: it prints a line at each of ``lines`` (seconds on the
    clock) and exits at ``exits`` (None: never). ``wait(timeout)`` moves the clock as a real wait
    would, so the notices' times are exact whatever the machine's load."""

    def __init__(self, lines: list[float], exits: float | None) -> None:
        self.now = 0.0
        self.heard = [0.0]
        self._lines, self._exits = sorted(lines), exits

    def clock(self) -> float:
        return self.now

    def wait(self, timeout: float) -> int:
        import subprocess

        until = self.now + timeout
        ends = self._exits is not None and self._exits <= until
        self.now = self._exits if ends else until
        for line in self._lines:
            if line <= self.now:
                self.heard[0] = max(self.heard[0], line)
        if ends:
            return 0
        raise subprocess.TimeoutExpired("tool", timeout)


def _notices(tool: _ScriptedTool, *, deadline: float,
             quiet_seconds: float) -> tuple[int | None, list[tuple[float, float]]]:
    from rollway.toolchain.process import _wait

    quiet: list[tuple[float, float]] = []
    try:
        code = _wait(tool, 0.0, deadline, tool.heard, lambda *seconds: quiet.append(seconds), quiet_seconds,
                     clock=tool.clock)
    except Exception:  # noqa: BLE001 - the timeout, checked by the caller
        code = None
    return code, quiet


def test_a_silent_tool_is_said_to_be_still_running_and_a_talking_one_is_not():
    # A CloudFormation deploy goes silent for minutes while an ECS service stabilizes: the run's
    # log stood still all that time, a waiting deploy looking like a hung one. Six lines 0.1 s
    # apart, one more at 0.6 s, then 1.6 s of silence: a notice every 0.5 s of it, none before.
    tool = _ScriptedTool(lines=[0.1 * i for i in range(7)], exits=2.2)
    code, quiet = _notices(tool, deadline=30, quiet_seconds=0.5)
    assert code == 0
    assert [round(s, 6) for notice in quiet for s in notice] == [1.1, 0.5, 1.6, 1.0, 2.1, 1.5]


def test_a_silent_tool_still_times_out_on_time():
    tool = _ScriptedTool(lines=[], exits=None)
    code, quiet = _notices(tool, deadline=1.2, quiet_seconds=0.5)
    assert code is None and tool.now == pytest.approx(1.2)  # stopped at the deadline, not at a notice
    assert [round(s, 6) for notice in quiet for s in notice] == [0.5, 0.5, 1.0, 1.0]


def test_a_real_silent_tool_is_said_to_be_still_running():
    # The same with a real tool, asserting only what holds on a loaded machine (a late wake-up
    # moves a notice, never makes one early): every notice follows 0.5 s of silence at least,
    # and the 1.6 s silence before the end gets one.
    quiet: list[tuple[float, float]] = []
    code = "import time\nprint('CREATE_IN_PROGRESS AWS::ECS::Service', flush=True)\ntime.sleep(1.6)\nprint('done')"
    result = run_tool([PY, "-c", code], timeout_seconds=30, on_quiet=lambda *seconds: quiet.append(seconds),
                      quiet_seconds=0.5)
    assert result.output[-1] == "done"
    assert quiet and all(elapsed >= silent >= 0.5 for elapsed, silent in quiet), quiet
    assert [e for e, _s in quiet] == sorted(e for e, _s in quiet)


def test_a_real_silent_tool_still_times_out():
    quiet: list[tuple[float, float]] = []
    started = time.monotonic()
    with pytest.raises(ToolTimeout):
        run_tool([PY, "-c", "import time; time.sleep(30)"], timeout_seconds=1.2,
                 on_quiet=lambda *seconds: quiet.append(seconds), quiet_seconds=0.5)
    assert time.monotonic() - started < 20  # the tool sleeps 30 s
    assert len(quiet) <= 2, quiet  # 0.5 s apart at least, within the 1.2 s before the timeout


def test_a_failures_message_quotes_the_last_lines_that_say_something():
    # cdk prints a blank line for about every two others, and more after an app's traceback: they
    # took places among the twelve lines a failure's message quotes, pushing out the error itself.
    code = ("print('Traceback (most recent call last):'); print('ValueError: bucket name taken')\n"
            "for _ in range(15): print()\nprint('Subprocess exited with error 1'); print(); raise SystemExit(1)")
    with pytest.raises(ToolFailed) as caught:
        run_tool([PY, "-c", code], timeout_seconds=30)
    assert str(caught.value).endswith("its last output:\nTraceback (most recent call last):\n"
                                      "ValueError: bucket name taken\nSubprocess exited with error 1")
    assert caught.value.tail[-1] == ""  # the tail itself is kept as printed


def test_a_tool_dies_with_the_worker_killed_outright(tmp_path):
    # A worker SIGKILLed (OOM, a node drained, `kill -9`) runs no handler: its `cdk deploy`,
    # in a session of its own, went on deploying with nobody watching, and a resumed run raced
    # it on the same stack. The tool is started from a thread, as Prefect runs tasks.
    import signal
    import subprocess

    pid_file = tmp_path / "tool.pid"
    tool = ("import os, subprocess, sys, time;"
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{c.pid}}');"
            "time.sleep(60)")
    worker = ("import sys, threading\n"
              "from rollway.toolchain.process import run_tool\n"
              "task = threading.Thread(target=run_tool, args=([sys.executable, '-c', sys.argv[1]],),\n"
              "                        kwargs={'timeout_seconds': 300})\n"
              "task.start(); task.join()\n")
    process = subprocess.Popen([PY, "-c", worker, tool], start_new_session=True)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(pids) < 2:
            time.sleep(0.05)
            pids = [int(p) for p in pid_file.read_text().split()] if pid_file.exists() else []
        assert len(pids) == 2, "the tool never started"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)
        assert not _alive(pids[0]), "the tool outlived the worker killed outright"
        assert not _alive(pids[1]), "the tool's child outlived the worker killed outright"
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if process.poll() is None:
            process.kill()
            process.wait()


def _is_running(check: str):
    """The check the watchdog, the leftovers' clean-up and `rollway up` ask of a process (the
    last of its group, which the process leads here)."""
    import rollway.cli.processes as processes
    import rollway.toolchain.leftovers as leftovers
    import rollway.toolchain.watchdog as watchdog

    return {"watchdog": watchdog._running, "leftovers": leftovers._running, "up": processes._group_runs}[check]


@pytest.mark.parametrize("check", ["watchdog", "leftovers", "up"])
def test_the_watchdog_the_leftovers_and_up_agree_on_what_still_runs(check, monkeypatch):
    """One answer for all three. The watchdog took a live command whose /proc it could not read
    (not Linux, or read as the command moved on) for gone, and killed it without its grace to
    stop; the leftovers' clean-up kept that one's directory. A zombie runs for none of them."""
    import builtins
    import subprocess

    running = _is_running(check)
    live = subprocess.Popen(["sleep", "30"], start_new_session=True)
    gone = subprocess.Popen([sys.executable, "-c", ""], start_new_session=True)
    try:
        for _ in range(200):  # exited, not reaped: a zombie, as an orphan whose reaper never reaps
            with open(f"/proc/{gone.pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[-1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        assert running(live.pid) and not running(gone.pid)
        real_open = builtins.open

        def no_proc(file, *args, **kwargs):
            if str(file).startswith("/proc/"):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", no_proc)
        monkeypatch.setattr(os, "listdir", lambda path: (_ for _ in ()).throw(PermissionError(13, "denied", path)))
        assert running(live.pid), "a live process whose /proc cannot be read was taken for gone"
    finally:
        monkeypatch.undo()
        live.kill()
        live.wait()
        gone.wait()
