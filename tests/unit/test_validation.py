"""ValidationSpec refuses bad input when built; evaluate() and the SuccessRate judgement say why."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from rollway.hosts import is_loopback_host
from rollway.validation import (
    CheckResult,
    ValidationSpec,
    evaluate,
    cleartext_authorization,
    judge_success_rate,
    markdown,
    minutes_read,
    no_session,
    shown_url,
    skipped,
    validation_seconds,
)


def test_defaults_are_the_seeds_script():
    spec = ValidationSpec()
    assert spec.health_url == "https://edit.ameliastamps.webordinary.com/health"
    assert spec.sessions_url == "https://api.webordinary.com/sessions"
    assert spec.messages_url("abc") == "https://api.webordinary.com/sessions/abc/messages"
    assert (spec.client_id, spec.user_id, spec.instruction) == ("test", "deploy-test", "Test deployment")
    assert (spec.success_rate_window_minutes, spec.success_rate_floor) == (5, 99.9)


def test_by_default_a_success_rate_without_data_is_read_again_past_cloudwatchs_ingestion_lag():
    """CloudWatch takes a minute or two to make a minute's datapoints readable: read again after
    the HTTP checks' 5 s, twice, "no SuccessRate data" failed a service that had published them."""
    spec = ValidationSpec()
    waited = (spec.attempts - 1) * spec.success_rate_retry_delay_seconds
    assert 120 <= waited <= 600, waited
    assert spec.retry_delay_seconds == 5  # the HTTP checks are not slowed down by it


def test_the_success_rate_check_is_bounded_in_all_its_reads_and_waits():
    """What holds the run is every read as well as every wait: 20 reads, each waited on up to
    spec.timeout_seconds (300 s), no wait between them, was 100 minutes and passed a bound on the
    waits alone."""
    spec = ValidationSpec()
    worst = spec.attempts * spec.timeout_seconds + (spec.attempts - 1) * spec.success_rate_retry_delay_seconds
    assert worst <= 20 * 60, worst
    ValidationSpec(attempts=18, success_rate_retry_delay_seconds=60)  # 18 reads of 10 s, 17 waits of 60 s: 20 min
    with pytest.raises(ValidationError) as refused:
        ValidationSpec(attempts=20, timeout_seconds=300, success_rate_retry_delay_seconds=0)
    said = str(refused.value)
    assert ("the SuccessRate check could take 100 min in all: 20 reads (attempts 20) of up to 300 s each "
            "(timeout_seconds) and 19 waits of 0 s (success_rate_retry_delay_seconds); at most 20 min: "
            "set attempts to 4 or fewer, or timeout_seconds to 60 or less") in said, said
    with pytest.raises(ValidationError) as refused:
        ValidationSpec(attempts=20, success_rate_retry_delay_seconds=120)
    said = str(refused.value)
    assert ("the SuccessRate check could take 41 min 20 s in all: 20 reads (attempts 20) of up to 10 s each "
            "(timeout_seconds) and 19 waits of 120 s (success_rate_retry_delay_seconds); at most 20 min: "
            "set success_rate_retry_delay_seconds to 52.6 or less, or attempts to 10 or fewer") in said, said


def test_the_whole_validation_is_bounded_by_its_checks_and_reads():
    # The defaults: each HTTP check 3 x 10 s and two 5-s waits (40 s, under its 300-s limit), three
    # of them; the SuccessRate check 3 x 10 s and two 60-s waits; the targets check 40 s; three reads of
    # 10 s (the weights, each service's image).
    assert validation_seconds(ValidationSpec()) == 3 * 40 + 150 + 40 + 30
    # A check's own limit caps it where its attempts multiplied out would not.
    capped = ValidationSpec(attempts=20, timeout_seconds=30, retry_delay_seconds=30, http_check_limit_seconds=120,
                            targets_check_limit_seconds=90, success_rate_retry_delay_seconds=0)
    assert validation_seconds(capped) == 3 * 120 + 20 * 30 + 90 + 3 * 30


@pytest.mark.parametrize(("setting", "refused"), [
    ("http_check_limit_seconds", "no request could be waited for to its end"),
    ("targets_check_limit_seconds", "no attempt of the targets check could be waited for to its end"),
], ids=["http", "targets"])
def test_each_check_of_several_attempts_is_bounded_in_all_and_the_default_bound_holds_the_default_attempts(
        setting, refused):
    """Per request the spec bounded the wait, not per check: 20 attempts of 300 s, 600 s apart,
    held one health check for nearly five hours, and the targets check (two target groups of up to
    300 s each an attempt) about six and a half. The targets check has its own bound: the HTTP
    checks' is documented as theirs (health, session, message)."""
    spec = ValidationSpec()
    worst = spec.attempts * spec.timeout_seconds + (spec.attempts - 1) * spec.retry_delay_seconds
    assert worst <= getattr(spec, setting) == 300, worst
    ValidationSpec(timeout_seconds=300)  # the longest request fits the default bound once
    with pytest.raises(ValidationError) as refusal:
        ValidationSpec(timeout_seconds=30, **{setting: 20})
    assert (f"{setting} 20 is less than timeout_seconds 30: {refused}; raise it, or lower timeout_seconds"
            in str(refusal.value)), str(refusal.value)
    for bad in (0, -1, 3601, float("inf")):
        with pytest.raises(ValidationError, match=setting):
            ValidationSpec(**{setting: bad})


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"health_url": "ftp://edit.example.com/health"}, "health_url 'ftp://edit.example.com/health' is not an http"),
        ({"health_url": "edit.example.com/health"}, "is not an http:// or https:// URL"),
        ({"api_base_url": "https:///sessions"}, "api_base_url"),
        ({"api_base_url": "https://user:pw@api.example.com"}, "must not carry a user name or password"),
        ({"health_url": "http://edit.example.com:99999/health"}, "has a bad port"),
        # The paths are appended to it: "...?stage=prod/sessions" would POST to the base itself.
        ({"api_base_url": "https://api.example.com/v1?stage=prod"}, "api_base_url must not have a query"),
        ({"api_base_url": "https://api.example.com/v1#top"}, "api_base_url must not have a query"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": -1.5}, "greater than 0"),
        ({"attempts": 0}, "attempts"),
        ({"success_rate_window_minutes": 0}, "success_rate_window_minutes"),
        ({"success_rate_floor": 101}, "success_rate_floor"),
        # It was refused only as "unable to parse string as a number".
        ({"success_rate_floor": "99.9%"}, "success_rate_floor is a number of percent: give 99.9, not '99.9%'"),
        ({"messages_path": "/sessions/messages"}, "must hold '{session_id}' exactly once"),
        ({"sessions_path": "sessions"}, "must be a path starting with '/'"),
        ({"user_id": "  "}, "user_id must not be blank"),
        ({"success_rate_services": ["svc "]}, "surrounding spaces"),
        ({"helth_url": "https://x.example.com"}, "helth_url"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(fields, says):
    with pytest.raises(ValidationError) as refused:
        ValidationSpec(**fields)
    assert says in str(refused.value)


@pytest.mark.parametrize(("floor", "meant"), [(0.999, "99.9"), (0.95, "95"), (1, "100"), (0.5, "50")])
def test_a_success_rate_floor_given_as_a_fraction_is_refused_naming_the_percent_meant(floor, meant):
    # The rollout spec gives its rates as fractions (0.01 is 1 %); this floor is in percent. Taken
    # as given, 0.999 was a floor of 0.999 %, which a service failing 99 % of its requests passed.
    with pytest.raises(ValidationError) as refused:
        ValidationSpec(success_rate_floor=floor)
    said = str(refused.value)
    assert "success_rate_floor" in said and "percent" in said and f"give {meant}" in said


@pytest.mark.parametrize("floor", [0, 1.5, 50, 99.9, 100])
def test_a_success_rate_floor_in_percent_is_taken(floor):
    assert ValidationSpec(success_rate_floor=floor).success_rate_floor == floor


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LocalHost", True), ("::ffff:127.0.0.1", True),
    # What a name resolves to is not known before the lookup, and may change: only localhost is trusted.
    ("edit.example.com", False), ("10.0.0.5", False), ("0.0.0.0", False), ("127.0.0.1.nip.io", False),
    ("localhost.example.com", False), ("fe80::1", False), ("", False),
])
def test_loopback_is_this_machine_by_address_or_localhost_only(host, loopback):
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize("fields", [
    {"health_url": "http://edit.example.com/health?token=t0k3n"},
    {"health_url": "https://edit.example.com/health", "api_base_url": "http://10.0.0.5:8080"},
    {"api_base_url": "http://api.internal"},
])
def test_a_secret_block_with_a_plain_http_url_to_another_host_is_refused_as_the_spec_is_built(fields):
    """The Secret block's value went as the Authorization header over plain http:// to any host:
    in clear text on every network between the worker and the service."""
    with pytest.raises(ValidationError) as refused:
        ValidationSpec(authorization_secret_block="edit-api-token", **fields)
    said = str(refused.value)
    assert "the Authorization header (the value of spec.authorization_secret_block) would be sent in clear text " \
           "over plain http:// to http://" in said, said
    assert "use https://, or, for a network you trust to carry it, set spec.allow_plain_http_authorization" in said
    assert "t0k3n" not in said  # the URL as logs show it, its query masked
    # Without a Secret block nothing secret is sent: plain http:// stays allowed, as the seed's curl did.
    ValidationSpec(**fields)
    # Said explicitly, it is sent.
    allowed = ValidationSpec(authorization_secret_block="edit-api-token", allow_plain_http_authorization=True, **fields)
    assert cleartext_authorization(allowed) is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080",
                                 "https://api.example.com"])
def test_a_secret_block_over_loopback_or_https_is_allowed(url):
    spec = ValidationSpec(health_url=f"{url}/health", api_base_url=url, authorization_secret_block="edit-api-token")
    assert cleartext_authorization(spec) is None and not spec.allow_plain_http_authorization


def test_a_session_id_is_percent_encoded_in_the_message_url():
    spec = ValidationSpec(api_base_url="http://127.0.0.1:8080/", messages_path="/s/{session_id}/m")
    assert spec.messages_url("a/b c") == "http://127.0.0.1:8080/s/a%2Fb%20c/m"


def ok(name):
    return CheckResult(name=name, outcome="passed", reason=f"{name} fine")


def bad(name, why):
    return CheckResult(name=name, outcome="failed", reason=why)


@pytest.mark.parametrize(
    ("results", "passed", "failed", "says"),
    [
        ([ok("health"), ok("session")], True, (), ["all 2 checks passed"]),
        ([bad("health", "HTTP 503"), ok("session")], False, ("health",), ["health (HTTP 503)"]),
        ([ok("health"), bad("session", "no sessionId"), skipped("message", "no test session was created")],
         False, ("session", "message"), ["session (no sessionId)", "message (not run: no test session was created)"]),
    ],
)
def test_evaluate_names_every_check_that_did_not_pass(results, passed, failed, says):
    summary = evaluate(results)
    assert (summary.passed, summary.failed) == (passed, failed)
    for text in says:
        assert text in summary.reason


@pytest.mark.parametrize("results", [[], [ok("health"), ok("health")]])
def test_evaluate_refuses_nothing_checked_or_a_check_twice(results):
    with pytest.raises(ValueError):
        evaluate(results)


@pytest.mark.parametrize(
    ("averages", "floor", "outcome", "says"),
    [
        ({}, 99.9, "failed", ["no SuccessRate data over 2026-12-04 07:00 to 07:05 UTC (the last 5 minutes", "svc-a, svc-b"]),
        ({"svc-a": (499.9, 5)}, 99.9, "passed", ["99.98%", "at or above the 99.9% floor"]),
        ({"svc-a": (495.0, 5)}, 99.9, "failed", ["99.00%", "BELOW the 99.9% floor"]),
        # Pooled as CloudWatch's Average: (500 + 480) / 10 = 98 %, each service shown.
        ({"svc-a": (500.0, 5), "svc-b": (480.0, 5)}, 96.0, "passed", ["98.00%", "svc-a 100.00%", "svc-b 96.00%"]),
        # The pool is at the floor, the version on svc-b is not: the old version's successes
        # (idle health checks) must not carry the new one's errors.
        ({"svc-a": (500.0, 5), "svc-b": (480.0, 5)}, 98.0, "failed", ["98.00%", "svc-b 96.00% is BELOW"]),
    ],
)
def test_success_rate_judgement(averages, floor, outcome, says):
    now = at(4, 7, 5)
    result = judge_success_rate(averages, ValidationSpec(success_rate_floor=floor), ("svc-a", "svc-b"),
                                read=minutes_read(now, 5), **recent(averages, now))
    assert result.outcome == outcome
    for text in says:
        assert text in result.reason
    assert result.retryable == (not averages)  # no data may still be on its way; a low rate is a finding


def at(day: int, hour: int, minute: int, second: int = 0) -> float:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=timezone.utc).timestamp()


def recent(averages: dict, now: float) -> dict:
    """``judge_success_rate``'s ``newest`` and ``now``: every service's newest datapoint stamped
    two minutes before ``now`` (its minute ended a minute before: as soon as CloudWatch shows one)."""
    return {"newest": {svc: now - 120 for svc in averages}, "now": now}


@pytest.mark.parametrize(("now", "read", "said"), [
    # CloudWatch is read in whole minutes: at 07:05:30, "the last 5 minutes" are 07:00 to 07:06.
    (at(4, 7, 5, 30), (at(4, 7, 0), at(4, 7, 6)), "over 2026-12-04 07:00 to 07:06 UTC (6 whole minutes for the last 5)"),
    (at(4, 7, 5), (at(4, 7, 0), at(4, 7, 5)), "over 2026-12-04 07:00 to 07:05 UTC (the last 5 minutes)"),
    (at(5, 0, 2, 30), (at(4, 23, 57), at(5, 0, 3)),
     "over 2026-12-04 23:57 to 2026-12-05 00:03 UTC (6 whole minutes for the last 5)"),
])
def test_the_success_rate_check_says_the_window_it_read(now, read, said):
    """It said "over the last 5 minutes" of a read widened to whole minutes, 6 of them."""
    assert minutes_read(now, 5) == read
    passed = judge_success_rate({"svc-a": (499.9, 5)}, ValidationSpec(), ("svc-a",), read=read,
                                **recent({"svc-a": 0}, now))
    assert passed.reason.startswith(f"average SuccessRate 99.98% {said} is at or above the 99.9% floor"), passed.reason
    none = judge_success_rate({}, ValidationSpec(), ("svc-a",), read=read, namespace="N", **recent({}, now))
    assert none.reason.startswith(f"no SuccessRate data {said[:-1]}; namespace N, dimension Service: svc-a)"), none.reason
    unmeasured = judge_success_rate({"svc-a": (499.9, 5)}, ValidationSpec(), ("svc-a", "svc-b"), read=read,
                                    serving={"svc-b": 100}, **recent({"svc-a": 0}, now))
    assert f"svc-b carries 100% of the traffic but published no SuccessRate {said[:-1]}; only svc-a did)" in (
        unmeasured.reason), unmeasured.reason


def test_no_success_rate_says_a_service_without_traffic_yet_publishes_none():
    """Validated right after a deployment no user had reached, the check said "no SuccessRate data"
    and, as its only lead, a namespace to change: the service was fine, it had served nothing."""
    now = at(4, 7, 5)
    none = judge_success_rate({}, ValidationSpec(), ("svc-a",), read=minutes_read(now, 5), namespace="N",
                              **recent({}, now))
    assert ("svc-a); a service no request has reached publishes none: send it traffic (or wait for its users) and "
            "validate again; a service that publishes it elsewhere: name that namespace") in none.reason, none.reason
    unmeasured = judge_success_rate({"svc-a": (499.9, 5)}, ValidationSpec(), ("svc-a", "svc-b"),
                                    read=minutes_read(now, 5), serving={"svc-b": 5}, **recent({"svc-a": 0}, now))
    assert unmeasured.reason.endswith(
        "the version users reach is unmeasured (no request reached it in the window, or it does not publish "
        "SuccessRate)"), unmeasured.reason


def test_the_success_rate_check_is_always_given_the_window_it_read():
    """Without it the check said "in the last 5 minutes" of a read it could not place: every
    caller reads in whole minutes (``minutes_read``) and must say which."""
    with pytest.raises(TypeError, match="read"):
        judge_success_rate({"svc-a": (499.9, 5)}, ValidationSpec(), ("svc-a",),  # type: ignore[call-arg]
                           **recent({"svc-a": 0}, at(4, 7, 5)))


def test_the_success_rate_check_is_always_given_how_recent_each_service_s_data_is():
    with pytest.raises(TypeError, match="newest"):
        judge_success_rate({"svc-a": (499.9, 5)}, ValidationSpec(), ("svc-a",),  # type: ignore[call-arg]
                           read=minutes_read(at(4, 7, 5), 5), now=at(4, 7, 5))


@pytest.mark.parametrize(("newest", "lag", "outcome"), [
    (at(4, 7, 1), 180, "passed"),    # the minute of 07:01 ended at 07:02, 180 s before 07:05: the lag allowed
    (at(4, 7, 0), 180, "failed"),    # 300 s before: more than a 60-s period plus 180 s
    (at(4, 7, 0), 240, "passed"),    # a longer lag said in the spec
    (at(4, 7, 4), 0, "passed"),      # no lag: the last whole minute must be there
    (at(4, 7, 3), 0, "failed"),
])
def test_a_success_rate_whose_newest_datapoint_is_older_than_a_period_plus_the_lag_fails_as_stale(
        newest, lag, outcome):
    """Good minutes at the start of the window passed a service that stopped publishing since."""
    now = at(4, 7, 5)
    result = judge_success_rate({"svc-a": (500.0, 5)}, ValidationSpec(success_rate_ingestion_lag_seconds=lag),
                                ("svc-a",), read=minutes_read(now, 5), newest={"svc-a": newest}, now=now)
    assert result.outcome == outcome, result.reason
    if outcome == "failed":
        assert result.reason.startswith(
            "stale SuccessRate over 2026-12-04 07:00 to 07:05 UTC (the last 5 minutes): svc-a's newest is the minute "
            f"of {datetime.fromtimestamp(newest, timezone.utc):%H:%M} UTC, {now - newest:.0f} s before 07:05:00 UTC; "
            f"at most {60 + lag} s is allowed (a 60-s period plus spec.success_rate_ingestion_lag_seconds {lag} s): it "
            "stopped publishing, or CloudWatch has not shown its last minutes yet; the figures read, not judged: "
            "svc-a 100.00%"), result.reason
        assert result.retryable  # read again: CloudWatch may show the last minutes then


@pytest.mark.parametrize(("serving", "outcome"), [
    # After a promotion the old service serves nothing and stops publishing: not stale, idle.
    ({"svc-a": 0, "svc-b": 100}, "passed"),
    ({"svc-a": 5, "svc-b": 95}, "failed"),  # a service users still reach must be measured now
    (None, "failed"),  # services named in the spec: each one's figure is judged, so each must be recent
])
def test_only_a_service_carrying_traffic_must_be_recent_when_the_traffic_is_known(serving, outcome):
    now = at(4, 7, 5)
    result = judge_success_rate({"svc-a": (500.0, 5), "svc-b": (500.0, 5)}, ValidationSpec(), ("svc-a", "svc-b"),
                                read=minutes_read(now, 5), newest={"svc-a": at(4, 6, 59), "svc-b": at(4, 7, 3)},
                                now=now, serving=serving)
    assert result.outcome == outcome, result.reason
    if outcome == "failed":
        assert "svc-a's newest is the minute of 06:59 UTC, 360 s before 07:05:00 UTC" in result.reason
        assert "svc-b's newest" not in result.reason


def test_a_stale_datapoint_of_the_day_before_is_said_with_its_date():
    now = at(5, 0, 2, 30)
    result = judge_success_rate({"svc-a": (500.0, 5)}, ValidationSpec(), ("svc-a",), read=minutes_read(now, 5),
                                newest={"svc-a": at(4, 23, 57)}, now=now)
    assert "svc-a's newest is the minute of 2026-12-04 23:57 UTC, 330 s before 00:02:30 UTC" in result.reason


def test_a_service_whose_datapoints_carry_no_time_is_not_taken_as_recent():
    now = at(4, 7, 5)
    result = judge_success_rate({"svc-a": (500.0, 5)}, ValidationSpec(), ("svc-a",), read=minutes_read(now, 5),
                                newest={}, now=now)
    assert result.outcome == "failed" and "svc-a's datapoints came without their times" in result.reason


@pytest.mark.parametrize("lag", [-1, 3601, float("nan")])
def test_the_ingestion_lag_is_bounded(lag):
    with pytest.raises(ValidationError, match="success_rate_ingestion_lag_seconds"):
        ValidationSpec(success_rate_ingestion_lag_seconds=lag)


@pytest.mark.parametrize(("averages", "serving", "outcome"), [
    # Promoted: the canary service carries everything and published nothing; the old service's
    # figures alone passed the check for the version users reach.
    ({"svc-a": (500.0, 5)}, {"svc-a": 0, "svc-b": 100}, "failed"),
    ({"svc-a": (500.0, 5)}, {"svc-a": 95, "svc-b": 5}, "failed"),  # a canary stage: both serve
    ({"svc-b": (500.0, 5)}, {"svc-a": 0, "svc-b": 100}, "passed"),  # the idle one need not publish
    ({"svc-a": (500.0, 5), "svc-b": (499.9, 5)}, {"svc-a": 95, "svc-b": 5}, "passed"),
])
def test_a_service_carrying_traffic_must_have_published(averages, serving, outcome):
    now = at(4, 7, 5)
    result = judge_success_rate(averages, ValidationSpec(), ("svc-a", "svc-b"), serving=serving,
                                read=minutes_read(now, 5), **recent(averages, now))
    assert result.outcome == outcome, result.reason
    if outcome == "failed":
        assert f"svc-b carries {serving['svc-b']}% of the traffic but published no SuccessRate" in result.reason
        assert result.retryable, "CloudWatch may still be ingesting its last minutes"


def test_markdown_table_shows_each_check_with_its_reason():
    text = markdown(evaluate([ok("health"), bad("session", "HTTP 500 | body: down\nnow")]))
    assert "FAILED (session)" in text
    assert "| health | passed | health fine |" in text
    assert r"HTTP 500 \| body: down now" in text  # one cell: the pipe escaped, the line break folded


def test_markdown_table_shows_the_time_of_all_attempts_and_how_many():
    slow = CheckResult(name="health", outcome="failed", reason="GET timed out", seconds=30.04, attempts=3)
    text = markdown(evaluate([slow, ok("session"), skipped("message", "no session")]))
    assert "| health | failed | GET timed out | 30.04 (3 tries) |" in text
    assert "| session | passed | session fine | 0.00 (1 try) |" in text
    assert "| message | skipped | not run: no session | not run |" in text


def test_the_message_check_skipped_after_a_lost_session_answer_says_a_session_may_exist():
    spec = ValidationSpec(client_id="c-1", user_id="u-2")
    refused = CheckResult(name="session", outcome="failed", reason="POST failed: ConnectError")
    lost = CheckResult(name="session", outcome="failed", reason="POST timed out: ReadTimeout", answer_lost=True)
    assert no_session(refused, spec) == "no test session was created"
    assert no_session(lost, spec) == ("the session POST's answer was lost after it was sent: a test session "
                                      "(clientId 'c-1', userId 'u-2') may have been created on the service and is "
                                      "left behind")
    for answer in ("HTTP 503", "HTTP 201 but no sessionId (keys: status)"):
        unclear = CheckResult(name="session", outcome="failed", reason=f"{answer} ...", answer_unclear=answer)
        assert no_session(unclear, spec) == (f"the session POST was answered {answer}, without a session id: a "
                                             "test session (clientId 'c-1', userId 'u-2') may have been created "
                                             "on the service and is left behind")


def test_a_refused_url_with_credentials_is_not_echoed_in_the_error():
    # The error goes to the run's logs and state message: the password must not go with it.
    with pytest.raises(ValidationError) as refused:
        ValidationSpec(api_base_url="https://deploy:s3cr3t-token@api.example.com")
    assert "must not carry a user name or password" in str(refused.value)
    assert "s3cr3t-token" not in str(refused.value)
    with pytest.raises(ValidationError) as refused:
        ValidationSpec(health_url="ftp://deploy:s3cr3t-token@edit.example.com/health")
    assert "s3cr3t-token" not in str(refused.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://edit.example.com/health", "https://edit.example.com/health"),
    ("https://edit.example.com/health?token=abc", "https://edit.example.com/health?token=****"),
    ("https://u:pw@x/h#access_token=t", "https://****@x/h"),
    ("https://u:pw@x:8443/h?t=1", "https://****@x:8443/h?t=****"),
    ("https://u@x/h", "https://****@x/h"),
    # A query that is a token alone (``?<api key>``) has no key to name: it was shown whole, as a key.
    ("https://x/h?s3cr3tt0ken", "https://x/h?****"),
    ("https://x/h?region=eu&s3cr3tt0ken", "https://x/h?region=****&****"),
    # A base64 token alone ends in "=" padding: read as a key with an empty value, it was shown but
    # for its padding. An item with nothing but "=" after its first one is masked whole.
    ("https://x/h?czNjcjN0dDBrZW4=", "https://x/h?****"),
    ("https://x/h?region=eu&czNjcjN0dG9rZW4==", "https://x/h?region=****&****"),
    ("https://x/h?a=1&b=&c=3#frag", "https://x/h?a=****&****&c=****"),
])
def test_shown_urls_mask_every_query_value(url, shown):
    assert shown_url(url) == shown


# A URL the spec took and the run's first request could not be sent to; what the refusal says.
UNSENDABLE = {
    "http://999.1.1.1/health": "Invalid IPv4 address",
    "http://edit..example.com/health": "label empty or too long",
    "http://" + "a" * 64 + ".example.com/health": "label empty or too long",
    "http://xn--zz.example.com/health": "Invalid A-label",
    "http://edit.example.com/health\x7f": "non-printable",
    "http://edit example.com/health": "has a space in its host",
}


@pytest.mark.parametrize(("url", "says"), UNSENDABLE.items())
def test_a_url_no_request_can_be_sent_to_is_refused_when_the_spec_is_built(url, says):
    """Accepted here, httpx or the idna codec refused it at the run's first request: the run
    failed with their traceback, or went looking up a host with a space in its name."""
    for field in ("health_url", "api_base_url"):
        with pytest.raises(ValidationError) as refused:
            ValidationSpec(**{field: url})
        assert f"{field} " in str(refused.value) and says in str(refused.value)


def test_a_refused_url_shows_its_query_masked():
    with pytest.raises(ValidationError) as refused:
        ValidationSpec(health_url="http://999.1.1.1/health?token=s3cr3t")
    assert "token=****" in str(refused.value) and "s3cr3t" not in str(refused.value)


@pytest.mark.parametrize("url", ["http://例え.jp/health", "http://[::1]:8080/health", "https://edit.example.com/h%20x",
                                 "http://127.0.0.1:8080/health?token=a%20b", "http://127.0.0.1:8080/my health?q=a b",
                                 "http://example.com./health"])
def test_urls_a_request_can_be_sent_to_are_taken(url):
    assert ValidationSpec(health_url=url).health_url == url


GROUPS = {"svc": "tg-stable", "svc-canary": "tg-canary"}


def test_every_service_carrying_traffic_needs_a_healthy_target_of_its_own():
    """At 95/5 the HTTP checks may all reach the stable service: a canary with no target to serve
    its 5 % passed them. The targets check reads each service's group on its own."""
    from rollway.validation import judge_targets

    split = {"svc": 95, "svc-canary": 5}
    bare = judge_targets(split, {"svc": 2, "svc-canary": 0}, GROUPS)
    assert (bare.name, bare.outcome) == ("targets", "failed")
    assert bare.reason.startswith("svc-canary carries 5% of the traffic with no healthy target in its target group "
                                  "tg-canary (the load balancer answers its share 503 itself"), bare.reason
    assert bare.reason.endswith("; svc carries 95% of the traffic with 2 healthy targets in its target group tg-stable")

    served = judge_targets(split, {"svc": 2, "svc-canary": 1}, GROUPS)
    assert served.passed, served.reason
    assert "svc-canary carries 5% of the traffic with 1 healthy target in its target group tg-canary" in served.reason
    # A service the load balancer sends nothing is not read, and said so.
    promoted = judge_targets({"svc": 0, "svc-canary": 100}, {"svc-canary": 3}, GROUPS)
    assert promoted.passed and promoted.reason.endswith("; svc carries none (not read)"), promoted.reason


def test_what_the_http_checks_reached_is_said_as_far_as_the_weights_tell():
    from rollway.validation import http_reach

    assert ("any that went through the load balancer's rule reached svc-canary, which carries all the traffic"
            in http_reach({"svc": 0, "svc-canary": 100}))
    assert ("each that went through the load balancer's rule at 95/5 reached svc or svc-canary, which one is not known"
            in http_reach({"svc": 95, "svc-canary": 5}))
    assert "which service they reached is not known (the load balancer's weights were not read)" in http_reach({})


def test_the_spec_parameter_says_what_its_default_checks_to_a_person_who_is_not_webordinary():
    """The run form said "(default: Webordinary's)": to anyone else that named nothing, and a run
    left on the defaults sent its checks to another company's service."""
    from flows.validate import validate_deployment

    said = validate_deployment.parameters.properties["spec"]["description"]
    defaults = ValidationSpec()
    for url in (defaults.health_url, defaults.api_base_url):
        assert url in said, said
    assert "set health_url and api_base_url to your service's" in said, said
    assert "\n" not in said and len(said) <= 200, said  # one line under the form's field


@pytest.mark.parametrize("given", [{"sessions_path": "/sessions\x7f"},
                                   {"messages_path": "/sessions/{session_id}/messages\x7f"}])
def test_a_spec_whose_checks_could_not_send_their_urls_is_refused_as_it_is_built(given):
    """Its own validation took such a spec, and the validation's pin read stopped on httpx's
    InvalidURL with a traceback after the run had started and read AWS; refused here, the form and
    every flow given the spec refuse it first."""
    with pytest.raises(ValidationError) as refused:
        ValidationSpec(**given)
    said = str(refused.value)
    assert ("the health, session or message URL (health_url; api_base_url with sessions_path or messages_path) is "
            "not a request the checks could send: Invalid non-printable ASCII character in URL") in said, said
