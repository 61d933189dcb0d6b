"""`rollway status` of a rollout holding between weekly phases, on the real Prefect API: when the
next phase is due, read on the clock the rollout ran on (the `clock` of its flow runs)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Completed, Running, Scheduled

from rollway import weekly
from rollway.cli import ops
from rollway.clock import ClockSettings
from rollway.fakes import FakeLedger, FakeRouter
from rollway.ledger import RolloutRecord, Transition, utc
from rollway.reports import duration
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.rollout_tags import rollout_tag
from rollway.spec import RolloutSpec
from rollway.targets import Targets

SPED_UP = "20270104T090000Z-5e6f7a8b"


@flow(name="progressive_rollout")
def progressive_rollout(clock: dict | None = None) -> None:
    """Stands for the run that drove the rollout: only its stored parameters and tags are read."""


def _holding_after_week_1(monkeypatch, started_at: float, rollout_id: str, targets_block: str | None = None) -> float:
    """A rollout whose week 1 passed, started at ``started_at``, of the service ``targets_block``
    names; returns when week 2 is due."""
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
    service = ops.Service(targets=targets, targets_block=targets_block, credentials_block=None, ledger=ledger,
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


@flow(name="advance_phase")
def advance_phase() -> None:
    """Stands for the weekly deployment's runs: only their deployment, targets_block, times and states are read."""


def _advance_deployment(targets_block: str) -> object:
    """An advance_phase deployment of the rollout ``targets_block`` names, as serve.py registers one
    (named after the block: one deployment of a flow per name)."""
    with get_client(sync_client=True) as client:
        return client.create_deployment(flow_id=client.create_flow(advance_phase), name=f"rollway-{targets_block}",
                                        parameters={"targets_block": targets_block})


def _advance_runs(deployment, *states, **parameters) -> list:
    """Runs of ``deployment`` in ``states``; ``parameters``: the form's, over the deployment's."""
    with get_client(sync_client=True) as client:
        return [client.create_flow_run_from_deployment(deployment, state=state, parameters=parameters or None).id
                for state in states]


def _service_block() -> str:
    """A targets block name of this test's own: status reads that rollout's runs alone."""
    return f"edit-{uuid.uuid4().hex[:8]}"


def _status_while(capsys, runs) -> str:
    """Status's words while the flow runs ``runs`` are on the server, deleted after."""
    try:
        return _status(capsys)
    finally:
        with get_client(sync_client=True) as client:
            for run_id in runs:
                client.delete_flow_run(run_id)


def _monday_before(seconds: float) -> float:
    """Monday 00:00 UTC at or before ``seconds``."""
    day = datetime.fromtimestamp(seconds, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day - timedelta(days=day.weekday())).timestamp()


def test_status_of_a_phase_due_before_the_schedules_run_names_that_run_not_an_overdue_phase(monkeypatch, capsys):
    """A week 2 falls due on Monday 00:00 (the calendar's week starts there) and the weekly cron
    fires at 09:00: every Monday morning status said OVERDUE, "no advance_phase run has started
    it", and asked for a run by hand, at 3 a.m., of a phase whose approval then timed out unanswered."""
    now = time.time()
    block = _service_block()
    due = _holding_after_week_1(monkeypatch, started_at=_monday_before(now) - 7 * 86400 + 9 * 3600,
                                rollout_id="20270104T090000Z-1a2b3c4d", targets_block=block)
    assert due <= now
    weekly_runs = _advance_deployment(block)
    cron = datetime.fromtimestamp(now + 6 * 3600, timezone.utc)
    said = _status_while(capsys, _advance_runs(weekly_runs, Scheduled(scheduled_time=cron),
                                               Scheduled(scheduled_time=cron + timedelta(days=7))))
    assert "OVERDUE" not in said, said
    assert (f"next phase week 2 (25% -> 50%) due since {utc(due)} (rollout clock), {duration(now - due)} ago: the "
            f"weekly schedule's advance_phase run at {utc(cron.timestamp())}, in 6.0 h, starts it") in said, said

    # Its worker down at the cron time, the run waits, Late: said so, still not overdue.
    late = datetime.fromtimestamp(now - 3600, timezone.utc)
    said = _status_while(capsys, _advance_runs(weekly_runs, Scheduled(scheduled_time=late, name="Late")))
    assert f"advance_phase run at {utc(late.timestamp())}, late by 60." in said and "OVERDUE" not in said, said

    # Once an advance_phase run has begun since it fell due and did not start it, it is overdue.
    said = _status_while(capsys, _advance_runs(weekly_runs, Running()))
    assert f"next phase week 2 (25% -> 50%) OVERDUE: due since {utc(due)}" in said, said


def test_status_of_a_phase_due_after_this_weeks_run_names_the_schedules_run_that_starts_it(monkeypatch, capsys):
    """A week 1 started on Friday is old enough at Monday 14:00, after the 09:00 cron: status said
    "in 2.9 days", and the phase started a week later than that."""
    now = time.time()
    block = _service_block()
    due = _holding_after_week_1(monkeypatch, started_at=now - 3600, rollout_id="20270104T090000Z-5d6e7f8a",
                                targets_block=block)
    before, after = (datetime.fromtimestamp(at, timezone.utc) for at in (due - 3600, due - 3600 + 7 * 86400))
    said = _status_while(capsys, _advance_runs(_advance_deployment(block), Scheduled(scheduled_time=before),
                                               Scheduled(scheduled_time=after)))
    assert (f"next phase week 2 (25% -> 50%) due {utc(due)} (rollout clock), in {duration(due - now)}: the weekly "
            f"schedule's advance_phase run at {utc(after.timestamp())}, in {duration(after.timestamp() - now)}, "
            "starts it") in said, said


def test_status_names_its_own_rollouts_advance_phase_runs_not_another_services_on_the_same_server(monkeypatch,
                                                                                                 capsys):
    """Two services' rollouts on one Prefect server, each with its weekly advance_phase deployment:
    status read every advance_phase run on the server, named the other service's scheduled run as
    the one that starts this rollout's phase, and called the phase OVERDUE once the other
    service's run (or one run from this deployment's form for the other service) had begun."""
    now, ours, theirs = time.time(), _service_block(), _service_block()
    due = _holding_after_week_1(monkeypatch, started_at=_monday_before(now) - 7 * 86400 + 9 * 3600,
                                rollout_id="20270104T090000Z-2b3c4d5e", targets_block=ours)
    assert due <= now
    mine, other = _advance_deployment(ours), _advance_deployment(theirs)
    cron = datetime.fromtimestamp(now + 6 * 3600, timezone.utc)
    said = _status_while(capsys, _advance_runs(other, Scheduled(scheduled_time=cron - timedelta(hours=5)), Running())
                         + _advance_runs(mine, Running(), targets_block=theirs)
                         + _advance_runs(mine, Scheduled(scheduled_time=cron)))
    assert "OVERDUE" not in said, said
    assert (f"due since {utc(due)} (rollout clock), {duration(now - due)} ago: the weekly schedule's advance_phase "
            f"run at {utc(cron.timestamp())}, in 6.0 h, starts it") in said, said

    # Its own deployment's run that began since the phase fell due is read: that one said why it did not start it.
    said = _status_while(capsys, _advance_runs(mine, Running()))
    assert f"next phase week 2 (25% -> 50%) OVERDUE: due since {utc(due)}" in said, said
