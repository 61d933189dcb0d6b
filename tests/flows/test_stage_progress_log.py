"""What a stage's bake shows in the run's log while it waits for the judge."""

from __future__ import annotations

import logging

from prefect import flow

from flows.canary import run_canary
from rollway.approvals import scripted
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


@flow
def canary_on(env, rollout: RolloutSpec):
    return run_canary(env, rollout, scripted())


def test_each_look_of_a_baking_stage_shows_in_the_log(caplog):
    """A stage's bake (ten minutes here, hours in a weekly phase) logged nothing between the
    shift and its end: whoever opened the run saw no sign that it was reading the metrics, nor
    what the judge made of them. Each look that holds now logs the judge's reading.

    And how near the guardrails the canary is: a look's line gave their figures only when their
    verdict was the worse, so while the judge passed, whoever watched the stage could not see the
    canary creeping toward the error rate that rolls back or the response time that alerts."""
    env = fake_environment(canary_error_rate=0.0)
    rollout = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=0)
    with caplog.at_level(logging.INFO):
        result = canary_on(env, rollout)
    assert result.outcome == "promoted", result.reason
    looks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stage 5%: ")
             and "canary" in r.getMessage()]
    assert len(looks) >= 5, [r.getMessage() for r in caplog.records]
    # The judge's pass waits for the bake (10 minutes): the lines say so rather than only "pass".
    passing = [m for m in looks if "— pass" in m]
    assert passing and all("it passes once the stage has baked 600 s" in m for m in passing), passing
    # The setting named: "rolls back over 1%" beside the monitoring window's "within the 5% guardrail"
    # read as two limits for one rate (this rollout watches no window: only the stage's is named).
    stage_s = "(the stage's error-rate guardrail, canary_error_rate: rolls back over 1%)"
    near = f"; guardrails: canary error rate 0.00% {stage_s}, average response 0.12 s (alerts over 10 s)"
    # Every look: before any period with requests, that no rate was measured yet.
    assert all(near in m or f"; guardrails: canary error rate: no requests, no rate measured {stage_s}, "
               "average response none measured" in m for m in looks), looks
    assert all(near in m for m in passing), passing


def test_a_shift_says_which_stage_began_and_until_when_it_is_judged(caplog):
    """The shift's line said only "shifted 100/0 -> 95/5: rollout starting; shifting to 5%": not
    which stage of how many, that the weights were read back, nor how long the stage is judged and
    from when it may pass; the canary flow keeps no ledger and sends no stage notice, so the run's
    log is all a person has."""
    env = fake_environment(canary_error_rate=0.0)
    rollout = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600, min_bake_seconds=300),
                                               Stage(weight=100, bake_seconds=600)], monitor_seconds=0)
    with caplog.at_level(logging.INFO):
        result = canary_on(env, rollout)
    assert result.outcome == "promoted", result.reason
    shifts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stage ")
              and "shifted" in r.getMessage()]
    assert len(shifts) == 2, [r.getMessage() for r in caplog.records]
    first, last = shifts
    assert first.startswith("stage 1 of 2 (5%): shifted 100/0 -> 95/5 (stable/canary, read back from the load "
                            "balancer)"), first
    assert "judged every 60 s for up to 11 min" in first and "may pass from 5 min" in first, first
    assert last.startswith("stage 2 of 2 (100%): shifted 95/5 -> 0/100 (stable/canary"), last
    assert "may pass from 10 min" in last, last

