"""A rollback's flag writes DynamoDB throttled past botocore's own retries are tried again.

The rollback disabled the bound flags with one call: one PutItem throttled left the feature
served from the rolled-back version, paged "NOT disabled" and failed the rollback, which then
waited for a person to run it again. Its other writes (ECS, the load balancer) retry.
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from flows.rollback import rollback
from rollway.aws.flags import DynamoFlagStore
from rollway.flags import FlagState
from tests.botocore_events import on_operation
from tests.flows.test_rollback_flags_left_on import INTERRUPTS, SQS, rolling_back_with_flags


def on_dynamodb(aws, monkeypatch):
    """``rolling_back_with_flags`` with both flags on at 5 % in the embedded DynamoDB."""
    from rollway.flag_binding import apply_bindings
    from tests.flows.test_rollback_flags_left_on import SPEC

    env, record = rolling_back_with_flags(monkeypatch)
    client = aws.get_client("dynamodb")
    env.flags = DynamoFlagStore(client, aws.targets)
    for feature in (SQS, INTERRUPTS):
        env.flags.put(FlagState(feature=feature), expected_version=0, actor="seed", now=1.0)
    apply_bindings(env.flags, SPEC.flags, 5, actor="rollway", now=env.clock.now() - 90, rollout=record.rollout_id)
    # The tries wait on the rollout's clock, never on real time (a test paid 3 s of it a try).
    waits: list[float] = []
    slept = env.clock.sleep

    def on_the_clock(seconds: float) -> None:
        waits.append(seconds)
        slept(seconds)

    monkeypatch.setattr(env.clock, "sleep", on_the_clock)
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail(f"a real sleep of {seconds} s"))
    return env, client, waits


def failing(code: str, times: int, calls: list[str]):
    def fail(**_):
        calls.append(code)
        if len(calls) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "said by the test"}}, "PutItem")
    return fail


def test_a_flag_write_throttled_once_is_tried_again_and_the_rollback_completes(aws, monkeypatch):
    env, client, waits = on_dynamodb(aws, monkeypatch)
    calls: list[str] = []
    with on_operation(client, "before-call",
                      failing("ProvisionedThroughputExceededException", 1, calls), operation="PutItem"):
        done = rollback(reason="abort")
    assert not env.flags.get(SQS).enabled and not env.flags.get(INTERRUPTS).enabled
    assert sorted(done.flags_disabled) == sorted((SQS, INTERRUPTS)), done
    assert waits == [1.0], waits
    page = env.notifier.messages[-1][1]
    assert "NOT disabled" not in page and "flags disabled" in page.lower(), page


def test_a_flag_write_refused_is_not_tried_again(aws, monkeypatch):
    from flows.rollback import RollbackIncomplete

    env, client, waits = on_dynamodb(aws, monkeypatch)
    calls: list[str] = []
    with on_operation(client, "before-call", failing("AccessDeniedException", 1, calls), operation="PutItem"), \
            pytest.raises(RollbackIncomplete, match="flag"):
        rollback(reason="abort")
    assert waits == [], "a refused permission was asked again"
    # The other flag was disabled all the same; the refused one is left for the rollback run again.
    assert [env.flags.get(f).enabled for f in (SQS, INTERRUPTS)].count(False) == 1


def test_a_flag_write_whose_answer_was_lost_is_read_back_by_the_next_try(aws, monkeypatch):
    """The PutItem landed and its answer never came: the next try reads the flag off by this
    rollback's own write, so the rollback is done and counts the flag disabled, rather than paging
    that it may not be."""
    from botocore.exceptions import ReadTimeoutError

    env, client, waits = on_dynamodb(aws, monkeypatch)
    lost: list[str] = []

    def lose_first_answer(**_):
        if not lost:
            lost.append("PutItem")
            raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with on_operation(client, "after-call", lose_first_answer, operation="PutItem"):
        done = rollback(reason="abort")
    assert lost == ["PutItem"] and waits == [1.0], (lost, waits)
    assert not env.flags.get(SQS).enabled and not env.flags.get(INTERRUPTS).enabled
    assert sorted(done.flags_disabled) == sorted((SQS, INTERRUPTS)), done
    page = env.notifier.messages[-1][1]
    assert "MAY NOT" not in page and "NOT disabled" not in page, page


def test_a_rollback_reads_each_bound_flag_and_its_trail_once_before_it_decides(aws, monkeypatch, watch_calls):
    """Each GetItem is a round trip to a flag table that may be throttling while the rollback runs.
    Two checks (another rollout's hold, a person's re-enable) each read the flag and its trail again
    before the write read it once more: six GetItems a flag, where a read of the flag and of its
    trail, then the write's own two reads, decide the same."""
    env, client, _waits = on_dynamodb(aws, monkeypatch)
    calls = watch_calls(client)
    done = rollback(reason="abort")
    assert sorted(done.flags_disabled) == sorted((SQS, INTERRUPTS)), done
    assert calls.count("GetItem") == 4 * 2, calls
    assert calls.count("PutItem") == 2, calls


def test_on_a_clock_faster_than_the_wall_the_try_again_still_waits_a_wall_second(aws, monkeypatch):
    """`rollway up`'s 60x clock sleeps 1/60 of what it is asked: DynamoDB's throttling is on the
    wall clock, and a try 16 ms after the throttled one met the same throttle."""
    env, client, waits = on_dynamodb(aws, monkeypatch)
    monkeypatch.setattr(env.clock, "speed", 60.0, raising=False)
    calls: list[str] = []
    with on_operation(client, "before-call",
                      failing("ProvisionedThroughputExceededException", 1, calls), operation="PutItem"):
        done = rollback(reason="abort")
    assert sorted(done.flags_disabled) == sorted((SQS, INTERRUPTS)), done
    assert waits == [60.0], f"asked the rollout clock for {waits} s: {[w / 60 for w in waits]} s of wall time"
