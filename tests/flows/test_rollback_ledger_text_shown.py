"""What a rollback says of the names and reasons the ledger holds (who began a rollback and why, who
holds its claim, who ended it) is shown through ``rollway.one_line.on_one_line``: an item written by an older
release or edited by hand may hold an escape sequence or a bidirectional control, which acted on the
terminal reading the run's log, or a line break, which wrote a line of its own there."""
from __future__ import annotations

import pytest

from flows.rollback import _finished_meanwhile, done_by_other
from rollway.fakes import FakeLedger
from rollway.ledger import (RollbackClaimed, RolloutPhase, RolloutRecord, Transition, check_rollback_claim,
                            new_rollout_id)
from tests.flows.fake_env import fake_environment

NAME = "eve\x1b[2J\u202eoperator"
SHOWN = "eve\\x1b[2J\\u202eoperator"
REASON = "error rate 7%\nRequested by: nobody"
REASON_SHOWN = "error rate 7% Requested by: nobody"


def rolled_back_by_eve(phase: RolloutPhase = RolloutPhase.ROLLED_BACK, **fields) -> RolloutRecord:
    return RolloutRecord(
        service="webordinary-edit-service-canary", rollout_id=new_rollout_id(100.0),
        image="webordinary/edit-container:2.0.0", spec_json="{}", phase=phase,
        history=(Transition(at=100.0, kind="rollback", actor=NAME, comment=REASON),), **fields)


def unshown(text: str) -> bool:
    return any(c in text for c in ("\x1b", "\u202e", "\n"))


def test_what_another_rollback_did_is_said_with_its_names_and_reason_shown():
    held = RollbackClaimed("held", holder=f"{NAME} (run 1)", expires=200.0)
    done = done_by_other(rolled_back_by_eve(), held)
    said = " ".join((done.reason, done.done_by or "", *done.steps))
    assert not unshown(said), said
    assert done.reason == REASON_SHOWN and f"rolled back by {SHOWN} ({SHOWN} (run 1))" in done.steps[0], done


def test_a_rollback_another_run_finished_meanwhile_names_who_shown():
    env = fake_environment()
    env.ledger = FakeLedger()
    record = rolled_back_by_eve()
    env.ledger.create(record, owner="run-0", now=100.0, lease_seconds=0)
    said = _finished_meanwhile(env, record, RuntimeError("closed"))
    assert not unshown(said) and f"finished by {SHOWN} at " in said, said


def test_a_rollback_claimed_by_another_names_its_holder_shown():
    record = rolled_back_by_eve(RolloutPhase.ROLLING_BACK, rollback_holder=f"{NAME} (run 1)", rollback_expires=900.0)
    with pytest.raises(RollbackClaimed) as claimed:
        check_rollback_claim(record, "bob (run 2)", 150.0)
    said = str(claimed.value)
    assert not unshown(said) and f"being rolled back by {SHOWN} (run 1)" in said, said
    assert claimed.value.holder == f"{NAME} (run 1)", "the holder, as the ledger has it, for the claim's checks"
