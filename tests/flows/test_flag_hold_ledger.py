"""A flag's audit trail written before a promoted rollout recorded the end of its hold on a flag a
person had changed (on-call's kill switch at 5 %) read as held by that rollout for good: every later
rollout bound to the flag was refused (FlagHeld), told to wait for a promotion that had happened or to
abort it. The start check reads the service's ledger for the holding rollout, on the embedded AWS."""

from __future__ import annotations

import logging
import time

import pytest

from flows.canary import RolloutRefused
from rollway.approvals import auto_approve
from rollway.aws.flags import DynamoFlagStore
from rollway.aws.ledger import DynamoLedger
from rollway.flag_binding import FlagChange, apply_bindings, set_flag
from rollway.flags import FlagState
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_progressive_fakes import IMAGE, progressive_on

F = "use_sqs_architecture"
BOUND = [FlagBinding(feature=F)]
SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 100)], flags=BOUND,
                   monitor_seconds=0)


def held_by_an_old_trail(aws, phase: RolloutPhase, service: str | None = None):
    """The service's previous rollout, recorded in the ledger in ``phase``, and the flag's trail as
    the code before that fix left it: its 5 % stage, on-call's kill switch, and no write at 100 %."""
    client = aws.get_client("dynamodb")
    env = fake_environment()
    env.ledger, env.flags = DynamoLedger(client, aws.targets), DynamoFlagStore(client, aws.targets)
    env.flags.put(FlagState(feature=F), expected_version=0, actor="seed", now=1.0)
    then = time.time() - 7200
    old = RolloutSpec(image="webordinary/edit-container:1.5.0", stages=[Stage(weight=5), Stage(weight=100)],
                      flags=BOUND)
    rollout = new_rollout_id(then)
    env.ledger.create(RolloutRecord(service=service or env.targets.canary_service, rollout_id=rollout, image=old.image,
                                    spec_json=old.model_dump_json(), phase=phase, previous_task_definition=STABLE_TD,
                                    stable_desired=4),
                      owner="process/old", now=then, lease_seconds=0)
    apply_bindings(env.flags, BOUND, 5, actor="alice", now=then + 60, rollout=rollout)
    set_flag(env.flags, FlagChange(feature=F, enabled=False, reason="kill switch: bad writes"), actor="oncall",
             now=then + 120)
    return env, rollout


@pytest.mark.parametrize("phase", [RolloutPhase.PROMOTED, RolloutPhase.ROLLED_BACK])
def test_a_hold_by_a_rollout_the_ledger_records_ended_does_not_refuse_the_next_release(aws, caplog, phase):
    env, old = held_by_an_old_trail(aws, phase)

    with caplog.at_level(logging.INFO):
        result = progressive_on(env, SPEC, auto_approve())

    assert result.outcome == "promoted", result.reason
    flag = env.flags.get(F)
    assert (flag.enabled, flag.percentage) == (True, 100.0), "the next release takes the flag over"
    said = [r.getMessage() for r in caplog.records if old in r.getMessage() and "ledger" in r.getMessage()]
    ended = "promoted" if phase is RolloutPhase.PROMOTED else "rolled back"
    assert said and f"records {ended}" in said[0] and "hold" in said[0] and F in said[0], said


def test_a_hold_by_a_rollout_of_another_service_still_refuses(aws):
    """The ledger is read by service: a rollout this service's ledger does not record (another
    service's, bound to the same flag) keeps its hold, as before."""
    env, old = held_by_an_old_trail(aws, RolloutPhase.PROMOTED, service="webordinary-billing-service-canary")

    with pytest.raises(RolloutRefused, match=f"held by another rollout: '{F}' follows rollout {old}"):
        progressive_on(env, SPEC, auto_approve())
    assert not env.flags.get(F).enabled


def test_a_hold_by_another_services_rollout_says_it_cannot_be_checked_and_what_frees_it(aws):
    """That rollout was promoted long ago: the refusal said to start "once that one is promoted" and to
    abort it, and the operator waited for a promotion that had happened, or aborted that service's
    newest release. A flag's audit trail names no service and the ledger finds a rollout only under
    its service, so the refusal says which ledger it read, that the hold could not be checked there,
    where to look, and what frees the flag in either case."""
    billing = "webordinary-billing-service-canary"
    env, old = held_by_an_old_trail(aws, RolloutPhase.PROMOTED, service=billing)

    with pytest.raises(RolloutRefused) as refused:
        progressive_on(env, SPEC, auto_approve())

    said = str(refused.value)
    assert f"the ledger of {env.targets.canary_service} does not record rollout {old}" in said, said
    assert "audit trail names no service" in said, said
    assert f"`rollway status --targets-block <the block of the service rollout {old} rolls out>`" in said, said
    assert f"`rollway abort --targets-block <that block>`" in said and "while it is open there" in said, said
    assert f"if that ledger records rollout {old} promoted or rolled back" in said, said
    assert "the next rollout of that service binding it frees it once promoted" in said, said
    assert f"`rollway flags get {F}`" in said, said
    # Whether that run ended is for the person to find out; once they know, what frees the flag here.
    assert f"`rollway flags release {F} --rollout {old} --reason '<why>'`" in said, said
    assert not env.flags.get(F).enabled


def test_a_hold_whose_rollout_the_ledger_cannot_read_refuses_and_says_so(aws):
    """The holding rollout's item was edited by hand: whether it ended cannot be told, so the
    rollout is refused, naming the flag, the rollout and what the ledger said (no silent pass)."""
    env, old = held_by_an_old_trail(aws, RolloutPhase.PROMOTED)
    # A later rollout of the service, which bound no flag: the service's newest, read as ever.
    newer = RolloutSpec(image="webordinary/edit-container:1.6.0", stages=[Stage(weight=5), Stage(weight=100)])
    then = time.time() - 3600
    env.ledger.create(RolloutRecord(service=env.targets.canary_service, rollout_id=new_rollout_id(then, after=old),
                                    image=newer.image, spec_json=newer.model_dump_json(),
                                    phase=RolloutPhase.ROLLED_BACK, previous_task_definition=STABLE_TD,
                                    stable_desired=4),
                      owner="process/newer", now=then, lease_seconds=0)
    aws.get_client("dynamodb").update_item(
        TableName=aws.targets.rollouts_table, Key={"service": {"S": env.targets.canary_service},
                                                   "rollout_id": {"S": old}},
        UpdateExpression="SET #phase = :bad", ExpressionAttributeNames={"#phase": "phase"},
        ExpressionAttributeValues={":bad": {"S": "failed"}})

    with pytest.raises(RolloutRefused) as refused:
        progressive_on(env, SPEC, auto_approve())
    said = str(refused.value)
    assert f"'{F}'" in said and old in said and "ledger" in said and "could not be read" in said, said
    assert not env.flags.get(F).enabled
