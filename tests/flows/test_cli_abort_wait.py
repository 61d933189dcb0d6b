"""`rollway abort` that rejects a paused run and waits for it to roll back.

It said "resumed to roll back", then nothing for up to --wait-seconds (two minutes by default),
and when the run had not ended by then only "error: flow run ... is still Running after 120 s":
on-call could not tell whether the reject was sent, whether the traffic was back, or what next.
"""

from __future__ import annotations

from contextlib import contextmanager

from rollway.cli import ops
from tests.flows.test_answer_not_taken import paused_with_its_form
from tests.flows.test_promote_race import commands_see_a_rollout_owned_by


def test_abort_says_it_waits_and_what_stands_when_the_rejected_run_is_still_rolling_back(monkeypatch, capsys):
    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    # A real run records the reject it takes (this stand-in keeps no ledger): seen at once.
    monkeypatch.setattr(ops, "answer_seen", lambda *a, **k: ("taken", ""))
    # The run notices its answer within its 1-s poll: it is still Running this soon after the resume.
    code = ops.abort(approver="bob", reason="error budget", flow_run=None, wait_seconds=0.05, targets_block=None,
                     credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(90)
    assert outcome == ["reject by bob"], outcome  # the reject was sent and taken
    out, said = " ".join(out.split()), " ".join(err.split())
    assert f"rejected by bob: flow run {run.name} ({run.id}) resumed to roll back" in out, out
    # Before the wait, how long it may last: a silent terminal for two minutes read as a hang.
    assert f"waiting up to 0.05 s (--wait-seconds) for flow run {run.name} to finish rolling back" in out, out
    assert code == 1, (out, err)
    assert f"flow run {run.name} ({run.id}) is still Running after 0.05 s" in said, err
    assert "the reject was sent: the run goes on rolling back" in said, err
    assert "`rollway status` shows where it stands" in said, err
    assert "load balancer now 95/5 (stable/canary), read back" in out, out


@contextmanager
def a_rollout_owned_by_a_running_run(monkeypatch):
    """A rollout at 5 % whose owning flow run is Running with no process behind it (it never stops);
    `rollway abort` sees it through the fake environment. Yields (env, owning run)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Running

    import flows.rollback
    from flows.env import OWNER_PREFIX
    from rollway.fakes import FakeLedger
    from rollway.ledger import RolloutRecord, new_rollout_id
    from rollway.model import Weights
    from rollway.phases import RolloutPhase
    from tests.flows.fake_env import STABLE_TD, fake_environment
    from tests.flows.test_abort_clock import stand_in
    from tests.flows.test_abort_races import SPEC

    with get_client(sync_client=True) as client:
        owner = client.create_flow_run(stand_in, state=Running())
    try:
        env = fake_environment()
        env.ledger = FakeLedger()
        monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
        now = env.clock.now()
        service = env.targets.canary_service
        env.ledger.create(RolloutRecord(service=service, rollout_id=new_rollout_id(now - 600), image=SPEC.image,
                                        spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROGRESSING,
                                        stage_index=0, weights=Weights.canary_at(5),
                                        previous_task_definition=STABLE_TD, stable_desired=4),
                          owner=f"{OWNER_PREFIX}{owner.id}", now=now - 600, lease_seconds=600)
        env.router.weights = Weights.canary_at(5)
        monkeypatch.setattr(ops, "connect", lambda *a: ops.Service(
            targets=env.targets, targets_block=None, credentials_block=None, ledger=env.ledger, router=env.router))
        yield env, owner
    finally:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(owner.id, Cancelled(), force=True)


def test_abort_says_how_long_it_waits_for_the_owning_run_to_stop_before_rolling_back(monkeypatch, capsys):
    """Nothing paused, the run that owns the rollout still Running: abort cancels it and waits for
    it to stop (up to --wait-seconds) before rolling back; it said "cancelling ... ..." alone."""
    import time

    with a_rollout_owned_by_a_running_run(monkeypatch) as (_, owner):
        started = time.monotonic()
        code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=1, targets_block=None,
                         credentials_block=None)
        out, err = capsys.readouterr()
    out, said = " ".join(out.split()), " ".join(err.split())
    assert code == 0, (out, err)
    assert (f"cancelling flow run {owner.name} ({owner.id}), which owns the rollout, and waiting up to 1 s "
            "(--wait-seconds) for it to stop before rolling back" in out), out
    assert f"flow run {owner.name} ({owner.id}) is still Cancelling after 1 s; rolling back anyway" in said, err
    assert "rolled back" in out and time.monotonic() - started < 60


def prefect_api_drops_once(monkeypatch, gone) -> list:
    """`rollway abort`'s reads of a flow run answer until ``gone()`` is true, then fail as an API
    that dropped; returns the list of the runs whose reads failed."""
    import httpx

    real_read_run = ops.read_run
    dropped: list = []

    def read_run_then_drop(client, run_id):
        if gone():
            dropped.append(run_id)
            raise httpx.ConnectError("All connection attempts failed")
        return real_read_run(client, run_id)

    monkeypatch.setattr(ops, "read_run", read_run_then_drop)
    return dropped


def test_abort_rolls_back_when_the_prefect_api_drops_after_it_recorded_the_abort(monkeypatch, capsys):
    """The abort is recorded ("rolling back"), then the owning run cannot be read: it exited 1 on
    the API's error, the ledger saying "rolling back" and the traffic still on the canary."""
    from rollway.model import Weights
    from rollway.phases import RolloutPhase

    with a_rollout_owned_by_a_running_run(monkeypatch) as (env, owner):
        # Every read answers until the abort is recorded; the API is gone from then on.
        dropped = prefect_api_drops_once(
            monkeypatch, lambda: env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLING_BACK)
        code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=1, targets_block=None,
                         credentials_block=None)
        out, err = capsys.readouterr()
    out, said = " ".join(out.split()), " ".join(err.split())
    assert dropped == [owner.id], dropped
    assert code == 0, (out, err)
    assert (f"could not stop flow run {owner.id}, which owns the rollout (All connection attempts failed); "
            "rolling back anyway" in said), err
    assert "rolled back" in out, out
    assert env.router.weights == Weights.canary_at(0)
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK


def abort_a_paused_run_followed_by(monkeypatch, capsys, wait_for_run):
    """`rollway abort` of a paused run that takes the reject, with ``wait_for_run`` in place of the
    wait for it to roll back; returns the run, and what was printed (out and err, one line each)."""
    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    monkeypatch.setattr(ops, "answer_seen", lambda *a, **k: ("taken", ""))
    monkeypatch.setattr(ops, "wait_for_run", wait_for_run)
    code = ops.abort(approver="bob", reason="error budget", flow_run=None, wait_seconds=30, targets_block=None,
                     credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(90)
    assert outcome == ["reject by bob"], outcome
    assert code == 1, (out, err)
    return run, " ".join(out.split()), " ".join(err.split())


def test_abort_says_the_reject_was_sent_when_the_prefect_api_drops_during_its_wait(monkeypatch, capsys):
    """The reject taken, the API dropped while the abort waited for the run: it said only "cannot
    reach the Prefect API", and on-call could not tell whether the reject was sent."""
    import httpx

    def api_gone(*a, **k):
        raise httpx.ConnectError("All connection attempts failed")

    run, out, said = abort_a_paused_run_followed_by(monkeypatch, capsys, api_gone)
    assert (f"could not follow flow run {run.name} ({run.id}) (All connection attempts failed): the reject was sent: "
            "the run goes on rolling back" in said), said
    assert "load balancer now 95/5 (stable/canary), read back" in out, out
