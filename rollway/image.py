"""Image references in docker's grammar, and the references a container release pushes.

One grammar for all of rollway: ``RolloutSpec`` checks the image it rolls out with
``image_problem``, and the `container` flow checks the version, registry and repository it
builds and pushes with the functions below, before any tool runs or AWS call is made.

Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from rollway.hosts import is_loopback_host

# An image reference in docker's grammar (distribution/reference), which ECS pulls:
#   [host[:port]/]path[:tag][@sha256:digest], at most 255 characters (ECS's limit on `image`).
# The first '/'-separated part is a host only when it has a '.' or a ':' or is "localhost", as
# docker reads it; otherwise it is the path's first component. rollway needs a pinned version,
# so a tag or a digest (or both) is required.
_IMAGE_MAX = 255
_HOST = re.compile(
    r"^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)"
    r"(?::[0-9]+)?$"
)
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^\w[\w.-]{0,127}$", re.ASCII)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
IMAGE_FORM = (
    "[registry[:port]/]repository:tag or [registry[:port]/]repository@sha256:<64 hex digits>, "
    "e.g. 123456789012.dkr.ecr.us-west-2.amazonaws.com/webordinary/edit-container:2.0.0"
)

LATEST = "latest"
"""The moving tag: it follows each release, so it can never name one version."""

_TAG_RULE = "1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"


def _registry_host(host: str) -> bool:
    """Whether docker takes ``host`` as a registry: a host name, or an IPv6 address in brackets
    (``[fd00::5]:5000``), each with an optional :port."""
    if not host.startswith("["):
        return bool(_HOST.fullmatch(host))
    address, bracket, port = host[1:].partition("]")
    if not bracket or (port and not re.fullmatch(r":[0-9]+", port)):
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def image_problem(image: str) -> str | None:
    """Why docker and ECS could not pull ``image`` as a pinned reference, or None if they can."""
    if _SCHEME.match(image):
        bare = image.split("://", 1)[1]
        return (f"is a URL, not an image reference: drop {image[:len(image) - len(bare)]!r}"
                + (f" (use {bare!r})" if image_problem(bare) is None else ""))
    if len(image) > _IMAGE_MAX:
        return f"is {len(image)} characters long: ECS takes at most {_IMAGE_MAX}"
    if any(c.isspace() for c in image):
        return "contains whitespace"
    name, at, digest = image.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        return f"has a digest {digest!r} that is not sha256:<64 lowercase hex digits>"
    host, slash, rest = name.partition("/")
    if not slash or not ("." in host or ":" in host or host == "localhost"):
        host, rest = "", name
    elif not _registry_host(host):
        return f"has a registry {host!r} that is not a host name or a [bracketed IPv6 address], with an optional :port"
    path, colon, tag = rest.partition(":")
    if ":" in tag:
        return f"has more than one tag ({', '.join(repr(t) for t in tag.split(':'))}): give one :tag"
    if colon and not _TAG.match(tag):
        return f"has a tag {tag!r} that docker does not take ({_TAG_RULE})"
    problem = repository_problem(path)
    if problem:
        return problem
    if not colon and not at:
        return "is not a pinned image reference: give a :tag or an @sha256: digest"
    return None


def repository_problem(repository: str) -> str | None:
    """Why ``repository`` (``webordinary/edit-container``) is not a docker repository path, or None."""
    components = repository.split("/")
    if "" in components:
        return "has an empty repository path component (a leading, trailing or doubled '/')"
    bad = [c for c in components if not _PATH_COMPONENT.fullmatch(c)]
    if bad:
        return (f"has a repository path component {bad[0]!r} that is not lowercase letters and digits "
                "joined by single '.', '_', '__' or dashes")
    return None


def version_problem(version: str) -> str | None:
    """Why ``version`` cannot be the tag of one release, or None if it can.

    A version is a docker tag that names one image for good: not ``latest`` (in any case: the
    moving tag), nothing with surrounding spaces, no reference or digest.
    """
    if not version:
        return "is empty"
    if version != version.strip():
        return "has surrounding whitespace"
    if version.lower() == LATEST:
        return (f"is the moving tag {LATEST!r}, which follows every release: give the release's own version "
                "(e.g. 2.0.0); latest is pushed beside it")
    if version.startswith("sha256:") or "@" in version:
        return "is a digest, not a version tag: give the release's version (e.g. 2.0.0)"
    if "/" in version or ":" in version:
        return "is an image reference, not a version tag: give only the tag (e.g. 2.0.0)"
    if not _TAG.match(version):
        return f"is not a docker tag ({_TAG_RULE})"
    return None


def registry_problem(registry: str) -> str | None:
    """Why docker would not take ``registry`` as a registry host, or None if it would.

    A registry has a '.' or a ':port' or is ``localhost`` (otherwise docker reads it as the first
    path component of a repository on Docker Hub and pushes there), optionally an IPv6 address in
    brackets; no scheme, no path.
    """
    if not registry:
        return "is empty"
    if _SCHEME.match(registry):
        bare = registry.split("://", 1)[1].rstrip("/")
        return f"is a URL: give the host only ({bare!r})"
    if "/" in registry:
        return "has a path: give the registry host[:port] only; the repository comes from Targets.ecr_repository"
    if not _registry_host(registry):
        return "is not a host name or a [bracketed IPv6 address], with an optional :port"
    if not ("." in registry or ":" in registry or registry == "localhost"):
        return ("has no '.', no ':port' and is not 'localhost', so docker would read it as a Docker Hub "
                f"repository name: give the full host (e.g. {registry}.example.com or {registry}:5000)")
    return None


def registry_of_endpoint(endpoint: str) -> str:
    """The registry host of an endpoint URL as ECR's GetAuthorizationToken returns it
    (``https://123456789012.dkr.ecr.us-west-2.amazonaws.com`` -> the host).

    Raises:
        ValueError: what is left is not a registry host.
    """
    host = endpoint.split("://", 1)[1] if _SCHEME.match(endpoint) else endpoint
    host = host.rstrip("/")
    problem = registry_problem(host)
    if problem:
        raise ValueError(f"registry endpoint {endpoint!r}: {host!r} {problem}")
    return host


def registry_of(image: str) -> str:
    """The registry host[:port] docker pulls ``image`` from, as docker reads it: the first
    '/'-separated part when it has a '.' or a ':' or is ``localhost``, otherwise Docker Hub
    (``docker.io``)."""
    host, slash, _ = image.partition("/")
    if slash and ("." in host or ":" in host or host == "localhost"):
        return host
    return "docker.io"


def is_loopback(registry: str) -> bool:
    """Whether ``registry`` is on this machine (localhost, 127.0.0.0/8, [::1]): the registries
    docker talks plain HTTP to without being told."""
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry[1:].partition("]")[0]
    return is_loopback_host(host)


def plain_tcp_elsewhere(docker_host: str) -> bool:
    """Whether the docker daemon ``docker_host`` names (DOCKER_HOST's form) is reached by plain
    TCP on another machine: rollway gives docker no TLS settings, so a login docker hands that
    daemon crosses the network unencrypted."""
    if not docker_host.startswith("tcp://"):
        return False
    return not is_loopback(docker_host.removeprefix("tcp://").split("/", 1)[0])


class InvalidImageTarget(ValueError):
    """A version, registry or repository that cannot be pushed: refused before anything runs."""


@dataclass(frozen=True)
class ImageReferences:
    """Where one release is pushed.

    Attributes:
        registry: the registry host[:port].
        repository: the repository path in it.
        version: the release's tag.
        versioned: ``<registry>/<repository>:<version>``: what a task definition pins.
        latest: ``<registry>/<repository>:latest``, or None when latest is not pushed.
    """

    registry: str
    repository: str
    version: str
    versioned: str
    latest: str | None

    def pinned(self, digest: str) -> str:
        """``<registry>/<repository>@<digest>``: the release's image, whatever its tags name later.

        Raises:
            InvalidImageTarget: ``digest`` is not sha256:<64 hex digits>, or the reference is too long.
        """
        reference = pinned_reference(self.versioned, digest)
        problem = image_problem(reference)
        if problem:
            raise InvalidImageTarget(f"image {reference!r} {problem}")
        return reference

    @property
    def all(self) -> tuple[str, ...]:
        """Every reference to tag and push, the version first."""
        return (self.versioned,) if self.latest is None else (self.versioned, self.latest)


def image_references(registry: str, repository: str, version: str, *, push_latest: bool = True) -> ImageReferences:
    """The references one release is pushed as, each checked against docker's grammar.

    Args:
        registry: registry host[:port] (no scheme).
        repository: repository path (``Targets.ecr_repository``).
        version: the release's tag; never ``latest``.
        push_latest: also move ``latest`` to this release.

    Raises:
        InvalidImageTarget: naming the part that is wrong and why.
    """
    for what, value, check in (("version", version, version_problem), ("registry", registry, registry_problem),
                               ("repository", repository, repository_problem)):
        if not isinstance(value, str):
            raise InvalidImageTarget(f"{what} must be a string, got {type(value).__name__}")
        problem = check(value)
        if problem:
            raise InvalidImageTarget(f"{what} {value!r} {problem}")
    versioned = f"{registry}/{repository}:{version}"
    latest = f"{registry}/{repository}:{LATEST}" if push_latest else None
    for reference in (versioned, latest):
        problem = image_problem(reference) if reference is not None else None
        if problem:  # only the length is left to fail here
            raise InvalidImageTarget(f"image {reference!r} {problem}")
    return ImageReferences(registry=registry, repository=repository, version=version, versioned=versioned,
                           latest=latest)


# Manifest media types that list one manifest per platform (an image index) and the old
# schema 1 manifest, which names its architecture itself; any other manifest names a config
# blob, whose ``os`` and ``architecture`` are the platform.
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
# The manifests a registry is asked for (its Accept): without the index types, a registry answers
# for a multi-platform image with one of its manifests (or not at all), not the list of platforms.
MANIFEST_TYPES = (*INDEX_TYPES, "application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


def manifest_platforms(manifest: dict) -> tuple[str, ...] | None:
    """The platforms (``os/architecture``) an image manifest says it runs on, or None when only
    its config blob says (a single-platform manifest: read ``config_platform`` of that blob).

    An index lists one manifest per platform; entries for ``unknown/unknown`` are build
    attestations (buildx adds them), not platforms, and are left out.
    """
    if manifest.get("schemaVersion") == 1:
        return (f"linux/{manifest.get('architecture') or 'amd64'}",)
    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        found = []
        for entry in manifest.get("manifests") or []:
            # A registry's answer, not ours: an entry that is not an object names no platform.
            platform = (entry.get("platform") if isinstance(entry, dict) else None) or {}
            if not isinstance(platform, dict):
                continue
            system, architecture = platform.get("os"), platform.get("architecture")
            if system and architecture and "unknown" not in (system, architecture):
                found.append(f"{system}/{architecture}")
        return tuple(dict.fromkeys(found))
    return None


def config_platform(config: dict) -> str:
    """The platform an image's config blob records (``os/architecture``)."""
    return f"{config.get('os') or 'linux'}/{config.get('architecture') or 'unknown'}"


# An ECR registry host: <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]. Only these can be
# asked (DescribeImages) which image a tag names; any other registry is not rollway's to read.
_ECR_HOST = re.compile(r"^(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


@dataclass(frozen=True)
class ImageParts:
    """An image reference taken apart, as docker reads it.

    Attributes:
        name: ``[registry/]repository`` (the registry as written, if any).
        tag: the tag, or None.
        digest: ``sha256:...``, or None.
    """

    name: str
    tag: str | None
    digest: str | None


def image_parts(image: str) -> ImageParts:
    """``image`` (one ``image_problem`` accepts) as name, tag and digest."""
    name, _, digest = image.partition("@")
    # The tag's ':' comes after the last '/': a registry's ':port' comes before it.
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    return ImageParts(name=name, tag=tag, digest=digest or None)


@dataclass(frozen=True)
class EcrLocation:
    """Where an image in an ECR registry lives: what DescribeImages is asked with."""

    account: str
    region: str
    repository: str


def ecr_location(image: str) -> EcrLocation | None:
    """The ECR account, region and repository of ``image``, or None when its registry is not ECR's."""
    parts = image_parts(image)
    host, slash, repository = parts.name.partition("/")
    found = _ECR_HOST.fullmatch(host) if slash else None
    if found is None:
        return None
    return EcrLocation(account=found["account"], region=found["region"], repository=repository)


def pinned_reference(image: str, digest: str) -> str:
    """``<registry>/<repository>@<digest>``: ``image`` pinned to ``digest``, its tag dropped (ECS
    resolves a reference that has both by the digest alone, and a tag beside it would only suggest
    the image could still follow the tag)."""
    return f"{image_parts(image).name}@{digest}"


def with_pin(image: str, pinned: str | None) -> str:
    """``image`` as people are told of it: the tag, and the digest it was pinned to when that says
    more (``<tag> (pinned as <digest>)``). The tag alone named another image than the one the
    canary ran once the tag was pushed again."""
    return image if pinned in (None, image) else f"{image} (pinned as {pinned})"


class ImageNotPinned(ValueError):
    """An image a rollout cannot pin to one digest before it starts: refused before any write."""
