"""DockerCli against a real dockerd and a local docker-registry."""

from __future__ import annotations

import base64
import json
import os

import pytest
from pydantic import SecretStr

from rollway.toolchain.docker import (
    BuildFailed, DaemonUnreachable, DockerCommandFailed, PushRefused, docker_environment, docker_session,
)
from rollway.toolchain.process import ToolMissing, run_tool
from tests.toolchain.docker_engine import docker_engine  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def test_build_tag_and_push_store_the_digest_the_registry_serves(docker_engine):
    context = docker_engine.context("good", payload="release 1.0.0")
    version = f"{docker_engine.registry}/webordinary/edit-container:1.0.0"
    latest = f"{docker_engine.registry}/webordinary/edit-container:latest"
    lines: list[str] = []
    with docker_session(docker_host=docker_engine.docker_host, on_line=lines.append) as docker:
        image_id = docker.build(context, labels={"org.opencontainers.image.version": "1.0.0"})
        assert image_id.startswith("sha256:") and len(image_id) == 71
        assert any("Successfully built" in line for line in lines)  # docker's output was streamed
        docker.tag(image_id, version)
        docker.tag(image_id, latest)
        pushed = docker.push(version)
        assert docker.push(latest) == pushed  # one image, one manifest
        assert docker.remote_digest(version) == pushed
        assert docker.remote_digest(f"{docker_engine.registry}/webordinary/edit-container:9.9.9") is None
    assert docker_engine.served_digest("webordinary/edit-container", "1.0.0") == pushed
    assert docker_engine.served_digest("webordinary/edit-container", "latest") == pushed


def test_the_daemon_says_which_image_a_push_sent_when_another_build_took_the_tag_first(docker_engine):
    # Two builds of one version on one daemon: the second tags the version between the first's
    # tag and push, so the first run's push sends the second's image. Only the daemon can tell.
    repository = f"{docker_engine.registry}/webordinary/raced"
    with docker_session(docker_host=docker_engine.docker_host) as docker:
        first = docker.build(docker_engine.context("raced-first", payload="first"))
        second = docker.build(docker_engine.context("raced-second", payload="second"))
        assert first != second and docker.pushed_as(first) == ()  # never pushed
        docker.tag(first, f"{repository}:1.0.0")
        docker.tag(second, f"{repository}:1.0.0")  # the other run's tag
        pushed = docker.push(f"{repository}:1.0.0")
        assert f"{repository}@{pushed}" in docker.pushed_as(second)
        assert f"{repository}@{pushed}" not in docker.pushed_as(first)


def test_the_manifest_a_push_stored_names_the_build_as_its_config_and_a_manifest_not_there_is_named(docker_engine):
    """How a push whose answer was lost is known for this run's build on a registry other than ECR
    (the daemon recorded no push of it): the classic image store's image id is the digest of the
    config blob the pushed manifest names, read over the registry's API, not a stub's."""
    repository = f"{docker_engine.registry}/webordinary/configured"
    with docker_session(docker_host=docker_engine.docker_host) as docker:
        ours = docker.build(docker_engine.context("configured-ours", payload="this run's build"))
        other = docker.build(docker_engine.context("configured-other", payload="another run's build"))
        docker.tag(ours, f"{repository}:1.0.0")
        pushed = docker.push(f"{repository}:1.0.0")
        assert docker.remote_config_digest(f"{repository}@{pushed}") == ours != other
        assert docker.remote_config_digest(f"{repository}:1.0.0") == ours  # by its tag too
        missing = f"{repository}@sha256:" + "0" * 64
        with pytest.raises(DockerCommandFailed, match=rf"could not read the manifest of {missing} from the registry: "
                                                      r"the registry answered 404 .*MANIFEST_UNKNOWN"):
            docker.remote_config_digest(missing)


def test_a_failing_build_raises_with_dockers_reason(docker_engine):
    context = docker_engine.context("bad", dockerfile="FROM scratch\nCOPY no-such-file.txt /\n")
    with docker_session(docker_host=docker_engine.docker_host) as docker:
        with pytest.raises(BuildFailed) as caught:
            docker.build(context)
    message = str(caught.value)
    assert "no-such-file.txt" in message and "COPY failed" in message
    assert "legacy builder" not in message  # the deprecation notice is not the reason


def test_a_push_of_an_image_not_built_is_refused_with_dockers_reason(docker_engine):
    with docker_session(docker_host=docker_engine.docker_host) as docker:
        with pytest.raises(PushRefused, match="does not exist locally"):
            docker.push(f"{docker_engine.registry}/never/built:1")


def test_login_keeps_the_password_out_of_every_line_and_the_home_config(docker_engine, monkeypatch, tmp_path):
    password = "pa55-w0rd-that-must-not-leak"
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # where docker would otherwise store the login
    lines: list[str] = []
    with docker_session(docker_host=docker_engine.docker_host, on_line=lines.append) as docker:
        private = docker.config_dir
        docker.login(docker_engine.registry, "robot", SecretStr(password))
        stored = (private / "config.json").read_text()
        # The password reached docker (on stdin) and landed in the private config...
        assert base64.b64encode(f"robot:{password}".encode()).decode() in stored
        docker.logout(docker_engine.registry)
    assert any("Login Succeeded" in line for line in lines)
    assert not any(password in line for line in lines)
    assert not private.exists()  # ...which is gone with the session
    assert not (home / ".docker").exists()


def test_an_unreachable_daemon_is_named(tmp_path):
    host = f"unix://{tmp_path}/nothing-listens.sock"
    with docker_session(docker_host=host) as docker:
        with pytest.raises(DaemonUnreachable, match="no docker daemon answers at unix://.*nothing-listens.sock"):
            docker.server_version()
        (tmp_path / "Dockerfile").write_text("FROM scratch\n")
        with pytest.raises(DaemonUnreachable):
            docker.build(tmp_path)


def test_the_private_config_is_removed_when_the_session_fails():
    with pytest.raises(RuntimeError, match="boom"):
        with docker_session() as docker:
            (docker.config_dir / "config.json").write_text('{"auths": {"r.example.com": {"auth": "c2VjcmV0"}}}')
            assert oct(docker.config_dir.stat().st_mode & 0o777) == "0o700"
            raise RuntimeError("boom")
    assert not docker.config_dir.exists()


def test_a_missing_docker_cli_is_named_before_anything_runs():
    with pytest.raises(ToolMissing, match="/nonexistent/docker"):
        with docker_session("/nonexistent/docker"):
            pass


def test_no_credential_helper_on_path_is_used_for_the_login(docker_engine, monkeypatch, tmp_path):
    """The docker CLI's default helpers on Linux (docker-credential-pass when `pass` is on PATH,
    else docker-credential-secretservice) would keep the login in a keyring that outlives the
    session: stand-ins for them on PATH record any call, and none comes."""
    helpers = tmp_path / "bin"
    helpers.mkdir()
    calls = tmp_path / "calls"
    for name in ("pass", "docker-credential-pass", "docker-credential-secretservice", "docker-credential-desktop"):
        script = helpers / name
        # A helper answers "get" for an unknown registry like this; "store" and "erase" say nothing.
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\ncat > /dev/null\n'
                          'if [ "$1" = get ]; then echo "credentials not found in native keychain"; exit 1; fi\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helpers}{os.pathsep}{os.environ['PATH']}")
    with docker_session(docker_host=docker_engine.docker_host) as docker:
        docker.login(docker_engine.registry, "robot", SecretStr("token-for-the-file-only"))
        assert docker.remote_digest(f"{docker_engine.registry}/never/pushed:1") is None  # reads the login
        stored = json.loads((docker.config_dir / "config.json").read_text())
        docker.logout(docker_engine.registry)
    assert not calls.exists(), calls.read_text()
    assert stored["auths"][docker_engine.registry]["auth"] == base64.b64encode(
        b"robot:token-for-the-file-only").decode()
    assert not stored.get("credsStore") and not stored.get("credHelpers")


def test_the_digest_of_an_index_is_the_index_s_own_as_the_push_reported_it(docker_engine):
    """The containerd image store (docker 24+; not this dockerd 20.10) pushes an image index and
    `docker push` reports the index's digest. An index pushed with `docker manifest push` stands
    in for it here: the registry's digest of the tag is the index's, not a platform manifest's."""
    context = docker_engine.context("indexed", payload="an image behind an index")
    single = f"{docker_engine.registry}/webordinary/indexed:1.0.0-amd64"
    indexed = f"{docker_engine.registry}/webordinary/indexed:1.0.0"
    with docker_session(docker_host=docker_engine.docker_host) as docker:
        docker.tag(docker.build(context), single)
        platform_digest = docker.push(single)
        env = docker_environment(os.environ, docker.config_dir, docker.docker_host)
        run_tool([docker.executable, "manifest", "create", "--insecure", indexed, single], env=env, timeout_seconds=60)
        pushed = run_tool([docker.executable, "manifest", "push", "--insecure", indexed], env=env,
                          timeout_seconds=120).output[-1].strip()
        assert pushed.startswith("sha256:") and pushed != platform_digest
        assert docker_engine.served_digest("webordinary/indexed", "1.0.0") == pushed
        assert docker.remote_digest(indexed) == pushed
        assert docker.remote_digest(single) == platform_digest
        # An index names no config: its build is told by its own digest (the containerd store's image id).
        assert docker.remote_config_digest(f"{docker_engine.registry}/webordinary/indexed@{pushed}") is None
