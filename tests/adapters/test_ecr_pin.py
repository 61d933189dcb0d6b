"""EcrImagePinner against the embedded AWS: a rollout's tag is pinned to the digest it names now."""

from __future__ import annotations

import json

import pytest

from rollway.aws.ecr import EcrImagePinner
from rollway.image import ImageNotPinned
from tests.flows.moto_env import put_image


@pytest.fixture
def pinner(aws) -> EcrImagePinner:
    return EcrImagePinner(aws.get_client("ecr"), aws.targets)


def test_a_tag_is_pinned_to_the_digest_it_names_now(aws, pinner):
    first = put_image(aws, "2.0.0", "a")
    image = f"{aws.topology.repository_uri}:2.0.0"
    assert pinner.pin(image) == f"{aws.topology.repository_uri}@{first}"
    moved = put_image(aws, "2.0.0", "b")  # the tag pushed again: a new pin follows it
    assert moved != first and pinner.pin(image) == f"{aws.topology.repository_uri}@{moved}"


def test_an_image_given_by_digest_is_used_as_is_without_asking_ecr(aws):
    image = "registry.example.com/team/app:1.0@sha256:" + "d" * 64

    class NoCalls:
        def __getattr__(self, name):
            raise AssertionError(f"ECR was asked ({name})")

    assert EcrImagePinner(NoCalls(), aws.targets).pin(image) == image


def test_a_tag_the_repository_does_not_hold_is_refused_naming_it(aws, pinner):
    put_image(aws, "2.0.0", "a")
    with pytest.raises(ImageNotPinned, match=r"holds no tag '2\.0\.1'; push it") as refused:
        pinner.pin(f"{aws.topology.repository_uri}:2.0.1")
    assert "\n" not in str(refused.value)


def test_a_missing_repository_is_refused_naming_it(aws, pinner):
    registry = aws.topology.repository_uri.split("/", 1)[0]
    with pytest.raises(ImageNotPinned, match="no ECR repository webordinary/missing"):
        pinner.pin(f"{registry}/webordinary/missing:1.0.0")


@pytest.mark.parametrize("image", ["nginx:1.25", "localhost:5000/webordinary/edit-container:2.0.0",
                                   "ghcr.io/webordinary/edit-container:2.0.0"])
def test_an_image_outside_ecr_is_refused_naming_the_digest_remedy(pinner, image):
    with pytest.raises(ImageNotPinned, match=r"not in an ECR registry.*give the image by digest instead"):
        pinner.pin(image)


def test_an_image_in_ecr_of_another_region_is_refused_without_a_client_there(aws, pinner):
    with pytest.raises(ImageNotPinned, match="is in ECR in eu-west-1, and rollway reads ECR in the targets' region"):
        pinner.pin("123456789012.dkr.ecr.eu-west-1.amazonaws.com/webordinary/edit-container:2.0.0")


def shared_registry(_get_client_for_region, region: str = "eu-west-1") -> tuple[str, str]:
    """A shared-services repository in ``region`` holding ``:2.0.0``: (its URI, the image's digest)."""
    ecr = _get_client_for_region(region)("ecr")
    uri = ecr.create_repository(repositoryName="shared/edit-container")["repository"]["repositoryUri"]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                                      "digest": "sha256:" + "c" * 64}, "layers": []})
    digest = ecr.put_image(repositoryName="shared/edit-container", imageManifest=manifest,
                           imageTag="2.0.0")["image"]["imageId"]["imageDigest"]
    return uri, digest


def test_a_tag_in_ecr_of_another_region_is_pinned_there(aws, _get_client_for_region):
    uri, digest = shared_registry(_get_client_for_region)
    asked = []

    def clients_in(region):
        asked.append(region)
        return _get_client_for_region(region)("ecr")

    pinner = EcrImagePinner(aws.get_client("ecr"), aws.targets).reading_regions(clients_in)
    assert pinner.pin(f"{uri}:2.0.0") == f"{uri}@{digest}"
    assert asked == ["eu-west-1"]
    with pytest.raises(ImageNotPinned, match=r"holds no tag '9\.9\.9'"):
        pinner.pin(f"{uri}:9.9.9")
    with pytest.raises(ImageNotPinned, match=r"no ECR repository shared/missing in account 123456789012 \(eu-west-1\)"):
        pinner.pin(uri.replace("shared/edit-container", "shared/missing") + ":2.0.0")
    # The release repository in the targets' region is still read with the run's own client.
    put_image(aws, "2.0.0", "a")
    pinner.pin(f"{aws.topology.repository_uri}:2.0.0")
    assert asked == ["eu-west-1"] * 3


SHARED = "210987654321.dkr.ecr.us-west-2.amazonaws.com/platform/edit-container"


def denying(client, account: str = "210987654321", region: str = "us-west-2"):
    from botocore.stub import Stubber

    stub = Stubber(client)
    stub.add_client_error(
        "describe_images", service_error_code="AccessDeniedException",
        service_message=f"User: arn:aws:sts::123456789012:assumed-role/worker/x is not authorized to perform: "
                        f"ecr:DescribeImages on resource: arn:aws:ecr:{region}:{account}:repository/platform/"
                        "edit-container because no resource-based policy allows the ecr:DescribeImages action")
    return stub


@pytest.mark.parametrize("image", [f"{SHARED}:2.0.0",
                                   SHARED.replace("platform", "webordinary") + ":2.0.0"],
                         ids=["another repository", "same name, another account"])
def test_a_tag_in_another_accounts_registry_the_role_may_not_read_is_refused_naming_registry_and_remedy(aws, image):
    client = aws.get_client("ecr")
    with denying(client), pytest.raises(ImageNotPinned) as refused:
        EcrImagePinner(client, aws.targets).pin(image)
    said = str(refused.value)
    assert "\n" not in said
    assert said.startswith(f"image {image!r}: AWS refused ecr:DescribeImages on repository ")
    assert "of registry 210987654321.dkr.ecr.us-west-2.amazonaws.com (AccessDeniedException: User: " in said
    # Whose permission it is as every refusal says it: a person pinning with their own credentials was sent to
    # "the worker's role".
    assert ("): the role or user these credentials belong to (the worker's role, for a flow run) may not read it, "
            "so rollway cannot pin its tag") in said
    assert ("Allow ecr:DescribeImages on that repository to that role or user (deployments/iam-policy.json, "
            "statement PinImagesOfASharedRegistry)") in said
    assert "in that repository's policy; or give the image by digest instead (" in said


def test_a_digest_in_a_registry_the_role_may_not_read_is_used_as_given(aws):
    client = aws.get_client("ecr")
    image = f"{SHARED}@sha256:" + "d" * 64
    with denying(client):
        assert EcrImagePinner(client, aws.targets).pin(image) == image


def test_a_digest_of_the_targets_ecr_is_checked_before_it_is_used_as_is(aws, pinner):
    held = put_image(aws, "2.0.0", "a")
    repository = aws.topology.repository_uri
    assert pinner.pin(f"{repository}@{held}") == f"{repository}@{held}"
    assert pinner.pin(f"{repository}:2.0.0@{held}") == f"{repository}:2.0.0@{held}"
    # A mistyped digest would register a revision no task can pull, found out at the first scale-up.
    with pytest.raises(ImageNotPinned, match=r"holds no image sha256:f{64}; push it"):
        pinner.pin(f"{repository}@sha256:" + "f" * 64)


def test_a_role_without_describe_images_is_told_which_statement_grants_it(aws):
    from botocore.stub import Stubber

    from rollway.aws.denied import PermissionDenied

    client = aws.get_client("ecr")
    stub = Stubber(client)
    stub.add_client_error(
        "describe_images", service_error_code="AccessDeniedException",
        service_message="User: arn:aws:sts::123456789012:assumed-role/worker/x is not authorized to perform: "
                        "ecr:DescribeImages on resource: arn:aws:ecr:us-west-2:123456789012:repository/"
                        "webordinary/edit-container because no identity-based policy allows the "
                        "ecr:DescribeImages action")
    with stub, pytest.raises(PermissionDenied) as denied:
        EcrImagePinner(client, aws.targets).pin(f"{aws.topology.repository_uri}:2.0.0")
    assert "AWS refused ecr:DescribeImages" in str(denied.value)
    assert "it is granted by deployments/iam-policy.json, statement PinTheImageToItsDigest" in str(denied.value)
