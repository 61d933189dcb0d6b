"""The digest a registry holds for a tag, and the platforms its image runs on, asked over the
registry's own HTTP API.

``docker manifest inspect --verbose`` cannot give it for an image index (a multi-platform
image, or what docker's containerd image store pushes for any build): it prints one entry per
platform manifest, each with that manifest's digest, and the index's own digest nowhere. ``docker
push`` reports the index's digest, so comparing the two would take a good push for someone
else's. The registry answers ``GET /v2/<repository>/manifests/<tag>`` with the manifest (or
index) as stored and its digest in ``Docker-Content-Digest``: that is the tag's digest.

Authentication as docker does it for a pull: anonymous, or a token from the realm a 401 names
(the Bearer flow of the distribution spec), with the login the private docker config holds for
the registry when it holds one. Plain HTTP only for a registry on this machine (as dockerd):
HTTPS first, then HTTP.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

import httpx

from rollway.failure_words import error_said
from rollway.http_checks import quoted_body
from rollway.image import MANIFEST_TYPES, config_platform, is_loopback, manifest_platforms, registry_of

# Every manifest type docker and the registries store: a registry converts (and re-digests) a
# manifest whose type the client does not accept, so all are accepted.
ACCEPT = ", ".join(MANIFEST_TYPES)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# key="value" pairs of a WWW-Authenticate challenge (RFC 7235; values quoted, as registries send them).
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryUnanswered(RuntimeError):
    """The registry could not be asked, or refused to answer. The login is never in the message,
    nor the token or Authorization header sent: an answer it quotes may echo them (masked)."""


def split_reference(reference: str) -> tuple[str, str, str]:
    """``host[:port]/repository:tag`` (or ``@digest``) as (registry, repository, tag or digest).

    Raises:
        RegistryUnanswered: no registry host in it (docker would ask Docker Hub), or no tag.
    """
    registry, _, rest = reference.partition("/")
    if not rest or registry_of(reference) != registry:  # docker's own rule for a registry host
        raise RegistryUnanswered(f"{reference!r} names no registry host to ask")
    if "@" in rest:
        repository, _, wanted = rest.partition("@")
        repository = repository.rsplit(":", 1)[0] if ":" in repository else repository
    else:
        repository, _, wanted = rest.rpartition(":")
    if not repository or not wanted:
        raise RegistryUnanswered(f"{reference!r} names no tag or digest")
    return registry, repository, wanted


def _named(repository: str, wanted: str) -> str:
    """``repository:tag`` or ``repository@sha256:...``, as a reference names it: what a user copies
    from a message into docker (``repository:sha256:...`` is no reference)."""
    return f"{repository}@{wanted}" if _DIGEST.fullmatch(wanted) else f"{repository}:{wanted}"


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(params))


def manifest_digest(reference: str, *, login: tuple[str, str] | None = None, timeout_seconds: float = 60.0,
                    transport: httpx.BaseTransport | None = None) -> str | None:
    """The digest the registry holds for ``reference``, or None when it holds no such tag.

    Args:
        reference: ``host[:port]/repository:tag``.
        login: (username, password) the docker config holds for the registry, if any.
        timeout_seconds: for each request.
        transport: httpx transport (tests); None: the network.

    Raises:
        RegistryUnanswered: unreachable, unauthorized, or an answer that is not a manifest.
    """
    registry, repository, wanted = split_reference(reference)
    answer = _ask(registry, f"{repository}/manifests/{wanted}", login, timeout_seconds, transport)
    if answer.status_code == 404:
        return None
    if answer.status_code != 200:
        raise RegistryUnanswered(f"{registry} answered {answer.status_code} for {_named(repository, wanted)}; "
                                 f"{quoted_body(answer)}")
    digest = answer.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(answer.content).hexdigest()
    if not _DIGEST.fullmatch(digest):
        raise RegistryUnanswered(f"{registry} gave {_named(repository, wanted)} a digest rollway does not know: "
                                 f"{digest!r}")
    return digest


def manifest_platforms_of(reference: str, *, login: tuple[str, str] | None = None, timeout_seconds: float = 60.0,
                          transport: httpx.BaseTransport | None = None) -> tuple[str, ...]:
    """The platforms (``os/architecture``) the image ``reference`` names runs on: those its
    index lists, or the one its config blob records.

    Raises:
        RegistryUnanswered: unreachable, unauthorized, no such image, or an answer that is not
            a manifest or a config.
    """
    registry, repository, wanted, manifest = _manifest(reference, login, timeout_seconds, transport)
    platforms = manifest_platforms(manifest)
    if platforms is not None:
        return platforms
    config = (manifest.get("config") or {}).get("digest")
    if not isinstance(config, str) or not _DIGEST.fullmatch(config):
        raise RegistryUnanswered(f"the manifest of {_named(repository, wanted)} names no config blob")
    return (config_platform(_json(_ask(registry, f"{repository}/blobs/{config}", login, timeout_seconds, transport),
                                  f"the config {config} of {_named(repository, wanted)}")),)


def manifest_config_digest(reference: str, *, login: tuple[str, str] | None = None, timeout_seconds: float = 60.0,
                           transport: httpx.BaseTransport | None = None) -> str | None:
    """The digest of the config blob the manifest ``reference`` (``host[:port]/repository@sha256:...``
    or ``:tag``) names; None when it names none (an image index). The classic image store's image
    id is that digest: the registry holds a build although the daemon recorded no push of it.

    Raises:
        RegistryUnanswered: unreachable, unauthorized, no such manifest, or an answer that is not one.
    """
    config = _manifest(reference, login, timeout_seconds, transport)[3].get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    return digest if isinstance(digest, str) and _DIGEST.fullmatch(digest) else None


def _manifest(reference: str, login: tuple[str, str] | None, timeout_seconds: float,
              transport: httpx.BaseTransport | None) -> tuple[str, str, str, dict]:
    """(registry, repository, tag or digest, the manifest as the registry holds it) of ``reference``."""
    registry, repository, wanted = split_reference(reference)
    manifest = _json(_ask(registry, f"{repository}/manifests/{wanted}", login, timeout_seconds, transport),
                     _named(repository, wanted))
    return registry, repository, wanted, manifest


def _json(answer: httpx.Response, what: str) -> dict:
    if answer.status_code != 200:
        raise RegistryUnanswered(f"the registry answered {answer.status_code} for {what}; {quoted_body(answer)}")
    try:
        found = answer.json()
    except ValueError:
        found = None
    if not isinstance(found, dict):
        raise RegistryUnanswered(f"the registry's answer for {what} is not a JSON object")
    return found


def put_tag(source: str, tag: str, *, login: tuple[str, str] | None = None, timeout_seconds: float = 60.0,
            transport: httpx.BaseTransport | None = None) -> str:
    """Tag the image ``source`` (``host[:port]/repository:tag``) as ``tag`` in its repository,
    as the registry's API does it: its manifest put again under the tag, byte for byte (so the
    digest is the same); nothing is pulled or pushed. Returns that digest.

    Raises:
        RegistryUnanswered: unreachable, unauthorized, no such image, or the put was refused.
    """
    registry, repository, wanted = split_reference(source)
    found = _ask(registry, f"{repository}/manifests/{wanted}", login, timeout_seconds, transport)
    if found.status_code != 200:
        raise RegistryUnanswered(f"{registry} answered {found.status_code} for {_named(repository, wanted)}; "
                                 f"{quoted_body(found)}")
    media_type = found.headers.get("Content-Type", "").split(";")[0].strip() or json.loads(found.content).get("mediaType")
    put = _ask(registry, f"{repository}/manifests/{tag}", login, timeout_seconds, transport, method="PUT",
               content=found.content, content_type=media_type)
    if put.status_code not in (200, 201):
        raise RegistryUnanswered(f"{registry} refused to tag {_named(repository, wanted)} as {tag} "
                                 f"({put.status_code}); {quoted_body(put)}")
    return "sha256:" + hashlib.sha256(found.content).hexdigest()


def _ask(registry: str, path: str, login: tuple[str, str] | None, timeout_seconds: float,
         transport: httpx.BaseTransport | None, *, method: str = "GET", content: bytes | None = None,
         content_type: str | None = None) -> httpx.Response:
    """GET (or ``method``) ``/v2/<path>`` of ``registry``, authorized as docker does; HTTPS, or
    plain HTTP after it for a registry on this machine."""
    local = is_loopback(registry)
    schemes = ("https", "http") if local else ("https",)
    # A proxy cannot reach this machine's loopback; elsewhere the environment's proxy applies.
    # Blobs are served by redirect (S3, a CDN) on most registries.
    with httpx.Client(timeout=timeout_seconds, trust_env=not local, transport=transport,
                      follow_redirects=True) as client:
        for scheme in schemes:
            try:
                answer = _authorized(client, f"{scheme}://{registry}/v2/{path}", login, method=method,
                                         content=content, content_type=content_type)
                answer.read()
                return answer
            except httpx.TransportError as err:
                if scheme != schemes[-1]:
                    continue  # a loopback registry speaking plain HTTP: as dockerd, try that next
                raise RegistryUnanswered(f"{registry} did not answer: {error_said(err)}") from None
            except httpx.HTTPError as err:
                # An answer httpx could not take (a body that does not decode, redirects without
                # end): its error holds the request, whose Authorization header carries the login,
                # and a failed task's exception is pickled into the Prefect API's records.
                raise RegistryUnanswered(f"{registry}'s answer could not be read: {error_said(err)}") from None
    raise AssertionError("unreachable")  # the loop returns or raises


def _authorized(client: httpx.Client, url: str, login: tuple[str, str] | None, *, method: str = "GET",
                    content: bytes | None = None, content_type: str | None = None) -> httpx.Response:
    """GET (or ``method``) ``url``; on a 401, once more with what its challenge asks for (a
    token, or the login)."""
    headers = {"Accept": ACCEPT, **({"Content-Type": content_type} if content_type else {})}
    answer = client.request(method, url, headers=headers, content=content)
    if answer.status_code != 401:
        return answer
    scheme, params = _challenge(answer.headers.get("WWW-Authenticate", ""))
    if scheme == "basic" and login is not None:
        return client.request(method, url, headers=headers, content=content, auth=login)
    if scheme != "bearer" or "realm" not in params:
        return answer  # nothing rollway can answer it with: the 401 is reported
    query = {k: v for k, v in params.items() if k in ("service", "scope")}
    realm = httpx.URL(params["realm"])
    if login is not None and realm.scheme != "https" and not is_loopback(realm.netloc.decode()):
        # The realm is the registry's to name: a plain-HTTP one elsewhere would get the login in clear.
        raise RegistryUnanswered(f"the token server {realm.scheme}://{realm.netloc.decode()} is not HTTPS: "
                                 "rollway does not send the registry login to it")
    granted = client.get(realm, params=query, auth=login)  # None: anonymous, as docker pulls
    if granted.status_code != 200:
        return granted
    try:
        token = _token(granted.json())
    except ValueError:  # not JSON: no token in it
        token = None
    if token is None:
        raise RegistryUnanswered(f"the token server {params['realm']} answered without a token")
    return client.request(method, url, headers={**headers, "Authorization": f"Bearer {token}"}, content=content)


def _token(body: Mapping[str, object]) -> str | None:
    """The token of a token server's answer (``token``, or OAuth2's ``access_token``)."""
    for key in ("token", "access_token"):
        value = body.get(key) if isinstance(body, Mapping) else None
        if isinstance(value, str) and value:
            return value
    return None
