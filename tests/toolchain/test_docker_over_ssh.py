"""A daemon named ssh://user@host is reached the way docker does it, by running ssh: with the
worker's ssh agent, where its keys usually are (the real docker CLI runs; ssh is a stand-in
that records what it was given)."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from rollway.toolchain.docker import DaemonUnreachable, DockerCli, docker_environment

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")


def test_a_daemon_over_ssh_is_reached_with_the_workers_ssh_agent(tmp_path, monkeypatch):
    # An agent-held key is how CI runners and most workers hold it: without the agent's socket
    # ssh had no key to offer, and every run against the daemon failed "Permission denied".
    bin_dir, seen = tmp_path / "bin", tmp_path / "ssh-env.json"
    bin_dir.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                   f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({str(seen)!r}, 'w'))\n"
                   "sys.stderr.write('deploy@builder.example.com: Permission denied (publickey).\\n')\n"
                   "sys.exit(255)\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    config = tmp_path / "config"
    config.mkdir()
    cli = DockerCli(shutil.which("docker"), config, docker_host="ssh://deploy@builder.example.com")

    with pytest.raises(DaemonUnreachable):
        cli.server_version()

    called = json.loads(seen.read_text())
    assert "builder.example.com" in called["argv"]
    assert called["env"].get("SSH_AUTH_SOCK") == str(tmp_path / "agent.sock")
    assert "AWS_SECRET_ACCESS_KEY" not in called["env"]  # still nothing it was not told


def test_a_daemon_on_a_socket_gets_no_ssh_agent(tmp_path):
    caller = {"PATH": "/usr/bin", "SSH_AUTH_SOCK": "/tmp/agent.sock"}
    assert "SSH_AUTH_SOCK" not in docker_environment(caller, tmp_path, "unix:///tmp/d.sock")
    assert "SSH_AUTH_SOCK" not in docker_environment(caller, tmp_path, None)

