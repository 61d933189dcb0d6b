"""validate_deployment on the Prefect harness: the embedded AWS for SuccessRate, rollway.sim.app for HTTP."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timezone
from typing import Iterator

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.validate import ValidationFailed, validate_deployment
import rollway.deadline as deadline
from rollway.aws.elbv2 import AlbRouter
from rollway.model import Weights
from rollway.sim.app import ValidationApp
from tests.flows.moto_env import saved_blocks


@pytest.fixture
def app() -> Iterator[ValidationApp]:
    with ValidationApp() as running:
        yield running


@pytest.fixture
def blocks(aws) -> str:
    return saved_blocks(aws, "validate")


def publish_success_rate(aws, value: float) -> None:
    now = time.time()
    aws.get_client("cloudwatch").put_metric_data(
        Namespace=aws.targets.metrics_namespace,
        MetricData=[{"MetricName": "SuccessRate", "Dimensions": [{"Name": "Service", "Value": aws.targets.stable_service}],
                     "Timestamp": datetime.fromtimestamp(now - 60 * i, timezone.utc), "Value": value}
                    for i in range(3)],
    )


def with_canary_targets(aws) -> None:
    """A target in the canary's target group, as a canary scaled up has (the topology registers
    the stable service's alone)."""
    elbv2 = aws.get_client("elbv2")
    group = elbv2.describe_target_groups(Names=[aws.targets.canary_target_group])["TargetGroups"][0]
    elbv2.register_targets(TargetGroupArn=group["TargetGroupArn"],
                           Targets=[{"Id": "10.0.0.99", "Port": aws.targets.container_port}])


def checked(summary, name: str):
    (check,) = [c for c in summary.checks if c.name == name]
    return check


def spec(app: ValidationApp, **fields) -> dict:
    # A dict, as a run from the UI or a deployment's parameters gives it.
    return {"health_url": f"{app.url}/health", "api_base_url": app.url, "timeout_seconds": 10,
            "retry_delay_seconds": 0, "success_rate_retry_delay_seconds": 0, **fields}


def artifact_of(state) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    (artifact,) = [a for a in found if a.type == "markdown"]
    return artifact.data


def test_a_healthy_deployment_passes_and_the_artifact_lists_every_check(aws, app, blocks):
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app), targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    summary = state.result()
    assert summary.passed and summary.failed == ()
    assert [c.name for c in summary.checks] == ["health", "session", "message", "success_rate", "targets"]
    # The weights the checks ran under, in the run's result as well as its artifact.
    assert summary.serving == {aws.targets.stable_service: 100, aws.targets.canary_service: 0}
    text = artifact_of(state)
    # Titled with both services it validated: the key names the canary, the title named only the stable.
    assert ("Deployment validation of webordinary-edit-service (stable) and webordinary-edit-service-canary "
            "(canary): passed") in text
    for name in ("health", "session", "message", "success_rate", "targets"):
        assert f"| {name} | passed |" in text
    assert "99.95%" in text
    # Which version it validated: each service's share of the traffic and the image it runs.
    for service, share in ((aws.targets.stable_service, 100), (aws.targets.canary_service, 0)):
        assert re.search(f"- `{service}` \\((stable|canary)\\): {share}% of the traffic( \\([^)]+\\))?; task definition "
                         f"arn:aws:ecs:[^ ]+:task-definition/{aws.targets.task_family}:\\d+, image `[^`]+`", text), text
    # The canary, carrying none of the traffic, was reached by no check: "validated" alone read as its image checked.
    assert (f"- `{aws.targets.canary_service}` (canary): 0% of the traffic (no request of the checks through the load "
            "balancer's rule reached it, its targets were not read, its SuccessRate judged only if it published one "
            "in the window); task definition") in text, text
    assert f"- `{aws.targets.stable_service}` (stable): 100% of the traffic; task definition" in text, text
    assert len(app.sessions) == 1  # one test session, one message
    assert list(app.sessions.values()) == [["Test deployment"]]


def test_a_failing_deployment_fails_the_run_naming_each_failed_check(aws, app, blocks):
    app.faults.health_status = 503
    app.faults.session_body = {"status": "queued"}
    # No SuccessRate published: no data is a failure, not a pass.
    state = validate_deployment(spec=spec(app, attempts=2), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    assert state.is_failed()
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert failed.value.summary.failed == ("health", "session", "message", "success_rate")
    message = str(failed.value)
    assert "health (HTTP 503" in message and "no sessionId (keys: status)" in message
    # A 2xx without a sessionId: the service may have made the session all the same.
    left = ("not run: the session POST was answered HTTP 201 but no sessionId (keys: status), without a session "
            "id: a test session (clientId 'test', userId 'deploy-test') may have been created on the service and is "
            "left behind")
    assert f"message ({left})" in message, message
    assert "no SuccessRate data over " in message
    # The GET and the metric read were tried twice; the session POST, which reached the server, once.
    assert app.requests.count(("GET", "/health")) == 2
    assert app.requests.count(("POST", "/sessions")) == 1
    checks = {c.name: c for c in failed.value.summary.checks}
    assert (checks["health"].attempts, checks["session"].attempts, checks["success_rate"].attempts) == (2, 1, 2)
    text = artifact_of(state)
    assert "FAILED (health, session, message, success_rate)" in text
    assert f"| message | skipped | {left} |" in text


def window_read(now: float) -> str:
    """The whole minutes CloudWatch is read over for the last 5 minutes before ``now``."""
    start, end = (datetime.fromtimestamp(60 * t, timezone.utc) for t in (math.floor(now / 60) - 5, math.ceil(now / 60)))
    minutes = round((end - start).total_seconds() / 60)
    ends = "%H:%M" if start.date() == end.date() else "%Y-%m-%d %H:%M"  # a run across midnight
    return (f"{start:%Y-%m-%d %H:%M} to {end.strftime(ends)} UTC "
            f"({f'{minutes} whole minutes for the last 5' if minutes != 5 else 'the last 5 minutes'})")


def test_a_low_success_rate_alone_fails_the_run(aws, app, blocks):
    publish_success_rate(aws, 97.0)
    before = time.time()
    state = validate_deployment(spec=spec(app), targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    after = time.time()
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert failed.value.summary.failed == ("success_rate",)
    # The window actually read, in UTC: "the last 5 minutes" were 6 whole minutes of CloudWatch.
    said = {f"97.00% over {window_read(t)} is BELOW the 99.9% floor" for t in (before, after)}
    assert any(s in str(failed.value) for s in said), (said, str(failed.value))
    assert any(s in artifact_of(state) for s in said), said


def test_a_success_rate_whose_last_minutes_are_missing_fails_as_stale(aws, app, blocks):
    """Good minutes at the start of the window passed a service that had published nothing for the
    four minutes since: its figure said nothing about the service now."""
    now = time.time()
    aws.get_client("cloudwatch").put_metric_data(
        Namespace=aws.targets.metrics_namespace,
        MetricData=[{"MetricName": "SuccessRate", "Dimensions": [{"Name": "Service", "Value": aws.targets.stable_service}],
                     "Timestamp": datetime.fromtimestamp(now - 60 * 4.5, timezone.utc), "Value": 100.0}],
    )
    state = validate_deployment(spec=spec(app, attempts=2), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert failed.value.summary.failed == ("success_rate",)
    (rate,) = [c for c in failed.value.summary.checks if c.name == "success_rate"]
    assert rate.attempts == 2  # read again: CloudWatch may show the last minutes then
    assert rate.reason.startswith("stale SuccessRate over "), rate.reason
    assert f"{aws.targets.stable_service}'s newest is the minute of " in rate.reason
    assert "at most 240 s is allowed (a 60-s period plus spec.success_rate_ingestion_lag_seconds 180 s)" in rate.reason
    assert f"the figures read, not judged: {aws.targets.stable_service} 100.00%" in rate.reason


def test_the_service_carrying_the_traffic_must_have_published_its_success_rate(aws, app, blocks):
    """Promoted: the load balancer sends everything to the canary service, which published no
    SuccessRate; the old service's 99.95 % passed the check for a version nobody measured."""
    AlbRouter(aws.get_client("elbv2"), aws.targets).set_weights(Weights(stable=0, canary=100))
    with_canary_targets(aws)
    publish_success_rate(aws, 99.95)  # the stable service's, as before the promotion
    state = validate_deployment(spec=spec(app), targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert failed.value.summary.failed == ("success_rate",)
    assert (f"{aws.targets.canary_service} carries 100% of the traffic but published no SuccessRate"
            in str(failed.value)), str(failed.value)


def test_services_named_in_the_spec_still_leave_each_services_share_of_the_traffic_in_the_artifact(aws, app, blocks):
    """With spec.success_rate_services set, the load balancer's weights were not read at all: the
    artifact said "its share of the traffic not read" for both services, where it opens with each
    one's share, so a run could not be matched to the stage or the promotion it validated."""
    AlbRouter(aws.get_client("elbv2"), aws.targets).set_weights(Weights(stable=75, canary=25))
    with_canary_targets(aws)
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app, success_rate_services=[aws.targets.stable_service]),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    # The named service's figures alone decide the check, as before: the canary's 25 % is not asked for.
    assert state.result().passed
    text = artifact_of(state)
    assert "not read" not in text, text
    for service, share in ((aws.targets.stable_service, 75), (aws.targets.canary_service, 25)):
        assert f"- `{service}` ({'stable' if share == 75 else 'canary'}): {share}% of the traffic;" in text, text


def test_a_service_carrying_traffic_without_a_healthy_target_fails_the_run(aws, app, blocks):
    """The health, session and message requests reach a service through the load balancer's rule:
    at 75/25 with no target in the canary's group, a quarter of users' requests got no service,
    and a run whose requests all happened to reach the stable one (here, the spec's URLs reach
    it alone) passed on them. Each service's target group is read for the service it sends to."""
    AlbRouter(aws.get_client("elbv2"), aws.targets).set_weights(Weights(stable=75, canary=25))
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app, success_rate_services=[aws.targets.stable_service]),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert state.is_failed()
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert failed.value.summary.failed == ("targets",)
    canary, stable = aws.targets.canary_service, aws.targets.stable_service
    assert (f"targets ({canary} carries 25% of the traffic with no healthy target in its target group "
            f"{aws.targets.canary_target_group}") in str(failed.value), str(failed.value)
    text = artifact_of(state)
    assert "| targets | failed |" in text and f"{stable} carries 75% of the traffic with 2 healthy" in text, text
    # What the HTTP checks stood on is said: either service, which one not known.
    assert (f"each that went through the load balancer's rule at 75/25 reached {stable} or {canary}, which one is not "
            "known") in text, text


def test_a_spec_with_a_bad_url_is_refused_before_any_request(app, blocks):
    state = validate_deployment(spec=spec(app, health_url="ftp://nowhere/health"), targets_block=blocks,
                                aws_credentials_block=blocks, return_state=True)
    assert state.is_failed()
    assert "health_url" in state.message
    assert app.requests == []


def test_an_artifact_the_prefect_api_refuses_does_not_change_the_verdict(aws, app, blocks, monkeypatch, caplog):
    """The artifact is made after every check ran: refused, its error failed a validation that
    had passed (a healthy deployment reported as failing), or replaced the failed checks' names."""
    import flows.validate
    from tests.flows.test_artifacts import api_refuses

    api_refuses(monkeypatch, flows.validate, "create_markdown_artifact")
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app), targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert state.is_completed() and state.result().passed
    assert "validation artifact could not be created: the Prefect API is unreachable" in caplog.text
    app.faults.health_status = 503
    state = validate_deployment(spec=spec(app, attempts=1), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    with pytest.raises(ValidationFailed, match="health \\(HTTP 503"):
        state.result()


def test_a_check_that_keeps_failing_logs_one_line_per_attempt_and_no_traceback(aws, app, blocks, caplog):
    """A health check answering 503 is a finding, not a crash: its attempts, its final failure
    and the run's failure on it each printed as a line, not as a Python traceback."""
    app.faults.health_status = 503
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app, attempts=3), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    assert state.is_failed()
    assert "Traceback" not in caplog.text
    attempts = [r.getMessage() for r in caplog.records if "Task run failed with exception: CheckFailed('health" in
                r.getMessage()]
    assert len(attempts) == 3 and "Retry 1/2" in attempts[0] and "Retries are exhausted" in attempts[-1]
    # The final failure keeps its detail: the status and body, on the check's own line.
    assert any(r.getMessage().startswith("health failed after 3 attempt(s)") and "HTTP 503 from GET" in r.getMessage()
               and '"unhealthy"' in r.getMessage() for r in caplog.records)


def test_a_check_that_fails_with_a_defect_is_not_tried_again(aws, app, blocks, monkeypatch):
    """Prefect's retries took any error for a finding: a defect in a check was tried again
    spec.attempts times, spec.retry_delay_seconds apart and past its spec.http_check_limit_seconds
    (hours at the spec's extremes), before the run failed on it."""
    from rollway import http_checks

    tried: list[str] = []

    def broken(http, spec, say=None):
        tried.append(spec.health_url)
        raise KeyError("a defect in the check")

    monkeypatch.setattr(http_checks, "check_health", broken)
    state = validate_deployment(spec=spec(app, attempts=3), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    assert state.is_failed()
    with pytest.raises(KeyError, match="a defect in the check"):
        state.result()
    assert len(tried) == 1, tried


def stopped_at_its_limit(app, blocks, name: str, setting: str, caplog):
    """A run whose check ``name`` keeps failing, with ``setting`` (the spec's bound on it in all)
    6 s, 3 attempts 5 s apart, 2 s each: the check, checked to have stopped after its first attempt
    saying why, the run's summary and its opening line."""
    fields = {"attempts": 3, "timeout_seconds": 2, "retry_delay_seconds": 5, setting: 6}
    state = validate_deployment(spec=spec(app, **fields), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    check = checked(failed.value.summary, name)
    assert check.attempts == 1, check
    assert re.search(r"; stopped after attempt 1 of 3, \d+\.\d\d s in all: attempt 2, after its 5 s wait and up to 2 s "
                     f"\\(spec\\.timeout_seconds\\), could end past the 6 s spec\\.{setting}$", check.reason), check.reason
    assert not [r for r in caplog.records if r.getMessage().startswith(f"{name} did not pass on attempt")]
    (opening,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("validating")]
    return check, failed.value.summary, opening


def test_a_check_stops_before_an_attempt_that_could_end_past_its_limit_and_says_so(aws, app, blocks, caplog):
    """Attempts and delays multiplied out: a slow or failing service held a check (and the run)
    for far longer than a person expects. No attempt starts that could end past
    spec.http_check_limit_seconds, and the check says how long it took and why it stopped."""
    app.faults.health_status = 503
    publish_success_rate(aws, 99.95)
    health, _, opening = stopped_at_its_limit(app, blocks, "health", "http_check_limit_seconds", caplog)
    assert health.outcome == "failed" and "HTTP 503 from GET" in health.reason, health.reason
    assert any(r.getMessage().startswith("health failed after 1 attempt(s)") and "stopped after attempt 1 of 3" in
               r.getMessage() for r in caplog.records)
    assert "each HTTP check at most 6 s in all (spec.http_check_limit_seconds)" in opening, opening


def test_a_targets_check_that_keeps_failing_stops_within_its_own_limit_and_says_so(aws, app, blocks, monkeypatch, caplog):
    """The targets check was tried again at retry_delay_seconds, attempt after attempt, with no
    bound in all (about six and a half hours at the spec's extremes). No attempt starts that could
    end past spec.targets_check_limit_seconds, and the check says why it stopped."""
    from botocore.exceptions import ClientError

    asked: list[str] = []

    def throttled(self, version: str) -> int:
        asked.append(version)
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeTargetHealth")

    monkeypatch.setattr(AlbRouter, "healthy_targets", throttled)
    publish_success_rate(aws, 99.95)
    targets, summary, opening = stopped_at_its_limit(app, blocks, "targets", "targets_check_limit_seconds", caplog)
    assert targets.outcome == "unchecked" and asked == ["stable"], targets
    assert summary.failed == ("targets",)  # the other checks passed, each on its first attempt
    assert "the targets check at most 6 s in all (spec.targets_check_limit_seconds)" in opening, opening


def test_the_opening_line_says_the_checks_and_how_long_each_request_may_take(aws, app, blocks, caplog):
    """A person watching a slow check could not tell from the run's first line how long it may
    wait: it named the URLs and the attempts, never the per-request timeout, nor the checks."""
    publish_success_rate(aws, 99.95)
    validate_deployment(spec=spec(app, timeout_seconds=7, attempts=2), targets_block=blocks,
                        aws_credentials_block=blocks)
    (opening,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("validating")]
    assert opening.startswith("validating 5 checks (health, session, message, success_rate, targets)"), opening
    assert "each request given at most 7 s (spec.timeout_seconds)" in opening, opening
    assert "2 attempt(s) per check" in opening, opening
    # How long the whole run may take, and the SuccessRate check, were said nowhere: three HTTP checks
    # of 2 x 7 s, the SuccessRate check's 2 reads of 7 s, the targets check's 2 x 7 s and three reads
    # of 7 s (the weights, each service's image), no waits between attempts in this spec.
    assert "the SuccessRate check at most 14 s in all" in opening, opening
    assert "the whole run at most about 1 min 31 s" in opening, opening
    (took,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("the validation took")]
    assert re.fullmatch(r"the validation took \d+ s, of at most about 1 min 31 s", took), took


def test_the_opening_line_and_a_wait_say_the_settings_as_given(aws, app, blocks, caplog):
    """``%g`` kept six digits: a timeout of 7.1234567 s read "7.12346 s", a wait of 0.1234567 s
    "0.123457 s", and a floor of 99.99999 % "100 %", one no SuccessRate short of 100 % passes."""
    state = validate_deployment(spec=spec(app, attempts=2, timeout_seconds=7.1234567, success_rate_floor=99.99999,
                                          success_rate_retry_delay_seconds=0.1234567),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert state.is_failed()  # no SuccessRate published
    (opening,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("validating")]
    assert "each request given at most 7.1234567 s (spec.timeout_seconds)" in opening, opening
    assert "a SuccessRate read without data read again 0.1234567 s later" in opening, opening
    assert opening.endswith("(floor 99.99999%)"), opening
    (wait,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("success_rate did not pass")]
    assert "; waiting 0.1234567 s before attempt 2 " in wait, wait


def test_a_success_rate_without_data_is_read_again_after_its_own_wait_each_said(aws, app, blocks, caplog):
    """"no SuccessRate data" was read again after the HTTP checks' delay, seconds, where CloudWatch
    takes a minute or two to show a minute's datapoints; nothing said the run was waiting on it."""
    state = validate_deployment(spec=spec(app, attempts=3, success_rate_retry_delay_seconds=0.3),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    (rate,) = [c for c in failed.value.summary.checks if c.name == "success_rate"]
    assert rate.attempts == 3 and "no SuccessRate data over " in rate.reason, rate
    waits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("success_rate did not pass")]
    assert len(waits) == 2, waits
    for attempt, said in enumerate(waits, start=1):
        assert f"on attempt {attempt} of 3 (no SuccessRate data over " in said, said
        assert said.endswith(f"waiting 0.3 s before attempt {attempt + 1} (CloudWatch may still be ingesting the "
                             "window's last minutes)"), said
    (opening,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("validating")]
    assert "a SuccessRate read without data read again 0.3 s later" in opening, opening


def answered_late(aws, app, blocks, *, attempts: int):
    """A failed validation run (its state and summary) of an app whose every answer comes after
    the 1-s timeout, though it does what each request asks."""
    app.faults.delay_seconds = 1.6
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app, attempts=attempts, timeout_seconds=1), targets_block=blocks,
                                aws_credentials_block=blocks, return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    return state, failed.value.summary


def test_a_check_that_timed_out_on_every_attempt_shows_the_time_of_all_of_them(aws, app, blocks, caplog):
    """Three timeouts of 1 s read as 1.00 s in the artifact and the log: the last attempt's time
    alone, where a person judging a slow endpoint needs what it cost in all and how many tries."""
    state, summary = answered_late(aws, app, blocks, attempts=3)
    health = summary.checks[0]
    assert (health.name, health.outcome, health.attempts) == ("health", "failed", 3), health
    assert 3.0 <= health.seconds < 3 * 2.0 + 1, health.seconds  # each attempt waited its 1 s out
    assert re.search(r"\| health \| failed \| GET [^|]+ timed out[^|]+\| 3\.\d\d \(3 tries\) \|", artifact_of(state))
    assert any(r.getMessage().startswith(f"health failed after 3 attempt(s) in {health.seconds:.2f} s")
               for r in caplog.records)


def test_a_session_post_whose_answer_was_lost_says_a_session_may_have_been_left_behind(aws, app, blocks):
    """The session POST reached the service, which created the session, and its answer came after
    the timeout: the skipped message check said "no test session was created", and the session
    the service holds was left behind unmentioned."""
    state, summary = answered_late(aws, app, blocks, attempts=1)
    assert len(app.sessions) == 1 and app.requests.count(("POST", "/sessions")) == 1  # created, not sent twice
    checks = {c.name: c for c in summary.checks}
    assert "timed out" in checks["session"].reason, checks["session"]
    message = checks["message"]
    assert message.outcome == "skipped" and "no test session was created" not in message.reason, message
    assert message.reason.startswith("not run: the session POST's answer was lost"), message.reason
    assert ("a test session (clientId 'test', userId 'deploy-test') may have been created on the service and is "
            "left behind") in message.reason, message.reason
    assert "the session POST's answer was lost" in artifact_of(state)


def test_a_session_post_answered_with_a_server_error_says_a_session_may_have_been_left_behind(aws, app, blocks):
    """A 5xx says nothing of what the service did before failing: the skipped message check said
    "no test session was created", though one may be on the service."""
    app.faults.session_status = 503
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app), targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    message = {c.name: c for c in failed.value.summary.checks}["message"]
    assert message.outcome == "skipped" and message.reason == (
        "not run: the session POST was answered HTTP 503, without a session id: a test session (clientId 'test', "
        "userId 'deploy-test') may have been created on the service and is left behind"), message.reason
    assert message.reason in artifact_of(state)


TOKEN = "Bearer s3cr3t-validation-token"


def run_logs(state) -> str:
    """Every log line the run sent to the Prefect API (what the UI shows)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
            any_=[state.state_details.flow_run_id])))
    return "\n".join(log.message for log in logs)


def test_a_service_behind_a_token_is_validated_with_a_secret_block_and_the_token_is_shown_nowhere(
        aws, app, blocks, caplog):
    """A token in the health URL's query is a flow parameter anyone who can read the run sees;
    the Secret block's value is sent as the Authorization header and appears in no parameter,
    log line or artifact."""
    from prefect.blocks.system import Secret

    Secret(value=TOKEN).save("edit-api-token", overwrite=True)
    app.faults.authorization = TOKEN
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app, authorization_secret_block="edit-api-token"), targets_block=blocks,
                                aws_credentials_block=blocks, return_state=True)
    assert state.is_completed() and state.result().passed
    assert len(app.sessions) == 1 and list(app.sessions.values()) == [["Test deployment"]]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    shown = "\n".join([str(run.parameters), run_logs(state), artifact_of(state), caplog.text])
    assert "s3cr3t" not in shown
    assert "edit-api-token" in str(run.parameters)

    # Without it, the same service refuses every request: the header is what let them through.
    state = validate_deployment(spec=spec(app, attempts=1), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert failed.value.summary.failed == ("health", "session", "message")
    assert "HTTP 401" in str(failed.value)
    # Each refusal says what to do: the status alone read as the new version failing its checks.
    health = failed.value.summary.checks[0].reason
    assert health.endswith("; the service wants credentials: save its Authorization header's value (e.g. `Bearer "
                           "<token>`) in a Prefect Secret block and name it in spec.authorization_secret_block"), health

    # A token the service does not take: the block's value is named as what to check, and not shown.
    Secret(value="Bearer expired-token").save("edit-api-token", overwrite=True)
    state = validate_deployment(spec=spec(app, attempts=1, authorization_secret_block="edit-api-token"),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert "the service refused the Authorization header sent from spec.authorization_secret_block" in str(failed.value)
    assert "expired-token" not in str(failed.value) + artifact_of(state)


def test_a_secret_block_the_prefect_api_does_not_give_in_time_fails_naming_the_block():
    # On the Prefect client's own limits (60 s per request, retried) the run waited minutes,
    # silent, before its first check.
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.validate import SecretUnread, _authorization
    from tests.conftest import unanswering_endpoint

    with unanswering_endpoint() as endpoint, temporary_settings({PREFECT_API_URL: f"{endpoint}/api"}):
        began = time.monotonic()
        with pytest.raises(SecretUnread) as caught:
            _authorization("edit-api-token", read_seconds=1)
        assert time.monotonic() - began < 10  # the bug's wait was minutes; 10 s holds under CI load
    assert str(caught.value) == ("authorization_secret_block 'edit-api-token' could not be read: the Prefect API did "
                                 "not answer within 1 s; no request was sent; run again once the Prefect API answers")


def test_a_secret_block_that_does_not_exist_fails_the_run_in_one_line_before_any_request(aws, app, blocks, caplog):
    state = validate_deployment(spec=spec(app, authorization_secret_block="no-such-token"), targets_block=blocks,
                                aws_credentials_block=blocks, return_state=True)
    assert state.is_failed()
    assert "authorization_secret_block 'no-such-token': no Secret block of that name" in state.message
    assert app.requests == []
    assert "Traceback" not in caplog.text


def test_a_token_given_where_the_block_name_goes_is_refused_without_echoing_it(app, blocks):
    state = validate_deployment(spec=spec(app, authorization_secret_block=TOKEN), targets_block=blocks,
                                aws_credentials_block=blocks, return_state=True)
    assert state.is_failed()
    assert "authorization_secret_block must be a Prefect block name" in state.message
    assert "s3cr3t" not in state.message
    assert app.requests == []


def test_a_secret_block_with_a_plain_http_url_to_another_host_fails_the_run_before_any_request(
        aws, app, blocks, monkeypatch, caplog):
    """The Secret block's value went as the Authorization header over plain http:// to any host,
    in clear text on every network on the way. Refused with the spec: before the block is read
    (it does not exist here) or a request is sent, though the address reaches the app."""
    import socket

    host, resolve = "edit.plain-http.test", socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda name, *args, **kwargs: resolve("127.0.0.1" if name == host else name, *args, **kwargs))
    plain = app.url.replace("127.0.0.1", host)
    fields = {"health_url": f"{plain}/health", "api_base_url": plain, "authorization_secret_block": "no-such-token"}
    state = validate_deployment(spec=spec(app, **fields), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    assert state.is_failed()
    assert (f"would be sent in clear text over plain http:// to {plain}/health and {plain}, not this machine: use "
            "https://, or, for a network you trust to carry it, set spec.allow_plain_http_authorization") in (
        state.message), state.message
    assert "no Secret block of that name" not in state.message  # refused before the block was asked for
    assert app.requests == []
    assert "Traceback" not in caplog.text


def test_a_secret_value_a_header_cannot_carry_is_never_shown_and_refused_before_any_request(
        aws, app, blocks, caplog):
    """A Secret saved with a line break (``echo`` into a file, a paste of two lines) made every
    request fail with httpx's "Illegal header value b'Bearer <token>\\n'": the token in each
    check's reason, so in the run's log, its error and the artifact."""
    from prefect.blocks.system import Secret

    app.faults.authorization = TOKEN
    publish_success_rate(aws, 99.95)
    # Around the value, a line break is no part of it (as around any header's value): sent without.
    Secret(value=f"{TOKEN}\n").save("edit-api-token", overwrite=True)
    state = validate_deployment(spec=spec(app, authorization_secret_block="edit-api-token"), targets_block=blocks,
                                aws_credentials_block=blocks, return_state=True)
    assert state.is_completed() and state.result().passed, state.message
    shown = [run_logs(state), artifact_of(state)]
    # Within it, the value is not one header: refused before any request, naming the block and the fix.
    asked = len(app.requests)
    for value, says in ((f"{TOKEN}\nX-Debug: on", "a line break"), (f"Bearer s3cr3t\u2019", "a character that is not ASCII")):
        Secret(value=value).save("edit-api-token", overwrite=True)
        state = validate_deployment(spec=spec(app, attempts=1, authorization_secret_block="edit-api-token"),
                                    targets_block=blocks, aws_credentials_block=blocks, return_state=True)
        assert state.is_failed()
        assert f"authorization_secret_block 'edit-api-token' holds {says}" in state.message, state.message
        assert len(app.requests) == asked
        shown += [state.message, run_logs(state)]
    assert "s3cr3t" not in "\n".join(shown) + caplog.text
    assert "Traceback" not in caplog.text


def refusing(monkeypatch, service: str, operation: str, asked: list[str], answer=None,
             event: str = "before-parameter-build") -> None:
    """The run's ``service`` client refuses ``operation`` as AWS does a call the role may not make
    (or as ``answer``, a botocore handler on ``event``, says)."""
    import flows.validate
    from tests.flows.test_traffic_reads_denied import answering

    real = flows.validate.load_clients

    class Refusing:
        """``get_client``'s clients, ``service``'s refusing; the same for reads under a bound."""

        def __init__(self, get_client) -> None:
            self._get_client = get_client

        def __call__(self, name: str):
            client = self._get_client(name)
            if name == service:
                client.meta.events.register(
                    f"{event}.{client.meta.service_model.service_id.hyphenize()}.{operation}",
                    answer or answering("AccessDenied", 99, asked, operation))
            return client

        def reading(self, seconds: float) -> "Refusing":
            return Refusing(self._get_client.reading(seconds))

    def load(*args, **kwargs):
        targets, get_client = real(*args, **kwargs)
        return targets, Refusing(get_client)

    monkeypatch.setattr(flows.validate, "load_clients", load)


@pytest.mark.parametrize("service, operation, said", [
    ("cloudwatch", "GetMetricData", "CloudWatch GetMetricData for SuccessRate in Webordinary/Production failed: "
                                    "InvalidParameterValue: "),
    ("elbv2", "DescribeTargetHealth", "the target groups' health could not be read: InvalidParameterValue on "
                                      "DescribeTargetHealth: "),
])
def test_a_read_aws_failed_is_reported_with_awss_words_on_one_line_escaped(aws, app, blocks, monkeypatch, service,
                                                                           operation, said):
    """The check's reason (the run's error, its log, the summary, a notification) quoted boto's
    text with AWS's message raw: a line break began a log line of its own and an escape sequence
    acted on the reader's terminal."""
    from botocore.exceptions import ClientError

    def failed(**_):
        raise ClientError({"Error": {"Code": "InvalidParameterValue",
                                     "Message": "bad\n12:00:00 INFO validation passed\x1b[2K"}}, operation)

    refusing(monkeypatch, service, operation, [], answer=failed)
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app, attempts=1), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    with pytest.raises(ValidationFailed) as stopped:
        state.result()
    reason = [c.reason for c in stopped.value.summary.checks if c.outcome == "unchecked"]
    assert reason == [f"{said}bad 12:00:00 INFO validation passed\\x1b[2K"], reason
    assert "\x1b" not in str(stopped.value) and "\x1b" not in run_logs(state)


def test_weights_aws_failed_to_read_are_reported_with_awss_words_on_one_line_escaped(aws, app, blocks, monkeypatch):
    """Which service carries the traffic, not read: the reason of both checks that needed it quoted
    boto's text with AWS's message raw, a line break and escape sequence and all."""
    from botocore.exceptions import ClientError

    def failed(**_):
        raise ClientError({"Error": {"Code": "InvalidParameterValue",
                                     "Message": "bad\n12:00:00 INFO validation passed\x1b[2K"}}, "DescribeRules")

    refusing(monkeypatch, "elbv2", "DescribeRules", [], answer=failed)
    state = validate_deployment(spec=spec(app, attempts=1), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    with pytest.raises(ValidationFailed) as stopped:
        state.result()
    reasons = [c.reason for c in stopped.value.summary.checks if c.outcome == "unchecked"]
    assert len(reasons) == 2 and all(
        "the load balancer's weights): InvalidParameterValue on DescribeRules: bad 12:00:00 INFO validation passed"
        "\\x1b[2K" in reason for reason in reasons), reasons
    assert "\x1b" not in str(stopped.value) and "\x1b" not in run_logs(state)


def test_a_success_rate_the_role_may_not_read_is_reported_as_not_checked_asked_once(aws, app, blocks, monkeypatch):
    """A refused GetMetricData was asked three times and reported as the service failing its
    SuccessRate check: "FAILED (success_rate)" for a service nobody had measured."""
    asked: list[str] = []
    refusing(monkeypatch, "cloudwatch", "GetMetricData", asked)
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app, attempts=3), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert asked == ["GetMetricData"]
    check = checked(failed.value.summary, "success_rate")
    assert (check.name, check.outcome, check.attempts) == ("success_rate", "unchecked", 1)
    assert str(failed.value).startswith("deployment validation could not check: success_rate (CloudWatch "
                                        "GetMetricData for SuccessRate in Webordinary/Production was refused")
    # Said as every refusal is: whose credentials (a person validating uses their own), and the statement.
    assert ("was refused: AWS refused cloudwatch:GetMetricData (AccessDenied: ") in str(failed.value)
    assert (": the role or user these credentials belong to (the worker's role, for a flow run) may not call it, "
            in str(failed.value))
    assert ("it is granted by deployments/iam-policy.json, statement ReadMetrics: add that statement (with your "
            "names) to that role or user") in str(failed.value)
    text = artifact_of(state)
    assert ("Deployment validation of webordinary-edit-service (stable) and webordinary-edit-service-canary "
            "(canary): NOT CHECKED (success_rate)") in text
    assert "| success_rate | unchecked |" in text


def test_a_failed_check_and_one_not_made_are_named_apart(aws, app, blocks, monkeypatch):
    asked: list[str] = []
    refusing(monkeypatch, "elbv2", "DescribeRules", asked)
    app.faults.health_status = 503
    state = validate_deployment(spec=spec(app, attempts=1), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    message = str(failed.value)
    assert message.startswith("deployment validation failed: health (HTTP 503")
    assert "; could not check: success_rate (could not read which service carries the traffic" in message
    assert "; targets (could not read which service carries the traffic" in message
    assert "FAILED (health); NOT CHECKED (success_rate, targets)" in artifact_of(state)


@pytest.mark.parametrize(("service", "operation", "action", "statement"), [
    ("elbv2", "DescribeRules", "elasticloadbalancing:DescribeRules", "ReadTheLoadBalancer"),
    ("ecs", "DescribeServices", "ecs:DescribeServices", "ReadTheTwoServices"),
])
def test_a_refused_read_of_what_runs_names_the_statement_granting_it(aws, app, blocks, monkeypatch, service,
                                                                     operation, action, statement):
    # The load balancer's weights and the services' images were said unread with AWS's text alone,
    # where the refused GetMetricData beside them named the rollout policy's statement to add.
    asked: list[str] = []
    refusing(monkeypatch, service, operation, asked)
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app, attempts=1), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    state.result(raise_on_failure=False)
    said = f"AWS refused {action} (AccessDenied: refused)"
    grant = (f"it is granted by deployments/iam-policy.json, statement {statement}: add that statement (with your "
             "names) to that role or user, then run again")
    if service == "elbv2":  # the SuccessRate check, not made: in the run's failure
        text = str(state.result(raise_on_failure=False))
        assert f"could not read which service carries the traffic (the load balancer's weights): {said}" in text, text
    else:  # the artifact's line of each service
        text = artifact_of(state)
        assert f"its image could not be read: {said}" in text, text
    assert grant in text, text


def test_no_success_rate_names_the_namespace_it_was_looked_for_in_and_where_to_set_another(aws, app, blocks):
    """The check said only "no SuccessRate data": a reader could not tell a service that publishes
    none from a targets block naming another namespace than the one the services publish in.
    (moto's GetMetricData matches metrics whatever their namespace, so none is published here.)"""
    state = validate_deployment(spec=spec(app, attempts=1), targets_block=blocks, aws_credentials_block=blocks,
                                return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert re.search(r"no SuccessRate data over \S+ \S+ to \S+ UTC \([^;]+; namespace Webordinary/Production", str(
        failed.value)), str(failed.value)
    assert ("namespace Webordinary/Production, dimension Service: "
            "webordinary-edit-service, webordinary-edit-service-canary); a service no request has reached publishes "
            "none: send it traffic (or wait for its users) and validate again; a service that publishes it elsewhere: "
            "name that namespace as metrics_namespace in the RollwayTargets block" in str(failed.value)), str(failed.value)


def silent(monkeypatch, endpoint: str, *services: str) -> None:
    """The run's clients of ``services`` send their calls to ``endpoint``, which never answers."""
    import flows.validate
    from tests.conftest import unanswering_client

    real = flows.validate.load_clients

    class Clients:
        """The run's clients, those of ``services`` replaced; the same for reads under a bound."""

        def __init__(self, get_client, region: str) -> None:
            self._get_client = get_client
            self._unanswered = {name: unanswering_client(name, endpoint, region) for name in services}

        def __call__(self, name: str):
            return self._unanswered[name] if name in self._unanswered else self._get_client(name)

        def reading(self, seconds: float) -> "Clients":
            return self

    def load(*args, **kwargs):
        targets, get_client = real(*args, **kwargs)
        return targets, Clients(get_client, targets.region)

    monkeypatch.setattr(flows.validate, "load_clients", load)


def failed_soon(app, blocks, *, attempts: int, timeout_seconds: float = 1):
    """A validation run with a short timeout (1 s unless given): its state and summary, once it
    failed within seconds."""
    began = time.monotonic()
    state = validate_deployment(spec=spec(app, timeout_seconds=timeout_seconds, attempts=attempts),
                                targets_block=blocks,
                                aws_credentials_block=blocks, return_state=True)
    took = time.monotonic() - began
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert took < 20, took
    return state, failed.value.summary


def test_a_cloudwatch_that_does_not_answer_ends_the_check_as_not_checked_within_its_timeout(
        aws, app, blocks, monkeypatch, silent_endpoint, caplog):
    """The SuccessRate read used the run's shared client (60 s per read, retried): a CloudWatch that
    took the connection and never answered held the check for minutes, silent, whatever
    spec.timeout_seconds said."""
    silent(monkeypatch, silent_endpoint, "cloudwatch")
    state, summary = failed_soon(app, blocks, attempts=2)
    check = checked(summary, "success_rate")
    assert (check.name, check.outcome, check.attempts) == ("success_rate", "unchecked", 2)
    assert check.reason.startswith("CloudWatch did not answer GetMetricData for SuccessRate in Webordinary/Production "
                                   "within 1 s"), check.reason
    assert summary.failed == ("success_rate",)  # the HTTP checks passed
    assert ("Deployment validation of webordinary-edit-service (stable) and webordinary-edit-service-canary (canary): "
            "NOT CHECKED (success_rate)") in artifact_of(state)
    # What it waits on, and how long at most, said before the wait.
    assert "reading SuccessRate of webordinary-edit-service, webordinary-edit-service-canary from CloudWatch " \
           "(GetMetricData in Webordinary/Production), waiting at most 1 s" in caplog.text


def test_a_load_balancer_and_ecs_that_do_not_answer_hold_the_run_no_longer_than_its_timeout(
        aws, app, blocks, monkeypatch, silent_endpoint):
    """Which service carries the traffic, and the image each runs, were read on the shared clients,
    through tasks retried twice: a load balancer or ECS that never answered held the run for many
    minutes after its checks were made, silent."""
    silent(monkeypatch, silent_endpoint, "elbv2", "ecs")
    publish_success_rate(aws, 99.95)
    state, summary = failed_soon(app, blocks, attempts=1)
    check = checked(summary, "success_rate")
    assert (check.name, check.outcome) == ("success_rate", "unchecked")
    assert check.reason == ("could not read which service carries the traffic (the load balancer's weights): Elastic "
                            "Load Balancing did not answer within 1 s (spec.timeout_seconds)"), check.reason
    text = artifact_of(state)
    for service in (aws.targets.stable_service, aws.targets.canary_service):
        assert re.search(f"- `{service}` \\((stable|canary)\\): its share of the traffic not read; its image could "
                         "not be read: ECS did not answer within 1 s", text), text


def test_reads_given_up_on_log_nothing_once_the_run_has_ended(aws, app, blocks, monkeypatch, caplog):
    """A read past its time is left running in its thread. The weights and images were read
    through tasks retried twice: once the endpoint failed them, they went on retrying, and
    logging "Retry 2/2", into a run that had ended (and past the end of the worker's process)."""
    from tests.conftest import unanswering_endpoint

    with unanswering_endpoint() as endpoint:
        silent(monkeypatch, endpoint, "elbv2", "ecs")
        publish_success_rate(aws, 99.95)
        failed_soon(app, blocks, attempts=1)
        ended = time.time()
    # The endpoint is gone: the calls left behind fail now, as they would once AWS gave up.
    time.sleep(3.5)  # the tasks' two retries were 1 s apart
    late = [r.getMessage() for r in caplog.records if r.created > ended]
    assert late == [], late


def test_a_read_given_up_on_at_the_specs_timeout_ends_within_it_on_the_runs_own_clients(
        aws, app, monkeypatch, silent_endpoint):
    """The checks' reads used the run's clients, whose six attempts of 10 s are kept for the
    rollout's writes: a CloudWatch that never answered was given up on at spec.timeout_seconds,
    but its call went on in its thread for about a minute more, and could still land after the
    run had said it timed out."""
    import threading

    from tests.flows.moto_env import account_blocks

    # A block as for a real account (no endpoint_url, no client config: the rollout's limits),
    # its calls sent to the embedded AWS, CloudWatch's to an endpoint that never answers.
    name = account_blocks(aws, monkeypatch, "validate-own", CLOUDWATCH=silent_endpoint)
    # 3 s: the run's reads of the load balancer and ECS, on clients made afresh from the block,
    # are bounded by the same timeout and took over 1 s on a loaded 2-core machine.
    state, summary = failed_soon(app, name, attempts=1, timeout_seconds=3)
    check = checked(summary, "success_rate")
    assert (check.name, check.outcome) == ("success_rate", "unchecked"), check
    assert "CloudWatch did not answer GetMetricData for SuccessRate" in check.reason, check.reason
    # The call given up on at 3 s ends within it and botocore's backoff between its attempts: soon
    # after the run, where the run's clients kept it a minute. Waited on for up to 20 s, which a
    # loaded machine may take to end the thread.
    ended = time.monotonic() + 20.0
    while time.monotonic() < ended and any(t.name == "rollway-read-CloudWatch" for t in threading.enumerate()):
        time.sleep(0.1)
    assert [t.name for t in threading.enumerate() if t.name == "rollway-read-CloudWatch"] == []


WAITING_SAID_EVERY = 2.0  # seconds: a "still waiting" line here, where a run says one every 10 s


@pytest.fixture
def slow_health(monkeypatch) -> Iterator[str]:
    """A health URL answering after 2.3 s: past the 2 s a wait is said at here (an app of its own,
    so that the session and message requests, to ``app``, answer at once)."""
    monkeypatch.setattr(deadline, "WAITING_SAID_EVERY_SECONDS", WAITING_SAID_EVERY)
    with ValidationApp() as slow:
        slow.faults.delay_seconds = WAITING_SAID_EVERY + 0.3
        yield f"{slow.url}/health"


def test_a_request_still_unanswered_says_so_while_it_waits(aws, app, blocks, slow_health, caplog):
    """Each request may wait spec.timeout_seconds (up to 300 s) for its answer: the run's log said
    nothing the whole time, where every other wait of rollway says every 10 s what it waits on."""
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app, health_url=slow_health, timeout_seconds=4, attempts=1),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    waits = [r.getMessage() for r in caplog.records if "still waiting for the answer" in r.getMessage()]
    assert waits == [f"health: still waiting for the answer to GET {slow_health} after 2 s of 4 s "
                     "(spec.timeout_seconds)"], caplog.text
    assert checked(state.result(), "health").passed  # answered within its bound: only said to be waited on


@pytest.mark.parametrize("message_status", [202, 503])
def test_the_test_session_left_on_the_service_is_named_with_how_it_stays(aws, app, blocks, message_status, caplog):
    """The run creates a test session the sessions API cannot delete. A failed message check
    said nothing of it, and a passed one only that "the test session" was left behind: which
    session, of which client and user, and that each run leaves one more, was not said."""
    app.faults.message_status = message_status
    publish_success_rate(aws, 99.95)
    state = validate_deployment(spec=spec(app), targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    (session_id,) = app.sessions
    sent = " and the test message it accepted" if message_status == 202 else ""
    left = (f"Left on the service: test session {session_id} (clientId 'test', userId 'deploy-test'){sent}. The "
            "sessions API has no call to delete a session, so the run did not: remove it where the service keeps "
            "its sessions if it must not stay; each run leaves one more.")
    assert state.is_failed() == (message_status == 503)
    assert left in artifact_of(state).splitlines()
    assert left in caplog.text


def test_a_session_id_with_control_characters_is_logged_as_escapes(aws, app, blocks, caplog):
    """The sessionId is the service's text: put in the log as it came, its escape sequence acted
    on the terminal reading the run's log (a cleared screen) and its line break began a line of
    the service's choosing, in the session check's line and in the one naming what was left."""
    app.faults.session_body = {"sessionId": "s-1\x1b[2J\nvalidation passed"}
    publish_success_rate(aws, 99.95)
    validate_deployment(spec=spec(app), targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    said = [r.getMessage() for r in caplog.records]
    assert not [line for line in said if "\x1b" in line or "\n" in line], said
    shown = "s-1\\x1b[2J\\nvalidation passed"
    assert any(line.startswith(f"Left on the service: test session {shown} (clientId 'test'") for line in said), said
    assert any(line.startswith("session passed") and line.endswith(f": session {shown}") for line in said), said
