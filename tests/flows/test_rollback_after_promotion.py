"""The `rollback` flow run by hand on a promoted rollout whose monitoring window has closed (what
`rollway abort` tells a person to do then). On the embedded AWS with the Prefect test harness.

Before it is finalized the stable service still runs the previous version, so the rollback puts
it back in production. It was not written to the ledger, which kept saying "promoted": `rollway
status` and the reports said the new version was promoted while the traffic was on the old one,
and `rollway finalize` then refused, saying someone "moved the traffic back by hand".
"""

from __future__ import annotations

import logging

import pytest

import rollway.cli.ops as ops
from flows.rollback import rollback
from rollway.finalize import FinalizeRefused, is_finalized
from rollway.phases import RolloutPhase
from rollway.reports import rollout_report
from tests.flows.moto_env import inbox, saved_blocks
from tests.flows.test_canary_moto import read_back
from tests.flows.test_finalize import ALL_CANARY, ALL_STABLE, finalize_on, kinds, notice, promote_by_hand


def test_a_rollback_by_hand_after_the_window_is_recorded_on_the_promoted_rollout(aws, capsys):
    t = aws.targets
    env, release, previous = promote_by_hand(aws, "start", "promote", "decommission")
    rollout = env.ledger.get(t.canary_service).rollout_id
    blocks = saved_blocks(aws)
    url = inbox(aws)

    result = rollback(reason="sessions lost since 3.0.0", actor="erin", targets_block=blocks,
                      aws_credentials_block=blocks)

    weights, stable, canary = read_back(aws)
    assert weights == ALL_STABLE and result.weights == ALL_STABLE
    assert stable.task_definition == previous and stable.desired > 0, "the previous version serves again"
    assert canary.desired == 0 and canary.task_definition == previous
    record = env.ledger.get(t.canary_service)
    assert (record.rollout_id, record.phase) == (rollout, RolloutPhase.ROLLED_BACK)
    assert kinds(aws)[-4:] == ["decommission", "rollback-start", "notified", "rollback"]
    end = record.last_transition("rollback")
    assert (end.actor, end.comment, end.to_weights) == ("erin", "sessions lost since 3.0.0", ALL_STABLE)
    assert record.rollback_holder is None, "the rollback's claim ends with it"
    assert "rolled back at" in rollout_report(record) and "monitoring window closed" not in rollout_report(record)
    # The page names what was taken out of production, as a rollback of an open rollout's does.
    assert f"rollout {rollout}" in notice(aws, url, f"Rollback: {t.canary_service}")

    capsys.readouterr()
    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "phase rolled_back" in said and "weights ledger 100/0, load balancer 100/0" in said, said

    # Finalize agrees with the traffic: the rollout is rolled back, not a promotion moved back by hand.
    with pytest.raises(FinalizeRefused, match="is rolled_back, not promoted") as refused:
        finalize_on(env)
    assert "moved the traffic back by hand" not in str(refused.value)


def test_a_rollback_by_hand_after_finalize_says_it_does_not_bring_the_previous_version_back(aws, caplog):
    """Finalized, the stable service runs the promoted version: the rollback moves nothing back,
    leaves the finalized record as it is, and says so (it used to page "rolled back" and say nothing)."""
    t = aws.targets
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    assert finalize_on(env).outcome == "finalized"
    before = env.ledger.get(t.canary_service)
    blocks = saved_blocks(aws)

    with caplog.at_level(logging.WARNING):
        rollback(reason="sessions lost", actor="erin", targets_block=blocks, aws_credentials_block=blocks)

    weights, stable, canary = read_back(aws)
    assert weights == ALL_STABLE and stable.task_definition == release, "production stays the promoted version"
    record = env.ledger.get(t.canary_service)
    assert record == before and is_finalized(record)
    said = " ".join(caplog.text.split())
    assert "it was finalized" in said and "does not bring the previous version back" in said, said
    assert "not recorded on that rollout" in said, said


def test_the_hooks_still_leave_a_closed_promotion_alone(aws):
    """``only_open_rollout`` (the rollout flows' hooks): refused, nothing recorded, nothing moved."""
    from flows.rollback import RollbackRefused

    t = aws.targets
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    before = env.ledger.get(t.canary_service)
    blocks = saved_blocks(aws)
    with pytest.raises(RollbackRefused, match="monitoring window has closed"):
        rollback(reason="hook", actor="state hook (failed)", targets_block=blocks, aws_credentials_block=blocks,
                 only_open_rollout=True)
    assert read_back(aws)[0] == ALL_CANARY
    assert env.ledger.get(t.canary_service) == before
