"""validate_deployment: the seed's post-deployment validation, check by check.

In order, each a task whose result is logged:

1. ``health``: GET the health URL, 2xx (a JSON body saying it is down fails; any other body is not
   read, as the seed's ``curl -f`` did not);
2. ``session``: POST a test session (``clientId``/``userId``), 2xx with a ``sessionId``;
3. ``message``: POST the test instruction to that session, 2xx without an ``error`` (skipped,
   and so not passed, when no session was created, or when the session POST's answer was lost,
   was a 5xx or a 2xx without a usable ``sessionId``: a session may then exist on the service,
   left behind, and the skip says so);
4. ``success_rate``: CloudWatch's ``SuccessRate`` (``Targets.metrics_namespace``, per ECS
   service) averaged over the last minutes, read in whole minutes (the UTC window read is said),
   at least the floor; no data fails, and so does a stale figure (a service carrying traffic whose newest
   minute ended more than ``spec.success_rate_ingestion_lag_seconds`` before the window's end), each
   read again, over the same window, after ``spec.success_rate_retry_delay_seconds``: CloudWatch
   shows datapoints a minute or more late. A read AWS refused
   (or one that kept failing, or that CloudWatch did not answer within ``spec.timeout_seconds``)
   is reported as not checked, not as the service failing it;
5. ``targets``: each service the load balancer sends users' traffic to has a healthy target in
   its target group. The HTTP checks reach one service per request through the load balancer's
   rule, so at a split they may never reach the canary: this reads each one's group on its own
   (not checked when the weights could not be read), its attempts and waits together within
   ``spec.targets_check_limit_seconds``.

With ``spec.canary_header`` the health, session and message requests carry that header, which a
listener rule of the infrastructure forwards to the canary target group alone (``rollway.pinning``):
the rule is read before any request, each of the three results names the group it was pinned to, and
with no such rule none of them is sent (each "unchecked", naming the rule to create).

Every check runs whatever the others found, so one run says everything that is wrong. The run
ends with a markdown artifact (what was validated: each service's share of the traffic and
image, and which service the HTTP requests reached as far as the weights tell; a table of the
checks: result, reason, and the seconds all attempts took with how many there were) and
fails with ``ValidationFailed`` naming the checks that did not pass. It changes nothing but
the test session and message it sends, so running it again is safe.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError
from prefect import flow, get_run_logger
from pydantic import SecretStr

from flows.artifacts import create_markdown_artifact, for_people
from flows.env import load_clients, run_logger
from flows.journal import artifact_key
from flows.untraced import without_traceback
from rollway.api_error import request_left_out
from rollway.aws.denied import ROLLOUT_POLICY, named_denials
from rollway.aws.ecs import EcsDeployer
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import AdapterError, quoted
from rollway.bounds import as_given, seconds_said
from rollway.clock import ClockSettings
from rollway.deadline import READ_SECONDS, Hushable, Unanswered, answered
from rollway.errors_pickle import PicklableError
from rollway.failure_words import failures_writable
from rollway.pinning import Pin, unpinned_said
from rollway.report import markdown_cell
from rollway.targets import Targets
from rollway.validation import (
    CHECKS, HEALTH, HTTP_CHECK_LIMIT, MESSAGE, SESSION, SUCCESS_RATE, TARGETS, TARGETS_CHECK_LIMIT, CheckResult,
    ValidationSpec, ValidationSummary, authorization_header, check_requests, evaluate, http_reach, markdown, no_session,
    past_check_limit, pinned, said_seconds, shown_url, left_behind, skipped, success_rate_check_seconds, unchecked,
    validation_seconds,
)
from tasks import validation as checks


class ValidationFailed(PicklableError, RuntimeError):
    """One or more checks did not pass; ``summary`` holds every check's result."""

    def __init__(self, summary: ValidationSummary) -> None:
        self.summary = summary
        super().__init__(f"deployment validation {summary.reason}")


@flow(name="validate_deployment", log_prints=True)
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def validate_deployment(
    spec: ValidationSpec = ValidationSpec(),
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    clock: ClockSettings = ClockSettings(),
) -> ValidationSummary:
    """Check the deployed service answers as users need: health, a test session and message,
    and its SuccessRate over the last minutes (the seed's validate-deployment.sh).

    Fails naming every check that did not pass.

    Args:
        spec: URLs (default https://edit.ameliastamps.webordinary.com/health, https://api.webordinary.com: set health_url and api_base_url to your service's), test ids, timeouts, attempts, SuccessRate floor.
        targets_block: a saved RollwayTargets block (the services and metrics namespace); cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
        clock: where "the last minutes" end (the clock the metrics are stamped with); leave it for a real service.
    """
    # A check that does not pass, and the run failing on it, are findings: one line each, no traceback.
    without_traceback(checks.CheckFailed, ValidationFailed, MissingSecret, SecretUnread)
    log = get_run_logger()
    targets, get_client = load_clients(targets_block, aws_credentials_block)
    authorization = _authorization(spec.authorization_secret_block)
    services = spec.success_rate_services or (targets.stable_service, targets.canary_service)
    # The per-request bound is said up front: a person watching a check that hangs could not tell
    # from this line how long it may wait (each attempt up to it, then the delay between attempts).
    # The settings as given (seconds_said, as_given): %g said 7.1234567 s "7.12346 s", and a floor
    # of 99.99999 % "100 %", one no SuccessRate below 100 % passes.
    log.info("validating %d checks (%s), each request given at most %s (spec.timeout_seconds), %d attempt(s) per "
             "check %s apart (a SuccessRate read without data read again %s later), each HTTP check at most %s "
             "in all (spec.http_check_limit_seconds), the targets check at most %s in all "
             "(spec.targets_check_limit_seconds), the SuccessRate check at most %s in all, the whole run at most about "
             "%s: health %s, sessions %s, SuccessRate of %s in %s over %d min (floor %s%%)",
             len(CHECKS), ", ".join(CHECKS), seconds_said(spec.timeout_seconds), spec.attempts,
             seconds_said(spec.retry_delay_seconds), seconds_said(spec.success_rate_retry_delay_seconds),
             seconds_said(spec.http_check_limit_seconds), seconds_said(spec.targets_check_limit_seconds),
             said_seconds(success_rate_check_seconds(spec)), said_seconds(validation_seconds(spec)),
             shown_url(spec.health_url), shown_url(spec.sessions_url), ", ".join(services), targets.metrics_namespace,
             spec.success_rate_window_minutes, as_given(spec.success_rate_floor))
    log.info("%s", f"the health, session and message requests carry `{spec.canary_header}` (spec.canary_header), "
                   "to be pinned to the canary target group by the listener rule read before them"
             if spec.canary_header else "the health, session and message requests are not pinned to a target group "
                                        "(spec.canary_header): through the load balancer's weighted rule, which "
                                        "service answers each is not known")

    began = time.monotonic()
    results: list[CheckResult] = []

    def note(result: CheckResult) -> CheckResult:
        (log.info if result.passed else log.error)(
            "%s %s after %d attempt(s) in %.2f s: %s", result.name, result.outcome, result.attempts, result.seconds,
            result.reason)
        results.append(result)
        return result

    # The load balancer's and ECS's reads are bounded by the spec's timeout too: on the run's
    # shared clients (60 s per read, retried, and the tasks' own retries), one that never
    # answered held the run for many minutes, silent, after every check had been made. Each read
    # is given up on at that bound, and made on clients whose attempts all fit in it: on the
    # run's clients (six attempts of 10 s, for the rollout's writes) a read given up on went on
    # in its thread for up to a minute, and its call could land after the run said it timed out.
    bound = spec.timeout_seconds
    reads = get_client.reading(bound)
    # One router for the pin rule, the weights and the targets check: it caches its lookups (load
    # balancer, listener, target groups, rule), which a second one made again.
    router = AlbRouter(reads("elbv2"), targets)
    # Pinned, the HTTP checks reach the canary group whatever the weights; the rule is verified
    # before any request: sent unpinned, they "passed" for a canary the old version answered.
    pin = _pin(spec, targets, router, bound)
    if isinstance(pin, str):
        log.error("%s", pin)
        for name in (HEALTH, SESSION, MESSAGE):
            note(unchecked(name, pin))
        session = message = None
    else:
        def http(result: CheckResult) -> CheckResult:
            return note(pinned(result, pin))

        http(_attempted(checks.check_health, spec, authorization=authorization, bounded=HTTP_CHECK_LIMIT))
        session = http(_attempted(checks.create_session, spec, authorization=authorization, bounded=HTTP_CHECK_LIMIT))
        if session.passed:
            message = http(_attempted(checks.send_message, spec, session.detail, authorization=authorization,
                                      bounded=HTTP_CHECK_LIMIT))
        else:
            message = note(skipped(MESSAGE, no_session(session, spec)))
    # Said at once and in the artifact: nothing else removes the session the run made.
    left = left_behind(session, message, spec) if session is not None and message is not None else None
    if left is not None:
        log.info("%s", left)
    # Read with services named in the spec too: the artifact opens with each service's share of
    # the traffic, and said "not read" for both, though only the check leaves the weights aside then.
    serving, unread = _serving(targets, router, bound)
    # With services named in the spec, their figures alone decide the check: who carries the
    # traffic is not asked, and weights that could not be read only get a warning.
    named = bool(spec.success_rate_services)
    if unread is not None and named:
        log.warning("%s; the SuccessRate check does not need it (spec.success_rate_services)", unread)
    if unread is not None and not named:
        note(unchecked(SUCCESS_RATE, unread))
    else:
        # Read again over the same window: what a wait gives is the datapoints of its last minutes,
        # which CloudWatch shows a minute or more late.
        note(_attempted(checks.read_success_rate, spec, reads("cloudwatch"), targets.metrics_namespace,
                        tuple(services), clock.build().now(), None if named else serving,
                        delay=spec.success_rate_retry_delay_seconds,
                        waiting_for="CloudWatch may still be ingesting the window's last minutes"))

    # The HTTP checks reach one service per request through the load balancer's rule: at a split,
    # perhaps never the canary. Each service carrying traffic is read on its own here.
    if unread is not None:
        note(unchecked(TARGETS, unread))
    else:
        note(_attempted(checks.read_targets, spec, router, targets, serving, bounded=TARGETS_CHECK_LIMIT))

    versions = _what_ran(targets, reads, serving, bound, named=tuple(spec.success_rate_services or ()),
                         pin=pin if isinstance(pin, Pin) else None)
    for line in versions:
        log.info("validated %s", line.removeprefix("- "))
    reach = http_reach(serving, pin if isinstance(pin, Pin) else None)
    log.info("%s", reach)
    summary = evaluate(results).model_copy(update={"serving": serving})
    # Refused, the artifact's error would replace the verdict: a passed validation failed, and
    # a failed one no longer named its checks (the log above has each of them).
    # Keyed by the canary service, as every artifact of the rollout is; titled with both services,
    # as what it validated (the title named the stable one alone, under a key naming the canary).
    title = f"Deployment validation of {targets.stable_service} (stable) and {targets.canary_service} (canary)"
    for_people("validation", lambda: create_markdown_artifact(
        key=artifact_key(targets.canary_service, "validation"),
        markdown=markdown(summary, title=title,
                          context=("What was validated:", "", *versions, "", reach,
                                   *(("", markdown_cell(left)) if left is not None else ()))),
        description="post-deployment validation",
    ))
    log.info("the validation took %s, of at most about %s", said_seconds(time.monotonic() - began),
             said_seconds(validation_seconds(spec)))
    if not summary.passed:
        raise ValidationFailed(summary)
    log.info("deployment validation passed: %s", summary.reason)
    return summary


def _what_ran(targets: Targets, get_client: Callable[[str], Any], serving: dict[str, int],
              seconds: float, named: tuple[str, ...] = (), pin: Pin | None = None) -> tuple[str, ...]:
    """One line per service: its share of the traffic (when read) and the image its task
    definition names. The artifact did not say which version it validated: after the fact, it
    could not be matched to a rollout (or told apart from a run made before the promotion).
    A read that fails, or that ECS does not answer within ``seconds``, is said in its line; it
    changes no check's result. ``named``: spec.success_rate_services (empty: both services'
    SuccessRate is read). ``pin``: the rule the HTTP checks were pinned to the canary by."""
    deployer = EcsDeployer(get_client("ecs"), targets)
    lines = []

    # The adapter's own calls, not the retried tasks: a read given up on goes on in its thread,
    # and a task there would go on retrying, and logging, into a run that has ended.
    def image(service: str) -> str:
        definition = deployer.describe(service).task_definition
        return f"task definition {definition}, image `{deployer.image_of(definition)}`"

    for role, service in (("stable", targets.stable_service), ("canary", targets.canary_service)):
        share = f"{serving[service]}% of the traffic" if service in serving else "its share of the traffic not read"
        if serving.get(service) == 0:
            # "validated `<canary>`: 0% of the traffic; image ..." read as that image checked, when
            # the rule sent it none of the checks' requests and the targets check reads only a
            # service carrying traffic; the SuccessRate check judges its figures only if it published.
            judged = ("its SuccessRate judged only if it published one in the window" if not named or service in named
                      else "its SuccessRate not read (spec.success_rate_services)")
            reached = ("the health, session and message checks were pinned to it" if pin is not None
                       and role == "canary" else "no request of the checks through the load balancer's rule reached it")
            share += f" ({reached}, its targets were not read, {judged})"
        try:
            ran = answered("ECS", seconds, lambda: _named(targets, lambda: image(service)), get_run_logger().info)
        except Unanswered as err:
            ran = f"its image could not be read: {err} (spec.timeout_seconds)"
        except (AdapterError, BotoCoreError, ClientError) as err:
            ran = f"its image could not be read: {quoted(err, call=True)}"
        lines.append(f"- `{service}` ({role}): {share}; {ran}")
    return tuple(lines)


def _serving(targets: Targets, router: AlbRouter, seconds: float) -> tuple[dict[str, int], str | None]:
    """Each of the two services' share of users' traffic, by the load balancer's weights (every
    one that carries some must have published a SuccessRate), or why it could not be read
    (Elastic Load Balancing not answering within ``seconds`` included)."""
    weights, unread = _elb_read(targets, router.get_weights, seconds,
                                "could not read which service carries the traffic (the load balancer's weights)")
    if unread is not None:
        return {}, unread
    return {targets.stable_service: weights.stable, targets.canary_service: weights.canary}, None


def _pin(spec: ValidationSpec, targets: Targets, router: AlbRouter, seconds: float) -> Pin | str | None:
    """The listener rule pinning the HTTP checks to the canary target group (``spec.canary_header``),
    or why they would not be pinned, or are not known to be (no such rule, one a regular expression
    decides, or the rules could not be read: said with "not sent"); None when the spec pins nothing."""
    if spec.canary_header is None:
        return None
    # Hushed as the read ends: given up on, it goes on in its thread, and its next "asking again"
    # reached the log after the validation said the rules could not be read.
    say = Hushable(get_run_logger().warning)
    try:
        # Judged by what the checks send: a rule ahead of the pin on a path none of them asks
        # for, read as taking some of the weighted rule's requests, kept them from being sent.
        checks = check_requests(spec)
        found, unread = _elb_read(targets, lambda: router.pin(spec.canary_header, checks=checks, say=say), seconds,
                                  "could not read the listener's rules")
    finally:
        say.hush()
    requests = f"the requests carrying `{spec.canary_header}` (spec.canary_header)"
    group = f"the canary target group {targets.canary_target_group}"
    if unread is not None:
        # Unread, nothing is known of the rule: "would not be pinned" sent a reader looking for
        # a rule that may well be there.
        return f"not sent: {requests} are sent only once a listener rule is read that pins them to {group}, and {unread}"
    if isinstance(found, str):
        return "not sent: " + unpinned_said(found, not_pinned=f"{requests} would not be pinned to {group}",
                                            whether=f"{requests} would all be pinned to {group}")
    return found


def _elb_read(targets: Targets, call: Callable[[], Any], seconds: float, unread: str) -> tuple[Any, str | None]:
    """``call()``'s answer, or None and ``unread`` with why (Elastic Load Balancing not answering
    within ``seconds``, a refusal naming the statement granting it, AWS's words)."""
    try:
        # The adapter's call, not the retried task (see _what_ran).
        return answered("Elastic Load Balancing", seconds, lambda: _named(targets, call), get_run_logger().info), None
    except Unanswered as err:
        return None, f"{unread}: {err} (spec.timeout_seconds)"
    except (AdapterError, BotoCoreError, ClientError) as err:
        return None, f"{unread}: {quoted(err, call=True)}"


def _named(targets: Targets, call: Callable[[], Any]) -> Any:
    """``call()``, a read the rollout policy grants; refused, as ``PermissionDenied`` naming the
    action and that policy's statement granting it, as the refused GetMetricData beside it says
    (AWS's text alone left a person validating to find the statement)."""
    with named_denials(ROLLOUT_POLICY, targets=targets):
        return call()


class MissingSecret(PicklableError, ValueError):
    """The spec names a Secret block the Prefect API does not have (or one that is not a Secret)."""


class SecretUnread(PicklableError, Unanswered):
    """The Prefect API did not give the spec's Secret block in time; the message names the block
    (never its value)."""


def _authorization(name: str | None, read_seconds: float = READ_SECONDS) -> SecretStr | None:
    """The value of the Secret block ``name``, read before any request is sent, given up on after
    ``read_seconds``: on the Prefect client's own limits (60 s per request, retried) an API that
    took the connection and never answered held the run minutes, silent, before its first check.

    Raises:
        MissingSecret: no such Secret block: the checks would all have failed with 401s.
        SecretUnread: the Prefect API did not answer within ``read_seconds``.
        ApiError: the Prefect API refused the read (a 401, 403, 5xx), or its connection failed.
    """
    if name is None:
        return None
    from prefect.blocks.system import Secret

    try:
        with request_left_out():
            value = answered("the Prefect API", read_seconds, lambda: Secret.load(name).get(),
                             run_logger(__name__).info)
    except Unanswered as err:
        raise SecretUnread(f"authorization_secret_block {name!r} could not be read: {err}; no request was sent; "
                           "run again once the Prefect API answers") from None
    except ValueError as err:
        raise MissingSecret(
            f"authorization_secret_block {name!r}: no Secret block of that name on the Prefect API ({err}); "
            f"create it (UI: Blocks, Secret; or `Secret(value=...).save({name!r})`) before validating"
        ) from None
    if not isinstance(value, str) or not value.strip():
        raise MissingSecret(f"authorization_secret_block {name!r} holds no text: give it the header's whole value "
                            "(e.g. `Bearer <token>`)")
    # Refused here, before any request and never quoted: sent, httpx's refusal quoted the value
    # in every check's reason (the run's log, its error, the artifact).
    try:
        header = authorization_header(value)
    except ValueError as fault:
        raise MissingSecret(f"authorization_secret_block {name!r} {fault}: a header's value is one line of ASCII; "
                            "save the header's whole value (e.g. `Bearer <token>`) on one line; no request was "
                            "sent") from None
    return SecretStr(header)


def _attempted(task, spec: ValidationSpec, *args, delay: float | None = None, waiting_for: str | None = None,
               bounded: str | None = None, **kwargs) -> CheckResult:
    """Run a check task with the spec's attempts; the last attempt's result, passed or not, with
    the time of every attempt (the delays between them left out).

    ``delay``: the wait before each next attempt (default ``spec.retry_delay_seconds``), logged
    as it starts with the attempt that failed and why, and ``waiting_for``, what the wait is for.
    ``bounded``: the spec's field bounding the check in all (``HTTP_CHECK_LIMIT``,
    ``TARGETS_CHECK_LIMIT``): its attempts and waits together stay within it: an attempt that
    could end past it is not started, and the result's reason says why it stopped and how long
    it had taken.

    A check raises ``CheckFailed`` to be tried again; its last one is taken from the failed state.
    Anything else it raises is a defect, not a finding: it is not tried again, and fails the run.
    """
    earlier: list[float] = []
    began = time.monotonic()
    stopped: list[str] = []

    def retry(_task, _task_run, state) -> bool:
        # Called on each failure Prefect is about to try again: the attempt's time is kept here,
        # where the last attempt's result alone said three timeouts of 10 s took 10 s.
        if not isinstance(state.data, checks.CheckFailed):
            # A defect, not a finding: Prefect's own rule tried it again spec.attempts times,
            # spec.retry_delay_seconds apart and past the check's bound, before the run failed on it.
            return False
        result = state.data.result
        why = past_check_limit(spec, elapsed=time.monotonic() - began, wait=wait, failed_attempt=result.attempts,
                               setting=bounded) if bounded else None
        if why is not None:
            stopped.append(why)
            return False  # the last attempt's result stands, said with why it is the last
        earlier.append(result.seconds)
        # Said as the wait starts: a run quiet for a minute read as stuck.
        get_run_logger().info("%s did not pass on attempt %d of %d (%s); waiting %s before attempt %d%s",
                              result.name, result.attempts, spec.attempts, result.reason, seconds_said(wait),
                              result.attempts + 1, f" ({waiting_for})" if waiting_for else "")
        return True

    wait = spec.retry_delay_seconds if delay is None else delay
    retried = task.with_options(retries=spec.attempts - 1, retry_delay_seconds=wait,
                                retry_condition_fn=retry)
    state = retried(spec, *args, return_state=True, **kwargs)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, checks.CheckFailed):
        outcome = outcome.result
    elif isinstance(outcome, BaseException):
        raise outcome
    said = f"{outcome.reason}; {stopped[-1]}" if stopped else outcome.reason
    return outcome.model_copy(update={"seconds": outcome.seconds + sum(earlier), "reason": said})
