"""A monitoring window that ends unverified keeps the old service and pages "Decommission skipped".
SNS refusing that page (a topic deleted, a role without sns:Publish, a KMS key it may not use)
must not fail the rollout's run: its hooks would roll back a release no look found failing. The
run completes, its result saying the page was not sent and why."""

from __future__ import annotations

from rollway.aws.errors import TargetNotFound
from rollway.fakes import FakeMetrics, VersionSample, steady
from rollway.spec import WeeklyPhase
from tests.flows.test_monitor_rollout import SPEC, promoted_world, resume_the_window


def test_an_unverified_windows_page_sns_refuses_leaves_the_release_promoted_and_says_so(monkeypatch):
    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, first = promoted_world(monkeypatch, spec=plan)
    busy, cutoff = steady(5000, 0.001, 0.001), env.clock.now() + 60
    env.metrics = FakeMetrics(env.router, lambda w, t: busy(w, t) if t <= cutoff else (None, VersionSample(requests=0)))
    notify = env.notifier.notify

    def topic_gone(subject, message):
        if subject.startswith(("Decommission skipped", "Monitoring unverified")):
            raise TargetNotFound("SNS topic", "webordinary-alerts")
        return notify(subject, message)

    env.notifier.notify = topic_gone
    result = resume_the_window(monkeypatch, env)
    assert result.outcome == "promoted", result
    assert env.router.weights.canary == 100, "the release stays: nothing rolled it back"
    assert env.deployer.describe(env.targets.stable_service).desired == 4, "the old service is kept"
    assert "SNS topic 'webordinary-alerts' not found" in result.reason, result.reason
