"""AlbRouter against the embedded AWS: weights written, read back, and verified."""

from __future__ import annotations

import pickle

import pydantic
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import AdapterError, TargetNotFound, WeightMismatch
from rollway.model import Weights
from rollway.pinning import Pin
from rollway.targets import Targets
from rollway.validation import ValidationSpec, check_requests
from rollway.weights_read import FirstRead
from tests.botocore_events import on_operation

_MISSING_GROUP = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/no-such-group/0123456789abcdef"


@pytest.fixture
def router(aws) -> AlbRouter:
    return AlbRouter(aws.get_client("elbv2"), aws.targets)


def _rule_weights(aws) -> dict[str, int]:
    rule = aws.get_client("elbv2").describe_rules(RuleArns=[aws.topology.rule_arn])["Rules"][0]
    return {g["TargetGroupArn"]: g["Weight"] for g in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}


def test_the_provisioned_rule_reads_as_all_stable(router):
    assert router.get_weights() == Weights(stable=100, canary=0)


@pytest.mark.parametrize("canary", [5, 25, 50, 75, 100, 0])
def test_set_then_get_round_trips(aws, router, canary):
    weights = Weights.canary_at(canary)
    router.set_weights(weights)
    assert router.get_weights() == weights
    assert router.verify(weights) == weights
    # What another reader of the ALB sees, not only what the router believes.
    assert _rule_weights(aws) == {
        aws.topology.stable_target_group_arn: 100 - canary,
        aws.topology.canary_target_group_arn: canary,
    }


def test_set_weights_reads_the_rule_then_makes_one_modify_rule_once_resolved(aws, router, watch_calls):
    router.resolve()
    calls = watch_calls(aws.get_client("elbv2"))
    router.set_weights(Weights.canary_at(25))
    # The provisioned rule has no stickiness: DescribeTags looks for a remembered one to put back.
    assert calls == ["DescribeRules", "DescribeTags", "ModifyRule"]


def test_set_weights_gives_back_what_the_rule_held_before_the_write(aws, router, watch_calls):
    """A rollback records them as what it moved the traffic from, read by the write's own
    DescribeRules: no call of their own, users on the canary wait on every call."""
    assert router.set_weights(Weights.canary_at(25)) == Weights(stable=100, canary=0)
    top = aws.topology
    aws.get_client("elbv2").modify_rule(RuleArn=top.rule_arn, Actions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": top.stable_target_group_arn, "Weight": 3},
                         {"TargetGroupArn": top.canary_target_group_arn, "Weight": 1}]}}])
    calls = watch_calls(aws.get_client("elbv2"))
    assert router.set_weights(Weights(stable=100, canary=0)) == Weights(stable=75, canary=25)  # as get_weights reads
    assert calls == ["DescribeRules", "ModifyRule"]


@pytest.mark.parametrize("answer", ["Throttling", "lost"])
def test_a_rollbacks_write_that_fails_after_its_read_leaves_what_it_read_with_its_move(aws, router, answer):
    """A rollback sends a failed move again; the next send's read may find its own lost write. What
    the first send read is told to the move before its ModifyRule, beside the error, not on it: the
    error as stored and loaded again (pickled, as Prefect may store a task's failure) is AWS's own."""
    router.set_weights(Weights.canary_at(25))
    elbv2 = aws.get_client("elbv2")

    def refused(**_):
        if answer == "lost":
            raise ReadTimeoutError(endpoint_url=aws.endpoint_url)
        raise ClientError({"Error": {"Code": answer, "Message": "Rate exceeded"}}, "ModifyRule")

    read = FirstRead()
    with on_operation(elbv2, "before-call", refused, operation="ModifyRule"), \
            pytest.raises((ClientError, ReadTimeoutError)) as caught:
        router.dropping_others(read).set_weights(Weights(stable=100, canary=0))
    reloaded = pickle.loads(pickle.dumps(caught.value))
    assert type(reloaded) is type(caught.value) and str(reloaded) == str(caught.value)
    assert (read.made, read.weights) == (True, Weights(stable=75, canary=25))


def test_a_rollbacks_write_whose_read_fails_tells_its_move_nothing(aws, router):
    """No DescribeRules answer, no ModifyRule sent: the next send's read is still from before the move."""
    router.resolve()
    elbv2 = aws.get_client("elbv2")

    def throttled(**_):
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeRules")

    read = FirstRead()
    with on_operation(elbv2, "before-call", throttled, operation="DescribeRules"), \
            pytest.raises(ClientError):
        router.dropping_others(read).set_weights(Weights(stable=100, canary=0))
    assert (read.made, read.weights) == (False, None)


def _with_a_third_group(aws, stable: int, canary: int, shadow_weight: int) -> str:
    """The rule made to forward to a shadow group as well, as someone might in the console; its ARN."""
    top, elbv2 = aws.topology, aws.get_client("elbv2")
    vpc = elbv2.describe_target_groups(TargetGroupArns=[top.stable_target_group_arn])["TargetGroups"][0]["VpcId"]
    shadow = elbv2.create_target_group(Name="webordinary-edit-shadow", Protocol="HTTP", Port=8080, VpcId=vpc,
                                       TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_rule(RuleArn=top.rule_arn, Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": top.stable_target_group_arn, "Weight": stable},
        {"TargetGroupArn": top.canary_target_group_arn, "Weight": canary},
        {"TargetGroupArn": shadow, "Weight": shadow_weight}]}}])
    return shadow


def test_a_rollbacks_write_over_a_rule_with_a_third_group_is_made_saying_what_it_drops(aws, router):
    """``get_weights`` refuses a rule that also forwards to a third (shadow) group; a rollback's
    move to stable is made over it all the same (users off the version rolled back come first),
    gives back no weights, and says which group it dropped, with the weight it had."""
    router.resolve()
    shadow = _with_a_third_group(aws, 80, 10, 10)
    move = FirstRead()
    assert router.dropping_others(move).set_weights(Weights(stable=100, canary=0)) is None
    assert _rule_weights(aws) == {aws.topology.stable_target_group_arn: 100, aws.topology.canary_target_group_arn: 0}
    assert move.dropped == f"target group {shadow} (weight 10 of 100) from rule {aws.topology.rule_arn}"
    assert (move.made, move.weights) == (True, None)


def _forwarding_nowhere(aws) -> None:
    """The rule made to forward with weight 0 to both groups, as someone might in the console."""
    top = aws.topology
    aws.get_client("elbv2").modify_rule(RuleArn=top.rule_arn, Actions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": top.stable_target_group_arn, "Weight": 0},
                         {"TargetGroupArn": top.canary_target_group_arn, "Weight": 0}]}}])


@pytest.mark.parametrize("weights", [Weights.canary_at(5), Weights(stable=100, canary=0)])
def test_a_shift_over_a_rule_forwarding_with_weight_0_to_both_groups_is_refused_before_the_write(
        aws, router, watch_calls, weights):
    """Whoever set it stopped the requests the rule matches: a rollout's shift (or finalize's move)
    would start them again unasked, and a stage would record a move from a split that was not there.
    Refused as ``get_weights`` refuses the rule, on the shift's own DescribeRules: no ModifyRule."""
    router.resolve()
    _forwarding_nowhere(aws)
    calls = watch_calls(aws.get_client("elbv2"))
    with pytest.raises(AdapterError, match="forwards with weight 0 to both target groups") as refused:
        router.set_weights(weights)
    assert calls == ["DescribeRules"]
    assert aws.topology.rule_arn in str(refused.value) and "give the rule the weights it should have" in str(
        refused.value)
    assert set(_rule_weights(aws).values()) == {0}
    with pytest.raises(AdapterError, match="forwards with weight 0 to both target groups"):
        router.get_weights()


def _forwarding_to_stable_alone_with_weight_0(aws) -> None:
    """The rule made to forward to the stable group alone, with weight 0, as someone might in the console."""
    top = aws.topology
    aws.get_client("elbv2").modify_rule(RuleArn=top.rule_arn, Actions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": top.stable_target_group_arn, "Weight": 0}]}}])


@pytest.mark.parametrize("stopped", [_forwarding_nowhere, _forwarding_to_stable_alone_with_weight_0])
def test_a_rollbacks_write_over_a_rule_forwarding_with_weight_0_to_both_groups_is_made(aws, router, stopped):
    """Users off the version rolled back come first: all of them to stable, nothing dropped, and
    what they were moved from is no split to record. A rule forwarding to the stable group alone
    with weight 0 sends it nothing: it was left as it was, as one forwarding to stable alone is,
    and the rollback's read-back then failed on it."""
    router.resolve()
    stopped(aws)
    move = FirstRead()
    assert router.dropping_others(move).set_weights(Weights(stable=100, canary=0)) is None
    assert _rule_weights(aws) == {aws.topology.stable_target_group_arn: 100, aws.topology.canary_target_group_arn: 0}
    assert (move.made, move.weights, move.dropped) == (True, None, None)


@pytest.mark.parametrize("weights", [Weights.canary_at(25), Weights(stable=0, canary=100)])
def test_a_shift_over_a_rule_that_came_to_forward_to_a_third_group_is_refused_before_the_write(
        aws, router, watch_calls, weights):
    """A rollout's shift would write the two groups alone and silently take the shadow group's
    traffic away. Looked up before the group was added, the rule is read by the shift's own
    DescribeRules and refused there: no ModifyRule (nor tag), the rule as it was, and the error
    names the rule, the group, its weight and what to do."""
    router.set_weights(Weights.canary_at(5))
    shadow = _with_a_third_group(aws, 85, 5, 10)
    before = aws.get_client("elbv2").describe_rules(RuleArns=[aws.topology.rule_arn])["Rules"][0]["Actions"]
    calls = watch_calls(aws.get_client("elbv2"))
    with pytest.raises(AdapterError) as refused:
        router.set_weights(weights)
    assert calls == ["DescribeRules"]
    assert aws.get_client("elbv2").describe_rules(RuleArns=[aws.topology.rule_arn])["Rules"][0]["Actions"] == before
    said = str(refused.value)
    assert aws.topology.rule_arn in said and f"{shadow} (weight 10 of 100)" in said, said
    assert "remove it from the rule" in said and "roll the rollout back" in said, said


def test_a_refused_rule_forwarding_to_stable_and_a_third_group_alone_is_not_said_to_forward_to_canary(aws, router):
    """The refusal said the rule forwarded to the shadow group "as well as to stable and canary" of a rule
    that no longer forwarded to canary at all: it names which of the two it forwards to, and which not."""
    top, elbv2 = aws.topology, aws.get_client("elbv2")
    shadow = _with_a_third_group(aws, 90, 0, 10)
    elbv2.modify_rule(RuleArn=top.rule_arn, Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": top.stable_target_group_arn, "Weight": 90}, {"TargetGroupArn": shadow, "Weight": 10}]}}])
    with pytest.raises(AdapterError) as refused:
        router.get_weights()
    said = str(refused.value)
    assert f"forwards to target group {shadow} (weight 10 of 100) as well as to stable (webordinary-edit-stable), " \
           "and not to canary, and a shift" in said, said
    assert "remove it from the rule" in said, said


def test_a_shift_keeps_the_rules_authentication_step(aws, router):
    """ModifyRule replaces every action: a login in front of the forward must be written back."""
    top = aws.topology
    elbv2 = aws.get_client("elbv2")
    oidc = {
        "Issuer": "https://login.example.com", "AuthorizationEndpoint": "https://login.example.com/authorize",
        "TokenEndpoint": "https://login.example.com/token", "UserInfoEndpoint": "https://login.example.com/userinfo",
        "ClientId": "rollway-test", "ClientSecret": "not-for-logs",
    }
    elbv2.modify_rule(RuleArn=top.rule_arn, Actions=[
        {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": oidc},
        {"Type": "forward", "Order": 2, "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": top.stable_target_group_arn, "Weight": 100},
            {"TargetGroupArn": top.canary_target_group_arn, "Weight": 0},
        ]}},
    ])
    router.set_weights(Weights.canary_at(5))
    assert router.verify(Weights.canary_at(5)) == Weights(stable=95, canary=5)
    actions = elbv2.describe_rules(RuleArns=[top.rule_arn])["Rules"][0]["Actions"]
    assert [(a["Type"], a.get("Order")) for a in actions] == [("authenticate-oidc", 1), ("forward", 2)]
    assert actions[0]["AuthenticateOidcConfig"]["ClientId"] == "rollway-test"


def test_verify_raises_when_someone_else_changed_the_rule(aws, router, independent_client):
    router.set_weights(Weights.canary_at(25))
    # A second actor (a person in the console, another run) moves the rule.
    intruder = independent_client("elbv2")
    top = aws.topology
    intruder.modify_rule(
        RuleArn=top.rule_arn,
        Actions=[{"Type": "forward", "TargetGroupArn": top.stable_target_group_arn}],
    )
    with pytest.raises(WeightMismatch) as caught:
        router.verify(Weights.canary_at(25))
    assert caught.value.expected == Weights(stable=75, canary=25)
    assert caught.value.actual == Weights(stable=100, canary=0)
    assert "100/0" in str(caught.value) and "75/25" in str(caught.value)


def test_relative_weights_read_as_percentages(aws, router):
    top = aws.topology
    aws.get_client("elbv2").modify_rule(
        RuleArn=top.rule_arn,
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": top.stable_target_group_arn, "Weight": 3},
                        {"TargetGroupArn": top.canary_target_group_arn, "Weight": 1},
                    ]
                },
            }
        ],
    )
    assert router.get_weights() == Weights(stable=75, canary=25)


def test_target_groups_may_be_given_by_arn(aws):
    by_arn = aws.targets.model_copy(
        update={
            "stable_target_group": aws.topology.stable_target_group_arn,
            "canary_target_group": aws.topology.canary_target_group_arn,
        }
    )
    router = AlbRouter(aws.get_client("elbv2"), by_arn)
    router.set_weights(Weights.canary_at(50))
    assert router.get_weights() == Weights(stable=50, canary=50)


def test_missing_target_group_arn_fails_before_any_write(aws, watch_calls):
    targets = Targets(canary_target_group=_MISSING_GROUP)
    client = aws.get_client("elbv2")
    calls = watch_calls(client)
    router = AlbRouter(client, targets)
    with pytest.raises(TargetNotFound) as caught:
        router.set_weights(Weights.canary_at(5))
    assert caught.value.name == _MISSING_GROUP
    assert _MISSING_GROUP in str(caught.value)
    assert calls and all(name.startswith("Describe") for name in calls)
    assert _rule_weights(aws)[aws.topology.stable_target_group_arn] == 100


def test_unknown_load_balancer_is_named(aws):
    router = AlbRouter(aws.get_client("elbv2"), Targets(load_balancer="no-such-alb"))
    with pytest.raises(TargetNotFound, match="no-such-alb"):
        router.resolve()


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/no-id",
        "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/x/0123456789abcdef",
        "arn:aws:elasticloadbalancing:us-west-2:1234:targetgroup/x/0123456789abcdef",
    ],
)
def test_malformed_target_group_arn_is_rejected_at_construction(value):
    with pytest.raises(pydantic.ValidationError, match="well-formed target group ARN"):
        Targets(stable_target_group=value)


def test_healthy_targets_count_registered_ips(aws, router):
    # moto reports a registered target as healthy at once: the stable group has the two
    # IPs the topology registered, the canary group none.
    assert router.healthy_targets("stable") == 2
    assert router.healthy_targets("canary") == 0
    aws.get_client("elbv2").register_targets(
        TargetGroupArn=aws.topology.canary_target_group_arn,
        Targets=[{"Id": "10.0.1.77", "Port": aws.targets.container_port}],
    )
    assert router.healthy_targets("canary") == 1
    with pytest.raises(ValueError, match="'blue'"):
        router.healthy_targets("blue")


def test_the_target_groups_health_checks_come_with_their_lookup(aws, router, watch_calls):
    """Read from DescribeTargetGroups' answer to the lookup: no call of their own."""
    aws.get_client("elbv2").modify_target_group(TargetGroupArn=aws.topology.canary_target_group_arn,
                                                HealthCheckIntervalSeconds=20, HealthCheckTimeoutSeconds=7)
    router.resolve()
    calls = watch_calls(aws.get_client("elbv2"))
    canary, stable = router.target_group("canary"), router.target_group("stable")
    assert calls == []
    assert (canary.arn, canary.name, canary.seconds_to_healthy) == (aws.topology.canary_target_group_arn,
                                                                    aws.targets.canary_target_group, 27)
    assert (stable.interval_seconds, stable.timeout_seconds) == (15, 5)  # the topology's (Webordinary's)


@pytest.mark.parametrize("call", ["get_weights", "set_weights"])
def test_a_rule_deleted_since_the_lookup_is_said_as_gone_with_what_to_do(aws, router, watch_calls, call):
    """The rule a rollout shifts, deleted by hand (or replaced by a stack update) between two
    stages: "listener rule '<arn>' not found: RuleNotFound" said neither that it had been there
    when the rollout began, nor where the path's requests go now, nor what to put back before a
    rollback (which looks for a rule on the path forwarding to the groups) can move them."""
    router.set_weights(Weights.canary_at(5))
    aws.get_client("elbv2").delete_rule(RuleArn=aws.topology.rule_arn)
    calls = watch_calls(aws.get_client("elbv2"))
    with pytest.raises(TargetNotFound) as gone:
        router.get_weights() if call == "get_weights" else router.set_weights(Weights.canary_at(25))
    assert calls == ["DescribeRules"]  # nothing written
    said = str(gone.value)
    assert aws.topology.rule_arn in said and "was deleted" in said, said
    assert "path '/*'" in said and "listener's other rules or its default action" in said, said
    assert ("put back a rule on path '/*' forwarding to webordinary-edit-stable and webordinary-edit-canary"
            in said), said


def test_a_rule_deleted_between_the_read_and_the_write_is_said_as_gone_in_the_same_words(aws, router):
    """Deleted after set_weights' DescribeRules and before its ModifyRule: ModifyRule's own
    RuleNotFound surfaced as a bare ClientError ("An error occurred (RuleNotFound) when calling the
    ModifyRule operation"), which a rollback paged as a stable service that could not take the
    traffic yet. The person gets the words a rule found gone by DescribeRules gets."""
    elbv2 = aws.get_client("elbv2")
    router.set_weights(Weights.canary_at(5))

    def deleted_meanwhile(**_):  # DescribeRules has answered; the rule goes before ModifyRule reaches it
        elbv2.delete_rule(RuleArn=aws.topology.rule_arn)

    with on_operation(elbv2, "before-call", deleted_meanwhile, operation="ModifyRule"), \
            pytest.raises(TargetNotFound) as write_gone:
        router.set_weights(Weights(stable=100, canary=0))
    assert isinstance(write_gone.value.__cause__, ClientError)  # AWS's own answer stays on the chain
    with pytest.raises(TargetNotFound) as read_gone:
        router.get_weights()
    assert str(write_gone.value) == str(read_gone.value)
    assert "was deleted" in str(write_gone.value)


def test_a_rule_that_came_to_answer_by_itself_is_said_as_forwarding_nowhere_not_as_weights_of_0(aws, router,
                                                                                               watch_calls):
    """A maintenance page put on the rule by hand (a fixed-response action in place of the forward):
    it was said to "forward with weight 0 to both target groups", weights a person then looked for in
    the console and did not find. Refused as before, before any write, naming what the rule does."""
    router.resolve()
    aws.get_client("elbv2").modify_rule(RuleArn=aws.topology.rule_arn, Actions=[{
        "Type": "fixed-response",
        "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": "maintenance"}}])
    calls = watch_calls(aws.get_client("elbv2"))
    for read in (router.get_weights, lambda: router.set_weights(Weights.canary_at(25))):
        with pytest.raises(AdapterError) as refused:
            read()
        said = str(refused.value)
        assert aws.topology.rule_arn in said and "forwards to no target group" in said, said
        assert "fixed-response" in said and "weight 0" not in said, said
    assert calls == ["DescribeRules", "DescribeRules"]


def test_the_validations_header_rule_on_the_same_path_is_found_as_the_pin_never_shifted(aws):
    """The validation's pin rule (``rollway.pinning``) is on the weighted rule's path and forwards to
    the canary group: a rollout looking up the rule to shift found two on its path and refused."""
    elbv2, top = aws.get_client("elbv2"), aws.topology
    pin_arn = elbv2.create_rule(
        ListenerArn=AlbRouter(elbv2, aws.targets).listener_arn, Priority=5,
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Rollway-Target",
                                                                  "Values": ["canary"]}},
                    {"Field": "path-pattern", "PathPatternConfig": {"Values": [aws.targets.rule_path]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": top.canary_target_group_arn}])["Rules"][0]["RuleArn"]
    router = AlbRouter(elbv2, aws.targets)
    assert router.rule_arn == top.rule_arn
    router.set_weights(Weights.canary_at(5))
    assert router.get_weights() == Weights.canary_at(5)
    pin = router.pin("x-rollway-target: Canary")
    assert (pin.rule_arn, pin.priority, pin.weighted_priority) == (pin_arn, "5", "10"), pin
    # Read only: the pin rule forwards as it did.
    (rule,) = elbv2.describe_rules(RuleArns=[pin_arn])["Rules"]
    assert rule["Actions"][0]["TargetGroupArn"] == top.canary_target_group_arn


def test_a_pin_rule_matching_the_header_by_a_regular_expression_is_read_as_such_not_said_missing(aws):
    """A header rule whose condition a load balancer holds as a regular expression (RegexValues, which
    moto does not take: DescribeRules' answer is given it as AWS gives one) forwarding to the canary
    alone was said missing, "create one", of the rule the listener has."""
    from tests.botocore_events import on_operation

    elbv2, top = aws.get_client("elbv2"), aws.topology
    router = AlbRouter(elbv2, aws.targets)
    pin_arn = elbv2.create_rule(
        ListenerArn=router.listener_arn, Priority=5,
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Rollway-Target",
                                                                  "Values": ["canary"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": top.canary_target_group_arn}])["Rules"][0]["RuleArn"]

    def as_regex(parsed, **_):
        for rule in parsed.get("Rules", []):
            for condition in rule["Conditions"] if rule["RuleArn"] == pin_arn else ():
                if condition["Field"] == "http-header":
                    condition.pop("Values", None)
                    condition["HttpHeaderConfig"] = {"HttpHeaderName": "X-Rollway-Target", "RegexValues": ["^canary$"]}

    with on_operation(elbv2, "after-call", as_regex, operation="DescribeRules"):
        said = router.pin("X-Rollway-Target: canary")
    assert isinstance(said, str), said
    assert said.startswith(f"rule {pin_arn} (priority 5) matches the header X-Rollway-Target by a regular expression "
                           "(^canary$), which is not compared with `canary`"), said
    assert f"though it forwards to {aws.targets.canary_target_group} alone" in said, said


def test_pin_rules_one_per_host_of_the_weighted_rules_are_read_as_pinning_together(aws):
    """A weighted rule on two hosts and one pin rule per host, as DescribeRules gives them: each pin
    was refused for missing the other host's requests, though together they meet every one first."""
    elbv2, top = aws.get_client("elbv2"), aws.topology
    router = AlbRouter(elbv2, aws.targets)
    path = {"Field": "path-pattern", "PathPatternConfig": {"Values": [aws.targets.rule_path]}}
    elbv2.modify_rule(RuleArn=top.rule_arn, Conditions=[
        path, {"Field": "host-header", "HostHeaderConfig": {"Values": ["a.example.com", "b.example.com"]}}])
    pins = [elbv2.create_rule(
        ListenerArn=router.listener_arn, Priority=priority,
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Rollway-Target",
                                                                  "Values": ["canary"]}},
                    path, {"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": top.canary_target_group_arn}])["Rules"][0]["RuleArn"]
        for priority, host in ((3, "a.example.com"), (5, "B.example.com"))]
    pin = router.pin("X-Rollway-Target: canary")
    assert isinstance(pin, Pin), pin
    assert f"(rules {pins[0]} (priority 3) and {pins[1]} (priority 5), each on part of the weighted rule's" in pin.said()
    # The rollout still shifts the weighted rule alone.
    router.set_weights(Weights.canary_at(5))
    assert router.get_weights() == Weights.canary_at(5)


@pytest.mark.parametrize("conditions, meets", [
    ([{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/admin/*"]}}],
     "meets some of the weighted rule's requests, carrying `X-Rollway-Target: canary` or not (it has a "),
    # On the weighted rule's own path: a rollout takes the rule naming the canary group, and lets this one by.
    # Where the checks are sent from is not known: it may meet them.
    ([{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}},
      {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}],
     "may meet some of the weighted rule's requests carrying `X-Rollway-Target: canary` (by a source-ip condition on "
     "10.0.0.0/8, where the checks are sent from not being known)"),
])
def test_a_rule_with_no_header_condition_ahead_of_the_pin_is_read_as_taking_some_of_the_checks(aws, conditions, meets):
    """A rule ahead of the pin with no http-header condition (a path of its own, a source address),
    forwarding to the stable group: the checks meeting it reach the old version, and the pin was
    said to hold every one."""
    elbv2, top = aws.get_client("elbv2"), aws.topology
    router = AlbRouter(elbv2, aws.targets)
    router.set_weights(Weights.canary_at(5))
    admin_arn = elbv2.create_rule(
        ListenerArn=router.listener_arn, Priority=3, Conditions=conditions,
        Actions=[{"Type": "forward", "TargetGroupArn": top.stable_target_group_arn}])["Rules"][0]["RuleArn"]
    pin_arn = elbv2.create_rule(
        ListenerArn=router.listener_arn, Priority=5,
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Rollway-Target",
                                                                  "Values": ["canary"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": top.canary_target_group_arn}])["Rules"][0]["RuleArn"]
    said = AlbRouter(elbv2, aws.targets).pin("X-Rollway-Target: canary")
    assert not isinstance(said, Pin), said
    assert said.startswith(f"rule {admin_arn} (priority 3), with no http-header condition, {meets}"), said
    assert said.endswith(f", and sends those it meets to {top.stable_target_group_arn} (the stable version alone, "
                         f"whatever the weights); it is ahead of rule {pin_arn} (priority 5), the one pinning them to "
                         f"the canary target group {aws.targets.canary_target_group} alone: give rule {pin_arn} a "
                         "priority number below 3 (a listener meets its rules in priority order)"), said
    # Given a priority number below it, the pin holds every check.
    elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": pin_arn, "Priority": 2}])
    assert isinstance(AlbRouter(elbv2, aws.targets).pin("X-Rollway-Target: canary"), Pin)


def test_a_rule_ahead_of_the_pin_that_none_of_the_checks_requests_meets_leaves_the_pin_read_with_them(aws):
    """A rule on /admin/* forwarding to the stable group ahead of the pin: judged against the weighted
    rule's requests (every path) it takes some of them; the checks' own (/health, /sessions...) never
    meet it, and were said not pinned."""
    elbv2, top = aws.get_client("elbv2"), aws.topology
    listener = AlbRouter(elbv2, aws.targets).listener_arn
    elbv2.create_rule(ListenerArn=listener, Priority=3,
                      Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/admin/*"]}}],
                      Actions=[{"Type": "forward", "TargetGroupArn": top.stable_target_group_arn}])
    pin_arn = elbv2.create_rule(
        ListenerArn=listener, Priority=5,
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Rollway-Target",
                                                                  "Values": ["canary"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": top.canary_target_group_arn}])["Rules"][0]["RuleArn"]
    router = AlbRouter(elbv2, aws.targets)
    checks = check_requests(ValidationSpec(health_url="https://edit.example.com/health",
                                           api_base_url="https://api.example.com"))
    pin = router.pin("X-Rollway-Target: canary", checks=checks)
    assert isinstance(pin, Pin) and pin.rule_arn == pin_arn, pin
    # Without them (the infrastructure's checklist), the weighted rule's requests are judged.
    assert not isinstance(router.pin("X-Rollway-Target: canary"), Pin)
