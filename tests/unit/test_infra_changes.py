"""Which stacks a deploy changed, from what CloudFormation showed before and after it
(``rollway.infra.changed_stacks``, pure, table-driven)."""

from __future__ import annotations

import pytest

from rollway.cleanup import StackState
from rollway.infra import changed_stacks

ID = "arn:aws:cloudformation:us-west-2:123456789012:stack/A/1"
DEPLOYED = StackState(name="A", stack_id=ID, status="UPDATE_COMPLETE", last_updated="2026-12-01T10:00:00+00:00")
ABSENT = StackState(name="A")


@pytest.mark.parametrize("before, after, changed", [
    # cdk deployed it with no change, or failed before CloudFormation started: the same stack.
    (DEPLOYED, DEPLOYED, False),
    (ABSENT, ABSENT, False),
    # Updated (every update sets LastUpdatedTime), rolled back, made, made again, deleted.
    (DEPLOYED, DEPLOYED.model_copy(update={"last_updated": "2026-12-04T10:00:00+00:00"}), True),
    (DEPLOYED, DEPLOYED.model_copy(update={"status": "UPDATE_ROLLBACK_COMPLETE",
                                           "last_updated": "2026-12-04T10:00:00+00:00"}), True),
    (ABSENT, StackState(name="A", stack_id=ID, status="ROLLBACK_COMPLETE"), True),
    (ABSENT, StackState(name="A", stack_id=ID, status="REVIEW_IN_PROGRESS"), True),
    (DEPLOYED, DEPLOYED.model_copy(update={"stack_id": ID.replace("/1", "/2")}), True),
    (DEPLOYED, ABSENT, True),
    # Not read before or after (another account, a read that failed): counted as changed.
    (None, DEPLOYED, True),
    (DEPLOYED, None, True),
])
def test_a_stack_counts_as_changed_when_cloudformation_shows_it_moved_or_was_not_read(before, after, changed):
    reads = [{} if state is None else {"A": state} for state in (before, after)]
    assert changed_stacks(["A"], *reads) == (("A",) if changed else ())


def test_the_changed_stacks_keep_the_order_given():
    before = {s: StackState(name=s) for s in "ABC"}
    after = {"A": StackState(name="A"), "B": StackState(name="B", status="CREATE_COMPLETE"), "C": StackState(name="C")}
    assert changed_stacks(["C", "B", "A", "D"], before, after) == ("B", "D")
