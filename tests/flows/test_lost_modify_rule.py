"""A weight shift's undo is staged before its ModifyRule is sent (tasks/undoable.set_weights).

Prefect stages a task's undo only when the task succeeds: a ModifyRule that moved the traffic
but whose answer was lost failed its task, staged no undo, and the transaction's rollback left
the canary at its new weight with its flags never moved.
"""
from __future__ import annotations

import time
from functools import partial

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ReadTimeoutError
from prefect import flow
from prefect.transactions import transaction

from rollway.aws.elbv2 import AlbRouter
from rollway.model import Weights
from tasks import undoable
from tests.botocore_events import on_operation

BEFORE, SHIFTED = Weights(stable=100, canary=0), Weights.canary_at(5)


class LaterStepFailed(RuntimeError):
    """A step after the shift, in the same transaction (the flags' write, say), failed."""


@flow
def shift(router, then_fail: bool = False):
    with transaction():
        undoable.set_weights(router, SHIFTED, BEFORE)
        if then_fail:
            raise LaterStepFailed("the flags could not follow")


# A handler on the load balancer client's ModifyRule, for the test only (clients are shared).
hooked = partial(on_operation, operation="ModifyRule")


def test_a_shift_whose_answer_is_lost_is_undone(aws):
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    assert router.get_weights() == BEFORE

    def lose_answer(**_):  # ModifyRule went through on moto; its answer never arrives
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with hooked(elbv2, "after-call", lose_answer), pytest.raises(ReadTimeoutError):
        shift(router)
    assert router.get_weights() == BEFORE, "the shift whose answer was lost was left in place"


def test_a_refused_shift_has_nothing_undone(aws, watch_calls):
    """AWS answered that it did not act: the undo is dropped, not a second write of the old weights."""
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    router.resolve()

    def refuse(**_):
        body = {"Error": {"Code": "AccessDenied", "Message": "not allowed"}, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return AWSResponse(aws.endpoint_url, 403, {}, None), body

    calls = watch_calls(elbv2)
    with hooked(elbv2, "before-call", refuse), pytest.raises(ClientError, match="AccessDenied"):
        shift(router)
    assert calls.count("ModifyRule") == 1, calls
    assert router.get_weights() == BEFORE


def test_a_shift_that_went_through_is_undone_as_before(aws, watch_calls):
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    router.resolve()
    calls = watch_calls(elbv2)
    with pytest.raises(LaterStepFailed):
        shift(router, then_fail=True)
    assert router.get_weights() == BEFORE
    assert calls.count("ModifyRule") == 2, calls  # the shift, and its undo


def test_a_shift_that_went_through_stays_when_nothing_fails(aws):
    router = AlbRouter(aws.get_client("elbv2"), aws.targets)
    shift(router)
    assert router.get_weights() == SHIFTED


def refusing_after_the_first(aws, code: str, times: int):
    """A before-call hook: ModifyRule goes through once (the shift), then the load balancer answers
    ``code`` to the next ``times`` asks (the undo's), then lets them through."""
    seen = {"calls": 0}

    def refuse(**_):
        seen["calls"] += 1
        if 1 < seen["calls"] <= 1 + times:
            body = {"Error": {"Code": code, "Message": f"{code} from the load balancer"},
                    "ResponseMetadata": {"HTTPStatusCode": 400}}
            return AWSResponse(aws.endpoint_url, 400, {}, None), body
        return None

    return refuse


@pytest.fixture
def no_undo_waits(monkeypatch):
    """The undo's wait between tries is not what is tested: what is tried again is."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


# An answer the load balancer would give again is asked once (the shift, and one undo); one that
# passes (a throttle, an internal error) is asked again (the shift, the refused undo, the undo).
@pytest.mark.parametrize(("code", "modify_rules", "left"), [
    ("AccessDenied", 2, SHIFTED), ("RuleNotFound", 2, SHIFTED), ("ValidationError", 2, SHIFTED),
    ("Throttling", 3, BEFORE), ("InternalFailure", 3, BEFORE),
])
def test_an_undo_asks_again_only_what_another_ask_could_get_past(aws, watch_calls, no_undo_waits, code,
                                                                 modify_rules, left):
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    router.resolve()
    calls = watch_calls(elbv2)
    # Refused for good: every ask after the shift is refused; for now: only the first.
    times = 3 if left == SHIFTED else 1
    with hooked(elbv2, "before-call", refusing_after_the_first(aws, code, times=times)), pytest.raises(LaterStepFailed):
        shift(router, then_fail=True)
    assert calls.count("ModifyRule") == modify_rules, calls
    assert router.get_weights() == left
