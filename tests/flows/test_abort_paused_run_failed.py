"""`rollway abort --wait-seconds` of a paused run whose rollback then ends Failed.

The command printed "flow run x is Failed" and the weights read back, and exited 1: on-call,
who had just aborted, learnt neither that the traffic was back and only a later step failed
(RollbackIncomplete), nor which step, nor that running the abort again finishes it, without
opening the Prefect UI. The run's own words (its state's message) are said now.
"""
from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.states import Failed, Running

from rollway.cli import ops
from rollway.model import Weights
from tests.flows.test_promote_race import commands_see_a_rollout_owned_by, paused_run

INCOMPLETE = ("Flow run encountered an exception: RollbackIncomplete: the traffic is back on the stable service, but "
              "the rollback could not: restore webordinary-edit-service-canary's task definition edit-task:1 (AWS "
              "refused ecs:UpdateService). Every other step was done; run the rollback again once the failed step "
              "can succeed")


def test_an_abort_whose_run_ends_failed_says_what_the_run_said(monkeypatch, capsys):
    run = paused_run()
    commands_see_a_rollout_owned_by(monkeypatch, run)
    service = ops.connect(None, None)
    real_resume = ops.resume

    def resume(flow_run_id, answer, **kwargs):
        real_resume(flow_run_id, answer, **kwargs)
        # The run rolls back: the traffic moves, then restoring the canary is refused.
        service.router.weights = Weights(stable=100, canary=0)
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run_id, Running(), force=True)
            client.set_flow_run_state(flow_run_id, Failed(message=INCOMPLETE), force=True)

    monkeypatch.setattr(ops, "resume", resume)
    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=5, targets_block=None,
                     credentials_block=None)

    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    said = " ".join((out + err).split())
    assert f"flow run {run.name} is Failed" in said, said
    assert "the traffic is back on the stable service, but the rollback could not: restore" in said, said
    assert "Traceback" not in said and "load balancer now 100/0" in said, said
