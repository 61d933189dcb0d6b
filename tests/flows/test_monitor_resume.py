"""A monitoring window resumed after its run died in the wait for the window's last period."""

from __future__ import annotations

import math

import pytest
from prefect import flow

from flows.progressive import run_progressive
from rollway.approvals import auto_approve
from rollway.fakes import FakeMetrics, steady
from rollway.model import Observation, Weights
from tests.flows.test_progressive_fakes import Killed, env_with_ledger, kinds, monitored_spec, mortal

SPEC = monitored_spec()
DELAY = SPEC.analysis.metrics_delay_seconds
LEASE = 60.0  # a short lease: the next run takes the window over a minute after the first one died


class PublishedAfterTheDelay(FakeMetrics):
    """CloudWatch publishes a period ``metrics_delay_seconds`` after it ends."""

    def observe(self, start, end):
        seen = super().observe(start, end)
        return seen.model_copy(update={"intervals": tuple(i for i in seen.intervals if i.t <= end - DELAY)})


@flow
def progressive_on(env, owner):
    return run_progressive(env, SPEC, auto_approve(), owner=owner, actor="alice", lease_seconds=LEASE,
                           owner_finished=lambda holder: True)


def test_a_window_resumed_after_its_run_died_waiting_for_the_last_period_judges_that_period():
    """The run dies after the window's end, while it waits for the window's last period to be
    published. The next run resumes the window with 0 s left: its looks read only from the
    resume on, so the last period, which ended before it, was never judged, and a release failing
    in its window's last minute was decommissioned. The resumed looks now read back to the
    window's opening (the promotion): the last period is judged and the release rolled back."""
    env = env_with_ledger()
    env.metrics = PublishedAfterTheDelay(env.router, steady(50.0, 0.001, 0.001))
    assert progressive_on(env, "run-0").outcome == "promoted" and kinds(env)[-2:] == ["decommission", "decommission-paged"]
    calls_in_a_full_run = env.metrics.calls  # the last one is the look after the settle wait
    window_end = env.ledger.get(env.targets.canary_service).last_transition("promote").at + SPEC.monitor_seconds
    last_period_end = window_end // 60 * 60

    env = env_with_ledger()
    healthy, failing = steady(50.0, 0.001, 0.001), steady(50.0, 0.001, 0.30)
    real = (PublishedAfterTheDelay(env.router, lambda w, t: (failing if t == last_period_end else healthy)(w, t)),
            env.ledger)
    process: dict = {}
    env.metrics = mortal(real[0], process, kill_after=calls_in_a_full_run)
    env.ledger = mortal(real[1], process)
    with pytest.raises(Killed):
        progressive_on(env, "run-1")
    env.metrics, env.ledger = real
    assert window_end < env.clock.now() <= window_end + DELAY, "died after the window, before reading its last period"
    assert env.deployer.services[env.targets.stable_service].desired > 0

    result = progressive_on(env, "run-2")
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason, result.reason
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[env.targets.stable_service].desired > 0
    assert "decommission" not in kinds(env)


def test_a_resumed_window_is_named_by_its_whole_length_in_the_result_the_ledger_and_the_page():
    """Resumed with little or nothing of it left, the window's end said "0 minutes of monitoring
    passed" in the run's result, the decommission's ledger entry and the page: a window nobody
    watched, to whoever read it, though the hour since the promotion had passed. It says the
    window was resumed: the run watched only its end."""
    from tests.flows.test_progressive_fakes import _killed_while_monitoring, progressive_on as run_on

    env, spec = _killed_while_monitoring()
    env.clock.sleep(30 * 60)  # the rest of the window runs out before anyone resumes it
    sent = len(env.notifier.messages)
    result = run_on(env, spec, auto_approve(), owner="run-2")
    assert result.outcome == "promoted" and kinds(env)[-2:] == ["decommission", "decommission-paged"]
    said = [result.reason, env.ledger.get(env.targets.canary_service).last_transition("decommission").comment,
            *(body for _, body in env.notifier.messages[sent:])]
    assert all("60 minutes of monitoring" in line for line in said), said
    assert "60 minutes of monitoring passed (resumed " in result.reason, result.reason
    assert not any("0 minutes" in line.replace("60 minutes", "") for line in said), said


def test_a_window_resumed_after_the_default_lease_judges_the_minutes_nobody_watched():
    """The run watching a 15-minute window died two minutes in; the next run could take the window
    over only once the dead run's 10-minute lease ran out. Its looks read the last few minutes
    before the resume: the window's fifth minute, in which the release answered 30 % of its
    requests with 5xx (6 % of the five minutes to its end), was never judged, and the old service was decommissioned under a release
    that had broken the guardrail in its window. The resumed run now judges the window's periods
    from its opening, and rolls the release back, saying which minutes broke it."""
    from flows.monitor import run_monitor
    from rollway.ledger import utc
    from tests.flows.test_monitor import promoted

    env = promoted(canary_error_rate=0.001)
    opened = env.clock.now()
    spec = SPEC.model_copy(update={"monitor_seconds": 900.0})
    healthy, failing = steady(50.0, 0.001, 0.001), steady(50.0, 0.001, 0.30)
    env.metrics = FakeMetrics(env.router, lambda w, t: (failing if t == opened + 300 else healthy)(w, t))
    env.metrics.observe(opened, opened + 120)  # the dead run's looks
    env.clock.sleep(720)  # resumed 12 minutes in, after the dead run's lease

    @flow
    def resumed():
        return run_monitor(env, spec, window_seconds=180, stable_desired=4, opened_at=opened)

    result = resumed()
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason, result.reason
    assert f"in the 5 minutes to {utc(opened + 300)}" in result.reason and "no run watched the window then" in result.reason, result.reason
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[env.targets.stable_service].desired == 4
    assert not any(subject.startswith("Old version decommissioned") for subject, _ in env.notifier.messages)


def test_a_breach_while_the_looks_could_not_read_the_metrics_is_judged_once_they_can():
    """CloudWatch refused every read for eight minutes of a 20-minute window (throttled), while the
    release answered 30 % of a minute's requests with 5xx; the first look that could read again
    judged only its last five minutes, so that minute was never judged and the old service was
    decommissioned. The first read after such a stretch judges it, and the release is rolled back."""
    from rollway.ledger import utc

    env, opened, result = _watched_through_eight_throttled_minutes()
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason, result.reason
    assert f"in the 5 minutes to {utc(opened + 240)}" in result.reason, result.reason
    assert "could not read the metrics" in result.reason, result.reason
    assert env.deployer.services[env.targets.stable_service].desired == 4


def test_a_window_whose_unjudged_minutes_cannot_be_read_at_its_final_look_does_not_pass():
    """Resumed after its end, the window's minutes nobody watched are read at its first look; that
    read (the whole window's, one call) was throttled at every look to the end, while each look's
    own few minutes were read. The log said "reading them again at the next look", and the final look
    passed the window: the old service was decommissioned under a release that had broken the
    guardrail in its fifth minute, which no look judged. The window does not pass cleanly: the old
    service is kept, and its end says which minutes were not judged and why."""
    from rollway.ledger import utc

    def whole_window_throttled(observe, env, start, end):
        if end - start > 600:  # the read of the window's unjudged minutes; a look's own is 6 minutes
            return Observation(start=start, end=end, error="Throttling: Rate exceeded")
        return observe(start, end)

    # Resumed 20 minutes in: the 15-minute window ended unwatched.
    env, opened, result = _resumed_window(900.0, 1200, whole_window_throttled)
    assert result.outcome != "decommissioned" and not result.verified, result.reason
    assert env.deployer.services[env.targets.stable_service].desired == 4
    assert f"from {utc(opened)} to " in result.reason, result.reason
    assert "which no look had judged (Throttling: Rate exceeded" in result.reason, result.reason
    assert not any(subject.startswith("Old version decommissioned") for subject, _ in env.notifier.messages)
    assert any(subject.startswith("Decommission skipped") and "were not judged" in body
               for subject, body in env.notifier.messages), env.notifier.messages


def test_a_breach_found_in_unjudged_minutes_keeps_the_alerts_of_the_look_that_found_it():
    """The first look that could read again after a throttled stretch found the release's breach in
    the minutes nobody had judged, and its own minutes answering slowly (20 s on average). The breach
    replaced that look's verdict, and with it the look's alerts: the rollback was paged, the slow
    responses never were, nor named in the run's result or artifact. They are paged beside the breach."""
    env, _, result = _watched_through_eight_throttled_minutes(slow_after=300)
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason, result.reason
    assert any("response time" in alert for alert in result.alerts), result.alerts
    assert any(subject.startswith("Alert:") and "response time" in body for subject, body in env.notifier.messages), \
        env.notifier.messages


def test_a_breach_found_in_unjudged_minutes_keeps_their_own_alerts_too():
    """The minutes nobody had judged answered slowly as well as failing; the look that found the
    breach in them answered fast. The breach's own alerts (its minutes' slow responses) were dropped
    for the look's: never paged. Both are kept."""
    env, _, result = _watched_through_eight_throttled_minutes(slow_after=120, slow_until=300)
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason, result.reason
    assert any("response time" in alert for alert in result.alerts), result.alerts
    assert any(subject.startswith("Alert:") and "response time" in body for subject, body in env.notifier.messages), \
        env.notifier.messages


def test_a_window_resumed_after_cloudwatch_dropped_its_first_minutes_names_them_and_does_not_pass():
    """A two-day window, its run dead, resumed sixteen days after the promotion: CloudWatch keeps
    1-minute data for 15 days, and answers a read of older periods with no data. The resumed look
    read the window's first day as minutes that served nobody, passed on the rest and decommissioned
    the old service, though the release had broken the guardrail in its fifth minute. The window does
    not pass: the old service is kept, and its end names the minutes that could not be read any more."""
    from rollway.ledger import utc

    day = 86400

    def kept_for_15_days(observe, env, start, end):
        seen = observe(start, end)
        kept = env.clock.now() - 15 * day
        return seen.model_copy(update={"intervals": tuple(i for i in seen.intervals if i.t - 60 >= kept)})

    env, opened, result = _resumed_window(2 * day, 16 * day, kept_for_15_days)
    assert result.outcome != "decommissioned" and not result.verified, result.reason
    assert env.deployer.services[env.targets.stable_service].desired == 4
    assert f"the window's periods from {utc(opened)} to " in result.reason, result.reason
    assert "could not be read any more (CloudWatch keeps 1-minute data for 15 days)" in result.reason, result.reason
    # Said in days, as people count such a window: "2880 minutes of monitoring (resumed 23040 minutes after
    # the promotion)" had the on-call engineer dividing by 1,440.
    assert result.reason.startswith("2 days of monitoring (resumed 16 days after the promotion) did not pass"), \
        result.reason
    assert not any(subject.startswith("Old version decommissioned") for subject, _ in env.notifier.messages)


def _watched_through_eight_throttled_minutes(slow_after: float | None = None, slow_until: float = math.inf):
    """A 20-minute window whose reads CloudWatch throttled for eight minutes, while the release answered
    30 % of its fifth minute's requests with 5xx; from ``slow_after`` s on (None: never) until
    ``slow_until`` s it answered in 20 s on average. Returns the world, when the window opened and the
    window's result."""
    from flows.monitor import run_monitor
    from rollway.model import VersionSample
    from tests.flows.test_monitor import promoted

    env = promoted(canary_error_rate=0.001)
    opened = env.clock.now()
    healthy, failing = steady(50.0, 0.001, 0.001), steady(50.0, 0.001, 0.30)

    def behaviour(weights, t):
        baseline, canary = (failing if t == opened + 240 else healthy)(weights, t)
        if slow_after is not None and opened + slow_after < t <= opened + slow_until and canary is not None:
            canary = VersionSample(requests=canary.requests, errors=canary.errors, latency_avg_ms=20_000,
                                   latency_p99_ms=30_000)
        return baseline, canary

    env.metrics = FakeMetrics(env.router, behaviour)
    observe = env.metrics.observe

    def throttled_for_eight_minutes(start, end):
        if opened + 60 <= end <= opened + 540:
            return Observation(start=start, end=end, error="Throttling: Rate exceeded")
        return observe(start, end)

    env.metrics.observe = throttled_for_eight_minutes

    @flow
    def watched():
        return run_monitor(env, SPEC, window_seconds=1200, stable_desired=4)

    return env, opened, watched()


def _resumed_window(monitor_seconds: float, late: float, reads):
    """A window of ``monitor_seconds`` whose run died as it opened, resumed ``late`` s after it by a run
    of ``run_monitor``; the release answered 30 % of its fifth minute's requests with 5xx. ``reads``:
    (the fake's observe, the world, start, end) -> what CloudWatch answers. Returns the world, when the
    window opened and the resumed window's result."""
    from flows.monitor import run_monitor
    from tests.flows.test_monitor import promoted

    env = promoted(canary_error_rate=0.001)
    opened = env.clock.now()
    spec = SPEC.model_copy(update={"monitor_seconds": monitor_seconds})
    healthy, failing = steady(50.0, 0.001, 0.001), steady(50.0, 0.001, 0.30)
    env.metrics = FakeMetrics(env.router, lambda w, t: (failing if t == opened + 300 else healthy)(w, t))
    observe = env.metrics.observe
    env.metrics.observe = lambda start, end: reads(observe, env, start, end)
    env.clock.sleep(late)

    @flow
    def resumed():
        return run_monitor(env, spec, window_seconds=0, stable_desired=4, opened_at=opened)

    return env, opened, resumed()
