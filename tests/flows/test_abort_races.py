"""`rollway abort` read rollout 1; by the time it acts, rollout 1 has ended and rollout 2 started.

The abort acts only on the rollout it read: it used to roll back rollout 2 (someone else's
release, which nobody aborted) with the person's reason and exit 0, or show a traceback.
"""
from __future__ import annotations

import time
from uuid import uuid4

import rollway.cli.ops as ops
from rollway.fakes import FakeLedger
from rollway.ledger import RolloutRecord, Transition, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_refusals import hooks_and_flows_see

SPEC = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)])
SPEC2 = SPEC.model_copy(update={"image": "webordinary/edit-container:3.0.0"})


class RacingLedger(FakeLedger):
    """On the abort's second read (the one _rollback_directly acts on), rollout 1 is finished
    by someone else and rollout 2 is started right after the read returns."""

    def __init__(self, env):
        super().__init__()
        self.env, self.gets = env, 0

    def get(self, service):
        got = super().get(service)
        self.gets += 1
        if self.gets == 2:
            now = time.time()
            super().record(service, owner=None, now=now, rollout=got.rollout_id,
                           transition=Transition(at=now, kind="rollback", actor="hook", comment="run cancelled"),
                           phase=RolloutPhase.ROLLED_BACK, weights=Weights(stable=100, canary=0))
            second = RolloutRecord(service=service, rollout_id=new_rollout_id(now + 1, after=got.rollout_id),
                                   image=SPEC2.image, spec_json=SPEC2.model_dump_json(),
                                   phase=RolloutPhase.PROGRESSING, stage_index=0, weights=Weights.canary_at(5),
                                   previous_task_definition=STABLE_TD, stable_desired=4)
            super().create(second, owner="process/ci", now=now, lease_seconds=0)
            self.env.router.weights = Weights.canary_at(5)
        return got


def setup(monkeypatch, phase):
    env = fake_environment()
    env.ledger = RacingLedger(env)
    now = time.time()
    first = RolloutRecord(service=env.targets.canary_service, rollout_id=new_rollout_id(now - 100), image=SPEC.image,
                          spec_json=SPEC.model_dump_json(), phase=phase, stage_index=0,
                          weights=Weights.canary_at(5), previous_task_definition=STABLE_TD, stable_desired=4)
    env.ledger.create(first, owner="process/old", now=now - 100, lease_seconds=0)
    env.router.weights = Weights.canary_at(5)
    hooks_and_flows_see(monkeypatch, env)
    service = ops.Service(targets=env.targets, targets_block=f"abort-race-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    return env, service, first


def test_abort_racing_a_new_rollout_answers_in_one_line_not_a_traceback(monkeypatch, capsys):
    env, service, first = setup(monkeypatch, RolloutPhase.PROGRESSING)
    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)
    assert code == 1
    assert "no longer the newest" in capsys.readouterr().err


def test_abort_of_an_unfinished_rollback_does_not_roll_back_the_next_rollout(monkeypatch, capsys):
    env, service, first = setup(monkeypatch, RolloutPhase.ROLLING_BACK)
    code = ops.abort(approver="erin", reason="finish rollout 1's rollback", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)
    newest = env.ledger.get(env.targets.canary_service)
    assert newest.image == SPEC2.image
    assert newest.phase is RolloutPhase.PROGRESSING, (code, newest.phase, newest.history[-1])
    assert env.router.weights == Weights.canary_at(5)
    assert code == 1 and "no longer the newest" in capsys.readouterr().err
