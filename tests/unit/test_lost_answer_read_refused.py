"""What tasks/undoable.py's ``landed_although_lost`` says of a lost answer whose read-back the load
balancer refused for now (a throttle): the read-back ends after three refused reads
(``tasks.traffic.within_bound``), most often long before its bound."""

from __future__ import annotations

import logging
import time

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

import tasks.traffic
import tasks.undoable
from rollway.deadline import ReadBackUnanswered
from rollway.model import Weights


class ThrottledReads:
    """A router whose every read of the weights is throttled."""

    def __init__(self) -> None:
        self.reads = 0

    def reading(self, seconds: float) -> ThrottledReads:
        return self

    def get_weights(self) -> Weights:
        self.reads += 1
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeRules")


def test_a_lost_answer_whose_read_back_is_refused_for_now_does_not_say_it_waited_out_the_bound(monkeypatch):
    """Read back within the spec's verify_timeout_seconds (30 s), three throttled reads ended the
    read-back in a few seconds, and its error said the weights "could not be read back within 30 s
    (verify_timeout_seconds)": raising that setting does not read the weights for longer. It says
    the load balancer refused the read for now, and names no bound it did not reach."""
    log = logging.getLogger("lost-answer-test")
    monkeypatch.setattr(tasks.undoable, "get_run_logger", lambda: log)
    monkeypatch.setattr(tasks.traffic, "get_run_logger", lambda: log)
    monkeypatch.setattr(tasks.traffic, "LOOK_AGAIN_SECONDS", 0.01)
    router = ThrottledReads()
    lost = ReadTimeoutError(endpoint_url="https://elasticloadbalancing.us-west-2.amazonaws.com/")

    began = time.monotonic()
    with pytest.raises(ReadTimeoutError) as failed:
        tasks.undoable.landed_although_lost(router, Weights(stable=100, canary=0), lost, 30.0)
    assert time.monotonic() - began < 30.0 and router.reads == 3, router.reads
    unknown = failed.value.__cause__
    assert isinstance(unknown, ReadBackUnanswered) and unknown.answered == "Throttling: Rate exceeded", unknown
    said = str(unknown)
    assert "30 s" not in said and "verify_timeout_seconds" not in said, said
    assert said == ("the load balancer's weights could not be read back: Elastic Load Balancing refused the read "
                    "for now (Throttling: Rate exceeded)"), said
