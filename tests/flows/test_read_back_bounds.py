"""The rollout's waits that read AWS back (the weights after a shift, the targets' health, ECS's
scale-up) end within their bound when the endpoint stops answering, and say which bound and
what was not read back.

Their reads were made on the run's clients: six attempts of 10 s each, kept for the writes (a
rollback's ModifyRule). A wait bounded at a second or two was held about a minute past its
bound, silent. Each test runs its wait in a thread of its own, given up on after
``GIVEN_UP_SECONDS``, so that a wait still held there fails the test rather than holding it.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Iterator

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters

from blocks.credentials import client_factory
import flows.engine as engine
import rollway.deadline
import flows.monitor as monitor
import flows.progressive as progressive
import tasks.traffic as traffic
from flows.canary import RolloutRefused, preflight
from flows.engine import canary_targets_if_unattributed, shift_to, wait_healthy
from flows.finalize import run_finalize
from flows.rollback import execute_rollback, rollback_overtaken
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.environment import aws_environment
from rollway.aws.errors import TargetNotFound
from rollway.clock import ClockSettings
from rollway.deadline import READ_BACK_MARGIN_SECONDS, ReadBackUnanswered, within
from rollway.decide import StageState
from rollway.ledger import RolloutRecord
from rollway.model import Interval, Observation, Weights
from rollway.spec import RolloutSpec, Stage
from tests.local_http import QuietHTTPServer

BOUND = 1.0  # each wait's bound here (seconds)
# The bound, the margin a wait may end past it, and a Prefect task run's own overhead, which on a
# busy machine (CI: three workers on two cores) is seconds. Past the bound, what these tests tell
# apart is a wait given up on from one held about a minute (the run's clients' six attempts of
# 10 s): a few seconds over on a loaded machine is not the failure they look for.
ENDS_WITHIN = BOUND + READ_BACK_MARGIN_SECONDS + 10.0
GIVEN_UP_SECONDS = 30.0  # well short of the run's clients' minute
SERVICE_IDS = {"elbv2": "ELASTIC_LOAD_BALANCING_V2", "ecs": "ECS"}


Answer = tuple[int, dict[str, str], bytes]
NO_ANSWER: Answer = (0, {}, b"")  # the connection is kept and nothing is sent on it


@contextmanager
def in_front_of(upstream: str, instead: Callable[[str], Answer | None],
                passed: Callable[[str, int], None] = lambda operation, status: None) -> Iterator[str]:
    """An endpoint on 127.0.0.1 in front of ``upstream`` (the embedded AWS) that passes each call
    on, unless ``instead(operation)`` answers it itself (``NO_ANSWER``: never); ``passed``
    hears of each call passed on, with the status it was answered."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            target = self.headers.get("X-Amz-Target", "")
            operation = target.rsplit(".", 1)[-1] if target else \
                next((p.split("=", 1)[1] for p in body.decode().split("&") if p.startswith("Action=")), "")
            answer = instead(operation)
            if answer is NO_ANSWER:
                return
            if answer is None:
                answer = forwarded(body, dict(self.headers.items()), self.path)
                passed(operation, answer[0])
            status, answer_headers, payload = answer
            self.send_response(status)
            for key, value in answer_headers.items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    def forwarded(body: bytes, headers: dict[str, str], path: str) -> Answer:
        headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        request = urllib.request.Request(upstream + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as refused:
            return refused.code, dict(refused.headers), refused.read()

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def holding(upstream: str, after: str, hold: str) -> Iterator[str]:
    """An endpoint in front of ``upstream`` that passes every call on until one of operation
    ``after`` has gone through, and from then on takes the connection of each ``hold`` call and
    never answers it: an API that took the write, then stopped answering."""

    def instead(operation: str) -> Answer | None:
        if operation == hold and seen.is_set():
            closed.wait()
            return NO_ANSWER
        return None

    def passed(operation: str, status: int) -> None:
        if operation == after and status == 200:
            seen.set()

    seen, closed = threading.Event(), threading.Event()
    with in_front_of(upstream, instead, passed) as url:
        try:
            yield url
        finally:
            closed.set()


def run_environment(aws, monkeypatch, targets=None, config: dict[str, Any] | None = None, **endpoints: str):
    """The ports on clients made as for a real account (no endpoint_url, no client config: the
    rollout's limits, unless ``config`` sets some in the block as a user would), their calls sent
    to the embedded AWS, those of ``endpoints``' services (``elbv2="http://..."``) to the endpoint
    given; on ``targets`` (the embedded AWS's by default)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
    for service, url in endpoints.items():  # botocore's service-specific variable names the service id
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{SERVICE_IDS[service]}", url)
    credentials = AwsCredentials(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=aws.targets.region,
                                 aws_client_parameters=AwsClientParameters(config=config))
    get_client = client_factory(credentials, region=aws.targets.region)
    return aws_environment(get_client, targets or aws.targets, ClockSettings(speed=1.0, anchor=time.time()).build())


def ended_soon(body: Callable[[], Any]) -> tuple[BaseException, float]:
    """The error ``body()`` raised inside a flow run, and how long ``body()`` took (infinite when
    given up on): the flow run's own start and end, seconds on a busy machine, are not the wait's."""
    times: list[float] = []

    def timed() -> Any:
        times.append(time.monotonic())
        try:
            return body()
        finally:
            times.append(time.monotonic())

    with pytest.raises(Exception) as raised:
        within(GIVEN_UP_SECONDS, lambda: flow(name="read-back-bound")(timed)())
    return raised.value, times[1] - times[0] if len(times) == 2 else math.inf


def spec(image: str) -> RolloutSpec:
    return RolloutSpec(image=image, stages=[Stage(weight=w, bake_seconds=60) for w in (10, 100)],
                       verify_timeout_seconds=BOUND, healthy_timeout_seconds=BOUND, scale_timeout_seconds=BOUND)


def test_a_rollback_moves_the_traffic_and_its_verification_ends_within_its_bound(aws, monkeypatch):
    """The ModifyRule goes through on the run's clients (its budget for throttling kept); the load
    balancer then stops answering DescribeRules, and the verification ends at verify_timeout_seconds,
    naming it, where it was held about a minute."""
    AlbRouter(aws.get_client("elbv2"), aws.targets).set_weights(Weights(stable=90, canary=10))
    with holding(aws.endpoint_url, after="ModifyRule", hold="DescribeRules") as elb:
        env = run_environment(aws, monkeypatch, elbv2=elb)
        error, took = ended_soon(lambda: execute_rollback(env, "error rate 7%", verify_timeout_seconds=BOUND))
    assert took < ENDS_WITHIN, (took, error)
    assert ("the load balancer's weights could not be read back within 1 s (verify_timeout_seconds): Elastic Load "
            "Balancing did not answer") in str(error), str(error)
    # The write landed: the users are on stable.
    assert AlbRouter(aws.get_client("elbv2"), aws.targets).get_weights() == Weights(stable=100, canary=0)


def test_a_health_wait_on_a_load_balancer_that_never_answers_ends_within_its_bound(
        aws, monkeypatch, silent_endpoint):
    """DescribeTargetHealth, a task retried twice, on the run's clients: minutes past the bound."""
    env = run_environment(aws, monkeypatch, elbv2=silent_endpoint)
    error, took = ended_soon(lambda: shift_to(env, spec("webordinary/edit:2.0.0"), 10, 1,
                                              Weights(stable=100, canary=0), actor="test", rollout="r-1"))
    assert isinstance(error, ReadBackUnanswered), repr(error)
    assert took < ENDS_WITHIN, took
    assert str(error) == ("the canary target group's healthy targets could not be read back within 1 s "
                          "(healthy_timeout_seconds): Elastic Load Balancing did not answer")


def test_a_scale_wait_on_an_ecs_that_stops_answering_ends_within_its_bound(aws, monkeypatch):
    """The canary's UpdateService goes through; ECS then stops answering DescribeServices, and the
    scale wait ends at scale_timeout_seconds, naming it."""
    with holding(aws.endpoint_url, after="UpdateService", hold="DescribeServices") as ecs:
        env = run_environment(aws, monkeypatch, ecs=ecs)
        error, took = ended_soon(lambda: shift_to(env, spec("webordinary/edit:2.0.0"), 10, 1,
                                                  Weights(stable=100, canary=0), actor="test", rollout="r-1"))
    assert isinstance(error, ReadBackUnanswered), repr(error)
    assert took < ENDS_WITHIN, took
    assert str(error) == (f"the state of ECS service(s) {aws.targets.canary_service} could not be read back within "
                          "1 s (scale_timeout_seconds): ECS did not answer")


def test_a_health_wait_that_ran_out_fails_the_run_naming_its_bound_not_as_a_prefect_timeout(
        aws, monkeypatch, silent_endpoint):
    """Its error was a TimeoutError, which Prefect takes for its own timeout: the run showed
    "TimedOut: Flow run failed due to timeout: ReadBackUnanswered(...)" though it set no
    timeout_seconds, and its exception was not persisted for the hooks to read back."""
    env = run_environment(aws, monkeypatch, elbv2=silent_endpoint)

    @flow(name="bounded-health-wait", persist_result=True)
    def rollout() -> None:
        shift_to(env, spec("webordinary/edit:2.0.0"), 10, 1, Weights(stable=100, canary=0), actor="test",
                 rollout="r-1")

    state = rollout(return_state=True)
    with get_client(sync_client=True) as client:  # as the UI, or a hook in another process, reads it
        stored = client.read_flow_run(state.state_details.flow_run_id).state

    said = ("the canary target group's healthy targets could not be read back within 1 s (healthy_timeout_seconds): "
            "Elastic Load Balancing did not answer")
    assert (stored.type.value, stored.name) == ("FAILED", "Failed"), (stored.name, stored.message)
    assert said in stored.message and "timeout:" not in stored.message, stored.message
    error = stored.result(raise_on_failure=False)  # what flows/hooks.py reads in another process
    assert isinstance(error, ReadBackUnanswered), repr(error)
    assert (error.bound, error.service) == ("healthy_timeout_seconds", "Elastic Load Balancing")


# The plain reads of the load balancer a stage depends on: on the run's clients, each held its
# caller about a minute when the load balancer stopped answering, saying nothing.

def test_the_drift_check_before_a_stage_on_a_load_balancer_that_never_answers_ends_within_its_bound(
        aws, monkeypatch, silent_endpoint):
    """The weights read before a shift or a promotion, to see that nobody else moved them."""
    env = run_environment(aws, monkeypatch, elbv2=silent_endpoint)
    error, took = ended_soon(lambda: engine._drift(env, Weights(stable=90, canary=10), BOUND))
    assert isinstance(error, ReadBackUnanswered), repr(error)
    assert took < ENDS_WITHIN, took
    assert str(error) == ("the load balancer's weights could not be read back within 1 s (verify_timeout_seconds): "
                          "Elastic Load Balancing did not answer")


LAG = 4.0  # the drift check's bound here (seconds)


def test_the_drift_check_reads_again_only_for_what_is_left_of_its_bound(aws, monkeypatch):
    """The weights differ at the first read, which takes a while; the load balancer then stops
    answering. The reads made again get what is left of the bound, not a whole one more: the check
    waited up to about twice verify_timeout_seconds. Measured by the time left each read was given,
    which a busy machine only shortens (a task run's start, seconds there, is not the check's)."""
    AlbRouter(aws.get_client("elbv2"), aws.targets).set_weights(Weights(stable=80, canary=20))
    # Answered late, within a read's own attempt (a third of the bound: client_limits), other weights.
    armed, closed, first = threading.Event(), threading.Event(), 0.2 * LAG
    reads: list[str] = []

    def instead(operation: str) -> Answer | None:
        if operation != "DescribeRules" or not armed.is_set():
            return None
        if not reads:
            reads.append(operation)
            time.sleep(first)
            return None
        closed.wait()
        return NO_ANSWER

    given: list[float] = []  # the time left each read of the check was given (before the margin)
    bounded = traffic.read_back_within

    def read_back_within(left: float, work: Callable[[], Any], **named: Any) -> Any:
        given.append(left)
        return bounded(left, work, **named)

    monkeypatch.setattr(traffic, "read_back_within", read_back_within)
    with in_front_of(aws.endpoint_url, instead) as elb:
        env = run_environment(aws, monkeypatch, elbv2=elb)
        env.router.resolve()
        armed.set()
        try:
            error, took = ended_soon(lambda: engine._drift(env, Weights(stable=90, canary=10), LAG))
        finally:
            closed.set()
    assert isinstance(error, ReadBackUnanswered), repr(error)
    assert len(given) >= 2, given  # the first read, and one made again
    # The first read spent at least `first` of the bound; a read made again with a whole bound
    # more was given all of it.
    assert max(given[1:]) < LAG - first / 2, given
    # Ended near its bound (a busy machine's task runs add seconds), not held a minute.
    assert took < LAG + READ_BACK_MARGIN_SECONDS + 10.0, took
    assert str(error) == ("the load balancer's weights could not be read back within 4 s (verify_timeout_seconds): "
                          "Elastic Load Balancing did not answer")


def test_a_quiet_rollback_on_a_load_balancer_that_never_answers_ends_within_its_bound(
        aws, monkeypatch, silent_endpoint):
    """quiet_if_unchanged pages nobody twice, told by what the move's write read of the rule: no read
    of its own before anything moves. On a silent load balancer it ends within its bound at its first
    read, the stable target group's health."""
    env = run_environment(aws, monkeypatch, elbv2=silent_endpoint)
    error, took = ended_soon(lambda: execute_rollback(env, "rolled back already", verify_timeout_seconds=BOUND,
                                                      healthy_timeout_seconds=BOUND, quiet_if_unchanged=True))
    assert isinstance(error, ReadBackUnanswered), repr(error)
    assert took < ENDS_WITHIN, took
    assert str(error) == ("the stable target group's healthy targets could not be read back within 1 s "
                          "(healthy_timeout_seconds): Elastic Load Balancing did not answer")


def test_the_guardrails_health_read_on_a_load_balancer_that_never_answers_ends_within_its_bound(
        aws, monkeypatch, silent_endpoint, caplog):
    """Read when load-balancer 5xx have no request count to set them against: unknown, and said."""
    env = run_environment(aws, monkeypatch, elbv2=silent_endpoint)
    stray = Observation(start=0.0, end=60.0, intervals=(Interval(t=60.0, unserved=3),))
    took: list[float] = []

    def read() -> int | None:
        began = time.monotonic()  # within the flow run: its own start and end are not the read's
        try:
            return canary_targets_if_unattributed(env, stray, monitoring=False, seconds=BOUND)
        finally:
            took.append(time.monotonic() - began)

    healthy = within(GIVEN_UP_SECONDS, lambda: flow(name="guardrail-read")(read)())
    assert healthy is None
    assert took[0] < ENDS_WITHIN, took
    assert ("the canary target group's healthy targets could not be read back within 1 s (verify_timeout_seconds): "
            "Elastic Load Balancing did not answer") in caplog.text, caplog.text


@contextmanager
def failing_after(upstream: str, operation: str, calls: int) -> Iterator[tuple[str, list[float]]]:
    """An endpoint in front of ``upstream`` that passes every call on, but answers ``operation``
    with an error at once after its first ``calls`` calls: an API that started refusing a read in
    the middle of a wait. Yields the endpoint and the times (monotonic) it refused.

    Counted in calls, not seconds: on a busy machine a wait's looks come late, and a refusal
    meant for its last second found no look there."""
    asked_at: list[float] = []
    refused: list[float] = []

    def instead(asked: str) -> Answer | None:
        if asked != operation:
            return None
        asked_at.append(time.monotonic())
        if len(asked_at) <= calls:
            return None
        refused.append(asked_at[-1])
        return 400, {"Content-Type": "text/xml"}, (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>RequestExpired</Code><Message>Request has expired"
            b"</Message></Error><RequestId>1</RequestId></ErrorResponse>")

    with in_front_of(upstream, instead) as url:
        yield url, refused


def test_a_health_look_refused_at_once_near_the_deadline_ends_the_wait_within_its_bound(aws, monkeypatch):
    """A look made with less than the pause before another left (all of a 1-s wait's but its
    first) is answered with an error at once (one a second ask could get past): it was asked
    again a second later, twice, and the wait ended two seconds past its bound."""
    with failing_after(aws.endpoint_url, "DescribeTargetHealth", calls=1) as (elb, refused):
        env = run_environment(aws, monkeypatch, elbv2=elb)

        def waited() -> tuple[BaseException, float]:
            began = time.monotonic()
            with pytest.raises(Exception) as raised:
                wait_healthy(env, "canary", BOUND)
            return raised.value, time.monotonic() - began

        error, took = within(GIVEN_UP_SECONDS, flow(name="health-wait")(waited))
    assert took < ENDS_WITHIN, took
    if not refused:
        # Under load the first look's task run outlasted the 1-s bound: no second look was made,
        # and the wait ended on its bound without asking again (CI saw its first look take 2.5 s),
        # either with that look's answer (no healthy target) or with the look itself unanswered
        # within the bound (a machine with load 19 kept its read past it).
        ended_on_its_bound = ("no healthy targets after 1 s", "could not be read back within 1 s")
        assert any(words in str(error) for words in ended_on_its_bound), repr(error)
        return
    assert "RequestExpired" in str(error), repr(error)
    # The first refusal ends the wait. Counted, not timed: on a busy machine the wall time of the
    # wait's task runs says little.
    assert len(refused) == 1, f"asked again after a refusal near the bound: {len(refused)} refusals"


# The plain reads of the weights a run waits on before it acts (a run's first stage, a resumed
# run's reconcile, the preflight, the monitor's decommission, a finalize, a rollback's looks):
# on the run's clients, each held its run about a minute when the load balancer stopped
# answering, saying nothing.

WEIGHTS_UNREAD = ("the load balancer's weights could not be read back within 1 s (verify_timeout_seconds): "
                  "Elastic Load Balancing did not answer")


def _stages_started(env, aws) -> Any:
    """The weights read as a run's stages start (a fresh run's, or a resumed one's)."""
    return engine.run_stages(env, spec("webordinary/edit:2.0.0"), state=StageState(), stable_desired=1,
                             approver=None, rollback=None, rollout="r-1")


def _resume_reconciled(env, aws) -> Any:
    """The weights read to see that the ledger and the load balancer agree before a resume acts."""
    policy = spec("webordinary/edit:2.0.0")
    record = RolloutRecord(service=aws.targets.canary_service, rollout_id="r-1", image=policy.image,
                           spec_json=policy.model_dump_json())
    return progressive.reconcile(env, policy, record, owner="test", actor="test", adopt_live_weights=False,
                                 lease_seconds=60)


def _monitor_looked_for_a_rollback(env, aws) -> Any:
    """Made before and after the old service is scaled down: a rollback since keeps it."""
    return monitor._rollback_since(env, BOUND)


@pytest.mark.parametrize("read", [_stages_started, _resume_reconciled, _monitor_looked_for_a_rollback],
                         ids=["run-stages", "reconcile", "monitor"])
def test_a_runs_read_of_the_weights_on_a_load_balancer_that_never_answers_ends_within_its_bound(
        aws, monkeypatch, silent_endpoint, read):
    env = run_environment(aws, monkeypatch, elbv2=silent_endpoint)
    error, took = ended_soon(lambda: read(env, aws))
    assert isinstance(error, ReadBackUnanswered), repr(error)
    assert took < ENDS_WITHIN, took
    assert str(error) == WEIGHTS_UNREAD


def test_a_preflight_on_a_load_balancer_that_stops_answering_refuses_within_its_bound(aws, monkeypatch):
    """The load balancer is looked up; then it stops answering DescribeRules: the run is refused
    (nothing was written) at verify_timeout_seconds, naming it."""
    with holding(aws.endpoint_url, after="DescribeRules", hold="DescribeRules") as elb:
        env = run_environment(aws, monkeypatch, elbv2=elb)
        # Looked up on the run's router before the preflight, which keeps what it finds there: made
        # within the preflight's bound of 1 s, the lookups through this endpoint took longer on a
        # loaded machine, and the run was refused for them, not for the weights held here (the
        # lookups' own bound has its test, `..._never_answers_its_lookups_refuses_within_its_bound`).
        env.router.resolve()
        error, took = ended_soon(lambda: preflight(env, spec("webordinary/edit:2.0.0")))
    assert isinstance(error, RolloutRefused), repr(error)
    assert took < ENDS_WITHIN, took
    assert str(error) == f"refused before any write: {WEIGHTS_UNREAD}"


def test_a_finalize_on_a_load_balancer_that_never_answers_stops_within_its_bound(
        aws, monkeypatch, silent_endpoint):
    """Its first reads, before anything moves: the run stops saying nothing was changed."""
    env = run_environment(aws, monkeypatch, elbv2=silent_endpoint)
    error, took = ended_soon(lambda: run_finalize(env, actor="test", unrecorded=True, verify_timeout_seconds=BOUND))
    assert took < ENDS_WITHIN, (took, error)
    assert WEIGHTS_UNREAD in str(error), str(error)
    assert "Nothing was changed" in str(error), str(error)


def test_a_quiet_restore_after_an_overtaken_shift_starts_within_its_bound_on_a_silent_load_balancer(
        aws, monkeypatch, silent_endpoint):
    """The weights are read before the traffic is put back, only for the notice after it: on a
    load balancer that stopped answering, the restore waited about a minute for it."""
    env = run_environment(aws, monkeypatch, elbv2=silent_endpoint)
    began: list[float] = []  # within the flow run: its own start is not the restore's wait
    called: list[float] = []

    def restore(reason: str, **options: Any) -> None:
        called.append(time.monotonic() - began[0])
        raise RuntimeError("the restore's own calls are not this test's")

    def overtaken() -> Any:
        began.append(time.monotonic())
        return rollback_overtaken(env, "shift overtaken", actor="test", rollout=None, rollback=restore,
                                  verify_timeout_seconds=BOUND)

    error, _ = ended_soon(overtaken)
    assert called and called[0] < ENDS_WITHIN, (called, error)


LOOKUPS_UNREAD = ("the load balancer, its listener, rule and target groups could not be read back within 1 s "
                  "(verify_timeout_seconds): Elastic Load Balancing did not answer")


def test_a_preflight_on_a_load_balancer_that_never_answers_its_lookups_refuses_within_its_bound(
        aws, monkeypatch, silent_endpoint):
    """The load balancer, listener, target groups and rule are looked up before anything else: on
    the run's clients that held the run's start about a minute, silent, where every other read
    before a stage ends at verify_timeout_seconds."""
    env = run_environment(aws, monkeypatch, elbv2=silent_endpoint)
    error, took = ended_soon(lambda: preflight(env, spec("webordinary/edit:2.0.0")))
    assert isinstance(error, RolloutRefused), repr(error)
    assert isinstance(error.__cause__, ReadBackUnanswered), repr(error.__cause__)
    assert took < ENDS_WITHIN, took
    assert str(error) == f"refused before any write: {LOOKUPS_UNREAD}"


def test_the_lookups_a_preflight_made_within_its_bound_are_kept_for_the_writes(aws, monkeypatch):
    """Made on the bounded reads, they are the run's router's all the same: nothing after them in
    the preflight, nor a shift after it, looks anything up again."""
    asked: list[str] = []
    with in_front_of(aws.endpoint_url, lambda operation: None,
                     lambda operation, status: asked.append(operation)) as elb:
        env = run_environment(aws, monkeypatch, elbv2=elb)
        # As long as the canary group's health check takes (2 x 15 s): a shorter wait is refused.
        # And the lookups given as long: within 1 s through this endpoint, a loaded machine ran
        # out of it, and the run was refused before this test could see what was kept.
        rollout = spec("webordinary/edit:2.0.0").model_copy(update={"healthy_timeout_seconds": 30.0,
                                                                    "verify_timeout_seconds": 20.0})
        within(GIVEN_UP_SECONDS, lambda: flow(name="preflight")(lambda: preflight(env, rollout))())
        looked_up = list(asked)
        env.router.set_weights(Weights(stable=90, canary=10))
    # Each once: the metrics' reads (which name the load balancer) and the shift looked up nothing.
    assert [asked.count(o) for o in ("DescribeLoadBalancers", "DescribeListeners", "DescribeTargetGroups")] == \
        [1, 1, 2], asked
    assert "ModifyRule" in asked[len(looked_up):] and "ModifyRule" not in looked_up, asked
    assert AlbRouter(aws.get_client("elbv2"), aws.targets).get_weights() == Weights(stable=90, canary=10)


def test_a_misnamed_target_group_is_refused_by_the_preflight_at_its_first_answer(aws, monkeypatch):
    """A name the load balancer does not know is answered the same every time: it is not asked
    again within the bound, and the run is refused naming it, before any write."""
    asked: list[str] = []
    misnamed = aws.targets.model_copy(update={"canary_target_group": "edit-canry"})
    with in_front_of(aws.endpoint_url, lambda operation: None,
                     lambda operation, status: asked.append(operation)) as elb:
        env = run_environment(aws, monkeypatch, targets=misnamed, elbv2=elb)
        # A bound that leaves the time to ask again, were the answer taken for a passing failure.
        rollout = spec("webordinary/edit:2.0.0").model_copy(update={"verify_timeout_seconds": 10.0})
        error, _ = ended_soon(lambda: preflight(env, rollout))
    assert isinstance(error, RolloutRefused), repr(error)
    assert isinstance(error.__cause__, TargetNotFound), repr(error.__cause__)
    assert "target group 'edit-canry' not found" in str(error), str(error)
    assert asked.count("DescribeTargetGroups") == 2, asked  # the stable group's, then the canary's, once
    assert not {"ModifyRule", "UpdateService", "RegisterTaskDefinition"} & set(asked), asked


def test_a_rollback_on_a_load_balancer_slow_to_take_its_move_waits_for_it_and_says_so(aws, monkeypatch, caplog):
    """The rollback's move to stable is made on the run's clients (six attempts of 10 s), and is not
    given up on: users stay on the canary until it lands. The load balancer takes the lookups and
    the health checks, then leaves two reads of the rule unanswered: the rollback waited through
    them without a word, and looked stuck. It says what it waits for, and moves the traffic.

    Sooner than on a real account: the block gives each attempt 1 s (a user's own client config,
    kept), and the rollback says it still waits every half second rather than every 10 s."""
    AlbRouter(aws.get_client("elbv2"), aws.targets).set_weights(Weights(stable=90, canary=10))
    monkeypatch.setattr(rollway.deadline, "WAITING_SAID_EVERY_SECONDS", 0.5)
    attempt_seconds = 1.0
    health_read, closed = threading.Event(), threading.Event()
    held: list[str] = []

    def instead(operation: str) -> Answer | None:
        if operation == "DescribeTargetHealth":
            health_read.set()
        elif operation == "DescribeRules" and health_read.is_set() and len(held) < 2:
            held.append(operation)
            closed.wait(attempt_seconds + 1.0)  # past the client's attempt: it is asked again
            return NO_ANSWER
        return None

    with in_front_of(aws.endpoint_url, instead) as elb:
        env = run_environment(aws, monkeypatch, config={"read_timeout": attempt_seconds}, elbv2=elb)
        try:
            result = within(90.0, lambda: flow(name="slow-rollback")(
                lambda: execute_rollback(env, "error rate 7%", verify_timeout_seconds=BOUND))())
        finally:
            closed.set()
    assert len(held) == 2, held
    assert result.weights == Weights(stable=100, canary=0)
    assert "still waiting for Elastic Load Balancing to take the weights 100/0" in caplog.text, caplog.text


@flow
def read_back_on(router, expected: Weights, seconds: float) -> Weights:
    return traffic.verify_weights(router, expected, seconds)


def test_a_shift_not_read_back_says_what_was_read_when_and_after_how_long():
    """A shift whose read-back ran out failed the run with "load balancer holds weights 95/5
    (stable/canary), expected 75/25": quoted by the hook's rollback page after that rollback had
    moved the traffic, it read as what the load balancer held then, and named no wait."""
    from rollway.aws.errors import WeightMismatch
    from rollway.fakes import FakeRouter

    router = FakeRouter(Weights(stable=95, canary=5))
    router.set_weights(Weights(stable=75, canary=25))
    router.lag = 10_000
    with pytest.raises(WeightMismatch) as mismatch:
        read_back_on(router, Weights(stable=75, canary=25), 0.2)
    assert str(mismatch.value) == ("the load balancer held weights 95/5 (stable/canary), not the 75/25 set, when the "
                                   "read-back ended after under a second (verify_timeout_seconds)")
