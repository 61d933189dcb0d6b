"""Bookkeeping that DynamoDB refuses once must not roll a healthy release back.

The window passed cleanly and the old service was scaled to 0, but the ledger refused (a
throttle) the "decommission" write, or one lease renewal during the window: the run used to
fail, and its hook rolled back the release that had passed its window and paged people.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from flows.progressive import progressive_rollout
from rollway.fakes import FakeLedger, FakeMetrics, steady
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import fake_environment
from tests.flows.test_refusals import hooks_and_flows_see

IMAGE = "webordinary/edit-container:2.0.0"


class ThrottledOnce(FakeLedger):
    failed = False

    def record(self, service, **kw):
        if kw["transition"].kind == "decommission" and not self.failed:
            self.failed = True
            raise THROTTLED
        return super().record(service, **kw)


class RenewThrottledOnce(FakeLedger):
    """One lease renewal inside the post-promotion window is throttled."""

    failed = False

    def acquire(self, service, **kw):
        record = FakeLedger.get(self, service)
        if record.phase.value == "promoted" and not self.failed:
            self.failed = True
            raise THROTTLED
        return super().acquire(service, **kw)


THROTTLED = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                   "Message": "Rate of requests exceeds the allowed throughput"}}, "UpdateItem")


def promote_and_watch(monkeypatch, ledger):
    """A healthy rollout to 100 % whose window passes and decommissions; the run's state and notices."""
    env = fake_environment()
    env.ledger = ledger
    hooks_and_flows_see(monkeypatch, env)
    env.metrics = FakeMetrics(env.router, steady(5000, 0.001, 0.001))
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=600,
                       phases=[WeeklyPhase(name="all", weights=(5, 100), decommission=True)])
    state = progressive_rollout(spec=spec.model_dump(mode="json"), phased=False, return_state=True)
    assert ledger.failed, "the throttle never came"
    # The version passed its window: it stays in production, and no rollback page goes out.
    assert env.router.weights == Weights(stable=0, canary=100), (state, env.notifier.messages)
    assert state.is_completed() and not any(s.startswith("Rollback") for s, _ in env.notifier.messages)
    return [(s, m) for s, m in env.notifier.messages if s.startswith("Old version decommissioned")]


def test_a_failed_decommission_record_does_not_roll_back_a_release_that_passed_its_window(monkeypatch):
    decommissioned = promote_and_watch(monkeypatch, ThrottledOnce())
    assert decommissioned and "could not record it" in decommissioned[0][1]


def test_one_throttled_lease_renewal_in_a_healthy_window_does_not_roll_the_release_back(monkeypatch):
    assert promote_and_watch(monkeypatch, RenewThrottledOnce())
