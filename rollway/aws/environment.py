"""Build an Environment of AWS adapters from a client factory (``get_client(service_name)``)."""

from __future__ import annotations

from typing import Any, Callable

from rollway.environment import Environment
from rollway.ports import Clock
from rollway.targets import Targets


def aws_environment(
    get_client: Callable[[str], Any],
    targets: Targets,
    clock: Clock,
    *,
    interval_seconds: int = 60,
) -> Environment:
    """Every port on AWS. Adapters resolve names lazily, with read-only calls, on first use."""
    from rollway.aws.cloudwatch import CloudWatchMetrics
    from rollway.aws.ecr import EcrImagePinner
    from rollway.aws.ecs import EcsDeployer
    from rollway.aws.elbv2 import AlbRouter
    from rollway.aws.flags import DynamoFlagStore
    from rollway.aws.ledger import DynamoLedger
    from rollway.aws.sns import SnsNotifier

    router = AlbRouter(get_client("elbv2"), targets)
    return Environment(
        targets=targets,
        router=router,
        deployer=EcsDeployer(get_client("ecs"), targets),
        metrics=CloudWatchMetrics(get_client("cloudwatch"), targets, router=router, interval_seconds=interval_seconds),
        notifier=SnsNotifier(get_client("sns"), targets),
        clock=clock,
        ledger=DynamoLedger(get_client("dynamodb"), targets),
        flags=DynamoFlagStore(get_client("dynamodb"), targets),
        images=EcrImagePinner(get_client("ecr"), targets),
    )
