"""In the post-promotion window, a ledger that is down does not hide the rollback's outcome: the
monitor rolls back, fails with RollbackUnrecorded (not the lease release's ClientError), and the
hook, seeing a run that rolled back itself, does not roll back a second time."""

from __future__ import annotations

from botocore.exceptions import ClientError

import flows.env
import flows.rollback
from flows.progressive import progressive_rollout
from rollway.fakes import FakeLedger, FakeMetrics, steady
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment, rollout_flows_see

IMAGE = "webordinary/edit-container:2.0.0"


class TableGone(FakeLedger):
    """Every call fails as DynamoDB does once the table is gone, while ``down`` is set."""

    down = False

    def _check(self, op):
        if self.down:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException",
                                         "Message": "Requested resource not found"}}, op)

    def get(self, service):
        self._check("Query")
        return super().get(service)

    def acquire(self, service, **kw):
        self._check("UpdateItem")
        return super().acquire(service, **kw)

    def release(self, service, **kw):
        self._check("UpdateItem")
        return super().release(service, **kw)

    def record(self, service, **kw):
        self._check("UpdateItem")
        return super().record(service, **kw)


def test_a_monitor_rollback_on_a_ledger_that_is_down_is_reported_once_as_rollback_unrecorded(monkeypatch):
    env = fake_environment()
    env.ledger = TableGone()
    for module in (flows.env, flows.rollback):
        monkeypatch.setattr(module, "load_environment", lambda *a, **k: env)
    rollout_flows_see(monkeypatch, env)
    healthy, failing = steady(5000, 0.001, 0.001), steady(5000, 0.001, 0.08)

    def behaviour(weights, t):
        if env.ledger.down:
            return failing(weights, t)
        record = FakeLedger.get(env.ledger, env.targets.canary_service)  # None at the preflight's read
        if record is not None and record.phase is RolloutPhase.PROMOTED:
            env.ledger.down = True  # the table is deleted (or throttled) inside the window, as the canary fails
            return failing(weights, t)
        return healthy(weights, t)

    env.metrics = FakeMetrics(env.router, behaviour)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=600)
    state = progressive_rollout(spec=spec.model_dump(mode="json"), phased=False, return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    subjects = [s for s, _ in env.notifier.messages]
    assert env.router.weights == Weights(stable=100, canary=0)
    # The run fails with RollbackUnrecorded (its hooks leave it alone) and people get one rollback page.
    assert type(error).__name__ == "RollbackUnrecorded", f"{type(error).__name__}: {error}; notices {subjects}"
    assert subjects.count(f"Rollback: {env.targets.canary_service}") == 1, subjects
