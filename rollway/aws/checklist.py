"""Reads what the pre-deployment checklist judges: CloudFormation stacks, DynamoDB tables, SQS
queues, the CloudWatch dashboard and alarms, the SNS alert topic. Reads only; never writes.

A resource that does not exist is read as None; a read that fails for another reason
(AccessDenied, throttling past botocore's retries, no connection) as ``ReadFailed``, which the
checklist shows as a failed item saying so: one unreadable table does not hide the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rollway.checklist import Checklist, Observation, Observed, ReadFailed, all_tables, evaluate
from rollway.infra import StackEnvironment
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
        cloudformation: a boto3 ``cloudformation`` client (in ``Targets.region``).
        targets: the names to check.
        stack_environments: stack -> the account and region the CDK app deploys it to (its
            manifest); a stack missing here is read in ``Targets.region``. A stack in another
            region is read there; one in another account than ``account`` is not read (these
            credentials cannot) and fails its item saying so, never passes on a same-named
            stack of this account.
        account: the account the clients read (STS); needed with ``stack_environments``.
        cloudformation_in: region -> a ``cloudformation`` client there; needed when a stack's
            region is not ``Targets.region``.

    Raises:
        ValueError: ``stack_environments`` without ``account``, or naming another region
            without ``cloudformation_in`` (before any call).
    """

    def __init__(self, dynamodb: Any, sqs: Any, cloudwatch: Any, sns: Any, cloudformation: Any,
                 targets: Targets, *, stack_environments: Mapping[str, StackEnvironment] | None = None,
                 account: str | None = None, cloudformation_in: Callable[[str], Any] | None = None) -> None:
        environments = dict(stack_environments or {})
        if environments and account is None:
            raise ValueError("stack_environments needs account: the account these clients read")
        elsewhere = sorted({e.region for e in environments.values() if e.region != targets.region})
        if elsewhere and cloudformation_in is None:
            raise ValueError(f"stacks in {', '.join(elsewhere)} need cloudformation_in: a client in their region")
        self._environments = environments
        self._account = account
        self._cloudformation_in = cloudformation_in
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
        stacks = {name: self._read_stack(name) for name in t.stacks}
        stack_regions = {name: e.region for name, e in self._environments.items()
                         if name in stacks and e.region != t.region and e.account == self._account}
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
                           topic_arn=topic, subscriptions=subscriptions, stack_regions=stack_regions)

    def _read_stack(self, name: str) -> Observed:
        """The stack read where the app deploys it; another account's as a failed read saying why."""
        environment = self._environments.get(name)
        if environment is None or (environment.account == self._account and environment.region == self._targets.region):
            return _read(f"DescribeStacks {name}", lambda: self._stack(self._cloudformation, name))
        if environment.account != self._account:
            # Read here, a stack of the same name in this account would pass for it.
            return ReadFailed(f"it is in {environment.uri}",
                              f"another account than the one these credentials read ({self._account}), so it "
                              f"was not read; check it with credentials for account {environment.account}")
        assert self._cloudformation_in is not None
        region = environment.region
        return _read(f"DescribeStacks {name} in {region}",
                     lambda: self._stack(self._cloudformation_in(region), name))  # type: ignore[misc]

    @staticmethod
    def _stack(client: Any, name: str) -> dict[str, Any] | None:
        try:
            return client.describe_stacks(StackName=name)["Stacks"][0]
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
