"""A "Finalized" notice SNS refuses for a promotion the ledger does not record (the `canary` flow's):
nothing records it owed, so no run sends it again. The finalize flow's ``unrecorded`` said that
running finalize again sends it late, where a run again finds nothing to finalize and sends
nothing; the `canary` flow's in-run finalize said nothing of it at all, its run Completed with
"finalized" and nobody told. Both now say to tell the topic's subscribers. On the embedded AWS."""

from __future__ import annotations

import pytest

from rollway.finalize import FinalizeNoticeRefused
from tests.botocore_events import on_operation
from tests.flows.fake_env import rollout_flows_see
from tests.flows.moto_env import inbox, received_subjects, simulated
from tests.flows.test_finalize import promote_by_hand, saved_blocks
from tests.flows.test_finalize_summary import run
from tests.flows.test_finalize_unrecorded import canary_flow
from tests.flows.test_rollout_denied import refusing


def _finalized_refused(aws):
    """SNS refusing the "Finalized" notice alone, as it refuses a publish the role may not make: the
    rollout's other pages and alerts go out."""
    refuse = refusing("AuthorizationError", "sns:Publish", aws.topology.topic_arn, [])

    def handler(params, model, **kwargs):
        if str(params.get("Subject", "")).startswith("Finalized"):
            refuse(model, **kwargs)

    return on_operation(aws.get_client("sns"), "before-parameter-build", handler, operation="Publish")


def test_an_unrecorded_finalize_whose_notice_sns_refuses_does_not_say_a_run_again_sends_it(aws, monkeypatch):
    env, _, _ = promote_by_hand(aws)
    url = inbox(aws)
    with _finalized_refused(aws):
        state = run(monkeypatch, env, unrecorded=True)
    with pytest.raises(FinalizeNoticeRefused, match="NOT sent") as refused:
        state.result()
    said = " ".join(str(refused.value).split())
    assert "running finalize again sends it late" not in said, said
    t = aws.targets
    assert (f"the promotion is finalized (the ledger does not record it): {t.stable_service} runs " in said
            and f"{t.canary_service} is at 0 tasks; but the \"Finalized\" notice was NOT sent" in said), said
    assert f"Tell the subscribers of {aws.targets.alert_topic} yourself" in said, said
    # As it says: a finalize run again, SNS taking publishes, finds nothing to do and sends nothing.
    again = run(monkeypatch, env, unrecorded=True).result()
    assert again.outcome == "nothing_to_finalize" and again.notification_id is None, again
    assert not any(s.startswith("Finalized") for s in received_subjects(aws, url))


def test_the_canary_flow_s_finalize_whose_notice_sns_refuses_says_so_in_its_result(aws, monkeypatch):
    blocks = saved_blocks(aws)
    url = inbox(aws)
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        rollout_flows_see(monkeypatch, env)
        with _finalized_refused(aws):
            result = canary_flow(env, image, blocks, finalize=True)
    assert result.finalized is not None and result.finalized.outcome == "finalized", result.reason
    assert result.finalized.notice_refused is not None
    reason = " ".join(result.reason.split())
    assert 'the "Finalized" notice was NOT sent, nobody was told' in reason and "sns:Publish" in reason, reason
    assert f"Tell the subscribers of {aws.targets.alert_topic} yourself" in reason, reason
    # The finalize flow's own words for what it left: its canary "is at 0", where the finalize flow's
    # error said "is at 0 tasks", read as a weight of 0.
    t, done = aws.targets, result.finalized
    assert (f"; finalized: {t.stable_service} runs {done.task_definition} and carries 100% of the traffic, "
            f"{t.canary_service} is at 0 tasks; but the \"Finalized\" notice was NOT sent") in reason, reason
    assert not any(s.startswith("Finalized") for s in received_subjects(aws, url))
