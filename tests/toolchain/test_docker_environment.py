"""What the docker CLI inherits (no tool runs here: tests/integration/test_docker.py runs it)."""

from __future__ import annotations

from rollway.toolchain.docker import docker_environment


def test_docker_gets_its_private_config_its_daemon_and_nothing_it_was_not_told():
    caller = {"PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "HTTPS_PROXY": "http://proxy:3128",
              "AWS_SECRET_ACCESS_KEY": "s3cr3t", "DOCKER_CONTEXT": "prod", "DOCKER_CONFIG": "/root/.docker",
              "DOCKER_HOST": "tcp://prod:2376", "DOCKER_TLS_VERIFY": "1"}
    env = docker_environment(caller, "/tmp/private", "unix:///tmp/d.sock")
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "HTTPS_PROXY": "http://proxy:3128",
                   "DOCKER_CONFIG": "/tmp/private", "DOCKER_HOST": "unix:///tmp/d.sock", "DOCKER_CLI_HINTS": "false"}
    assert "DOCKER_HOST" not in docker_environment(caller, "/tmp/private", None)  # the CLI's default socket
