"""The clients rollway builds give up on an endpoint that never answers within the read's bound,
and say so: a read abandoned in its thread (rollway.deadline) no longer holds that thread and
its connection for botocore's defaults (60 s per read, retried)."""

from __future__ import annotations

import pickle
import time

import pytest
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from blocks.credentials import client_factory, client_limits, credentials_for_endpoint
from rollway.deadline import READ_SECONDS
from tests.conftest import unanswering_endpoint


def test_a_call_to_an_endpoint_that_never_answers_ends_within_its_bound() -> None:
    with unanswering_endpoint() as endpoint:
        get_client = client_factory(credentials_for_endpoint(endpoint, "us-west-2"), read_seconds=1.0)
        began = time.monotonic()
        with pytest.raises(ReadTimeoutError) as raised:
            get_client("dynamodb").list_tables()
        took = time.monotonic() - began
    # Two attempts of 0.5 s (the embedded endpoint's one retry) and botocore's backoff (under 1 s),
    # against the shared clients' 60 s per read: 10 s tells them apart under CI load.
    assert took < 10.0
    assert endpoint in str(raised.value)
    assert "no answer within 1 s (2 attempt(s) of 0.5 s each)" in str(raised.value)
    # Across a task's result, as botocore's own errors are.
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)


def test_the_default_bound_is_shared_among_standard_retries() -> None:
    config = client_limits(None, READ_SECONDS)
    assert config == {"retries": {"mode": "standard", "max_attempts": 2}, "read_timeout": 10.0, "connect_timeout": 5.0}


def test_the_rollouts_clients_keep_their_retries_for_throttling() -> None:
    """The rollout's clients write with no retry around the call (a rollback's ModifyRule): a
    bound's three attempts would give that up to a busy account's throttling within seconds."""
    config = client_limits(None)
    assert config == {"retries": {"mode": "standard", "max_attempts": 5}, "read_timeout": 10.0, "connect_timeout": 5.0}


def test_what_the_block_sets_itself_is_kept() -> None:
    config = client_limits({"read_timeout": 45, "retries": {"mode": "standard", "total_max_attempts": 1}}, 30.0)
    assert config == {"read_timeout": 45, "retries": {"mode": "standard", "total_max_attempts": 1},
                      "connect_timeout": 5.0}


def test_a_bound_that_is_not_one_is_refused_before_any_call() -> None:
    with unanswering_endpoint() as endpoint:
        for bad in (0, -1, float("nan"), 3600):
            with pytest.raises(ValueError, match="a read's bound must be more than 0 and at most 600 s"):
                client_factory(credentials_for_endpoint(endpoint, "us-west-2"), read_seconds=bad)


def test_connect_timeout_is_caught_as_botocores() -> None:
    from rollway.aws.errors import ConnectUnanswered

    err = ConnectUnanswered(endpoint_url="http://x", attempts=3, seconds=15, timeout=5)
    assert isinstance(err, ConnectTimeoutError)
    assert str(err) == ('Connect timeout on endpoint URL: "http://x": no connection within 15 s '
                        '(3 attempt(s) of 5 s each)')


def test_reads_under_a_bound_of_their_own_end_within_it_and_the_rollouts_clients_keep_theirs() -> None:
    """A read given up on at a bound shorter than the rollout's clients' six attempts of 10 s went
    on in its thread for up to a minute after it: the same session's clients for reads end
    within the bound and name it; the rollout's own clients are unchanged."""
    with unanswering_endpoint() as endpoint:
        get_client = client_factory(credentials_for_endpoint(endpoint, "us-west-2"))
        reads = get_client.reading(1.0)
        began = time.monotonic()
        with pytest.raises(ReadTimeoutError) as raised:
            reads("cloudwatch").list_metrics()
        took = time.monotonic() - began
        # Tells a read ended at its bound from the minute the rollout's clients took; on CI's loaded
        # two cores the bounded read took 3.7 s once, where 2.5 s had been allowed.
        assert took < 10.0
        assert "no answer within 1 s (2 attempt(s) of 0.5 s each)" in str(raised.value)
        assert get_client("cloudwatch").meta.config.read_timeout == 10.0
        with pytest.raises(ValueError, match="a read's bound must be more than 0"):
            get_client.reading(0)


def test_the_ledger_and_ecs_read_on_bounded_clients_where_a_run_asks_for_them() -> None:
    """finalize gives up on a ledger read or a DescribeServices at its bound: made on the run's
    clients (six attempts of 10 s), the call went on in its thread for a minute after the run had
    said it stopped. ``reading`` puts them on clients that end within the bound and name it."""
    from rollway.aws.environment import aws_environment
    from rollway.clock import ClockSettings
    from rollway.targets import Targets

    with unanswering_endpoint() as endpoint:
        get_client = client_factory(credentials_for_endpoint(endpoint, "us-west-2"))
        env = aws_environment(get_client, Targets(), ClockSettings().build())
        for read in (lambda: env.ledger.reading(1.0).get("webordinary-edit-service-canary"),
                     lambda: env.deployer.reading(1.0).describe("webordinary-edit-service")):
            began = time.monotonic()
            with pytest.raises(ReadTimeoutError) as raised:
                read()
            assert time.monotonic() - began < 10.0  # as above: the rollout's clients took a minute
            assert "no answer within 1 s (2 attempt(s) of 0.5 s each)" in str(raised.value)
