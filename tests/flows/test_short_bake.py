"""A stage that bakes for one analysis interval, which the spec accepts, can pass.

The judge reads whole periods, and the first one starts at the period boundary after the
shift. A real shift lands mid-period, so a bake of one interval used to end before any whole
period did, and every healthy stage paused as inconclusive for a person.
"""

from __future__ import annotations

import pytest

from rollway.approvals import ApprovalAnswer
from rollway.decide import StageState, stage_end
from rollway.spec import RolloutSpec, Stage
from tests.flows.test_progressive_fakes import IMAGE, env_with_ledger, progressive_on

ON_A_MINUTE = 1_800_000_000.0


def one_interval_stages() -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=60) for w in (5, 100)], monitor_seconds=0)


@pytest.mark.parametrize("into_the_minute", [0.0, 1.0, 30.0, 59.0])
def test_a_healthy_canary_passes_one_interval_bakes_wherever_in_the_minute_the_shift_lands(into_the_minute):
    env = env_with_ledger()
    env.clock.t = ON_A_MINUTE + into_the_minute
    pauses = []

    def person(pause, summary):
        pauses.append((pause.cause, pause.reason))
        return ApprovalAnswer(action="approve", approver="bob", comment="ok")

    result = progressive_on(env, one_interval_stages(), person)
    assert result.outcome == "promoted" and pauses == [], pauses


def test_the_stage_lasts_until_its_first_whole_period_has_ended_and_its_metrics_arrived():
    spec = one_interval_stages()
    delay = spec.analysis.metrics_delay_seconds
    # On a boundary the bake is the whole period; 30 s in, the first whole period ends 90 s later.
    assert stage_end(spec, StageState(stage_index=0, started_at=ON_A_MINUTE)) == ON_A_MINUTE + 60 + delay
    assert stage_end(spec, StageState(stage_index=0, started_at=ON_A_MINUTE + 30)) == ON_A_MINUTE + 120 + delay
    # A bake longer than that is kept as it is.
    long = spec.model_copy(update={"stages": (Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=600))})
    assert stage_end(long, StageState(stage_index=0, started_at=ON_A_MINUTE + 30)) == ON_A_MINUTE + 630 + delay
