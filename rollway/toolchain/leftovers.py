"""Temporary directories a run makes for a tool, found and removed once the run that made them is gone.

A run killed outright (SIGKILL, the OOM killer) runs none of its cleanup: the private docker
config it logged in with stays in the temporary directory with its token, and the cloud assembly
cdk synthesized (templates, bundled assets: up to hundreds of MB an app) stays there too, one
more for every such run on the worker. Each is made with ``owned_prefix``: a prefix naming its
kind, then the maker's pid, its start time and its pid namespace, and later runs remove those
whose maker no longer runs (``remove_stale``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from rollway.toolchain.alive import runs as _running


def owned_prefix(prefix: str) -> str:
    """``prefix`` and what tells later runs whose directory it is: for ``tempfile.mkdtemp``."""
    started = _started(os.getpid())
    return f"{prefix}p{os.getpid()}{'' if started is None else f'-s{started}'}-n{_pid_namespace()}-"


def remove_stale(prefix: str, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the directories named with ``owned_prefix(prefix)`` whose maker is gone; the removed.

    Only directories this user owns, in this process's pid namespace, that are real directories
    (not symlinks) and whose process no longer runs: its pid is free, or held by a process that
    started at another time (the pid was used again). Never a live run's. A name without a start
    time (made by an earlier version) is kept while its pid runs.

    Args:
        prefix: the kind of directory (``rollway-docker-``, ``rollway-cdk-``).
        root: where they are made (default: the temporary directory).
    """
    # The prefix, the maker's pid, its start time (absent in names made before it was recorded), its
    # pid namespace, mkdtemp's random part (letters, digits, "_"; never "-").
    ours = re.compile(rf"^{re.escape(prefix)}p(\d+)(?:-s(\d+))?-n(\d+)-[a-z0-9_]+$")
    base = Path(root if root is not None else tempfile.gettempdir())
    namespace = _pid_namespace()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        found = ours.match(entry.name)
        if found is None or int(found.group(3)) != namespace:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            continue
        pid, started = int(found.group(1)), found.group(2)
        if pid == os.getpid() or (_running(pid) and (started is None or _started(pid) in (None, int(started)))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(Path(entry.path))
    return removed


def _pid_namespace() -> int:
    """This process's pid namespace (the inode /proc/self/ns/pid names); 0 where there is none."""
    try:
        return int(re.sub(r"\D", "", os.readlink("/proc/self/ns/pid")) or 0)
    except (OSError, ValueError):
        return 0


def _started(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot (/proc/<pid>/stat's 22nd field);
    None where it cannot be read. A pid used again belongs to a process that started later."""
    try:
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; the start time is
        # the 20th field after it.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
