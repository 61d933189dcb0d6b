"""Reads what the pre-deployment checklist judges: CloudFormation stacks, DynamoDB tables, SQS
queues, the CloudWatch dashboard and alarms, the SNS alert topic, and, when the validation's checks
are pinned, the listener's rules. Reads only; never writes.

Each is read where the CDK app deploys it, when told: a stack in its manifest's region, another
resource in the region of the stack whose template defines it; the rest in ``Targets.region``.

A resource that does not exist is read as None; a read that fails for another reason
(AccessDenied, throttling past botocore's retries, no connection) as ``ReadFailed``, which the
checklist shows as a failed item saying so: one unreadable table does not hide the others. A
refused permission is said as every other refusal of rollway's: the IAM action, and the
statement of ``deployments/iam-policy-infrastructure.json`` (the infrastructure jobs' policy)
granting it (``rollway.aws.denied.permission_denied``).

Each read is given up on after ``read_seconds`` (saying every 10 s that it still waits): on
the run's shared clients (60 s per read, retried) a service that took the connection and never
answered held the checklist for minutes per read, with no line saying what it waited on. Once
a service did not answer in a region, what is left to read from it there in that check is not
asked: it fails as not asked, naming the call that was not answered, so a silent service costs
``read_seconds`` once, not once per resource. The next check (the checklist task's retry) asks it
again. A read given up on while the service answered its last call throttled (botocore's tries,
and the pin's asks, each waiting longer) says so, how many tries and over how long (from the
first of them sent to the last answered: not the read's calls before them), not only that the
service did not answer (which it says too of a try after them still unanswered); what is left
to read there is not asked either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rollway.checklist import (
    Checklist, Observation, Observed, PinRead, ReadFailed, all_tables, checked_resources, evaluate, redrive_target,
    used_by_rollway,
)
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.denied import INFRASTRUCTURE_POLICY, is_denied, refusal_said
from rollway.aws.errors import (AdapterError, TargetNotFound, ThrottledTry, aws_message, calls_begun,
                                failed_in_passing, throttled_tries, unusable_credentials)
from rollway.bounds import seconds_said, wait_said
from rollway.deadline import READ_SECONDS, REAL_TIME, BoundClock, Hushable, Unanswered, answered, read_bound
from rollway.infra import ResourcePlace, StackEnvironment
from rollway.pinning import CheckRequest, header_line
from rollway.targets import Targets

_NOT_FOUND = frozenset({
    "ResourceNotFoundException",  # DynamoDB
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",  # SQS (query / JSON protocol)
    "ResourceNotFound",  # CloudWatch GetDashboard
    "NotFound", "NotFoundException",  # SNS
})
# CloudFormation answers a stack it does not know with a plain ValidationError.
_NO_STACK = re.compile(r"Stack with id \S+ does not exist")
# How many of the account's other stacks' templates are read, at most, to find which one a
# missing stack's name is the construct id of (only when the app was not read).
_TEMPLATES_SEARCHED = 100
_GONE = frozenset({"DELETE_COMPLETE", "DELETE_IN_PROGRESS"})
_NAMES = {"dynamodb": "DynamoDB", "sqs": "SQS", "cloudwatch": "CloudWatch", "sns": "SNS",
          "cloudformation": "CloudFormation", "elbv2": "Elastic Load Balancing"}


class AwsInfraChecker:
    """Reads the resources ``targets`` names and judges the checklist.

    Args:
        dynamodb: a boto3 ``dynamodb`` client (in ``Targets.region``, as all five).
        sqs: a boto3 ``sqs`` client.
        cloudwatch: a boto3 ``cloudwatch`` client.
        sns: a boto3 ``sns`` client.
        cloudformation: a boto3 ``cloudformation`` client.
        targets: the names to check.
        stack_environments: stack -> the account and region the CDK app deploys it to (its
            manifest); a stack missing here is read in ``Targets.region``. A stack in another
            region is read there; one in another account than ``account`` is not read (these
            credentials cannot) and fails its item saying so, never passes on a same-named
            stack of this account.
        resource_places: (kind, name) -> the stack whose template defines that table, queue,
            dashboard, alarm or topic, and where it goes (``rollway.infra.resource_places``);
            read there, as a stack is, with the same rule for another account. One missing here
            is read in ``Targets.region``, and so is what rollway itself uses there
            (``used_by_rollway``: its tables, the alert topic), whose item fails when placed elsewhere.
        account: the account the clients read (STS); needed with ``stack_environments`` or
            ``resource_places``.
        clients_in: region -> a client factory there (``service -> client``); needed when
            something is read outside ``Targets.region``.
        construct_ids: the CDK app's construct id -> CloudFormation name of its stacks with a
            stackName of their own (``AppStacks.construct_ids``): a stack of ``Targets.stacks``
            named by its construct id fails saying which name to give instead. None (the app was
            not read): a missing stack is looked for by its construct id in the ``aws:cdk:path``
            metadata of the account's other deployed templates, for the same hint.
        app_stacks: the CloudFormation names of the CDK app's stacks (``AppStacks.names``), when
            the app was read: a missing stack of ``Targets.stacks`` it does not define fails naming
            the closest of them (a misspelt name).
        read_seconds: how long one read may wait for its answer (see the module docstring;
            ``rollway.deadline.read_bound``).
        say: where a read still waiting says so, every 10 s, and the listener's read each time it
            is asked again while throttled (the run's log).
        elbv2: a boto3 ``elbv2`` client in ``Targets.region``, needed with ``canary_header``.
        canary_header: the header ``validate_deployment`` pins its HTTP checks with (its
            ``spec.canary_header``): the listener's rules are read for the rule pinning them
            (``rollway.pinning``), an item of its own. None: not pinned, not read.
        checks: the requests the validation's checks send (``rollway.validation.check_requests``
            of its spec), with ``canary_header``: the pin is judged by them, as the validation
            judges it (``AlbRouter.pin``). Empty (the default): by the weighted rule's requests,
            not as the validation judges it: a rule ahead of the pin on a path no check asks for
            fails the item, though the validation sends its checks pinned; one taking a check the
            weighted rule does not match (/health beside /edit/*) passes it, though the validation
            refuses to send them.
        clock: what ``read_seconds`` is measured on (``rollway.deadline.BoundClock``), and how
            long a read given up on says it was throttled: real time unless a test gives its own.

    Raises:
        ValueError: ``read_seconds`` is not a read's bound; placements without ``account``, or
            placing something in another region of ``account`` without ``clients_in``; a
            ``canary_header`` that is no header, or without ``elbv2``; ``checks`` without
            ``canary_header`` (before any call).
        Whatever ``clients_in`` raises for a region something is read in: its clients are made
            here, before any read.
    """

    def __init__(self, dynamodb: Any, sqs: Any, cloudwatch: Any, sns: Any, cloudformation: Any,
                 targets: Targets, *, stack_environments: Mapping[str, StackEnvironment] | None = None,
                 resource_places: Mapping[tuple[str, str], ResourcePlace] | None = None,
                 account: str | None = None, clients_in: Callable[[str], Callable[[str], Any]] | None = None,
                 construct_ids: Mapping[str, str] | None = None, app_stacks: Sequence[str] | None = None,
                 read_seconds: float = READ_SECONDS,
                 say: Callable[[str], None] = lambda _: None, elbv2: Any = None,
                 canary_header: str | None = None, checks: Sequence[CheckRequest] = (),
                 clock: BoundClock = REAL_TIME) -> None:
        read_bound(read_seconds)
        if checks and canary_header is None:
            raise ValueError("checks needs canary_header: the checks' requests judge the rule pinning them by it")
        if canary_header is not None:
            # As the validation sends it; one it would refuse is refused here too.
            canary_header = header_line(canary_header)
            if elbv2 is None:
                raise ValueError("canary_header needs elbv2: a client to read the listener's rules with")
        environments = dict(stack_environments or {})
        places = dict(resource_places or {})
        if (environments or places) and account is None:
            raise ValueError("stack_environments and resource_places need account: the account these clients read")
        own = set(used_by_rollway(targets))
        elsewhere = sorted({e.region for e in [*environments.values(),
                                               *(p.environment for k, p in places.items() if k not in own)]
                            if e.region != targets.region and e.account == account})
        if elsewhere and clients_in is None:
            raise ValueError(f"reading in {', '.join(elsewhere)} needs clients_in: clients in that region")
        # Each region's clients made now, before any read (and, in a deploy, before any stack is
        # deployed): credentials that cannot act there (a role STS will not let them assume in
        # that region) stop the run in one line, not as the item of every stack read there,
        # failed after the deploys with a DescribeStacks error naming no remedy.
        for region in elsewhere:
            assert clients_in is not None
            clients_in(region)
        self._environments = environments
        # What rollway itself uses is read where rollway uses it; the app placing it elsewhere
        # fails its item (Observation.misplaced) instead of being read there.
        self._misplaced = {key: f"the CDK app's stack {p.stack} deploys it to {p.environment.uri}"
                           for key, p in places.items() if key in own
                           and (p.environment.account, p.environment.region) != (account, targets.region)}
        self._places = {key: p for key, p in places.items() if key not in own}
        self._defined_by = {key: p.stack for key, p in places.items()}
        self._account = account
        self._clients_in = clients_in
        self._home = {"dynamodb": dynamodb, "sqs": sqs, "cloudwatch": cloudwatch, "sns": sns,
                      "cloudformation": cloudformation, "elbv2": elbv2}
        self._canary_header = canary_header
        self._checks = tuple(checks)
        self._targets = targets
        self._construct_ids = dict(construct_ids or {})
        # Unread app: a missing stack's construct id is looked for in the deployed templates instead.
        self._app_read = construct_ids is not None
        self._app_stacks = tuple(app_stacks) if app_stacks is not None else None
        self._read_seconds, self._say, self._clock = read_seconds, say, clock
        # (service, region) -> why what is left to read there is not asked: it did not answer.
        self._unanswered: dict[tuple[str, str], str] = {}

    def check(self) -> Checklist:
        """Every checklist item, passed or failed with its reason. Never raises for a failed read."""
        return evaluate(self._targets, self.observe())

    def observe(self) -> Observation:
        """Everything the checklist needs, read from AWS, each where the app deploys it."""
        t = self._targets
        # A service silent in an earlier check is asked again: kept, the task's retry said every read
        # of it "not asked", and read nothing.
        self._unanswered.clear()
        stacks = {name: self._read_stack(name) for name in t.stacks}
        stack_regions = {name: e.region for name, e in self._environments.items()
                         if name in stacks and e.region != t.region and e.account == self._account}
        tables = {spec.name: self._read_in(("table", spec.name), "dynamodb", f"DescribeTable {spec.name}",
                                           lambda client, n=spec.name: client.describe_table(TableName=n)["Table"])
                  for spec in all_tables(t)}
        names = dict.fromkeys(n for q in t.queues for n in (q.name, q.dlq_name))
        queues = {name: self._read_in(("queue", name), "sqs", f"GetQueueAttributes {name}",
                                      lambda client, n=name: self._queue(client, n)) for name in names}
        redrive_targets = self._redrive_targets(queues)
        dashboard = self._read_in(("dashboard", t.dashboard), "cloudwatch", f"GetDashboard {t.dashboard}",
                                  lambda client: client.get_dashboard(DashboardName=t.dashboard))
        alarms = self._alarms()
        topic_key = ("topic", t.alert_topic)
        topic = self._read_in(topic_key, "sns", "ListTopics", self._topic_arn)
        subscriptions: Any = None
        if isinstance(topic, str):
            subscriptions = self._read_in(topic_key, "sns", f"ListSubscriptionsByTopic {t.alert_topic}",
                                          lambda client: self._subscriptions(client, topic))
        regions = {key: region for key in checked_resources(t) if (region := self._elsewhere(key)) is not None}
        missing = [name for name, stack in stacks.items() if stack is None and name not in self._environments]
        construct_ids = self._construct_ids if self._app_read or not missing else {
            **self._construct_ids, **self._deployed_as(missing)}
        return Observation(stacks=stacks, tables=tables, queues=queues, dashboard=dashboard, alarms=alarms,
                           topic_arn=topic, subscriptions=subscriptions, stack_regions=stack_regions,
                           regions=regions, misplaced=self._misplaced, defined_by=self._defined_by,
                           construct_ids=construct_ids, redrive_targets=redrive_targets,
                           app_stacks=self._app_stacks,
                           pin=self._read_pin(self._canary_header) if self._canary_header is not None else None)

    def _read_pin(self, header: str) -> PinRead:
        """The listener rule pinning the validation's checks carrying ``header``, read in
        ``Targets.region``, where the validation reads it (``AlbRouter.pin``), and judged as it
        judges it when their requests were given (``checks``)."""
        t = self._targets
        router = AlbRouter(self._home["elbv2"], t)
        listener = f"{t.load_balancer}:{t.listener_port}"
        # Its asks again while throttled said in the run's log (``say``), as the validation's read of
        # the same rules says them: unsaid, the checklist waited on them without a line. Until this
        # read ends: given up on, it goes on in its thread, and its next "asking again" reached the
        # log after its item said it was given up on.
        say = Hushable(self._say)
        try:
            with calls_begun(self._home["elbv2"]) as begun:
                found: Any = self._answered("elbv2", t.region, "DescribeRules",
                                            lambda _: router.pin(header, checks=self._checks, say=say))
            listener += f" ({router.listener_arn})"
        except TargetNotFound as err:
            # The load balancer, listener, a target group or the weighted rule: nothing to pin to yet.
            found = (f"{err}, so nothing pins them yet: once it exists, create a listener rule ahead of the weighted "
                     f"rule, with the http-header condition `{header}` and one action forwarding to "
                     f"{t.canary_target_group} alone")
        except (ClientError, BotoCoreError, Unanswered) as err:
            # The call that failed: the load balancer, listener and target groups are read before
            # DescribeRules, and a refused DescribeTargetGroups was said a failed DescribeRules. An
            # error naming none (no connection, no answer in time) is the last call begun's.
            called = getattr(err, "operation_name", None) or (begun[-1] if begun else "none asked")
            found = _failed(called, err, t, t.load_balancer)
        except AdapterError as err:  # more than one rule on the weighted rule's path: which one is not known
            found = str(err)
        finally:
            say.hush()
        return PinRead(header=header, listener=listener, found=found)

    def _deployed_as(self, missing: list[str]) -> dict[str, str]:
        """Missing stack -> the CloudFormation name of the deployed stack it is the construct id of.

        Without the app, a Targets.stacks entry written as a construct id (what ``cdk deploy``
        takes) failed "does not exist: deploy it", of a stack deployed under the app's stackName.
        CDK records each resource's construct path (``aws:cdk:path``, ``<stack id>/...``) in the
        template's metadata, so the deployed stack it means is found exactly, not guessed from its
        name. Only a hint: a read that fails finds nothing, and no more than
        ``_TEMPLATES_SEARCHED`` templates are read.
        """
        try:
            return self._answered("cloudformation", self._targets.region, "DescribeStacks",
                                  lambda client: self._search(client, set(missing)))
        except (ClientError, BotoCoreError, Unanswered):
            return {}  # the item still fails as missing, without the hint

    def _search(self, cloudformation: Any, wanted: set[str]) -> dict[str, str]:
        """Construct id of ``wanted`` -> the deployed stack whose template names it."""
        found: dict[str, str] = {}
        candidates = [stack["StackName"] for page in cloudformation.get_paginator("describe_stacks").paginate()
                      for stack in page.get("Stacks", ()) if stack.get("StackStatus") not in _GONE
                      and stack["StackName"] not in self._targets.stacks]
        for name in candidates[:_TEMPLATES_SEARCHED]:
            body = cloudformation.get_template(StackName=name).get("TemplateBody")
            for construct_id in _construct_ids_of(body) & (wanted - found.keys()):
                found[construct_id] = name
            if found.keys() == wanted:
                break
        return found

    def _answered(self, service: str, region: str, what: str, call: Callable[[Any], Any]) -> Any:
        """``call(client)``, a read ``what`` (``<operation> [<name>]``) with the ``service`` client
        of ``region``, given up on after ``read_seconds``; not made when that service did not
        answer there before in this check.

        Raises:
            Unanswered: the service did not answer this read, or an earlier one, in time, or
                answered its last call throttled until then.
        """
        key = (service, region)
        if key in self._unanswered:
            raise Unanswered(self._unanswered[key])
        name = _NAMES[service] + ("" if region == self._targets.region else f" in {region}")
        client = self._client(service, region)
        with calls_begun(client) as begun, throttled_tries(client, self._clock.now) as (throttled, in_flight):
            try:
                return answered(name, self._read_seconds, lambda: call(client), self._say, clock=self._clock)
            except Unanswered:
                # The call it did not answer: a read may make several (GetQueueUrl before
                # GetQueueAttributes; the load balancer, listener and target groups before DescribeRules).
                # Copied: the read given up on runs on, and may still add to them.
                called, waiting = list(begun), set(in_flight)
                tries = [t for t in list(throttled) if called and t.operation == called[-1]]
                if not tries:
                    self._unanswered[key] = (f"not asked: {name} did not answer {_unanswered_call(what, called)} "
                                             f"within {seconds_said(self._read_seconds)}")
                    raise
                # It answered, each try: throttled (botocore's tries, and the pin's asks, each waiting
                # longer), "did not answer" sent a person to a silent service or the network. Unless a
                # try after them was not answered either: then both are said.
                said = _throttled(name, _unanswered_call(what, called), tries, self._read_seconds,
                                  unanswered=called[-1] in waiting)
                self._unanswered[key] = f"not asked: {said}"
                raise Unanswered(said) from None

    def _client(self, service: str, region: str) -> Any:
        if region == self._targets.region:
            return self._home[service]
        assert self._clients_in is not None  # checked at construction
        return self._clients_in(region)(service)

    def _elsewhere(self, key: tuple[str, str]) -> str | None:
        """The region of this account ``key`` is read in, when not ``Targets.region``."""
        place = self._places.get(key)
        if place is None or place.environment.account != self._account:
            return None
        return None if place.environment.region == self._targets.region else place.environment.region

    def _other_account(self, key: tuple[str, str]) -> ReadFailed | None:
        """The failed read of a resource whose stack goes to another account (None when it does not)."""
        place = self._places.get(key)
        if place is None or place.environment.account == self._account:
            return None
        # Read here, a resource of the same name in this account would pass for it.
        return ReadFailed(f"its stack {place.stack} is in {place.environment.uri}",
                          f"another account than the one these credentials read ({self._account}), so it was not "
                          f"read; check it with credentials for account {place.environment.account}")

    def _read_in(self, key: tuple[str, str], service: str, what: str, call: Callable[[Any], Any]) -> Any:
        """``call(client)`` with the ``service`` client of the region the resource ``key`` is read in."""
        if (refused := self._other_account(key)) is not None:
            return refused
        region = self._elsewhere(key)
        # Its name stands for the resource a refusal does not name (moto names none).
        if region is None:
            return _read(what, lambda: self._answered(service, self._targets.region, what, call), self._targets,
                         key[1])
        return _read(f"{what} in {region}", lambda: self._answered(service, region, what, call), self._targets, key[1])

    def _read_stack(self, name: str) -> Observed:
        """The stack read where the app deploys it; another account's as a failed read saying why."""
        environment = self._environments.get(name)
        if environment is None or (environment.account == self._account and environment.region == self._targets.region):
            return _read(f"DescribeStacks {name}", lambda: self._answered(
                "cloudformation", self._targets.region, f"DescribeStacks {name}",
                lambda client: self._stack(client, name)), self._targets)
        if environment.account != self._account:
            # Read here, a stack of the same name in this account would pass for it.
            return ReadFailed(f"it is in {environment.uri}",
                              f"another account than the one these credentials read ({self._account}), so it "
                              f"was not read; check it with credentials for account {environment.account}")
        region = environment.region
        return _read(f"DescribeStacks {name} in {region}", lambda: self._answered(
            "cloudformation", region, f"DescribeStacks {name}", lambda client: self._stack(client, name)),
            self._targets)

    @staticmethod
    def _stack(client: Any, name: str) -> dict[str, Any] | None:
        try:
            return client.describe_stacks(StackName=name)["Stacks"][0]
        except ClientError as err:
            error = err.response.get("Error", {})
            if error.get("Code") == "ValidationError" and _NO_STACK.search(str(error.get("Message", ""))):
                return None
            raise

    def _redrive_targets(self, queues: Mapping[str, Observed]) -> dict[str, Observed]:
        """deadLetterTargetArn -> its queue's URL (None: it no longer exists), for each work queue
        redriving to a queue not read already, of the work queue's own account and region (the
        only one it can redrive to)."""
        read = {a.get("QueueArn") for a in queues.values() if isinstance(a, Mapping)}
        found: dict[str, Observed] = {}
        for spec in self._targets.queues:
            queue = queues.get(spec.name)
            if not isinstance(queue, Mapping):
                continue
            target = redrive_target(queue)
            if not target or target in read or target in found:
                continue
            arn, own = target.split(":"), str(queue.get("QueueArn") or "").split(":")
            if len(arn) != 6 or arn[:5] != own[:5]:  # arn:partition:sqs:region:account:name
                continue
            region = arn[3]
            if region not in (self._targets.region, self._elsewhere(("queue", spec.name))):
                continue
            found[target] = _read(f"GetQueueUrl {arn[5]}", lambda r=region, n=arn[5]: self._answered(
                "sqs", r, f"GetQueueUrl {n}", lambda client: client.get_queue_url(QueueName=n)["QueueUrl"]),
                self._targets, arn[5])
        return found

    @staticmethod
    def _queue(sqs: Any, name: str) -> dict[str, Any]:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    def _alarms(self) -> dict[str, Observed]:
        """Each alarm, read in batches per region (those of another account not read)."""
        found: dict[str, Observed] = {}
        by_region: dict[str, list[str]] = {}
        for name in self._targets.alarms:
            if (refused := self._other_account(("alarm", name))) is not None:
                found[name] = refused
            else:
                by_region.setdefault(self._elsewhere(("alarm", name)) or self._targets.region, []).append(name)
        for region, wanted in by_region.items():
            where = "" if region == self._targets.region else f" in {region}"
            try:
                found.update(self._answered("cloudwatch", region, "DescribeAlarms", lambda client: self._alarms_in(
                    client, wanted, where, self._targets)))
            except Unanswered as err:
                found.update(dict.fromkeys(wanted, _failed(f"DescribeAlarms{where}", err, self._targets)))
        return {name: found[name] for name in self._targets.alarms}

    @staticmethod
    def _alarms_in(cloudwatch: Any, wanted: list[str], where: str, targets: Targets) -> dict[str, Observed]:
        try:
            found: dict[str, Observed] = {}
            # DescribeAlarms takes at most 100 names per call. Its grant stays on "*" although the
            # names are known: CloudWatch returns composite alarms only to a DescribeAlarms
            # permission scoped to "*" ("You can't return information about composite alarms if
            # your cloudwatch:DescribeAlarms permission has a narrower scope",
            # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html):
            # scoped to alarm:webordinary-*, a composite alarm would read as missing.
            for start in range(0, len(wanted), 100):
                pages = cloudwatch.get_paginator("describe_alarms").paginate(
                    AlarmNames=wanted[start:start + 100], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
                for page in pages:
                    for alarm in [*page.get("MetricAlarms", ()), *page.get("CompositeAlarms", ())]:
                        found[alarm["AlarmName"]] = alarm
        except (ClientError, BotoCoreError) as err:
            return dict.fromkeys(wanted, _failed(f"DescribeAlarms{where}", err, targets))
        return {name: found.get(name) for name in wanted}

    def _topic_arn(self, sns: Any) -> str | None:
        name = self._targets.alert_topic
        for page in sns.get_paginator("list_topics").paginate():
            for topic in page.get("Topics", ()):
                if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                    return topic["TopicArn"]
        return None

    @staticmethod
    def _subscriptions(sns: Any, topic_arn: str) -> list[dict[str, Any]]:
        return [s for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
                for s in page.get("Subscriptions", ())]


def _unanswered_call(what: str, begun: Sequence[str]) -> str:
    """The read ``what`` (``GetQueueAttributes <queue>``) said by the call of it that was not
    answered, the last ``begun`` (``GetQueueUrl <queue>``); ``what`` when none was begun."""
    if not begun:
        return what
    operation, _, name = what.partition(" ")
    return what if begun[-1] == operation else f"{begun[-1]} {name}".rstrip()


def _throttled(name: str, call: str, tries: Sequence[ThrottledTry], bound: float, *, unanswered: bool) -> str:
    """What a read given up on says when ``name`` answered its last call, ``call``, throttled:
    ``tries`` of it since its last other answer, in the time from the first sent to the last
    answered (counted from the read's start, it took in the read's other calls before them, and
    said a read whose lookups had taken most of its bound had been throttled all that time);
    ``unanswered``: a try after them was in flight, not answered, when the read was given up on."""
    count = "1 try" if len(tries) == 1 else f"{len(tries)} tries"
    then = ", then did not answer the next try" if unanswered else ""
    return (f"{name} refused {call} as throttled ({tries[-1].said}), {count} in "
            f"{wait_said(tries[-1].at - tries[0].sent)}{then}, and the read was given up on after {seconds_said(bound)}")


def _construct_ids_of(template: Any) -> set[str]:
    """The stack construct ids a deployed template's ``aws:cdk:path`` metadata names (a CDK
    stack's resources are at ``<stack id>/<construct>/...``); none for a template not made by CDK."""
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except ValueError:
            return set()  # YAML: not what cdk synthesizes
    if not isinstance(template, Mapping):
        return set()
    paths = [(resource.get("Metadata") or {}).get("aws:cdk:path") for resource in
             (template.get("Resources") or {}).values() if isinstance(resource, Mapping)]
    return {path.split("/", 1)[0] for path in paths if isinstance(path, str) and "/" in path}


def _said(err: ClientError | BotoCoreError, targets: Targets, resource: str | None = None) -> str:
    """What a failed read says (``refusal_said``), a refusal by the infrastructure policy's
    statement on ``resource``, the name read, when AWS names none. ``targets``, the run's own
    names, tell which of the policy's names one of the user's stands for."""
    return refusal_said(err, INFRASTRUCTURE_POLICY, resource=resource, targets=targets)


def _read(what: str, call: Callable[[], Any], targets: Targets, resource: str | None = None) -> Any:
    """``call()``; None when what it reads does not exist; ReadFailed when the read failed, saying
    why (``_failed``)."""
    try:
        return call()
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in _NOT_FOUND:
            return None
        return _failed(what, err, targets, resource)
    except (BotoCoreError, Unanswered) as err:
        return _failed(what, err, targets, resource)


READ_AGAIN = "run verify_infrastructure again (it only reads)"
"""What to do about a read that failed on the way (throttled past botocore's retries, no answer,
no connection): the next run most often reads it."""


def _failed(what: str, err: ClientError | BotoCoreError | Unanswered, targets: Targets,
            resource: str | None = None) -> ReadFailed:
    """The failed read ``what``, saying why and what to do: a refusal names the grant to add
    (``_said``); one that failed on the way says to read again (``READ_AGAIN``): a throttled item
    said only "Throttling: Rate exceeded", and left a person to guess whether the resource was at fault."""
    if isinstance(err, Unanswered):
        return ReadFailed(what, f"{err}; {READ_AGAIN}")
    said = _said(err, targets, resource) if isinstance(err, ClientError) else aws_message(err)
    # Credentials AWS takes for no call fail the next run alike: not the way out.
    if is_denied(err) or unusable_credentials(err):
        return ReadFailed(what, said)
    # An answer the next run gets again (a name AWS refuses as invalid, a region not enabled):
    # "read again" alone sent a person round that loop.
    return ReadFailed(what, f"{said}; {READ_AGAIN if failed_in_passing(err) else NOT_MENDED_BY_READING}")


NOT_MENDED_BY_READING = ("a re-run alone gets the same answer: fix what AWS names (most often the name or region the "
                         "targets give), then run verify_infrastructure again")
"""What to do about a read AWS refused for what it was asked (not its permission, nor its load)."""
