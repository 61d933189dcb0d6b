"""A person's new salt (the documented way to reshuffle who is in) is not a hold on a bound flag:
a rollout never sets a salt, so a salt is nothing to hand back."""

from __future__ import annotations

from rollway.flag_binding import FlagChange, apply_bindings, set_flag
from tests.unit.test_flag_ownership import BOUND, SQS, seeded


def test_a_reshuffle_by_a_person_does_not_stop_the_flag_following_the_stages():
    """It froze the flag at the stage it was reshuffled at, for the rest of the rollout."""
    store = seeded()
    apply_bindings(store, BOUND, 5, actor="alice", now=2.0, rollout="edit-r1")
    set_flag(store, FlagChange(feature=SQS, salt="v2", reason="reshuffle: cohort overlap"), actor="oncall", now=3.0)

    updates = apply_bindings(store, BOUND, 25, actor="alice", now=4.0, rollout="edit-r1")

    flag = store.get(SQS)
    assert (flag.enabled, flag.percentage, flag.salt) == (True, 25.0, "v2"), "followed, with the person's salt"
    assert [u.kept for u in updates] == [None]


def test_setting_the_flag_back_as_the_message_says_hands_it_back_after_a_new_salt():
    """The hold's message says "setting it back to on 5% hands it back"; `rollway flags set` has no
    salt option, and doing as told changed nothing: the flag stayed held at every later stage."""
    store = seeded()
    apply_bindings(store, BOUND, 5, actor="alice", now=2.0, rollout="edit-r1")
    set_flag(store, FlagChange(feature=SQS, enabled=False, salt="v2", reason="kill and reshuffle"),
             actor="oncall", now=3.0)
    kept = apply_bindings(store, BOUND, 25, actor="alice", now=4.0, rollout="edit-r1")[0].kept
    assert kept is not None and "setting it back to on 5% hands it back" in kept

    set_flag(store, FlagChange(feature=SQS, enabled=True, percentage=5, reason="back"), actor="oncall", now=5.0)
    updates = apply_bindings(store, BOUND, 50, actor="alice", now=6.0, rollout="edit-r1")

    flag = store.get(SQS)
    assert (flag.enabled, flag.percentage, flag.salt) == (True, 50.0, "v2")
    assert [u.kept for u in updates] == [None]
