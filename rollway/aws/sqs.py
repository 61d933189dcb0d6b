"""Looks up the SQS queues a rollout watches, in its region: whether each work queue and its
dead-letter queue exist, and where the work queue redrives its failures. Reads only."""

from __future__ import annotations

from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from rollway.aws.denied import is_denied
from rollway.aws.errors import aws_message
from rollway.checklist import redrive_target
from rollway.deadline import READ_SECONDS
from rollway.preflight_checks import QueueSeen
from rollway.targets import Targets

# SQS's answer for a queue it does not know (query / JSON protocol).
_NO_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


class SqsQueues:
    """The watched queues of ``targets``, looked up with GetQueueUrl and GetQueueAttributes.

    Args:
        sqs: a boto3 ``sqs`` client in ``Targets.region`` (the run's).
        targets: the queues to look up.
        reads: seconds -> an ``sqs`` client whose calls end within that bound (``aws_environment``'s
            bounded reads); None: ``sqs`` is used as it is.
    """

    def __init__(self, sqs: Any, targets: Targets, *, reads: Callable[[float], Any] | None = None) -> None:
        self._sqs = sqs
        self._targets = targets
        self._reads = reads

    def lookup(self) -> dict[str, QueueSeen]:
        """Each work queue and dead-letter queue name -> what SQS answered for it.

        A queue SQS does not know is a ``QueueSeen`` without an ARN; a read that failed otherwise
        (throttled past the retries, no connection) one with ``failed`` saying so, never one that
        passes for an existing queue. After such a failure the queues left are not asked (and not
        in the answer): each read is bounded on its own, so an SQS that does not answer held the
        run's start that bound once per queue, to be refused for the first one's failure anyway.

        Raises:
            ClientError: AWS refused the permission (AccessDenied): the caller names the statement
                granting it.
        """
        client = self._reads(READ_SECONDS) if self._reads is not None else self._sqs
        works = {q.name for q in self._targets.queues}
        names = dict.fromkeys(n for q in self._targets.queues for n in (q.name, q.dlq_name))
        seen: dict[str, QueueSeen] = {}
        for name in names:
            seen[name] = self._one(client, name, name in works)
            if seen[name].failed:
                break
        return seen

    @staticmethod
    def _one(client: Any, name: str, work: bool) -> QueueSeen:
        try:
            url = client.get_queue_url(QueueName=name)["QueueUrl"]
            wanted = ["QueueArn", "RedrivePolicy"] if work else ["QueueArn"]
            attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=wanted).get("Attributes", {})
        except ClientError as err:
            if is_denied(err):
                raise
            code = err.response.get("Error", {}).get("Code")
            return QueueSeen() if code in _NO_QUEUE else QueueSeen(failed=aws_message(err))
        except BotoCoreError as err:
            return QueueSeen(failed=aws_message(err))
        return QueueSeen(arn=str(attributes.get("QueueArn") or "") or None,
                         redrive_target=redrive_target(attributes))

