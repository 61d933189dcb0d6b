"""A `canary` flow run that began finalizing is left alone by its hooks; its retries are not.

The hooks must not roll back a promotion that passed its window because the run that
finalizes it crashed. But the mark that says so belongs to one attempt: a retry (Prefect's
flow retries, the UI's Retry, `prefect flow-run retry`) of the same flow run starts over, shifts
traffic to a new canary, and must be rolled back like any other run when it stops. On the
embedded AWS with the Prefect test harness.
"""

from __future__ import annotations

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.flow_engine import run_flow
from prefect.states import Cancelled, Pending, Running, Scheduled

import flows.canary
import flows.engine
import flows.env
from flows.canary import canary
from flows.env import attempt_tag, began_finalizing
from rollway.finalize import FinalizeRefused
from tests.flows.fake_env import rollout_flows_see
from tests.flows.moto_env import simulated
from tests.flows.test_canary_moto import read_back
from tests.flows.test_finalize import ALL_CANARY, ALL_STABLE, failing, promote_by_hand, saved_blocks
from tests.flows.test_finalize_unrecorded import (
    ProcessDied, canary_flow, finalize_flow, rollback_runs, saved_other_service,
)


def counting_finalizes(monkeypatch, attempts: dict, *, refuse_first_scale_down=None) -> None:
    """Count in-run finalizes; with ``refuse_first_scale_down`` (the ECS client), ECS refuses the
    first one's scale-down of the canary: the traffic is on stable, the run FinalizeIncomplete."""
    real = flows.canary.run_finalize

    def finalize(*args, **kwargs):
        attempts["finalize"] += 1
        if refuse_first_scale_down is None or attempts["finalize"] > 1:
            return real(*args, **kwargs)
        restore = failing(refuse_first_scale_down, "UpdateService", when=lambda p: p.get("desiredCount") == 0)
        try:
            return real(*args, **kwargs)
        finally:
            restore()

    monkeypatch.setattr(flows.canary, "run_finalize", finalize)


def stop_after_the_next_attempts_first_shift(monkeypatch, attempts: dict, stop: BaseException) -> None:
    """Once a finalize has run, the next attempt stops (``stop``) right after its first shift."""
    real = flows.engine.shift_to

    def shift(*args, **kwargs):
        out = real(*args, **kwargs)
        attempts["run"] = FlowRunContext.get().flow_run.id
        if attempts["finalize"] == 1:
            raise stop
        return out

    monkeypatch.setattr(flows.engine, "shift_to", shift)


def assert_rolled_back(aws, rollbacks_before: int) -> None:
    weights, _, canary_service = read_back(aws)
    assert rollback_runs() == rollbacks_before + 1, f"no rollback was started; the load balancer holds {weights}"
    assert weights == ALL_STABLE and canary_service.desired == 0


def test_a_flow_retry_after_a_stopped_finalize_is_rolled_back_when_it_fails_mid_stage(aws, monkeypatch,
                                                                                      ecs_updates_retried_at_once):
    """Attempt 1 promoted, began finalizing and stopped (ECS refused the canary's scale-down, the
    traffic already on stable). Prefect retried the flow run: attempt 2 deployed again, shifted
    5 % to the canary and failed. Its hook left it alone, reading attempt 1's finalizing mark,
    and 5 % of production stayed on a canary nobody watched."""
    blocks = saved_blocks(aws)
    rollbacks = rollback_runs()
    attempts = {"finalize": 0}
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        rollout_flows_see(monkeypatch, env)
        counting_finalizes(monkeypatch, attempts, refuse_first_scale_down=aws.get_client("ecs"))
        stop_after_the_next_attempts_first_shift(monkeypatch, attempts, RuntimeError("ECS DescribeServices: InternalError"))
        state = canary_flow(env, image, blocks, flow_fn=canary.with_options(retries=1, retry_delay_seconds=0),
                            finalize=True, return_state=True)
        monkeypatch.undo()
    assert state.is_failed() and attempts["finalize"] == 1
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(attempts["run"])
    assert run.run_count == 2 and attempt_tag(1) in run.tags, run.tags
    assert_rolled_back(aws, rollbacks)


def test_a_rerun_of_a_finalized_run_is_rolled_back_when_it_crashes_mid_stage(aws, monkeypatch):
    """`prefect flow-run retry` (or the UI's Retry) runs the same flow run again, even a completed
    one: here a run that promoted and finalized. The re-run passes preflight (all traffic on
    stable), shifts 5 % to its canary and crashes: it is rolled back."""
    blocks = saved_blocks(aws)
    rollbacks = rollback_runs()
    attempts = {"finalize": 0}
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        rollout_flows_see(monkeypatch, env)
        counting_finalizes(monkeypatch, attempts)
        first = canary_flow(env, image, blocks, finalize=True, return_state=True)
        assert first.is_completed() and read_back(aws)[0] == ALL_STABLE
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(first.state_details.flow_run_id, Scheduled(message="Retried via CLI"), force=True)
            again = client.read_flow_run(first.state_details.flow_run_id)
        stop_after_the_next_attempts_first_shift(monkeypatch, attempts, ProcessDied())
        with pytest.raises(ProcessDied):
            run_flow(canary, flow_run=again, return_type="state")
        monkeypatch.undo()
    assert_rolled_back(aws, rollbacks)


def test_a_run_crashing_while_finalizing_is_left_alone_even_when_the_api_cannot_be_asked(aws, monkeypatch):
    """The hook that runs in the run's own process knows its attempt began finalizing; it used to
    ask the API, and on a failed read went by the tags the run started with (never the mark), so
    one unanswered request rolled back the promotion that had passed its window."""
    blocks = saved_blocks(aws)
    rollbacks = rollback_runs()

    def unreachable(*args, **kwargs):
        raise httpx.ConnectError("All connection attempts failed")

    with simulated(aws, canary_error_rate=0.001) as (env, image):
        rollout_flows_see(monkeypatch, env)
        monkeypatch.setattr(flows.canary, "run_finalize", lambda *a, **k: (_ for _ in ()).throw(ProcessDied()))
        monkeypatch.setattr(flows.env, "latest_attempt_marked", unreachable)
        with pytest.raises(ProcessDied):
            canary_flow(env, image, blocks, finalize=True)
        monkeypatch.undo()
    weights, _, canary_service = read_back(aws)
    assert rollback_runs() == rollbacks, f"the promotion was rolled back: the load balancer holds {weights}"
    assert weights == ALL_CANARY and canary_service.desired >= 1


def test_a_hook_in_another_process_reads_the_mark_of_the_runs_latest_attempt():
    """A hook run by the worker after the run's process died asks the API: the mark of attempt 1
    says nothing about attempt 2."""
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(canary, state=Pending())
        client.set_flow_run_state(run.id, Running(), force=True)
        client.update_flow_run(run.id, tags=[attempt_tag(1)])
        try:
            assert began_finalizing(client.read_flow_run(run.id))
            client.set_flow_run_state(run.id, Scheduled(), force=True)
            client.set_flow_run_state(run.id, Pending(), force=True)
            client.set_flow_run_state(run.id, Running(), force=True)
            again = client.read_flow_run(run.id)
            assert again.run_count == 2 and not began_finalizing(again)
        finally:
            client.set_flow_run_state(run.id, Cancelled(message="test over"), force=True)


def test_unrecorded_sees_a_run_of_this_service_past_the_apis_first_page(aws, monkeypatch):
    """The API answers one page of runs (200 by default) to a query without a limit. Unfinished
    runs of other services are not counted, so a running canary of this service past the first
    page went unseen and the unrecorded finalize moved the traffic under it.

    The server is asked for pages of 20 (as one set up with PREFECT_API_DEFAULT_LIMIT=20
    answers): the same paging for a tenth of the runs to make."""
    from prefect.client.orchestration import SyncPrefectClient

    page = 20
    real = SyncPrefectClient.read_flow_runs
    monkeypatch.setattr(SyncPrefectClient, "read_flow_runs",
                        lambda self, *, limit=None, **kwargs: real(self, limit=limit or page, **kwargs))
    blocks = saved_blocks(aws)
    promote_by_hand(aws)
    promoted = read_back(aws)
    other = saved_other_service(aws, blocks)
    created = []
    with get_client(sync_client=True) as client:
        try:
            # The API lists newest id first: this service's run needs a low id to fall past the page.
            for _ in range(200):
                ours = client.create_flow_run(canary, parameters={"targets_block": blocks}, state=Running())
                created.append(ours.id)
                if str(ours.id) < "4":
                    break
                client.set_flow_run_state(ours.id, Cancelled(message="not this one"), force=True)
            assert str(ours.id) < "4"
            before_ours = 0
            while before_ours < page + 1:
                run = client.create_flow_run(canary, parameters={"targets_block": other}, state=Pending())
                created.append(run.id)
                before_ours += str(run.id) > str(ours.id)
            with pytest.raises(FinalizeRefused, match=str(ours.id)):
                finalize_flow(blocks, unrecorded=True)
            assert read_back(aws) == promoted, "nothing moved under the running canary flow run"
        finally:
            for run_id in created:
                client.set_flow_run_state(run_id, Cancelled(message="test over"), force=True)


def test_a_failed_progressive_run_is_not_asked_about_finalizing(monkeypatch, caplog):
    """Only the `canary` flow finalizes in its run. The hooks of the other rollout flows asked
    the API anyway, and with the API unreachable logged that they could not tell whether the
    run was finalizing, about a run that never could be."""
    from prefect.states import Failed

    from flows.hooks import PARAMETERS_FAILED, _rollback_from_state
    from flows.progressive import progressive_rollout

    asked = []
    monkeypatch.setattr(flows.env, "latest_attempt_marked", lambda run_id: asked.append(run_id) or True)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(progressive_rollout, state=Pending())
        try:
            # A run whose parameters failed: the hook leaves it alone without touching AWS.
            _rollback_from_state(progressive_rollout, client.read_flow_run(run.id),
                                 Failed(message=f"{PARAMETERS_FAILED}: spec"))
            assert asked == [] and "finalizing" not in caplog.text
            _rollback_from_state(canary, client.read_flow_run(run.id), Failed(message=f"{PARAMETERS_FAILED}: spec"))
            assert asked == [run.id], "a canary run's hook asks"
        finally:
            client.set_flow_run_state(run.id, Cancelled(message="test over"), force=True)
