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
    """``value`` in the last whole period and in the current one: the preflight reads the whole
    periods of its last two intervals, a single one, which is the current one if the clock
    crosses a period's end between here and the read (a datum in the last period alone then
    fell out of it, about once a minute of test time)."""
    period = SPEC.analysis.interval_seconds
    current = time.time() // period * period
    for start in (current - period, current):
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
