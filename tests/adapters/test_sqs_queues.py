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
