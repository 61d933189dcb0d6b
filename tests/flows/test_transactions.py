"""Steps that must undo together do: weights with flags, task definition with service."""

from __future__ import annotations

import time

import pytest
from prefect import flow

from flows.canary import RolloutRefused, run_canary
from flows.progressive import run_progressive
from rollway.approvals import auto_approve
from rollway.aws.errors import WeightMismatch
from rollway.fakes import FakeFlagStore, FakeLedger
from rollway.flags import FlagState, UnknownFlag
from rollway.ledger import Transition, begin_rollback
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_progressive_fakes import Killed

IMAGE = "webordinary/edit-container:2.0.0"


@flow
def rollout(env, spec):
    return run_progressive(env, spec, auto_approve(), owner="run-1", phased=False)


@flow
def canary_rollout(env, spec):
    return run_canary(env, spec, auto_approve())


def spec(*flags: str) -> RolloutSpec:
    return RolloutSpec(
        image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)],
        flags=[FlagBinding(feature=f) for f in flags], monitor_seconds=0,
    )



def flags_refused_at(env, percentage, meanwhile) -> None:
    """The flag store refuses the write that moves a flag to ``percentage``, after ``meanwhile()``
    ran (something else acting while the shift was under way)."""
    put = env.flags.put

    def refused(state, **kwargs):
        if state.percentage == percentage:
            meanwhile()
            raise RuntimeError("AccessDenied: dynamodb:PutItem on the flags table")
        return put(state, **kwargs)

    env.flags.put = refused

def test_bound_flags_follow_the_weights():
    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])
    result = rollout(env, spec("use_sqs_architecture"))
    assert result.outcome == "promoted"
    flag = env.flags.get("use_sqs_architecture")
    assert flag.enabled and flag.percentage == 100
    flag_entries = [t.comment for t in env.ledger.get(env.targets.canary_service).history if t.kind == "flag"]
    assert len(flag_entries) == 2 and "5%" in flag_entries[0] and "100%" in flag_entries[1]


def test_an_unknown_bound_flag_fails_before_any_write():
    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([])  # the bound flag does not exist
    # Refused, so the rollback hooks leave the run alone; the cause names the flag.
    with pytest.raises(RolloutRefused, match="refused before any write.*use_sqs_architecture") as refused:
        rollout(env, spec("use_sqs_architecture"))
    assert isinstance(refused.value.__cause__, UnknownFlag)
    assert not [c for c in env.router.calls if c.startswith("set_weights")]
    assert not [c for c in env.deployer.calls if not c.startswith("describe")]
    assert env.ledger.get(env.targets.canary_service) is None, "no rollout was recorded"


def test_weights_are_undone_when_the_flags_cannot_follow():
    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])

    def refused(*args, **kwargs):
        raise RuntimeError("AccessDenied: dynamodb:PutItem on the flags table")

    env.flags.put = refused  # the flag exists (the preflight reads it) but cannot be written
    with pytest.raises(RuntimeError, match="AccessDenied"):
        rollout(env, spec("use_sqs_architecture"))
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.router.calls.count("set_weights 95/5") == 1 and env.router.calls[-1] == "set_weights 100/0"


@pytest.mark.parametrize("run", [rollout, canary_rollout], ids=["progressive", "canary"])
@pytest.mark.parametrize("throttled_deregisters", [0, 1])
def test_registration_is_undone_when_the_service_update_fails(run, throttled_deregisters):
    """Prefect runs an undo hook once and only logs its error: one throttled deregister used to
    leave the new revision behind."""
    env = fake_environment()
    env.ledger = FakeLedger()
    original_update = env.deployer.update_service

    def failing_update(service, *, task_definition=None, desired=None):
        if task_definition is not None and task_definition != STABLE_TD:
            raise RuntimeError("UpdateService throttled")
        return original_update(service, task_definition=task_definition, desired=desired)

    env.deployer.update_service = failing_update
    real_deregister, refusals = env.deployer.deregister_revision, [throttled_deregisters]

    def deregister(arn):
        if refusals[0]:
            refusals[0] -= 1
            raise RuntimeError("ThrottlingException: Rate exceeded")
        return real_deregister(arn)

    env.deployer.deregister_revision = deregister
    with pytest.raises(RuntimeError, match="UpdateService throttled"):
        run(env, spec())
    registered = [c for c in env.deployer.calls if c.startswith("register_revision")]
    assert len(registered) == 1
    assert list(env.deployer.task_definitions) == [STABLE_TD]  # the new revision is gone


def test_a_shift_is_not_undone_over_someone_elses_change():
    """The flags fail after a rollback by hand moved the traffic: the undo must not put 5% back."""
    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])

    def rolled_back_meanwhile():  # at the second shift (5% -> 100%)
        env.router.weights = Weights(stable=100, canary=0)  # on-call's rollback lands first

    flags_refused_at(env, 100, rolled_back_meanwhile)
    with pytest.raises(RuntimeError, match="AccessDenied"):
        rollout(env, spec("use_sqs_architecture"))
    assert env.router.weights == Weights(stable=100, canary=0), "the undo put 5% back on the canary"
    assert env.router.calls.count("set_weights 95/5") == 1


def flagged_env():
    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])
    return env


def test_a_shift_whose_read_back_still_lags_is_undone():
    """The read-back lags past verify's timeout: the undo reads the weights from before, which is
    its own write not showing yet, not someone else's change. It used to leave the shift, and
    the canary served 5 % with its flags never moved."""
    env = flagged_env()
    real_set = env.router.set_weights

    def lagging(weights):
        held = real_set(weights)
        env.router.lag = 10_000  # DescribeRules answers the old rule for a while
        return held

    env.router.set_weights = lagging
    rollout_spec = spec("use_sqs_architecture").model_copy(update={"verify_timeout_seconds": 0.2})
    with pytest.raises(WeightMismatch):
        rollout(env, rollout_spec)
    env.router.lag = 0
    assert env.router.weights == Weights(stable=100, canary=0), "the undo skipped its own shift"


def test_one_throttled_read_does_not_stop_the_undo():
    """Prefect runs an undo hook once and only logs its error: one throttled read used to leave
    the traffic at 95/5 with the flags at 0."""
    env = flagged_env()
    real_get = env.router.get_weights
    state = {"armed": False}

    def get_weights():
        if state["armed"]:
            state["armed"] = False
            raise RuntimeError("Throttling: Rate exceeded")
        return real_get()

    def refused(*args, **kwargs):
        state["armed"] = True  # the next read is the undo's
        raise RuntimeError("AccessDenied: dynamodb:PutItem on the flags table")

    env.router.get_weights = get_weights
    env.flags.put = refused
    with pytest.raises(RuntimeError, match="AccessDenied"):
        rollout(env, spec("use_sqs_architecture"))
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_resume_after_a_kill_before_the_deploy_was_recorded_registers_no_second_revision():
    """Killed after the canary was pointed at its new revision, before the ledger's "deploy"
    entry: the resume used to register and point at another revision, leaving the first one
    behind unused. It records the one the canary runs."""
    env = fake_environment()
    env.ledger = FakeLedger()
    real_record = env.ledger.record
    killed = []

    def record(*args, **kwargs):
        transition = kwargs.get("transition")
        if transition is not None and transition.kind == "deploy" and not killed:
            killed.append(transition)
            raise Killed("the node is lost after the service was pointed")
        return real_record(*args, **kwargs)

    env.ledger.record = record
    with pytest.raises(Killed):
        rollout(env, spec())
    assert rollout(env, spec()).outcome == "promoted"
    registered = [c for c in env.deployer.calls if c.startswith("register_revision")]
    in_use = {s.task_definition for s in env.deployer.services.values()}
    assert len(registered) == 1 and set(env.deployer.task_definitions) <= in_use | {STABLE_TD}, (
        registered, env.deployer.task_definitions, in_use)


def abort_finishes(env) -> None:
    """`rollway abort` runs to the end: ROLLING_BACK recorded, traffic back on stable, ROLLED_BACK recorded."""
    service = env.targets.canary_service
    rollout_id = env.ledger.get(service).rollout_id
    now = env.clock.now()
    begin_rollback(env.ledger, service, actor="erin", reason="aborted by erin: errors", now=now, rollout=rollout_id)
    env.router.set_weights(Weights(stable=100, canary=0))
    record_end = Transition(at=now, kind="rollback", actor="erin", comment="aborted by erin: errors")
    env.ledger.record(service, owner=None, now=now, rollout=rollout_id, transition=record_end,
                      phase=RolloutPhase.ROLLED_BACK, weights=Weights(stable=100, canary=0))


def three_stages(*flags: str) -> RolloutSpec:
    # model_copy does not validate: the stages go in as the tuple the field holds, or pydantic
    # warns each time the spec is serialised (into the ledger, the flow's parameters).
    return spec(*flags).model_copy(update={"stages": tuple(Stage(weight=w, bake_seconds=120) for w in (5, 25, 100)),
                                           "verify_timeout_seconds": 0.2})


def test_a_shift_that_fails_verification_is_not_undone_over_a_finished_abort(caplog):
    """The read-back of the shift to 25 % lags past verify's timeout; meanwhile an abort moves the
    traffic back and records the rollback. The undo's read is as stale (it shows the weights from
    before the shift): it used to write 95/5 over the abort's 100/0, putting users back on the
    version just rolled back."""
    env = flagged_env()
    real_set = env.router.set_weights

    def lagging(weights):
        held = real_set(weights)
        if weights == Weights.canary_at(25):
            env.router.lag = 10_000  # DescribeRules answers the 95/5 rule for a while
            abort_finishes(env)  # its own write does not show in the read-back either
            env.router._stale = Weights.canary_at(5)
        return held

    env.router.set_weights = lagging
    with pytest.raises(WeightMismatch):
        rollout(env, three_stages("use_sqs_architecture"))
    env.router.lag = 0
    assert env.router.weights == Weights(stable=100, canary=0), "the undo put the canary back at 5%"
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK
    said = [r.getMessage() for r in caplog.records if r.name == "rollway.undo"]
    assert any("not undoing the shift to 75/25" in m and "rolled_back by erin" in m for m in said), said


def test_a_shift_whose_flags_fail_is_not_undone_over_a_finished_abort():
    """The flags cannot follow the shift to 25 %; meanwhile an abort finished, and the undo's read
    still shows the run's own 75/25: it used to write 95/5 over the abort's 100/0."""
    env = flagged_env()
    def aborted_meanwhile():
        abort_finishes(env)
        env.router._stale, env.router.lag = Weights.canary_at(25), 1  # the abort's write not visible yet

    flags_refused_at(env, 25, aborted_meanwhile)
    with pytest.raises(RuntimeError, match="AccessDenied"):
        rollout(env, three_stages("use_sqs_architecture"))
    assert env.router.weights == Weights(stable=100, canary=0), "the undo put the canary back at 5%"
    assert env.router.calls.count("set_weights 95/5") == 1


@pytest.mark.parametrize("run", [rollout, canary_rollout], ids=["progressive", "canary"])
def test_a_shift_is_undone_when_dynamodb_refuses_the_flags_and_the_ledger_alike(run, monkeypatch):
    """One DynamoDB outage fails the flag write and the undo's ledger read: the undo raised on
    the read and never wrote the previous weights, leaving the canary at 5 % with its flags unmoved."""
    from botocore.exceptions import ClientError

    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    env = flagged_env()
    outage = {"on": False}
    real_get = env.ledger.get

    def throttled(operation):
        return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"}},
                           operation)

    def get(service):
        if outage["on"]:
            raise throttled("Query")
        return real_get(service)

    def put(*args, **kwargs):
        outage["on"] = True
        raise throttled("PutItem")

    env.ledger.get, env.flags.put = get, put
    with pytest.raises(ClientError):
        run(env, spec("use_sqs_architecture"))
    assert env.router.weights == Weights(stable=100, canary=0), env.router.weights


def dynamo_flagged_env(aws, monkeypatch):
    """A fake environment whose bound flag lives in the embedded DynamoDB, with the shift's flag
    tries not waiting between them; and the DynamoDB client, for a test's event handlers."""
    from rollway.aws.flags import DynamoFlagStore

    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    client = aws.get_client("dynamodb")
    env = fake_environment()
    env.ledger, env.flags = FakeLedger(), DynamoFlagStore(client, aws.targets)
    env.flags.put(FlagState(feature="use_sqs_architecture"), expected_version=0, actor="seed", now=1.0)
    return env, client


def test_a_flag_write_throttled_once_at_a_shift_is_tried_again_and_the_stage_goes_on(aws, monkeypatch):
    """DynamoDB throttled the PutItem moving the bound flag to 5 % past botocore's own retries: the
    shift's flags had no retry of their own (a stage's other flag writes do), so the weights went
    back and the healthy rollout failed and was rolled back over one throttled write."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    env, client = dynamo_flagged_env(aws, monkeypatch)
    throttled: list[str] = []

    def throttle(**_):
        if not throttled:
            throttled.append("PutItem")
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                         "Message": "Rate of requests exceeds the allowed throughput"}}, "PutItem")

    with on_operation(client, "before-call", throttle, operation="PutItem"):
        result = rollout(env, spec("use_sqs_architecture"))

    assert throttled == ["PutItem"] and result.outcome == "promoted", result.reason
    assert env.router.calls.count("set_weights 95/5") == 1, "the 5 % shift was undone and made again"
    flag = env.flags.get("use_sqs_architecture")
    assert (flag.enabled, flag.percentage) == (True, 100.0)
    moves = [t.comment for t in env.ledger.get(env.targets.canary_service).history if t.kind == "flag"]
    assert len(moves) == 2 and "off 0% -> on 5%" in moves[0], moves


def test_a_flag_write_refused_at_a_shift_is_not_tried_again_and_the_shift_is_undone(aws, monkeypatch):
    """A refused permission is refused again: the shift goes back at once, without more writes."""
    from botocore.exceptions import ClientError

    from rollway.aws.denied import PermissionDenied
    from tests.botocore_events import on_operation

    env, client = dynamo_flagged_env(aws, monkeypatch)
    refused: list[str] = []

    def refuse(**_):
        refused.append("PutItem")
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "PutItem")

    with on_operation(client, "before-call", refuse, operation="PutItem"), \
            pytest.raises(PermissionDenied, match="AWS refused dynamodb:PutItem"):
        rollout(env, spec("use_sqs_architecture"))
    assert refused == ["PutItem"], refused
    assert env.router.weights == Weights(stable=100, canary=0)
