"""The rollout's SNS client never sends a Publish again after an attempt whose answer may have
been lost (blocks/credentials.py ``_publishing_once``), and still tries again what is safe to.

botocore sent a Publish again after a read timeout, a dropped connection or a 5xx (the block's
retries, or rollway's six attempts): SNS may have taken the first, and people got the notice
twice, while an answered resend read as one clean send. What is sent again then is rollway's own
lost-answer logic's to decide (``notify_or_repeat``). A throttled Publish or topic lookup was not
taken by SNS, and botocore asks again as it always did: an alert of a paused run is sent without
a task, so nothing else does. Against an SNS on 127.0.0.1 that answers each action as a test says.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Iterator
from urllib.parse import parse_qs

import pytest
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters
from pydantic import SecretStr

from blocks.credentials import client_factory
from rollway.aws.environment import aws_environment
from rollway.aws.errors import AnswerLost
from rollway.clock import ClockSettings
from rollway.targets import Targets
from tests.local_http import QuietHTTPServer

_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"
_TOPICS = (f"<ListTopicsResponse xmlns=\"{_XMLNS}\"><ListTopicsResult><Topics>"
           "<member><TopicArn>arn:aws:sns:us-west-2:123456789012:{topic}</TopicArn></member></Topics>"
           "</ListTopicsResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></ListTopicsResponse>")
_PUBLISHED = (f"<PublishResponse xmlns=\"{_XMLNS}\"><PublishResult><MessageId>m-1</MessageId></PublishResult>"
              "<ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></PublishResponse>")
_ERROR = (f"<ErrorResponse xmlns=\"{_XMLNS}\"><Error><Type>{{kind}}</Type><Code>{{code}}</Code>"
          "<Message>{code} as SNS says it</Message></Error><RequestId>3</RequestId></ErrorResponse>")


@contextmanager
def _sns(topic: str, answers: dict[str, list[str]]) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """(its URL, each action's requests, by action: a Publish's message): lists ``topic`` and takes
    a Publish, after answering each action's first requests as ``answers`` says, in order:
    "Throttling" (HTTP 400), "InternalError" (HTTP 500), "BadGateway" (a proxy's HTTP 502 page), "silent"
    (no answer until the block ends), "dropped" (the connection closed without an answer)."""
    asked: dict[str, list[str]] = {}
    release = threading.Event()
    lock = threading.Lock()

    class Sns(BaseHTTPRequestHandler):
        def log_message(self, *_):  # the suite's output is not the place
            pass

        def _answer(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):  # noqa: N802 - http.server's name
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            action = form["Action"][0]
            with lock:
                asked.setdefault(action, []).append(form.get("Message", [""])[0])
                pending = answers.get(action, [])
                answer = pending.pop(0) if pending else "ok"
            if answer == "silent":
                release.wait(30)  # never answered within the client's read timeout
            elif answer == "dropped":
                self.close_connection = True
            elif answer == "BadGateway":
                self._answer(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
            elif answer in ("Throttling", "InternalError"):
                server_side = answer == "InternalError"
                self._answer(500 if server_side else 400,
                             _ERROR.format(kind="Receiver" if server_side else "Sender", code=answer))
            elif action == "Publish":
                self._answer(200, _PUBLISHED)
            else:
                self._answer(200, _TOPICS.format(topic=topic))

    server = QuietHTTPServer(("127.0.0.1", 0), Sns)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def backoffs(monkeypatch) -> list[float]:
    """The sleeps botocore takes before it sends a call again (its retries' backoff, ``Endpoint._needs_retry``),
    in seconds, in order: counted, not timed, so that a test of them does not depend on the machine's speed."""
    import botocore.endpoint

    slept: list[float] = []
    real = botocore.endpoint.time

    class Recording:
        def __getattr__(self, name: str):
            return getattr(real, name)

        def sleep(self, seconds: float) -> None:
            slept.append(seconds)
            real.sleep(seconds)

    monkeypatch.setattr(botocore.endpoint, "time", Recording())
    return slept


def _notifier(url: str, targets: Targets, mode: str):
    block = AwsCredentials(
        aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"), region_name=targets.region,
        # The block asks for retries (two after the first): botocore sent a Publish three times.
        aws_client_parameters=AwsClientParameters(
            endpoint_url=url, config={"read_timeout": 0.5, "retries": {"mode": mode, "max_attempts": 2}}))
    return aws_environment(client_factory(block, targets.region), targets, ClockSettings().build()).notifier


@pytest.mark.parametrize("mode", ["standard", "legacy", "adaptive"])
@pytest.mark.parametrize("lost, said", [("silent", "within 0.5 s (1 attempt(s) of 0.5 s each)"),
                                        ("dropped", "Connection was closed"),
                                        ("InternalError", "InternalError"),
                                        ("BadGateway", "Bad Gateway")])
def test_a_publish_whose_answer_was_lost_is_sent_once_whatever_the_blocks_retries(mode, lost, said, backoffs):
    targets = Targets()
    with _sns(targets.alert_topic, {"Publish": [lost]}) as (url, asked):
        with pytest.raises(AnswerLost, match=said.replace("(", r"\(").replace(")", r"\)")):
            _notifier(url, targets, mode).notify("Finalized: webordinary-edit-service", "finalized")
    # Raised at once: no backoff taken before a resend not sent, and one attempt (one read timeout of
    # the block's 0.5 s for the silent SNS, as its error says), however fast or loaded the machine.
    assert backoffs == [], backoffs
    assert asked["Publish"] == ["finalized"], asked


@pytest.mark.parametrize("mode", ["standard", "legacy", "adaptive"])
def test_a_throttled_topic_lookup_and_publish_are_asked_again_as_the_blocks_retries_say(mode, backoffs):
    """SNS took neither: the notice goes out (an alert of a paused run is sent without a task, so
    botocore's retries are the only ones it has)."""
    targets = Targets()
    with _sns(targets.alert_topic, {"ListTopics": ["Throttling"], "Publish": ["Throttling"]}) as (
            url, asked):
        assert _notifier(url, targets, mode).notify("Paused: webordinary-edit-service", "paused") == "m-1"
    assert len(asked["ListTopics"]) == 2, asked
    assert asked["Publish"] == ["paused", "paused"], asked
    assert len(backoffs) == 2, backoffs  # botocore's backoff before each call it sent again (what ``backoffs`` counts)


@pytest.mark.parametrize("mode", ["standard", "adaptive"])
def test_publishes_whose_answers_were_lost_leave_a_later_throttled_lookup_and_publish_their_retries(mode):
    """botocore's standard retries take a call's retry quota (of 500 a client: 5 a retry, 10 after a
    timeout) before they resend it, and give it back only once the resend is answered: taken for
    each resend ``_publishing_once`` stops, a hundred lost answers would have left a later throttled
    Publish or topic lookup of the same client no retry at all. None is taken: botocore calls the
    handlers of ``needs-retry.sns.Publish`` before its own of ``needs-retry.sns``, and this one
    raises first."""
    targets = Targets()
    # 750 of the quota at 5 each (a connection dropped), were it taken: 600 once the topic lookups answered
    # before them gave their 1 each back.
    lost = 150
    answers = {"Publish": ["dropped"] * lost}
    with _sns(targets.alert_topic, answers) as (url, asked):
        block = AwsCredentials(
            aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"), region_name=targets.region,
            aws_client_parameters=AwsClientParameters(
                endpoint_url=url, config={"read_timeout": 0.5, "retries": {"mode": mode, "max_attempts": 2}}))
        clients = client_factory(block, targets.region)
        for _ in range(lost):
            with pytest.raises(AnswerLost):
                aws_environment(clients, targets, ClockSettings().build()).notifier.notify("Alert", "lost")
        assert len(asked["Publish"]) == lost, len(asked["Publish"])
        looked_up = len(asked["ListTopics"])
        # The same SNS client (one per factory), throttled now: its retries are all there.
        answers.update({"ListTopics": ["Throttling"], "Publish": ["Throttling", "Throttling"]})
        notifier = aws_environment(clients, targets, ClockSettings().build()).notifier
        assert notifier.notify("Paused: webordinary-edit-service", "paused") == "m-1"
    assert len(asked["ListTopics"]) - looked_up == 2, asked["ListTopics"]
    assert asked["Publish"][lost:] == ["paused"] * 3, asked["Publish"][lost:]
