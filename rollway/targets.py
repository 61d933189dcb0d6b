"""Every AWS name rollway touches, in one model. Webordinary's names are the defaults.

``blocks.targets.RollwayTargets`` is this same model as a Prefect Block, so a user can edit
it in the Prefect UI; nothing else in rollway spells one of these names.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
_TARGET_GROUP_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:elasticloadbalancing:[a-z0-9-]+:\d{12}:"
    r"targetgroup/[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?/[0-9a-f]{16}$"
)


class QueueSpec(BaseModel):
    """An SQS work queue and the dead-letter queue its failures are redriven to."""

    model_config = ConfigDict(frozen=True)

    name: str
    dlq_name: str
    max_receive_count: int = Field(default=3, ge=1, le=1000)


class TableSpec(BaseModel):
    """A DynamoDB table the pre-deployment checklist expects, with its key and indexes."""

    model_config = ConfigDict(frozen=True)

    name: str
    hash_key: str
    range_key: str | None = None
    indexes: tuple[str, ...] = ()


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


class Targets(BaseModel):
    """Names of the service under rollout and of everything around it.

    Region and names only: ARNs are looked up from these at run time, so the same model
    serves a real account and the embedded one.
    """

    model_config = ConfigDict(frozen=True)

    region: str = "us-west-2"
    # Load balancing: the rule that forwards to the stable and the canary target group.
    load_balancer: str = "webordinary-edit-alb"
    listener_port: int = Field(default=80, ge=1, le=65535)
    rule_path: str = "/*"
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

    @field_validator(
        "load_balancer", "cluster",
        "stable_service", "canary_service", "task_family", "container_name",
        "ecr_repository", "flags_table", "rollouts_table", "alert_topic",
    )
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a valid AWS resource name")
        return value

    @field_validator("stable_target_group", "canary_target_group")
    @classmethod
    def _target_group_ref(cls, value: str) -> str:
        # A target group is a name, or the full ARN of one (e.g. in another stack's naming).
        if value.startswith("arn:"):
            if not _TARGET_GROUP_ARN.match(value):
                raise ValueError(
                    f"{value!r} is not a well-formed target group ARN "
                    "(arn:<partition>:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>)"
                )
            return value
        return cls._plain_name(value)

    @field_validator("canary_target_group")
    @classmethod
    def _distinct_groups(cls, value: str, info) -> str:
        if value == info.data.get("stable_target_group"):
            raise ValueError("the stable and canary target groups must differ")
        return value

    @field_validator("canary_service")
    @classmethod
    def _distinct_services(cls, value: str, info) -> str:
        if value == info.data.get("stable_service"):
            raise ValueError("the stable and canary services must differ")
        return value

    @property
    def dlq_names(self) -> tuple[str, ...]:
        return tuple(q.dlq_name for q in self.queues)
