"""The rollback flow run by hand with a `rollout` id the ledger does not hold (a typo, an id of
another service's rollout): refused before anything moves, saying so.

It was refused as "rollout '<id>' ... is no longer the newest ...; the write meant for '<id>' is
not applied": a rollout that never was, said to have been the newest once, and nothing said that
nothing had changed or what to give instead.
"""
from __future__ import annotations

import logging

from flows.rollback import RollbackRefused, rollback
from rollway.fakes import FakeLedger
from rollway.ledger import RolloutSuperseded
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.fake_env import STABLE_TD
from tests.flows.test_rollback_claim import rolling_back


def test_a_rollout_id_the_ledger_does_not_hold_is_refused_saying_so_before_anything_moves(monkeypatch, caplog):
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    t = env.targets
    typo = first.rollout_id[:-1] + ("0" if first.rollout_id[-1] != "0" else "1")

    with caplog.at_level(logging.ERROR):
        state = rollback(reason="5xx on the canary", rollout=typo, return_state=True)

    refused = state.result(raise_on_failure=False)
    assert isinstance(refused, RolloutSuperseded), refused  # as before: the hooks leave such a rollout alone
    said = str(refused)
    assert f"no rollout {typo!r} of {t.canary_service} is recorded" in said, said
    assert "no longer the newest" not in said, said
    assert f"its newest is {first.rollout_id} ({first.image}, rolling_back)" in said, said
    assert "Nothing was changed" in said and "`rollway status` shows" in said, said
    assert env.router.calls == [] and env.router.weights == Weights.canary_at(5)
    assert not [c for c in env.deployer.calls if not c.startswith("describe")], env.deployer.calls
    # A refusal that says everything on its line: no traceback under it in the run's log.
    failed = [r for r in caplog.records if isinstance((r.exc_info or (None, None))[1], RolloutSuperseded)]
    assert failed == [], [r.getMessage() for r in failed]


def test_an_older_rollout_of_the_service_is_still_refused_as_no_longer_the_newest(monkeypatch):
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    older = first.model_copy(update={"rollout_id": "20200101T000000Z-0000aaaa", "phase": RolloutPhase.ROLLED_BACK})
    env.ledger._rollouts[env.targets.canary_service].insert(0, older)  # recorded before it, oldest first

    state = rollback(reason="5xx on the canary", rollout=older.rollout_id, return_state=True)

    refused = state.result(raise_on_failure=False)
    assert isinstance(refused, RolloutSuperseded) and "no longer the newest" in str(refused), refused
    assert env.router.calls == []


def test_a_previous_task_definition_of_another_family_is_refused_before_any_write_naming_both(monkeypatch, caplog):
    """A person gave the rollback another service's revision (copied from the wrong console tab):
    it was only checked for its form, and the rollback moved the traffic, recorded its start and
    pointed the canary service at a task definition of another application."""
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    t = env.targets
    history = list(env.ledger.get(t.canary_service).history)

    with caplog.at_level(logging.ERROR):
        state = rollback(reason="5xx on the canary", previous_task_definition="webordinary-api-task:7",
                         return_state=True)

    refused = state.result(raise_on_failure=False)
    assert isinstance(refused, RollbackRefused), refused
    said = str(refused)
    assert "webordinary-api-task" in said and "webordinary-edit-task" in said and t.canary_service in said, said
    assert "Nothing was changed" in said, said
    assert f"leave previous_task_definition empty to restore the one the rollout recorded ({STABLE_TD})" in said, said
    assert env.router.calls == [] and env.router.weights == Weights.canary_at(5)
    assert not [c for c in env.deployer.calls if not c.startswith("describe")], env.deployer.calls
    assert list(env.ledger.get(t.canary_service).history) == history
    assert env.notifier.messages == []
    traced = [r for r in caplog.records if isinstance((r.exc_info or (None, None))[1], RollbackRefused)]
    assert traced == [], [r.getMessage() for r in traced]


def test_rollway_abort_restores_the_recorded_revision_when_the_rollout_runs_another_family(monkeypatch, capsys):
    """The rollout's release was registered into a renamed task family (the targets block's
    task_family changed since the last release): `rollway abort` hands the rollback flow the
    revision the ledger recorded, of the old family, and the flow refused it as "another
    application's": users stayed on the canary, and the abort has no way to leave it empty."""
    import rollway.cli.ops as ops

    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    t = env.targets
    renamed = "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-v2-task:1"
    env.deployer.services[t.canary_service] = env.deployer.services[t.canary_service].model_copy(
        update={"task_definition": renamed})
    service = ops.Service(targets=t, targets_block="renamed-family", credentials_block=None, ledger=env.ledger,
                          router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: service)

    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)

    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[t.canary_service].task_definition == first.previous_task_definition
    assert env.ledger.get(t.canary_service).phase is RolloutPhase.ROLLED_BACK


def test_the_other_family_refusal_with_no_rollout_recorded_says_what_an_empty_revision_restores(monkeypatch):
    """No rollout is recorded (no ledger): the refusal told the person to leave
    previous_task_definition empty "to restore the one the rollout recorded", of a rollout nobody
    recorded; empty, the rollback restores the revision the stable service runs."""
    from tests.flows.fake_env import fake_environment
    from tests.flows.test_refusals import hooks_and_flows_see

    env = fake_environment()
    env.router.weights = Weights.canary_at(5)
    hooks_and_flows_see(monkeypatch, env)

    state = rollback(reason="5xx on the canary", previous_task_definition="webordinary-api-task:7", return_state=True)

    refused = state.result(raise_on_failure=False)
    assert isinstance(refused, RollbackRefused), refused
    said = str(refused)
    assert "the one the rollout recorded" not in said, said
    assert (f"leave previous_task_definition empty to restore the revision {env.targets.stable_service} runs"
            in said), said
    assert env.router.weights == Weights.canary_at(5)
