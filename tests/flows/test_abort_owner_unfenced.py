"""`rollway abort` whose record of the abort and cancel of the owning run both failed.

The traffic comes first, so it rolls back all the same; but neither the ledger ("rolling back",
which ends the owning run at its next write) nor a cancellation stops the run that owns the
rollout: it may shift traffic to the canary again at its next stage. The command said the traffic
was back and to fix the ledger, and nothing of a run left moving it.
"""

from __future__ import annotations

import pytest

import flows.rollback
from rollway.cli import ops
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.test_cli_abort_wait import a_rollout_owned_by_a_running_run, prefect_api_drops_once
from tests.flows.test_ledger_refuses import START, RefusingLedger


def the_ledger_refuses_the_abort(monkeypatch, env) -> RefusingLedger:
    """The ledger refuses every record of a rollback's start: "rolling back" never ends the owning run."""
    refusing = RefusingLedger(START)
    service = env.targets.canary_service
    refusing.create(env.ledger.get(service), owner=env.ledger.get(service).owner or "run",
                    now=env.clock.now() - 600, lease_seconds=600)
    env.ledger = refusing
    monkeypatch.setattr(ops, "connect", lambda *a: ops.Service(
        targets=env.targets, targets_block=None, credentials_block=None, ledger=env.ledger, router=env.router))
    return refusing


def neither_fence_holds(monkeypatch, env) -> None:
    """The ledger refuses every record of a rollback's start, and the Prefect API drops once it
    refused the abort's: the owning run can be neither cancelled nor ended by "rolling back"."""
    refusing = the_ledger_refuses_the_abort(monkeypatch, env)
    # Every read answers until the ledger refused the abort's record; the API is gone from then on.
    prefect_api_drops_once(monkeypatch, lambda: f"refused {START}" in refusing.calls)


def _rollback_flow_unreached(monkeypatch, env):
    import httpx

    def unreachable(**kwargs):
        raise httpx.ConnectError("All connection attempts failed")

    monkeypatch.setattr(flows.rollback, "rollback", unreachable)


def _stable_never_steady(monkeypatch, env):
    # The stable service runs 1 of the 4 tasks the rollout recorded, and does not come up at 4.
    stable = env.targets.stable_service
    env.deployer.services[stable] = env.deployer.services[stable].model_copy(update={"desired": 1, "running": 1})
    env.deployer.unstable.add(stable)


@pytest.mark.parametrize("rollback_stops, canary_after", [
    (None, 0),  # the traffic came first: rolled back, and not recorded
    # The rollback flow could not reach the Prefect API, or failed before moving the traffic: the
    # command said to run `rollway abort` again, and nothing of the run that shifts traffic meanwhile.
    (_rollback_flow_unreached, 5),
    (_stable_never_steady, 5),
])
def test_abort_says_the_owning_run_still_drives_the_rollout_when_neither_the_ledger_nor_the_cancel_stopped_it(
        monkeypatch, capsys, rollback_stops, canary_after):
    with a_rollout_owned_by_a_running_run(monkeypatch) as (env, owner):
        service = env.targets.canary_service
        neither_fence_holds(monkeypatch, env)
        if rollback_stops is not None:
            rollback_stops(monkeypatch, env)
        code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=1, targets_block=None,
                         credentials_block=None)
        out, err = capsys.readouterr()
    said = " ".join(err.split())
    assert code == 1, (out, err)
    assert env.router.weights == Weights.canary_at(canary_after), (out, err)
    assert env.ledger.get(service).phase is RolloutPhase.PROGRESSING  # nothing fences the owning run
    # The last word names the run left driving the rollout, that it may move the traffic again, and what stops it.
    assert f"Flow run {owner.id}, which owns rollout {env.ledger.get(service).rollout_id}, was not stopped" in said, err
    assert "may shift traffic to the canary again" in said, err
    assert f"prefect flow-run cancel {owner.id}" in said, err
    assert said.endswith("then run `rollway abort` again."), err


def test_abort_says_a_failed_cancel_without_the_prefect_api_s_password(monkeypatch, capsys):
    """A Prefect API behind a proxy whose URL carries a password (PREFECT_API_URL
    https://user:password@host/api) answered the cancel's read with a 503: the error quotes the
    URL, and the warning and the last line printed the password to the terminal."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    with a_rollout_owned_by_a_running_run(monkeypatch) as (env, owner):
        neither_fence_holds(monkeypatch, env)
        dropping = ops.read_run

        def read_run_behind_a_proxy(client, run_id):
            # The proxy answers 503 where the API dropped: from the cancel's read on.
            try:
                return dropping(client, run_id)
            except httpx.ConnectError:
                request = httpx.Request("GET", f"https://ops:hunter2-secret@prefect.example/api/flow_runs/{run_id}")
                raise PrefectHTTPStatusError.from_httpx_error(httpx.HTTPStatusError(
                    f"Server error '503 Service Unavailable' for url '{request.url}'", request=request,
                    response=httpx.Response(503, request=request))) from None

        monkeypatch.setattr(ops, "read_run", read_run_behind_a_proxy)
        code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=1, targets_block=None,
                         credentials_block=None)
        out, err = capsys.readouterr()
    said = " ".join(err.split())
    assert code == 1, (out, err)
    assert "hunter2-secret" not in out + err, err
    assert "503 Service Unavailable" in said and "https://ops:***@prefect.example/api" in said, err
    assert f"Flow run {owner.id}, which owns rollout" in said, err  # still said, last


def test_abort_whose_prefect_api_drops_after_the_cancel_was_sent_does_not_say_the_cancel_failed(monkeypatch, capsys):
    """The owning run was sent its cancel, then the API dropped while abort waited for it to stop:
    the warning and the last line said "its cancel failed", and on-call took the run for one nobody
    had asked to stop, when only whether it stopped was not known."""
    import httpx
    from prefect.client.orchestration import get_client

    def api_gone(*args, **kwargs):
        raise httpx.ConnectError("All connection attempts failed")

    with a_rollout_owned_by_a_running_run(monkeypatch) as (env, owner):
        service = env.targets.canary_service
        the_ledger_refuses_the_abort(monkeypatch, env)
        monkeypatch.setattr(ops, "wait_for_run", api_gone)  # the API drops once the cancel is sent
        code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=1, targets_block=None,
                         credentials_block=None)
        out, err = capsys.readouterr()
        with get_client(sync_client=True) as client:
            cancelling = client.read_flow_run(owner.id).state.name
    said = " ".join(err.split())
    assert code == 1, (out, err)
    assert cancelling == "Cancelling", cancelling  # the cancel was sent
    assert "cancel failed" not in said and "could not stop" not in said, err
    assert (f"flow run {owner.id}, which owns the rollout, was sent its cancel, but it could not be seen to stop "
            "(All connection attempts failed); rolling back anyway" in said), err
    rollout = env.ledger.get(service).rollout_id
    assert (f"Flow run {owner.id}, which owns rollout {rollout}, may not have stopped (its cancel was sent, then the "
            "Prefect API failed before it was seen to stop: All connection attempts failed) and the ledger does not "
            "end it: it may shift traffic to the canary again" in said), err
    assert said.endswith("then run `rollway abort` again."), err
