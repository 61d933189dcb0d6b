"""A rollback that cannot read the ledger does not take production down blind: a run that fails on
its first ledger read (throttled, denied) is a refusal its hooks leave alone, and the rollback flow,
unable to read the ledger, refuses to act on a canary that carries all the traffic (a promoted
release) unless told what to roll back to."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from flows.progressive import progressive_rollout
from rollway.fakes import FakeLedger
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_refusals import hooks_and_flows_see, promote

IMAGE = "webordinary/edit-container:2.0.0"
NEWER = "webordinary/edit-container:3.0.0"


class FlakyLedger(FakeLedger):
    """A FakeLedger whose reads fail as DynamoDB's do under sustained throttling or a denied
    permission, while ``down`` is set (botocore's ClientError, which DynamoLedger lets through)."""

    down = False

    def _fail(self, op: str):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                     "Message": "The level of configured provisioned throughput for the table was "
                                                "exceeded"}}, op)

    def get(self, service):
        if self.down:
            self._fail("Query")
        return super().get(service)


def promoted_on_a_flaky_ledger(monkeypatch):
    """2.0.0 promoted and the old service decommissioned (the canary service is production), on a
    ledger that can be made to refuse reads; the flows and their hooks see this environment."""
    env = fake_environment()
    env.ledger = FlakyLedger()
    hooks_and_flows_see(monkeypatch, env)
    done = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=600,
                       phases=[WeeklyPhase(name="all", weights=(5, 100), decommission=True)])
    assert promote(env, done).outcome == "promoted"
    return env


def test_a_new_rollout_whose_first_ledger_read_fails_leaves_the_promoted_version_serving(monkeypatch):
    env = promoted_on_a_flaky_ledger(monkeypatch)
    promoted_td = env.deployer.services[env.targets.canary_service].task_definition
    assert promoted_td != STABLE_TD
    assert env.router.weights == Weights(stable=0, canary=100)
    assert env.deployer.services[env.targets.stable_service].desired == 0  # decommissioned: production is the canary
    before = len(env.notifier.messages)

    # DynamoDB throttles (or an IAM change denies the read) while someone starts the next release.
    env.ledger.down = True
    newer = RolloutSpec(image=NEWER, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)])
    state = progressive_rollout(spec=newer.model_dump(mode="json"), phased=False, return_state=True)
    assert state.is_failed()
    # The run never wrote anything; it failed on its first read.
    new_subjects = [s for s, _ in env.notifier.messages[before:]]

    # The run was refused before any write; its hooks left the promoted version serving everyone.
    assert env.router.weights == Weights(stable=0, canary=100), (env.router.weights, new_subjects)
    assert env.deployer.services[env.targets.canary_service].desired > 0, new_subjects
    assert not [s for s in new_subjects if s.startswith("Rollback")], new_subjects


def test_the_rollback_flow_refuses_to_act_blind_on_a_canary_carrying_all_the_traffic(monkeypatch):
    """The rollback flow cannot tell a promoted release from a rollout without the ledger: it
    changes nothing and says why."""
    from flows.rollback import RollbackRefused, rollback

    env = promoted_on_a_flaky_ledger(monkeypatch)
    env.ledger.down = True
    with pytest.raises(RollbackRefused, match="may be a promoted release"):
        rollback(reason="checking the rollback deployment", actor="dave")
    assert env.router.weights == Weights(stable=0, canary=100), "production moved to the previous version"
