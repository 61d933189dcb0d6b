"""EcrRepository against the embedded AWS: URI, login, tags, immutability."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from rollway.aws.ecr import EcrRepository, HeldImage, PlatformUnknown, Repository
from rollway.aws.errors import AdapterError, TargetNotFound
from rollway.image import LATEST
from rollway.targets import Targets

MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
               "digest": "sha256:" + "1" * 64},
    "layers": [],
})


@pytest.fixture
def repository(aws) -> EcrRepository:
    return EcrRepository(aws.get_client("ecr"), aws.targets)


def test_the_repository_uri_and_registry_are_ecrs(aws, repository):
    found = repository.describe()
    assert repository.uri() == found.uri == aws.topology.repository_uri
    assert found.uri == f"{found.registry}/{aws.targets.ecr_repository}"
    assert found.registry.endswith(f".dkr.ecr.{aws.targets.region}.amazonaws.com")
    assert found.tag_mutability == "MUTABLE" and not found.tag_immutable(LATEST)


def test_a_missing_repository_is_named(aws):
    missing = EcrRepository(aws.get_client("ecr"), Targets(ecr_repository="webordinary/no-such-repo"))
    with pytest.raises(TargetNotFound, match="ECR repository 'webordinary/no-such-repo' not found"):
        missing.describe()
    with pytest.raises(TargetNotFound, match="no-such-repo"):
        missing.image_digest("1.0.0")


def test_login_decodes_the_token_and_keeps_the_password_secret(aws, repository):
    answer = aws.get_client("ecr").get_authorization_token()["authorizationData"][0]
    expected_password = base64.b64decode(answer["authorizationToken"]).decode().split(":", 1)[1]

    login = repository.login()

    assert login.registry == repository.describe().registry  # the proxyEndpoint without https://
    assert login.username == "AWS"
    assert login.password.get_secret_value() == expected_password
    for shown in (repr(login), str(login), login.model_dump_json()):
        assert expected_password not in shown


class _Answers:
    """An ecr client answering GetAuthorizationToken with a given token (moto has one token)."""

    def __init__(self, token: str, endpoint: str = "https://123456789012.dkr.ecr.us-west-2.amazonaws.com"):
        self.answer = {"authorizationData": [{"authorizationToken": token, "proxyEndpoint": endpoint}]}

    def get_authorization_token(self):
        return self.answer


@pytest.mark.parametrize(("token", "why"), [
    ("not base64!", "does not decode"),
    (base64.b64encode(b"no-colon").decode(), "not <user>:<password>"),
    (base64.b64encode(b"AWS:").decode(), "not <user>:<password>"),
])
def test_a_token_that_does_not_decode_is_refused_without_showing_it(token, why):
    with pytest.raises(AdapterError, match=why) as caught:
        EcrRepository(_Answers(token), Targets()).login()
    assert token not in str(caught.value)


def test_tag_existence_follows_the_images_pushed(aws, repository):
    ecr = aws.get_client("ecr")
    assert repository.image_digest("2.0.0") is None and not repository.tag_exists("2.0.0")
    pushed = ecr.put_image(repositoryName=aws.targets.ecr_repository, imageManifest=MANIFEST,
                           imageTag="2.0.0")["image"]["imageId"]["imageDigest"]
    assert repository.image_digest("2.0.0") == pushed
    assert repository.tag_exists("2.0.0")
    assert not repository.tag_exists("2.0.1")


def archived(client, status: str = "ARCHIVED"):
    """``client`` answering DescribeImages with one image in ``status`` (moto reports no imageStatus)."""
    def answer(**_):
        return SimpleNamespace(status_code=200, headers={}), {
            "imageDetails": [{"imageDigest": "sha256:" + "a" * 64, "imageTags": ["2.0.0"], "imageStatus": status}],
            "ResponseMetadata": {}}

    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.DescribeImages",
                                answer)
    return client


def test_an_images_status_is_read_and_absent_means_active(aws, repository, independent_client):
    ecr = aws.get_client("ecr")
    assert repository.image("2.0.0") is None
    pushed = ecr.put_image(repositoryName=aws.targets.ecr_repository, imageManifest=MANIFEST,
                           imageTag="2.0.0")["image"]["imageId"]["imageDigest"]
    held = repository.image("2.0.0")  # moto: no imageStatus; when it was pushed, which register_existing compares
    assert held == HeldImage(digest=pushed, status="ACTIVE", pushed_at=held.pushed_at) and held.pushed_at is not None
    stubbed = EcrRepository(archived(independent_client("ecr")), aws.targets)
    assert stubbed.image("2.0.0") == HeldImage(digest="sha256:" + "a" * 64, status="ARCHIVED")


def test_immutable_tags_are_read_from_the_repository(aws, repository):
    ecr = aws.get_client("ecr")
    ecr.put_image_tag_mutability(repositoryName=aws.targets.ecr_repository, imageTagMutability="IMMUTABLE")
    found = repository.describe()
    assert found.tag_mutability == "IMMUTABLE"
    assert found.tag_immutable(LATEST) and found.tag_immutable("2.0.0")


@pytest.mark.parametrize(("mutability", "filters", "latest", "version"), [
    ("MUTABLE", (), False, False),
    ("IMMUTABLE", (), True, True),
    ("IMMUTABLE_WITH_EXCLUSION", ("latest",), False, True),
    ("IMMUTABLE_WITH_EXCLUSION", ("dev-*",), True, True),
    ("MUTABLE_WITH_EXCLUSION", ("2.*",), False, True),
])
def test_tag_immutability_with_exclusions(mutability, filters, latest, version):
    repository = Repository(name="r", uri="x.example.com/r", registry="x.example.com", tag_mutability=mutability,
                            exclusion_filters=filters)
    assert (repository.tag_immutable(LATEST), repository.tag_immutable("2.0.0")) == (latest, version)


def index_manifest(*platforms: tuple[str, str]) -> str:
    """An OCI image index with one manifest per (os, architecture)."""
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": f"sha256:{i:064x}",
         "platform": {"os": system, "architecture": architecture}}
        for i, (system, architecture) in enumerate(platforms, 1)]})


def test_the_platforms_of_an_image_index_are_read_from_its_manifest(aws, repository):
    ecr = aws.get_client("ecr")
    # buildx adds an unknown/unknown entry per platform for its attestations: not a platform.
    ecr.put_image(repositoryName=aws.targets.ecr_repository, imageTag="2.0.0",
                  imageManifest=index_manifest(("linux", "arm64"), ("unknown", "unknown")),
                  imageManifestMediaType="application/vnd.oci.image.index.v1+json")
    assert repository.image_platforms("2.0.0") == ("linux/arm64",)


def test_the_config_an_images_manifest_names_is_read_by_its_digest(aws, repository):
    # The classic image store's image id: how a build is known in ECR when the daemon recorded no push of it.
    ecr = aws.get_client("ecr")
    single = ecr.put_image(repositoryName=aws.targets.ecr_repository, imageTag="2.0.0",
                           imageManifest=MANIFEST)["image"]["imageId"]["imageDigest"]
    index = ecr.put_image(repositoryName=aws.targets.ecr_repository, imageTag="2.0.1",
                          imageManifest=index_manifest(("linux", "amd64")),
                          imageManifestMediaType="application/vnd.oci.image.index.v1+json")["image"]["imageId"]
    assert repository.config_digest(single) == "sha256:" + "1" * 64
    assert repository.config_digest(index["imageDigest"]) is None  # an index names no one config


def test_a_platform_ecr_cannot_tell_says_why(aws, repository):
    # A single-platform manifest's platform is in its config blob, which moto's ECR does not
    # serve (GetDownloadUrlForLayer).
    aws.get_client("ecr").put_image(repositoryName=aws.targets.ecr_repository, imageManifest=MANIFEST, imageTag="2.0.0")
    with pytest.raises(PlatformUnknown, match=r"no download URL for its config sha256:1{64} \(GetDownloadUrlForLayer"):
        repository.image_platforms("2.0.0")
    with pytest.raises(PlatformUnknown, match="BatchGetImage"):
        repository.image_platforms("9.9.9")


def test_a_config_download_the_storage_throttles_once_is_asked_again(aws, independent_client):
    """The config blob comes from a presigned S3 URL, outside botocore's retries: one 503 SlowDown
    (S3's throttling) made the platform unknown, and register_existing registered the image unchecked."""
    import threading
    from http.server import BaseHTTPRequestHandler

    from tests.local_http import QuietHTTPServer

    answers = [(503, b"<Error><Code>SlowDown</Code></Error>"),
               (200, json.dumps({"os": "linux", "architecture": "arm64"}).encode())]
    asked = []

    class Storage(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = answers[min(len(asked), len(answers) - 1)]
            asked.append(status)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), Storage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = independent_client("ecr")
    client.put_image(repositoryName=aws.targets.ecr_repository, imageManifest=MANIFEST, imageTag="2.0.0")

    def download_url(**_):  # moto's ECR serves no layer URLs
        return SimpleNamespace(status_code=200, headers={}), {
            "downloadUrl": f"http://127.0.0.1:{server.server_address[1]}/config?X-Amz-Signature=secret",
            "layerDigest": "sha256:" + "1" * 64, "ResponseMetadata": {}}

    client.meta.events.register("before-call.ecr.GetDownloadUrlForLayer", download_url)
    try:
        assert EcrRepository(client, aws.targets).image_platforms("2.0.0") == ("linux/arm64",)
        assert asked == [503, 200]
        # Storage that keeps refusing is still reported, after a few asks, without the signed URL.
        answers[1] = answers[0]
        asked.clear()
        with pytest.raises(PlatformUnknown, match=r"could not be downloaded \(HTTPStatusError, HTTP 503\)") as caught:
            EcrRepository(client, aws.targets).image_platforms("2.0.0")
        assert "secret" not in str(caught.value) and len(asked) == 3
    finally:
        server.shutdown()
