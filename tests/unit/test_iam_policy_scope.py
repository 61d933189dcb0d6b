"""The documented IAM policies grant their writes on named resources only, and the resource
check the policy tests make tells a call on another resource from one the policy allows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.flows.iam import WRITES, Request, denied, grants, iam_requests

POLICIES = ("iam-policy.json", "iam-policy-release.json", "iam-policy-infrastructure.json")
# "*", or every resource of one type ("arn:aws:cloudformation:<region>:<account>:stack/*").
_EVERYTHING = re.compile(r"^(\*|arn:[^:]+:[^:]+:[^:]*:[^:]*:[a-z-]+/\*)$")


@pytest.mark.parametrize("policy", POLICIES)
def test_every_write_a_policy_grants_is_scoped_to_named_resources(policy):
    broad = [(action, resource) for action, resource in grants(policy)
             if action in WRITES and _EVERYTHING.match(resource)]
    assert not broad, f"{policy} grants writes on every resource: {broad}"


def test_tags_of_a_revision_are_allowed_at_its_registration_only():
    register = iam_requests("ecs", "RegisterTaskDefinition",
                            {"family": "webordinary-edit-task", "tags": [{"key": "team", "value": "edit"}]})
    assert not denied("iam-policy.json", register) and not denied("iam-policy-release.json", register)
    # Tagging another family's revision, or a revision after the fact (no CreateAction), is not.
    other = iam_requests("ecs", "RegisterTaskDefinition",
                         {"family": "payments-task", "tags": [{"key": "team", "value": "edit"}]})
    assert [r.action for r in denied("iam-policy.json", other)] == ["ecs:TagResource"]
    later = Request("ecs:TagResource", "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:3")
    assert denied("iam-policy.json", [later]) == [later]


def test_cleanup_may_delete_webordinarys_stacks_and_no_other():
    # The infrastructure role may pass CDK's execution role (an administrator by default) to
    # CloudFormation: on stack/* it could delete any stack of the account, the CDK bootstrap's
    # included.
    def delete(name: str) -> list[Request]:
        return iam_requests("cloudformation", "DeleteStack",
                            {"StackName": f"arn:aws:cloudformation:us-west-2:123456789012:stack/{name}/0f1e2d3c"})

    policy = "iam-policy-infrastructure.json"
    assert not denied(policy, delete("webordinary-old-stack")) and not denied(policy, delete("WebordinarySQSStack"))
    assert denied(policy, delete("CDKToolkit")) == delete("CDKToolkit")
    assert denied(policy, delete("payments-api")) == delete("payments-api")


@pytest.mark.parametrize("policy", ["iam-policy.json", "iam-policy-release.json"])
def test_a_revision_may_pass_the_task_familys_roles_to_ecs_tasks_and_nothing_else(policy):
    # README: PassRole on the task's webordinary-edit-* roles for ECS tasks only; a role CDK named
    # (<stack>-<construct id>-<suffix>) is not one of them until the pattern is renamed.
    def passing(role: str, service: str = "ecs-tasks.amazonaws.com") -> list[Request]:
        return [Request("iam:PassRole", f"arn:aws:iam::123456789012:role/{role}", (("iam:PassedToService", service),))]

    assert not denied(policy, passing("webordinary-edit-task-execution"))
    assert denied(policy, passing("webordinary-edit-task-execution", "lambda.amazonaws.com"))
    assert denied(policy, passing("WebordinaryFargateStack-EditTaskDefTaskRole5C6D7E8F-9U8I7O6P5A4S"))
    assert denied(policy, passing("payments-task-role"))


def test_the_rollout_reads_its_two_services_and_cleanup_the_services_and_tasks_of_its_cluster_only():
    # DescribeServices on "*" read every service of the account (another team's task
    # definitions, their environment variables among them).
    def describe(cluster: str, *services: str) -> list[Request]:
        return iam_requests("ecs", "DescribeServices", {"cluster": cluster, "services": list(services)})

    ours = describe("webordinary-edit-cluster", "webordinary-edit-service",
                    "arn:aws:ecs:us-west-2:123456789012:service/webordinary-edit-cluster/webordinary-edit-service-canary")
    assert not denied("iam-policy.json", ours) and not denied("iam-policy-infrastructure.json", ours)
    neighbour = describe("webordinary-edit-cluster", "webordinary-edit-worker")
    assert denied("iam-policy.json", neighbour) == neighbour  # the rollout has no business with it
    assert not denied("iam-policy-infrastructure.json", neighbour)  # cleanup keeps the images it runs
    other = describe("payments-cluster", "payments-api")
    assert denied("iam-policy.json", other) == other and denied("iam-policy-infrastructure.json", other) == other
    # The running tasks cleanup reads (the images they run) are those of the cluster too.
    tasks = iam_requests("ecs", "DescribeTasks", {"cluster": "webordinary-edit-cluster", "tasks": [
        "arn:aws:ecs:us-west-2:123456789012:task/webordinary-edit-cluster/0123456789abcdef", "fedcba9876543210"]})
    assert [r.resource.rsplit("/", 2)[-2] for r in tasks] == ["webordinary-edit-cluster"] * 2
    assert not denied("iam-policy-infrastructure.json", tasks)
    theirs = iam_requests("ecs", "DescribeTasks", {"cluster": "payments-cluster", "tasks": ["0123456789abcdef"]})
    assert denied("iam-policy-infrastructure.json", theirs) == theirs


@pytest.mark.parametrize(("service", "operation", "params"), [
    ("dynamodb", "DescribeTable", {"TableName": "payments-ledger"}),
    ("sqs", "GetQueueUrl", {"QueueName": "payments-queue"}),
    ("sqs", "GetQueueAttributes", {"QueueUrl": "https://sqs.us-west-2.amazonaws.com/123456789012/payments-queue"}),
    ("cloudwatch", "GetDashboard", {"DashboardName": "payments"}),
    ("sns", "ListSubscriptionsByTopic", {"TopicArn": "arn:aws:sns:us-west-2:123456789012:payments-alerts"}),
])
def test_the_checklist_reads_webordinarys_resources_and_no_others(service, operation, params):
    policy = "iam-policy-infrastructure.json"
    theirs = iam_requests(service, operation, params)
    assert denied(policy, theirs) == theirs
    ours = iam_requests(service, operation, {key: value.replace("payments-ledger", "webordinary-edit-sessions")
                                             .replace("payments-queue", "webordinary-edit-input-dlq")
                                             .replace("payments-alerts", "webordinary-alerts")
                                             .replace("payments", "webordinary-edit-dashboard")
                                             for key, value in params.items()})
    # ... wherever in the account the app deploys them (a table in another region included).
    elsewhere = [Request(r.action, r.resource.replace("us-west-2", "eu-west-1")) for r in ours]
    assert not denied(policy, ours) and not denied(policy, elsewhere)


def test_cleanup_reads_the_resources_and_events_of_the_stacks_it_may_delete_only():
    def read(operation: str, name: str) -> list[Request]:
        return iam_requests("cloudformation", operation,
                            {"StackName": f"arn:aws:cloudformation:us-west-2:123456789012:stack/{name}/0f1e2d3c"})

    policy = "iam-policy-infrastructure.json"
    for operation in ("ListStackResources", "DescribeStackEvents"):
        assert not denied(policy, read(operation, "webordinary-old-stack"))
        assert not denied(policy, read(operation, "WebordinarySQSStack-QueuesNestedStack-1A2B3C"))
        assert denied(policy, read(operation, "payments-api")) == read(operation, "payments-api")


def test_a_deploy_reads_the_newest_events_of_the_stacks_it_deploys_in_any_region_of_the_account_only():
    # Which stacks a deploy changed: a stack updated again reads UPDATE_COMPLETE as before, its
    # newest event tells; the app may deploy a stack in another region than cleanup's.
    def read(name: str, region: str = "us-west-2", account: str = "123456789012") -> list[Request]:
        return iam_requests("cloudformation", "DescribeStackEvents",
                            {"StackName": f"arn:aws:cloudformation:{region}:{account}:stack/{name}/0f1e2d3c"},
                            region=region)

    policy = "iam-policy-infrastructure.json"
    for region in ("us-west-2", "eu-west-1"):
        assert not denied(policy, read("WebordinarySQSStack", region))
        assert denied(policy, read("payments-api", region)) == read("payments-api", region)


@pytest.mark.parametrize("operation", ["ListServices", "ListTasks"])
def test_cleanup_lists_the_services_and_tasks_of_its_cluster_only(operation):
    # On "*" without a condition, cleanup's role listed every cluster's services and running
    # tasks; AWS scopes both with the ecs:cluster condition key (ArnEquals on the cluster's ARN).
    policy = "iam-policy-infrastructure.json"
    ours = iam_requests("ecs", operation, {"cluster": "webordinary-edit-cluster"})
    by_arn = iam_requests("ecs", operation, {"cluster": "arn:aws:ecs:us-west-2:123456789012:cluster/webordinary-edit-cluster"})
    assert ours == by_arn and not denied(policy, ours)
    theirs = iam_requests("ecs", operation, {"cluster": "payments-cluster"})
    assert denied(policy, theirs) == theirs
    default = iam_requests("ecs", operation, {})  # no cluster named: the account's default cluster
    assert denied(policy, default) == default


def test_a_condition_the_policy_check_cannot_evaluate_is_refused_not_ignored(tmp_path):
    # Read as no condition, a StringLike or ArnLike would let the check allow what AWS refuses.
    statement = {"Sid": "Liked", "Effect": "Allow", "Action": "ecs:ListTasks", "Resource": "*",
                 "Condition": {"ArnLike": {"ecs:cluster": "arn:aws:ecs:*:ACCOUNT_ID:cluster/webordinary-*"}}}
    liked = tmp_path / "liked.json"  # a path of its own, not one of deployments/
    liked.write_text(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    with pytest.raises(ValueError, match="cannot evaluate \\['ArnLike'\\]"):
        denied(str(liked), iam_requests("ecs", "ListTasks", {"cluster": "payments-cluster"}))


def test_the_checklist_reads_alarms_on_every_resource_so_that_composite_alarms_are_answered():
    # The alarm names are known, but CloudWatch leaves composite alarms out of DescribeAlarms'
    # answer to a permission narrower than "*" (API_DescribeAlarms.html): scoped to the
    # webordinary-* alarms, a composite alarm of the checklist would read as missing.
    scopes = [resource for action, resource in grants("iam-policy-infrastructure.json")
              if action == "cloudwatch:DescribeAlarms"]
    assert scopes == ["*"]


@pytest.mark.parametrize("policy", POLICIES)
def test_a_policy_grants_an_action_on_a_resource_by_one_statement_only(policy):
    # cloudformation:GetTemplate was granted on "*" by two statements of the infrastructure policy:
    # a refusal named both, and whoever fixed the role extended one of the two for nothing.
    statements = json.loads((Path(__file__).resolve().parents[2] / "deployments" / policy).read_text())["Statement"]
    granting: dict[tuple[str, str], list[str]] = {}
    for statement in statements:
        actions, resources = statement["Action"], statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            for resource in [resources] if isinstance(resources, str) else resources:
                granting.setdefault((action, resource), []).append(statement["Sid"])
    twice = {grant: sids for grant, sids in granting.items() if len(sids) > 1}
    assert not twice, f"{policy} grants the same action on the same resource in several statements: {twice}"
    # An action on every resource covers any other statement's grant of it: that one alone grants it.
    everywhere = {action for action, resource in granting if resource == "*"}
    overlapping = {action: sorted(sids for (a, _), sids in granting.items() if a == action)
                   for action in everywhere if sum(1 for a, _ in granting if a == action) > 1}
    assert not overlapping, f"{policy} grants these on \"*\" and elsewhere too: {overlapping}"
