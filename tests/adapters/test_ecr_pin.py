"""EcrImagePinner against the embedded AWS: a rollout's tag is pinned to the digest it names now."""

from __future__ import annotations

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


def test_an_image_in_ecr_of_another_region_is_refused(aws, pinner):
    with pytest.raises(ImageNotPinned, match="is in ECR in eu-west-1, and rollway reads ECR in the targets' region"):
        pinner.pin("123456789012.dkr.ecr.eu-west-1.amazonaws.com/webordinary/edit-container:2.0.0")


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
