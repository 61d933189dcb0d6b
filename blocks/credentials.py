"""The one place AWS clients come from: prefect-aws's AwsCredentials.

A real account uses an AwsCredentials block saved in Prefect; the embedded AWS is the same
block type with ``aws_client_parameters.endpoint_url`` pointing at the local moto server.
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any, Callable

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError, ConnectTimeoutError, NoCredentialsError, ReadTimeoutError

from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters
from pydantic import SecretStr

from rollway.aws.errors import (ConnectUnanswered, ReadUnanswered, RoleRenewalRefused, answer_on_one_line, attempt_lost,
                                credentials_remedy)
from rollway.aws.regions import unknown_region
from rollway.deadline import read_bound

ClientFactory = Callable[[str], Any]

# An IAM role's ARN in any partition (aws, aws-cn, aws-us-gov, aws-iso, ...): role names and paths
# take letters, digits and +=,.@_- (IAM's own rule).
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")

# Standard retry mode: botocore's own backoff for throttling and transient errors, so no
# adapter writes a retry loop of its own. The rollout's clients move traffic, scale services
# and page, with no retry of their own around the call (a rollback's ModifyRule among them):
# six attempts, whose backoff outlasts an account's API throttling for up to half a minute.
_RETRY_CONFIG = {"retries": {"mode": "standard", "max_attempts": 5}}
# Each of those attempts may take this long: the AWS calls rollway makes answer in well under a
# second, so an attempt past ten seconds will not answer (botocore's 60 s held a thread for
# minutes on an endpoint that never answers).
_ATTEMPT_SECONDS = 10.0
# Clients that only read, under a bound of their own (``read_seconds``): three attempts, the AWS
# SDKs' standard default, each a share of the bound, so more attempts would cut each one shorter.
_BOUNDED_RETRY_CONFIG = {"retries": {"mode": "standard", "max_attempts": 2}}
# A connection is made in milliseconds where it can be made at all.
_CONNECT_SECONDS = 5.0
# moto's server answers every error with HTTP 500, which standard mode retries; botocore's
# max_attempts counts retries, not the first call, so this is one call and one retry: a refused
# call does not stretch into seconds of backoff, and a dropped connection is still sent again.
_EMBEDDED_CONFIG = {"retries": {"mode": "standard", "max_attempts": 1}}


# botocore parses a service's model files once per loader, and every boto3 Session builds a loader
# of its own: a worker that builds its clients for each flow run parsed the same JSON every time
# (most of a client's cost). Parsed models are read-only, so sessions share one loader per
# data path (AWS_DATA_PATH may differ between sessions).
_LOADERS: dict[str | None, botocore.loaders.Loader] = {}
_LOADERS_LOCK = threading.Lock()


def credentials_named(credentials: AwsCredentials) -> str:
    """The credentials as a message names them: "the AWS credentials block 'release'" for a saved
    block, "the AWS credentials" for one made in place (boto3's default chain, no block named).
    AWS's own words (ExpiredToken, AccessDenied) name no block: a person with several saved had to
    guess which one to fix."""
    name = _block_name(credentials)
    return f"the AWS credentials block {name!r}" if name else "the AWS credentials"


def _block_name(credentials: AwsCredentials) -> str | None:
    """The name the block was saved (and loaded) under; None for one made in place."""
    return getattr(credentials, "_block_document_name", None)


def in_block(credentials: AwsCredentials) -> str:
    """" (block 'release')" after the credentials or one of their fields, for a saved block."""
    name = _block_name(credentials)
    return f" (block {name!r})" if name else ""


def _sharing_models(session: boto3.Session) -> boto3.Session:
    core = session._session  # boto3 has no public accessor for its botocore session
    with _LOADERS_LOCK:
        loader = _LOADERS.setdefault(core.get_config_variable("data_path"), core.get_component("data_loader"))
    core.register_component("data_loader", loader)
    return session


def credentials_for_endpoint(endpoint_url: str, region: str) -> AwsCredentials:
    """AwsCredentials for an AWS-compatible endpoint on this machine (the embedded AWS).

    The key pair is moto's placeholder; it is still kept as a SecretStr so that it never
    prints.
    """
    return AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key=SecretStr("testing"),
        region_name=region,
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint_url, config=_EMBEDDED_CONFIG),
    )


def client_factory(credentials: AwsCredentials, region: str | None = None,
                   read_seconds: float | None = None) -> SessionClients:
    """A ``get_client(service_name)`` callable backed by the credentials block.

    One client per service for the factory's life: prefect-aws's own cache holds only eight
    clients per process, fewer than a rollout uses, and rebuilding a boto3 client costs
    tens of milliseconds. boto3 clients are thread-safe, so the simulator and the flows
    share them. An unset retry config gets standard mode, and unset timeouts a share of
    ``read_seconds`` (``client_limits``).

    Args:
        credentials: the block.
        region: where the service lives (``Targets.region``). A block that names no region
            gets it; otherwise its clients would follow the worker's AWS_DEFAULT_REGION and
            act on another region's load balancer.
        read_seconds: for clients that only read, how long one call may take, all its attempts
            together (the bound of the reads given up on: ``rollway.deadline``); None for the
            rollout's clients, which write (``client_limits``): reads made under a bound of
            their own on the same session take ``SessionClients.reading``.

    Raises:
        ValueError: ``read_seconds`` is not a read's bound (``read_bound``); the block names a
            region other than ``region``, holds a session token, or an assume_role_arn that is not an IAM role's ARN; or the region is not one of AWS's
            (``rollway.aws.regions``: one of no AWS partition's form only with an endpoint_url),
            all before any call.
        NoCredentialsError: neither the block nor the worker gives any credentials.
        ClientError, BotoCoreError: the block's role could not be assumed, or its profile is not
            on the worker.
    """
    if read_seconds is not None:
        read_bound(read_seconds)
    if credentials.aws_session_token:
        # prefect-aws keeps the token as a plain string: Prefect stores it unmasked, the UI
        # shows it and a repr prints it. Temporary credentials come from assume_role_arn
        # (renewed here) or a profile instead, so no secret lives outside a SecretStr.
        named = f" {_block_name(credentials)!r}" if _block_name(credentials) else ""
        raise ValueError(
            f"the AWS credentials block{named} holds aws_session_token, which prefect-aws stores and shows "
            "in plain text: remove it and use assume_role_arn (or a profile) for temporary credentials"
        )
    if credentials.assume_role_arn and not _ROLE_ARN.fullmatch(credentials.assume_role_arn):
        # Sent as it was, a role's name (or a user's ARN) came back as STS's ValidationError or
        # AccessDenied, which names no field of the block.
        raise ValueError(
            f"the AWS credentials' assume_role_arn {credentials.assume_role_arn!r}{in_block(credentials)} is not an "
            "IAM role's ARN (arn:aws:iam::<account id>:role/<name>): give the role's whole ARN"
        )
    if region is not None:
        if credentials.region_name is None:
            credentials = credentials.model_copy(update={"region_name": region})
        elif credentials.region_name != region:
            raise ValueError(
                f"the AWS credentials{in_block(credentials)} are for region {credentials.region_name}, the service "
                f"is in {region} (Targets.region): set one of them so that they agree"
            )
    if credentials.region_name is not None and (unknown := unknown_region(
            credentials.region_name, custom_endpoint=credentials.aws_client_parameters.endpoint_url is not None)):
        # botocore builds a client for any well-formed name: the first call then failed to
        # connect to an endpoint that does not exist, once the run had begun.
        raise ValueError(f"region {credentials.region_name!r} is not a region of AWS: {unknown}; set the region "
                         "of the targets (or the AWS credentials' region_name) to one AWS has")
    block_parameters = credentials.aws_client_parameters
    credentials = credentials.model_copy(
        update={"aws_client_parameters": _limited(block_parameters, read_seconds)})
    # An assumed role's credentials last an hour by default; prefect-aws assumes the role once
    # and keeps the result, so a rollout longer than that (bakes, approvals, the monitoring
    # window), and its rollback, would fail with ExpiredToken.
    session = _sharing_models(assumed_role_session(credentials) if credentials.assume_role_arn
                              else credentials.get_boto3_session())
    if session.get_credentials() is None:
        # boto3 looks for credentials only at a client's first call, inside a flow's first task:
        # retried seconds apart, it ended the run on a bare "Unable to locate credentials". The
        # chain is looked through once per session either way (the session keeps what it found).
        raise NoCredentialsError()
    clients = SessionClients(session, block_parameters, credentials.region_name, read_seconds)
    if credentials.assume_role_arn:  # its calls act in the role's account, which its ARN names
        clients.role_account = credentials.assume_role_arn.split(":")[4]
    return clients


def _limited(parameters: AwsClientParameters, read_seconds: float | None) -> AwsClientParameters:
    """The block's client parameters with its ``config`` filled in (``client_limits``)."""
    return parameters.model_copy(update={"config": client_limits(parameters.config, read_seconds)})


def client_limits(config: dict[str, Any] | None, read_seconds: float | None = None) -> dict[str, Any]:
    """The block's client ``config`` with what it leaves unset filled in: standard retries and
    timeouts. What the block sets itself is kept.

    A read given up on (``rollway.deadline.answered``) is not cancelled: it goes on in its thread.
    On botocore's defaults (60 s per socket read, retried) it held that thread and its connection
    for minutes after its bound, then failed with no one to hear it. With ``read_seconds``, the
    timeouts share it among three attempts: a call to an endpoint that never answers ends within
    ``read_seconds`` and botocore's backoff between the attempts (under a second, then two).
    Without it (the rollout's clients, which write), six attempts of ten seconds: fewer would
    give a rollback's traffic move up to API throttling in a busy account.
    """
    config = dict(config or {})
    if read_seconds is None:
        config.setdefault("retries", _RETRY_CONFIG["retries"])
        per_attempt = _ATTEMPT_SECONDS
    else:
        config.setdefault("retries", _BOUNDED_RETRY_CONFIG["retries"])
        per_attempt = read_seconds / _attempts(config["retries"])
    config.setdefault("read_timeout", per_attempt)
    config.setdefault("connect_timeout", min(per_attempt, _CONNECT_SECONDS))
    return config


def _attempts(retries: dict[str, Any]) -> int:
    """How many times botocore sends a call with these ``retries`` settings, the first included."""
    if "total_max_attempts" in retries:
        return max(1, int(retries["total_max_attempts"]))
    if "max_attempts" in retries:  # retries only, the first call not counted
        return max(0, int(retries["max_attempts"])) + 1
    return 3 if retries.get("mode") in ("standard", "adaptive") else 5  # botocore's defaults


def _naming_bounds(client: Any) -> Any:
    """``client``, whose timeouts say the bound they were given: botocore's "Read timeout on
    endpoint URL" named no time, and read as an endpoint refusing at once."""
    config = client.meta.config
    attempts = _attempts(config.retries or {})

    def naming(exception: BaseException | None = None, context: dict[str, Any] | None = None, **_: Any) -> None:
        # The attempts botocore made: fewer than its retries allow where a call was not sent again
        # (a Publish whose answer was lost, ``_publishing_once``).
        made = ((context or {}).get("retries") or {}).get("attempt", attempts)
        # Raised from botocore's after-call-error event, the error replaces botocore's own; a
        # subclass of it, so that what catches botocore's still catches it.
        if isinstance(exception, ReadTimeoutError) and not isinstance(exception, ReadUnanswered):
            raise ReadUnanswered(endpoint_url=exception.kwargs.get("endpoint_url"), attempts=made,
                                 seconds=made * config.read_timeout, timeout=config.read_timeout) from exception
        if isinstance(exception, ConnectTimeoutError) and not isinstance(exception, ConnectUnanswered):
            raise ConnectUnanswered(endpoint_url=exception.kwargs.get("endpoint_url"), attempts=made,
                                    seconds=made * config.connect_timeout,
                                    timeout=config.connect_timeout) from exception

    client.meta.events.register("after-call-error", naming)
    return client


# A session token as an AWS answer quotes it: SignatureDoesNotMatch's message holds the canonical
# request AWS expected, signed headers with their values (``x-amz-security-token:<token>``), and a
# presigned request's query (``X-Amz-Security-Token=<token>``).
_QUOTED_TOKEN = re.compile(r"(x-amz-security-token\s*[:=]\s*)[^\s'\"&<]+", re.IGNORECASE)


def _masking_tokens(client: Any) -> Any:
    """``client``, whose error answers say a session token they quote as ``****``, on one line.

    Temporary credentials (an assumed role's, a worker's task or instance role's) sign every call
    with their token, and AWS's SignatureDoesNotMatch quoted it back: the error's text carried it
    into the run's log, its failed state, the ledger and the page. Masked in the answer before
    botocore makes its error of it, so no message built from the error can hold it. Made one
    line there too (``answer_on_one_line``), for every ClientError of every flow at once: one
    raised as it came (a read no adapter wraps) put AWS's line breaks and escape sequences, or a
    proxy's HTML page, into the failed run's state message, its log, a rollback's page and the
    ledger.
    """
    client.meta.events.register("after-call", _masked)
    return client


def _masked(parsed: dict[str, Any] | None = None, **_: Any) -> None:
    """``parsed``'s error message, a session token it quotes masked, on one line (``_masking_tokens``)."""
    error = (parsed or {}).get("Error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("Message"), str):
        # Masked first: the one line bounds the text, which must not cut a token in two.
        error["Message"] = answer_on_one_line(_QUOTED_TOKEN.sub(r"\1****", error["Message"]))


def _publishing_once(client: Any) -> Any:
    """``client``, which never sends a Publish again after an attempt whose answer may have been lost
    (``attempt_lost``: a read timeout, a dropped connection, a 5xx), whatever its retries: that
    attempt's error is the call's, as if it were the last attempt (a 5xx raised as the client raises
    one).

    SNS sends what people read: botocore's resend of a Publish SNS had taken reached them twice, and
    when the resend was answered the notifier, and the run, read one clean send. What is sent again
    after a lost answer is the notifier's callers' to decide (``notify_or_repeat`` sends a notice once
    more saying it may repeat the one before). What SNS did not take (throttling, a connection never
    made) and the topic lookup keep the block's retries: an alert of a paused run, sent without a
    task, has no other."""
    def once(caught_exception: BaseException | None = None, response: Any = None, operation: Any = None,
             **_: Any) -> None:
        # Raised from botocore's needs-retry event, before botocore sleeps and resends: a handler's
        # answer there only ever asks for a retry, on the botocore versions rollway runs on, never
        # stops one. Its last handler (``register_last``): the notifier's ``lost_answers`` reads the
        # attempt first, and says a 5xx whose code names no failure of SNS's (a proxy's 502) lost.
        # Still before botocore's own retry handler, registered on ``needs-retry.sns`` (botocore calls
        # a more specific event's handlers first): standard mode takes its retry quota there, and gives
        # it back only once a resend is answered, so a quota taken for each resend stopped here would
        # have left later throttled calls of this client with no retries.
        if not attempt_lost(caught_exception, response):
            return
        if caught_exception is not None:
            raise caught_exception
        parsed = response[1]
        _masked(parsed)
        raise client.exceptions.from_code(parsed.get("Error", {}).get("Code"))(parsed, operation.name)

    client.meta.events.register_last("needs-retry.sns.Publish", once)
    return client


# The identity check's own limits: botocore's defaults (a 60-s connect timeout, the block's
# retries) held a run for minutes before its first step where STS is out of reach.
_PROBE_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 2})


class SessionClients:
    """``get_client(service_name)``: one client per service on one boto3 session, made when
    first asked for (thread-safe)."""

    def __init__(self, session: boto3.Session, parameters: AwsClientParameters, region: str | None,
                 read_seconds: float | None = None) -> None:
        self._session = session
        self._parameters, self._region = parameters, region
        # What prefect-aws's own get_client passes: the block's client parameters and its region.
        self._params = {**_limited(parameters, read_seconds).get_params_override(), "region_name": region}
        self._clients: dict[str, Any] = {}
        self._readers: dict[float, SessionClients] = {}
        self._lock = threading.Lock()
        # STS's answer to ``caller_identity``, once it has been asked: who the credentials are
        # (UserId, Account, Arn), kept so the run does not ask STS again for its account.
        self.identity: dict[str, str] | None = None
        # The account of the role the session assumed, if any (read from its ARN, no call).
        self.role_account: str | None = None

    @property
    def account(self) -> str | None:
        """The account the clients act in, as known without a call: STS's answer, or the assumed
        role's; None when neither is known (STS out of reach). Read once per run."""
        return (self.identity or {}).get("Account") or self.role_account

    def __call__(self, service_name: str) -> Any:
        with self._lock:
            if service_name not in self._clients:
                client = _masking_tokens(_naming_bounds(self._session.client(service_name, **self._params)))
                self._clients[service_name] = _publishing_once(client) if service_name == "sns" else client
            return self._clients[service_name]

    def reading(self, read_seconds: float) -> SessionClients:
        """Clients on the same session (its credentials, proved once) for reads made under a bound
        of their own, ``read_seconds``, all of a call's attempts together (``client_limits``).

        A read given up on at its bound goes on in its thread: on the rollout's clients (six
        attempts of ten seconds) a read under a shorter bound (a validation check's
        ``timeout_seconds``) went on for up to a minute after it, and its call still landed
        after the run had said it timed out. Its timeout names the bound (``_naming_bounds``).

        Raises:
            ValueError: ``read_seconds`` is not a read's bound (``read_bound``), before any call.
        """
        read_bound(read_seconds)
        with self._lock:  # one per bound: a rollout's waits read back under the same few bounds
            if read_seconds not in self._readers:
                self._readers[read_seconds] = SessionClients(self._session, self._parameters, self._region,
                                                             read_seconds)
            bounded = self._readers[read_seconds]
        bounded.identity, bounded.role_account = self.identity, self.role_account
        return bounded

    def caller_identity(self) -> dict[str, Any]:
        """STS GetCallerIdentity with the session's credentials: the cheapest call that proves
        AWS takes them (it needs no IAM permission, and an explicit deny cannot refuse it).

        On a client of its own, with short timeouts and one retry, so that an STS out of reach
        is known in seconds. The answer's three facts are kept as ``identity``.

        Raises:
            ClientError, BotoCoreError: as botocore does.
        """
        config = self._params.get("config")
        params = {**self._params, "config": config.merge(_PROBE_CONFIG) if config is not None else _PROBE_CONFIG}
        answer = _masking_tokens(_naming_bounds(self._session.client("sts", **params))).get_caller_identity()
        # Only what names the caller: the rest (ResponseMetadata, its request id and headers) is
        # of this one call.
        self.identity = {key: answer[key] for key in ("UserId", "Account", "Arn") if isinstance(answer.get(key), str)}
        return answer


def assumed_role_session(credentials: AwsCredentials) -> boto3.Session:
    """A boto3 session on the block's assumed role whose credentials renew themselves.

    botocore's RefreshableCredentials calls AssumeRole again before the current credentials
    expire, under its own lock; every client of the session signs with the renewed ones.
    AssumeRole goes through the block's client parameters (its endpoint_url): prefect-aws's own
    ``get_boto3_session`` sends it to the public STS endpoint whatever the block says.
    """
    base = credentials.model_copy(update={"assume_role_arn": None}).get_boto3_session()
    # The base credentials may be temporary too (a profile's, the worker's role's).
    sts = _masking_tokens(base.client("sts", **credentials.aws_client_parameters.get_params_override()))
    params = {"RoleArn": credentials.assume_role_arn, **credentials.assume_role_kwargs.get_params_override()}
    params.setdefault("RoleSessionName", f"rollway-{uuid.uuid4().hex[:8]}")

    def assume() -> dict[str, str]:
        issued = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": issued["AccessKeyId"],
            "secret_key": issued["SecretAccessKey"],
            "token": issued["SessionToken"],
            "expiry_time": issued["Expiration"].isoformat(),
        }

    # The call each thread is making: a renewal happens as that call is signed.
    making = threading.local()

    def renew() -> dict[str, str]:
        # Renewed in the middle of some other call, whose own error then said only "AccessDenied
        # when calling the AssumeRole operation", taken for a refusal of that call's permission
        # (and sent people to the CDK bootstrap roles' statement, the policies' only AssumeRole).
        try:
            return assume()
        except ClientError as err:
            raise RoleRenewalRefused(err, credentials.assume_role_arn or "", getattr(making, "call", "?"),
                                     credentials_remedy(err, "sts:AssumeRole on that role")) from err

    def calling(model: Any, **_: Any) -> None:
        making.call = f"{model.service_model.service_name} {model.name}"

    core = botocore.session.get_session()
    core.register("before-call", calling)
    # botocore has no public setter for a session's credential object; this is the usual way.
    core._credentials = RefreshableCredentials.create_from_metadata(
        metadata=assume(), refresh_using=renew, method="sts-assume-role"
    )
    return boto3.Session(botocore_session=core, region_name=credentials.region_name)
