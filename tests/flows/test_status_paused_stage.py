"""`rollway status` of a run paused on a stage it has not passed.

The ledger keeps such a rollout `progressing` while its run waits for a person (the judge could
not decide the stage, or its metrics could not be read): status said the stage was "baking"
right above a question saying the stage was over.
"""

from __future__ import annotations

import time

import pytest

from rollway.cli import ops
from rollway.fakes import FakeLedger, FakeRouter
from rollway.ledger import RolloutRecord, Transition
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from rollway.targets import Targets
from tests.flows.test_answer_not_taken import paused_with_its_form


def _status_of_a_progressing_rollout_owned_by(monkeypatch, owner: str, leased_ago: float = 0.0) -> None:
    """``leased_ago``: how long before now (wall clock) its 600 s lease was taken."""
    targets = Targets()
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=w) for w in (5, 50, 100)])
    ledger = FakeLedger()
    record = RolloutRecord(service=targets.canary_service, rollout_id="20261129T063000Z-1a2b3c4d", image=spec.image,
                           spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                           stage_passed=False, weights=Weights.canary_at(5),
                           history=(Transition(at=1.0, kind="start", actor="alice"),))
    # The lease on the wall clock, as a run under way holds it: one that lapsed says no run bakes the stage.
    ledger.create(record, owner=owner, now=1.0, lease_seconds=600, wall=time.time() - leased_ago)
    service = ops.Service(targets=targets, targets_block=None, credentials_block=None, ledger=ledger,
                          router=FakeRouter(Weights.canary_at(5)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)


@pytest.mark.parametrize("leased_ago", [0.0, 1200.0])
def test_status_of_a_run_paused_on_a_stage_not_passed_does_not_call_it_baking(monkeypatch, capsys, leased_ago):
    """``leased_ago`` 1200 s: its 600 s lease lapsed while it waits, as a paused run renews none.
    Status's owner row said "lease until <a time long past>" beside it, read as a run renewing it:
    it says the lease lapsed and why that leaves the rollout with the paused run."""
    thread, outcome, run = paused_with_its_form(timeout=120)
    _status_of_a_progressing_rollout_owned_by(monkeypatch, f"flow-run/{run.id}", leased_ago=leased_ago)
    try:
        code = ops.status(targets_block=None, credentials_block=None)
        out, err = capsys.readouterr()
    finally:
        ops.resume(run.id, {"action": "reject", "approver": "test", "comment": "done"}, paused=run.state)
        thread.join(30)
    said = " ".join(out.split())
    assert code == 0, err
    assert "waiting for an answer" in said, out
    assert "1/3 (5%), not passed; its run is paused (below)" in said and "baking" not in said, out
    assert "no run drives" not in said, out
    assert (f"flow-run/{run.id}, lease until " in said) is not bool(leased_ago), out
    assert (f"flow-run/{run.id}, whose lease lapsed at " in said) is bool(leased_ago), out
    assert (("a run waiting for an answer (below) renews no lease, and no other run takes the rollout over while it "
             "waits") in said) is bool(leased_ago), out


def test_status_of_a_stage_under_way_with_no_paused_run_still_says_baking(monkeypatch, capsys):
    _status_of_a_progressing_rollout_owned_by(monkeypatch, "process/12345")
    monkeypatch.setattr(ops, "find_paused_run", lambda *a: (_ for _ in ()).throw(ops.NoPausedRun("none")))
    code = ops.status(targets_block=None, credentials_block=None)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1/3 (5%), baking" in " ".join(out.split()), out
