"""A rollout whose application publishes none of its latency metrics, on either version, is told so
by a resumed run and by the next weekly phase's start as by its first start.

Neither version publishing a slow count nor a p99, every stage passes on 0 slow requests: the
judge has nothing else to go on (``rollway.latency_unpublished``). The start warns of it; a run
that resumed the rollout (days later, its first run lost) said nothing, and whoever followed the
resumed run's log never heard that its stages pass unmeasured on latency.
"""

from __future__ import annotations

import logging

import pytest

from rollway.approvals import ApprovalAnswer, auto_approve
from rollway.fakes import steady
from rollway.model import VersionSample, Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.test_progressive_fakes import (IMAGE, WEEK, Intercept, Killed, advance_on, env_with_ledger, full_spec,
                                                progressive_on)

UNSEEN = "holds none of the application's latency metrics"
SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=300)],
                   monitor_seconds=0)


def no_latency_published(rps: float = 5000.0):
    """Both versions healthy on the load balancer's counts; neither's application publishes a slow
    count or a p99."""
    healthy = steady(rps, 0.001, 0.001)

    def bare(sample):
        return sample and VersionSample(requests=sample.requests, errors=sample.errors, latency_avg_ms=120.0)

    def sample(weights: Weights, t: float):
        baseline, canary = healthy(weights, t)
        return bare(baseline), bare(canary)

    return sample


def approve(pause, summary):
    return ApprovalAnswer(action="approve", approver="alice", comment="go")


def unseen(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and UNSEEN in r.getMessage()]


def killed_baking_then_resumed(caplog, behaviour):
    """The warnings of a rollout's start (whose run is lost while 5% bakes) and the result and
    warnings of the run that resumes it once the lost run's lease ran out."""
    env = env_with_ledger()
    env.metrics.behaviour = behaviour
    env.clock.sleep(600)  # periods before the start, which the start's check reads
    real = env.metrics

    def dies_baking(name, args, kwargs):
        if name == "observe" and env.router.weights.canary == 5:
            raise Killed("the node running the rollout is lost while 5% bakes")

    env.metrics = Intercept(real, dies_baking)
    with caplog.at_level(logging.WARNING), pytest.raises(Killed):
        progressive_on(env, SPEC, approve)
    env.metrics = real
    started = unseen(caplog)
    env.clock.sleep(601)  # the dead run's lease runs out
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        result = progressive_on(env, SPEC, approve, owner="run-2")
    return env, started, result, unseen(caplog)


def test_a_resumed_run_warns_that_no_latency_metrics_are_published_as_the_start_did(caplog):
    env, started, result, resumed = killed_baking_then_resumed(caplog, no_latency_published())
    assert len(started) == 1, "the start warns"
    assert result.outcome == "promoted", result.reason  # passed on 0 slow requests, as the start warned
    (warned,) = resumed
    assert env.targets.stable_service in warned and "SlowRequestCount" in warned, warned


def test_a_resumed_run_does_not_warn_when_the_canary_publishes_its_latency_metrics(caplog):
    """The version rolled out is the first to publish them (the stable one never did): the start
    warns, as it cannot tell yet, but the resume reads the canary's periods too, and its p99 is
    there. Warned that the guardrails "will measure nothing" and to check the namespace, whoever
    followed the run went looking for a misnamed namespace that was right."""
    healthy = steady(5000.0, 0.001, 0.001)

    def stable_unpublished(weights: Weights, t: float):
        baseline, canary = healthy(weights, t)
        return baseline and VersionSample(requests=baseline.requests, errors=baseline.errors), canary

    _, started, result, resumed = killed_baking_then_resumed(caplog, stable_unpublished)
    assert len(started) == 1, "the start cannot tell, and warns"
    assert result.outcome == "promoted", result.reason
    assert resumed == []


def test_the_next_weekly_phase_warns_that_no_latency_metrics_are_published_as_the_first_did(caplog):
    """A week after its first phase, the schedule starts the next: its run's log is the one people
    follow that week, and said nothing of the stages it passes unmeasured on latency."""
    env = env_with_ledger()
    env.metrics.behaviour = no_latency_published()
    env.clock.sleep(600)  # periods before the start, which the start's check reads
    with caplog.at_level(logging.WARNING):
        first = progressive_on(env, full_spec(), auto_approve("alice"), phased=True)
    assert first.outcome == "holding", first.reason
    assert len(unseen(caplog)) == 1, "the first phase's start warns"
    env.clock.sleep(WEEK)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        second = advance_on(env, auto_approve("carol"), "cron-1")
    assert second.outcome == "holding", second.reason
    (warned,) = unseen(caplog)
    assert env.targets.stable_service in warned and "SlowRequestCount" in warned, warned


def test_the_warning_says_the_metrics_delay_as_given(monkeypatch):
    """``%g`` said a metrics_delay_seconds of 12.3456789 "the last 12.3457 s", a figure nobody gave."""
    from types import SimpleNamespace

    import flows.canary
    from rollway.spec import Analysis

    said: list[str] = []
    monkeypatch.setattr(flows.canary, "get_run_logger", lambda: SimpleNamespace(warning=lambda m, *a: said.append(m % a)))
    env = env_with_ledger()
    env.metrics.behaviour = no_latency_published()
    env.clock.sleep(600)
    spec = SPEC.model_copy(update={"analysis": Analysis(metrics_delay_seconds=12.3456789)})
    flows.canary.latency_unpublished_said(env, spec)
    (warned,) = said
    assert "requests to " in warned and " s before the last 12.3456789 s (metrics_delay_seconds: " in warned, warned
