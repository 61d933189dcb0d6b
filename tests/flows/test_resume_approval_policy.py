"""A resume of progressive_rollout runs the recorded spec as a whole, its approval policy included.

The run took the recorded spec for everything else, but built its approval pauses from the spec
parameter: re-run from the UI's pre-filled form (on_timeout rollback after an hour), a rollout
recorded to hold for a week at an unanswered pause was rolled back an hour after nobody answered.
"""

from __future__ import annotations

import flows.env
import flows.progressive
from flows.progressive import progressive_rollout
from rollway.approvals import auto_approve
from rollway.fakes import FakeLedger
from rollway.spec import Approvals, RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"
STAGES = [Stage(weight=5, bake_seconds=120), Stage(weight=25, bake_seconds=120, approval=True),
          Stage(weight=100, bake_seconds=120)]
PHASES = [WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(25, 100))]


def test_a_resumed_run_pauses_with_the_recorded_approval_policy(monkeypatch):
    env = fake_environment()
    env.ledger = FakeLedger()
    for module in (flows.env, flows.progressive):
        monkeypatch.setattr(module, "load_environment", lambda *a, **k: env)
    built: list[Approvals] = []

    def approver_for(approvals, poll_interval=2):
        built.append(approvals)
        return auto_approve("alice")

    monkeypatch.setattr(flows.progressive, "prefect_approver", approver_for)
    recorded = Approvals(timeout_seconds=7 * 86400, on_timeout="hold")
    spec = RolloutSpec(image=IMAGE, stages=STAGES, phases=PHASES, approvals=recorded, monitor_seconds=0)
    assert progressive_rollout(spec=spec, phased=True).outcome == "holding"  # week 1 done

    # Run again by hand for the rest, with the form's defaults for everything but the image.
    given = RolloutSpec(image=IMAGE, stages=STAGES, phases=PHASES, monitor_seconds=0)
    assert given.approvals != recorded
    result = progressive_rollout(spec=given, phased=False)

    assert result.outcome == "promoted"
    assert built[-1] == recorded, f"the pause before 25% was built with {built[-1]}, not the recorded {recorded}"
