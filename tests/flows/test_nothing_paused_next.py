"""`rollway promote` and `hold` with no run waiting for an answer say what to do next.

They said only where the rollout stands ("no paused rollout run for svc: its newest rollout ... is
paused at 75/25"), leaving the person to work out whether to wait, finish a rollback, finalize,
or (a rollout "paused" between weekly phases) that nothing asks until the next phase.
"""

from __future__ import annotations

import time
from uuid import uuid4

import pytest

from rollway.cli import ops
from rollway.fakes import FakeLedger, FakeRouter
from rollway import weekly
from rollway.ledger import RolloutRecord, Transition, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from rollway.targets import Targets

STARTED = 1_800_000_000.0  # 2027-01-15 08:00 UTC, a Friday
SPEC = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=w) for w in (5, 25, 100)],
                   phases=[WeeklyPhase(name="week 1", weights=(5, 25)), WeeklyPhase(name="week 2", weights=(100,))])


def commands_see(monkeypatch, phase: RolloutPhase | None, *kinds: str, **fields) -> None:
    targets = Targets()
    ledger = FakeLedger()
    if phase is not None:
        ledger.create(RolloutRecord(
            service=targets.canary_service, rollout_id="20270115T080000Z-1a2b3c4d", image=SPEC.image,
            spec_json=SPEC.model_dump_json(), phase=phase, stage_index=1, weights=Weights.canary_at(25),
            history=tuple(Transition(at=STARTED + i, kind=kind, actor="alice") for i, kind in enumerate(("start",
                                                                                                      *kinds))),
            **fields,
        ), owner=f"flow-run/{uuid4()}", now=STARTED, lease_seconds=600)
    # A block name of its own: the session's other paused runs are not this service's.
    service = ops.Service(targets=targets, targets_block=f"nothing-paused-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=ledger, router=FakeRouter(Weights.canary_at(25)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)


@pytest.mark.parametrize(("phase", "kinds", "fields", "said"), [
    (RolloutPhase.PAUSED, ("phase",), {"weekly_phase_index": 0, "weekly_phase_passed": True,
                                       "weekly_phase_started_at": STARTED},
     "It holds between weekly phases, week 1 passed; next phase week 2 (100%) due "),
    (RolloutPhase.PROGRESSING, (), {}, "its run asks at its next pause"),
    (RolloutPhase.ROLLING_BACK, ("rollback-start",), {}, "`rollway abort` finishes it"),
    (RolloutPhase.PROMOTED, ("promote",), {}, "once its monitoring window has passed, `rollway finalize`"),
    (RolloutPhase.PROMOTED, ("promote", "finalize-start"), {}, "run `rollway finalize` again"),
    (None, (), {}, "or start one from the `progressive_rollout` deployment"),
    # It said "start a new rollout once the cause is fixed", naming neither where the evidence is nor how.
    (RolloutPhase.ROLLED_BACK, ("rollback-start", "rollback"), {},
     "`rollway report --rollout 20270115T080000Z-1a2b3c4d` prints its incident report; once the cause is "
     "fixed, a new rollout tries again: start one from the `progressive_rollout` deployment"),
], ids=["between-weekly-phases", "progressing", "rolling-back", "promoted", "finalize-unfinished", "no-rollout",
        "rolled-back"])
@pytest.mark.parametrize("command", ["promote", "hold"])
def test_with_nothing_paused_the_answer_says_what_to_do_next(monkeypatch, capsys, command, phase, kinds, fields,
                                                             said):
    commands_see(monkeypatch, phase, *kinds, **fields)
    answer = ops.promote if command == "promote" else ops.hold
    extra = {"weight": None} if command == "promote" else {}
    code = answer(approver="bob", comment="", flow_run=None, targets_block=None, credentials_block=None, **extra)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "no paused rollout run" in err and said in err, err


@pytest.mark.parametrize(("days_ago", "said"), [(30, "OVERDUE: due since {due} (rollout clock), "),
                                                (0, "due {due} (rollout clock), in ")], ids=["overdue", "due"])
@pytest.mark.parametrize("command", ["promote", "hold"])
def test_with_nothing_paused_between_weekly_phases_the_answer_reads_as_status_does(monkeypatch, capsys, command,
                                                                                   days_ago, said):
    """They gave the next phase's due time alone, where `rollway status` says how far off it is, or
    that it is overdue and that the next advance_phase run starts it: a person was left to do the
    arithmetic, and to guess why nothing had asked."""
    started = time.time() - days_ago * 86400 - 3600
    commands_see(monkeypatch, RolloutPhase.PAUSED, "phase", weekly_phase_index=0, weekly_phase_passed=True,
                 weekly_phase_started_at=started)
    due = weekly.next_phase_due(started, **SPEC.phase_calendar())
    answer = ops.promote if command == "promote" else ops.hold
    extra = {"weight": None} if command == "promote" else {}
    code = answer(approver="bob", comment="", flow_run=None, targets_block=None, credentials_block=None, **extra)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and f"next phase week 2 (100%) {said.format(due=utc(due))}" in err, err
