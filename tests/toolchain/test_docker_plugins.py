"""The docker CLI plugins the worker installed (buildx above all) are found by rollway's docker,
which runs with a private config directory (the real docker CLI and daemon; buildx is a
stand-in that records how it was called)."""

from __future__ import annotations

import json
import sys

import pytest

from rollway.toolchain.docker import docker_session
from tests.toolchain.docker_engine import docker_engine  # noqa: F401 - the fixture

IMAGE_ID = "sha256:" + "ab" * 32


def stand_in_buildx(directory, calls) -> None:
    """A docker-buildx plugin in ``directory`` that answers the CLI's metadata probe, records
    every other call in ``calls`` and "builds" IMAGE_ID."""
    directory.mkdir(parents=True)
    plugin = directory / "docker-buildx"
    plugin.write_text(
        f"#!{sys.executable}\nimport json, sys\nargs = sys.argv[1:]\n"
        "if args == ['docker-cli-plugin-metadata']:\n"
        "    print(json.dumps({'SchemaVersion': '0.1.0', 'Vendor': 'test', 'Version': 'v0.99.0',\n"
        "                      'ShortDescription': 'stand-in'}))\n"
        "    sys.exit(0)\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(args) + '\\n')\n"
        f"if '--iidfile' in args:\n    open(args[args.index('--iidfile') + 1], 'w').write({IMAGE_ID!r})\n")
    plugin.chmod(0o755)


@pytest.mark.integration
@pytest.mark.parametrize("where", ["home", "extra"])
def test_docker_builds_with_the_workers_buildx_plugin(docker_engine, tmp_path, monkeypatch, where):  # noqa: F811
    # Without it docker fell back to its deprecated legacy builder, which refuses what BuildKit
    # Dockerfiles use (RUN --mount=type=cache, heredocs, # syntax=): the release could not build.
    # "home": installed as docker's docs say (~/.docker/cli-plugins); "extra": where the
    # worker's own docker config points (Docker Desktop's cliPluginsExtraDirs).
    home, calls = tmp_path / "home", tmp_path / "calls"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    if where == "home":
        stand_in_buildx(home / ".docker" / "cli-plugins", calls)
    else:
        stand_in_buildx(tmp_path / "Docker.app" / "cli-plugins", calls)
        (home / ".docker").mkdir(parents=True)
        (home / ".docker" / "config.json").write_text(json.dumps({
            "auths": {"registry.example.com": {"auth": "dXNlcjpzM2NyM3Q="}},
            "cliPluginsExtraDirs": [str(tmp_path / "Docker.app" / "cli-plugins")]}))
    context = docker_engine.context("buildx")

    with docker_session(docker_host=docker_engine.docker_host) as docker:
        assert docker.build(context) == IMAGE_ID
        private = (docker.config_dir / "config.json").read_text()

    (called,) = [json.loads(line) for line in calls.read_text().splitlines()]
    assert called[:2] == ["buildx", "build"] and str(context) in called
    assert "registry.example.com" not in private  # the worker's logins stay out of the private config
