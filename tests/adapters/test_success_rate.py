"""The SuccessRate read on the embedded CloudWatch (moto): what was put is read back; nothing is a failed
check, and neither is a service whose newest datapoint is older than the ingestion lag allows."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone

import pytest

from rollway.aws.cloudwatch import read_service_averages
from rollway.validation import ValidationSpec, judge_success_rate, minutes_read, utc_minute


def put(aws, service: str, values: list[float], at: float) -> None:
    aws.get_client("cloudwatch").put_metric_data(
        Namespace=aws.targets.metrics_namespace,
        MetricData=[{"MetricName": "SuccessRate", "Dimensions": [{"Name": "Service", "Value": service}],
                     "Timestamp": datetime.fromtimestamp(at - 60 * i, timezone.utc), "Value": v, "Unit": "Percent"}
                    for i, v in enumerate(values)],
    )


def test_success_rate_put_is_read_back_per_service_and_judged(aws):
    t = aws.targets
    now = time.time()
    put(aws, t.stable_service, [100.0, 99.0, 98.0], now - 30)
    put(aws, t.canary_service, [50.0], now - 60 * 30)  # outside the 5-minute window
    services = (t.stable_service, t.canary_service)
    # Read as the check reads it: the whole minutes around the last 5, which the reason then names.
    read = minutes_read(now, 5)
    reads = read_service_averages(aws.get_client("cloudwatch"), t.metrics_namespace, "SuccessRate", services, *read)
    averages, newest = reads.averages, reads.newest
    assert averages == {t.stable_service: (297.0, 3.0)}
    # The newest datapoint's minute, kept from the same GetMetricData pages (the canary's is outside the window).
    assert newest == {t.stable_service: 60 * math.floor((now - 30) / 60)}
    result = judge_success_rate(averages, ValidationSpec(success_rate_floor=98.5), services, read=read,
                                newest=newest, now=now)
    assert result.passed and "99.00%" in result.reason
    assert f"over {utc_minute(read[0])} to " in result.reason, result.reason


def test_no_success_rate_data_is_a_failed_check(aws):
    t = aws.targets
    now = time.time()
    put(aws, "another-service", [100.0], now - 30)  # same metric, a service not asked about
    services = (t.stable_service, t.canary_service)
    read = minutes_read(now, 5)
    reads = read_service_averages(aws.get_client("cloudwatch"), t.metrics_namespace, "SuccessRate", services, *read)
    averages, newest = reads.averages, reads.newest
    assert averages == {} and newest == {}
    result = judge_success_rate(averages, ValidationSpec(), services, read=read, newest=newest, now=now)
    assert result.outcome == "failed"
    assert f"no SuccessRate data over {utc_minute(read[0])} to " in result.reason, result.reason


@pytest.mark.parametrize(("ago", "lag", "outcome"), [
    (4 * 60 + 40, 180, "failed"),  # good minutes at the window's start only: the service stopped since
    (4 * 60 + 40, 300, "passed"),  # a spec that allows CloudWatch that much lag (its minute: up to 339 s old)
    (90, 180, "passed"),           # as late as CloudWatch commonly shows a minute
])
def test_a_success_rate_whose_newest_datapoint_is_old_fails_as_stale(aws, ago, lag, outcome):
    """The window's first minutes, all 100 %, passed a service that had published nothing since:
    the check judged a figure older than the window it said it judged."""
    t = aws.targets
    now = time.time()
    put(aws, t.stable_service, [100.0, 100.0], now - ago)  # its newest minute, and the one before
    services = (t.stable_service,)
    read = minutes_read(now, 5)
    reads = read_service_averages(aws.get_client("cloudwatch"), t.metrics_namespace, "SuccessRate", services, *read)
    averages, newest = reads.averages, reads.newest
    assert averages and newest[t.stable_service] == 60 * math.floor((now - ago) / 60)
    result = judge_success_rate(averages, ValidationSpec(success_rate_ingestion_lag_seconds=lag), services,
                                read=read, newest=newest, now=now)
    assert result.outcome == outcome, result.reason
    if outcome == "failed":
        assert result.reason.startswith(f"stale SuccessRate over {utc_minute(read[0])} to "), result.reason
        assert f"{t.stable_service}'s newest is the minute of " in result.reason
        assert f"at most {60 + lag} s is allowed" in result.reason and "the figures read, not judged: " in result.reason
        assert result.retryable


class _LeavingOut:
    """A CloudWatch whose answer leaves out query ``dropped`` and gives every other one 10 samples summing 990."""

    def __init__(self, dropped: str):
        self.dropped = dropped

    def get_metric_data(self, MetricDataQueries, StartTime, **_):
        values = {"Sum": [990.0], "SampleCount": [10.0]}
        return {"MetricDataResults": [
            {"Id": q["Id"], "StatusCode": "Complete", "Timestamps": [StartTime], "Values": values[q["MetricStat"]["Stat"]]}
            for q in MetricDataQueries if q["Id"] != self.dropped]}


@pytest.mark.parametrize("dropped, stat", [("sum0", "Sum"), ("samplecount0", "SampleCount")])
def test_an_answer_leaving_out_a_query_is_an_unreadable_answer_naming_the_metric_not_no_data(dropped, stat):
    """A left-out Sum read as a sum of 0: the stable service at 0.00% success, a healthy release
    failed by its validation; a left-out SampleCount as a service with no data ("send it traffic").
    Either is a read that failed, naming the metric as the monitoring reads do."""
    from rollway.aws.cloudwatch import MetricQueryError

    now = 1_800_000_000.0
    with pytest.raises(MetricQueryError) as raised:
        read_service_averages(_LeavingOut(dropped), "Webordinary", "SuccessRate", ("stable-svc", "canary-svc"),
                              now - 300, now)
    said = str(raised.value)
    assert "left out" in said and f"SuccessRate ({stat}) of Service=stable-svc" in said, said
