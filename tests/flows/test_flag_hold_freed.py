"""A rollout that died without its rollback holds its bound flags: another rollout binding them is
refused (FlagHeld) until it is rolled back. What frees the hold, and what the refusal says to run."""
from __future__ import annotations

import time

import pytest
from prefect import flow

from flows.rollback import rollback_recorded
from rollway.fakes import FakeFlagStore, FakeLedger
from rollway.flag_binding import FlagHeld, apply_bindings, check_bindings
from rollway.flags import FlagState
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment

F = "use_sqs_architecture"
BOUND = [FlagBinding(feature=F)]


def held_by_a_dead_canary_run():
    """A `canary` flow run (no ledger) moved the flag to its 25 % stage and was killed; the ledger's
    newest rollout of the service is an older one, rolled back long ago."""
    env = fake_environment()
    env.ledger, env.flags = FakeLedger(), FakeFlagStore([FlagState(feature=F)])
    old = RolloutSpec(image="webordinary/edit-container:1.5.0", stages=[Stage(weight=5), Stage(weight=100)])
    then = time.time() - 7200
    env.ledger.create(RolloutRecord(service=env.targets.canary_service, rollout_id=new_rollout_id(then),
                                    image=old.image, spec_json=old.model_dump_json(), phase=RolloutPhase.ROLLED_BACK,
                                    previous_task_definition=STABLE_TD, stable_desired=4),
                      owner="process/old", now=then, lease_seconds=0)
    apply_bindings(env.flags, BOUND, 25, actor="alice", now=then + 3600, rollout="canary-20261201T000000Z-abcd1234")
    env.router.weights = Weights.canary_at(25)
    return env


@flow
def rollback_by_hand(env, bindings):
    return rollback_recorded(env, "the canary run was killed", actor="oncall", bindings=bindings)


def test_the_rollback_flow_given_the_flags_frees_a_dead_canary_runs_hold():
    """The rollback by hand wrote its flag entries naming the ledger's newest rollout, rolled back
    long ago, not the dead run's: the flag stayed held, and every rollout binding it was refused.
    The refusal now says to run it, and doing so frees the flag."""
    env = held_by_a_dead_canary_run()
    # What the refusal says to run (it said only "once that one is ... rolled back").
    with pytest.raises(FlagHeld) as refused:
        check_bindings(env.flags, BOUND, starting=True)
    said = " ".join(str(refused.value).split())
    assert "is a `canary` flow run, which the ledger does not record: run the `rollback` flow" in said, said
    assert f"bindings {F}" in said and "rollway abort" not in said, said
    assert "`rollway flags release use_sqs_architecture --rollout canary-20261201T000000Z-abcd1234" in said, said

    rollback_by_hand(env, BOUND)

    assert env.router.weights == Weights(stable=100, canary=0)
    assert not env.flags.get(F).enabled
    check_bindings(env.flags, BOUND, starting=True)  # free: no FlagHeld
