"""Reads what the pre-deployment checklist judges: CloudFormation stacks, DynamoDB tables, SQS
queues, the CloudWatch dashboard and alarms, the SNS alert topic. Reads only; never writes.

A resource that does not exist is read as None; a read that fails for another reason
(AccessDenied, throttling past botocore's retries, no connection) as ``ReadFailed``, which the
checklist shows as a failed item saying so: one unreadable table does not hide the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rollway.checklist import Checklist, Observation, Observed, ReadFailed, all_tables, evaluate
from rollway.targets import Targets

_NOT_FOUND = frozenset({
    "ResourceNotFoundException",  # DynamoDB
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",  # SQS (query / JSON protocol)
    "ResourceNotFound",  # CloudWatch GetDashboard
    "NotFound", "NotFoundException",  # SNS
})
# CloudFormation answers a stack it does not know with a plain ValidationError.
_NO_STACK = re.compile(r"Stack with id \S+ does not exist")


class AwsInfraChecker:
    """Reads the resources ``targets`` names and judges the checklist.

    Args:
        dynamodb: a boto3 ``dynamodb`` client.
        sqs: a boto3 ``sqs`` client.
        cloudwatch: a boto3 ``cloudwatch`` client.
        sns: a boto3 ``sns`` client.
        cloudformation: a boto3 ``cloudformation`` client.
        targets: the names to check.
    """

    def __init__(self, dynamodb: Any, sqs: Any, cloudwatch: Any, sns: Any, cloudformation: Any,
                 targets: Targets) -> None:
        self._cloudformation = cloudformation
        self._dynamodb = dynamodb
        self._sqs = sqs
        self._cloudwatch = cloudwatch
        self._sns = sns
        self._targets = targets

    def check(self) -> Checklist:
        """Every checklist item, passed or failed with its reason. Never raises for a failed read."""
        return evaluate(self._targets, self.observe())

    def observe(self) -> Observation:
        """Everything the checklist needs, read from AWS."""
        t = self._targets
        stacks = {name: _read(f"DescribeStacks {name}", lambda n=name: self._stack(n)) for name in t.stacks}
        tables = {spec.name: _read(f"DescribeTable {spec.name}", lambda n=spec.name: self._table(n))
                  for spec in all_tables(t)}
        names = dict.fromkeys(n for q in t.queues for n in (q.name, q.dlq_name))
        queues = {name: _read(f"GetQueueAttributes {name}", lambda n=name: self._queue(n)) for name in names}
        dashboard = _read(f"GetDashboard {t.dashboard}",
                          lambda: self._cloudwatch.get_dashboard(DashboardName=t.dashboard))
        alarms = self._alarms()
        topic = _read("ListTopics", self._topic_arn)
        subscriptions: Any = None
        if isinstance(topic, str):
            subscriptions = _read(f"ListSubscriptionsByTopic {t.alert_topic}", lambda: self._subscriptions(topic))
        return Observation(stacks=stacks, tables=tables, queues=queues, dashboard=dashboard, alarms=alarms,
                           topic_arn=topic, subscriptions=subscriptions)

    def _stack(self, name: str) -> dict[str, Any] | None:
        try:
            return self._cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        except ClientError as err:
            error = err.response.get("Error", {})
            if error.get("Code") == "ValidationError" and _NO_STACK.search(str(error.get("Message", ""))):
                return None
            raise

    def _table(self, name: str) -> dict[str, Any]:
        return self._dynamodb.describe_table(TableName=name)["Table"]

    def _queue(self, name: str) -> dict[str, Any]:
        url = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    def _alarms(self) -> dict[str, Observed]:
        wanted = list(self._targets.alarms)
        if not wanted:
            return {}
        try:
            found: dict[str, Observed] = {}
            # DescribeAlarms takes at most 100 names per call.
            for start in range(0, len(wanted), 100):
                pages = self._cloudwatch.get_paginator("describe_alarms").paginate(
                    AlarmNames=wanted[start:start + 100], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
                for page in pages:
                    for alarm in [*page.get("MetricAlarms", ()), *page.get("CompositeAlarms", ())]:
                        found[alarm["AlarmName"]] = alarm
        except (ClientError, BotoCoreError) as err:
            failed = ReadFailed("DescribeAlarms", _message(err))
            return dict.fromkeys(wanted, failed)
        return {name: found.get(name) for name in wanted}

    def _topic_arn(self) -> str | None:
        name = self._targets.alert_topic
        for page in self._sns.get_paginator("list_topics").paginate():
            for topic in page.get("Topics", ()):
                if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                    return topic["TopicArn"]
        return None

    def _subscriptions(self, topic_arn: str) -> list[dict[str, Any]]:
        return [s for page in self._sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
                for s in page.get("Subscriptions", ())]


def _read(what: str, call: Callable[[], Any]) -> Any:
    """``call()``; None when what it reads does not exist; ReadFailed when the read failed."""
    try:
        return call()
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in _NOT_FOUND:
            return None
        return ReadFailed(what, _message(err))
    except BotoCoreError as err:
        return ReadFailed(what, _message(err))


def _message(err: Exception) -> str:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '') or err}"
    return f"{type(err).__name__}: {err}"
