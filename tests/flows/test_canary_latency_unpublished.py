"""A canary whose application publishes no latency metrics is not a canary with no slow requests.

The slow-request counts come from the application's own ``SlowRequestCount`` (and its
``ResponseTimeP99``), which the new version publishes, or not: an absent slow count reads as 0.
A new version whose metrics publisher broke (a renamed namespace, a crashed exporter) served
every request in 5 s and passed each stage with "canary slow requests 0/N (0.00%)", while the
stable service's metrics showed the namespace was right all along.
"""

from __future__ import annotations

from prefect import flow

from flows.canary import run_canary
from rollway.approvals import ApprovalAnswer
from rollway.fakes import steady
from rollway.model import VersionSample, Weights
from rollway.report import HEADERS, stage_rows
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


def canary_silent_on_latency(rps: float = 5000.0):
    """Both versions healthy on the load balancer's counts; the canary's application publishes
    none of its latency metrics (no slow count, no p99), the stable one's does."""
    healthy = steady(rps, 0.001, 0.001)

    def sample(weights: Weights, t: float):
        baseline, canary = healthy(weights, t)
        if canary is not None:
            canary = VersionSample(requests=canary.requests, errors=canary.errors, latency_avg_ms=5000.0)
        return baseline, canary

    return sample


def slow_counted_only_above_zero(rps: float = 5000.0, slow_rate: float = 0.00003):
    """Both versions healthy and equally fast; their application publishes SlowRequestCount only
    in a period with a slow request (as EMF and statsd publishers do) and no ResponseTimeP99."""
    healthy = steady(rps, 0.001, 0.001)

    def counted(sample):
        return sample and VersionSample(requests=sample.requests, errors=sample.errors, latency_avg_ms=120.0,
                                        slow=round(sample.requests * slow_rate))

    def sample(weights: Weights, t: float):
        baseline, canary = healthy(weights, t)
        return counted(baseline), counted(canary)

    return sample


@flow
def canary_on(env, spec, approver):
    return run_canary(env, spec, approver)


def rejected_if_asked(behaviour):
    """The rollout of two stages (5 %, 100 %) on ``behaviour``'s metrics, rejected at any pause;
    with what each pause asked."""
    env = fake_environment()
    env.metrics.behaviour = behaviour
    asked: list[str] = []

    def alice(pause, summary):
        asked.append(f"{pause.cause}: {pause.reason}")
        return ApprovalAnswer(action="reject", approver="alice", comment="no latency figures for the canary")

    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600, min_bake_seconds=120),
                                            Stage(weight=100, bake_seconds=300)], monitor_seconds=0)
    return canary_on(env, spec, alice), asked


def test_a_canary_publishing_no_latency_metrics_pauses_for_a_person_instead_of_passing():
    result, asked = rejected_if_asked(canary_silent_on_latency())
    assert result.outcome == "rolled_back", result.reason
    assert len(asked) == 1 and asked[0].startswith("inconclusive: 5%"), asked
    assert "SlowRequestCount" in asked[0] and "not 0" in asked[0], asked[0]
    row = dict(zip(HEADERS, stage_rows(result.stages)[0]))
    assert row["decision"] == "rejected" and row["verdict"] == "inconclusive", row
    assert "SlowRequestCount" in row["reason"], row


def test_a_canary_publishing_its_latency_metrics_still_passes_on_its_own():
    env = fake_environment()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600, min_bake_seconds=120),
                                            Stage(weight=100, bake_seconds=300)], monitor_seconds=0)
    result = canary_on(env, spec, lambda pause, summary: None)
    assert result.outcome == "promoted", result.reason


def test_a_spec_judging_errors_alone_passes_a_canary_without_latency_metrics():
    # Nothing judged on slow requests: the missing counts decide nothing.
    env = fake_environment()
    env.metrics.behaviour = canary_silent_on_latency()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600, min_bake_seconds=120),
                                            Stage(weight=100, bake_seconds=300)], monitor_seconds=0,
                       analysis={"metrics": ["errors"]})
    result = canary_on(env, spec, lambda pause, summary: None)
    assert result.outcome == "promoted", result.reason


def test_a_quiet_healthy_canary_of_an_application_without_p99_is_not_paused():
    # The stable service counts ~9 slow requests a minute; the canary at 5 % ~0.45, rounded to none:
    # a canary as fast as the stable one, not a publisher that broke.
    result, asked = rejected_if_asked(slow_counted_only_above_zero())
    assert result.outcome == "promoted", result.reason
    assert asked == []
