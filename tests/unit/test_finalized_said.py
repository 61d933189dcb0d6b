"""What a finalize done says it left, and of a "Finalized" notice SNS refused: one sentence for the
finalize flow's error and the `canary` flow's result (``rollway.finalize.finalized_said``)."""

from __future__ import annotations

from rollway.finalize import NOTICE_LATE, FinalizeResult, finalized_said
from rollway.model import Weights
from rollway.targets import Targets

T = Targets()
TD = "arn:aws:ecs:us-east-2:123456789012:task-definition/webordinary-edit:7"


def _result(*, rollout_id: str | None, refused: str | None) -> FinalizeResult:
    return FinalizeResult(outcome="finalized", rollout_id=rollout_id, image=None, task_definition=TD,
                          weights=Weights(stable=100, canary=0), stable_desired=2, canary_desired=0,
                          notice_refused=refused)


def test_a_finalize_told_says_what_it_left_alone() -> None:
    said = finalized_said(_result(rollout_id=None, refused=None), T)
    assert said == (f"{T.stable_service} runs {TD} and carries 100% of the traffic, "
                    f"{T.canary_service} is at 0 tasks"), said


def test_an_unrecorded_finalize_untold_sends_a_person_to_the_subscribers_not_to_a_run_again() -> None:
    said = finalized_said(_result(rollout_id=None, refused="AuthorizationError: sns:Publish"), T)
    assert f'is at 0 tasks; but the "Finalized" notice was NOT sent, nobody was told: AuthorizationError' in said
    assert f"Tell the subscribers of {T.alert_topic} yourself" in said and NOTICE_LATE not in said, said


def test_a_recorded_finalize_untold_says_a_run_again_sends_it_late() -> None:
    said = finalized_said(_result(rollout_id="r-1", refused="Throttling"), T)
    assert said.endswith(f"Throttling. Running finalize again sends it late to topic {T.alert_topic} once SNS takes "
                         "it (it moves nothing)"), said


def test_a_recorded_finalize_untold_says_once_sns_takes_it_once() -> None:
    """"Once SNS takes it" opened the advice and ended it again (``NOTICE_LATE`` says it too)."""
    said = finalized_said(_result(rollout_id="r-1", refused="Throttling"), T)
    assert said.lower().count("once sns takes it") == 1, said
