"""An Environment of fakes with Webordinary's defaults, for flow-logic tests."""

from __future__ import annotations

from rollway.environment import Environment
from rollway.fakes import FakeClock, FakeDeployer, FakeMetrics, FakeNotifier, FakeRouter, steady
from rollway.model import ServiceState
from rollway.targets import Targets

STABLE_TD = "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:1"


class RegisteredTargets(dict):
    """Healthy targets per version: one per task its service is to run (as on the embedded AWS,
    where every registered target is healthy), unless a test sets a version's count."""

    def __init__(self, deployer: FakeDeployer, targets: Targets) -> None:
        super().__init__()
        self.deployer = deployer
        self.services = {"stable": targets.stable_service, "canary": targets.canary_service}

    def __missing__(self, version: str) -> int:
        return self.deployer.services[self.services[version]].desired


def fake_environment(canary_error_rate: float = 0.0, stable_error_rate: float = 0.001, rps: float = 5000.0) -> Environment:
    targets = Targets()
    deployer = FakeDeployer(
        services={
            targets.stable_service: ServiceState(name=targets.stable_service, task_definition=STABLE_TD, desired=4, running=4),
            targets.canary_service: ServiceState(name=targets.canary_service, task_definition=STABLE_TD, desired=0, running=0),
        },
        task_definitions={STABLE_TD: "webordinary/edit-container:1.0.0"},
    )
    # A stage waits for as many healthy canary targets as it scaled the canary to.
    router = FakeRouter(healthy=RegisteredTargets(deployer, targets))
    env = Environment(
        targets=targets,
        router=router,
        deployer=deployer,
        metrics=FakeMetrics(router, steady(rps, stable_error_rate, canary_error_rate)),
        notifier=FakeNotifier(),
        clock=FakeClock(),
    )
    # One fake time: leases and claims on the wall clock move with the fake clock (whichever
    # clock a test puts in), as wall and rollout time agree at speed 1.
    env.wall = lambda: env.clock.now()
    return env


class FakeSession:
    """Stands for ``flows.env.RunSession`` in a flow given block names: every environment it
    builds is ``env``; ``periods`` records the metrics period each was asked for."""

    def __init__(self, env: Environment, periods: list[int] | None = None) -> None:
        self.env, self.periods = env, periods if periods is not None else []
        self.targets, self.credentials, self.get_client = env.targets, None, None

    def environment(self, clock: object, *, interval_seconds: int = 60) -> Environment:
        self.periods.append(interval_seconds)
        return self.env


def rollout_flows_see(monkeypatch, env: Environment, periods: list[int] | None = None) -> None:
    """`progressive_rollout`, `advance_phase`, `canary` and `monitor` run on ``env`` (the hooks
    and the rollback flow build theirs with ``flows.env.load_environment``: patch that apart)."""
    import flows.canary
    import flows.monitor
    import flows.progressive

    for module in (flows.progressive, flows.canary, flows.monitor):
        monkeypatch.setattr(module, "load_session", lambda *a, **k: FakeSession(env, periods))


def pages(env: Environment) -> list[tuple[str, str]]:
    """What the notifier sent after the rollout's "Rollout starting" notice: the pages and notices
    a test of a rollback or a race counts."""
    return [(subject, body) for subject, body in env.notifier.messages if not subject.startswith("Rollout starting: ")]
