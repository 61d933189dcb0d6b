"""The ports a rollout runs against, bundled. Built from AWS clients or from fakes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from rollway.ports import Clock, ImagePinner, Ledger, MetricSource, Notifier, ServiceDeployer, TrafficRouter
from rollway.targets import Targets


@dataclass
class Environment:
    """Everything a flow acts on. ``ledger`` and ``flags`` are optional: a bare canary runs without.

    Two times: ``clock`` is the rollout clock (bakes, windows, transitions, metrics; sped up in
    the demo), ``wall`` the wall clock (epoch seconds) of what says a process is alive: the
    owner's lease and a rollback's claim, which processes on other clocks (`rollway abort`, a hook,
    a run on a faster clock) must judge alike. Fakes pass their fake clock's ``now``. ``images``
    pins a rollout's image to one digest before anything is written.
    """

    targets: Targets
    router: TrafficRouter
    deployer: ServiceDeployer
    metrics: MetricSource
    notifier: Notifier
    clock: Clock
    ledger: Ledger | None = None
    flags: Any | None = None  # rollway.ports.FlagStore
    wall: Callable[[], float] = field(default=time.time)
    # None: an environment with no registry to ask (the fakes): the spec's image is registered as
    # given. aws_environment always sets it.
    images: ImagePinner | None = None
    # The account the clients act in, when known without a call (the session's; None for the
    # fakes): targets given as ARNs of another account are refused before any write.
    account: str | None = None
    # Looks up the watched queues (``rollway.aws.sqs.SqsQueues.lookup``), so a rollout whose
    # dead-letter queues do not exist is refused; None (the fakes unless given one): not checked.
    queues: Any | None = None
