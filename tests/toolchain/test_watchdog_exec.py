"""The watchdog's ``--exec`` mode: the command it becomes is the only holder of what it was given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import rollway.toolchain.watchdog as watchdog

# Runs the watchdog's `--exec` as `rollway up` does, except that the watcher it forks is scheduled
# a second late (as on a loaded machine): its fork returns in the watcher only after a sleep. The
# command it becomes then lists which other processes hold the Prefect home's lock.
_LATE_WATCHER = """\
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("watchdog", sys.argv[1])
watchdog = importlib.util.module_from_spec(spec)
spec.loader.exec_module(watchdog)
forks, fork = [], os.fork
def late_fork():
    forks.append(1)
    pid = fork()
    if pid == 0 and len(forks) == 2:  # the second fork's child: the watcher
        time.sleep(1.0)
    return pid
os.fork = late_fork
lock = os.open(sys.argv[2], os.O_RDONLY)
os.set_inheritable(lock, True)  # the command holds the home's lock, as up's children do
sys.exit(watchdog.main(["watchdog.py", sys.argv[3], "--exec", "5", "--", *sys.argv[4:]]))
"""

_HOLDERS = """\
import json, os, sys
target, found = os.path.realpath(sys.argv[1]), []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
        if int(pid) != os.getpid() and any(os.readlink(f"/proc/{pid}/fd/{fd}") == target for fd in fds):
            found.append(int(pid))
    except OSError:
        continue
print(json.dumps(found), flush=True)
"""


def test_a_watcher_scheduled_late_never_holds_the_lock_the_command_holds(tmp_path: Path) -> None:
    """`rollway up` names the processes holding its Prefect home's lock when it refuses a second
    instance; a watcher that had not yet closed its copies when the command started was named too
    ("kill <child> <watcher>"), though only the command uses the home: the watcher must drop every
    descriptor but its pipe before the command can start."""
    lock = tmp_path / "home.lock"
    lock.touch()
    read_end, write_end = os.pipe()  # the watcher's pipe: this test holds the write end
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _LATE_WATCHER, watchdog.__file__, str(lock), str(read_end),
             sys.executable, "-I", "-c", _HOLDERS, str(lock)],
            pass_fds=(read_end,), start_new_session=True, capture_output=True, text=True, timeout=60)
    finally:
        os.close(write_end)  # the watcher, whenever it runs, now stops (its command has exited)
        os.close(read_end)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [], done.stdout
