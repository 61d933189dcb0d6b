"""The per-stage table counts what the verdict was based on.

A stage passes only on periods whose metrics have settled; the table (in the demo, the run's
artifacts and the approval form) used to add the newest, unsettled period as well, so its
counts disagreed with the reason printed in the same row.
"""

from __future__ import annotations

import re

from prefect import flow

from flows.canary import run_canary
from rollway.approvals import scripted
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment


@flow
def canary_on(env, rollout):
    return run_canary(env, rollout, scripted())


def test_each_stage_row_counts_the_requests_and_errors_its_verdict_names():
    env = fake_environment(canary_error_rate=0.0005)
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0",
                       stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 25, 100)],
                       monitor_seconds=0)
    result = canary_on(env, spec)
    assert result.outcome == "promoted"
    for stage in result.stages:
        judged = re.search(r"canary errors (\d+)/(\d+)", stage.verdict.reason)
        assert judged, stage.verdict.reason
        errors, requests = map(int, judged.groups())
        assert (stage.canary.errors, stage.canary.requests) == (errors, requests), (
            f"stage {stage.weights}: table canary {stage.canary.errors}/{stage.canary.requests}, "
            f"verdict {stage.verdict.reason}")


def test_a_rolled_back_stage_row_counts_every_period_the_rollback_saw():
    env = fake_environment(canary_error_rate=0.05)
    result = canary_on(env, RolloutSpec(image="webordinary/edit-container:2.1.0",
                                        stages=[Stage(weight=w, bake_seconds=900) for w in (5, 100)],
                                        monitor_seconds=0))
    assert result.outcome == "rolled_back"
    (stage,) = result.stages
    assert stage.canary.errors > 0 and stage.canary.requests > 0
    shown = re.search(r"\((\d+)/(\d+)\)", stage.verdict.reason) or re.search(r"(\d+)/(\d+)", stage.verdict.reason)
    assert shown and (stage.canary.errors, stage.canary.requests) == tuple(map(int, shown.groups())), (
        stage.canary, stage.verdict.reason)
