"""One small Protocol per concern. Adapters (rollway.aws) and fakes (rollway.fakes) implement them.

Every write has a read, so a flow can verify what it set (set_weights / get_weights).
"""

from __future__ import annotations

from typing import Protocol, Sequence

from rollway.model import Observation, ServiceState, Weights


class TrafficRouter(Protocol):
    def get_weights(self) -> Weights:
        """The weights the load balancer holds now."""

    def set_weights(self, weights: Weights) -> None:
        """Ask the load balancer for these weights (verify with get_weights)."""

    def healthy_targets(self, version: str) -> int:
        """Healthy registered targets of the 'stable' or 'canary' target group."""


class ServiceDeployer(Protocol):
    def describe(self, service: str) -> ServiceState:
        """The service as ECS reports it."""

    def register_revision(self, image: str, base_task_definition: str) -> str:
        """Copy ``base_task_definition`` with only the container image swapped; return its ARN."""

    def update_service(
        self, service: str, *, task_definition: str | None = None, desired: int | None = None
    ) -> ServiceState:
        """Point the service at a task definition and/or scale it."""

    def wait_stable(self, services: Sequence[str], timeout_seconds: float) -> None:
        """Block until the services reach a steady state, or raise."""


class MetricSource(Protocol):
    def observe(self, start: float, end: float) -> Observation:
        """Per-interval counts for both versions in [start, end), plus DLQ depth.

        Never raises for a failed query: the Observation carries the error instead.
        """


class Notifier(Protocol):
    def notify(self, subject: str, message: str) -> str:
        """Send a message for people; returns the provider's message id."""


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, on the clock the metrics are stamped with."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of that clock."""
