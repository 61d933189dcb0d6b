"""ECR: the repository a release is pushed to, its login, and what it already holds.

Read-only: rollway never creates repositories (the ECR stack does) and never writes images
through the API (docker pushes them). Everything the `container` flow must know before it
builds is here: the repository's URI, whether its tags are immutable, whether a tag is taken.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import json
import re
from typing import Any, Callable

import httpx
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, SecretStr

from rollway.aws.denied import CREDENTIALS, ROLLOUT_POLICY, is_denied, permission_denied
from rollway.aws.errors import AdapterError, TargetNotFound, aws_message, backoff_seconds, error_code, tried
from rollway.image import (
    MANIFEST_TYPES,
    EcrLocation,
    ImageNotPinned,
    config_platform,
    ecr_location,
    image_parts,
    manifest_platforms,
    pinned_reference,
    registry_of_endpoint,
)
from rollway.targets import Targets


class Repository(BaseModel):
    """An ECR repository as DescribeRepositories shows it.

    Attributes:
        name: ``webordinary/edit-container``.
        uri: ``<registry>/<name>``.
        registry: the registry host (``<account>.dkr.ecr.<region>.amazonaws.com``).
        tag_mutability: MUTABLE, IMMUTABLE, or one of them WITH_EXCLUSION.
        exclusion_filters: the wildcard filters of the tags that are the exception.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    uri: str
    registry: str
    tag_mutability: str = "MUTABLE"
    exclusion_filters: tuple[str, ...] = ()

    def tag_immutable(self, tag: str) -> bool:
        """Whether a pushed ``tag`` can never be pushed again (moved to another image)."""
        excluded = any(fnmatch.fnmatchcase(tag, pattern) for pattern in self.exclusion_filters)
        if self.tag_mutability == "IMMUTABLE":
            return True
        if self.tag_mutability == "IMMUTABLE_WITH_EXCLUSION":
            return not excluded
        if self.tag_mutability == "MUTABLE_WITH_EXCLUSION":
            return excluded
        return False


class RegistryLogin(BaseModel):
    """What ``docker login`` needs for an ECR registry. The password prints as ``**********``.

    Attributes:
        registry: the registry host (from the token's proxyEndpoint, scheme dropped).
        username: always ``AWS`` for ECR.
        password: the token's password, valid until ``expires_at``.
    """

    model_config = ConfigDict(frozen=True)

    registry: str
    username: str
    password: SecretStr
    expires_at: dt.datetime | None = None


ACTIVE = "ACTIVE"

# Every manifest kind ECR may hold, the old schema 1 included (rollway.image.MANIFEST_TYPES).
ECR_MANIFEST_TYPES = (*MANIFEST_TYPES, "application/vnd.docker.distribution.manifest.v1+json")
# An image's config blob is a few kilobytes; more is not a config.
_CONFIG_MAX_BYTES = 1 << 20


class PlatformUnknown(AdapterError):
    """ECR could not tell which platforms an image runs on (the reason is the message)."""


# The config's URL is presigned S3, outside botocore's retries: S3 answers throttling with 503
# SlowDown, and one such answer left the platform unknown (register_existing then registered the
# image unchecked). A few asks, a second apart at most, as botocore's standard mode would.
_DOWNLOAD_ATTEMPTS = 3
_RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})


def _download_config(url: str) -> bytes:
    """The body at ``url`` (at most ``_CONFIG_MAX_BYTES``), asked again on throttling, a server
    error or a dropped connection.

    Raises:
        httpx.HTTPError: the last attempt's failure; ValueError: a body over the limit.
    """
    return tried(lambda: _downloaded(url), _DOWNLOAD_ATTEMPTS, backoff_seconds, final=_not_passing)


def _downloaded(url: str) -> bytes:
    """One GET of ``url``'s body, refused past ``_CONFIG_MAX_BYTES``."""
    with httpx.stream("GET", url, timeout=30, follow_redirects=True) as response:
        response.raise_for_status()
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > _CONFIG_MAX_BYTES:
                raise ValueError(f"more than {_CONFIG_MAX_BYTES} bytes")
        return body


def _not_passing(err: BaseException) -> bool:
    """Whether asking for the config again cannot help: anything but a dropped or failed
    connection, or an answer in ``_RETRIED_STATUS`` (a 403, an expired signature, gets it again)."""
    if isinstance(err, httpx.HTTPStatusError):
        return err.response.status_code not in _RETRIED_STATUS
    return not isinstance(err, httpx.TransportError)


class HeldImage(BaseModel):
    """An image the repository holds under a tag.

    Attributes:
        digest: its manifest digest.
        status: ACTIVE, or ARCHIVED / ACTIVATING (archived to ECR's archive storage class, or
            being restored from it): only an ACTIVE image can be pulled.
        pushed_at: when it was first pushed (None: not said).
    """

    model_config = ConfigDict(frozen=True)

    digest: str
    status: str = ACTIVE
    pushed_at: dt.datetime | None = None


class EcrRepository:
    """The release repository ``targets.ecr_repository``.

    Args:
        client: a boto3 ``ecr`` client (in ``targets.region``).
        targets: names the repository.
    """

    def __init__(self, client: Any, targets: Targets) -> None:
        self._client = client
        self._name = targets.ecr_repository

    def describe(self) -> Repository:
        """The repository: URI, registry and tag mutability.

        Raises:
            TargetNotFound: no such repository.
        """
        try:
            found = self._client.describe_repositories(repositoryNames=[self._name])["repositories"][0]
        except ClientError as err:
            if error_code(err) == "RepositoryNotFoundException":
                raise TargetNotFound("ECR repository", self._name, "create it (the ECR stack) first") from err
            raise
        uri = found["repositoryUri"]
        return Repository(
            name=found["repositoryName"], uri=uri, registry=uri.split("/", 1)[0],
            tag_mutability=found.get("imageTagMutability", "MUTABLE"),
            exclusion_filters=tuple(f["filter"] for f in found.get("imageTagMutabilityExclusionFilters", [])),
        )

    def uri(self) -> str:
        """The repository URI (``<registry>/<name>``); TargetNotFound if there is none."""
        return self.describe().uri

    def image_digest(self, tag: str) -> str | None:
        """The digest of the image tagged ``tag``, or None when the repository holds no such tag.

        Raises:
            TargetNotFound: no such repository.
        """
        held = self.image(tag)
        return held.digest if held is not None else None

    def image(self, tag: str) -> HeldImage | None:
        """The image tagged ``tag`` (digest and status), or None when the repository holds no such tag.

        Raises:
            TargetNotFound: no such repository.
        """
        try:
            found = self._client.describe_images(repositoryName=self._name, imageIds=[{"imageTag": tag}])
        except ClientError as err:
            if error_code(err) == "ImageNotFoundException":
                return None
            if error_code(err) == "RepositoryNotFoundException":
                raise TargetNotFound("ECR repository", self._name) from err
            raise
        details = found.get("imageDetails", [])
        if not details:
            return None
        # An answer without imageStatus (older APIs, moto) is an image that was never archived.
        return HeldImage(digest=details[0]["imageDigest"], status=details[0].get("imageStatus") or ACTIVE,
                         pushed_at=details[0].get("imagePushedAt"))

    def image_platforms(self, tag: str) -> tuple[str, ...]:
        """The platforms (``os/architecture``) the image tagged ``tag`` runs on.

        An image index lists them in its manifest; a single-platform manifest names a config
        blob, read from the download URL ECR gives for it (GetDownloadUrlForLayer).

        Raises:
            PlatformUnknown: the manifest or the config could not be read; says why.
        """
        try:
            manifest = self._manifest({"imageTag": tag})
        except (ClientError, BotoCoreError, KeyError, IndexError, ValueError) as err:
            raise PlatformUnknown(f"its manifest could not be read (BatchGetImage: {aws_message(err)})") from None
        platforms = manifest_platforms(manifest)
        if platforms is not None:
            return platforms
        digest = (manifest.get("config") or {}).get("digest")
        if not digest:
            raise PlatformUnknown("its manifest names no config blob")
        try:
            url = self._client.get_download_url_for_layer(repositoryName=self._name, layerDigest=digest)["downloadUrl"]
        except (ClientError, BotoCoreError, KeyError) as err:
            raise PlatformUnknown(f"ECR gave no download URL for its config {digest} "
                                  f"(GetDownloadUrlForLayer: {aws_message(err)})") from None
        try:
            config = json.loads(_download_config(url))
            if not isinstance(config, dict):
                raise ValueError("not a JSON object")
            return (config_platform(config),)
        except (httpx.HTTPError, ValueError) as err:
            # Not str(err): httpx's messages quote the URL, whose query is a signature.
            status = getattr(getattr(err, "response", None), "status_code", None)
            raise PlatformUnknown(f"its config {digest} could not be downloaded ({type(err).__name__}"
                                  f"{f', HTTP {status}' if status else ''})") from None

    def config_digest(self, digest: str) -> str | None:
        """The config blob's digest the manifest ``digest`` names (None: it names none, as an image
        index does). The classic image store's image id is that digest: the registry holds the
        build although the daemon recorded no push of it, one whose answer was lost.

        Raises:
            ClientError, BotoCoreError: BatchGetImage failed; KeyError, IndexError, ValueError:
            ECR holds no such manifest, or not as JSON.
        """
        digest_named = (self._manifest({"imageDigest": digest}).get("config") or {}).get("digest")
        return digest_named if isinstance(digest_named, str) else None

    def _manifest(self, image: dict[str, str]) -> dict[str, Any]:
        """The manifest of ``image`` (``imageTag`` or ``imageDigest``) as ECR holds it."""
        answer = self._client.batch_get_image(repositoryName=self._name, imageIds=[image],
                                              acceptedMediaTypes=list(ECR_MANIFEST_TYPES))
        manifest = json.loads(answer["images"][0]["imageManifest"])
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        return manifest

    def retag(self, digest: str, tag: str) -> None:
        """Put ``tag`` on the image ``digest`` (moving it off the image it named), as ECR retags
        without docker: its manifest put again under the tag (PutImage).

        Raises:
            AdapterError: the repository holds no image ``digest``.
            ClientError: PutImage refused (an immutable tag, a permission).
        """
        answer = self._client.batch_get_image(repositoryName=self._name, imageIds=[{"imageDigest": digest}],
                                              acceptedMediaTypes=list(ECR_MANIFEST_TYPES))
        if not answer.get("images"):
            raise AdapterError(f"ECR holds no image {digest} in {self._name} to tag {tag!r}")
        image = answer["images"][0]
        media_type = image.get("imageManifestMediaType")
        try:
            self._client.put_image(repositoryName=self._name, imageManifest=image["imageManifest"], imageTag=tag,
                                   imageDigest=digest, **({"imageManifestMediaType": media_type} if media_type else {}))
        except ClientError as err:
            if error_code(err) != "ImageAlreadyExistsException":  # the tag names it already
                raise

    def tag_exists(self, tag: str) -> bool:
        """Whether the repository holds an image tagged ``tag`` (TargetNotFound: no repository)."""
        return self.image_digest(tag) is not None

    def login(self) -> RegistryLogin:
        """A docker login for the repository's registry, from GetAuthorizationToken.

        The token is base64 of ``AWS:<password>``; the password is kept as a SecretStr from the
        moment it is decoded.

        Raises:
            AdapterError: ECR answered with no token, or one that does not decode.
        """
        answer = self._client.get_authorization_token()
        data = answer.get("authorizationData") or []
        if not data:
            raise AdapterError("ECR returned no authorization data")
        first = data[0]
        try:
            username, colon, password = base64.b64decode(first["authorizationToken"], validate=True).decode().partition(":")
        except (KeyError, binascii.Error, UnicodeDecodeError) as err:
            raise AdapterError(f"ECR's authorization token does not decode ({type(err).__name__})") from None
        if not colon or not username or not password:
            raise AdapterError("ECR's authorization token is not <user>:<password>")
        try:
            registry = registry_of_endpoint(first.get("proxyEndpoint", ""))
        except ValueError as err:
            raise AdapterError(str(err)) from None
        return RegistryLogin(registry=registry, username=username, password=SecretStr(password),
                             expires_at=first.get("expiresAt"))


# The statement of the rollout's policy (ROLLOUT_POLICY), which grants the pinning's DescribeImages, for repositories outside the targets' own account and region.
_SHARED_REGISTRY_STATEMENT = "PinImagesOfASharedRegistry"
# Who AWS says asked, in a refusal ("User: arn:aws:sts::123456789012:assumed-role/..."): the
# caller's account, told from the registry's when the refusal is another account's.
_CALLER_ACCOUNT = re.compile(r"arn:aws[a-z-]*:(?:sts|iam)::([0-9]{12}):")


class RegistryDenied(ImageNotPinned):
    """The worker's credentials may not read a registry outside the targets' own (another
    account's, another region's): a refusal naming the permission and the digest remedy."""


class EcrImagePinner:
    """Pins a rollout's image to the digest its tag names now, asked of ECR (DescribeImages).

    A tag can be pushed again, and every task ECS starts later from a revision that names it (a
    restart, a scale-out, a rollback restoring it) pulls whatever it names then: during a rollout
    that lasts weeks, that is not the image the judge passed. So a rollout resolves the tag once,
    at its start, and its revision names the digest.

    Args:
        client: a boto3 ``ecr`` client in ``targets.region``.
        targets: the region ECR is read in, and the release repository.
        clients_in: region -> an ``ecr`` client there, on the same credentials: for an image in
            ECR in another region (a shared-services registry). None: such an image is refused.
    """

    def __init__(self, client: Any, targets: Targets, *, clients_in: Callable[[str], Any] | None = None) -> None:
        self._client = client
        self._targets = targets
        self._region = targets.region
        self._repository = targets.ecr_repository
        self._clients_in = clients_in

    def reading_regions(self, clients_in: Callable[[str], Any]) -> EcrImagePinner:
        """This pinner, reading ECR in other regions with ``clients_in`` (region -> ecr client)."""
        return EcrImagePinner(self._client, self._targets, clients_in=clients_in)

    def pin(self, image: str) -> str:
        """``image`` pinned to one digest: as given when it names one (checked to be in its
        repository when rollway can read that), else ``<repository>@<digest>`` of the image its
        tag names in ECR now, in whichever account (DescribeImages' registryId) and region (a
        client there, ``clients_in``) the image's registry host names.

        An image in another registry (Docker Hub, a registry of one's own) is refused rather than
        rolled out by its tag: rollway cannot read those registries, and a rollout that runs a tag
        for weeks may end up running an image nobody judged. Giving it by digest costs one copy.

        Raises:
            ImageNotPinned: a tag not in an ECR registry (or in another region, without
                ``clients_in``), no such repository, tag or digest, or an image ECR holds in its
                archive (no task can pull it); says what to do. ``RegistryDenied`` when the
                credentials may not read a registry outside the targets' own.
            PermissionDenied: these credentials may not call DescribeImages on the release
                repository (names the statement).
            ClientError: ECR refused the read otherwise (throttling).
        """
        parts = image_parts(image)
        location = ecr_location(image)
        by_digest = (f"give the image by digest instead ({parts.name}@sha256:<digest>, the `pinned_image` of "
                     f"publish_container, or what `docker buildx imagetools inspect {image}` prints)")
        client = self._client_for(location) if location is not None else None
        if parts.digest is not None:
            if client is not None:
                # Checked where it can be: a mistyped digest registered a revision no task could
                # pull, found out only when the first stage's scale-up timed out, then rolled back.
                try:
                    self._held(client, image, location, {"imageDigest": parts.digest}, f"image {parts.digest}",
                               by_digest)
                except RegistryDenied:
                    pass  # a digest is the remedy a registry rollway may not read is refused with
            return image
        if location is None:
            raise ImageNotPinned(
                f"image {image!r} is not in an ECR registry, so rollway cannot pin its tag to the digest it names "
                f"now (a tag pushed again during the rollout would change what the canary runs): {by_digest}")
        if client is None:
            raise ImageNotPinned(
                f"image {image!r} is in ECR in {location.region}, and rollway reads ECR in the targets' region "
                f"{self._region}: {by_digest}")
        return pinned_reference(image, self._held(client, image, location, {"imageTag": parts.tag},
                                                  f"tag {parts.tag!r}", by_digest))

    def _client_for(self, location: EcrLocation) -> Any | None:
        """An ecr client in ``location``'s region, or None when there is none to have."""
        if location.region == self._region:
            return self._client
        return self._clients_in(location.region) if self._clients_in is not None else None

    def _held(self, client: Any, image: str, location: EcrLocation, image_id: dict[str, str], what: str,
              by_digest: str) -> str:
        """The digest of the ACTIVE image ``image_id`` names in ``location``'s repository.

        Raises:
            ImageNotPinned: no such repository or image, or one in ECR's archive; RegistryDenied:
                a registry outside the targets' own that the credentials may not read.
            PermissionDenied: the release repository's read refused.
        """
        absent = ImageNotPinned(f"image {image!r}: ECR repository {location.repository} holds no {what}; push it "
                                "(publish_container) or give one it holds")
        try:
            found = client.describe_images(registryId=location.account, repositoryName=location.repository,
                                           imageIds=[image_id])
        except ClientError as err:
            if error_code(err) in ("ImageNotFoundException", "InvalidParameterException"):
                raise absent from None
            if error_code(err) == "RepositoryNotFoundException":
                raise ImageNotPinned(
                    f"image {image!r}: there is no ECR repository {location.repository} in account "
                    f"{location.account} ({location.region})") from None
            if is_denied(err) and not self._own(location, err):
                # Another account's registry answers for its repository's policy as well as the
                # worker's: the statement of the release repository is not what is missing.
                registry = image_parts(image).name.split("/", 1)[0]
                raise RegistryDenied(
                    f"image {image!r}: AWS refused ecr:DescribeImages on repository {location.repository} of "
                    f"registry {registry} ({aws_message(err)}): {CREDENTIALS} may not read it, so rollway cannot "
                    f"pin its tag to the digest it names now. Allow ecr:DescribeImages on that repository to that "
                    f"role or user (deployments/{ROLLOUT_POLICY}, statement {_SHARED_REGISTRY_STATEMENT}) and, for "
                    f"a registry of another account, in that repository's policy; or {by_digest}") from None
            if is_denied(err):
                # A worker role written before rollouts pinned their images lacks this read: the
                # refusal names the statement to add rather than ECR's bare AccessDenied.
                raise permission_denied(err, job=ROLLOUT_POLICY, targets=self._targets) from err
            raise
        details = found.get("imageDetails") or []
        if not details:
            raise absent
        status = details[0].get("imageStatus") or ACTIVE
        if status != ACTIVE:
            raise ImageNotPinned(f"image {image!r} is {status} in ECR's archive: no task could pull it; restore it "
                                 "first")
        return details[0]["imageDigest"]

    def _own(self, location: EcrLocation, err: ClientError) -> bool:
        """Whether ``location`` is the targets' release repository (its region, its name, and the
        caller's account when AWS's refusal names it), which statement PinTheImageToItsDigest grants."""
        caller = _CALLER_ACCOUNT.search(err.response.get("Error", {}).get("Message", "") or "")
        return (location.region == self._region and location.repository == self._repository
                and (caller is None or caller.group(1) == location.account))
