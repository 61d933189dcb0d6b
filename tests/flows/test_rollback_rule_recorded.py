"""A rollback that looks the listener rule up afresh (`rollway abort`'s or the rollback flow run by hand,
a state hook's, one finishing a rollback that died) moves the traffic over the rule the rollout recorded
with its shifts, on the embedded AWS load balancer, and never over another service's rule left on the
same path.

Looked up by listener and path alone, the rule of another service on that path (forwarding to its own
group and this stable one) was written over: its group dropped, its users sent to this stable group,
and the rollback said moved.
"""
from __future__ import annotations

import pytest
from prefect import flow

import flows.rollback
from flows.rollback import finish_rollback, hook_rollback, rollback
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import AdapterError, TargetNotFound
from rollway.clock import ClockSettings
from rollway.fakes import FakeLedger
from rollway.ledger import RolloutRecord, Transition, begin_rollback, new_rollout_id
from rollway.model import ShiftedRule
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec
from tests.flows.test_rollback_move_resent import (AGAIN_ONCE_THE_RULE, ALL_STABLE, ON_CANARY, VERIFY_SECONDS,
                                                   left_on_the_path, on_moto, replaced_by_a_stack_update)

IMAGE = "webordinary/edit-container:2.0.0"
ENTRIES = ["abort", "hook", "resumed"]


@flow
def resumed(env, record):
    return finish_rollback(env, record, actor="rollway")


def fresh(aws, monkeypatch, *, recorded: bool, entry: str):
    """The load balancer at 25 % canary on the rollout's rule, a rollout of it in the ledger (with the rule
    it shifted recorded, or, as an older ledger, without), and the rollback flow's environment looking
    everything up afresh, as a hook's or `rollway abort`'s does. ``entry`` "resumed": the ledger shows
    the rollback begun (`rollway abort`'s intent) and not finished."""
    env, elbv2 = on_moto(aws)
    env.router = AlbRouter(elbv2, aws.targets)
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, verify_timeout_seconds=VERIFY_SECONDS)
    start = env.clock.now()
    t = aws.topology
    rule = ShiftedRule(rule_arn=t.rule_arn, stable_arn=t.stable_target_group_arn, canary_arn=t.canary_target_group_arn)
    record = env.ledger.create(RolloutRecord(
        service=aws.targets.canary_service, rollout_id=new_rollout_id(start - 100), image=IMAGE,
        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0, weights=ON_CANARY,
        **({"shifted_rule": rule} if recorded else {})), owner="run-1", now=start - 100, lease_seconds=600)
    if entry == "resumed":
        record = begin_rollback(env.ledger, aws.targets.canary_service, actor="bob", reason="aborted by bob",
                                now=start - 10, rollout=record.rollout_id, wall=start - 10)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    return env, elbv2, record


def roll_back(entry: str, env, record):
    if entry == "abort":
        return rollback(reason="error rate 7%", actor="bob", rollout=record.rollout_id,
                        verify_timeout_seconds=VERIFY_SECONDS)
    if entry == "hook":
        return hook_rollback(reason="flow run failed", actor="hook", bindings=None, fallback_bindings=None,
                             targets_block=None, aws_credentials_block=None, clock=ClockSettings(),
                             only_open_rollout=True, rollout=record.rollout_id, claim_wait_seconds=60.0)
    return resumed(env, record).rollback


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "older ledger"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_a_rollback_looking_the_rule_up_afresh_writes_nothing_over_another_services_rule_on_its_path(
        aws, monkeypatch, watch_calls, entry, recorded):
    env, elbv2, record = fresh(aws, monkeypatch, recorded=recorded, entry=entry)
    other = left_on_the_path(aws, elbv2, "another service's")
    before = elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"]
    calls = watch_calls(elbv2)
    with pytest.raises(TargetNotFound) as refused:
        roll_back(entry, env, record)
    assert calls.count("ModifyRule") == 0, calls
    assert elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"] == before, "another service's users moved"
    said = str(refused.value)
    assert f"({other}), which forwards to " in said and "it is not the rollout's rule" in said, said
    assert "\n" not in said, said
    if recorded:
        assert f"rule {aws.topology.rule_arn} was deleted since the rollout recorded it (by hand" in said, said
    else:
        assert "the rollout recorded no rule of its own" in said, said
    assert "give the rollout's own rule weight 100 to webordinary-edit-stable and 0 to webordinary-edit-canary" in said
    subject, body = env.notifier.messages[-1]
    assert subject.startswith("Rollback FAILED") and other in body, (subject, body)


def named_canary_too(aws, elbv2) -> str:
    """Another service's rule on the rollout's path (another host's), forwarding to its own group and to
    this canary group: the path lookup, finding two rules naming the canary group, took neither."""
    stable = aws.topology.stable_target_group_arn
    vpc = elbv2.describe_target_groups(TargetGroupArns=[stable])["TargetGroups"][0]["VpcId"]
    own = elbv2.create_target_group(Name="webordinary-shadow", Protocol="HTTP", Port=8080, VpcId=vpc,
                                    TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    groups = [{"TargetGroupArn": own, "Weight": 99}, {"TargetGroupArn": aws.topology.canary_target_group_arn,
                                                      "Weight": 1}]
    conditions = [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}},
                  {"Field": "host-header", "HostHeaderConfig": {"Values": ["shadow.example.com"]}}]
    priority = int(elbv2.describe_rules(RuleArns=[aws.topology.rule_arn])["Rules"][0]["Priority"]) + 3
    return elbv2.create_rule(ListenerArn=aws.topology.listener_arn, Priority=priority, Conditions=conditions,
                             Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]
                             )["Rules"][0]["RuleArn"]


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_rollback_looking_the_rule_up_afresh_moves_the_users_over_the_rule_the_rollout_recorded(
        aws, monkeypatch, entry):
    """Another rule on the path naming the canary group too: the lookup by path could tell neither apart,
    and the rollback failed with the users left on the canary. The rule the rollout recorded is the one."""
    env, elbv2, record = fresh(aws, monkeypatch, recorded=True, entry=entry)
    other = named_canary_too(aws, elbv2)
    before = elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"]
    result = roll_back(entry, env, record)
    assert result.weights == ALL_STABLE and result.weights_before == ON_CANARY, result
    ours = elbv2.describe_rules(RuleArns=[aws.topology.rule_arn])["Rules"][0]
    weights = {g["TargetGroupArn"]: g["Weight"] for g in ours["Actions"][0]["ForwardConfig"]["TargetGroups"]}
    assert weights == {aws.topology.stable_target_group_arn: 100, aws.topology.canary_target_group_arn: 0}
    assert elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"] == before
    assert result.rule_replaced is None, result


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_rollback_looking_the_rule_up_afresh_moves_the_users_over_the_rule_that_replaced_the_recorded_one(
        aws, monkeypatch, entry):
    """A stack update replaced the rule the rollout recorded (a new ARN, the same path and groups): the users
    are moved over the new one, and the page says so, as the run's log and the ledger do."""
    env, elbv2, record = fresh(aws, monkeypatch, recorded=True, entry=entry)
    new = replaced_by_a_stack_update(aws, elbv2)
    result = roll_back(entry, env, record)
    assert result.weights == ALL_STABLE and result.weights_before == ON_CANARY, result
    assert AlbRouter(elbv2, aws.targets).get_weights() == ALL_STABLE
    said = (f"he move to stable went over rule {new}, found again on path '/*': rule {aws.topology.rule_arn} was "
            "deleted since the rollout recorded it (by hand, or replaced by a stack update)")
    assert result.rule_replaced is not None and said in result.rule_replaced, result
    subject, body = env.notifier.messages[-1]
    assert subject.startswith("Rollback:") and f"T{said}" in body, body


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_rollback_of_a_rollout_an_older_ledger_recorded_no_rule_for_still_moves_the_users(aws, monkeypatch, entry):
    env, elbv2, record = fresh(aws, monkeypatch, recorded=False, entry=entry)
    result = roll_back(entry, env, record)
    assert result.weights == ALL_STABLE and result.weights_before == ON_CANARY, result
    assert AlbRouter(elbv2, aws.targets).get_weights() == ALL_STABLE


def test_a_rollback_finding_several_rules_on_its_path_says_to_run_it_again_once_the_rule_is_named(
        aws, monkeypatch):
    """No rule recorded (an older ledger), and another host's rule on the path naming the canary group too:
    the lookup cannot tell which one the rollout shifted, and says how to name it. The page told people
    to run the rollback again "once webordinary-edit-service can take the traffic", which it could all
    along; it fails the same way until the rule is named."""
    env, elbv2, record = fresh(aws, monkeypatch, recorded=False, entry="abort")
    named_canary_too(aws, elbv2)
    with pytest.raises(AdapterError, match="2 rules on path '/\\*' of listener .* name its host \\(rule_host\\)"):
        roll_back("abort", env, record)
    subject, body = env.notifier.messages[-1]
    assert subject.startswith("Rollback FAILED"), (subject, body)
    assert "can take the traffic" not in body and AGAIN_ONCE_THE_RULE in body, body


def test_a_rollouts_shift_records_the_rule_it_wrote_and_its_groups():
    """What the rollbacks above move the traffic over: nothing recorded which rule the rollout shifted."""
    from rollway.approvals import ApprovalAnswer, scripted
    from tests.flows.test_progressive_fakes import env_with_ledger, full_spec, progressive_on

    env = env_with_ledger()
    env.router.rule = ShiftedRule(rule_arn="arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/"
                                           "webordinary-edit-alb/1/2/3", stable_arn=env.router.groups["stable"].arn,
                                  canary_arn=env.router.groups["canary"].arn)
    progressive_on(env, full_spec(), scripted(ApprovalAnswer(action="reject", approver="bob", comment="no")))
    record = env.ledger.get(env.targets.canary_service)
    assert [t.to_weights.canary for t in record.history if t.kind == "shift"] == [5]
    assert record.shifted_rule == env.router.rule


def test_a_rollback_writes_nothing_over_the_recorded_rule_when_its_groups_are_not_the_ones_the_targets_name(
        aws, monkeypatch, watch_calls):
    """The rollout recorded its rule forwarding to two groups the targets do not name now (the targets
    changed since, say): the move wrote the targets' groups over that rule, dropping the rule's own and
    sending its users to a group it did not forward to. Refused before any write, named."""
    env, elbv2, record = fresh(aws, monkeypatch, recorded=True, entry="abort")
    t = aws.topology
    vpc = elbv2.describe_target_groups(TargetGroupArns=[t.stable_target_group_arn])["TargetGroups"][0]["VpcId"]
    own = [elbv2.create_target_group(Name=f"webordinary-old-{version}", Protocol="HTTP", Port=8080, VpcId=vpc,
                                     TargetType="ip")["TargetGroups"][0]["TargetGroupArn"] for version in ("a", "b")]
    elbv2.modify_rule(RuleArn=t.rule_arn, Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": own[0], "Weight": 75}, {"TargetGroupArn": own[1], "Weight": 25}]}}])
    record = env.ledger.record(aws.targets.canary_service, owner="run-1", now=env.clock.now(),
                               transition=Transition(at=env.clock.now(), kind="shift", actor="run-1"),
                               shifted_rule=ShiftedRule(rule_arn=t.rule_arn, stable_arn=own[0], canary_arn=own[1]))
    before = elbv2.describe_rules(RuleArns=[t.rule_arn])["Rules"][0]["Actions"]
    calls = watch_calls(elbv2)
    with pytest.raises(TargetNotFound) as refused:
        roll_back("abort", env, record)
    assert calls.count("ModifyRule") == 0, calls
    assert elbv2.describe_rules(RuleArns=[t.rule_arn])["Rules"][0]["Actions"] == before, "the rule's users moved"
    said = str(refused.value)
    assert f"the rollout recorded rule {t.rule_arn} forwarding to target groups {own[0]} (stable) and {own[1]} " \
           "(canary)" in said and "\n" not in said, said
    assert f"give rule {t.rule_arn} weight 100 to its stable group and 0 to its canary group" in said, said


def test_a_deploy_whose_rule_cannot_be_looked_up_changes_nothing():
    """The deploy records the rollout's rule with the canary's revision: a lookup that failed there (a
    resumed run, which made none before) failed the run after the canary service was pointed at the new
    revision, unrecorded. Looked up first, before any write."""
    from flows.progressive import deploy_canary
    from rollway.ledger import new_rollout_id
    from tests.flows.fake_env import STABLE_TD
    from tests.flows.test_progressive_fakes import env_with_ledger

    env = env_with_ledger()

    def lookup_fails():
        raise TargetNotFound("listener rule", "on path '/*'", "no rule forwards to them")

    env.router.shifted_rule = lookup_fails
    service = env.targets.canary_service
    spec = RolloutSpec(image=IMAGE)
    record = env.ledger.create(RolloutRecord(
        service=service, rollout_id=new_rollout_id(env.clock.now()), image=IMAGE, spec_json=spec.model_dump_json(),
        previous_task_definition=STABLE_TD, pinned_image=IMAGE), owner="run-1", now=env.clock.now(), lease_seconds=600)
    before = env.deployer.services[service]
    with pytest.raises(TargetNotFound):
        deploy_canary(env, spec, record, owner="run-1", actor="alice", lease_seconds=600, image=IMAGE)
    assert env.deployer.services[service] == before, "the canary service was changed"
    assert env.ledger.get(service).canary_task_definition is None


def test_a_rollback_whose_rule_is_gone_with_several_on_its_path_pages_no_rule_to_put_back(aws, monkeypatch):
    """The rule the rollout recorded was deleted and two hosts' rules on its path forward to both groups:
    the refusal says to tell them apart. The page's read of the load balancer, failing on the rule gone,
    added its own paragraph to it: "rollway writes none over a rule it did not find" and "put back a rule
    on path '/*' forwarding to" the groups, which would make three."""
    env, elbv2, record = fresh(aws, monkeypatch, recorded=True, entry="abort")
    rule = elbv2.describe_rules(RuleArns=[aws.topology.rule_arn])["Rules"][0]
    elbv2.delete_rule(RuleArn=aws.topology.rule_arn)
    for n, host in enumerate(("a.example.com", "b.example.com"), start=1):
        elbv2.create_rule(ListenerArn=aws.topology.listener_arn, Priority=int(rule["Priority"]) + n, Conditions=[
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}},
            {"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}], Actions=rule["Actions"])
    with pytest.raises(TargetNotFound, match="name its host \\(rule_host\\)"):
        roll_back("abort", env, record)
    subject, body = env.notifier.messages[-1]
    assert subject.startswith("Rollback FAILED"), (subject, body)
    assert "put back a rule" not in body and "did not find" not in body, body
    assert body.count("name its host (rule_host)") == 1 and AGAIN_ONCE_THE_RULE in body, body
