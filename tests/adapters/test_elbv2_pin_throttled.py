"""AlbRouter.pin on the embedded AWS: DescribeRules throttled past botocore's retries is asked
again after a backoff; a refusal is not."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import THROTTLED_ASKS
from tests.botocore_events import on_operation
from tests.flows.test_traffic_reads_denied import answering

HEADER = "X-Rollway-Target: canary"


def test_a_throttled_rules_read_is_asked_again_after_a_growing_jittered_wait(aws):
    router = AlbRouter(aws.get_client("elbv2"), aws.targets)
    router.resolve()
    asked: list[str] = []
    waits: list[float] = []
    said: list[str] = []
    with on_operation(aws.get_client("elbv2"), "before-parameter-build",
                      answering("Throttling", THROTTLED_ASKS - 1, asked, "DescribeRules"), operation="DescribeRules"):
        found = router.pin(HEADER, say=said.append, sleep=waits.append)
    assert isinstance(found, str) and "no listener rule ahead of the weighted rule" in found  # read: none pins
    assert len(asked) == THROTTLED_ASKS and len(waits) == THROTTLED_ASKS - 1
    assert 0 <= waits[0] <= 0.5 and 0 <= waits[1] <= 1.0
    # The first wait is under half a second: said as "0.3 s", or "0.0 s" for one of 0.04 s.
    assert said[0] == ("DescribeRules was throttled (Throttling); asking again in under a second "
                       f"(2 of {THROTTLED_ASKS})"), said


@pytest.mark.parametrize("code, asks", [
    ("Throttling", THROTTLED_ASKS),  # throttled at every ask: the last answer is raised
    ("AccessDenied", 1),             # a refusal gets the same answer again: asked once
])
def test_a_rules_read_that_keeps_failing_raises_the_last_answer(aws, code, asks):
    router = AlbRouter(aws.get_client("elbv2"), aws.targets)
    router.resolve()
    asked: list[str] = []
    with on_operation(aws.get_client("elbv2"), "before-parameter-build",
                      answering(code, 99, asked, "DescribeRules"), operation="DescribeRules"), \
            pytest.raises(ClientError, match=code):
        router.pin(HEADER, sleep=lambda _: None)
    assert len(asked) == asks


def test_a_throttled_lookup_before_the_rules_read_is_not_said_a_throttled_describe_rules(aws):
    """The load balancer, listener and target groups are looked up before the listener's rules are
    read: a throttled DescribeLoadBalancers was said "DescribeRules was throttled"."""
    router = AlbRouter(aws.get_client("elbv2"), aws.targets)
    asked: list[str] = []
    said: list[str] = []
    with on_operation(aws.get_client("elbv2"), "before-parameter-build",
                      answering("Throttling", 1, asked, "DescribeLoadBalancers"), operation="DescribeLoadBalancers"):
        found = router.pin(HEADER, say=said.append, sleep=lambda _: None)
    assert isinstance(found, str) and "no listener rule ahead of the weighted rule" in found
    assert said and said[0].startswith("DescribeLoadBalancers was throttled (Throttling); asking again in "), said
