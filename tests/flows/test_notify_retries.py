"""The notify task retries only what another try could get past (tasks/metrics.py).

It used to retry every failure three times, two seconds apart: a topic deleted since it was
looked up, a permission or a KMS key refused, a parameter SNS refuses, all asked four times.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest
from botocore.exceptions import ClientError

from rollway.aws.errors import TargetNotFound
from rollway.aws.sns import SnsNotifier
from tasks.metrics import notify

# The retries' wait is not what is tested: what is retried is.
quick_notify = notify.with_options(retry_delay_seconds=0)


def test_a_topic_deleted_after_its_lookup_is_published_to_once(aws, watch_calls):
    sns = aws.get_client("sns")
    notifier = SnsNotifier(sns, aws.targets)
    notifier.resolve()  # the ARN is looked up (and kept) before the rollout's first write
    sns.delete_topic(TopicArn=aws.topology.topic_arn)
    calls = watch_calls(sns)

    with pytest.raises(ClientError) as refused:
        quick_notify(notifier, "Rollback: webordinary-edit-service", "rolled back")

    assert refused.value.response["Error"]["Code"] == "NotFound"
    assert calls.count("Publish") == 1, calls


def test_a_topic_that_does_not_exist_is_looked_up_once(aws, watch_calls):
    sns = aws.get_client("sns")
    notifier = SnsNotifier(sns, aws.targets.model_copy(update={"alert_topic": "no-such-topic"}))
    calls = watch_calls(sns)
    with pytest.raises(TargetNotFound, match="no-such-topic"):
        quick_notify(notifier, "s", "m")
    assert calls.count("ListTopics") == 1 and "Publish" not in calls, calls


_ERROR = ("<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{side}</Type>"
          "<Code>{code}</Code><Message>{code} from SNS</Message></Error><RequestId>1</RequestId></ErrorResponse>")


@contextmanager
def refusing_first(sns, code: str, failures: int) -> Iterator[list[str]]:
    """Within the block, SNS on moto answers the first ``failures`` Publish requests ``sns`` sends
    with ``code``, as AWS answers (an HTTP error and its XML, which botocore makes its ClientError
    of: 500 for SNS's own failure, InternalError, 400 for the rest), and takes the later ones. Yields
    the requests sent: a stand-in raising the bare error skipped the notifier's own reading of it."""
    from botocore.awsrequest import AWSResponse

    from tests.botocore_events import on_operation

    class Body:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def stream(self, **_):
            yield self.data

    sent: list[str] = []

    def send(request, **_):
        sent.append(code if len(sent) < failures else "taken")
        if sent[-1] == "taken":
            return None  # sent to moto
        server = code == "InternalError"
        body = _ERROR.format(side="Receiver" if server else "Sender", code=code).encode()
        return AWSResponse(request.url, 500 if server else 400, {}, Body(body))

    with on_operation(sns, "before-send", send, operation="Publish"):
        yield sent


@pytest.mark.parametrize("code", ["Throttled", "KMSThrottling"])
def test_a_transient_refusal_is_tried_again_and_the_message_goes_out(aws, code):
    sns = aws.get_client("sns")
    with refusing_first(sns, code, failures=2) as sent:
        assert quick_notify(SnsNotifier(sns, aws.targets), "s", "m")  # SNS's message id, on the third try
    assert sent == [code, code, "taken"], sent


def test_an_internal_error_is_a_lost_answer_and_not_sent_again(aws):
    """SNS's own side failed (InternalError, HTTP 500): it may have taken the message. The notifier
    says so (AnswerLost), and the task does not send it again as if nothing had gone out."""
    from rollway.aws.errors import AnswerLost

    sns = aws.get_client("sns")
    with refusing_first(sns, "InternalError", failures=1) as sent, pytest.raises(
            AnswerLost, match="InternalError from SNS"):
        quick_notify(SnsNotifier(sns, aws.targets), "s", "m")
    assert sent == ["InternalError"], sent


@pytest.mark.parametrize("code", ["AuthorizationError", "InvalidParameter", "KMSAccessDenied", "KMSDisabled"])
def test_a_final_refusal_is_not_tried_again(aws, code):
    sns = aws.get_client("sns")
    with refusing_first(sns, code, failures=1) as sent, pytest.raises(ClientError, match=code) as refused:
        quick_notify(SnsNotifier(sns, aws.targets), "s", "m")
    assert refused.value.response["Error"]["Code"] == code
    assert sent == [code], sent


def test_a_publish_whose_answer_was_lost_and_then_refused_is_not_tried_again(aws):
    """The first attempt reaches SNS and its answer is lost (a read timeout); botocore's retry (on a
    client that resends: rollway's own does not after a lost answer) is refused (AuthorizationError, SNS's
    access denied). The notifier raises AnswerLost (people may have been paged), and the task
    retried it three times: each try refused again, for nothing."""
    from botocore.awsrequest import AWSResponse
    from botocore.exceptions import ReadTimeoutError
    from botocore.httpsession import URLLib3Session

    from rollway.aws.errors import AnswerLost
    from tests.adapters.test_sns import _resending_sns
    from tests.botocore_events import on_operation

    class Denied:
        def stream(self, **_):
            yield (b"<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code>"
                   b"<Message>not authorized to perform SNS:Publish</Message></Error>"
                   b"<RequestId>1</RequestId></ErrorResponse>")

    sns = _resending_sns(aws)
    attempts: list[str] = []

    def send(request, **_):
        attempts.append("sent" if not attempts else "denied")
        if attempts[-1] == "sent":
            URLLib3Session().send(request)
            raise ReadTimeoutError(endpoint_url=request.url)
        return AWSResponse(request.url, 403, {}, Denied())

    notifier = SnsNotifier(sns, aws.targets)
    with on_operation(sns, "before-send", send, operation="Publish"), pytest.raises(
            AnswerLost, match="AuthorizationError"):
        quick_notify(notifier, "Rollback: webordinary-edit-service", "rolled back")
    assert attempts == ["sent", "denied"], attempts


def _first_answer_lost(aws, subject: str):
    """SNS takes the first publish of ``subject`` (moto delivers it) and its answer is lost, a read
    timeout once the call was made; later publishes are answered."""
    from botocore.exceptions import ReadTimeoutError

    from tests.botocore_events import on_operation

    sns, lost = aws.get_client("sns"), []

    def lose(**_):
        if not lost:
            lost.append(subject)
            raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    return on_operation(sns, "after-call", lose, operation="Publish")


def _delivered(aws, url: str) -> list[str]:
    import json

    sqs, got = aws.get_client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            got.append(json.loads(message["Body"])["Message"])
    return got


def test_a_publish_whose_answer_was_lost_is_not_sent_again_as_if_nothing_went_out(aws, watch_calls):
    """SNS took the message and its answer was lost: the task sent the same message up to three
    more times, and people got it twice while the run read one clean send. It now says the
    publish may have gone out (AnswerLost), once."""
    from rollway.aws.errors import AnswerLost
    from tests.flows.moto_env import inbox

    sns = aws.get_client("sns")
    url = inbox(aws)
    notifier = SnsNotifier(sns, aws.targets)
    notifier.resolve()
    calls = watch_calls(sns)
    with _first_answer_lost(aws, "Rollback"), pytest.raises(AnswerLost, match="AWS may have acted on it"):
        quick_notify(notifier, "Rollback: webordinary-edit-service", "rolled back")
    assert calls.count("Publish") == 1, calls
    assert _delivered(aws, url) == ["rolled back"]


def test_an_alert_whose_answer_was_lost_is_logged_as_maybe_sent_not_as_unsent(aws, caplog):
    from prefect import flow

    from tasks import metrics
    from tests.flows.moto_env import inbox

    url = inbox(aws)
    notifier = SnsNotifier(aws.get_client("sns"), aws.targets)

    @flow
    def alerting():
        return metrics.alert_or_refusal(notifier, "Alert: webordinary-edit-service", "p99 over 2 s", aws.targets)

    with _first_answer_lost(aws, "Alert"):
        message_id, why, lost = alerting()
    assert message_id is None and why.startswith("AnswerLost: SNS Publish sent, and its answer lost"), why
    assert lost, "said a lost answer, not a refusal"
    logged = [r.getMessage() for r in caplog.records if "the alert 'Alert: webordinary-edit-service'" in r.getMessage()]
    assert logged and "may have gone out" in logged[0] and "could not send" not in logged[0], logged
    assert _delivered(aws, url) == ["p99 over 2 s"]
