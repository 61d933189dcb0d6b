"""A revision whose task roles the worker may not pass: ECS's refusal names iam:PassRole, and
rollway names the statement of its policy that grants it and the pattern the roles must match.

moto does not enforce IAM: the refusal is AWS's answer to what ``tests/flows/iam.py`` finds the
documented policy denies, with the message AWS gives it.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID

from rollway.aws.denied import CREDENTIALS, PassRoleDenied
from rollway.aws.ecs import EcsDeployer
from rollway.sim.topology import task_definition_input
from tests.botocore_events import on_operation
from tests.flows.iam import denied, iam_requests

# How CDK names a role the app gives no roleName: <stack>-<construct id><hash>-<suffix>.
CDK_ROLES = (f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/WebordinaryFargateStack-EditTaskDefExecutionRole8D3F1A2B-1QW2E3R4T5Y6",
             f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/WebordinaryFargateStack-EditTaskDefTaskRole5C6D7E8F-9U8I7O6P5A4S")


def as_aws_refuses(policy: str):
    """A handler refusing RegisterTaskDefinition as AWS would under ``policy``."""
    def refuse(params, **_):
        refused = [r for r in denied(policy, iam_requests("ecs", "RegisterTaskDefinition", params))
                   if r.action == "iam:PassRole"]
        if refused:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": (
                f"User: arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/rollway-worker/i-0abc is not authorized to "
                f"perform: iam:PassRole on resource: {refused[0].resource} because no identity-based policy allows "
                "the iam:PassRole action")}}, "RegisterTaskDefinition")
    return refuse


@pytest.fixture
def cdk_named_base(aws) -> str:
    """A revision of the task family whose roles CDK named."""
    ecs = aws.get_client("ecs")
    arguments = task_definition_input(aws.targets, f"{aws.topology.repository_uri}:1.0.0", CDK_ROLES)
    return ecs.register_task_definition(**arguments)["taskDefinition"]["taskDefinitionArn"]


def test_a_revision_passing_roles_the_policy_does_not_name_says_which_statement_to_change(aws, cdk_named_base):
    ecs = aws.get_client("ecs")
    family = aws.targets.task_family
    before = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    with on_operation(ecs, "before-parameter-build", as_aws_refuses("iam-policy.json"), operation="RegisterTaskDefinition"), \
            pytest.raises(PassRoleDenied) as refused:
        EcsDeployer(ecs, aws.targets).register_revision(f"{aws.topology.repository_uri}:2.0.0", cdk_named_base)
    message = str(refused.value)
    # It used to be a bare ClientError: AWS's words alone, no statement, no pattern.
    assert f"ECS refused to register the new revision of {family}" in message
    # Whose role it is: a person registering with their own credentials was sent to the worker's.
    assert f"{family}: {CREDENTIALS} may not pass " in message
    assert CDK_ROLES[0] in message and CDK_ROLES[1] in message
    assert ("deployments/iam-policy.json, statement PassTheTaskRolesTheRevisionsCopy "
            "(arn:aws:iam::ACCOUNT_ID:role/webordinary-edit-*)") in message
    assert "iam-policy-release.json, statement PassTheTaskRolesTheRevisionCopies" in message
    assert "cdk-hnb659fds" not in message, "CloudFormation's PassRole is not the one to change"
    assert "Nothing was registered" in message
    assert ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"] == before


def test_the_embedded_roles_are_ones_the_policy_lets_a_revision_pass(aws):
    # The same check lets the embedded account's own revision through: the refusal above is the
    # roles' names, not the check.
    ecs = aws.get_client("ecs")
    with on_operation(ecs, "before-parameter-build", as_aws_refuses("iam-policy.json"), operation="RegisterTaskDefinition"):
        arn = EcsDeployer(ecs, aws.targets).register_revision(f"{aws.topology.repository_uri}:2.0.0",
                                                              aws.topology.task_definition_arn)
    assert arn != aws.topology.task_definition_arn
