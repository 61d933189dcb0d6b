"""Which failed pushes and logins are worth making again, read from docker's own words (retry_reason)."""

from __future__ import annotations

import pytest

from rollway.toolchain.docker import DockerCommandFailed, LoginRefused, PushRefused, retry_reason

REF = "123456789012.dkr.ecr.us-west-2.amazonaws.com/webordinary/edit-container:2.0.0"


@pytest.mark.parametrize("said, kind", [
    ("denied: Your authorization token has expired. Reauthenticate and try again.", "login"),
    ("Your Authorization Token has expired. Please run 'aws ecr get-login-password' to fetch a new one.", "login"),
    ('Put "https://x/v2/a/blobs/uploads/": read tcp 10.0.0.5:41234->52.46.1.2:443: read: connection reset by peer',
     "transient"),
    ('Get "https://x/v2/": net/http: TLS handshake timeout', "transient"),
    ('Head "https://x/v2/a/blobs/sha256:1f": dial tcp: lookup x on 10.0.0.2:53: read udp 10.0.0.5:5353->'
     '10.0.0.2:53: i/o timeout', "transient"),
    ("received unexpected HTTP status: 503 Service Unavailable", "transient"),
    ("error parsing HTTP 502 response body: invalid character '<' looking for beginning of value", "transient"),
    ("toomanyrequests: Rate exceeded", "transient"),
    ('Patch "https://x/v2/a/blobs/uploads/1": unexpected EOF', "transient"),
    ("denied: User: arn:aws:sts::123456789012:assumed-role/release is not authorized to perform: "
     "ecr:InitiateLayerUpload", None),
    ("unauthorized: authentication required", None),
    ("no basic auth credentials", None),
    ("tag invalid: The image tag '2.0.0' already exists in the 'webordinary/edit-container' repository and cannot "
     "be overwritten because the repository is immutable.", None),
    ("manifest invalid: manifest invalid", None),
    ("An image does not exist locally with the tag: " + REF, None),
    ('Get "https://x/v2/": x509: certificate signed by unknown authority', None),
    ("something docker never said before", None),
])
def test_a_push_is_pushed_again_only_for_a_failure_that_passes_or_an_expired_login(said, kind):
    found = retry_reason(PushRefused(REF, [f"The push refers to repository [{REF.rsplit(':', 1)[0]}]", said]))
    assert (found.kind if found else None) == kind
    if found:
        assert found.said == said


def test_a_refusal_after_a_layer_docker_retried_is_a_refusal():
    tail = ["1f2e3d4c: Retrying in 5 seconds", "read tcp 10.0.0.5:1->52.46.1.2:443: read: connection reset by peer",
            "denied: requested access to the resource is denied"]
    assert retry_reason(PushRefused(REF, tail)) is None


def test_only_a_push_docker_failed_is_pushed_again():
    assert retry_reason(DockerCommandFailed("connection reset by peer")) is None


def test_a_login_is_made_again_only_for_a_failure_that_passes():
    host = REF.split("/", 1)[0]
    passing = f'Error response from daemon: Get "https://{host}/v2/": net/http: TLS handshake timeout'
    assert retry_reason(LoginRefused(host, [passing])) == ("transient", passing)
    assert retry_reason(LoginRefused(host, [f"Error response from daemon: login attempt to https://{host}/v2/ "
                                            "failed with status: 400 Bad Request"])) is None
