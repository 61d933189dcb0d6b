"""A rollback that refuses the rule it would move the traffic over refuses it before it writes anything,
on the embedded AWS (ECS, the load balancer, the ledger): the stable service is not scaled up first.

The rollback found and checked that rule at its first read of it (the wait for healthy stable targets,
or the move itself), after it had scaled the stable service up to carry all the traffic: a rollback
refusing another service's rule on its path, or a recorded rule whose groups are not the targets', had
already written to ECS, and the stable service stayed at the count it set, for a rollback that moved
nobody. Each rollback (`rollway abort`'s, a state hook's, one finishing a rollback that died, the run's
own) finds and checks the rule first, with reads alone.
"""
from __future__ import annotations

import logging

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from prefect import flow

import flows.rollback
from flows.rollback import execute_rollback
from rollway.aws.denied import PermissionDenied
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.environment import aws_environment
from rollway.aws.errors import RuleForwardsNowhere, TargetNotFound
from rollway.clock import ClockSettings
from rollway.ledger import RolloutRecord, Transition, begin_rollback, new_rollout_id
from rollway.model import ShiftedRule, Weights
from rollway.phases import RolloutPhase
from rollway.sim.topology import STABLE_DESIRED
from rollway.spec import RolloutSpec
from tests.flows.test_rollback_calls import calls_in_order  # noqa: F401 - a fixture
from tests.flows.test_rollback_move_resent import AGAIN_ONCE_THE_RULE, left_on_the_path
from tests.flows.test_rollback_rule_recorded import roll_back as fresh_rollback

IMAGE = "webordinary/edit-container:2.0.0"
ON_CANARY, ALL_STABLE = Weights.canary_at(25), Weights(stable=100, canary=0)
VERIFY_SECONDS = 30.0
# What the rollout recorded the stable service needs for all the traffic: more than it runs, so that
# a rollback going ahead scales it up before it moves the traffic.
NEEDED = STABLE_DESIRED + 2


@flow
def own(env):
    return execute_rollback(env, "error rate 7%", actor="judge", stable_desired=NEEDED,
                            verify_timeout_seconds=VERIFY_SECONDS)


def rolling_out(aws, monkeypatch, *, recorded: bool, entry: str):
    """The load balancer at 25 % canary on the rollout's rule and a rollout of it in the ledger (the rule
    it shifted recorded, or, as an older ledger, not), its stable service needing ``NEEDED`` tasks.
    ``entry`` "own": the run's own router, which wrote the rule; any other looks it up afresh, and
    "resumed" finds the rollback begun (`rollway abort`'s intent) and not finished."""
    t = aws.targets
    env = aws_environment(aws.get_client, t, ClockSettings().build())
    # moto counts every registered target healthy: one for each task the stable service is scaled up to.
    aws.get_client("elbv2").register_targets(TargetGroupArn=aws.topology.stable_target_group_arn, Targets=[
        {"Id": f"10.0.1.{20 + n}", "Port": t.container_port} for n in range(NEEDED - STABLE_DESIRED)])
    writer = env.router if entry == "own" else AlbRouter(aws.get_client("elbv2"), t)
    writer.set_weights(ON_CANARY)
    start = env.clock.now()
    spec = RolloutSpec(image=IMAGE, verify_timeout_seconds=VERIFY_SECONDS)
    top = aws.topology
    rule = ShiftedRule(rule_arn=top.rule_arn, stable_arn=top.stable_target_group_arn,
                       canary_arn=top.canary_target_group_arn)
    record = env.ledger.create(RolloutRecord(
        service=t.canary_service, rollout_id=new_rollout_id(start - 100), image=IMAGE,
        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0, weights=ON_CANARY,
        stable_desired=NEEDED, **({"shifted_rule": rule} if recorded else {})),
        owner="run-1", now=start - 100, lease_seconds=600)
    if entry == "resumed":
        record = begin_rollback(env.ledger, t.canary_service, actor="bob", reason="aborted by bob", now=start - 10,
                                rollout=record.rollout_id, wall=start - 10)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    return env, record


def roll_back(entry: str, env, record):
    return own(env) if entry == "own" else fresh_rollback(entry, env, record)


def stable_desired(aws) -> int:
    t = aws.targets
    return aws.get_client("ecs").describe_services(cluster=t.cluster, services=[t.stable_service])[
        "services"][0]["desiredCount"]


ENTRIES = [("own", True), ("abort", True), ("abort", False), ("hook", True), ("hook", False), ("resumed", True),
           ("resumed", False)]


@pytest.mark.parametrize(("entry", "recorded"), ENTRIES,
                         ids=[f"{entry}-{'recorded' if recorded else 'older ledger'}" for entry, recorded in ENTRIES])
def test_a_rollback_refusing_another_services_rule_on_its_path_scales_nothing_first(
        aws, monkeypatch, calls_in_order, entry, recorded):
    env, record = rolling_out(aws, monkeypatch, recorded=recorded, entry=entry)
    other = left_on_the_path(aws, aws.get_client("elbv2"), "another service's")
    calls_in_order.clear()
    with pytest.raises(TargetNotFound) as refused:
        roll_back(entry, env, record)
    assert f"({other}), which forwards to " in str(refused.value), refused.value
    assert stable_desired(aws) == STABLE_DESIRED, "the stable service was scaled up by a rollback that refused"
    assert not set(calls_in_order) & {"UpdateService", "ModifyRule"}, calls_in_order


def test_a_rollback_refusing_a_recorded_rule_of_other_groups_scales_nothing_first(aws, monkeypatch, calls_in_order,
                                                                                   caplog):
    """The rollout recorded its rule forwarding to two groups the targets do not name now: refused, as
    before, and now before the stable service is scaled up. Its page does not tell people to wait for a
    rule on the path forwarding to the groups, "there is none": the recorded one is there."""
    env, record = rolling_out(aws, monkeypatch, recorded=True, entry="abort")
    elbv2, top = aws.get_client("elbv2"), aws.topology
    vpc = elbv2.describe_target_groups(TargetGroupArns=[top.stable_target_group_arn])["TargetGroups"][0]["VpcId"]
    own_groups = [elbv2.create_target_group(Name=f"webordinary-old-{v}", Protocol="HTTP", Port=8080, VpcId=vpc,
                                            TargetType="ip")["TargetGroups"][0]["TargetGroupArn"] for v in ("a", "b")]
    record = env.ledger.record(aws.targets.canary_service, owner="run-1", now=env.clock.now(),
                               transition=Transition(at=env.clock.now(), kind="shift", actor="run-1"),
                               shifted_rule=ShiftedRule(rule_arn=top.rule_arn, stable_arn=own_groups[0],
                                                        canary_arn=own_groups[1]))
    calls_in_order.clear()
    with caplog.at_level(logging.ERROR), pytest.raises(
            TargetNotFound, match=f"the rollout recorded rule {top.rule_arn} forwarding to target groups"):
        roll_back("abort", env, record)
    (page,) = {r.getMessage() for r in caplog.records if r.getMessage().startswith("The rollback of")}
    assert "there is none" not in page and AGAIN_ONCE_THE_RULE in page, page
    assert stable_desired(aws) == STABLE_DESIRED, "the stable service was scaled up by a rollback that refused"
    assert not set(calls_in_order) & {"UpdateService", "ModifyRule"}, calls_in_order


@pytest.mark.parametrize("entry", ["own", "abort"])
def test_a_rollback_going_ahead_still_scales_stable_up_before_it_moves_the_traffic(aws, monkeypatch, calls_in_order,
                                                                                     entry):
    """Its check of the rule first is reads alone: the writes of a rollback going ahead come in their
    order, stable's capacity first, then the move."""
    env, record = rolling_out(aws, monkeypatch, recorded=True, entry=entry)
    calls_in_order.clear()
    result = roll_back(entry, env, record)
    assert result.weights == ALL_STABLE and result.scaled_stable, result
    assert stable_desired(aws) == NEEDED
    writes = [call for call in calls_in_order if call in ("UpdateService", "ModifyRule")]
    assert writes[:2] == ["UpdateService", "ModifyRule"], calls_in_order


def test_a_rollback_whose_role_may_not_read_the_rule_scales_nothing_first(aws, monkeypatch, calls_in_order):
    """The role may not call DescribeRules: the move's own read of the rule is refused the same way, so
    the rollback is refused before it scales the stable service up, naming the statement. The check was
    logged as one that could not be made, and stable scaled up for a move AWS then refused."""
    env, record = rolling_out(aws, monkeypatch, recorded=True, entry="own")
    real = BaseClient._make_api_call

    def refused(client, operation, params):
        if operation == "DescribeRules":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform "
                                         "elasticloadbalancing:DescribeRules"}}, operation)
        return real(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refused)
    calls_in_order.clear()
    with pytest.raises(PermissionDenied, match="elasticloadbalancing:DescribeRules"):
        roll_back("own", env, record)
    assert stable_desired(aws) == STABLE_DESIRED, "the stable service was scaled up by a rollback that was refused"
    assert not set(calls_in_order) & {"UpdateService", "ModifyRule"}, calls_in_order


@pytest.mark.parametrize("entry", ["own", "abort"])
def test_a_rollback_over_a_rule_answering_by_itself_scales_nothing_first(aws, monkeypatch, calls_in_order, caplog,
                                                                          entry):
    """A maintenance page (fixed-response) put on the rollout's rule by hand: the check let it through, the
    stable service was scaled up to carry all the traffic, and the move then failed at its read-back.
    Refused before any write, the page saying once what the rule does and what to put back."""
    env, record = rolling_out(aws, monkeypatch, recorded=True, entry=entry)
    aws.get_client("elbv2").modify_rule(RuleArn=aws.topology.rule_arn, Actions=[{
        "Type": "fixed-response",
        "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": "maintenance"}}])
    calls_in_order.clear()
    with caplog.at_level(logging.ERROR), pytest.raises(RuleForwardsNowhere, match="it answers the requests it "
                                                       "matches itself, with HTTP 503 \\(fixed-response\\)"):
        roll_back(entry, env, record)
    assert stable_desired(aws) == STABLE_DESIRED, "the stable service was scaled up by a rollback that refused"
    assert not set(calls_in_order) & {"UpdateService", "ModifyRule"}, calls_in_order
    (page,) = {r.getMessage() for r in caplog.records if r.getMessage().startswith("The rollback of")}
    assert page.count("forwards to no target group") == 1 and AGAIN_ONCE_THE_RULE in page, page
    assert "can take the traffic" not in page, page
