"""Versions, registries and the references a release is pushed as (rollway.image), and the
refusals before building (rollway.publish)."""

from __future__ import annotations

import re

import pytest

from rollway.image import (
    InvalidImageTarget, image_problem, image_references, is_loopback, registry_of, registry_of_endpoint,
    registry_problem, version_problem,
)
from rollway.publish import PublishProgress, PublishRequest, release_refusal

ECR = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
REPO = "webordinary/edit-container"


@pytest.mark.parametrize("version", ["2.0.0", "v2.0.0-rc.1", "2024_06_01", "a", "A" * 128, "1.0.0-sqs"])
def test_versions_docker_takes(version):
    assert version_problem(version) is None


@pytest.mark.parametrize(("version", "why"), [
    ("latest", "moving tag"),
    ("Latest", "moving tag"),
    ("", "is empty"),
    (" 2.0.0", "surrounding whitespace"),
    ("2.0.0\n", "surrounding whitespace"),
    (".2.0", "not a docker tag"),
    ("-rc", "not a docker tag"),
    ("2.0.0+build", "not a docker tag"),
    ("A" * 129, "not a docker tag"),
    ("édition", "not a docker tag"),
    ("edit-container:2.0.0", "image reference"),
    ("webordinary/edit-container", "image reference"),
    ("sha256:" + "a" * 64, "digest"),
    ("x@sha256:" + "a" * 64, "digest"),
])
def test_versions_refused(version, why):
    assert why in version_problem(version)


@pytest.mark.parametrize("registry", [ECR, "127.0.0.1:5000", "localhost", "localhost:5000", "[::1]:5000",
                                      "registry.example.com", "registry:5000"])
def test_registries_docker_takes(registry):
    assert registry_problem(registry) is None


@pytest.mark.parametrize(("registry", "why"), [
    ("", "is empty"),
    (f"https://{ECR}", f"is a URL: give the host only ('{ECR}')"),
    (f"{ECR}/webordinary", "has a path"),
    ("myregistry", "Docker Hub repository name"),
    ("under_score.example.com", "not a host name"),
    ("[not-ipv6]:5000", "not a host name"),
    ("host.example.com:port", "not a host name"),
])
def test_registries_refused(registry, why):
    assert why in registry_problem(registry)


def test_references_are_the_version_and_latest_in_the_registry():
    refs = image_references(ECR, REPO, "2.0.0")
    assert refs.versioned == f"{ECR}/{REPO}:2.0.0"
    assert refs.latest == f"{ECR}/{REPO}:latest"
    assert refs.all == (refs.versioned, refs.latest)  # the version is pushed first
    assert image_problem(refs.versioned) is None
    assert image_references("127.0.0.1:5000", REPO, "2.0.0", push_latest=False).all == (
        f"127.0.0.1:5000/{REPO}:2.0.0",)


@pytest.mark.parametrize(("registry", "repository", "version", "part"), [
    (ECR, REPO, "latest", "version 'latest'"),
    ("https://x.example.com", REPO, "1", "registry 'https://x.example.com'"),
    (ECR, "Webordinary/Edit", "1", "repository 'Webordinary/Edit'"),
    (ECR, "webordinary//edit", "1", "empty repository path component"),
    (ECR, "a" * 240, "1", "characters long"),
])
def test_bad_parts_are_refused_naming_the_part(registry, repository, version, part):
    with pytest.raises(InvalidImageTarget, match=part):
        image_references(registry, repository, version)


def test_the_endpoint_of_an_ecr_token_gives_its_registry():
    assert registry_of_endpoint(f"https://{ECR}") == ECR
    assert registry_of_endpoint(f"https://{ECR}/") == ECR
    with pytest.raises(ValueError, match="has a path"):
        registry_of_endpoint(f"https://{ECR}/v2/x")


@pytest.mark.parametrize(("registry", "loopback"), [
    ("127.0.0.1:5000", True), ("localhost:5000", True), ("localhost", True), ("[::1]:5000", True),
    ("127.8.0.1", True), (ECR, False), ("10.0.0.1:5000", False), ("localhost.example.com", False),
])
def test_loopback_registries(registry, loopback):
    assert is_loopback(registry) is loopback


def test_the_spec_still_refuses_images_with_the_same_grammar():
    from rollway.spec import RolloutSpec

    with pytest.raises(ValueError, match="has a repository path component 'Edit'"):
        RolloutSpec(image=f"{ECR}/Edit:2.0.0")


REFS = image_references(ECR, REPO, "2.0.0")
DIGEST = "sha256:" + "b" * 64


@pytest.mark.parametrize(("digest", "latest_immutable", "existing", "why"), [
    (None, False, False, None),
    (DIGEST, False, False, "already in the registry (digest sha256:bbbb"),
    (DIGEST, True, False, "a version must mean one image"),
    (None, True, False, "cannot be pushed"),
    (DIGEST, True, True, "run with push_latest=False"),  # registering moves latest to the version too
    (DIGEST, False, True, None),
    (None, False, True, "nothing to register"),
])
def test_release_refusals(digest, latest_immutable, existing, why):
    found = release_refusal(REFS, version_digest=digest, latest_immutable=latest_immutable, register_existing=existing)
    assert (found is None) if why is None else (why in found)


@pytest.mark.parametrize(("status", "then"), [("ARCHIVED", "restore it (ECR UpdateImageStorageClass to STANDARD)"),
                                              # Being restored already: asking again is no way on, a wait is.
                                              ("ACTIVATING", "wait until ECR has restored it")])
def test_an_image_that_is_not_active_is_not_registered(status, then):
    why = release_refusal(REFS, version_digest=DIGEST, latest_immutable=False, register_existing=True,
                          version_status=status)
    assert why is not None and f"is {status} in ECR, not ACTIVE, so no task could pull it: {then}" in why, why


def test_immutable_tags_allow_a_release_without_latest():
    refs = image_references(ECR, REPO, "2.0.0", push_latest=False)
    assert release_refusal(refs, version_digest=None, latest_immutable=True, register_existing=False) is None


def test_progress_says_what_is_where_and_how_to_go_on():
    progress = PublishProgress(refs=REFS)
    assert progress.state() == "nothing was pushed"
    assert "re-running with the same version is safe" in progress.how_to_go_on()
    progress.image_id = "sha256:" + "c" * 64
    progress.digests[REFS.versioned] = DIGEST
    assert f"{REFS.versioned} is pushed ({DIGEST})" in progress.state()
    assert f"{REFS.latest} was not moved to {REFS.versioned}" in progress.state()
    assert "no task definition was registered" in progress.state()
    assert "register_existing=True" in progress.how_to_go_on()
    assert "latest was not moved" in progress.how_to_go_on()
    # register_existing moves latest too: a latest that cannot be moved has a way on without it.
    assert "register_existing moves it (push_latest=False leaves it)" in progress.how_to_go_on()


@pytest.mark.parametrize(("changes", "why"), [
    ({"version": "latest"}, "moving tag"),
    ({"registry": "http://127.0.0.1:5000"}, "is a URL"),
    ({"docker_host": "/var/run/docker.sock"}, "docker_host"),
    ({"git_commit": "HEAD"}, "not a commit id"),
    ({"labels": {"bad key": "x"}}, "not a label name"),
    ({"dockerfile": "Nope.dockerfile"}, "does not exist"),
    ({"register_existing": True, "register_task_definition": False}, "needs register_task_definition"),
])
def test_requests_refused(tmp_path, changes, why):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ValueError, match=why):
        PublishRequest(**{"version": "2.0.0", "context_dir": tmp_path, **changes})


@pytest.mark.parametrize("docker_host", [
    "tcp://build-arm.internal:2375", "tcp://10.0.3.7:2376", "tcp://[fd00::7]:2375"])
def test_a_docker_host_over_plain_tcp_to_another_machine_is_refused_before_ecr_hands_it_the_login(tmp_path,
                                                                                                docker_host):
    # docker login and every push hand the daemon the registry's login (POST /auth, X-Registry-Auth):
    # rollway passes docker no TLS settings (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH are not inherited),
    # so the ECR token, good for 12 hours, crossed the network in clear.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ValueError, match=r"docker_host .* is plain TCP to another machine.*ssh://"):
        PublishRequest(version="2.0.0", context_dir=tmp_path, docker_host=docker_host)
    # No login is handed over: a registry override takes pushes without one, and register_existing
    # on ECR runs no docker at all.
    assert PublishRequest(version="2.0.0", context_dir=tmp_path, docker_host=docker_host, registry="127.0.0.1:5000")
    assert PublishRequest(version="2.0.0", docker_host=docker_host, register_existing=True)


@pytest.mark.parametrize(("docker_host", "shown"), [
    ("tcp://deploy:s3cr3t@10.0.3.7:2375", "tcp://deploy:****@10.0.3.7:2375"),  # plain TCP elsewhere
    ("tcp://deploy:s3cr3t@10.0.3.7:2375 ", "tcp://deploy:****@10.0.3.7:2375 "),  # not DOCKER_HOST's form
])
def test_a_refused_docker_host_is_quoted_without_its_password(tmp_path, docker_host, shown):
    # Quoted as typed, the password went to the run's error and its log.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ValueError) as caught:
        PublishRequest(version="2.0.0", context_dir=tmp_path, docker_host=docker_host)
    said = "; ".join(e["msg"] for e in caught.value.errors())
    assert f"docker_host {shown!r}" in said and "s3cr3t" not in said, said


@pytest.mark.parametrize(("docker_host", "without"), [
    ("ssh://deploy:s3cr3t@build-arm.internal", "ssh://deploy@build-arm.internal"),
    ("tcp://deploy:s3cr3t@127.0.0.1:2375", "tcp://127.0.0.1:2375"),
    ("tcp://deploy:2375@127.0.0.1:2375/build", "tcp://127.0.0.1:2375/build"),  # all digits, but not a port
    # A password with a slash in it (a generated one, base64) was taken for the address's path:
    # not refused, and quoted unmasked wherever the address was said.
    ("ssh://deploy:s3cr3t/x+y@build-arm.internal", "ssh://deploy@build-arm.internal"),
])
def test_a_docker_host_holding_a_password_is_refused_before_anything_is_built(tmp_path, docker_host, without):
    # A flow's parameters are recorded by the Prefect API as given (its database, the run's page):
    # a password in the daemon's address was kept there, where docker has no use for it.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    for kept in ({"context_dir": tmp_path}, {"registry": "127.0.0.1:5000", "context_dir": tmp_path},
                 {"register_existing": True}):
        with pytest.raises(ValueError) as caught:
            PublishRequest(version="2.0.0", docker_host=docker_host, **kept)
        said = "; ".join(e["msg"] for e in caught.value.errors())
        assert "holds a password" in said and "s3cr3t" not in said and "ssh://<user>@<host>" in said, said
        # Refused in the run: its parameters were kept with the password before it was read.
        assert "this run's parameters hold it already: change that password" in said, said
    assert PublishRequest(version="2.0.0", context_dir=tmp_path, docker_host=without).docker_host == without


@pytest.mark.parametrize("docker_host", ["tcp://127.0.0.1:2375/build@1", "tcp://[::1]:2375/build@1",
                                         "unix:///run/user@1/docker.sock"])
def test_a_docker_host_with_an_at_in_its_path_is_not_taken_for_a_password(tmp_path, docker_host):
    # A port then a path with an @ (tcp://'s path is the API's base path, unix://'s the socket's) read
    # as user:password@: refused as holding a password, and said masked, "tcp://127.0.0.1:****@1".
    from rollway.toolchain.docker import host_said

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert PublishRequest(version="2.0.0", context_dir=tmp_path, docker_host=docker_host).docker_host == docker_host
    assert host_said(docker_host) == docker_host


@pytest.mark.parametrize("docker_host", ["tcp://127.0.0.1:2375", "tcp://localhost:2375", "tcp://[::1]:2375",
                                         "ssh://builder@build-arm.internal", "unix:///run/docker.sock"])
def test_a_docker_host_on_this_machine_or_over_ssh_logs_in_to_ecr(tmp_path, docker_host):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert PublishRequest(version="2.0.0", context_dir=tmp_path, docker_host=docker_host).docker_host == docker_host


def test_a_missing_context_is_refused_but_not_when_only_registering(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        PublishRequest(version="2.0.0", context_dir=tmp_path / "missing")
    with pytest.raises(ValueError, match="context_dir is required"):
        PublishRequest(version="2.0.0")
    assert PublishRequest(version="2.0.0", context_dir=tmp_path / "missing", register_existing=True)
    assert PublishRequest(version="2.0.0", register_existing=True)


def test_labels_carry_the_version_and_the_commit(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    request = PublishRequest(version="2.0.0", context_dir=tmp_path, git_commit="abc1234", labels={"team": "edit"})
    assert request.image_labels() == {"org.opencontainers.image.version": "2.0.0",
                                      "org.opencontainers.image.revision": "abc1234", "team": "edit"}


@pytest.mark.parametrize(("labels", "git_commit", "message"), [
    ({"org.opencontainers.image.version": "1.9.0"}, None,
     "label org.opencontainers.image.version is the version's: it would say 1.9.0 on an image tagged 2.0.0"),
    ({"org.opencontainers.image.revision": "def5678"}, "abc1234",
     "label org.opencontainers.image.revision is git_commit's: it would say def5678 on an image built from abc1234"),
])
def test_a_label_that_would_contradict_the_version_or_the_commit_is_refused(tmp_path, labels, git_commit, message):
    """The caller's labels were laid over rollway's: an image tagged 2.0.0 said 1.9.0 in its label."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        PublishRequest(version="2.0.0", context_dir=tmp_path, git_commit=git_commit, labels=labels)
    same = PublishRequest(version="2.0.0", context_dir=tmp_path, labels={"org.opencontainers.image.version": "2.0.0"})
    assert same.image_labels() == {"org.opencontainers.image.version": "2.0.0"}


@pytest.mark.parametrize(("image", "registry"), [
    ("123456789012.dkr.ecr.us-west-2.amazonaws.com/webordinary/edit-container:2.0.0",
     "123456789012.dkr.ecr.us-west-2.amazonaws.com"),
    ("127.0.0.1:5000/webordinary/edit-container:2.0.0", "127.0.0.1:5000"),
    ("localhost/app:1", "localhost"),
    ("webordinary/edit-container:2.0.0", "docker.io"),
    ("nginx:1.25", "docker.io"),
])
def test_the_registry_an_image_is_pulled_from(image, registry):
    assert registry_of(image) == registry


def test_the_platforms_a_manifest_names():
    from rollway.image import config_platform, manifest_platforms

    index = {"mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "manifests": [
        {"platform": {"os": "linux", "architecture": "amd64"}}, {"platform": {"os": "linux", "architecture": "arm64",
                                                                            "variant": "v8"}},
        {"platform": {"os": "unknown", "architecture": "unknown"}}, "junk", {"platform": "junk"}]}
    assert manifest_platforms(index) == ("linux/amd64", "linux/arm64")
    assert manifest_platforms({"schemaVersion": 1, "architecture": "arm64"}) == ("linux/arm64",)
    assert manifest_platforms({"schemaVersion": 2, "config": {"digest": "sha256:" + "1" * 64}}) is None  # the config says
    assert config_platform({"os": "linux", "architecture": "arm64"}) == "linux/arm64"


def test_a_blank_context_is_refused_not_taken_for_the_workers_directory(tmp_path, monkeypatch):
    # Path("") is ".": a blank context_dir built whatever directory the worker happened to run in.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    for blank in ("", "   "):
        with pytest.raises(ValueError, match="context_dir is required"):
            PublishRequest(version="2.0.0", context_dir=blank)
        assert PublishRequest(version="2.0.0", context_dir=blank, register_existing=True).context_dir is None


def test_a_blank_dockerfile_is_the_contexts_and_a_directory_is_named_as_one(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "docker").mkdir()
    for blank in ("", "  "):
        assert PublishRequest(version="2.0.0", context_dir=tmp_path, dockerfile=blank).dockerfile_path == (
            tmp_path / "Dockerfile")
    with pytest.raises(ValueError, match=r"the Dockerfile '.*docker' is a directory: name the file in it"):
        PublishRequest(version="2.0.0", context_dir=tmp_path, dockerfile="docker")


def test_a_blank_docker_host_is_dockers_default_as_the_flow_documents(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    for blank in ("", "  "):
        assert PublishRequest(version="2.0.0", context_dir=tmp_path, docker_host=blank).docker_host is None


def test_a_label_holding_a_nul_is_refused_before_anything_runs(tmp_path):
    """A label is handed to docker build on its command line (--label key=value), which cannot
    carry a NUL: such a label got past the checks and failed the build with Python's bare
    'embedded null byte', after ECR had been asked for a login and docker had logged in."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ValueError, match=re.escape("label 'team' holds a NUL character")):
        PublishRequest(version="2.0.0", context_dir=tmp_path, labels={"team": "ed\x00it"})


def test_a_docker_host_holding_a_nul_is_refused_as_not_what_docker_host_takes(tmp_path):
    """DOCKER_HOST is handed to docker in its environment, which cannot carry a NUL: the run
    failed with Python's bare 'embedded null byte' instead of naming the parameter."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ValueError, match=re.escape("docker_host 'unix:///run/do\\x00cker.sock' is not")):
        PublishRequest(version="2.0.0", context_dir=tmp_path, docker_host="unix:///run/do\x00cker.sock")
