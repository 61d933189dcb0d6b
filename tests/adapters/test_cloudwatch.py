"""CloudWatchMetrics reads back, through moto's server, exactly what the simulator published."""

from __future__ import annotations

import socket
import pytest

from blocks.credentials import client_factory, credentials_for_endpoint
from rollway.aws.cloudwatch import CloudWatchMetrics, window_utc
from rollway.aws.metric_schema import AlbDimensions
from rollway.sim.profiles import BehaviourProfile
from tests.adapters.test_traffic import ORIGIN, deploy_canary, schema, set_weights, simulator, sums

CANARY_IMAGE = "example/edit:2.0.0"
_ARN_PREFIX = "arn:aws:elasticloadbalancing:us-west-2:123456789012"
_LB_ARN = f"{_ARN_PREFIX}:loadbalancer/app/alb/50dc6c495c0c9188"
_CANARY_ARN = f"{_ARN_PREFIX}:targetgroup/canary/943f017f100becff"
_DIMENSIONS = AlbDimensions.from_arns(_LB_ARN, f"{_ARN_PREFIX}:targetgroup/stable/73e2d6bc24d8a067", _CANARY_ARN)


def sqs_reading(aws, queue: str, t: float, value: float, metric: str = "ApproximateNumberOfMessagesVisible") -> None:
    """One of ``queue``'s SQS metrics at ``t``, as SQS publishes them (once a minute)."""
    from datetime import datetime, timezone

    aws.get_client("cloudwatch").put_metric_data(Namespace="AWS/SQS", MetricData=[{
        "MetricName": metric, "Dimensions": [{"Name": "QueueName", "Value": queue}],
        "Timestamp": datetime.fromtimestamp(t, timezone.utc), "Value": value, "Unit": "Count"}])


def metrics_for(aws, client=None, **kwargs) -> CloudWatchMetrics:
    return CloudWatchMetrics(client or aws.get_client("cloudwatch"), aws.targets, router=aws.topology, **kwargs)


@pytest.fixture
def get_metric_data_calls(aws):
    """How many GetMetricData calls the shared cloudwatch client makes."""
    calls: list[str] = []
    client = aws.get_client("cloudwatch")

    def count(**_):
        calls.append("GetMetricData")

    client.meta.events.register("before-call.cloudwatch.GetMetricData", count)
    yield calls
    client.meta.events.unregister("before-call.cloudwatch.GetMetricData", count)


def test_reads_back_exactly_what_the_simulator_published(aws, get_metric_data_calls):
    deploy_canary(aws, CANARY_IMAGE)
    set_weights(aws, 30)
    slow = BehaviourProfile(error_probability=0.02, median_ms=1500, sigma=0.6)
    sim = simulator(aws, {CANARY_IMAGE: slow}, default=BehaviourProfile(error_probability=0.01), rps=20)
    ticks = sim.run_ticks(4)

    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 4 * 60)

    assert observation.error is None and get_metric_data_calls == ["GetMetricData"]
    assert [i.t for i in observation.intervals] == [t.end for t in ticks]
    for tick, interval in zip(ticks, observation.intervals):
        for version, read in (("stable", interval.baseline), ("canary", interval.canary)):
            expected = tick.sample(version)
            assert (read.requests, read.errors, read.slow) == (expected.requests, expected.errors, expected.slow)
            assert read.latency_avg_ms == pytest.approx(expected.latency_avg_ms, rel=1e-9)
            assert read.latency_p99_ms == pytest.approx(expected.latency_p99_ms, rel=1e-9)
    assert observation.totals("canary").slow > 0  # the slow canary shows as slow counts


def test_a_version_without_traffic_is_no_data_and_absent_5xx_reads_as_zero(aws):
    deploy_canary(aws, CANARY_IMAGE)
    sim = simulator(aws, default=BehaviourProfile(error_probability=0.0), rps=10)
    sim.run_ticks(2)  # weights 100/0

    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 120)

    assert [i.canary for i in observation.intervals] == [None, None]
    assert [i.baseline.requests for i in observation.intervals] == [t.served["stable"].requests for t in sim.history]
    assert all(i.baseline.errors == 0 for i in observation.intervals)
    # ... and no 5xx datapoint exists at all, as on AWS.
    assert sums(aws, schema(aws).version_series("stable")["errors"], ORIGIN, ORIGIN + 120) == {}


def test_a_five_percent_error_profile_reads_as_about_five_percent(aws):
    sim = simulator(aws, default=BehaviourProfile(error_probability=0.05, sigma=0.1), rps=50)
    sim.run_ticks(6)  # ~18,000 requests: 3 standard deviations is +-0.5 points

    stable = metrics_for(aws).observe(ORIGIN, ORIGIN + 360).totals("baseline")

    assert stable.requests == sum(t.served["stable"].requests for t in sim.history)
    assert 0.04 < stable.errors / stable.requests < 0.06


def test_dlq_depth_is_the_deepest_reading_summed_over_the_dlqs(aws):
    sim = simulator(aws, default=BehaviourProfile(error_probability=0.0, dlq_rate=0.02), rps=10)
    sim.run_ticks(3)

    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 180)

    # Nothing drains the DLQs, so the deepest reading is the last one.
    assert observation.dlq_messages == sum(sim.history[-1].dlq_visible.values()) > 0


def test_the_dead_letter_alert_names_the_queues_that_hold_messages(aws):
    """The alert said "3 message(s) in the dead-letter queues" of three: on-call had to open each."""
    from rollway.judge.guardrails import check
    from rollway.spec import Guardrails

    sim = simulator(aws, default=BehaviourProfile(error_probability=0.0, dlq_rate=0.02), rps=10)
    sim.run_ticks(3)

    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 180)

    holding = {name: n for name, n in sim.history[-1].dlq_visible.items() if n}
    assert {d.queue: d.deepest for d in observation.dead_letters if d.deepest} == holding
    # From the depth in the first period.
    assert {d.queue: d.first for d in observation.dead_letters} == {
        name: sim.history[0].dlq_visible[name] for name in holding}
    [alert] = check(Guardrails(), observation, monitoring=True).alerts
    assert all(f"{name}: {sim.history[0].dlq_visible[name]} → {n}" in alert.message
               for name, n in holding.items()), alert.message


def test_dead_letters_someone_is_reading_still_count_as_in_the_queue(aws):
    """A DLQ's messages that someone has received (on-call looking at them, a tool redriving
    them) are in flight, not visible: only ApproximateNumberOfMessagesVisible was read, so they
    vanished from the depth, and new ones arriving meanwhile went unannounced."""
    from rollway.judge.guardrails import check
    from rollway.spec import Guardrails

    dlq = aws.targets.dlq_names[0]
    sqs_reading(aws, dlq, ORIGIN, 5)  # held before the stage
    # Someone received all 5, and 2 more arrived: 7 in the queue, none of them visible.
    sqs_reading(aws, dlq, ORIGIN + 60, 0)
    sqs_reading(aws, dlq, ORIGIN + 60, 7, metric="ApproximateNumberOfMessagesNotVisible")

    observation = metrics_for(aws).observe(ORIGIN, ORIGIN + 120)

    assert [(d.queue, d.first, d.deepest) for d in observation.dead_letters] == [(dlq, 5, 7)]
    assert observation.dlq_messages == 7
    [alert] = check(Guardrails(), observation, monitoring=False).alerts
    assert "2 new message(s)" in alert.message and f"{dlq}: 5 → 7" in alert.message, alert.message


def test_a_dlq_whose_first_reading_of_the_stage_is_missing_is_not_announced_as_new_dead_letters(aws):
    """SQS skips a minute now and then (and publishes late). A DLQ that held 7 old failures, with
    no reading in the stage's first period, was taken to have held none then: "7 new message(s)
    in the dead-letter queues since the stage began (dlq: 0 → 7)", about a healthy canary that
    sent none. The depth before the stage is its reading just before, when the first is missing."""
    from rollway.judge.guardrails import check
    from rollway.spec import Guardrails

    dlq = aws.targets.dlq_names[0]
    start = ORIGIN + 7 * 86400

    def visible(t, value):
        sqs_reading(aws, dlq, t, value)

    visible(start - 60, 7)  # the old failures, the minute before the stage
    # no reading in the stage's first period
    visible(start + 60, 7)
    visible(start + 120, 9)  # two new ones

    observation = metrics_for(aws).observe(start, start + 180)

    assert [(d.queue, d.first, d.deepest) for d in observation.dead_letters] == [(dlq, 7, 9)]
    assert observation.dlq_messages == 9, "the depth is the window's own, not the minute before it"
    [alert] = check(Guardrails(), observation, monitoring=False).alerts
    assert "2 new message(s)" in alert.message and f"{dlq}: 7 → 9" in alert.message, alert.message
    # Only the window's own periods are intervals.
    assert [i.t for i in observation.intervals] == [start + 60, start + 120, start + 180]


def test_only_whole_periods_inside_the_window_are_returned(aws, get_metric_data_calls):
    sim = simulator(aws, rps=5)
    sim.run_ticks(3)
    source = metrics_for(aws)

    # The first and the last period are only partly inside [start, end).
    observation = source.observe(ORIGIN + 30, ORIGIN + 170)
    assert [i.t for i in observation.intervals] == [ORIGIN + 120]
    assert observation.intervals[0].baseline.requests == sim.history[1].served["stable"].requests
    # A window shorter than a period asks nothing.
    assert source.observe(ORIGIN + 10, ORIGIN + 50).intervals == ()
    assert get_metric_data_calls == ["GetMetricData"]


def test_a_failed_query_is_an_observation_with_the_error(targets):
    with socket.socket() as probe:  # a loopback port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = client_factory(credentials_for_endpoint(f"http://127.0.0.1:{closed_port}", targets.region))

    observation = CloudWatchMetrics(unreachable("cloudwatch"), targets, dimensions=_DIMENSIONS).observe(ORIGIN, ORIGIN + 120)

    assert observation.intervals == ()
    assert str(closed_port) in observation.error and "unavailable" in observation.error


def test_arns_that_name_no_target_group_are_an_error_not_an_exception(targets):
    class Arns:
        load_balancer_arn = _LB_ARN
        stable_target_group_arn = "not-an-arn"
        canary_target_group_arn = _CANARY_ARN

    observation = CloudWatchMetrics(object(), targets, router=Arns()).observe(ORIGIN, ORIGIN + 60)

    assert "'not-an-arn' is not a target group ARN" in observation.error


def test_exactly_one_source_of_dimensions_is_required(targets):
    with pytest.raises(ValueError, match="exactly one"):
        CloudWatchMetrics(object(), targets)
    with pytest.raises(ValueError, match="exactly one"):
        CloudWatchMetrics(object(), targets, router=object(), dimensions=_DIMENSIONS)


def test_a_throttled_read_says_its_window_in_utc_and_cloudwatchs_answer(targets):
    """The stage's log and its pause showed "metrics for [1800000000, 1800000120) unavailable":
    epoch seconds, which on-call had to convert to find the minutes that were not judged."""
    from datetime import datetime, timezone

    from botocore.exceptions import ClientError

    class Throttled:
        def get_metric_data(self, **_):
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetMetricData")

    start = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc).timestamp()
    observation = CloudWatchMetrics(Throttled(), targets, dimensions=_DIMENSIONS).observe(start, start + 300)

    assert observation.intervals == ()
    assert observation.error.startswith("metrics for 2027-01-15 08:00:00 to 08:05:00 UTC unavailable: "), observation.error
    assert "Rate exceeded" in observation.error, observation.error


class _Unanswering:
    """A CloudWatch that takes the call and never answers (until the test lets it go)."""

    def __init__(self):
        import threading

        self.release = threading.Event()
        self.calls = 0

    def get_metric_data(self, **_):
        self.calls += 1
        from botocore.exceptions import ClientError

        self.release.wait(5)
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetMetricData")


def test_a_read_cloudwatch_does_not_answer_ends_at_its_bound_as_unreadable_metrics(targets, caplog):
    """A GetMetricData on the rollout's client (six attempts of 10 s) held a tick for about 70 s,
    silent; now it ends at the read's bound, says it waited, and the stage reads again."""
    import logging

    silent = _Unanswering()
    try:
        with caplog.at_level(logging.INFO, logger="rollway.aws.cloudwatch"):
            observation = CloudWatchMetrics(silent, targets, dimensions=_DIMENSIONS, read_seconds=0.2,
                                            said_every=0.05).observe(ORIGIN, ORIGIN + 120)
    finally:
        silent.release.set()

    assert observation.intervals == ()
    assert observation.error.endswith("unavailable: CloudWatch did not answer within 0.2 s"), observation.error
    assert f"reading the metrics for {window_utc(ORIGIN, ORIGIN + 120)}: still waiting for CloudWatch" in caplog.text


def test_reads_go_to_a_client_bounded_at_the_reads_own_bound(targets):
    bounds: list[float] = []
    silent = _Unanswering()
    silent.release.set()

    def reads(seconds):
        bounds.append(seconds)
        return silent

    observation = CloudWatchMetrics(object(), targets, dimensions=_DIMENSIONS, reads=reads,
                                    read_seconds=12).observe(ORIGIN, ORIGIN + 120)

    assert bounds == [12] and silent.calls == 1
    assert "Rate exceeded" in observation.error


def test_the_environment_bounds_cloudwatch_reads_by_the_final_looks_gap(targets):
    from rollway.aws.environment import aws_environment
    from rollway.decide import FINAL_READ_RETRY_SECONDS

    def get_client(service):
        return object()

    get_client.reading = lambda seconds: (lambda service: object())

    metrics = aws_environment(get_client, targets, clock=None).metrics

    assert metrics.read_seconds == FINAL_READ_RETRY_SECONDS


def test_a_dlq_with_no_reading_before_the_window_is_said_to_have_an_unknown_starting_depth(aws):
    """SQS stops publishing a queue's metrics once nobody has called it for six hours: a DLQ holding
    40 old failures has no reading for hours, until one more message arrives. Its first reading in
    the window (41) was taken against a depth of 0 before it: "41 new message(s) ... (dlq: 0 → 41)"
    about a canary that sent one. The alert still comes, saying the depth before is unknown."""
    from rollway.judge.guardrails import check
    from rollway.spec import Guardrails

    dlq = aws.targets.dlq_names[0]
    start = ORIGIN + 7 * 86400
    sqs_reading(aws, dlq, start - 6 * 3600, 40)  # its last reading, hours before the window
    sqs_reading(aws, dlq, start + 120, 41)  # the message that woke it up
    sqs_reading(aws, dlq, start + 180, 41)

    observation = metrics_for(aws).observe(start, start + 240)

    assert [(d.queue, d.first, d.deepest) for d in observation.dead_letters] == [(dlq, None, 41)]
    for monitoring, began in ((False, "the stage"), (True, "monitoring")):
        [alert] = check(Guardrails(), observation, monitoring=monitoring).alerts
        assert alert.message.startswith("41 message(s) (starting depth unknown) in the dead-letter queues"), alert
        assert "new" not in alert.message.split("(")[0] and "0 → 41" not in alert.message, alert.message
        assert f"{dlq}: 41 (starting depth unknown)" in alert.message, alert.message
        assert f"no CloudWatch reading of it from before {began} began" in alert.message, alert.message


class _Answering:
    """A CloudWatch whose one answer is ``shaped(queries)``: each query's result, as its answer lists them."""

    def __init__(self, shaped):
        self.shaped = shaped

    def get_metric_data(self, MetricDataQueries, **_):
        results = [{"Id": q["Id"], "StatusCode": "Complete", "Timestamps": [], "Values": []} for q in MetricDataQueries]
        return {"MetricDataResults": self.shaped(results)}


def test_an_answer_naming_a_query_not_asked_is_unreadable_metrics_naming_it(targets):
    """An answer carrying an Id the read did not ask for raised a bare KeyError ('stray') out of the
    look, a traceback in the stage's or the window's run instead of a look that could not read."""
    from datetime import datetime, timezone

    stray = _Answering(lambda results: results + [{"Id": "stray", "StatusCode": "Complete", "Values": [3.0],
                                                   "Timestamps": [datetime.fromtimestamp(ORIGIN, timezone.utc)]}])
    observation = CloudWatchMetrics(stray, targets, dimensions=_DIMENSIONS).observe(ORIGIN, ORIGIN + 120)
    assert observation.intervals == ()
    assert "'stray'" in observation.error and "did not ask for" in observation.error, observation.error


def test_an_answer_leaving_out_a_query_asked_is_unreadable_metrics_naming_the_metric(targets):
    """An answer without the canary's 5xx count read as a canary with no 5xx at all (absent means 0),
    and a failing release passed its look: it is a read that failed, naming the metric left out."""
    left_out = _Answering(lambda results: [r for r in results if r["Id"] != "canary_errors"])
    observation = CloudWatchMetrics(left_out, targets, dimensions=_DIMENSIONS).observe(ORIGIN, ORIGIN + 120)
    assert observation.intervals == ()
    assert "HTTPCode_Target_5XX_Count" in observation.error and "canary" in observation.error, observation.error
    assert "left out" in observation.error, observation.error
