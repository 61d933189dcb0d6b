"""Which rollout a flow run's tags say it held (rollway/rollout_tags.py)."""

from rollway.rollout_tags import rollout_tag, tagged_rollout

FIRST, NEXT = "20261129T063000Z-1a2b3c4d", "20261130T080000Z-9f8e7d6c"


def test_a_run_tagged_with_a_rollout_held_that_one():
    assert tagged_rollout(["rollway:finalizing:run-count-1", rollout_tag(FIRST), "team:web"]) == FIRST


def test_a_run_that_held_two_rollouts_in_turn_held_the_newest_last():
    assert tagged_rollout([rollout_tag(NEXT), rollout_tag(FIRST)]) == NEXT


def test_a_run_without_a_rollout_tag_held_none():
    assert tagged_rollout(None) is None
    assert tagged_rollout([]) is None
    assert tagged_rollout(["rollway:rollout:", "rollway:finalizing:run-count-2"]) is None
