"""`rollway abort` read rollout 1; by the time it acts, rollout 1 has ended and rollout 2 started.

The abort acts only on the rollout it read: it used to roll back rollout 2 (someone else's
release, which nobody aborted) with the person's reason and exit 0, or show a traceback.

Two rollbacks of one rollout (the judge's, the abort's, a failed run's hook): the one that records
its start after the other finished is refused by that ledger write, says who rolled back and when,
and neither moves the traffic nor pages again.
"""
from __future__ import annotations

import time
from uuid import uuid4

import pytest

import rollway.cli.ops as ops
from flows.progressive import progressive_rollout
from rollway.fakes import FakeLedger
from rollway.ledger import RolloutRecord, Transition, begin_rollback, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment, pages
from tests.flows.test_refusals import hooks_and_flows_see

SPEC = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)])
SPEC2 = SPEC.model_copy(update={"image": "webordinary/edit-container:3.0.0"})


class RaceAtSecondRead(FakeLedger):
    """Runs ``race`` right after the abort's second read (the one _rollback_directly acts on)
    returns, before the abort writes anything."""

    def __init__(self, env):
        super().__init__()
        self.env, self.gets = env, 0

    def get(self, service):
        got = super().get(service)
        self.gets += 1
        if self.gets == 2:
            self.race(service, got, time.time())
        return got

    def race(self, service, got, now):
        raise NotImplementedError


class RacingLedger(RaceAtSecondRead):
    """Rollout 1 is finished by someone else and rollout 2 is started right after the read."""

    def race(self, service, got, now):
        super().record(service, owner=None, now=now, rollout=got.rollout_id,
                       transition=Transition(at=now, kind="rollback", actor="hook", comment="run cancelled"),
                       phase=RolloutPhase.ROLLED_BACK, weights=Weights(stable=100, canary=0))
        second = RolloutRecord(service=service, rollout_id=new_rollout_id(now + 1, after=got.rollout_id),
                               image=SPEC2.image, spec_json=SPEC2.model_dump_json(),
                               phase=RolloutPhase.PROGRESSING, stage_index=0, weights=Weights.canary_at(5),
                               previous_task_definition=STABLE_TD, stable_desired=4)
        super().create(second, owner="process/ci", now=now, lease_seconds=0)
        self.env.router.weights = Weights.canary_at(5)


def setup(monkeypatch, phase, ledger=RacingLedger):
    env = fake_environment()
    env.ledger = ledger(env)
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


def test_abort_of_an_unfinished_rollback_does_not_roll_back_the_next_rollout(monkeypatch, capsys, flow_run_records):
    env, service, first = setup(monkeypatch, RolloutPhase.ROLLING_BACK)
    code = ops.abort(approver="erin", reason="finish rollout 1's rollback", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)
    newest = env.ledger.get(env.targets.canary_service)
    assert newest.image == SPEC2.image
    assert newest.phase is RolloutPhase.PROGRESSING, (code, newest.phase, newest.history[-1])
    assert env.router.weights == Weights.canary_at(5)
    assert code == 1 and "no longer the newest" in capsys.readouterr().err
    # One line, not also the flow engine's thirty: the in-process rollback flow's refusal is
    # logged without its traceback.
    said = [r for r in flow_run_records if "RolloutSuperseded" in r.getMessage()]
    assert said and not any(r.exc_info for r in said)


class JudgeRollsBackFirst(RaceAtSecondRead):
    """Right after the abort reads the rollout (still progressing), the judge's own rollback of it
    runs to the end: traffic back, people paged, ROLLED_BACK recorded."""

    def race(self, service, got, now):
        begin_rollback(self, service, actor="judge", reason="5xx: canary 5.0% vs stable 0.1%", now=now,
                       rollout=got.rollout_id)
        self.env.router.set_weights(Weights(stable=100, canary=0))
        self.env.notifier.notify("Rollback: webordinary-edit-service", "rolled back by the judge")
        super().record(service, owner=None, now=now + 1, rollout=got.rollout_id,
                       transition=Transition(at=now + 1, kind="rollback", actor="judge", comment="5xx"),
                       phase=RolloutPhase.ROLLED_BACK, weights=Weights(stable=100, canary=0))


def test_abort_racing_the_judges_finished_rollback_neither_reopens_it_nor_pages_again(monkeypatch, capsys):
    """The abort used to set the ROLLED_BACK record back to ROLLING_BACK, move the traffic again
    and send a second Rollback page."""
    env, service, first = setup(monkeypatch, RolloutPhase.PROGRESSING, JudgeRollsBackFirst)
    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)
    assert len(pages(env)) == 1, "the abort paged a second time"
    assert env.router.calls.count("set_weights 100/0") == 1, "the abort moved the traffic again"
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK and record.history[-1].actor == "judge"
    out, err = (" ".join(said.split()) for said in capsys.readouterr())
    assert code == 1
    assert f"rollout {first.rollout_id!r}" in err and "already rolled back by judge at" in err, err
    # Where the traffic is now, from the load balancer: not only the judge's ledger entry.
    assert "load balancer now 100/0 (stable/canary), read back" in out, out


class AbortFinishesFirst(FakeLedger):
    """Between the hook's rollback reading the rollout (open) and recording its start, `rollway
    abort` rolls it back to the end: traffic back, people paged, ROLLED_BACK recorded."""

    def __init__(self, env):
        super().__init__()
        self.env = env

    def record(self, service, *, transition, **kwargs):
        if transition.kind == "rollback-start" and transition.actor.startswith("state hook"):
            rollout = self.get(service).rollout_id
            begin_rollback(self, service, actor="erin", reason="aborted by erin", now=transition.at,
                           rollout=rollout)
            self.env.router.set_weights(Weights(stable=100, canary=0))
            self.env.notifier.notify("Rollback: webordinary-edit-service", "aborted by erin")
            super().record(service, owner=None, now=transition.at, rollout=rollout,
                           transition=Transition(at=transition.at, kind="rollback", actor="erin", comment="abort"),
                           phase=RolloutPhase.ROLLED_BACK, weights=Weights(stable=100, canary=0))
        return super().record(service, transition=transition, **kwargs)


def test_a_failed_runs_hook_that_finds_the_abort_finished_first_says_so_and_does_nothing(monkeypatch, caplog):
    """The hook's rollback used to fail with a traceback and tell people to run `rollway abort` by hand."""
    env = fake_environment()
    env.ledger = AbortFinishesFirst(env)
    hooks_and_flows_see(monkeypatch, env)
    real_update = env.deployer.update_service

    def canary_cannot_scale(service, *, task_definition=None, desired=None):
        if service == env.targets.canary_service and desired:
            raise RuntimeError("UpdateService throttled")
        return real_update(service, task_definition=task_definition, desired=desired)

    env.deployer.update_service = canary_cannot_scale
    with pytest.raises(RuntimeError, match="throttled"):
        progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False)
    assert len(pages(env)) == 1, env.notifier.messages
    assert env.router.calls.count("set_weights 100/0") == 1
    assert env.ledger.get(env.targets.canary_service).history[-1].actor == "erin"
    said = [r.getMessage() for r in caplog.records if "roll" in r.getMessage() and " after " in r.getMessage()]
    assert any("not rolling back" in m and "already rolled back by erin at" in m for m in said), said
    assert not any("automatic rollback" in m for m in said), said
