"""The ports a rollout runs against, bundled. Built from AWS clients or from fakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollway.ports import Clock, Ledger, MetricSource, Notifier, ServiceDeployer, TrafficRouter
from rollway.targets import Targets


@dataclass
class Environment:
    """Everything a flow acts on. ``ledger`` and ``flags`` are optional: a bare canary runs without."""

    targets: Targets
    router: TrafficRouter
    deployer: ServiceDeployer
    metrics: MetricSource
    notifier: Notifier
    clock: Clock
    ledger: Ledger | None = None
    flags: Any | None = None  # rollway.ports.FlagStore
