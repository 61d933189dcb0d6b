"""A refused AWS call named as the IAM action and the statement of rollway's policies granting it."""
from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from rollway.aws.denied import is_denied, pass_role_denied, permission_denied


def refusal(operation: str, message: str, code: str = "AccessDenied") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(("operation", "message", "action", "grant"), [
    # AWS named the action.
    ("DescribeImages", "User: u is not authorized to perform: ecr:DescribeImages on resource: r", "ecr:DescribeImages",
     "statement CleanupDeletesOldImages"),
    # It did not: the one service whose action of that name a policy grants.
    ("DeleteStack", "not authorized to perform this operation", "cloudformation:DeleteStack",
     "statement CleanupDeletesOldStacks"),
])
def test_a_refusal_names_its_action_and_the_jobs_statement(operation, message, action, grant):
    named = permission_denied(refusal(operation, message), job="iam-policy-infrastructure.json")
    assert named.action == action
    assert named.grant == f"deployments/iam-policy-infrastructure.json, {grant}"
    assert str(named).startswith(f"AWS refused {action} (AccessDenied: {message}): ")


def test_without_the_policies_it_says_what_to_grant(tmp_path: Path):
    named = permission_denied(refusal("DescribeStacks", "no"), policies=tmp_path / "none")
    assert named.action == "DescribeStacks" and named.grant is None
    assert "grant DescribeStacks to the worker's role" in str(named)


def test_only_refusals_count():
    assert is_denied(refusal("DescribeStacks", "no", "AccessDeniedException"))
    assert not is_denied(refusal("DescribeStacks", "slow down", "Throttling"))
    # A refusal of another action than PassRole is no PassRole refusal.
    assert pass_role_denied(refusal("RegisterTaskDefinition", "not authorized to perform: ecs:Register"),
                            "family", ()) is None
