"""validate_deployment with spec.canary_header: the HTTP checks pinned to the canary target group by a
listener rule the infrastructure keeps, verified on the embedded AWS before any request."""

from __future__ import annotations

import pytest

from flows.validate import ValidationFailed, validate_deployment
from rollway.aws.elbv2 import AlbRouter
from rollway.model import Weights
# The fixtures as the validation's own tests have them (a fresh app per test, the saved blocks).
from tests.flows.test_validate_flow import (  # noqa: F401 - app and blocks are fixtures
    app, artifact_of, blocks, checked, publish_success_rate, spec, with_canary_targets,
)

HEADER = "X-Rollway-Target: canary"
HTTP_CHECKS = ("health", "session", "message")


def header_rule(aws, *, to: str = "canary", priority: int = 5, value: str = "canary") -> str:
    """A rule matching the header on the weighted rule's path, forwarding to ``to``'s group alone."""
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    group = router.canary_target_group_arn if to == "canary" else router.stable_target_group_arn
    return elbv2.create_rule(
        ListenerArn=router.listener_arn, Priority=priority,
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Rollway-Target",
                                                                  "Values": [value]}},
                    {"Field": "path-pattern", "PathPatternConfig": {"Values": [aws.targets.rule_path]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": group}])["Rules"][0]["RuleArn"]


def at_95_5(aws) -> None:
    with_canary_targets(aws)
    AlbRouter(aws.get_client("elbv2"), aws.targets).set_weights(Weights(stable=95, canary=5))
    publish_success_rate(aws, 99.95)


def test_at_95_5_each_http_check_says_the_canary_target_group_its_requests_were_pinned_to(aws, app, blocks, caplog):
    at_95_5(aws)
    rule = header_rule(aws, value="CAN*")  # a load balancer matches values without regard to case, * as a wildcard
    state = validate_deployment(spec=spec(app, canary_header=HEADER, success_rate_services=[aws.targets.stable_service]),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    summary = state.result()
    assert summary.passed
    group = aws.targets.canary_target_group
    said = (f"pinned to target group {group} by header `{HEADER}` (rule {rule}, priority 5, ahead of the weighted "
            "rule's 10)")
    for name in HTTP_CHECKS:
        check = checked(summary, name)
        assert check.pinned_to == group and check.reason.endswith(f"; {said}"), check
    # Every request carried the header the rule matches.
    assert len(app.headers) == 3
    assert all({k.lower(): v for k, v in sent.items()}.get("x-rollway-target") == "canary" for sent in app.headers)
    text = artifact_of(state)
    assert f"any that went through the load balancer's listener was {said}, whatever the weights." in text, text
    assert "which one is not known" not in text
    assert (f"the health, session and message requests carry `{HEADER}` (spec.canary_header), to be pinned to the "
            "canary target group by the listener rule read before them") in caplog.text


def test_without_a_canary_header_no_check_claims_a_target_group(aws, app, blocks):
    at_95_5(aws)
    header_rule(aws)  # there, but the spec does not ask for it: nothing is sent with the header
    state = validate_deployment(spec=spec(app, success_rate_services=[aws.targets.stable_service]),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    summary = state.result()
    for name in HTTP_CHECKS:
        check = checked(summary, name)
        assert check.pinned_to is None and "pinned" not in check.reason, check
    assert not any("x-rollway-target" in {k.lower() for k in sent} for sent in app.headers)
    assert "which one is not known" in artifact_of(state)


@pytest.mark.parametrize("rule, why", [
    (None, "no listener rule ahead of the weighted rule"),
    ({"priority": 20}, "no listener rule ahead of the weighted rule"),  # evaluated after the weighted rule
    ({"value": "stable"}, "no listener rule ahead of the weighted rule"),
    ({"to": "stable"}, "and sends them to "),
])
def test_a_canary_header_no_rule_pins_sends_no_request_and_says_what_rule_to_create(aws, app, blocks, rule, why):
    at_95_5(aws)
    made = header_rule(aws, **rule) if rule is not None else None
    state = validate_deployment(spec=spec(app, canary_header=HEADER, success_rate_services=[aws.targets.stable_service]),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert state.is_failed()
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    # Not sent: unpinned, at 95/5 they may all have reached the old version and passed for the new one.
    assert app.requests == []
    summary = failed.value.summary
    assert summary.failed == HTTP_CHECKS
    for name in HTTP_CHECKS:
        check = checked(summary, name)
        assert check.outcome == "unchecked" and check.pinned_to is None, check
        assert check.reason.startswith(f"not sent: the requests carrying `{HEADER}` (spec.canary_header) would not be "
                                       f"pinned to the canary target group {aws.targets.canary_target_group}: "), check
        assert why in check.reason, check.reason
    if rule is not None and "to" in rule:
        assert made in checked(summary, "health").reason
    else:
        assert (f"with a priority number below 10, the http-header condition X-Rollway-Target = canary beside the "
                f"weighted rule's own conditions (or none), and one action forwarding to "
                f"{aws.targets.canary_target_group} alone; or clear spec.canary_header") in checked(summary, "health").reason
    # The other checks are made all the same: one run says everything that is wrong.
    assert checked(summary, "success_rate").passed and checked(summary, "targets").passed
    assert "could not check: health (not sent:" in str(failed.value)


def test_a_canary_carrying_no_traffic_is_said_to_have_had_the_pinned_checks(aws, app, blocks):
    """At 100/0 the artifact said no request of the checks reached the canary: pinned, they all did."""
    with_canary_targets(aws)
    publish_success_rate(aws, 99.95)
    header_rule(aws)
    state = validate_deployment(spec=spec(app, canary_header=HEADER), targets_block=blocks,
                                aws_credentials_block=blocks, return_state=True)
    assert state.result().passed
    assert (f"- `{aws.targets.canary_service}` (canary): 0% of the traffic (the health, session and message checks "
            "were pinned to it, its targets were not read") in artifact_of(state)


def not_sent(aws, app, blocks) -> list[str]:
    """Each HTTP check's reason from a validation pinned by ``HEADER`` that failed sending none of them."""
    state = validate_deployment(spec=spec(app, canary_header=HEADER, success_rate_services=[aws.targets.stable_service]),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    with pytest.raises(ValidationFailed) as failed:
        state.result()
    assert app.requests == []
    checks = [checked(failed.value.summary, name) for name in HTTP_CHECKS]
    assert all(check.outcome == "unchecked" and check.pinned_to is None for check in checks), checks
    return [check.reason for check in checks]


@pytest.mark.parametrize("code, said", [
    ("Throttling", "Throttling on DescribeRules: refused"),
    ("AccessDenied", "it is granted by deployments/iam-policy.json, statement ReadTheLoadBalancer"),
])
def test_rules_that_could_not_be_read_send_no_request_and_do_not_say_the_rule_is_missing(aws, app, blocks,
                                                                                          monkeypatch, code, said):
    """Unread, the rules were said not to pin the requests ("would not be pinned"): nothing was
    known of them, and a reader went looking for a rule that was there."""
    from tests.flows.test_traffic_reads_denied import answering
    from tests.flows.test_validate_flow import refusing

    at_95_5(aws)
    header_rule(aws)
    asked: list[str] = []
    refusing(monkeypatch, "elbv2", "DescribeRules", asked, answer=answering(code, 99, asked, "DescribeRules"))
    for reason in not_sent(aws, app, blocks):
        assert reason.startswith(f"not sent: the requests carrying `{HEADER}` (spec.canary_header) are sent only once a "
                                 "listener rule is read that pins them to the canary target group "
                                 f"{aws.targets.canary_target_group}, and could not read the listener's rules: "), reason
        assert said in reason and "would not be pinned" not in reason, reason
        assert "\n" not in reason


def test_a_pin_rule_matching_the_header_by_a_regular_expression_sends_nothing_saying_pinned_is_not_known(
        aws, app, blocks, monkeypatch):
    """A pin rule matching the header by a regular expression (^canary$), not compared: the checks
    not sent "would not be pinned", of a rule that may well pin every one."""
    from tests.flows.test_validate_flow import refusing

    at_95_5(aws)
    made = header_rule(aws)

    def by_regex(parsed, **_) -> None:
        # As DescribeRules gives a rule made with RegexValues (which the embedded AWS cannot create).
        for found in parsed.get("Rules", []):
            if found["RuleArn"] == made:
                found["Conditions"] = [
                    {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Rollway-Target",
                                                                  "RegexValues": ["^canary$"]}},
                    *(c for c in found["Conditions"] if c["Field"] != "http-header")]

    refusing(monkeypatch, "elbv2", "DescribeRules", [], answer=by_regex, event="after-call")
    for reason in not_sent(aws, app, blocks):
        assert reason.startswith(
            f"not sent: whether the requests carrying `{HEADER}` (spec.canary_header) would all be pinned to the canary "
            f"target group {aws.targets.canary_target_group} is not known: it turns on which of them rule {made} "
            f"(priority 5) meets, by regular expressions that are not compared; rule {made} (priority 5) matches the "
            "header X-Rollway-Target by a regular expression (^canary$)"), reason
        assert "would not be pinned" not in reason, reason


def test_a_throttled_read_of_the_listeners_rules_is_asked_again_and_the_checks_are_pinned(aws, app, blocks, caplog,
                                                                                           monkeypatch):
    """Throttled once past botocore's own retries, the rules were said unread and no HTTP check was
    sent: the validation failed on a busy account's load balancer, with the pin rule there."""
    from tests.flows.test_traffic_reads_denied import answering
    from tests.flows.test_validate_flow import refusing

    at_95_5(aws)
    header_rule(aws)
    asked: list[str] = []
    refusing(monkeypatch, "elbv2", "DescribeRules", asked, answer=answering("Throttling", 1, asked, "DescribeRules"))
    state = validate_deployment(spec=spec(app, canary_header=HEADER, success_rate_services=[aws.targets.stable_service]),
                                targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    summary = state.result()
    assert summary.passed, summary
    assert asked[:2] == ["DescribeRules", "DescribeRules"]
    for name in HTTP_CHECKS:
        assert checked(summary, name).pinned_to == aws.targets.canary_target_group
    assert len(app.requests) == 3
    assert "DescribeRules was throttled (Throttling); asking again in" in caplog.text, caplog.text


def test_a_rule_ahead_of_the_pin_on_a_path_no_check_asks_for_leaves_the_checks_pinned(aws, app, blocks):
    """A rule on /admin/* forwarding to the stable group ahead of the pin meets none of the checks
    (on /health and /sessions...): judged against every path of the weighted rule's, it kept them
    from being sent."""
    at_95_5(aws)
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    elbv2.create_rule(ListenerArn=router.listener_arn, Priority=3,
                      Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/admin/*"]}}],
                      Actions=[{"Type": "forward", "TargetGroupArn": router.stable_target_group_arn}])
    rule = header_rule(aws)
    summary = validate_deployment(spec=spec(app, canary_header=HEADER,
                                            success_rate_services=[aws.targets.stable_service]),
                                  targets_block=blocks, aws_credentials_block=blocks)
    assert summary.passed
    for name in HTTP_CHECKS:
        check = checked(summary, name)
        assert check.pinned_to == aws.targets.canary_target_group and rule in check.reason, check


def test_a_spec_whose_checks_could_not_send_their_urls_is_refused_before_the_run_reads_aws(aws, blocks):
    """A session path httpx will not send passed the spec's own validation: the run read the
    blocks and the listener, then stopped on httpx's InvalidURL with a traceback."""
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError) as refused:
        validate_deployment(spec={"canary_header": HEADER, "sessions_path": "/sessions\x7f"},
                            targets_block=blocks, aws_credentials_block=blocks)
    said = str(refused.value)
    assert ("the health, session or message URL (health_url; api_base_url with sessions_path or messages_path) is "
            "not a request the checks could send: Invalid non-printable ASCII character in URL") in said, said
