"""A rollout holding between weekly phases is refused by finalize with what to do: wait for the
next phase (or roll it back), not "approve it, `rollway promote`", which finds nothing paused
and sends the person back."""

from __future__ import annotations

import pytest

from rollway.finalize import FinalizeRefused, plan_finalize, plan_unrecorded
from rollway.ledger import RolloutRecord, Transition
from rollway.model import ServiceState, Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from rollway.targets import Targets

STARTED = 1_800_000_000.0  # 2027-01-15 08:00 UTC, a Friday
SPEC = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=w) for w in (5, 25, 100)],
                   phases=[WeeklyPhase(name="week 1", weights=(5, 25)), WeeklyPhase(name="week 2", weights=(100,))])


def _holding() -> RolloutRecord:
    return RolloutRecord(service="svc", rollout_id="20270115T080000Z-1a2b3c4d", image=SPEC.image,
                         spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PAUSED, stage_index=1,
                         stage_passed=True, weights=Weights.canary_at(25), phased=True, weekly_phase_index=0,
                         weekly_phase_passed=True, weekly_phase_started_at=STARTED,
                         history=(Transition(at=STARTED, kind="start", actor="alice"),
                                  Transition(at=STARTED + 1, kind="phase", actor="alice")))


def _state(td: str, desired: int) -> ServiceState:
    return ServiceState(name="svc", task_definition=td, desired=desired, running=desired)


@pytest.mark.parametrize("unrecorded", [False, True], ids=["recorded", "unrecorded"])
def test_a_rollout_between_weekly_phases_is_refused_saying_when_its_next_phase_starts(unrecorded):
    record = _holding()
    kwargs = dict(live=Weights.canary_at(25) if not unrecorded else Weights.canary_at(100),
                  stable=_state("app:1", 3), canary=_state("app:2", 1), targets=Targets(), now=STARTED + 60)
    with pytest.raises(FinalizeRefused) as refused:
        if unrecorded:
            plan_unrecorded(record, SPEC, canary_runs=(), **kwargs)
        else:
            plan_finalize(record, SPEC, **kwargs)
    message = " ".join(str(refused.value).split())
    # `rollway promote` answers "no paused rollout run": nothing asks before the next phase starts.
    assert "rollway promote" not in message and "approve it" not in message, message
    assert "holding between weekly phases: week 1 passed" in message, message
    assert "the next phase, week 2, may start from" in message and "advance_phase" in message, message
    assert "`rollway abort`" in message and "Nothing was changed" in message, message
