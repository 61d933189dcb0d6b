"""A rollback's move to stable (flows/rollback.execute_rollback, through set_and_verify with
``tries``) on the embedded AWS load balancer: a lost answer is read back, and a write that did not
land is sent again unless the load balancer refused it for good.

It used to be one bare ModifyRule: a throttle or a dropped connection failed the rollback with
the users still on the canary being rolled back.
"""
from __future__ import annotations

import pickle
import time
from functools import partial

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from prefect import flow

import flows.engine
import tasks.traffic
from flows.rollback import ROLLBACK_WRITE_TRIES, execute_rollback
from rollway.aws.denied import PermissionDenied
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import TargetNotFound
from rollway.deadline import ReadBackUnanswered
from rollway.model import ServiceState, Weights
from tests.botocore_events import on_operation
from tests.flows.fake_env import fake_environment
from tests.flows.test_healthy_wait import WallTime

CANARY_TD = "arn:aws:ecs:us-west-2:123456789012:task-definition/edit-container:8"
ON_CANARY, ALL_STABLE = Weights.canary_at(25), Weights(stable=100, canary=0)

hooked = partial(on_operation, operation="ModifyRule")
# The read-back's bound (verify_timeout_seconds) is not what is tested: at 0.3 s, a DescribeRules
# on moto slowed by a loaded machine ran past it and failed the rollback (ReadBackUnanswered).
VERIFY_SECONDS = 30.0


# What a page of a rollback refused over its listener rule tells people to do, true of each refusal:
# the rule gone, another service's on the path, one recorded with other groups, one answering by itself.
AGAIN_ONCE_THE_RULE = ("once what the error above says of the listener rule is put right: until then it fails the "
                       "same way, moving no traffic")


@flow
def rollback_on(env):
    return execute_rollback(env, "error rate 7%", actor="judge", verify_timeout_seconds=VERIFY_SECONDS)


@pytest.fixture(autouse=True)
def no_waits_between_sends(monkeypatch):
    """The wait between sends is not what is tested: what is sent again is."""
    monkeypatch.setattr(flows.engine, "WRITE_RETRY_FIRST_DELAY_SECONDS", 0.0)


@pytest.fixture
def brief_lost_read_back(monkeypatch):
    """A lost answer read back for 0.3 s before the move is sent again: a write that did not land is
    not read back for seconds, and a read-back refused for now is not read again (that takes a
    second of the bound, ``tasks.traffic.LOOK_AGAIN_SECONDS``) but fails the send, sent again."""
    monkeypatch.setattr(flows.engine, "LOST_ANSWER_READ_BACK_SECONDS", 0.3)


def on_moto(aws):
    """The fakes' environment with the load balancer on moto at 25 % canary, a target registered in
    each group (moto reports every registered target healthy)."""
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    groups = router._lookups()
    for arn, ip in ((groups.stable_arn, "10.0.1.9"), (groups.canary_arn, "10.0.1.10")):
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": ip, "Port": 8080}])
    router.set_weights(ON_CANARY)
    env = fake_environment()
    env.targets, env.router = aws.targets, router
    env.deployer.task_definitions[CANARY_TD] = "webordinary/edit-container:2.0.0"
    env.deployer.services[aws.targets.canary_service] = ServiceState(
        name=aws.targets.canary_service, task_definition=CANARY_TD, desired=1, running=1)
    return env, elbv2


def answering(aws, code: str, times: int):
    """A before-call hook: the load balancer answers ``code`` to the first ``times`` ModifyRules."""
    seen = {"calls": 0}

    def answer(**_):
        seen["calls"] += 1
        if seen["calls"] <= times:
            body = {"Error": {"Code": code, "Message": f"{code} from the load balancer"},
                    "ResponseMetadata": {"HTTPStatusCode": 400}}
            return AWSResponse(aws.endpoint_url, 400, {}, None), body
        return None

    return answer


@pytest.mark.parametrize("code", ["Throttling", "InternalFailure"])
def test_a_move_to_stable_refused_for_now_is_sent_again(aws, watch_calls, code):
    env, elbv2 = on_moto(aws)
    calls = watch_calls(elbv2)
    with hooked(elbv2, "before-call", answering(aws, code, times=ROLLBACK_WRITE_TRIES - 1)):
        result = rollback_on(env)
    assert result.weights == ALL_STABLE
    assert env.router.get_weights() == ALL_STABLE, "the users were left on the canary being rolled back"
    assert calls.count("ModifyRule") == ROLLBACK_WRITE_TRIES, calls
    assert env.notifier.messages, "the rollback told nobody"


def test_a_move_to_stable_refused_for_good_is_sent_once(aws, watch_calls):
    env, elbv2 = on_moto(aws)
    calls = watch_calls(elbv2)
    with hooked(elbv2, "before-call", answering(aws, "AccessDenied", times=ROLLBACK_WRITE_TRIES)), \
            pytest.raises(PermissionDenied, match="AccessDenied"):  # named as the statement granting it
        rollback_on(env)
    assert calls.count("ModifyRule") == 1, calls
    assert env.router.get_weights() == ON_CANARY
    # Not "once webordinary-edit-service can take the traffic": it could; the role may not move it.
    (_, page), = env.notifier.messages
    assert "can take the traffic" not in page, page
    assert ("once the permission the error above names is granted: until then AWS refuses it the same way"
            in page), page


def test_a_move_to_stable_whose_answer_was_lost_is_read_back_not_sent_again(aws, watch_calls, monkeypatch):
    env, elbv2 = on_moto(aws)
    # The read-back after the lost answer is given the whole bound: at 5 s a loaded machine may
    # run past it, and the move, not known to have landed, is sent again.
    monkeypatch.setattr(flows.engine, "LOST_ANSWER_READ_BACK_SECONDS", VERIFY_SECONDS)

    def lose_answer(**_):  # ModifyRule went through on moto; its answer never arrives
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    calls = watch_calls(elbv2)
    with hooked(elbv2, "after-call", lose_answer):
        result = rollback_on(env)
    assert result.weights == ALL_STABLE
    assert calls.count("ModifyRule") == 1, calls


def rollback_losing_the_first_answer(aws, env, elbv2):
    """``rollback_on(env)`` whose first ModifyRule lands on moto with its answer lost, and whose
    read-back after it is throttled once: the move is sent again (``brief_lost_read_back``)."""
    lost, lose_the_first_answer = losing_the_first_answer(aws)
    with hooked(elbv2, "after-call", lose_the_first_answer), \
            on_operation(elbv2, "before-call", read_back_throttled_once(aws, lost), operation="DescribeRules"):
        return rollback_on(env)


def read_back_throttled_once(aws, lost):
    """A before-call hook of DescribeRules: the first read once ``lost["answer"]``
    (``losing_the_first_answer``), the lost answer's read-back, is throttled (not read again within
    ``brief_lost_read_back``'s 0.3 s)."""
    throttled = answering(aws, "Throttling", times=1)

    def throttle(**kwargs):
        return throttled(**kwargs) if lost["answer"] else None

    return throttle


def test_a_move_sent_again_after_a_lost_answer_that_landed_records_the_weights_users_had_before_it(
        aws, watch_calls, brief_lost_read_back):
    """The first ModifyRule lands but its answer is lost, and the read-back is throttled: the move is
    sent again, and that send's read of the rule finds the rollback's own 100/0. What the rollback
    moved the traffic from is what the first send's read found."""
    env, elbv2 = on_moto(aws)
    calls = watch_calls(elbv2)
    result = rollback_losing_the_first_answer(aws, env, elbv2)
    assert calls.count("ModifyRule") == 2, calls  # the lost one, not known to have landed, and again
    assert (result.weights_before, result.weights) == (ON_CANARY, ALL_STABLE), result


def test_a_rollback_moves_users_to_stable_though_the_rule_forwards_to_a_third_group(aws):
    """A shadow group added to the rule since the run looked it up: what the traffic is moved from
    cannot be read as a split of stable and canary (``get_weights`` refuses the rule), but moving
    users off the version rolled back comes first. All of it goes to stable, none is recorded, and
    the page says which group the move dropped from the rule, with its weight."""
    env, elbv2 = on_moto(aws)
    groups = env.router._lookups()
    vpc = elbv2.describe_target_groups(TargetGroupArns=[groups.stable_arn])["TargetGroups"][0]["VpcId"]
    shadow = elbv2.create_target_group(Name="webordinary-edit-shadow", Protocol="HTTP", Port=8080, VpcId=vpc,
                                       TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_rule(RuleArn=groups.rule_arn, Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": groups.stable_arn, "Weight": 70}, {"TargetGroupArn": groups.canary_arn, "Weight": 20},
        {"TargetGroupArn": shadow, "Weight": 10}]}}])

    result = rollback_on(env)

    assert (result.weights_before, result.weights) == (None, ALL_STABLE), result
    rule = elbv2.describe_rules(RuleArns=[groups.rule_arn])["Rules"][0]
    assert {g["TargetGroupArn"]: g["Weight"] for g in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]} == {
        groups.stable_arn: 100, groups.canary_arn: 0}
    dropped = f"target group {shadow} (weight 10 of 100) from rule {groups.rule_arn}"
    assert result.dropped == dropped and f"dropped {dropped}" in result.steps, result
    (_, page), = env.notifier.messages
    assert f"The move to stable dropped {dropped}" in page, page


def test_a_move_to_stable_lost_before_it_reached_aws_is_sent_again(aws, watch_calls, brief_lost_read_back):
    env, elbv2 = on_moto(aws)
    seen = {"calls": 0}

    def lost_before_sending(**_):
        seen["calls"] += 1
        if seen["calls"] == 1:
            raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    calls = watch_calls(elbv2)
    with hooked(elbv2, "before-call", lost_before_sending):
        result = rollback_on(env)
    assert result.weights == ALL_STABLE
    assert calls.count("ModifyRule") == 2, calls  # the lost one (read back: not landed), and again


@flow
def rollback_with_the_default_read_back(env):
    return execute_rollback(env, "error rate 7%", actor="judge")


def test_a_lost_move_to_stable_is_sent_again_after_a_short_read_back_not_the_whole_wait(aws, monkeypatch):
    """The default read-back wait is 30 s; a lost answer whose write did not land is read back for
    at most LOST_ANSWER_READ_BACK_SECONDS before the rollback sends it again."""
    env, elbv2 = on_moto(aws)
    wall = WallTime()
    monkeypatch.setattr(tasks.traffic, "time", wall)
    seen = {"calls": 0}

    def lost_before_sending(**_):
        seen["calls"] += 1
        if seen["calls"] == 1:
            raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with hooked(elbv2, "before-call", lost_before_sending):
        result = rollback_with_the_default_read_back(env)
    assert result.weights == ALL_STABLE and seen["calls"] == 2
    assert wall.t <= flows.engine.LOST_ANSWER_READ_BACK_SECONDS + 2.0, f"read back for {wall.t:g} s before sending again"


def test_a_move_resent_after_its_failure_was_stored_and_reloaded_records_the_weights_users_had_before_it(
        aws, monkeypatch, watch_calls, brief_lost_read_back):
    """As the test above, with each failed send's error stored and reloaded (pickled) on its way to
    the rollback, as Prefect may store a task's failure: botocore's errors pickle without anything
    set on them, so the first send's read of the rule must not travel on the error."""
    env, elbv2 = on_moto(aws)
    sent = tasks.traffic.set_weights
    reloaded: list[BaseException] = []

    def stored_and_reloaded(router, weights):
        try:
            return sent(router, weights)
        except Exception as err:
            reloaded.append(pickle.loads(pickle.dumps(err)))
            raise reloaded[-1] from None

    monkeypatch.setattr(tasks.traffic, "set_weights", stored_and_reloaded)
    calls = watch_calls(elbv2)
    result = rollback_losing_the_first_answer(aws, env, elbv2)
    assert [type(err) for err in reloaded] == [ReadTimeoutError], reloaded
    assert calls.count("ModifyRule") == 2, calls
    assert (result.weights_before, result.weights) == (ON_CANARY, ALL_STABLE), result


def test_a_rule_deleted_between_the_moves_read_and_write_is_paged_as_gone_not_as_stable_not_ready(aws, watch_calls):
    """The rule went after the move's DescribeRules and before its ModifyRule: AWS's bare RuleNotFound
    was paged with "run the rollback again once webordinary-edit-service can take the traffic", which it
    could all along; the page says the rule is gone and what to put back, as when DescribeRules finds it
    gone, and the move is not sent again over a rule that is not there."""
    env, elbv2 = on_moto(aws)

    def deleted_meanwhile(**_):
        elbv2.delete_rule(RuleArn=aws.topology.rule_arn)

    calls = watch_calls(elbv2)
    with hooked(elbv2, "before-call", deleted_meanwhile), pytest.raises(TargetNotFound, match="was deleted"):
        rollback_on(env)
    assert calls.count("ModifyRule") == 1, calls
    (_, page), = env.notifier.messages
    assert "can take the traffic" not in page, page
    assert page.count("put back a rule on path '/*' forwarding to webordinary-edit-stable and webordinary-edit-canary"
                      ) == 1, page  # said once, not again for the read of the weights that failed alike
    assert AGAIN_ONCE_THE_RULE in page, page


def replaced_by_a_stack_update(aws, elbv2) -> str:
    """The rule deleted and another put on its path forwarding to the two groups at 25 % canary, as a
    CloudFormation update replacing it does (a new ARN); returns the new rule's ARN."""
    rule = elbv2.describe_rules(RuleArns=[aws.topology.rule_arn])["Rules"][0]
    elbv2.delete_rule(RuleArn=aws.topology.rule_arn)
    return elbv2.create_rule(ListenerArn=aws.topology.listener_arn, Priority=int(rule["Priority"]) + 1,
                             Conditions=rule["Conditions"], Actions=rule["Actions"])["Rules"][0]["RuleArn"]


@pytest.mark.parametrize("when", ["before the move", "between the move's read and its write"])
def test_a_rule_replaced_by_a_stack_update_is_found_again_and_the_users_moved_to_stable(aws, watch_calls, when):
    """A stack update replaced the rule (same path and groups, a new ARN) after the run looked it up:
    the run's own rollback failed with "put back a rule", paged, and left the users on the canary being
    rolled back, where the run's hook, `rollway abort`, looking the rule up afresh, moved them. The move
    looks the rule up as they do and moves the users at once."""
    env, elbv2 = on_moto(aws)
    if when == "before the move":
        replaced = replaced_by_a_stack_update(aws, elbv2)
        result = rollback_on(env)
    else:
        made = {}

        def replaced_meanwhile(**_):
            if not made:
                made["arn"] = replaced_by_a_stack_update(aws, elbv2)

        with hooked(elbv2, "before-call", replaced_meanwhile):
            result = rollback_on(env)
        replaced = made["arn"]
    assert result.weights == ALL_STABLE, result
    fresh = AlbRouter(elbv2, aws.targets)
    assert fresh.rule_arn == replaced
    assert fresh.get_weights() == ALL_STABLE, "the users were left on the canary being rolled back"
    assert result.weights_before == ON_CANARY, result


def left_on_the_path(aws, elbv2, whose: str) -> str:
    """The rollout's rule deleted, and another rule left on its path: another host's, forwarding to the
    stable group alone (sticky), or another service's, forwarding to its own group and the stable group;
    returns its ARN."""
    rule = elbv2.describe_rules(RuleArns=[aws.topology.rule_arn])["Rules"][0]
    elbv2.delete_rule(RuleArn=aws.topology.rule_arn)
    stable = aws.topology.stable_target_group_arn
    conditions = [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}]
    if whose == "another host's":
        conditions.append({"Field": "host-header", "HostHeaderConfig": {"Values": ["admin.example.com"]}})
        groups = [{"TargetGroupArn": stable, "Weight": 100}]
    else:
        vpc = elbv2.describe_target_groups(TargetGroupArns=[stable])["TargetGroups"][0]["VpcId"]
        own = elbv2.create_target_group(Name="webordinary-billing", Protocol="HTTP", Port=8080, VpcId=vpc,
                                        TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        groups = [{"TargetGroupArn": own, "Weight": 90}, {"TargetGroupArn": stable, "Weight": 10}]
    actions = [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups, "TargetGroupStickinessConfig": {
        "Enabled": True, "DurationSeconds": 300}}}]
    return elbv2.create_rule(ListenerArn=aws.topology.listener_arn, Priority=int(rule["Priority"]) + 7,
                             Conditions=conditions, Actions=actions)["Rules"][0]["RuleArn"]


@pytest.mark.parametrize("whose", ["another host's", "another service's"])
def test_a_rollback_whose_rule_was_deleted_writes_nothing_over_another_rule_left_on_its_path(aws, watch_calls, whose):
    """Looked up again by path and host alone, another host's or another service's rule left on the path
    was taken for the rollout's deleted one: the move wrote the canary into it (dropping the other service's
    group, the other host's stickiness) and said the users moved to stable. It is refused, named with
    what it forwards to, and left as it is."""
    env, elbv2 = on_moto(aws)
    other = left_on_the_path(aws, elbv2, whose)
    before = elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"]
    calls = watch_calls(elbv2)
    with pytest.raises(TargetNotFound) as refused:
        rollback_on(env)
    assert calls.count("ModifyRule") == 0, calls
    assert elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"] == before
    said = str(refused.value)
    assert f"rule {aws.topology.rule_arn} was deleted since this run looked it up" in said, said
    assert f"({other}), which forwards to " in said and "it is not the rollout's rule" in said, said
    assert "put back a rule on path '/*' forwarding to webordinary-edit-stable and webordinary-edit-canary" in said
    # There is a rule on the path, not the rollout's: "there is none to move the traffic with" was untrue.
    (_, page), = env.notifier.messages
    assert "there is none" not in page and AGAIN_ONCE_THE_RULE in page, page


def test_a_fresh_rollbacks_lookup_leaves_a_rule_forwarding_to_stable_alone_as_it_is(aws, watch_calls):
    """A rule on the path forwarding to the stable group alone sends it all its requests already (the
    rollout's before its first shift, or another host's): it was written over, the canary group put in
    it and its stickiness turned off."""
    env, elbv2 = on_moto(aws)
    other = left_on_the_path(aws, elbv2, "another host's")
    before = elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"]
    env.router = AlbRouter(elbv2, aws.targets)
    calls = watch_calls(elbv2)
    result = rollback_on(env)
    assert calls.count("ModifyRule") == 0, calls
    assert elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"] == before
    assert result.weights == ALL_STABLE, result


@flow
def recorded_rollback_on(env):
    from flows.rollback import rollback_recorded
    return rollback_recorded(env, "error rate 7%", actor="carol", verify_timeout_seconds=VERIFY_SECONDS)


def ledgered(aws, env) -> None:
    """``env`` given a ledger recording its rollout at 25 % canary, for ``recorded_rollback_on``."""
    from rollway.fakes import FakeLedger
    from rollway.ledger import RolloutRecord, new_rollout_id
    from rollway.phases import RolloutPhase
    from rollway.spec import RolloutSpec

    env.ledger = FakeLedger()
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0")
    start = env.clock.now()
    env.ledger.create(RolloutRecord(service=aws.targets.canary_service, rollout_id=new_rollout_id(start - 100),
                                    image=spec.image, spec_json=spec.model_dump_json(),
                                    phase=RolloutPhase.PROGRESSING, stage_index=0, weights=ON_CANARY),
                      owner="run-1", now=start - 100, lease_seconds=600)


def test_a_move_over_a_rule_a_stack_update_replaced_is_said_once_in_the_log_and_the_ledger(aws, caplog):
    """The move went over the rule found again, under a new ARN, and neither the run's log nor the
    ledger's entry said so: the rule rollway writes was no longer the one the rollout was run with."""
    env, elbv2 = on_moto(aws)
    ledgered(aws, env)
    old = aws.topology.rule_arn
    new = replaced_by_a_stack_update(aws, elbv2)
    with caplog.at_level("INFO"):
        result = recorded_rollback_on(env)
    assert result.weights == ALL_STABLE, result
    said = (f"the move to stable went over rule {new}, found again on path '/*': rule {old} was deleted since this run "
            "looked it up (by hand, or replaced by a stack update)")
    assert result.rule_replaced is not None and said in result.rule_replaced, result
    assert caplog.text.count(said) == 1, caplog.text
    end = env.ledger.get(aws.targets.canary_service).history[-1]
    assert end.kind == "rollback" and end.comment.count(said) == 1, end


# Longer than a lost answer's brief read-back and its margin (``brief_lost_read_back``): a read-back
# given up on, the send not known to have landed.
UNANSWERED_SECONDS = 2.5


def test_a_lost_move_read_back_as_not_landed_by_a_later_try_is_not_the_one_failed_on(
        aws, watch_calls, brief_lost_read_back, caplog):
    """The first ModifyRule is lost before it reaches AWS and its read-back goes unanswered (it may
    have landed); the second is lost as well, and its read-back answers with the canary's 25 %; the last is
    throttled. The first try was raised and paged as a move that "may NOT be back" on stable, though
    the load balancer's last answer showed it had not landed: what it showed last is the truth, and
    the page says the traffic could not be moved, with the split it holds."""
    env, elbv2 = on_moto(aws)
    sent = {"calls": 0}
    reads = {"throttle": False}
    throttled = answering(aws, "Throttling", times=ROLLBACK_WRITE_TRIES)

    def lost_then_throttled(**kwargs):
        sent["calls"] += 1
        if sent["calls"] == 1:
            reads["throttle"] = True  # the read-back of this send only
        if sent["calls"] < ROLLBACK_WRITE_TRIES:
            raise ReadTimeoutError(endpoint_url=aws.endpoint_url)
        return throttled(**kwargs)

    def first_read_back_unanswered(**_):
        if reads["throttle"]:
            reads["throttle"] = False
            time.sleep(UNANSWERED_SECONDS)

    calls = watch_calls(elbv2)
    with hooked(elbv2, "before-call", lost_then_throttled), \
            on_operation(elbv2, "before-call", first_read_back_unanswered, operation="DescribeRules"), \
            caplog.at_level("INFO"), pytest.raises(ClientError, match="Throttling"):
        rollback_on(env)
    assert calls.count("ModifyRule") == ROLLBACK_WRITE_TRIES, calls
    assert env.router.get_weights() == ON_CANARY
    (_, page), = env.notifier.messages
    flat = " ".join(page.split())
    stable = aws.targets.stable_service
    assert "may NOT be back" not in flat and "may have landed" not in caplog.text, page
    assert f"The traffic could NOT be moved back to {stable}: the load balancer holds 75/25" in flat, page
    said = " ".join(caplog.text.split())
    assert (f"try 2 of {ROLLBACK_WRITE_TRIES} read the weights back as 75/25, not 100/0: the earlier try whose answer "
            "was lost did not land") in said, caplog.text


def _refused_after_a_lost_answer(aws, watch_calls, code: str):
    """A rollback whose first ModifyRule lands with its answer lost and its read-back unanswered, and
    whose second is refused for good with ``code``: the page, flattened."""
    said, flat = _sent_again_after_a_lost_answer(aws, watch_calls, lambda aws, elbv2: answering(
        aws, code, times=ROLLBACK_WRITE_TRIES))
    assert code in said, said
    return flat


def losing_the_first_answer(aws):
    """An after-call hook of ModifyRule: the first goes through on moto and its answer never arrives;
    and what it keeps (``lost["answer"]``: True once lost)."""
    lost = {"answer": False}

    def lose(**_):
        if not lost["answer"]:
            lost["answer"] = True
            raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    return lost, lose


def _sent_again_after_a_lost_answer(aws, watch_calls, later):
    """A rollback whose first ModifyRule lands with its answer lost and its read-back unanswered, and
    whose second is refused for good by ``later(aws, elbv2)``, a before-call hook of each ModifyRule
    after the first: the error raised and the page, flattened."""
    env, elbv2 = on_moto(aws)
    lost, lose_the_first_answer = losing_the_first_answer(aws)
    read = {"slow": True}
    refused = later(aws, elbv2)

    def refused_after_the_first(**kwargs):
        return refused(**kwargs) if lost["answer"] else None

    def first_read_back_unanswered(**_):
        if lost["answer"] and read["slow"]:
            read["slow"] = False
            time.sleep(UNANSWERED_SECONDS)

    calls = watch_calls(elbv2)
    with hooked(elbv2, "after-call", lose_the_first_answer), hooked(elbv2, "before-call", refused_after_the_first), \
            on_operation(elbv2, "before-call", first_read_back_unanswered, operation="DescribeRules"), \
            pytest.raises(ReadBackUnanswered) as failed:
        rollback_on(env)
    assert calls.count("ModifyRule") == 2, calls  # the lost one, and the refused one: not sent a third time
    said = " ".join(str(failed.value).split())
    assert "sent again, the move was refused:" in said, said
    (_, page), = env.notifier.messages
    flat = " ".join(page.split())
    stable = aws.targets.stable_service
    assert f"The traffic may NOT be back on {stable}" in flat, page
    assert ("the move sent again was refused: the traffic may be on {0} already, or not. Run the rollback again"
            .format(stable)) in flat, page
    assert "once the load balancer answers" not in flat, page
    return said, flat


def test_a_move_refused_for_good_after_a_lost_answer_not_read_back_is_paged_with_the_permission_to_grant(
        aws, watch_calls, brief_lost_read_back):
    """The first ModifyRule lands with its answer lost and its read-back unanswered; the second is
    refused (AccessDenied). The page said only to run the rollback again "once the load balancer
    answers", the permission refused in a log line: running it again is refused the same way until
    the statement is granted. The page says the move may have landed and names the permission."""
    flat = _refused_after_a_lost_answer(aws, watch_calls, "AccessDenied")
    assert "sent again, the move was refused:" in flat and "elasticloadbalancing:ModifyRule" in flat, flat
    assert "once the permission the error above names is granted: until then AWS refuses it the same way." in flat, flat


def test_a_move_refused_for_good_after_a_lost_answer_not_read_back_is_paged_with_the_refusal_to_put_right(
        aws, watch_calls, brief_lost_read_back):
    """As above, the second ModifyRule refused with a ValidationError: the page told people to run the
    rollback again "once <stable> can take the traffic", though stable was never the trouble and the
    load balancer refuses the move the same way until what it names is put right."""
    flat = _refused_after_a_lost_answer(aws, watch_calls, "ValidationError")
    stable = aws.targets.stable_service
    assert f"once {stable} can take the traffic" not in flat, flat
    assert ("once what the refusal above says is put right: until then AWS refuses the move the same way."
            in flat), flat


def test_a_lost_move_read_back_briefly_names_the_bound_it_was_read_back_within(aws, watch_calls, brief_lost_read_back):
    """While sends are left, a lost answer is read back for LOST_ANSWER_READ_BACK_SECONDS, not the
    rollback's verify_timeout_seconds: the page said the weights "could not be read back within 0.3 s
    (verify_timeout_seconds)", sending people to raise a setting that does not set that wait."""
    flat = _refused_after_a_lost_answer(aws, watch_calls, "AccessDenied")
    assert "(verify_timeout_seconds)" not in flat, flat
    assert f"within 0.3 s ({flows.engine.LOST_ANSWER_BOUND}): Elastic Load Balancing did not answer" in flat, flat


def test_a_move_whose_rule_is_deleted_after_a_lost_answer_not_read_back_is_paged_as_one_that_may_have_landed(
        aws, watch_calls, brief_lost_read_back):
    """The first ModifyRule lands with its answer lost and its read-back unanswered; the rule is then
    deleted, and rollway refuses the move sent again (TargetNotFound, its own error, not AWS's). That
    refusal escaped the move, the earlier send forgotten: the page said the traffic "could NOT be
    moved back" and "Done before it failed: nothing" of a move that may have landed. It says the
    traffic may be on stable, the rule gone, and to put the rule right before running it again."""

    def deleted_before_it(aws, elbv2):
        def delete(**_):
            elbv2.delete_rule(RuleArn=aws.topology.rule_arn)
        return delete

    said, flat = _sent_again_after_a_lost_answer(aws, watch_calls, deleted_before_it)
    assert f"rule '{aws.topology.rule_arn}' not found: it was deleted since this run looked it up" in said, said
    assert "could NOT be moved back" not in flat and "Done before it failed: nothing" not in flat, flat
    assert f"all the traffic to {aws.targets.stable_service} (its answer lost; not read back)" in flat, flat
    assert AGAIN_ONCE_THE_RULE in flat and "AWS refuses the move" not in flat, flat


def test_a_move_whose_lost_answer_is_read_back_throttled_is_paged_as_one_that_may_have_landed(
        aws, watch_calls, brief_lost_read_back):
    """The first ModifyRule lands with its answer lost, and its read-back is throttled; the sends after
    it are throttled too. The throttled read failed the send as if AWS had said it did not act: the
    earlier send was not counted as one that may have landed, and the page said the traffic "could
    NOT be moved back" (on stable, here) over DescribeRules' throttle. A read-back refused for now
    leaves the send not known to have landed, as one not answered does, and the page says so."""
    env, elbv2 = on_moto(aws)
    said, flat = _read_back_failed_after_a_lost_answer(aws, env, elbv2, watch_calls, read_back_throttled_once,
                                                        rollback_on)
    assert ("the load balancer's weights could not be read back: Elastic Load Balancing refused the read for now "
            "(Throttling: Throttling from the load balancer)") in said, said
    stable = aws.targets.stable_service
    assert (f"The answer to the move to {stable} was lost and the load balancer refused the read-back of its weights "
            f"for now: the traffic may be on {stable} already, or not") in flat, flat


def read_back_dropped_once(aws, lost):
    """A before-call hook of DescribeRules: the first read once ``lost["answer"]``
    (``losing_the_first_answer``), the lost answer's read-back, loses its connection, as the
    network fault that lost the answer is likely to do to it too (not read again within
    ``brief_lost_read_back``'s 0.3 s)."""
    dropped = {"once": False}

    def drop(**_):
        if lost["answer"] and not dropped["once"]:
            dropped["once"] = True
            raise ConnectionClosedError(endpoint_url=aws.endpoint_url)

    return drop


def test_a_move_whose_lost_answer_is_read_back_on_a_dropped_connection_is_paged_as_one_that_may_have_landed(
        aws, watch_calls, brief_lost_read_back):
    """The first ModifyRule lands with its answer lost, and its read-back's connection drops; the sends
    after it are throttled. The read's own error failed the send, the lost answer forgotten: the page
    said the traffic "could NOT be moved back", and the ledger recorded nothing sent, of a move that
    landed. A read-back with no answer leaves the send not known to have landed, and says what it got."""
    env, elbv2 = on_moto(aws)
    ledgered(aws, env)
    said, flat = _read_back_failed_after_a_lost_answer(aws, env, elbv2, watch_calls, read_back_dropped_once,
                                                        recorded_rollback_on)
    assert ("the load balancer's weights could not be read back: Elastic Load Balancing did not answer "
            "the read (ConnectionClosedError: Connection was closed before we received a valid response") in said, said
    assert "refused" not in said and "verify_timeout_seconds" not in said, said  # no bound reached: it failed at once
    stable = aws.targets.stable_service
    assert (f"The answer to the move to {stable} was lost and the load balancer did not answer the read-back of its "
            f"weights: the traffic may be on {stable} already, or not") in flat, flat
    end = env.ledger.get(aws.targets.canary_service).history[-1]
    assert end.kind == "rollback-stopped", end
    assert f"sent the move of all the traffic to {stable} (its answer lost; not read back)" in end.comment, end


def _read_back_failed_after_a_lost_answer(aws, env, elbv2, watch_calls, read_back, rollback):
    """``rollback(env)`` whose first ModifyRule lands with its answer lost, its read-back failed by
    ``read_back(aws, lost)`` (a before-call hook of DescribeRules), and every send after it throttled:
    the error raised and the page, flattened, checked to say the move may have landed."""
    lost, lose_the_first_answer = losing_the_first_answer(aws)
    sends = answering(aws, "Throttling", times=ROLLBACK_WRITE_TRIES)

    def throttled_after_the_first(**kwargs):
        return sends(**kwargs) if lost["answer"] else None

    calls = watch_calls(elbv2)
    with hooked(elbv2, "after-call", lose_the_first_answer), hooked(elbv2, "before-call", throttled_after_the_first), \
            on_operation(elbv2, "before-call", read_back(aws, lost), operation="DescribeRules"), \
            pytest.raises(ReadBackUnanswered) as failed:
        rollback(env)
    assert calls.count("ModifyRule") == ROLLBACK_WRITE_TRIES, calls
    assert env.router.get_weights() == ALL_STABLE  # the first send landed
    said = " ".join(str(failed.value).split())
    (_, page), = env.notifier.messages
    flat = " ".join(page.split())
    stable = aws.targets.stable_service
    assert "could NOT be moved back" not in flat and f"The traffic may NOT be back on {stable}" in flat, page
    return said, flat


def checked_after_a_send(aws, how: str, taken: int):
    """Before-call hooks of ModifyRule and DescribeRules: the ModifyRules before the ``taken``-th
    throttled, that one taken by the load balancer, and every read of the rule after it failed ``how``
    ("throttled": refused for now; "dropped": its connection closed), the check read of the move AWS
    took to its last look, and the reads of the sends after it."""
    sends = {"calls": 0}
    throttled = answering(aws, "Throttling", times=taken - 1)
    refused = answering(aws, "Throttling", times=10 ** 6)

    def send(**kwargs):
        sends["calls"] += 1
        return throttled(**kwargs)

    def read(**kwargs):
        if sends["calls"] < taken:
            return None
        if how == "dropped":
            raise ConnectionClosedError(endpoint_url=aws.endpoint_url)
        return refused(**kwargs)

    return send, read


@pytest.mark.parametrize(("how", "taken"), [("throttled", ROLLBACK_WRITE_TRIES), ("dropped", ROLLBACK_WRITE_TRIES),
                                            ("throttled", 1)])
def test_a_move_taken_whose_check_read_fails_is_paged_as_one_that_may_have_landed(aws, watch_calls, how, taken):
    """A ModifyRule is taken by the load balancer (the last, or the first), and the reads of its weights
    after it are throttled (or lose their connection) to the last: the read's own error failed the move
    as if it had not landed, and the page said the traffic "could NOT be moved back" over a move the load
    balancer took. The page says the traffic may NOT be back, the move taken, its weights not read back."""
    env, elbv2 = on_moto(aws)
    send, read = checked_after_a_send(aws, how, taken)
    calls = watch_calls(elbv2)
    with hooked(elbv2, "before-call", send), on_operation(elbv2, "before-call", read, operation="DescribeRules"), \
            pytest.raises(ReadBackUnanswered) as failed:
        rollback_on(env)
    assert calls.count("ModifyRule") == taken, calls  # the sends after it fail at their read of the rule
    assert env.router.get_weights() == ALL_STABLE  # the move landed
    said = " ".join(str(failed.value).split())
    answer = ("refused the read for now (Throttling: Throttling from the load balancer)" if how == "throttled"
              else "did not answer the read (ConnectionClosedError")
    assert f"the load balancer's weights could not be read back: Elastic Load Balancing {answer}" in said, said
    (_, page), = env.notifier.messages
    flat = " ".join(page.split())
    stable = aws.targets.stable_service
    assert "could NOT be moved back" not in flat and f"The traffic may NOT be back on {stable}" in flat, page
    read_back = ("refused the read-back of its weights for now" if how == "throttled"
                 else "did not answer the read-back of its weights")
    assert (f"The load balancer took the move to {stable} but {read_back}: the traffic may be on {stable} "
            "already, or not") in flat, flat
    assert f"all the traffic to {stable} (the load balancer took it; not read back)" in flat, flat


@pytest.mark.parametrize("code", ["SignatureDoesNotMatch", "IncompleteSignature"])
def test_a_move_taken_whose_check_read_is_refused_for_good_is_not_sent_again_as_failed(aws, watch_calls, caplog,
                                                                                        code):
    """The load balancer takes the first ModifyRule, and refuses every read of its weights after it with
    an answer the keys get again (a signature it cannot check: a secret key not the access key's, a clock
    minutes off). The run logged that setting the weights "failed" and sent the move again, to the last
    send, whose read was refused the same way: the move was taken, and no read after it can say so until
    the refusal is put right. It stops at the first, saying the move was taken and its read-back refused."""
    env, elbv2 = on_moto(aws)
    sends = {"calls": 0}
    refused = answering(aws, code, times=10 ** 6)

    def send(**_):
        sends["calls"] += 1

    def read(**kwargs):
        return refused(**kwargs) if sends["calls"] else None

    calls = watch_calls(elbv2)
    with hooked(elbv2, "before-call", send), on_operation(elbv2, "before-call", read, operation="DescribeRules"), \
            pytest.raises(flows.engine.TakenNotReadBack) as failed:
        rollback_on(env)
    assert calls.count("ModifyRule") == 1, calls  # taken: not sent again
    assert env.router.get_weights() == ALL_STABLE  # the move landed
    assert code in str(failed.value.refused), failed.value
    resent = [r.getMessage() for r in caplog.records if "sending it again" in r.getMessage()]
    assert not resent, resent
    (_, page), = env.notifier.messages
    flat = " ".join(page.split())
    stable = aws.targets.stable_service
    assert "could NOT be moved back" not in flat and f"The traffic may NOT be back on {stable}" in flat, page
    assert (f"The load balancer took the move to {stable}, but its read-back was refused: the traffic may be on "
            f"{stable} already, or not.") in flat, flat
    assert "until then AWS refuses the move's read-back the same way" in flat, flat
