"""Every AWS call the code names is granted by one of the documented IAM policies, and every action a
policy grants is one the code names (or one no boto3 call makes, listed here).

The policy tests of tests/flows record the calls of the paths they run: a call on a path none of them
runs (a rollback's rarer branch, a cleanup of what the embedded account never holds) was checked by
no one, and AWS would refuse it in production only. This reads the sources instead: a client's
method, a paginator or a waiter by name, and an operation passed by name as a string
(``AlbRouter._call("describe_rules", ...)``).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name
from botocore.exceptions import UnknownServiceError

from tests.flows.iam import ITEM_ACTIONS, PREFIX, allowed

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("rollway", "flows", "tasks", "blocks")
POLICIES = ("iam-policy.json", "iam-policy-release.json", "iam-policy-infrastructure.json")
# What acts on the embedded AWS only (the simulator, `rollway demo` and `rollway up` provisioning it):
# no worker's role runs it.
_EMBEDDED_ONLY = ("rollway/sim/", "rollway/cli/demo.py", "rollway/cli/up.py")
# rollway's own functions named as an AWS operation is: each says what it is instead.
_NOT_AWS_CALLS = {
    "list_images": "rollway.aws.ecr_images.EcrImages.list_images, made of ECR DescribeImages",
    "send_message": "rollway.http_checks.send_message, the validation's HTTP POST to the service",
    "delete_tags": "rollway.aws.ecr_images.EcrImages.delete_tags, made of ECR BatchDeleteImage (EFS's DeleteTags "
                   "is never called)",
}
# Granted for what no boto3 call of rollway's makes: docker's push to ECR (the registry API), and
# what AWS authorises beside a call (tags given at registration, a role a revision or a stack
# deletion passes on, each item of a transaction, the network interface EFS reads a mount target's
# security groups from).
_BESIDE_BOTO3 = {"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                 "ecr:CompleteLayerUpload", "ecs:TagResource", "iam:PassRole", "dynamodb:ConditionCheckItem",
                 "ec2:DescribeNetworkInterfaceAttribute"}


@functools.cache
def _operations() -> dict[str, frozenset[str]]:
    """Python name of every operation of the services rollway calls -> its IAM actions; a waiter's
    name -> the actions of the operation it polls."""
    session = botocore.session.get_session()
    found: dict[str, set[str]] = {}
    for service, prefix in PREFIX.items():
        model = session.get_service_model(service)
        for operation in model.operation_names:
            found.setdefault(xform_name(operation), set()).add(f"{prefix}:{operation}")
        try:
            waiters = session.get_waiter_model(service)
        except UnknownServiceError:  # a service without waiters (sns)
            continue
        for waiter in waiters.waiter_names:
            found.setdefault(f"waiter:{xform_name(waiter)}", set()).add(
                f"{prefix}:{waiters.get_waiter(waiter).operation}")
    if "transact_write_items" in found:  # authorised per item (tests/flows/iam.py)
        found["transact_write_items"] = {f"dynamodb:{action}" for action in ITEM_ACTIONS.values()}
    return {name: frozenset(actions) for name, actions in found.items()}


def named_operations(source: str) -> dict[str, int]:
    """Every AWS operation ``source`` names (a method, a paginator's or a waiter's name, a string
    naming one) -> the first line naming it. A waiter is named ``waiter:<name>``."""
    operations, found = _operations(), {}
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in operations:
            name = node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_waiter" \
                and node.args and isinstance(node.args[0], ast.Constant):
            name = f"waiter:{node.args[0].value}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in operations:
            name = node.value
        if name is not None and name not in _NOT_AWS_CALLS:
            found.setdefault(name, node.lineno)
    return found


def ungranted(source: str, granted: set[str]) -> list[tuple[int, str, list[str]]]:
    """(line, operation, its actions) of each operation ``source`` names that no action of
    ``granted`` allows (any one of an operation's candidate actions will do: ``list_exports`` is
    CloudFormation's and DynamoDB's)."""
    operations = _operations()
    return sorted((line, name, sorted(operations[name])) for name, line in named_operations(source).items()
                  if not operations[name] & granted)


@functools.cache
def _project_calls() -> dict[str, dict[str, int]]:
    """Each source file of the project -> the operations it names (parsed once: seconds)."""
    return {str(path.relative_to(ROOT)): named_operations(path.read_text())
            for top in SOURCES for path in (ROOT / top).rglob("*.py")
            if not str(path.relative_to(ROOT)).startswith(_EMBEDDED_ONLY)}


def _granted() -> set[str]:
    return set().union(*(allowed(policy) for policy in POLICIES))


def test_every_aws_call_the_code_names_is_granted_by_a_policy():
    granted, operations = _granted(), _operations()
    missing = [f"{path}:{line}: {name} ({', '.join(sorted(operations[name]))})"
               for path, names in _project_calls().items() for name, line in sorted(names.items())
               if not operations[name] & granted]
    assert not missing, "AWS calls no documented policy grants (deployments/iam-policy*.json):\n" + "\n".join(missing)


def test_every_action_a_policy_grants_is_one_the_code_calls():
    operations = _operations()
    called = {action for names in _project_calls().values() for name in names for action in operations[name]}
    unused = _granted() - called - _BESIDE_BOTO3
    assert not unused, f"the policies grant actions no code of rollway calls: {sorted(unused)}"


@pytest.mark.parametrize(("source", "action"), [
    ("ecs.delete_service(cluster=c, service=s)", "ecs:DeleteService"),
    ("for page in ecs.get_paginator('list_clusters').paginate(): pass", "ecs:ListClusters"),
    ("self._call('delete_rule', 'listener rule', arn, RuleArn=arn)", "elasticloadbalancing:DeleteRule"),
    ("getattr(self._client, 'delete_table')(TableName=name)", "dynamodb:DeleteTable"),
    ("ecs.get_waiter('tasks_stopped').wait(cluster=c, tasks=t)", "ecs:DescribeTasks"),
])
def test_the_check_finds_a_call_however_it_is_named(source, action):
    found = ungranted(source, _granted() - {action})
    assert [actions for _, _, actions in found] == [[action]], found


def test_the_check_takes_a_call_of_a_granted_action():
    source = ("rules = self._call('describe_rules', 'listener rule', arn, RuleArns=[arn])\n"
              "cf.get_waiter('stack_delete_complete').wait(StackName=name)\n"
              "ddb.transact_write_items(TransactItems=items)")
    assert not ungranted(source, _granted())
