"""`rollway abort` that rejects a paused run whose rollback then fails (stable never steady).

The command waited for the run and said only "flow run ... is Failed", "it ended: <the run's
exception>" and the split read back: on-call could not tell that the rollback is left open in the
ledger, what it did and did not do, nor what finishes it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable
from uuid import uuid4

from prefect import flow

from flows.approvals import prefect_approver
from flows.rollback import RollbackIncomplete
from rollway.aws.errors import ServiceNotStable
from rollway.cli import ops
from rollway.decide import Pause
from rollway.fakes import FakeLedger, FakeRouter
from rollway.ledger import (
    ROLLBACK_STOPPED,
    RolloutRecord,
    Transition,
    begin_rollback,
    check_rolling_back,
    rollback_stopped_comment,
)
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import Approvals, RolloutSpec, Stage
from rollway.targets import Targets
from tests.flows.test_answer_not_taken import paused_run

QUESTION = "approval needed before 50% (its rollback fails)"
ROLLOUT = "20261129T063000Z-5e6f7a8b"
LEDGERS: dict[str, FakeLedger] = {}


@flow(name="reject-whose-rollback-fails")
def rolls_back_badly_on_reject(timeout: float, key: str, traffic_moved: bool, rolled_back: bool = False) -> str:
    """Pause; on a reject, record the rollback begun and stopped as `flows.rollback` does, and fail
    with its error: the stable service never became steady, or (``traffic_moved``) the traffic
    moved and the canary's task definition could not be restored; or (``rolled_back``) record the
    rollback done and fail after it, for a reason no rollback step has."""
    approver = prefect_approver(Approvals(timeout_seconds=timeout, on_timeout="rollback"), poll_interval=1)
    answer = approver(Pause(reason=QUESTION, cause="approval", stage_index=1), "summary")
    if answer.action != "reject":
        return answer.action
    ledger, service = LEDGERS[key], Targets().canary_service
    begin_rollback(ledger, service, actor=answer.approver, reason="rejected", now=2.0, rollout=ROLLOUT,
                   holder="flow-run/x")
    if rolled_back:
        ledger.record(service, owner=None, now=3.0, rollout=ROLLOUT, rule=check_rolling_back, transition=Transition(
            at=3.0, kind="rollback", actor=answer.approver, to_weights=Weights.canary_at(0), comment="rejected"),
            phase=RolloutPhase.ROLLED_BACK, weights=Weights.canary_at(0))
        raise RuntimeError("the incident report could not be written")
    failed = "restore the canary's task definition (throttled)" if traffic_moved else \
        "move the traffic to stable (not steady)"
    ledger.record(service, owner=None, now=3.0, rollout=ROLLOUT, rule=check_rolling_back, transition=Transition(
        at=3.0, kind=ROLLBACK_STOPPED, actor=answer.approver, to_weights=Weights.canary_at(0 if traffic_moved else 5),
        comment=rollback_stopped_comment("stable scaled to 4", failed)))
    if traffic_moved:
        raise RollbackIncomplete([failed], paged=True, reason="rejected")
    raise ServiceNotStable([Targets().stable_service], 600)


def rejected(monkeypatch, capsys, *, traffic_moved: bool, stored_elsewhere: bool = False,
             rolled_back: bool = False) -> tuple[int, str, str]:
    """`rollway abort` (waiting) of a paused run whose rollback then fails; returns the exit code,
    all the command said on one line, and the run's name. ``stored_elsewhere``: the run's exception,
    which Prefect stores on its worker's disk, cannot be read where the command runs (another host)."""
    key = uuid4().hex
    targets = Targets()
    ledger = LEDGERS[key] = FakeLedger()
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=w) for w in (5, 50, 100)])
    name = f"reject-fails-{key}"
    thread = threading.Thread(target=lambda: _run(name, key, traffic_moved, rolled_back), daemon=True)
    thread.start()
    run = paused_run("reject-whose-rollback-fails", QUESTION, run_name=name)
    ledger.create(RolloutRecord(service=targets.canary_service, rollout_id=ROLLOUT, image=spec.image,
                                spec_json=spec.model_dump_json(), phase=RolloutPhase.PAUSED, stage_index=0,
                                weights=Weights.canary_at(5), history=(Transition(at=1.0, kind="start", actor="al"),)),
                  owner=f"flow-run/{run.id}", now=1.0, lease_seconds=600)
    service = ops.Service(targets=targets, targets_block=None, credentials_block=None, ledger=ledger,
                          router=FakeRouter(Weights.canary_at(5)))
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    monkeypatch.setattr(ops, "answer_seen", lambda *a, **k: ("taken", ""))
    if stored_elsewhere:
        monkeypatch.setattr(ops, "wait_for_run", _on_another_host(ops.wait_for_run))

    code = ops.abort(approver="bob", reason="error budget", flow_run=None, wait_seconds=90, targets_block=None,
                     credentials_block=None)
    thread.join(90)
    out, err = capsys.readouterr()
    return code, " ".join((out + err).split()), run.name


def test_abort_says_the_rollback_is_left_open_and_what_finishes_it_when_the_rejected_runs_rollback_fails(
        monkeypatch, capsys):
    targets = Targets()
    code, said, name = rejected(monkeypatch, capsys, traffic_moved=False)
    assert code == 1, said
    assert f"flow run {name} is Failed" in said, said
    assert "load balancer now 95/5 (stable/canary), read back" in said, said
    # Where the rollback stands, as the ledger has it: open, what it did and what it did not.
    assert (f"the ledger records rollout {ROLLOUT} as rolling back (done: stable scaled to 4; not done: move the "
            "traffic to stable (not steady)). It is not recorded as finished.") in said, said
    # And what finishes it: this same command once stable is steady, or the rollback flow with a longer wait.
    assert (f"run it again once {targets.stable_service}'s tasks are steady (it finishes the rollback from the "
            "ledger), or run the rollback flow with a longer scale_timeout_seconds: `prefect deployment run "
            f"rollback/rollway --param reason=\"<why>\" --param actor=<you> --param rollout={ROLLOUT} --param "
            "scale_timeout_seconds=<seconds, more than 600>`") in said, said

def test_abort_says_the_traffic_is_back_when_the_rejected_runs_rollback_failed_after_moving_it(monkeypatch, capsys):
    code, said, _ = rejected(monkeypatch, capsys, traffic_moved=True)
    assert code == 1, said
    assert (f"the ledger records rollout {ROLLOUT} as rolling back (done: stable scaled to 4; not done: restore the "
            "canary's task definition (throttled)).") in said, said
    # Not "once stable can take the traffic": it has it; the step left is what to retry.
    assert (f"The traffic is back on {Targets().stable_service}; every step but those that failed was done. Run "
            "`rollway abort` again once the failed step can succeed: it finishes the rollback from the ledger.") in said
    assert "can take the traffic" not in said, said


def test_abort_says_the_traffic_is_back_from_the_ledger_when_the_runs_exception_is_stored_on_another_host(
        monkeypatch, capsys):
    """On-call's laptop cannot read the worker's result storage: the ledger's read-back says the
    traffic moved all the same, and "once stable can take the traffic" is wrong advice there."""
    code, said, _ = rejected(monkeypatch, capsys, traffic_moved=True, stored_elsewhere=True)
    assert code == 1, said
    assert (f"the ledger records rollout {ROLLOUT} as rolling back (done: stable scaled to 4; not done: restore the "
            "canary's task definition (throttled)).") in said, said
    assert f"The traffic is back on {Targets().stable_service}" in said, said
    assert "Run `rollway abort` again once the failed step can succeed" in said, said
    assert "can take the traffic" not in said, said


def test_abort_says_only_what_is_known_when_the_rejected_run_failed_after_recording_the_rollback(
        monkeypatch, capsys):
    """The run recorded the rollout rolled back, then failed for a reason no rollback step has: the
    command said "the error above names the step left to do", and no step was left."""
    code, said, _ = rejected(monkeypatch, capsys, traffic_moved=False, rolled_back=True)
    assert code == 1, said
    assert "it ended: " in said and "the incident report could not be written" in said, said
    assert (f"the ledger records rollout {ROLLOUT} as rolled back: the traffic is back on "
            f"{Targets().stable_service}, and no rollback is left open") in said, said
    assert "step left to do" not in said, said


def _on_another_host(wait_for_run: Callable[..., Any]) -> Callable[..., Any]:
    """``wait_for_run`` as on a host other than the run's worker: the run's stored exception is not there."""
    def waited(*args: Any, **kwargs: Any) -> Any:
        finished = wait_for_run(*args, **kwargs)
        stored = getattr(finished.state.data, "storage_key", None)
        assert stored is not None, finished.state  # the exception is stored: what is taken away is there
        Path(stored).unlink()
        return finished
    return waited


def _run(name: str, key: str, traffic_moved: bool, rolled_back: bool) -> None:
    try:
        rolls_back_badly_on_reject.with_options(flow_run_name=name)(120, key, traffic_moved, rolled_back)
    except Exception:  # noqa: BLE001 - the run's failure is what the command reports
        pass
