"""A monitoring window that ends unverified keeps the old service and pages "Decommission skipped".
SNS refusing that page (a topic deleted, a role without sns:Publish, a KMS key it may not use)
must not fail the rollout's run: its hooks would roll back a release no look found failing. The
run completes, its result saying the page was not sent and why."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from flows.monitor import WindowPageRefused
from rollway.aws.errors import TargetNotFound
from rollway.cli.ops import print_status
from rollway.fakes import FakeMetrics, VersionSample, steady
from rollway.reports import rollout_report
from rollway.spec import WeeklyPhase
from tests.flows.test_monitor_rollout import SPEC, promoted_world, resume_the_window, run_monitor_flow


def unverified_window_sns_refuses(monkeypatch, *refused: str, watch=resume_the_window,
                                  error=lambda: TargetNotFound("SNS topic", "webordinary-alerts")):
    """A promoted rollout whose plan decommissions, its window watched by ``watch`` (resumed by a
    rollout run) and ending unverified (no request counted after its first minute), SNS refusing
    the pages whose subject starts with one of ``refused`` (raising ``error()``): (the environment,
    the run's result)."""
    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, _ = promoted_world(monkeypatch, spec=plan)
    busy, cutoff = steady(5000, 0.001, 0.001), env.clock.now() + 60
    env.metrics = FakeMetrics(env.router, lambda w, t: busy(w, t) if t <= cutoff else (None, VersionSample(requests=0)))
    notify = env.notifier.notify

    def topic_gone(subject, message):
        if subject.startswith(refused):
            raise error()
        return notify(subject, message)

    env.notifier.notify = topic_gone
    return env, watch(monkeypatch, env)


def test_an_unverified_windows_page_sns_refuses_leaves_the_release_promoted_and_says_so(monkeypatch):
    env, result = unverified_window_sns_refuses(monkeypatch, "Decommission skipped", "Monitoring unverified")
    assert result.outcome == "promoted", result
    assert env.router.weights.canary == 100, "the release stays: nothing rolled it back"
    assert env.deployer.describe(env.targets.stable_service).desired == 4, "the old service is kept"
    assert "SNS topic 'webordinary-alerts' not found" in result.reason, result.reason


def test_a_refused_window_page_is_recorded_so_status_and_the_report_say_nobody_was_paged(monkeypatch, capsys):
    """The run ends Completed and nothing sends the page again: said only in its log and result,
    nobody who looked at the rollout (`rollway status`, the report) learnt that the old service was
    kept with nobody paged."""
    env, _ = unverified_window_sns_refuses(monkeypatch, "Decommission skipped")
    record = env.ledger.get(env.targets.canary_service)
    page = f"the \"Decommission skipped: {env.targets.stable_service}\" page was not sent: SNS topic 'webordinary-alerts'"
    print_status(SimpleNamespace(name="svc-canary", targets=env.targets), record, record.weights, None, limit=1)
    out = " ".join(capsys.readouterr().out.split())
    assert page in out and "that run's page reached nobody" in out, out
    # Bounded to what is known: a later run's page of the same window (a "Monitoring unverified"
    # again, sent) is not recorded, and "nobody was paged" then read as false news.
    assert "nobody was paged by it" not in out and "a page a later run sent is not recorded" in out, out
    report = " ".join(rollout_report(record).split())
    assert f"**Window page not sent:** {page}" in report, report


def test_the_monitor_flow_fails_when_sns_refuses_its_windows_page_and_keeps_what_the_window_did(monkeypatch):
    """The `monitor` flow has no rollback hooks: ended Completed, its run read as a window whose end
    people were told of, as it does when SNS refuses the decommission's page (which fails it)."""
    watched = []
    with pytest.raises(WindowPageRefused) as refused:
        unverified_window_sns_refuses(monkeypatch, "Decommission skipped",
                                      watch=lambda _mp, env: watched.append(env) or run_monitor_flow())
    env = watched[0]
    assert env.router.weights.canary == 100, "the release stays: nothing rolled it back"
    assert env.deployer.describe(env.targets.stable_service).desired == 4, "the old service is kept"
    assert "\"Decommission skipped: webordinary-edit-service\" page was NOT sent" in str(refused.value), refused.value
    assert "SNS topic 'webordinary-alerts' not found" in str(refused.value), refused.value


def test_a_rollout_runs_result_says_a_refused_decommission_skipped_page_though_its_window_counted_enough():
    """A window that counted enough looks but kept the old service (traffic put back on it by hand)
    pages "Decommission skipped". Refused, the rollout run's result kept the last stage's reason
    alone (only an unverified window's end was added to it): "promoted", and nobody told."""
    from flows.monitor import MonitorResult, after_window
    from rollway.model import Weights
    from rollway.report import RolloutResult
    from rollway.window_page import PageOutcome

    page = PageOutcome("Decommission skipped: webordinary-edit-service", "SNS topic 'alerts' not found", lost=False)
    watched = MonitorResult(outcome="passed", checks=11, verified=True, window_page=page,
                            reason="10 minutes of monitoring passed, but webordinary-edit-service still carries 20% of "
                                   "traffic: not decommissioned; its \"Decommission skipped: webordinary-edit-service\" "
                                   "page was NOT sent, nobody was told: SNS topic 'alerts' not found")
    promoted = RolloutResult(outcome="promoted", reason="stage 2/2 passed", image="repo/app:2.0.0",
                             final_weights=Weights(stable=0, canary=100))
    result = after_window(promoted, watched)
    assert result.outcome == "promoted" and result.monitoring_verified is True, result
    assert result.reason.startswith("stage 2/2 passed; ") and watched.reason in result.reason, result.reason
