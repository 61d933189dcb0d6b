"""A rollout whose application latency metrics are missing is warned about before any traffic
moves: an absent slow count reads as 0 (the documented rule), so a misnamed `metrics_namespace`,
or an application that stopped publishing, let every stage pass its latency guardrails
unmeasured, without a word."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from rollway.aws.environment import aws_environment
from rollway.clock import ClockSettings
from rollway.spec import RolloutSpec, Stage
from tests.adapters.test_traffic import schema
from tests.flows.test_finalize import preflight_on

UNSEEN = "holds none of the application's latency metrics"
SPEC = RolloutSpec(image="example/edit:2.0.0", stages=[Stage(weight=w, bake_seconds=900) for w in (5, 100)])


def _publish(aws, role: str, value: float, at: float) -> None:
    series = schema(aws).version_series("stable")[role]
    aws.get_client("cloudwatch").put_metric_data(Namespace=series.namespace, MetricData=[{
        **{k: v for k, v in series.metric().items() if k != "Namespace"},
        "Timestamp": datetime.fromtimestamp(at, timezone.utc), "Value": value, "Unit": series.unit}])


def _publish_recent(aws, role: str, value: float) -> None:
    """``value`` in the two whole periods before the current one: the preflight reads the periods
    that ended at least ``metrics_delay_seconds`` (60 s) ago, the one before last, or the last
    if the clock crosses a period's end between here and the read."""
    period = SPEC.analysis.interval_seconds
    current = time.time() // period * period
    for start in (current - 2 * period, current - period):
        _publish(aws, role, value, start)


def _warnings(aws, caplog) -> list[str]:
    env = aws_environment(aws.get_client, aws.targets, ClockSettings().build())
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        preflight_on(env, SPEC.model_copy(update={"image": f"{aws.topology.repository_uri}:2.0.0"}))
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and UNSEEN in r.getMessage()]


def test_requests_without_the_applications_latency_metrics_are_warned_about(aws, caplog):
    _publish_recent(aws, "requests", 600)
    (warned,) = _warnings(aws, caplog)
    assert f"600 requests to {aws.targets.stable_service}" in warned
    assert repr(aws.targets.metrics_namespace) in warned and "SlowRequestCount" in warned
    assert "metrics_namespace" in warned

    # The application publishes its p99 there: the latency guardrails measure something.
    _publish_recent(aws, "p99", 180.0)
    assert _warnings(aws, caplog) == []


def test_a_quiet_stable_service_is_no_reason_to_warn(aws, caplog):
    _publish_recent(aws, "requests", 20)
    assert _warnings(aws, caplog) == []



def test_only_periods_metrics_delay_seconds_old_are_read(aws, caplog):
    """CloudWatch fills a period in over a minute or so, the load balancer's counts often before
    the application's latency: read in the period that had just ended, 600 requests and no p99
    yet warned of a misnamed namespace that was fine. The rollout clock stands still here, half a
    period past a period's end, ten minutes ago."""
    from rollway.fakes import FakeClock

    period = SPEC.analysis.interval_seconds
    ended = time.time() // period * period - 10 * period  # a period's end
    env = aws_environment(aws.get_client, aws.targets, FakeClock(start=ended + period / 2))
    spec = SPEC.model_copy(update={"image": f"{aws.topology.repository_uri}:2.0.0"})

    def warned() -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            preflight_on(env, spec)
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and UNSEEN in r.getMessage()]

    _publish(aws, "requests", 600, ended - period)  # the period that ended 30 s before the read: filling in
    assert warned() == []
    _publish(aws, "requests", 600, ended - 2 * period)  # one that ended 90 s before: settled, no latency in it
    (said,) = warned()
    assert "600 requests" in said and "metrics_delay_seconds" in said, said
