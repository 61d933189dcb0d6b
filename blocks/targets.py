"""rollway's Targets as a Prefect Block, editable in the Prefect UI (Blocks -> Rollway Targets)."""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from prefect.client.schemas.objects import BlockDocument
from pydantic import ConfigDict, ValidationError, model_validator

from rollway.model import validation_problems
from rollway.targets import Targets

# What the block's form in the UI says under each field. Targets' fields carry no descriptions of
# their own, and Prefect's form showed each as its bare title ("Stacks", "Rule Path"): what each
# name is for was in the README only. One line each, as the run forms' (Webordinary's names stay
# the defaults shown in the fields).
_FIELD_HELP = {
    "region": "the AWS region of the service, its load balancer and rollway's tables",
    "load_balancer": "the Application Load Balancer's name",
    "listener_port": "the port of the listener whose rule splits the traffic",
    "rule_path": "the path pattern of the listener rule rollway shifts (the rule that forwards to the two target groups)",
    "stable_target_group": "the stable service's target group (name or ARN)",
    "canary_target_group": "the canary service's target group (name or ARN)",
    "cluster": "the ECS cluster of the two services (name or ARN)",
    "stable_service": "the ECS service that runs the version in production",
    "canary_service": "the ECS service a new version is canaried on",
    "task_family": "the task-definition family of the services (the new version's revision is registered in it)",
    "container_name": "the container of the task definition that the new image goes into",
    "container_port": "the container's port (used by the embedded AWS only)",
    "ecr_repository": "the ECR repository of the release images, by name (not URI)",
    "flags_table": "the DynamoDB table of the feature flags",
    "rollouts_table": "the DynamoDB table of rollway's ledger: every rollout, its phase and history",
    "queues": "the SQS work queues the checklist expects, each with its dead-letter queue (the DLQ guardrail watches them)",
    "tables": "the application's DynamoDB tables the checklist expects, with their keys and indexes",
    "alert_topic": "the standard SNS topic (by name) that alerts and rollback pages are published to",
    "metrics_namespace": "the CloudWatch namespace of the application's own metrics (SuccessRate, SlowRequestCount)",
    "dashboard": "the CloudWatch dashboard the checklist expects",
    "alarms": "the CloudWatch alarms the checklist expects",
    "stacks": "the CDK app's stacks, in the order they are deployed (deploy_infrastructure's default; the checklist's)",
}
_NESTED_HELP = {
    "QueueSpec": {
        "name": "the queue's name",
        "dlq_name": "the name of the dead-letter queue its failed messages are redriven to",
        "max_receive_count": "receives of a message before it is redriven to the dead-letter queue",
    },
    "TableSpec": {
        "name": "the table's name",
        "hash_key": "its partition (hash) key's attribute name",
        "range_key": "its sort (range) key's attribute name; empty: none",
        "indexes": "the secondary indexes it must have (a global one ACTIVE)",
    },
}


def _described(properties: dict[str, Any], said: dict[str, str]) -> None:
    for name, field in properties.items():
        if name in said and not field.get("description"):
            field["description"] = said[name]


# What Prefect itself adds to a block's data (a loaded block's model_dump, for one): its
# document's metadata, and the block type's slug (dropped only when it is this block's).
_PREFECT_KEYS = ("_block_document_id", "_block_document_name", "_is_anonymous")


class RollwayTargets(Targets, Block):
    """Names of the service under rollout and everything around it (defaults: Webordinary).

    The same model as ``rollway.targets.Targets``: a saved block loads as a Targets. A key
    neither knows is refused, on save and on load, not dropped (Block alone allows any).
    """

    # Block's config (extra="allow") would otherwise win over Targets' (extra="forbid").
    model_config = ConfigDict(**{**Block.model_config, **Targets.model_config})

    _block_type_name = "Rollway Targets"
    _block_type_slug = "rollway-targets"
    _description = "AWS names rollway acts on: load balancer, target groups, ECS cluster and services, tables, queues, topic."

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Prefect's block schema (the form the UI renders), with what each field is for."""
        schema = super().model_json_schema(*args, **kwargs)
        _described(schema["properties"], _FIELD_HELP)
        for model, said in _NESTED_HELP.items():
            if model in schema.get("definitions", {}):
                _described(schema["definitions"][model]["properties"], said)
        return schema

    @model_validator(mode="before")
    @classmethod
    def _without_prefect_keys(cls, data: Any) -> Any:
        """Prefect's own keys are Prefect's: not names, and not refused as unknown ones."""
        if not isinstance(data, dict):
            return data
        slug = cls.get_block_type_slug()
        return {key: value for key, value in data.items()
                if key not in _PREFECT_KEYS and not (key == "block_type_slug" and value == slug)}

    @classmethod
    def _load_from_block_document(cls, block_document: BlockDocument, validate: bool = True) -> "RollwayTargets":
        """Prefect's load, whose error for a saved block that does not validate says which
        keys are wrong, on one line: Prefect's says only "due to failed validation"."""
        try:
            return super()._load_from_block_document(block_document, validate=validate)
        except RuntimeError as err:
            if not isinstance(err.__cause__, ValidationError):
                raise
            raise RuntimeError(
                f"Unable to load {block_document.name!r} of block type {cls.get_block_type_slug()!r} due to failed "
                f"validation: {validation_problems(err.__cause__, 'block')}. Correct the block (Prefect UI: Blocks) and save it again."
            ) from err.__cause__

    def targets(self) -> Targets:
        """A plain Targets (no Block machinery) with the same values."""
        return Targets.model_validate(self.model_dump(include=set(Targets.model_fields)))
