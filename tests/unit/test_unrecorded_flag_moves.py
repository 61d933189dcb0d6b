"""unrecorded_moves: which flag moves a resume reads back from the audit trails (rollway/flag_binding.py)."""
from __future__ import annotations

from rollway.fakes import FakeFlagStore
from rollway.flag_binding import FlagChange, apply_bindings, set_flag, unrecorded_moves
from rollway.flags import FlagState
from rollway.spec import FlagBinding

BOUND = [FlagBinding(feature="use_sqs_architecture")]


def moved_at_5() -> FakeFlagStore:
    store = FakeFlagStore([FlagState(feature="use_sqs_architecture")])
    apply_bindings(store, BOUND, 5, actor="ana", now=1.0, rollout="r1")
    return store


def test_the_rollouts_own_move_to_the_stage_is_found():
    (line,) = unrecorded_moves(moved_at_5(), BOUND, 5, rollout="r1")
    assert line.startswith("use_sqs_architecture: off 0% -> on 5% (v1)"), line


def test_another_rollouts_or_another_stages_move_is_not():
    store = moved_at_5()
    assert unrecorded_moves(store, BOUND, 5, rollout="r2") == []
    assert unrecorded_moves(store, BOUND, 25, rollout="r1") == []
    assert unrecorded_moves(store, BOUND, 5, rollout="r1", skip=["use_sqs_architecture"]) == []


def test_a_persons_change_since_is_not_read_as_the_move():
    store = moved_at_5()
    set_flag(store, FlagChange(feature="use_sqs_architecture", enabled=False, reason="kill switch"), actor="on-call",
             now=2.0)
    assert unrecorded_moves(store, BOUND, 5, rollout="r1") == []


def test_a_claim_that_moved_nothing_is_not_a_move():
    store = FakeFlagStore([FlagState(feature="use_sqs_architecture", enabled=True, percentage=5)])
    apply_bindings(store, BOUND, 5, actor="ana", now=1.0, rollout="r1")  # already there: claimed
    assert store.audit("use_sqs_architecture")[0].rollout == "r1"
    assert unrecorded_moves(store, BOUND, 5, rollout="r1") == []
