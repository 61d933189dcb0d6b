"""The window's final look, the one that judges its last period, could not read the metrics.

That look waits for the period the window ends in to be published, so that a regression in the
window's last minute is judged before the old service goes. A read CloudWatch throttled there
was counted as one failed look among many: the window passed on the looks before it, and the
old service was scaled to zero under a release whose last minute nobody had judged.
"""

from __future__ import annotations

from rollway.decide import window_settled
from rollway.fakes import steady
from rollway.model import Weights
from tests.flows.test_monitor import SPEC, PublishedAfterTheDelay, monitor_on, promoted

WINDOW = 600


class UnreadAtTheEnd(PublishedAfterTheDelay):
    """CloudWatch throttles the final look's read (``persistent``: every read from then on)."""

    def __init__(self, router, behaviour, settled: float, persistent: bool) -> None:
        super().__init__(router, behaviour)
        self.settled, self.persistent = settled, persistent

    def observe(self, start, end):
        unread = end >= self.settled if self.persistent else end == self.settled
        self.error = "metrics unavailable: ThrottlingException: Rate exceeded" if unread else None
        return super().observe(start, end)


def _failing_in_the_last_period(metrics):
    """A release promoted mid-period that fails (30 % errors) in its window's last period only,
    read through ``metrics(router, behaviour, last_period_end)``."""
    env = promoted(canary_error_rate=0.001)
    env.clock.sleep(30)  # promoted mid-period, as promotions are
    last = window_settled(env.clock.now(), WINDOW, SPEC.analysis) - SPEC.analysis.metrics_delay_seconds

    def behaviour(weights, t):
        return steady(50.0, 0.001, 0.30 if t == last else 0.001)(weights, t)

    env.metrics = metrics(env.router, behaviour, last)
    return env


def _unread_at_the_end(persistent: bool):
    return _failing_in_the_last_period(lambda router, behaviour, last: UnreadAtTheEnd(
        router, behaviour, last + SPEC.analysis.metrics_delay_seconds, persistent))


def _rolls_back_with_the_old_service(env) -> None:
    """The window's last period is judged: the release is rolled back, never decommissioned."""
    result = monitor_on(env, WINDOW)
    assert (result.outcome, "over the 5% guardrail" in result.reason) == ("rolled_back", True), result.reason
    assert (env.router.weights, env.deployer.services[env.targets.stable_service].desired) == (
        Weights(stable=100, canary=0), 4)
    assert not any(subject.startswith("Old version decommissioned") for subject, _ in env.notifier.messages)


def test_a_final_read_throttled_once_is_read_again_and_the_last_periods_regression_rolls_back():
    _rolls_back_with_the_old_service(_unread_at_the_end(persistent=False))


def test_a_last_period_never_read_keeps_the_old_service_and_says_why():
    env = _unread_at_the_end(persistent=True)
    result = monitor_on(env, WINDOW)
    assert result.outcome == "passed" and not result.verified, result
    assert env.deployer.services[env.targets.stable_service].desired == 4
    subjects = [subject for subject, _ in env.notifier.messages]
    assert not any(s.startswith("Old version decommissioned") for s in subjects), subjects
    assert subjects[-1].startswith("Decommission skipped"), subjects
    assert "last period" in result.reason and "ThrottlingException" in result.reason, result.reason
    assert "10 of its 11 looks" in result.reason, result.reason  # the retries are the final look again
    assert "ThrottlingException" in env.notifier.messages[-1][1], env.notifier.messages[-1]


class LastPeriodLate(PublishedAfterTheDelay):
    """CloudWatch publishes the window's last period ``late`` seconds after the spec's delay."""

    def __init__(self, router, behaviour, last_period_end: float, late: float) -> None:
        super().__init__(router, behaviour)
        self.last_period_end, self.late = last_period_end, late

    def observe(self, start, end):
        seen = super().observe(start, end)
        published = end >= self.last_period_end + SPEC.analysis.metrics_delay_seconds + self.late
        return seen.model_copy(update={"intervals": tuple(
            i for i in seen.intervals if i.t != self.last_period_end or published)})


def test_a_last_period_published_late_is_waited_for_and_its_regression_rolls_back():
    """CloudWatch is sometimes later than ``metrics_delay_seconds``: the final look found no count
    for the window's last period, passed on the periods before it, and the old service was scaled
    to zero under a release failing in its last minute."""
    _rolls_back_with_the_old_service(_failing_in_the_last_period(
        lambda router, behaviour, last: LastPeriodLate(router, behaviour, last, late=20)))


def test_a_final_look_that_cannot_read_names_every_period_no_look_judged_not_only_the_last():
    """CloudWatch refused every read of the window's last five minutes, to the final look and its
    retries. The end said only that the window's last period was not judged: the four periods
    before it, which no look had judged either (a breach in them rolled nothing back), went
    unnamed, and people read the window as watched but for its last minute."""
    from rollway.ledger import utc

    env = promoted(canary_error_rate=0.001)
    env.clock.sleep(30)
    settled = window_settled(env.clock.now(), WINDOW, SPEC.analysis)
    last = settled - SPEC.analysis.metrics_delay_seconds
    # Every read from four minutes before the final look on is throttled; the last read that succeeds
    # judges the window to five periods before its end.
    env.metrics = UnreadAtTheEnd(env.router, steady(50.0, 0.001, 0.001), settled - 240, persistent=True)
    result = monitor_on(env, WINDOW)
    assert result.outcome == "passed" and not result.verified, result
    assert env.deployer.services[env.targets.stable_service].desired == 4
    said = f"the window's periods from {utc(last - 300)} to {utc(last)}, which no look had judged (metrics unavailable"
    assert said in result.reason, result.reason
    assert said in env.notifier.messages[-1][1], env.notifier.messages[-1]
