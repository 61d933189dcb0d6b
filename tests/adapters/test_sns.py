"""SnsNotifier against the embedded AWS: a message published reaches a subscribed queue."""

from __future__ import annotations

import json

import pytest

from rollway.aws.errors import TargetNotFound
from rollway.aws.sns import SUBJECT_LIMIT, SnsNotifier, safe_subject


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
    ],
)
def test_safe_subject(subject, expected):
    assert safe_subject(subject) == expected
    assert len(safe_subject(subject)) <= SUBJECT_LIMIT
