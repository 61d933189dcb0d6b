"""What the runs of a weekly rollout say in their logs, which is what a person reads on the
run's page: which phase a run starts and why, and that a phase ended holding, until when."""

from __future__ import annotations

import logging

from tests.flows.test_progressive_fakes import env_with_ledger, full_spec
from tests.flows.test_weekly_schedule import MONDAY, WEEK, at, first_run, tick


def _said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs"]


def test_a_phased_run_and_the_schedules_tick_say_which_phase_they_start_and_that_it_ended_holding(caplog):
    """The Monday tick that started week 2 logged only "resuming ... at stage 1 (95/5)", and a run
    whose phase ended logged nothing after its last stage passed: neither log said that a phase
    started or ended, which one, where the traffic holds, nor when the next one may start."""
    env = env_with_ledger()
    service = env.targets.canary_service
    env.clock.t = at("UTC", *MONDAY)
    with caplog.at_level(logging.INFO):
        first_run(env, full_spec())
    said = _said(caplog)
    assert any(f"starting week 1 of {service} (phase 1 of 3: 5%)" in line for line in said), said
    assert any(f"week 1 of {service} complete: holding at 95/5" in line
               and "week 2 may start from Mon 2027-01-18 00:00 UTC" in line for line in said), said
    caplog.clear()
    env.clock.t += WEEK
    with caplog.at_level(logging.INFO):
        tick(env, "cron-1")
    said = _said(caplog)
    assert any(f"phase 1 of {service} passed, and the next phase has been due since Mon 2027-01-18 00:00 UTC"
               in line for line in said), said
    assert any(f"starting week 2 of {service} (phase 2 of 3: 25%, 50%)" in line for line in said), said
    assert any(f"week 2 of {service} complete: holding at 50/50" in line for line in said), said
