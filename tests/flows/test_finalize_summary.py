"""What a finalize run leaves in the Prefect UI: a markdown artifact saying what it did, and when it
stopped part-way, what it had done and how to go on. On the embedded AWS with the Prefect test harness."""

from __future__ import annotations

import pytest

import flows.finalize
from flows.finalize import finalize
from rollway.finalize import FinalizeIncomplete, FinalizeRefused
from tests.flows.test_finalize import failing, promote_by_hand
from tests.flows.test_reports_flow import artifacts_of

KEY = "webordinary-edit-service-canary-finalize"
VERIFY_SECONDS = 5


def run(monkeypatch, env, **parameters):
    # The flow on the test's environment, so that a failure can be injected into its clients.
    monkeypatch.setattr(flows.finalize, "load_environment", lambda *args: env)
    return finalize(actor="carol", stable_timeout_seconds=30, verify_timeout_seconds=VERIFY_SECONDS,
                    return_state=True,
                    **parameters)


def test_a_finalized_promotion_leaves_a_summary_of_what_was_done(aws, monkeypatch):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    state = run(monkeypatch, env)
    result = state.result()
    assert result.outcome == "finalized"
    summary = artifacts_of(state)[KEY]
    assert "# Finalized: webordinary-edit-service-canary" in summary
    assert f"`webordinary-edit-service` runs `{release}`" in summary and "100/0 stable/canary" in summary
    for number, step in enumerate(result.steps, start=1):
        assert f"{number}. {step}" in summary


def stopped_summary(aws, monkeypatch, env, operation: str) -> str:
    """The summary of a finalize run stopped by the load balancer refusing ``operation``, to its
    writes and to the reads it makes within ``verify_timeout_seconds`` (clients of their own)."""
    restores = [failing(client, operation) for client in (aws.get_client("elbv2"),
                                                          aws.get_client.reading(VERIFY_SECONDS)("elbv2"))]
    try:
        state = run(monkeypatch, env)
    finally:
        for restore in restores:
            restore()
    with pytest.raises(FinalizeIncomplete, match="ThrottlingException"):
        state.result()
    summary = artifacts_of(state)[KEY]
    assert "# Finalize stopped: webordinary-edit-service-canary" in summary
    return summary


def test_a_finalize_that_stopped_says_what_it_had_done_and_how_to_go_on(aws, monkeypatch):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    summary = stopped_summary(aws, monkeypatch, env, "ModifyRule")
    assert "while it tried to move the traffic to the stable target group" in summary
    assert "the load balancer holds 0/100 (stable/canary)" in summary and "Run finalize again" in summary
    # What it had done: the intent recorded, the stable service pointed at the release and healthy.
    assert "1. recorded 'finalize-start'" in summary
    assert f"2. webordinary-edit-service pointed at {release}" in summary
    assert "3. webordinary-edit-service is steady" in summary and "4." not in summary


def test_a_refused_finalize_says_why_and_that_nothing_changed(aws, monkeypatch):
    env, _, _ = promote_by_hand(aws, "start", "promote")  # the monitoring window is still open
    state = run(monkeypatch, env)
    with pytest.raises(FinalizeRefused):
        state.result()
    summary = artifacts_of(state)[KEY]
    assert "# Finalize refused: webordinary-edit-service-canary" in summary
    assert "monitoring window is still open" in summary and "Nothing was changed" in summary
    # The promotion by hand left no run holding the lease: nothing watches the window, and the
    # run, which reads the wall clock, says what does instead of a wait that would not close it.
    said = " ".join(summary.split())
    assert "the ledger shows no run watching it now (no run holds the rollout's lease)" in said, said
    assert "once the window has passed" not in said, said


def test_a_finalize_whose_first_reads_fail_says_where_it_stopped(aws, monkeypatch):
    """The load balancer (or the ledger, or ECS) could not be read: the run failed with AWS's bare
    error and left no summary, so the UI said nothing of where it stopped or that nothing changed."""
    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    summary = stopped_summary(aws, monkeypatch, env, "DescribeRules")
    assert "while it tried to read" in summary and "Nothing was changed" in summary
    assert "Nothing: it stopped at its first step." in summary


@pytest.mark.parametrize(("history", "phase", "said"), [
    (("start", "promote"), None, " was promoted at"),
    (("start", "rollback-start", "rollback"), "rolled_back", ", is rolled_back, not promoted"),
], ids=["window-open", "rolled-back"])
def test_a_refusal_names_the_digest_the_rollout_ran_beside_its_tag(aws, monkeypatch, history, phase, said):
    """The refusal named the tag only, which may name another image by then (pushed again): not
    what the canary ran, nor what finalize would put on the stable service."""
    from rollway.phases import RolloutPhase

    image = f"{aws.topology.repository_uri}:2.0.0"
    pinned = f"{aws.topology.repository_uri}@sha256:" + "a" * 64
    env, _, _ = promote_by_hand(aws, *history, pinned_image=pinned,
                                phase=RolloutPhase(phase) if phase else RolloutPhase.PROMOTED)
    state = run(monkeypatch, env)
    with pytest.raises(FinalizeRefused) as refused:
        state.result()
    assert f" of {image} (pinned as {pinned}){said}" in str(refused.value), str(refused.value)


def test_a_finalized_rollout_whose_stable_service_was_changed_since_is_not_named_as_what_it_runs(aws, monkeypatch):
    """Finalized, then the stable service pointed at a hotfix by hand: a second run said "already
    finalized" (true), and its summary and result paired the hotfix's task definition with the
    finalized rollout's image, as if the stable service still ran that version."""
    from rollway.aws.ecs import EcsDeployer

    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    assert run(monkeypatch, env).result().outcome == "finalized"
    t = aws.targets
    hotfix = EcsDeployer(aws.get_client("ecs"), t).register_revision(f"{aws.topology.repository_uri}:2.0.1", release)
    aws.get_client("ecs").update_service(cluster=t.cluster, service=t.stable_service, taskDefinition=hotfix)

    state = run(monkeypatch, env)
    result = state.result()
    assert result.outcome == "already_finalized" and result.task_definition == hotfix
    assert result.image is None, "the finalized rollout's image is not what the stable service runs now"
    summary = artifacts_of(state)[KEY]
    assert ":2.0.0" not in summary.split("## Steps")[0], summary
    assert f"not the finalized {release}" in summary, summary


def test_a_second_finalize_says_in_its_log_and_summary_when_the_rollout_was_finalized_as_the_command_does(
        aws, monkeypatch, caplog):
    """Run again on a finalized rollout, the command said "already finalized", but the run's own
    step (its log line and its summary) ended "nothing to do" and said nothing of when."""
    from rollway.ledger import utc

    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    assert run(monkeypatch, env).result().outcome == "finalized"
    record = env.ledger.get(aws.targets.canary_service)
    done = record.last_transition("finalized")
    caplog.clear()
    state = run(monkeypatch, env)
    result = state.result()
    said = (f"{record.rollout_id} was already finalized at {utc(done.at)} by carol: webordinary-edit-service runs "
            f"{release} and carries 100% of the traffic, webordinary-edit-service-canary is at 0 tasks; nothing changed")
    assert result.outcome == "already_finalized" and result.steps == (said,), result.steps
    summary = artifacts_of(state)[KEY]
    assert f"1. {said}" in summary and "nothing to do" not in summary, summary
    logged = [r.getMessage() for r in caplog.records if "already finalized" in r.getMessage()]
    assert logged == [f"finalize: {said}"], logged
