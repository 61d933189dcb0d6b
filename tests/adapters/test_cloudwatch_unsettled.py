"""Through moto's server: a period whose counts contradict each other does not hide the others,
and 5xx the load balancer answers itself (no target) are read and acted on."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from rollway.aws.cloudwatch import CloudWatchMetrics
from rollway.aws.elbv2 import AlbRouter
from rollway.judge import assess, make_judge
from rollway.judge.guardrails import check, unattributed
from rollway.phases import Phase
from rollway.spec import Analysis, Guardrails
from tests.adapters.test_traffic import ORIGIN, deploy_canary, schema, set_weights, simulator

GUARDRAILS = Guardrails()


def metrics_for(aws) -> CloudWatchMetrics:
    return CloudWatchMetrics(aws.get_client("cloudwatch"), aws.targets, router=aws.topology)


def router(aws) -> AlbRouter:
    return AlbRouter(aws.get_client("elbv2"), aws.targets)


def publish(aws, version: str, period: int, **counts: float) -> None:
    """Put one period's counts of a version (roles of MetricSchema.version_series), stamped at its start."""
    series = schema(aws).version_series(version)
    stamp = datetime.fromtimestamp(ORIGIN + 60 * period, timezone.utc)
    cloudwatch = aws.get_client("cloudwatch")
    for role, value in counts.items():
        s = series[role]
        cloudwatch.put_metric_data(Namespace=s.namespace, MetricData=[
            {"MetricName": s.name, "Dimensions": s.metric()["Dimensions"], "Timestamp": stamp, "Unit": s.unit,
             "Value": value}])


def five_periods(aws, canary_errors: int, **odd: dict[str, float]) -> None:
    """Five periods of 1140 baseline and 60 canary requests, the canary failing ``canary_errors``
    of each; ``odd``: the canary's counts of one period instead (``p4={"requests": 59}``)."""
    for period in range(5):
        publish(aws, "stable", period, requests=1140, errors=1, slow=10)
        publish(aws, "canary", period, **{"requests": 60, "errors": canary_errors, "slow": 55,
                                          **odd.get(f"p{period}", {})})


def test_a_canary_whose_app_counts_more_slow_requests_than_the_alb_requests_is_still_rolled_back(aws):
    # 50 % errors: clearly broken. Newest period: the app's SlowRequestCount is complete, the
    # ALB's RequestCount one short.
    five_periods(aws, canary_errors=30, p4={"requests": 59, "slow": 60})

    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 300)
    verdict = assess(make_judge(Analysis(), GUARDRAILS), GUARDRAILS, observation, stage_over=False,
                     settled_until=ORIGIN + 240)

    assert observation.error is None
    assert verdict.phase is Phase.FAILED, verdict.reason
    newest = observation.intervals[-1].canary
    assert (newest.requests, newest.errors, newest.slow) == (59, 30, 59)  # at most all of them were slow


def test_more_5xx_than_requests_leaves_that_period_out_until_it_settles(aws):
    # Newest period: RequestCount still coming in, 30 5xx out of "20" requests.
    five_periods(aws, canary_errors=30, p4={"requests": 20})
    analysis, source = Analysis(judge="threshold"), metrics_for(aws)

    observation = source.observe(ORIGIN, ORIGIN + 300)
    # Not yet settled: the other periods decide, and they roll the canary back.
    verdict = assess(make_judge(analysis, GUARDRAILS), GUARDRAILS, observation, stage_over=False,
                     settled_until=ORIGIN + 240)

    assert observation.error is None
    assert observation.intervals[-1].canary is None and observation.intervals[-1].inconsistent == ("canary",)
    assert observation.intervals[-1].baseline.requests == 1140
    assert verdict.phase is Phase.FAILED, verdict.reason


def test_a_settled_period_with_more_5xx_than_requests_is_inconclusive_not_a_pass(aws):
    five_periods(aws, canary_errors=0, p1={"errors": 80})  # 80 5xx out of 60 requests, and settled
    judge = make_judge(Analysis(judge="threshold", min_requests=50), GUARDRAILS)

    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 300)
    verdict = assess(judge, GUARDRAILS, observation, stage_over=True, settled_until=ORIGIN + 300)

    assert observation.error is None and observation.intervals[1].inconsistent == ("canary",)
    assert verdict.phase is Phase.INCONCLUSIVE
    assert "more 5xx than requests" in verdict.reason and f"{ORIGIN + 120}" in verdict.reason


def test_all_traffic_on_a_canary_without_tasks_is_read_as_503s_and_rolled_back(aws, watch_calls):
    set_weights(aws, 100)  # promoted; the canary service has no task, so no registered target
    ticks = simulator(aws, rps=20).run_ticks(3)
    calls = watch_calls(aws.get_client("cloudwatch"))

    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 180)

    assert calls == ["GetMetricData"]
    assert [i.canary for i in observation.intervals] == [None, None, None]
    assert [i.unserved for i in observation.intervals] == [t.unserved["canary"] for t in ticks]
    # No request count to set them against: what the monitor runs every minute asks the load
    # balancer for the promoted version's healthy targets, and it has none.
    assert unattributed(observation, monitoring=True)
    healthy = router(aws).healthy_targets("canary")
    assert healthy == 0
    monitor = check(GUARDRAILS, observation, monitoring=True, healthy_targets=healthy)
    assert monitor.phase is Phase.FAILED, monitor.reason
    assert "answered 5xx by the load balancer itself" in monitor.reason and "no healthy target" in monitor.reason
    stage = assess(make_judge(Analysis(mode="one-sample"), GUARDRAILS), GUARDRAILS, observation, stage_over=False,
                   healthy_targets=healthy)
    assert stage.phase is Phase.FAILED, stage.reason


def test_stray_load_balancer_5xx_at_night_are_no_error_rate_and_roll_nothing_back(aws):
    deploy_canary(aws, "example/edit:2.0.0")
    set_weights(aws, 100)  # promoted, with its two targets; at night nobody sends a request
    simulator(aws, rps=0.0).run_ticks(5)
    stray = schema(aws).unserved()  # five 5xx of some other traffic of the load balancer
    aws.get_client("cloudwatch").put_metric_data(Namespace=stray.namespace, MetricData=[
        {"MetricName": stray.name, "Dimensions": stray.metric()["Dimensions"], "Unit": stray.unit, "Value": 5,
         "Timestamp": datetime.fromtimestamp(ORIGIN + 120, timezone.utc)}])

    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 300)

    assert [(i.baseline, i.canary) for i in observation.intervals] == [(None, None)] * 5
    assert observation.unserved() == 5 and unattributed(observation, monitoring=True)
    healthy = router(aws).healthy_targets("canary")
    monitor = check(GUARDRAILS, observation, monitoring=True, healthy_targets=healthy)
    # Was "canary error rate 100.00% (5/5) is over the 5% guardrail": a rollback.
    assert monitor.phase is Phase.RUNNING, monitor.reason
    assert "no error rate" in monitor.reason and f"its {healthy} healthy target(s)" in monitor.reason
    assert [a.kind for a in monitor.alerts] == ["unattributed_5xx"]
    stage = assess(make_judge(Analysis(mode="one-sample"), GUARDRAILS), GUARDRAILS, observation, stage_over=False,
                   healthy_targets=healthy)
    assert stage.phase is Phase.RUNNING, stage.reason


def test_a_canary_stage_whose_canary_lost_its_tasks_is_rolled_back(aws):
    set_weights(aws, 10)  # the stable serves 90 %; the canary's 10 % get 503s from the load balancer
    simulator(aws, rps=20).run_ticks(3)

    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 180)
    verdict = assess(make_judge(Analysis(), GUARDRAILS), GUARDRAILS, observation, stage_over=False)

    assert observation.totals("baseline").requests > 0 and observation.totals("canary").requests == 0
    assert verdict.phase is Phase.FAILED, verdict.reason
    assert verdict.metric == "unserved_rate" and verdict.statistic > 0.05



def test_a_targets_502_counts_once_and_a_load_balancers_own_5xx_once(aws):
    """AWS counts a response once: a 502 the target sends is in HTTPCode_Target_5XX_Count only,
    a 5xx the load balancer generates (no target, or none that answered) in
    HTTPCode_ELB_5XX_Count only. Promoted: 200 requests a minute, 6 of them the target's 502s."""
    set_weights(aws, 100)
    for period in range(5):
        publish(aws, "canary", period, requests=200, errors=6)
    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 300)

    monitor = check(GUARDRAILS, observation, monitoring=True)
    assert (monitor.statistic, monitor.canary_requests) == (pytest.approx(0.03), 1000), monitor.reason  # not 6 %

    # Then 40 requests of one minute find no target: the load balancer answers them 503 itself.
    stray = schema(aws).unserved()
    aws.get_client("cloudwatch").put_metric_data(Namespace=stray.namespace, MetricData=[
        {"MetricName": stray.name, "Dimensions": stray.metric()["Dimensions"], "Unit": stray.unit, "Value": 40,
         "Timestamp": datetime.fromtimestamp(ORIGIN + 240, timezone.utc)}])
    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 300)
    monitor = check(GUARDRAILS, observation, monitoring=True)
    assert "(70/1,040)" in monitor.reason, monitor.reason  # 30 + 40 errors, 1000 + 40 requests: each once
