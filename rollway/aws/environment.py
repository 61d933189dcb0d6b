"""Build an Environment of AWS adapters from a client factory (``get_client(service_name)``)."""

from __future__ import annotations

from typing import Any, Callable

from rollway.decide import FINAL_READ_RETRY_SECONDS
from rollway.deadline import READ_SECONDS
from rollway.environment import Environment
from rollway.ports import Clock
from rollway.targets import Targets


def aws_environment(
    get_client: Callable[[str], Any],
    targets: Targets,
    clock: Clock,
    *,
    interval_seconds: int = 60,
    flags_refused: Callable[[Any], str | None] | None = None,
) -> Environment:
    """Every port on AWS. Adapters resolve names lazily, with read-only calls, on first use.
    ``flags_refused``: what DynamoDB refusing the flags table means to a person (``DynamoFlagStore``)."""
    from rollway.aws.cloudwatch import CloudWatchMetrics
    from rollway.aws.ecr import EcrImagePinner
    from rollway.aws.ecs import EcsDeployer
    from rollway.aws.elbv2 import AlbRouter
    from rollway.aws.flags import DynamoFlagStore
    from rollway.aws.ledger import DynamoLedger
    from rollway.aws.sns import SnsNotifier

    router = AlbRouter(get_client("elbv2"), targets, reads=_reads(get_client, "elbv2"))
    return Environment(
        targets=targets,
        router=router,
        deployer=EcsDeployer(get_client("ecs"), targets, reads=_reads(get_client, "ecs")),
        # A tick's read of the metrics ends before the next one is due: the final look of a stage
        # (and of a monitoring window) reads again this far apart, and a tick is at least a minute.
        metrics=CloudWatchMetrics(get_client("cloudwatch"), targets, router=router, interval_seconds=interval_seconds,
                                  read_seconds=FINAL_READ_RETRY_SECONDS, reads=_reads(get_client, "cloudwatch")),
        notifier=SnsNotifier(get_client("sns"), targets),
        clock=clock,
        ledger=DynamoLedger(get_client("dynamodb"), targets, reads=_reads(get_client, "dynamodb")),
        flags=DynamoFlagStore(get_client("dynamodb"), targets, refused=flags_refused),
        images=EcrImagePinner(get_client("ecr"), targets),
        account=getattr(get_client, "account", None),
        queues=_queues(get_client, targets),
    )


def _queues(get_client: Callable[[str], Any], targets: Targets) -> Any:
    """The lookup of the watched queues and their dead-letter queues, in the targets' region."""
    from rollway.aws.sqs import SqsQueues

    return SqsQueues(get_client("sqs"), targets, reads=_reads(get_client, "sqs"))


def _reads(get_client: Callable[[str], Any], service: str) -> Callable[[float], Any] | None:
    """seconds -> a ``service`` client for the reads of a wait bounded by ``seconds``: its calls,
    all their attempts together, end within that bound, and within ``READ_SECONDS`` (a describe's
    own: a health wait's minutes would make each attempt minutes long). The run's own clients
    (six attempts of 10 s, kept for the writes) went on for about a minute past a shorter bound.
    None when ``get_client`` makes no such clients (``blocks.credentials.SessionClients.reading``)."""
    reading = getattr(get_client, "reading", None)
    if reading is None:
        return None
    return lambda seconds: reading(min(seconds, READ_SECONDS))(service)
