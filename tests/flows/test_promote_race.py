"""`rollway promote` when the run leaves its pause between promote's read and the server's resume.

Prefect's resume_flow_run returns quietly when the server aborts the resume, and promote said
"approved ... resumed" while the run went on to its timeout policy.
"""

from __future__ import annotations

from uuid import uuid4

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.states import Completed, Failed, Paused, Running

from rollway.cli import ops
from rollway.fakes import FakeLedger, FakeRouter
from rollway.ledger import RefusedAnswer, RolloutRecord, Transition
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from rollway.targets import Targets


def paused_run(targets_block: str | None = None):
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("progressive_rollout")
        response = client.request("POST", "/flow_runs/", json={
            "flow_id": str(flow_id), "name": f"paused-{uuid4().hex[:6]}", "parameters": {"targets_block": targets_block},
        })
        run_id = response.json()["id"]
        client.set_flow_run_state(run_id, Running(), force=True)
        client.set_flow_run_state(run_id, Paused(timeout_seconds=600, pause_key=uuid4().hex), force=True)
        return client.read_flow_run(run_id)


def commands_see_a_rollout_owned_by(monkeypatch, run) -> None:
    """The operator commands see a rollout at 5 %, paused and owned by ``run``, in a fake ledger."""
    targets = Targets()
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=w) for w in (5, 50, 100)])
    ledger = FakeLedger()
    record = RolloutRecord(service=targets.canary_service, rollout_id="20261129T063000Z-1a2b3c4d", image=spec.image,
                           spec_json=spec.model_dump_json(), phase=RolloutPhase.PAUSED, stage_index=0,
                           weights=Weights.canary_at(5),
                           history=(Transition(at=1.0, kind="start", actor="alice"),))
    ledger.create(record, owner=f"flow-run/{run.id}", now=1.0, lease_seconds=600)
    service = ops.Service(targets=targets, targets_block=None, credentials_block=None, ledger=ledger,
                          router=FakeRouter(Weights.canary_at(5)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)


def test_promote_does_not_say_approved_when_the_run_left_its_pause_before_the_resume_landed(monkeypatch, capsys):
    run = paused_run()
    assert run.state.is_paused()
    commands_see_a_rollout_owned_by(monkeypatch, run)

    original = SyncPrefectClient.resume_flow_run

    def run_times_out_first(self, flow_run_id, run_input=None):
        # The run's own pause deadline passes now: it takes itself out of the pause (to roll back).
        self.set_flow_run_state(flow_run_id, Running(), force=True)
        return original(self, flow_run_id, run_input=run_input)

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", run_times_out_first)
    code = ops.promote(approver="alice", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    assert "approved by alice" not in out, out
    assert code == 1


def test_abort_wait_says_the_rejection_did_not_take_when_the_run_left_its_pause_first(monkeypatch, capsys):
    """The run's own approval timeout took it out of its pause and it finished (its timeout
    policy rolled back) just before `rollway abort --wait-seconds` resumed it: the command must
    say the rejection was refused, not wait and report the run's own outcome as the abort's."""
    run = paused_run()
    commands_see_a_rollout_owned_by(monkeypatch, run)
    original = SyncPrefectClient.resume_flow_run

    def run_timed_out_and_finished_first(self, flow_run_id, run_input=None):
        self.set_flow_run_state(flow_run_id, Running(), force=True)
        self.set_flow_run_state(flow_run_id, Completed(), force=True)
        return original(self, flow_run_id, run_input=run_input)

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", run_timed_out_and_finished_first)
    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=5, targets_block=None,
                     credentials_block=None)
    out, err = capsys.readouterr()
    assert code == 1 and out == "", out
    assert f"flow run {run.name} ({run.id}) cannot be resumed: it is Completed, not paused" in err, err


def says_it_waits(run) -> None:
    """What a live run does while paused: say so (a run whose process died stops saying it)."""
    import json
    import time

    from flows.approvals import waiting_prefix

    with get_client(sync_client=True) as client:
        client.create_flow_run_input(run.id, f"{waiting_prefix(run.state.state_details.pause_key)}0",
                                     json.dumps({"at": time.time(), "every": 30.0}))


NOT_APPLIED = "not applied: the run's look at the canary came first, and the rollout rolls back: 5%: canary errors 9%"


def the_look_ends_the_pause_as_the_answer_lands(monkeypatch) -> None:
    """The server takes the resume, and the run records the answer as refused (``NOT_APPLIED``)."""
    ledger = ops.connect(None, None).ledger
    original = SyncPrefectClient.resume_flow_run

    def refused_as_it_lands(self, flow_run_id, run_input=None):
        response = original(self, flow_run_id, run_input=run_input)
        record = ledger.get(Targets().canary_service)
        ledger._rollouts[record.service][-1] = record.model_copy(update={"refused_answers": (RefusedAnswer(
            at=2.0, actor=run_input["approver"], action=run_input["action"], reason=NOT_APPLIED),)})
        return response

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", refused_as_it_lands)


def the_run_fails_on_taking_the_answer(monkeypatch, message: str) -> None:
    """The server takes the resume; the run fails with ``message`` without recording the answer."""
    original = SyncPrefectClient.resume_flow_run

    def fails_as_it_lands(self, flow_run_id, run_input=None):
        response = original(self, flow_run_id, run_input=run_input)
        self.set_flow_run_state(flow_run_id, Running(), force=True)
        self.set_flow_run_state(flow_run_id, Failed(message=message), force=True)
        return response

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", fails_as_it_lands)


@pytest.mark.parametrize("command", ["promote", "hold"])
def test_an_answer_the_run_records_as_not_applied_is_said_not_taken(monkeypatch, capsys, command):
    """The answer lands during the look that ends the pause (the canary failed): the server takes
    the resume, but the run records the answer as not applied and rolls back. The person was
    told "resumed" (or that it holds), and went away believing the rollout went on."""
    run = paused_run()
    says_it_waits(run)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    the_look_ends_the_pause_as_the_answer_lands(monkeypatch)
    answer = ops.promote if command == "promote" else ops.hold
    extra = {"weight": None} if command == "promote" else {}
    code = answer(approver="alice", comment="", flow_run=None, targets_block=None, credentials_block=None, **extra)
    out, err = capsys.readouterr()
    said = " ".join(err.split())
    assert code == 1 and out == "", out
    assert f"flow run {run.name} ({run.id}) did not take alice's {command}" in said, err
    assert NOT_APPLIED in said, err


def test_an_answer_the_run_has_not_recorded_yet_is_said_resumed_and_where_to_look(monkeypatch, capsys):
    run = paused_run()
    says_it_waits(run)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    monkeypatch.setattr(ops, "ANSWER_SEEN_SECONDS", 0.3)
    code = ops.promote(approver="alice", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, _err = capsys.readouterr()
    said = " ".join(out.split())
    assert code == 0 and f"approved by alice: flow run {run.name} ({run.id}) resumed" in said, out
    assert "not recorded taking it yet" in said and "`rollway status`" in said, out


def test_an_abort_the_run_ends_without_taking_says_nothing_was_rolled_back(monkeypatch, capsys):
    """The run took the resume, found that another run had driven its rollout meanwhile (took the
    lapsed lease and promoted it) and ended without acting on the reject: the abort said "resumed
    to roll back" and exited 0, and on-call left the promoted canary in production."""
    run = paused_run()
    says_it_waits(run)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    moved_on = ("rollout '20261129T063000Z-1a2b3c4d' of 'canary' moved on while this run waited: it is promoted at "
                "0/100 after promote by bob; erin's answer (reject) is not applied")
    the_run_fails_on_taking_the_answer(monkeypatch, moved_on)
    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0, targets_block=None,
                     credentials_block=None)
    out, err = capsys.readouterr()
    said = " ".join(err.split())
    assert code == 1 and "rejected by erin" not in out, out
    assert f"flow run {run.name} ({run.id}) did not take erin's reject: it ended Failed" in said, err
    assert moved_on in said and "nothing was rolled back by this command" in said, err


def test_an_abort_the_run_records_as_not_applied_says_the_run_rolls_back_on_its_own(monkeypatch, capsys):
    """The reject lands during the look that ends the pause: the run rolls back on its own reason,
    which the ledger and the page give, and records the reject as not applied. The abort said
    "rejected by erin", and erin took the page's reason for a mistake."""
    run = paused_run()
    says_it_waits(run)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    the_look_ends_the_pause_as_the_answer_lands(monkeypatch)
    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0, targets_block=None,
                     credentials_block=None)
    out, err = capsys.readouterr()
    said = " ".join(err.split())
    assert code == 0 and "rejected by erin" not in out, out
    assert f"flow run {run.name} ({run.id}) rolls back on its own" in " ".join(out.split()), out
    assert f"flow run {run.name} ({run.id}) did not take erin's reject: {NOT_APPLIED}" in said, err


def test_a_promote_the_run_ends_without_taking_is_said_not_taken(monkeypatch, capsys):
    run = paused_run()
    says_it_waits(run)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    the_run_fails_on_taking_the_answer(monkeypatch, "moved on; alice's answer (approve) is not applied")
    code = ops.promote(approver="alice", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    assert code == 1 and "approved by alice" not in out, out
    assert "did not take alice's promote: it ended Failed without recording it: moved on" in " ".join(err.split()), err


def test_an_abort_that_finds_the_rollout_already_rolled_back_says_so_and_by_whom_not_that_it_rolls_back(
        monkeypatch, capsys):
    """The run's watch rolled back while the Prefect API was away, and the reject landed as it came
    back: the run took it and ended, the rollout already rolled back. The abort said the run "rolls
    back on its own", as if the traffic were still on the canary and a rollback yet to come."""
    from rollway.ledger import utc

    run = paused_run()
    says_it_waits(run)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    ledger = ops.connect(None, None).ledger
    original = SyncPrefectClient.resume_flow_run

    def rolled_back_before_it_took_it(self, flow_run_id, run_input=None):
        response = original(self, flow_run_id, run_input=run_input)
        record = ledger.get(Targets().canary_service)
        ledger._rollouts[record.service][-1] = record.model_copy(update={
            "phase": RolloutPhase.ROLLED_BACK, "weights": Weights.canary_at(0),
            "history": record.history + (
                Transition(at=1_796_000_000.0, kind="rollback-start", actor="judge", comment="canary errors 9/600"),
                Transition(at=1_796_000_030.0, kind="rollback", actor="judge"))})
        self.set_flow_run_state(flow_run_id, Running(), force=True)
        self.set_flow_run_state(flow_run_id, Completed(), force=True)
        return response

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", rolled_back_before_it_took_it)
    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0, targets_block=None,
                     credentials_block=None)
    out, err = capsys.readouterr()
    said = " ".join((out + err).split())
    assert code == 0 and "rejected by erin" not in said, said
    assert "rolls back on its own" not in said, said
    assert f"flow run {run.name} ({run.id}) did not take erin's reject" in said, said
    assert (f"the rollout was already rolled back (begun by judge: canary errors 9/600 at {utc(1_796_000_000.0)} "
            "(rollout clock)): nothing is left for this command to roll back") in said, said
