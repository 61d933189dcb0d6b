"""A resume of progressive_rollout runs the recorded spec as a whole, its approval policy and its
metrics period included.

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
from rollway.spec import Analysis, Approvals, RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import fake_environment, rollout_flows_see

IMAGE = "webordinary/edit-container:2.0.0"
STAGES = [Stage(weight=5, bake_seconds=120), Stage(weight=25, bake_seconds=120, approval=True),
          Stage(weight=100, bake_seconds=120)]
PHASES = [WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(25, 100))]


def fake_blocks(monkeypatch) -> tuple[list[int], list[Approvals]]:
    """The runs' environment is a fake one, their approvers approve at once; returns the metrics
    period of each environment a run builds and the approvals each approver was built with."""
    env = fake_environment()
    env.ledger = FakeLedger()
    periods: list[int] = []

    def load_environment(*args, interval_seconds: int = 60, **kwargs):
        periods.append(interval_seconds)
        return env

    monkeypatch.setattr(flows.env, "load_environment", load_environment)  # the hooks'
    rollout_flows_see(monkeypatch, env, periods)
    built: list[Approvals] = []

    def approver_for(approvals, poll_interval=2):
        built.append(approvals)
        return auto_approve("alice")

    monkeypatch.setattr(flows.progressive, "prefect_approver", approver_for)
    return periods, built


def test_a_resumed_run_pauses_with_the_recorded_approval_policy(monkeypatch):
    _, built = fake_blocks(monkeypatch)
    recorded = Approvals(timeout_seconds=7 * 86400, on_timeout="hold")
    spec = RolloutSpec(image=IMAGE, stages=STAGES, phases=PHASES, approvals=recorded, monitor_seconds=0)
    assert progressive_rollout(spec=spec, phased=True).outcome == "holding"  # week 1 done

    # Run again by hand for the rest, with the form's defaults for everything but the image.
    given = RolloutSpec(image=IMAGE, stages=STAGES, phases=PHASES, monitor_seconds=0)
    assert given.approvals != recorded
    result = progressive_rollout(spec=given, phased=False)

    assert result.outcome == "promoted"
    assert built[-1] == recorded, f"the pause before 25% was built with {built[-1]}, not the recorded {recorded}"


def test_a_resumed_run_reads_metrics_at_the_recorded_period(monkeypatch):
    """Read every 120 s while the judge counts 60-s ticks, each tick would hold two periods'
    requests (or, the other way round, half of them)."""
    periods, _ = fake_blocks(monkeypatch)
    spec = RolloutSpec(image=IMAGE, stages=STAGES, phases=PHASES, monitor_seconds=0)
    assert progressive_rollout(spec=spec, phased=True).outcome == "holding"  # week 1 done, at 60 s
    periods.clear()

    given = RolloutSpec(image=IMAGE, stages=STAGES, phases=PHASES, monitor_seconds=0,
                        analysis=Analysis(interval_seconds=120))
    assert progressive_rollout(spec=given, phased=False).outcome == "promoted"
    assert periods[-1] == 60, f"the resumed run read metrics every {periods[-1]} s, not the recorded 60 s"

    # A run for another image drives the given spec (this one is refused later, the promotion
    # not finalized: the period is chosen before that).
    periods.clear()
    newer = given.model_copy(update={"image": "webordinary/edit-container:2.1.0"})
    progressive_rollout(spec=newer, phased=True, return_state=True)
    assert periods == [120]
