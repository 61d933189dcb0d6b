"""Map the AWS calls rollway's clients make to the IAM actions AWS checks, and the resources it
checks them on, and read a policy file.

moto does not enforce IAM, so the policy tests record every call a job's clients make and
compare the actions, and the resources they act on, with the documented policy of that job.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from moto.core import DEFAULT_ACCOUNT_ID

DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"
PREFIX = {"elbv2": "elasticloadbalancing", "ecs": "ecs", "cloudwatch": "cloudwatch", "sns": "sns",
          "dynamodb": "dynamodb", "ecr": "ecr", "sqs": "sqs", "sts": "sts", "cloudformation": "cloudformation",
          "efs": "elasticfilesystem"}
# TransactWriteItems is authorised per item: each kind of item needs its own action.
ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
# The writes the policies grant, and what each acts on: each must be granted on named resources,
# never on "*" or on every resource of its type ("stack/*"), so that a worker's role cannot
# change what is not rollway's (another team's stacks, any ECS resource's tags).
WRITES = {"elasticloadbalancing:ModifyRule", "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags",
          "ecs:UpdateService", "ecs:TagResource", "sns:Publish", "dynamodb:PutItem", "dynamodb:UpdateItem",
          "dynamodb:ConditionCheckItem", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
          "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchDeleteImage", "cloudformation:DeleteStack",
          "iam:PassRole", "sts:AssumeRole"}


@dataclass(frozen=True)
class Request:
    """One authorisation AWS makes for a call: the action, the resource, the condition context."""

    action: str
    resource: str = "*"
    context: tuple[tuple[str, str], ...] = field(default=())


def iam_actions(service: str, operation: str, params: dict) -> set[str]:
    return {r.action for r in iam_requests(service, operation, params)}


def iam_requests(service: str, operation: str, params: dict, region: str = "us-west-2",
                 account: str = DEFAULT_ACCOUNT_ID) -> list[Request]:
    """What AWS authorises for one call. The resource is "*" where the action has no
    resource-level permissions, rollway's policies grant it on "*", or ``params`` do not name it
    (a test that maps call names alone)."""
    prefix = PREFIX[service]
    arn = f"{region}:{account}"
    if operation == "TransactWriteItems":
        return [Request(f"dynamodb:{ITEM_ACTIONS[kind]}", f"arn:aws:dynamodb:{arn}:table/{body['TableName']}")
                for item in params["TransactItems"] for kind, body in item.items()]
    resource = "*"
    if service == "dynamodb" and "TableName" in params:
        resource = f"arn:aws:dynamodb:{arn}:table/{params['TableName']}"
    elif service == "ecr" and "repositoryName" in params:
        resource = f"arn:aws:ecr:{arn}:repository/{params['repositoryName']}"
    elif service == "ecr" and "repositoryNames" in params:
        return [Request(f"{prefix}:{operation}", f"arn:aws:ecr:{arn}:repository/{name}")
                for name in params["repositoryNames"]]
    elif service == "sns" and operation == "Publish" and "TopicArn" in params:
        resource = params["TopicArn"]
    elif service == "elbv2" and operation == "ModifyRule" and "RuleArn" in params:
        resource = params["RuleArn"]
    elif service == "elbv2" and operation in ("AddTags", "RemoveTags") and "ResourceArns" in params:
        return [Request(f"{prefix}:{operation}", arn_) for arn_ in params["ResourceArns"]]
    elif service == "ecs" and operation == "DescribeServices" and "services" in params:
        # Authorised per service named (the ARN of a service of the cluster).
        cluster = params.get("cluster", "default").rsplit("/", 1)[-1]
        return [Request(f"{prefix}:{operation}", f"arn:aws:ecs:{arn}:service/{cluster}/{name.rsplit('/', 1)[-1]}")
                for name in params["services"]]
    elif service == "ecs" and operation in ("ListServices", "ListTasks"):
        # No resource of their own: AWS checks them on "*" with the cluster listed as the
        # ecs:cluster condition key (its ARN; the default cluster when none is named), as in
        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/security_iam_id-based-policy-examples.html
        # ("List and describe task examples") and the ecs:cluster key the Service Authorization
        # Reference lists for both actions.
        cluster = params.get("cluster", "default")
        if not cluster.startswith("arn:"):
            cluster = f"arn:aws:ecs:{arn}:cluster/{cluster}"
        return [Request(f"{prefix}:{operation}", "*", (("ecs:cluster", cluster),))]
    elif service == "ecs" and operation == "DescribeTasks" and "tasks" in params:
        cluster = params.get("cluster", "default").rsplit("/", 1)[-1]
        return [Request(f"{prefix}:{operation}", f"arn:aws:ecs:{arn}:task/{cluster}/{task.rsplit('/', 1)[-1]}")
                for task in params["tasks"]]
    elif service == "sqs" and operation == "GetQueueUrl" and "QueueName" in params:
        resource = f"arn:aws:sqs:{arn}:{params['QueueName']}"
    elif service == "sqs" and "QueueUrl" in params:
        # https://sqs.<region>.amazonaws.com/<account>/<name>
        owner, name = params["QueueUrl"].rstrip("/").split("/")[-2:]
        resource = f"arn:aws:sqs:{region}:{owner}:{name}"
    elif service == "cloudwatch" and operation == "GetDashboard" and "DashboardName" in params:
        resource = f"arn:aws:cloudwatch::{account}:dashboard/{params['DashboardName']}"  # dashboards are global
    elif service == "sns" and operation == "ListSubscriptionsByTopic" and "TopicArn" in params:
        resource = params["TopicArn"]
    elif service == "ecs" and operation == "UpdateService" and "service" in params:
        cluster = params.get("cluster", "default").rsplit("/", 1)[-1]
        resource = f"arn:aws:ecs:{arn}:service/{cluster}/{params['service'].rsplit('/', 1)[-1]}"
    elif service == "cloudformation" and "StackName" in params:
        name = params["StackName"]
        resource = name if name.startswith("arn:") else f"arn:aws:cloudformation:{arn}:stack/{name}/*"
    requests = [Request(f"{prefix}:{operation}", resource)]
    if operation == "RegisterTaskDefinition":
        if params.get("tags"):
            # Tags given at creation are authorised as TagResource on the new revision.
            requests.append(Request("ecs:TagResource", f"arn:aws:ecs:{arn}:task-definition/{params.get('family')}:1",
                                    (("ecs:CreateAction", "RegisterTaskDefinition"),)))
        for role in {params.get("taskRoleArn"), params.get("executionRoleArn")} - {None}:
            requests.append(Request("iam:PassRole", role, (("iam:PassedToService", "ecs-tasks.amazonaws.com"),)))
    if service == "efs" and operation == "DescribeMountTargetSecurityGroups":
        # EFS reads the groups from the mount target's network interface as the caller: AWS checks
        # ec2:DescribeNetworkInterfaceAttribute on it too (the API reference of the operation).
        requests.append(Request("ec2:DescribeNetworkInterfaceAttribute"))
    return requests


def _statements(policy_file: str) -> list[dict[str, Any]]:
    return json.loads((DEPLOYMENTS / policy_file).read_text())["Statement"]


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allowed(policy_file: str) -> set[str]:
    return {action for statement in _statements(policy_file) for action in _listed(statement["Action"])}


def grants(policy_file: str) -> list[tuple[str, str]]:
    """(action, resource pattern) for every Allow of the policy."""
    return [(action, resource) for s in _statements(policy_file) for action in _listed(s["Action"])
            for resource in _listed(s["Resource"])]


# Condition operators the policies use; each compares the request's value with the listed ones
# exactly (ArnEquals is StringEquals on ARNs: no wildcard, unlike ArnLike).
_EXACT_CONDITIONS = ("StringEquals", "ArnEquals")


def denied(policy_file: str, requests: list[Request], account: str = DEFAULT_ACCOUNT_ID) -> list[Request]:
    """The requests no statement of the policy allows (its action, a Resource pattern matching the
    resource with ACCOUNT_ID as ``account``, and every StringEquals and ArnEquals condition met).

    Raises:
        ValueError: a statement has a condition operator this check cannot evaluate (read as no
            condition, it would allow what the policy refuses).
    """
    def allows(statement: dict[str, Any], request: Request) -> bool:
        if request.action not in _listed(statement["Action"]):
            return False
        patterns = [p.replace("ACCOUNT_ID", account) for p in _listed(statement["Resource"])]
        if not any(fnmatch.fnmatchcase(request.resource, p) for p in patterns):
            return False
        context = dict(request.context)
        conditions = statement.get("Condition", {})
        if unknown := set(conditions) - set(_EXACT_CONDITIONS):
            raise ValueError(f"{policy_file}, statement {statement.get('Sid')}: cannot evaluate {sorted(unknown)}")
        return all(context.get(key) in [v.replace("ACCOUNT_ID", account) for v in _listed(value)]
                   for operator in _EXACT_CONDITIONS for key, value in conditions.get(operator, {}).items())

    statements = _statements(policy_file)
    return sorted({r for r in requests if not any(allows(s, r) for s in statements)}, key=repr)


def unused_grants(policy_file: str, requests: list[Request], account: str = DEFAULT_ACCOUNT_ID) -> list[tuple[str, str]]:
    """(action, resource pattern) the policy grants that no request used: an action granted on a
    resource it is never called on (a table it never scans) is more than the job needs."""
    return [(action, pattern) for action, pattern in grants(policy_file)
            if not any(r.action == action and fnmatch.fnmatchcase(r.resource, pattern.replace("ACCOUNT_ID", account))
                       for r in requests)]


def scopable_wildcards(policy_file: str, requests: list[Request]) -> list[str]:
    """Actions the policy grants on "*" alone though every call made of them named its resource:
    such a grant reaches every resource of its type in the account (another team's tables,
    queues, services) where the calls need only rollway's, and can be scoped to their ARNs."""
    wildcard = {action for action, resource in grants(policy_file) if resource == "*"}
    made: dict[str, set[str]] = {}
    for request in requests:
        made.setdefault(request.action, set()).add(request.resource)
    return sorted(action for action in wildcard if made.get(action) and "*" not in made[action])


def recording(make_client: Callable[[str], Any], used: set[str],
              requests: list[Request] | None = None, region: str = "us-west-2") -> Callable[[str], Any]:
    """A client factory whose clients add the IAM action of every call they make to ``used``
    (and, given ``requests``, what AWS authorises for it, resources included).

    ``make_client`` must give clients of their own (not shared with the test's set-up), or the
    set-up's calls are recorded too.
    """
    watched: dict[str, Any] = {}

    def get_client(service: str) -> Any:
        if service not in watched:
            client = make_client(service)

            def record(model, params, **_):
                made = iam_requests(service, model.name, params, region)
                used.update(r.action for r in made)
                if requests is not None:
                    requests.extend(made)
            client.meta.events.register("before-parameter-build.*", record)
            watched[service] = client
        return watched[service]

    return get_client
