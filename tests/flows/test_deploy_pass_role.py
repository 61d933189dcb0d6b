"""A rollout whose worker may not pass the task roles of its revision: the refusal names the
statement of the rollout's policy, the one its role runs under (tasks/undoable.deploy_revision
over EcsDeployer on the embedded AWS, refused as AWS would under the documented policy)."""
from __future__ import annotations

import pytest
from prefect import flow

from rollway.aws.denied import PassRoleDenied
from rollway.aws.ecs import EcsDeployer
from tasks.undoable import deploy_revision
from tests.adapters.test_ecs_pass_role import as_aws_refuses, cdk_named_base  # noqa: F401 - the fixture
from tests.botocore_events import on_operation


@flow(retries=0)
def deploy(deployer, service, image, base, previous):
    return deploy_revision(deployer, service, image, base, previous)


def test_a_rollout_refused_pass_role_names_the_rollout_policys_statement_only(aws, cdk_named_base):
    # The registration named every policy's PassRole statement, the release's beside the rollout's:
    # half of it sent the person to a role the rollout does not run under.
    ecs = aws.get_client("ecs")
    service, family = aws.targets.canary_service, aws.targets.task_family
    before = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    with on_operation(ecs, "before-parameter-build", as_aws_refuses("iam-policy.json"),
                      operation="RegisterTaskDefinition"), pytest.raises(PassRoleDenied) as refused:
        deploy(EcsDeployer(ecs, aws.targets), service, f"{aws.topology.repository_uri}:2.0.0", cdk_named_base,
               aws.topology.task_definition_arn)
    message = str(refused.value)
    assert "deployments/iam-policy.json, statement PassTheTaskRolesTheRevisionsCopy" in message, message
    assert "iam-policy-release.json" not in message, message
    assert ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"] == before
