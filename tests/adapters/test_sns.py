"""SnsNotifier against the embedded AWS: a message published reaches a subscribed queue."""

from __future__ import annotations

import json

import pytest

from rollway.aws.errors import TargetNotFound
from rollway.aws.sns import MESSAGE_LIMIT_BYTES, SUBJECT_LIMIT, TRUNCATED, SnsNotifier, fit_message, safe_subject


def _subscribed_queue(aws) -> str:
    sqs, sns = aws.get_client("sqs"), aws.get_client("sns")
    url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=aws.topology.topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def test_notify_delivers_to_a_subscriber(aws):
    inbox = _subscribed_queue(aws)
    notifier = SnsNotifier(aws.get_client("sns"), aws.targets)
    subject = "Rollback of webordinary-edit-service: canary error rate 4.1% vs 0.2% " + "x" * 60

    message_id = notifier.notify(subject, "stage 25%: rolled back\nsee the report")

    received = aws.get_client("sqs").receive_message(QueueUrl=inbox, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(received[0]["Body"])
    assert envelope["MessageId"] == message_id
    assert envelope["TopicArn"] == aws.topology.topic_arn
    assert envelope["Message"] == "stage 25%: rolled back\nsee the report"
    assert envelope["Subject"] == safe_subject(subject)
    assert len(envelope["Subject"]) <= SUBJECT_LIMIT



def test_a_message_holding_a_byte_that_is_not_utf8_is_paged_with_it_escaped(aws):
    # A failed step's text can hold a lone surrogate (a byte that is not UTF-8, in a name AWS
    # echoed back): encoded strictly, the page failed and nobody was told of the failed step.
    inbox = _subscribed_queue(aws)
    notifier = SnsNotifier(aws.get_client("sns"), aws.targets)
    not_utf8 = b"web\xff".decode("utf-8", "surrogateescape")

    notifier.notify(f"Rollback of {not_utf8}-service FAILED", f"scale {not_utf8}-canary to 0 (AccessDenied)")

    received = aws.get_client("sqs").receive_message(QueueUrl=inbox, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(received[0]["Body"])
    assert envelope["Message"] == "scale web\\udcff-canary to 0 (AccessDenied)"
    assert envelope["Subject"] == "Rollback of web?-service FAILED"


def test_a_messages_control_characters_and_bidi_controls_are_paged_as_escapes_its_lines_kept(aws):
    """Every notice goes out through here, whatever composed it: a name or reason quoted as typed
    (a rollback's "Requested by: erin<U+202E>") reordered the page's words after it, and an escape
    sequence pasted from a terminal cleared or recoloured a terminal mail client's screen. Its
    own line breaks and tabs stay."""
    inbox = _subscribed_queue(aws)
    notifier = SnsNotifier(aws.get_client("sns"), aws.targets)

    notifier.notify("Rollback: webordinary-edit-service",
                    "Why: sessions lost \u202eevorppa\x1b[2J\nRequested by: erin\u2067\n\tthe steps")

    received = aws.get_client("sqs").receive_message(QueueUrl=inbox, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(received[0]["Body"])
    assert envelope["Message"] == "Why: sessions lost \\u202eevorppa\\x1b[2J\nRequested by: erin\\u2067\n\tthe steps"


def test_missing_topic_is_named(aws):
    other = aws.targets.model_copy(update={"alert_topic": "no-such-topic"})
    with pytest.raises(TargetNotFound, match="no-such-topic"):
        SnsNotifier(aws.get_client("sns"), other).notify("s", "m")


def test_topic_found_among_many_pages(aws, watch_calls):
    sns = aws.get_client("sns")
    # ListTopics returns 100 topics a page, oldest first: recreate ours after 120 others.
    sns.delete_topic(TopicArn=aws.topology.topic_arn)
    for i in range(120):
        sns.create_topic(Name=f"filler-{i:03d}")
    sns.create_topic(Name=aws.targets.alert_topic)
    notifier = SnsNotifier(sns, aws.targets)
    calls = watch_calls(sns)
    assert notifier.topic_arn == aws.topology.topic_arn
    notifier.notify("one", "first")
    notifier.notify("two", "second")
    assert calls.count("ListTopics") >= 2  # paginated once ...
    assert calls[calls.count("ListTopics"):] == ["Publish", "Publish"]  # ... then cached


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("short", "short"),
        ("line one\nline two\ttab", "line one line two tab"),
        ("a" * 150, "a" * (SUBJECT_LIMIT - 3) + "..."),
        ("word " * 40, ("word " * 19).rstrip() + "..."),
        ("", ""),
        ("Rejected by Zoë", "Rejected by Zoe"),  # SNS refuses a Subject outside ASCII
        ("Rollback: ウェブ", "Rollback: ???"),
    ],
)
def test_safe_subject(subject, expected):
    assert safe_subject(subject) == expected
    assert len(safe_subject(subject)) <= SUBJECT_LIMIT


@pytest.mark.parametrize("filler", ["x", "é", "€", "😀"], ids=["1-byte", "2-byte", "3-byte", "4-byte"])
def test_a_message_over_256_kb_of_utf8_is_cut_to_fit_with_a_mark(aws, filler):
    """Real SNS refuses more than 262,144 bytes of UTF-8 (moto counts characters, so it is
    checked on what was sent): a rejection comment with a pasted log must not stop the notice."""
    sent = []
    sns = aws.get_client("sns")
    record = lambda params, **_: sent.append(params["Message"])  # noqa: E731
    sns.meta.events.register("provide-client-params.sns.Publish", record)
    try:
        message_id = SnsNotifier(sns, aws.targets).notify("Rollback of x", "Why: rejected: " + filler * 300_000)
    finally:
        sns.meta.events.unregister("provide-client-params.sns.Publish", record)
    (message,) = sent
    assert len(message.encode()) <= MESSAGE_LIMIT_BYTES < 262_144
    assert message.startswith("Why: rejected: " + filler * 100) and message.endswith(TRUNCATED)
    assert set(message[len("Why: rejected: "):-len(TRUNCATED)]) == {filler}, "cut on a character boundary"
    assert message_id


def test_fit_message_keeps_a_message_that_fits_as_it_is():
    assert fit_message("é" * 10, limit=20) == "é" * 10
    cut = fit_message("é" * 20, limit=30)
    assert cut.endswith(TRUNCATED) and len(cut.encode()) <= 30 and cut.startswith("é")


def failing_publish(sns, first, then):
    """A ``with`` block in which the Publish attempts fail: the first with ``first``,
    every later one with ``then`` (``sns``: the client). "sent": the attempt reaches SNS (moto takes the message) and
    its answer is lost, a read timeout; an error class: raised as botocore's HTTP client does."""
    from botocore.exceptions import ReadTimeoutError
    from botocore.httpsession import URLLib3Session

    from tests.botocore_events import on_operation

    attempts: list[object] = []

    def send(request, **_):
        error = first if not attempts else then
        attempts.append(error)
        if error == "sent":
            URLLib3Session().send(request)
            raise ReadTimeoutError(endpoint_url=request.url)
        raise error(endpoint_url=request.url, error="refused")

    return on_operation(sns, "before-send", send, operation="Publish")


def _resending_sns(aws):
    """An SNS client on the embedded AWS that sends a call again itself (botocore's standard retries,
    one), even after a lost answer: not one of rollway's client factory, whose SNS client never sends
    a Publish again then (``blocks.credentials._publishing_once``), but a notifier may be given any client."""
    import boto3
    from botocore.config import Config

    return boto3.client("sns", endpoint_url=aws.endpoint_url, region_name=aws.targets.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"mode": "standard", "max_attempts": 1}))


def test_a_publish_whose_first_attempt_lost_its_answer_is_not_taken_for_unsent(aws):
    """A client that sends it again after the read timeout, and that attempt finds no connection: its
    error alone (EndpointConnectionError) said nothing was sent, when SNS took the first."""
    from botocore.exceptions import EndpointConnectionError

    from rollway.aws.errors import AnswerLost

    inbox = _subscribed_queue(aws)
    sns = _resending_sns(aws)
    notifier = SnsNotifier(sns, aws.targets)
    with failing_publish(sns, "sent", EndpointConnectionError), pytest.raises(
            AnswerLost, match="EndpointConnectionError") as lost:
        notifier.notify("Rollback: svc", "rolled back")
    assert lost.value.call == "SNS Publish"
    received = aws.get_client("sqs").receive_message(QueueUrl=inbox, WaitTimeSeconds=1)["Messages"]
    assert [json.loads(m["Body"])["Message"] for m in received] == ["rolled back"]  # people were paged

    # Sent again (the notify task's retries), it never connects: people may still have been paged.
    refused = failing_publish(sns, EndpointConnectionError, EndpointConnectionError)
    with refused, pytest.raises(AnswerLost):
        notifier.notify("Rollback: svc", "rolled back")


def test_a_publish_that_never_connected_raises_botocores_error(aws):
    from botocore.exceptions import EndpointConnectionError

    notifier = SnsNotifier(aws.get_client("sns"), aws.targets)
    with failing_publish(aws.get_client("sns"), EndpointConnectionError, EndpointConnectionError), pytest.raises(
            EndpointConnectionError):
        notifier.notify("Rollback: svc", "rolled back")
