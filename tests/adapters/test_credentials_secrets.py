"""A session token never reaches a message: AWS's SignatureDoesNotMatch answer quotes the canonical
request it expected, signed headers and their values included, so ``x-amz-security-token:<token>``
of temporary credentials (an assumed role's, a worker's task or instance role's) came back in the
error's text, and from there into the run's log, its failed state, the ledger and the page.
"""

from __future__ import annotations

import logging

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.httpsession import URLLib3Session
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters

from blocks.credentials import client_factory, credentials_for_endpoint
from flows.env import CredentialsRefused, session_clients
from rollway.aws.errors import aws_message

TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENthatMUSTneverPRINT55"


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_):
        yield self._data


def _signature_refused(request) -> AWSResponse:
    """AWS's answer to a request whose signature it could not check: its message quotes the
    canonical request, the session token the request was signed with among the headers."""
    token = request.headers.get("X-Amz-Security-Token")
    token = token.decode() if isinstance(token, bytes) else token
    message = ("The request signature we calculated does not match the signature you provided. Check your AWS "
               "Secret Access Key and signing method. Consult the service documentation for details.\n\n"
               "The Canonical String for this request should have been\n'POST\n/\n\n"
               "content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:sts.amazonaws.com\n"
               f"x-amz-date:20261205T160000Z\nx-amz-security-token:{token}\n\n"
               "content-type;host;x-amz-date;x-amz-security-token\n"
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'")
    body = ("<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>"
            f"<Message>{message}</Message></Error><RequestId>1</RequestId></ErrorResponse>").encode()
    return AWSResponse(request.url, 403, {}, _Body(body))


@pytest.fixture
def signatures_refused(monkeypatch):
    """Every request signed with a session token is answered SignatureDoesNotMatch, quoting it;
    returns the tokens so quoted."""
    real = URLLib3Session.send
    quoted: list[str] = []

    def send(session, request):
        token = request.headers.get("X-Amz-Security-Token")
        if token is None:  # AssumeRole, signed with the block's long-lived keys, is answered
            return real(session, request)
        quoted.append(token.decode() if isinstance(token, bytes) else token)
        return _signature_refused(request)

    monkeypatch.setattr(URLLib3Session, "send", send)
    return quoted


def test_an_assumed_roles_token_quoted_by_aws_is_masked_in_the_error(aws, signatures_refused):
    block = credentials_for_endpoint(aws.endpoint_url, aws.targets.region).model_copy(update={
        "aws_access_key_id": "token-masked-test",  # a client cache of its own
        "assume_role_arn": "arn:aws:iam::123456789012:role/rollway-deployer",
    })
    elbv2 = client_factory(block)("elbv2")
    with pytest.raises(ClientError) as caught:
        elbv2.describe_load_balancers(Names=["webordinary-edit-alb"])
    assert signatures_refused, "the call was not answered by the test's refusal"
    token = signatures_refused[-1]
    for said in (str(caught.value), aws_message(caught.value), repr(caught.value.response)):
        assert token not in said, said
    # What AWS said is kept, the token's place shown.
    assert "SignatureDoesNotMatch" in str(caught.value) and "x-amz-security-token:****" in str(caught.value)


def test_a_workers_temporary_credentials_refused_stop_the_run_without_their_token(aws, monkeypatch, caplog,
                                                                               signatures_refused):
    # No keys in the block: the worker's own (a task or instance role's), found by boto3's chain.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAWORKERROLE000055")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-role-secret-key-55")
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    block = AwsCredentials(region_name=aws.targets.region, aws_client_parameters=AwsClientParameters(
        endpoint_url=aws.endpoint_url, config={"retries": {"max_attempts": 1}}))
    # The run's log (INFO and up; botocore's own DEBUG lines, off unless asked for, print everything).
    with caplog.at_level(logging.INFO), pytest.raises(CredentialsRefused) as caught:
        session_clients(block, aws.targets.region)
    assert signatures_refused == [TOKEN]
    assert "SignatureDoesNotMatch" in str(caught.value)
    assert TOKEN not in str(caught.value)
    leaked = [r.getMessage() for r in caplog.records if TOKEN in r.getMessage()]
    assert not leaked, leaked
