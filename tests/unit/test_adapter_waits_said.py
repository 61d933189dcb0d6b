"""How long an adapter's wait lasted, in the words the rest of rollway says a wait in
(``wait_said``): "10 min", "30 s", "under a second", not ``:g``'s "600s" or "0.2 s"."""

from __future__ import annotations

import pickle

import pytest

from rollway.aws.errors import ServiceNotStable, WeightMismatch
from rollway.model import Weights

WAITS = [(30.0, "30 s"), (90.0, "1 min 30 s"), (600.0, "10 min"), (0.2, "under a second")]


@pytest.mark.parametrize(("seconds", "said"), WAITS)
def test_a_read_back_that_ran_out_says_how_long_it_waited_as_a_wait_is_said(seconds, said):
    mismatch = WeightMismatch(Weights(stable=100, canary=0), Weights(stable=95, canary=5), seconds=seconds)
    assert str(mismatch) == ("the load balancer held weights 95/5 (stable/canary), not the 100/0 set, when the "
                             f"read-back ended after {said} (verify_timeout_seconds)")
    assert str(pickle.loads(pickle.dumps(mismatch))) == str(mismatch)


def test_a_weight_read_once_claims_no_wait():
    mismatch = WeightMismatch(Weights(stable=100, canary=0), Weights(stable=95, canary=5))
    assert str(mismatch) == "the load balancer holds weights 95/5 (stable/canary), not the 100/0 set"


@pytest.mark.parametrize(("seconds", "said"), WAITS)
def test_services_not_steady_in_time_say_how_long_they_were_waited_for_as_a_wait_is_said(seconds, said):
    short = ServiceNotStable(["edit-stable", "edit-canary"], seconds, "edit-canary runs 1 of 2 tasks")
    assert str(short) == f"services edit-stable, edit-canary not stable after {said}: edit-canary runs 1 of 2 tasks"
    assert str(pickle.loads(pickle.dumps(short))) == str(short)


def test_services_that_longer_could_not_help_claim_no_wait():
    short = ServiceNotStable(["edit-canary"], 600.0, "the deployment of edit:42 failed", timed_out=False)
    assert str(short) == "services edit-canary not stable: the deployment of edit:42 failed"


@pytest.mark.parametrize(("seconds", "said"), [
    (0.5, "under a second"), (0.999, "under a second"), (1.0, "1 s"), (1.5, "2 s"), (2.5, "3 s"), (2.49, "2 s"),
    (59.5, "1 min"), (60.0, "1 min"), (90.5, "1 min 31 s"), (3599.5, "1 h"), (3600.5, "1 h 1 s")])
def test_a_wait_of_a_half_second_more_is_said_rounded_up_not_to_the_even_second(seconds, said):
    # Python's round() takes a half to the even whole: a wait of 2.5 s read "waited 2 s" (less than
    # happened) where one of 1.5 s read "2 s" too, and 90.5 s "1 min 30 s".
    from rollway.bounds import wait_said

    assert wait_said(seconds) == said


@pytest.mark.parametrize(("seconds", "said"), [(60.5, "1 min 1 s"), (90.5, "1 min 31 s"), (3599.5, "1 h"),
                                               (59.5, "59.5 s"), (90.4, "1 min 30 s")])
def test_a_span_over_a_minute_with_a_half_second_is_said_rounded_up_as_a_wait_is(seconds, said):
    from rollway.bounds import duration_said

    assert duration_said(seconds) == said
