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


def test_the_private_config_names_the_workers_plugin_directories_and_nothing_else_of_its_config(tmp_path):
    import json

    from rollway.toolchain.docker import session_config

    worker = tmp_path / "worker-docker"
    (worker / "cli-plugins").mkdir(parents=True)
    extra = tmp_path / "desktop-plugins"
    extra.mkdir()
    (worker / "config.json").write_text(json.dumps({
        "auths": {"123456789012.dkr.ecr.us-west-2.amazonaws.com": {"auth": "QVdTOnMzY3IzdA=="}},
        "credsStore": "desktop", "currentContext": "prod",
        "cliPluginsExtraDirs": [str(extra), str(tmp_path / "gone"), 7]}))

    config = json.loads(session_config({"DOCKER_CONFIG": str(worker), "HOME": "/nonexistent"}))

    assert config == {"auths": {"rollway.invalid": {}},
                      "cliPluginsExtraDirs": [str(worker / "cli-plugins"), str(extra)]}
    # A worker without a docker config, or with one docker could not read either, gets the pinned one.
    (worker / "config.json").write_text("{not json")
    assert json.loads(session_config({"DOCKER_CONFIG": str(worker)}))["cliPluginsExtraDirs"] == [
        str(worker / "cli-plugins")]
    assert json.loads(session_config({"HOME": str(tmp_path / "nobody")})) == {"auths": {"rollway.invalid": {}}}


def test_a_daemon_not_answering_names_the_workers_docker_host_that_was_not_used(tmp_path, monkeypatch):
    # A CI runner (docker-in-docker) names its daemon in DOCKER_HOST, which rollway does not hand
    # docker: the refusal said only "no docker daemon answers at the default socket", and the
    # operator, whose docker works in that shell, was left to find out why.
    docker = _no_daemon_at_the_default_socket(tmp_path)
    rootless = "unix:///run/user/1000/docker.sock"  # rootless docker's
    said = _refusal(docker, tmp_path, monkeypatch, rootless)
    assert "the default socket" in said, said
    assert "the worker's DOCKER_HOST (unix:///run/user/1000/docker.sock) is not used" in said, said
    assert "pass docker_host='unix:///run/user/1000/docker.sock'" in said, said

    # Told a daemon, the worker's DOCKER_HOST is beside the point.
    said = _refusal(docker, tmp_path, monkeypatch, rootless, docker_host="unix:///run/other.sock")
    assert "DOCKER_HOST" not in said, said


def _refusal(docker, tmp_path, monkeypatch, workers_docker_host: str, **cli) -> str:
    """What a DockerCli with the worker's DOCKER_HOST ``workers_docker_host`` says when no daemon answers."""
    import pytest

    from rollway.toolchain.docker import DaemonUnreachable, DockerCli

    monkeypatch.setenv("DOCKER_HOST", workers_docker_host)
    with pytest.raises(DaemonUnreachable) as caught:
        DockerCli(str(docker), tmp_path, **cli).server_version()
    return str(caught.value)


def _no_daemon_at_the_default_socket(tmp_path):
    """A docker CLI that answers as docker does with no daemon on its default socket."""
    import sys

    docker = tmp_path / "docker"
    docker.write_text(f"#!{sys.executable}\nimport sys\nprint('Cannot connect to the Docker daemon at "
                      "unix:///var/run/docker.sock. Is the docker daemon running?', file=sys.stderr)\nsys.exit(1)\n")
    docker.chmod(0o755)
    return docker


def test_a_workers_docker_host_of_plain_tcp_elsewhere_is_not_offered_as_a_docker_host_a_release_refuses(
        tmp_path, monkeypatch):
    # A CI runner's docker-in-docker daemon is tcp://docker:2375. Told to pass it as docker_host,
    # the operator ran again and was refused before anything ran: plain TCP to another machine
    # would hand that daemon ECR's login in clear. The way on is named instead.
    import pytest

    from rollway.publish import PublishRequest

    docker = _no_daemon_at_the_default_socket(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    said = _refusal(docker, tmp_path, monkeypatch, "tcp://docker:2375")
    with pytest.raises(ValueError, match="plain TCP to another machine"):  # what that advice led to
        PublishRequest(version="2.4.0", context_dir=tmp_path, docker_host="tcp://docker:2375")
    assert "the worker's DOCKER_HOST (tcp://docker:2375) is not used" in said, said
    assert "pass docker_host='tcp://docker:2375' if that is the daemon" not in said, said
    assert "plain TCP to another machine" in said and "ssh://<user>@<host>" in said, said
    assert "with registry=" in said, said  # a registry that takes pushes without a login may use it

    # One on this machine is a docker_host a release takes: offered as it was.
    said = _refusal(docker, tmp_path, monkeypatch, "tcp://127.0.0.1:2375")
    assert "pass docker_host='tcp://127.0.0.1:2375' if that is the daemon" in said, said
    PublishRequest(version="2.4.0", context_dir=tmp_path, docker_host="tcp://127.0.0.1:2375")


def test_a_workers_docker_host_is_said_without_its_password_or_its_control_characters(tmp_path, monkeypatch):
    # The refusal reaches the run's log, its state and its artifact: the worker's DOCKER_HOST
    # was quoted there as it was, a password in it and all, and an escape or a line break in it
    # acted on a terminal or began a line of its own.
    docker = _no_daemon_at_the_default_socket(tmp_path)
    said = _refusal(docker, tmp_path, monkeypatch, "ssh://deploy:s3cr3t@build-host")
    assert "s3cr3t" not in said, said
    assert "the worker's DOCKER_HOST (ssh://deploy:****@build-host) is not used" in said, said

    said = _refusal(docker, tmp_path, monkeypatch, "unix:///run/docker.sock\n\x1b[2Jdone")
    assert "\n" not in said and "\x1b" not in said, said
    assert "the worker's DOCKER_HOST (unix:///run/docker.sock\\n\\x1b[2Jdone) is not used" in said, said


def test_a_daemon_that_answered_and_stopped_answering_does_not_send_a_person_to_the_workers_docker_host(
        tmp_path, monkeypatch):
    # The run's first ask found the daemon at the default socket, and it built there; it stopped
    # answering later (restarted, crashed). That refusal said DOCKER_HOST was not used and to pass
    # it as docker_host: a re-run told so builds on another daemon than the one that went away.
    import sys

    import pytest

    from rollway.toolchain.docker import DaemonUnreachable, DockerCli

    docker = tmp_path / "docker"  # answers `docker version`, and then no more
    docker.write_text(f"#!{sys.executable}\nimport sys\nif sys.argv[1] == 'version':\n    print('27.1.1')\n"
                      "    sys.exit(0)\nprint('Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                      "Is the docker daemon running?', file=sys.stderr)\nsys.exit(1)\n")
    docker.chmod(0o755)
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    cli = DockerCli(str(docker), tmp_path)

    assert cli.server_version() == "27.1.1"
    with pytest.raises(DaemonUnreachable) as caught:
        cli.tag("sha256:" + "a" * 64, "127.0.0.1:5000/app:2.4.0")
    said = str(caught.value)
    assert "no docker daemon answers at the default socket" in said, said
    assert "DOCKER_HOST" not in said, said


def test_a_workers_docker_host_naming_the_default_socket_is_not_offered_as_another_daemon(tmp_path, monkeypatch):
    # A CI image sets DOCKER_HOST=unix:///var/run/docker.sock, the socket docker looked at: the
    # refusal said it was not used and to pass it as docker_host, the same socket that did not answer.
    docker = _no_daemon_at_the_default_socket(tmp_path)
    said = _refusal(docker, tmp_path, monkeypatch, "unix:///var/run/docker.sock")
    assert "no docker daemon answers at the default socket (unix:///var/run/docker.sock): start dockerd" in said, said
    assert "DOCKER_HOST" not in said and "pass docker_host='unix:///var/run/docker.sock'" not in said, said
