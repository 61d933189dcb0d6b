"""What a move records as the weights it took the traffic from, when its write is sent more than once
(rollway/weights_read.py): the first read of the rule, before any of its writes."""
from __future__ import annotations

from rollway.fakes import FakeRouter
from rollway.model import Weights
from rollway.weights_read import FirstRead

ON_CANARY, ALL_STABLE = Weights.canary_at(25), Weights(stable=100, canary=0)


def test_a_send_after_a_lost_answer_does_not_replace_what_the_first_read_found():
    read = FirstRead()
    read.read(ON_CANARY)  # told before its write, which landed and whose answer was lost
    read.read(ALL_STABLE)  # the next send reads the lost write's weights
    read.answered(ALL_STABLE)
    assert (read.made, read.weights) == (True, ON_CANARY)


def test_a_send_that_failed_before_its_read_leaves_the_next_read_first():
    read = FirstRead()  # its DescribeRules failed: nothing read, nothing written, nothing told
    read.read(ON_CANARY)
    read.answered(ON_CANARY)
    assert (read.made, read.weights) == (True, ON_CANARY)


def test_a_first_read_that_found_no_split_is_not_replaced_by_a_later_one():
    """A rule forwarding to a third group: the write went out over it, and a later read may find it."""
    read = FirstRead()
    read.read(None)
    read.answered(ALL_STABLE)
    assert (read.made, read.weights) == (True, None)


def test_the_fake_router_gives_back_what_it_held_before_the_write_as_the_adapter_does():
    router = FakeRouter(ON_CANARY)
    assert router.set_weights(ALL_STABLE) == ON_CANARY
    assert router.get_weights() == ALL_STABLE


def test_the_fake_routers_router_for_a_rollback_is_itself_dropping_nothing():
    router, move = FakeRouter(ON_CANARY), FirstRead()
    assert router.dropping_others(move) is router
    assert move.answered(router.set_weights(ALL_STABLE)) == ON_CANARY
    assert (move.made, move.weights, move.dropped) == (True, ON_CANARY, None)
