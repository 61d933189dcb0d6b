"""Run a tool and kill its whole process group once the process that started it is gone.

``run_tool`` starts every tool (cdk, docker, git) through this script, run by path with the
worker's own interpreter in isolated mode (standard library only, nothing of the worker's
environment or sys.path)::

    python -I watchdog.py <fd> -- <tool> <arguments...>

``fd`` is the read end of a pipe whose only write end the worker holds and never writes to.
The tool runs as this script's child in its process group (``run_tool`` makes the script the
leader of a session of its own); when the read ends (EOF: the worker exited, however it died,
SIGKILL and OOM kill included), the group is killed, this script with it.

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

USAGE = "usage: watchdog.py <fd> -- <tool> [arguments...]"
CANNOT_START = 127  # what a shell answers for a command it cannot run


def _watch(fd: int, tool: subprocess.Popen) -> None:
    """Block until the worker's end of the pipe is closed, then kill the process group."""
    try:
        while os.read(fd, 512):  # the worker never writes: anything read is ignored
            pass
    except OSError:
        pass
    # The worker is gone: nobody reads the tool's output or will stop it, and a `cdk deploy`
    # would go on deploying with nobody watching.
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)  # the group this script leads: the tool, what it started, this script
    tool.kill()  # started by hand outside a group of its own: the caller's group is not ours to kill


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    fd = int(argv[1])
    command = argv[3:]
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
