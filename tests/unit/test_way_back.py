"""What `rollway abort` names as the version to roll out again (rollway/cli/way_back.py)."""

from __future__ import annotations

from rollway.cli.way_back import previous_image
from rollway.ledger import RolloutRecord
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage

ARN = "arn:aws:ecs:us-west-2:123456789012:task-definition/edit-container:41"


def _rollout(rollout_id: str, image: str, **fields) -> RolloutRecord:
    spec = RolloutSpec(image=image, stages=[Stage(weight=w) for w in (5, 100)])
    return RolloutRecord(service="svc-canary", rollout_id=rollout_id, image=image, spec_json=spec.model_dump_json(),
                         phase=RolloutPhase.PROMOTED, stage_index=1, stage_passed=True, weights=Weights.canary_at(100),
                         owner="", lease_expires=0.0, **fields)


def test_the_previous_version_is_found_whichever_way_its_revision_is_written():
    """The ledger names a revision by its ARN (read from ECS) or as family:revision (an older
    record, or one given by hand): both name one revision, and the image that ran on it is the one
    to roll out again, not "the ledger does not record which ran before"."""
    earlier = _rollout("20261101T000000Z-aaaaaaaa", "repo/app:1.0.0", canary_task_definition="edit-container:41")
    newest = _rollout("20261129T000000Z-bbbbbbbb", "repo/app:2.0.0", canary_task_definition=f"{ARN[:-2]}42",
                      previous_task_definition=ARN)

    assert previous_image(newest, [earlier, newest]) == "repo/app:1.0.0"
    assert previous_image(newest.model_copy(update={"previous_task_definition": "edit-container:40"}),
                          [earlier, newest]) is None
