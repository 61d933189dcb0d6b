"""AlbRouter.check_move, a rollback's check of its rule before it scales the stable service up, on the
embedded AWS: a rule that has come to forward to no target group (a fixed-response maintenance page, a
redirect, put on it by hand) is refused by the check, with reads alone, and by the move before its
ModifyRule, in the same words, saying what the rule does with the requests it matches and what to put
back.

The check let such a rule through: the stable service was scaled up to carry all the traffic, and the
move then wrote the rule back as it was (a forward's weights have no action to go in) and failed at its
read-back.
"""
from __future__ import annotations

import pytest

from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import RuleForwardsNowhere, TargetNotFound
from rollway.model import Weights
from rollway.weights_read import FirstRead

MAINTENANCE = {"Type": "fixed-response", "FixedResponseConfig": {
    "StatusCode": "503", "ContentType": "text/plain", "MessageBody": "maintenance"}}
REDIRECT = {"Type": "redirect", "RedirectConfig": {
    "Protocol": "HTTPS", "Host": "status.example.com", "Port": "443", "Path": "/", "StatusCode": "HTTP_302"}}
ANSWERS = [
    (MAINTENANCE, "it answers the requests it matches itself, with HTTP 503 (fixed-response)"),
    (REDIRECT, "it redirects the requests it matches (redirect: HTTP_302 to HTTPS://status.example.com:443/)"),
]


def rolling_back_over(aws, action) -> AlbRouter:
    """A rollback's router for the rollout that shifted the rule to 25 % canary, once ``action`` took
    the place of the rule's forward."""
    elbv2 = aws.get_client("elbv2")
    run = AlbRouter(elbv2, aws.targets)
    run.set_weights(Weights.canary_at(25))
    elbv2.modify_rule(RuleArn=aws.topology.rule_arn, Actions=[action])
    return AlbRouter(elbv2, aws.targets).rolling_back(run.shifted_rule())


@pytest.mark.parametrize(("action", "does"), ANSWERS, ids=["fixed-response", "redirect"])
def test_a_rollbacks_check_refuses_a_rule_forwarding_nowhere_saying_what_it_does_and_what_to_put_back(
        aws, watch_calls, action, does):
    router = rolling_back_over(aws, action)
    calls = watch_calls(aws.get_client("elbv2"))
    with pytest.raises(RuleForwardsNowhere) as refused:
        router.check_move()
    said = str(refused.value)
    kind = action["Type"]
    assert said.startswith(f"rule {aws.topology.rule_arn} forwards to no target group (its actions: {kind}): "
                           f"{does}, so none of them reaches either version"), said
    assert (f"give it back a forward to webordinary-edit-stable and webordinary-edit-canary in place of its {kind} "
            "action first") in said, said
    assert not {"ModifyRule", "AddTags", "RemoveTags"} & set(calls), calls


def test_a_rollbacks_move_refuses_a_rule_forwarding_nowhere_before_its_write_as_its_check_does(aws, watch_calls):
    """The move wrote the rule back as it was, then failed at its read-back in other words than the check's."""
    router = rolling_back_over(aws, MAINTENANCE)
    with pytest.raises(RuleForwardsNowhere) as checked:
        router.check_move()
    calls = watch_calls(aws.get_client("elbv2"))
    with pytest.raises(RuleForwardsNowhere) as moved:
        router.dropping_others(FirstRead()).set_weights(Weights(stable=100, canary=0))
    assert str(moved.value) == str(checked.value)
    assert calls == ["DescribeRules"], calls
    assert aws.get_client("elbv2").describe_rules(RuleArns=[aws.topology.rule_arn])["Rules"][0]["Actions"][0][
        "Type"] == "fixed-response"


def test_a_rule_gone_with_several_on_its_path_in_its_place_is_refused_saying_to_tell_them_apart(aws, watch_calls):
    """The rule the rollout recorded was deleted, and two rules on its path (two hosts') forward to both
    groups: which one took its place is not known. The refusal told people to put back a rule on the
    path forwarding to the groups, which would make three, and that rollway found none."""
    elbv2, top = aws.get_client("elbv2"), aws.topology
    run = AlbRouter(elbv2, aws.targets)
    run.set_weights(Weights.canary_at(25))
    router = AlbRouter(elbv2, aws.targets).rolling_back(run.shifted_rule())
    rule = elbv2.describe_rules(RuleArns=[top.rule_arn])["Rules"][0]
    elbv2.delete_rule(RuleArn=top.rule_arn)
    for n, host in enumerate(("a.example.com", "b.example.com"), start=1):
        elbv2.create_rule(ListenerArn=top.listener_arn, Priority=int(rule["Priority"]) + n, Conditions=[
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}},
            {"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}], Actions=rule["Actions"])
    calls = watch_calls(elbv2)
    for act in (router.check_move, lambda: router.dropping_others(FirstRead()).set_weights(Weights(stable=100, canary=0))):
        with pytest.raises(TargetNotFound) as refused:
            act()
        said = str(refused.value)
        assert said.startswith(f"listener rule '{top.rule_arn}' not found: it was deleted since the rollout "
                               "recorded it"), said
        assert "2 rules on path '/*'" in said and "name its host (rule_host)" in said, said
        assert "put back a rule" not in said and "did not find" not in said, said
    assert "ModifyRule" not in calls, calls
