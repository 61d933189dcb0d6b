"""The load balancer reads a rollout makes every tick (weights, healthy targets), on the embedded
AWS: a read the role may not make fails at once; one throttled is asked again."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from prefect import flow

from rollway.aws.elbv2 import AlbRouter
from tasks.traffic import healthy_targets, weights_within
from tests.botocore_events import on_operation


@flow
def read_weights(router):
    return weights_within(router, 30.0)  # a read before a stage, bounded by verify_timeout_seconds


@flow
def read_healthy(router):
    return healthy_targets(router, "stable", wait=(30.0, 30.0))  # a health wait's look


def answering(code: str, times: int, asked: list[str], operation: str):
    def answer(**_):
        asked.append(operation)
        if len(asked) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "refused"}}, operation)
    return answer


@pytest.mark.parametrize(("read", "operation"), [(read_weights, "DescribeRules"),
                                                 (read_healthy, "DescribeTargetHealth")])
def test_a_read_the_role_may_not_make_is_asked_once(aws, read, operation):
    # It was asked three times, a second apart, and failed with the same refusal.
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    router.get_weights()  # the lookups made before, as in a rollout under way
    asked: list[str] = []
    with on_operation(elbv2, "before-parameter-build", answering("AccessDenied", 3, asked, operation),
                      operation=operation), pytest.raises(ClientError, match="AccessDenied"):
        read(router)
    assert asked == [operation]


def test_a_throttled_read_is_asked_again(aws):
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    expected = router.get_weights()
    asked: list[str] = []
    with on_operation(elbv2, "before-parameter-build", answering("Throttling", 1, asked, "DescribeRules"),
                      operation="DescribeRules"):
        assert read_weights(router) == expected
    assert asked == ["DescribeRules", "DescribeRules"]
