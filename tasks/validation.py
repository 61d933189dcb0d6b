"""Thin tasks for the post-deployment validation: one check each.

A check returns its ``CheckResult``, passed or failed. One that failed in a way worth trying
again (``CheckResult.retryable``: the health GET, the metric read, a POST that never reached
the server) raises ``CheckFailed`` instead, so that Prefect's retries on the task try it again;
the flow sets them per run from ``ValidationSpec.attempts`` (``with_options``) and takes the
last attempt's result from the exception. The session POST and the message POST are not
retried once sent: a second POST would create a second test session, or have the edit
container run the test instruction twice.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect import get_run_logger, task
from pydantic import SecretStr
from prefect.cache_policies import NONE
from prefect.runtime import task_run

from rollway import http_checks
from rollway.aws.cloudwatch import MetricQueryError, read_service_averages
from rollway.aws.denied import ROLLOUT_POLICY, PermissionDenied, is_denied, named_denials, permission_denied
from rollway.aws.errors import REFUSED_CODES, AdapterError, error_code, quoted
from rollway.aws.metric_schema import SUCCESS_RATE as SUCCESS_RATE_METRIC
from rollway.bounds import seconds_said
from rollway.deadline import Unanswered, answered
from rollway.errors_pickle import PicklableError
from rollway.ports import TrafficRouter
from rollway.targets import Targets
from rollway.validation import (
    HEALTH, MESSAGE, SESSION, SUCCESS_RATE, TARGETS, CheckResult, ValidationSpec, carrying, judge_success_rate,
    judge_targets, minutes_read, unchecked, utc_minute,
)


class CheckFailed(PicklableError, Exception):
    """A check failed in a way worth trying again; ``result`` is what it found."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(f"{result.name}: {result.reason}")
        self.result = result


def _counted(result: CheckResult) -> CheckResult:
    """``result`` with the attempt it came from; raised (for a retry) when worth trying again."""
    result = result.model_copy(update={"attempts": max(1, task_run.run_count or 1)})
    if not result.passed and result.retryable:
        raise CheckFailed(result)
    return result


def _said(check: str) -> http_checks.Say:
    """The run's log, each line opening with the check that waits."""
    log = get_run_logger()
    return lambda line: log.info("%s: %s", check, line)


@task(name="check-health", cache_policy=NONE)
def check_health(spec: ValidationSpec, authorization: SecretStr | None = None) -> CheckResult:
    with http_checks.client(spec, authorization) as http:
        return _counted(http_checks.check_health(http, spec, _said(HEALTH)))


@task(name="create-test-session", cache_policy=NONE)
def create_session(spec: ValidationSpec, authorization: SecretStr | None = None) -> CheckResult:
    with http_checks.client(spec, authorization) as http:
        return _counted(http_checks.create_session(http, spec, _said(SESSION)))


@task(name="send-test-message", cache_policy=NONE)
def send_message(spec: ValidationSpec, session_id: str, authorization: SecretStr | None = None) -> CheckResult:
    with http_checks.client(spec, authorization) as http:
        return _counted(http_checks.send_message(http, spec, session_id, _said(MESSAGE)))


@task(name="read-success-rate", cache_policy=NONE)
def read_success_rate(spec: ValidationSpec, cloudwatch: Any, namespace: str, services: tuple[str, ...],
                      now: float, serving: dict[str, int] | None = None) -> CheckResult:
    """``SuccessRate`` of ``services`` over the spec's window ending at ``now``, judged against its
    floor and for how recent its newest datapoint is; ``serving``: each service's share of the
    traffic (``judge_success_rate``)."""
    # Read in whole minutes, widened here, not in the read: the window the check says is the one read.
    start, end = minutes_read(now, spec.success_rate_window_minutes)
    began = time.monotonic()
    bound = spec.timeout_seconds
    log = get_run_logger()
    # The shared client waits 60 s per read and retries: a CloudWatch that accepts the connection
    # and never answers held the check for minutes, with no line saying what it waited on.
    log.info("reading %s of %s from CloudWatch (GetMetricData in %s), waiting at most %s, over %s to %s UTC",
             SUCCESS_RATE_METRIC, ", ".join(services), namespace, seconds_said(bound), utc_minute(start), utc_minute(end))
    try:
        reads = answered(
            "CloudWatch", bound,
            lambda: read_service_averages(cloudwatch, namespace, SUCCESS_RATE_METRIC, services, start, end), log.info)
    except Unanswered:
        # Nothing was measured: not the service failing its SuccessRate. Worth asking again (the
        # spec's attempts): a CloudWatch that did not answer once may answer the next time.
        return _counted(unchecked(SUCCESS_RATE, f"CloudWatch did not answer GetMetricData for {SUCCESS_RATE_METRIC} "
                                                f"in {namespace} within {seconds_said(bound)} (spec.timeout_seconds); nothing "
                                                "was measured", seconds=time.monotonic() - began, retryable=True))
    except (ClientError, BotoCoreError, MetricQueryError) as err:
        # Nothing was measured: reported as "failed", the service read as failing its SuccessRate.
        # A refusal is final: asked again, it only cost the retries' delays. A refused permission is
        # said as every other refusal (whose credentials, which statement grants it): a person
        # validating with their own credentials was sent to "the worker's role".
        refused = isinstance(err, ClientError) and error_code(err) in REFUSED_CODES
        said = (permission_denied(err, job=ROLLOUT_POLICY) if refused and is_denied(err)
                else quoted(err))
        return _counted(unchecked(SUCCESS_RATE, f"CloudWatch GetMetricData for {SUCCESS_RATE_METRIC} in {namespace} "
                                                f"{'was refused' if refused else 'failed'}: {said}",
                                  seconds=time.monotonic() - began, retryable=not refused))
    return _counted(judge_success_rate(reads.averages, spec, services, seconds=time.monotonic() - began,
                                       serving=serving, namespace=namespace, read=(start, end), newest=reads.newest,
                                       now=now))


@task(name="read-target-health", cache_policy=NONE)
def read_targets(spec: ValidationSpec, router: TrafficRouter, targets: Targets, serving: dict[str, int]) -> CheckResult:
    """The healthy targets of each service's target group that ``serving`` (service -> percent of
    the traffic) says carries some, judged by ``judge_targets``; the reads of one attempt given up
    on together after ``spec.timeout_seconds``."""
    began = time.monotonic()
    bound = spec.timeout_seconds
    versions = {targets.stable_service: "stable", targets.canary_service: "canary"}
    groups = {targets.stable_service: targets.stable_target_group, targets.canary_service: targets.canary_target_group}

    def read() -> dict[str, int]:
        with named_denials(ROLLOUT_POLICY, targets=targets):
            return {service: router.healthy_targets(versions[service]) for service in carrying(serving)}

    try:
        # One bound for the attempt, both groups' reads in it: bounded each, an attempt at a split
        # took up to twice spec.timeout_seconds, and the check's own bound could not hold it.
        healthy = answered("Elastic Load Balancing", bound, read, get_run_logger().info)
    except Unanswered:
        return _counted(unchecked(TARGETS, f"Elastic Load Balancing did not answer DescribeTargetHealth within "
                                           f"{seconds_said(bound)} (spec.timeout_seconds); nothing was read",
                                  seconds=time.monotonic() - began, retryable=True))
    except (AdapterError, BotoCoreError, ClientError) as err:
        # A refusal is final, as the SuccessRate read's is; it names the statement granting it.
        said = quoted(err, call=True)  # AWS's words, one line
        return _counted(unchecked(TARGETS, f"the target groups' health could not be read: {said}",
                                  seconds=time.monotonic() - began, retryable=not isinstance(err, PermissionDenied)))
    return _counted(judge_targets(serving, healthy, groups, seconds=time.monotonic() - began))
