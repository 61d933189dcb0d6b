"""The CloudWatch metrics rollway judges on: names, namespaces, units and dimensions.

The one place both sides agree on: whatever publishes them (AWS itself, the application, the
embedded traffic simulator) and ``rollway.aws.cloudwatch``, which reads them back.

Per version (``stable`` = baseline, ``canary``) there are two families:

- The ALB's own metrics in ``AWS/ApplicationELB``, dimensioned by ``LoadBalancer`` and
  ``TargetGroup`` with the ARN suffixes AWS uses (``app/<name>/<id>``,
  ``targetgroup/<name>/<id>``). ALB reports nothing for a minute without requests, and
  ``HTTPCode_Target_5XX_Count`` only when there were 5xx: an absent request count is "no
  data", an absent 5xx count is zero.
- The application's custom metrics in ``Targets.metrics_namespace``, dimensioned by
  ``Service`` (the ECS service a version runs as; the application knows its service, not its
  target group, and the topology's alarms watch these series). They carry what CloudWatch
  cannot give for the ALB metrics on every backend: the count of requests slower than the
  slow threshold and the p99 latency (moto answers no percentile statistic).

Facts about moto 5.2.5's CloudWatch that shape this schema:

- A query with dimensions matches datapoints whose dimension set is exactly equal, and then
  does not compare namespaces; a metric name must therefore never be reused for the same
  dimension set across namespaces (the names below are all distinct).
- A query without dimensions matches every dimension set of that name; no series here is
  published without dimensions.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from rollway.targets import Targets

Version = Literal["stable", "canary"]
VERSIONS: tuple[Version, ...] = ("stable", "canary")

ALB_NAMESPACE = "AWS/ApplicationELB"
SQS_NAMESPACE = "AWS/SQS"

# AWS/ApplicationELB, per target group.
REQUEST_COUNT = "RequestCount"
TARGET_5XX_COUNT = "HTTPCode_Target_5XX_Count"
TARGET_RESPONSE_TIME = "TargetResponseTime"  # seconds
# AWS/ApplicationELB, per load balancer: 503s the ALB itself answers (no registered target).
ELB_5XX_COUNT = "HTTPCode_ELB_5XX_Count"
# AWS/SQS, per queue.
QUEUE_VISIBLE = "ApproximateNumberOfMessagesVisible"
QUEUE_IN_FLIGHT = "ApproximateNumberOfMessagesNotVisible"  # received, not yet deleted
# Targets.metrics_namespace, per service.
ERROR_RATE = "ErrorRate"  # percent of requests answered 5xx
SUCCESS_RATE = "SuccessRate"  # percent of requests answered without 5xx
RESPONSE_TIME = "ResponseTime"  # milliseconds
SLOW_REQUEST_COUNT = "SlowRequestCount"  # requests slower than the slow threshold
RESPONSE_TIME_P99 = "ResponseTimeP99"  # milliseconds, one value per period
DLQ_MESSAGES = "DLQMessages"  # messages visible in all dead-letter queues together

Dimensions = tuple[tuple[str, str], ...]


class Series(NamedTuple):
    """One CloudWatch time series: where it lives, what it is called, its dimensions, its unit."""

    namespace: str
    name: str
    dimensions: Dimensions
    unit: str

    def metric(self) -> dict[str, Any]:
        """The ``Metric`` structure of a GetMetricData query."""
        return {
            "Namespace": self.namespace,
            "MetricName": self.name,
            "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions],
        }


def load_balancer_dimension(load_balancer_arn: str) -> str:
    """The ``LoadBalancer`` dimension value of an ALB: ``app/<name>/<id>``.

    Raises:
        ValueError: ``load_balancer_arn`` is not an application load balancer's ARN.
    """
    _, sep, suffix = load_balancer_arn.partition(":loadbalancer/")
    if not sep or not suffix.startswith("app/") or suffix.count("/") != 2:
        raise ValueError(f"{load_balancer_arn!r} is not an application load balancer ARN")
    return suffix


def target_group_dimension(target_group_arn: str) -> str:
    """The ``TargetGroup`` dimension value of a target group: ``targetgroup/<name>/<id>``.

    Raises:
        ValueError: ``target_group_arn`` is not a target group's ARN.
    """
    suffix = target_group_arn.rpartition(":")[2]
    if not suffix.startswith("targetgroup/") or suffix.count("/") != 2:
        raise ValueError(f"{target_group_arn!r} is not a target group ARN")
    return suffix


class AlbDimensions(BaseModel):
    """The ALB dimension values of one rollout: the load balancer and both target groups."""

    model_config = ConfigDict(frozen=True)

    load_balancer: str
    stable_target_group: str
    canary_target_group: str

    @classmethod
    def from_arns(
        cls, load_balancer_arn: str, stable_target_group_arn: str, canary_target_group_arn: str
    ) -> "AlbDimensions":
        """Dimension values from the ARNs (raises ValueError naming a malformed ARN)."""
        return cls(
            load_balancer=load_balancer_dimension(load_balancer_arn),
            stable_target_group=target_group_dimension(stable_target_group_arn),
            canary_target_group=target_group_dimension(canary_target_group_arn),
        )

    def target_group(self, version: Version) -> str:
        return self.stable_target_group if version == "stable" else self.canary_target_group


class MetricSchema:
    """Every series of one rollout, built from its ``Targets`` and ALB dimension values.

    ``version_series`` gives the series of one version keyed by role (``requests``,
    ``errors``, ``latency``, ``slow``, ``p99``, ``error_rate``, ``success_rate``,
    ``response_time``); the publisher writes a role's value, the reader reads the same role.
    """

    def __init__(self, targets: Targets, alb: AlbDimensions) -> None:
        self.targets = targets
        self.alb = alb

    def service(self, version: Version) -> str:
        """The ECS service a version runs as."""
        return self.targets.stable_service if version == "stable" else self.targets.canary_service

    def version_series(self, version: Version) -> dict[str, Series]:
        alb_dims = (
            ("LoadBalancer", self.alb.load_balancer),
            ("TargetGroup", self.alb.target_group(version)),
        )
        service_dims = (("Service", self.service(version)),)
        custom = self.targets.metrics_namespace
        return {
            "requests": Series(ALB_NAMESPACE, REQUEST_COUNT, alb_dims, "Count"),
            "errors": Series(ALB_NAMESPACE, TARGET_5XX_COUNT, alb_dims, "Count"),
            "latency": Series(ALB_NAMESPACE, TARGET_RESPONSE_TIME, alb_dims, "Seconds"),
            "error_rate": Series(custom, ERROR_RATE, service_dims, "Percent"),
            "success_rate": Series(custom, SUCCESS_RATE, service_dims, "Percent"),
            "response_time": Series(custom, RESPONSE_TIME, service_dims, "Milliseconds"),
            "slow": Series(custom, SLOW_REQUEST_COUNT, service_dims, "Count"),
            "p99": Series(custom, RESPONSE_TIME_P99, service_dims, "Milliseconds"),
        }

    def unserved(self) -> Series:
        """5xx the ALB answered itself (503 for a version with weight and no registered target).

        AWS reports it per load balancer only, without a target group, so it says how many
        requests were refused, not whose; ALB reports it only when > 0.
        """
        return Series(ALB_NAMESPACE, ELB_5XX_COUNT, (("LoadBalancer", self.alb.load_balancer),), "Count")

    def dlq_series(self) -> dict[str, Series]:
        """Visible messages of each dead-letter queue, keyed by queue name."""
        return {
            name: Series(SQS_NAMESPACE, QUEUE_VISIBLE, (("QueueName", name),), "Count")
            for name in self.targets.dlq_names
        }

    def dlq_in_flight_series(self) -> dict[str, Series]:
        """Messages of each dead-letter queue someone has received and not deleted, keyed by queue name."""
        return {
            name: Series(SQS_NAMESPACE, QUEUE_IN_FLIGHT, (("QueueName", name),), "Count")
            for name in self.targets.dlq_names
        }

    def dlq_total(self) -> Series:
        """All dead-letter queues together, under the stable service (what its DLQ alarm watches)."""
        return Series(
            self.targets.metrics_namespace,
            DLQ_MESSAGES,
            (("Service", self.targets.stable_service),),
            "Count",
        )


MINUTE_PERIOD_SECONDS = 60
"""The period a per-minute read asks for (``read_service_averages``): each datapoint, stamped
``t``, holds what was published from ``t`` to ``t + 60``; and what ``whole_minutes`` widens to."""


def whole_minutes(start: float, end: float) -> tuple[float, float]:
    """[start, end) widened to whole minutes (start floored, end raised; at least one minute): the
    window a per-minute read covers (``read_service_averages``), and so the one a check says it read."""
    minute = MINUTE_PERIOD_SECONDS
    first = math.floor(start / minute) * minute
    return first, max(math.ceil(end / minute) * minute, first + minute)
