"""Which stacks a deploy changed, from what CloudFormation showed before and after it
(``rollway.infra.changed_stacks``, pure, table-driven)."""

from __future__ import annotations

import pytest

from rollway.cleanup import StackState
from rollway.infra import changed_stacks

ID = "arn:aws:cloudformation:us-west-2:123456789012:stack/A/1"
DEPLOYED = StackState(name="A", stack_id=ID, status="UPDATE_COMPLETE", last_updated="2026-12-01T10:00:00+00:00",
                      last_event="e1")
ABSENT = StackState(name="A")


def moved(seen: StackState, last_event: str | None = None, **state) -> StackState:
    return seen.model_copy(update={**state, "last_event": last_event or seen.last_event})


@pytest.mark.parametrize("before, after, changed", [
    # cdk deployed it with no change, or failed before CloudFormation started: the same stack.
    (DEPLOYED, DEPLOYED, False),
    (ABSENT, ABSENT, False),
    # Updated, rolled back, made, made again, deleted.
    (DEPLOYED, moved(DEPLOYED, "e2", last_updated="2026-12-04T10:00:00+00:00"), True),
    (DEPLOYED, moved(DEPLOYED, "e2", status="UPDATE_ROLLBACK_COMPLETE", last_updated="2026-12-04T10:00:00+00:00"),
     True),
    (ABSENT, StackState(name="A", stack_id=ID, status="ROLLBACK_COMPLETE", last_event="e1"), True),
    (ABSENT, StackState(name="A", stack_id=ID, status="REVIEW_IN_PROGRESS", last_event="e1"), True),
    (DEPLOYED, moved(DEPLOYED, stack_id=ID.replace("/1", "/2")), True),
    (DEPLOYED, ABSENT, True),
    # Updated again: UPDATE_COMPLETE as before, and no LastUpdatedTime where it is not set (moto):
    # its newest event alone says it moved.
    (DEPLOYED, moved(DEPLOYED, "e2"), True),
    (moved(DEPLOYED, last_updated=None), moved(DEPLOYED, "e2", last_updated=None), True),
    # Not read before or after (another account, a read that failed): not judged here; the deploy
    # names it apart, as not known to be unchanged.
    (None, DEPLOYED, False),
    (DEPLOYED, None, False),
])
def test_a_stack_counts_as_changed_when_both_reads_show_it_moved(before, after, changed):
    reads = [{} if seen is None else {"A": seen} for seen in (before, after)]
    assert changed_stacks(["A"], *reads) == (("A",) if changed else ())


def test_the_changed_stacks_keep_the_order_given():
    before = {s: StackState(name=s) for s in "ABC"}
    after = {**before, "B": StackState(name="B", status="CREATE_COMPLETE", last_event="e1")}
    after = {**after, "D": StackState(name="D", status="CREATE_COMPLETE", last_event="e1")}
    before = {**before, "D": StackState(name="D")}
    assert changed_stacks(["D", "C", "B", "A"], before, after) == ("D", "B")
