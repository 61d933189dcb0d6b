"""Edges of the path CloudWatch -> CloudWatchMetrics -> engine -> judge: periods around a shift, resumed phases."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest

import flows.progressive as progressive
import tasks.metrics
from flows.engine import baseline_history
from flows.env import RunSession
from rollway.aws.cloudwatch import CloudWatchMetrics
from rollway.decide import StageState
from rollway.judge import judge_for_stage
from rollway.spec import Analysis, RolloutSpec
from tests.adapters.test_traffic import ORIGIN, simulator


@pytest.fixture
def plain_observe(monkeypatch):
    """Call the observe task's function directly (no Prefect API outside a flow)."""
    monkeypatch.setattr(tasks.metrics, "observe", tasks.metrics.observe.fn)


def test_baseline_history_leaves_out_the_period_of_the_shift_that_has_not_ended(aws, plain_observe):
    # Traffic in [ORIGIN, ORIGIN+180); the stage's weights are set at ORIGIN+150.5, and the
    # engine reads the baseline's history on the stage's first tick, i.e. at that moment.
    sim = simulator(aws, rps=10)
    sim.run_ticks(3)
    spec = RolloutSpec(image="example/edit:2.0.0")
    now = ORIGIN + 150.5
    state = StageState(stage_index=0, started_at=now)
    env = SimpleNamespace(metrics=CloudWatchMetrics(aws.get_client("cloudwatch"), aws.targets, router=aws.topology))

    history = baseline_history(env, spec, judge_for_stage(spec, 0), state.started_at)

    # The period [ORIGIN+120, ORIGIN+180) has not ended at `now` (on AWS its counts are still
    # coming in) and it holds the weight shift: it is neither whole nor "before the stage".
    assert history, "the baseline had traffic in the hour before the stage"
    assert max(i.t for i in history) <= now, [i.t for i in history]


def test_advance_phase_reads_metrics_at_the_rollouts_own_interval(monkeypatch):
    # A rollout recorded with 5-minute analysis intervals; the weekly advance_phase flow
    # resumes it from the ledger and must read CloudWatch at the same period its spec (and
    # analysis_start) align to.
    spec = RolloutSpec(image="example/edit:2.0.0", analysis=Analysis(interval_seconds=300))
    record = SimpleNamespace(spec_json=spec.model_dump_json(), phased=False)
    real = inspect.signature(RunSession.environment)
    used: list = []
    blocks_read: list = []

    class Session:
        targets, credentials = SimpleNamespace(canary_service="svc"), None

        def environment(self, *args, **kwargs):
            bound = real.bind(self, *args, **kwargs)
            bound.apply_defaults()
            return SimpleNamespace(targets=self.targets, period=bound.arguments["interval_seconds"],
                                   ledger=SimpleNamespace(get=lambda service: record), images=None)

    def fake_load_session(targets_block, aws_credentials_block):
        blocks_read.append((targets_block, aws_credentials_block))
        return Session()

    monkeypatch.setattr(progressive, "load_session", fake_load_session)
    monkeypatch.setattr(progressive, "advance", lambda env, *a, **k: used.append(env.period))

    progressive.advance_phase.fn(targets_block="t", aws_credentials_block="c")

    assert used == [spec.analysis.interval_seconds], "the environment the phase runs on reads 300-s periods"
    assert blocks_read == [("t", "c")], "each Prefect block is read once a week, not once per environment"
