"""Post-promotion monitoring: a clean window decommissions the old service; a bad one rolls back."""

from __future__ import annotations

import pytest

import logging
import re

from prefect import flow

from flows.monitor import run_monitor
from rollway.fakes import FakeClock, FakeMetrics, steady
from rollway.model import QueueDepth, VersionSample, Weights
from rollway.spec import RolloutSpec
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"
SPEC = RolloutSpec(image=IMAGE)


@flow
def monitor_on(env, window, decommission=True):
    return run_monitor(env, SPEC, window_seconds=window, stable_desired=4, decommission=decommission)


def promoted(canary_error_rate: float, dlq: int = 0):
    env = fake_environment()
    env.router.weights = Weights(stable=0, canary=100)
    env.metrics = FakeMetrics(env.router, steady(50.0, 0.001, canary_error_rate), dlq=dlq)
    env.deployer.update_service(env.targets.canary_service, desired=4)
    return env


def test_clean_window_decommissions_the_old_service():
    env = promoted(canary_error_rate=0.001)
    result = monitor_on(env, 1800)
    assert result.outcome == "decommissioned" and result.checks >= 30
    assert env.deployer.services[env.targets.stable_service].desired == 0
    assert env.router.weights == Weights(stable=0, canary=100)
    assert env.notifier.messages[-1][0].startswith("Old version decommissioned")


def test_error_rate_over_5_percent_rolls_back_while_the_old_service_runs():
    env = promoted(canary_error_rate=0.08)
    result = monitor_on(env, 3600)
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason
    assert result.checks < 10  # caught within minutes, not at the end of the hour
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[env.targets.stable_service].desired == 4
    assert env.deployer.services[env.targets.canary_service].desired == 0


def test_a_windows_rollback_waits_as_long_as_the_rollouts_spec_allows(monkeypatch):
    """The window's rollback took the defaults (600 s for the stable service to scale up, 300 s
    for its health, 30 s read-back) whatever the rollout's spec said, while a stage's rollback
    took the spec's: after a decommission, a slow-starting stable service failed the rollback
    with every user still on the release being rolled back."""
    import flows.monitor
    import flows.rollback

    waits: list[dict] = []

    def recording(env, reason, **kwargs):
        waits.append({k: v for k, v in kwargs.items() if k.endswith("_timeout_seconds")})
        return flows.rollback.execute_rollback(env, reason, **kwargs)

    monkeypatch.setattr(flows.monitor, "execute_rollback", recording)
    spec = RolloutSpec(image=IMAGE, scale_timeout_seconds=1800, healthy_timeout_seconds=900,
                       verify_timeout_seconds=120)
    env = promoted(canary_error_rate=0.08)
    result = flow(lambda: run_monitor(env, spec, window_seconds=3600, stable_desired=4))()
    assert result.outcome == "rolled_back" and env.router.weights == Weights(stable=100, canary=0)
    assert waits == [{"stable_timeout_seconds": 1800, "healthy_timeout_seconds": 900, "verify_timeout_seconds": 120}]


class DeadLettersFrom(FakeMetrics):
    """The dead-letter queue holds ``dlq`` messages, and 3 more from ``arrive`` on (None: never)."""

    def __init__(self, router, behaviour, dlq: int, arrive: float | None) -> None:
        super().__init__(router, behaviour, dlq=dlq)
        self.before, self.arrive = dlq, arrive

    def observe(self, start, end):
        if self.arrive is not None and end >= self.arrive:
            self.dlq = self.before + 3
        return super().observe(start, end)


def test_dlq_messages_alert_once_and_do_not_roll_back():
    env = promoted(canary_error_rate=0.001)
    env.metrics = DeadLettersFrom(env.router, steady(50.0, 0.001, 0.001), dlq=0, arrive=env.clock.now() + 240)
    result = monitor_on(env, 600)
    assert result.outcome == "decommissioned"
    alerts = [m for m in env.notifier.messages if m[0].startswith("Alert")]
    assert len(alerts) == 1 and "3 new message(s) in the dead-letter queues" in alerts[0][1], alerts
    assert "webordinary-edit-input-dlq: 0 → 3" in alerts[0][1]


def test_messages_a_dlq_held_before_the_promotion_do_not_alert_but_new_ones_do():
    env = promoted(canary_error_rate=0.001)
    env.metrics = DeadLettersFrom(env.router, steady(50.0, 0.001, 0.001), dlq=40, arrive=None)
    monitor_on(env, 900)
    assert not [m for m in env.notifier.messages if m[0].startswith("Alert")]
    # Later than the 5 minutes a look reads: still counted from the window's start.
    env = promoted(canary_error_rate=0.001)
    env.metrics = DeadLettersFrom(env.router, steady(50.0, 0.001, 0.001), dlq=40, arrive=env.clock.now() + 600)
    monitor_on(env, 900)
    [alert] = [m for s, m in env.notifier.messages if s.startswith("Alert")]
    assert "webordinary-edit-input-dlq: 40 → 43" in alert


class DeadLettersPublishedLate(DeadLettersFrom):
    """As DeadLettersFrom, with each DLQ reading published ``lag`` seconds after its period ends
    (SQS metrics reach CloudWatch minutes late): until then the period has no reading, which the
    adapter cannot tell from an idle, empty queue."""

    lag = 150

    def __init__(self, router, behaviour, dlq: int, arrive: float | None, clock) -> None:
        super().__init__(router, behaviour, dlq=dlq, arrive=arrive)
        self.clock = clock

    def observe(self, start, end):
        seen = super().observe(start, end)
        # As the adapter reads them: the whole periods inside [start, end), first is the first of them.
        whole = [i.t for i in seen.intervals if i.t - self.interval >= start]
        readings = {t: self._dlq_at[t] for t in whole if t <= self.clock.now() - self.lag and self._dlq_at[t]}
        held = ((QueueDepth(queue=self.dlq_queue, first=readings.get(whole[0], 0),
                            deepest=max(readings.values())),) if readings else ())
        return seen.model_copy(update={"dead_letters": held})


def test_messages_a_dlq_held_before_the_promotion_do_not_alert_when_cloudwatch_publishes_them_late():
    """The window's depth before was taken at its first look with a whole period, before SQS had
    published that period: no reading, read as an empty queue, and the 40 messages it held were
    announced as "40 new message(s)" a few minutes into every window."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = DeadLettersPublishedLate(env.router, steady(50.0, 0.001, 0.001), dlq=40, arrive=None, clock=env.clock)
    monitor_on(env, 900)
    assert not [m for m in env.notifier.messages if m[0].startswith("Alert")]
    env = promoted(canary_error_rate=0.001)
    env.metrics = DeadLettersPublishedLate(env.router, steady(50.0, 0.001, 0.001), dlq=40,
                                           arrive=env.clock.now() + 300, clock=env.clock)
    monitor_on(env, 900)
    [alert] = [m for s, m in env.notifier.messages if s.startswith("Alert")]
    assert "webordinary-edit-input-dlq: 40 → 43" in alert


@flow
def monitor_resumed(env, window, opened_at):
    return run_monitor(env, SPEC, window_seconds=window, stable_desired=4, opened_at=opened_at)


def test_a_resumed_window_counts_dead_letters_from_the_windows_opening_not_from_the_resume():
    """The run watching the window died; 3 messages reached the DLQ while nobody watched, and the
    watchdog resumed the window 30 minutes after it opened. The resumed run took the depth before
    from its own first look (43): the 3 were never announced."""
    env = promoted(canary_error_rate=0.001)
    opened_at = env.clock.now()
    env.metrics = DeadLettersFrom(env.router, steady(50.0, 0.001, 0.001), dlq=40, arrive=opened_at + 600)
    env.metrics.observe(opened_at, opened_at + 300)  # what the dead run's looks read (and CloudWatch keeps)
    env.clock.sleep(1800)
    monitor_resumed(env, 1800, opened_at)
    [alert] = [m for s, m in env.notifier.messages if s.startswith("Alert")]
    assert "3 new message(s)" in alert and "webordinary-edit-input-dlq: 40 → 43" in alert, alert


def test_the_old_service_is_not_decommissioned_while_it_still_carries_traffic():
    env = promoted(canary_error_rate=0.001)
    env.router.weights = Weights(stable=20, canary=80)  # moved back by hand during the window
    result = monitor_on(env, 600)
    assert result.outcome == "passed" and "still carries 20% of traffic" in result.reason
    assert env.deployer.services[env.targets.stable_service].desired == 4
    assert env.notifier.messages[-1][0].startswith("Decommission skipped")


def no_request_count(weights, t):
    return None, None  # CloudWatch holds no RequestCount for either version: no data, not zero traffic


def no_requests(weights, t):
    # CloudWatch holds a RequestCount of 0 for the promoted version: counted, and nothing to take a rate over.
    return None, VersionSample(requests=0)


@pytest.mark.parametrize("behaviour", [no_request_count, no_requests])
def test_a_window_that_never_saw_the_promoted_version_keeps_the_old_service(behaviour):
    """Every read succeeded and found no request count: such a window used to count as 30
    clean minutes, and the old service was scaled to zero. A count of 0 requests still did: it
    was taken for a sighting, and a window in which the new version served nobody read "30
    minutes of monitoring passed" and decommissioned the old one on no evidence at all."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = FakeMetrics(env.router, behaviour)
    result = monitor_on(env, 1800)
    assert result.outcome == "passed" and not result.verified, result.reason
    assert "the new version served no requests during its monitoring window: nothing was measured" in result.reason
    # 29: the window's 28 counted looks and the one after it, once its last period is published.
    assert "none of its 29 looks counted a request to it" in result.reason, result.reason
    assert "monitoring passed" not in result.reason, result.reason
    assert env.deployer.services[env.targets.stable_service].desired == 4
    subject, message = env.notifier.messages[-1]
    assert subject.startswith("Decommission skipped") and message == result.reason, env.notifier.messages[-1]


def quiet_after(cutoff: float):
    """Traffic until ``cutoff``, then a RequestCount of 0: a night that fell during the window."""
    busy = steady(50.0, 0.001, 0.001)
    return lambda weights, t: busy(weights, t) if t <= cutoff else no_requests(weights, t)


def test_a_window_partly_without_requests_says_how_many_looks_measured_a_rate():
    """A look that counted 0 requests measured no error rate, and the window's end said only
    "30 minutes of monitoring passed", in the result and the decommission's ledger entry, as if
    every look had watched the new version serve. It passes (most looks measured a rate, a quiet
    spell is no failure) and says how many looks saw requests."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = FakeMetrics(env.router, quiet_after(env.clock.now() + 1200))
    result = monitor_on(env, 1800)
    assert result.outcome == "decommissioned" and result.verified, result.reason
    said = re.search(r"; (\d+) of its (\d+) looks counted requests to the new version; no error rate was measured in "
                     r"the others \((\d+) counted no requests\)", result.reason)
    assert said is not None, result.reason
    measured, checks, quiet = map(int, said.groups())
    assert checks == result.checks and measured + quiet == checks and measured < checks <= 2 * measured, result.reason


@pytest.mark.parametrize("decommission", [True, False])
def test_a_window_partly_without_requests_pages_how_many_looks_counted_requests(decommission):
    """The "Old version decommissioned" and "Monitoring passed" pages said only "passed 30 minutes
    of monitoring at 100%" when a third of the window's looks had counted no requests: the ledger
    said how many had, the people paged did not. The page says it in the ledger's words."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = FakeMetrics(env.router, quiet_after(env.clock.now() + 1200))
    result = monitor_on(env, 1800, decommission)
    assert result.verified, result.reason
    counted = re.search(r"\d+ of its \d+ looks counted requests to the new version; no error rate was measured in "
                        r"the others \(\d+ counted no requests\)", result.reason)
    assert counted is not None, result.reason
    subject, message = env.notifier.messages[-1]
    assert subject.startswith("Old version decommissioned" if decommission else "Monitoring passed"), subject
    assert f"{IMAGE} passed 30 minutes of monitoring at 100%; {counted.group(0)}" in message, message


def test_a_window_with_too_few_looks_with_requests_keeps_the_old_service():
    """Requests only in the first minutes: the rest of the looks counted 0, each taken for a
    healthy sighting, and the old service was decommissioned on a few minutes' evidence."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = FakeMetrics(env.router, quiet_after(env.clock.now() + 300))
    result = monitor_on(env, 1800)
    assert result.outcome == "passed" and not result.verified, result.reason
    assert f"of its {result.checks} looks counted requests to the new version, too few" in result.reason, result.reason
    assert "no error rate was measured in the others" in result.reason, result.reason
    assert env.deployer.services[env.targets.stable_service].desired == 4


class ThrottledUntil(FakeMetrics):
    """CloudWatch throttles every read that ends before ``until``, then answers."""

    def __init__(self, router, behaviour, until: float) -> None:
        super().__init__(router, behaviour)
        self.until = until

    def observe(self, start, end):
        self.error = ("An error occurred (Throttling) when calling the GetMetricData operation: Rate exceeded"
                      if end < self.until else None)
        return super().observe(start, end)


def test_a_window_whose_reads_were_throttled_most_of_the_time_is_said_unverified_not_passed():
    """Throttled for 25 of its 30 minutes: the window kept the old service, but its result and the
    "Decommission skipped" page opened "30 minutes of monitoring passed, but only 7 looks counted
    requests": people skimming a page at night read "passed" of a window nobody could see."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = ThrottledUntil(env.router, steady(50.0, 0.001, 0.001), env.clock.now() + 1500)
    result = monitor_on(env, 1800)
    assert result.outcome == "passed" and not result.verified, result.reason
    assert env.deployer.services[env.targets.stable_service].desired == 4
    subject, message = env.notifier.messages[-1]
    assert subject.startswith("Decommission skipped") and message == result.reason, env.notifier.messages[-1]
    assert "passed" not in message.replace("did not pass cleanly", ""), message
    said = re.match(r"30 minutes of monitoring did not pass cleanly: only (\d+) of its (\d+) looks counted requests "
                    r"to the new version, too few \(at least half must\); no error rate was measured in the others "
                    r"\((\d+) could not read the metrics\); the last failed read: An error occurred \(Throttling\)",
                    message)
    assert said is not None, message
    measured, checks, failed = map(int, said.groups())
    assert checks == result.checks and measured + failed == checks and 0 < 2 * measured < checks, message


class PublishedLate(FakeMetrics):
    """CloudWatch publishes a period about a minute after it ends (plus a little)."""

    def observe(self, start, end):
        seen = super().observe(start, end)
        return seen.model_copy(update={"intervals": tuple(i for i in seen.intervals if i.t <= end - 90)})


def test_looks_before_the_first_period_is_published_do_not_count_against_a_short_window():
    """The first looks find nothing because nothing is published yet; they are early, not
    blind, and a clean three minutes still decommissions (they used to count as two blind
    checks of three, and the old service was kept, unverified)."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = PublishedLate(env.router, steady(50.0, 0.001, 0.001))
    result = monitor_on(env, 180)
    assert result.outcome == "decommissioned", result.reason
    # The looks at 0, 60 and 120 s found nothing yet; those at 180 s and, once the last period
    # has had its metrics delay to be published, 240 s read the periods published by then.
    assert result.checks == 2


def test_a_window_resumed_with_no_time_left_watches_until_it_has_read_a_published_period():
    """The weekly watchdog resumes a window whose run died with 0 s left: its one look used to
    read nothing, and the window never closed ("0 of its 0 checks"). It now watches until it
    has read one published period, and decides on it."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = PublishedLate(env.router, steady(50.0, 0.001, 0.001))
    result = monitor_on(env, 0)
    assert result.outcome == "decommissioned" and result.checks == 1, result.reason
    assert env.deployer.services[env.targets.stable_service].desired == 0


SPEC_10_MIN = RolloutSpec(image=IMAGE, analysis={"interval_seconds": 600})


@flow
def monitor_10_min_periods(env, window):
    return run_monitor(env, SPEC_10_MIN, window_seconds=window, stable_desired=4)


def test_ten_minute_periods_are_judged_whenever_the_window_started():
    """With 10-minute periods the monitor looks every 10 minutes; started in the second half
    of a period, each look's newest whole period ended more than 5 minutes earlier. The
    5-minute cut used to leave every look empty: an 8 % error rate was never rolled back and
    the window ended "unverified" instead."""
    env = promoted(canary_error_rate=0.08)
    env.clock = FakeClock(1_800_000_000.0 + 400)  # 400 s into a 10-minute period
    env.wall = lambda: env.clock.now()
    env.metrics = FakeMetrics(env.router, steady(50.0, 0.001, 0.08, interval=600), interval=600)
    result = monitor_10_min_periods(env, 3600)
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason, result.reason
    assert env.router.weights == Weights(stable=100, canary=0)


@pytest.mark.parametrize("offset", [30, 400])
def test_ten_minute_periods_published_a_minute_late_are_judged_whenever_the_window_started(offset):
    """CloudWatch publishes a period about a minute after it ends: opened in the first minute of
    a 10-minute period, every look's newest whole period was not published yet, and the one
    before it had ended more than 10 minutes earlier, outside the cut. Each look saw nothing, and
    an 8 % error rate was never rolled back."""
    env = promoted(canary_error_rate=0.08)
    env.clock = FakeClock(1_800_000_000.0 + offset)
    env.wall = lambda: env.clock.now()
    env.metrics = PublishedAfterTheDelay(env.router, steady(50.0, 0.001, 0.08, interval=600), interval=600)
    result = monitor_10_min_periods(env, 3600)
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason, result.reason
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.clock.now() - (1_800_000_000.0 + offset) <= 1200, "rolled back at the first look that could see"


class TenMinuteDeadLettersPublishedLate(DeadLettersPublishedLate):
    lag = SPEC.analysis.metrics_delay_seconds


def test_messages_a_dlq_held_before_do_not_alert_with_ten_minute_periods_published_late():
    """With 10-minute periods the looks that still read from the window's opening all came
    before its first period was published: the depth before stayed "none", and the 40
    messages the DLQ held were announced as new."""
    env = promoted(canary_error_rate=0.001)
    env.clock = FakeClock(1_800_000_000.0 + 1)  # just after a period began: its first whole period ends late
    env.wall = lambda: env.clock.now()
    env.metrics = TenMinuteDeadLettersPublishedLate(env.router, steady(50.0, 0.001, 0.001, interval=600), dlq=40,
                                                    arrive=None, clock=env.clock)
    env.metrics.interval = 600
    monitor_10_min_periods(env, 3600)
    assert not [m for m in env.notifier.messages if m[0].startswith("Alert")]


def test_a_window_cloudwatch_refused_says_why_in_its_message():
    """Every look failed (the role may not call GetMetricData): the old service is kept, and
    the message people get said only "0 of its checks could read the metrics ... run the
    monitor again", which fails the same way. It now names CloudWatch's answer."""
    env = promoted(canary_error_rate=0.001)
    env.metrics.error = ("metrics for [1800000000, 1800000060) unavailable: An error occurred (AccessDenied) when "
                         "calling the GetMetricData operation: not authorized to perform cloudwatch:GetMetricData")
    result = monitor_on(env, 600)
    assert result.outcome == "passed" and not result.verified, result.reason
    assert env.deployer.services[env.targets.stable_service].desired == 4
    subject, message = env.notifier.messages[-1]
    assert subject.startswith("Decommission skipped") and "AccessDenied" in message, message
    assert "AccessDenied" in result.reason


def test_each_look_of_a_healthy_window_shows_in_the_log(caplog):
    """An hour's window of a healthy release used to log nothing until it ended: whoever opened
    the run could not tell it was watching, nor what it saw. Each look now logs its reading."""
    env = promoted(canary_error_rate=0.001)
    with caplog.at_level(logging.INFO):
        result = monitor_on(env, 600)
    assert result.outcome == "decommissioned", result.reason
    looks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("monitoring check")]
    assert len(looks) >= result.checks, looks
    assert any("error rate" in m and "within the 5% guardrail" in m for m in looks), looks


def test_each_look_says_how_many_requests_its_rate_was_taken_over_and_when(caplog):
    """"canary error rate 0.00% within the 5% guardrail" read the same over 3 requests as over
    15,000, and said nothing of which minutes it was: whoever watched the window could not tell a
    healthy release from one that had barely served anyone, nor how late CloudWatch was. Each look
    that counted requests says how many, how many the new version answered 5xx, and the periods."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = FakeMetrics(env.router, steady(0.05, 0.001, 0.001))  # 3 requests a minute
    said = looks_measuring(caplog, env, r"within the 5% guardrail \(over (\d+) requests to the new version, 0 "
                                        r"answered 5xx by it, in (\d) periods?, \d{4}-\d\d-\d\d \d\d:\d\d:00 to "
                                        r"\d\d:\d\d:00 UTC\)$")
    assert all(int(m.group(1)) == 3 * int(m.group(2)) for m in said), [m.string for m in said]


def looks_measuring(caplog, env, pattern: str) -> list[re.Match]:
    """What each look of a clean 5-minute window on ``env`` that measured a rate said, matched by ``pattern``."""
    with caplog.at_level(logging.INFO):
        result = monitor_on(env, 300)
    assert result.outcome == "decommissioned", result.reason
    looks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("monitoring check at")]
    counted = [m for m in looks if "within the 5% guardrail" in m]
    assert counted, looks
    said = [re.search(pattern, m) for m in counted]
    assert all(said), counted
    return said


def test_a_looks_count_names_the_load_balancers_own_5xx_its_rate_was_taken_over_too(caplog):
    """After the promotion the rate is taken over the new version's requests and the 5xx the load
    balancer answered itself: each look said "0.33% within the 5% guardrail ... (over 1,500 requests
    to the new version, 0 answered 5xx by it, ...)", figures that make 0 %, not what the rate was
    taken over. The look names the load balancer's own 5xx beside them."""
    env = promoted(canary_error_rate=0.0)
    env.metrics = FakeMetrics(env.router, steady(5.0, 0.0, 0.0))  # 300 requests a minute, no 5xx
    observe = env.metrics.observe

    def one_refused_a_minute(start, end):
        seen = observe(start, end)
        return seen.model_copy(update={"intervals": tuple(i.model_copy(update={"unserved": 1})
                                                          for i in seen.intervals)})

    env.metrics.observe = one_refused_a_minute
    said = looks_measuring(caplog, env, r"\(over ([\d,]+) requests to the new version, 0 answered 5xx by it, and (\d+) "
                                        r"the load balancer answered 5xx itself, in (\d) periods?, ")
    assert all(int(m.group(1).replace(",", "")) == 300 * int(m.group(3)) == 300 * int(m.group(2)) for m in said), \
        [m.string for m in said]


def looks_of(caplog, behaviour) -> list[str]:
    """What each look of a 5-minute window logged, its metrics read from ``behaviour``."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = FakeMetrics(env.router, behaviour)
    with caplog.at_level(logging.INFO):
        monitor_on(env, 300)
    looks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("monitoring check at")]
    assert looks, [r.getMessage() for r in caplog.records]
    return looks


def test_a_look_that_counts_no_requests_says_it_measured_no_error_rate(caplog):
    """A look with no request count logged "canary error rate 0.00% within the 5% guardrail",
    which reads as a measured, healthy rate: nothing was measured. It says so, and what it means."""
    looks = looks_of(caplog, no_request_count)
    assert not any("0.00%" in m or "within the 5% guardrail" in m for m in looks), looks
    assert all("no requests were counted in this look, so no error rate was measured" in m for m in looks), looks
    assert any("counts against the window" in m for m in looks), looks


@pytest.mark.parametrize(("after", "said"), [(60, "1 minute"), (150, "3 minutes")])
def test_a_window_resumed_after_the_promotion_says_how_long_after_to_the_minute_a_half_up(after, said):
    """"(resumed 1 minutes after the promotion)" read as a typo; rounded half to even, 150 s read
    "resumed 2 minutes after the promotion", as 90 s did."""
    env = promoted(canary_error_rate=0.001)
    spec = SPEC.model_copy(update={"monitor_seconds": 2.0 * after})
    opened = env.clock.now() - after

    @flow
    def resumed():
        return run_monitor(env, spec, window_seconds=after, stable_desired=4, opened_at=opened)

    reason = resumed().reason
    assert f"(resumed {said} after the promotion)" in reason, reason


def test_a_window_just_under_a_day_is_said_in_hours_minutes_and_seconds_not_fractions_of_minutes():
    """A window given as 86399.4 s (a day, less a fraction of a second) passed as "1439.99 minutes of
    monitoring", in the result, the decommission's ledger entry and its page: a figure nobody gave,
    in a unit nobody counts a day in. Said to the second, in hours once past two."""
    env = promoted(canary_error_rate=0.001)
    hourly = SPEC.model_copy(update={"analysis": SPEC.analysis.model_copy(update={"interval_seconds": 3600})})
    env.metrics = FakeMetrics(env.router, steady(50.0, 0.001, 0.001, interval=3600), interval=3600)

    @flow
    def almost_a_day():
        return run_monitor(env, hourly, window_seconds=86399.4, stable_desired=4)

    result = almost_a_day()
    assert result.outcome == "decommissioned", result.reason
    assert result.reason.startswith("23 hours 59 minutes 59 seconds of monitoring passed"), result.reason
    subject, message = env.notifier.messages[-1]
    assert subject.startswith("Old version decommissioned"), subject
    assert f"{IMAGE} passed 23 hours 59 minutes 59 seconds of monitoring at 100%" in message, message


def monitoring_artifact(env) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.journal import artifact_key

    key = artifact_key(env.targets.canary_service, "monitoring")
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    return max(found, key=lambda a: a.created).data


def test_the_window_ends_with_a_summary_artifact():
    """The monitor flow (and the monitoring window of a rollout) ended without an artifact: the
    run's page did not say whether the hour passed, rolled back, or could not be verified."""
    env = promoted(canary_error_rate=0.08)
    result = monitor_on(env, 1800)
    assert result.outcome == "rolled_back"
    summary = monitoring_artifact(env)
    assert IMAGE in summary and "rolled back" in summary and "over the 5% guardrail" in summary, summary

    env = promoted(canary_error_rate=0.001)
    env.metrics = FakeMetrics(env.router, no_request_count)
    result = monitor_on(env, 600)
    summary = monitoring_artifact(env)
    assert "unverified" in summary and result.reason in summary, summary
    # Its title said "passed (unverified)" of a window in which nothing was measured.
    title = summary.splitlines()[0]
    assert title.endswith(": unverified") and "passed" not in title, title


class PublishedAfterTheDelay(FakeMetrics):
    """CloudWatch publishes a period ``metrics_delay_seconds`` (60 s) after it ends."""

    def observe(self, start, end):
        seen = super().observe(start, end)
        delay = SPEC.analysis.metrics_delay_seconds
        return seen.model_copy(update={"intervals": tuple(i for i in seen.intervals if i.t <= end - delay)})


# 0: the promotion landed on a period boundary; 30: mid-period, as promotions do.
@pytest.mark.parametrize("promoted_into_period", [0, 30])
def test_a_regression_in_the_windows_last_period_rolls_back_and_keeps_the_old_service(promoted_into_period):
    """The error rate jumps to 30 % in the window's last minute. The window's final look was at
    its end, before CloudWatch had published that minute: the window passed on the minutes
    before it and the old service was scaled to zero under a failing release. The final verdict
    now waits for the last period to be published (``metrics_delay_seconds``), as a stage's
    does, and rolls back while the old service still runs.

    A window opened mid-period ends mid-period: its last seconds are in a period that ends after
    it. The final look came the metrics delay after the window's end, before that period was
    published, and the window passed; it now waits for that period's end and its delay."""
    env = promoted(canary_error_rate=0.001)
    env.clock.sleep(promoted_into_period)  # the fake clock starts on a period boundary
    window = 600
    interval = SPEC.analysis.interval_seconds
    last_period_end = -(-(env.clock.now() + window) // interval) * interval  # the period the window ends in
    healthy, failing = steady(50.0, 0.001, 0.001), steady(50.0, 0.001, 0.30)
    env.metrics = PublishedAfterTheDelay(
        env.router, lambda weights, t: (failing if t == last_period_end else healthy)(weights, t))
    result = monitor_on(env, window)
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason, result.reason
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[env.targets.stable_service].desired == 4
    assert not any(subject.startswith("Old version decommissioned") for subject, _ in env.notifier.messages)


def test_a_window_whose_last_period_never_had_a_request_count_says_it_was_not_judged():
    """CloudWatch never gave the window's last period a request count for the new version, through
    the final look and its three reads again: the window passed, and the result, the ledger and the
    page said "10 minutes of monitoring passed", as if its last minute had been judged too."""
    from rollway.aws.cloudwatch import window_utc

    env = promoted(canary_error_rate=0.001)
    last_period_end = env.clock.now() + 600  # the fake clock starts on a period boundary
    healthy = steady(50.0, 0.001, 0.001)

    def silent_last_minute(weights, t):
        baseline, canary = healthy(weights, t)
        return (baseline, None) if t == last_period_end else (baseline, canary)

    env.metrics = FakeMetrics(env.router, silent_last_minute)
    result = monitor_on(env, 600)
    assert result.outcome == "decommissioned", result.reason
    said = (f"its last period ({window_utc(last_period_end - 60, last_period_end)}) had no request count for the new "
            "version in the final look's 4 reads, so it was not judged")
    assert said in result.reason, result.reason
    assert said in env.notifier.messages[-1][1], env.notifier.messages


def test_a_one_minute_window_is_said_in_the_singular():
    """A one-minute window said "1 minutes of monitoring passed" in the result and the page."""
    env = promoted(canary_error_rate=0.001)
    result = monitor_on(env, 60)
    assert result.reason.startswith("1 minute of monitoring passed"), result.reason
    assert f"{IMAGE} passed 1 minute of monitoring at 100%" in env.notifier.messages[-1][1], env.notifier.messages


def test_a_look_that_counts_zero_requests_says_no_rate_was_measured(caplog):
    """A look whose request count was 0 logged "canary error rate 0.00% within the 5% guardrail":
    a rate over no requests, read as a healthy one."""
    looks = looks_of(caplog, no_requests)
    assert not any("0.00%" in m for m in looks), looks
    # The early looks found no period published yet; those after, a count of 0.
    assert all("no requests were counted in this look, so no error rate was measured" in m for m in looks), looks
    # A count of 0 is no sighting: the look counts against the window, as one with no count does.
    assert any("counts against the window" in m for m in looks), looks


def test_a_look_that_cannot_read_the_metrics_says_what_that_means_for_the_window(caplog):
    """A look whose read failed logged "monitoring check failed: <error>", which read as a crash of
    the check, or as the window failing: it says that nothing was judged by it (a failing release
    is not rolled back on it) and that it counts against the window."""
    env = promoted(canary_error_rate=0.001)
    env.metrics.error = "metrics for [1800000000, 1800000060) unavailable: throttled"
    with caplog.at_level(logging.INFO):
        monitor_on(env, 300)
    failed = [r.getMessage() for r in caplog.records if "could not read the metrics" in r.getMessage()
              and r.getMessage().startswith("monitoring check")]
    assert failed, [r.getMessage() for r in caplog.records]
    assert all("throttled" in m and "no error rate was measured" in m and "counts against the window" in m
               for m in failed), failed
    assert not any(r.getMessage().startswith("monitoring check failed") for r in caplog.records)


def test_a_scale_down_whose_look_for_a_rollback_fails_puts_the_old_service_back(monkeypatch):
    """After scaling the old service to 0, the run looks whether a rollback landed meanwhile. A
    look that raised (the load balancer not answering in time) failed the run with the old
    service at 0, nothing recorded and nobody paged: a rollback that had landed sent the traffic
    to no tasks. Not knowing, the run puts the old service back and says why; the window stays open."""
    import flows.monitor

    env = promoted(canary_error_rate=0.001)

    def unanswered(env, seconds):
        raise RuntimeError("the load balancer did not answer within 30 s")

    monkeypatch.setattr(flows.monitor, "_rollback_since", unanswered)
    result = monitor_on(env, 300)
    assert result.outcome == "passed", result
    assert env.deployer.services[env.targets.stable_service].desired == 4
    assert "the load balancer did not answer within 30 s" in result.reason, result.reason
    assert "scaled back to 4, not decommissioned" in result.reason, result.reason
    subjects = [s for s, _ in env.notifier.messages]
    assert not any(s.startswith("Old version decommissioned") for s in subjects), subjects
    assert subjects[-1].startswith("Decommission skipped"), subjects


def test_a_window_that_stops_on_an_error_says_so_and_how_many_looks_it_made_in_its_artifact():
    """A run that failed mid-window wrote no artifact: the monitoring key's newest was the previous
    window's summary ("decommissioned"), read as this run's outcome. Its "stopped" artifact then
    said what stopped the run and nothing of what it had watched: a person could not tell a run
    that died at its first look from one that died near the window's end."""
    env = promoted(canary_error_rate=0.001)
    monitor_on(env, 300)
    assert monitoring_artifact(env).splitlines()[0].endswith(": decommissioned")
    env = promoted(canary_error_rate=0.001)
    observe, looks = env.metrics.observe, []

    def fails_at_the_fourth_look(start, end):
        looks.append(end)
        if len(looks) == 4:
            raise RuntimeError("CloudWatch endpoint unreachable")
        if len(looks) == 2:
            return observe(start, end).model_copy(update={"error": "throttled"})
        return observe(start, end)

    env.metrics.observe = fails_at_the_fourth_look
    with pytest.raises(RuntimeError, match="CloudWatch endpoint unreachable"):
        monitor_on(env, 300)
    summary = monitoring_artifact(env)
    assert summary.splitlines()[0].endswith(": stopped"), summary
    assert "RuntimeError: CloudWatch endpoint unreachable" in summary, summary
    # The first look, at the window's opening, found no period published yet: it counts for nothing.
    assert ("- looks before it stopped: 2, of which 1 counted requests to the new version and 1 could not read "
            "the metrics") in summary, summary


def test_a_resumed_windows_looks_are_placed_in_the_whole_window_in_the_log(caplog):
    """Resumed 5 minutes after the promotion, each look logged "at 60 of 660 s", counted from the
    resume, while the result and the pages said "(resumed 5 minutes after the promotion)" of a
    15-minute window: the log placed no look in that window."""
    env = promoted(canary_error_rate=0.001)
    env.metrics.error = None
    spec = SPEC.model_copy(update={"monitor_seconds": 900.0})
    opened = env.clock.now()
    env.clock.sleep(300)
    observe, calls = env.metrics.observe, []

    def the_third_read_fails(start, end):
        calls.append(end)
        seen = observe(start, end)
        return seen.model_copy(update={"error": "throttled"}) if len(calls) == 3 else seen

    env.metrics.observe = the_third_read_fails

    @flow
    def resumed():
        return run_monitor(env, spec, window_seconds=600, stable_desired=4, opened_at=opened)

    with caplog.at_level(logging.INFO):
        result = resumed()
    assert "(resumed 5 minutes after the promotion)" in result.reason, result.reason
    looks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("monitoring check at")]
    placed = [re.match(r"monitoring check at (\d+) of (\d+) s of the window, resumed at 300 s", m) for m in looks]
    assert looks and all(placed), looks
    assert int(placed[0].group(1)) >= 300 and all(int(p.group(2)) >= 900 for p in placed), looks
    assert any("could not read the metrics" in m for m in looks), looks


def test_a_resumed_window_does_not_call_its_first_looks_early(caplog):
    """Resumed 20 minutes after the promotion, the window's periods were published long before: a
    look that found no request count still said "the window's first period may not be published
    yet: this look does not count against the window", and the window was judged on fewer looks
    than it made. Only a window's own first period (plus the metrics delay) is early."""
    env = promoted(canary_error_rate=0.001)
    env.metrics = FakeMetrics(env.router, no_request_count)
    spec = SPEC.model_copy(update={"monitor_seconds": 1320.0})
    opened = env.clock.now()
    env.clock.sleep(1200)

    @flow
    def resumed():
        return run_monitor(env, spec, window_seconds=120, stable_desired=4, opened_at=opened)

    with caplog.at_level(logging.INFO):
        result = resumed()
    looks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("monitoring check at")]
    assert looks and not any("may not be published yet" in m for m in looks), looks
    assert all("counts against the window" in m for m in looks) and not result.verified, looks
    assert looks[0].startswith("monitoring check at 1200 of 1380 s of the window, resumed at 1200 s (0 of 1 looks"), looks


def test_slow_reads_do_not_stretch_the_window_past_its_end_or_its_looks_apart(monkeypatch):
    """Each read took 10 s of the clock (a slow CloudWatch, inside the read's 15-s bound): the wait
    to the next look counted from after the read, so the looks were 70 s apart, not 60: a window
    of N looks held fewer. Looks are an interval apart, start to start."""
    env = promoted(canary_error_rate=0.001)
    observe, looks = env.metrics.observe, []

    def slow(start, end):
        looks.append(env.clock.now())
        env.clock.sleep(10)
        return observe(start, end)

    monkeypatch.setattr(env.metrics, "observe", slow)
    opened = env.clock.now()
    result = monitor_on(env, 600)
    assert result.outcome == "decommissioned", result.reason
    assert max(b - a for a, b in zip(looks, looks[1:])) <= 60.0, looks
    assert [t - opened for t in looks[:3]] == [0.0, 60.0, 120.0], looks


class DeadLettersOnCloudWatch:
    """The fake's requests, with the dead-letter queues read from (moto's) CloudWatch as the flows read them."""

    def __init__(self, inner: FakeMetrics, cloudwatch) -> None:
        self.inner, self.cloudwatch = inner, cloudwatch

    def observe(self, start, end):
        read = self.cloudwatch.observe(start, end)
        assert read.error is None, read.error
        return self.inner.observe(start, end).model_copy(
            update={"dead_letters": read.dead_letters, "dlq_messages": read.dlq_messages})


def test_a_dlq_cloudwatch_had_no_reading_of_before_the_window_alerts_with_its_starting_depth_unknown(aws):
    """SQS publishes nothing for a queue nobody has called for six hours: a DLQ holding 40 old
    failures had no reading for hours before the window, and its first reading in it (41, one more
    message waking it up) was announced as "41 new message(s) ... (dlq: 0 → 41)". Alerted still
    (alerts only), with the count it read and that the depth before it is unknown."""
    from rollway.aws.cloudwatch import CloudWatchMetrics
    from tests.adapters.test_cloudwatch import _DIMENSIONS, sqs_reading

    env = promoted(canary_error_rate=0.001)
    start = env.clock.now()
    dlq = aws.targets.dlq_names[0]
    for t, value in ((start - 8 * 3600, 40), *((start + m * 60, 41) for m in range(10, 15))):
        sqs_reading(aws, dlq, t, value)
    env.metrics = DeadLettersOnCloudWatch(env.metrics, CloudWatchMetrics(aws.get_client("cloudwatch"), aws.targets,
                                                                         dimensions=_DIMENSIONS))

    result = monitor_on(env, 900)

    assert result.outcome == "decommissioned", result.reason
    [alert] = [m for s, m in env.notifier.messages if s.startswith("Alert")]
    assert "41 message(s) (starting depth unknown) in the dead-letter queues" in alert, alert
    assert "new message" not in alert and "0 → 41" not in alert, alert
    assert f"{dlq}: 41 (starting depth unknown)" in alert, alert


def test_the_looks_of_a_window_of_days_say_where_they_are_in_days_hours_and_minutes(caplog):
    """A week's window logs a look a period: each placed itself "at 345600 of 604860 s", and the
    on-call engineer reading them divided by 86,400 to know how far the window had come. A window of
    a day or more places its looks in days, hours and minutes (hourly periods here: 49 looks)."""
    env = promoted(canary_error_rate=0.001)
    hourly = SPEC.model_copy(update={"analysis": SPEC.analysis.model_copy(update={"interval_seconds": 3600})})
    env.metrics = FakeMetrics(env.router, steady(50.0, 0.001, 0.001, interval=3600), interval=3600)

    @flow
    def two_days():
        return run_monitor(env, hourly, window_seconds=2 * 86400, stable_desired=4)

    with caplog.at_level(logging.INFO):
        result = two_days()
    assert result.outcome == "decommissioned" and result.reason.startswith("2 days of monitoring passed"), result.reason
    looks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("monitoring check at")]
    assert looks[0].startswith("monitoring check at 0 minutes of 2 days 1 minute ("), looks[0]
    assert any(m.startswith("monitoring check at 1 day 1 hour of 2 days 1 minute (") for m in looks), looks
    assert not any(re.match(r"monitoring check at \d+ of \d+ s", m) for m in looks), looks[:3]
