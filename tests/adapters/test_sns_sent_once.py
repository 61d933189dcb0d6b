"""The rollout's SNS client sends a Publish once (blocks/credentials.py ``_SENT_ONCE``).

botocore sent a Publish again after a read timeout (the block's retries, or rollway's six
attempts): SNS may have taken the first, and people got the notice twice, while an answered resend
read as one clean send. What is sent again is rollway's own lost-answer logic's to decide
(``notify_or_repeat``). Against an SNS on 127.0.0.1 that answers ListTopics and never a Publish."""

from __future__ import annotations

import threading
import time
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

_TOPICS = ("<ListTopicsResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><ListTopicsResult><Topics>"
           "<member><TopicArn>arn:aws:sns:us-west-2:123456789012:{topic}</TopicArn></member></Topics>"
           "</ListTopicsResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></ListTopicsResponse>")


@contextmanager
def _sns_silent_on_publish(topic: str) -> Iterator[tuple[str, list[str]]]:
    """(its URL, the Publish requests it was sent): lists ``topic``, and holds every Publish
    unanswered until the block ends."""
    published: list[str] = []
    release = threading.Event()

    class Sns(BaseHTTPRequestHandler):
        def log_message(self, *_):  # the suite's output is not the place
            pass

        def do_POST(self):  # noqa: N802 - http.server's name
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            if form["Action"] == ["Publish"]:
                published.append(form["Message"][0])
                release.wait(30)  # never answered within the client's read timeout
                return
            body = _TOPICS.format(topic=topic).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = QuietHTTPServer(("127.0.0.1", 0), Sns)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", published
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_publish_whose_answer_times_out_is_sent_once_whatever_the_blocks_retries():
    targets = Targets()
    with _sns_silent_on_publish(targets.alert_topic) as (url, published):
        block = AwsCredentials(
            aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"), region_name=targets.region,
            # The block asks for retries (two after the first): botocore sent the Publish three times.
            aws_client_parameters=AwsClientParameters(
                endpoint_url=url, config={"read_timeout": 0.5, "retries": {"mode": "standard", "max_attempts": 2}}))
        get_client = client_factory(block, targets.region)
        env = aws_environment(get_client, targets, ClockSettings().build())
        began = time.monotonic()
        with pytest.raises(AnswerLost, match="Read timeout"):
            env.notifier.notify("Finalized: webordinary-edit-service", "finalized")
        took = time.monotonic() - began
    assert published == ["finalized"], published
    assert took < 5.0, took  # one read timeout of 0.5 s, no backoff
    # The other clients keep the block's retries: they send no notices.
    assert get_client("elbv2").meta.config.retries["total_max_attempts"] == 3
    assert get_client("sns").meta.config.retries["total_max_attempts"] == 1
