"""A rollout's stage whose listener rule has come to forward to a third target group (someone added
a shadow group in the console while the canary scaled for the stage), on the embedded AWS load
balancer and a real Prefect run of the progressive flow.

The shift used to write the stable and canary groups alone: the shadow group's traffic was taken
away from it and nobody was told. Now the stage fails before its ModifyRule, naming the group,
and the run's failure hook rolls back: all the traffic to stable, the group dropped from the rule,
said in the page and recorded in the ledger.
"""
from __future__ import annotations

import dataclasses

import pytest
from prefect import flow

import flows.env
import flows.progressive
import flows.rollback
from flows.engine import shift_to
from flows.progressive import progressive_rollout
from rollway.approvals import auto_approve
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import AdapterError
from rollway.fakes import FakeFlagStore, FakeLedger
from rollway.flags import FlagState
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.botocore_events import on_operation
from tests.flows.fake_env import fake_environment, rollout_flows_see

IMAGE = "webordinary/edit-container:2.0.0"


def _forwarded(elbv2, rule_arn: str) -> dict[str, int]:
    rule = elbv2.describe_rules(RuleArns=[rule_arn])["Rules"][0]
    return {g["TargetGroupArn"]: g["Weight"] for g in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}


def test_a_stage_over_a_rule_that_came_to_forward_to_a_third_group_fails_writing_nothing(aws, monkeypatch,
                                                                                        watch_calls):
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    groups = router._lookups()
    for arn in (groups.stable_arn, groups.canary_arn):  # moto reports every registered target healthy
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": f"10.0.1.{n}", "Port": 8080} for n in range(1, 5)])
    env = fake_environment()
    env.ledger, env.router = FakeLedger(), router
    rollout_flows_see(monkeypatch, env)
    monkeypatch.setattr(flows.progressive, "prefect_approver", lambda *a, **k: auto_approve("alice"))
    # The hook's rollback builds its environment afresh: a router that looks the rule up again.
    fresh = dataclasses.replace(env, router=AlbRouter(elbv2, aws.targets))
    monkeypatch.setattr(flows.env, "load_environment", lambda *a, **k: fresh)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: fresh)

    vpc = elbv2.describe_target_groups(TargetGroupArns=[groups.stable_arn])["TargetGroups"][0]["VpcId"]
    shadow = elbv2.create_target_group(Name="webordinary-edit-shadow", Protocol="HTTP", Port=8080, VpcId=vpc,
                                       TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    scale = env.deployer.update_service

    def shadow_added_while_the_canary_scales(service, **kwargs):
        # After the run read the rule before the stage (its drift check), before the shift's write.
        if service == aws.targets.canary_service and kwargs.get("desired"):
            console.append(True)
            elbv2.modify_rule(RuleArn=groups.rule_arn, Actions=[{"Type": "forward", "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": groups.stable_arn, "Weight": 90},
                                 {"TargetGroupArn": shadow, "Weight": 10}]}}])
        return scale(service, **kwargs)

    monkeypatch.setattr(env.deployer, "update_service", shadow_added_while_the_canary_scales)
    sent: list[dict] = []
    console: list[bool] = []  # the shadow group's addition, a ModifyRule not rollway's
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100)], monitor_seconds=0)

    def rule_written(**kwargs):
        if console and console.pop():
            return
        sent.append(_forwarded(elbv2, groups.rule_arn))  # what the rule held when each ModifyRule was sent

    with on_operation(elbv2, "before-call", rule_written, operation="ModifyRule"), \
            pytest.raises(AdapterError) as refused:
        progressive_rollout(spec=spec, phased=False)

    said = str(refused.value)
    assert groups.rule_arn in said and f"{shadow} (weight 10 of 100)" in said, said
    assert "remove it from the rule, or roll the rollout back" in said, said
    # The stage wrote nothing: the one ModifyRule is the hook's rollback, sent over the rule the
    # shadow group was added to, and it put everything on stable.
    assert sent == [{groups.stable_arn: 90, shadow: 10}], sent
    assert _forwarded(elbv2, groups.rule_arn) == {groups.stable_arn: 100, groups.canary_arn: 0}
    record = env.ledger.get(aws.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    assert not [t for t in record.history if t.kind == "shift"], record.history
    dropped = f"target group {shadow} (weight 10 of 100) from rule {groups.rule_arn}"
    end = record.history[-1]
    assert end.kind == "rollback" and end.comment.endswith(f"; the move to stable dropped {dropped}"), end
    assert end.to_weights == Weights(stable=100, canary=0)
    (page,) = [m for s, m in env.notifier.messages if s.startswith("Rollback")]
    assert f"The move to stable dropped {dropped}" in page, page


FEATURE = "use_sqs_architecture"


@flow
def first_stage_with_flags(env, spec):
    return shift_to(env, spec, 5, 4, Weights(stable=100, canary=0), actor="operator", rollout="r-1")


def test_a_shift_with_bound_flags_over_a_third_group_is_refused_with_the_flags_unmoved_and_nothing_to_undo(aws):
    """With flags bound the shift is the transaction's write (tasks/undoable.set_weights): refused
    before the ModifyRule, it drops its undo (nothing was written) and the flags do not move."""
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    groups = router._lookups()
    elbv2.register_targets(TargetGroupArn=groups.canary_arn, Targets=[{"Id": "10.0.1.10", "Port": 8080}])
    env = fake_environment()
    env.router, env.flags = router, FakeFlagStore([FlagState(feature=FEATURE)])
    vpc = elbv2.describe_target_groups(TargetGroupArns=[groups.stable_arn])["TargetGroups"][0]["VpcId"]
    shadow = elbv2.create_target_group(Name="webordinary-edit-shadow", Protocol="HTTP", Port=8080, VpcId=vpc,
                                       TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_rule(RuleArn=groups.rule_arn, Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": groups.stable_arn, "Weight": 95}, {"TargetGroupArn": shadow, "Weight": 5}]}}])
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5), Stage(weight=100)], monitor_seconds=0,
                       flags=[FlagBinding(feature=FEATURE)])

    with pytest.raises(AdapterError, match="weight 5 of 100"):
        first_stage_with_flags(env, spec)
    assert _forwarded(elbv2, groups.rule_arn) == {groups.stable_arn: 95, shadow: 5}
    assert env.flags.flags[FEATURE].enabled is False and env.flags.flags[FEATURE].version == 0
