"""`rollway status` of a rollout holding between weekly phases, on the real Prefect API: when the
next phase is due, read on the clock the rollout ran on (the `clock` of its flow runs)."""

from __future__ import annotations

import time

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Completed

from rollway import weekly
from rollway.cli import ops
from rollway.clock import ClockSettings
from rollway.fakes import FakeLedger, FakeRouter
from rollway.ledger import RolloutRecord, Transition, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.rollout_tags import rollout_tag
from rollway.spec import RolloutSpec
from rollway.targets import Targets

SPED_UP = "20270104T090000Z-5e6f7a8b"


@flow(name="progressive_rollout")
def progressive_rollout(clock: dict | None = None) -> None:
    """Stands for the run that drove the rollout: only its stored parameters and tags are read."""


def _holding_after_week_1(monkeypatch, started_at: float, rollout_id: str) -> float:
    """A rollout whose week 1 passed, started at ``started_at``; returns when week 2 is due."""
    targets = Targets()
    spec = RolloutSpec(image="repo/app:2.0.0")
    ledger = FakeLedger()
    record = RolloutRecord(service=targets.canary_service, rollout_id=rollout_id, image=spec.image,
                           spec_json=spec.model_dump_json(), phase=RolloutPhase.PAUSED, stage_index=0,
                           stage_passed=True, weights=Weights.canary_at(5), phased=True, weekly_phase_index=0,
                           weekly_phase_passed=True, weekly_phase_started_at=started_at,
                           history=(Transition(at=started_at, kind="start", actor="alice"),))
    ledger.create(record, owner="process/1", now=started_at, lease_seconds=600)
    ledger.release(targets.canary_service, owner="process/1")
    service = ops.Service(targets=targets, targets_block=None, credentials_block=None, ledger=ledger,
                          router=FakeRouter(Weights.canary_at(5)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    return weekly.next_phase_due(started_at, **spec.phase_calendar())


def _status(capsys) -> str:
    code = ops.status(targets_block=None, credentials_block=None)
    out, err = capsys.readouterr()
    assert code == 0, err
    return " ".join(out.split())


def test_status_says_the_next_weekly_phase_is_overdue_on_the_clock_its_runs_ran_on(monkeypatch, capsys):
    """On `rollway up`'s sped-up clock the ledger's times run far ahead of the wall: read on the
    wall clock a phase overdue on the rollout's own calendar would seem weeks away."""
    clock = ClockSettings(speed=1000, anchor=time.time() - 3600)
    rollout_now = clock.build().now()  # about 41 days ahead of the wall clock
    due = _holding_after_week_1(monkeypatch, started_at=rollout_now - 8 * 86400, rollout_id=SPED_UP)
    assert time.time() < due < rollout_now
    with get_client(sync_client=True) as client:
        client.create_flow_run(progressive_rollout, parameters={"clock": clock.model_dump()},
                               tags=[rollout_tag(SPED_UP)], state=Completed())
    said = _status(capsys)
    assert f"next phase week 2 (25% -> 50%) OVERDUE: due since {utc(due)} (rollout clock)" in said, said
    assert "no advance_phase run has started it" in said


def test_status_says_when_the_next_weekly_phase_is_due_at_real_time(monkeypatch, capsys):
    due = _holding_after_week_1(monkeypatch, started_at=time.time() - 3600,
                                rollout_id="20270104T090000Z-9c0d1e2f")  # no flow run: real time
    said = _status(capsys)
    assert f"next phase week 2 (25% -> 50%) due {utc(due)} (rollout clock), in " in said, said
    assert "wall time" not in said  # a real-time clock has no wall time of its own to tell
    # "phase paused" beside "weekly phase ... passed" read as a pause waiting for an answer: the
    # rollout waits for the schedule's next phase, and both rows say so.
    assert f"phase paused between weekly phases, nothing to answer: waiting for week 2, due {utc(due)} " \
           "(rollout clock)" in said, said
    assert "weekly phase week 1 (1 of 3), passed; the rollout waits for the next one" in said, said
