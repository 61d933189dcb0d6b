"""A real docker engine and a local registry for tests: dockerd on a private socket and
Debian's docker-registry on a free 127.0.0.1 port, both in a temporary directory, both stopped
by their own pid at the end.

Import the fixture into a test module (``from tests.toolchain.docker_engine import docker_engine``);
it is module-scoped, so one engine serves a module's tests (~3 s to start). Missing binaries
fail the test, never skip it: ``make test`` installs them (scripts/install-test-tools).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

_READY_SECONDS = 30.0


@dataclass(frozen=True)
class DockerEngine:
    """A running dockerd and registry.

    Attributes:
        docker_host: ``unix://<tmp>/docker.sock``, for DOCKER_HOST.
        registry: ``127.0.0.1:<port>``, the local registry (plain HTTP, which dockerd allows
            for loopback registries).
        root: the temporary directory everything lives in.
    """

    docker_host: str
    registry: str
    root: Path

    def context(self, name: str, dockerfile: str = "FROM scratch\nCOPY payload.txt /\n", payload: str = "hello") -> Path:
        """A build context under ``root`` with a Dockerfile and a payload file."""
        directory = self.root / "contexts" / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "Dockerfile").write_text(dockerfile)
        (directory / "payload.txt").write_text(payload)
        return directory

    def served_digest(self, repository: str, tag: str) -> str | None:
        """The digest the registry serves for ``repository:tag`` (None: no such tag), asked over
        the registry API with the manifest types docker pushes."""
        accept = ", ".join((
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
        ))
        answer = httpx.get(f"http://{self.registry}/v2/{repository}/manifests/{tag}", headers={"Accept": accept},
                           timeout=10)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return answer.headers["Docker-Content-Digest"]


def _binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make test` (scripts/install-test-tools installs docker.io "
                    "and docker-registry), or apt-get install docker.io docker-registry", pytrace=False)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 15 s: by this process's own pid, nothing else."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait(ready, what: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + _READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}", pytrace=False)
        if ready():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} was not ready within {_READY_SECONDS:g} s: {log.read_text()[-2000:]}", pytrace=False)


def _registry_up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _daemon_up(docker: str, host: str) -> bool:
    env = {**os.environ, "DOCKER_HOST": host}
    return subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], env=env,
                          capture_output=True, timeout=10).returncode == 0


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[DockerEngine]:
    """dockerd (vfs storage, no iptables, no bridge) and docker-registry, started for the module."""
    dockerd, registry_bin, docker = _binary("dockerd"), _binary("docker-registry"), _binary("docker")
    # A short path: a unix socket path may be at most 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="rw-docker-"))
    host = f"unix://{root}/docker.sock"
    port = _free_port()
    (root / "registry.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}/reg\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    started: list[subprocess.Popen] = []
    try:
        daemon_log, registry_log = root / "dockerd.log", root / "registry.log"
        with open(daemon_log, "w") as out:
            started.append(subprocess.Popen(
                [dockerd, "--storage-driver", "vfs", "--iptables=false", "--bridge=none", "--host", host,
                 "--data-root", f"{root}/root", "--exec-root", f"{root}/exec", "--pidfile", f"{root}/docker.pid"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        with open(registry_log, "w") as out:
            started.append(subprocess.Popen([registry_bin, "serve", str(root / "registry.yml")], stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True))
        _wait(lambda: _registry_up(f"http://127.0.0.1:{port}/v2/"), "docker-registry", started[1], registry_log)
        _wait(lambda: _daemon_up(docker, host), "dockerd", started[0], daemon_log)
        yield DockerEngine(docker_host=host, registry=f"127.0.0.1:{port}", root=root)
    finally:
        for process in reversed(started):
            _stop(process)
        # dockerd's vfs layers and the exec root hold mounts only while it runs; it has stopped.
        shutil.rmtree(root, ignore_errors=True)
