"""The SuccessRate read on the embedded CloudWatch (moto): what was put is read back; nothing is a failed check."""

from __future__ import annotations

import time
from datetime import datetime, timezone

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
    averages = read_service_averages(aws.get_client("cloudwatch"), t.metrics_namespace, "SuccessRate", services,
                                     *read)
    assert averages == {t.stable_service: (297.0, 3.0)}
    result = judge_success_rate(averages, ValidationSpec(success_rate_floor=98.5), services, read=read)
    assert result.passed and "99.00%" in result.reason
    assert f"over {utc_minute(read[0])} to " in result.reason, result.reason


def test_no_success_rate_data_is_a_failed_check(aws):
    t = aws.targets
    now = time.time()
    put(aws, "another-service", [100.0], now - 30)  # same metric, a service not asked about
    services = (t.stable_service, t.canary_service)
    read = minutes_read(now, 5)
    averages = read_service_averages(aws.get_client("cloudwatch"), t.metrics_namespace, "SuccessRate", services,
                                     *read)
    assert averages == {}
    result = judge_success_rate(averages, ValidationSpec(), services, read=read)
    assert result.outcome == "failed"
    assert f"no SuccessRate data over {utc_minute(read[0])} to " in result.reason, result.reason
