"""SqsQueues on the embedded AWS: what the preflight's check of the watched queues reads."""

from __future__ import annotations

from rollway.aws.sqs import SqsQueues
from rollway.targets import QueueSpec


def test_the_provisioned_queues_are_found_redriving_to_their_dead_letter_queues(aws):
    seen = SqsQueues(aws.get_client("sqs"), aws.targets).lookup()
    for queue in aws.targets.queues:
        work, dlq = seen[queue.name], seen[queue.dlq_name]
        assert work.arn and work.arn.endswith(f":{queue.name}") and dlq.arn and dlq.arn.endswith(f":{queue.dlq_name}")
        assert work.redrive_target == dlq.arn and not work.failed and not dlq.failed


def test_a_queue_sqs_does_not_know_has_no_arn_and_is_no_failure(aws):
    targets = aws.targets.model_copy(update={"queues": (QueueSpec(name="webordinary-email-queue",
                                                                  dlq_name="webordinary-emial-dlq"),)})
    seen = SqsQueues(aws.get_client("sqs"), targets).lookup()
    assert seen["webordinary-emial-dlq"].arn is None and not seen["webordinary-emial-dlq"].failed
    assert seen["webordinary-email-queue"].redrive_target.endswith(":webordinary-email-dlq")


def test_an_sqs_that_does_not_answer_is_waited_for_once_not_once_per_queue(aws):
    """Each lookup is bounded (READ_SECONDS, 30 s): with SQS not answering, the preflight waited
    that long for every work queue and DLQ in turn (three minutes for Webordinary's six), silent,
    before refusing for the first one's failure anyway."""
    from botocore.exceptions import EndpointConnectionError

    from rollway.preflight_checks import dead_letter_refusal
    from tests.botocore_events import on_operation

    asked: list[str] = []

    def unreachable(model, **_):
        asked.append(model.name)
        raise EndpointConnectionError(endpoint_url=f"https://sqs.{aws.targets.region}.amazonaws.com/")

    sqs = aws.get_client("sqs")
    with on_operation(sqs, "before-parameter-build", unreachable, operation=None):
        seen = SqsQueues(sqs, aws.targets).lookup()
    assert asked == ["GetQueueUrl"], asked
    said = dead_letter_refusal(aws.targets, seen)
    assert said is not None and "SQS did not answer the check that the watched queues exist" in said, said
    assert "Could not connect to the endpoint URL" in said, said
