"""Whether a process, or a process group, still runs: one answer for the watchdog, the clean-up
of leftover working directories and ``rollway up``'s children.

Standard library only: the watchdog runs isolated (``python -I``, nothing of the worker's
sys.path) and loads this file by its path.

A process that exited stays a zombie until its parent reaps it, and an orphan's new parent (pid
1 of a container) may never do so: a signal still finds it, so /proc/<pid>/stat's state
decides. Where /proc cannot be read (not Linux, or the process went between the two looks), the
signal's answer is taken: a live command taken for gone lost its grace to stop, and a live
process's directory was removed under it.
"""

from __future__ import annotations

import os

_GONE = ("Z", "X")  # a zombie, and a process being torn down


def _stat(pid: int | str) -> tuple[str, int] | None:
    """``pid``'s state and process group, from /proc/<pid>/stat; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # After the command's name (in parentheses, which may hold spaces): state, ppid, pgrp.
            state, _ppid, group = stat.read().rsplit(")", 1)[-1].split()[:3]
        return state, int(group)
    except (OSError, ValueError):
        return None


def runs(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has: it only awaits its reaper).
    Another user's process holding the pid counts as running: not ours to judge."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    seen = _stat(pid)
    return seen is None or seen[0] not in _GONE


def group_runs(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (its zombies do not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return True  # no /proc to tell a zombie by: the signal's answer is all there is
    for pid in pids:
        seen = _stat(pid)  # None: it exited while the list was read
        if seen is not None and seen[1] == pgid and seen[0] not in _GONE:
            return True
    return False
