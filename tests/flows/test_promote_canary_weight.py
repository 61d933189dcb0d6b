"""`rollway promote --weight` when the paused run is the `canary` flow's, which keeps no ledger.

The weight was checked only against a run owning the ledger's rollout, so for a `canary` run
promote said "approved ... resumed" (exit 0) to a weight the run then refused, asking again:
the operator left, and the pause timed out into a rollback.
"""

from __future__ import annotations

from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Cancelled, Paused, Running

from rollway.cli import ops
from rollway.fakes import FakeLedger, FakeRouter
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from rollway.targets import Targets
from tests.unit.test_cli_ops import rolled_back_ledger


_CREATED: list = []  # the runs of the current test, ended after it


@pytest.fixture(autouse=True)
def _runs_end():
    """Every `canary` run a test here made is Cancelled after it. Left Running or Paused on the
    session's API, with a targets block that cannot be loaded, each was a `canary` run that may
    act on any service: every later `finalize --unrecorded` in the session (the files after this
    one) was refused for it."""
    yield
    with get_client(sync_client=True) as client:
        for run_id in _CREATED:
            client.set_flow_run_state(run_id, Cancelled(message="test over"), force=True)
    _CREATED.clear()


def canary_run(spec: RolloutSpec, targets_block: str, *, paused: bool = True):
    """A `canary` flow run on the session's Prefect API, Running (or then Paused for its approval),
    until the test ends."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("canary")
        response = client.request("POST", "/flow_runs/", json={
            "flow_id": str(flow_id), "name": f"canary-{uuid4().hex[:6]}",
            "parameters": {"targets_block": targets_block, "spec": spec.model_dump(mode="json")},
        })
        run_id = response.json()["id"]
        _CREATED.append(run_id)
        client.set_flow_run_state(run_id, Running(), force=True)
        if paused:
            client.set_flow_run_state(run_id, Paused(timeout_seconds=600, pause_key=uuid4().hex), force=True)
        return client.read_flow_run(run_id)


@pytest.fixture
def canary_paused_before_30(monkeypatch):
    """A `canary` run of 10, 30, 100 % paused for its approval before 30 % (the ALB at 10 %);
    the ledger's newest rollout is an old one, rolled back."""
    targets = Targets()
    ledger = rolled_back_ledger(targets)
    # A block name of its own: the session's other paused runs are not this service's.
    block = f"canary-paused-{uuid4().hex[:8]}"
    service = ops.Service(targets=targets, targets_block=block, credentials_block=None, ledger=ledger,
                          router=FakeRouter(Weights.canary_at(10)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=10), Stage(weight=30, approval=True),
                                                       Stage(weight=100)])
    run = canary_run(spec, block)
    sent = []
    monkeypatch.setattr(ops, "resume", lambda run_id, answer, **_: sent.append((run_id, answer)))
    return run, sent


@pytest.mark.parametrize("weight", [7, 10, 50])
def test_promote_refuses_a_weight_the_canary_run_would_refuse(canary_paused_before_30, weight, capsys):
    run, sent = canary_paused_before_30
    code = ops.promote(approver="alice", comment="", weight=weight, flow_run=run.id, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    assert code == 1 and not sent, (out, err)
    assert "approved" not in out and f"--weight {weight}" in err and "[30, 100]" in err and "nothing was approved" in err


@pytest.mark.parametrize("weight", [30, 100])
def test_promote_passes_on_a_weight_the_canary_run_takes(canary_paused_before_30, weight, capsys):
    run, sent = canary_paused_before_30
    code = ops.promote(approver="alice", comment="", weight=weight, flow_run=run.id, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert sent == [(run.id, {"action": "approve", "approver": "alice", "comment": "", "next_weight": weight})]


def test_status_names_a_paused_canary_run_after_a_finished_rollout(canary_paused_before_30, capsys):
    """Status looked for a paused run only while the ledger's newest rollout was open: with a
    `canary` run waiting for an approval after an old rollout ended, it showed "drift" and no
    word of the run that `rollway promote` would answer."""
    run, sent = canary_paused_before_30
    code = ops.status(targets_block=None, credentials_block=None, history=1)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"flow run {run.name} ({run.id}) is paused" in " ".join(out.split()), out


def test_status_names_a_paused_canary_run_when_the_ledger_has_no_rollout(monkeypatch, capsys):
    """A `canary` run keeps no ledger: on a service that never had a progressive rollout, status
    said "no rollout recorded" (exit 1) while the run waited for the approval `rollway promote`
    would give it."""
    from prefect.states import Completed

    targets = Targets()
    block = f"canary-unrecorded-{uuid4().hex[:8]}"
    service = ops.Service(targets=targets, targets_block=block, credentials_block=None, ledger=FakeLedger(),
                          router=FakeRouter(Weights.canary_at(10)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=10), Stage(weight=30, approval=True),
                                                       Stage(weight=100)])
    run = canary_run(spec, block)

    code = ops.status(targets_block=None, credentials_block=None, history=1)
    out, err = capsys.readouterr()
    shown = " ".join(out.split())
    assert code == 0, err
    assert f"flow run {run.name} ({run.id}) is paused" in shown, out
    assert "no rollout recorded" in shown and targets.rollouts_table in shown, out
    assert "load balancer 90/10" in shown, out

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Completed(), force=True)
    assert ops.status(targets_block=None, credentials_block=None, history=1) == 0, "nothing paused, nothing recorded"
    out, err = capsys.readouterr()
    assert "no rollout recorded" in out and "start one from" in out and not err, (out, err)


def test_status_with_no_rollout_says_how_to_start_one(monkeypatch, capsys):
    """The first `rollway status` on a fresh `rollway up` said only "no rollout recorded for ...
    in table ..." (exit 1): nothing on how a rollout is started, which is a deployment's run, not
    a rollway command. Then it said so as an "error:" (exit 1), as if the fresh install were
    broken, without the service or the weights status shows: no rollout yet is no error."""
    targets = Targets()
    service = ops.Service(targets=targets, targets_block=f"never-rolled-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=FakeLedger(), router=FakeRouter(Weights(stable=100, canary=0)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)

    assert ops.status(targets_block=None, credentials_block=None, history=1) == 0
    out, err = capsys.readouterr()
    said = " ".join(out.split())
    assert not err, err
    assert f"rollout none yet: no rollout recorded for {service.name} in table {targets.rollouts_table}" in said, said
    assert "Deployments -> progressive_rollout/rollway -> Run" in said, said
    assert "prefect deployment run progressive_rollout/rollway" in said, said
    assert f"service {service.name} (cluster {targets.cluster})" in said, said
    assert "weights load balancer 100/0 (stable/canary)" in said, said


def test_status_shows_every_paused_run_when_none_owns_the_rollout(canary_paused_before_30, capsys):
    """Two paused runs on one service and none owning the ledger's rollout: status showed no
    paused run at all, while `rollway promote` refused for ambiguity and named both."""
    first, _ = canary_paused_before_30
    second = canary_run(RolloutSpec.model_validate(first.parameters["spec"]), first.parameters["targets_block"])

    code = ops.status(targets_block=None, credentials_block=None, history=1)
    out, err = capsys.readouterr()
    shown = " ".join(out.split())
    assert code == 0, err
    assert "2 paused flow runs could be this service's" in shown, out
    assert f"{first.name} ({first.id})" in shown and f"{second.name} ({second.id})" in shown, out
    assert "--flow-run ID" in shown, out


@pytest.mark.parametrize("ledger", ["rolled back", "empty"])
def test_status_names_a_running_canary_run_instead_of_drift_or_no_rollout(ledger, monkeypatch, capsys):
    """A `canary` run at 10 %, baking (not paused): status said "drift: the load balancer holds
    90/10 but the ledger says 100/0" after an old rollout, as if someone had moved the traffic by
    hand, or, with no rollout in the ledger, "no rollout recorded" (exit 1) without the weights.
    Only a paused run was looked for."""
    targets = Targets()
    block = f"canary-running-{uuid4().hex[:8]}"
    service = ops.Service(targets=targets, targets_block=block, credentials_block=None,
                          ledger=rolled_back_ledger(targets) if ledger == "rolled back" else FakeLedger(),
                          router=FakeRouter(Weights.canary_at(10)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    run = canary_run(RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=10), Stage(weight=100)]), block,
                     paused=False)

    code = ops.status(targets_block=None, credentials_block=None, history=1)
    out, err = capsys.readouterr()
    shown = " ".join(out.split())
    assert code == 0, err
    assert f"{run.name} ({run.id}, Running)" in shown and "keeps no ledger" in shown, out
    assert "drift" not in shown and "load balancer 90/10" in shown, out
