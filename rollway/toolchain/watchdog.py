"""Run a tool and kill its whole process group once the process that started it is gone.

``run_tool`` starts every tool (cdk, docker, git) through this script, run by path with the
worker's own interpreter in isolated mode (standard library only, nothing of the worker's
environment or sys.path)::

    python -I watchdog.py <fd> -- <tool> <arguments...>

``fd`` is the read end of a pipe whose only write end the worker holds and never writes to.
The tool runs as this script's child in its process group (``run_tool`` makes the script the
leader of a session of its own); when the read ends (EOF: the worker exited, however it died,
SIGKILL and OOM kill included), the group is killed, this script with it.

``rollway up`` starts its long-lived children (the Prefect server, the runner) the same way,
with ``--exec``::

    python -I watchdog.py <fd> --exec <grace seconds> -- <command> <arguments...>

Here this script *becomes* the command (exec), so the caller's pid, signals and exit code are
the command's own, and the watching is left to a small process it forks into the command's
process group first. At EOF that process asks the command to stop (SIGTERM: the server and the
runner stop what they run, as on a Ctrl-C), waits up to the grace for it to exit, then kills
the group, itself with it. It keeps no descriptor but the pipe's: not the Prefect home's lock
(which names its holders), not the command's output (a reader would wait for it to close).

Why not the kernel's parent-death signal: PR_SET_PDEATHSIG fires when the *thread* that forked
the child exits, and Prefect runs tasks in worker threads, so a finished thread would kill a
tool still in use; and it needs ``preexec_fn``, which is unsafe in a process with threads.
A pipe's end is closed by the kernel when its last holder dies, whatever the thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

USAGE = "usage: watchdog.py <fd> [--exec <grace seconds>] -- <tool> [arguments...]"
CANNOT_START = 127  # what a shell answers for a command it cannot run


def _wait_for_eof(fd: int) -> None:
    """Block until the worker's end of the pipe is closed (the worker exited, however)."""
    try:
        while os.read(fd, 512):  # the worker never writes: anything read is ignored
            pass
    except OSError:
        pass


def _watch(fd: int, tool: subprocess.Popen) -> None:
    """Block until the worker's end of the pipe is closed, then kill the process group."""
    _wait_for_eof(fd)
    # The worker is gone: nobody reads the tool's output or will stop it, and a `cdk deploy`
    # would go on deploying with nobody watching.
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)  # the group this script leads: the tool, what it started, this script
    tool.kill()  # started by hand outside a group of its own: the caller's group is not ours to kill


def _sibling(name: str):
    """The module ``name`` of this script's directory, loaded by its path: run isolated, this
    script has nothing of the worker's sys.path (the module is standard library only)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"_watchdog_{name}", os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The answer the clean-up and `rollway up` give too: a command whose /proc could not be read was
# taken for gone here, and killed without its grace to stop.
_running = _sibling("alive").runs


def _keep_only(fd: int) -> None:
    """Close every descriptor but ``fd``; the standard ones read and write /dev/null."""
    null = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(null, std)
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2 and int(name) != fd:
            try:
                os.close(int(name))
            except OSError:  # the directory listing's own descriptor, closed by now
                pass


def _guard(fd: int, command: int, grace_seconds: float) -> None:
    """In the forked watcher: at EOF, SIGTERM ``command``, give it ``grace_seconds`` to exit,
    then SIGKILL the process group it leads (this watcher with it). Never returns."""
    try:
        _keep_only(fd)
        _wait_for_eof(fd)
        try:
            os.kill(command, signal.SIGTERM)
        except ProcessLookupError:  # exited already; what it started may still run
            pass
        deadline = time.monotonic() + grace_seconds
        # Nothing to wait on: the command is not this process's child.
        while _running(command) and time.monotonic() < deadline:
            time.sleep(0.1)
        if os.getpgrp() == command:
            os.killpg(command, signal.SIGKILL)  # what the command started, and this watcher
        os.kill(command, signal.SIGKILL)  # not a group leader: the caller's group is not ours to kill
    except OSError:
        pass
    finally:
        os._exit(0)


def _become(fd: int, grace_seconds: float, command: list[str]) -> int:
    """Fork the watcher into this process group, then exec ``command``; returns only when it
    cannot be started."""
    leader = os.getpid()
    first = os.fork()
    if first == 0:
        # Forked twice, so the watcher is nobody's child: the command, once exec'd, would not
        # reap a child it never started, and an exited watcher would linger as its zombie.
        # Its descriptors are dropped here, before the command can start (that waits for this
        # process to exit): a watcher that closed them itself, scheduled late on a busy machine,
        # still held the Prefect home's lock as the command ran, and `rollway up` named it as a
        # holder of the home.
        _keep_only(fd)
        if os.fork() == 0:
            _guard(fd, leader, grace_seconds)
        os._exit(0)
    os.waitpid(first, 0)
    os.close(fd)  # the command has no use for it: the watcher holds the pipe
    # What subprocess does before an exec: the command starts with the signals Python ignores
    # (a broken pipe, a file too large) back to their defaults, as from a shell.
    for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execvp(command[0], command)
    except OSError as err:
        print(f"cannot start {command[0]}: {err}", file=sys.stderr, flush=True)
    return CANNOT_START


def main(argv: list[str]) -> int:
    args = argv[1:]
    grace = None
    if len(args) >= 4 and args[1] == "--exec":
        try:
            grace = float(args[2])
        except ValueError:
            grace = None
        else:
            args = [args[0], *args[3:]]
    if len(args) < 3 or args[1] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    fd = int(args[0])
    command = args[2:]
    if grace is not None:
        return _become(fd, grace, command)
    try:
        # Same process group as this script (no new session): one killpg reaches both, and
        # the tool inherits stdin, stdout, stderr, the directory and the environment as given.
        tool = subprocess.Popen(command)  # noqa: S603 - an argument list, no shell
    except OSError as err:
        print(f"cannot start {command[0]}: {err}", file=sys.stderr, flush=True)
        return CANNOT_START
    threading.Thread(target=_watch, args=(fd, tool), daemon=True).start()
    code = tool.wait()
    if code < 0:
        # Killed by a signal: die of the same one, so the worker reads the tool's own end.
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be caught anyway
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
