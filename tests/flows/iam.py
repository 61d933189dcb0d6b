"""Map the AWS calls rollway's clients make to the IAM actions AWS checks, and read a policy file.

moto does not enforce IAM, so the policy tests record every call a job's clients make and
compare the actions with the documented policy of that job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"
PREFIX = {"elbv2": "elasticloadbalancing", "ecs": "ecs", "cloudwatch": "cloudwatch", "sns": "sns",
          "dynamodb": "dynamodb", "ecr": "ecr", "sqs": "sqs", "sts": "sts", "cloudformation": "cloudformation"}
# TransactWriteItems is authorised per item: each kind of item needs its own action.
ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


def iam_actions(service: str, operation: str, params: dict) -> set[str]:
    prefix = PREFIX[service]
    if operation == "TransactWriteItems":
        return {f"dynamodb:{ITEM_ACTIONS[kind]}" for item in params["TransactItems"] for kind in item}
    actions = {f"{prefix}:{operation}"}
    if operation == "RegisterTaskDefinition":
        if params.get("tags"):
            actions.add("ecs:TagResource")
        if params.get("taskRoleArn") or params.get("executionRoleArn"):
            actions.add("iam:PassRole")
    return actions


def allowed(policy_file: str) -> set[str]:
    policy = json.loads((DEPLOYMENTS / policy_file).read_text())
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def recording(make_client: Callable[[str], Any], used: set[str]) -> Callable[[str], Any]:
    """A client factory whose clients add the IAM action of every call they make to ``used``.

    ``make_client`` must give clients of their own (not shared with the test's set-up), or the
    set-up's calls are recorded too.
    """
    watched: dict[str, Any] = {}

    def get_client(service: str) -> Any:
        if service not in watched:
            client = make_client(service)

            def record(model, params, **_):
                used.update(iam_actions(service, model.name, params))
            client.meta.events.register("before-parameter-build.*", record)
            watched[service] = client
        return watched[service]

    return get_client
