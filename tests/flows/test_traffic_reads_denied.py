"""The load balancer reads a rollout makes every tick (weights, healthy targets), on the embedded
AWS: a read the role may not make fails at once; one throttled is asked again."""
from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError
from prefect import flow

from rollway.aws.elbv2 import AlbRouter
from tasks.traffic import check_move_within, healthy_targets, weights_within
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


def test_a_throttled_check_of_a_rollbacks_rule_is_asked_again_saying_what_it_reads(aws, caplog):
    """A rollback's check of the rule its move goes over (before it scales the stable service up) reads
    the listener and the rule: its line named "the listener rule ..." alone, then "reading them again"."""
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    router.get_weights()  # the lookups made before, as the run's own router has them
    asked: list[str] = []

    @flow
    def check(router):
        check_move_within(router.rolling_back(router.shifted_rule()), 30.0)

    with caplog.at_level(logging.WARNING), on_operation(
            elbv2, "before-parameter-build", answering("Throttling", 1, asked, "DescribeRules"),
            operation="DescribeRules"):
        check(router)
    assert asked == ["DescribeRules", "DescribeRules"]
    again = [r.getMessage() for r in caplog.records if "reading them again" in r.getMessage()]
    assert len(again) == 1 and again[0].startswith(
        "the listener and the rule the rollback moves the traffic over could not be read ("), again
