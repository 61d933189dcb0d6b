"""finalize: after a promotion the promoted version moves onto the stable service and the traffic
back to it, so the next rollout can start. On the embedded AWS with the Prefect test harness."""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import threading
import time
from uuid import uuid4

import pytest
from botocore.exceptions import ClientError
from prefect import flow

from flows.canary import RolloutRefused, preflight
from flows.finalize import finalize, run_finalize
from flows.progressive import run_progressive
from rollway.approvals import auto_approve
from rollway.aws.ecs import EcsDeployer
from rollway.aws.environment import aws_environment
from rollway.aws.ledger import DynamoLedger
from rollway.clock import ClockSettings
from rollway.fakes import FakeLedger, FakeRouter
from rollway.finalize import FinalizeIncomplete, FinalizeRefused, finalize_unfinished, plan_finalize
from rollway.ledger import RolloutRecord, Transition, new_rollout_id, utc
from rollway.model import ServiceState, Weights
from rollway.phases import RolloutPhase
from rollway.sim.topology import put_release_image
from rollway.sim.traffic import TrafficSimulator
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from rollway.targets import Targets
from tasks.metrics import REPEAT
from tests.flows.moto_env import HEALTHY, SPEED, inbox, paced_environment, saved_blocks  # other test_finalize_* import saved_blocks here
from tests.flows.test_canary_moto import read_back
from tests.flows.iam import allowed, denied, iam_actions, iam_requests

ALL_STABLE, ALL_CANARY = Weights(stable=100, canary=0), Weights(stable=0, canary=100)
READS = ("Describe", "Get", "List", "Query")


def rollout_spec(image: str, *, monitor_seconds: float = 180) -> RolloutSpec:
    # Webordinary's plan in one phase: promoted, watched for a short window, old service decommissioned.
    return RolloutSpec(image=image, stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 100)],
                       monitor_seconds=monitor_seconds, phases=[WeeklyPhase(name="all", weights=(5, 100), decommission=True)])


@flow
def progressive_on(env, spec):
    return run_progressive(env, spec, auto_approve("alice"), owner=f"run-{uuid4().hex[:6]}", phased=False)


@flow
def preflight_on(env, spec):
    return preflight(env, spec)


@flow
def finalize_on(env, actor: str = "alice", stable_timeout_seconds: float = 30):
    return run_finalize(env, actor=actor, stable_timeout_seconds=stable_timeout_seconds, verify_timeout_seconds=5)


def writes(*calls: list[str]) -> list[str]:
    return [c for names in calls for c in names if not c.startswith(READS)]


def kinds(aws) -> list[str]:
    return [t.kind for t in DynamoLedger(aws.get_client("dynamodb"), aws.targets).get(aws.targets.canary_service).history]


def notice(aws, url: str, subject: str) -> str:
    """The message of the alert topic's notice with ``subject`` (delivered to the ``inbox`` queue)."""
    got = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    (message,) = [body["Message"] for body in map(json.loads, (m["Body"] for m in got)) if body["Subject"] == subject]
    return message


# --- The whole story: promote, finalize, and the next rollout ------------------------------


def test_after_finalize_the_next_rollout_starts_and_rolls_back_to_the_promoted_version(aws):
    blocks = saved_blocks(aws)
    url = inbox(aws)
    first, second = (put_release_image(aws.get_client, aws.targets, tag) for tag in ("2.0.0", "2.1.0"))
    # One simulated world for both releases (one rollout clock, so the second rollout's id sorts
    # after the first's); it stays on through finalize, standing in for ECS registering the
    # tasks of a scaled-up service in its target group.
    # Paced: under load the simulator fell behind and the monitoring window read no data, so the
    # old service was kept, not decommissioned.
    settings = ClockSettings(speed=SPEED, anchor=time.time())
    simulator = TrafficSimulator(aws.get_client, aws.targets, aws.topology, settings.build(),
                                 profiles={second: HEALTHY.model_copy(update={"error_probability": 0.05})},
                                 default_profile=HEALTHY, total_rps=1000, seed=3,
                                 start=math.floor(settings.build().now() / 60) * 60)
    with paced_environment(aws.get_client, aws.targets, settings, simulator) as env, simulator:
        promoted = progressive_on(env, rollout_spec(first))
        assert promoted.outcome == "promoted", promoted.reason
        weights, stable, canary = read_back(aws)
        assert weights == ALL_CANARY and stable.desired == 0, "promoted, window passed, old service decommissioned"
        release = canary.task_definition
        with pytest.raises(RolloutRefused, match="carries 100% of traffic"):
            progressive_on(env, rollout_spec(second))  # the gap finalize closes: no next rollout before it

        result = finalize(actor="alice", targets_block=blocks, aws_credentials_block=blocks,
                          clock=settings.model_dump(mode="json"))
        assert result.outcome == "finalized"
        weights, stable, canary = read_back(aws)
        assert weights == ALL_STABLE
        assert stable.task_definition == release and stable.desired == 2, "the stable service runs the release"
        assert canary.desired == 0 and canary.task_definition == release
        assert kinds(aws)[-4:] == ["decommission", "decommission-paged", "finalize-start", "finalized"]
        # The tag and the digest it was pinned to: the tag alone may name another image by now.
        pinned_first = env.ledger.get(aws.targets.canary_service).pinned_image
        assert "@sha256:" in pinned_first and result.pinned_image == pinned_first
        assert (f"{aws.targets.stable_service} now runs {first} (pinned as {pinned_first}) ({release})"
                in notice(aws, url, f"Finalized: {aws.targets.stable_service}"))

        # The next release: preflight passes, the canary gets it, the judge rolls it back, and
        # production is the first release again, on the stable service.
        rolled_back = progressive_on(env, rollout_spec(second))
    assert rolled_back.outcome == "rolled_back", rolled_back.reason
    record = env.ledger.get(aws.targets.canary_service)
    assert (record.image, record.phase, record.previous_task_definition) == (second, RolloutPhase.ROLLED_BACK, release)
    # The page names what the canary ran: the tag and the digest it was pinned to.
    assert f"Version: {second} (pinned as {record.pinned_image}) (" in notice(
        aws, url, f"Rollback: {aws.targets.canary_service}")
    weights, stable, canary = read_back(aws)
    assert weights == ALL_STABLE and stable.task_definition == release
    assert canary.desired == 0 and canary.task_definition == release


# --- Hand-made promotions: the refusals, a second run, a run that stops half-way --------------


def promote_by_hand(aws, *history: str, monitor_seconds: float = 600, phase=RolloutPhase.PROMOTED,
                    clock: ClockSettings = ClockSettings(), pinned_image: str | None = None):
    """The state a promotion leaves on the embedded AWS: 2.0.0 on the canary carrying everything,
    the old service decommissioned, and (``history`` not empty) its rollout in the ledger, its
    entries stamped on ``clock``.

    Returns:
        (env, the promoted task definition, the stable service's task definition before).
    """
    t = aws.targets
    env = aws_environment(aws.get_client, t, clock.build())
    ecs = aws.get_client("ecs")
    before = EcsDeployer(ecs, t).describe(t.stable_service)
    release = EcsDeployer(ecs, t).register_revision(f"{aws.topology.repository_uri}:2.0.0", before.task_definition)
    ecs.update_service(cluster=t.cluster, service=t.canary_service, taskDefinition=release, desiredCount=before.desired)
    ecs.update_service(cluster=t.cluster, service=t.stable_service, desiredCount=0)
    env.router.set_weights(ALL_CANARY)
    if history:
        now = env.clock.now()
        spec = RolloutSpec(image=f"{aws.topology.repository_uri}:2.0.0", stages=[Stage(weight=5), Stage(weight=100)],
                           monitor_seconds=monitor_seconds)
        record = RolloutRecord(
            service=t.canary_service, rollout_id=new_rollout_id(now), image=spec.image, spec_json=spec.model_dump_json(),
            phase=phase, weights=ALL_CANARY, canary_task_definition=release, stable_desired=before.desired,
            previous_task_definition=before.task_definition, monitor_until=now + monitor_seconds,
            history=tuple(Transition(at=now, kind=kind, actor="test") for kind in history), pinned_image=pinned_image,
        )
        env.ledger.create(record, owner="process/test", now=now, lease_seconds=0)
        env.ledger.release(t.canary_service, owner="process/test")
    return env, release, before.task_definition


@pytest.mark.parametrize(("history", "phase", "refusal"), [
    ((), None, "no rollout of webordinary-edit-service-canary is recorded"),
    (("start", "rollback-start", "rollback"), RolloutPhase.ROLLED_BACK, "is rolled_back, not promoted"),
    (("start", "promote"), RolloutPhase.PROMOTED, "monitoring window is still open"),
], ids=["no-rollout", "rolled-back", "window-open"])
def test_finalize_refuses_before_any_write(aws, watch_calls, history, phase, refusal):
    env, release, _ = promote_by_hand(aws, *history, phase=phase or RolloutPhase.PROMOTED)
    state = read_back(aws)
    calls = [watch_calls(aws.get_client(s)) for s in ("ecs", "elbv2", "dynamodb", "sns")]
    ledger_before = env.ledger.get(aws.targets.canary_service)
    with pytest.raises(FinalizeRefused, match=refusal) as refused:
        finalize_on(env)
    assert "Nothing was changed" in str(refused.value)
    assert writes(*calls) == []
    assert read_back(aws) == state and state[0] == ALL_CANARY
    assert env.ledger.get(aws.targets.canary_service) == ledger_before


def test_finalize_twice_the_second_run_changes_nothing(aws, watch_calls):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    services = ("ecs", "elbv2", "dynamodb", "sns")
    made = {service: watch_calls(aws.get_client(service)) for service in services}
    first = finalize_on(env)
    assert first.outcome == "finalized" and first.weights == ALL_STABLE
    # deployments/iam-policy.json lets finalize make every call it makes.
    used = {action for service, names in made.items() for name in names for action in iam_actions(service, name, {})}
    assert used - allowed("iam-policy.json") == set(), "calls the documented IAM policy does not allow"
    after_first = read_back(aws), env.ledger.get(aws.targets.canary_service)
    calls = [watch_calls(aws.get_client(s)) for s in services]
    second = finalize_on(env, actor="bob")
    assert second.outcome == "already_finalized" and second.task_definition == release
    assert writes(*calls) == []
    assert (read_back(aws), env.ledger.get(aws.targets.canary_service)) == after_first


def failing(client, operation: str, when=lambda params: True):
    """Make ``client`` fail ``operation`` (as AWS does when throttled) while the returned hook is registered."""

    def refuse(model, params, **_):
        if model.name == operation and when(params):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)

    client.meta.events.register("before-parameter-build.*", refuse)
    return lambda: client.meta.events.unregister("before-parameter-build.*", refuse)


def finalize_stopped_by(env, client, operation: str, match: str, when=lambda params: True) -> FinalizeIncomplete:
    """Run finalize while ``client`` fails ``operation`` (see ``failing``); it stops with ``match``."""
    restore = failing(client, operation, when)
    try:
        with pytest.raises(FinalizeIncomplete, match=match) as stopped:
            finalize_on(env)
    finally:
        restore()
    return stopped.value


def test_a_finalize_stopped_before_the_traffic_moved_leaves_the_canary_serving_and_the_next_run_finishes(aws):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    restore = failing(aws.get_client("elbv2"), "ModifyRule")
    try:
        with pytest.raises(FinalizeIncomplete, match=r"the load balancer holds 0/100 \(stable/canary\)") as stopped:
            finalize_on(env)
    finally:
        restore()
    assert "ThrottlingException" in str(stopped.value) and "Run finalize again" in str(stopped.value)
    weights, stable, canary = read_back(aws)
    assert weights == ALL_CANARY and canary.desired == 2, "users are still served by the canary"
    assert stable.task_definition == release, "the stable service was brought onto the release first"
    assert finalize_unfinished(env.ledger.get(aws.targets.canary_service))

    again = finalize_on(env)
    assert again.outcome == "finalized"
    weights, stable, canary = read_back(aws)
    assert (weights, stable.task_definition, canary.desired) == (ALL_STABLE, release, 0)
    assert kinds(aws)[-3:] == ["finalize-start", "finalize-start", "finalized"]


def test_a_rule_forwarding_to_a_third_group_stops_finalize_with_advice_for_finalize(aws, watch_calls):
    """The load balancer's refusal advised rolling the rollout back, which after a promotion
    moves users back to the old version: finalize's says to remove the group and run it again."""
    from tests.adapters.test_elbv2 import _with_a_third_group

    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    shadow = _with_a_third_group(aws, 0, 90, 10)
    calls = [watch_calls(aws.get_client(s)) for s in ("ecs", "elbv2")]
    with pytest.raises(FinalizeIncomplete) as stopped:
        finalize_on(env)
    said = str(stopped.value)
    assert f"{shadow} (weight 10 of 100)" in said and "Nothing was changed" in said, said
    assert "remove it from the rule and run finalize again" in said, said
    assert "roll the rollout back" not in said, said
    assert writes(*calls) == []


def test_a_third_group_added_after_finalize_read_the_rule_is_said_with_advice_for_finalize(aws, watch_calls):
    """Added between finalize's read of the weights and its move: the move is refused before its
    ModifyRule, and the sentence saying what the load balancer holds, read back after the refusal,
    quoted the rollout's advice (roll it back, which after a promotion moves users back to the old
    version). Both say finalize's."""
    from tests.adapters.test_elbv2 import _rule_weights, _with_a_third_group

    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    t, pointed, added = aws.targets, env.deployer.update_service, []

    def then_a_group_added(service, **changes):
        state = pointed(service, **changes)
        if service == t.stable_service and changes.get("task_definition") == release:
            added.append(_with_a_third_group(aws, 0, 90, 10))
        return state

    env.deployer.update_service = then_a_group_added
    calls = watch_calls(aws.get_client("elbv2"))
    with pytest.raises(FinalizeIncomplete) as stopped:
        finalize_on(env)
    said = " ".join(str(stopped.value).split())
    (shadow,) = added
    assert stopped.value.step == "move the traffic to the stable target group", said
    assert said.count(f"{shadow} (weight 10 of 100)") == 2, said  # the refusal, and what is read back after it
    assert said.count("remove it from the rule and run finalize again") == 2, said
    assert "roll the rollout back" not in said, said
    assert calls.count("ModifyRule") == 1, calls  # the group's addition: finalize wrote nothing
    top = aws.topology
    assert _rule_weights(aws) == {top.stable_target_group_arn: 0, top.canary_target_group_arn: 90, shadow: 10}
    deployer = EcsDeployer(aws.get_client("ecs"), t)
    assert deployer.describe(t.stable_service).task_definition == release
    assert deployer.describe(t.canary_service).desired == 2, "users are still served by the canary"


def test_a_release_the_circuit_breaker_rolled_back_keeps_the_traffic_on_the_canary(aws, independent_client):
    # ECS's circuit breaker rolls the stable service's new deployment back to the old revision
    # (moto has none; a second actor plays it): the service is steady, but on the old version.
    env, release, old = promote_by_hand(aws, "start", "promote", "decommission")
    t = aws.targets
    pointed = env.deployer.update_service

    def then_rolled_back(service, **changes):
        state = pointed(service, **changes)
        if service == t.stable_service and changes.get("task_definition") == release:
            independent_client("ecs").update_service(cluster=t.cluster, service=service, taskDefinition=old)
        return state

    env.deployer.update_service = then_rolled_back
    with pytest.raises(FinalizeIncomplete, match="rolled back by ECS's circuit breaker") as stopped:
        # 4 s: ECS's wait polls every second (30 s polled every 7) and the second poll tells.
        finalize_on(env, stable_timeout_seconds=4)
    assert f"runs {old}, not {release}" in str(stopped.value)
    weights, stable, canary = read_back(aws)
    assert weights == ALL_CANARY and canary.desired == 2, "users stay on the release, served by the canary"
    assert stable.task_definition == old
    assert finalize_unfinished(env.ledger.get(t.canary_service))


@pytest.mark.parametrize("deregistered", [False, True], ids=["promoted", "promoted-deregistered-since"])
def test_a_finalize_stopped_after_the_traffic_moved_is_finished_from_there(
        aws, watch_calls, ecs_updates_retried_at_once, ecs_refuses_inactive_revisions, deregistered):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    if deregistered:  # the stable service takes an identical copy of it
        aws.get_client("ecs").deregister_task_definition(taskDefinition=release)
    canary_name = aws.targets.canary_service
    finalize_stopped_by(env, aws.get_client("ecs"), "UpdateService", "The traffic is on webordinary-edit-service, which "
                        "runs " + ("arn:.*, an identical copy of the promoted" if deregistered else "the promoted"),
                        when=lambda params: params.get("service") == canary_name)
    weights, stable, canary = read_back(aws)
    assert weights == ALL_STABLE and (stable.task_definition != release) == deregistered and canary.desired == 2
    # The copy is recorded as what the stable service takes: the promoted version, to the runs that follow.
    recorded = env.ledger.get(canary_name).last_transition("finalize-start").stable_task_definition
    assert recorded == (stable.task_definition if deregistered else None)
    # Until it is finished, a new rollout would deploy onto a canary the next finalize run scales down.
    with pytest.raises(RolloutRefused, match="did not finish: run `rollway finalize`"):
        preflight_on(env, rollout_spec(f"{aws.topology.repository_uri}:3.0.0"))

    elb_calls = watch_calls(aws.get_client("elbv2"))
    again = finalize_on(env)
    assert again.outcome == "finalized" and read_back(aws)[2].desired == 0
    assert "ModifyRule" not in elb_calls, "the traffic was not moved a second time"
    assert kinds(aws)[-2:] == ["finalize-start", "finalized"]
    # A second run says it is finalized, the copy being the finalized version, not one changed since.
    said = finalize_on(env, actor="bob")
    assert said.outcome == "already_finalized" and "changed since" not in said.steps[-1]
    assert ecs_refuses_inactive_revisions == []


def active_revisions(aws, family_of: str) -> list[str]:
    family = family_of.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    return aws.get_client("ecs").list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]


def test_a_promoted_revision_deregistered_since_is_finalized_on_an_identical_copy(
        aws, watch_calls, ecs_refuses_inactive_revisions):
    # A clean-up deregistered the promoted revision; the canary keeps running it, ECS refuses it for a service.
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    aws.get_client("ecs").deregister_task_definition(taskDefinition=release)
    url = inbox(aws)
    made = {service: watch_calls(aws.get_client(service)) for service in ("ecs", "elbv2", "dynamodb", "sns")}
    sent: list[dict] = []

    def registering(model, params, **_):
        if model.name == "RegisterTaskDefinition":
            sent.append(dict(params))

    aws.get_client("ecs").meta.events.register("before-parameter-build.ecs.*", registering)

    result = finalize_on(env)

    assert result.outcome == "finalized" and ecs_refuses_inactive_revisions == []
    weights, stable, canary = read_back(aws)
    copy = stable.task_definition
    assert weights == ALL_STABLE and canary.desired == 0 and canary.task_definition == release
    assert copy != release and result.task_definition == copy
    ecs = aws.get_client("ecs")
    old, new = (ecs.describe_task_definition(taskDefinition=td)["taskDefinition"] for td in (release, copy))
    assert new["status"] == "ACTIVE" and new["containerDefinitions"] == old["containerDefinitions"]
    assert any(f"registered {copy}, a copy of the promoted {release}" in step for step in result.steps)
    # The notice says what each service runs: the canary the original, the stable service its copy.
    told = notice(aws, url, f"Finalized: {aws.targets.stable_service}")
    assert f"{aws.targets.canary_service} is at 0 tasks on {release}, of which {copy} is an identical copy" in told, told
    start = env.ledger.get(aws.targets.canary_service).last_transition("finalize-start")
    assert f"{release} was deregistered (INACTIVE)" in start.comment and f"moving {copy} onto" in start.comment
    # The release names its image by tag (2.0.0), as the copy does: no digest is pinned to claim.
    assert new["containerDefinitions"][0]["image"].endswith(":2.0.0") and "digest" not in start.comment
    used = {action for service, names in made.items() for name in names for action in iam_actions(service, name, {})}
    assert "ecs:RegisterTaskDefinition" in used
    assert used - allowed("iam-policy.json") == set(), "calls the documented IAM policy does not allow"
    # The copy's tags and the roles it passes to ECS, on the resources and conditions AWS checks them on.
    (params,) = sent
    requests = iam_requests("ecs", "RegisterTaskDefinition", params)
    assert {r.action for r in requests} == {"ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole"}
    assert denied("iam-policy.json", requests) == []


def test_a_finalize_stopped_at_a_deregistered_promoted_revision_is_finished_by_the_next_run(
        aws, ecs_refuses_inactive_revisions, ecs_updates_retried_at_once):
    # As an earlier finalize left it: its start recorded, the stable service never pointed (ECS refused it).
    env, release, previous = promote_by_hand(aws, "start", "promote", "decommission", "finalize-start")
    aws.get_client("ecs").deregister_task_definition(taskDefinition=release)
    assert finalize_unfinished(env.ledger.get(aws.targets.canary_service))
    stable_name = aws.targets.stable_service
    # `rollway abort` sends a person to finalize again, which now can finish it.
    from rollway.cli.way_back import nothing_to_abort
    assert "Run `rollway finalize` again to finish it" in nothing_to_abort(
        aws.targets, env.ledger.get(aws.targets.canary_service))
    # This run stops after registering the copy, before the stable service takes it...
    finalize_stopped_by(env, aws.get_client("ecs"), "UpdateService", f"point {stable_name} at",
                        when=lambda params: params.get("service") == stable_name)
    (copy,) = set(active_revisions(aws, release)) - {previous}
    # ...and the next one finishes on the same copy, registering no other.
    again = finalize_on(env)
    assert again.outcome == "finalized" and ecs_refuses_inactive_revisions == []
    weights, stable, canary = read_back(aws)
    assert (weights, stable.task_definition, canary.desired) == (ALL_STABLE, copy, 0)
    assert set(active_revisions(aws, release)) - {previous} == {copy}
    assert kinds(aws)[-4:] == ["finalize-start", "finalize-start", "finalize-start", "finalized"]


def too_early(*args, **kwargs):
    raise AssertionError("blocks or AWS clients were loaded before the options were checked")


# --- The command line -------------------------------------------------------------------


def test_rollway_finalize_prints_each_step_and_a_second_run_changes_nothing(aws, capsys):
    from rollway.cli import app

    blocks = saved_blocks(aws)
    env, _, _ = promote_by_hand(aws, "start", "promote", "watched")
    options = ["--actor", "carol", "--targets-block", blocks, "--credentials-block", blocks]
    assert app(["finalize", *options], result_action="return_value") == 0
    out = capsys.readouterr().out
    assert "1. recorded 'finalize-start'" in out and "traffic moved: the load balancer holds 100/0" in out
    assert "the next rollout can start" in out
    assert app(["finalize", *options], result_action="return_value") == 0
    out = capsys.readouterr().out
    # Said once, as the closing line with what AWS showed: the step said it first ("finalized
    # already ... nothing to do"), then the closing line again.
    assert out.count("finalized already") + out.count("already finalized") == 1, out
    closing = out.strip().splitlines()[-1]
    t = aws.targets
    rollout_id = env.ledger.get(t.canary_service).rollout_id
    assert closing.startswith(f"{rollout_id} was already finalized at "), closing
    assert closing.endswith("; nothing changed"), closing
    assert f"{t.stable_service} runs arn:aws:ecs:" in closing and "carries 100% of the traffic" in closing, closing
    assert f"{t.canary_service} is at 0 tasks" in closing, closing
    assert read_back(aws)[0] == ALL_STABLE


def prefect_console(monkeypatch) -> list[logging.LogRecord]:
    """What Prefect's console handler (on the root logger) is handed from now on, which the terminal
    shows: its own filters still apply (a handler of the test's own on the root logger was taken for
    it, and a filter on every root handler passed as one on the console)."""
    import prefect.main  # noqa: F401 - Prefect's console handler, on the root logger once imported
    from prefect.logging.handlers import PrefectConsoleHandler

    consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    assert consoles, logging.getLogger().handlers
    shown: list[logging.LogRecord] = []
    for console in consoles:
        monkeypatch.setattr(console, "emit", shown.append)
    return shown


@pytest.mark.parametrize("name", ["carol\x1b]0;pwned\x07", "carol\n2. finalized by mallory"], ids=["escape", "line-break"])
def test_rollway_finalize_shows_the_control_characters_of_a_recorded_name_escaped(aws, capsys, monkeypatch, name):
    """The ledger keeps who finalized as they typed it (the finalize deployment's form, `--actor`,
    took a name with control characters until they were refused, and a ledger keeps what an older
    rollway wrote): a later `rollway finalize` quotes that name in its closing line, and printed it
    as it was, its escape sequence acting on the terminal (a retitled window, a cleared line hiding
    who it was), and a line break in it printed a line of its own, a forged step or closing line,
    where `rollway status` shows the same name escaped."""
    from rollway.cli import app

    blocks = saved_blocks(aws)
    env, _, _ = promote_by_hand(aws, "start", "promote", "watched")
    options = ["--targets-block", blocks, "--credentials-block", blocks]
    assert finalize_on(env, actor=name).outcome == "finalized"
    capsys.readouterr()
    console = prefect_console(monkeypatch)
    assert app(["finalize", "--actor", "dave", *options], result_action="return_value") == 0
    out = capsys.readouterr().out
    said = "by " + name.encode("unicode_escape").decode()  # on the line that names it, escaped
    assert said in out, out
    assert "\x1b" not in out and "\x07" not in out, repr(out)
    # The run's log, which the terminal shows too, says the finding as a step of its own.
    logged = "\n".join(r.getMessage() for r in console)
    assert said in logged and "\x1b" not in logged and "\x07" not in logged, logged


def test_rollway_finalize_refused_by_a_finalize_holding_the_rollout_names_it_on_one_line(aws, capsys):
    """The refusal names who began the finalize holding the rollout's lease, as the ledger keeps
    it: a line break in that name (an older rollway recorded it as typed) printed a line of its
    own beneath the command's "error:", one that read as the command's, and an escape sequence
    acted on the terminal."""
    from rollway.cli import app

    blocks = saved_blocks(aws)
    env, _, _ = promote_by_hand(aws, "start", "promote", "watched")
    t = aws.targets
    name = "carol\nerror: nothing was finalized\x1b[2K"
    now = env.clock.now()
    held = env.ledger.acquire(t.canary_service, owner="flow-run/4f2a", now=now, lease_seconds=600, wall=env.wall())
    env.ledger.record(t.canary_service, owner="flow-run/4f2a", now=now, rollout=held.rollout_id,
                      transition=Transition(at=now, kind="finalize-start", actor=name))

    code = app(["finalize", "--actor", "dave", "--targets-block", blocks, "--credentials-block", blocks],
               result_action="return_value")

    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and r"held by a finalize by carol\nerror: nothing was finalized\x1b[2K (" in err, err
    assert "\x1b" not in err, repr(err)
    assert read_back(aws)[0] == ALL_CANARY


def test_rollway_finalize_says_why_it_refuses_and_exits_non_zero(aws, capsys, monkeypatch, flow_run_records):
    """A refusal is an answer, not a crash: the command also printed the flow engine's traceback
    of it (some thirty lines) above its one-line "refused:". The terminal shows what the flow
    run logger's handlers format, so the test reads what they are handed.

    Only Prefect's console leaves the engine's ERROR line out: a handler of the user's own on the
    root logger (a log file) lost it too, the refusal nowhere in that file."""
    from rollway.cli import app

    blocks = saved_blocks(aws)
    promote_by_hand(aws, "start", "promote")  # the window is still open
    console = prefect_console(monkeypatch)
    filed: list[logging.LogRecord] = []  # a log file of the user's own, on the root logger
    log_file = logging.Handler()
    log_file.emit = filed.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(log_file)
    try:
        code = app(["finalize", "--targets-block", blocks, "--credentials-block", blocks],
                   result_action="return_value")
    finally:
        logging.getLogger().removeHandler(log_file)
    assert code == 1
    # Opened "refused:" where every other command's refusal opens "error:".
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "monitoring window" in err and not err.startswith("refused"), err
    said = [r for r in flow_run_records if "FinalizeRefused" in r.getMessage()]
    assert said and not any(r.exc_info for r in said), "the refusal is logged, without its traceback"
    # The run's log keeps it; the terminal showed Prefect's ERROR line of it above the same words.
    errors = [r.getMessage() for r in console if r.levelno >= logging.ERROR]
    assert not errors, errors
    filed_errors = [r.getMessage() for r in filed if r.name == "prefect.flow_runs" and r.levelno >= logging.ERROR]
    assert any("FinalizeRefused" in m and "monitoring window" in m for m in filed_errors), filed_errors
    assert read_back(aws)[0] == ALL_CANARY


def test_rollway_finalize_that_stops_says_so_in_one_line_and_its_advice_without_a_traceback(
        aws, capsys, monkeypatch, flow_run_records, task_run_records):
    """A finalize that stopped part-way is an answer too (what users are served, and to run it
    again): the command printed the flow engine's traceback of FinalizeIncomplete, some forty
    lines, above its one-line "error:", as if finalize itself had crashed. And the terminal showed the
    stop three times: the failed task's ERROR line, the run's own ERROR line of the whole message,
    then the command's "error:": said once, by the command, it is read once."""
    import flows.finalize
    from rollway.cli import app

    blocks = saved_blocks(aws)
    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    monkeypatch.setattr(flows.finalize, "load_environment", lambda *args: env)  # its clients refuse ModifyRule
    restore = failing(aws.get_client("elbv2"), "ModifyRule")
    console = prefect_console(monkeypatch)
    try:
        code = app(["finalize", "--targets-block", blocks, "--credentials-block", blocks], result_action="return_value")
    finally:
        restore()
    errors = [r.getMessage() for r in console if r.levelno >= logging.ERROR]
    assert not errors, errors
    # Nor at another level: the flow engine's closing INFO line quoted the whole stop, paragraph and
    # advice, on the terminal above the command's own "error:" line.
    repeated = [r.getMessage() for r in console if "finalize stopped while" in r.getMessage()]
    assert not repeated, repeated
    assert code == 1
    err = capsys.readouterr().err
    assert "error: finalize stopped while it tried to move the traffic to the stable target group" in err, err
    assert "Run finalize again" in err and "Traceback" not in err, err
    said = [r for r in flow_run_records if "FinalizeIncomplete" in r.getMessage()]
    assert said and not any(r.exc_info for r in said), "the stop is logged, without its traceback"
    failed = [r for r in task_run_records if "ThrottlingException" in r.getMessage()]
    assert failed and not any(r.exc_info for r in failed), "the step's error is logged, without its traceback"
    assert read_back(aws)[0] == ALL_CANARY


def test_rollway_finalize_stopped_by_a_refused_step_says_it_once_as_the_statement_to_grant(aws, capsys, monkeypatch):
    """A refusal is not retried, so the task engine logs no failure with its exception, only its
    "Finished in state Failed(... AccessDeniedException ...)" line: that ERROR line, AWS's bare
    refusal, stood above the command's own line, which says it as the policy statement to grant."""
    import flows.finalize
    from rollway.cli import app

    blocks = saved_blocks(aws)
    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    monkeypatch.setattr(flows.finalize, "load_environment", lambda *args: env)
    ecs = aws.get_client("ecs")

    def refuse(model, params, **_):
        if model.name == "UpdateService":
            raise ClientError({"Error": {"Code": "AccessDeniedException",
                                         "Message": "not authorized to perform: ecs:UpdateService"}}, "UpdateService")

    console = prefect_console(monkeypatch)
    ecs.meta.events.register("before-parameter-build.*", refuse)
    try:
        code = app(["finalize", "--targets-block", blocks, "--credentials-block", blocks], result_action="return_value")
    finally:
        ecs.meta.events.unregister("before-parameter-build.*", refuse)
    errors = [r.getMessage() for r in console if r.levelno >= logging.ERROR]
    assert not errors, errors
    assert code == 1
    err = capsys.readouterr().err
    assert "error: finalize stopped while it tried to point webordinary-edit-service at" in err, err
    assert "statement PointAndScaleTheTwoServices" in err, err


def test_rollway_finalize_stamps_the_ledger_on_the_clock_the_rollout_ran_on(aws, capsys):
    """`rollway up` runs its flows on a 60x clock: the command ran finalize on real time, so its
    entries came hours before the promotion they follow, in `rollway status` and the report. A
    promoted rollout has no owner left to ask; the runs tagged with it say which clock it ran on."""
    from prefect.client.orchestration import get_client
    from prefect.states import Completed

    from rollway.cli import app
    from rollway.rollout_tags import rollout_tag
    from tests.flows.test_abort_clock import stand_in

    blocks = saved_blocks(aws)
    clock = ClockSettings(speed=60.0, anchor=time.time() - 3600)  # an hour into `rollway up`
    env, _, _ = promote_by_hand(aws, "start", "promote", "watched", clock=clock)
    promoted = env.ledger.get(aws.targets.canary_service)
    with get_client(sync_client=True) as client:
        client.create_flow_run(stand_in, parameters={"clock": clock.model_dump(mode="json")},
                               tags=[rollout_tag(promoted.rollout_id)], state=Completed())

    options = ["--actor", "carol", "--targets-block", blocks, "--credentials-block", blocks]
    assert app(["finalize", *options], result_action="return_value") == 0, capsys.readouterr()
    history = env.ledger.get(aws.targets.canary_service).history
    stamped = [(t.kind, t.at) for t in history]
    assert [kind for kind, _ in stamped][-2:] == ["finalize-start", "finalized"], stamped
    assert history[-2].at >= history[-3].at and history[-1].at >= history[-2].at, stamped


def test_rollway_finalize_unrecorded_on_a_service_no_promotion_reached_claims_none(aws, capsys):
    """A freshly provisioned service (both services on one task definition, the canary at 0)
    looks to AWS exactly like a finalized promotion: the command said one was finalized."""
    from rollway.cli import app

    blocks = saved_blocks(aws)
    options = ["--unrecorded", "--actor", "carol", "--targets-block", blocks, "--credentials-block", blocks]
    assert app(["finalize", *options], result_action="return_value") == 0
    out = capsys.readouterr().out
    assert "nothing to finalize" in out and "already finalized" not in out and "finalized the" not in out, out
    assert read_back(aws)[0] == ALL_STABLE
    # Said once, as the closing line, which says what was found: it was also printed as a step.
    assert out.count("nothing to finalize") == 1, out
    closing = out.strip().splitlines()[-1]
    t = aws.targets
    assert closing.startswith("nothing to finalize: "), out
    assert f"{t.stable_service} runs arn:aws:ecs:" in closing and "carries 100% of the traffic" in closing, closing
    assert f"{t.canary_service} is at 0 tasks on the same task definition" in closing, closing


@pytest.mark.parametrize(("options", "message"), [
    (["--actor", "   "], "--actor '   ': actor must name who"),
    (["--actor", "x" * 500], "--actor 'xxx"),
    # As --approver: the name goes as typed into the ledger, the notice and the run's log.
    (["--actor", "carol\x1b]0;pwned\x07"], "--actor 'carol\\x1b]0;pwned\\x07': actor must be a name on one line"),
    (["--actor", "alice\nRollout r2, finalized by bob"], "--actor 'alice\\nRollout r2, finalized by bob': actor must"),
    # A byte that is not UTF-8 arrives as a lone surrogate: no flow run's parameters hold it.
    (["--actor", "jos\udce9"], "actor is not valid UTF-8 text (character 4"),
    (["--stable-timeout-seconds", "0"], "--stable-timeout-seconds 0: must be a positive"),
    (["--stable-timeout-seconds", "nan"], "--stable-timeout-seconds nan"),
    # A "wait for ever" used to pass, and --unrecorded died with an OverflowError after reading AWS.
    (["--stable-timeout-seconds", "1e12", "--unrecorded"], "at most 86400 (a day)"),
    (["--healthy-timeout-seconds", "-5"], "--healthy-timeout-seconds -5: must be a positive"),
    (["--verify-timeout-seconds", "0"], "--verify-timeout-seconds 0: must be a positive"),
])
def test_rollway_finalize_refuses_bad_options_before_any_call(monkeypatch, capsys, options, message):
    import flows.env
    from rollway.cli import app, ops

    monkeypatch.setattr(ops, "load_account", too_early)
    monkeypatch.setattr(flows.env, "load_clients", too_early)
    assert app(["finalize", *options], result_action="return_value") == 2
    assert message in capsys.readouterr().err


def test_rollway_finalize_without_actor_where_the_os_has_no_user_name_says_to_pass_one(monkeypatch, capsys):
    """A container run under a uid with no passwd entry and no USER/LOGNAME: getpass.getuser()
    raises, and the command died with a KeyError traceback."""
    import pwd

    import flows.env
    from rollway.cli import app, ops

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.setattr(ops, "load_account", too_early)
    monkeypatch.setattr(flows.env, "load_clients", too_early)
    assert app(["finalize"], result_action="return_value") == 2
    assert "pass --actor" in capsys.readouterr().err


# --- What finalize decides, on hand-made states (pure) ------------------------------------


def _state(td: str, desired: int) -> ServiceState:
    return ServiceState(name="svc", task_definition=td, desired=desired, running=desired)


def _record(*kinds: str) -> RolloutRecord:
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=100)], monitor_seconds=0)
    return RolloutRecord(service="svc", rollout_id="20260101T000000Z-00000000", image=spec.image,
                         spec_json=spec.model_dump_json(), phase=RolloutPhase.PROMOTED, weights=ALL_CANARY,
                         canary_task_definition="app:2", stable_desired=3,
                         history=tuple(Transition(at=float(i), kind=k, actor="t") for i, k in enumerate(kinds)))


def _plan(record, live, stable, canary):
    spec = RolloutSpec.for_rollback(record.spec_json)
    return plan_finalize(record, spec, live=live, stable=stable, canary=canary, targets=Targets())


def test_the_stable_service_gets_at_least_the_capacity_the_canary_carries_the_traffic_with():
    assert _plan(_record("promote"), ALL_CANARY, _state("app:1", 0), _state("app:2", 5)).stable_desired == 5
    assert _plan(_record("promote"), ALL_CANARY, _state("app:1", 0), _state("app:2", 2)).stable_desired == 3


def test_traffic_on_the_canary_after_a_finalize_is_another_rollouts_and_is_left_alone():
    """A `canary` flow run (which keeps no ledger) mid-way after the last finalize: moving its
    version onto the stable service would put an unjudged version in production."""
    finalized = _record("promote", "finalize-start", "finalized")
    with pytest.raises(FinalizeRefused, match="another rollout"):
        _plan(finalized, Weights.canary_at(25), _state("app:2", 3), _state("app:3", 1))


@pytest.mark.parametrize("record", [None, _record("promote").model_copy(update={"phase": RolloutPhase.ROLLED_BACK})],
                         ids=["no-record", "rolled-back-record"])
def test_a_split_the_ledger_does_not_record_is_not_sent_to_rollway_abort(record):
    """With no open rollout in the ledger, a 25% split is a `canary` flow run's (or a hand edit's):
    `rollway abort` refuses it ("nothing to abort"), yet the refusal said to run it."""
    spec = RolloutSpec.for_rollback(record.spec_json) if record is not None else None
    with pytest.raises(FinalizeRefused, match="carries 25% of the traffic") as refused:
        plan_finalize(record, spec, live=Weights.canary_at(25), stable=_state("app:1", 3), canary=_state("app:3", 1),
                      targets=Targets())
    assert "roll it back (`rollway abort`)" not in str(refused.value)
    assert "`canary` flow" in str(refused.value) and "roll it back with the `rollback` flow" in str(refused.value)


@pytest.mark.parametrize(("speed", "said"), [(60.0, "about 50 wall seconds from now"), (1.0, None)])
def test_a_window_still_open_says_when_it_closes_in_wall_time_under_a_fast_clock(speed, said):
    """Under `rollway up`'s 60x clock the refusal said only "still open (until 01:00:00 UTC,
    rollout clock)", an hour ahead of the wall clock: nothing said the window closes in under a
    wall minute, nor when to run finalize again."""
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=100)], monitor_seconds=3600)
    record = _record("promote").model_copy(update={"spec_json": spec.model_dump_json(), "monitor_until": 3600.0})
    with pytest.raises(FinalizeRefused, match="monitoring window is still open") as refused:
        plan_finalize(record, spec, live=ALL_CANARY, stable=_state("app:1", 0), canary=_state("app:2", 3),
                      targets=Targets(), now=600.0, speed=speed)
    message = " ".join(str(refused.value).split())
    if said is None:
        assert "wall" not in message, message  # at real time the rollout clock is the wall clock
    else:
        assert f"rollout clock) (the rollout clock runs 60x wall time: {said})" in message, message


def test_a_window_still_open_says_its_length_to_the_second_not_in_fractions_of_a_minute():
    """A window of 86399.4 s (a day, less a fraction of a second) was refused as "its 1439.99-minute
    monitoring window is still open": a figure nobody gave, in a unit nobody counts a day in, where
    the window's own end says "23 hours 59 minutes 59 seconds of monitoring". Said so here too."""
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=100)], monitor_seconds=86399.4)
    record = _record("promote").model_copy(update={"spec_json": spec.model_dump_json(), "monitor_until": 86399.4})
    with pytest.raises(FinalizeRefused, match="monitoring window is still open") as refused:
        plan_finalize(record, spec, live=ALL_CANARY, stable=_state("app:1", 0), canary=_state("app:2", 3),
                      targets=Targets(), now=600.0)
    message = " ".join(str(refused.value).split())
    assert ("its monitoring window is still open (23 hours 59 minutes 59 seconds from then, until 1970-01-01 "
            "23:59:59 UTC, rollout clock)") in message, message
    assert "1439.99" not in message, message


def test_traffic_moved_back_by_hand_without_finalize_is_refused():
    with pytest.raises(FinalizeRefused, match="moved the traffic back by hand"):
        _plan(_record("promote"), ALL_STABLE, _state("app:1", 3), _state("app:2", 3))
    # ...unlike a finalize that moved it itself and stopped.
    resumed = _plan(_record("promote", "finalize-start"), ALL_STABLE, _state("app:2", 3), _state("app:2", 3))
    assert resumed.action == "after-traffic"


def test_the_flow_refuses_bad_parameters_before_loading_anything(monkeypatch):
    import flows.finalize

    monkeypatch.setattr(flows.finalize, "load_environment", too_early)
    for bad in ({"actor": " "}, {"stable_timeout_seconds": 0}, {"verify_timeout_seconds": math.inf},
                {"stable_timeout_seconds": 1e12}):
        state = finalize(**bad, return_state=True)
        assert state.is_failed() and "Validation of flow parameters failed" in state.message, bad


# --- A wait that runs out of time ------------------------------------------------------


def stable_without_healthy_targets(aws) -> None:
    """The stable target group left with no target, as when the promoted version's new tasks fail
    their health checks: the load balancer never reports one healthy."""
    elb = aws.get_client("elbv2")
    group = elb.describe_target_groups(Names=[aws.targets.stable_target_group])["TargetGroups"][0]["TargetGroupArn"]
    registered = [d["Target"] for d in elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]]
    if registered:
        elb.deregister_targets(TargetGroupArn=group, Targets=registered)


def test_rollway_finalize_whose_health_wait_runs_out_says_the_setting_what_was_done_and_how_to_give_it_longer(
        aws, capsys):
    """The wait's own words were all: "RuntimeError: the stable target group has no healthy targets
    after 300 s", with no word of which setting bounds it, nor that the stable service had been
    pointed at the release already, and the command had no option to give it longer."""
    from rollway.cli import app

    blocks = saved_blocks(aws)
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    stable_without_healthy_targets(aws)
    t = aws.targets
    code = app(["finalize", "--healthy-timeout-seconds", "0.1", "--targets-block", blocks, "--credentials-block",
                blocks], result_action="return_value")
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    assert (f"error: finalize stopped while it tried to wait until {t.stable_service} is steady with healthy targets: "
            "the stable target group has no healthy targets after 0.1 s (healthy_timeout_seconds); refusing to send "
            f"traffic to it. {t.stable_service} was pointed at {release} with 2 tasks before the wait, and keeps them; "
            f"the load balancer was not changed: {t.canary_service} still serves 100% of the traffic on {release}. "
            "Run finalize again (`rollway finalize` or the finalize deployment) once that step can succeed: it carries "
            "on from where it stopped; if it only needs more time, give it more than the 0.1 s it had: "
            "`--healthy-timeout-seconds` (the finalize deployment's healthy_timeout_seconds)") in err, err
    assert "RuntimeError" not in err, err
    weights, stable, canary = read_back(aws)
    assert weights == ALL_CANARY and canary.desired == 2 and stable.task_definition == release


def promoted_on_fakes(ledger=None):
    """The state a promotion leaves, on the fakes: 2.0.0 on the canary (4 tasks) carrying everything,
    the stable service at 0, and its rollout in ``ledger`` (a FakeLedger unless given), promoted.

    Returns:
        (env, the promoted task definition).
    """
    from tests.flows.fake_env import fake_environment
    from rollway.fakes import FakeLedger

    env = fake_environment()
    env.ledger = FakeLedger() if ledger is None else ledger
    t = env.targets
    release = env.deployer.register_revision("webordinary/edit-container:2.0.0", stable_td_of(env))
    env.deployer.update_service(t.canary_service, task_definition=release, desired=4)
    env.deployer.update_service(t.stable_service, desired=0)
    env.router.weights = ALL_CANARY
    now = env.clock.now()
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=5), Stage(weight=100)],
                       monitor_seconds=600)
    record = RolloutRecord(
        service=t.canary_service, rollout_id=new_rollout_id(now), image=spec.image, spec_json=spec.model_dump_json(),
        phase=RolloutPhase.PROMOTED, weights=ALL_CANARY, canary_task_definition=release, stable_desired=4,
        previous_task_definition=stable_td_of(env), monitor_until=now + 600,
        history=tuple(Transition(at=now, kind=kind, actor="test") for kind in ("start", "promote", "decommission")))
    env.ledger.create(record, owner="process/test", now=now, lease_seconds=0)
    env.ledger.release(t.canary_service, owner="process/test")
    return env, release


# 600 s, the default, is a wait the service's error says in minutes ("10 min"): the setting is named
# beside the figure it was given in all the same.
@pytest.mark.parametrize("seconds", [45, 600])
def test_a_stable_service_not_steady_in_time_says_its_setting_and_how_to_give_it_longer(seconds):
    """On the fakes: moto's ECS runs every task it is asked for at once."""
    env, release = promoted_on_fakes()
    t = env.targets
    env.deployer.unstable.add(t.stable_service)
    with pytest.raises(FinalizeIncomplete) as stopped:
        finalize_on(env, stable_timeout_seconds=seconds)
    said = str(stopped.value)
    assert (f"wait until {t.stable_service} is steady with healthy targets: services {t.stable_service} not stable "
            f"after {seconds} s (stable_timeout_seconds). {t.stable_service} was pointed at {release} with 4 tasks "
            "before the wait, and keeps them;") in said, said
    assert said.endswith(f"if it only needs more time, give it more than the {seconds} s it had: "
                         "`--stable-timeout-seconds` (the finalize deployment's stable_timeout_seconds)"), said
    assert env.router.weights == ALL_CANARY


def stable_td_of(env) -> str:
    return env.deployer.describe(env.targets.stable_service).task_definition


@flow
def finalize_briefly(env, ledger_read_seconds: float = 30.0, verify_timeout_seconds: float = 5.0):
    return run_finalize(env, actor="alice", stable_timeout_seconds=30, verify_timeout_seconds=verify_timeout_seconds,
                        ledger_read_seconds=ledger_read_seconds)


# How long a call that never answers here is held at most (each test releases it as it ends): far
# past the bounds that end a wait on it, and past the seconds a loaded machine adds to a run.
HELD_SECONDS = 30.0
# How long a finalize stopped at a bound of a fraction of a second may take here: a run held by the
# call it should have given up on lasts HELD_SECONDS.
STOPS_WITHIN = 15.0


class HangingLedger(FakeLedger):
    """A ledger table that stops answering reads from the ``hang_from``-th on (held until
    ``answering`` is set, or for at most ``HELD_SECONDS``, so that a run without a bound ends all
    the same)."""

    def __init__(self, hang_from: int) -> None:
        super().__init__()
        self.hang_from, self.reads = hang_from, 0
        self.answering = threading.Event()

    def get(self, service: str):
        self.reads += 1
        if self.reads >= self.hang_from:
            self.answering.wait(HELD_SECONDS)
        return super().get(service)


def test_a_ledger_that_does_not_answer_the_first_read_stops_finalize_at_its_bound_having_changed_nothing():
    """Its reads of the ledger had no bound (the run's clients retry for minutes), where
    `rollway finalize`'s own read has one: a table that throttled or hung held the run."""
    ledger = HangingLedger(hang_from=1)
    env, release = promoted_on_fakes(ledger)
    t = env.targets
    began = time.monotonic()
    try:
        with pytest.raises(FinalizeIncomplete) as stopped:
            finalize_briefly(env, ledger_read_seconds=0.2)
    finally:
        ledger.answering.set()
    assert time.monotonic() - began < STOPS_WITHIN
    said = str(stopped.value)
    assert said.startswith("finalize stopped while it tried to read the rollout, the load balancer and the services: "
                           f"Unanswered: DynamoDB (the ledger, table {t.rollouts_table!r}) did not answer within 0.2 s. Nothing was "
                           "changed: the traffic and the services are as they were. Run finalize again"), said
    assert env.router.weights == ALL_CANARY and stable_td_of(env) != release


def test_a_ledger_that_stops_answering_after_the_traffic_moved_stops_finalize_saying_so_and_the_next_run_finishes():
    """Once the traffic moved, the run reads the ledger again (has a new rollout taken the canary?):
    a table that did not answer held the run, and the rollout's lease, with no end."""
    ledger = HangingLedger(hang_from=2)
    env, release = promoted_on_fakes(ledger)
    t = env.targets
    try:
        with pytest.raises(FinalizeIncomplete) as stopped:
            finalize_briefly(env, ledger_read_seconds=0.2)
    finally:
        ledger.answering.set()
    said = str(stopped.value)
    assert (f"finalize stopped while it tried to scale {t.canary_service} to 0: Unanswered: DynamoDB (the ledger, table "
            f"{t.rollouts_table!r}) did not answer within 0.2 s. The traffic is on {t.stable_service}, which runs the "
            f"promoted {release}: users see the promoted version. Run finalize again") in said, said
    assert env.router.weights == ALL_STABLE and stable_td_of(env) == release
    assert env.deployer.describe(t.canary_service).desired == 4, "not scaled down: the run stopped before it"
    record = FakeLedger.get(ledger, t.canary_service)
    assert record.owner is None, "the lease was given back"
    ledger.hang_from = math.inf
    again = finalize_briefly(env)
    assert again.outcome == "finalized" and env.deployer.describe(t.canary_service).desired == 0


class OverwrittenRouter(FakeRouter):
    """A load balancer whose rule another writer sets to ``then`` right after each write."""

    def __init__(self, router: FakeRouter, then: Weights) -> None:
        self.__dict__.update(router.__dict__)
        self.then = then

    def set_weights(self, weights: Weights) -> Weights:
        held = super().set_weights(weights)
        self.weights = self.then
        return held


@pytest.mark.parametrize(("then", "said"), [
    (ALL_CANARY, "the load balancer held 0/100 (stable/canary), not the 100/0 this run set, when its read-back ended "
                 "after 0.2 s (verify_timeout_seconds): the weights it held before the write, which has not shown yet "
                 "or did not land."),
    (Weights(stable=50, canary=50), "the load balancer held 50/50 (stable/canary), not the 100/0 this run set, when its "
                                    "read-back ended after 0.2 s (verify_timeout_seconds): neither those nor the 0/100 "
                                    "it held before the write, so another writer (a person, or another run) most "
                                    "likely changed the rule since; find who before running finalize again."),
], ids=["not-shown", "another-writer"])
def test_a_traffic_move_not_read_back_says_what_was_read_against_what_was_set_how_long_and_why(then, said):
    """A read-back that ran out said only "load balancer holds weights 0/100 (stable/canary), expected
    100/0": not how long it had waited, under which setting, nor whether more time could help."""
    env, release = promoted_on_fakes()
    env.router = OverwrittenRouter(env.router, then)
    with pytest.raises(FinalizeIncomplete) as stopped:
        finalize_briefly(env, verify_timeout_seconds=0.2)
    message = str(stopped.value)
    assert f"finalize stopped while it tried to move the traffic to the stable target group: {said}" in message, message
    more = "give it more than the 0.2 s it had: `--verify-timeout-seconds`"
    assert (more in message) == (then == ALL_CANARY), message


# --- A slow or silent AWS (or Prefect API): every wait bounded, and said while it lasts -------


@flow
def finalize_bounded(env, verify_timeout_seconds: float = 0.3, write_seconds: float | None = None,
                     unrecorded: bool = False, canary_runs=None):
    bounds = {} if write_seconds is None else {"write_seconds": write_seconds}
    return run_finalize(env, actor="alice", stable_timeout_seconds=30, verify_timeout_seconds=verify_timeout_seconds,
                        ledger_read_seconds=0.2, unrecorded=unrecorded, canary_runs=canary_runs or tuple, **bounds)


def said_while_waiting(caplog) -> str:
    return " ".join(r.getMessage() for r in caplog.records if r.getMessage().startswith("still waiting for "))


def test_an_ecs_that_does_not_answer_a_describe_stops_finalize_at_its_read_bound_naming_the_setting(
        monkeypatch, caplog):
    """The first step's DescribeServices had no bound (the run's clients retry for minutes, the task
    twice more): a throttled or silent ECS held `rollway finalize` without a word."""
    import rollway.deadline as deadline

    env, release = promoted_on_fakes()
    t = env.targets
    answering = threading.Event()
    real = env.deployer.describe

    def silent(service):
        answering.wait(HELD_SECONDS)
        return real(service)

    env.deployer.describe = silent
    monkeypatch.setattr(deadline, "WAITING_SAID_EVERY_SECONDS", 0.1)
    began = time.monotonic()
    try:
        with caplog.at_level(logging.INFO), pytest.raises(FinalizeIncomplete) as stopped:
            finalize_bounded(env, verify_timeout_seconds=2.0)
    finally:
        answering.set()
    assert time.monotonic() - began < STOPS_WITHIN
    said = str(stopped.value)
    assert said.startswith("finalize stopped while it tried to read the rollout, the load balancer and the services: "
                           f"ECS (service {t.stable_service!r}) did not answer within 2 s (verify_timeout_seconds: "
                           "2 s). Nothing was changed"), said
    assert said.endswith("give it more than the 2 s it had: `--verify-timeout-seconds` (the finalize deployment's "
                         "verify_timeout_seconds)"), said
    # 2 s, not a fraction of one: under load the bound ran out before the waiting line was said.
    assert re.search(rf"still waiting for ECS \(service {re.escape(repr(t.stable_service))}\) after \d+ s of 2 s",
                     said_while_waiting(caplog)), said_while_waiting(caplog)
    assert env.router.weights == ALL_CANARY and stable_td_of(env) != release


def test_a_prefect_api_that_does_not_answer_which_canary_runs_are_going_stops_an_unrecorded_finalize_at_its_bound():
    """The query for unended `canary` flow runs (the Prefect API, and each run's targets block) had no bound."""
    env, release = promoted_on_fakes(FakeLedger())
    FakeLedger.__init__(env.ledger)  # the ledger records nothing: a `canary` flow's promotion
    answering = threading.Event()

    def silent():
        answering.wait(5)
        return []

    try:
        with pytest.raises(FinalizeIncomplete) as stopped:
            finalize_bounded(env, unrecorded=True, canary_runs=silent)
    finally:
        answering.set()
    said = str(stopped.value)
    assert ("finalize stopped while it tried to read the rollout, the load balancer and the services: the Prefect API "
            "(the `canary` flow's runs not ended) did not answer within 0.3 s (verify_timeout_seconds: 0.3 s). Nothing "
            "was changed") in said, said
    assert env.router.weights == ALL_CANARY and stable_td_of(env) != release


class SilentApi:
    """A Prefect API that takes connections and never answers; counts those its clients still hold
    open. ``reached`` is set once a client has connected."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/api"
        self.opened = 0
        self.open = 0
        self.reached = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed
            with self.lock:
                self.opened += 1
                self.open += 1
            self.reached.set()
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            try:
                while conn.recv(4096):
                    pass  # read the request, never answer it
            except OSError:
                pass
        with self.lock:
            self.open -= 1


@pytest.fixture
def silent_api():
    api = SilentApi()
    yield api
    api.server.close()


class StillUntil:
    """Stands in for the ``time`` module in flows.finalize: ``monotonic`` stands still until
    ``moving`` is set, then runs as the wall clock does."""

    def __init__(self, moving: threading.Event) -> None:
        self.moving, self.held = moving, time.monotonic()

    def monotonic(self) -> float:
        return time.monotonic() if self.moving.is_set() else self.held


def test_a_canary_runs_query_given_up_on_at_its_bound_goes_on_no_longer_after_the_run_stops(silent_api, monkeypatch):
    """The query for unended `canary` flow runs, given up on at verify_timeout_seconds, went on in
    its thread on the run's own Prefect client (60 s a request, retried with backoff) after the
    run had stopped and its flow run had ended."""
    import flows.finalize
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from flows.env import CANARY_FLOW
    from flows.finalize import runs_within

    env, release = promoted_on_fakes(FakeLedger())
    FakeLedger.__init__(env.ledger)  # the ledger records nothing: a `canary` flow's promotion
    querying = "rollway-read-the Prefect API (the `canary` flow's runs not ended)"
    # The query's own bound counts from its request reaching the API: on a loaded machine its
    # thread had not connected by the run's 0.3 s, and sent nothing (its time was up), so the
    # request in flight at the stop, which this test is about, was never made.
    monkeypatch.setattr(flows.finalize, "time", StillUntil(silent_api.reached))

    def query():
        with temporary_settings(updates={PREFECT_API_URL: silent_api.url}):
            return runs_within(CANARY_FLOW, env.targets, 0.3, starting_within_seconds=60)

    with pytest.raises(FinalizeIncomplete) as stopped:
        finalize_bounded(env, unrecorded=True, canary_runs=query)
    # Given up on by the run, or (a thread starved past its bound) ended by the query's own bound
    # first, whose words name the API's address: either way the stop names the Prefect API and the bound.
    said = str(stopped.value)
    assert "the Prefect API " in said and "did not answer within 0.3 s (verify_timeout_seconds: 0.3 s)" in said, said

    def settled() -> bool:
        return (silent_api.opened >= 1 and not silent_api.open
                and not any(t.name == querying for t in threading.enumerate()))

    ends = time.monotonic() + 20.0  # a wide margin for a loaded machine: the run's client held it 60 s and more
    while time.monotonic() < ends and not settled():
        time.sleep(0.02)
    assert silent_api.opened >= 1, "the query never reached the Prefect API"
    assert silent_api.open == 0 and not [t for t in threading.enumerate() if t.name == querying]
    assert env.router.weights == ALL_CANARY and stable_td_of(env) != release


def test_a_prefect_api_that_refuses_the_connection_is_named_with_its_address_and_setting(monkeypatch):
    """An unreachable Prefect API stopped finalize's first reads with httpx's own words ("ConnectError:
    All connection attempts failed"), which name neither the Prefect API nor where it was looked
    for: a person could not tell it from an AWS endpoint, nor which setting to correct."""
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings
    from flows.env import CANARY_FLOW
    from flows.finalize import runs_within

    import httpcore._sync.connection

    # No real wait between the transport's tries of the refused connection (0.5 s, then 1 s).
    monkeypatch.setattr(httpcore._sync.connection, "RETRIES_BACKOFF_FACTOR", 0)
    env, release = promoted_on_fakes(FakeLedger())
    FakeLedger.__init__(env.ledger)  # the ledger records nothing: a `canary` flow's promotion
    with socket.socket() as closed:  # a port nothing listens on once it is closed
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/api"

    def query():
        with temporary_settings(updates={PREFECT_API_URL: url}):
            return runs_within(CANARY_FLOW, env.targets, 5.0, starting_within_seconds=60)

    with pytest.raises(FinalizeIncomplete) as stopped:
        finalize_bounded(env, verify_timeout_seconds=5.0, unrecorded=True, canary_runs=query)
    said = str(stopped.value)
    assert f"the Prefect API at {url} (PREFECT_API_URL) could not be reached" in said, said
    assert "Nothing was changed" in said, said
    assert env.router.weights == ALL_CANARY and stable_td_of(env) != release


@pytest.mark.parametrize(("seconds", "said"), [(0.3, "0.3 s"), (0.25, "0.25 s")])
def test_an_ecs_write_that_does_not_answer_is_said_while_it_waits_and_stops_finalize_at_its_bound(
        monkeypatch, caplog, seconds, said):
    """UpdateService had no bound and nothing was said while it lasted: the run's clients ask a
    call again for a minute or two, the task three times, and a DNS lookup takes no timeout at all.
    Its bound is said as given: rounded half to even to the tenth, 0.25 s read "0.2 s"."""
    import rollway.deadline as deadline

    env, release = promoted_on_fakes()
    t = env.targets
    answering = threading.Event()
    real = env.deployer.update_service

    def silent(service, **changes):
        answering.wait(5)
        return real(service, **changes)

    env.deployer.update_service = silent
    monkeypatch.setattr(deadline, "WAITING_SAID_EVERY_SECONDS", 0.1)
    try:
        with caplog.at_level(logging.INFO), pytest.raises(FinalizeIncomplete) as stopped:
            finalize_bounded(env, write_seconds=seconds)
    finally:
        answering.set()
    stop = str(stopped.value)
    assert (f"finalize stopped while it tried to point {t.stable_service} at {release}: Unanswered: ECS (UpdateService on "
            f"{t.stable_service!r}) did not answer within {said}; the write may still land, and finalize reads what it "
            "finds when run again.") in stop, stop
    assert f"still waiting for ECS (UpdateService on {t.stable_service!r}) after 0 s of {said}" in said_while_waiting(
        caplog)
    assert env.router.weights == ALL_CANARY


def stopped_on_a_lost_answer(service: str):
    """A finalize stopped at its UpdateService of ``service`` (the stable or the canary service),
    given up on after 0.3 s though it landed at once (its answer lost).

    Returns:
        (env, the promoted task definition, the UpdateService calls the next run sends: (service, changes)).
    """
    env, release = promoted_on_fakes()
    answering, sent = threading.Event(), []
    real = env.deployer.update_service

    def landed_answer_lost(name, **changes):
        sent.append((name, changes))
        done = real(name, **changes)
        if name == service:
            answering.wait(5)
        return done

    env.deployer.update_service = landed_answer_lost
    try:
        with pytest.raises(FinalizeIncomplete, match="the write may still land"):
            finalize_bounded(env, write_seconds=0.3)
    finally:
        answering.set()
    sent.clear()
    return env, release, sent


def test_a_finalize_after_one_whose_stable_service_update_was_given_up_reads_that_it_landed_and_does_not_send_it_again():
    """The first run gave up on its UpdateService of the stable service, which landed all the same;
    the next run sent it again blindly and said nothing of what the first had left."""
    env, release, sent = stopped_on_a_lost_answer(Targets().stable_service)
    t = env.targets
    assert stable_td_of(env) == release and env.router.weights == ALL_CANARY  # it landed
    result = finalize_bounded(env)
    assert result.outcome == "finalized" and env.router.weights == ALL_STABLE
    assert [name for name, _ in sent] == [t.canary_service], sent  # the stable service's update is not sent again
    found = f"{t.stable_service} already runs {release} with 4 tasks, where the finalize begun at "
    landed = "set out to point it: not sent again"
    assert any(found in step and landed in step for step in result.steps), result.steps
    record = env.ledger.get(t.canary_service)
    starts = [tr for tr in record.history if tr.kind == "finalize-start"]
    assert len(starts) == 2 and found in starts[-1].comment and landed in starts[-1].comment, starts[-1].comment


def test_a_finalize_after_one_whose_canary_scale_down_was_given_up_reads_that_it_landed_and_says_its_notice_may_repeat():
    """The first run gave up on scaling the canary to 0, which landed; the next run scaled it again
    blindly and sent a notice without saying the first may have sent one."""
    env, release, sent = stopped_on_a_lost_answer(Targets().canary_service)
    t = env.targets
    assert env.deployer.describe(t.canary_service).desired == 0 and env.router.weights == ALL_STABLE
    sent.clear()
    result = finalize_bounded(env)
    assert result.outcome == "finalized" and sent == [], sent  # nothing sent to ECS again
    assert any(f"{t.canary_service} is at 0 tasks already, as the finalize begun at " in step
               and "set out to leave it: not sent again" in step
               for step in result.steps), result.steps
    subject, body = env.notifier.messages[-1]
    assert "This notice may repeat one the finalize begun at " in body, body
    # Its subject says so as every notice that may repeat one does: a mail client shows subjects alone.
    assert subject == f"{REPEAT}Finalized: {t.stable_service}", subject


def test_a_notice_that_may_repeat_an_earlier_runs_sent_once_more_after_a_lost_answer_says_so_once_in_its_subject():
    """Sent once more after SNS lost its answer (``notify_or_repeat``), "May repeat: " is not said twice."""
    from botocore.exceptions import ReadTimeoutError

    from rollway.aws.errors import AnswerLost

    env, release, sent = stopped_on_a_lost_answer(Targets().canary_service)
    t, real = env.targets, env.notifier.notify
    lost: list[str] = []

    def answer_lost_once(subject, message):
        message_id = real(subject, message)
        if not lost:
            lost.append(subject)
            raise AnswerLost("SNS Publish", ReadTimeoutError(endpoint_url="https://sns"))
        return message_id

    env.notifier.notify = answer_lost_once
    result = finalize_bounded(env)
    assert result.outcome == "finalized" and result.notification_id and result.notice_refused is None, result
    assert [subject for subject, _ in env.notifier.messages] == [f"{REPEAT}Finalized: {t.stable_service}"] * 2


class SilentUnlessBounded(HangingLedger):
    """A ledger table that stops answering: reads on the run's clients hang (``HELD_SECONDS`` at
    most), while those on clients bounded at ``seconds`` (``reading``) end just past them, as
    botocore's timeouts end such a call."""

    def __init__(self) -> None:
        super().__init__(hang_from=1)
        self.bounds: list[float] = []

    def reading(self, seconds: float):
        self.bounds.append(seconds)

        class Bounded:
            def get(_, service):
                time.sleep(seconds + 0.05)
                raise TimeoutError(f"read timeout after {seconds:g} s")

        return Bounded()


def test_a_ledger_read_given_up_on_leaves_no_read_running():
    """The read given up on at its bound went on in its thread, on the run's clients (six
    attempts of 10 s): for a minute or more after finalize had said it stopped."""
    ledger = SilentUnlessBounded()
    env, release = promoted_on_fakes(ledger)
    try:
        with pytest.raises(FinalizeIncomplete, match="did not answer within 0.2 s"):
            finalize_bounded(env)
        # The bounded read ends 0.05 s past its bound; one on the run's clients is held HELD_SECONDS.
        # Waited on, not slept: a loaded machine ends the thread late.
        ends = time.monotonic() + STOPS_WITHIN
        while (reading := [th.name for th in threading.enumerate() if th.name.startswith("rollway-read-DynamoDB")]) \
                and time.monotonic() < ends:
            time.sleep(0.05)
    finally:
        ledger.answering.set()
    assert reading == [], reading
    assert ledger.bounds == [0.2]


def test_the_wait_for_a_steady_stable_service_says_what_it_waits_for_and_for_how_long(monkeypatch, caplog):
    """Up to stable_timeout_seconds (600 s by default) passed without a line: `rollway finalize`
    looked stuck while ECS started the stable service's tasks."""
    import rollway.deadline as deadline

    env, release = promoted_on_fakes()
    t = env.targets
    real = env.deployer.wait_stable

    def slow(services, timeout_seconds, expected=None):
        time.sleep(0.35)  # ECS starting the tasks
        return real(services, timeout_seconds, expected)

    env.deployer.wait_stable = slow
    monkeypatch.setattr(deadline, "WAITING_SAID_EVERY_SECONDS", 0.1)
    with caplog.at_level(logging.INFO):
        assert finalize_bounded(env).outcome == "finalized"
    said = " ".join(r.getMessage() for r in caplog.records)
    assert (f"waiting up to 30 s (stable_timeout_seconds) for {t.stable_service} to be steady on {release}, then up "
            "to 300 s (healthy_timeout_seconds) for healthy targets in the stable target group") in said, said
    assert (f"still waiting for {t.stable_service} to be steady on {release} after 0 s of 30 s "
            "(stable_timeout_seconds)") in said_while_waiting(caplog)


def test_a_load_balancer_that_does_not_answer_the_first_read_says_how_to_give_the_next_run_longer():
    """The stop named the bound but, unlike the describes beside it, not how to give the next run more."""
    env, release = promoted_on_fakes()
    answering = threading.Event()
    real = env.router.get_weights

    def silent():
        answering.wait(5)
        return real()

    env.router.get_weights = silent
    try:
        with pytest.raises(FinalizeIncomplete) as stopped:
            finalize_bounded(env, verify_timeout_seconds=0.3)
    finally:
        answering.set()
    said = str(stopped.value)
    assert said.startswith("finalize stopped while it tried to read the rollout, the load balancer and the services: "
                           "the load balancer's weights could not be read back within 0.3 s (verify_timeout_seconds): "
                           "Elastic Load Balancing did not answer. Nothing was changed"), said
    assert said.endswith("give it more than the 0.3 s it had: `--verify-timeout-seconds` (the finalize deployment's "
                         "verify_timeout_seconds)"), said
    assert env.router.weights == ALL_CANARY and stable_td_of(env) != release


def test_a_write_is_never_waited_on_past_the_runs_lease_nor_sent_once_it_lapsed(monkeypatch):
    """Each write was given 600 s, the lease beyond the waits 300 s (``ROOM``): a write still
    unanswered when the lease lapsed held the run, and a finalize run again once the refusal's time
    had passed took the rollout over and made the same moves and notice while the first one's write
    was still waited on. A write under the lease is now given up on when the lease lapses, and a
    write due after it is not sent. The lease here is what the waits leave: ``ROOM`` of 0.4 s."""
    import flows.finalize as finalizing

    monkeypatch.setattr(finalizing, "ROOM", 0.4)
    env, release = promoted_on_fakes()
    t = env.targets
    answering = threading.Event()
    real_wait, real_update = env.deployer.wait_stable, env.deployer.update_service

    def all_its_time(services, timeout_seconds, expected=None):
        env.clock.sleep(30 + 300 + 0.3)  # the waits' bounds (stable, healthy, verify), all used
        return real_wait(services, timeout_seconds, expected)

    def silent_on_the_canary(service, **changes):
        if service == t.canary_service:
            answering.wait(HELD_SECONDS)
        return real_update(service, **changes)

    env.deployer.wait_stable, env.deployer.update_service = all_its_time, silent_on_the_canary
    began = time.monotonic()
    try:
        with pytest.raises(FinalizeIncomplete) as stopped:
            finalize_bounded(env)
    finally:
        answering.set()
    assert time.monotonic() - began < STOPS_WITHIN
    said = str(stopped.value)
    assert (f"finalize stopped while it tried to scale {t.canary_service} to 0: Unanswered: ECS (UpdateService on "
            f"{t.canary_service!r}) did not answer within 0.4 s, what was left of this run's lease of the rollout "
            "(it lapses at ") in said, said
    assert "finalize stops rather than wait past it, when another finalize may take the rollout over" in said, said
    assert env.router.weights == ALL_STABLE

    # Lapsed before the traffic move: the load balancer is not written (it was, by a run whose lease
    # another finalize may have taken over), and the canary keeps serving.
    env, release = promoted_on_fakes()
    real_wait = env.deployer.wait_stable

    def past_the_lease(services, timeout_seconds, expected=None):
        env.clock.sleep(30 + 300 + 0.3 + 1.0)
        return real_wait(services, timeout_seconds, expected)

    env.deployer.wait_stable = past_the_lease
    with pytest.raises(FinalizeIncomplete) as stopped:
        finalize_bounded(env)
    said = str(stopped.value)
    assert ("finalize stopped while it tried to move the traffic to the stable target group: Unanswered: Elastic Load "
            "Balancing (ModifyRule, the traffic to 100/0 stable/canary) was not sent: this run's lease of the rollout "
            "lapsed at ") in said, said
    assert env.router.weights == ALL_CANARY, "the traffic was moved after the lease lapsed"
    assert env.deployer.describe(t.canary_service).desired == 4

    # Lapsed after it: the canary's scale-down is not sent.
    env, release = promoted_on_fakes()
    real_set = env.router.set_weights

    def then_past_the_lease(weights):
        moved = real_set(weights)
        env.clock.sleep(30 + 300 + 0.3 + 1.0)
        return moved

    env.router.set_weights = then_past_the_lease
    with pytest.raises(FinalizeIncomplete) as stopped:
        finalize_bounded(env)
    said = str(stopped.value)
    assert (f"ECS (UpdateService on {t.canary_service!r}) was not sent: this run's lease of the rollout lapsed at "
            in said), said
    assert env.router.weights == ALL_STABLE
    assert env.deployer.describe(t.canary_service).desired == 4, "the canary was scaled down after the lease lapsed"


def test_a_stop_at_the_leases_end_does_not_wait_on_giving_the_lease_back_past_it(monkeypatch):
    """A ledger that stops answering once the waits have used the lease: the write of 'finalized'
    is given up on at the lease's end, and giving the lease back was then waited on 600 s more."""
    import flows.finalize as finalizing
    from rollway.fakes import FakeLedger

    class SilentOnceLate(FakeLedger):
        def __init__(self) -> None:
            super().__init__()
            self.silent, self.answering = False, threading.Event()

        def record(self, *args, **kwargs):
            if self.silent:
                self.answering.wait(20)
            return super().record(*args, **kwargs)

        def release(self, *args, **kwargs):
            if self.silent:
                self.answering.wait(20)
            return super().release(*args, **kwargs)

    monkeypatch.setattr(finalizing, "ROOM", 0.4)
    ledger = SilentOnceLate()
    env, release = promoted_on_fakes(ledger)
    real_wait = env.deployer.wait_stable

    def all_its_time(services, timeout_seconds, expected=None):
        env.clock.sleep(30 + 300 + 0.3)  # the waits' bounds (stable, healthy, verify), all used
        ledger.silent = True
        return real_wait(services, timeout_seconds, expected)

    env.deployer.wait_stable = all_its_time
    began = time.monotonic()
    try:
        with pytest.raises(FinalizeIncomplete, match="what was left of this run's lease of the rollout"):
            finalize_bounded(env)
        took = time.monotonic() - began
    finally:
        ledger.answering.set()
    assert took < 8, took  # a wait on the silent ledger takes 20 s; 8 s holds under CI load


@pytest.mark.parametrize("stopped_at", ["point-stable", "record-start"])
def test_a_finalize_resumed_after_many_registrations_takes_the_copy_the_stopped_run_registered(
        aws, ecs_refuses_inactive_revisions, ecs_updates_retried_at_once, stopped_at):
    # Eleven revisions (CI's builds) registered in the family since the copy. Stopped after its start
    # named the copy, the ledger finds it; stopped between the copy's registration and that start,
    # its tag does, among every revision registered since (the newest ten only, it registered another).
    env, release, previous = promote_by_hand(aws, "start", "promote", "decommission")
    aws.get_client("ecs").deregister_task_definition(taskDefinition=release)
    stable_name = aws.targets.stable_service
    if stopped_at == "point-stable":
        finalize_stopped_by(env, aws.get_client("ecs"), "UpdateService", f"point {stable_name} at",
                            when=lambda params: params.get("service") == stable_name)
    else:
        finalize_stopped_by(env, aws.get_client("dynamodb"), "UpdateItem", "record 'finalize-start'",
                            when=lambda params: "finalize-start" in str(params))
    (copy,) = set(active_revisions(aws, release)) - {previous}
    deployer = EcsDeployer(aws.get_client("ecs"), aws.targets)
    others = [deployer.register_revision(f"{aws.topology.repository_uri}:2.0.{i}", previous) for i in range(1, 12)]

    again = finalize_on(env)

    assert again.outcome == "finalized" and ecs_refuses_inactive_revisions == []
    assert read_back(aws)[1].task_definition == copy
    assert any(f"takes {copy}, registered by an earlier finalize" in step for step in again.steps), again.steps
    assert set(active_revisions(aws, release)) - {previous} == {copy, *others}, "no second copy registered"


def test_a_promoted_revision_being_deleted_is_finalized_on_an_identical_copy(aws, ecs_refuses_inactive_revisions):
    # DeleteTaskDefinitions after the deregistration: ECS keeps the revision the canary runs,
    # DELETE_IN_PROGRESS, and points no other service at it. Every finalize stopped at its UpdateService.
    from tests.adapters.test_ecs import being_deleted

    env, release, previous = promote_by_hand(aws, "start", "promote", "decommission")
    being_deleted(aws, release)

    result = finalize_on(env)

    assert result.outcome == "finalized" and ecs_refuses_inactive_revisions == []
    weights, stable, canary = read_back(aws)
    (copy,) = set(active_revisions(aws, release)) - {previous}
    assert (weights, stable.task_definition, canary.desired) == (ALL_STABLE, copy, 0)
    start = env.ledger.get(aws.targets.canary_service).last_transition("finalize-start")
    assert start.stable_task_definition == copy
    assert f"{release} was deleted (DELETE_IN_PROGRESS)" in start.comment, start.comment


def test_a_rollout_held_by_its_own_run_that_died_after_the_decommission_says_what_to_do():
    """The rollout's run recorded the decommission and died holding its lease: finalize said a
    finalize held it ("two finalizes at once would each move the services") and that running
    again "carries on from where that run stopped", which no finalize had begun."""
    env, release = promoted_on_fakes()
    t = env.targets
    held = env.ledger.acquire(t.canary_service, owner="flow-run/4f2a", now=env.clock.now(), lease_seconds=600,
                              wall=env.wall())
    until = utc(held.lease_expires)
    with pytest.raises(FinalizeRefused) as refused:
        finalize_on(env)
    said = str(refused.value)
    assert ("is held by flow-run/4f2a, which has recorded no finalize of it: the rollout's own run, a rollback, or a "
            "finalize that has not recorded its start yet (its newest entry: 'decommission' at ") in said, said
    assert "two finalizes" not in said and "carries on from where" not in said, said
    assert (f"If that run is still going (`rollway status` shows the holder), let it end: a run gives its lease back "
            f"as it ends. If it died, run finalize again after {until} (wall clock), when its lease has lapsed. Nothing "
            "was changed") in said, said
    assert env.router.weights == ALL_CANARY and env.deployer.describe(t.stable_service).desired == 0


def test_a_refusal_for_a_held_rollout_says_which_clock_each_of_its_times_is_on():
    """Under `rollway up`'s 60x clock the ledger's entries are stamped on the rollout clock, hours
    ahead of the wall clock the lease runs on: the refusal said the lease ran "until 08:10 UTC"
    beside a newest entry "at 14:00 UTC", unlabelled, a lease that seemed to have lapsed hours
    before the entry it should have outlived."""
    env, release = promoted_on_fakes()
    t = env.targets
    wall = env.clock.now() - 6 * 3600  # the rollout clock runs 6 h ahead of the wall clock
    env.wall = lambda: wall
    held = env.ledger.acquire(t.canary_service, owner="flow-run/4f2a", now=env.clock.now(), lease_seconds=600,
                              wall=wall)
    last = held.history[-1]
    with pytest.raises(FinalizeRefused) as refused:
        finalize_on(env)
    said = str(refused.value)
    assert f"whose lease runs until {utc(held.lease_expires)} (wall clock; 600 s from now)" in said, said
    assert f"(its newest entry: 'decommission' at {utc(last.at)} on the rollout clock, by test)" in said, said
    assert f"run finalize again after {utc(held.lease_expires)} (wall clock), when its lease has lapsed" in said, said


class _Killed(BaseException):
    """Stands for a finalize's process killed: it neither goes on nor gives its lease back."""


def dies_at(monkeypatch, env, module, name: str, died: BaseException) -> None:
    """The next finalize's process dies (``died`` raised) at ``module.name``: nothing of it runs
    after that, and it does not give the lease back. ``monkeypatch.undo()`` ends it."""

    def killed(*args, **kwargs):
        raise died

    monkeypatch.setattr(module, name, killed)
    monkeypatch.setattr(env.ledger, "release", lambda *args, **kwargs: None)


def test_a_rollout_held_by_a_finalize_killed_before_it_recorded_its_start_is_not_said_to_be_held_by_no_finalize(
        monkeypatch):
    """A finalize takes the lease, then (registering a copy of a deregistered revision first, a
    write of up to minutes) records its start: a second finalize meanwhile, or after the first was
    killed between the two, was told the holder was "a run of the rollout, not a finalize". The
    ledger cannot tell which kind of run holds it then, and the refusal says what it may be."""
    import flows.finalize

    env, release = promoted_on_fakes()
    t = env.targets
    dies_at(monkeypatch, env, flows.finalize, "_move_to_stable", _Killed())
    with pytest.raises(_Killed):
        flow(lambda: run_finalize(env, actor="alice", stable_timeout_seconds=30, verify_timeout_seconds=5,
                                  owner="flow-run/7c1d"), name="killed-finalize")()
    monkeypatch.undo()

    with pytest.raises(FinalizeRefused) as refused:
        finalize_on(env)
    said = str(refused.value)
    assert "not a finalize" not in said, said
    assert ("is held by flow-run/7c1d, which has recorded no finalize of it: the rollout's own run, a rollback, or a "
            "finalize that has not recorded its start yet (its newest entry: 'decommission' at ") in said, said
    assert env.router.weights == ALL_CANARY and env.deployer.describe(t.stable_service).desired == 0
