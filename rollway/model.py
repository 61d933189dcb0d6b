"""Value types that cross the ports: weights, per-interval counts, observations, service state."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rollway.phases import Phase


class Weights(BaseModel):
    """ALB forward weights of the stable and the canary target group, in percent."""

    model_config = ConfigDict(frozen=True)

    stable: int = Field(ge=0, le=100)
    canary: int = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _sum_to_100(self) -> "Weights":
        if self.stable + self.canary != 100:
            raise ValueError(
                f"weights must add up to 100, got stable={self.stable} canary={self.canary}"
            )
        return self

    @classmethod
    def canary_at(cls, percent: int) -> "Weights":
        """Weights that send ``percent`` of traffic to the canary."""
        if not 0 <= percent <= 100:
            raise ValueError(f"canary weight must be within 0..100, got {percent}")
        return cls(stable=100 - percent, canary=percent)

    def __str__(self) -> str:
        return f"{self.stable}/{self.canary}"


class VersionSample(BaseModel):
    """What one version served in one interval.

    ``slow`` counts requests over a latency threshold fixed before the stage; it is how the
    judge treats latency as counts. Latency figures are for people, not for the judge.
    """

    model_config = ConfigDict(frozen=True)

    requests: int = Field(ge=0)
    errors: int = Field(default=0, ge=0)
    slow: int = Field(default=0, ge=0)
    latency_avg_ms: float | None = None
    latency_p99_ms: float | None = None

    @model_validator(mode="after")
    def _errors_within_requests(self) -> "VersionSample":
        if self.errors > self.requests or self.slow > self.requests:
            raise ValueError("errors and slow requests cannot exceed requests")
        return self


class Interval(BaseModel):
    """One analysis interval (one CloudWatch period) for both versions.

    ``t`` is the interval's end in seconds (epoch seconds live, any origin in a replay). A
    version with no RequestCount datapoint is ``None``: no data, which is not zero traffic.

    ``unserved``: requests the load balancer answered 5xx itself, no target serving them
    (``HTTPCode_ELB_5XX_Count``; e.g. a version with weight but no registered target). The
    load balancer counts them for itself, not per target group, so they belong to neither
    version. ``None`` when there is no such datapoint (ALB reports it only when > 0) or the
    source does not measure it (a replay).

    ``inconsistent``: versions whose counts for this period contradicted each other (more 5xx
    than requests, e.g. while CloudWatch is still ingesting the period) and are therefore
    ``None`` (no data) here. A period that stays so once settled is an error (``assess``).
    """

    model_config = ConfigDict(frozen=True)

    t: float
    baseline: VersionSample | None = None
    canary: VersionSample | None = None
    unserved: int | None = Field(default=None, ge=0)
    inconsistent: tuple[Literal["baseline", "canary"], ...] = ()

    @model_validator(mode="after")
    def _inconsistent_versions_have_no_sample(self) -> "Interval":
        if len(set(self.inconsistent)) != len(self.inconsistent):
            raise ValueError(f"inconsistent lists a version twice: {self.inconsistent}")
        for version in self.inconsistent:
            if getattr(self, version) is not None:
                raise ValueError(f"the {version} is marked inconsistent but has a sample; it must be None (no data)")
        return self


class QueueDepth(BaseModel):
    """One dead-letter queue's messages (visible and in flight) over an observation's periods."""

    model_config = ConfigDict(frozen=True)

    queue: str
    first: int | None = Field(ge=0, description="in the observation's first period (without a reading there, the "
                                                "latest in the few periods before it; None without any: unknown, as "
                                                "SQS publishes nothing for a queue idle for hours, empty or not)")
    deepest: int = Field(ge=0, description="the most in any of its periods")

    @property
    def grown(self) -> int:
        """Messages that arrived since the first period (0 if it only drained); with its depth then
        unknown, all it held (the alert says so: they may be older)."""
        return self.deepest if self.first is None else max(0, self.deepest - self.first)


class Observation(BaseModel):
    """Everything measured for a stage so far. Failures are data: ``error`` says what broke.

    ``dlq_messages`` is the deepest reading of every dead-letter queue, summed; ``dead_letters``
    the same per queue (those with a reading), which an alert names."""

    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    intervals: tuple[Interval, ...] = ()
    dlq_messages: int = 0
    dead_letters: tuple[QueueDepth, ...] = ()
    error: str | None = None

    def unserved(self) -> int:
        """Requests the load balancer answered 5xx itself over all intervals (absent counts as 0)."""
        return sum(i.unserved or 0 for i in self.intervals)

    def counted(self, version: str) -> VersionSample | None:
        """``totals`` of one version, or None when no interval has data for it: no request count
        in any period is no data, not a count of 0 requests."""
        if all(getattr(i, version) is None for i in self.intervals):
            return None
        return self.totals(version)

    def totals(self, version: str) -> VersionSample:
        """Sum of one version's samples over all intervals with data."""
        samples = [getattr(i, version) for i in self.intervals if getattr(i, version) is not None]
        p99s = [s.latency_p99_ms for s in samples if s.latency_p99_ms is not None]
        requests = sum(s.requests for s in samples)
        weighted = [
            (s.latency_avg_ms, s.requests) for s in samples if s.latency_avg_ms is not None
        ]
        avg = (
            sum(a * n for a, n in weighted) / max(1, sum(n for _, n in weighted))
            if weighted
            else None
        )
        return VersionSample(
            requests=requests,
            errors=sum(s.errors for s in samples),
            slow=sum(s.slow for s in samples),
            latency_avg_ms=avg,
            # Without the raw distribution, the worst interval's p99 is the honest summary.
            latency_p99_ms=max(p99s) if p99s else None,
        )


class Alert(BaseModel):
    """Trouble a person should hear about that does not roll back (dead letters, slow responses,
    load-balancer 5xx no request count can be set against).

    ``kind`` is stable while the trouble lasts and ``message`` carries the current figure, so
    a flow sends one message per kind of trouble, not one every tick as the figure moves.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["dead_letters", "response_time", "unattributed_5xx"]
    message: str
    about: tuple[str, ...] = Field(default=(), description="what the trouble is in (the dead-letter queues that "
                                                           "gained messages): one newly in it is news again")


class Verdict(BaseModel):
    """A judge's answer with everything a person needs to trust it."""

    model_config = ConfigDict(frozen=True)

    phase: Phase
    reason: str
    metric: str | None = None
    statistic: float | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    baseline_requests: int = 0
    canary_requests: int = 0
    decided_at_t: float | None = None
    alerts: tuple[Alert, ...] = ()


class ServiceState(BaseModel):
    """An ECS service as read back from AWS."""

    model_config = ConfigDict(frozen=True)

    name: str
    task_definition: str
    desired: int
    running: int
    status: str = "ACTIVE"
    # The ARNs of the target groups ECS registers its tasks in (its loadBalancers); None: not read
    # (a fake that does not model them).
    target_groups: tuple[str, ...] | None = None


class TargetGroup(BaseModel):
    """A target group's ARN and the health check its new targets must pass before they take traffic."""

    model_config = ConfigDict(frozen=True)

    arn: str
    interval_seconds: int | None = Field(default=None, description="HealthCheckIntervalSeconds; None: no checks")
    timeout_seconds: int | None = Field(default=None, description="HealthCheckTimeoutSeconds; None: no checks")

    @property
    def name(self) -> str:
        """The name in its ARN (``...:targetgroup/<name>/<id>``)."""
        parts = self.arn.split(":targetgroup/", 1)
        return parts[1].split("/", 1)[0] if len(parts) == 2 else self.arn

    @property
    def seconds_to_healthy(self) -> int | None:
        """How long a new target may wait for the one passing check the load balancer needs to
        mark it healthy (the ALB guide: "After your target is registered, it must pass one health
        check"): the check comes up to HealthCheckIntervalSeconds after the registration, and its
        answer is waited for up to HealthCheckTimeoutSeconds (35 s for AWS's defaults); None
        without health checks. HealthyThresholdCount counts only for a target once unhealthy."""
        if self.interval_seconds is None or self.timeout_seconds is None:
            return None
        return self.interval_seconds + self.timeout_seconds


def validation_problems(err: ValidationError, whole: str) -> str:
    """A ValidationError on one line, each problem as ``field.path: message``; a problem of the
    model as a whole is named ``whole``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in err.errors())


class ShiftedRule(BaseModel):
    """The listener rule a rollout shifts the traffic with, and the two target groups it shifts it
    between, by ARN: recorded in the ledger when its canary is deployed and with each shift, so that a
    rollback that looks the rule up afresh (a hook's, `rollway abort`'s, one finishing a rollback that
    died) moves the traffic over that rule, and never over another service's rule on the same path."""

    model_config = ConfigDict(frozen=True)

    rule_arn: str
    stable_arn: str
    canary_arn: str
