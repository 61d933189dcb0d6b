"""A `canary` flow run's stage tables are on its Artifacts tab as each stage ends, not only in the
summary a run that ends leaves: the run the page of a failed or cancelled run's rollback names."""

from __future__ import annotations

from prefect import flow

from flows.journal import artifact_key
from rollway.approvals import scripted
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment
from tests.flows.test_artifacts import IMAGE, run_artifacts


def run_artifact_descriptions(state) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    return {a.key: a.description or "" for a in found}


@flow
def canary_failing_at_its_pause(env, spec):
    from flows.canary import run_canary

    # No answer to give: the pause before 100 % fails the run, as a Prefect API gone away would.
    return run_canary(env, spec, scripted())


def test_a_canary_run_that_fails_mid_rollout_keeps_the_tables_of_the_stages_it_judged():
    """Its hook rolls it back and the page names the run, whose Artifacts tab the README calls the
    record; the summary comes only with a run that ends, and the tab was empty."""
    env = fake_environment(canary_error_rate=0.001)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=180),
                                            Stage(weight=100, bake_seconds=180, approval=True)], monitor_seconds=0)
    state = canary_failing_at_its_pause(env, spec, return_state=True)
    assert state.is_failed(), state.message
    artifacts = run_artifacts(state)
    table = artifacts.get(artifact_key(env.targets.canary_service, "stage-5"))
    assert table is not None, f"the failed canary run left no table of its 5% stage: {sorted(artifacts)}"
    assert "95/5" in table and "successful" in table and "passed" in table
    # Its columns are keyed "canary p99 ms" for whoever reads them; its description says what that is.
    described = run_artifact_descriptions(state)[artifact_key(env.targets.canary_service, "stage-5")]
    assert "worst" in described and "not a p99 over" in described, described
    assert artifact_key(env.targets.canary_service, "stage-100") not in artifacts  # never judged


def test_a_canary_run_whose_finalize_refused_still_ends_with_its_summary():
    """Promoted, its window unverified, so its finalize refused: the run fails with the promotion
    in place, and its summary said nothing of either (the Artifacts tab had no outcome at all)."""
    from tests.flows.test_watch_without_decommission import canary_on, metrics_dark_after_promotion, unphased_spec

    env = metrics_dark_after_promotion()
    state = canary_on(env, unphased_spec(), finalize=True, return_state=True)
    assert state.is_failed(), state.message
    summary = run_artifacts(state).get(artifact_key(env.targets.canary_service, "summary"))
    assert summary is not None, "the run that promoted and did not finalize left no summary"
    assert summary.splitlines()[0] == f"# Canary of `{IMAGE}` promoted (monitoring unverified)"
    assert "Not finalized: " in summary and "rollway finalize --unrecorded" in summary
    assert "| 0/100 |" in summary  # the stage table, 100 % stage included


def test_a_rollback_during_a_passed_stages_pause_keeps_that_stages_table_and_gets_its_own():
    """The canary fails while the approval before 100 % waits: the 5 % stage's table stays as it
    passed, and the rollback at 5 % has a table of its own beside it; written under the stage's key,
    it replaced the passed table on the Artifacts tab."""
    from rollway.approvals import ApprovalAnswer
    from rollway.fakes import steady

    env = fake_environment(canary_error_rate=0.0)
    person = scripted(ApprovalAnswer(action="approve", approver="alice"), clock=env.clock, after_seconds=3600)

    def turns_bad(pause, summary, watch=None):
        env.metrics.behaviour = steady(5000.0, 0.001, 0.05)
        return person(pause, summary, watch=watch)

    @flow
    def canary_failing_while_paused(env, spec):
        from flows.canary import run_canary

        return run_canary(env, spec, turns_bad)

    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=180),
                                            Stage(weight=100, bake_seconds=180, approval=True)], monitor_seconds=0)
    state = canary_failing_while_paused(env, spec, return_state=True)
    artifacts = run_artifacts(state)
    passed = artifacts.get(artifact_key(env.targets.canary_service, "stage-5"))
    paused = artifacts.get(artifact_key(env.targets.canary_service, "stage-5-pause"))
    assert passed is not None and "passed" in passed and "rollback" not in passed, passed
    assert paused is not None and "rollback during the approval pause" in paused and "failed" in paused, sorted(artifacts)
