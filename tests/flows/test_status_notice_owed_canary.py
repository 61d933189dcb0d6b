"""`rollway status` of a finalize done whose "Finalized" notice is owed, the traffic all on stable:
its finalize row left the canary service's count unread ("while the canary service is at 0 tasks, as
the finalize left it"), where a finalize run again sends the notice late only then. Status reads the
canary service (one DescribeServices, only when such a notice is owed) and says plainly which it is.
On moto, through the saved blocks."""
from __future__ import annotations

import pytest

import rollway.cli.ops as ops
from rollway.finalize import DONE, NOTICE_NOT_SENT, START
from rollway.ledger import NOTICE_FAILED, RolloutRecord, Transition, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.moto_env import saved_blocks
from tests.flows.test_status_users_get import on_moto

SNS = "AuthorizationError: not authorized to perform sns:Publish"


@pytest.mark.parametrize("canary_tasks", [0, 2], ids=["canary at 0", "canary scaled up since"])
def test_status_says_whether_a_finalize_run_again_sends_the_notice_owed_from_the_canary_it_reads(
        aws, capsys, canary_tasks):
    t, ecs, _, env, stable, spec = on_moto(aws)
    ecs.update_service(cluster=t.cluster, service=t.canary_service, desiredCount=canary_tasks)
    env.router.set_weights(Weights(stable=100, canary=0))
    now = env.clock.now()
    rollout = new_rollout_id(now - 600)
    env.ledger.create(RolloutRecord(
        service=t.canary_service, rollout_id=rollout, image=spec.image, spec_json=spec.model_dump_json(),
        phase=RolloutPhase.PROMOTED, stage_index=1, weights=Weights(stable=100, canary=0),
        previous_task_definition=stable, canary_task_definition=stable), owner=None, now=now - 600, lease_seconds=0)
    for at, kind, comment in [(now - 300, START, None), (now - 200, DONE, None),
                              (now - 100, NOTICE_FAILED, f"{NOTICE_NOT_SENT}{SNS}")]:
        env.ledger.record(t.canary_service, owner=None, now=at, transition=Transition(
            at=at, kind=kind, actor="dana", wall=at, comment=comment))
    blocks = saved_blocks(aws, "notice-owed")

    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    out = capsys.readouterr().out
    row = " ".join(next(line for line in out.splitlines() if line.startswith("finalize")).split())
    assert f"{NOTICE_NOT_SENT}{SNS}" in row, row
    assert "as the finalize left it" not in row, row  # read, not left to the reader
    if canary_tasks:
        assert (f"no finalize sends it late while {t.canary_service} asks for {canary_tasks} tasks, not the 0 the "
                "finalize left it at: every finalize refuses before its late send") in row, row
        assert "running finalize again sends it late" not in row, row
    else:
        assert row.endswith("running finalize again sends it late once SNS takes it (it moves nothing)"), row
