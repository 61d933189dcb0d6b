"""Run an external tool (cdk, docker, git): an argument list, never a shell.

Every toolchain adapter goes through ``run_tool`` so that each gets the same guarantees:
the executable is found before anything runs (a missing tool is a clear error, not a
``FileNotFoundError`` from deep inside subprocess), its output is streamed line by line to
the caller (a ``cdk deploy`` takes minutes: people watch it move), secrets handed to it are
masked in every line kept or shown, a timeout kills the tool's whole process group (and so
does the death of this process, however it dies: ``watchdog.py``), and a failure names the
tool, its exit code and the last lines it printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from rollway.bounds import seconds_said
from rollway.errors_pickle import PicklableError

# Lines of output kept for the error message of a failed run: the end is where tools say why.
TAIL_LINES = 40
# A line longer than this is cut where it is kept or shown: one line of a template or a JSON
# blob would otherwise fill the error message, the run's log and its artifact with megabytes.
MAX_LINE_CHARS = 8000
MASK = "****"
# Every tool runs under this script: it kills the tool's group once this process is gone.
WATCHDOG = str(Path(__file__).with_name("watchdog.py"))


def on_path(program: str, env: Mapping[str, str] | None) -> bool:
    """Whether exec finds ``program`` as the child would look it up (on ``env``'s PATH): the
    watchdog would start, then fail to run it."""
    return shutil.which(program, path=os.pathsep.join(os.get_exec_path(env))) is not None


def start_watched(command: Sequence[str], *, exec_grace: float | None = None, pass_fds: Sequence[int] = (),
                  **popen: Any) -> tuple[subprocess.Popen, int]:
    """Start ``command`` under the watchdog, leading a session of its own (``popen``: Popen's
    other arguments), and return it with the write end of the watchdog's pipe.

    The write end stays in this process alone (non-inheritable): when this process dies, however
    (SIGKILL, the OOM killer), the kernel closes it and the watchdog stops the command's group.
    The caller closes it once the command is done or stopped. ``exec_grace``: the watchdog
    becomes the command (``--exec``), so its pid, signals and exit code are the command's own,
    and at the pipe's end it SIGTERMs it and kills the group after that many seconds.
    """
    alive_read, alive_write = os.pipe()
    mode = ["--exec", repr(exec_grace)] if exec_grace is not None else []
    try:
        process = subprocess.Popen(  # noqa: S603 - an argument list, no shell
            [sys.executable, "-I", WATCHDOG, str(alive_read), *mode, "--", *command],
            start_new_session=True, pass_fds=(alive_read, *pass_fds), **popen,
        )
    except BaseException:
        os.close(alive_write)
        raise
    finally:
        os.close(alive_read)
    return process, alive_write
# What every tool needs of the worker's environment to run at all and to reach the network
# through its proxy. Each tool adds what it uses itself, and nothing else of the worker's: its AWS
# keys, Prefect API key and other tokens are none of a tool's business.
TOOL_ENVIRONMENT = frozenset({"PATH", "HOME", "TMPDIR", "LANG", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                              "http_proxy", "https_proxy", "no_proxy"})


class ToolError(RuntimeError):
    """Base of every error a toolchain adapter raises on purpose."""


class ToolMissing(PicklableError, ToolError):
    """The executable is not installed (or not where it was said to be)."""

    def __init__(self, executable: str, hint: str = "") -> None:
        self.executable = executable
        suffix = f"; {hint}" if hint else ""
        super().__init__(f"{executable!r} {_why_missing(executable)}{suffix}")


def _why_missing(executable: str) -> str:
    """Why exec cannot run ``executable``: a bare name is looked up on PATH, a path is taken as
    given (``cdk_executable=/opt/cdk/bin/cdk`` misspelt was said "not found on PATH")."""
    if os.sep not in executable and not (os.altsep and os.altsep in executable):
        return "was not found on PATH"
    path = Path(executable)
    if not path.exists():
        return "does not exist"
    if path.is_dir():
        return "is a directory, not a program"
    return "is not executable (chmod +x it)"


class ToolFailed(PicklableError, ToolError):
    """The tool ran and exited non-zero.

    Attributes:
        command: the argument list as run, secrets masked (they belong on stdin, not in it).
        returncode: the tool's exit code.
        tail: its last lines of output, secrets masked.
    """

    def __init__(self, command: Sequence[str], returncode: int, tail: Sequence[str]) -> None:
        self.command = tuple(command)
        self.returncode = returncode
        self.tail = tuple(tail)
        super().__init__(
            f"`{' '.join(self.command)}` exited with {returncode}; its last output:\n{last_lines(self.tail)}")


class ToolTimeout(PicklableError, ToolError):
    """The tool ran longer than allowed and was killed (with every process it started)."""

    def __init__(self, command: Sequence[str], timeout_seconds: float, tail: Sequence[str]) -> None:
        self.command = tuple(command)
        self.timeout_seconds = timeout_seconds
        self.tail = tuple(tail)
        super().__init__(
            f"`{' '.join(self.command)}` did not finish within {seconds_said(timeout_seconds)} and was stopped; "
            f"its last output:\n{last_lines(self.tail)}"
        )


def last_lines(tail: Sequence[str], count: int = 12) -> str:
    """The last ``count`` lines of output that say something: blank ones (cdk prints one for about
    every two others, and after an app's traceback) took places among the few a message shows."""
    return "\n".join([line for line in tail if line.strip()][-count:]) or "(no output)"


@dataclass(frozen=True)
class ToolResult:
    """A run that exited 0: its output (secrets masked) and how long it took."""

    command: tuple[str, ...]
    output: tuple[str, ...]
    seconds: float


def resolve(executable: str, hint: str = "") -> str:
    """The full path of ``executable`` (a name looked up on PATH, or a path), or ``ToolMissing``."""
    found = shutil.which(executable)
    if found is None:
        raise ToolMissing(executable, hint)
    return found


def run_tool(
    command: Sequence[str],
    *,
    timeout_seconds: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    secrets: Sequence[str] = (),
    on_line: Callable[[str], None] | None = None,
    keep_output: bool = True,
    on_quiet: Callable[[float, float], None] | None = None,
    quiet_seconds: float = 120.0,
) -> ToolResult:
    """Run ``command`` to completion and return its output, or raise.

    Args:
        command: the executable (already resolved with ``resolve``) and its arguments.
        timeout_seconds: after this long the tool and everything it started are killed.
        cwd: the directory it runs in.
        env: its whole environment (the caller decides what it inherits).
        stdin: text written to its standard input, then closed: how secrets are handed over.
        secrets: strings masked wherever they would appear in output kept or shown.
        on_line: called with each line of output (stdout and stderr merged) as it arrives.
        keep_output: False keeps only the tail (for tools that print a lot).
        on_quiet: called with (seconds since the start, seconds since its last line) each time the
            tool has printed nothing for another ``quiet_seconds``: a sign of life while it waits.
        quiet_seconds: how long a silence is before ``on_quiet`` is called.

    Raises:
        ToolFailed: it exited non-zero.
        ToolTimeout: it ran past ``timeout_seconds``.
        ToolMissing: the executable vanished between ``resolve`` and the run.
    """
    if not command:
        raise ValueError("command is empty")
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
    masked = [s for s in secrets if s]
    if not on_path(command[0], env):
        raise ToolMissing(command[0])
    started = time.monotonic()
    # Under the watchdog until the tool is done: if this process dies, however (a worker
    # SIGKILLed, OOM-killed), the tool's group is killed. Otherwise a `cdk deploy` went on
    # deploying with nobody watching, and a resumed run raced it on the same stack. Its own
    # process group (the watchdog leads it, the tool runs in it), so a timeout stops the tool's
    # children too (cdk runs the app in a child; docker push runs helpers).
    process, alive_write = start_watched(
        command, cwd=cwd, env=dict(env) if env is not None else None,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
    )
    try:
        return _supervise(process, command, started, timeout_seconds=timeout_seconds, stdin=stdin, masked=masked,
                          on_line=on_line, keep_output=keep_output, on_quiet=on_quiet, quiet_seconds=quiet_seconds)
    finally:
        os.close(alive_write)


def _supervise(process: subprocess.Popen, command: Sequence[str], started: float, *, timeout_seconds: float,
               stdin: str | None, masked: Sequence[str], on_line: Callable[[str], None] | None, keep_output: bool,
               on_quiet: Callable[[float, float], None] | None, quiet_seconds: float) -> ToolResult:
    """Read the started tool's output until it exits, stopping its group on a timeout or an
    interruption; see ``run_tool``."""
    kept: list[str] = []
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    heard = [started]  # when the tool last printed a line (written by the reader thread)

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            heard[0] = time.monotonic()
            line = _cut(_mask(raw.rstrip("\n"), masked))  # masked first: a cut never splits a secret
            tail.append(line)
            if keep_output:
                kept.append(line)
            if on_line is not None:
                on_line(line)

    reader = threading.Thread(target=read, name=f"output-of-{os.path.basename(command[0])}", daemon=True)
    reader.start()
    if stdin is not None:
        assert process.stdin is not None
        try:
            process.stdin.write(stdin)
            process.stdin.close()
        except BrokenPipeError:  # it exited before reading: its exit code says why
            pass
    try:
        returncode = _wait(process, started, started + timeout_seconds, heard, on_quiet, quiet_seconds)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        reader.join(timeout=5)
        raise ToolTimeout([_mask(a, masked) for a in command], timeout_seconds, list(tail)) from None
    except BaseException:
        # Interrupted while waiting (a run cancelled from the UI raises Prefect's TerminationSignal
        # here; Ctrl-C raises KeyboardInterrupt): the tool is in a session of its own, so no signal
        # reaches it unless sent; left alone a cancelled `cdk deploy` goes on deploying unwatched.
        _kill_group(process)
        raise
    # Whatever the tool left running in its group (a child still holding its stdout) is stopped:
    # otherwise the reader never sees the end of the output, the run waits 30 s more, returns
    # while still reading, and the child goes on outside any timeout.
    _kill_leftovers(process)
    reader.join(timeout=30)
    if returncode != 0:
        raise ToolFailed([_mask(a, masked) for a in command], returncode, list(tail))
    return ToolResult(tuple(command), tuple(kept if keep_output else tail), time.monotonic() - started)


def _wait(process: subprocess.Popen, started: float, deadline: float, heard: list[float],
          on_quiet: Callable[[float, float], None] | None, quiet_seconds: float,
          clock: Callable[[], float] = time.monotonic) -> int:
    """The tool's exit code, waiting until ``deadline`` (then ``TimeoutExpired``), calling
    ``on_quiet`` for every ``quiet_seconds`` it prints nothing.

    A CloudFormation deploy goes silent for many minutes while an ECS service stabilizes or an
    image builds; with nothing in the run's log for that long, a person could not tell a
    waiting deploy from a hung one. ``started``, ``deadline`` and ``heard`` (when the tool last
    printed a line) are times on ``clock``, which ``process.wait``'s timeouts are taken to run on.
    """
    noted = heard[0]
    while True:
        now = clock()
        if on_quiet is None or quiet_seconds <= 0:
            return process.wait(timeout=max(deadline - now, 0))
        # Next look: when the silence since the last line (or the last notice) reaches quiet_seconds.
        due = max(heard[0], noted) + quiet_seconds
        try:
            return process.wait(timeout=max(min(deadline, due) - now, 0))
        except subprocess.TimeoutExpired:
            now = clock()
            if now >= deadline:
                raise
            if now - max(heard[0], noted) >= quiet_seconds:
                noted = now
                on_quiet(now - started, now - heard[0])


def _cut(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return f"{line[:MAX_LINE_CHARS]} ... ({len(line) - MAX_LINE_CHARS} characters cut)"


def _mask(line: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        line = line.replace(secret, MASK)
    return line


def _kill_leftovers(process: subprocess.Popen) -> None:
    # The group outlives its leader while members remain, and Linux does not reuse a pid that is
    # still a group's id: this reaches only what the tool started.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
