"""The notify task retries only what another try could get past (tasks/metrics.py).

It used to retry every failure three times, two seconds apart: a topic deleted since it was
looked up, a permission or a KMS key refused, a parameter SNS refuses, all asked four times.
"""
from __future__ import annotations

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


class RefusesFirst:
    """SNS on moto behind a notifier whose first ``failures`` publishes SNS answers with ``code``."""

    def __init__(self, notifier: SnsNotifier, code: str, failures: int = 1) -> None:
        self.notifier, self.code, self.failures, self.calls = notifier, code, failures, 0

    def notify(self, subject: str, message: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ClientError({"Error": {"Code": self.code, "Message": f"{self.code} from SNS"}}, "Publish")
        return self.notifier.notify(subject, message)


@pytest.mark.parametrize("code", ["Throttled", "KMSThrottling", "InternalError"])
def test_a_transient_refusal_is_tried_again_and_the_message_goes_out(aws, code):
    notifier = RefusesFirst(SnsNotifier(aws.get_client("sns"), aws.targets), code, failures=2)
    assert quick_notify(notifier, "s", "m")  # SNS's message id, on the third try
    assert notifier.calls == 3


@pytest.mark.parametrize("code", ["AuthorizationError", "InvalidParameter", "KMSAccessDenied", "KMSDisabled"])
def test_a_final_refusal_is_not_tried_again(aws, code):
    notifier = RefusesFirst(SnsNotifier(aws.get_client("sns"), aws.targets), code, failures=1)
    with pytest.raises(ClientError, match=code):
        quick_notify(notifier, "s", "m")
    assert notifier.calls == 1


def test_a_publish_whose_answer_was_lost_and_then_refused_is_not_tried_again(aws):
    """The first attempt reaches SNS and its answer is lost (a read timeout); botocore's retry is
    refused (AuthorizationError, SNS's access denied). The notifier raises AnswerLost (people may
    have been paged), and the task retried it three times: each try refused again, for nothing."""
    from botocore.awsrequest import AWSResponse
    from botocore.exceptions import ReadTimeoutError
    from botocore.httpsession import URLLib3Session

    from rollway.aws.errors import AnswerLost
    from tests.botocore_events import on_operation

    class Denied:
        def stream(self, **_):
            yield (b"<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code>"
                   b"<Message>not authorized to perform SNS:Publish</Message></Error>"
                   b"<RequestId>1</RequestId></ErrorResponse>")

    sns = aws.get_client("sns")
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
