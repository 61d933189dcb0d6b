"""The IAM policies of the jobs beside the rollout: each allows every AWS call its job makes,
and nothing it never makes.

- ``iam-policy-release.json``: publish_container (ECR reads and login, the task-definition revision);
- ``iam-policy-infrastructure.json``: the pre-deployment checklist, deploy_infrastructure's own reads and cleanup;
- validate_deployment's reads (SuccessRate, weights, each service's image) and rollout_report's
  ledger read need nothing beyond the rollout worker's ``iam-policy.json``.

What boto3 does not make is listed by hand in each policy and named here: docker's push to ECR
(the registry API) and cdk's deploys (through the CDK bootstrap roles, which it assumes).
"""

from __future__ import annotations

import json
from contextlib import contextmanager, nullcontext

import pytest
from botocore.exceptions import ReadTimeoutError

from blocks.credentials import client_factory, credentials_for_endpoint
from flows.cleanup import run_cleanup
from flows.container import run_publish
from flows.infra import ChecklistFailed, checker_for
from rollway.aws.cloudwatch import read_service_averages
from rollway.aws.ecs import EcsDeployer
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.ledger import DynamoLedger
from rollway.cleanup import CleanupSpec
from tests.flows.test_container_flow import EcrBacked
from rollway.publish import PublishRequest
from tests.flows.iam import Request, allowed, denied, recording, scopable_wildcards
from tests.botocore_events import on_operation
from tests.flows.moto_env import in_a_flow_run, put_image, put_image_index

# What docker push asks of ECR's registry API on the release's behalf (no boto3 call makes them).
DOCKER_PUSH = {"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
               "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage"}
# What cdk does with the account: it assumes the bootstrap roles, which make the changes.
CDK_DEPLOY = {"sts:AssumeRole"}


def own_clients(aws, key: str, used: set[str], requests: list[Request] | None = None):
    """Clients of their own (prefect-aws caches clients by credentials), recording into ``used``
    (and ``requests``: what AWS authorises for each call, resources included)."""
    embedded = credentials_for_endpoint(aws.endpoint_url, aws.targets.region)
    return recording(client_factory(embedded.model_copy(update={"aws_access_key_id": key})), used, requests,
                     aws.targets.region)


def publish(aws, get_client, request):
    # Pushes land in the embedded ECR (through the test's own client, as docker's would: not a
    # call the policy grants), since the flow asks ECR for the version it pushed.
    return in_a_flow_run("publish", lambda: run_publish(
        request, lambda: (aws.targets, get_client), open_publisher=lambda: nullcontext(EcrBacked(aws))))


def clean(aws, get_client, spec):
    return in_a_flow_run("clean", lambda: run_cleanup(spec, aws.targets, get_client, stack_timeout_seconds=30))


def test_the_release_policy_allows_every_call_publish_container_makes(aws, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    used: set[str] = set()
    requests: list[Request] = []
    result = publish(aws, own_clients(aws, "rollway-iam-release", used, requests),
                     PublishRequest(version="2.0.0", context_dir=tmp_path))
    assert result.task_definition
    # register_existing reads the platform of the image it registers (its manifest, and the
    # config blob a single-platform manifest names: moto serves no download URL for it).
    existing = publish(aws, own_clients(aws, "rollway-iam-release", used, requests),
                       PublishRequest(version="2.0.0", register_existing=True))
    assert existing.task_definition

    # A registration whose answer was lost, after a second copy botocore sent had registered too:
    # the run searches the family's newest revisions for its token (ListTaskDefinitions, and
    # DescribeTaskDefinition of each with its tags) and retires the extra copy.
    get_client = own_clients(aws, "rollway-iam-release", used, requests)
    with answer_lost_after_a_second_copy(aws, get_client("ecs")):
        lost = publish(aws, get_client, PublishRequest(version="2.1.0", context_dir=tmp_path))
    assert lost.task_definition and {"ecs:ListTaskDefinitions", "ecs:DeregisterTaskDefinition"} <= used

    policy = allowed("iam-policy-release.json")
    assert not used - policy, f"calls the release policy does not allow: {sorted(used - policy)}"
    assert not denied("iam-policy-release.json", requests), denied("iam-policy-release.json", requests)
    assert not scopable_wildcards("iam-policy-release.json", requests), scopable_wildcards("iam-policy-release.json", requests)
    unused = policy - used - DOCKER_PUSH
    assert not unused, f"the release policy grants actions publish_container never uses: {sorted(unused)}"


@contextmanager
def answer_lost_after_a_second_copy(aws, ecs):
    """``ecs``'s RegisterTaskDefinition registers, a second copy of it (botocore's resend) registers
    too, through the test's own client (not a call of the run's), and the answer never arrives."""

    sent = []

    def lose(**_):
        aws.get_client("ecs").register_task_definition(**sent[-1])
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with on_operation(ecs, "before-parameter-build", lambda params, **_: sent.append(dict(params)),
                      operation="RegisterTaskDefinition"), \
            on_operation(ecs, "after-call", lose, operation="RegisterTaskDefinition"):
        yield


def test_the_infrastructure_policy_allows_every_call_the_checklist_and_cleanup_make(aws):
    cloudformation = aws.get_client("cloudformation")
    body = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "old-queue"}}}}
    cloudformation.create_stack(StackName="webordinary-old-stack", TemplateBody=json.dumps(body))
    # Deleted before the run: told from a misspelt name by the stacks CloudFormation lists as deleted.
    older = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "older-queue"}}}}
    cloudformation.create_stack(StackName="webordinary-older-stack", TemplateBody=json.dumps(older))
    cloudformation.delete_stack(StackName="webordinary-older-stack")
    put_image(aws, "1.0.0", "1")
    put_image(aws, "old-version", "2")
    put_image_index(aws, "0.9.0", {"0.9.0-amd64": "3"})  # its platform images are read (BatchGetImage)
    # An ACTIVE revision mounts an EFS file system: the mount targets of it are read (DescribeMountTargets),
    # and the security groups of each (DescribeMountTargetSecurityGroups).
    ecs, efs = aws.get_client("ecs"), aws.get_client("efs")
    data = efs.create_file_system(CreationToken="webordinary-data")["FileSystemId"]
    efs.create_mount_target(FileSystemId=data, SubnetId=aws.topology.subnet_ids[0],
                            SecurityGroups=[aws.topology.security_group_id])
    current = ecs.describe_task_definition(taskDefinition=aws.targets.task_family)["taskDefinition"]
    ecs.register_task_definition(family=aws.targets.task_family, containerDefinitions=current["containerDefinitions"],
                                 volumes=[{"name": "data", "efsVolumeConfiguration": {"fileSystemId": data}}])
    used: set[str] = set()
    requests: list[Request] = []
    get_client = own_clients(aws, "rollway-iam-infrastructure", used, requests)

    # With the validation's checks pinned: the listener's rules are read for the rule pinning them.
    checker_for(get_client, aws.targets, canary_header="X-Rollway-Target: canary").check()
    result = clean(aws, get_client, CleanupSpec(old_stacks=("webordinary-old-stack", "webordinary-older-stack"),
                                                old_image_tags=("old-version",)))
    assert result.deleted_stacks == ("webordinary-old-stack",) and result.deleted_tags == ("old-version",)
    assert result.gone_stacks == ("webordinary-older-stack",)

    policy = allowed("iam-policy-infrastructure.json")
    assert not used - policy, f"calls the infrastructure policy does not allow: {sorted(used - policy)}"
    assert not denied("iam-policy-infrastructure.json", requests), denied("iam-policy-infrastructure.json", requests)
    # Reads of named resources (the checklist's tables, queues, dashboard and topic; the
    # cluster's services; the stacks cleanup deletes) are granted on those names, not on every
    # one of the account. Not GetTemplate: not on this path, the checklist looks through the
    # templates of the account's other stacks for the one a missing stack was deployed as.
    scopable = scopable_wildcards("iam-policy-infrastructure.json", requests)
    assert not set(scopable) - {"cloudformation:GetTemplate"}, scopable
    # Not on this path: cdk's own calls; the flow's read of the account id (for cdk's
    # environment); passing the CDK execution role to a stack deletion (CloudFormation deletes a
    # CDK stack with the role it was deployed with); DescribeTasks of running tasks (moto's
    # services run none); ListImports of an old stack's exports (this one exports nothing).
    unused = policy - used - CDK_DEPLOY - {"iam:PassRole", "sts:GetCallerIdentity", "ecs:DescribeTasks",
                                           "cloudformation:ListImports"}
    assert not unused, f"the infrastructure policy grants actions its flows never use: {sorted(unused)}"


def test_validation_and_reports_need_nothing_beyond_the_rollout_policy(aws):
    used: set[str] = set()
    requests: list[Request] = []
    get_client = own_clients(aws, "rollway-iam-validate", used, requests)
    read_service_averages(get_client("cloudwatch"), aws.targets.metrics_namespace, "SuccessRate",
                          (aws.targets.stable_service, aws.targets.canary_service), 0.0, 600.0)
    AlbRouter(get_client("elbv2"), aws.targets).get_weights()  # which service validation must see measured
    deployer = EcsDeployer(get_client("ecs"), aws.targets)  # which image each service ran when validated
    deployer.image_of(deployer.describe(aws.targets.canary_service).task_definition)
    DynamoLedger(get_client("dynamodb"), aws.targets).history(aws.targets.canary_service)
    policy = allowed("iam-policy.json")
    assert used and not used - policy, f"calls the rollout policy does not allow: {sorted(used - policy)}"
    assert not denied("iam-policy.json", requests), denied("iam-policy.json", requests)
    assert not scopable_wildcards("iam-policy.json", requests), scopable_wildcards("iam-policy.json", requests)


def test_the_infrastructure_policy_allows_every_call_the_deploy_flow_itself_makes(aws):
    """deploy_infrastructure's own reads (cdk's calls are made through the bootstrap roles it
    assumes): the account, the statuses of the stacks before from_stack and of those named already
    deployed, each stack's state and newest event before the first deploy and after the last, the
    toolkit stack and its bootstrap version, a stack's state after it failed, and the checklist."""
    from flows.infra import InfraDeployFailed, _account, run_deploy_infrastructure
    from rollway.aws.cloudformation import CloudFormationStacks
    from rollway.fakes import FakeInfraDeployer
    from rollway.infra import StackEnvironment
    from tests.flows.moto_env import deployed_stacks
    from tests.unit.test_infra_plan import WEBORDINARY

    deployed_stacks(aws)
    toolkit = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
               "Outputs": {"BootstrapVersion": {"Value": "28"}}}
    aws.get_client("cloudformation").create_stack(StackName="CDKToolkit", TemplateBody=json.dumps(toolkit))
    used: set[str] = set()
    requests: list[Request] = []
    get_client = own_clients(aws, "rollway-iam-deploy", used, requests)
    stacks = list(aws.targets.stacks)

    def deploy(failing=None):
        home = StackEnvironment(account=_account(get_client, "nothing was deployed"), region=aws.targets.region)
        return run_deploy_infrastructure(
            FakeInfraDeployer(WEBORDINARY, failing=failing, already=stacks),
            lambda app: checker_for(get_client, aws.targets, app=app, home=home), stacks[1:],
            from_stack="WebordinarySQSStack", already_deployed=stacks[:1], stack_timeout_seconds=60, home=home,
            bootstrap=lambda *_: None, statuses=lambda _region: CloudFormationStacks(get_client("cloudformation")))

    try:
        in_a_flow_run("deploy", deploy)
    except ChecklistFailed:  # the embedded account holds not all the checklist names: its reads were made
        pass
    with pytest.raises(InfraDeployFailed):
        in_a_flow_run("deploy", lambda: deploy(failing={"WebordinaryMonitoringStack": "Failed to publish asset"}))

    deploy_reads = {"sts:GetCallerIdentity", "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents"}
    assert deploy_reads <= used, sorted(used)
    policy = allowed("iam-policy-infrastructure.json")
    assert not used - policy, f"calls the infrastructure policy does not allow: {sorted(used - policy)}"
    assert not denied("iam-policy-infrastructure.json", requests), denied("iam-policy-infrastructure.json", requests)
