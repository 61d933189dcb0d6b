"""How rollway.toolchain.registry asks a registry for a tag's digest: the authentication flows
a real registry may ask for, on an httpx transport standing in for it (the real registry's
anonymous answers, an image index among them, are in tests/integration/test_docker.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle

import httpx
import pytest

from rollway.toolchain.docker import DockerCli
from rollway.toolchain.registry import (
    ACCEPT, RegistryUnanswered, manifest_config_digest, manifest_digest, manifest_platforms_of, put_tag,
    split_reference,
)

INDEX = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})
DIGEST = "sha256:" + hashlib.sha256(INDEX.encode()).hexdigest()
SECRET = "s3cr3t-passw0rd"


def registry(*, challenge: str | None, token_needs_login: bool = False, header: bool = True):
    """A registry holding ``repo:1.0.0`` behind ``challenge``; it records every request."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "auth.example.com":
            if token_needs_login and request.headers.get("Authorization") != basic("robot", SECRET):
                return httpx.Response(401, text="no")
            assert request.url.params["scope"] == "repository:team/repo:pull"
            return httpx.Response(200, json={"access_token": "tok"})
        authorized = {None: True, "bearer": request.headers.get("Authorization") == "Bearer tok",
                      "basic": request.headers.get("Authorization") == basic("robot", SECRET)}
        kind = challenge.split()[0].lower() if challenge else None
        if not authorized[kind]:
            return httpx.Response(401, headers={"WWW-Authenticate": challenge}, text='{"errors":[{"code":"UNAUTHORIZED"}]}')
        assert request.headers["Accept"] == ACCEPT
        if request.url.path != "/v2/team/repo/manifests/1.0.0":
            return httpx.Response(404, text='{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
        return httpx.Response(200, text=INDEX, headers={"Docker-Content-Digest": DIGEST} if header else {})

    return httpx.MockTransport(handle), seen


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


BEARER = 'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/repo:pull"'


def test_an_anonymous_token_is_fetched_from_the_realm_the_challenge_names():
    transport, seen = registry(challenge=BEARER)
    assert manifest_digest("registry.example.com/team/repo:1.0.0", transport=transport) == DIGEST
    assert [str(r.url).split("?")[0] for r in seen] == [
        "https://registry.example.com/v2/team/repo/manifests/1.0.0", "https://auth.example.com/token",
        "https://registry.example.com/v2/team/repo/manifests/1.0.0"]
    assert "Authorization" not in seen[1].headers


def test_the_login_buys_the_token_when_the_realm_wants_one_and_never_shows_in_errors():
    transport, seen = registry(challenge=BEARER, token_needs_login=True)
    assert manifest_digest("registry.example.com/team/repo:1.0.0", login=("robot", SECRET), transport=transport) == DIGEST
    with pytest.raises(RegistryUnanswered, match="answered 401") as refused:
        manifest_digest("registry.example.com/team/repo:1.0.0", login=("robot", "wrong"), transport=transport)
    assert SECRET not in str(refused.value) and "wrong" not in str(refused.value)


def test_the_login_never_goes_in_clear_to_a_plain_http_token_server_elsewhere():
    """The registry names the token server: one on plain HTTP on another machine would read the
    login off the wire. Anonymous tokens may still come from it; a loopback one may have the login."""
    clear = BEARER.replace("https://auth.example.com", "http://auth.example.com")
    transport, seen = registry(challenge=clear)
    with pytest.raises(RegistryUnanswered, match="not HTTPS") as refused:
        manifest_digest("registry.example.com/team/repo:1.0.0", login=("robot", SECRET), transport=transport)
    assert SECRET not in str(refused.value)
    assert [r.url.host for r in seen] == ["registry.example.com"], "the token server was asked with the login"
    assert manifest_digest("registry.example.com/team/repo:1.0.0", transport=transport) == DIGEST

    def loopback(request: httpx.Request) -> httpx.Response:
        if request.url.host == "127.0.0.1":
            assert request.headers.get("Authorization") == basic("robot", SECRET)
            return httpx.Response(200, json={"token": "tok"})
        if request.headers.get("Authorization") != "Bearer tok":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="http://127.0.0.1:5001/token"'})
        return httpx.Response(200, text=INDEX, headers={"Docker-Content-Digest": DIGEST})

    assert manifest_digest("registry.example.com/team/repo:1.0.0", login=("robot", SECRET),
                           transport=httpx.MockTransport(loopback)) == DIGEST


def test_a_token_server_answering_without_a_token_is_reported_not_taken_for_the_manifest():
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            return httpx.Response(200, text="<html>sign in</html>")
        return httpx.Response(401, headers={"WWW-Authenticate": BEARER})

    with pytest.raises(RegistryUnanswered, match="answered without a token"):
        manifest_digest("registry.example.com/team/repo:1.0.0", transport=httpx.MockTransport(handle))


def test_basic_authentication_uses_the_login_and_without_one_the_401_is_reported():
    transport, _ = registry(challenge='Basic realm="registry"')
    assert manifest_digest("registry.example.com/team/repo:1.0.0", login=("robot", SECRET), transport=transport) == DIGEST
    with pytest.raises(RegistryUnanswered, match="answered 401"):
        manifest_digest("registry.example.com/team/repo:1.0.0", transport=transport)


def test_a_missing_tag_is_none_and_a_digest_without_the_header_is_the_bodys():
    transport, _ = registry(challenge=None, header=False)
    assert manifest_digest("registry.example.com/team/repo:9.9.9", transport=transport) is None
    assert manifest_digest("registry.example.com/team/repo:1.0.0", transport=transport) == DIGEST


def test_plain_http_only_for_a_registry_on_this_machine():
    def refuse_tls(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            raise httpx.ConnectError("wrong version number", request=request)
        return httpx.Response(200, text=INDEX, headers={"Docker-Content-Digest": DIGEST})

    transport = httpx.MockTransport(refuse_tls)
    assert manifest_digest("127.0.0.1:5000/team/repo:1.0.0", transport=transport) == DIGEST
    with pytest.raises(RegistryUnanswered, match="did not answer"):
        manifest_digest("registry.example.com/team/repo:1.0.0", transport=transport)


def test_a_registry_whose_connection_breaks_with_no_message_says_the_exception_and_where():
    # httpx words a socket error with none of its own as an error with no message: the refusal
    # said "did not answer: ReadError: " and nothing.
    def broken(request):
        raise httpx.ReadError("", request=request)

    with pytest.raises(RegistryUnanswered) as unanswered:
        manifest_digest("registry.example.com/team/repo:1.0.0", transport=httpx.MockTransport(broken))
    assert str(unanswered.value).startswith("registry.example.com did not answer: ReadError with no message, raised "
                                            "at tests/toolchain/test_registry_digest.py:"), unanswered.value


@pytest.mark.parametrize(("reference", "parts"), [
    ("127.0.0.1:5000/webordinary/edit-container:1.0.0", ("127.0.0.1:5000", "webordinary/edit-container", "1.0.0")),
    ("localhost/a:b", ("localhost", "a", "b")),
    (f"r.example.com/a/b@{DIGEST}", ("r.example.com", "a/b", DIGEST)),
    (f"r.example.com/a/b:t@{DIGEST}", ("r.example.com", "a/b", DIGEST)),
])
def test_split_reference(reference, parts):
    assert split_reference(reference) == parts


@pytest.mark.parametrize("reference", ["webordinary/edit-container:1.0.0", "r.example.com/a", "nginx:1"])
def test_a_reference_without_a_registry_or_tag_is_refused(reference):
    with pytest.raises(RegistryUnanswered):
        split_reference(reference)


def test_the_cli_hands_over_the_login_its_private_config_holds(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "r.example.com": {"auth": base64.b64encode(f"robot:{SECRET}".encode()).decode()}, "rollway.invalid": {}}}))
    cli = DockerCli("docker", tmp_path)
    assert cli._login_for("r.example.com") == ("robot", SECRET)
    assert cli._login_for("rollway.invalid") is None and cli._login_for("other.example.com") is None


def test_the_platform_of_a_single_manifest_is_its_config_blobs_served_by_redirect_without_the_login():
    config = "sha256:" + "c" * 64
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": config},
                "layers": []}
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "blobs.example.com":  # where registries keep blobs (S3, a CDN)
            return httpx.Response(200, json={"os": "linux", "architecture": "arm64"})
        if request.headers.get("Authorization") != basic("robot", SECRET):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        if request.url.path == "/v2/team/repo/manifests/1.0.0":
            return httpx.Response(200, json=manifest)
        assert request.url.path == f"/v2/team/repo/blobs/{config}"
        return httpx.Response(307, headers={"Location": "https://blobs.example.com/c?X-Amz-Signature=x"})

    found = manifest_platforms_of("registry.example.com/team/repo:1.0.0", login=("robot", SECRET),
                                  transport=httpx.MockTransport(handle))
    assert found == ("linux/arm64",)
    assert seen[-1].url.host == "blobs.example.com" and "Authorization" not in seen[-1].headers
    with pytest.raises(RegistryUnanswered, match="answered 404"):
        manifest_platforms_of("registry.example.com/team/repo:2.0.0", login=("robot", SECRET),
                              transport=httpx.MockTransport(lambda r: httpx.Response(404, text="unknown")))


def test_the_config_a_manifest_names_is_read_by_its_digest_and_an_index_names_none():
    """The classic image store's image id is the config's digest: how a push whose answer was lost
    is known for this run's build on a registry other than ECR."""
    config = "sha256:" + "c" * 64
    single = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                         "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                                    "digest": config}, "layers": []})
    manifests = {"sha256:" + hashlib.sha256(body.encode()).hexdigest(): body for body in (single, INDEX)}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != basic("robot", SECRET):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        body = manifests.get(request.url.path.rpartition("/")[2])
        return httpx.Response(200, text=body) if body else httpx.Response(404, text="MANIFEST_UNKNOWN")

    transport = httpx.MockTransport(handle)
    (single_digest, index_digest) = manifests
    assert manifest_config_digest(f"registry.example.com/team/repo@{single_digest}", login=("robot", SECRET),
                                  transport=transport) == config
    assert manifest_config_digest(f"registry.example.com/team/repo@{index_digest}", login=("robot", SECRET),
                                  transport=transport) is None
    # Named as the user wrote it and would copy it: "team/repo:sha256:..." is no reference docker takes.
    missing = "sha256:" + "0" * 64
    with pytest.raises(RegistryUnanswered, match=f"answered 404 for team/repo@{missing};"):
        manifest_config_digest(f"registry.example.com/team/repo@{missing}", login=("robot", SECRET),
                               transport=transport)
    with pytest.raises(RegistryUnanswered, match=f"answered 404 for team/repo@{missing};"):
        put_tag(f"registry.example.com/team/repo@{missing}", "latest", login=("robot", SECRET), transport=transport)
    with pytest.raises(RegistryUnanswered, match="answered 404 for team/repo:1.0.0;"):
        manifest_platforms_of("registry.example.com/team/repo:1.0.0", login=("robot", SECRET), transport=transport)


def test_a_tag_is_put_as_the_sources_manifest_byte_for_byte_with_its_media_type():
    body = INDEX.encode()
    puts: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != basic("robot", SECRET):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        if request.method == "PUT":
            puts.append(request)
            return httpx.Response(201)
        assert request.url.path == "/v2/team/repo/manifests/1.0.0"
        return httpx.Response(200, content=body, headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})

    digest = put_tag("registry.example.com/team/repo:1.0.0", "latest", login=("robot", SECRET),
                     transport=httpx.MockTransport(handle))
    (put,) = puts
    assert put.url.path == "/v2/team/repo/manifests/latest" and put.content == body
    assert put.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json" and digest == DIGEST
    with pytest.raises(RegistryUnanswered, match="refused to tag team/repo:1.0.0 as latest \\(403\\)") as caught:
        put_tag("registry.example.com/team/repo:1.0.0", "latest", login=("robot", SECRET), transport=httpx.MockTransport(
            lambda r: handle(r) if r.method == "GET" else httpx.Response(403, text="denied")))
    assert SECRET not in str(caught.value)


TOKEN = "tok-0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def echoing(status: int):
    """A registry (with its token server) that refuses every ask but the login's, its body
    echoing the Authorization header it was sent, as some proxies' and registries' error pages do."""
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            return httpx.Response(200, json={"token": TOKEN})
        sent = request.headers.get("Authorization")
        if sent is None:
            return httpx.Response(401, headers={"WWW-Authenticate": BEARER})
        if request.method == "GET" and status != 200:
            return httpx.Response(status, text=f'{{"errors":[{{"code":"DENIED","detail":"{sent} may not pull"}}]}}')
        if request.method == "GET":
            return httpx.Response(200, text=INDEX, headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
        return httpx.Response(403, text=f"refused for token {sent.partition(' ')[2]}")

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(("ask", "status"), [
    (lambda t: manifest_digest("registry.example.com/team/repo:1.0.0", transport=t), 403),
    (lambda t: manifest_platforms_of("registry.example.com/team/repo:1.0.0", transport=t), 403),
    (lambda t: put_tag("registry.example.com/team/repo:1.0.0", "latest", transport=t), 403),
    (lambda t: put_tag("registry.example.com/team/repo:1.0.0", "latest", transport=t), 200),  # the PUT refused
], ids=["digest", "platforms", "tag-read", "tag-put"])
def test_a_refusal_quoting_the_token_it_was_sent_is_reported_with_the_token_masked(ask, status):
    with pytest.raises(RegistryUnanswered) as refused:
        ask(echoing(status))
    message = str(refused.value)
    assert TOKEN not in message and "****" in message, message
    assert "403" in message


def test_an_answer_that_cannot_be_decoded_is_reported_without_the_request_that_carried_the_login():
    # httpx's DecodingError is no TransportError: it escaped as it was, holding the request it
    # answered, whose Authorization header (the login, in base64) a failed task's exception kept
    # when pickled for the Prefect API's records.
    def handle(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != basic("robot", SECRET):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
        return httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"})

    with pytest.raises(RegistryUnanswered, match="registry.example.com's answer could not be read: DecodingError") as err:
        manifest_digest("registry.example.com/team/repo:1.0.0", login=("robot", SECRET),
                        transport=httpx.MockTransport(handle))
    kept = pickle.dumps(err.value)
    assert SECRET.encode() not in kept and basic("robot", SECRET).split()[1].encode() not in kept
