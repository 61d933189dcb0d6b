"""MetricSource on CloudWatch: per-interval counts of both versions from one GetMetricData call.

What is read, per version (series from ``rollway.aws.metric_schema``):

- ``RequestCount`` (Sum): absent means no data for that version and interval (ALB reports
  nothing for a minute without requests), which is not zero traffic;
- ``HTTPCode_Target_5XX_Count`` (Sum): absent means 0 errors (ALB reports it only when > 0);
- ``TargetResponseTime`` (Average, seconds) as the average latency in milliseconds;
- ``SlowRequestCount`` (Sum, absent means 0) and ``ResponseTimeP99`` (Maximum, ms);

plus, once per load balancer, ``HTTPCode_ELB_5XX_Count`` (Sum): requests the load balancer
answered 5xx itself (a version with weight but no registered target gets 503s that reach no
target group's metrics), carried as ``Interval.unserved`` (None when absent); and
``ApproximateNumberOfMessagesVisible`` and ``ApproximateNumberOfMessagesNotVisible`` (Maximum)
of every dead-letter queue, added up (see ``_queue_depths``). Rates are computed here, in
Python, from the counts: no metric math.

A period whose counts contradict each other does not void the window (see ``_sample``).

Behaviour of moto 5.2.5's get_metric_data, checked with real calls against the moto server:

- Periods start at StartTime, not at multiples of the period, so the window is aligned here
  (AWS aligns too, but only for recent data); EndTime is exclusive, as on AWS.
- Each period's datapoint is stamped with the period's start; ``Interval.t`` is its end.
- Results come newest first (the server's default ScanBy is TimestampDescending), so
  datapoints are matched by timestamp, never by position.
- Sum and Average work on both single values and StatisticSets (Average = total sum / total
  sample count); percentile statistics and metric math return nothing, hence the custom
  p99 and slow-request series.
- It never paginates; NextToken is still followed for AWS.
- It accepts timestamps far in the future (a ScaledClock runs ahead of the wall clock);
  real CloudWatch refuses data stamped more than two hours ahead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from rollway.aws.denied import rollout_said
from rollway.aws.errors import AdapterError
from rollway.deadline import READ_SECONDS, WAITING_SAID_EVERY_SECONDS, Unanswered, answered, read_bound
from rollway.aws.metric_schema import (MINUTE_PERIOD_SECONDS, VERSIONS, AlbDimensions, MetricSchema, Version,
                                      whole_minutes)
from rollway.model import Interval, Observation, QueueDepth, VersionSample
from rollway.targets import Targets

# role in MetricSchema.version_series -> the statistic read for it
_READS: dict[str, str] = {
    "requests": "Sum",
    "errors": "Sum",
    "latency": "Average",
    "slow": "Sum",
    "p99": "Maximum",
}
_OK_STATUS = ("Complete", "PartialData")
_UNSERVED_ID = "unserved"
# Periods read before an observation's window, for each dead-letter queue's depth when it
# opened should its first period have no reading (``_depth_before``).
DLQ_LOOKBACK_PERIODS = 3

_log = logging.getLogger(__name__)


class MetricQueryError(AdapterError):
    """CloudWatch answered, but not with data that can be used; the message says why."""


class AlbArns(Protocol):
    """Anything that knows the ARNs of the load balancer and both target groups.

    ``rollway.sim.topology.Topology`` is one; a router that resolves them from names can be
    another.
    """

    @property
    def load_balancer_arn(self) -> str: ...

    @property
    def stable_target_group_arn(self) -> str: ...

    @property
    def canary_target_group_arn(self) -> str: ...


class CloudWatchMetrics:
    """Per-interval counts of the stable (baseline) and canary target groups, and DLQ depth.

    Args:
        client: a boto3 ``cloudwatch`` client.
        targets: names of the services, DLQs and the custom metrics namespace.
        router: where the ALB's ARNs come from (read on the first ``observe``); give this or
            ``dimensions``.
        dimensions: the ALB dimension values, when already known.
        interval_seconds: the period of each interval; one CloudWatch period each.
        read_seconds: how long one ``observe``'s read (GetMetricData and its pages) may take,
            all its attempts together; past it the observation is unreadable metrics, which the
            next look reads again. On the rollout's own client (six attempts of 10 s) a silent or
            throttling CloudWatch held a tick for about 70 s, with no line in its log.
        reads: seconds -> a ``cloudwatch`` client whose calls end within them
            (``blocks.credentials.SessionClients.reading``), so that a read given up on does not
            go on in its thread for a minute; None: the reads use ``client``.
        said_every: how often a read still waited on says so in the log.

    Raises:
        ValueError: neither or both of ``router`` and ``dimensions`` are given,
            ``interval_seconds`` is not positive, or ``read_seconds`` is not a read's bound.
    """

    def __init__(
        self,
        client: Any,
        targets: Targets,
        *,
        router: AlbArns | None = None,
        dimensions: AlbDimensions | None = None,
        interval_seconds: int = 60,
        read_seconds: float = READ_SECONDS,
        reads: Callable[[float], Any] | None = None,
        said_every: float = WAITING_SAID_EVERY_SECONDS,
    ) -> None:
        if (router is None) == (dimensions is None):
            raise ValueError("give exactly one of router and dimensions")
        if interval_seconds < 1:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
        self.read_seconds = read_bound(read_seconds)
        self._reads = reads
        self._said_every = said_every
        self._client = client
        self._targets = targets
        self._router = router
        self._schema = MetricSchema(targets, dimensions) if dimensions is not None else None
        self._period = interval_seconds

    def observe(self, start: float, end: float) -> Observation:
        """Every whole period in [start, end) for both versions, plus the DLQ depth.

        Periods are aligned to multiples of ``interval_seconds``; a period that has not
        ended by ``end`` is left out (its data may be partial), and a window without a whole
        period makes no call and has no intervals. Never raises for a failed query: the
        Observation carries the error.
        """
        first = math.ceil(start / self._period) * self._period
        last = math.floor(end / self._period) * self._period
        if last <= first:
            return Observation(start=start, end=end)
        try:
            schema = self._resolve()
            queries = _queries(schema, self._period)
            # From a few periods earlier, for the dead-letter queues' depth before the window (see
            # _depth_before); the intervals are only the window's own periods.
            series = self._fetch_within(queries, first - DLQ_LOOKBACK_PERIODS * self._period, last,
                                        window=window_utc(start, end))
            intervals = tuple(_interval(series, t, self._period) for t in range(first, last, self._period))
        except (BotoCoreError, ClientError, AdapterError, ValueError, Unanswered) as err:
            # A read the role may not make says which statement grants it: the stage's output and
            # the ledger showed AWS's bare refusal, tick after tick.
            said = rollout_said(err, self._targets)
            return Observation(
                start=start, end=end, error=f"metrics for {window_utc(start, end)} unavailable: {said}"
            )
        # The deepest each DLQ got during the window, summed over the DLQs; and per DLQ, with its
        # depth at the window's start, so that an alert counts what arrived since and names the
        # queue.
        queues = {name: _queue_depths(series[v], series[f])
                  for name, v, f in zip(schema.dlq_series(), _dlq_ids(schema), _in_flight_ids(schema))}
        inside = {name: {t: d for t, d in readings.items() if t >= first} for name, readings in queues.items()}
        dlq = sum(max(readings.values(), default=0.0) for readings in inside.values())
        before = {name: _depth_before(queues[name], first) for name in inside}
        depths = tuple(
            QueueDepth(queue=name, first=None if before[name] is None else round(before[name]),
                       deepest=round(max(readings.values())))
            for name, readings in inside.items()
            if readings
        )
        return Observation(start=start, end=end, intervals=intervals, dlq_messages=round(dlq), dead_letters=depths)

    def _resolve(self) -> MetricSchema:
        """The schema, with the ALB's dimension values read from the router on first use.

        Raises:
            MetricQueryError: the router does not expose the three ARNs.
            ValueError: an ARN is malformed.
        """
        if self._schema is None:
            router = self._router
            try:
                arns = (router.load_balancer_arn, router.stable_target_group_arn, router.canary_target_group_arn)
            except AttributeError as err:
                raise MetricQueryError(
                    f"{type(router).__name__} does not expose the load balancer and target group "
                    f"ARNs ({err}); pass dimensions= or an object with those ARNs"
                ) from err
            self._schema = MetricSchema(self._targets, AlbDimensions.from_arns(*arns))
        return self._schema

    def _fetch_within(self, queries: list[dict[str, Any]], first: int, last: int, *,
                      window: str) -> dict[str, dict[int, float]]:
        """``_fetch``, given up on after ``read_seconds``, saying every ``said_every`` s that it
        waits, naming the observation's ``window``.

        Raises:
            Unanswered: "CloudWatch did not answer within N s".
        """
        seconds = self.read_seconds
        client = self._client if self._reads is None else self._reads(seconds)

        def say(line: str) -> None:
            _log.warning("reading the metrics for %s: %s", window, line)

        return answered("CloudWatch", seconds, lambda: self._fetch(client, queries, first, last), say,
                        every=self._said_every)

    @staticmethod
    def _fetch(client: Any, queries: list[dict[str, Any]], first: int, last: int) -> dict[str, dict[int, float]]:
        """Query id -> {period start: value}, from one GetMetricData call (and its next pages).

        Raises:
            MetricQueryError: an answer ``_answers`` refuses (a bad status, a query left out or not asked for).
        """
        arguments: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": datetime.fromtimestamp(first, timezone.utc),
            "EndTime": datetime.fromtimestamp(last, timezone.utc),
            "ScanBy": "TimestampAscending",
        }
        series: dict[str, dict[int, float]] = {q["Id"]: {} for q in queries}
        for result in _answers(client, arguments):
            for stamp, value in zip(result.get("Timestamps", ()), result.get("Values", ())):
                series[result["Id"]][round(stamp.timestamp())] = value
        return series


def _answers(client: Any, arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each query's result of one GetMetricData call (and its next pages), ``arguments``' queries
    every one answered, each once asked for, with a usable status.

    Raises:
        MetricQueryError: a query ended with a status other than Complete or PartialData, or the
            answer named a query not asked for, or left out one asked for (named by its metric):
            read as no data, a left-out 5xx count was a version with no 5xx at all, and a left-out
            SuccessRate sum a service at 0% success.
    """
    asked = {q["Id"]: q for q in arguments["MetricDataQueries"]}
    answered_ids: set[str] = set()
    while True:
        page = client.get_metric_data(**arguments)
        for result in page["MetricDataResults"]:
            query_id = result.get("Id")
            if query_id not in asked:
                raise MetricQueryError(f"CloudWatch answered a query {query_id!r} this read did not ask for "
                                       f"(it asked for {', '.join(asked)})")
            if result.get("StatusCode", "Complete") not in _OK_STATUS:
                raise MetricQueryError(
                    f"query {query_id} ({_named(asked[query_id])}) ended with status {result['StatusCode']}"
                )
            answered_ids.add(query_id)
            yield result
        token = page.get("NextToken")
        if not token:
            break
        arguments["NextToken"] = token
    missing = [query_id for query_id in asked if query_id not in answered_ids]
    if missing:
        raise MetricQueryError("CloudWatch's answer left out " + "; ".join(
            f"query {query_id} ({_named(asked[query_id])})" for query_id in missing))


def window_utc(start: float, end: float) -> str:
    """[start, end) as on-call reads it: "2027-01-15 08:00:00 to 08:05:00 UTC" (the end's date
    too when it is another day). Epoch seconds ("[1800000000, 1800000300)") had to be converted
    to find the minutes a failed read left unjudged."""
    first, last = (datetime.fromtimestamp(t, timezone.utc) for t in (start, end))
    same_day = first.date() == last.date()
    return f"{first:%Y-%m-%d %H:%M:%S} to {last:%H:%M:%S}" + ("" if same_day else f" on {last:%Y-%m-%d}") + " UTC"


def _named(query: dict[str, Any]) -> str:
    """A query's metric as on-call finds it in the console: "HTTPCode_Target_5XX_Count (Sum) of
    TargetGroup=targetgroup/canary/..., LoadBalancer=app/alb/..." (its Id alone named only our key)."""
    stat = query["MetricStat"]
    metric = stat["Metric"]
    where = ", ".join(f"{d['Name']}={d['Value']}" for d in metric.get("Dimensions", ()))
    return f"{metric['MetricName']} ({stat['Stat']})" + (f" of {where}" if where else "")


def _query_id(version: Version, role: str) -> str:
    return f"{version}_{role}"


def _queries(schema: MetricSchema, period: int) -> list[dict[str, Any]]:
    """Every query of one observation: five per version, the load balancer's own 5xx, two per dead-letter queue."""
    queries = [
        {
            "Id": _query_id(version, role),
            "MetricStat": {"Metric": series.metric(), "Period": period, "Stat": _READS[role]},
            "ReturnData": True,
        }
        for version in VERSIONS
        for role, series in schema.version_series(version).items()
        if role in _READS
    ]
    queries.append(
        {
            "Id": _UNSERVED_ID,
            "MetricStat": {"Metric": schema.unserved().metric(), "Period": period, "Stat": "Sum"},
            "ReturnData": True,
        }
    )
    queries += [
        {
            "Id": query_id,
            "MetricStat": {"Metric": series.metric(), "Period": period, "Stat": "Maximum"},
            "ReturnData": True,
        }
        for ids, named in ((_dlq_ids(schema), schema.dlq_series()),
                           (_in_flight_ids(schema), schema.dlq_in_flight_series()))
        for query_id, series in zip(ids, named.values())
    ]
    return queries


def _dlq_ids(schema: MetricSchema) -> list[str]:
    return [f"dlq{i}" for i in range(len(schema.dlq_series()))]


def _in_flight_ids(schema: MetricSchema) -> list[str]:
    return [f"dlqflight{i}" for i in range(len(schema.dlq_series()))]


def _queue_depths(visible: dict[int, float], in_flight: dict[int, float]) -> dict[int, float]:
    """A dead-letter queue's messages per period: visible and in flight together.

    A dead letter someone has received (on-call reading it, a tool redriving it) is in flight
    until deleted or its visibility timeout ends: still in the queue, and no longer visible.
    Counting only the visible ones, each one read made room for a new one to arrive unseen, and
    "what arrived since the start" is a difference of depths, which only both together give
    (moving out of the queue, a redrive, lowers both). SQS publishes both once a minute: with the
    default one-minute periods each sum is one moment's depth. With longer periods the Maximum of
    each may come from different minutes, so a message received within a period can count in
    both: over, never under, for an alert that only alerts. An absent reading is 0 (SQS
    publishes nothing for an idle queue, nor the in-flight count of a queue nobody reads).
    """
    return {t: visible.get(t, 0.0) + in_flight.get(t, 0.0) for t in visible.keys() | in_flight.keys()}


def _depth_before(readings: dict[int, float], first: int) -> float | None:
    """A dead-letter queue's depth when the window opened: its reading in the window's first
    period, or else its latest in the ``DLQ_LOOKBACK_PERIODS`` before it, or else None: unknown.

    SQS skips a minute now and then, and publishes late: read as 0, a missing first reading of a
    queue holding old failures announced all of them as new dead letters of the stage. And it
    publishes nothing for a queue nobody has called for six hours, empty or holding old failures
    alike, until a call wakes it: with no reading before the window, its first reading in it may
    be all old messages, and 0 before it announced them as new.
    """
    if first in readings:
        return readings[first]
    before = [t for t in readings if t < first]
    return readings[max(before)] if before else None


def _interval(series: dict[str, dict[int, float]], t: int, period: int) -> Interval:
    """The interval of the period starting at ``t``: both versions and the load balancer's own 5xx."""
    versions: dict[str, VersionSample | None] = {}
    inconsistent: list[str] = []
    for version, field in (("stable", "baseline"), ("canary", "canary")):
        try:
            versions[field] = _sample(series, version, t)
        except _Contradictory as why:
            _log.warning("%s; read as no data for that period until its counts agree", why)
            versions[field] = None
            inconsistent.append(field)
    unserved = series[_UNSERVED_ID].get(t)
    return Interval(
        t=t + period,
        **versions,
        unserved=None if unserved is None else round(unserved),
        inconsistent=tuple(inconsistent),
    )


class _Contradictory(Exception):
    """A version's ALB counts for one period contradict each other; the message says how."""


def _sample(series: dict[str, dict[int, float]], version: Version, t: int) -> VersionSample | None:
    """One version's sample for the period starting at ``t``; None when it has no requests.

    One period's contradiction must not void the window: the other periods may show a
    failing canary, and an error would hold it instead of rolling it back. So:

    - More slow requests than requests: the slow count is the application's
      (``SlowRequestCount``), the request count the ALB's; they come from different
      publishers with their own period edges and delays, and nearly every request of a
      100 %-slow canary is slow. Slow is clamped to requests: at most all of them were slow,
      which is what the figures say.
    - More 5xx than requests (or 5xx without a request count): both are the ALB's own
      counts for the same period, so this only happens while CloudWatch is still ingesting
      the period. Neither figure can be trusted, and a rate made up from them would be a
      guess: the version has no data for that period (the interval lists it in
      ``inconsistent``), like a period not yet settled. ``assess`` makes it an error if it
      is still so once settled.

    Raises:
        _Contradictory: more 5xx than requests.
    """

    def value(role: str) -> float | None:
        return series[_query_id(version, role)].get(t)

    counts = {role: round(value(role) or 0.0) for role in ("requests", "errors", "slow")}
    if value("requests") is None and not counts["errors"]:
        return None
    if counts["errors"] > counts["requests"]:
        raise _Contradictory(f"{version} period starting {t}: {counts['errors']} 5xx out of {counts['requests']} requests")
    if counts["slow"] > counts["requests"]:
        _log.warning(
            "%s period starting %s: the application counted %s slow requests, the load balancer %s "
            "requests; read as %s slow",
            version, t, counts["slow"], counts["requests"], counts["requests"],
        )
        counts["slow"] = counts["requests"]
    latency = value("latency")
    return VersionSample(
        requests=counts["requests"],
        errors=counts["errors"],
        slow=counts["slow"],
        latency_avg_ms=None if latency is None else latency * 1000.0,
        latency_p99_ms=value("p99"),
    )


@dataclass(frozen=True)
class ServiceReads:
    """What ``read_service_averages`` read: ``averages``, service -> (sum, sample count), only for
    services with data; ``newest``, service -> the start of its newest minute holding data (what
    the sums leave out, and a freshness rule needs: good first minutes hid a service that had
    stopped publishing since)."""

    averages: dict[str, tuple[float, float]] = field(default_factory=dict)
    newest: dict[str, float] = field(default_factory=dict)


def read_service_averages(
    client: Any, namespace: str, metric: str, services: "tuple[str, ...] | list[str]", start: float, end: float
) -> ServiceReads:
    """Sum and sample count of ``metric`` (dimension ``Service``) per service over [start, end),
    and each one's newest datapoint's minute, from one GetMetricData call (``ServiceReads``).

    The window is widened to whole minutes (start floored, end raised), and read per minute: AWS
    and moto align periods differently (see the module docstring), and a minute's datapoints
    are the same on both. The caller averages: sum over sample count, pooled as CloudWatch's
    Average over the series would be.

    Raises:
        MetricQueryError: a query ended with a status other than Complete or PartialData, or the
            answer left out a query or named one not asked for (``_answers``).
        botocore's ClientError / BotoCoreError: CloudWatch refused or could not be reached.
    """
    first, last = whole_minutes(start, end)
    queries = [
        {
            "Id": f"{stat.lower()}{i}",
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": metric,
                           "Dimensions": [{"Name": "Service", "Value": service}]},
                "Period": MINUTE_PERIOD_SECONDS,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for i, service in enumerate(services)
        for stat in ("Sum", "SampleCount")
    ]
    arguments: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": datetime.fromtimestamp(first, timezone.utc),
        "EndTime": datetime.fromtimestamp(last, timezone.utc),
    }
    totals: dict[str, float] = {}
    newest: dict[str, float] = {}
    for result in _answers(client, arguments):
        totals[result["Id"]] = totals.get(result["Id"], 0.0) + sum(result.get("Values", ()))
        # CloudWatch stamps only a period that holds data, each with the period's start.
        stamps = [stamp.timestamp() for stamp in result.get("Timestamps", ())]
        if stamps:
            newest[result["Id"]] = max(stamps + [newest.get(result["Id"], stamps[0])])
    held = [(i, service) for i, service in enumerate(services) if totals.get(f"samplecount{i}", 0.0) > 0]
    return ServiceReads(averages={service: (totals.get(f"sum{i}", 0.0), totals[f"samplecount{i}"])
                                  for i, service in held},
                        newest={service: newest[f"samplecount{i}"] for i, service in held
                                if f"samplecount{i}" in newest})
