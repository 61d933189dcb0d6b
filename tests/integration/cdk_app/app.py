"""A small CDK app for rollway's integration tests: a queue stack and a session stack that depends on it.

Names come from the context so a test can point them wherever it likes:
``-c prefix=Test`` names the stacks ``<prefix>SQSStack``/``<prefix>SessionStack``/``<prefix>BrokenStack``, and ``<prefix>NamedStack``
whose CloudFormation name is ``<prefix lower>-named``. ``-c pinned_region=eu-west-1`` adds ``<prefix>PinnedStack``,
a queue stack (``<prefix lower>-pinned`` and its DLQ) pinned to that region.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_sqs as sqs
from constructs import Construct


class QueueStack(cdk.Stack):
    def __init__(self, scope: Construct, name: str, *, queue: str, dlq: str, **kwargs) -> None:
        super().__init__(scope, name, **kwargs)
        dead = sqs.Queue(self, "Dlq", queue_name=dlq, retention_period=cdk.Duration.days(14))
        self.queue = sqs.Queue(self, "Queue", queue_name=queue, visibility_timeout=cdk.Duration.seconds(300),
                               dead_letter_queue=sqs.DeadLetterQueue(queue=dead, max_receive_count=3))
        cdk.CfnOutput(self, "QueueUrl", value=self.queue.queue_url)


class SessionStack(cdk.Stack):
    def __init__(self, scope: Construct, name: str, *, table: str, queue: sqs.Queue, **kwargs) -> None:
        super().__init__(scope, name, **kwargs)
        sessions = dynamodb.Table(self, "Sessions", table_name=table,
                                  partition_key=dynamodb.Attribute(name="sessionId", type=dynamodb.AttributeType.STRING),
                                  billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                                  removal_policy=cdk.RemovalPolicy.DESTROY)
        sessions.add_global_secondary_index(index_name="userId-index",
                                            partition_key=dynamodb.Attribute(name="userId", type=dynamodb.AttributeType.STRING))
        # A reference to the queue stack's queue: the dependency CDK records in the manifest.
        cdk.CfnOutput(self, "InputQueueArn", value=queue.queue_arn)
        cdk.CfnOutput(self, "TableName", value=sessions.table_name)


class NamedStack(cdk.Stack):
    """A stack whose CloudFormation name (``stack_name``) is not its construct id, as apps set for
    per-environment names: cdk selects it by id, CloudFormation knows it by name."""

    def __init__(self, scope: Construct, name: str, *, queue: str, **kwargs) -> None:
        super().__init__(scope, name, **kwargs)
        cdk.CfnOutput(self, "QueueName", value=sqs.Queue(self, "Queue", queue_name=queue).queue_name)


class BrokenStack(cdk.Stack):
    """A stack CloudFormation refuses: its queue's name is not a valid SQS queue name."""

    def __init__(self, scope: Construct, name: str, **kwargs) -> None:
        super().__init__(scope, name, **kwargs)
        sqs.CfnQueue(self, "Bad", queue_name="not a valid queue name!", delay_seconds=9999)


app = cdk.App()
prefix = app.node.try_get_context("prefix") or "Test"
queues = QueueStack(app, f"{prefix}SQSStack", queue=f"{prefix.lower()}-input", dlq=f"{prefix.lower()}-input-dlq")
SessionStack(app, f"{prefix}SessionStack", table=f"{prefix.lower()}-sessions", queue=queues.queue)
NamedStack(app, f"{prefix}NamedStack", stack_name=f"{prefix.lower()}-named",
           queue=f"{prefix.lower()}-named-queue")
BrokenStack(app, f"{prefix}BrokenStack")
if app.node.try_get_context("pinned_region"):
    # A queue stack the app pins to a region of its own (the account left to the deploying one's),
    # as an app pins, say, a replica or an edge stack away from the rest.
    QueueStack(app, f"{prefix}PinnedStack", queue=f"{prefix.lower()}-pinned", dlq=f"{prefix.lower()}-pinned-dlq",
               env=cdk.Environment(region=app.node.try_get_context("pinned_region")))
app.synth()
