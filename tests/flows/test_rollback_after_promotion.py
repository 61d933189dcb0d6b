"""The `rollback` flow run by hand on a promoted rollout `rollway abort` no longer rolls back (what
`rollway abort` tells a person to do then). On the embedded AWS with the Prefect test harness.

While nothing finalized it, the stable service still runs the previous version,
so the rollback puts it back in production. It was not written to the ledger, which kept saying
"promoted": `rollway status` and the reports said the new version was promoted while the traffic
was on the old one, and `rollway finalize` then refused, saying someone "moved the traffic back by
hand". A decommission (the stable service scaled to 0 on the same revision) does not change that;
a rollout finalized outside rollway is left as it was.
"""

from __future__ import annotations

import pytest

import rollway.cli.ops as ops
from flows.rollback import RollbackRefused, rollback
from rollway.aws.ecs import EcsDeployer
from rollway.finalize import FinalizeRefused
from rollway.phases import RolloutPhase
from rollway.reports import rollout_report
from tests.flows.moto_env import inbox, saved_blocks
from tests.flows.test_canary_moto import read_back
from tests.flows.test_finalize import ALL_CANARY, ALL_STABLE, finalize_on, kinds, notice, promote_by_hand


def hand_rollback(aws, reason: str = "sessions lost since 2.0.0"):
    blocks = saved_blocks(aws)
    return rollback(reason=reason, actor="erin", targets_block=blocks, aws_credentials_block=blocks)


def test_a_rollback_by_hand_after_a_window_without_decommission_is_recorded_on_the_promotion(aws, capsys):
    t = aws.targets
    # The window ended without a decommission ("watched"); the stable service, scaled to 0 as a
    # promotion leaves it, is on the previous revision.
    env, release, previous = promote_by_hand(aws, "start", "promote", "watched")
    rollout = env.ledger.get(t.canary_service).rollout_id
    url = inbox(aws)

    result = hand_rollback(aws)

    weights, stable, canary = read_back(aws)
    assert weights == ALL_STABLE and result.weights == ALL_STABLE
    assert stable.task_definition == previous and stable.desired > 0, "the previous version serves again"
    assert canary.desired == 0 and canary.task_definition == previous
    record = env.ledger.get(t.canary_service)
    assert (record.rollout_id, record.phase) == (rollout, RolloutPhase.ROLLED_BACK)
    assert kinds(aws)[-5:] == ["watched", "rollback-start", "notifying", "notified", "rollback"]
    end = record.last_transition("rollback")
    assert (end.actor, end.comment, end.to_weights) == ("erin", "sessions lost since 2.0.0", ALL_STABLE)
    assert record.rollback_holder is None, "the rollback's claim ends with it"
    assert "rolled back at" in rollout_report(record)
    # The page names what was taken out of production, as a rollback of an open rollout's does.
    assert f"rollout {rollout}" in notice(aws, url, f"Rollback: {t.canary_service}")

    blocks = saved_blocks(aws)
    capsys.readouterr()
    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "phase rolled_back" in said and "load balancer 100/0" in said, said

    # Finalize agrees with the traffic: the rollout is rolled back, not a promotion moved back by hand.
    with pytest.raises(FinalizeRefused, match="is rolled_back, not promoted") as refused:
        finalize_on(env)
    assert "moved the traffic back by hand" not in str(refused.value)


def test_a_rollback_by_hand_after_a_decommission_is_recorded_on_the_promotion(aws, capsys):
    """The common case: the window ended with a decommission, the old service scaled to 0 on the
    previous revision, and on-call rolls the promotion back by hand later. The rollback scaled it
    back up and moved the traffic, but the ledger kept the rollout promoted: `rollway status` said
    the new version was production while the old one served."""
    t = aws.targets
    env, _, previous = promote_by_hand(aws, "start", "promote", "decommission")
    rollout = env.ledger.get(t.canary_service).rollout_id
    before = read_back(aws)[1]
    assert before.task_definition == previous and before.desired == 0

    hand_rollback(aws, "sessions lost since yesterday")

    weights, stable, canary = read_back(aws)
    assert weights == ALL_STABLE and stable.task_definition == previous and stable.desired > 0
    assert canary.desired == 0
    record = env.ledger.get(t.canary_service)
    assert (record.rollout_id, record.phase) == (rollout, RolloutPhase.ROLLED_BACK)
    assert kinds(aws)[-5:] == ["decommission", "rollback-start", "notifying", "notified", "rollback"]
    end = record.last_transition("rollback")
    assert (end.actor, end.comment) == ("erin", "sessions lost since yesterday")

    blocks = saved_blocks(aws)
    capsys.readouterr()
    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "phase rolled_back" in said, said


def test_a_promotion_finalized_outside_rollway_is_not_named_rolled_back(aws):
    """The stable service runs the promoted revision (finalized by hand, the ledger not told): the
    rollback takes no version out of production, so it is not recorded on the promotion."""
    t = aws.targets
    env, release, _ = promote_by_hand(aws, "start", "promote", "watched")
    ecs = aws.get_client("ecs")
    ecs.update_service(cluster=t.cluster, service=t.stable_service, taskDefinition=release,
                       desiredCount=EcsDeployer(ecs, t).describe(t.canary_service).desired)
    env.router.set_weights(ALL_STABLE)
    before = env.ledger.get(t.canary_service)

    hand_rollback(aws)

    weights, stable, _ = read_back(aws)
    assert weights == ALL_STABLE and stable.task_definition == release, "production stays the promoted version"
    assert env.ledger.get(t.canary_service) == before


def test_the_hooks_still_leave_a_closed_promotion_alone(aws):
    """``only_open_rollout`` (the rollout flows' hooks): refused, nothing recorded, nothing moved."""
    t = aws.targets
    env, _, _ = promote_by_hand(aws, "start", "promote", "watched")
    before = env.ledger.get(t.canary_service)
    blocks = saved_blocks(aws)
    with pytest.raises(RollbackRefused, match="monitoring window has closed"):
        rollback(reason="hook", actor="state hook (failed)", targets_block=blocks, aws_credentials_block=blocks,
                 only_open_rollout=True)
    assert read_back(aws)[0] == ALL_CANARY
    assert env.ledger.get(t.canary_service) == before
