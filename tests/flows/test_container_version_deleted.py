"""A version's tag deleted from ECR after a run pushed it: what register_existing (the way on
after a run that stopped before registering) and the pushing run itself then say and do, on the
embedded ECR with the image publisher faked (moto's ECR has no registry API)."""

from __future__ import annotations

from contextlib import nullcontext

import pytest

from flows.container import run_publish
from rollway.aws.ecr import EcrRepository
from rollway.fakes import FakeImagePublisher
from rollway.publish import PublishIncomplete, PublishRefused, PublishRequest
from tests.botocore_events import on_operation
from tests.flows.moto_env import in_a_flow_run
from tests.flows.test_container_flow import EcrBacked, artifact_markdown, publish_with, put_manifest, revisions
from tests.flows.test_container_flow import tokens_for_12_hours  # noqa: F401 - the fixture


def delete_tag(aws, tag: str) -> None:
    """Delete ``tag`` from the release repository, as a person in the console or a lifecycle rule does."""
    aws.get_client("ecr").batch_delete_image(repositoryName=aws.targets.ecr_repository, imageIds=[{"imageTag": tag}])


def the_way_on_is_to_publish_again(said: str) -> None:
    """``said`` tells its person to build and push the version again, with the parameters that
    do it: register_existing=True again would be refused, the version being gone."""
    assert "context_dir=" in said and "without register_existing" in said, said
    assert "register_existing=True" not in said, said


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_register_existing_of_a_version_deleted_since_its_push_says_to_publish_it_again(aws, tmp_path):
    # The release run pushed 2.0.0 and stopped (its daemon gone); someone deleted the 2.0.0 tag;
    # register_existing, the way on the stopped run named, finds no image for the version.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri
    class DaemonGone(EcrBacked):  # the daemon stops answering right after the push
        def pushed_as(self, image):
            raise RuntimeError("Cannot connect to the Docker daemon")

    with pytest.raises(PublishIncomplete):
        publish_with(aws, DaemonGone(aws), PublishRequest(version="2.0.0", context_dir=tmp_path))
    delete_tag(aws, "2.0.0")
    before = revisions(aws)

    with pytest.raises(PublishRefused) as caught:
        publish_with(aws, FakeImagePublisher(), PublishRequest(version="2.0.0", register_existing=True))

    said = str(caught.value)
    assert f"{uri}:2.0.0 is not in the registry" in said, said
    assert "publish_container" in said and "version='2.0.0'" in said, said
    the_way_on_is_to_publish_again(said)
    assert revisions(aws) == before
    assert said.removeprefix("refused before building anything: ") in artifact_markdown("2.0.0", "refused")


def register_existing_changed_after_its_read(aws, independent_client, change, push_latest: bool) -> str:
    """What register_existing of 2.0.0 raises when ``change()`` is done right after the run first
    reads the version in ECR (another actor's client does it); no revision may be registered."""
    watched, changed = independent_client("ecr"), []

    def after_the_read(parsed, **_):
        if parsed.get("imageDetails") and "2.0.0" in parsed["imageDetails"][0].get("imageTags", []) and not changed:
            changed.append(change())

    before = revisions(aws)
    with on_operation(watched, "after-call", after_the_read, operation="DescribeImages"), \
            pytest.raises(PublishIncomplete) as caught:
        in_a_flow_run("publish-with", lambda: run_publish(
            PublishRequest(version="2.0.0", register_existing=True, push_latest=push_latest),
            lambda: (aws.targets, lambda service: watched if service == "ecr" else aws.get_client(service)),
            open_publisher=lambda: nullcontext(FakeImagePublisher())))
    assert changed, "the run never read the version"
    assert revisions(aws) == before
    return str(caught.value)


@pytest.mark.parametrize("push_latest", [False, True])
def test_a_version_deleted_after_register_existing_read_it_is_not_registered(aws, independent_client, push_latest):
    # The tag (the image's only one) is deleted right after the run found it: a revision pinning
    # its digest is one no task can pull, and "run again with register_existing=True" is refused.
    put_manifest(aws.get_client("ecr"), aws.targets.ecr_repository, "2.0.0", "sha256:" + "a" * 64)

    said = register_existing_changed_after_its_read(aws, independent_client, lambda: delete_tag(aws, "2.0.0"),
                                                    push_latest)

    assert f"{aws.topology.repository_uri}:2.0.0 is no longer in the registry" in said, said
    the_way_on_is_to_publish_again(said)
    assert "no task definition was registered" in said, said


@pytest.mark.usefixtures("tokens_for_12_hours")
def test_a_version_deleted_between_its_push_and_the_check_before_registering_says_a_re_run_is_safe(aws, tmp_path):
    # The run's own push, deleted before the run asks ECR for it right before registering: the
    # run said "register_existing=True would register the image the registry holds now" and
    # "the version is in the registry", both untrue, and register_existing is refused.
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    uri = aws.topology.repository_uri

    class DeletedAfterItsPush(EcrBacked):
        def push(self, reference):
            digest = super().push(reference)
            if reference.endswith(":2.0.0"):
                delete_tag(aws, "2.0.0")
            return digest

    before = revisions(aws)
    with pytest.raises(PublishIncomplete) as caught:
        publish_with(aws, DeletedAfterItsPush(aws), PublishRequest(version="2.0.0", context_dir=tmp_path,
                                                                   push_latest=False))

    said = str(caught.value)
    assert revisions(aws) == before
    assert f"{uri}:2.0.0 is no longer in the registry" in said, said
    assert "register_existing=True" not in said, said
    assert "re-running with the same version is safe" in said, said


def test_a_version_pushed_over_after_register_existing_read_it_is_not_registered_and_said_so(aws, independent_client):
    # Deleted and pushed again (another build under the same version) after the run found it:
    # the run must not pin the image it read, nor say it pushed one.
    ecr, name = aws.get_client("ecr"), aws.targets.ecr_repository
    found = put_manifest(ecr, name, "2.0.0", "sha256:" + "a" * 64)

    said = register_existing_changed_after_its_read(
        aws, independent_client, lambda: put_manifest(ecr, name, "2.0.0", "sha256:" + "b" * 64), push_latest=False)

    other = EcrRepository(ecr, aws.targets).image_digest("2.0.0")
    assert f"the registry now holds {other} for {aws.topology.repository_uri}:2.0.0, not {found} which this run " \
           "found" in said, said
    # The way on registers what the registry holds now, leaving latest alone as this run was asked.
    assert "register_existing=True and push_latest=False would register the image the registry holds now" in said
