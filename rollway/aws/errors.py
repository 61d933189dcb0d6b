"""Named exceptions raised inside the AWS adapters.

Callers catch these by name; each message names the value that was wrong so a person can
act on it without reading a traceback.
"""

from __future__ import annotations

import contextvars
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import (ClientError, ConnectionClosedError, ConnectTimeoutError, HTTPClientError,
                                 ReadTimeoutError)
from botocore.exceptions import ConnectionError as NoConnection

from rollway.bounds import as_given, wait_said
from rollway.errors_pickle import PicklableError
from rollway.failure_words import error_said, text_said
from rollway.model import Weights
from rollway.one_line import on_one_line


class _BoundSaid:
    """Says a botocore timeout's ``seconds`` (all its attempts) and ``timeout`` (each) as given:
    botocore formats ``fmt`` with the keyword arguments, where ``:g`` said 1234567 s "1.23457e+06 s".
    The figures said are kept beside them, and made again when a pickle rebuilds the error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # args: botocore's request and response, unpickled
        # The total is attempts times the setting, kept to the microsecond: 3 x 0.1 s is 0.30000000000000004.
        super().__init__(*args, **{**kwargs, "seconds_said": as_given(round(kwargs["seconds"], 6)),  # type: ignore[call-arg]
                            "timeout_said": as_given(kwargs["timeout"])})


class ReadUnanswered(_BoundSaid, ReadTimeoutError):
    """botocore's ReadTimeoutError (callers catch it as that), saying the bound it was given: its
    own message named the endpoint only, as if the read had waited for nothing in particular."""

    fmt = ('Read timeout on endpoint URL: "{endpoint_url}": no answer within {seconds_said} s '
           '({attempts} attempt(s) of {timeout_said} s each)')


class ConnectUnanswered(_BoundSaid, ConnectTimeoutError):
    """botocore's ConnectTimeoutError, saying the bound it was given (as ``ReadUnanswered``)."""

    fmt = ('Connect timeout on endpoint URL: "{endpoint_url}": no connection within {seconds_said} s '
           '({attempts} attempt(s) of {timeout_said} s each)')


class AdapterError(RuntimeError):
    """Base of every error an AWS adapter raises on purpose."""


class AnswerLost(PicklableError, RuntimeError):
    """A call failed without saying whether AWS acted on it (``answer_lost``): it was sent, and
    its answer was lost. Not an AdapterError: a task retries it as it retried the error it wraps.

    Attributes:
        call: what was sent ("SNS Publish").
        error: AWS's or botocore's error, in one line (``aws_message``).
        code: the code of AWS's answer to the last attempt ("" when it was no AWS answer): a
            refusal there (AccessDenied) is what a task's retry would get again.
    """

    def __init__(self, call: str, err: BaseException) -> None:
        self.call = call
        self.error = aws_message(err) if isinstance(err, Exception) else str(err)
        self.code = error_code(err) if isinstance(err, ClientError) else ""
        super().__init__(f"{call} sent, and its answer lost ({self.error}): AWS may have acted on it")


class WeightMismatch(PicklableError, AdapterError):
    """The load balancer showed weights other than the ones just set.

    Its message is quoted where a person reads it later (a rollback's page, a failed run's error
    in the hook's page, a ledger entry), when the load balancer may hold other weights (the write
    landed since, or a rollback moved them): it says what was read and when, not what it holds.

    Attributes:
        expected: the weights that were asked for.
        actual: the weights read back.
        seconds: how long the read-back waited for ``expected`` (its ``verify_timeout_seconds``);
            None: read once, no wait.
    """

    def __init__(self, expected: Weights, actual: Weights, seconds: float | None = None) -> None:
        self.expected = expected
        self.actual = actual
        self.seconds = seconds
        super().__init__(
            f"the load balancer holds weights {actual} (stable/canary), not the {expected} set" if seconds is None else
            f"the load balancer held weights {actual} (stable/canary), not the {expected} set, when the read-back "
            f"ended after {wait_said(seconds)} (verify_timeout_seconds)"
        )


class RuleForwardsNowhere(AdapterError):
    """A listener rule forwards to no target group (a fixed-response maintenance page or a redirect
    put on it by hand): it holds no weights to read, and a write of the forward's weights leaves it
    as it is. A rollback stopped by it is run again once the rule forwards to the groups again,
    not once the stable service can take the traffic, which it could all along."""


class RulesOnPath(AdapterError):
    """More than one listener rule on the rule's path (and host) forwards to the stable or canary group,
    and which of them rollway shifts is not known: the message names them, and how to tell the one
    apart (its host in rule_host, or a path of its own). A rollback stopped by it is run again once
    that is done, not once the stable service can take the traffic, which it could all along."""


class OtherGroupsForwarded(PicklableError, AdapterError):
    """A listener rule also forwards to target groups other than stable and canary: a shift
    writing the two alone would silently take that traffic away, and the weights read back would
    leave its share out. The message advises a rollout (remove the group, or roll back).

    Attributes:
        found: what the rule holds and why that stops a shift, without advice (a caller for which
            a rollback is not the way out, such as finalize after a promotion, gives its own).
        them: "it" or "them", the group or groups, for that advice.
    """

    def __init__(self, rule_arn: str, named: str, count: int, besides: str = "as well as to stable and canary") -> None:
        # ``besides``: which of stable and canary the rule forwards to too (``elbv2._refuse_other_groups``).
        self.them = "it" if count == 1 else "them"
        self.found = (f"rule {rule_arn} forwards to {named} {besides}, and a shift writing stable and canary alone "
                      "would silently take that traffic away")
        super().__init__(f"{self.found}: remove {self.them} from the rule, or roll the rollout back, which moves all "
                         f"the traffic to stable and drops {self.them} from the rule")


class TargetNotFound(PicklableError, AdapterError):
    """A named AWS resource does not exist.

    Attributes:
        kind: what was looked for ("target group", "SNS topic", ...).
        name: the name or ARN that was not found.
    """

    def __init__(self, kind: str, name: str, detail: str = "") -> None:
        self.kind = kind
        self.name = name
        suffix = f": {detail}" if detail else ""
        super().__init__(f"{kind} {name!r} not found{suffix}")


class ServiceNotStable(PicklableError, AdapterError):
    """ECS services did not reach a steady state in time.

    Attributes:
        services: the services that were waited for.
        timeout_seconds: how long the wait could last.
        timed_out: False when waiting longer could not help (the message then claims no time).
    """

    def __init__(
        self, services: Sequence[str], timeout_seconds: float, detail: str = "", *, timed_out: bool = True
    ) -> None:
        self.services = tuple(services)
        self.timeout_seconds = timeout_seconds
        self.timed_out = timed_out
        suffix = f": {detail}" if detail else ""
        after = f" after {wait_said(timeout_seconds)}" if timed_out else ""
        super().__init__(f"services {', '.join(self.services)} not stable{after}{suffix}")


class ServiceGone(ServiceNotStable, TargetNotFound):
    """A service waited for does not exist or is being deleted: found at once, not a timeout.

    Both a ServiceNotStable (``services``: what was waited for) and a TargetNotFound (``name``:
    the one missing), so a caller catching either name sees it.
    """

    def __init__(self, services: Sequence[str], name: str, detail: str) -> None:
        self.services = tuple(services)
        self.timeout_seconds = 0.0
        self.timed_out = False
        self.kind = "ECS service"
        self.name = name
        AdapterError.__init__(self, f"ECS service {name!r} not found {detail} (waiting for {', '.join(self.services)})")


# The statuses of a revision ECS points no service at, as said to a person: deregistered, or deleted
# (DeleteTaskDefinitions after the deregistration) and kept, read-only, while a service or task still runs it.
NOT_TAKEN = {"INACTIVE": "deregistered", "DELETE_IN_PROGRESS": "deleted"}


class TaskDefinitionInactive(PicklableError, AdapterError):
    """ECS refused to point a service at a task definition revision that was deregistered
    (INACTIVE), or deleted since (DELETE_IN_PROGRESS): tasks already running on it keep running,
    but no service may be pointed at it again, so asking again cannot help.

    Attributes:
        task_definition: the revision, as it was named.
        service: the service that was to be pointed at it.
        status: the revision's status, a key of ``NOT_TAKEN``.
    """

    def __init__(self, task_definition: str, service: str, detail: str = "", *, status: str = "INACTIVE") -> None:
        self.task_definition = task_definition
        self.service = service
        self.status = status
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"task definition {task_definition} is {status} ({NOT_TAKEN.get(status, 'deregistered')}): "
                         f"ECS will not point {service} at it{suffix}")


class NoDatapoints(PicklableError, AdapterError):
    """A metric query returned no datapoints where some were required.

    Attributes:
        metric: the metric (and dimensions) that had none.
    """

    def __init__(self, metric: str, detail: str = "") -> None:
        self.metric = metric
        suffix = f": {detail}" if detail else ""
        super().__init__(f"no datapoints for {metric}{suffix}")


SERVER_SIDE_CODES = frozenset({"InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable",
                               "ServiceUnavailableException", "ServerException"})
"""ClientError codes with which AWS says its own side failed: the call may have acted anyway."""

THROTTLED_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
                             "RequestThrottled", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown",
                             "ProvisionedThroughputExceededException", "PriorRequestNotComplete",
                             "TransactionInProgressException"})
"""ClientError codes with which AWS says it is busy, not that the call is wrong: the same call
asked again a moment later most often passes."""

# Besides being busy, AWS may not have answered in time: a later read most often gets past that too.
_PASSING_CODES = THROTTLED_CODES | SERVER_SIDE_CODES | {"RequestTimeout", "RequestTimeoutException"}


def server_side(err: ClientError) -> bool:
    """Whether AWS answered ``err`` for its own side failing (an internal error, a 5xx)."""
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return error_code(err) in SERVER_SIDE_CODES or status >= 500


def failed_in_passing(err: BaseException) -> bool:
    """Whether ``err`` is one a later read most often gets past: throttled, AWS's own side failing
    (an HTTP 5xx, ``server_side``), no connection or no answer; not an answer to what was asked."""
    if isinstance(err, ClientError):
        return error_code(err) in _PASSING_CODES or server_side(err)
    return isinstance(err, (NoConnection, HTTPClientError))


THROTTLED_ASKS = 3
"""How many times ``asked_while_throttled`` makes a call AWS keeps answering as throttled."""

T = TypeVar("T")


def backoff_seconds(attempt: int) -> float:
    """How long to wait before asking again after try ``attempt`` (0: the first) failed: a
    doubling bound, jittered, as botocore backs off, so that callers throttled together do not
    all ask again at the same instant."""
    return random.uniform(0, 0.5 * 2 ** attempt)


def tried(call: Callable[[], T], tries: int, wait: Callable[[int], float], *,
          final: Callable[[BaseException], bool],
          failed: Callable[[BaseException, int, float | None], None] = lambda *_: None,
          sleep: Callable[[float], None] | None = None) -> T:
    """``call()``, tried up to ``tries`` times, ``wait(n)`` seconds after try ``n`` (0: the first)
    failed: an error ``final`` names (one a second ask gets again) is raised at once, without a
    wait. ``failed(err, made, wait)`` sees every failed try, after ``made`` tries in all, with the
    wait before the next, or None when ``err`` is raised. ``sleep`` waits (None: ``time.sleep``,
    looked up at each wait, so that a test patching it, or a caller's clock, is the one that waits).

    Raises:
        Whatever the last ``call()`` raised, as it raised it.
    """
    for attempt in range(tries):
        try:
            return call()
        except Exception as err:  # noqa: BLE001 - asked again or raised as it came
            pause = None if final(err) or attempt + 1 == tries else wait(attempt)
            failed(err, attempt + 1, pause)
            if pause is None:
                raise
            (sleep or time.sleep)(pause)
    raise AssertionError("unreachable")


def asked_while_throttled(call: Callable[[], T], what: str | Callable[[BaseException], str], *,
                          say: Callable[[str], None] = lambda _: None,
                          sleep: Callable[[float], None] | None = None) -> T:
    """``call()``, asked again after ``backoff_seconds`` while AWS answers it is throttled
    (``THROTTLED_CODES``), ``THROTTLED_ASKS`` times in all: botocore's own retries of a bounded read
    are few, and a read throttled past them failed what it was for (a validation's checks not
    sent) on a busy account. Any other error is raised at once: a refusal or a bad request gets
    the same answer again. ``say`` gets a line before each new ask, naming ``what`` (or what it
    says of the throttled answer: a ``call`` making several calls names the one throttled).
    ``sleep``: as ``tried``'s.

    Raises:
        Whatever the last ``call()`` raised, as it raised it.
    """
    def asking_again(err: BaseException, made: int, wait: float | None) -> None:
        if wait is not None:
            said = what(err) if callable(what) else what
            say(f"{said} was throttled ({error_code(err)}); asking again in {wait_said(wait)} "
                f"({made + 1} of {THROTTLED_ASKS})")

    return tried(call, THROTTLED_ASKS, backoff_seconds, sleep=sleep, failed=asking_again,
                 final=lambda err: not isinstance(err, ClientError) or error_code(err) not in THROTTLED_CODES)


def answer_lost(err: BaseException) -> bool:
    """Whether ``err`` leaves unknown if AWS acted on a call that was sent: True when the request
    may have reached AWS and its answer did not come back.

    - ReadTimeoutError: the request was written and no answer was read in time; AWS may be
      acting on it still.
    - ConnectionClosedError: the connection dropped after the request went out (urllib3's
      ProtocolError: the peer closed it, or reset it, before a whole answer).
    - HTTPClientError (the base of both): any other failure of the HTTP exchange botocore did not
      name, which can come after the request was written.
    - a ClientError with a server-side code (``SERVER_SIDE_CODES``): AWS answered that its own
      side failed, which says nothing of whether the call took effect.

    - ``AnswerLost``: an adapter's word for one of the above (the SNS notifier's, where an earlier
      attempt lost its answer and the last was refused): read as lost, or "nobody was paged" was
      said of a page SNS may have delivered. The one reading for a bare botocore error and a
      wrapped one alike.

    Not lost: a connection never made (EndpointConnectionError, ConnectTimeoutError,
    ProxyConnectionError, SSLError in the handshake), credentials or parameters refused before
    sending, an adapter's own error, and an AWS answer naming a refusal (AccessDenied, NotFound,
    InvalidParameter, Throttled, ...): AWS did not act on the call.
    """
    if isinstance(err, (AnswerLost, ReadTimeoutError, ConnectionClosedError, HTTPClientError)):
        return True
    return isinstance(err, ClientError) and error_code(err) in SERVER_SIDE_CODES


def attempt_lost(caught_exception: BaseException | None, response: Any) -> bool:
    """Whether one attempt of a call, as botocore's ``needs-retry`` event gives it (the error it
    caught, or the HTTP answer and its parse), may have been acted on by AWS without its answer:
    ``answer_lost``, or an HTTP 5xx (the service's own side failed)."""
    if caught_exception is not None:
        return answer_lost(caught_exception)
    return response is not None and response[0].status_code >= 500


@contextmanager
def lost_answers(client: Any, operation: str, service: str) -> Iterator[list[BaseException]]:
    """The attempts of ``operation`` on ``client`` (botocore's resends of it) in this thread
    whose answers were lost (``answer_lost``, or an HTTP 5xx from ``service``), for the block
    only: the last attempt's error alone (a connection refused, say) reads as "not sent"."""
    lost: list[BaseException] = []
    caller = threading.get_ident()

    def attempt_failed(caught_exception: BaseException | None = None, response: Any = None, **_: Any) -> None:
        # Called after each attempt botocore makes, before it decides on a retry.
        if threading.get_ident() != caller:
            return  # the client is shared: another thread's call
        if attempt_lost(caught_exception, response):
            lost.append(caught_exception or RuntimeError(f"HTTP {response[0].status_code} from {service}"))

    with on_event(client, f"needs-retry.{client.meta.service_model.service_id.hyphenize()}.{operation}",
                  attempt_failed):
        yield lost


# The reads under way in this context, each a mark of its ``in_this_read`` block: a read given up
# on runs on in a thread of its own, in a copy of its caller's context (``rollway.deadline.within``),
# and so carries its own read's mark, never a later one's.
_READS: contextvars.ContextVar[frozenset[object]] = contextvars.ContextVar("rollway_reads", default=frozenset())


@contextmanager
def in_this_read(client: Any, event: str, handler: Callable[..., Any]) -> Iterator[None]:
    """``handler`` on ``client``'s botocore ``event`` for the block, for the calls of this block's
    read alone: made in its thread, or in one started in a copy of its context (``within``). The
    client may be shared: a read given up on, left running, went on to its next call during a
    later read of the same client, and that call was counted as the later read's."""
    mark = object()
    token = _READS.set(_READS.get() | {mark})

    def own(**kwargs: Any) -> Any:
        return handler(**kwargs) if mark in _READS.get() else None

    try:
        with on_event(client, event, own):
            yield
    finally:
        _READS.reset(token)


@contextmanager
def calls_begun(client: Any) -> Iterator[list[str]]:
    """The operations the block's read begins on ``client`` (``DescribeLoadBalancers``...), in
    order (``in_this_read``): a connection error or a read given up on names none, and the one that
    failed is the last."""
    begun: list[str] = []

    def beginning(model: Any = None, **_: Any) -> None:
        # Before its parameters are built: ahead of any handler of the call itself.
        begun.append(model.name)

    with in_this_read(client, f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}",
                      beginning):
        yield begun


@dataclass(frozen=True)
class ThrottledTry:
    """A try of a call AWS answered throttled: its ``operation``, AWS's ``code`` and ``message``,
    when the answer came (``at``, on the clock the caller gave) and when the try was sent (``sent``,
    on the same clock)."""

    operation: str
    code: str
    message: str
    at: float
    sent: float

    @property
    def said(self) -> str:
        """AWS's answer as a message quotes it (``answer_said``): taken at the try, before the run's
        clients make its message one line (``blocks.credentials``, after the last try)."""
        return answer_said(self.code, self.message)


@contextmanager
def throttled_tries(client: Any, clock: Callable[[], float]) -> Iterator[tuple[list[ThrottledTry], set[str]]]:
    """The tries the block's read makes on ``client`` (``in_this_read``; botocore's own resends
    each a try) that AWS answered throttled (``THROTTLED_CODES``), in order; an operation's are
    dropped once a try of it gets another answer (an answer, another error, no connection), so
    that those left are the ones since its last other answer. And the operations with a try sent
    and not answered yet: one still in flight when the read is given up on was not answered at
    all, throttled or otherwise. ``clock`` stamps each try: the one the read's bound is measured
    on (``rollway.deadline.BoundClock.now``), so that its times are on the bound's (a test's own)."""
    tries: list[ThrottledTry] = []
    in_flight: set[str] = set()
    sent_at: dict[str, float] = {}

    def sent(operation_name: str = "", **_: Any) -> None:
        # As each try is made, botocore's resends too (each is signed anew).
        in_flight.add(operation_name)
        sent_at[operation_name] = clock()

    def answered(operation: Any = None, response: Any = None, **_: Any) -> None:
        # After each try, before botocore decides on another: its only sight of each answer.
        in_flight.discard(operation.name)
        error = (response[1].get("Error") or {}) if response is not None else {}
        if error.get("Code") in THROTTLED_CODES:
            at = clock()
            tries.append(ThrottledTry(operation.name, error["Code"], str(error.get("Message") or ""), at,
                                      sent_at.get(operation.name, at)))
        else:
            tries[:] = [t for t in tries if t.operation != operation.name]

    service = client.meta.service_model.service_id.hyphenize()
    with in_this_read(client, f"request-created.{service}", sent), \
            in_this_read(client, f"needs-retry.{service}", answered):
        yield tries, in_flight


@contextmanager
def on_event(client: Any, event: str, handler: Callable[..., Any]) -> Iterator[None]:
    """``handler`` on ``client``'s botocore ``event`` for the block only: the client may be shared."""
    client.meta.events.register(event, handler)
    try:
        yield
    finally:
        client.meta.events.unregister(event, handler)


def never_reached(err: BaseException) -> bool:
    """Whether ``err`` says the call never reached AWS: no connection was made (botocore's
    ConnectionError: EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError, an
    SSLError in the handshake). AWS neither acted on the call nor refused it: what to fix is the
    way to it (the network, a proxy, the endpoint), not a permission or a resource."""
    return isinstance(err, NoConnection)


# AWS's answers to a caller its policies do not allow.
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
# And to credentials it does not know: no more worth a second ask, but no policy to name.
UNKNOWN_CREDENTIALS = frozenset({"UnrecognizedClientException", "InvalidClientTokenId"})
# And to a request the keys signed wrong (a secret key that is not the access key's): the same
# keys sign the next try the same way. A clock minutes off gets the same code from the query APIs
# (ELBv2, CloudWatch, STS: "Signature expired: ... is now earlier than ..."), which botocore does
# not correct: a retry seconds later is signed on the same clock, and fails the same way too.
BAD_SIGNATURE = frozenset({"SignatureDoesNotMatch", "IncompleteSignature"})
# What a second ask gets again: a task's retries only delay it (and log it once more each).
REFUSED_CODES = DENIED_CODES | UNKNOWN_CREDENTIALS | BAD_SIGNATURE


def error_code(err: ClientError) -> str:
    """The code of an AWS error answer ("" when it names none)."""
    return err.response.get("Error", {}).get("Code", "")


def aws_message(err: Exception, *, call: bool = False) -> str:
    """``Code: Message`` of an AWS error answer, or ``Type: text`` of a botocore failure (no
    credentials, no connection): one line saying what AWS said, for a message a person reads.

    ``call``: name the operation AWS answered too (``Code on ListTasks: Message``), as botocore's
    own text did, for a message about a read of several calls: which one to grant or look at."""
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code, message = error.get("Code", "error"), str(error.get("Message") or "")
        if call and err.operation_name:
            code = f"{code} on {err.operation_name}"
        return answer_said(code, message)
    return answer_on_one_line(error_said(err))


def answer_said(code: str, message: str) -> str:
    """An AWS error answer's ``code`` and ``message`` as ``aws_message`` says them: one line."""
    # Not str(err) for an empty message: botocore's sentence ends in ": " where it would be.
    return f"{code}: {answer_on_one_line(message)}" if message.strip() else f"{code} with no message"



def quoted(err: BaseException, *, call: bool = False) -> str:
    """A failure as a message quotes it: AWS's words as ``aws_message`` says them for a ClientError
    (one line, escaped; ``call``: naming the operation), where boto's text quoted them raw; an
    adapter's or botocore's own error as its own text, botocore's on one line (``text_said``:
    its ParamValidationError is several lines)."""
    return aws_message(err, call=call) if isinstance(err, ClientError) else text_said(err)

_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"})
# Not the keys: AWS's common error for a request that reached it more than 15 minutes from the
# date stamp it was signed with, or stamped more than 15 minutes ahead (HTTP 400, where expired keys
# are ExpiredToken, 403). The worker's clock, or a request held that long on its way.
_OUT_OF_DATE = frozenset({"RequestExpired"})
_UNKNOWN_KEYS = frozenset({"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                           "AuthFailure", "IncompleteSignature", "InvalidAccessKeyId"})
_UNREACHABLE = ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError",
                "ProxyConnectionError", "SSLError")


class RoleRenewalRefused(PicklableError, ClientError):
    """STS would not renew the AWS credentials' assumed role in the middle of a run (its trust
    policy changed, the keys that assume it expired or were deactivated): the call being made
    when the credentials came due was not sent.

    A ClientError still, with AssumeRole's code, so every adapter handles it as it handles a
    refused call; its message says it was the credentials' role, and what to change, not a
    permission the call itself lacks.

    Attributes:
        role_arn: the role that could not be renewed.
        call: the call that was not sent (``elbv2 DescribeRules``).
    """

    def __init__(self, err: ClientError, role_arn: str, call: str, remedy: str) -> None:
        self.role_arn, self.call = role_arn, call
        error = dict(err.response.get("Error", {}))
        error["Message"] = (f"{error.get('Message', '')} (renewing the AWS credentials' assumed role {role_arn}, due "
                            f"as {call} was to be sent, which was not; {remedy})")
        super().__init__({**err.response, "Error": error}, err.operation_name)


def unusable_credentials(err: Exception) -> bool:
    """Whether ``err`` says that AWS takes the credentials for no call at all (expired, keys it
    does not know, a signature it cannot check, a credential provider that failed), not that
    one call failed or one endpoint was out of reach."""
    if isinstance(err, ClientError):
        return error_code(err) in _EXPIRED | _UNKNOWN_KEYS
    return not _out_of_reach(err)


def _out_of_reach(err: Exception) -> bool:
    """Whether ``err`` is botocore's word for an endpoint that did not answer (``_UNREACHABLE``),
    by its class or a base: the credentials check's ConnectUnanswered and ReadUnanswered are
    botocore's timeouts under names of their own."""
    return any(kind.__name__ in _UNREACHABLE for kind in type(err).__mro__)


def request_out_of_date(err: Exception) -> bool:
    """Whether AWS refused ``err``'s request for the date it was signed at (RequestExpired): not
    the credentials (``unusable_credentials``), but on a worker clock that far off every call is
    refused alike, so it is no more worth going on with (``credentials_remedy`` says which)."""
    return isinstance(err, ClientError) and error_code(err) in _OUT_OF_DATE


# The query APIs' words for a request signed on a clock more than five minutes off AWS's:
# "Signature expired: ... is now earlier than ..." (behind), "Signature not yet current: ... is
# still later than ..." (ahead), under the same code as a wrong secret key.
_SKEWED_CLOCK = re.compile(r"signature expired|signature not yet current|is now earlier than|is still later than"
                           r"|time(stamp)? is out of range|request time.*too (large|skewed)", re.IGNORECASE)
_SYNC = "sync it (NTP, e.g. chrony or systemd-timesyncd)"
_CLOCK_REMEDY = (f"the worker's clock is off from AWS's by more than it allows (5 minutes for a signature, 15 for "
                 f"a request's date): {_SYNC}, then run again; the keys are not the cause")
# RequestExpired's: the clock's advice, and the one other way a request's date is that far off.
_OUT_OF_DATE_REMEDY = ("the request reached AWS more than 15 minutes from the time it was signed at: the worker's "
                       f"clock is off from AWS's ({_SYNC}, then run again), or, the clock right, the request was held "
                       "that long on its way (a proxy, a worker paused as it sent it), and running again is enough; "
                       "the keys are not the cause")


def _bad_signature_remedy(err: ClientError) -> str:
    """SignatureDoesNotMatch (InvalidSignatureException from the JSON APIs): AWS knew the access
    key id (it had a secret to check against), so the keys are not unknown; either the worker's
    clock is off, or the secret is not that key's."""
    if _SKEWED_CLOCK.search(str(err.response.get("Error", {}).get("Message") or "")):
        return _CLOCK_REMEDY
    return ("the secret key does not match the access key id: check aws_secret_access_key (with "
            "aws_access_key_id) of the AwsCredentials block (or of its profile)")


def credentials_remedy(err: Exception, call: str) -> str:
    """What a person does about a call with the run's AWS credentials that failed (``call``: the
    API action, e.g. ``sts:AssumeRole``): botocore's own words (``Unable to locate credentials``,
    ``Could not connect to the endpoint URL``) name the symptom, not which setting to change."""
    if isinstance(err, ClientError):
        code = error_code(err)
        if code in _OUT_OF_DATE:
            return _OUT_OF_DATE_REMEDY
        if code in ("SignatureDoesNotMatch", "InvalidSignatureException"):
            return _bad_signature_remedy(err)
        if code == "IncompleteSignature":
            # The request reached AWS without all of its signature (a header dropped on the way): the
            # keys were not even checked.
            return ("the request reached AWS without all of its signature (its Authorization or X-Amz-Date header "
                    "altered on the way): check the proxy between the worker and AWS (HTTPS_PROXY) and the block's "
                    "aws_client_parameters.endpoint_url, then run again")
        if code in _EXPIRED:
            return ("the credentials have expired: renew the keys of the AwsCredentials block (or of its profile) "
                    "and run again")
        if code in _UNKNOWN_KEYS:
            return ("AWS does not know these keys: check aws_access_key_id and aws_secret_access_key of the "
                    "AwsCredentials block (or of its profile)")
        if code in DENIED_CODES:
            return f"grant the credentials' identity {call} (its IAM policy, or the role's trust policy), then run again"
        if code == "RegionDisabledException":
            # STS answers in each region the account has activated it in; the error names no setting.
            return ("STS is deactivated in that region for the account: activate it in the IAM console (Account "
                    "settings, Security Token Service endpoints), then run again")
        return "run again once the cause is fixed"
    name = type(err).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return ("the AwsCredentials block gives no keys, profile or role, and the worker has none (AWS_* variables, "
                "~/.aws, an instance or task role): give the block credentials, or the worker")
    if name == "ProfileNotFound":
        return "the block's profile_name is not in the worker's AWS config (~/.aws/config, AWS_CONFIG_FILE)"
    if _out_of_reach(err):
        return ("AWS could not be reached: check the worker's network and proxy (HTTPS_PROXY), and the block's "
                "aws_client_parameters.endpoint_url if it sets one")
    return "run again once the cause is fixed"


_TAG = re.compile(r"<[^>]*>")
# A page's text is an endpoint's boilerplate, its first words enough; AWS's own words are kept
# whole up to a bound only a runaway message reaches (an AccessDenied naming a long role and
# resource says last whether a service control policy refused it, which decides whom to ask).
_PAGE_CAP = 300
_MESSAGE_CAP = 1000


def answer_on_one_line(text: str) -> str:
    """``text`` on one line a person can read: an endpoint that is not AWS itself (a proxy, an
    emulator) can answer an error with a whole HTML page, which botocore passes on as the message,
    or with an escape sequence or a carriage return in it; a log line, a state message or the CLI
    that quotes it must stay one line, its control characters escaped (``on_one_line``) and its
    length bounded, or it coloured or cleared the reader's terminal and filled a screen.

    Every client of the run keeps an AWS answer's message so (``blocks.credentials``), before
    botocore makes its error of it: a ClientError raised and quoted as it is (``{err}`` in a
    rollback's page or a ledger entry, one no adapter caught, which Prefect made the failed run's
    state message and logged) carried AWS's text raw."""
    html = text.lstrip()[:1] == "<"
    flat = on_one_line(_TAG.sub(" ", text) if html else text)
    cap = _PAGE_CAP if html else _MESSAGE_CAP
    return flat if len(flat) <= cap else flat[:cap - 1] + "…"
