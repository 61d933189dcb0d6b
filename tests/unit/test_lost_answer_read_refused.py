"""What tasks/undoable.py's ``landed_although_lost`` says of a lost answer whose read-back the load
balancer refused for now (a throttle), or never answered (its connection dropped): the read-back ends
after three such reads (``tasks.traffic.within_bound``), most often long before its bound."""

from __future__ import annotations

import logging
import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

import tasks.traffic
import tasks.undoable
from rollway.deadline import ReadBackUnanswered
from rollway.model import Weights


ENDPOINT = "https://elasticloadbalancing.us-west-2.amazonaws.com/"


class FailingReads:
    """A router whose every read of the weights fails with ``error`` (a throttle by default)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.reads = 0
        throttled = {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}
        self.error = error or ClientError(throttled, "DescribeRules")

    def reading(self, seconds: float) -> FailingReads:
        return self

    def get_weights(self) -> Weights:
        self.reads += 1
        raise self.error


def _read_back_after_a_lost_answer(monkeypatch, router: FailingReads) -> ReadBackUnanswered:
    """``landed_although_lost`` of a lost answer read back on ``router`` within 30 s: checked to end on
    the write's own error after three reads, long before the bound; what it was raised from."""
    log = logging.getLogger("lost-answer-test")
    monkeypatch.setattr(tasks.undoable, "get_run_logger", lambda: log)
    monkeypatch.setattr(tasks.traffic, "get_run_logger", lambda: log)
    monkeypatch.setattr(tasks.traffic, "LOOK_AGAIN_SECONDS", 0.01)
    lost = ReadTimeoutError(endpoint_url=ENDPOINT)

    began = time.monotonic()
    with pytest.raises(ReadTimeoutError) as failed:
        tasks.undoable.landed_although_lost(router, Weights(stable=100, canary=0), lost, 30.0)
    assert failed.value is lost
    assert time.monotonic() - began < 30.0 and router.reads == 3, router.reads
    return failed.value.__cause__


def test_a_lost_answer_whose_read_back_is_refused_for_now_does_not_say_it_waited_out_the_bound(monkeypatch):
    """Read back within the spec's verify_timeout_seconds (30 s), three throttled reads ended the
    read-back in a few seconds, and its error said the weights "could not be read back within 30 s
    (verify_timeout_seconds)": raising that setting does not read the weights for longer. It says
    the load balancer refused the read for now, and names no bound it did not reach."""
    unknown = _read_back_after_a_lost_answer(monkeypatch, FailingReads())
    assert isinstance(unknown, ReadBackUnanswered) and unknown.answered == "Throttling: Rate exceeded", unknown
    said = str(unknown)
    assert "30 s" not in said and "verify_timeout_seconds" not in said, said
    assert said == ("the load balancer's weights could not be read back: Elastic Load Balancing refused the read "
                    "for now (Throttling: Rate exceeded)"), said


def test_a_lost_answer_whose_read_back_cannot_connect_is_not_known_to_have_landed(monkeypatch):
    """The network fault that lost the write's answer kept its read-back from connecting, three times:
    the read's own error was raised, as if AWS had said the write did not act, and a rollback forgot
    a send that may have landed. The write's error is raised from a read-back not answered, saying
    how the read failed, and neither "refused" (nothing answered) nor a bound it did not reach."""
    unconnected = FailingReads(EndpointConnectionError(endpoint_url=ENDPOINT))
    unknown = _read_back_after_a_lost_answer(monkeypatch, unconnected)
    assert isinstance(unknown, ReadBackUnanswered) and unknown.answered is None, unknown
    assert str(unknown) == ("the load balancer's weights could not be read back: Elastic Load Balancing did not answer "
                            f'the read (EndpointConnectionError: Could not connect to the endpoint URL: "{ENDPOINT}")'), unknown


@pytest.mark.parametrize(("code", "status"), [("InternalFailure", 500), ("ServiceUnavailable", 503)])
def test_a_lost_answer_whose_read_back_fails_on_aws_side_is_not_said_refused_for_now(monkeypatch, code, status):
    """The load balancer failed each read on its own side (an internal error, a 5xx): the read-back's
    error said it "refused the read for now", as of a throttle. It says what happened."""
    failing = ClientError({"Error": {"Code": code, "Message": "An internal error occurred"},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, "DescribeRules")
    unknown = _read_back_after_a_lost_answer(monkeypatch, FailingReads(failing))
    assert isinstance(unknown, ReadBackUnanswered) and unknown.server_side, unknown
    assert str(unknown) == ("the load balancer's weights could not be read back: Elastic Load Balancing failed the "
                            f"read with an error on its own side ({code}: An internal error occurred)"), unknown


def test_a_lost_answer_whose_read_back_is_refused_as_invalid_raises_the_refusal_once(monkeypatch):
    """The load balancer answered each read ValidationError: a request it refuses, which every read gets
    again. The read-back read it three times and said the load balancer "refused the read for now", as
    of a throttle. The refusal is raised as it is, after one read: it is what to put right."""
    log = logging.getLogger("lost-answer-test")
    monkeypatch.setattr(tasks.undoable, "get_run_logger", lambda: log)
    monkeypatch.setattr(tasks.traffic, "get_run_logger", lambda: log)
    monkeypatch.setattr(tasks.traffic, "LOOK_AGAIN_SECONDS", 0.01)
    invalid = ClientError({"Error": {"Code": "ValidationError", "Message": "'rule' is not a valid listener rule ARN"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, "DescribeRules")
    router = FailingReads(invalid)
    with pytest.raises(ClientError) as failed:
        tasks.undoable.landed_although_lost(router, Weights(stable=100, canary=0), ReadTimeoutError(endpoint_url=ENDPOINT),
                                            30.0)
    assert failed.value is invalid and router.reads == 1, router.reads
    assert tasks.traffic.unknown_after(invalid, 30.0, "verify_timeout_seconds") is None


def test_a_read_back_ended_on_an_answer_of_no_known_kind_says_it_answered_with_an_error():
    """The last read was answered with a code rollway knows neither as a refusal for now (a throttle),
    nor as AWS's own side failing, nor as a refusal for good: the read-back's error said the load
    balancer "refused the read for now", which its answer did not say. It says it answered with an error."""
    odd = ClientError({"Error": {"Code": "SomethingNew", "Message": "a new answer"},
                       "ResponseMetadata": {"HTTPStatusCode": 400}}, "DescribeRules")
    unknown = tasks.traffic.unknown_after(odd, 30.0, "verify_timeout_seconds")
    assert isinstance(unknown, ReadBackUnanswered) and unknown.answered == "SomethingNew: a new answer", unknown
    assert str(unknown) == ("the load balancer's weights could not be read back: Elastic Load Balancing answered the "
                            "read with an error (SomethingNew: a new answer)"), unknown
    assert unknown.read_went("its read-back") == "answered its read-back with an error"
    assert str(unknown.named("lost_answer_read_back_seconds")) == str(unknown)
