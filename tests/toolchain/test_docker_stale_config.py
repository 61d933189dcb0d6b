"""A docker session removes the private configs (login tokens) that killed runs left behind.

Real child processes make the sessions; one is killed with SIGKILL, so its cleanup never runs.
No docker command runs here (the sessions are handed the Python interpreter as "docker").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rollway.toolchain.docker import CONFIG_PREFIX, docker_session

# A run holding its session open until its stdin closes (or it is killed).
_RUN = ("import sys\n"
        "from rollway.toolchain.docker import docker_session\n"
        "with docker_session(sys.executable) as docker:\n"
        "    (docker.config_dir / 'config.json').write_text('{\"auths\": {\"ecr\": {\"auth\": \"dG9rZW4=\"}}}')\n"
        "    print(docker.config_dir, flush=True)\n"
        "    sys.stdin.read()\n")


class Run:
    """A child process with an open docker session in ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _RUN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env={**os.environ, "TMPDIR": str(tmp)})
        self.config_dir = Path(self.process.stdout.readline().strip())
        assert self.config_dir.parent == tmp, self.config_dir

    def kill(self) -> None:
        """SIGKILL, and wait until it has exited without reaping it (it stays a zombie)."""
        self.process.send_signal(signal.SIGKILL)
        os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOWAIT)

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's temporary directory for the test (where docker_session makes its configs)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_session_removes_the_config_of_a_killed_run_and_keeps_a_live_ones(tmp: Path) -> None:
    live, killed = Run(tmp), Run(tmp)
    try:
        killed.kill()
        assert (killed.config_dir / "config.json").exists()  # SIGKILL: its own cleanup never ran
        # A zombie (killed, not yet reaped by its parent) is gone too; then reaped, still gone.
        lines: list[str] = []
        with docker_session(sys.executable, on_line=lines.append) as docker:
            assert not killed.config_dir.exists()
            assert (live.config_dir / "config.json").exists()
            namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
            started = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]
            assert docker.config_dir.name.startswith(f"{CONFIG_PREFIX}p{os.getpid()}-s{started}-n{namespace}-")
            assert oct(docker.config_dir.stat().st_mode & 0o777) == "0o700"
        assert lines == [f"removed {killed.config_dir}, the private docker config of a run that was killed "
                         "before removing it"]
        assert live.process.poll() is None  # the live run went on, its config in place
        assert (live.config_dir / "config.json").exists()
    finally:
        live.end()
        killed.end()
    assert not live.config_dir.exists()  # its own session removed it


def test_only_our_own_directories_of_dead_runs_are_removed(tmp: Path) -> None:
    killed = Run(tmp)
    killed.kill()
    killed.end()
    dead = killed.process.pid
    ours = killed.config_dir.name.removesuffix(killed.config_dir.name.rsplit("-", 1)[1])  # prefix, pid, namespace
    others = tmp / f"{ours}another_user"  # another user's, same pattern
    others.mkdir()
    os.chown(others, 65534, 65534)  # the tests run as root (make test needs it for dockerd)
    target = tmp / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("x")
    link = tmp / f"{ours}a_link"  # a symlink in a shared /tmp is never followed
    link.symlink_to(target)
    plain_file = tmp / f"{ours}a_file"
    plain_file.write_text("x")
    unnamed = tmp / f"{CONFIG_PREFIX}x1y2z3ab"  # an older session's name: no pid, whose is unknown
    unnamed.mkdir()
    # Made in another pid namespace (a container sharing this /tmp): its pid means nothing here.
    elsewhere = tmp / f"{CONFIG_PREFIX}p{dead}-n1-other_ns"
    elsewhere.mkdir()
    unrelated = tmp / f"other-{dead}-thing"
    unrelated.mkdir()
    with docker_session(sys.executable):
        pass
    assert not killed.config_dir.exists()
    for kept in (others, link, target / "keep", plain_file, unnamed, elsewhere, unrelated):
        assert os.path.lexists(kept), kept


def test_a_config_whose_pid_was_used_again_is_removed_and_the_live_runs_kept(tmp: Path) -> None:
    """The maker was killed and its pid went to another process: the pid runs, but not the
    process that made the config, whose start time the name records."""
    live = Run(tmp)
    try:
        name = live.config_dir.name
        started = int(name.split("-s", 1)[1].split("-", 1)[0])
        reused = tmp / name.replace(f"-s{started}-", f"-s{started - 1}-").replace(name.rsplit("-", 1)[1], "reused")
        reused.mkdir()
        (reused / "config.json").write_text('{"auths": {"ecr": {"auth": "dG9rZW4="}}}')
        older = tmp / name.replace(f"-s{started}-", "-").replace(name.rsplit("-", 1)[1], "older")
        older.mkdir()  # a name from before start times were recorded: kept while its pid runs
        lines: list[str] = []
        with docker_session(sys.executable, on_line=lines.append):
            pass
        assert not reused.exists(), "a config whose pid now belongs to another process was kept"
        assert lines == [f"removed {reused}, the private docker config of a run that was killed before removing it"]
        assert (live.config_dir / "config.json").exists() and older.exists()
    finally:
        live.end()
