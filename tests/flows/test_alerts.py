"""Alerts (dead letters, slow responses) act on nothing, so they must reach people: once per
kind of trouble while it lasts, during the stages and after promotion, in the notifications
and in the per-stage table. A failure to send one does not fail the rollout."""

from __future__ import annotations

from prefect import flow

from flows.canary import run_canary
from flows.monitor import run_monitor
from rollway.approvals import scripted
from rollway.fakes import FakeMetrics
from rollway.model import QueueDepth, VersionSample, Weights
from rollway.report import markdown_table
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"
STAGES = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 25, 100)], monitor_seconds=0)


def slow_canary(weights, t):
    """A canary averaging 11-13 s a response, a little different every minute; the baseline at 120 ms."""
    def one(share, latency):
        n = round(5000 * 60 * share / 100)
        return VersionSample(requests=n, errors=0, latency_avg_ms=latency, latency_p99_ms=2 * latency) if n else None
    return one(weights.stable, 120), one(weights.canary, 11_000 + (t // 60 % 20) * 100)


class GrowingDeadLetters(FakeMetrics):
    def observe(self, start, end):
        self.dlq += 1  # messages keep piling up
        return super().observe(start, end)


def alerts(env) -> list[str]:
    return [message for subject, message in env.notifier.messages if subject.startswith("Alert")]


@flow
def canary_on(env):
    return run_canary(env, STAGES, scripted())


@flow
def monitor_on(env, window):
    return run_monitor(env, RolloutSpec(image=IMAGE), window_seconds=window, stable_desired=4)


def test_stage_alerts_are_sent_once_per_kind_per_stage_and_shown_in_the_stage_table():
    env = fake_environment()
    env.metrics = GrowingDeadLetters(env.router, slow_canary, dlq=7)
    result = canary_on(env)
    sent = alerts(env)
    for weight in (5, 25, 100):
        here = [m for m in sent if m.startswith(f"Stage {weight}% of {IMAGE}")]
        assert sum("dead-letter" in m for m in here) == 1, here
        assert sum("response time" in m for m in here) == 1, here
    table = markdown_table(list(result.stages))
    assert table.count("alert: ") == 2 * len(result.stages) and "dead-letter" in table and "response time" in table


def test_a_dead_letter_queue_that_held_messages_before_the_rollout_does_not_alert_in_every_stage():
    env = fake_environment()
    env.metrics = FakeMetrics(env.router, slow_canary, dlq=7)  # held before, and nothing new arrives
    canary_on(env)
    assert not [m for m in alerts(env) if "dead-letter" in m], alerts(env)


def promoted(metrics_cls, behaviour):
    env = fake_environment()
    env.router.weights = Weights(stable=0, canary=100)
    env.metrics = metrics_cls(env.router, behaviour)
    env.deployer.update_service(env.targets.canary_service, desired=4)
    return env


def test_monitoring_alerts_once_for_a_slow_release_whose_figure_moves():
    env = promoted(FakeMetrics, slow_canary)
    result = monitor_on(env, 1200)
    assert len(alerts(env)) == 1 and "response time" in alerts(env)[0], alerts(env)
    assert result.alerts == tuple(m.split(": ", 1)[1] for m in alerts(env))


def test_monitoring_alerts_once_for_dead_letters_that_keep_growing():
    env = promoted(GrowingDeadLetters, slow_canary)
    monitor_on(env, 1200)
    assert sum("dead-letter" in m for m in alerts(env)) == 1, alerts(env)


class DeadLettersInTwoQueues(FakeMetrics):
    """The email DLQ gets 2 messages 3 minutes in; the edit-input DLQ gets 3 ten minutes in. Both are
    active queues, whose depth of 0 SQS publishes every minute: one with no reading at the window's
    opening has a starting depth nobody knows, which its alert says instead of "0 → 3"."""

    def __init__(self, router, behaviour, opened: float) -> None:
        super().__init__(router, behaviour)
        self.opened = opened

    def observe(self, start, end):
        seen = super().observe(start, end)
        arrived = {"webordinary-email-dlq": 2 if end >= self.opened + 180 else 0,
                   "webordinary-edit-input-dlq": 3 if end >= self.opened + 600 else 0}
        return seen.model_copy(update={"dead_letters": tuple(
            QueueDepth(queue=queue, first=0, deepest=n) for queue, n in arrived.items())})


def test_a_second_dead_letter_queue_gaining_messages_is_announced_too():
    """One alert per kind of trouble per window: once the email DLQ had been announced, the
    edit-input DLQ's messages, another consumer failing, were never told to anyone."""
    env = promoted(FakeMetrics, slow_canary)
    env.metrics = DeadLettersInTwoQueues(env.router, slow_canary, opened=env.clock.now())
    result = monitor_on(env, 1200)
    dead = [m for m in alerts(env) if "dead-letter" in m]
    assert len(dead) == 2, dead
    assert "webordinary-email-dlq: 0 → 2" in dead[0] and "edit-input" not in dead[0], dead
    assert "webordinary-edit-input-dlq: 0 → 3" in dead[1], dead
    assert sum("response time" in m for m in alerts(env)) == 1, "still once for a figure that moves"
    assert [m for m in result.alerts if "dead-letter" in m] == [m.split(": ", 1)[1] for m in dead]


class RefusingAlerts:
    """SNS refuses alerts (and only alerts): the rollout's own notifications still go out."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.refused = 0

    def notify(self, subject: str, message: str) -> str:
        if subject.startswith("Alert"):
            self.refused += 1
            raise RuntimeError("SNS: Throttling")
        return self.inner.notify(subject, message)


def test_an_alert_that_cannot_be_sent_does_not_stop_the_rollout(monkeypatch):
    import tasks.metrics

    # Still retried (three times), without the waits between tries.
    monkeypatch.setattr(tasks.metrics, "notify", tasks.metrics.notify.with_options(retry_delay_seconds=0))
    env = fake_environment()
    env.metrics = GrowingDeadLetters(env.router, slow_canary, dlq=7)
    env.notifier = RefusingAlerts(env.notifier)
    result = canary_on(env)
    assert result.outcome == "promoted", result.reason
    assert env.notifier.refused == 4 * 2 * len(result.stages), "each kind, each stage, tried 4 times"
