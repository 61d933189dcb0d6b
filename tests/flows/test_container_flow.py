"""The publish_container flow on the Prefect harness: a real docker engine and local registry
(the ``registry`` override) with the embedded AWS account for ECR and ECS."""

from __future__ import annotations

import base64
import json
import platform
import socket
from contextlib import contextmanager, nullcontext
from types import SimpleNamespace

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, EndpointConnectionError
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from blocks.targets import RollwayTargets
import flows.container as flows_container
from flows.container import ARTIFACT_KEY, publish_container, run_publish
from flows.env import AccountNotLoaded
from rollway.aws.denied import PermissionDenied
from rollway.aws.ecr import EcrRepository
from rollway.aws.ecs import READ_ONLY_FIELDS, EcsDeployer
from rollway.aws.errors import TargetNotFound
from rollway.fakes import FakeImagePublisher
from rollway.publish import PublishIncomplete, PublishRefused, PublishRequest
from tasks import container as container_steps
from tests.adapters.test_ecr import MANIFEST, index_manifest
from tests.adapters.test_ecs import ecs_tag_limit, fifty_tagged  # noqa: F401 - ecs_tag_limit: the fixture
from tests.flows.moto_env import in_a_flow_run, saved_blocks
from tests.flows.test_targets_block_typos import _save_document
from tests.toolchain.docker_engine import docker_engine  # noqa: F401 - the fixture

REPOSITORY = "webordinary/edit-container"
# An executable that does not exist: refused before any AWS call, and a run that needs no docker
# (register_existing on ECR) never looks for it.
NO_DOCKER = "/nonexistent/docker"
# What a run that is refused after asking AWS has asked docker: only whether its daemon answers
# (before any AWS call), nothing built, pushed or logged in to.
DAEMON_ASKED = ["server_version"]


@pytest.fixture
def flows_docker(monkeypatch) -> FakeImagePublisher:
    """The docker publish_container opens, as a publisher that records every command."""
    publisher = FakeImagePublisher()
    monkeypatch.setattr(flows_container, "docker_session", lambda *_, **__: nullcontext(publisher))
    return publisher


def pulling_from(aws, registry: str, architecture: str | None = None) -> str:
    """Register a revision of the task family whose container pulls from ``registry`` (as a
    family served from a private registry does): the flow registers a registry override's
    references only into such a family. ``architecture``: its tasks run on that CPU
    architecture (runtimePlatform) instead of the base's X86_64. Returns its ARN."""
    arn = EcsDeployer(aws.get_client("ecs"), aws.targets).register_revision(
        f"{registry}/{REPOSITORY}:1.0.0", aws.targets.task_family)
    if architecture is None:
        return arn
    copied = {k: v for k, v in described(aws, arn).items()
              if k in ("family", "containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory")}
    return aws.get_client("ecs").register_task_definition(
        **copied, runtimePlatform={"cpuArchitecture": architecture, "operatingSystemFamily": "LINUX"},
    )["taskDefinition"]["taskDefinitionArn"]


def revisions(aws) -> list[str]:
    return aws.get_client("ecs").list_task_definitions(familyPrefix=aws.targets.task_family)["taskDefinitionArns"]


def described(aws, arn: str) -> dict:
    return aws.get_client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]


def artifact_markdown(version: str, outcome: str = "", containing: str = "") -> str:
    """The newest publish-container artifact of ``version`` whose heading says ``outcome`` and
    whose text holds ``containing`` (the harness keeps every test's artifacts)."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY])))
    heading = f"# Container release `{version}`{' ' + outcome if outcome else ''}\n"
    ours = [a.data for a in sorted(found, key=lambda a: a.created) if heading in (a.data or "") and containing in a.data]
    assert ours, f"no {ARTIFACT_KEY} artifact for {version}"
    return ours[-1]


@pytest.mark.integration
def test_a_release_is_built_pushed_and_registered_then_its_version_is_refused(aws, docker_engine):
    blocks = saved_blocks(aws, "container")
    base_arn = pulling_from(aws, docker_engine.registry)
    context = docker_engine.context("release", payload="edit-container 2.0.0")
    common = {"registry": docker_engine.registry, "docker_host": docker_engine.docker_host,
              "targets_block": blocks, "aws_credentials_block": blocks}

    result = publish_container(version="2.0.0", context_dir=str(context), **common)

    versioned = f"{docker_engine.registry}/{REPOSITORY}:2.0.0"
    assert result.image == versioned
    assert result.references == (versioned, f"{docker_engine.registry}/{REPOSITORY}:latest")
    # Both tags name the one image, as the registry itself serves them.
    assert docker_engine.served_digest(REPOSITORY, "2.0.0") == result.digest
    assert docker_engine.served_digest(REPOSITORY, "latest") == result.digest
    # The new revision pins the version, and everything else is the base revision's.
    base, new = described(aws, base_arn), described(aws, result.task_definition)
    assert new["revision"] == base["revision"] + 1
    (container,) = new["containerDefinitions"]
    # ...by the digest the push produced: a later push to the tag cannot change what it runs.
    assert container["image"] == result.pinned_image == f"{docker_engine.registry}/{REPOSITORY}@{result.digest}"
    (base_container,) = base["containerDefinitions"]
    assert {**container, "image": None} == {**base_container, "image": None}
    for field in sorted(set(base) - READ_ONLY_FIELDS - {"containerDefinitions"}):
        assert new.get(field) == base[field], field
    summary = artifact_markdown("2.0.0", containing=versioned)
    assert versioned in summary and result.digest in summary and result.task_definition in summary

    # The same version again: refused before building (the Dockerfile now fails, and a build
    # would say so), nothing registered.
    (context / "Dockerfile").write_text("FROM scratch\nCOPY gone.txt /\n")
    with pytest.raises(PublishRefused, match=r"is already in the registry \(digest sha256:"):
        publish_container(version="2.0.0", context_dir=str(context), **common)
    assert revisions(aws)[-1] == result.task_definition


@pytest.mark.integration
def test_a_failed_build_is_safe_to_re_run_and_a_pushed_version_is_registered_later(aws, docker_engine):
    blocks = saved_blocks(aws, "container")
    context = docker_engine.context("later", dockerfile="FROM scratch\nCOPY missing.txt /\n")
    pulling_from(aws, docker_engine.registry)
    common = {"registry": docker_engine.registry, "docker_host": docker_engine.docker_host,
              "targets_block": blocks, "aws_credentials_block": blocks}
    before = revisions(aws)

    with pytest.raises(PublishIncomplete) as caught:
        publish_container(version="2.1.0", context_dir=str(context), **common)
    message = str(caught.value)
    assert "missing.txt" in message and "nothing was pushed" in message  # docker's reason, and where things stand
    assert "re-running with the same version is safe" in message

    # Fixed, pushed without a revision (as a run that stopped before registering leaves it)...
    (context / "Dockerfile").write_text("FROM scratch\nCOPY payload.txt /\n")
    pushed = publish_container(version="2.1.0", context_dir=str(context), push_latest=False,
                               register_task_definition=False, **common)
    assert pushed.task_definition is None and revisions(aws) == before
    assert pushed.references == (f"{docker_engine.registry}/{REPOSITORY}:2.1.0",)
    latest = docker_engine.served_digest(REPOSITORY, "latest")
    assert latest != pushed.digest  # latest not moved

    # ...then registered without rebuilding, and latest moved to it over the registry's API.
    registered = publish_container(version="2.1.0", register_existing=True, **common)
    assert registered.image_id is None and registered.digest == pushed.digest
    assert docker_engine.served_digest(REPOSITORY, "latest") == pushed.digest
    # This registry does not say when an image was pushed: the run says what latest named.
    (moved,) = [s for s in registered.steps if s.startswith(f"moved {docker_engine.registry}/{REPOSITORY}:latest")]
    assert latest is None or f"it named {latest}, and the registry does not say which was pushed first" in moved
    assert registered.references == (f"{docker_engine.registry}/{REPOSITORY}:2.1.0",
                                      f"{docker_engine.registry}/{REPOSITORY}:latest")
    assert described(aws, registered.task_definition)["containerDefinitions"][0]["image"] == pushed.pinned_image


@pytest.mark.integration
def test_an_image_built_for_another_platform_than_the_family_runs_on_is_not_pushed(aws, docker_engine):
    # docker builds for the machine it runs on; the family's tasks run on the other architecture
    # (an arm64 worker building for X86_64 Fargate tasks is the common case).
    built = "amd64" if platform.machine().lower() in ("x86_64", "amd64") else "arm64"
    blocks = saved_blocks(aws, "container")
    pulling_from(aws, docker_engine.registry, architecture="ARM64" if built == "amd64" else "X86_64")
    before, latest = revisions(aws), docker_engine.served_digest(REPOSITORY, "latest")

    with pytest.raises(PublishIncomplete) as caught:
        publish_container(version="5.0.0", context_dir=str(docker_engine.context("platform")),
                          registry=docker_engine.registry, docker_host=docker_engine.docker_host,
                          targets_block=blocks, aws_credentials_block=blocks)

    message = str(caught.value)
    assert f"the image was built for linux/{built}" in message and "could not start it" in message
    assert "nothing was pushed" in message and "re-running with the same version is safe" in message
    assert docker_engine.served_digest(REPOSITORY, "5.0.0") is None
    assert docker_engine.served_digest(REPOSITORY, "latest") == latest  # not moved
    assert revisions(aws) == before


@pytest.mark.integration
def test_register_existing_asks_the_registry_which_platform_the_pushed_image_runs_on(aws, docker_engine):
    # Pushed only (as a run that stopped before registering leaves it), then registered into a
    # family whose tasks run on the other architecture: nothing built, so only the registry can tell.
    built = "amd64" if platform.machine().lower() in ("x86_64", "amd64") else "arm64"
    blocks = saved_blocks(aws, "container")
    common = {"registry": docker_engine.registry, "docker_host": docker_engine.docker_host,
              "targets_block": blocks, "aws_credentials_block": blocks}
    pulling_from(aws, docker_engine.registry)
    publish_container(version="5.1.0", context_dir=str(docker_engine.context("existing-platform")),
                      push_latest=False, register_task_definition=False, **common)
    pulling_from(aws, docker_engine.registry, architecture="ARM64" if built == "amd64" else "X86_64")
    before = revisions(aws)

    with pytest.raises(PublishRefused) as caught:
        publish_container(version="5.1.0", register_existing=True, push_latest=False, **common)

    assert f"{docker_engine.registry}/{REPOSITORY}:5.1.0 is built for linux/{built}, and the task family's tasks run " \
           f"on linux/{'arm64' if built == 'amd64' else 'amd64'}" in str(caught.value)
    assert revisions(aws) == before
    assert "Nothing was built, pushed or registered" in artifact_markdown("5.1.0", "refused")


def test_a_bad_version_or_a_missing_task_family_is_refused_before_any_docker_call(aws, tmp_path, flows_docker):
    # The table of bad versions is tests/unit/test_image_refs.py's; here, that the flow asks first.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container", fresh=True)  # changed below
    with pytest.raises(PublishRefused, match="moving tag 'latest'"):
        publish_container(version="latest", context_dir=str(tmp_path), targets_block=blocks,
                          aws_credentials_block=blocks)
    assert flows_docker.calls == []
    for missing in ({"task_family": "no-such-family"}, {"ecr_repository": "webordinary/no-such-repo"}):
        RollwayTargets(**{**aws.targets.model_dump(), **missing}).save(blocks, overwrite=True)
        flows_docker.calls.clear()
        with pytest.raises(TargetNotFound, match=next(iter(missing.values()))):
            publish_container(version="2.0.0", context_dir=str(tmp_path), targets_block=blocks,
                              aws_credentials_block=blocks)
        assert flows_docker.calls == DAEMON_ASKED


def test_a_refused_run_leaves_an_artifact_saying_why_and_that_nothing_was_done(aws, tmp_path, flows_docker):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container", fresh=True)  # changed below
    common = {"context_dir": str(tmp_path), "targets_block": blocks, "aws_credentials_block": blocks}
    with pytest.raises(PublishRefused):
        publish_container(version="latest", **common)
    refused = artifact_markdown("latest", "refused")
    assert "moving tag 'latest'" in refused and "Nothing was built, pushed or registered" in refused

    aws.get_client("ecr").put_image(repositoryName=aws.targets.ecr_repository, imageManifest=MANIFEST,
                                    imageTag="2.0.0")
    with pytest.raises(PublishRefused):
        publish_container(version="2.0.0", **common)
    refused = artifact_markdown("2.0.0", "refused")
    assert "already in the registry" in refused and "Nothing was built, pushed or registered" in refused

    RollwayTargets(**{**aws.targets.model_dump(), "ecr_repository": "webordinary/gone-repo"}).save(
        blocks, overwrite=True)
    with pytest.raises(TargetNotFound):
        publish_container(version="2.0.1", **common)
    refused = artifact_markdown("2.0.1", "refused")
    assert "webordinary/gone-repo" in refused and "Nothing was built, pushed or registered" in refused
    assert flows_docker.calls == DAEMON_ASKED * 2  # the two runs refused after AWS answered


def test_the_docker_timeout_is_a_bounded_parameter_handed_to_the_docker_session(aws, tmp_path, monkeypatch):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container")
    common = {"version": "2.0.0", "context_dir": str(tmp_path), "targets_block": blocks,
              "aws_credentials_block": blocks}
    for bad in (0, -1, float("inf"), 2 * 24 * 3600):
        with pytest.raises(Exception, match="docker_timeout_seconds"):
            publish_container(docker_timeout_seconds=bad, **common)
    with pytest.raises(PublishRefused, match="docker_timeout_seconds"):  # run_publish's own check
        flows_container._request(version="2.0.0", docker_timeout_seconds=0)

    opened: list[dict] = []

    def session(executable, **kwargs):
        opened.append(kwargs)
        return nullcontext(EcrBacked(aws))

    monkeypatch.setattr(flows_container, "docker_session", session)
    publish_container(docker_timeout_seconds=7200, **common)
    assert [o["timeout_seconds"] for o in opened] == [7200]


def test_ecr_refusals_come_before_building(aws, tmp_path, flows_docker):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container")
    ecr = aws.get_client("ecr")
    before = revisions(aws)
    ecr.put_image(repositoryName=aws.targets.ecr_repository, imageManifest=MANIFEST, imageTag="2.0.0")
    with pytest.raises(PublishRefused, match="already in the registry.*a version must mean one image"):
        publish_container(version="2.0.0", context_dir=str(tmp_path), targets_block=blocks,
                          aws_credentials_block=blocks)

    ecr.put_image_tag_mutability(repositoryName=aws.targets.ecr_repository, imageTagMutability="IMMUTABLE")
    with pytest.raises(PublishRefused, match="immutable.*run with push_latest=False"):
        publish_container(version="2.0.1", context_dir=str(tmp_path), targets_block=blocks,
                          aws_credentials_block=blocks)
    assert revisions(aws) == before
    assert flows_docker.calls == DAEMON_ASKED * 2

    # register_existing moves latest too: not on immutable tags.
    with pytest.raises(PublishRefused, match="immutable.*run with push_latest=False"):
        publish_container(version="2.0.0", register_existing=True, docker_executable=NO_DOCKER,
                          targets_block=blocks, aws_credentials_block=blocks)
    assert revisions(aws) == before
    # The version ECR holds is registered on request, with no docker needed.
    registered = publish_container(version="2.0.0", register_existing=True, push_latest=False,
                                   docker_executable=NO_DOCKER, targets_block=blocks, aws_credentials_block=blocks)
    assert registered.image == f"{aws.topology.repository_uri}:2.0.0"
    digest = aws.get_client("ecr").describe_images(repositoryName=aws.targets.ecr_repository, imageIds=[
        {"imageTag": "2.0.0"}])["imageDetails"][0]["imageDigest"]
    assert registered.pinned_image == f"{aws.topology.repository_uri}@{digest}"
    assert described(aws, registered.task_definition)["containerDefinitions"][0]["image"] == registered.pinned_image
    assert revisions(aws) == [*before, registered.task_definition]
    assert flows_docker.calls == DAEMON_ASKED * 2  # register_existing on ECR opens no docker at all


@pytest.mark.integration
def test_by_default_the_release_goes_to_ecr_with_ecrs_token_handed_to_docker_login(aws, docker_engine):
    # moto's ECR has no registry API, so the login, made by the real docker with the token moto
    # issued, fails (the host does not resolve offline; real ECR would refuse moto's token): what
    # is tested is that the run gets that far on ECR's names, and says where things stand.
    blocks = saved_blocks(aws, "container")
    context = docker_engine.context("ecr")
    answer = aws.get_client("ecr").get_authorization_token()["authorizationData"][0]
    password = base64.b64decode(answer["authorizationToken"]).decode().split(":", 1)[1]
    with pytest.raises(PublishIncomplete) as caught:
        publish_container(version="4.0.0", context_dir=str(context), docker_host=docker_engine.docker_host,
                          targets_block=blocks, aws_credentials_block=blocks)
    message = str(caught.value)
    registry = aws.topology.repository_uri.split("/", 1)[0]
    assert f"log in to {registry} failed: LoginRefused: docker login to {registry} failed" in message
    # Logged in before the build (its base images may be in that registry): nothing was built.
    assert "Where things stand: nothing was pushed." in message and "the image was built" not in message
    assert "re-running with the same version is safe" in message
    assert password not in message


# --- The ECR path end to end, with the image publisher faked (moto's ECR has no registry API) ---


def registration_step(result) -> str:
    """The step of ``result`` that says which revision the run registered (or found)."""
    return next(s for s in result.steps if s.startswith("registered ") or "already pins" in s)


def publish_with(aws, publisher: FakeImagePublisher, request: PublishRequest, targets=None, **options):
    """``options``: run_publish's own (``now``, the run's clock)."""
    return in_a_flow_run("publish-with", lambda: run_publish(
        request, lambda: (targets or aws.targets, aws.get_client), open_publisher=lambda: nullcontext(publisher),
        **options))


class EcrBacked(FakeImagePublisher):
    """A fake publisher whose pushes land in the embedded ECR (a manifest per image), so ECR
    answers for what was pushed as it would after a real push."""

    def __init__(self, aws, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ecr, self.repository = aws.get_client("ecr"), aws.targets.ecr_repository

    def push(self, reference: str) -> str:
        super().push(reference)  # the fake's refusals
        digest = put_manifest(self.ecr, self.repository, reference.rsplit(":", 1)[1], self.images[reference])
        self.registry[reference] = digest
        return digest


def put_manifest(ecr, repository: str, tag: str, image_id: str, *, config: str | None = None) -> str:
    """Put a manifest naming ``image_id`` under ``tag`` (``config``: its config blob's digest,
    which the classic image store's image id is); returns ECR's digest for it."""
    manifest = json.loads(MANIFEST)  # moto's digest is made of the layers' digests: one layer per image
    manifest["layers"] = [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1,
                           "digest": image_id}]
    if config is not None:
        manifest["config"]["digest"] = config
    return ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest),
                         imageTag=tag)["image"]["imageId"]["imageDigest"]


@pytest.fixture
def pushed_later(monkeypatch):
    """``pushed_later()``: the embedded ECR's clock moved 2 s on, so that an image put after it was
    pushed later than one put before, by ECR's imagePushedAt (moto records whole seconds): the
    tests slept 1.1 s for that, each time. moto's ECR runs in this process."""
    import datetime as dt

    import moto.ecr.models

    moved = [dt.timedelta(0)]

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime.now(tz) + moved[0]

    monkeypatch.setattr(moto.ecr.models, "datetime", Clock)

    def later() -> None:
        moved[0] += dt.timedelta(seconds=2)

    return later


@pytest.fixture
def tokens_for_12_hours(aws):
    """ECR's docker logins good for 12 hours, as ECR gives them: moto's all expired in 2015, so a
    run asked for another after every build. A test's own handler registered later overrides it."""
    import datetime as dt

    from tests.botocore_events import on_operation

    def twelve_hours(parsed, **_):
        for data in parsed.get("authorizationData", []):
            data["expiresAt"] = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=12)

    with on_operation(aws.get_client("ecr"), "after-call", twelve_hours, operation="GetAuthorizationToken"):
        yield


def ecr_password(aws) -> str:
    answer = aws.get_client("ecr").get_authorization_token()["authorizationData"][0]
    return base64.b64decode(answer["authorizationToken"]).decode().split(":", 1)[1]


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_an_ecr_release_logs_in_with_ecrs_token_pushes_both_tags_and_registers_the_version(aws, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    publisher = EcrBacked(aws)
    uri = aws.topology.repository_uri
    registry = uri.split("/", 1)[0]

    result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    # latest is not pushed: it is moved to the version's digest by ECR's API once registered.
    assert [c for c in publisher.calls if c.split()[0] in ("login", "push", "logout")] == [
        f"login {registry}", f"push {uri}:2.0.0", f"logout {registry}"]
    assert publisher.registry == {f"{uri}:2.0.0": result.digest}
    assert EcrRepository(aws.get_client("ecr"), aws.targets).image_digest("latest") == result.digest
    assert publisher.logins == {}  # logged out
    assert result.image == f"{uri}:2.0.0" and result.references == (f"{uri}:2.0.0", f"{uri}:latest")
    assert described(aws, result.task_definition)["containerDefinitions"][0]["image"] == f"{uri}@{result.digest}"


def test_the_revision_pins_the_pushed_digest_so_a_moved_tag_does_not_change_what_it_runs(aws, tmp_path):
    # Pinned by tag, every task ECS started from the revision later (a scale-out, a rollback
    # restoring it) ran whatever the tag named by then: the version pushed again, or latest.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    result = publish_with(aws, EcrBacked(aws), PublishRequest(version="2.0.0", context_dir=tmp_path))
    put_manifest(aws.get_client("ecr"), aws.targets.ecr_repository, "2.0.0", "sha256:" + "7" * 64)  # moved by hand

    image = described(aws, result.task_definition)["containerDefinitions"][0]["image"]
    moved = EcrRepository(aws.get_client("ecr"), aws.targets).image_digest("2.0.0")
    assert image == f"{uri}@{result.digest}" and moved != result.digest
    # People still read the version: in the result, the steps and the summary.
    assert result.image == f"{uri}:2.0.0"
    assert f"runs {uri}:2.0.0, pinned by its digest ({image})" in registration_step(result)
    summary = artifact_markdown("2.0.0", containing=image)
    assert f"| Image | `{uri}:2.0.0` |" in summary and f"| Pinned as | `{image}` |" in summary


def test_a_family_whose_revision_carries_fifty_tags_gets_its_release_registered_with_them_all(
        aws, tmp_path, ecs_tag_limit, caplog):
    # rollway's rollway:request tag made the copy's 51st: ECS refused the registration after the
    # build and the pushes, and the release stopped half way. The team's 50 tags are kept, the
    # token is left off, and the run says so before building and in its steps.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    base = fifty_tagged(aws)
    result = publish_with(aws, EcrBacked(aws), PublishRequest(version="2.0.0", context_dir=tmp_path))
    tags = aws.get_client("ecs").describe_task_definition(taskDefinition=result.task_definition,
                                                          include=["TAGS"])["tags"]
    assert len(tags) == 50 and "rollway:request" not in {t["key"] for t in tags}
    said = f"{base} carries 50 tags, ECS's limit per resource"
    registered = registration_step(result)
    assert said in registered and "without rollway's rollway:request tag" in registered, registered
    warned = [r.getMessage() for r in caplog.records if said in r.getMessage()]
    assert warned and caplog.records.index(next(r for r in caplog.records if said in r.getMessage())) < next(
        i for i, r in enumerate(caplog.records) if "publish: built" in r.getMessage()), warned


def test_a_registration_whose_answer_is_lost_says_in_the_runs_error_it_may_have_registered(
        aws, tmp_path, ecs_tag_limit):
    # The adapter's word that the lost registration may have made a revision all the same (its
    # base carries 50 tags, so no token finds it) was a note on the error: it showed in a
    # traceback only, and the run's error and artifact said nothing of it.
    from botocore.exceptions import ReadTimeoutError

    from tests.botocore_events import on_operation

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    fifty_tagged(aws)

    def lose_answer(**_):  # registered on moto; the answer never arrives
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with on_operation(aws.get_client("ecs"), "after-call", lose_answer, operation="RegisterTaskDefinition"), \
            pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, EcrBacked(aws), PublishRequest(version="2.0.1", context_dir=tmp_path))
    said = str(caught.value)
    assert "may have registered a revision all the same" in said, said
    # Where things stand said "no task definition was registered", which may be untrue.
    assert "no task definition was registered" not in said, said
    assert "a task definition may have been registered all the same" in said, said
    assert "register_existing=True" in said and "registers no second" in said, said
    stopped = artifact_markdown("2.0.1", "stopped", containing="Read timeout")
    assert "may have registered a revision all the same" in stopped, stopped
    assert "a task definition may have been registered all the same" in stopped, stopped


def test_a_repository_too_long_to_pin_by_digest_is_refused_before_building(aws, tmp_path, watch_calls):
    # <registry>/<repository>:2.0.0 fits ECS's 255 characters; @sha256:<64 hex> does not.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    targets = aws.targets.model_copy(update={"ecr_repository": "webordinary/" + "e" * 180})
    pulling_from(aws, "127.0.0.1:5999")
    publisher = FakeImagePublisher()
    with pytest.raises(PublishRefused, match="characters long: ECS takes at most 255"):
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path, registry="127.0.0.1:5999"),
                     targets)
    assert publisher.calls == DAEMON_ASKED
    # Only pushed, it is not refused: no revision pins it.
    publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path, registry="127.0.0.1:5999",
                                                register_task_definition=False), targets)


def test_a_release_whose_summary_artifact_cannot_be_written_still_returns_what_it_registered(aws, tmp_path,
                                                                                            monkeypatch):
    # The summary is written once everything is pushed and registered: a Prefect API that
    # refused it failed a release that had happened, and the revision's ARN was lost with it.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    def api_down(**_):
        raise RuntimeError("the Prefect API answered 503")

    monkeypatch.setattr(flows_container, "create_markdown_artifact", api_down)
    before = revisions(aws)

    result = publish_with(aws, EcrBacked(aws), PublishRequest(version="2.0.0", context_dir=tmp_path))

    assert revisions(aws) == [*before, result.task_definition]
    assert described(aws, result.task_definition)["containerDefinitions"][0]["image"] == result.pinned_image


def test_an_image_built_for_another_platform_is_neither_pushed_nor_registered(aws, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    publisher = EcrBacked(aws, platform="linux/arm64")  # an arm64 worker; the family runs on X86_64
    before = revisions(aws)

    with pytest.raises(PublishIncomplete, match=r"built for linux/arm64, and the task family's tasks run on "
                                                r"linux/amd64"):
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    assert not [c for c in publisher.calls if c.startswith("push")] and publisher.registry == {}
    assert revisions(aws) == before


def registered_during_the_build(aws, **changes) -> type[EcrBacked]:
    """A publisher whose build sees a new revision of the family registered (a CDK deploy, a
    rollout's canary): a copy of the latest with ``changes``. Its ARN lands in ``.registered``."""
    class Meanwhile(EcrBacked):
        registered: list[str] = []

        def build(self, *args, **kwargs):
            image_id = super().build(*args, **kwargs)
            ecs = aws.get_client("ecs")
            latest = described(aws, aws.targets.task_family)
            copied = {k: v for k, v in latest.items() if k not in READ_ONLY_FIELDS}
            self.registered.append(ecs.register_task_definition(**{**copied, **changes})["taskDefinition"]
                                   ["taskDefinitionArn"])
            return image_id

    return Meanwhile


def test_a_revision_registered_during_the_build_is_the_one_copied(aws, tmp_path):
    # Its fields are the family's now (here an environment variable it added): copying the
    # revision read before the build would lose them.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    container = described(aws, aws.targets.task_family)["containerDefinitions"][0]
    added = {**container, "environment": [*container.get("environment", []), {"name": "ADDED", "value": "1"}]}
    publisher = registered_during_the_build(aws, containerDefinitions=[added])(aws)

    result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    new = described(aws, result.task_definition)["containerDefinitions"][0]
    assert {"name": "ADDED", "value": "1"} in new["environment"] and new["image"] == result.pinned_image
    assert f"a copy of {publisher.registered[0]}" in registration_step(result)


def test_a_version_another_run_pushed_during_the_build_is_not_pushed_over(aws, tmp_path):
    """The version was free when the run began, and another run of it (a CI job started again
    while the first was still building) pushed it during this run's build. This run pushed over
    it all the same: the version named a second image, a second revision was registered for it,
    and the other run's revision pinned an image its version no longer names. The registry is
    asked again right before the push: the run stops, pushing and registering nothing."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    ecr = EcrRepository(aws.get_client("ecr"), aws.targets)
    uri = aws.topology.repository_uri

    class OtherRunPushesDuringTheBuild(EcrBacked):
        def build(self, *args, **kwargs) -> str:
            self.theirs = put_manifest(aws.get_client("ecr"), aws.targets.ecr_repository, "2.0.0", "sha256:" + "7" * 64)
            return super().build(*args, **kwargs)

    publisher = OtherRunPushesDuringTheBuild(aws)
    before = revisions(aws)
    with pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    assert ecr.image_digest("2.0.0") == publisher.theirs, "this run pushed over the other run's version"
    assert not [c for c in publisher.calls if c.startswith("push ")]
    assert revisions(aws) == before
    assert ecr.image_digest("latest") is None
    error = str(caught.value)
    assert f"{uri}:2.0.0 names {publisher.theirs} in the registry" in error and "during this run's build" in error
    assert "re-running with the same version is safe" not in caught.value.advice
    assert "a new build needs a new version" in caught.value.advice


def test_a_registry_that_cannot_be_read_after_the_build_is_not_said_to_lack_the_version(
        aws, tmp_path, independent_client):
    """The check right before the push could not read the registry (ECR failing after the build): the
    run stopped, pushing nothing, and told its person to re-run "(the version is not in the registry)",
    which is what it could not find out: another run may have pushed it during the build."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri, ecr = aws.topology.repository_uri, independent_client("ecr")

    class EcrFailsDuringTheBuild(EcrBacked):
        def build(self, *args, **kwargs) -> str:
            _refusing(ecr, "DescribeImages", "ServerException")
            return super().build(*args, **kwargs)

    publisher, before = EcrFailsDuringTheBuild(aws), revisions(aws)
    with pytest.raises(PublishIncomplete) as caught:
        publish_with_clients(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path), ecr=ecr)

    assert not [c for c in publisher.calls if c.startswith("push ")] and revisions(aws) == before
    assert caught.value.step == f"check that {uri}:2.0.0 is still not in the registry"
    assert caught.value.state == (f"the image was built ({publisher.images[f'{uri}:2.0.0']}) but nothing was pushed; "
                                  f"whether the registry holds {uri}:2.0.0 (another run's push during the build) is "
                                  "not known: it could not be read before pushing"), caught.value.state
    assert caught.value.advice == ("re-running with the same version is safe: it asks the registry for the version "
                                   "before building, and is refused, saying how to go on, if the registry holds it")


def test_a_family_moved_to_another_platform_during_the_build_gets_no_revision_of_the_image(aws, tmp_path):
    # Checked against the X86_64 revision before the build; the family moved to ARM64 while it
    # ran: a copy of the new revision pinning the amd64 image was registered, tasks that could
    # not start it.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    publisher = registered_during_the_build(
        aws, runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"})(aws)
    uri = aws.topology.repository_uri

    with pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    message = str(caught.value)
    assert f"changed during the run, from {aws.topology.task_definition_arn} to {publisher.registered[0]}" in message
    assert "the image was built for linux/amd64, and the task family's tasks run on linux/arm64" in message
    assert "linux/arm64 machine (docker_host can name a daemon there), under a new version" in message
    assert f"{uri}:2.0.0 is pushed" in message and "register_existing" not in message
    assert revisions(aws)[-1] == publisher.registered[0]


def test_register_existing_after_a_run_that_did_register_registers_no_second_revision(aws):
    # A run registered its revision, then was killed before saying so; the way on it is told
    # (the version is in the registry) is register_existing, which made a second identical revision.
    aws.get_client("ecr").put_image(repositoryName=aws.targets.ecr_repository, imageManifest=MANIFEST,
                                    imageTag="2.0.0")
    request = PublishRequest(version="2.0.0", register_existing=True)
    first = publish_with(aws, FakeImagePublisher(), request)
    after_first = revisions(aws)

    again = publish_with(aws, FakeImagePublisher(), request)

    assert again.task_definition == first.task_definition and revisions(aws) == after_first
    assert "already pins" in registration_step(again) and again.image == first.image


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_plain_re_run_of_a_released_version_names_the_revision_that_pins_it(aws, tmp_path):
    # A release done (pushed, registered, latest moved) and run again as it was (a CI job
    # re-triggered): the refusal said only "if a run pushed it and stopped before registering,
    # run again with register_existing=True", which left the operator to find out whether the
    # release was done, and by which revision. It names the revision that pins the version now.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    request = PublishRequest(version="2.4.0", context_dir=tmp_path)
    released = publish_with(aws, EcrBacked(aws), request)
    after = revisions(aws)
    again = EcrBacked(aws)

    with pytest.raises(PublishRefused) as caught:
        publish_with(aws, again, request)

    said = str(caught.value)
    assert f"is already in the registry (digest {released.digest})" in said, said
    assert (f"it is released: {released.task_definition}, the task family's latest ACTIVE revision, pins it by that "
            "digest") in said, said
    assert "stopped before registering" not in said, said
    assert "a new build needs a new version" in said, said
    assert revisions(aws) == after and again.calls == DAEMON_ASKED


def test_a_daemons_address_holding_a_password_is_refused_before_anything_runs_without_showing_it(aws, tmp_path,
                                                                                                  flows_docker, caplog):
    # The step said the docker_host as typed: a password in it went to the result, the log and the
    # artifact. And the Prefect API keeps the run's parameters as given: it is refused, not used.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container")
    with pytest.raises(PublishRefused, match=r"docker_host 'ssh://deploy:\*\*\*\*@build-host' holds a password"):
        publish_container(version="2.4.0", context_dir=str(tmp_path), docker_host="ssh://deploy:s3cr3t@build-host",
                          targets_block=blocks, aws_credentials_block=blocks)
    refused = artifact_markdown("2.4.0", "refused")
    assert "Nothing was built, pushed or registered" in refused, refused
    assert "s3cr3t" not in refused and "s3cr3t" not in caplog.text
    assert flows_docker.calls == []  # no daemon asked, nothing read of AWS before the refusal


def released_twice(aws, tmp_path):
    """2.4.0 released, then 2.4.1 (each built from a scratch Dockerfile, pushed and registered):
    2.4.0's release, whose revision is no longer the family's latest."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    first = publish_with(aws, EcrBacked(aws), PublishRequest(version="2.4.0", context_dir=tmp_path))
    publish_with(aws, EcrBacked(aws), PublishRequest(version="2.4.1", context_dir=tmp_path))
    return first

@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_re_run_of_a_version_an_older_revision_pins_names_that_revision(aws, tmp_path):
    # 2.4.0 released, then 2.4.1: a CI job re-running 2.4.0 was told "if a run pushed it and stopped
    # before registering, run again with register_existing=True", of a release that is registered.
    first = released_twice(aws, tmp_path)
    after = revisions(aws)

    with pytest.raises(PublishRefused) as caught:
        publish_with(aws, EcrBacked(aws), PublishRequest(version="2.4.0", context_dir=tmp_path))

    said = str(caught.value)
    assert f"it is released: {first.task_definition}, an ACTIVE revision of the task family (not its latest, " \
           f"{after[-1]}), pins it by that digest" in said, said
    assert "stopped before registering" not in said, said
    # register_existing copies the family's latest: it would not find that revision, but make a second one.
    assert f"register_existing=True would register a second revision pinning it, newer than {after[-1]}" in said
    assert "registers no second revision" not in said, said
    assert revisions(aws) == after


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_re_run_of_a_version_no_searched_revision_pins_says_only_the_newest_revisions_were_searched(aws, tmp_path):
    # 2.4.0 released, then more than REVISIONS_SEARCHED revisions registered: its revision is not
    # among those read, and the refusal said "if a run pushed it and stopped before registering,
    # run again with register_existing=True", as if no revision pinned it, when one does.
    from rollway.aws.ecs import REVISIONS_SEARCHED

    first = released_twice(aws, tmp_path)
    newest = described(aws, revisions(aws)[-1])
    ecs = aws.get_client("ecs")
    for _ in range(REVISIONS_SEARCHED):
        ecs.register_task_definition(**{k: v for k, v in newest.items() if k not in READ_ONLY_FIELDS})
    after = revisions(aws)

    with pytest.raises(PublishRefused) as caught:
        publish_with(aws, EcrBacked(aws), PublishRequest(version="2.4.0", context_dir=tmp_path))

    said = str(caught.value)
    family = aws.targets.task_family
    assert (f"no ACTIVE revision among the {REVISIONS_SEARCHED} newest of {family}, the ones searched, pins it; an "
            f"older one may (its release done): `aws ecs list-task-definitions --family-prefix {family} "
            "--status ACTIVE --sort DESC` lists them all, and `aws ecs describe-task-definition` names the image each "
            "runs. If none does and a run pushed it and stopped before registering, run again with "
            "register_existing=True") in said, said
    assert revisions(aws) == after


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_re_run_of_a_version_no_active_revision_pins_says_every_one_was_searched_not_that_an_older_one_may(
        aws, tmp_path):
    # 2.4.0 released, then 2.4.1, and 2.4.0's revision deregistered: every ACTIVE revision of the
    # family was searched, and the refusal said "an older one may (its release done)" of a family
    # with no older ACTIVE revision left to pin it.
    first = released_twice(aws, tmp_path)
    aws.get_client("ecs").deregister_task_definition(taskDefinition=first.task_definition)
    active = aws.get_client("ecs").list_task_definitions(familyPrefix=aws.targets.task_family,
                                                         status="ACTIVE")["taskDefinitionArns"]
    assert first.task_definition not in active

    with pytest.raises(PublishRefused) as caught:
        publish_with(aws, EcrBacked(aws), PublishRequest(version="2.4.0", context_dir=tmp_path))

    said = str(caught.value)
    family = aws.targets.task_family
    assert "older one may" not in said and "newest" not in said, said
    assert (f"; no ACTIVE revision of {family} pins it (all {len(active)} were searched; a deregistered one may: "
            f"`aws ecs list-task-definitions --family-prefix {family} --status INACTIVE` lists those). If a run "
            "pushed it and stopped before registering, run again with register_existing=True") in said, said


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_re_run_of_a_version_whose_revisions_could_not_be_searched_does_not_say_none_pins_it(aws, tmp_path):
    # ListTaskDefinitions refused (a role without it, or throttled past botocore's retries): the
    # refusal said "no ACTIVE revision among the 20 newest ..., the ones searched, pins it" of a
    # search never made, with 2.4.0's revision there.
    from tests.botocore_events import on_operation
    from tests.flows.test_traffic_reads_denied import answering

    released_twice(aws, tmp_path)
    after = revisions(aws)

    asked: list[str] = []
    with on_operation(aws.get_client("ecs"), "before-parameter-build",
                      answering("AccessDeniedException", 99, asked, "ListTaskDefinitions"),
                      operation="ListTaskDefinitions"), pytest.raises(PublishRefused) as caught:
        publish_with(aws, EcrBacked(aws), PublishRequest(version="2.4.0", context_dir=tmp_path))

    said = str(caught.value)
    family = aws.targets.task_family
    assert asked and "newest" not in said and "the ones searched" not in said, said
    assert (f"; the revisions of {family} could not be searched for one pinning it (AccessDeniedException on "
            f"ListTaskDefinitions: refused); one may (its release done): `aws ecs list-task-definitions --family-prefix "
            f"{family} --status ACTIVE --sort DESC` lists them all") in said, said
    assert revisions(aws) == after


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_register_existing_of_a_version_an_older_revision_pins_says_which_revision_pins_it(aws, tmp_path):
    # 2.4.0 released, then 2.4.1: register_existing of 2.4.0 copies the family's latest (2.4.1's
    # revision, its settings) into a new revision pinning 2.4.0, and said nothing of the older
    # revision that pins it already, as if the version had never been registered.
    first = released_twice(aws, tmp_path)
    latest = revisions(aws)[-1]

    again = publish_with(aws, EcrBacked(aws), PublishRequest(version="2.4.0", register_existing=True,
                                                             push_latest=False))

    assert again.task_definition not in (first.task_definition, latest)
    said = next(step for step in again.steps if step.startswith(f"registered {again.task_definition}"))
    assert f"a copy of {latest}" in said, said
    assert f"{first.task_definition}, an older revision of the family, pins it already" in said, said


def test_register_existing_refuses_an_image_the_familys_tasks_could_not_start(aws, caplog):
    # Nothing is built, so no build checked the platform: an arm64-only image registered into
    # the family (Fargate, X86_64 by default) failed only when the canary's tasks started.
    ecr = aws.get_client("ecr")
    for version, platforms in (("2.0.0", [("linux", "arm64")]), ("2.0.1", [("linux", "arm64"), ("linux", "amd64")])):
        ecr.put_image(repositoryName=aws.targets.ecr_repository, imageTag=version, imageManifest=index_manifest(*platforms),
                      imageManifestMediaType="application/vnd.oci.image.index.v1+json")
    before = revisions(aws)

    with pytest.raises(PublishRefused) as caught:
        publish_with(aws, FakeImagePublisher(), PublishRequest(version="2.0.0", register_existing=True))
    assert (f"register_existing: {aws.topology.repository_uri}:2.0.0 is built for linux/arm64, and the task family's "
            "tasks run on linux/amd64") in str(caught.value)
    assert "refused before registering anything" in str(caught.value)
    assert revisions(aws) == before

    # An index that holds the family's platform is registered.
    registered = publish_with(aws, FakeImagePublisher(), PublishRequest(version="2.0.1", register_existing=True))
    assert revisions(aws) == [*before, registered.task_definition]

    # A platform ECR cannot tell (moto serves no config blob) is registered, and the log says it was not checked.
    ecr.put_image(repositoryName=aws.targets.ecr_repository, imageManifest=MANIFEST, imageTag="2.0.2")
    publish_with(aws, FakeImagePublisher(), PublishRequest(version="2.0.2", register_existing=True))
    assert "could not check which platform" in caplog.text and "registered unchecked" in caplog.text


def _refusing(client, operation: str, code: str, status: int = 400):
    """``client`` answering ``operation`` with an error, as AWS does for a role without the permission
    (``status`` 503 and ServiceUnavailableException: as ECR does in an outage)."""
    def refuse(**_):
        return SimpleNamespace(status_code=status, headers={}), {
            "Error": {"Code": code, "Message": f"not allowed to {operation}"}, "ResponseMetadata": {}}

    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", refuse)
    return client


def test_a_role_ecr_refuses_a_login_token_is_refused_before_any_build(aws, tmp_path, independent_client):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    # A client of its own: the refusal must not outlive this test on the shared clients.
    ecr = _refusing(independent_client("ecr"), "GetAuthorizationToken", "AccessDeniedException")
    publisher = EcrBacked(aws)
    before = revisions(aws)

    @flow
    def refused_token():
        return run_publish(PublishRequest(version="2.0.0", context_dir=tmp_path),
                           lambda: (aws.targets, lambda name: ecr if name == "ecr" else aws.get_client(name)),
                           open_publisher=lambda: nullcontext(publisher))

    with pytest.raises(PublishRefused, match="GetAuthorizationToken.*AccessDeniedException") as refused:
        refused_token()
    # Named as every other refused permission is: the action, and the release policy's statement.
    assert "ecr:GetAuthorizationToken" in str(refused.value), str(refused.value)
    assert "iam-policy-release.json, statement EcrLogin" in str(refused.value), str(refused.value)
    assert publisher.calls == DAEMON_ASKED  # no login, least of all a build
    assert revisions(aws) == before


def test_an_archived_version_is_not_registered(aws, independent_client):
    # DescribeImages says the version's image is ARCHIVED (moto reports no imageStatus: stubbed):
    # a revision pinning it would start tasks that cannot pull their image.
    from tests.adapters.test_ecr import archived

    ecr = archived(independent_client("ecr"))
    before = revisions(aws)

    @flow
    def register_archived():
        return run_publish(PublishRequest(version="2.0.0", register_existing=True),
                           lambda: (aws.targets, lambda name: ecr if name == "ecr" else aws.get_client(name)),
                           open_publisher=lambda: nullcontext(EcrBacked(aws)))

    with pytest.raises(PublishRefused, match="2.0.0 is ARCHIVED in ECR, not ACTIVE"):
        register_archived()
    assert revisions(aws) == before


def publish_with_clients(aws, publisher: FakeImagePublisher, request: PublishRequest, **clients):
    """publish_with, the flow's boto3 clients of ``clients`` (service -> client) where given."""
    return in_a_flow_run("publish-with-clients", lambda: run_publish(
        request, lambda: (aws.targets, lambda name: clients.get(name) or aws.get_client(name)),
        open_publisher=lambda: nullcontext(publisher)))


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_release_moves_latest_only_once_registered_and_logs_which_tags_moved(aws, tmp_path, independent_client,
                                                                               caplog):
    """latest was pushed before the revision was registered: a registration that failed (a
    permission, a role it passes) left latest on an image no revision runs, and a run that
    succeeded did not say what latest named before. latest now moves last, and the run says which
    tags it moved."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    ecr = EcrRepository(aws.get_client("ecr"), aws.targets)
    old = put_manifest(aws.get_client("ecr"), aws.targets.ecr_repository, "latest", "sha256:" + "9" * 64)
    before = revisions(aws)

    refused = _refusing(independent_client("ecs"), "RegisterTaskDefinition", "AccessDeniedException")
    with pytest.raises(PublishIncomplete) as caught:
        publish_with_clients(aws, EcrBacked(aws), PublishRequest(version="2.0.0", context_dir=tmp_path), ecs=refused)
    assert ecr.image_digest("latest") == old, "latest names an image no revision runs"
    assert revisions(aws) == before
    assert f"{uri}:2.0.0 is pushed" in caught.value.state and "register_existing=True" in caught.value.advice

    # The way on registers the version, then moves latest to it.
    resumed = publish_with(aws, FakeImagePublisher(), PublishRequest(version="2.0.0", register_existing=True))
    version = ecr.image_digest("2.0.0")
    assert ecr.image_digest("latest") == version == resumed.digest
    registered = next(i for i, s in enumerate(resumed.steps) if s.startswith("registered "))
    moved = resumed.steps.index(f"moved {uri}:latest to {version} (ECR PutImage)")
    assert registered < moved, resumed.steps
    said = (f"tags moved: {uri}:latest from {old} to {version}; left as they were: {uri}:2.0.0 (on {version} "
            "already)")
    assert said in caplog.text, caplog.text

    caplog.clear()
    result = publish_with(aws, EcrBacked(aws), PublishRequest(version="2.1.0", context_dir=tmp_path))
    assert ecr.image_digest("latest") == result.digest
    said = f"tags moved: {uri}:2.1.0 to {result.digest} (a new tag), {uri}:latest from {version} to {result.digest}"
    assert said in caplog.text, caplog.text
    registered = next(i for i, s in enumerate(result.steps) if s.startswith("registered "))
    assert registered < result.steps.index(f"moved {uri}:latest to {result.digest} (ECR PutImage)"), result.steps


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_refused_latest_move_says_the_release_is_registered_and_how_to_move_latest(aws, tmp_path,
                                                                                    independent_client):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    registry = uri.split("/", 1)[0]
    handed: list[tuple[str, str]] = []

    class Watching(EcrBacked):
        def login(self, registry, username, password):
            handed.append((username, password.get_secret_value()))
            super().login(registry, username, password)

    publisher = Watching(aws)
    # latest names the release before, pushed before this one.
    put_manifest(aws.get_client("ecr"), aws.targets.ecr_repository, "latest", "sha256:" + "9" * 64)
    refused = _refusing(independent_client("ecr"), "PutImage", "AccessDeniedException")

    with pytest.raises(PublishIncomplete) as caught:
        publish_with_clients(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path), ecr=refused)

    assert handed and set(handed) == {("AWS", ecr_password(aws))}  # ECR's token, decoded, reached docker login
    assert f"logout {registry}" in publisher.calls and publisher.logins == {}  # logged out all the same
    message = str(caught.value)
    assert f"move {uri}:latest to sha256:" in message and "ecr:PutImage" in message, message
    assert f"{uri}:2.0.0 is pushed (sha256:" in message and f"{uri}:latest was not moved to {uri}:2.0.0" in message
    registered = caught.value.state.split("task definition ", 1)[1].split(" ", 1)[0]
    assert revisions(aws)[-1] == registered
    assert f"the release is registered ({registered}), and latest does not name it" in message, message
    assert "register_existing=True" in message and ecr_password(aws) not in message
    stopped = artifact_markdown("2.0.0", "stopped", containing=uri)
    assert f"{uri}:2.0.0 is pushed" in stopped and "register_existing=True" in stopped

    # The way on it was told: register_existing moves latest, and registers no second revision.
    ecr = EcrRepository(aws.get_client("ecr"), aws.targets)
    version = ecr.image_digest("2.0.0")
    assert ecr.image_digest("latest") != version
    resumed = publish_with(aws, FakeImagePublisher(), PublishRequest(version="2.0.0", register_existing=True))
    assert ecr.image_digest("latest") == version == resumed.digest
    assert resumed.references == (f"{uri}:2.0.0", f"{uri}:latest") and resumed.task_definition == registered
    assert f"moved {uri}:latest to {version} (ECR PutImage)" in resumed.steps
    # Again (a run killed after it): latest is left where it is, nothing new registered.
    again = publish_with(aws, FakeImagePublisher(), PublishRequest(version="2.0.0", register_existing=True))
    assert f"{uri}:latest names {version} already" in again.steps
    assert again.task_definition == resumed.task_definition and ecr.image_digest("latest") == version


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_version_pushed_over_after_registering_is_not_told_register_existing_registers_no_second_revision(
        aws, tmp_path, independent_client):
    """latest moves once the release is registered: when that move failed and the version named another
    run's image by then, the way on was "run again with register_existing=True, which moves latest to it
    and registers no second revision", and that re-run registered a second revision, pinning the other
    run's image, and moved latest to it."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri, ecr, name = aws.topology.repository_uri, aws.get_client("ecr"), aws.targets.ecr_repository
    other: list[str] = []

    def pushed_over_then_refused(**_):  # another run of 2.0.0 pushes, and ECR refuses this run's latest move
        if not other:
            other.append(put_manifest(ecr, name, "2.0.0", "sha256:" + "7" * 64))
        return SimpleNamespace(status_code=400, headers={}), {
            "Error": {"Code": "AccessDeniedException", "Message": "not allowed to PutImage"}, "ResponseMetadata": {}}

    watched = independent_client("ecr")
    watched.meta.events.register("before-call.ecr.PutImage", pushed_over_then_refused)
    with pytest.raises(PublishIncomplete) as caught:
        publish_with_clients(aws, EcrBacked(aws), PublishRequest(version="2.0.0", context_dir=tmp_path), ecr=watched)

    message, registered = str(caught.value), revisions(aws)[-1]
    assert other, "latest's move never ran"
    assert f"{uri}:2.0.0 names {other[0]} in the registry now (another run's push)" in message, message
    assert f"task definition {registered} is registered" in message, message
    advice = caught.value.advice
    assert "registers no second revision" not in advice and "which moves latest to it" not in advice, advice
    assert f"the release is registered ({registered}, pinning sha256:" in advice, advice
    assert (f"{uri}:2.0.0 names another run's image now (that run registers it): a re-run with register_existing "
            "would register that image in a second revision, so nothing is left to run for this release") in advice
    assert "latest was not moved: tag sha256:" in advice and "as latest in the registry by hand" in advice, advice


def test_register_existing_finding_the_version_pushed_over_is_not_told_to_register_that_image(
        aws, independent_client):
    """register_existing reads the version again right before registering; pushed over since it found
    it, the way on was "run again with register_existing=True to register its task definition", which
    registered the image the version names now, one nobody on this run built or checked, as the release."""
    from tests.botocore_events import on_operation

    ecr, uri, name = aws.get_client("ecr"), aws.topology.repository_uri, aws.targets.ecr_repository
    found = put_manifest(ecr, name, "2.0.0", "sha256:" + "a" * 64)
    watched, reads, other = independent_client("ecr"), [], []

    def pushed_over_before_the_last_read(params, **_):  # the version's second read, right before registering
        if params["imageIds"] == [{"imageTag": "2.0.0"}]:
            reads.append(1)
            if len(reads) == 2:
                other.append(put_manifest(ecr, name, "2.0.0", "sha256:" + "7" * 64))

    before = revisions(aws)
    with on_operation(watched, "before-parameter-build", pushed_over_before_the_last_read, operation="DescribeImages"), \
            pytest.raises(PublishIncomplete) as caught:
        publish_with_clients(aws, FakeImagePublisher(), PublishRequest(version="2.0.0", register_existing=True),
                             ecr=watched)

    assert other, "the version was never read again before registering"
    assert revisions(aws) == before and EcrRepository(ecr, aws.targets).image_digest("latest") is None
    assert f"{uri}:2.0.0 names {other[0]} in the registry now (another run's push), not {found}" in caught.value.state
    advice = caught.value.advice
    assert "to register its task definition without rebuilding" not in advice, advice
    assert f"{uri}:2.0.0 names {other[0]} now" in advice and "nothing was registered" in advice, advice
    assert f"once you have checked that {other[0]} is a build you mean to release" in advice, advice
    assert f"or publish the build you meant ({found}) under a new version" in advice, advice
    assert advice in artifact_markdown("2.0.0", "stopped", containing=other[0])


def test_register_existing_leaves_latest_on_a_release_pushed_after_the_version(aws, pushed_later):
    # 2.0.0 was pushed by a run that stopped before registering; 2.1.0 was released since, and
    # latest names it. register_existing for 2.0.0 moved latest back to 2.0.0: whatever pulls
    # latest went back a release, and the run said it had "moved latest" as a release does.
    ecr, uri = aws.get_client("ecr"), aws.topology.repository_uri
    older = put_manifest(ecr, aws.targets.ecr_repository, "2.0.0", "sha256:" + "a" * 64)
    pushed_later()
    newer = put_manifest(ecr, aws.targets.ecr_repository, "2.1.0", "sha256:" + "b" * 64)
    repository = EcrRepository(ecr, aws.targets)
    repository.retag(newer, "latest")

    resumed = publish_with(aws, FakeImagePublisher(), PublishRequest(version="2.0.0", register_existing=True))

    assert repository.image_digest("latest") == newer
    assert resumed.digest == older and resumed.references == (f"{uri}:2.0.0",)
    left = [s for s in resumed.steps if s.startswith(f"left {uri}:latest on {newer}")]
    assert left and "pushed after" in left[0] and f"{uri}:2.0.0" in left[0], resumed.steps
    assert described(aws, resumed.task_definition)["containerDefinitions"][0]["image"] == resumed.pinned_image
    assert left[0] in artifact_markdown("2.0.0", containing=newer)


def test_register_existing_that_left_latest_on_a_newer_release_and_failed_says_latest_stays(aws, independent_client,
                                                                                            pushed_later):
    # latest names 2.1.0, pushed after 2.0.0, and RegisterTaskDefinition is refused: the run said
    # "latest was not pushed" and "register_existing moves it", though the way on leaves it again.
    ecr, uri = aws.get_client("ecr"), aws.topology.repository_uri
    put_manifest(ecr, aws.targets.ecr_repository, "2.0.0", "sha256:" + "a" * 64)
    pushed_later()
    newer = put_manifest(ecr, aws.targets.ecr_repository, "2.1.0", "sha256:" + "b" * 64)
    EcrRepository(ecr, aws.targets).retag(newer, "latest")
    ecs = _refusing(independent_client("ecs"), "RegisterTaskDefinition", "AccessDeniedException")

    with pytest.raises(PublishIncomplete) as caught:
        in_a_flow_run("publish-with", lambda: run_publish(
            PublishRequest(version="2.0.0", register_existing=True),
            lambda: (aws.targets, lambda service: ecs if service == "ecs" else aws.get_client(service)),
            open_publisher=lambda: nullcontext(FakeImagePublisher())))

    # latest moves only once the revision is registered: it was not touched, and names the newer release.
    message = str(caught.value)
    assert EcrRepository(ecr, aws.targets).image_digest("latest") == newer
    assert "register_existing=True" in message and f"{uri}:latest is pushed" not in message, message


def test_register_existing_decides_and_reports_latest_from_one_read(aws, independent_client, pushed_later):
    # latest names 1.9.0, pushed before 2.0.0; 2.1.0 is released (and tagged latest) right after
    # the run reads latest. Reading latest a second time for when it was pushed judged 2.1.0
    # while naming 1.9.0: the run said it left latest on 1.9.0, "an image pushed after 2.0.0".
    from tests.botocore_events import on_operation

    ecr, uri, name = aws.get_client("ecr"), aws.topology.repository_uri, aws.targets.ecr_repository
    older = put_manifest(ecr, name, "1.9.0", "sha256:" + "9" * 64)
    EcrRepository(ecr, aws.targets).retag(older, "latest")
    pushed_later()
    version = put_manifest(ecr, name, "2.0.0", "sha256:" + "a" * 64)
    watched, released = independent_client("ecr"), []

    def release_after_reading_latest(parsed, **_):
        if [d["imageDigest"] for d in parsed.get("imageDetails", [])] == [older] and not released:
            pushed_later()
            released.append(put_manifest(ecr, name, "2.1.0", "sha256:" + "b" * 64))
            EcrRepository(ecr, aws.targets).retag(released[0], "latest")

    with on_operation(watched, "after-call", release_after_reading_latest, operation="DescribeImages"):
        resumed = in_a_flow_run("publish-with", lambda: run_publish(
            PublishRequest(version="2.0.0", register_existing=True),
            lambda: (aws.targets, lambda service: watched if service == "ecr" else aws.get_client(service)),
            open_publisher=lambda: nullcontext(FakeImagePublisher())))

    assert released, "the run never read latest"
    assert not [s for s in resumed.steps if s.startswith(f"left {uri}:latest on {older}")], resumed.steps
    # It read latest naming 1.9.0, older than the version, and moved it as a release's push does
    # (2.1.0, tagged after that read, is moved back: ECR's PutImage takes no condition on what a
    # tag names, so no read closes that window).
    assert f"moved {uri}:latest to {version} (ECR PutImage)" in resumed.steps, resumed.steps


def test_latest_moved_by_another_run_while_register_existing_tagged_it_is_said_with_the_way_on(
        aws, independent_client):
    # Another run tagged latest right after this run's PutImage: the run failed saying "latest was
    # not pushed" and "register_existing moves it", while latest named that run's image.
    from tests.botocore_events import on_operation

    ecr, uri, name = aws.get_client("ecr"), aws.topology.repository_uri, aws.targets.ecr_repository
    put_manifest(ecr, name, "2.0.0", "sha256:" + "a" * 64)
    watched, other = independent_client("ecr"), []

    def another_run_tags_latest(http_response, **_):
        if not other:
            other.append(put_manifest(ecr, name, "latest", "sha256:" + "b" * 64))

    with on_operation(watched, "after-call", another_run_tags_latest, operation="PutImage"), \
            pytest.raises(PublishIncomplete) as caught:
        in_a_flow_run("publish-with", lambda: run_publish(
            PublishRequest(version="2.0.0", register_existing=True),
            lambda: (aws.targets, lambda service: watched if service == "ecr" else aws.get_client(service)),
            open_publisher=lambda: nullcontext(FakeImagePublisher())))

    message = str(caught.value)
    assert other, "the run never tagged latest"
    assert f"{uri}:latest names {other[0]} in the registry now, tagged by another run while this one moved it to" \
        in message, message
    assert f"{uri}:latest was not moved" not in message and "register_existing moves it" not in message, message
    assert "register_existing=True" in message, message
    # latest moves once the release is registered: the way on is told what the re-run does with
    # latest, not that it moves latest to the release (it leaves a release ECR says is newer).
    assert "the release is registered (" in message and "which moves latest to it" not in message, message
    assert "the re-run reads latest again and puts it back on the version unless ECR says" in message, message


def test_a_version_deleted_after_its_revision_was_registered_is_not_said_to_have_registered_nothing(
        aws, independent_client):
    """latest moves once the release is registered: a version deleted in between (a lifecycle
    rule) failed latest's move with "its tag was deleted meanwhile, so nothing was registered from
    this run", beside "task definition ... is registered"."""
    from tests.botocore_events import on_operation

    ecr, name = aws.get_client("ecr"), aws.targets.ecr_repository
    put_manifest(ecr, name, "2.0.0", "sha256:" + "a" * 64)
    watched = independent_client("ecr")

    def lifecycle_rule(params, **_):  # as latest's move reads the version's manifest by its digest
        if "imageDigest" in params["imageIds"][0]:
            ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "2.0.0"}])

    with on_operation(watched, "before-parameter-build", lifecycle_rule, operation="BatchGetImage"), \
            pytest.raises(PublishIncomplete) as caught:
        publish_with_clients(aws, FakeImagePublisher(), PublishRequest(version="2.0.0", register_existing=True),
                             ecr=watched)

    message, registered = str(caught.value), revisions(aws)[-1]
    assert f"task definition {registered} is registered" in message, message
    assert "nothing was registered" not in message, message
    assert f"its tag was deleted meanwhile, after {registered} was registered from this run" in message, message


def test_a_registry_override_is_not_registered_into_a_family_that_pulls_from_ecr(aws, tmp_path, flows_docker):
    # The family's tasks pull from ECR: a revision pinning 127.0.0.1:5999/... would be a revision
    # no Fargate task can start. Refused before anything is built or pushed, nothing registered.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container")
    before = revisions(aws)
    with pytest.raises(PublishRefused, match=r"pulls from .*\.dkr\.ecr\..*register_task_definition=False"):
        publish_container(version="2.0.0", context_dir=str(tmp_path), registry="127.0.0.1:5999",
                          targets_block=blocks, aws_credentials_block=blocks)
    assert revisions(aws) == before and flows_docker.calls == DAEMON_ASKED


@pytest.mark.parametrize("push_latest", [False, True])
def test_a_version_another_run_pushed_over_meanwhile_is_not_registered(aws, tmp_path, push_latest):
    # Two runs of 2.0.0 at once (a double start from the UI) on a mutable repository: both find
    # the version absent, both build and push. The one that pushed first must not register a
    # revision pinning 2.0.0, which now names the other run's image, nor report its own digest,
    # nor move latest to its own image, which no version tag names any more.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    ecr = aws.get_client("ecr")

    theirs = []

    class Raced(EcrBacked):
        def push(self, reference):
            digest = super().push(reference)
            if reference.endswith(":2.0.0"):  # the other run's push lands right after ours
                theirs.append(put_manifest(ecr, aws.targets.ecr_repository, "2.0.0", "sha256:" + "2" * 64))
            return digest

    before, publisher = revisions(aws), Raced(aws)
    with pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path, push_latest=push_latest))
    message = str(caught.value)
    assert f"{uri}:2.0.0" in message and "another" in message
    assert revisions(aws) == before
    assert f"push {uri}:latest" not in publisher.calls
    # Where things stand names the image the registry holds for the version now (the other
    # run's) and the one this run pushed, each for what it is: it said "2.0.0 is pushed (<ours>)",
    # the image no tag names any more.
    ours = publisher.registry[f"{uri}:2.0.0"]
    assert (f"{uri}:2.0.0 names {theirs[0]} in the registry now (another run's push), not {ours}, which this "
            "run pushed") in caught.value.state, caught.value.state
    assert f"is pushed ({ours})" not in caught.value.state, caught.value.state
    # The version is the other run's now: "run again with register_existing=True to register its task
    # definition" registered that run's image as this run's release (a second revision of it, or the
    # only one if that run stopped), as the way on of a run that found it there before pushing does not.
    assert caught.value.advice.startswith("the version is another run's now (that run registers it; "), \
        caught.value.advice
    assert caught.value.advice.endswith("a new build needs a new version"), caught.value.advice


def test_a_version_found_in_the_registry_after_a_failed_push_is_not_reported_as_pushed(aws, tmp_path):
    # This run's push failed; the registry holds the version all the same, another run's image
    # (pushed first on an immutable repository), whose manifest names another build as its config:
    # the run said "2.0.1 is pushed (<the digest it read>)".
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    from rollway.toolchain.docker import PushRefused

    uri, ecr = aws.topology.repository_uri, aws.get_client("ecr")
    theirs = []

    class Beaten(EcrBacked):
        def push(self, reference):
            theirs.append(put_manifest(ecr, aws.targets.ecr_repository, "2.0.1", "sha256:" + "4" * 64))
            raise PushRefused(reference, ["tag invalid: the image tag '2.0.1' already exists and cannot be "
                                          "overwritten because the repository is immutable"])

    with pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, Beaten(aws), PublishRequest(version="2.0.1", context_dir=tmp_path, push_latest=False))
    state = caught.value.state
    assert f"{uri}:2.0.1 is pushed" not in state, state
    assert f"{uri}:2.0.1 names {theirs[0]} in the registry, another run's push of the same version" in state, state
    assert "register_existing=True" in caught.value.advice, caught.value.advice
    assert f"names {theirs[0]} in the registry" in artifact_markdown("2.0.1", "stopped")


def test_a_failed_version_push_that_left_the_version_in_the_registry_does_not_promise_a_safe_re_run(aws, tmp_path):
    # The push failed (the daemon went away after the manifest was up, or on an immutable
    # repository another run pushed 2.0.0 first), yet ECR holds 2.0.0: "re-running is safe" would
    # be a promise the re-run breaks (it is refused as already in the registry).
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    from rollway.toolchain.docker import PushRefused

    class PushedThenFailed(EcrBacked):
        def push(self, reference):
            # In ECR, with no record on this daemon that it pushed it: whose image it is cannot be told.
            put_manifest(self.ecr, self.repository, "2.0.0", self.images[reference])
            raise PushRefused(reference, ["tag invalid: the image tag '2.0.0' already exists and cannot be "
                                          "overwritten because the repository is immutable"])

    request = PublishRequest(version="2.0.0", context_dir=tmp_path, push_latest=False)
    with pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, PushedThenFailed(aws), request)
    message = str(caught.value)
    assert "re-running with the same version is safe" not in message
    assert "register_existing=True" in message
    with pytest.raises(PublishRefused, match="already in the registry"):  # what the message said
        publish_with(aws, EcrBacked(aws), request)


def test_a_push_failing_with_no_message_says_the_exception_and_where(aws, tmp_path):
    # A push cut off with no words of its own (a timeout): the run's error and artifact said
    # "TimeoutError: " and nothing.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    class Unanswered(EcrBacked):
        def push(self, reference):
            raise TimeoutError()

    with pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, Unanswered(aws), PublishRequest(version="2.0.1", context_dir=tmp_path, push_latest=False))
    said = "TimeoutError with no message, raised at tests/flows/test_container_flow.py:"
    assert said in str(caught.value) and "TimeoutError: " not in str(caught.value), caught.value
    assert said in artifact_markdown("2.0.1", "stopped")


def test_latest_is_moved_to_this_releases_digest_whatever_the_daemons_local_latest_names(aws, tmp_path):
    # Two runs on one docker daemon share its local tags: the other run tags <repo>:latest with its
    # image between this run's tag and push, and this run's `docker push :latest` moved latest to
    # the other run's image. latest is now moved by ECR's API to the digest this run pushed and
    # registered: the daemon's local latest is never pushed.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri

    class SharedDaemon(EcrBacked):
        def push(self, reference):
            self.images[f"{uri}:latest"] = "sha256:" + "3" * 64  # the other run's `docker tag`
            return super().push(reference)

    publisher = SharedDaemon(aws)
    result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))
    assert EcrRepository(aws.get_client("ecr"), aws.targets).image_digest("latest") == result.digest
    assert f"push {uri}:latest" not in publisher.calls
    assert described(aws, result.task_definition)["containerDefinitions"][0]["image"] == f"{uri}@{result.digest}"


@pytest.mark.parametrize("push_latest", [True, False])
def test_a_version_pushed_as_another_runs_image_is_not_registered_as_this_build(aws, tmp_path, push_latest):
    # The other run on the same daemon tags <repo>:2.0.0 and latest with its image between this
    # run's tags and pushes: this run pushes that image under both, the registry holds what this
    # run pushed, and latest agrees with the version. Its result named its own build while the
    # revision it registered ran the other run's image.
    # A run asked to leave latest alone was told "register_existing=True", which moves latest.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    other = "sha256:" + "4" * 64

    class SharedDaemon(EcrBacked):
        built = None

        def build(self, context_dir, **kwargs):
            self.built = super().build(context_dir, **kwargs)
            return self.built

        def push(self, reference):
            if reference == f"{uri}:2.0.0":
                self.images[reference] = self.images[f"{uri}:latest"] = other  # the other run's `docker tag`s
            return super().push(reference)

    publisher, before = SharedDaemon(aws), revisions(aws)
    with pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path, push_latest=push_latest))
    message = str(caught.value)
    way_on = "register_existing=True" if push_latest else "register_existing=True and push_latest=False"
    assert f"({way_on} would register that image)" in message, message
    assert f"{uri}:2.0.0 was pushed as {publisher.registry[f'{uri}:2.0.0']}, which is not this run's build " \
           f"({publisher.built})" in message, message
    assert "another run" in message and revisions(aws) == before
    assert f"push {uri}:latest" not in publisher.calls  # latest is not moved to the other run's image
    # The version names the other run's build: this build is not in the registry, and the way on
    # that registered the version registered that run's image as this run's release.
    assert caught.value.advice == (f"the version is another run's now (that run registers it; if it stopped before "
                                   f"registering, {way_on} registers its image): nothing is left to run for this "
                                   "build, and a new build needs a new version"), caught.value.advice


def test_an_after_push_check_the_registry_could_not_answer_says_it_could_not_tell_whose_build_is_pushed(
        aws, tmp_path, independent_client):
    """The daemon recorded no push of this run's build (another run on it tagged the version between
    this run's tag and push), and ECR's manifest read that would tell failed: the run's error was
    ECR's own ("ClientError: ... ServerException ..."), with no word of what it was checking or what to do."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri, other = aws.topology.repository_uri, "sha256:" + "4" * 64

    class Retagged(EcrBacked):
        def push(self, reference):
            self.images[reference] = other  # the other run's `docker tag`
            return super().push(reference)

    ecr = _refusing(independent_client("ecr"), "BatchGetImage", "ServerException")
    publisher, before = Retagged(aws), revisions(aws)
    with pytest.raises(PublishIncomplete) as caught:
        publish_with_clients(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path), ecr=ecr)

    message, pushed = str(caught.value), publisher.registry[f"{uri}:2.0.0"]
    assert (f"check that {uri}:2.0.0 was pushed as this run's build failed: RuntimeError: could not tell whether "
            f"{pushed}, which the registry holds for {uri}:2.0.0, is this run's build (") in message, message
    assert "not allowed to BatchGetImage" in message, message  # ECR's words, as the cause
    assert "if it is not, it is another run's image" in message and "register_existing=True" in message, message
    assert revisions(aws) == before
    # The way on registers the image only once it is told to be this run's build: unconditioned, it
    # registered whatever the registry held under the version (another run's, here).
    advice, built = caught.value.advice, message.split("is this run's build (", 1)[1][:71]
    assert advice.startswith(f"first tell whose image {pushed} (what the registry holds for {uri}:2.0.0) is: if its "
                             f"manifest names {built} as its config, it is this run's build, and "), advice
    assert advice.endswith("if it names another, it is another run's image (that run registers it): nothing is left "
                           "to run for this build, and a new build needs a new version"), advice


@pytest.mark.parametrize(("repository", "why"), [
    # The URI (<account>.dkr.ecr.<region>.amazonaws.com/<name>, what the ECR console shows; a
    # repository in another account or region looks like this) was looked up as a repository
    # *named* so: "not found: create it first", or with a registry override a reference
    # 127.0.0.1:5000/<account>.dkr.ecr.../<name>:<version>.
    ("uri", r"is a repository URI: give the repository name \('webordinary/edit-container'\)"),
    ("127.0.0.1:5000/webordinary/edit-container", r"is a repository URI.*'webordinary/edit-container'"),
    # A name neither docker nor ECR takes was looked up too, and came back as "not found".
    ("Webordinary/Edit-Container", r"'Webordinary/Edit-Container' has a repository path component 'Webordinary' "
                                   r"that is not lowercase"),
    ("webordinary/edit-container/", r"'webordinary/edit-container/' has an empty"),
])
def test_a_saved_repository_that_is_not_a_repository_name_stops_the_run_before_any_aws_call(
        aws, tmp_path, flows_docker, every_call, repository, why):
    # It was refused only once the credentials were loaded, which asks STS (GetCallerIdentity,
    # or AssumeRole for a role): refused with the block now, as every other name of the block.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container-repository", fresh=True)
    _save_document(blocks, {**aws.targets.model_dump(mode="json"),
                            "ecr_repository": aws.topology.repository_uri if repository == "uri" else repository})
    calls = {service: every_call(service) for service in ("sts", "ecr", "ecs")}
    for registry in (None, "127.0.0.1:5999"):
        with pytest.raises(AccountNotLoaded, match=r"failed validation: ecr_repository: Value error, .*" + why):
            publish_container(version="2.0.0", context_dir=str(tmp_path), registry=registry, targets_block=blocks,
                              aws_credentials_block=blocks)
    assert calls == {"sts": [], "ecr": [], "ecs": []}
    assert "Nothing was pushed or registered" in artifact_markdown("2.0.0", "failed", containing="ecr_repository")


def test_a_repository_name_with_a_dot_in_its_first_component_is_published_not_taken_for_a_uri(aws, tmp_path):
    # ECR takes '.' in every component of a name (acme.web/edit-container): such a repository was
    # refused as "a repository URI", told to give 'edit-container' instead, another repository.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    name = "acme.web/edit-container"
    uri = aws.get_client("ecr").create_repository(repositoryName=name)["repository"]["repositoryUri"]
    publisher = EcrBacked(aws)
    publisher.repository = name

    result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path,
                                                         register_task_definition=False),
                          aws.targets.model_copy(update={"ecr_repository": name}))

    assert result.references == (f"{uri}:2.0.0", f"{uri}:latest") and uri.endswith("/" + name)
    assert EcrRepository(aws.get_client("ecr"), aws.targets.model_copy(update={"ecr_repository": name})
                         ).image_digest("2.0.0") == result.digest


def test_a_run_that_registers_nothing_is_not_told_to_go_on_by_registering(aws, tmp_path, independent_client):
    # register_task_definition=False (push only): when latest's move is refused, the way on is to
    # move latest, not "run again with register_existing=True" (which registers a revision).
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    refused = _refusing(independent_client("ecr"), "PutImage", "AccessDeniedException")
    with pytest.raises(PublishIncomplete) as caught:
        publish_with_clients(aws, EcrBacked(aws), PublishRequest(version="2.0.0", context_dir=tmp_path,
                                                                 register_task_definition=False), ecr=refused)
    message = str(caught.value)
    assert f"{uri}:2.0.0 is pushed" in message
    assert "register_existing" not in message and "task definition" not in message
    assert f"{uri}:latest was not moved to {uri}:2.0.0" in message and "push it by hand" in message


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_an_ecr_token_about_to_expire_is_asked_for_again_and_that_one_used(aws, tmp_path, watch_calls):
    """The flow asks ECR for its token before its reads end; ECR answers that it expires in five
    minutes. docker login gets a new token, not the one about to expire."""
    import datetime as dt

    from tests.botocore_events import on_operation

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    ecr = aws.get_client("ecr")
    answers: list[str] = []

    def first_expiring(parsed, **_):
        data = parsed["authorizationData"][0]
        if not answers:
            data["expiresAt"] = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
        answers.append(base64.b64decode(data["authorizationToken"]).decode().split(":", 1)[1])

    class RecordingLogins(EcrBacked):
        def login(self, registry, username, password):
            super().login(registry, username, password)
            self.passwords = [*getattr(self, "passwords", []),
                              password.get_secret_value() if hasattr(password, "get_secret_value") else password]

    publisher = RecordingLogins(aws)
    calls = watch_calls(ecr)
    with on_operation(ecr, "after-call", first_expiring, operation="GetAuthorizationToken"):
        result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))
    assert calls.count("GetAuthorizationToken") == 2, calls
    assert publisher.passwords == [answers[1]], "docker login got the token about to expire"
    assert result.image == f"{aws.topology.repository_uri}:2.0.0"


class PullsItsBase(EcrBacked):
    """A build whose Dockerfile starts FROM an image in the release's own ECR registry (a base
    image the team keeps there): docker pulls it with the login its config holds for that
    registry, and with none it fails as docker does."""

    def __init__(self, aws, **kwargs) -> None:
        super().__init__(aws, **kwargs)
        self.host = aws.topology.repository_uri.split("/", 1)[0]
        self.passwords: list[str] = []

    def login(self, registry, username, password):
        super().login(registry, username, password)
        self.passwords.append(password.get_secret_value())

    def build(self, context_dir, **kwargs):
        from rollway.toolchain.docker import BuildFailed

        if self.host not in self.logins:
            self.calls.append(f"build {context_dir}")
            raise BuildFailed(str(context_dir), [f"Step 1/2 : FROM {self.host}/webordinary/base:1",
                                                 f"Head \"https://{self.host}/v2/webordinary/base/manifests/1\": "
                                                 "no basic auth credentials"])
        return super().build(context_dir, **kwargs)


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_base_image_in_the_releases_ecr_registry_is_pulled_with_the_runs_login(aws, tmp_path):
    """docker runs with a private config, so the worker's own logins are not there: a Dockerfile
    FROM a base image in the release's ECR registry failed to build ("no basic auth
    credentials"), since the run logged in only after building. It logs in first."""
    uri = aws.topology.repository_uri
    registry = uri.split("/", 1)[0]
    (tmp_path / "Dockerfile").write_text(f"FROM {registry}/webordinary/base:1\nCOPY . /app\n")
    publisher = PullsItsBase(aws)

    result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    assert publisher.calls.index(f"login {registry}") < publisher.calls.index(f"build {tmp_path}")
    assert publisher.passwords == [ecr_password(aws)]  # one login, for the build's pull and the pushes
    assert publisher.registry[f"{uri}:2.0.0"] == result.digest
    assert described(aws, result.task_definition)["containerDefinitions"][0]["image"] == f"{uri}@{result.digest}"
    assert publisher.logins == {}  # logged out at the end


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_login_that_expires_during_the_build_is_asked_for_again_before_the_pushes(aws, tmp_path, monkeypatch,
                                                                                      watch_calls):
    """The login made before the build is good for 12 hours; a build that outlived most of it
    pushes with a new one."""
    import datetime as dt
    from types import SimpleNamespace

    from tests.botocore_events import on_operation

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    ecr = aws.get_client("ecr")
    answers: list[str] = []
    built = [dt.timedelta(0)]

    class Clock(dt.datetime):
        """The flow's clock, 11 h 55 min on once the build is done (a build of hours)."""

        @classmethod
        def now(cls, tz=None):
            return dt.datetime.now(tz) + built[0]

    def record(parsed, **_):  # good for 12 hours on the run's clock
        parsed["authorizationData"][0]["expiresAt"] = Clock.now(dt.timezone.utc) + dt.timedelta(hours=12)
        answers.append(base64.b64decode(parsed["authorizationData"][0]["authorizationToken"]).decode().split(":", 1)[1])

    class LongBuild(PullsItsBase):
        def build(self, context_dir, **kwargs):
            image = super().build(context_dir, **kwargs)
            built[0] = dt.timedelta(hours=11, minutes=55)
            return image

    monkeypatch.setattr(flows_container, "dt", SimpleNamespace(datetime=Clock, timezone=dt.timezone,
                                                               timedelta=dt.timedelta))
    publisher = LongBuild(aws)
    calls = watch_calls(ecr)
    with on_operation(ecr, "after-call", record, operation="GetAuthorizationToken"):
        result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))
    assert calls.count("GetAuthorizationToken") == 2, calls
    assert publisher.passwords == answers  # the first for the build, the second for the pushes
    registry = aws.topology.repository_uri.split("/", 1)[0]
    logins = [i for i, c in enumerate(publisher.calls) if c == f"login {registry}"]
    pushes = [i for i, c in enumerate(publisher.calls) if c.startswith("push ")]
    assert logins[0] < publisher.calls.index(f"build {tmp_path}") < logins[1] < pushes[0]
    again = [s for s in result.steps if s.startswith(f"logged in to {registry} again as AWS (private docker config): "
                                                     "the login expires in ")]
    assert again and again[0].endswith("sooner than a push may take (30 min, docker_timeout_seconds)"), result.steps
    assert result.task_definition is not None


EXPIRED = "denied: Your authorization token has expired. Reauthenticate and try again."


@pytest.mark.parametrize("built_hours, pushes", [
    # The build leaves the login 20 minutes, fewer than the 30 a push may take (docker_timeout_seconds).
    (11 + 40 / 60, [("ok", 25)]),
    # The login has 55 minutes when the push starts; it fails in passing after 35, and the push
    # made again after the wait (20 minutes left) may take 30.
    (11 + 5 / 60, [("reset", 35), ("ok", 25)]),
])
def test_every_push_and_each_push_again_starts_with_a_login_good_for_as_long_as_a_push_may_take(
        aws, tmp_path, monkeypatch, built_hours, pushes):
    """The login was checked once, before the pushes, against ten minutes: a push began with a
    login that expired before it could end (ECR refused the rest of it, gigabytes sent for
    nothing), and a push made again after a failure in passing was not checked at all. Each push
    and each push made again now starts with a login that lasts as long as the push may take, on
    the run's clock (``now``)."""
    import datetime as dt

    from rollway.toolchain.docker import PushRefused
    from tests.botocore_events import on_operation

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    clock = [dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)]
    expiry: dict[str, dt.datetime] = {}  # token -> when ECR stops taking it
    left: list[dt.timedelta] = []  # what the login had left as each push began

    def twelve_hours(parsed, **_):  # as ECR gives them, on the run's clock, each its own
        data = parsed["authorizationData"][0]
        password = f"token-{len(expiry) + 1}"
        data["authorizationToken"] = base64.b64encode(f"AWS:{password}".encode()).decode()
        data["expiresAt"] = expiry[password] = clock[0] + dt.timedelta(hours=12)

    class TakesItsTime(EcrBacked):
        expires: dt.datetime

        def login(self, registry, username, password):
            super().login(registry, username, password)
            self.expires = expiry[password.get_secret_value()]

        def build(self, context_dir, **kwargs):
            image = super().build(context_dir, **kwargs)
            clock[0] += dt.timedelta(hours=built_hours)
            return image

        def push(self, reference):
            left.append(self.expires - clock[0])
            how, minutes = (pushes.pop(0) if pushes else ("ok", 25)) if reference.endswith(":2.0.0") else ("ok", 1)
            clock[0] += dt.timedelta(minutes=minutes)
            self.calls.append(f"push {reference}")
            if clock[0] >= self.expires:
                raise PushRefused(reference, [f"The push refers to repository [{uri}]", EXPIRED])
            if how == "reset":
                raise PushRefused(reference, [f"The push refers to repository [{uri}]", RESET])
            self.calls.pop()
            return super().push(reference)

    monkeypatch.setattr(flows_container, "_pause", lambda seconds: None)
    publisher = TakesItsTime(aws)
    request = PublishRequest(version="2.0.0", context_dir=tmp_path, docker_timeout_seconds=1800)
    with on_operation(aws.get_client("ecr"), "after-call", twelve_hours, operation="GetAuthorizationToken"):
        result = publish_with(aws, publisher, request, now=lambda: clock[0])

    assert all(t >= dt.timedelta(minutes=30) for t in left), left
    assert not any("login having expired" in s for s in result.steps), result.steps
    assert any("sooner than a push may take (30 min, docker_timeout_seconds)" in s for s in result.steps), result.steps
    assert publisher.registry[f"{uri}:2.0.0"] == result.digest and result.task_definition is not None


@pytest.mark.parametrize("refused, minutes, retried", [
    ("2.0.0", (45, 30), True),  # the version's push outlives the login
    ("2.0.0", (1,), False),  # refused for another reason: not pushed again
])
def test_a_push_ecr_refuses_because_its_login_expired_during_it_is_pushed_again_after_a_new_login(
        aws, tmp_path, monkeypatch, watch_calls, refused, minutes, retried):
    """The login is asked for before the build, and checked again before each push against how
    long a push may take (docker_timeout_seconds), but a push of gigabytes can outlive that. ECR refused the rest
    of the push ("authorization token has expired"), and the run stopped with the image built
    and nothing (or only the version) pushed. It logs in again and pushes once more, docker
    sending only the layers not there yet; any other refusal stands."""
    import datetime as dt

    from rollway.toolchain.docker import PushRefused
    from tests.botocore_events import on_operation

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    registry = uri.split("/", 1)[0]
    ecr = aws.get_client("ecr")
    pushes = [dt.timedelta(minutes=m) for m in minutes]  # how long each push takes
    moved = [dt.timedelta(0)]
    expiry: dict[str, dt.datetime] = {}  # token -> when ECR stops taking it

    class Clock(dt.datetime):
        """The flow's clock, moved on by the build and by each push, as long as each takes."""

        @classmethod
        def now(cls, tz=None):
            return dt.datetime.now(tz) + moved[0]

    def twelve_hours(parsed, **_):  # as ECR gives them, on the run's clock, each its own (moto's are all one)
        data = parsed["authorizationData"][0]
        password = f"token-{len(expiry) + 1}"
        data["authorizationToken"] = base64.b64encode(f"AWS:{password}".encode()).decode()
        data["expiresAt"] = expiry[password] = Clock.now(dt.timezone.utc) + dt.timedelta(hours=12)

    class TakesItsTime(EcrBacked):
        """ECR as it takes a login: a push that ends after the token docker logged in with
        expired is refused, with ECR's words for it."""

        def __init__(self, aws) -> None:
            super().__init__(aws)
            self.passwords: list[str] = []
            self.expires: dt.datetime | None = None

        def login(self, registry, username, password):
            super().login(registry, username, password)
            self.passwords.append(password.get_secret_value())
            self.expires = expiry[password.get_secret_value()]

        def build(self, context_dir, **kwargs):
            image = super().build(context_dir, **kwargs)
            # 40 minutes left, more than a push may take (30): no new login before the pushes
            moved[0] += dt.timedelta(hours=11, minutes=20)
            return image

        def push(self, reference):
            moved[0] += pushes.pop(0)
            if not retried and reference.endswith(f":{refused}"):
                self.calls.append(f"push {reference}")
                raise PushRefused(reference, ["denied: User: arn:aws:sts::123456789012:assumed-role/release is not "
                                              "authorized to perform: ecr:InitiateLayerUpload"])
            if Clock.now(dt.timezone.utc) >= self.expires:
                self.calls.append(f"push {reference}")
                raise PushRefused(reference, [f"The push refers to repository [{reference.rsplit(':', 1)[0]}]", EXPIRED])
            return super().push(reference)

    monkeypatch.setattr(flows_container, "dt", SimpleNamespace(datetime=Clock, timezone=dt.timezone,
                                                               timedelta=dt.timedelta))
    publisher = TakesItsTime(aws)
    calls = watch_calls(ecr)
    request = PublishRequest(version="2.0.0", context_dir=tmp_path)
    with on_operation(ecr, "after-call", twelve_hours, operation="GetAuthorizationToken"):
        if not retried:
            with pytest.raises(PublishIncomplete, match="is not authorized to perform"):
                publish_with(aws, publisher, request)
            assert [c for c in publisher.calls if c.split()[0] in ("login", "push")] == [
                f"login {registry}", f"push {uri}:2.0.0"]
            assert calls.count("GetAuthorizationToken") == 1
            return
        result = publish_with(aws, publisher, request)

    assert calls.count("GetAuthorizationToken") == 2, calls
    assert publisher.passwords == list(expiry), "the push was tried again with the login ECR refused"
    again = f"{uri}:{refused}"
    assert [c for c in publisher.calls if c.split()[0] in ("login", "push")] == [
        f"login {registry}", f"push {again}", f"login {registry}", f"push {again}"]
    assert (f"logged in to {registry} again as AWS (private docker config): ECR refused the push of {again}, "
            "the login having expired during it" in result.steps), result.steps
    assert publisher.registry[f"{uri}:2.0.0"] == result.digest
    assert described(aws, result.task_definition)["containerDefinitions"][0]["image"] == f"{uri}@{result.digest}"

# What docker push prints when the network or the registry fails in passing (after its own
# retries of each layer), and when the registry refuses for good.
RESET = ('Put "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/webordinary/edit-container/blobs/uploads/'
         'abc?digest=sha256%3A1f": read tcp 10.0.3.7:41236->52.46.134.2:443: read: connection reset by peer')
HANDSHAKE = 'Get "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/": net/http: TLS handshake timeout'
IO_TIMEOUT = ('Head "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/webordinary/edit-container/blobs/sha256:'
              '1f": dial tcp 52.46.134.2:443: i/o timeout')
BAD_GATEWAY = "received unexpected HTTP status: 502 Bad Gateway"
IMMUTABLE = ("tag invalid: The image tag '2.0.0' already exists in the 'webordinary/edit-container' repository and "
             "cannot be overwritten because the repository is immutable.")


@pytest.mark.usefixtures("tokens_for_12_hours")
@pytest.mark.parametrize("said", [RESET, HANDSHAKE, IO_TIMEOUT, BAD_GATEWAY])
def test_a_push_the_network_failed_in_passing_is_pushed_again_after_a_wait_and_says_why(
        aws, tmp_path, monkeypatch, said):
    """A push that failed for a network reason (docker having retried each layer already) stopped
    the run with the image built and nothing pushed: a re-run built it all again. It is pushed
    again after a wait, the log saying why; docker sends only the layers the registry lacks."""
    from rollway.toolchain.docker import PushRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    waited: list[float] = []
    failing = {f"{uri}:2.0.0": 2}  # how many times the push fails first

    class Flaky(EcrBacked):
        def push(self, reference):
            if failing.get(reference):
                failing[reference] -= 1
                self.calls.append(f"push {reference}")
                raise PushRefused(reference, [f"The push refers to repository [{uri}]", "1f2e3d4c5b6a: Retrying in "
                                              "5 seconds", said])
            return super().push(reference)

    monkeypatch.setattr(flows_container, "_pause", waited.append)
    publisher = Flaky(aws)
    result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    assert [c for c in publisher.calls if c.startswith("push ")] == [f"push {uri}:2.0.0"] * 3
    first, second = flows_container.PUSH_RETRY_SECONDS[:2]
    assert waited == [first, second]
    assert publisher.registry[f"{uri}:2.0.0"] == result.digest
    again = [s for s in result.steps if s.startswith("push of ")]
    assert again[0] == (f"push of {uri}:2.0.0 failed for a reason that passes ({said}); pushing it again in "
                        f"{first:g} s (attempt 2 of {len(flows_container.PUSH_RETRY_SECONDS) + 1})"), result.steps
    assert described(aws, result.task_definition)["containerDefinitions"][0]["image"] == f"{uri}@{result.digest}"


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_layer_upload_ecr_refuses_names_the_release_policy_statement_that_grants_it(aws, tmp_path):
    """A push ECR refused for want of a permission (docker's "denied: ... is not authorized to perform:
    ecr:InitiateLayerUpload") reached the error and artifact as docker's bare text, told that re-running is
    safe, and a re-run built the image again to be refused the same way: every other refusal after the
    build (the registration, latest's move) names the release policy's statement to add."""
    from rollway.toolchain.docker import PushRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    denied = ("denied: User: arn:aws:sts::123456789012:assumed-role/release/worker is not authorized to perform: "
              "ecr:InitiateLayerUpload on resource: arn:aws:ecr:us-west-2:123456789012:repository/"
              f"{aws.targets.ecr_repository} because no identity-based policy allows the ecr:InitiateLayerUpload "
              "action")

    class Refused(EcrBacked):
        def push(self, reference):
            self.calls.append(f"push {reference}")
            raise PushRefused(reference, [f"The push refers to repository [{uri}]", "5f70bf18a086: Preparing", denied])

    with pytest.raises(PublishIncomplete) as failed:
        publish_with(aws, Refused(aws), PublishRequest(version="2.0.0", context_dir=tmp_path))

    message = str(failed.value)
    assert f"push {uri}:2.0.0 failed: AWS refused ecr:InitiateLayerUpload (" in message, message
    assert "iam-policy-release.json, statement ReadAndPushTheReleaseRepository: add that statement" in message, message
    assert "is not authorized to perform: ecr:InitiateLayerUpload" in message, message  # ECR's own words kept
    assert "ReadAndPushTheReleaseRepository" in artifact_markdown("2.0.0", "stopped", containing=uri)


@pytest.mark.usefixtures("tokens_for_12_hours")
@pytest.mark.parametrize("said, tries", [
    (RESET, "every"),  # bounded: then the run stops, saying how often it tried
    (IMMUTABLE, 1),  # refused for good: not pushed again, not waited on
    ("denied: User: arn:aws:sts::123456789012:assumed-role/release is not authorized to perform: "
     "ecr:InitiateLayerUpload", 1),
    ("unauthorized: authentication required", 1),
])
def test_a_push_is_pushed_again_a_bounded_number_of_times_and_never_after_a_refusal(
        aws, tmp_path, monkeypatch, said, tries):
    """Pushed again only while the failure is the network's, and only so often: a refusal the
    registry would make again (denied, an immutable tag) stops the run at once, whatever docker
    retried on the way."""
    from rollway.toolchain.docker import PushRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    waited: list[float] = []
    if tries == "every":
        tries = len(flows_container.PUSH_RETRY_SECONDS) + 1

    class Failing(EcrBacked):
        def push(self, reference):
            self.calls.append(f"push {reference}")
            # A layer's upload reset on the way (docker retried it), then what ended the push.
            raise PushRefused(reference, [f"The push refers to repository [{uri}]", RESET, said])

    monkeypatch.setattr(flows_container, "_pause", waited.append)
    publisher = Failing(aws)
    before = revisions(aws)
    with pytest.raises(PublishIncomplete) as failed:
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    assert [c for c in publisher.calls if c.startswith("push ")] == [f"push {uri}:2.0.0"] * tries
    assert waited == list(flows_container.PUSH_RETRY_SECONDS[:tries - 1])
    assert said in str(failed.value)
    if tries > 1:
        assert f"failed {tries} times" in str(failed.value), failed.value
    else:
        assert "pushed again" not in str(failed.value) and "times" not in str(failed.value)
    assert revisions(aws) == before  # nothing registered

@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_push_made_again_that_times_out_says_how_many_pushes_failed(aws, tmp_path, monkeypatch):
    """The first push failed in passing and was made again, and that one ran out its time: the error
    was docker's timeout alone, and read as the release's one push hanging, not its second."""
    from rollway.toolchain.docker import PushRefused
    from rollway.toolchain.process import ToolTimeout

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri

    class ResetThenHung(EcrBacked):
        def push(self, reference):
            self.calls.append(f"push {reference}")
            if self.calls.count(f"push {reference}") == 1:
                raise PushRefused(reference, [f"The push refers to repository [{uri}]", RESET])
            raise ToolTimeout(["docker", "push", reference], 1800, ["1f2e3d4c5b6a: Pushing  12.5MB/40MB"])

    monkeypatch.setattr(flows_container, "_pause", lambda seconds: None)
    publisher, before = ResetThenHung(aws), revisions(aws)
    with pytest.raises(PublishIncomplete) as failed:
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    message = str(failed.value)
    assert f"`docker push {uri}:2.0.0` did not finish within 1800 s" in message, message
    assert (f"the push of {uri}:2.0.0 was made 2 times, again after each failure that passes (as a connection reset "
            "or a registry's 5xx): this is the last one's failure") in message, message
    assert revisions(aws) == before


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_push_whose_answer_was_lost_after_the_registry_took_this_build_is_not_pushed_again(
        aws, tmp_path, monkeypatch):
    """docker's connection reset after the registry took the version's manifest: the run waited,
    pushed again, and on a repository with immutable tags ECR refused that as "already exists", so
    the run stopped with its own build in the registry and no revision, telling the operator to run
    again with register_existing. The registry is asked first: this run's build there is the push
    done, said so, with no wait and no second push."""
    from rollway.toolchain.docker import PushRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    waited: list[float] = []

    class AnswerLost(EcrBacked):
        def push(self, reference):
            if f"push {reference}" in self.calls:  # ECR's answer to the same version pushed again
                self.calls.append(f"push {reference}")
                raise PushRefused(reference, [f"The push refers to repository [{uri}]", IMMUTABLE])
            super().push(reference)  # the daemon pushed it, the registry holds it
            raise PushRefused(reference, [f"The push refers to repository [{uri}]", RESET])

    monkeypatch.setattr(flows_container, "_pause", waited.append)
    publisher = AnswerLost(aws)
    result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    assert [c for c in publisher.calls if c.startswith("push ")] == [f"push {uri}:2.0.0"]
    assert waited == []
    digest = publisher.registry[f"{uri}:2.0.0"]
    assert result.digest == digest
    assert (f"the push of {uri}:2.0.0 failed ({RESET}), yet the registry holds it as this run's build ({digest}): the push got that far, and it is not "
            "pushed again") in "\n".join(result.steps), result.steps
    assert described(aws, result.task_definition)["containerDefinitions"][0]["image"] == f"{uri}@{digest}"


class ClassicAnswerLost(EcrBacked):
    """docker's classic image store, whose push of the version reached ECR and then lost its answer:
    no record of it on the daemon (RepoDigests); the same version pushed again is refused (immutable)."""

    def push(self, reference):
        from rollway.toolchain.docker import PushRefused

        self.calls.append(f"push {reference}")
        said = f"The push refers to repository [{reference.rsplit(':', 1)[0]}]"
        if self.calls.count(f"push {reference}") > 1:  # ECR's answer to the same version pushed again
            raise PushRefused(reference, [said, IMMUTABLE])
        image_id = self.images[reference]
        put_manifest(self.ecr, self.repository, "2.0.0", image_id, config=image_id)  # no record on the daemon
        raise PushRefused(reference, [said, RESET])


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_lost_push_answer_on_the_classic_image_store_is_known_by_the_manifests_config_and_not_pushed_again(
        aws, tmp_path, monkeypatch):
    """The classic image store records a push (RepoDigests) only once the registry answered it, and
    its image id is not the manifest's digest but its config's: a push whose answer was lost after
    ECR took the manifest left no record on the daemon, the run pushed again after a wait, and on a
    repository with immutable tags stopped with its own build in the registry. The manifest ECR
    holds names this run's build as its config: that is the push done."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    waited: list[float] = []
    monkeypatch.setattr(flows_container, "_pause", waited.append)
    publisher = ClassicAnswerLost(aws)
    result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    assert [c for c in publisher.calls if c.startswith("push ")] == [f"push {uri}:2.0.0"] and waited == []
    digest = EcrRepository(aws.get_client("ecr"), aws.targets).image_digest("2.0.0")
    assert result.digest == digest and publisher.pushed == {}
    assert f"yet the registry holds it as this run's build ({digest})" in "\n".join(result.steps), result.steps
    assert f"{digest} is this run's build ({result.image_id})" in result.steps, result.steps
    assert described(aws, result.task_definition)["containerDefinitions"][0]["image"] == f"{uri}@{digest}"


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_lost_push_answer_whose_manifest_cannot_be_read_is_not_pushed_over_and_says_it_could_not_tell(
        aws, tmp_path, monkeypatch, independent_client):
    """As above, but ECR's manifest read fails: whose image the registry holds cannot be told. The run
    said only the push's own failure (a connection reset), the reason in its log alone; it says it
    could not tell, and pushes nothing over what may be another run's image."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    monkeypatch.setattr(flows_container, "_pause", lambda seconds: None)
    ecr = _refusing(independent_client("ecr"), "BatchGetImage", "ServerException")
    publisher, before = ClassicAnswerLost(aws), revisions(aws)
    with pytest.raises(PublishIncomplete) as caught:
        publish_with_clients(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path), ecr=ecr)

    assert [c for c in publisher.calls if c.startswith("push ")] == [f"push {uri}:2.0.0"]
    message, held = str(caught.value), EcrRepository(aws.get_client("ecr"), aws.targets).image_digest("2.0.0")
    assert (f"the push of {uri}:2.0.0 failed ({RESET}), and the registry holds {held} for it all the same, which is "
            f"not pushed over: could not tell whether {held}") in message, message
    assert "not allowed to BatchGetImage" in message and revisions(aws) == before
    advice = caught.value.advice  # register_existing only for this run's build, once that is told
    assert advice.startswith(f"first tell whose image {held} (what the registry holds for {uri}:2.0.0) is"), advice
    assert "if it names another, it is another run's image" in advice, advice


def test_a_lost_push_answer_on_another_registry_with_the_classic_image_store_is_known_by_its_manifests_config(
        aws, tmp_path, monkeypatch):
    """As on ECR (above), on a registry given as ``registry``: the manifest it holds for the
    version was not read there, so this run's own build, pushed with its answer lost, was pushed
    again after a wait, and on a registry with immutable tags the run stopped, saying the image there
    may be another run's. The registry's API names the manifest's config: this run's build."""
    from rollway.toolchain.docker import PushRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    registry, waited = "registry.example.com", []
    pulling_from(aws, registry)
    monkeypatch.setattr(flows_container, "_pause", waited.append)
    manifest = "sha256:" + "5" * 64  # the classic store's image id is its config's digest, not the manifest's

    class ClassicAnswerLost(FakeImagePublisher):
        def push(self, reference):
            self.calls.append(f"push {reference}")
            if self.calls.count(f"push {reference}") > 1:
                raise PushRefused(reference, ["tag invalid: the tag 2.0.0 is immutable and cannot be overwritten"])
            self.registry[reference], self.configs[manifest] = manifest, self.images[reference]  # no RepoDigest
            raise PushRefused(reference, [f"The push refers to repository [{registry}/{REPOSITORY}]", RESET])

    publisher = ClassicAnswerLost()
    result = publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path, registry=registry,
                                                         push_latest=False))

    assert [c for c in publisher.calls if c.startswith("push ")] == [f"push {registry}/{REPOSITORY}:2.0.0"]
    assert waited == [] and result.digest == manifest
    assert f"yet the registry holds it as this run's build ({manifest})" in "\n".join(result.steps), result.steps
    pinned = f"{registry}/{REPOSITORY}@{manifest}"
    assert described(aws, result.task_definition)["containerDefinitions"][0]["image"] == pinned


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_manifest_naming_another_build_as_its_config_is_not_this_runs_push(aws, tmp_path, monkeypatch):
    """Another run's image in the registry after this run's push failed, its config not this run's
    build: the failure stands, said so, and it is not pushed again (on a repository with immutable
    tags that was refused; see below for one with mutable tags)."""
    from rollway.toolchain.docker import PushRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    theirs = "sha256:" + "9" * 64
    monkeypatch.setattr(flows_container, "_pause", lambda seconds: None)

    class BeatenThenLost(EcrBacked):
        def push(self, reference):
            self.calls.append(f"push {reference}")
            if self.calls.count(f"push {reference}") > 1:
                raise PushRefused(reference, [f"The push refers to repository [{uri}]", IMMUTABLE])
            put_manifest(self.ecr, self.repository, "2.0.0", theirs, config=theirs)
            raise PushRefused(reference, [f"The push refers to repository [{uri}]", RESET])

    publisher = BeatenThenLost(aws)
    with pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path, push_latest=False))
    assert [c for c in publisher.calls if c.startswith("push ")] == [f"push {uri}:2.0.0"]
    assert "as this run's build" not in str(caught.value)
    assert caught.value.state and "register_existing=True" in caught.value.advice


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_another_runs_image_found_after_a_failed_push_is_never_pushed_over_on_a_mutable_repository(
        aws, tmp_path, monkeypatch):
    """Another run pushed the version while this run's push failed in passing: the run waited and
    pushed again, and on a repository with mutable tags (ECR's default) its push replaced the other
    run's image under the version, silently, and registered its own. It stops instead, naming both."""
    from rollway.toolchain.docker import PushRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    ecr = EcrRepository(aws.get_client("ecr"), aws.targets)
    theirs = "sha256:" + "9" * 64
    waited: list[float] = []
    monkeypatch.setattr(flows_container, "_pause", waited.append)

    class BeatenThenReset(EcrBacked):
        def push(self, reference):
            if f"push {reference}" in self.calls:  # pushed again: over the other run's image
                return super().push(reference)
            self.calls.append(f"push {reference}")
            self.theirs = put_manifest(self.ecr, self.repository, "2.0.0", theirs, config=theirs)
            raise PushRefused(reference, [f"The push refers to repository [{uri}]", RESET])

    publisher, before = BeatenThenReset(aws), revisions(aws)
    held = None
    with pytest.raises(PublishIncomplete) as caught:
        try:
            publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path, push_latest=False))
        finally:
            held = ecr.image_digest("2.0.0")

    assert [c for c in publisher.calls if c.startswith("push ")] == [f"push {uri}:2.0.0"] and waited == []
    assert held == publisher.theirs, "this run's push replaced the other run's image"
    assert revisions(aws) == before
    message = str(caught.value)
    built = publisher.images[f"{uri}:2.0.0"]  # this run's `docker tag`
    assert (f"the registry holds {held} for {uri}:2.0.0, which is not this run's build ({built})" in message
            ), message
    assert "pushed nothing over it" in message and "a new build needs a new version" in message, message
    assert f"is pushed ({held})" not in message and "this run's if its push got that far" not in message
    assert f"the registry holds {held}" in artifact_markdown("2.0.0", "stopped")


@pytest.mark.usefixtures("tokens_for_12_hours")
@pytest.mark.parametrize("answers_again", [True, False])
def test_a_push_after_a_registry_read_that_failed_is_made_again_only_once_the_registry_is_read_again(
        aws, tmp_path, monkeypatch, independent_client, answers_again):
    """This run's push failed in passing and ECR could not be read right after it (throttled): the
    run waited and pushed again blind, and another run's image pushed during the wait was replaced
    under the version (a repository with mutable tags, ECR's default) and this run's registered.
    The registry is read again before the push made again: the other run's image is not pushed
    over, and a registry still unread is pushed nothing."""
    from rollway.toolchain.docker import PushRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    theirs = "sha256:" + "8" * 64
    reads = {"refused": 0}
    ecr = independent_client("ecr")

    def throttled(**_):
        if reads["refused"]:
            reads["refused"] -= 1
            return SimpleNamespace(status_code=400, headers={}), {
                "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {}}
        return None

    ecr.meta.events.register("before-call.ecr.DescribeImages", throttled)
    waited: list[float] = []

    def another_run_pushes_meanwhile(seconds):
        waited.append(seconds)
        if not answers_again:
            return
        reads["refused"] = 0  # ECR answers again
        reads["theirs"] = put_manifest(aws.get_client("ecr"), aws.targets.ecr_repository, "2.0.0", theirs,
                                       config=theirs)

    monkeypatch.setattr(flows_container, "_pause", another_run_pushes_meanwhile)

    class ResetUnread(EcrBacked):
        def push(self, reference):
            if f"push {reference}" in self.calls:  # pushed again: over the other run's image
                return super().push(reference)
            self.calls.append(f"push {reference}")
            reads["refused"] = 99  # every read of ECR's (boto3's and the task's retries too) until the wait
            raise PushRefused(reference, [f"The push refers to repository [{uri}]", RESET])

    publisher, before = ResetUnread(aws), revisions(aws)
    with pytest.raises(PublishIncomplete) as caught:
        try:
            publish_with_clients(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path,
                                                                push_latest=False), ecr=ecr)
        finally:
            held = EcrRepository(aws.get_client("ecr"), aws.targets).image_digest("2.0.0")

    assert [c for c in publisher.calls if c.startswith("push ")] == [f"push {uri}:2.0.0"], publisher.calls
    assert held == reads.get("theirs"), "this run's push replaced the other run's image"
    assert revisions(aws) == before
    message = str(caught.value)
    if not answers_again:
        assert (f"the push of {uri}:2.0.0 failed ({RESET}), and the registry could not be read after it, nor again "
                "before pushing it again (ClientError: ") in message and "pushed nothing again" in message, message
        # Where things stand says what is known: not "nothing was pushed", not "not in the registry".
        assert f"whether the registry holds {uri}:2.0.0 is not known" in message, message
        assert "not in the registry" not in message and "nothing was pushed" not in message, message
        return
    assert f"the registry holds {held} for {uri}:2.0.0, which is not this run's build" in message, message
    assert "pushed nothing over it" in message, message


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_push_pushed_again_after_a_new_login_and_then_after_waits_counts_its_attempts_truly(
        aws, tmp_path, monkeypatch):
    """A push ECR refused for a login that expired during it is pushed once more after a new login,
    and that try is one of the push's attempts: the waits that follow said "attempt 5 of 4"."""
    from rollway.toolchain.docker import PushRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    waited: list[float] = []
    failing = [EXPIRED, RESET, RESET, RESET]  # what each push of the version ends with, first to last

    class Flaky(EcrBacked):
        def push(self, reference):
            if reference.endswith(":2.0.0") and failing:
                self.calls.append(f"push {reference}")
                raise PushRefused(reference, [f"The push refers to repository [{uri}]", failing.pop(0)])
            return super().push(reference)

    monkeypatch.setattr(flows_container, "_pause", waited.append)
    result = publish_with(aws, Flaky(aws), PublishRequest(version="2.0.0", context_dir=tmp_path))

    assert waited == list(flows_container.PUSH_RETRY_SECONDS)
    said = [s.rsplit("(", 1)[1] for s in result.steps if s.startswith(f"push of {uri}:2.0.0 failed")]
    assert said == ["attempt 3 of 5)", "attempt 4 of 5)", "attempt 5 of 5)"], said
    assert result.task_definition is not None


@pytest.mark.usefixtures("tokens_for_12_hours")
@pytest.mark.parametrize("said, logins", [
    ('Error response from daemon: Get "https://{registry}/v2/": net/http: TLS handshake timeout', 2),
    ("Error response from daemon: login attempt to https://{registry}/v2/ failed with status: 400 Bad Request", 1),
])
def test_a_docker_login_the_network_failed_in_passing_is_made_again_after_a_wait(
        aws, tmp_path, monkeypatch, said, logins):
    """The same network that fails a push fails a login: one before the pushes (a build that
    outlived the token) stopped the run with the image built, and a re-run rebuilt it. Every
    login (this one, the first) is made again after a wait, as a push is; one refused is not."""
    from rollway.toolchain.docker import LoginRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    registry = aws.topology.repository_uri.split("/", 1)[0]
    waited: list[float] = []
    failing = [said.format(registry=registry)]

    class Flaky(EcrBacked):
        def login(self, registry, username, password):
            if failing:
                self.calls.append(f"login {registry}")
                raise LoginRefused(registry, [failing.pop()])
            super().login(registry, username, password)

    monkeypatch.setattr(flows_container, "_pause", waited.append)
    publisher = Flaky(aws)
    request = PublishRequest(version="2.0.0", context_dir=tmp_path)
    if logins == 1:
        with pytest.raises(PublishIncomplete, match="400 Bad Request"):
            publish_with(aws, publisher, request)
        assert waited == [] and publisher.calls.count(f"login {registry}") == 1
        return
    result = publish_with(aws, publisher, request)
    assert publisher.calls.count(f"login {registry}") == 2
    assert waited == [flows_container.PUSH_RETRY_SECONDS[0]]
    assert any(s.startswith(f"docker login to {registry} failed for a reason that passes (") for s in result.steps)
    assert result.task_definition is not None


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_docker_login_that_fails_every_time_says_how_many_times_it_was_made(aws, tmp_path, monkeypatch):
    """Made again after each wait and failing every time, the login stopped the run with docker's
    last words alone, read as one login that failed once."""
    from rollway.toolchain.docker import LoginRefused

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    registry = aws.topology.repository_uri.split("/", 1)[0]

    class Unreachable(EcrBacked):
        def login(self, registry, username, password):
            self.calls.append(f"login {registry}")
            raise LoginRefused(registry, [f'Error response from daemon: Get "https://{registry}/v2/": net/http: TLS '
                                          "handshake timeout"])

    monkeypatch.setattr(flows_container, "_pause", lambda seconds: None)
    publisher = Unreachable(aws)
    with pytest.raises(PublishIncomplete) as failed:
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path))

    tries = len(flows_container.PUSH_RETRY_SECONDS) + 1
    assert publisher.calls.count(f"login {registry}") == tries
    assert (f"the docker login to {registry} was made {tries} times, again after each failure that passes"
            in str(failed.value)), failed.value


def test_a_worker_without_docker_is_refused_before_any_aws_call_and_says_so(aws, tmp_path, every_call):
    """The run logged in to ECR, then failed with a bare ToolMissing when it opened docker, and
    left no artifact: the key's newest one was still an earlier release's. Later it was refused,
    but only after reading ECR and ECS: a problem on the worker is said before AWS is asked."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container")
    # The flow makes its clients from the saved blocks: watch every client, not the test's.
    calls = {service: every_call(service) for service in ("sts", "ecr", "ecs")}
    with pytest.raises(PublishRefused, match="'/nonexistent/docker' does not exist.*install the docker CLI"):
        publish_container(version="2.0.0", context_dir=str(tmp_path), docker_executable=NO_DOCKER,
                          targets_block=blocks, aws_credentials_block=blocks)
    assert calls == {"sts": [], "ecr": [], "ecs": []}
    refused = artifact_markdown("2.0.0", "refused")
    assert "install the docker CLI" in refused and "Nothing was built, pushed or registered" in refused


def test_a_docker_daemon_that_does_not_answer_is_refused_before_any_aws_call(aws, tmp_path, every_call):
    # The real docker CLI, pointed at a socket nothing listens on.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container")
    calls = {service: every_call(service) for service in ("sts", "ecr", "ecs")}
    nowhere = f"unix://{tmp_path}/no-daemon.sock"
    with pytest.raises(PublishRefused, match=f"refused before building anything: no docker daemon answers at "
                                             f"{nowhere}"):
        publish_container(version="2.0.0", context_dir=str(tmp_path), docker_host=nowhere, targets_block=blocks,
                          aws_credentials_block=blocks)
    assert calls == {"sts": [], "ecr": [], "ecs": []}
    refused = artifact_markdown("2.0.0", "refused", containing=nowhere)
    assert "start dockerd" in refused and "Nothing was built, pushed or registered" in refused


def _flow_clients(monkeypatch, aws, ecr) -> None:
    """The flow's targets and clients: the embedded account's, with ``ecr`` for ECR."""
    monkeypatch.setattr(flows_container, "load_clients",
                        lambda *_: (aws.targets, lambda name: ecr if name == "ecr" else aws.get_client(name)))


def stopped_before_building(aws, monkeypatch, tmp_path, ecr, raised: type[BaseException], version: str,
                            outcome: str) -> tuple[BaseException, str]:
    """Run publish_container with ``ecr`` for ECR, expecting ``raised`` before any build: what it
    raised, and the artifact it left, whose heading says ``outcome``. Nothing is registered, and
    docker was only asked whether its daemon answers."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    _flow_clients(monkeypatch, aws, ecr)
    docker = FakeImagePublisher()
    monkeypatch.setattr(flows_container, "docker_session", lambda *_, **__: nullcontext(docker))
    before = revisions(aws)
    with pytest.raises(raised) as caught:
        publish_container(version=version, context_dir=str(tmp_path))
    assert revisions(aws) == before and docker.calls == DAEMON_ASKED
    return caught.value, artifact_markdown(version, outcome)


def test_a_role_ecr_refuses_the_repository_read_is_told_the_statement_and_the_run_says_it_failed(
        aws, tmp_path, independent_client, monkeypatch):
    """A refused DescribeRepositories came out as a bare ClientError, and the run left no
    artifact: the key's newest one was the previous release's, which read as this run's."""
    # A client of its own: the refusal must not outlive this test on the shared clients.
    refused = _refusing(independent_client("ecr"), "DescribeRepositories", "AccessDeniedException")
    caught, failed = stopped_before_building(aws, monkeypatch, tmp_path, refused, PermissionDenied, "2.8.0", "failed")

    message = str(caught)
    assert "AWS refused ecr:DescribeRepositories" in message
    assert "deployments/iam-policy-release.json, statement ReadAndPushTheReleaseRepository" in message
    assert "Nothing was pushed or registered" in failed
    assert "ecr:DescribeRepositories" in failed and "statement ReadAndPushTheReleaseRepository" in failed


def test_a_run_that_cannot_reach_ecr_leaves_an_artifact_saying_it_failed(aws, tmp_path, monkeypatch):
    with socket.socket() as free:  # a port nothing listens on: botocore's connection is refused at once
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    unreachable = boto3.client("ecr", endpoint_url=f"http://127.0.0.1:{port}", region_name=aws.targets.region,
                               aws_access_key_id="testing", aws_secret_access_key="testing",
                               config=BotoConfig(retries={"total_max_attempts": 1}))
    monkeypatch.setattr(container_steps, "describe_repository",
                        container_steps.describe_repository.with_options(retry_delay_seconds=0))
    _, failed = stopped_before_building(aws, monkeypatch, tmp_path, unreachable, EndpointConnectionError, "2.8.1",
                                        "failed")

    assert "Nothing was pushed or registered" in failed
    assert f"Could not connect to the endpoint URL: \"http://127.0.0.1:{port}/\"" in failed


@pytest.mark.parametrize("outage", ["unreachable", "503"])
def test_ecr_down_before_building_is_one_line_saying_nothing_was_done_and_what_to_do(
        aws, tmp_path, monkeypatch, independent_client, outage):
    # botocore's own words alone ("Could not connect to the endpoint URL", "An error occurred
    # (ServiceUnavailableException)") were all a release stopped by ECR's outage said: not that
    # nothing was built, pushed or registered, nor whether to fix the network or wait for AWS.
    monkeypatch.setattr(container_steps, "describe_repository",
                        container_steps.describe_repository.with_options(retry_delay_seconds=0))
    if outage == "unreachable":
        with socket.socket() as free:  # a port nothing listens on
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        ecr = boto3.client("ecr", endpoint_url=f"http://127.0.0.1:{port}", region_name=aws.targets.region,
                           aws_access_key_id="testing", aws_secret_access_key="testing",
                           config=BotoConfig(retries={"total_max_attempts": 1}))
        raised, remedy = EndpointConnectionError, "check the worker's network and proxy (HTTPS_PROXY)"
    else:
        ecr = _refusing(independent_client("ecr"), "DescribeRepositories", "ServiceUnavailableException", status=503)
        raised, remedy = ClientError, ("AWS did not answer DescribeRepositories (an outage, or a fault on the way), so "
                                       "nothing was built, pushed or registered: run again once it answers (the AWS "
                                       f"Health Dashboard says whether ECR or ECS is down in {aws.targets.region})")
    caught, failed = stopped_before_building(aws, monkeypatch, tmp_path, ecr, raised, "2.8.2", "failed")

    said = str(caught)
    assert "nothing was built, pushed or registered" in said and remedy in said, said
    assert "\n" not in said, said
    assert remedy in failed, failed


def test_a_family_moved_to_ecr_during_a_build_for_another_registry_is_not_told_to_push_again(aws, tmp_path):
    # Checked against a family pulling from the override registry; during the build the family
    # moved to ECR. The image is pushed by then: the old advice, to run again with
    # register_task_definition=False "to only push there", would only build and push it again.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    pulling_from(aws, "127.0.0.1:5999")
    container = described(aws, aws.targets.task_family)["containerDefinitions"][0]
    moved = {**container, "image": f"{aws.topology.repository_uri}:1.0.0"}
    publisher = registered_during_the_build(aws, containerDefinitions=[moved])(aws)

    with pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, publisher, PublishRequest(version="2.0.0", context_dir=tmp_path, registry="127.0.0.1:5999"))

    message = str(caught.value)
    assert "changed during the run, from" in message and f"to {publisher.registered[0]}" in message
    assert f"pulls from {aws.topology.repository_uri.split('/')[0]}" in message
    assert "127.0.0.1:5999/webordinary/edit-container:2.0.0 is pushed" in message
    assert "register_task_definition=False" not in message
    assert revisions(aws)[-1] == publisher.registered[0]


@contextmanager
def interrupted_at_latest(aws):
    """Ctrl-C (or a cancel from the UI) while latest is moved (ECR PutImage), the version pushed."""
    from tests.botocore_events import on_operation

    def interrupt(params, **_):
        if params.get("imageTag") == "latest":
            raise KeyboardInterrupt

    with on_operation(aws.get_client("ecr"), "before-parameter-build", interrupt, operation="PutImage"):
        yield


def test_a_run_interrupted_while_latest_moves_says_where_it_stands_and_logs_out(aws, tmp_path, caplog):
    # Ctrl-C (or a cancel from the UI, Prefect's TerminationSignal) during a step: the run used to
    # stop with no word of where it stood, and the key's newest artifact was still an earlier
    # release's.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri

    publisher = EcrBacked(aws)
    with interrupted_at_latest(aws), pytest.raises(KeyboardInterrupt):
        publish_with(aws, publisher, PublishRequest(version="2.7.0", context_dir=tmp_path))

    assert publisher.calls[-1].startswith("logout ") and publisher.logins == {}
    said = [r.getMessage() for r in caplog.records if "interrupted during" in r.getMessage()]
    assert said and f"move {uri}:latest" in said[0] and f"{uri}:2.7.0 is pushed" in said[0], caplog.text
    stopped = artifact_markdown("2.7.0", "stopped", containing=uri)
    assert f"move {uri}:latest to sha256:" in stopped and "was interrupted" in stopped, stopped
    assert "it may have finished" in stopped
    assert f"{uri}:2.7.0 is pushed" in stopped and "task definition arn:" in stopped, stopped
    assert "register_existing=True" in stopped


def test_a_push_only_run_interrupted_while_latest_moves_is_not_told_to_go_on_by_registering(aws, tmp_path):
    # register_task_definition=False: register_existing=True registers a revision the run was
    # never to register (and refuses a run without register_task_definition).
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri

    with interrupted_at_latest(aws), pytest.raises(KeyboardInterrupt):
        publish_with(aws, EcrBacked(aws), PublishRequest(version="2.7.1", context_dir=tmp_path,
                                                         register_task_definition=False))

    stopped = artifact_markdown("2.7.1", "stopped", containing=uri)
    assert f"{uri}:2.7.1 is pushed" in stopped, stopped
    advice = stopped.split("**To go on:**", 1)[1]
    assert "register_existing" not in advice and "latest" in advice, stopped


@pytest.mark.parametrize(("service", "operation", "message", "action", "statement"), [
    ("ecs", "RegisterTaskDefinition", "not allowed", "ecs:RegisterTaskDefinition", "RegisterTheReleaseRevision"),
    ("ecs", "DescribeTaskDefinition", "not allowed", "ecs:DescribeTaskDefinition", "RegisterTheReleaseRevision"),
    ("ecr", "DescribeImages", "not allowed", "ecr:DescribeImages", "ReadAndPushTheReleaseRepository"),
    ("ecs", "RegisterTaskDefinition",
     "User: arn:aws:sts::123456789012:assumed-role/release/worker is not authorized to perform: iam:PassRole on "
     "resource: arn:aws:iam::123456789012:role/AcmeStack-TaskRole-1A2B", "iam:PassRole",
     "PassTheTaskRolesTheRevisionCopies"),
])
def test_a_permission_aws_refuses_after_the_push_is_named_and_the_run_says_the_image_is_pushed(
        aws, tmp_path, independent_client, service, operation, message, action, statement):
    """A refusal after the build (the read before registering, the registration, the role it
    passes) reached the stopped run's error and artifact as AWS's bare text: no action, no
    statement of the release policy to add, though every refusal before the build named both."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    refused = independent_client(service)

    class RefusedOncePushed(EcrBacked):
        def push(self, reference):
            digest = super().push(reference)
            if reference.endswith(":2.9.0"):  # the role loses the permission once the version is pushed
                def refuse(**_):
                    return SimpleNamespace(status_code=400, headers={}), {
                        "Error": {"Code": "AccessDeniedException", "Message": message}, "ResponseMetadata": {}}
                refused.meta.events.register(f"before-call.{refused.meta.service_model.service_id.hyphenize()}."
                                             f"{operation}", refuse)
            return digest

    before = revisions(aws)

    @flow
    def refused_after_the_push():
        return run_publish(PublishRequest(version="2.9.0", context_dir=tmp_path),
                           lambda: (aws.targets, lambda name: refused if name == service else aws.get_client(name)),
                           open_publisher=lambda: nullcontext(RefusedOncePushed(aws)))

    with pytest.raises(PublishIncomplete) as caught:
        refused_after_the_push()

    said = str(caught.value)
    assert action in said and f"deployments/iam-policy-release.json, statement {statement}" in said, said
    assert "deployments/iam-policy.json," not in said, said  # the rollout's role is not the one refused
    assert f"{uri}:2.9.0 is pushed (sha256:" in said and "register_existing=True" in said, said
    assert revisions(aws) == before
    stopped = artifact_markdown("2.9.0", "stopped", containing=action)
    assert f"deployments/iam-policy-release.json, statement {statement}" in stopped, stopped
    assert f"{uri}:2.9.0 is pushed" in stopped and "register_existing=True" in stopped, stopped


def test_a_run_cancelled_before_building_leaves_an_artifact_saying_nothing_was_pushed(
        aws, tmp_path, independent_client, monkeypatch):
    """Cancelled or interrupted while it read ECR, before any build: the run left no artifact,
    and the key's newest one, the previous release's summary, read as this run's. Ctrl-C's
    KeyboardInterrupt stands for Prefect's cancel too, whose TerminationSignal takes the same way
    through the flow's code (and then ends the process, so it is not raised here)."""
    ecr = independent_client("ecr")

    def interrupted(**_):
        raise KeyboardInterrupt

    ecr.meta.events.register("before-call.ecr.DescribeImages", interrupted)
    _, cancelled = stopped_before_building(aws, monkeypatch, tmp_path, ecr, KeyboardInterrupt, "2.9.1", "cancelled")
    assert "Nothing was built, pushed or registered" in cancelled, cancelled


def test_a_run_cancelled_as_docker_opens_says_nothing_was_built(aws, tmp_path, watch_calls):
    """Cancelled as docker's session opened: the run left no artifact, though one cancelled
    during the reads left "cancelled" and one stopped during a docker step "stopped"; the key's
    newest artifact was still an earlier release's. Docker opens first, before any AWS call."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    publisher = EcrBacked(aws)

    @contextmanager
    def cancelled_as_it_opens():
        raise KeyboardInterrupt
        yield publisher

    before = revisions(aws)
    ecr_calls, ecs_calls = watch_calls(aws.get_client("ecr")), watch_calls(aws.get_client("ecs"))
    with pytest.raises(KeyboardInterrupt):
        in_a_flow_run("cancelled-before-docker", lambda: run_publish(
            PublishRequest(version="2.9.2", context_dir=tmp_path), lambda: (aws.targets, aws.get_client),
            open_publisher=cancelled_as_it_opens))

    assert publisher.calls == [] and ecr_calls == ecs_calls == []
    assert revisions(aws) == before
    cancelled = artifact_markdown("2.9.2", "cancelled")
    assert "Nothing was built, pushed or registered" in cancelled, cancelled


def test_a_run_interrupted_during_its_push_registers_the_version_only_once_told_it_is_its_build(aws, tmp_path):
    """Interrupted during the push (Ctrl-C, the UI's Cancel): the push may have finished, or another
    run of the same version may have pushed. "register_existing=True then registers it" registered,
    and moved latest to, whatever image the registry held for the version, whoever built it."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri

    class InterruptedDuringThePush(EcrBacked):
        def push(self, reference):
            raise KeyboardInterrupt

    publisher, before = InterruptedDuringThePush(aws), revisions(aws)
    with pytest.raises(KeyboardInterrupt):
        publish_with(aws, publisher, PublishRequest(version="2.9.4", context_dir=tmp_path))

    assert revisions(aws) == before
    built = publisher.images[f"{uri}:2.9.4"]
    stopped = artifact_markdown("2.9.4", "stopped")
    advice = stopped.split("**To go on:** ", 1)[1]
    assert advice.startswith("run again: it asks the registry first, and a version that is there is refused; if it "
                             f"is refused, first tell whose image the registry holds for {uri}:2.9.4: if its manifest "
                             f"names {built} as its config, it is this run's build, and register_existing=True "
                             "registers it without rebuilding; if it names another, it is another run's image"), advice
    assert "then registers it" not in advice, advice


def test_a_run_interrupted_between_its_last_push_and_registering_says_what_is_pushed(aws, tmp_path):
    # Interrupted while logging out of the registry, every reference pushed and no step running:
    # the run left no artifact, and nothing said the version is in the registry.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri

    class InterruptedAtLogout(EcrBacked):
        def logout(self, registry):
            raise KeyboardInterrupt

    before = revisions(aws)
    with pytest.raises(KeyboardInterrupt):
        publish_with(aws, InterruptedAtLogout(aws), PublishRequest(version="2.9.3", context_dir=tmp_path))

    assert revisions(aws) == before
    stopped = artifact_markdown("2.9.3", "stopped")
    assert f"{uri}:2.9.3 is pushed" in stopped and f"{uri}:latest was not moved to {uri}:2.9.3" in stopped, stopped
    assert "no task definition was registered" in stopped and "register_existing=True" in stopped, stopped


def test_the_flow_and_run_publish_refuse_a_worker_without_docker_alike(aws, tmp_path, every_call):
    """The flow the Prefect UI runs is run_publish's one body: a refusal reads the same either
    way, before any AWS call (the credentials' STS check included), and each run leaves the
    artifact saying nothing was built, pushed or registered. run_publish, which most tests here
    drive, wrote no artifact for a refusal: only the flow's own copy of its body did."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container")
    calls = {service: every_call(service) for service in ("sts", "ecr", "ecs")}

    with pytest.raises(PublishRefused) as by_flow:
        publish_container(version="3.0.0", context_dir=str(tmp_path), docker_executable=NO_DOCKER,
                          targets_block=blocks, aws_credentials_block=blocks)
    with pytest.raises(PublishRefused) as by_run:
        in_a_flow_run("no-docker", lambda: run_publish(
            PublishRequest(version="3.0.1", context_dir=tmp_path, docker_executable=NO_DOCKER),
            lambda: (aws.targets, aws.get_client), open_publisher=lambda: flows_container.docker_session(NO_DOCKER)))

    assert str(by_flow.value) == str(by_run.value) and "install the docker CLI" in str(by_run.value)
    assert calls == {"sts": [], "ecr": [], "ecs": []}
    for version in ("3.0.0", "3.0.1"):
        refused = artifact_markdown(version, "refused")
        assert str(by_run.value) in refused and "Nothing was built, pushed or registered" in refused, refused


def test_targets_of_another_account_are_refused_before_any_aws_read_or_docker_build(aws, tmp_path, flows_docker,
                                                                                     every_call):
    # The repository and the task family are looked up in the credentials' account: a release
    # for a service the targets place in another account was pushed and registered in this one.
    # Refused as the run's session is loaded (flows.env.load_session), as for every flow.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    blocks = saved_blocks(aws, "container", fresh=True)
    theirs = "arn:aws:ecs:us-west-2:111122223333:cluster/webordinary-edit-cluster"
    RollwayTargets(**{**aws.targets.model_dump(), "cluster": theirs}).save(blocks, overwrite=True)
    ecr_calls, ecs_calls = every_call("ecr"), every_call("ecs")
    with pytest.raises(AccountNotLoaded, match="111122223333.*credentials are of account 123456789012"):
        publish_container(version="2.0.0", context_dir=str(tmp_path), targets_block=blocks,
                          aws_credentials_block=blocks)
    assert (ecr_calls, ecs_calls) == ([], [])
    assert flows_docker.calls == DAEMON_ASKED
    assert "Nothing was pushed or registered" in artifact_markdown("2.0.0", "failed", containing="111122223333")
