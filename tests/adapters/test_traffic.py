"""The traffic simulator: its draws (pure) and what it does to the embedded account (moto server)."""

from __future__ import annotations

import random
import statistics
import time
from datetime import datetime, timezone

import pytest

from rollway.aws.elbv2 import AlbRouter
from rollway.aws.metric_schema import AlbDimensions, MetricSchema, Series
from rollway.clock import ScaledClock, SystemClock
from rollway.model import Weights
from rollway.sim.profiles import BehaviourProfile, binomial
from rollway.sim.topology import task_definition_input
from rollway.sim.traffic import TrafficSimulator, poisson

# A multiple of 60 far from the wall clock, so simulated windows never meet real ones.
ORIGIN = 1_800_000_000
HEALTHY = BehaviourProfile(error_probability=0.0, median_ms=100, sigma=0.4)


# --- helpers shared with test_cloudwatch.py --------------------------------------------


def deploy_canary(aws, image: str, desired: int = 2) -> str:
    """Point the canary service at a new revision running ``image``; return its ARN."""
    top = aws.topology
    ecs = aws.get_client("ecs")
    arn = ecs.register_task_definition(
        **task_definition_input(aws.targets, image, (top.execution_role_arn, top.task_role_arn))
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(
        cluster=aws.targets.cluster, service=aws.targets.canary_service, taskDefinition=arn, desiredCount=desired
    )
    return arn


def set_weights(aws, canary_percent: int) -> None:
    AlbRouter(aws.get_client("elbv2"), aws.targets).set_weights(Weights.canary_at(canary_percent))


def simulator(aws, profiles=None, *, default=HEALTHY, rps=20.0, seed=0, start=ORIGIN, **kwargs) -> TrafficSimulator:
    return TrafficSimulator(
        aws.get_client,
        aws.targets,
        aws.topology,
        kwargs.pop("clock", SystemClock()),
        profiles or {},
        default,
        total_rps=rps,
        seed=seed,
        start=start,
        **kwargs,
    )


def schema(aws) -> MetricSchema:
    top = aws.topology
    return MetricSchema(
        aws.targets,
        AlbDimensions.from_arns(top.load_balancer_arn, top.stable_target_group_arn, top.canary_target_group_arn),
    )


def sums(aws, series: Series, start: float, end: float) -> dict[float, float]:
    """Period start -> Sum of ``series`` in [start, end), read with GetMetricStatistics."""
    datapoints = aws.get_client("cloudwatch").get_metric_statistics(
        Namespace=series.namespace,
        MetricName=series.name,
        Dimensions=series.metric()["Dimensions"],
        StartTime=datetime.fromtimestamp(start, timezone.utc),
        EndTime=datetime.fromtimestamp(end, timezone.utc),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return {d["Timestamp"].timestamp(): d["Sum"] for d in datapoints}


def counts(history) -> list[tuple]:
    return [
        (r.weights.canary,) + tuple((r.served[v].requests, r.served[v].errors, r.served[v].slow, r.served[v].dlq) for v in ("stable", "canary"))
        for r in history
    ]


# --- pure draws ------------------------------------------------------------------------


def test_poisson_and_binomial_draws_have_the_right_mean_and_variance():
    rng = random.Random(1)
    arrivals = [poisson(rng, 40.0) for _ in range(3000)]
    assert statistics.mean(arrivals) == pytest.approx(40.0, rel=0.03)
    assert statistics.variance(arrivals) == pytest.approx(40.0, rel=0.12)
    for p in (0.02, 0.7):  # both sides of the p > 0.5 reflection
        draws = [binomial(rng, 500, p) for _ in range(3000)]
        assert statistics.mean(draws) == pytest.approx(500 * p, rel=0.03)
        assert statistics.variance(draws) == pytest.approx(500 * p * (1 - p), rel=0.12)
    assert binomial(rng, 10, 0.0) == 0 and binomial(rng, 10, 1.0) == 10


def test_latency_summary_matches_the_documented_p99_and_slow_share():
    profile = BehaviourProfile(median_ms=200, sigma=0.8)
    draw = profile.draw(random.Random(2), 40_000, slow_threshold_ms=1000)
    assert draw.latency_p99_ms == pytest.approx(profile.p99_ms, rel=0.05)
    assert profile.p99_ms == pytest.approx(200 * 6.43, rel=0.01)  # exp(2.326 * 0.8)
    assert draw.slow / draw.requests == pytest.approx(profile.slow_probability(1000), rel=0.1)
    assert draw.latency_min_ms <= draw.latency_avg_ms <= draw.latency_p99_ms <= draw.latency_max_ms


def test_bursty_errors_are_overdispersed_with_the_same_mean():
    n, p = 200, 0.05
    plain = BehaviourProfile(error_probability=p, sigma=0)
    bursty = plain.model_copy(update={"burst_concentration": 10.0})
    rng = random.Random(3)
    plain_errors = [plain.draw(rng, n, 1e9).errors for _ in range(600)]
    bursty_errors = [bursty.draw(rng, n, 1e9).errors for _ in range(600)]
    binomial_variance = n * p * (1 - p)
    assert statistics.mean(bursty_errors) == pytest.approx(n * p, rel=0.12)
    assert statistics.variance(plain_errors) == pytest.approx(binomial_variance, rel=0.25)
    # Documented factor 1 + (n - 1) / (k + 1) = 19.1; a loose bound keeps the test stable.
    assert statistics.variance(bursty_errors) > 8 * binomial_variance


# --- against the embedded AWS ----------------------------------------------------------


def test_each_service_gets_the_profile_of_the_image_it_runs(aws):
    deploy_canary(aws, "example/edit:2.0.0")
    set_weights(aws, 50)
    sim = simulator(aws, {"example/edit:2.0.0": BehaviourProfile(error_probability=1.0)}, rps=10)
    (tick,) = sim.run_ticks(1)
    assert tick.images == {"stable": aws.topology.initial_image, "canary": "example/edit:2.0.0"}
    assert tick.served["stable"].errors == 0
    assert tick.served["canary"].errors == tick.served["canary"].requests > 0
    sim.set_profile("example/edit:2.0.0", HEALTHY)
    (tick,) = sim.run_ticks(1)
    assert tick.served["canary"].requests > 0 and tick.served["canary"].errors == 0


def test_split_follows_the_live_weights_and_ticks_follow_each_other(aws):
    deploy_canary(aws, "example/edit:2.0.0")
    sim = simulator(aws, rps=50)
    first = sim.run_ticks(2)
    set_weights(aws, 25)
    later = sim.run_ticks(2)
    assert [r.weights for r in first + later] == [Weights.canary_at(w) for w in (0, 0, 25, 25)]
    assert all(r.served["canary"].requests == 0 for r in first)
    for r in later:  # 3000 requests a tick, 25% to the canary: well within 20..30%
        share = r.served["canary"].requests / (r.served["canary"].requests + r.served["stable"].requests)
        assert 0.20 < share < 0.30
    assert [(r.start, r.end) for r in first + later] == [(ORIGIN + 60 * i, ORIGIN + 60 * (i + 1)) for i in range(4)]


def test_same_seed_and_weights_give_the_same_counts(aws):
    deploy_canary(aws, "example/edit:2.0.0")
    profile = BehaviourProfile(error_probability=0.1, dlq_rate=0.01, median_ms=900, sigma=1.0)

    def run(seed: int, start: int) -> list[tuple]:
        set_weights(aws, 0)
        sim = simulator(aws, default=profile, seed=seed, start=start)
        sim.run_ticks(1)
        set_weights(aws, 50)
        sim.run_ticks(2)
        return counts(sim.history)

    assert run(7, ORIGIN) == run(7, ORIGIN + 3600)
    assert run(7, ORIGIN) != run(8, ORIGIN)


def test_registered_targets_follow_each_services_desired_count(aws):
    router = AlbRouter(aws.get_client("elbv2"), aws.targets)
    sim = simulator(aws)
    deploy_canary(aws, "example/edit:2.0.0", desired=3)
    sim.run_ticks(1)
    assert (router.healthy_targets("stable"), router.healthy_targets("canary")) == (2, 3)
    aws.get_client("ecs").update_service(cluster=aws.targets.cluster, service=aws.targets.canary_service, desiredCount=1)
    aws.get_client("ecs").update_service(cluster=aws.targets.cluster, service=aws.targets.stable_service, desiredCount=4)
    sim.run_ticks(1)
    assert (router.healthy_targets("stable"), router.healthy_targets("canary")) == (4, 1)


def test_a_version_without_targets_is_answered_by_the_alb_not_served(aws):
    set_weights(aws, 50)  # the canary service is provisioned with 0 tasks
    sim = simulator(aws, rps=10)
    (tick,) = sim.run_ticks(1)
    assert tick.served["canary"].requests == 0 and tick.unserved["canary"] > 0
    assert sums(aws, schema(aws).unserved(), ORIGIN, ORIGIN + 60) == {ORIGIN: tick.unserved["canary"]}


def test_dead_letters_really_reach_the_dlqs(aws):
    sim = simulator(aws, default=BehaviourProfile(error_probability=0.0, dlq_rate=0.05), rps=10)
    ticks = sim.run_ticks(2)
    sqs = aws.get_client("sqs")
    for name, url in aws.topology.dlq_urls.items():
        depth = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
        assert depth == sum(t.dlq_sent[name] for t in ticks) == ticks[-1].dlq_visible[name]
    assert sum(ticks[-1].dlq_visible.values()) == sum(t.served["stable"].dlq for t in ticks) > 0


def test_an_empty_dead_letter_queue_has_its_zero_depth_published_as_sqs_does(aws):
    """SQS publishes an active queue's depth every period, zeros included; the monitor takes a
    queue with no reading before its window as of unknown depth, so the demo's first dead letters
    were said "(starting depth unknown)" rather than new ones."""
    sim = simulator(aws, rps=10)  # HEALTHY: no dead letters
    sim.run_ticks(2)
    for name, series in schema(aws).dlq_series().items():
        assert sums(aws, series, ORIGIN, ORIGIN + 120) == {ORIGIN: 0.0, ORIGIN + 60: 0.0}, name


def test_the_thread_publishes_ticks_once_they_have_ended_and_never_before(aws):
    clock = ScaledClock(speed=600.0, anchor=time.time())  # a 60 s tick every 0.1 s of wall time
    sim = simulator(aws, clock=clock, start=None, rps=5)
    with sim:
        deadline = time.monotonic() + 20
        while len(sim.history) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)  # waits for real progress of the thread; the clock is not faked
    stopped_at = clock.now()  # after stop(): nothing can be published later
    published = list(sim.history)
    assert len(published) >= 3 and not sim.errors
    assert all(r.end <= r.published_at for r in published)
    assert published[-1].end <= stopped_at
    assert [r.start for r in published] == [published[0].start + 60 * i for i in range(len(published))]
    # Nothing in CloudWatch after the last tick that had ended.
    requests = sums(aws, schema(aws).version_series("stable")["requests"], published[0].start, stopped_at + 3600)
    assert max(requests) + 60 <= stopped_at
    assert sum(requests.values()) == sum(r.served["stable"].requests for r in published)


def test_a_read_between_the_simulators_puts_sees_no_request_count_without_its_latency(aws):
    """A period's request count (the load balancer's namespace) read before its latency (the
    application's) made the rollout's preflight warn that the namespace held no latency metrics:
    `rollway demo`, whose ticks come every half second, printed that false warning most runs."""
    from rollway.aws.cloudwatch import CloudWatchMetrics

    reads = []
    reader = CloudWatchMetrics(aws.get_client("cloudwatch"), aws.targets, router=aws.topology)

    class ReadAfterEachPut:
        def __init__(self, client):
            self._client = client

        def put_metric_data(self, **kwargs):
            answer = self._client.put_metric_data(**kwargs)
            reads.append(reader.observe(ORIGIN, ORIGIN + 60).intervals[0].baseline)
            return answer

        def __getattr__(self, name):
            return getattr(self._client, name)

    def get_client(service):
        client = aws.get_client(service)
        return ReadAfterEachPut(client) if service == "cloudwatch" else client

    sim = TrafficSimulator(get_client, aws.targets, aws.topology, SystemClock(), {}, HEALTHY, total_rps=20.0,
                           seed=0, start=ORIGIN)
    sim.run_ticks(1)
    seen = [s for s in reads if s is not None and s.requests]
    assert seen, "no read saw the tick's requests"
    assert all(s.latency_p99_ms is not None for s in seen), reads
