"""`rollway abort` stamps its entries on the rollout's clock, not on wall time.

Under `rollway up` (and the demo) the runs keep a sped-up rollout clock: at 60x, an hour of wall
time is 60 hours of rollout time. The abort used to stamp its rollback-start entry with
time.time() and run its rollback flow on the default (real-time) clock, so `rollway status`
showed the abort and the rollback's end days before the deploy they ended.
"""
from __future__ import annotations

import re
import time
from uuid import uuid4

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Completed

import flows.rollback
import rollway.cli.ops as ops
from flows.env import OWNER_PREFIX
from rollway.clock import ClockSettings
from rollway.fakes import FakeLedger
from rollway.ledger import RolloutRecord, Transition, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_abort_races import SPEC


@flow(name="progressive_rollout")
def stand_in() -> None:
    """Names the owning run's flow; never run."""


def aborted_at_60x(monkeypatch, capsys, *, owned: bool):
    """`rollway abort` of a rollout at 5 % whose run ran an hour into a 60x demo, its last entry a
    shift just now (rollout clock): the run owns the rollout (``owned``), or is only tagged with it
    (it gave its lease back). Returns (env, the service, the shift's time, the clocks the rollback
    flow was built on, the run's clock)."""
    from rollway.rollout_tags import rollout_tag

    clock = ClockSettings(speed=60.0, anchor=time.time() - 3600)  # an hour into a 60x demo
    now = clock.build().now()
    rollout = new_rollout_id(now - 600)
    with get_client(sync_client=True) as client:
        owner = client.create_flow_run(stand_in, parameters={"clock": clock.model_dump(mode="json")},
                                       tags=[rollout_tag(rollout)], state=Completed())
    env = fake_environment()
    env.ledger = FakeLedger()
    env.wall = time.time
    built: list[ClockSettings] = []

    def load_environment(targets_block, aws_credentials_block, clock=ClockSettings(), **kwargs):
        built.append(clock)
        env.clock = clock.build()
        return env

    monkeypatch.setattr(flows.rollback, "load_environment", load_environment)
    service = env.targets.canary_service
    record = RolloutRecord(service=service, rollout_id=rollout, image=SPEC.image,
                           spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                           weights=Weights.canary_at(5), previous_task_definition=STABLE_TD, stable_desired=4)
    env.ledger.create(record, owner=f"{OWNER_PREFIX}{owner.id}" if owned else f"process/{uuid4()}", now=now - 600,
                      lease_seconds=0)
    FakeLedger.record(env.ledger, service, owner=None, now=now,
                      transition=Transition(at=now, kind="shift", actor="judge", to_weights=Weights.canary_at(5)))
    env.router.weights = Weights.canary_at(5)
    ops_service = ops.Service(targets=env.targets, targets_block=f"abort-clock-{uuid4().hex[:8]}",
                              credentials_block=None, ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: ops_service)

    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=ops_service.targets_block, credentials_block=None)

    assert code == 0, capsys.readouterr()
    return env, service, now, built, clock


def test_abort_stamps_its_entries_on_the_owning_runs_60x_clock(monkeypatch, capsys):
    env, service, now, built, clock = aborted_at_60x(monkeypatch, capsys, owned=True)
    history = env.ledger.get(service).history
    assert [t.kind for t in history][-4:] == ["rollback-start", "notifying", "notified", "rollback"], history
    start, notice, end = history[-3:]
    stamped = [(t.kind, t.at) for t in history]
    assert start.at >= now and end.at >= notice.at >= start.at, stamped  # in order, after the run's shift
    # Rollout-clock times: 59 hours ahead of the wall clock by now, not the wall clock's.
    assert start.at > time.time() + 3600 and notice.at > time.time() + 3600 and end.at > time.time() + 3600, stamped
    assert built == [clock], built  # the rollback flow ran on the rollout's clock too
    # A span between those entries is 60 times the wall time it took: the start keeps the wall time,
    # as the end does, and the incident report's time to restore is their wall span, labelled so.
    from rollway.reports import incident_report

    report = incident_report(env.ledger.get(service))
    restore = next((line for line in report.splitlines() if "**Traffic back on stable:**" in line), report)
    assert re.search(r"\*\* \d+ s after the rollback began \(.* on the wall clock,", restore), restore


def test_an_abort_that_cannot_reach_the_api_still_records_its_intent(monkeypatch, capsys):
    """Asking the owning run for its clock must not cost the abort its first write: with the
    Prefect API unable to read the run, the intent is recorded (on real time, with a warning),
    and the abort, unable to stop the run either, says so and rolls back all the same: it
    exited 1 there, the ledger saying "rolling back" and the traffic still on the canary."""
    import httpx

    env = fake_environment()
    env.ledger = FakeLedger()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    now = time.time()
    service = env.targets.canary_service
    record = RolloutRecord(service=service, rollout_id=new_rollout_id(now - 600), image=SPEC.image,
                           spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                           weights=Weights.canary_at(5), previous_task_definition=STABLE_TD, stable_desired=4)
    env.ledger.create(record, owner=f"{OWNER_PREFIX}{uuid4()}", now=now - 600, lease_seconds=0)
    ops_service = ops.Service(targets=env.targets, targets_block=f"abort-clock-{uuid4().hex[:8]}",
                              credentials_block=None, ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: ops_service)
    monkeypatch.setattr(ops, "find_paused_run", lambda *a, **k: (_ for _ in ()).throw(ops.NoPausedRun("none")))

    def api_down(client, run_id):
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(ops, "read_run", api_down)

    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=ops_service.targets_block, credentials_block=None)

    err = " ".join(capsys.readouterr().err.split())
    assert code == 0, err
    assert "could not read the rollout's clock" in err and "stamping the abort on real time" in err, err
    assert "which owns the rollout (connection refused); rolling back anyway" in err, err
    recorded = env.ledger.get(service)
    assert recorded.phase is RolloutPhase.ROLLED_BACK, recorded
    assert [e.actor for e in recorded.history if e.kind == "rollback-start"] == ["erin"], recorded
    assert env.router.weights == Weights.canary_at(0)


def test_abort_of_a_rollout_no_run_owns_stamps_its_entries_on_the_clock_its_runs_ran_on(monkeypatch, capsys):
    """A rollout no flow run owns (a weekly rollout between phases, a promotion whose window is owed)
    whose runs ran at 60x: the abort stamped its entries on real time, 59 hours before the run's
    last entry, so `rollway status` listed the rollback's start and end before the shift it undid."""
    env, service, now, built, clock = aborted_at_60x(monkeypatch, capsys, owned=False)
    history = env.ledger.get(service).history
    stamped = [(t.kind, t.at) for t in history]
    start, end = (next(t for t in history if t.kind == kind) for kind in ("rollback-start", "rollback"))
    assert now <= start.at <= end.at, stamped  # after the run's shift, in order
    assert built == [clock], built  # the rollback flow ran on the rollout's clock too
