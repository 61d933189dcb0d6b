"""A rollout killed after its first shift moved the traffic, before that stage wrote its bound
flag, has not written the flag yet: its resume's write of the flag (reconcile, following the
shift found on the load balancer) is its first. Another rollout bound to the flag that took it
meanwhile keeps it: the resume is refused as the stage would have been, on the embedded AWS
(flags table and ledger)."""

from __future__ import annotations

import time

import pytest

from rollway.approvals import auto_approve
from rollway.aws.flags import DynamoFlagStore
from rollway.aws.ledger import DynamoLedger
from rollway.flag_binding import FlagHeld, apply_bindings
from rollway.flags import FlagState
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_flag_start_race import BILLING, BOUND, F, SPEC
from tests.flows.test_progressive_fakes import Killed, progressive_on


class DiesAtFirstFlagWrite(DynamoFlagStore):
    """The process dies as the 5 % stage is about to write the flag: the traffic moved, the flag not."""

    def __init__(self, client, targets) -> None:
        super().__init__(client, targets)
        self.died = False

    def put(self, flag, **kwargs):
        if not self.died:
            self.died = True
            raise Killed("dies after the 5% shift, before its flag write")
        return super().put(flag, **kwargs)


def killed_run(aws, dying: type[DynamoFlagStore], spec=SPEC):
    """The environment of a rollout of ``spec`` whose process died at a write of its flag store
    ``dying`` (its flag ``F`` seeded off), its ledger and flags on the embedded AWS."""
    client = aws.get_client("dynamodb")
    env = fake_environment()
    env.ledger = DynamoLedger(client, aws.targets)
    env.flags = dying(client, aws.targets)
    DynamoFlagStore(client, aws.targets).put(FlagState(feature=F), expected_version=0, actor="seed", now=1.0)
    with pytest.raises(Killed):
        progressive_on(env, spec, auto_approve())
    return env


def test_a_resumed_rollout_whose_first_flag_write_is_the_resume_is_refused_a_flag_another_rollout_took(aws):
    env = killed_run(aws, DiesAtFirstFlagWrite)
    # Prefect's transaction put the traffic back as the exception left the task; a process killed
    # outright (SIGKILL, the node lost) runs no hook and leaves the shift on the load balancer.
    env.router.set_weights(Weights(stable=95, canary=5))
    assert env.flags.audit(F)[0].actor == "seed", "this rollout never wrote the flag"

    # While this rollout's process is dead, the billing rollout (bound to the same flag) starts,
    # finds the flag free and takes it to its 50 % stage.
    billing = new_rollout_id(time.time())
    env.ledger.create(RolloutRecord(service=BILLING, rollout_id=billing, image="webordinary/billing:3.1.0",
                                    spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROGRESSING,
                                    previous_task_definition=STABLE_TD, stable_desired=4),
                      owner="process/billing", now=time.time(), lease_seconds=0)
    apply_bindings(env.flags, BOUND, 50, actor="bob", now=time.time(), rollout=billing)

    with pytest.raises(FlagHeld) as refused:
        progressive_on(env, SPEC, auto_approve())

    assert f"follows rollout {billing}" in str(refused.value), str(refused.value)
    flag = env.flags.get(F)
    assert (flag.enabled, flag.percentage) == (True, 50.0), "the billing rollout's users keep the flag at its stage"
    newest = env.flags.audit(F)[0]
    assert (newest.writer, newest.rollout) == ("rollout", billing), "nothing of the resumed rollout in the trail"
