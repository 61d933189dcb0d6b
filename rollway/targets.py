"""Every AWS name rollway touches, in one model. Webordinary's names are the defaults.

``blocks.targets.RollwayTargets`` is this same model as a Prefect Block, so a user can edit
it in the Prefect UI; nothing else in rollway spells one of these names.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from pydantic import ConfigDict, Field, PrivateAttr, ValidationInfo, field_serializer, field_validator, model_validator

from rollway.aws.regions import unknown_region
from rollway.image import repository_problem
from rollway.known_keys import KnownKeys

# AWS regions: us-west-2, eu-central-1, us-gov-west-1, us-iso-east-1, ... The syntax; a name in
# the form of an AWS partition's regions must also be one botocore lists (rollway.aws.regions).
# A two-letter prefix (us-west-2, us-gov-west-1, us-isob-east-1), or the European Sovereign
# Cloud's eusc (eusc-de-east-1): a made-up mars-north-1 is still refused.
REGION = re.compile(r"^(?:[a-z]{2}|eusc)(?:-[a-z]+)+-\d+$")
# CloudFormation stack names (the flows' StackName parameters too).
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
# A registry host of AWS's (<account>.dkr.ecr.<region>.amazonaws.com, .com.cn in China).
_AWS_HOST = re.compile(r"\.amazonaws\.com(?:\.cn)?$")


class _NameRule(NamedTuple):
    """AWS's own rule for one kind of name (botocore's models state few; these are AWS's docs')."""

    pattern: re.Pattern[str]
    rule: str

    def check(self, field: str, value: str) -> str:
        # fullmatch: ``$`` also matches before a final line break, and "webordinary-edit-cluster\n"
        # pasted from a terminal passed, to be looked up in AWS as such.
        if not self.pattern.fullmatch(value):
            if value.startswith("arn:"):
                # What the console shows and copies: refused with the naming rule alone, nobody
                # could tell the ARN was what was wrong, nor what to give instead.
                name = _name_in_arn(value)
                given = f"the name ({name!r})" if name and self.pattern.fullmatch(name) else "the name"
                raise ValueError(f"{field} {value!r} is an ARN: give {given}, not the ARN")
            raise ValueError(f"{field} {value!r} is not a valid AWS resource name: {self.rule}")
        return value


def _name_in_arn(arn: str) -> str | None:
    """The resource's name in ``arn`` (arn:<partition>:<service>:<region>:<account>:<resource>), or None.

    SNS's resource is the topic's name; ELBv2's is loadbalancer/<app|net|gwy>/<name>/<id>; the
    others end in the name (ECS's service/<cluster>/<name>, task-definition/<family>:<revision>,
    DynamoDB's table/<name>, CloudWatch's dashboard/<name>)."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or not parts[5]:
        return None
    service, resource = parts[2], parts[5]
    segments = resource.split("/")
    if service == "elasticloadbalancing":
        return segments[2] if len(segments) == 4 and segments[0] == "loadbalancer" else None
    if service == "ecs" and segments[0] == "task-definition":
        return segments[-1].split(":")[0]
    return segments[-1]


# ELBv2's load balancer and target group names: alphanumerics and hyphens, no hyphen at either end.
_ELB_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?"
_ELB_RULE = "ELBv2 takes 1-32 letters, digits and hyphens, not starting or ending with a hyphen"
_TARGET_GROUP_NAME = _NameRule(re.compile(_ELB_NAME), _ELB_RULE)
_QUEUE_NAME = _NameRule(re.compile(r"[A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo"),
                        "SQS takes 1-80 letters, digits, hyphens and underscores (a FIFO queue's ending in .fifo)")
_ECS_NAME = _NameRule(re.compile(r"[A-Za-z0-9_-]{1,255}"), "ECS takes 1-255 letters, digits, hyphens and underscores")
# The characters are repository_problem's to judge (docker's rule, ECR's too); the length is ECR's own.
_ECR_NAME = _NameRule(re.compile(r"[a-z0-9._/-]{2,256}"),
                      "ECR takes 2-256 characters (lowercase letters, digits, '.', '_', '-' and '/')")
_TABLE_NAME = _NameRule(re.compile(r"[A-Za-z0-9_.-]{3,255}"), "DynamoDB takes 3-255 letters, digits, '.', '_' and '-'")
# Each name field, with AWS's rule for it: one loose check for all took a 40-character load
# balancer, a table "ab" or a cluster "a/b", which only the first AWS call refused, after the
# credentials had loaded and the run had begun.
_NAME_RULES: dict[str, _NameRule] = {
    "load_balancer": _NameRule(re.compile(rf"(?!internal-){_ELB_NAME}"), f"{_ELB_RULE}, not starting with 'internal-'"),
    "cluster": _ECS_NAME, "stable_service": _ECS_NAME, "canary_service": _ECS_NAME,
    "task_family": _ECS_NAME, "container_name": _ECS_NAME,
    "flags_table": _TABLE_NAME, "rollouts_table": _TABLE_NAME,
    # A FIFO topic's name ends in .fifo: _standard_topic refuses it (and its ARN) first, saying why.
    "alert_topic": _NameRule(re.compile(r"[A-Za-z0-9_-]{1,256}|[A-Za-z0-9_-]{1,251}\.fifo"),
                             "SNS takes 1-256 letters, digits, hyphens and underscores"),
    "dashboard": _NameRule(re.compile(r"[A-Za-z0-9_-]{1,255}"),
                           "CloudWatch takes 1-255 letters, digits, hyphens and underscores"),
}
_TARGET_GROUP_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:elasticloadbalancing:[a-z0-9-]+:\d{12}:"
    rf"targetgroup/{_ELB_NAME}/[0-9a-f]{{16}}$"
)

# What the ECS console and `aws ecs list-clusters` show for a cluster.
_CLUSTER_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:ecs:(?P<region>[a-z0-9-]+):\d{12}:cluster/(?P<name>[A-Za-z0-9_-]{1,255})")


# A key no model knows is refused, not dropped: a block saved as {"canary_servce": ...} loaded
# with Webordinary's canary service, and the rollout mixed two teams' services and tables.
_STRICT = ConfigDict(frozen=True, extra="forbid")


class _KnownKeys(KnownKeys):
    """Every targets model: frozen, and a key it does not know refused naming the one meant."""

    model_config = _STRICT


class QueueSpec(_KnownKeys):
    """An SQS work queue and the dead-letter queue its failures are redriven to."""

    name: str
    dlq_name: str
    max_receive_count: int = Field(default=3, ge=1, le=1000)

    @field_validator("name", "dlq_name")
    @classmethod
    def _queue_name(cls, value: str, info: ValidationInfo) -> str:
        return _QUEUE_NAME.check({"name": "queue", "dlq_name": "dead-letter queue"}[info.field_name], value)

    @field_validator("dlq_name")
    @classmethod
    def _dlq_is_another_queue(cls, value: str, info: ValidationInfo) -> str:
        # A queue redriving into itself never parks a failing message: the checklist would pass a
        # queue with no dead-letter queue at all, and the DLQ-depth guardrail would watch live work.
        if value == info.data.get("name"):
            raise ValueError(f"the dead-letter queue of {value!r} must be another queue, not the queue itself")
        # SQS names a FIFO queue, and only one, with .fifo. One of the other type can never be the
        # queue's DLQ: the DLQ-depth guardrail would watch a queue no failed message reaches.
        name = info.data.get("name")
        if name is not None and name.endswith(".fifo") != value.endswith(".fifo"):
            raise ValueError(f"the dead-letter queue {value!r} of {name!r} is of the other type: SQS moves a FIFO "
                             "queue's failed messages only to a FIFO queue (a name ending in .fifo), and a standard "
                             "queue's only to a standard queue")
        return value


class TableSpec(_KnownKeys):
    """A DynamoDB table the pre-deployment checklist expects, with its key and indexes."""

    name: str
    hash_key: str
    range_key: str | None = None
    indexes: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _table_name(cls, value: str) -> str:
        return _TABLE_NAME.check("table", value)

    @field_validator("hash_key", "range_key", "indexes")
    @classmethod
    def _keys(cls, value):
        for key in (value if isinstance(value, tuple) else (value,) if value is not None else ()):
            _non_blank(key)
        return value


# Spaces and tabs, as pasted around a name from a console or a document. A line break keeps its
# own refusal (the naming rule's, or the repository's): read from a file, it is no typing slip.
_SPACES = " \t"


def _spaced(field: str, value: Any) -> str:
    """What to say of ``value`` when spaces surround it ("" when none do)."""
    if not isinstance(value, str) or not value.strip(_SPACES) or value == value.strip(_SPACES):
        return ""
    return (f"{field} {value!r} has surrounding spaces: AWS would take them as part of the name; give the name "
            "without them")


def _non_blank(value: str) -> str:
    # Surrounding spaces are refused, not stripped: AWS would take them as part of the name.
    if not value.strip() or value != value.strip():
        raise ValueError(f"{value!r} must not be blank or have surrounding spaces")
    return value


def _default_queues() -> tuple[QueueSpec, ...]:
    return (
        QueueSpec(name="webordinary-email-queue", dlq_name="webordinary-email-dlq"),
        QueueSpec(name="webordinary-edit-input", dlq_name="webordinary-edit-input-dlq"),
        QueueSpec(name="webordinary-edit-output", dlq_name="webordinary-edit-output-dlq"),
    )


def _default_tables() -> tuple[TableSpec, ...]:
    return (
        TableSpec(name="webordinary-edit-sessions", hash_key="sessionId", indexes=("userId-index",)),
        TableSpec(name="webordinary-container-ownership", hash_key="projectKey"),
    )


class Targets(_KnownKeys):
    """Names of the service under rollout and of everything around it.

    Region and names only: ARNs are looked up from these at run time, so the same model
    serves a real account and the embedded one. A key it does not know is refused.
    """

    region: str = "us-west-2"
    # Load balancing: the rule that forwards to the stable and the canary target group.
    load_balancer: str = "webordinary-edit-alb"
    listener_port: int = Field(default=80, ge=1, le=65535)
    rule_path: str = "/*"
    rule_host: str | None = Field(
        default=None, description="the host-header value of the rule, when the listener routes by host on one path",
    )
    stable_target_group: str = "webordinary-edit-stable"
    canary_target_group: str = "webordinary-edit-canary"
    # ECS.
    cluster: str = "webordinary-edit-cluster"
    stable_service: str = "webordinary-edit-service"
    canary_service: str = "webordinary-edit-service-canary"
    task_family: str = "webordinary-edit-task"
    container_name: str = "edit-container"
    container_port: int = Field(default=8080, ge=1, le=65535)
    ecr_repository: str = "webordinary/edit-container"
    # State kept by rollway.
    flags_table: str = "webordinary-feature-flags"
    rollouts_table: str = "webordinary-rollouts"
    # Messaging and monitoring.
    queues: tuple[QueueSpec, ...] = Field(default_factory=_default_queues)
    tables: tuple[TableSpec, ...] = Field(default_factory=_default_tables)
    alert_topic: str = "webordinary-alerts"
    metrics_namespace: str = "Webordinary/Production"
    dashboard: str = "webordinary-edit-dashboard"
    alarms: tuple[str, ...] = (
        "webordinary-edit-high-error-rate",
        "webordinary-edit-dlq-messages",
        "webordinary-edit-slow-responses",
    )
    # CDK stacks, in the order they must be deployed.
    stacks: tuple[str, ...] = (
        "WebordinaryECRStack",
        "WebordinarySecretsStack",
        "WebordinaryEFSStack",
        "WebordinaryALBStack",
        "WebordinarySQSStack",
        "WebordinarySessionStack",
        "WebordinaryFargateStack",
        "WebordinaryMonitoringStack",
    )

    # The cluster's ARN when it was given as one (its name is ``cluster``): the account it names
    # is checked against the credentials' before any write (``arns``).
    _cluster_arn: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_cluster_arn(cls, data: Any, handler: Any) -> Any:
        targets = handler(data)
        given = data.get("cluster") if isinstance(data, dict) else getattr(data, "_cluster_arn", None)
        if isinstance(given, str) and given.startswith("arn:"):
            targets._cluster_arn = given
        return targets

    @field_serializer("cluster")
    def _cluster_as_given(self, cluster: str) -> str:
        # Saved (a block) or passed on (a flow's parameters) as given: by its name, the account
        # its ARN named was lost, and with it the refusal of another account's cluster.
        return self._cluster_given or cluster

    @property
    def _cluster_given(self) -> str | None:
        # The ARN only while it names the cluster: a copy given another cluster (model_copy
        # does not validate) does not keep the ARN of the first.
        arn = self._cluster_arn
        return arn if arn is not None and arn.endswith(f"/{self.cluster}") else None

    @property
    def arns(self) -> tuple[tuple[str, str], ...]:
        """(field, ARN) of each target given as an ARN: one that names its account. The cluster
        is used by its name, which ECS looks up in the credentials' account, whatever account
        its ARN named (``rollway.preflight_checks.account_refusal``)."""
        given = (("cluster", self._cluster_given), ("stable_target_group", self.stable_target_group),
                 ("canary_target_group", self.canary_target_group))
        return tuple((field, arn) for field, arn in given if arn is not None and arn.startswith("arn:"))

    @field_validator(*_NAME_RULES)
    @classmethod
    def _aws_name(cls, value: str, info: ValidationInfo) -> str:
        return _NAME_RULES[info.field_name].check(info.field_name, value)

    @field_validator("ecr_repository")
    @classmethod
    def _repository_name(cls, value: str, info: ValidationInfo) -> str:
        # A name in the account's own ECR in ``region``. A URI (what the ECR console shows, and
        # how a repository in another account or region is written) or a name docker and ECR do
        # not take (upper case, a doubled or trailing '/') was refused only by the container flow,
        # once the credentials were loaded (STS asked), or looked up as "not found: create it
        # first". Only an AWS host (or a host:port) is taken for a registry: ECR names take '.' in
        # any component (acme.web/app), which docker's "a '.' makes it a host" would misread.
        host, slash, name = value.partition("/")
        if slash and (_AWS_HOST.search(host) or ":" in host):
            region = info.data.get("region", "the region")
            raise ValueError(f"{value!r} is a repository URI: give the repository name ({name!r}); the registry is "
                             f"this account's ECR in {region} (a repository in another account or region is not "
                             "supported)")
        problem = repository_problem(value)
        if problem:
            raise ValueError(f"{value!r} {problem}")
        return _ECR_NAME.check(info.field_name, value)

    @field_validator("cluster", mode="before")
    @classmethod
    def _cluster_by_name(cls, value: Any, info: ValidationInfo) -> Any:
        # An ARN (what the console shows) is taken as the cluster's name, which every ECS call takes
        # too: kept as an ARN, the same cluster named both ways would be two clusters to the
        # canary's lock and to the clean-up's in-use checks. Like every other name of Targets, it
        # is looked up in the credentials' account: the ARN is kept (``arns``) so that an ARN of
        # another account is refused before any write. Its region must be Targets.region, where
        # the clients are made.
        if not isinstance(value, str) or not value.startswith("arn:"):
            return value
        match = _CLUSTER_ARN.fullmatch(value)
        if match is None:
            raise ValueError(f"cluster {value!r} is not an ECS cluster's ARN "
                             "(arn:<partition>:ecs:<region>:<account>:cluster/<name>): give the cluster's ARN or name")
        region = info.data.get("region")
        if region is not None and match["region"] != region:
            raise ValueError(f"{value!r} is an ECS cluster in {match['region']}, but region is {region}: rollway "
                             f"reaches the cluster in {region} (set region to {match['region']}, or give a cluster "
                             f"of {region})")
        return match["name"]

    @field_validator(*_NAME_RULES, "ecr_repository", "region", "stable_target_group", "canary_target_group",
                     mode="before")
    @classmethod
    def _no_surrounding_spaces(cls, value: Any, info: ValidationInfo) -> Any:
        # Refused, not stripped, as a queue's or an alarm's name is. Told the naming rule (or a
        # path component's), a name pasted with its spaces read as a name that was itself wrong.
        # An alert topic's FIFO refusal (below) goes first: "give it without them" would lead to it.
        if info.field_name == "alert_topic":
            cls._standard_topic(value)
        if said := _spaced(info.field_name, value):
            raise ValueError(said)
        return value

    @staticmethod
    def _standard_topic(value: Any) -> None:
        # A FIFO topic takes no publish without a message group id, and delivers only to SQS
        # queues, never to the people the alerts are for: refused here, not at the first page.
        # Before the naming rule: its ARN was told to give the name instead, "x.fifo", refused next.
        if isinstance(value, str) and value.strip(_SPACES).endswith(".fifo"):
            given = "the ARN of a FIFO SNS topic" if value.lstrip(_SPACES).startswith("arn:") else "a FIFO SNS topic"
            spaced = ", without the surrounding spaces" if _spaced("alert_topic", value) else ""
            raise ValueError(
                f"alert_topic {value!r} is {given} (its name ends in .fifo): rollway publishes its pages without a "
                "message group id, which SNS refuses on a FIFO topic, and a FIFO topic delivers only to SQS queues, "
                "not to the e-mail, SMS or chat subscriptions on-call reads. Give the name (not the ARN) of a "
                f"standard topic on-call subscribes to (its name does not end in .fifo){spaced}")

    @field_validator("alarms")
    @classmethod
    def _alarm_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:  # CloudWatch alarm names may hold spaces, not surrounding ones
            _non_blank(name)
            # Any UTF-8 but ASCII's control characters (PutMetricAlarm's AlarmName).
            if len(name) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in name):
                raise ValueError(f"{name!r} is not a CloudWatch alarm name (1-255 characters, no control characters)")
        return value

    @field_validator("stacks")
    @classmethod
    def _stack_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not STACK_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid CloudFormation stack name")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        # "", "us west 2" or "us-west-2 " built clients for endpoints that do not exist.
        if not REGION.fullmatch(value):
            raise ValueError(f"{value!r} is not an AWS region (like us-west-2 or us-gov-west-1)")
        # us-est-1 was found only by the first AWS call, a connection error once the run had
        # begun. Checked without knowing the endpoint: a name of no AWS partition's form is
        # left to the clients' factory, which knows whether an AWS-compatible endpoint serves it.
        if (unknown := unknown_region(value, custom_endpoint=True)) is not None:
            raise ValueError(f"{value!r} is not a region of AWS: {unknown}")
        return value

    @field_validator("metrics_namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        # An empty namespace was accepted, and the canary got 5 % of the traffic before the
        # first GetMetricData call was refused.
        _non_blank(value)
        if len(value) > 255 or value.startswith(":") or not value.isascii():
            raise ValueError(f"{value!r} is not a CloudWatch namespace (1-255 ASCII characters, not starting with ':')")
        return value

    @field_validator("rule_path", "rule_host")
    @classmethod
    def _condition_value(cls, value: str | None, info: ValidationInfo) -> str | None:
        # An ALB rule condition's value (path pattern, host header): up to 128 characters, no whitespace.
        if value is not None and (not value or len(value) > 128 or any(c.isspace() for c in value)):
            what = {"rule_path": "path pattern", "rule_host": "host-header value"}[info.field_name]
            raise ValueError(f"{value!r} is not a load balancer {what} (1-128 characters, no spaces)")
        return value

    @field_validator("stable_target_group", "canary_target_group")
    @classmethod
    def _target_group_ref(cls, value: str, info: ValidationInfo) -> str:
        # A target group is a name, or the full ARN of one (e.g. in another stack's naming).
        if value.startswith("arn:"):
            if not _TARGET_GROUP_ARN.fullmatch(value):
                raise ValueError(
                    f"{value!r} is not a well-formed target group ARN "
                    "(arn:<partition>:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>)"
                )
            # Clients are made for Targets.region, and a load balancer forwards only to target groups
            # of its own region: an ARN copied from another region's console was looked up there and
            # reported "not found", though it names a group that exists.
            arn_region, region = value.split(":")[3], info.data.get("region")
            if region is not None and arn_region != region:
                raise ValueError(
                    f"{value!r} is a target group in {arn_region}, but region is {region}: rollway reaches the "
                    f"load balancer and its target groups in {region} (set region to {arn_region}, or give a "
                    f"target group of {region})"
                )
            return value
        return _TARGET_GROUP_NAME.check(info.field_name, value)

    @field_validator("canary_target_group")
    @classmethod
    def _distinct_groups(cls, value: str, info) -> str:
        stable = info.data.get("stable_target_group")
        if stable is None:
            return value
        # Names are unique in an account's region: a name and an ARN ending in that name are one
        # group (ARN: arn:...:targetgroup/<name>/<id>), which would split the traffic with itself.
        named = [ref.split("/")[1] if ref.startswith("arn:") else ref for ref in (stable, value)]
        if value == stable or (stable.startswith("arn:") != value.startswith("arn:") and named[0] == named[1]):
            raise ValueError(f"the stable and canary target groups must differ (both name {named[1]!r})")
        return value

    @field_validator("canary_service")
    @classmethod
    def _distinct_services(cls, value: str, info) -> str:
        if value == info.data.get("stable_service"):
            raise ValueError("the stable and canary services must differ")
        return value

    @property
    def rule_where(self) -> str:
        """The rule's conditions as a message names them: "path '/*'" (and "host 'x'" when given)."""
        return f"path {self.rule_path!r}" + (f" and host {self.rule_host!r}" if self.rule_host else "")

    @property
    def dlq_names(self) -> tuple[str, ...]:
        return tuple(q.dlq_name for q in self.queues)
