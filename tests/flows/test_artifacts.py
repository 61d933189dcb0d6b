"""What a progressive rollout shows in the Prefect UI: progress, a table per stage, a summary."""

from __future__ import annotations

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.journal import artifact_key
from flows.progressive import run_progressive
from rollway.approvals import auto_approve
from rollway.fakes import FakeLedger
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


@flow
def rollout(env, spec):
    return run_progressive(env, spec, auto_approve("frank"), owner="run-1", phased=False)


def latest(key: str):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    return max(found, key=lambda a: a.created)


def test_progress_stage_tables_and_summary():
    env = fake_environment(canary_error_rate=0.001)
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (10, 60, 100)], monitor_seconds=0)
    result = rollout(env, spec)
    assert result.outcome == "promoted"
    service = env.targets.canary_service

    assert float(latest(artifact_key(service, "progress")).data) == 100.0

    for stage, report in zip(spec.stages, result.stages):
        table = latest(artifact_key(service, f"stage-{stage.weight}"))
        rows = table.data if isinstance(table.data, list) else __import__("json").loads(table.data)
        row = rows[0]
        assert row["weights s/c"] == f"{100 - stage.weight}/{stage.weight}"
        assert row["canary req"] == str(report.canary.requests) and row["base req"] == str(report.baseline.requests)
        assert row["canary err"] == str(report.canary.errors)
        assert row["verdict"] == "successful" and row["reason"] == report.verdict.reason

    summary = latest(artifact_key(service, "summary")).data
    assert IMAGE in summary and "promoted" in summary
    assert summary.count("| ") > 3 * len(spec.stages)  # the per-stage table is in it
