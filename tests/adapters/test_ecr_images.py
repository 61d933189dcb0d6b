"""EcrImages and images_in_use against the embedded AWS: old tags deleted, tags in use (by tag or
by digest) refused by the plan, absent tags reported as gone."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

from rollway.aws.ecr_images import (DescribedTaskDefinitions, EcrImages, InUseUnknown, images_in_use,
                                     mount_targets_in_use, network_in_use, open_rollout_needs)
from rollway.aws.ecs import EcsDeployer
from rollway.aws.errors import TargetNotFound
from rollway.aws.ledger import DynamoLedger
from rollway.cleanup import CleanupSpec, ImageUse, plan_cleanup
from tests.botocore_events import on_operation
from tests.flows.moto_env import put_image, put_image_index


@pytest.fixture
def images(aws) -> EcrImages:
    return EcrImages(aws.get_client("ecr"), aws.targets.ecr_repository)


def tags_in(images: EcrImages) -> set[str]:
    return {tag for image in images.list_images() for tag in image.tags}


def test_old_tags_are_deleted_the_others_stay_and_an_absent_tag_is_reported_gone(aws, images):
    old = put_image(aws, "old-version", "1")
    put_image(aws, "0.9.0", "2")
    put_image(aws, "1.0.0", "3")
    listed = {image.digest: image.tags for image in images.list_images()}
    assert listed[old] == ("old-version",) and len(listed) == 3

    deletion = images.delete_tags(["old-version", "0.9.0", "never-pushed"])

    assert deletion.deleted == ("old-version", "0.9.0")
    assert deletion.gone == ("never-pushed",) and deletion.failed == {}
    assert tags_in(images) == {"1.0.0"}
    again = images.delete_tags(["old-version"])
    assert again.deleted == () and again.gone == ("old-version",), "re-running is safe"


def test_what_the_task_definitions_in_use_name_is_read_from_ecs(aws):
    ecs = aws.get_client("ecs")
    deployer = EcsDeployer(ecs, aws.targets)
    pinned = f"{aws.topology.repository_uri}@sha256:{'d' * 64}"
    revision = deployer.register_revision(pinned, aws.topology.task_definition_arn)  # an ACTIVE revision
    retired = deployer.register_revision(f"{aws.topology.repository_uri}:retired", aws.topology.task_definition_arn)
    ecs.deregister_task_definition(taskDefinition=retired)

    uses = images_in_use(ecs, aws.targets)

    by_image = {}
    for use in uses:
        by_image.setdefault(use.image, set()).add((use.task_definition, use.why))
    assert by_image[aws.topology.initial_image] == {(aws.topology.task_definition_arn,
                                                     f"the stable service deploys it, the canary service deploys it, "
                                                     f"an ACTIVE revision of {aws.targets.task_family}")}
    assert by_image[pinned] == {(revision, f"an ACTIVE revision of {aws.targets.task_family}")}
    assert f"{aws.topology.repository_uri}:retired" not in by_image, "an INACTIVE revision is not in use"
    # What a stack may have made for them too: their roles and log group.
    initial = next(use for use in uses if use.image == aws.topology.initial_image)
    assert (initial.execution_role.endswith(f":role/{aws.targets.task_family}-execution")
            and initial.task_role.endswith(f":role/{aws.targets.task_family}-task")
            and initial.log_group == f"/ecs/{aws.targets.task_family}")


def test_reading_hundreds_of_revisions_in_use_says_how_far_it_has_got(aws):
    ecs = aws.get_client("ecs")
    base = ecs.describe_task_definition(taskDefinition=aws.topology.task_definition_arn)["taskDefinition"]
    fields = {k: base[k] for k in ("family", "containerDefinitions", "networkMode", "requiresCompatibilities",
                                   "cpu", "memory") if k in base}
    for _ in range(209):  # a family deployed for a year: 210 ACTIVE revisions
        ecs.register_task_definition(**fields)
    progress: list[str] = []

    described = DescribedTaskDefinitions()
    uses = images_in_use(ecs, aws.targets, on_progress=progress.append, described=described)

    assert len({use.task_definition for use in uses}) == 210
    assert progress == ["reading the 210 task definitions in use (one call each)",
                        "read 100 of 210 task definitions in use", "read 200 of 210 task definitions in use"]
    # Read again (cleanup's, before each batch of deletions), the revisions known are not: nor said to be.
    progress.clear()
    assert images_in_use(ecs, aws.targets, on_progress=progress.append, described=described) == uses
    assert progress == []


def test_an_old_stack_that_made_a_secret_or_file_system_a_revision_in_use_needs_is_refused(aws):
    """The old stack made the secret the running revision fetches at start, or the EFS file system
    it mounts: cleanup deleted the stack (and with it the secret, or every task's data)."""
    import json

    from rollway.aws.cloudformation import CloudFormationStacks

    cloudformation, ecs = aws.get_client("cloudformation"), aws.get_client("ecs")
    # (moto's CloudFormation makes SSM parameters, not Secrets Manager secrets: the plan's tests have those.)
    for stack, name in (("webordinary-old-stack", "/webordinary/api-key"), ("webordinary-spare-stack", "/spare")):
        cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {"Key": {
            "Type": "AWS::SSM::Parameter", "Properties": {"Name": name, "Type": "String", "Value": "x"}}}}))
    # A parameter in the task's region named by its ARN, as ECS takes it.
    secret = f"arn:aws:ssm:{aws.targets.region}:123456789012:parameter/webordinary/api-key"
    current = ecs.describe_task_definition(taskDefinition=aws.topology.task_definition_arn)["taskDefinition"]
    container = {**current["containerDefinitions"][0], "secrets": [{"name": "API_KEY", "valueFrom": secret}]}
    ecs.register_task_definition(
        family=aws.targets.task_family, containerDefinitions=[container], memory="512",
        volumes=[{"name": "workspace", "efsVolumeConfiguration": {
            "fileSystemId": "fs-0123abcd", "authorizationConfig": {"accessPointId": "fsap-0123abcd"}}}])

    uses = images_in_use(ecs, aws.targets)
    (needs,) = [use for use in uses if use.secrets]
    assert needs.secrets == (secret,) and needs.file_systems == ("fs-0123abcd", "fsap-0123abcd")
    stacks = CloudFormationStacks(cloudformation, keep=aws.targets.stacks)
    described = {name: stacks.describe(name) for name in ("webordinary-old-stack", "webordinary-spare-stack")}
    planned = plan_cleanup(CleanupSpec(old_stacks=tuple(described)), aws.targets, stacks=described, in_use=uses,
                           images=())
    (refusal,) = planned.refusals
    assert refusal.name == "webordinary-old-stack" and "a secret of task definition" in refusal.reason
    assert planned.delete_stacks == ("webordinary-spare-stack",)


def test_a_tag_in_use_by_tag_or_by_digest_is_refused_and_stays(aws, images):
    ecs = aws.get_client("ecs")
    running = put_image(aws, "1.0.0", "1")  # what the provisioned services run (by tag)
    aws.get_client("ecr").put_image(  # the same image under a second tag
        repositoryName=aws.targets.ecr_repository, imageTag="release-1",
        imageManifest=aws.get_client("ecr").batch_get_image(
            repositoryName=aws.targets.ecr_repository, imageIds=[{"imageTag": "1.0.0"}])["images"][0]["imageManifest"])
    pinned = put_image(aws, "pinned", "2")
    put_image(aws, "old-version", "3")
    EcsDeployer(ecs, aws.targets).register_revision(f"{aws.topology.repository_uri}@{pinned}",
                                                    aws.topology.task_definition_arn)

    spec = CleanupSpec(old_image_tags=("old-version", "1.0.0", "release-1", "pinned", "absent"))
    plan = plan_cleanup(spec, aws.targets, stacks={}, in_use=images_in_use(ecs, aws.targets),
                        images=images.list_images())

    assert plan.delete_tags == ("old-version",) and plan.gone_tags == ("absent",)
    reasons = {r.name: r.reason for r in plan.refusals}
    assert set(reasons) == {"1.0.0", "release-1", "pinned"}
    assert "the stable service deploys it" in reasons["1.0.0"]
    assert f"it tags image {running}, which is in use" in reasons["release-1"]
    assert "pins it by digest" in reasons["pinned"]
    assert tags_in(images) == {"1.0.0", "release-1", "pinned", "old-version"}, "planning deletes nothing"


def test_a_platform_image_of_an_index_in_use_and_an_index_of_one_in_use_are_refused_and_stay(aws, images):
    ecs = aws.get_client("ecs")
    # The services run 1.0.0, a multi-platform image whose platform images carry tags of their own.
    running = put_image_index(aws, "1.0.0", {"1.0.0-amd64": "1", "1.0.0-arm64": "2"})
    put_image_index(aws, "0.9.0", {"0.9.0-amd64": "3"})  # nothing runs it
    # A revision pins 2.0.0's amd64 image by digest: the index listing it is kept too.
    put_image_index(aws, "2.0.0", {"2.0.0-amd64": "4"})
    (pinned,) = [image.digest for image in images.list_images() if image.tags == ("2.0.0-amd64",)]
    EcsDeployer(ecs, aws.targets).register_revision(f"{aws.topology.repository_uri}@{pinned}",
                                                    aws.topology.task_definition_arn)
    listed = {image.digest: image for image in images.list_images()}
    assert len(listed[running].children) == 2

    spec = CleanupSpec(old_image_tags=("1.0.0-amd64", "1.0.0-arm64", "0.9.0", "0.9.0-amd64", "2.0.0"))
    plan = plan_cleanup(spec, aws.targets, stacks={}, in_use=images_in_use(ecs, aws.targets),
                        images=images.list_images())

    assert plan.delete_tags == ("0.9.0", "0.9.0-amd64")
    reasons = {r.name: r.reason for r in plan.refusals}
    assert set(reasons) == {"1.0.0-amd64", "1.0.0-arm64", "2.0.0"}
    assert f"a platform image of image index {running} (task definition" in reasons["1.0.0-amd64"]
    assert "the stable service deploys it" in reasons["1.0.0-arm64"]
    assert f"an image index listing the platform image {pinned}" in reasons["2.0.0"]
    assert "pins it by digest" in reasons["2.0.0"]


def test_the_image_of_another_service_of_the_cluster_scaled_to_zero_is_refused_and_stays(aws, images):
    # The SQS worker runs no task at night; only its service names the revision it starts from.
    ecs = aws.get_client("ecs")
    put_image(aws, "worker-1", "6")
    put_image(aws, "old-version", "7")
    base = ecs.describe_task_definition(taskDefinition=aws.topology.task_definition_arn)["taskDefinition"]
    worker = ecs.register_task_definition(
        family="webordinary-sqs-worker", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[{**base["containerDefinitions"][0],
                                             "image": f"{aws.topology.repository_uri}:worker-1"}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=aws.targets.cluster, serviceName="webordinary-sqs-worker", taskDefinition=worker,
                       desiredCount=0, launchType="FARGATE")

    plan = plan_cleanup(CleanupSpec(old_image_tags=("worker-1", "old-version")), aws.targets, stacks={},
                        in_use=images_in_use(ecs, aws.targets), images=images.list_images())

    assert plan.delete_tags == ("old-version",)
    (refusal,) = plan.refusals
    assert refusal.name == "worker-1"
    assert ("webordinary-sqs-worker:1 (service webordinary-sqs-worker of the cluster deploys it (scaled to zero: it "
            "runs it again when scaled up))") in refusal.reason


def test_every_container_of_a_revision_a_service_runs_counts_its_log_router_and_init_container_too(aws, images):
    # A task starts only when every container's image can be pulled: the FireLens log router the
    # app's logs go through (essential) and the init container it waits for (not essential, run
    # to its end first) are container definitions like the app's, each with its own image.
    ecs = aws.get_client("ecs")
    repository = aws.topology.repository_uri
    for layer, tag in enumerate(("app-2", "firelens-2", "init-2", "old-version"), start=4):
        put_image(aws, tag, str(layer))
    base = ecs.describe_task_definition(taskDefinition=aws.topology.task_definition_arn)["taskDefinition"]
    app = {**base["containerDefinitions"][0], "image": f"{repository}:app-2",
           "logConfiguration": {"logDriver": "awsfirelens", "options": {"Name": "cloudwatch"}},
           "dependsOn": [{"containerName": "init", "condition": "SUCCESS"},
                         {"containerName": "log_router", "condition": "START"}]}
    logged = ecs.register_task_definition(
        family="logged-edit", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="1024", memory="2048",
        containerDefinitions=[
            app,
            {"name": "log_router", "image": f"{repository}:firelens-2", "essential": True,
             "firelensConfiguration": {"type": "fluentbit"}},
            {"name": "init", "image": f"{repository}:init-2", "essential": False, "command": ["migrate"]},
        ])["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=aws.targets.cluster, service=aws.targets.stable_service, taskDefinition=logged)

    in_use = images_in_use(ecs, aws.targets)
    plan = plan_cleanup(CleanupSpec(old_image_tags=("app-2", "firelens-2", "init-2", "old-version")), aws.targets,
                        stacks={}, in_use=in_use, images=images.list_images())

    assert {use.image for use in in_use if use.task_definition == logged} == {
        f"{repository}:app-2", f"{repository}:firelens-2", f"{repository}:init-2"}
    assert plan.delete_tags == ("old-version",)
    reasons = {r.name: r.reason for r in plan.refusals}
    assert set(reasons) == {"app-2", "firelens-2", "init-2"}
    for reason in reasons.values():
        assert "task definition logged-edit:1 (the stable service deploys it)" in reason, reason


@pytest.mark.parametrize("output", ["cloudwatch_logs", "cloudwatch"])
def test_an_old_stack_that_made_the_log_group_firelens_sends_a_revision_in_uses_logs_to_is_refused(aws, output):
    # The app container's logs go through the FireLens log router to a CloudWatch log group named
    # in the app container's options, not in an awslogs-group: the stack that made it was deleted
    # with it, and the app's logs went nowhere from then on.
    from rollway.aws.cloudformation import CloudFormationStacks

    cloudformation, ecs = aws.get_client("cloudformation"), aws.get_client("ecs")
    for stack, group in (("webordinary-old-stack", "/webordinary/app-logs"), ("webordinary-spare-stack", "/spare")):
        cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {"Logs": {
            "Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": group}}}}))
    base = ecs.describe_task_definition(taskDefinition=aws.topology.task_definition_arn)["taskDefinition"]
    app = {**base["containerDefinitions"][0], "logConfiguration": {"logDriver": "awsfirelens", "options": {
        "Name": output, "region": aws.targets.region, "log_group_name": "/webordinary/app-logs",
        "log_stream_prefix": "app-"}}}
    router = {"name": "log_router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
              "essential": True, "firelensConfiguration": {"type": "fluentbit"}}
    ecs.register_task_definition(family=aws.targets.task_family, containerDefinitions=[app, router], memory="512")

    uses = images_in_use(ecs, aws.targets)
    stacks = CloudFormationStacks(cloudformation, keep=aws.targets.stacks)
    described = {name: stacks.describe(name) for name in ("webordinary-old-stack", "webordinary-spare-stack")}
    planned = plan_cleanup(CleanupSpec(old_stacks=tuple(described)), aws.targets, stacks=described, in_use=uses,
                           images=())

    (refusal,) = planned.refusals
    assert refusal.name == "webordinary-old-stack", refusal
    assert f"/webordinary/app-logs (the log group of task definition {aws.targets.task_family}:2" in refusal.reason, \
        refusal.reason
    assert planned.delete_stacks == ("webordinary-spare-stack",)


def firelens_plan(aws, options: dict, groups: dict[str, str]):
    """The cleanup plan deleting the stacks of ``groups`` (stack -> the log group it makes, made
    here), the task family's newest revision sending its logs through FireLens with ``options``."""
    from rollway.aws.cloudformation import CloudFormationStacks

    cloudformation, ecs = aws.get_client("cloudformation"), aws.get_client("ecs")
    for stack, group in groups.items():
        cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps({"Resources": {"Logs": {
            "Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": group}}}}))
    base = ecs.describe_task_definition(taskDefinition=aws.topology.task_definition_arn)["taskDefinition"]
    app = {**base["containerDefinitions"][0], "logConfiguration": {"logDriver": "awsfirelens", "options": options}}
    router = {"name": "log_router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
              "essential": True, "firelensConfiguration": {"type": "fluentbit"}}
    ecs.register_task_definition(family=aws.targets.task_family, containerDefinitions=[app, router], memory="512")

    stacks = CloudFormationStacks(cloudformation, keep=aws.targets.stacks)
    described = {name: stacks.describe(name) for name in groups}
    return plan_cleanup(CleanupSpec(old_stacks=tuple(described)), aws.targets, stacks=described,
                        in_use=images_in_use(ecs, aws.targets), images=())


@pytest.mark.parametrize("options, kept", [
    # The Go plugin's log_group_name, a template: a group per task, its default the one when that fails.
    ({"Name": "cloudwatch", "log_group_name": "/webordinary/$(ecs_task_id)", "default_log_group_name": "/fallback"},
     {"webordinary-old-stack": "/webordinary/0123abcd", "webordinary-default-stack": "/fallback"}),
    # The C plugin's log_group_template (record_accessor), log_group_name when it does not resolve;
    # option names in another case, as Fluent Bit reads them.
    ({"name": "cloudwatch_logs", "Log_Group_Template": "/webordinary/$ecs_cluster-$kubernetes['labels']['app']",
      "log_group_name": "/fallback"},
     {"webordinary-old-stack": "/webordinary/edit-app", "webordinary-default-stack": "/fallback"}),
])
def test_an_old_stack_holding_a_log_group_a_firelens_template_in_use_may_name_is_refused(aws, options, kept):
    # A template cleanup cannot resolve (a placeholder only a log record fills) named no group:
    # the stack that made the group it resolves to was deleted, and the app's logs went nowhere.
    planned = firelens_plan(aws, options, {**kept, "webordinary-spare-stack": "/webordinary-spare/0123abcd"})

    reasons = {refusal.name: refusal.reason for refusal in planned.refusals}
    assert set(reasons) == set(kept), reasons
    assert f"it holds {kept['webordinary-default-stack']} (the log group of task definition " in \
        reasons["webordinary-default-stack"], reasons
    assert f"it holds {kept['webordinary-old-stack']} (perhaps: the log group template " in \
        reasons["webordinary-old-stack"], reasons
    assert f"FireLens sends the logs of task definition {aws.targets.task_family}:2 to (" in \
        reasons["webordinary-old-stack"] and "which cleanup cannot resolve)" in reasons["webordinary-old-stack"]
    # A group that only fits the template is not known to be production's; the template's default is.
    assert reasons["webordinary-old-stack"].endswith("and production may write to it"), reasons
    assert reasons["webordinary-default-stack"].endswith("and production runs on it"), reasons
    assert planned.delete_stacks == ("webordinary-spare-stack",)


def test_a_log_group_template_made_only_of_placeholders_keeps_the_groups_it_fits_and_says_it_cannot_tell(aws):
    # ``${service}/${task}`` fits every log group with a slash in its name: the stack holding one
    # was refused "perhaps" for it, as if cleanup suspected that group, where it cannot tell which
    # log groups the template writes to at all.
    planned = firelens_plan(aws, {"Name": "cloudwatch", "log_group_name": "${service}/${task}"},
                            {"webordinary-old-stack": "/webordinary/edit-app",
                             "webordinary-spare-stack": "webordinary-spare"})

    (refusal,) = planned.refusals
    assert refusal.name == "webordinary-old-stack", refusal
    assert refusal.reason.startswith(
        "it holds /webordinary/edit-app (the log group template '${service}/${task}' that FireLens sends the logs of "
        f"task definition {aws.targets.task_family}:2 to ("), refusal.reason
    assert refusal.reason.endswith(
        ") is made only of placeholders: cleanup cannot tell which log groups it writes to, and keeps every log group "
        "that fits it): deleting the stack deletes it, and production may write to it"), refusal.reason
    assert "perhaps" not in refusal.reason, refusal.reason
    assert planned.delete_stacks == ("webordinary-spare-stack",)


def test_a_tag_a_decommissioned_service_still_names_stays_after_a_later_push_moved_it(aws, images):
    # After the decommission the stable service runs no task (desired count 0) and its revision is
    # deregistered, and CI pushed the tag again since: no running task, no ACTIVE revision and no
    # digest in use says anything of the tag, but scaled up, the service pulls it by name.
    ecs, ecr = aws.get_client("ecs"), aws.get_client("ecr")
    tag = aws.topology.initial_image.rsplit(":", 1)[1]
    deployed = put_image(aws, tag, "1")
    moved = put_image(aws, tag, "2")  # the later push: the tag names another image now
    assert moved != deployed and {i.digest: i.tags for i in images.list_images()}[moved] == (tag,)
    put_image(aws, "2.0.0", "3")
    deployer = EcsDeployer(ecs, aws.targets)
    new = deployer.register_revision(f"{aws.topology.repository_uri}:2.0.0", aws.topology.task_definition_arn)
    ecs.update_service(cluster=aws.targets.cluster, service=aws.targets.canary_service, taskDefinition=new)
    ecs.update_service(cluster=aws.targets.cluster, service=aws.targets.stable_service, desiredCount=0)
    ecs.deregister_task_definition(taskDefinition=aws.topology.task_definition_arn)

    def done(parsed, **_):  # what ECS answers once the canary's deployment is done, and moto leaves as it was
        for service in parsed.get("services", []):
            for deployment in service.get("deployments", []):
                deployment["taskDefinition"] = service["taskDefinition"]

    with on_operation(ecs, "after-call", done, operation="DescribeServices"):
        in_use = images_in_use(ecs, aws.targets)
    plan = plan_cleanup(CleanupSpec(old_image_tags=(tag,)), aws.targets, stacks={}, in_use=in_use,
                        images=images.list_images())

    assert plan.delete_tags == ()
    (refusal,) = plan.refusals
    assert refusal.name == tag
    assert refusal.reason.startswith(f"in use: task definition {aws.targets.task_family}:1 (the stable service "
                                     "deploys it)"), refusal.reason
    assert not any(use.image.endswith(moved) or use.image.endswith(deployed) for use in in_use), "no digest keeps it"
    assert tag in tags_in(images)


def test_when_a_service_cannot_be_found_nothing_counts_as_unused(aws):
    wrong = aws.targets.model_copy(update={"canary_service": "webordinary-edit-service-canery"})
    with pytest.raises(InUseUnknown, match="webordinary-edit-service-canery not found in cluster"):
        images_in_use(aws.get_client("ecs"), wrong)
    wrong = aws.targets.model_copy(update={"cluster": "no-such-cluster"})
    with pytest.raises(InUseUnknown, match="check the targets block"):
        images_in_use(aws.get_client("ecs"), wrong)


@pytest.mark.parametrize("code, passing", [("ThrottlingException", True), ("ServerException", True),
                                           ("ClusterNotFoundException", False)])
def test_a_read_of_what_production_runs_failing_in_passing_is_not_blamed_on_the_targets(aws, code, passing):
    # A throttled DescribeServices said "check the targets block" (the names were right) and was
    # final: the task that reads what production runs did not ask again.
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    def answered(**_):
        raise ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, "DescribeServices")

    with on_operation(aws.get_client("ecs"), "before-call", answered, operation="DescribeServices"), \
            pytest.raises(InUseUnknown) as failed:
        images_in_use(aws.get_client("ecs"), aws.targets)
    assert failed.value.passing is passing
    assert ("check the targets block" in str(failed.value)) is not passing, str(failed.value)


def test_a_missing_repository_is_named(aws):
    images = EcrImages(aws.get_client("ecr"), "webordinary/no-such-repo")
    with pytest.raises(TargetNotFound, match="webordinary/no-such-repo"):
        images.list_images()
    with pytest.raises(TargetNotFound, match="webordinary/no-such-repo"):
        images.delete_tags(["old-version"])


def test_an_image_a_running_task_resolved_its_tag_to_is_in_use_after_the_tag_moved(aws, images):
    # ECS resolves a task definition's tag to a digest when it deploys, and its tasks run (and
    # restart on) that digest. The tag moved since: the old image is only known by its other tag.
    ecs, ecr = aws.get_client("ecs"), aws.get_client("ecr")
    tag = aws.topology.initial_image.rsplit(":", 1)[1]
    deployed = put_image(aws, tag, "1")
    ecr.put_image(repositoryName=aws.targets.ecr_repository, imageTag="build-41",
                  imageManifest=ecr.batch_get_image(repositoryName=aws.targets.ecr_repository,
                                                    imageIds=[{"imageTag": tag}])["images"][0]["imageManifest"])
    ecr.batch_delete_image(repositoryName=aws.targets.ecr_repository, imageIds=[{"imageTag": tag}])
    moved = put_image(aws, tag, "2")
    assert moved != deployed
    ecs.run_task(cluster=aws.targets.cluster, taskDefinition=aws.topology.task_definition_arn, launchType="FARGATE",
                 startedBy=f"ecs-svc/{aws.targets.stable_service}",
                 networkConfiguration={"awsvpcConfiguration": {"subnets": list(aws.topology.subnet_ids),
                                                           "securityGroups": [aws.topology.security_group_id]}})

    def resolved(parsed, **_):  # what ECS answers and moto leaves out: the digest each container runs
        for task in parsed.get("tasks", []):
            for container in task.get("containers", []):
                container["imageDigest"] = deployed
    ecs.meta.events.register("after-call.ecs.DescribeTasks", resolved)

    plan = plan_cleanup(CleanupSpec(old_image_tags=("build-41",)), aws.targets, stacks={},
                        in_use=images_in_use(ecs, aws.targets), images=images.list_images())

    assert plan.delete_tags == ()
    (refusal,) = plan.refusals
    assert refusal.name == "build-41" and f"it tags image {deployed}, which is in use" in refusal.reason
    assert "on the digest ECS resolved its tag to) pins it by digest" in refusal.reason, refusal.reason


def test_an_old_stack_that_made_the_role_or_log_group_a_running_task_of_an_inactive_revision_uses_is_refused(aws):
    """A one-off task (a migration, say) still runs a revision no service deploys and since
    deregistered: cleanup kept only the image digest it runs, and deleted the stack that made its
    task role (its AWS calls then fail) and its log group (its logs go nowhere)."""
    import json

    from rollway.aws.cloudformation import CloudFormationStacks

    cloudformation, ecs = aws.get_client("cloudformation"), aws.get_client("ecs")
    role_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                          "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}
    cloudformation.create_stack(StackName="webordinary-old-stack", TemplateBody=json.dumps({"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "webordinary-migrate",
                                                          "AssumeRolePolicyDocument": role_trust}},
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/ecs/webordinary-migrate"}}}}))
    role = aws.get_client("iam").get_role(RoleName="webordinary-migrate")["Role"]["Arn"]
    migrate = ecs.register_task_definition(
        family="webordinary-migrate", taskRoleArn=role, memory="512", requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc", cpu="256",
        containerDefinitions=[{"name": "migrate", "image": aws.topology.initial_image, "memory": 512, "logConfiguration": {
            "logDriver": "awslogs", "options": {"awslogs-group": "/ecs/webordinary-migrate"}}}],
    )["taskDefinition"]["taskDefinitionArn"]
    (task,) = ecs.run_task(cluster=aws.targets.cluster, taskDefinition=migrate, launchType="FARGATE",
                           networkConfiguration={"awsvpcConfiguration": {
                               "subnets": list(aws.topology.subnet_ids),
                               "securityGroups": [aws.topology.security_group_id]}})["tasks"]
    ecs.deregister_task_definition(taskDefinition=migrate)

    stacks = CloudFormationStacks(cloudformation, keep=aws.targets.stacks)
    described = {"webordinary-old-stack": stacks.describe("webordinary-old-stack")}
    planned = plan_cleanup(CleanupSpec(old_stacks=tuple(described)), aws.targets, stacks=described,
                           in_use=images_in_use(ecs, aws.targets), images=())

    assert planned.delete_stacks == ()
    (refusal,) = planned.refusals
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    assert f"webordinary-migrate (the task role of task definition webordinary-migrate:1, running task {task_id})" \
        in refusal.reason, refusal.reason
    assert "/ecs/webordinary-migrate (the log group of task definition webordinary-migrate:1" in refusal.reason


def test_withhold_is_asked_before_each_batch_and_what_it_keeps_is_not_deleted(aws, images):
    # Cleanup reads what production runs again right before each call of 100 tags: an image that
    # came into use meanwhile keeps its tags, from that call on.
    old = [f"build-{n:03d}" for n in range(150)]
    for tag in old:
        put_image(aws, tag, "5")
    asked: list[list[str]] = []

    def withhold(remaining):
        asked.append(list(remaining))
        return {tag: "in use since" for tag in remaining[-10:]} if len(asked) == 2 else {}

    deletion = images.delete_tags(old, withhold=withhold)

    assert asked == [old, old[100:]], "asked before each call, with the tags not asked for yet"
    assert deletion.deleted == tuple(old[:140]) and deletion.failed == {}
    assert deletion.withheld == {tag: "in use since" for tag in old[140:]}
    assert tags_in(images) == set(old[140:])


@pytest.mark.parametrize("error, said", [
    (InUseUnknown("the running tasks could not be read"), "InUseUnknown: the running tasks could not be read"),
    # An error with no words of its own (a timeout) said "TimeoutError: " and nothing.
    (TimeoutError(), "TimeoutError with no message, raised at tests/adapters/test_ecr_images.py:"),
], ids=["with a message", "with none"])
def test_withhold_failing_raises_before_any_deletion_and_fails_the_rest_after_one(aws, images, error, said):
    old = [f"build-{n:03d}" for n in range(150)]
    for tag in old:
        put_image(aws, tag, "5")
    calls: list[int] = []

    def unreadable(remaining):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return {}

    with pytest.raises(InUseUnknown):  # nothing done yet: raised, nothing deleted
        images.delete_tags(old, withhold=lambda remaining: (_ for _ in ()).throw(InUseUnknown("no answer")))
    assert tags_in(images) == set(old)

    deletion = images.delete_tags(old, withhold=unreadable)

    assert deletion.deleted == tuple(old[:100]), "what was deleted is never lost from the answer"
    assert list(deletion.failed) == old[100:]
    assert all(why.startswith(f"not asked to be deleted: {said}") for why in deletion.failed.values()), deletion.failed
    assert tags_in(images) == set(old[100:])


def test_a_second_read_of_what_is_in_use_describes_only_revisions_new_since(aws):
    from tests.botocore_events import on_operation

    ecs = aws.get_client("ecs")
    deployer = EcsDeployer(ecs, aws.targets)
    for n in range(3):
        deployer.register_revision(f"{aws.topology.repository_uri}:old-{n}", aws.topology.task_definition_arn)
    described = DescribedTaskDefinitions()
    asked: list[str] = []

    def count(params, **_):
        asked.append(params["taskDefinition"])

    with on_operation(ecs, "before-parameter-build", count, operation="DescribeTaskDefinition"):
        first = images_in_use(ecs, aws.targets, described=described)
        described_first = len(asked)
        again = images_in_use(ecs, aws.targets, described=described)
    assert len(asked) == described_first == 4, "nothing new: no revision described again"
    new = deployer.register_revision(f"{aws.topology.repository_uri}:new", aws.topology.task_definition_arn)
    with on_operation(ecs, "before-parameter-build", count, operation="DescribeTaskDefinition"):
        after = images_in_use(ecs, aws.targets, described=described)

    assert asked[described_first:] == [new]
    assert again == first
    assert f"{aws.topology.repository_uri}:new" in {use.image for use in after}


def test_the_images_of_every_service_of_the_cluster_count_past_the_first_page_of_services(aws, images):
    # ECS lists a cluster's services 10 a page and describes at most 10 a call; moto answers all in
    # one page and describes any number, so its answers are cut as AWS cuts them here: a service
    # past the tenth (the cluster's workers, cron services) must count as much as the first.
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    ecs = aws.get_client("ecs")
    base = ecs.describe_task_definition(taskDefinition=aws.topology.task_definition_arn)["taskDefinition"]
    names = [f"webordinary-job-{n:02d}" for n in range(12)]
    for n, name in enumerate(names):
        put_image(aws, name, str(n + 10))
        revision = ecs.register_task_definition(
            family=name, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
            containerDefinitions=[{**base["containerDefinitions"][0], "image": f"{aws.topology.repository_uri}:{name}"}],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster=aws.targets.cluster, serviceName=name, taskDefinition=revision, desiredCount=0,
                           launchType="FARGATE")
    put_image(aws, "old-version", "9")
    tokens: list[str | None] = []

    def asked(params, **_):
        tokens.append(params.get("nextToken"))

    def one_page(parsed, **_):
        start, arns = int(tokens[-1] or 0), parsed.get("serviceArns", [])
        parsed["serviceArns"] = arns[start:start + 10]
        if start + 10 < len(arns):
            parsed["nextToken"] = str(start + 10)

    def at_most_ten(params, **_):
        if len(params.get("services", [])) > 10:
            raise ClientError({"Error": {"Code": "InvalidParameterException",
                                         "Message": "services can have at most 10 items."}}, "DescribeServices")

    with on_operation(ecs, "before-parameter-build", asked, operation="ListServices"), \
            on_operation(ecs, "after-call", one_page, operation="ListServices"), \
            on_operation(ecs, "before-parameter-build", at_most_ten, operation="DescribeServices"):
        in_use = images_in_use(ecs, aws.targets)

    assert len(tokens) == 2, "both pages of services were read"
    plan = plan_cleanup(CleanupSpec(old_image_tags=(*names, "old-version")), aws.targets, stacks={}, in_use=in_use,
                        images=images.list_images())
    assert plan.delete_tags == ("old-version",)
    assert sorted(r.name for r in plan.refusals) == names
    assert f"service {names[-1]} of the cluster deploys it" in {r.name: r.reason for r in plan.refusals}[names[-1]]


@contextmanager
def archived_in_ecr(client, archived: set[str]):
    """``client``'s ECR as AWS's answers with the images ``archived`` (digests) in its archive
    (moto has no archive): DescribeImages lists only ACTIVE images unless its filter asks for
    another status (or ANY), and says each image's status; BatchGetImage serves no archived image."""
    from tests.botocore_events import on_operation

    def asked(params, context, **_):
        context["image_status"] = (params.get("filter") or {}).get("imageStatus") or "ACTIVE"
        context["by_id"] = bool(params.get("imageIds"))

    def described(parsed, context, **_):
        details = parsed.get("imageDetails", [])
        for detail in details:
            detail["imageStatus"] = "ARCHIVED" if detail["imageDigest"] in archived else "ACTIVE"
        if not context.get("by_id"):
            wanted = context.get("image_status", "ACTIVE")
            parsed["imageDetails"] = [d for d in details if wanted in ("ANY", d["imageStatus"])]

    def pulled(parsed, **_):
        kept = [image for image in parsed.get("images", []) if image["imageId"]["imageDigest"] not in archived]
        parsed.setdefault("failures", []).extend(
            {"imageId": image["imageId"], "failureCode": "ImageNotFound", "failureReason": "archived"}
            for image in parsed.get("images", []) if image not in kept)
        parsed["images"] = kept

    with on_operation(client, "provide-client-params", asked, operation="DescribeImages"), \
            on_operation(client, "after-call", described, operation="DescribeImages"), \
            on_operation(client, "after-call", pulled, operation="BatchGetImage"):
        yield


def test_an_archived_old_image_is_deleted_not_reported_absent(aws, images):
    # DescribeImages lists ACTIVE images only unless asked for others: the old version a lifecycle
    # rule had moved to ECR's archive was reported "not found: deleted before, or never there
    # (check the spelling)", the run Completed, and the image stayed in the archive, billed.
    ecs = aws.get_client("ecs")
    old = put_image(aws, "old-version", "1")
    put_image(aws, "0.9.0", "2")
    with archived_in_ecr(aws.get_client("ecr"), {old}):
        listed = {image.digest: image for image in images.list_images()}
        assert listed[old].tags == ("old-version",) and listed[old].status == "ARCHIVED"
        plan = plan_cleanup(CleanupSpec(old_image_tags=("old-version", "0.9.0")), aws.targets, stacks={},
                            in_use=images_in_use(ecs, aws.targets), images=images.list_images())
        assert plan.delete_tags == ("old-version", "0.9.0") and plan.gone_tags == () and not plan.refusals
        assert plan.tag_digests["old-version"] == old
        assert images.delete_tags(plan.delete_tags).deleted == ("old-version", "0.9.0")
    assert tags_in(images) == set()


def test_an_archived_image_index_keeps_every_archived_tag_saying_why(aws, images):
    # ECR serves no manifest of an archived image, so which platform images an archived index
    # lists cannot be read, and an archived platform image's tag may be all that keeps one an
    # index in use lists: archived tags are refused, saying what lets them go; an ACTIVE one is not.
    ecs = aws.get_client("ecs")
    index = put_image_index(aws, "0.8.0", {"0.8.0-amd64": "5"})
    (platform,) = [image.digest for image in images.list_images() if image.tags == ("0.8.0-amd64",)]
    old = put_image(aws, "old-version", "1")
    put_image(aws, "0.9.0", "2")
    with archived_in_ecr(aws.get_client("ecr"), {index, platform, old}):
        plan = plan_cleanup(CleanupSpec(old_image_tags=("0.8.0", "0.8.0-amd64", "old-version", "0.9.0")),
                            aws.targets, stacks={}, in_use=images_in_use(ecs, aws.targets),
                            images=images.list_images())
    assert plan.delete_tags == ("0.9.0",)
    reasons = {r.name: r.reason for r in plan.refusals}
    assert set(reasons) == {"0.8.0", "0.8.0-amd64", "old-version"}
    assert (f"it tags image {old}, which ECR holds ARCHIVED: ECR serves no manifest of an archived image, so the "
            f"platform images the archived image index {index} lists cannot be read") in reasons["old-version"]
    assert "aws ecr update-image-storage-class" in reasons["0.8.0"]


class _Body:
    """The raw body of an HTTP answer made up in a test (what botocore reads of one)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_):
        yield self._data


@contextmanager
def ecr_retried_after_deleting(aws, monkeypatch, tags: list[str], status: int = 500, error: str = "ServerException"):
    """An ECR client that retries (botocore's standard mode, no wait between attempts) whose first
    BatchDeleteImage deletes ``tags`` and is answered 500, as ECR does when its own side fails
    after acting (or ``status`` with ``error``): yields (the client, a list holding ``status`` once
    that answer was given)."""
    import boto3
    from botocore.awsrequest import AWSResponse
    from botocore.config import Config
    from botocore.retries.standard import ExponentialBackoff

    from tests.botocore_events import on_operation

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)  # no real wait
    ecr = boto3.client("ecr", endpoint_url=aws.endpoint_url, region_name=aws.targets.region,
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=Config(retries={"mode": "standard", "total_max_attempts": 3}))
    answered: list[int] = []

    def deleted_then_500(request, **_):
        if answered:
            return None
        answered.append(status)
        aws.get_client("ecr").batch_delete_image(repositoryName=aws.targets.ecr_repository,
                                                 imageIds=[{"imageTag": tag} for tag in tags])
        return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.1"},
                           _Body(json.dumps({"__type": error, "message": "internal error"}).encode()))

    with on_operation(ecr, "before-send", deleted_then_500, operation="BatchDeleteImage"):
        yield ecr, answered


def test_tags_botocores_own_retry_finds_gone_are_said_deleted_not_gone_before(aws, monkeypatch):
    # ECR deleted the tags and answered 500: botocore retried the call
    # itself, and ECR answered the retry "ImageNotFound" for them. They were reported gone, as if
    # the run had found them deleted before it; this call deleted them.
    put_image(aws, "old-version", "1")
    put_image(aws, "0.9.0", "2")
    put_image(aws, "1.0.0", "3")

    with ecr_retried_after_deleting(aws, monkeypatch, ["old-version", "0.9.0"]) as (ecr, answered):
        images = EcrImages(ecr, aws.targets.ecr_repository)
        deletion = images.delete_tags(["old-version", "0.9.0"])

    assert answered, "the first answer was the 500"
    assert deletion.deleted == ("old-version", "0.9.0") and deletion.deleted_on_retry == ("old-version", "0.9.0")
    assert deletion.gone == () and deletion.failed == {}
    assert tags_in(images) == {"1.0.0"}
    again = images.delete_tags(["old-version"])
    assert again.deleted == () and again.gone == ("old-version",) and again.deleted_on_retry == ()


def test_a_later_call_whose_answer_was_lost_says_ecr_may_have_deleted_its_tags(aws, images):
    # The second call of 100 tags deleted them and its answer was lost (a read timeout): its tags
    # were failed with "BatchDeleteImage failed", and the run said ECR did not delete them; a new
    # run then listed them as not found, as if someone else had.
    from botocore.exceptions import ReadTimeoutError

    from tests.botocore_events import on_operation

    old = [f"build-{n:03d}" for n in range(150)]
    for tag in old:
        put_image(aws, tag, "5")
    calls: list[int] = []

    def lose_the_second_answer(**_):
        calls.append(1)
        if len(calls) == 2:
            raise ReadTimeoutError(endpoint_url="https://api.ecr.us-west-2.amazonaws.com/")

    with on_operation(aws.get_client("ecr"), "after-call", lose_the_second_answer, operation="BatchDeleteImage"):
        deletion = images.delete_tags(old)

    assert deletion.deleted == tuple(old[:100]) and list(deletion.failed) == old[100:]
    assert tags_in(images) == set(), "ECR deleted the second call's tags too"
    assert all("ECR may have deleted it all the same" in why for why in deletion.failed.values()), deletion.failed


def test_a_tag_gone_when_botocore_retried_a_throttled_call_is_not_said_deleted_by_it(aws, monkeypatch):
    # ECR throttled the first try (a refusal: it did nothing) and an ECR lifecycle rule expired the
    # image meanwhile (here, as that try was sent): botocore's retry found the tag not found, and
    # the run reported it deleted by itself, its log saying ECR had answered "after deleting them".
    put_image(aws, "old-version", "1")
    put_image(aws, "1.0.0", "3")

    with ecr_retried_after_deleting(aws, monkeypatch, ["old-version"], 400, "ThrottlingException") as (ecr, answered):
        deletion = EcrImages(ecr, aws.targets.ecr_repository).delete_tags(["old-version"])

    assert answered, "the first answer was the throttle"
    assert deletion.gone == ("old-version",) and deletion.deleted == () and deletion.deleted_on_retry == ()


def a_mounted_file_system(aws) -> str:
    """An EFS file system with a mount target in the first subnet."""
    efs = aws.get_client("efs")
    data = efs.create_file_system(CreationToken="webordinary-data")["FileSystemId"]
    efs.create_mount_target(FileSystemId=data, SubnetId=aws.topology.subnet_ids[0])
    return data


_SAID = "Rate exceeded\n12:00:00 INFO cleanup done\x1b[2K"


@pytest.mark.parametrize("service, operation, code, read", [
    ("ecs", "DescribeServices", "ThrottlingException", lambda aws: images_in_use(aws.get_client("ecs"), aws.targets)),
    ("ecs", "ListServices", "ThrottlingException", lambda aws: images_in_use(aws.get_client("ecs"), aws.targets)),
    ("ecs", "ListTasks", "ThrottlingException", lambda aws: images_in_use(aws.get_client("ecs"), aws.targets)),
    ("ecs", "DescribeTaskDefinition", "ThrottlingException",
     lambda aws: images_in_use(aws.get_client("ecs"), aws.targets)),
    ("elbv2", "DescribeLoadBalancers", "Throttling",
     lambda aws: network_in_use(aws.get_client("ecs"), aws.get_client("elbv2"), aws.targets)),
    ("elbv2", "DescribeListeners", "Throttling",
     lambda aws: network_in_use(aws.get_client("ecs"), aws.get_client("elbv2"), aws.targets)),
    ("efs", "DescribeMountTargets", "ThrottlingException",
     lambda aws: mount_targets_in_use(aws.get_client("efs"), [ImageUse(
         task_definition="webordinary-edit-task:3", why="the stable service deploys it", image="i",
         file_systems=("fs-0123456789abcdef0",))])),
    ("efs", "DescribeMountTargetSecurityGroups", "ThrottlingException", lambda aws: mount_targets_in_use(
        aws.get_client("efs"), [ImageUse(task_definition="webordinary-edit-task:3", why="the stable service deploys it",
                                         image="i", file_systems=(a_mounted_file_system(aws),))])),
    ("dynamodb", "Query", "ThrottlingException",
     lambda aws: open_rollout_needs(DynamoLedger(aws.get_client("dynamodb"), aws.targets), aws.targets)),
    ("ecr", "DescribeImages", "RepositoryNotFoundException",
     lambda aws: EcrImages(aws.get_client("ecr"), aws.targets.ecr_repository).list_images()),
    ("ecr", "BatchDeleteImage", "RepositoryNotFoundException",
     lambda aws: EcrImages(aws.get_client("ecr"), aws.targets.ecr_repository).delete_tags(["old-version"])),
])
def test_a_read_that_failed_says_awss_words_on_one_line_escaped_naming_the_call(aws, service, operation, code, read):
    """Why cleanup stopped before writing (its run's state message, log and summary) quoted boto's
    text, AWS's message raw: a line break began a log line of its own ("cleanup done") and an
    escape sequence acted on the reader's terminal. Said as ``aws_message`` says it, naming the call."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    def refused(**_):
        raise ClientError({"Error": {"Code": code, "Message": _SAID}}, operation)

    with on_operation(aws.get_client(service), "before-call", refused, operation=operation), \
            pytest.raises((InUseUnknown, TargetNotFound)) as failed:
        read(aws)
    said = str(failed.value)
    assert "\n" not in said and "\x1b" not in said, repr(said)
    assert f"{code} on {operation}: Rate exceeded 12:00:00 INFO cleanup done\\x1b[2K" in said, said


def test_an_old_stack_holding_a_mount_target_of_a_file_system_in_use_is_refused_and_another_is_not(aws):
    """A task definition in use mounts an EFS file system: deleting a stack that made one of its mount
    targets cut the tasks in that subnet off their data (the file system and its other mount targets
    stay), and nothing matched the mount target to the file system."""
    from rollway.cleanup import Holding, StackState

    efs, subnet = aws.get_client("efs"), aws.topology.subnet_ids[0]
    data = efs.create_file_system(CreationToken="webordinary-data")["FileSystemId"]
    mounted = efs.create_mount_target(FileSystemId=data, SubnetId=subnet)["MountTargetId"]
    old = efs.create_file_system(CreationToken="webordinary-old-data")["FileSystemId"]
    unmounted = efs.create_mount_target(FileSystemId=old, SubnetId=subnet)["MountTargetId"]
    use = ImageUse(task_definition=f"arn:aws:ecs:{aws.targets.region}:1:task-definition/webordinary-edit-task:3",
                   why="the stable service deploys it", image=aws.topology.initial_image, file_systems=(data,))
    network = mount_targets_in_use(efs, [use])

    def planned(mount_target: str):
        state = StackState(name="webordinary-old-stack", status="CREATE_COMPLETE", resources=(mount_target,),
                           holdings=(Holding(type="AWS::EFS::MountTarget"),))
        return plan_cleanup(CleanupSpec(old_stacks=("webordinary-old-stack",)), aws.targets,
                            stacks={"webordinary-old-stack": state}, in_use=[use], images=(), network=network)

    (refusal,) = planned(mounted).refusals
    assert (f"it holds {mounted} (a mount target in subnet {subnet} of the EFS file system {data}, which task "
            "definition webordinary-edit-task:3 mounts, the stable service deploys it): deleting the stack deletes "
            "it, and production runs on it") in refusal.reason, refusal.reason
    assert planned(unmounted).delete_stacks == ("webordinary-old-stack",)


def test_the_mount_targets_of_a_file_system_several_task_definitions_in_use_mount_name_each(aws):
    """Two revisions in use mount one file system: its mount target was said to be mounted by the
    first alone, and deregistering it left the stack refused for the other."""
    efs, subnet = aws.get_client("efs"), aws.topology.subnet_ids[0]
    data = efs.create_file_system(CreationToken="webordinary-data")["FileSystemId"]
    mounted = efs.create_mount_target(FileSystemId=data, SubnetId=subnet)["MountTargetId"]
    uses = [ImageUse(task_definition=f"arn:aws:ecs:{aws.targets.region}:1:task-definition/webordinary-edit-task:{r}",
                     why=why, image=aws.topology.initial_image, file_systems=(data,))
            for r, why in ((3, "the stable service deploys it"), (2, "an ACTIVE revision"))]
    (network,) = [use for use in mount_targets_in_use(efs, uses) if use.resource == mounted]
    assert network.user == (f"a mount target in subnet {subnet} of the EFS file system {data}, which task definitions "
                            "webordinary-edit-task:3 (the stable service deploys it) and webordinary-edit-task:2 (an "
                            "ACTIVE revision) mount"), network.user


def test_an_old_stack_holding_the_security_group_of_a_mount_target_of_a_file_system_in_use_is_refused(aws):
    """A mount target of a file system in use is in a security group an old stack made: nothing matched
    the group to the mount target, and deleting the stack ended DELETE_FAILED on the group (in use by
    the mount target's network interface) after deleting the rest of the stack. The group is read
    from EFS (DescribeMountTargetSecurityGroups, one per mount target), and so is the subnet it is in;
    a group of another file system's mount target is not production's."""
    from rollway.cleanup import Holding, StackState

    efs, ec2 = aws.get_client("efs"), aws.get_client("ec2")
    subnet = aws.topology.subnet_ids[1]
    group = ec2.create_security_group(GroupName="old-efs", Description="old efs", VpcId=aws.topology.vpc_id)["GroupId"]
    other = ec2.create_security_group(GroupName="older-efs", Description="old", VpcId=aws.topology.vpc_id)["GroupId"]
    data = efs.create_file_system(CreationToken="webordinary-data")["FileSystemId"]
    mounted = efs.create_mount_target(FileSystemId=data, SubnetId=subnet, SecurityGroups=[group])["MountTargetId"]
    old = efs.create_file_system(CreationToken="webordinary-old-data")["FileSystemId"]
    efs.create_mount_target(FileSystemId=old, SubnetId=subnet, SecurityGroups=[other])
    use = ImageUse(task_definition=f"arn:aws:ecs:{aws.targets.region}:1:task-definition/webordinary-edit-task:3",
                   why="the stable service deploys it", image=aws.topology.initial_image, file_systems=(data,))
    network = mount_targets_in_use(efs, [use])

    def planned(resource: str, kind: str):
        state = StackState(name="webordinary-old-stack", status="CREATE_COMPLETE", resources=(resource,),
                           holdings=(Holding(type=kind),))
        return plan_cleanup(CleanupSpec(old_stacks=("webordinary-old-stack",)), aws.targets,
                            stacks={"webordinary-old-stack": state}, in_use=[use], images=(), network=network)

    mounting = (f"of the EFS file system {data}, which task definition webordinary-edit-task:3 mounts, the stable "
                "service deploys it")
    (refusal,) = planned(group, "AWS::EC2::SecurityGroup").refusals
    assert (f"it holds {group} (a security group of the mount target {mounted} in subnet {subnet} {mounting}): "
            "deleting the stack deletes it, and production runs on it") in refusal.reason, refusal.reason
    (refusal,) = planned(subnet, "AWS::EC2::Subnet").refusals
    assert f"it holds {subnet} (the subnet of the mount target {mounted} {mounting})" in refusal.reason, \
        refusal.reason
    assert planned(other, "AWS::EC2::SecurityGroup").delete_stacks == ("webordinary-old-stack",)


def test_an_old_stack_holding_the_vpc_of_a_mount_target_of_a_file_system_in_use_is_refused(aws):
    """The file system's mount targets are in a VPC of their own (reached over peering), whose stack
    holds the VPC and its routes but not the subnets: nothing matched that VPC, and deleting the stack
    deleted its routes, then ended DELETE_FAILED on the VPC the mount target's subnet is still in. The
    load balancer's VPC alone was read; the mount target's is too (DescribeMountTargets names it)."""
    from rollway.cleanup import Holding, StackState

    efs, ec2 = aws.get_client("efs"), aws.get_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    data = efs.create_file_system(CreationToken="webordinary-data")["FileSystemId"]
    mounted = efs.create_mount_target(FileSystemId=data, SubnetId=subnet)["MountTargetId"]
    use = ImageUse(task_definition=f"arn:aws:ecs:{aws.targets.region}:1:task-definition/webordinary-edit-task:3",
                   why="the stable service deploys it", image=aws.topology.initial_image, file_systems=(data,))
    state = StackState(name="webordinary-old-stack", status="CREATE_COMPLETE", resources=(vpc,),
                       holdings=(Holding(type="AWS::EC2::VPC"),))
    (refusal,) = plan_cleanup(CleanupSpec(old_stacks=("webordinary-old-stack",)), aws.targets,
                              stacks={"webordinary-old-stack": state}, in_use=[use], images=(),
                              network=mount_targets_in_use(efs, [use])).refusals
    assert (f"it holds {vpc} (the VPC of the mount target {mounted} in subnet {subnet} of the EFS file system {data}, "
            "which task definition webordinary-edit-task:3 mounts, the stable service deploys it): deleting the stack "
            "deletes it, and production runs on it") in refusal.reason, refusal.reason


def in_state(aws, mount_target: str, state: str) -> None:
    """``mount_target`` as EFS describes it while it is made or deleted (LifeCycleState ``state``):
    moto makes and deletes one at once, so the state is set on its backend."""
    from moto.efs.models import efs_backends

    account = aws.get_client("sts").get_caller_identity()["Account"]
    efs_backends[account][aws.targets.region].mount_targets_by_id[mount_target].life_cycle_state = state


def a_mount_target_of_a_file_system_in_use(aws) -> tuple[str, str, str, ImageUse]:
    """(file system, mount target, subnet, the task definition in use mounting it), the mount target
    in a subnet of its own."""
    efs, ec2 = aws.get_client("efs"), aws.get_client("ec2")
    subnet = ec2.create_subnet(VpcId=aws.topology.vpc_id, CidrBlock="10.0.200.0/24")["Subnet"]["SubnetId"]
    data = efs.create_file_system(CreationToken="webordinary-data")["FileSystemId"]
    mounted = efs.create_mount_target(FileSystemId=data, SubnetId=subnet)["MountTargetId"]
    use = ImageUse(task_definition=f"arn:aws:ecs:{aws.targets.region}:1:task-definition/webordinary-edit-task:3",
                   why="the stable service deploys it", image=aws.topology.initial_image, file_systems=(data,))
    return data, mounted, subnet, use


def test_a_mount_target_being_created_is_a_holder_said_as_being_created(aws):
    """EFS is creating a mount target of a file system in use: the tasks mount through it once it is
    available, and its subnet is taken already. Held, and said as what it is."""
    data, mounted, subnet, use = a_mount_target_of_a_file_system_in_use(aws)
    in_state(aws, mounted, "creating")
    network = {found.resource: found.user for found in mount_targets_in_use(aws.get_client("efs"), [use])}
    assert network[mounted] == (f"a mount target being created in subnet {subnet} of the EFS file system {data}, "
                                "which task definition webordinary-edit-task:3 mounts, the stable service deploys it"), \
        network
    assert subnet in network, network


@pytest.mark.parametrize("state, said", [
    ("creating", "EFS is creating the mount target {mounted} of the EFS file system {data}, which task definition "
                 "webordinary-edit-task:3 mounts, the stable service deploys it, and tells its security groups once it "
                 "is available (within minutes): a stack holding one of them cannot be judged before; run cleanup "
                 "again then"),
    ("deleting", "EFS is deleting the mount target {mounted} of the EFS file system {data}, which task definition "
                 "webordinary-edit-task:3 mounts, the stable service deploys it, and no longer tells its security "
                 "groups, which it is in until it is gone (within minutes): a stack holding one of them cannot be "
                 "judged before; run cleanup again then"),
])
def test_a_mount_target_in_transition_whose_security_groups_efs_does_not_tell_says_so(aws, state, said):
    """EFS answers DescribeMountTargetSecurityGroups with IncorrectMountTargetState until the mount
    target it is creating is available, and may while it deletes one (its network interface still in
    them): the run stopped saying they "could not be read", as if EFS had failed. Said as what it is:
    a stack holding one of them cannot be judged before, and when."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    data, mounted, _, use = a_mount_target_of_a_file_system_in_use(aws)
    in_state(aws, mounted, state)
    efs = aws.get_client("efs")

    def refused(**_):
        raise ClientError({"Error": {"Code": "IncorrectMountTargetState",
                                     "Message": f"Mount target '{mounted}' is not in the correct state"}},
                          "DescribeMountTargetSecurityGroups")

    with on_operation(efs, "before-call", refused, operation="DescribeMountTargetSecurityGroups"), \
            pytest.raises(InUseUnknown) as stopped:
        mount_targets_in_use(efs, [use])
    assert str(stopped.value).startswith(said.format(mounted=mounted, data=data)), str(stopped.value)
    assert "could not be read" not in str(stopped.value), str(stopped.value)


def test_a_mount_target_deleted_holds_nothing(aws):
    """EFS has deleted a mount target: no task mounts through it, and its subnet and security groups
    are free. Its security groups were read (EFS may refuse: the run stopped, "could not be read") and
    a stack holding its subnet was kept as production's."""
    from rollway.cleanup import Holding, StackState

    from tests.botocore_events import on_operation

    _, mounted, subnet, use = a_mount_target_of_a_file_system_in_use(aws)
    in_state(aws, mounted, "deleted")
    efs = aws.get_client("efs")
    asked = []
    with on_operation(efs, "before-call", lambda **_: asked.append(1), operation="DescribeMountTargetSecurityGroups"):
        network = mount_targets_in_use(efs, [use])
    assert not asked and network == (), network
    old = StackState(name="webordinary-old-stack", status="CREATE_COMPLETE", resources=(mounted, subnet),
                     holdings=(Holding(type="AWS::EFS::MountTarget"), Holding(type="AWS::EC2::Subnet")))
    planned = plan_cleanup(CleanupSpec(old_stacks=("webordinary-old-stack",)), aws.targets,
                           stacks={"webordinary-old-stack": old}, in_use=[use], images=(), network=network)
    assert planned.delete_stacks == ("webordinary-old-stack",) and not planned.refusals, planned.refusals


def test_a_stack_holding_the_subnet_of_a_mount_target_being_deleted_is_refused_until_it_is_gone(aws):
    """EFS is deleting a mount target: no task mounts through it any more, but its network interface
    stays in its subnet, VPC and security groups until it is gone. A stack holding its subnet was planned
    for deletion: CloudFormation deleted the rest of the stack, then ended DELETE_FAILED on the subnet.
    Refused, said as held by a mount target EFS is deleting, and when to run cleanup again; the mount
    target itself holds nothing any more (the stack holding it may go)."""
    from rollway.cleanup import Holding, StackState

    data, mounted, subnet, use = a_mount_target_of_a_file_system_in_use(aws)
    in_state(aws, mounted, "deleting")
    network = mount_targets_in_use(aws.get_client("efs"), [use])
    assert mounted not in {found.resource for found in network}, network

    def plan(*held: tuple[str, str]):
        state = StackState(name="webordinary-old-stack", status="CREATE_COMPLETE", resources=tuple(r for r, _ in held),
                           holdings=tuple(Holding(type=kind) for _, kind in held))
        return plan_cleanup(CleanupSpec(old_stacks=("webordinary-old-stack",)), aws.targets,
                            stacks={"webordinary-old-stack": state}, in_use=[use], images=(), network=network)

    (refusal,) = plan((subnet, "AWS::EC2::Subnet")).refusals
    assert refusal.reason == (
        f"it holds {subnet} (the subnet of the mount target {mounted}, which EFS is deleting, of the EFS file system "
        f"{data}, which task definition webordinary-edit-task:3 mounts, the stable service deploys it): CloudFormation "
        "cannot delete it while that mount target's network interface is in it, and would end DELETE_FAILED after "
        "deleting the rest of the stack; run cleanup again once EFS has deleted the mount target (within minutes)"), \
        refusal.reason
    assert plan((mounted, "AWS::EFS::MountTarget")).delete_stacks == ("webordinary-old-stack",)


def test_a_stack_holding_the_subnets_of_two_mount_targets_being_deleted_says_them_not_it(aws):
    """Two mount targets of a file system in use, one per zone, both being deleted, and a stack holding
    both their subnets: the refusal listed both and went on "cannot delete it while that mount
    target's network interface is in it", pointing at neither."""
    from rollway.cleanup import Holding, StackState

    data, mounted, subnet, use = a_mount_target_of_a_file_system_in_use(aws)
    ec2, efs = aws.get_client("ec2"), aws.get_client("efs")
    zone = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailabilityZone"]
    other_zone = next(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]
                      if z["ZoneName"] != zone)
    second = ec2.create_subnet(VpcId=aws.topology.vpc_id, CidrBlock="10.0.201.0/24",
                               AvailabilityZone=other_zone)["Subnet"]["SubnetId"]
    other = efs.create_mount_target(FileSystemId=data, SubnetId=second)["MountTargetId"]
    in_state(aws, mounted, "deleting")
    in_state(aws, other, "deleting")
    network = mount_targets_in_use(efs, [use])
    state = StackState(name="webordinary-old-stack", status="CREATE_COMPLETE", resources=(subnet, second),
                       holdings=(Holding(type="AWS::EC2::Subnet"), Holding(type="AWS::EC2::Subnet")))
    (refusal,) = plan_cleanup(CleanupSpec(old_stacks=("webordinary-old-stack",)), aws.targets,
                              stacks={"webordinary-old-stack": state}, in_use=[use], images=(), network=network).refusals
    assert mounted in refusal.reason and other in refusal.reason, refusal.reason
    assert refusal.reason.endswith(
        ": CloudFormation cannot delete them while the network interface of a mount target EFS is deleting is in "
        "each, and would end DELETE_FAILED after deleting the rest of the stack; run cleanup again once EFS has "
        "deleted the mount targets named (within minutes)"), refusal.reason
