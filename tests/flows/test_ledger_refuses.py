"""A ledger that refuses to record a rollback does not stop it: the traffic comes first.

DynamoDB can refuse a write for reasons that have nothing to do with the rollout (the item grew
past 400 KB, the table is gone, access denied, throttling past botocore's retries). Every path
that records a rollback (the rollback flow, the stage loop, `rollway abort`, the monitoring
window) still moves the traffic back and retires the canary, says in the notice that the ledger
could not record it, and then fails with RollbackUnrecorded so that nobody believes the record.
"""

from __future__ import annotations

import json
import time
from uuid import uuid4

import pytest
from botocore.exceptions import ClientError
from prefect import flow

import rollway.cli.ops as ops
from blocks.credentials import credentials_for_endpoint
from blocks.targets import RollwayTargets
from flows.progressive import progressive_rollout, run_progressive
from flows.rollback import rollback, rollback_recorded
from rollway.approvals import auto_approve
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.ledger import DynamoLedger
from rollway.fakes import FakeFlagStore, FakeLedger, FakeMetrics, steady
from rollway.flags import FlagState
from rollway.ledger import RollbackUnrecorded, RolloutRecord, Transition, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.moto_env import inbox
from tests.flows.test_canary_moto import read_back
from tests.flows.test_refusals import hooks_and_flows_see

IMAGE = "webordinary/edit-container:2.0.0"
TOO_BIG = "Item size to update has exceeded the maximum allowed size"
# The two writes a rollback makes, by their transition kinds.
START, END = "rollback-start", "rollback"


class RefusingLedger(FakeLedger):
    """A FakeLedger that refuses the writes of the transition kinds in ``refused`` as DynamoDB
    refuses an item grown past 400 KB: botocore's ClientError, which DynamoLedger lets through."""

    def __init__(self, *refused: str) -> None:
        super().__init__()
        self.refused = set(refused)

    def record(self, service, *, transition: Transition, **kwargs):
        if transition.kind in self.refused:
            self.calls.append(f"refused {transition.kind}")
            raise ClientError({"Error": {"Code": "ValidationException", "Message": TOO_BIG}}, "UpdateItem")
        return super().record(service, transition=transition, **kwargs)


def stages(monitor_seconds: float = 0, weekly: bool = False, flags: tuple[str, ...] = ()) -> RolloutSpec:
    weeks = {"phases": [WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(100,))]}
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)],
                       monitor_seconds=monitor_seconds, flags=[FlagBinding(feature=f) for f in flags],
                       **(weeks if weekly else {}))


@flow
def progressive_on(env, spec, phased=False):
    return run_progressive(env, spec, auto_approve("alice"), owner="run-1", actor="alice", phased=phased)


@flow
def rollback_on(env, reason):
    return rollback_recorded(env, reason, actor="carol")


def holding_at_5(*refused: str):
    """A rollout whose first weekly phase ended at 5%, on a ledger refusing ``refused``."""
    env = fake_environment()
    env.ledger = RefusingLedger()
    assert progressive_on(env, stages(weekly=True), phased=True).outcome == "holding"
    assert env.router.weights == Weights.canary_at(5)
    env.ledger.refused = set(refused)
    return env


def subjects(env) -> list[str]:
    return [subject for subject, _ in env.notifier.messages]


def assert_rolled_back_but_not_recorded(env, error: RollbackUnrecorded, refused: str, shown: RolloutPhase,
                                        names_the_rollout: bool = True) -> None:
    """What a user notices: the traffic is back, the canary is down, the notices and the error
    name the ledger's failure, and the ledger is not trusted (it shows ``shown``)."""
    assert env.router.weights == Weights(stable=100, canary=0)
    canary = env.deployer.services[env.targets.canary_service]
    assert canary.desired == 0 and canary.task_definition == STABLE_TD
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is shown and record.last_transition(END) is None
    told = "\n".join(message for _, message in env.notifier.messages[-2:])
    assert ("could NOT record the rollback's start" if refused == START else "could not record the rollback's end") in told
    assert f"ValidationException: {TOO_BIG}" in told
    assert error.rollout_id == (record.rollout_id if names_the_rollout else None) and error.phase is shown
    message = str(error)
    assert "moved back to the stable version" in message and "100/0" in message
    assert f"as {shown.value}" in message and "`rollway abort`" in message and TOO_BIG in message


@pytest.mark.parametrize("refused", [START, END])
def test_the_rollback_flow_rolls_back_when_the_ledger_refuses_to_record_it(refused):
    env = holding_at_5(refused)
    with pytest.raises(RollbackUnrecorded) as raised:
        rollback_on(env, "on-call saw errors")
    shown = RolloutPhase.PAUSED if refused == START else RolloutPhase.ROLLING_BACK
    assert_rolled_back_but_not_recorded(env, raised.value, refused, shown)
    # A notice names the failure whichever write failed: the rollback's own, or one right after it.
    canary = env.targets.canary_service
    told = [f"Rollback: {canary}"] + ([f"Rollback not recorded: {canary}"] if refused == END else [])
    assert subjects(env)[-len(told):] == told and subjects(env).count(told[0]) == 1, subjects(env)


@pytest.mark.parametrize("refused", [START, END])
def test_the_stage_loop_rolls_back_a_failing_canary_when_the_ledger_refuses_to_record_it(refused):
    env = fake_environment(canary_error_rate=0.08)
    env.ledger = RefusingLedger(refused)
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])
    with pytest.raises(RollbackUnrecorded) as raised:
        progressive_on(env, stages(flags=("use_sqs_architecture",)))
    shown = RolloutPhase.PROGRESSING if refused == START else RolloutPhase.ROLLING_BACK
    assert_rolled_back_but_not_recorded(env, raised.value, refused, shown)
    assert env.router.calls.count("set_weights 100/0") == 1
    assert not env.flags.get("use_sqs_architecture").enabled, "the bound flag still follows the canary"


def test_the_monitoring_window_rolls_back_when_the_ledger_refuses_to_record_it():
    env = fake_environment()
    env.ledger = RefusingLedger(START)
    healthy, failing = steady(5000, 0.001, 0.001), steady(5000, 0.001, 0.08)
    # Healthy through the stages, failing once promoted (inside the monitoring window).

    def behaviour(weights, t):
        record = env.ledger.get(env.targets.canary_service)  # None at the preflight's read, before the rollout
        promoted = record is not None and record.phase is RolloutPhase.PROMOTED
        return (failing if promoted else healthy)(weights, t)

    env.metrics = FakeMetrics(env.router, behaviour)
    with pytest.raises(RollbackUnrecorded) as raised:
        progressive_on(env, stages(monitor_seconds=600))
    # The monitor does not read the rollout's id; the phase the ledger shows is what matters.
    assert_rolled_back_but_not_recorded(env, raised.value, START, RolloutPhase.PROMOTED, names_the_rollout=False)


def test_the_rollout_run_fails_and_its_hook_does_not_roll_back_again(monkeypatch):
    """The run rolled back itself; its on_failure hook must not run the rollback flow again:
    that would fail on the same ledger and page people a second time."""
    env = fake_environment(canary_error_rate=0.08)
    env.ledger = RefusingLedger(START)
    hooks_and_flows_see(monkeypatch, env)
    state = progressive_rollout(spec=stages().model_dump(mode="json"), phased=False, return_state=True)
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), RollbackUnrecorded)
    assert subjects(env).count(f"Rollback: {env.targets.canary_service}") == 1, subjects(env)
    assert env.ledger.calls.count(f"refused {START}") == 1, "a second rollback ran"
    assert env.router.weights == Weights(stable=100, canary=0)


def test_abort_rolls_back_and_says_what_the_ledger_does_not(monkeypatch, capsys):
    env = holding_at_5(START)
    hooks_and_flows_see(monkeypatch, env)
    # A block name no other test's paused runs use: abort finds no run to answer and rolls back itself.
    service = ops.Service(targets=env.targets, targets_block=f"ledger-refuses-{uuid4().hex[:8]}",
                          credentials_block=None, ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *args: service)
    code = ops.abort(approver="erin", reason="customer escalation", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)
    assert code == 1
    err = capsys.readouterr().err
    assert "the ledger could not record the abort" in err and "rolling back anyway" in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert any(line.startswith("The traffic was moved back to the stable version") for line in lines), err
    assert any(line.startswith("The ledger still shows rollout") and "as paused" in line for line in lines), err
    assert any("`rollway abort`" in line and "idempotent" in line for line in lines), err
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[env.targets.canary_service].desired == 0
    assert "could NOT record the rollback's start" in env.notifier.messages[-1][1]


# --- On the embedded AWS: DynamoDB refuses for reasons moto enforces --------------------------


def on_aws(aws, *history: Transition) -> tuple[str, str]:
    """A bad canary at 5% on the embedded AWS, its rollout recorded with ``history``; returns
    the names of the saved targets and credentials blocks the commands and flows load."""
    name = f"ledger-refuses-{uuid4().hex[:8]}"  # no other test's paused runs name these blocks
    RollwayTargets(**aws.targets.model_dump()).save(name, overwrite=True)
    credentials_for_endpoint(aws.endpoint_url, aws.targets.region).save(name, overwrite=True)
    AlbRouter(aws.get_client("elbv2"), aws.targets).set_weights(Weights.canary_at(5))
    aws.get_client("ecs").update_service(cluster=aws.targets.cluster, service=aws.targets.canary_service,
                                         desiredCount=1)
    now = time.time()
    record = RolloutRecord(service=aws.targets.canary_service, rollout_id=new_rollout_id(now), image=IMAGE,
                           spec_json=stages().model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                           weights=Weights.canary_at(5), history=history)
    DynamoLedger(aws.get_client("dynamodb"), aws.targets).create(record, owner="process/test", now=now, lease_seconds=0)
    return name, name


def notices(aws, url: str) -> dict[str, str]:
    """The alert topic's messages, by subject."""
    got = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return {body["Subject"]: body["Message"] for body in (json.loads(m["Body"]) for m in got)}


def test_abort_on_aws_rolls_back_a_rollout_whose_ledger_item_outgrew_400_kb(aws, capsys):
    """A rollout left holding for weeks grew its item to the edge of the 400 KB item limit: DynamoDB
    refuses every write to it, the abort's too. The canary goes anyway, and the command says so.

    moto 5.2.5 enforces the limit on UpdateItem (ValidationException "Item size to update has
    exceeded the maximum allowed size") but not as DynamoDB does: it counts an updated
    attribute's old and new value together, so it refuses appends from about half the limit, and
    a refused update keeps the attributes it set before the one that overflowed (here the phase
    becomes rolling_back, so the rollback flow then fails on the rollback's end instead of its
    start). Hence the assertions hold either way."""
    weeks_of_holds = [Transition(at=time.time(), kind="hold", actor="timeout", comment="no answer " * 100)] * 380
    targets_block, credentials_block = on_aws(aws, *weeks_of_holds)
    url = inbox(aws)
    code = ops.abort(approver="erin", reason="error rate climbing", flow_run=None, wait_seconds=0,
                     targets_block=targets_block, credentials_block=credentials_block)
    assert code == 1
    err = capsys.readouterr().err
    assert "the ledger could not record the abort (DynamoDB UpdateItem failed with ValidationException: Item" in err
    assert "The traffic was moved back to the stable version" in err and "`rollway abort`" in err
    weights, stable, canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0)
    assert canary.desired == 0 and canary.task_definition == stable.task_definition
    told = notices(aws, url)
    assert f"Rollback: {aws.targets.canary_service}" in told, told
    assert any("ValidationException: Item size" in message for message in told.values()), told


def test_the_rollback_flow_on_aws_rolls_back_when_the_ledger_table_is_gone(aws):
    targets_block, credentials_block = on_aws(aws)
    url = inbox(aws)
    aws.get_client("dynamodb").delete_table(TableName=aws.targets.rollouts_table)
    state = rollback(reason="5xx spike", actor="erin", targets_block=targets_block,
                     aws_credentials_block=credentials_block, return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, RollbackUnrecorded) and "ResourceNotFoundException" in str(error)
    weights, stable, canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0) and canary.desired == 0
    message = notices(aws, url)[f"Rollback: {aws.targets.canary_service}"]
    assert "could NOT record this rollback: reading the rollout failed" in message
    assert "ResourceNotFoundException" in message


class ReleaseThrottled(FakeLedger):
    """A FakeLedger on which DynamoDB throttles every lease release past botocore's retries."""

    def release(self, service, *, owner):
        self.calls.append(f"refused release {owner}")
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                     "Message": "Throughput exceeds the current capacity of your table"}}, "UpdateItem")


@pytest.mark.parametrize("outcome", ["promoted", "holding"])
def test_a_lease_release_dynamodb_throttles_after_the_outcome_is_recorded_does_not_fail_the_run(
        monkeypatch, caplog, outcome):
    """The promotion (or the weekly phase's end) was recorded, then DynamoDB throttled the write
    giving the run's lease back: the run failed with botocore's error, and its hook rolled the
    healthy release back and paged people. The lease runs out on its own; the run ends as
    recorded, and its log says the lease was not given back and when it lapses."""
    env = fake_environment()
    env.ledger = ReleaseThrottled()
    hooks_and_flows_see(monkeypatch, env)
    spec = stages(monitor_seconds=600, weekly=outcome == "holding")
    with caplog.at_level("WARNING"):
        state = progressive_rollout(spec=spec.model_dump(mode="json"), phased=outcome == "holding",
                                    return_state=True)

    assert state.is_completed(), state
    assert state.result().outcome == outcome
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is (RolloutPhase.PROMOTED if outcome == "promoted" else RolloutPhase.PAUSED), record.phase
    assert record.last_transition(START) is None
    assert not [s for s in subjects(env) if s.startswith("Rollback")], subjects(env)
    said = [r.getMessage() for r in caplog.records if "could not give this run's lease" in r.getMessage()]
    assert said and "ProvisionedThroughputExceededException" in said[0] and "wall clock" in said[0], said
