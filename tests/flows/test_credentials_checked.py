"""A session without a role is checked with one STS GetCallerIdentity as it is made: keys AWS
takes for no call (expired, unknown) and an endpoint_url out of reach stop every run before it
changes anything, in one line with the remedy. They were found by the run's first real call,
as an adapter's error in the middle of its work. STS alone out of reach (a worker that reaches
AWS's services through VPC endpoints, none for STS) does not stop the run: it is logged."""

from __future__ import annotations

import logging
import socket

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters
from pydantic import SecretStr

from flows.env import CredentialsRefused
from flows.flags import set_flags
from flows.rollback import rollback
from rollway.flag_binding import FlagChange
from tests.flows.moto_env import saved_blocks

EXPIRED_KEY = "AKIAEXPIREDKEYS00000"
NEW_FLAG = [FlagChange(feature="new_editor", enabled=True, create=True)]


@pytest.fixture
def aws_refuses_expired_keys(monkeypatch):
    """AWS answers every call signed with EXPIRED_KEY ExpiredToken, as it does once temporary
    keys pass their expiry (moto takes any keys). Returns the calls it refused."""
    real = BaseClient._make_api_call
    refused: list[str] = []

    def answered(client, operation_name, api_params):
        credentials = client._request_signer._credentials
        if credentials is not None and credentials.access_key == EXPIRED_KEY:
            refused.append(f"{client.meta.service_model.service_name}:{operation_name}")
            raise ClientError({"Error": {"Code": "ExpiredToken",
                                         "Message": "The security token included in the request is expired"}},
                              operation_name)
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", answered)
    return refused


def _block(name: str, endpoint_url: str | None, key: str = "testing") -> str:
    AwsCredentials(aws_access_key_id=key, aws_secret_access_key=SecretStr("testing"), region_name="us-west-2",
                   aws_client_parameters=AwsClientParameters(endpoint_url=endpoint_url,
                                                             config={"retries": {"max_attempts": 1}}),
                   ).save(name, overwrite=True)
    return name


def test_expired_keys_stop_a_rollback_before_its_first_call(aws, aws_refuses_expired_keys):
    credentials = _block("expired-keys", aws.endpoint_url, key=EXPIRED_KEY)
    with pytest.raises(CredentialsRefused) as caught:
        rollback(reason="test", targets_block=saved_blocks(aws), aws_credentials_block=credentials)
    assert str(caught.value) == (
        "could not use the AWS credentials block 'expired-keys' (STS GetCallerIdentity): ExpiredToken: The security token included in "
        "the request is expired; nothing was changed; the credentials have expired: renew the keys of the "
        "AwsCredentials block (or of its profile) and run again")
    assert aws_refuses_expired_keys == ["sts:GetCallerIdentity"]


def test_a_request_refused_for_its_date_stops_the_run_saying_the_clock_or_a_hold_not_the_keys(aws, monkeypatch):
    """STS answered RequestExpired (a request dated more than 15 minutes off AWS's clock): the run
    stopped as for keys AWS takes for no call, "could not use the AWS credentials". Still stopped
    before its first write (on a clock that far off every call is refused alike), but said as what
    it is: the keys were not checked, and what to fix is the worker's clock."""
    real = BaseClient._make_api_call
    asked: list[str] = []

    def answered(client, operation_name, api_params):
        asked.append(f"{client.meta.service_model.service_name}:{operation_name}")
        if operation_name == "GetCallerIdentity":
            raise ClientError({"Error": {"Code": "RequestExpired", "Message": "Request has expired."}}, operation_name)
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", answered)
    credentials = _block("clock-off", aws.endpoint_url)
    with pytest.raises(CredentialsRefused) as caught:
        rollback(reason="test", targets_block=saved_blocks(aws), aws_credentials_block=credentials)
    message = str(caught.value)
    assert message.startswith("could not check the AWS credentials block 'clock-off' (STS GetCallerIdentity): RequestExpired: Request "
                              "has expired.; nothing was changed; the request reached AWS more than 15 minutes from "
                              "the time it was signed at"), message
    assert "renew the keys" not in message, message
    assert asked == ["sts:GetCallerIdentity"], asked


def test_an_endpoint_out_of_reach_stops_the_run_in_one_line(aws):
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    credentials = _block("endpoint-out-of-reach", f"http://127.0.0.1:{port}")
    with pytest.raises(CredentialsRefused) as caught:
        set_flags(changes=NEW_FLAG, targets_block=saved_blocks(aws), aws_credentials_block=credentials)
    message = str(caught.value)
    assert message.startswith("could not use the AWS credentials block 'endpoint-out-of-reach' (STS GetCallerIdentity): "
                              "EndpointConnectionError: "
                              f'Could not connect to the endpoint URL: "http://127.0.0.1:{port}/"'), message
    assert message.endswith("; nothing was changed; AWS could not be reached: check the worker's network and proxy "
                            "(HTTPS_PROXY), and the block's aws_client_parameters.endpoint_url if it sets one")


def test_sts_alone_out_of_reach_is_logged_and_the_run_goes_on(aws, monkeypatch, caplog):
    # AWS's own endpoints, no endpoint_url in the block: the services the run calls answer (here
    # moto, by botocore's per-service endpoint settings), STS does not.
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{port}")
    credentials = _block("sts-out-of-reach", None)
    with caplog.at_level(logging.WARNING):
        updates = set_flags(changes=NEW_FLAG, targets_block=saved_blocks(aws), aws_credentials_block=credentials)
    assert [u.feature for u in updates] == ["new_editor"]
    said = [r.getMessage() for r in caplog.records if "were not checked" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(
        "the AWS credentials (block 'sts-out-of-reach') were not checked before the run's first call: STS GetCallerIdentity failed "
        "(EndpointConnectionError: Could not connect to the endpoint URL"), said


def _role_block(name: str, endpoint_url: str, role: str) -> str:
    AwsCredentials(aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"), region_name="us-west-2",
                   assume_role_arn=role, aws_client_parameters=AwsClientParameters(
                       endpoint_url=endpoint_url, config={"retries": {"max_attempts": 1}}),
                   ).save(name, overwrite=True)
    return name


def test_a_role_is_not_asked_again(aws, every_call):
    """AssumeRole, made as the session is, proves the keys: no second STS call."""
    credentials = _role_block("role-checked", aws.endpoint_url, "arn:aws:iam::123456789012:role/rollway-release")
    asked = every_call("sts")
    set_flags(changes=NEW_FLAG, targets_block=saved_blocks(aws), aws_credentials_block=credentials)
    assert asked == ["AssumeRole"]


def test_the_infrastructure_flows_ask_sts_for_the_account_once(aws, every_call):
    """The session, made without a role, asks STS who the keys are: verify_infrastructure (and
    deploy_infrastructure, by the same path) asked again for the account right after, one more
    round trip before anything was read, waiting out the block's retries where STS is slow."""
    from flows.infra import ChecklistFailed, verify_infrastructure

    credentials = _block("keys-checked", aws.endpoint_url)
    asked = every_call("sts")
    with pytest.raises(ChecklistFailed):  # the bare embedded account has none of the stacks
        verify_infrastructure(targets_block=saved_blocks(aws), aws_credentials_block=credentials)
    assert asked == ["GetCallerIdentity"], asked


def test_the_infrastructure_flows_take_an_assumed_roles_account_from_its_arn(aws, every_call):
    """A role's credentials act in the role's account, which its ARN names: after AssumeRole, the
    run asked STS again for the account before reading anything."""
    from flows.infra import ChecklistFailed, verify_infrastructure

    credentials = _role_block("role-account", aws.endpoint_url, "arn:aws:iam::123456789012:role/rollway-infra")
    asked = every_call("sts")
    with pytest.raises(ChecklistFailed):  # the bare embedded account has none of the stacks
        verify_infrastructure(targets_block=saved_blocks(aws), aws_credentials_block=credentials)
    assert asked == ["AssumeRole"], asked


def test_a_rollback_of_another_accounts_cluster_is_refused_before_its_first_call(aws, every_call):
    """Every flow loads its session in one place: a rollback (or a finalize, a clean-up) of a cluster
    the targets place in another account acted on a same-named cluster of the credentials' account."""
    from blocks.targets import RollwayTargets
    from flows.env import AccountNotLoaded

    blocks = saved_blocks(aws, "other-account", fresh=True)
    theirs = "arn:aws:ecs:us-west-2:111122223333:cluster/webordinary-edit-cluster"
    RollwayTargets(**{**aws.targets.model_dump(), "cluster": theirs}).save(blocks, overwrite=True)
    calls = [every_call(service) for service in ("ecs", "elbv2", "dynamodb")]
    with pytest.raises(AccountNotLoaded, match=f"cluster {theirs} is in account 111122223333, but the AWS "
                                               "credentials are of account 123456789012"):
        rollback(reason="test", targets_block=blocks, aws_credentials_block=blocks)
    assert calls == [[], [], []]


SECRET_KEY = "rollway-secret-key-55/never+printed"


def test_a_rollback_refused_with_its_token_quoted_shows_no_secret_anywhere(aws, monkeypatch, caplog):
    """A rollback on an assumed role, its read of the target groups' health answered SignatureDoesNotMatch quoting the
    session token, as AWS quotes it: neither the token nor the block's secret key is in the run's
    log, its state, its parameters, an artifact, the ledger or the page."""
    from botocore.httpsession import URLLib3Session
    from prefect.client.orchestration import get_client

    from tests.adapters.test_credentials_secrets import _signature_refused
    from tests.flows.moto_env import inbox
    from tests.flows.test_rollback_inactive_revision import deregistered_since, pages

    deregistered_since(aws, stable_moved=True)  # a rollout at 5 % no live run owns
    url = inbox(aws)
    blocks = saved_blocks(aws)
    AwsCredentials(aws_access_key_id="secret-leak-test", aws_secret_access_key=SecretStr(SECRET_KEY),
                   region_name="us-west-2", assume_role_arn="arn:aws:iam::123456789012:role/rollway-deployer",
                   aws_client_parameters=AwsClientParameters(endpoint_url=aws.endpoint_url,
                                                             config={"retries": {"max_attempts": 1}}),
                   ).save("secret-leak", overwrite=True)
    real, quoted = URLLib3Session.send, []

    def send(session, request):
        token = request.headers.get("X-Amz-Security-Token")
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        if token is None or b"Action=DescribeTargetHealth" not in body:
            return real(session, request)
        quoted.append(token.decode() if isinstance(token, bytes) else token)
        return _signature_refused(request)

    monkeypatch.setattr(URLLib3Session, "send", send)
    with caplog.at_level(logging.INFO):
        state = rollback(reason="errors", actor="oncall", targets_block=blocks, aws_credentials_block="secret-leak",
                         return_state=True)
    monkeypatch.undo()
    # Asked once: the same keys sign a second ask the same way (the task's retries only delayed
    # the rollback's failure, and logged the refusal again each time).
    assert len(quoted) == 1, f"DescribeTargetHealth asked {len(quoted)} times"
    assert state.is_failed() and "SignatureDoesNotMatch" in state.message, state.message

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        artifacts = client.read_artifacts()
    ledger = aws.get_client("dynamodb").scan(TableName=aws.targets.rollouts_table)["Items"]
    shown = {
        "state": state.message, "parameters": repr(run.parameters),
        "log": "\n".join(r.getMessage() for r in caplog.records),
        "artifacts": repr([a.data for a in artifacts if a.flow_run_id == run.id]),
        "ledger": repr(ledger), "pages": repr(pages(aws, url)),
    }
    assert "SignatureDoesNotMatch" in shown["ledger"] and "SignatureDoesNotMatch" in shown["pages"]
    for secret in {*quoted, SECRET_KEY}:
        leaked = [where for where, text in shown.items() if secret in text]
        assert not leaked, f"{secret[:12]}... shown in: {leaked}"
