"""The canary and rollback flows on the embedded AWS, with simulated traffic."""

from __future__ import annotations

import json
import logging

import pytest
from prefect import flow

from flows.canary import RolloutRefused, run_canary
from flows.rollback import RollbackIncomplete, execute_rollback, validate_task_definition
from rollway.approvals import scripted
from rollway.aws.ecs import EcsDeployer
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import AdapterError, TargetNotFound
from rollway.aws.environment import aws_environment
from rollway.fakes import FakeClock
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from rollway.targets import Targets
from tests.flows.moto_env import inbox, received_subjects, simulated
from tests.flows.test_rollback_move_resent import AGAIN_ONCE_THE_RULE


def spec(image: str) -> RolloutSpec:
    # At 1000 req/s the 5% stage serves 50 req/s: enough for the default (sequential) judge
    # to pass a healthy canary within the bake, and to pass early once it has the evidence.
    # Three minutes of post-promotion monitoring: its looks past the first published period are
    # judged as an hour's are (the default hour, or ten minutes, add nothing but checks here and
    # ~3.5 s of wall time at SPEED).
    return RolloutSpec(
        image=image, stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 50, 100)],
        monitor_seconds=180,
    )


@flow
def canary_run(env, rollout):
    return run_canary(env, rollout, scripted())


@flow
def rollback_run(env, reason):
    return execute_rollback(env, reason)


def read_back(aws):
    weights = AlbRouter(aws.get_client("elbv2"), aws.targets).get_weights()
    deployer = EcsDeployer(aws.get_client("ecs"), aws.targets)
    return weights, deployer.describe(aws.targets.stable_service), deployer.describe(aws.targets.canary_service)


def test_healthy_canary_is_promoted_on_aws(aws):
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        result = canary_run(env, spec(image))
    assert result.outcome == "promoted", result.reason
    weights, stable, canary = read_back(aws)
    assert weights == Weights(stable=0, canary=100)
    described = aws.get_client("ecs").describe_task_definition(taskDefinition=canary.task_definition)
    # The revision names the digest the tag named when the run started, never the tag.
    registered = described["taskDefinition"]["containerDefinitions"][0]["image"]
    assert registered == result.pinned_image == env.images.pin(image)
    assert result.pinned_image.startswith(f"{aws.topology.repository_uri}@sha256:")
    assert canary.desired == stable.desired
    assert all(s.canary.requests > 0 for s in result.stages)
    # The stable group served the stages it had weight in; at 100 % the load balancer published no
    # RequestCount for it, and its row says no data, not a count of 0.
    assert [s.baseline.requests > 0 for s in result.stages[:-1]] == [True, True]
    assert result.stages[-1].baseline is None and result.stages[-1].no_data == ("baseline",)


def test_bad_canary_is_rolled_back_on_aws(aws, caplog):
    url = inbox(aws)
    with simulated(aws, canary_error_rate=0.05) as (env, image), caplog.at_level(logging.WARNING):
        result = canary_run(env, spec(image))
    assert result.outcome == "rolled_back"
    assert result.stages[-1].weights == Weights(stable=95, canary=5)
    weights, stable, canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0)
    assert canary.desired == 0 and canary.task_definition == stable.task_definition
    assert any(s.startswith("Rollback") for s in received_subjects(aws, url))
    # The flow keeps no ledger: its rollback's notice is not recorded there, and the run does not
    # warn that "a rollback run again ... would send it again" as if a record had been lost.
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [m for m in warned if "could not record" in m], warned


def test_rollback_twice_ends_in_the_same_state(aws):
    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    env.router.set_weights(Weights.canary_at(25))
    aws.get_client("ecs").update_service(cluster=aws.targets.cluster, service=aws.targets.canary_service, desiredCount=2)
    first = rollback_run(env, "first")
    state_after_first = read_back(aws)
    second = rollback_run(env, "second")
    assert read_back(aws) == state_after_first
    assert state_after_first[0] == Weights(stable=100, canary=0) and state_after_first[2].desired == 0
    assert (first.weights, first.canary_desired) == (second.weights, second.canary_desired)


@flow
def canary_runs_rollback(env, reason):
    # As the canary flow's judge rolls back: under its run's id, which no ledger record holds.
    return execute_rollback(env, reason, actor="judge", rollout="canary-r-20261204")


def test_a_canary_runs_rollback_whose_page_fails_records_nothing_in_a_ledger_it_does_not_keep(aws, caplog):
    """The alert topic is gone: the rollback stops after moving the traffic. It tried to record
    which steps it did under the run's id, and warned that it could not, in a rollout of no ledger."""
    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    env.router.set_weights(Weights.canary_at(25))
    aws.get_client("sns").delete_topic(TopicArn=aws.topology.topic_arn)
    with caplog.at_level(logging.WARNING), pytest.raises(RollbackIncomplete):
        canary_runs_rollback(env, "errors")
    assert read_back(aws)[0] == Weights(stable=100, canary=0)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [m for m in warned if "could not record" in m], warned


def test_rollback_restores_stable_capacity_before_moving_traffic(aws, watch_calls):
    ecs = aws.get_client("ecs")
    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    env.router.set_weights(Weights(stable=0, canary=100))
    ecs.update_service(cluster=aws.targets.cluster, service=aws.targets.canary_service, desiredCount=2)
    ecs.update_service(cluster=aws.targets.cluster, service=aws.targets.stable_service, desiredCount=0)
    ecs_calls, elb_calls = watch_calls(ecs), watch_calls(aws.get_client("elbv2"))
    result = rollback_run(env, "decommissioned too early")
    assert result.scaled_stable and result.stable_desired == 2
    assert "UpdateService" in ecs_calls and "ModifyRule" in elb_calls
    weights, stable, canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0) and stable.desired == 2 and canary.desired == 0


def test_a_rollback_whose_task_definition_cannot_be_restored_still_does_every_other_step(aws):
    """A typo in previous_task_definition used to fail the run at UpdateService with the traffic
    back but the canary still running, its flags on and nobody told."""
    from rollway.aws.flags import DynamoFlagStore
    from rollway.flags import FlagState
    from rollway.spec import FlagBinding

    ecs = aws.get_client("ecs")
    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    env.router.set_weights(Weights(stable=90, canary=10))
    ecs.update_service(cluster=aws.targets.cluster, service=aws.targets.canary_service, desiredCount=2)
    flags = DynamoFlagStore(aws.get_client("dynamodb"), aws.targets)
    flags.put(FlagState(feature="new_checkout", enabled=True, percentage=10), expected_version=0, actor="t", now=1.0)
    url = inbox(aws)

    @flow
    def rollback_with(previous):
        return execute_rollback(env, "error rate 7%", previous_task_definition=previous,
                                bindings=[FlagBinding(feature="new_checkout")])

    with pytest.raises(RollbackIncomplete, match="could not: restore .*webordinary-edit-tsak:1") as failed:
        rollback_with("webordinary-edit-tsak:1")
    weights, stable, canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0)
    assert canary.desired == 0, "scaled to 0 on the task definition it had"
    assert flags.get("new_checkout").enabled is False
    messages = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b["Subject"] for b in bodies] == [f"Rollback: {aws.targets.canary_service}"]
    assert "webordinary-edit-tsak:1" in bodies[0]["Message"] and "FAILED" in bodies[0]["Message"]
    assert failed.value.failed_steps[0].startswith("restore")
    # Run again with the right task definition: it finishes the job.
    again = rollback_with(stable.task_definition)
    assert again.canary_task_definition == stable.task_definition and again.canary_desired == 0


@pytest.mark.parametrize("bad", ["webordinary-edit-task", "webordinary edit task:1", "family:0", "family:x",
                                 "arn:aws:ecs:us-west-2:123:task-definition/family:1", ""])
def test_the_rollback_flow_refuses_a_malformed_previous_task_definition_before_any_call(monkeypatch, bad):
    import flows.rollback

    def no_aws(*args, **kwargs):
        raise AssertionError("the environment was loaded before the parameters were checked")

    monkeypatch.setattr(flows.rollback, "load_environment", no_aws)
    state = flows.rollback.rollback(reason="test", previous_task_definition=bad, return_state=True)
    assert state.is_failed() and "Validation of flow parameters failed" in state.message
    assert "previous_task_definition" in state.message


@pytest.mark.parametrize("good", ["webordinary-edit-task:1", "web_ordinary-2:12",
                                  "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:3",
                                  "arn:aws-cn:ecs:cn-north-1:123456789012:task-definition/x:1"])
def test_task_definition_refs_a_rollback_accepts(good):
    assert validate_task_definition(good) == good


def test_unknown_target_group_fails_before_any_write(aws, watch_calls):
    missing = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/nope/0123456789abcdef"
    targets = Targets(canary_target_group=missing)
    env = aws_environment(aws.get_client, targets, FakeClock())
    ecs_calls, elb_calls = watch_calls(aws.get_client("ecs")), watch_calls(aws.get_client("elbv2"))
    with pytest.raises(RolloutRefused, match="refused before any write.*nope") as refused:
        canary_run(env, spec(f"{aws.topology.repository_uri}:2.0.0"))
    assert isinstance(refused.value.__cause__, TargetNotFound)
    writes = [c for c in ecs_calls + elb_calls if not c.startswith(("Describe", "List", "Get"))]
    assert writes == []


@flow(name="canary-moto-approval-pause")
def canary_run_answered_by_nobody(env, rollout):
    from flows.approvals import prefect_approver

    return run_canary(env, rollout, prefect_approver(rollout.approvals, poll_interval=0.1))


def test_a_canary_that_goes_bad_while_its_approval_waits_is_rolled_back_unanswered_on_aws(aws):
    """The 5 % stage passes and the run pauses for the approval before 100 %, with a form nobody
    answers (its timeout far off). The canary goes bad: the run keeps judging it, leaves its
    pause, and rolls the traffic back on its own."""
    import threading
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState, \
        FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    from rollway.spec import Approvals
    from tests.flows.moto_env import HEALTHY, simulation

    paused = threading.Event()

    def goes_bad_once_paused(simulator, image):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["canary-moto-approval-pause"])),
                    flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
            if runs:
                simulator.set_profile(image, HEALTHY.model_copy(update={"error_probability": 0.05}))
                paused.set()
                return
            time.sleep(0.05)

    with simulation(aws, canary_error_rate=0.001) as (env, image, simulator):
        rollout = RolloutSpec(
            image=image, monitor_seconds=0, approvals=Approvals(timeout_seconds=30, on_timeout="rollback"),
            stages=[Stage(weight=5, bake_seconds=900, min_bake_seconds=120),
                    Stage(weight=100, bake_seconds=900, min_bake_seconds=120, approval=True)])
        watcher = threading.Thread(target=goes_bad_once_paused, args=(simulator, image), daemon=True)
        watcher.start()
        result = canary_run_answered_by_nobody(env, rollout)
        watcher.join(5)
    assert paused.is_set()
    assert result.outcome == "rolled_back", result.reason
    assert result.reason.startswith("5%: ") and "while the run waited for an answer" in result.reason, result.reason
    # The stage as it passed, then the pause's own row at the same weight, ending in the rollback.
    assert [(s.weights.canary, s.decision) for s in result.stages] == [
        (5, "passed"), (5, "rollback during the approval pause")]
    assert result.stages[1].canary.errors > 0, result.stages[1]
    weights, stable, canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0) and canary.desired == 0


def test_a_cluster_of_another_account_is_refused_before_any_call_naming_both_accounts(aws, every_call):
    # ECS looked the ARN's cluster up by its name in the credentials' account: the rollout acted
    # on a same-named cluster there, or failed with ClusterNotFound after its first writes.
    from flows.env import session_clients
    from blocks.credentials import credentials_for_endpoint

    theirs = "arn:aws:ecs:us-west-2:111122223333:cluster/webordinary-edit-cluster"
    get_client = session_clients(credentials_for_endpoint(aws.endpoint_url, "us-west-2"), "us-west-2")
    env = aws_environment(get_client, Targets(cluster=theirs), FakeClock())
    calls = {service: every_call(service) for service in ("ecs", "elbv2", "dynamodb", "sns", "cloudwatch")}
    with pytest.raises(RolloutRefused) as refused:
        canary_run(env, spec(f"{aws.topology.repository_uri}:2.0.0"))
    said = str(refused.value)
    assert f"cluster {theirs} is in account 111122223333" in said, said
    assert "the AWS credentials are of account 123456789012" in said  # moto's, from STS as the session was made
    assert all(made == [] for made in calls.values()), calls


def test_an_assumed_roles_account_is_the_credentials_account_without_asking_sts(aws, every_call):
    from blocks.credentials import credentials_for_endpoint
    from flows.env import session_clients

    credentials = credentials_for_endpoint(aws.endpoint_url, "us-west-2").model_copy(
        update={"assume_role_arn": "arn:aws:iam::111122223333:role/rollway-rollout"})
    asked = every_call("sts")
    get_client = session_clients(credentials, "us-west-2")
    ours = "arn:aws:ecs:us-west-2:123456789012:cluster/webordinary-edit-cluster"
    env = aws_environment(get_client, Targets(cluster=ours), FakeClock())
    with pytest.raises(RolloutRefused, match="is in account 123456789012, but the AWS credentials are of account "
                                             "111122223333"):
        canary_run(env, spec(f"{aws.topology.repository_uri}:2.0.0"))
    assert asked == ["AssumeRole"]


@pytest.mark.parametrize("looked_up", [True, False], ids=["run's router", "fresh router"])
def test_a_rollback_over_a_deleted_listener_rule_says_to_put_the_rule_back_not_to_wait_for_stable(
        aws, caplog, looked_up):
    """The rule the rollout shifts was deleted by hand: the rollback cannot move anyone, and its
    page told people to run it again "once webordinary-edit-service can take the traffic", which
    it could all along; the rollback fails the same way until a rule forwards to the groups again."""
    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    env.router.set_weights(Weights.canary_at(25))
    if not looked_up:  # a hook's rollback looks everything up again
        env = aws_environment(aws.get_client, aws.targets, FakeClock())
    aws.get_client("elbv2").delete_rule(RuleArn=aws.topology.rule_arn)
    with caplog.at_level(logging.ERROR), pytest.raises(TargetNotFound):
        rollback_run(env, "errors")
    (page,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("The rollback of")]
    assert "can take the traffic" not in page, page
    assert AGAIN_ONCE_THE_RULE in page, page


def test_a_rollback_over_a_rule_answering_by_itself_says_to_give_it_back_its_forward_not_to_wait_for_stable(
        aws, caplog):
    """A maintenance page (fixed-response) was put on the rule by hand: the rollback's write leaves
    the rule forwarding to no target group, and its page told people to run it again "once
    webordinary-edit-service can take the traffic", which it could all along; it fails the same
    way until the rule forwards to the groups again."""
    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    env.router.set_weights(Weights.canary_at(25))
    aws.get_client("elbv2").modify_rule(RuleArn=aws.topology.rule_arn, Actions=[{
        "Type": "fixed-response",
        "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": "maintenance"}}])
    with caplog.at_level(logging.ERROR), pytest.raises(AdapterError):
        rollback_run(env, "errors")
    (page,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("The rollback of")]
    assert "can take the traffic" not in page, page
    assert "forwards to no target group (its actions: fixed-response)" in page, page
    assert AGAIN_ONCE_THE_RULE in page, page


@pytest.mark.parametrize("gone", ["rule deleted since the lookup", "no rule to look up"])
def test_a_rule_that_is_gone_is_said_gone_at_the_first_read_not_read_twice_more_a_second_apart(
        aws, caplog, every_call, gone):
    """A rule deleted, or none on the path to look up, is gone the same way a second later
    (RuleNotFound is no throttle): the bounded reads asked again twice, 1 s apart, which held the
    page of a rollback that could not move anyone, and the failure of a run whose hook rolls back
    (with a fresh lookup, which finds a rule a stack update put in its place), two seconds more."""
    from tasks import traffic

    env = aws_environment(aws.get_client, aws.targets, FakeClock())
    env.router.set_weights(Weights.canary_at(25))
    if gone == "no rule to look up":  # a fresh router, as `rollway abort`'s or a hook's rollback has
        env = aws_environment(aws.get_client, aws.targets, FakeClock())
    aws.get_client("elbv2").delete_rule(RuleArn=aws.topology.rule_arn)
    calls = every_call("elbv2")  # the bounded reads are made on clients of their own

    @flow
    def read():
        return traffic.weights_within(env.router, 30.0)

    with caplog.at_level(logging.WARNING), pytest.raises(TargetNotFound):
        read()
    again = [r.getMessage() for r in caplog.records if "reading them again" in r.getMessage()]
    assert again == [], again
    assert calls.count("DescribeRules") == 1, calls
