"""AwsInfraChecker on the embedded AWS: the provisioned account passes every item, and each
thing broken on its own fails its item with the right reason."""

from __future__ import annotations

import json
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from rollway.aws.checklist import AwsInfraChecker
from rollway.checklist import Checklist, all_tables
from rollway.targets import TableSpec
from tests.bound_clock import SteppedClock
from tests.flows.moto_env import deployed_stacks, inbox


def check(aws, **clients) -> Checklist:
    get = lambda name: clients.get(name) or aws.get_client(name)  # noqa: E731
    return AwsInfraChecker(get("dynamodb"), get("sqs"), get("cloudwatch"), get("sns"), get("cloudformation"),
                           aws.targets).check()


def failed(checklist: Checklist) -> dict[str, str]:
    return {item.name: item.reason for item in checklist.failed}


@pytest.fixture
def paged(aws):
    """The provisioned account with its stacks recorded and someone subscribed to the alert topic."""
    deployed_stacks(aws)
    inbox(aws)
    return aws


def test_the_provisioned_account_passes_every_item(paged, watch_calls):
    calls = [watch_calls(paged.get_client(s)) for s in ("dynamodb", "sqs", "cloudwatch", "sns", "cloudformation")]
    checklist = check(paged)
    assert checklist.passed, checklist.summary()
    t = paged.targets
    assert len(checklist.items) == len(t.stacks) + len(t.tables) + 2 + len(t.queues) + 1 + len(t.alarms) + 1
    # Reads only.
    made = {name for names in calls for name in names}
    assert made and all(name.startswith(("Describe", "Get", "List")) for name in made), made


def test_an_alert_topic_nobody_subscribes_to_fails(aws):
    # As provisioned, the embedded account's topic has no subscriber: nobody would get the page.
    deployed_stacks(aws)
    reasons = failed(check(aws))
    assert list(reasons) == [aws.targets.alert_topic] and "no confirmed subscription" in reasons[aws.targets.alert_topic]


def test_a_stack_never_deployed_fails_and_the_rest_is_still_checked(aws):
    # The seed's first box, "all CDK stacks deployed": the embedded account as provisioned has
    # every resource but no CloudFormation stack behind them.
    inbox(aws)
    reasons = failed(check(aws))
    assert list(reasons) == list(aws.targets.stacks)
    stack = aws.targets.stacks[0]
    assert reasons[stack] == f"CloudFormation stack {stack} does not exist: deploy it (deploy_infrastructure)"


def test_a_stack_named_by_its_construct_id_names_the_deployed_stack_also_without_the_app(aws):
    # verify_infrastructure without cdk_app_dir: Targets.stacks written as the seed's construct
    # ids, the app deploying one under a stackName of its own. The item said "does not exist:
    # deploy it" of a stack that is deployed; CDK's aws:cdk:path metadata in the deployed
    # template says which stack that construct id is.
    named = "prod-webordinary-sqs"
    cloudformation = aws.get_client("cloudformation")
    plain = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    for stack in aws.targets.stacks:
        if stack != "WebordinarySQSStack":
            cloudformation.create_stack(StackName=stack, TemplateBody=plain)
    cloudformation.create_stack(StackName="unrelated", TemplateBody=plain)
    cloudformation.create_stack(StackName=named, TemplateBody=json.dumps({"Resources": {"Queue": {
        "Type": "AWS::SNS::Topic", "Metadata": {"aws:cdk:path": "WebordinarySQSStack/Queue/Resource"}}}}))
    inbox(aws)
    assert failed(check(aws)) == {"WebordinarySQSStack": (
        "CloudFormation stack WebordinarySQSStack does not exist: that is the construct id of the stack whose "
        f"CloudFormation name is {named!r}: name stacks by their CloudFormation name in Targets.stacks")}


def test_a_stack_deleted_fails(paged):
    stack = paged.targets.stacks[3]
    paged.get_client("cloudformation").delete_stack(StackName=stack)
    assert list(failed(check(paged))) == [stack]


def test_a_stack_read_refused_is_a_failed_item(paged, independent_client):
    cloudformation = _refusing(independent_client("cloudformation"), "DescribeStacks", "AccessDenied")
    reasons = failed(check(paged, cloudformation=cloudformation))
    assert list(reasons) == list(paged.targets.stacks)
    assert all("could not read" in r and "AccessDenied" in r for r in reasons.values())


def test_a_table_without_its_index_fails(paged):
    spec = paged.targets.tables[0]
    dynamodb = paged.get_client("dynamodb")
    dynamodb.update_table(TableName=spec.name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": spec.indexes[0]}}])
    assert failed(check(paged)) == {spec.name: f"index {spec.indexes[0]} is missing (it has no indexes): add it to the table's "
                                                 "definition and deploy the stack that defines it"}


def test_a_missing_table_fails(paged):
    paged.get_client("dynamodb").delete_table(TableName=paged.targets.rollouts_table)
    reasons = failed(check(paged))
    assert list(reasons) == [paged.targets.rollouts_table]
    assert reasons[paged.targets.rollouts_table].startswith(f"DynamoDB table {paged.targets.rollouts_table} does not exist")


def _queue_url(aws, name):
    return aws.get_client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def test_a_missing_queue_fails(paged):
    spec = paged.targets.queues[0]
    paged.get_client("sqs").delete_queue(QueueUrl=_queue_url(paged, spec.name))
    reasons = failed(check(paged))
    assert list(reasons) == [spec.name] and reasons[spec.name].startswith(f"SQS queue {spec.name} does not exist")


def test_a_missing_queue_whose_dlq_is_missing_too_says_both(paged):
    # The queue's item stopped at the queue: the DLQ, read and missing as well, came out only
    # once the queue was created and the checklist run again.
    spec = paged.targets.queues[0]
    sqs = paged.get_client("sqs")
    for name in (spec.name, spec.dlq_name):
        sqs.delete_queue(QueueUrl=_queue_url(paged, name))
    reasons = failed(check(paged))
    assert list(reasons) == [spec.name]
    assert reasons[spec.name].startswith(f"SQS queue {spec.name} does not exist")
    assert f"its dead-letter queue {spec.dlq_name} does not exist" in reasons[spec.name]


def test_a_queue_without_a_dlq_fails(paged):
    spec = paged.targets.queues[1]
    paged.get_client("sqs").set_queue_attributes(QueueUrl=_queue_url(paged, spec.name), Attributes={"RedrivePolicy": ""})
    reasons = failed(check(paged))
    assert list(reasons) == [spec.name] and "no dead-letter queue" in reasons[spec.name]


def test_a_queue_pointing_at_another_dlq_fails(paged):
    spec, other = paged.targets.queues[0], paged.targets.queues[2]
    sqs = paged.get_client("sqs")
    other_arn = sqs.get_queue_attributes(QueueUrl=_queue_url(paged, other.dlq_name),
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=_queue_url(paged, spec.name), Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": other_arn, "maxReceiveCount": str(spec.max_receive_count)})})
    reasons = failed(check(paged))
    assert list(reasons) == [spec.name]
    assert f"redrives to {other.dlq_name}" in reasons[spec.name] and f"not to {spec.dlq_name}" in reasons[spec.name]


def test_a_missing_dlq_fails_its_queue(paged):
    spec = paged.targets.queues[2]
    paged.get_client("sqs").delete_queue(QueueUrl=_queue_url(paged, spec.dlq_name))
    reasons = failed(check(paged))
    assert list(reasons) == [spec.name] and reasons[spec.name].startswith(f"its dead-letter queue {spec.dlq_name} does not exist")


def test_a_dlq_keeping_messages_less_long_than_its_queue_fails_the_queue(paged):
    spec = paged.targets.queues[0]
    paged.get_client("sqs").set_queue_attributes(QueueUrl=_queue_url(paged, spec.dlq_name),
                                                 Attributes={"MessageRetentionPeriod": "60"})
    reasons = failed(check(paged))
    assert list(reasons) == [spec.name] and "its DLQ keeps messages 60 s, less than the queue's" in reasons[spec.name]


def test_a_rollouts_table_with_a_number_key_fails_and_a_service_table_may_have_one(paged):
    dynamodb, t = paged.get_client("dynamodb"), paged.targets
    for name, keys in ((t.rollouts_table, (("service", "HASH", "S"), ("rollout_id", "RANGE", "N"))),
                       (t.tables[1].name, ((t.tables[1].hash_key, "HASH", "N"),))):
        dynamodb.delete_table(TableName=name)
        dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": a, "KeyType": k} for a, k, _ in keys],
                              AttributeDefinitions=[{"AttributeName": a, "AttributeType": ty} for a, _, ty in keys])
    reasons = failed(check(paged))
    assert list(reasons) == [t.rollouts_table]
    assert "range key rollout_id is of type N, expected S" in reasons[t.rollouts_table]


def test_a_missing_dashboard_fails(paged):
    paged.get_client("cloudwatch").delete_dashboards(DashboardNames=[paged.targets.dashboard])
    reasons = failed(check(paged))
    assert list(reasons) == [paged.targets.dashboard]
    assert reasons[paged.targets.dashboard].startswith(f"CloudWatch dashboard {paged.targets.dashboard} does not exist")


def _without_actions(cloudwatch, name: str) -> None:
    """The alarm ``name`` put again as it is, with no alarm action."""
    alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace=alarm["Namespace"], MetricName=alarm["MetricName"], Dimensions=alarm["Dimensions"],
        Statistic=alarm["Statistic"], Period=alarm["Period"], EvaluationPeriods=alarm["EvaluationPeriods"],
        Threshold=alarm["Threshold"], ComparisonOperator=alarm["ComparisonOperator"], AlarmActions=[])


def test_an_alarm_without_the_topic_action_fails(paged):
    name = paged.targets.alarms[1]
    _without_actions(paged.get_client("cloudwatch"), name)
    reasons = failed(check(paged))
    assert list(reasons) == [name] and "no alarm action on the alert topic" in reasons[name]


def test_an_alarm_firing_before_the_deploy_fails(paged):
    name = paged.targets.alarms[0]
    paged.get_client("cloudwatch").set_alarm_state(AlarmName=name, StateValue="ALARM",
                                                   StateReason="Threshold Crossed: 5xx rate 12 %")
    reasons = failed(check(paged))
    assert list(reasons) == [name] and "in ALARM since" in reasons[name]
    assert "Threshold Crossed: 5xx rate 12 %" in reasons[name]


def test_an_alarm_firing_is_said_with_every_other_problem_of_it(paged):
    # The alarm's item stopped at its first problem: an alarm firing now read only "no alarm action
    # on the alert topic" (or "actions disabled"), and that production is failing came out only
    # once that was fixed and the checklist run again.
    quiet, disabled = paged.targets.alarms[1], paged.targets.alarms[2]
    cloudwatch = paged.get_client("cloudwatch")
    _without_actions(cloudwatch, quiet)
    cloudwatch.disable_alarm_actions(AlarmNames=[disabled])
    for name in (quiet, disabled):
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="Threshold Crossed: 5xx rate 12 %")
    reasons = failed(check(paged))
    assert list(reasons) == [quiet, disabled]
    assert "no alarm action on the alert topic" in reasons[quiet] and "in ALARM since" in reasons[quiet]
    assert "its actions are disabled" in reasons[disabled] and "in ALARM since" in reasons[disabled]
    assert all("Threshold Crossed: 5xx rate 12 %" in r for r in reasons.values())


def test_a_missing_alarm_fails(paged):
    name = paged.targets.alarms[0]
    paged.get_client("cloudwatch").delete_alarms(AlarmNames=[name])
    reasons = failed(check(paged))
    assert list(reasons) == [name] and reasons[name].startswith(f"CloudWatch alarm {name} does not exist")


def test_what_is_missing_names_the_apps_stack_that_defines_it(paged, _get_client_for_region):
    # The remedy guessed ("deploy the monitoring stack"): an app whose alarms live in its service
    # stack sent a person looking for a stack it does not have. Read from the app, it names it.
    from rollway.infra import ResourcePlace, StackEnvironment

    t = paged.targets
    here = StackEnvironment(account=ACCOUNT, region=t.region)
    alarm, table, q = t.alarms[0], t.tables[1], t.queues[0]
    paged.get_client("cloudwatch").delete_alarms(AlarmNames=[alarm])
    paged.get_client("cloudwatch").delete_dashboards(DashboardNames=[t.dashboard])
    paged.get_client("dynamodb").delete_table(TableName=table.name)
    sqs = paged.get_client("sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=q.dlq_name)["QueueUrl"])
    places = {("alarm", alarm): "WebordinaryFargateStack", ("dashboard", t.dashboard): "WebordinaryFargateStack",
              ("table", table.name): "WebordinarySessionStack", ("queue", q.dlq_name): "WebordinarySQSStack"}
    reasons = failed(check_resources_placed(paged, _get_client_for_region, {
        key: ResourcePlace(stack=stack, environment=here) for key, stack in places.items()}))
    assert reasons[alarm] == (f"CloudWatch alarm {alarm} does not exist: deploy WebordinaryFargateStack, whose "
                              "template defines it (deploy_infrastructure)")
    assert reasons[t.dashboard].endswith("does not exist: deploy WebordinaryFargateStack, whose template defines it "
                                         "(deploy_infrastructure)")
    assert reasons[table.name].endswith("does not exist: deploy WebordinarySessionStack, whose template defines it "
                                        "(deploy_infrastructure)")
    assert (f"its dead-letter queue {q.dlq_name} does not exist: deploy WebordinarySQSStack, whose template defines "
            "it") in reasons[q.name]
    # Without the app, the remedy stays general.
    assert failed(check(paged))[alarm].endswith("does not exist: create it (deploy the monitoring stack)")


def _refusing(client, operation: str, code: str):
    """``client`` answering ``operation`` with an error, as AWS does for a role without the permission."""
    def refuse(**_):
        return SimpleNamespace(status_code=400, headers={}), {
            "Error": {"Code": code, "Message": f"not allowed to {operation}"}, "ResponseMetadata": {}}

    # Named by its service id, as botocore emits it: elbv2's endpoint prefix (elasticloadbalancing) is not.
    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", refuse)
    return client


def test_a_read_aws_refuses_as_invalid_is_not_told_to_be_read_again_alone(paged, independent_client):
    # "run verify_infrastructure again" followed every answer but a denial: a name AWS refuses as
    # invalid gets the same answer on every re-run, and the advice sent a person round that loop.
    dynamodb = _refusing(independent_client("dynamodb"), "DescribeTable", "ValidationException")
    reasons = failed(check(paged, dynamodb=dynamodb))
    assert reasons and all("ValidationException" in r for r in reasons.values()), reasons
    assert not any("run verify_infrastructure again (it only reads)" in r for r in reasons.values()), reasons
    assert all(r.endswith("; a re-run alone gets the same answer: fix what AWS names (most often the name or region "
                          "the targets give), then run verify_infrastructure again") for r in reasons.values()), reasons


def test_a_read_refused_is_a_failed_item_saying_so_and_the_rest_is_still_checked(paged, independent_client):
    dynamodb = _refusing(independent_client("dynamodb"), "DescribeTable", "AccessDeniedException")
    checklist = check(paged, dynamodb=dynamodb)
    reasons = failed(checklist)
    assert set(reasons) == {*(t.name for t in paged.targets.tables), paged.targets.flags_table,
                            paged.targets.rollouts_table}
    assert all("AccessDeniedException" in r and "could not read" in r for r in reasons.values())
    assert len(checklist.items) - len(reasons) == (len(paged.targets.stacks) + len(paged.targets.queues) + 1
                                                   + len(paged.targets.alarms) + 1)


def _refused_as_aws_words_it(client, operation: str, action: str, resource: str | None = None):
    """``client`` refusing ``operation`` in AWS's words: the IAM action, and the resource when given."""
    on = f" on resource: {resource}" if resource else ""

    def refuse(**_):
        return SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": "AccessDenied", "Message": (
            f"User: arn:aws:sts::{ACCOUNT}:assumed-role/rollway-infra/i-0abc is not authorized to perform: "
            f"{action}{on} because no identity-based policy allows the {action} action")}, "ResponseMetadata": {}}

    # Named by its service id, as botocore emits it: elbv2's endpoint prefix (elasticloadbalancing) is not.
    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", refuse)
    return client


@pytest.mark.parametrize(("service", "operation", "action", "statement"), [
    ("dynamodb", "DescribeTable", "dynamodb:DescribeTable", "ChecklistReadsTheServicesTablesQueuesAndTopic"),
    ("sqs", "GetQueueUrl", "sqs:GetQueueUrl", "ChecklistReadsTheServicesTablesQueuesAndTopic"),
    ("cloudwatch", "GetDashboard", "cloudwatch:GetDashboard", "ChecklistReadsTheDashboard"),
    ("cloudwatch", "DescribeAlarms", "cloudwatch:DescribeAlarms", "ChecklistReads"),
    # sns:ListTopics is the rollout's too (FindTheAlertTopic): the checklist's role holds the infrastructure policy.
    ("sns", "ListTopics", "sns:ListTopics", "ChecklistReads"),
    ("cloudformation", "DescribeStacks", "cloudformation:DescribeStacks", "DeployChecklistAndCleanupReadTheStacks"),
])
def test_a_refused_read_names_the_statement_of_the_infrastructure_policy_granting_it(
        paged, independent_client, service, operation, action, statement):
    # A refused read said AWS's own text only: the person fixing the role had to find the
    # action's statement themselves, where the rollout's and cleanup's refusals name it.
    client = _refused_as_aws_words_it(independent_client(service), operation, action)
    reasons = failed(check(paged, **{service: client}))
    assert reasons
    grant = f"it is granted by deployments/iam-policy-infrastructure.json, statement {statement}: add that statement"
    assert all(f"AWS refused {action} (AccessDenied: " in r and grant in r for r in reasons.values()), reasons


def test_a_refused_read_of_the_users_own_table_names_the_statement_that_grants_it(paged, independent_client):
    # The policies spell Webordinary's names; a refusal on the user's own table is its statement all the same
    # (the targets say which table it stands for), not "add it with your table in its Resource".
    targets = paged.targets.model_copy(update={"flags_table": "acme-flags"})
    dynamodb = _refused_as_aws_words_it(independent_client("dynamodb"), "DescribeTable", "dynamodb:DescribeTable",
                                        f"arn:aws:dynamodb:{targets.region}:{ACCOUNT}:table/acme-flags")
    reasons = failed(AwsInfraChecker(dynamodb, *(paged.get_client(s) for s in SERVICES[1:]), targets).check())
    assert "acme-flags" in reasons
    assert reasons["acme-flags"].endswith(
        "it is granted by deployments/iam-policy-infrastructure.json, statement "
        "ChecklistReadsTheServicesTablesQueuesAndTopic: add that statement (with your names) to that role or user, "
        "then run again"), reasons["acme-flags"]


def test_throttled_alarms_and_topics_fail_their_items(paged, independent_client):
    cloudwatch = _refusing(independent_client("cloudwatch"), "DescribeAlarms", "Throttling")
    sns = _refusing(independent_client("sns"), "ListTopics", "Throttling")
    reasons = failed(check(paged, cloudwatch=cloudwatch, sns=sns))
    assert set(reasons) == {*paged.targets.alarms, paged.targets.alert_topic}
    # What to do, as a refused read says what to grant: a throttled item said only what AWS answered.
    assert all("Throttling" in r and r.endswith("; run verify_infrastructure again (it only reads)")
               for r in reasons.values()), reasons


def test_alarms_missing_or_firing_are_said_also_when_the_alert_topic_could_not_be_looked_up(
        paged, independent_client):
    # The alarms were read, but with ListTopics refused every alarm's item said only that the
    # topic could not be looked up: one missing, or firing now, came out once the grant was fixed.
    missing, firing, fine = paged.targets.alarms
    cloudwatch = paged.get_client("cloudwatch")
    cloudwatch.delete_alarms(AlarmNames=[missing])
    cloudwatch.set_alarm_state(AlarmName=firing, StateValue="ALARM", StateReason="Threshold Crossed: 5xx rate 12 %")
    sns = _refusing(independent_client("sns"), "ListTopics", "AccessDenied")
    reasons = failed(check(paged, sns=sns))
    assert set(reasons) == {missing, firing, fine, paged.targets.alert_topic}
    assert reasons[missing].startswith(f"CloudWatch alarm {missing} does not exist")
    assert all("could not look the alert topic up (ListTopics): AWS refused sns:ListTopics" in reasons[name]
               for name in (firing, fine, paged.targets.alert_topic)), reasons
    assert "in ALARM since" in reasons[firing] and "Threshold Crossed: 5xx rate 12 %" in reasons[firing]


# --- stacks the app pins to another region or account ----------------------------------------

ACCOUNT = "123456789012"  # the embedded account's


def _pinned(aws, get_client_for_region, where: dict[str, str]):
    """The account with its stacks recorded, each in the region ``where`` gives (home otherwise)."""
    from rollway.infra import StackEnvironment

    inbox(aws)
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    for stack in aws.targets.stacks:
        region = where.get(stack, aws.targets.region)
        get_client_for_region(region)("cloudformation").create_stack(StackName=stack, TemplateBody=body)
    return {stack: StackEnvironment(account=ACCOUNT, region=region) for stack, region in where.items()}


SERVICES = ("dynamodb", "sqs", "cloudwatch", "sns", "cloudformation")


def check_placed(aws, get_client_for_region, environments) -> Checklist:
    """The checklist reading each stack where ``environments`` places it."""
    return AwsInfraChecker(*(aws.get_client(s) for s in SERVICES), aws.targets, stack_environments=environments,
                           account=ACCOUNT,
                           clients_in=get_client_for_region).check()


def test_a_stack_pinned_to_another_region_is_read_there(aws, _get_client_for_region):
    stack = aws.targets.stacks[0]
    environments = _pinned(aws, _get_client_for_region, {stack: "eu-west-1"})
    assert failed(check(aws)) == {stack: f"CloudFormation stack {stack} does not exist: deploy it "
                                         "(deploy_infrastructure)"}  # looked for in Targets.region
    checklist = check_placed(aws, _get_client_for_region, environments)
    assert checklist.passed, checklist.summary()
    assert next(i.reason for i in checklist.items if i.name == stack) == "CREATE_COMPLETE in eu-west-1"


def test_a_stack_pinned_to_another_region_missing_there_fails_naming_the_region(aws, _get_client_for_region):
    from rollway.infra import StackEnvironment

    stack = aws.targets.stacks[0]
    _pinned(aws, _get_client_for_region, {})  # every stack in Targets.region, none in eu-west-1
    checklist = check_placed(aws, _get_client_for_region,
                             {stack: StackEnvironment(account=ACCOUNT, region="eu-west-1")})
    assert failed(checklist) == {stack: f"CloudFormation stack {stack} in eu-west-1 does not exist: deploy it "
                                        "(deploy_infrastructure)"}


def test_a_stack_of_another_account_fails_saying_so_and_is_not_read(aws, _get_client_for_region, watch_calls):
    from rollway.infra import StackEnvironment

    stack = aws.targets.stacks[1]
    _pinned(aws, _get_client_for_region, {})  # a stack of that name in this account must not pass for it
    cloudformation = aws.get_client("cloudformation")
    calls = watch_calls(cloudformation)
    checklist = AwsInfraChecker(*(aws.get_client(s) for s in ("dynamodb", "sqs", "cloudwatch", "sns")), cloudformation,
                                aws.targets, account=ACCOUNT,
                                stack_environments={stack: StackEnvironment(account="210987654321", region="us-west-2")}
                                ).check()
    reasons = failed(checklist)
    assert list(reasons) == [stack]
    assert reasons[stack] == (f"could not read CloudFormation stack {stack} (it is in aws://210987654321/us-west-2): "
                              f"another account than the one these credentials read ({ACCOUNT}), so it was not "
                              "read; check it with credentials for account 210987654321")
    assert calls.count("DescribeStacks") == len(aws.targets.stacks) - 1


def test_stacks_elsewhere_without_the_means_to_read_them_are_refused_before_any_call(aws):
    from rollway.infra import StackEnvironment

    clients = [aws.get_client(s) for s in SERVICES]
    elsewhere = {aws.targets.stacks[0]: StackEnvironment(account=ACCOUNT, region="eu-west-1")}
    with pytest.raises(ValueError, match="reading in eu-west-1 needs clients_in"):
        AwsInfraChecker(*clients, aws.targets, stack_environments=elsewhere, account=ACCOUNT)
    with pytest.raises(ValueError, match="need account"):
        AwsInfraChecker(*clients, aws.targets, stack_environments=elsewhere, clients_in=lambda r: None)


# --- tables, queues, the dashboard, alarms and the topic a stack of another region defines ----


def monitoring_in(get_client, targets) -> None:
    """In ``get_client``'s region: the sessions table, the first queue with its DLQ, the dashboard,
    the alarms on the alert topic, and someone subscribed to it (what the stacks placed there make)."""
    from rollway.sim.topology import _alarms, _queue_pair, _table, _topic

    _table(get_client("dynamodb"), targets.tables[0])
    _queue_pair(get_client("sqs"), targets.queues[0])
    topic = _topic(get_client("sns"), targets.alert_topic)
    _alarms(get_client("cloudwatch"), targets, topic)
    get_client("cloudwatch").put_dashboard(DashboardName=targets.dashboard,
                                           DashboardBody=json.dumps({"widgets": [{"type": "text", "x": 0, "y": 0,
                                                                                  "width": 6, "height": 2,
                                                                                  "properties": {"markdown": "x"}}]}))
    sqs = get_client("sqs")
    inbox = sqs.create_queue(QueueName="test-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    get_client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)


def _placed_elsewhere(targets, account: str = ACCOUNT, region: str = "eu-west-1", *, monitoring: bool = True,
                      own: bool = False) -> dict:
    """The sessions table, the first queue and its DLQ (the SQS stack's), the dashboard and alarms
    (the monitoring stack's) placed with stacks going to ``account``/``region``; with ``own``, the
    flags table and the alert topic (what rollway itself uses) too."""
    from rollway.infra import ResourcePlace, StackEnvironment

    there = StackEnvironment(account=account, region=region)
    q = targets.queues[0]
    keys = {("table", targets.tables[0].name): "WebordinarySessionStack",
            ("queue", q.name): "WebordinarySQSStack", ("queue", q.dlq_name): "WebordinarySQSStack"}
    if monitoring:
        keys |= {("dashboard", targets.dashboard): "WebordinaryMonitoringStack",
                 **{("alarm", a): "WebordinaryMonitoringStack" for a in targets.alarms}}
    if own:
        keys |= {("table", targets.flags_table): "WebordinaryStateStack",
                 ("topic", targets.alert_topic): "WebordinaryMonitoringStack"}
    return {key: ResourcePlace(stack=stack, environment=there) for key, stack in keys.items()}


def check_resources_placed(aws, get_client_for_region, places) -> Checklist:
    return AwsInfraChecker(*(aws.get_client(s) for s in SERVICES), aws.targets, resource_places=places,
                           account=ACCOUNT, clients_in=get_client_for_region).check()


def test_resources_a_stack_in_another_region_defines_are_read_there_not_in_the_targets_region(
        paged, _get_client_for_region):
    # Every resource exists in us-west-2 too (the provisioned account): same-named decoys that
    # passed for the ones the app puts in eu-west-1 when the checklist read only Targets.region.
    t = paged.targets
    places = _placed_elsewhere(t, monitoring=False)
    places |= {k: v for k, v in _placed_elsewhere(t).items() if k[0] == "dashboard"}
    reasons = failed(check_resources_placed(paged, _get_client_for_region, places))
    q = t.queues[0]
    assert reasons == {
        t.tables[0].name: f"DynamoDB table {t.tables[0].name} in eu-west-1 does not exist: deploy "
                          "WebordinarySessionStack, whose template defines it (deploy_infrastructure)",
        q.name: f"SQS queue {q.name} in eu-west-1 does not exist: deploy WebordinarySQSStack, whose template defines "
                f"it (deploy_infrastructure); its dead-letter queue {q.dlq_name} in eu-west-1 does not exist either",
        t.dashboard: f"CloudWatch dashboard {t.dashboard} in eu-west-1 does not exist: deploy "
                     "WebordinaryMonitoringStack, whose template defines it (deploy_infrastructure)",
    }
    monitoring_in(_get_client_for_region("eu-west-1"), t)
    checklist = check_resources_placed(paged, _get_client_for_region, places)
    assert checklist.passed, checklist.summary()
    placed = {name for _, name in places} - {q.dlq_name}  # the DLQ is part of its queue's item
    for item in checklist.items:
        assert item.reason.endswith(" (read in eu-west-1)") == (item.name in placed), (item.name, item.reason)


def test_alarms_of_another_region_fail_for_they_cannot_notify_the_alert_topic(paged, _get_client_for_region):
    t = paged.targets
    monitoring_in(_get_client_for_region("eu-west-1"), t)  # alarms there, on the topic of that region
    places = {k: v for k, v in _placed_elsewhere(t).items() if k[0] == "alarm"}
    reasons = failed(check_resources_placed(paged, _get_client_for_region, places))
    here = paged.topology.topic_arn
    there = here.replace(f":{t.region}:", ":eu-west-1:")
    assert reasons == {a: f"it notifies {there}, not the alert topic {here}: an alarm can notify only a topic of "
                          "its own region; deploy it where the alert topic is (read in eu-west-1)" for a in t.alarms}


def test_what_rollway_uses_is_read_in_the_targets_region_and_fails_when_the_app_deploys_it_elsewhere(paged):
    # Rollway keeps its flags in, and pages, Targets.region: a flags table the app deploys to
    # eu-west-1 would pass the checklist read there and fail the rollout's first flag write.
    t = paged.targets
    places = {k: v for k, v in _placed_elsewhere(t, own=True).items() if k in {("table", t.flags_table),
                                                                                ("topic", t.alert_topic)}}
    checklist = AwsInfraChecker(*(paged.get_client(s) for s in SERVICES), t, resource_places=places,
                                account=ACCOUNT).check()  # no clients in eu-west-1: nothing is read there
    reasons = failed(checklist)
    assert reasons == {
        t.flags_table: f"rollway uses it in {t.region} (Targets.region), but the CDK app's stack WebordinaryStateStack "
                       f"deploys it to aws://{ACCOUNT}/eu-west-1, where rollway would not find it: deploy that stack "
                       "to this account and region",
        t.alert_topic: f"rollway uses it in {t.region} (Targets.region), but the CDK app's stack "
                       f"WebordinaryMonitoringStack deploys it to aws://{ACCOUNT}/eu-west-1, where rollway would not "
                       "find it: deploy that stack to this account and region",
    }


def test_resources_a_stack_of_another_account_defines_fail_saying_so_and_are_not_read(
        paged, _get_client_for_region, watch_calls):
    t = paged.targets
    places = _placed_elsewhere(t, account="210987654321", region=t.region)
    calls = [watch_calls(paged.get_client(s)) for s in ("dynamodb", "sqs", "cloudwatch", "sns")]
    reasons = failed(check_resources_placed(paged, _get_client_for_region, places))
    assert set(reasons) == {name for _, name in places} - {t.queues[0].dlq_name}  # the DLQ fails its queue
    assert reasons[t.tables[0].name] == (
        f"could not read DynamoDB table {t.tables[0].name} (its stack WebordinarySessionStack is in "
        f"aws://210987654321/{t.region}): another account than the one these credentials read ({ACCOUNT}), so it "
        "was not read; check it with credentials for account 210987654321")
    made = [name for names in calls for name in names]
    assert "GetDashboard" not in made and "DescribeAlarms" not in made
    assert made.count("GetQueueUrl") == 2 * (len(t.queues) - 1)  # the other queues and their DLQs
    assert made.count("DescribeTable") == len(t.tables) + 1  # the other service table and rollway's two


def test_a_service_that_does_not_answer_fails_its_items_once_the_read_bound_is_up_and_is_asked_once(
        paged, independent_client, watch_calls):
    """On the shared clients (60 s per read, retried), a CloudFormation that took the connection and
    never answered held the checklist for minutes per stack, with no line saying why."""
    t = paged.targets
    cloudformation = independent_client("cloudformation")
    asked = watch_calls(cloudformation)
    clock = SteppedClock()
    with stalled(cloudformation, "DescribeStacks", clock):
        checklist = AwsInfraChecker(*(paged.get_client(s) for s in ("dynamodb", "sqs", "cloudwatch", "sns")),
                                    cloudformation, t, read_seconds=1, clock=clock).check()
    assert asked == ["DescribeStacks"]  # once: each stack after would have waited its own bound
    reasons = failed(checklist)
    assert set(reasons) == set(t.stacks), reasons  # every other item was read, and passed
    first, *rest = t.stacks
    again = "; run verify_infrastructure again (it only reads)"
    assert reasons[first].endswith(f"(DescribeStacks {first}): CloudFormation did not answer within 1 s{again}"), \
        reasons
    for name in rest:  # not asked again: each would have waited its own second
        assert reasons[name].endswith(f"(DescribeStacks {name}): not asked: CloudFormation did not answer "
                                      f"DescribeStacks {first} within 1 s{again}"), reasons


def test_an_alarm_named_twice_and_a_rollway_table_also_in_tables_are_one_item_each(paged):
    # Each was two items, failed alike: "2 of N items failed" for one missing alarm, its line twice.
    t = paged.targets
    rollouts = TableSpec(name=t.rollouts_table, hash_key="service", range_key="rollout_id")
    targets = t.model_copy(update={"alarms": (*t.alarms, t.alarms[0]), "tables": (*t.tables, rollouts)})
    paged.get_client("cloudwatch").delete_alarms(AlarmNames=[t.alarms[0]])
    paged.get_client("dynamodb").delete_table(TableName=t.rollouts_table)
    checklist = AwsInfraChecker(*(paged.get_client(s) for s in SERVICES), targets).check()
    assert [i.name for i in checklist.failed] == [t.rollouts_table, t.alarms[0]]
    assert len(checklist.items) == len(t.stacks) + len(t.tables) + 2 + len(t.queues) + 1 + len(t.alarms) + 1


def test_a_queue_redriving_to_a_queue_since_deleted_says_it_is_gone(paged):
    # "it redrives to old-dlq, not to X" read as if old-dlq still caught the failed messages.
    spec = paged.targets.queues[0]
    sqs = paged.get_client("sqs")
    old = sqs.create_queue(QueueName="webordinary-old-dlq")["QueueUrl"]
    old_arn = sqs.get_queue_attributes(QueueUrl=old, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=_queue_url(paged, spec.name), Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": old_arn, "maxReceiveCount": str(spec.max_receive_count)})})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=_queue_url(paged, spec.dlq_name),
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    remedy = (f"not to {spec.dlq_name}: set its RedrivePolicy's deadLetterTargetArn to {dlq_arn} and deploy the stack "
              "that defines it")
    assert failed(check(paged)) == {spec.name: f"it redrives to webordinary-old-dlq ({old_arn}), {remedy}"}
    sqs.delete_queue(QueueUrl=old)
    assert failed(check(paged)) == {
        spec.name: f"it redrives to webordinary-old-dlq ({old_arn}), a queue that no longer exists, {remedy}"}


def test_a_standard_queue_whose_dlq_is_a_fifo_queue_fails(paged):
    # SQS moves a standard queue's failed messages only to a standard queue (a FIFO queue's only to
    # a FIFO one); the embedded AWS takes such a RedrivePolicy all the same, and the item passed.
    spec = paged.targets.queues[0]
    sqs = paged.get_client("sqs")
    dlq = sqs.create_queue(QueueName="webordinary-email-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=_queue_url(paged, spec.name), Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.max_receive_count)})})
    # Targets refuses such a pair by its names; the item judges what SQS shows all the same.
    queues = (spec.model_copy(update={"dlq_name": "webordinary-email-dlq.fifo"}), *paged.targets.queues[1:])
    targets = paged.targets.model_copy(update={"queues": queues})
    get = paged.get_client
    reasons = failed(AwsInfraChecker(get("dynamodb"), get("sqs"), get("cloudwatch"), get("sns"), get("cloudformation"),
                                     targets).check())
    assert reasons == {spec.name: (
        "it is a standard queue, but its dead-letter queue webordinary-email-dlq.fifo is a FIFO queue: SQS moves a "
        "standard queue's failed messages only to a standard queue (a FIFO queue's only to a FIFO queue); give it a "
        "standard dead-letter queue (dlq_name in Targets.queues, and the queue's RedrivePolicy in the stack that "
        "defines it)")}


HEADER = "X-Rollway-Target: canary"


def check_pinned(aws, header: str = HEADER) -> Checklist:
    """The checklist of validation checks pinned by ``header`` (validate_deployment's spec.canary_header)."""
    get = aws.get_client
    return AwsInfraChecker(get("dynamodb"), get("sqs"), get("cloudwatch"), get("sns"), get("cloudformation"),
                           aws.targets, elbv2=get("elbv2"), canary_header=header).check()


def pin_item(checklist: Checklist):
    (item,) = [item for item in checklist.items if item.kind == "listener rule"]
    return item


def test_pinned_validation_without_the_header_rule_fails_naming_the_listener_the_header_and_the_rule_to_create(paged):
    """The validation's header rule was read by nothing before a validation run: a checklist passed
    on an account where every pinned check would be refused, "not sent", after the deploy."""
    from rollway.aws.elbv2 import AlbRouter

    listener = AlbRouter(paged.get_client("elbv2"), paged.targets).listener_arn
    checklist = check_pinned(paged)
    assert not checklist.passed
    item = pin_item(checklist)
    assert (item.name, item.passed) == (HEADER, False)
    t = paged.targets
    assert item.reason.startswith(
        f"listener {t.load_balancer}:{t.listener_port} ({listener}) does not pin all the validation's HTTP checks carrying "
        f"`{HEADER}` (validate_deployment's spec.canary_header) to the canary target group: no listener rule ahead "
        f"of the weighted rule {paged.topology.rule_arn} (priority"), item.reason
    assert (f"create one on the weighted rule's listener with a priority number below" in item.reason
            and f"the http-header condition X-Rollway-Target = canary" in item.reason
            and f"forwarding to {t.canary_target_group} alone" in item.reason), item.reason
    # Every other item as before: only the rule fails.
    assert [i.kind for i in checklist.failed] == ["listener rule"], checklist.summary()


def test_pinned_validation_with_the_header_rule_passes_naming_the_rule(paged):
    from tests.flows.test_validate_pinned import header_rule

    rule = header_rule(paged)
    item = pin_item(check_pinned(paged, "X-Rollway-Target:  canary "))
    assert item.passed, item.reason
    assert item.reason.endswith(f"the validation's HTTP checks are pinned to target group "
                                f"{paged.targets.canary_target_group} by header `X-Rollway-Target: canary` "
                                f"(rule {rule}, priority 5, ahead of the weighted rule's 10)"), item.reason


def test_a_header_rule_forwarding_elsewhere_fails_saying_where_it_sends_them(paged):
    from tests.flows.test_validate_pinned import header_rule

    rule = header_rule(paged, to="stable")
    item = pin_item(check_pinned(paged))
    assert not item.passed and f"rule {rule} (priority 5) meets requests carrying `{HEADER}` first" in item.reason


def test_two_header_rules_one_pinning_and_one_ahead_of_it_taking_some_elsewhere_are_each_named(paged):
    """A rule pinning the checks, and one ahead of it sending those on a part of the weighted rule's
    path to the stable group: the item said the listener "does not pin" them, of a listener whose
    own reason went on to name the rule pinning them."""
    from rollway.aws.elbv2 import AlbRouter
    from tests.flows.test_validate_pinned import header_rule

    elbv2 = paged.get_client("elbv2")
    router = AlbRouter(elbv2, paged.targets)

    def on(path: str) -> list:
        return [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Rollway-Target", "Values": ["canary"]}},
                {"Field": "path-pattern", "PathPatternConfig": {"Values": [path]}}]

    def to_stable(path: str) -> str:
        return elbv2.create_rule(ListenerArn=router.listener_arn, Priority=3, Conditions=on(path), Actions=[
            {"Type": "forward", "TargetGroupArn": router.stable_target_group_arn}])["Rules"][0]["RuleArn"]

    pin = header_rule(paged)
    admin = to_stable("/admin/*")
    item = pin_item(check_pinned(paged))
    assert not item.passed
    assert "does not pin the validation's" not in item.reason, item.reason
    assert (f"does not pin all the validation's HTTP checks carrying `{HEADER}` (validate_deployment's "
            f"spec.canary_header) to the canary target group: rule {admin} (priority 3) matches requests carrying "
            f"`{HEADER}` ahead of rule {pin} (priority 5), the one pinning them, and sends those it meets among the "
            f"weighted rule's to {router.stable_target_group_arn}, not to the canary target group "
            f"{paged.targets.canary_target_group} alone") in item.reason, item.reason
    # Both partly: the pin on /admin/* too, the other rule removed; each said with where it sends them.
    elbv2.delete_rule(RuleArn=admin)
    elbv2.modify_rule(RuleArn=pin, Conditions=on("/admin/*"))
    other = to_stable("/api/*")
    reason = pin_item(check_pinned(paged)).reason
    assert (f"rule {other} (priority 3) matches the header with a path-pattern condition (/api/*)" in reason
            and f"and sends those it meets to {router.stable_target_group_arn}; rule {pin} (priority 5) matches the "
                f"header with a path-pattern condition (/admin/*)" in reason
            and f"and sends those it meets to {paged.targets.canary_target_group} alone, so some of them may pass them "
                "all by" in reason), reason


def test_without_pinned_validation_the_listener_is_not_read(paged, watch_calls):
    calls = watch_calls(paged.get_client("elbv2"))
    checklist = check(paged)
    assert checklist.passed and not [i for i in checklist.items if i.kind == "listener rule"]
    assert calls == []


def test_pinned_validation_on_a_load_balancer_that_does_not_exist_fails_saying_so_and_what_to_create(paged):
    from rollway.aws.checklist import AwsInfraChecker as Checker

    get = paged.get_client
    targets = paged.targets.model_copy(update={"load_balancer": "no-such-alb"})
    checklist = Checker(get("dynamodb"), get("sqs"), get("cloudwatch"), get("sns"), get("cloudformation"), targets,
                        elbv2=get("elbv2"), canary_header=HEADER).check()
    item = pin_item(checklist)
    assert not item.passed
    assert item.reason.startswith(f"listener no-such-alb:{targets.listener_port} does not pin all the validation's "
                                  f"HTTP checks carrying `{HEADER}`"), item.reason
    assert "load balancer 'no-such-alb' not found" in item.reason, item.reason
    assert "create a listener rule" in item.reason, item.reason


def test_pinned_validation_with_a_header_no_check_could_carry_is_refused_before_any_call(paged):
    get = paged.get_client
    with pytest.raises(ValueError, match="canary_header"):
        AwsInfraChecker(get("dynamodb"), get("sqs"), get("cloudwatch"), get("sns"), get("cloudformation"),
                        paged.targets, elbv2=get("elbv2"), canary_header="X-Rollway-Target")


def test_pinned_validation_whose_target_group_read_fails_names_that_read_not_describe_rules(paged, independent_client):
    """The rule pinning the checks is found through the load balancer, its listener and target groups
    before DescribeRules: a refused DescribeTargetGroups was said a failed DescribeRules, sending a
    person to the listener's rules for a read that never reached them."""
    from tests.botocore_events import on_operation

    def refuse(**_):
        return SimpleNamespace(status_code=400, headers={}), {
            "Error": {"Code": "ValidationException", "Message": "not allowed"}, "ResponseMetadata": {}}

    elbv2 = independent_client("elbv2")
    with on_operation(elbv2, "before-call", refuse, operation="DescribeTargetGroups"):
        item = pin_item(AwsInfraChecker(*(paged.get_client(s) for s in SERVICES), paged.targets, elbv2=elbv2,
                                        canary_header=HEADER).check())
    assert not item.passed
    assert item.reason.startswith(f"could not read listener {paged.targets.load_balancer}:{paged.targets.listener_port}"
                                  "'s rules (DescribeTargetGroups): "), item.reason
    assert "ValidationException" in item.reason, item.reason


@pytest.mark.parametrize("operation", ["DescribeLoadBalancers", "DescribeTargetGroups", "DescribeRules"])
def test_pinned_validation_whose_read_finds_no_connection_names_the_call_that_failed(paged, independent_client,
                                                                                      operation):
    """A connection error names no operation (botocore gives it none, unlike AWS's answers): the
    item said DescribeRules of a load balancer or target group read that never connected, sending
    a person to the listener's rules, or to its permission for DescribeRules."""
    from botocore.exceptions import EndpointConnectionError

    from tests.botocore_events import on_operation

    def unreachable(**_):
        raise EndpointConnectionError(endpoint_url="https://elasticloadbalancing.us-west-2.amazonaws.com/")

    elbv2 = independent_client("elbv2")
    with on_operation(elbv2, "before-call", unreachable, operation=operation):
        item = pin_item(AwsInfraChecker(*(paged.get_client(s) for s in SERVICES), paged.targets, elbv2=elbv2,
                                        canary_header=HEADER).check())
    assert not item.passed
    assert item.reason.startswith(f"could not read listener {paged.targets.load_balancer}:{paged.targets.listener_port}"
                                  f"'s rules ({operation}): EndpointConnectionError: Could not connect"), item.reason


@pytest.mark.parametrize(("operation", "action"), [
    ("DescribeRules", "elasticloadbalancing:DescribeRules"),
    ("DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancers"),
])
def test_a_refused_read_of_the_header_rule_names_the_statement_granting_it_to_the_checklist(
        paged, independent_client, operation, action):
    """The listener rule item's reads were granted by CleanupReadsWhatProductionRuns: a person
    auditing the infrastructure policy took them for cleanup's alone, and one fixing the
    checklist's role was sent to a statement named for a flow they did not run."""
    elbv2 = _refused_as_aws_words_it(independent_client("elbv2"), operation, action)
    item = pin_item(AwsInfraChecker(*(paged.get_client(s) for s in SERVICES), paged.targets, elbv2=elbv2,
                                    canary_header=HEADER).check())
    assert not item.passed
    assert (f"AWS refused {action} (AccessDenied: " in item.reason
            and "it is granted by deployments/iam-policy-infrastructure.json, statement "
                "ChecklistAndCleanupReadTheLoadBalancerAndItsRules: add that statement" in item.reason), item.reason


@contextmanager
def stalled(client, operation: str, clock: SteppedClock):
    """``client``'s ``operation`` held until the block ends, then answered by moto before the block
    is left: sent later, its request could land in the next test's account as it is reset.

    As the held call is made, ``clock`` (the checker's bound's) passes any read's bound: the read
    is given up on at once (``tests.bound_clock``)."""
    import threading

    import rollway.deadline as deadline
    from tests.botocore_events import on_operation

    released = threading.Event()
    held: list[threading.Thread] = []

    def hold(**_) -> None:  # None: botocore sends the call as it is, once released
        held.append(threading.current_thread())
        clock.advance(deadline.MAX_READ_SECONDS + 1)  # past any read's bound
        released.wait()  # the test's own timeout bounds it

    try:
        with on_operation(client, "before-call", hold, operation=operation):
            yield
    finally:
        released.set()
        for thread in held:
            thread.join()


def test_a_service_given_up_on_names_the_call_it_did_not_answer_to_what_is_not_asked_after(paged, independent_client):
    """A queue is read by GetQueueUrl, then GetQueueAttributes: every queue after one whose
    GetQueueUrl was given up on said SQS "did not answer GetQueueAttributes", a call never made."""
    t = paged.targets
    sqs = independent_client("sqs")
    first = t.queues[0].name
    clock = SteppedClock()
    with stalled(sqs, "GetQueueUrl", clock):
        reasons = failed(AwsInfraChecker(*(paged.get_client(s) if s != "sqs" else sqs for s in SERVICES), t,
                                         read_seconds=1, clock=clock).check())
    again = "; run verify_infrastructure again (it only reads)"
    assert reasons[first].startswith(f"could not read SQS queue {first} (GetQueueAttributes {first}): SQS did not "
                                     f"answer within 1 s{again}; "), reasons
    unasked = f"not asked: SQS did not answer GetQueueUrl {first} within 1 s{again}"
    for spec in t.queues:  # each DLQ, and each queue after the first
        assert reasons[spec.name].endswith(f"(GetQueueAttributes {spec.dlq_name}): {unasked}"), reasons
    for spec in t.queues[1:]:
        assert f"(GetQueueAttributes {spec.name}): {unasked}; " in reasons[spec.name], reasons
    assert "GetQueueAttributes " + first + " within" not in " ".join(reasons.values()), reasons


def test_a_listener_read_given_up_on_is_asked_again_by_the_checkers_next_check(paged, independent_client):
    """A read given up on kept its service unasked for the checker's life: the infra-checklist
    task's retry, checking again, failed the listener rule "(none asked): not asked: Elastic Load
    Balancing did not answer DescribeRules", a call it never made, in a check that asked nothing."""
    t = paged.targets
    elbv2 = independent_client("elbv2")
    clock = SteppedClock()
    checker = AwsInfraChecker(*(paged.get_client(s) for s in SERVICES), t, elbv2=elbv2, canary_header=HEADER,
                              read_seconds=1, clock=clock)
    with stalled(elbv2, "DescribeListeners", clock):
        item = pin_item(checker.check())
    assert item.reason == (f"could not read listener {t.load_balancer}:{t.listener_port}'s rules (DescribeListeners): "
                           "Elastic Load Balancing did not answer within 1 s; run verify_infrastructure again (it only "
                           "reads)"), item.reason
    item = pin_item(checker.check())
    assert "does not pin all the validation's HTTP checks" in item.reason, item.reason


def test_a_read_given_up_on_that_goes_on_during_the_next_check_is_not_named_as_that_checks_read(
        paged, independent_client):
    """The calls a read begins were recorded from the client, which the reads share: the first
    check's queue read, given up on in GetQueueUrl and left running, began GetQueueAttributes while
    the retry's read of that queue waited on its own GetQueueUrl, and the retry said SQS "did not
    answer GetQueueAttributes", a call the retry never made."""
    import threading

    import rollway.deadline as deadline
    from tests.botocore_events import on_operation

    t = paged.targets
    sqs = independent_client("sqs")
    first = t.queues[0].name
    clock = SteppedClock()  # the bound's: it passes only as a held call is made
    given_up, late_call_begun, done = threading.Event(), threading.Event(), threading.Event()
    held: list[threading.Thread] = []

    def hold(**_) -> None:
        held.append(threading.current_thread())
        if len(held) == 1:  # the first check's read: held past its bound, then let go during the retry
            clock.advance(deadline.MAX_READ_SECONDS + 1)
            given_up.wait()
        else:  # the retry's read: the first one begins its next call while this one waits
            given_up.set()
            late_call_begun.wait()
            clock.advance(deadline.MAX_READ_SECONDS + 1)
            done.wait()

    def began_late(**_) -> None:
        if threading.current_thread() is held[0]:
            late_call_begun.set()

    checker = AwsInfraChecker(*(paged.get_client(s) if s != "sqs" else sqs for s in SERVICES), t, read_seconds=1,
                              clock=clock)
    try:
        with on_operation(sqs, "before-call", hold, operation="GetQueueUrl"), \
                on_operation(sqs, "before-call", began_late, operation="GetQueueAttributes"):
            checker.check()
            reasons = failed(checker.check())
    finally:
        given_up.set(), late_call_begun.set(), done.set()
        for thread in held:
            thread.join()
    unasked = f"not asked: SQS did not answer GetQueueUrl {first} within 1 s"
    for spec in t.queues:
        assert f"(GetQueueAttributes {spec.dlq_name}): {unasked}; " in reasons[spec.name], reasons
    assert "did not answer GetQueueAttributes" not in " ".join(reasons.values()), reasons


@contextmanager
def throttled_then_held(aws, service: str, operation: str, tries: int, answer: tuple[str, bytes], monkeypatch,
                        clock: SteppedClock, *, between_asks: bool = False, throttled_after: bool = False):
    """A ``service`` client trying each call three times (botocore's standard mode) whose first
    ``tries`` tries of ``operation`` are answered throttled (``answer``: its content type and body,
    as AWS sends it), and the next held until the block ends, then answered by moto (``stalled``).
    ``between_asks``: the pin's wait after them held instead, with no try in flight.
    ``throttled_after``: the held try, once let go, and every try after it answered throttled too.

    ``clock``, the checker's bound's, passes only as the test says: each wait between tries
    (botocore's, and the pin's between its asks) takes a tenth of a second of it, the held try all."""
    import threading

    import boto3
    from botocore.awsrequest import AWSResponse
    from botocore.config import Config
    from botocore.retries.standard import ExponentialBackoff

    import rollway.aws.errors as errors
    import rollway.deadline as deadline
    from tests.botocore_events import on_operation

    def waited(*_) -> float:
        clock.advance(0.1)
        return 0

    def hold() -> None:
        held.append(threading.current_thread())
        clock.advance(deadline.MAX_READ_SECONDS + 1)
        released.wait()

    def asked_again_after(*_) -> None:  # the pin's wait between its asks
        waited()
        if between_asks and len(made) == tries:
            hold()

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", waited)
    monkeypatch.setattr(errors, "time", SimpleNamespace(sleep=asked_again_after))
    client = boto3.client(service, endpoint_url=aws.endpoint_url, region_name=aws.targets.region,
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"mode": "standard", "total_max_attempts": 3}))
    content_type, body = answer
    made: list[str] = []
    released = threading.Event()
    held: list[threading.Thread] = []

    class Body:
        def stream(self, **_):
            yield body

    def try_(request, **_):
        made.append(operation)
        if len(made) > tries:
            hold()
        if len(made) <= tries or throttled_after:
            return AWSResponse(request.url, 400, {"Content-Type": content_type}, Body())
        return None  # sent as it is

    # The held read let go, and ended, with its tries still answered here.
    with on_operation(client, "before-send", try_, operation=operation):
        try:
            yield client, made
        finally:
            released.set()
            for thread in held:
                thread.join()


ELB_THROTTLED = ("text/xml", b'<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
                             b"<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
                             b"</Error><RequestId>1</RequestId></ErrorResponse>")
"""Elastic Load Balancing's throttled answer, as AWS sends it."""


@pytest.mark.parametrize("between_asks, tries, then", [
    # The first ask's three tries and two of the second's; its third not answered.
    (False, 5, ", then did not answer the next try"),
    # The first ask's three tries, then the wait before the second: no try in flight, each answered.
    (True, 3, ""),
])
def test_a_listener_read_given_up_on_while_throttled_says_it_was_throttled_how_often_and_how_long(
        paged, monkeypatch, between_asks, tries, then):
    """The pin's read is asked again while throttled, each ask tried again by botocore, with a wait
    between tries: throttled past its bound, its item said Elastic Load Balancing "did not answer",
    sending a person to look for a silent service or a network fault, when it had answered each try."""
    t = paged.targets
    clock = SteppedClock()
    with throttled_then_held(paged, "elbv2", "DescribeRules", tries, ELB_THROTTLED, monkeypatch, clock,
                             between_asks=between_asks) as (elbv2, made):
        item = pin_item(AwsInfraChecker(*(paged.get_client(s) for s in SERVICES), t, elbv2=elbv2,
                                        canary_header=HEADER, read_seconds=1, clock=clock).check())
        assert len(made) == tries + (not between_asks)  # before the read given up on is let go
    assert item.reason == (f"could not read listener {t.load_balancer}:{t.listener_port}'s rules (DescribeRules): "
                           f"Elastic Load Balancing refused DescribeRules as throttled (Throttling: Rate exceeded), "
                           f"{tries} tries in under a second{then}, and the read was given up on after 1 s; run "
                           "verify_infrastructure again (it only reads)"), item.reason


def test_a_throttled_read_says_how_long_it_was_throttled_not_how_long_the_read_had_lasted(paged, monkeypatch):
    """"N tries in X" counted X from the read's start: the pin's read, whose lookups of the load
    balancer, listener and target groups took most of its bound, said its DescribeRules, throttled
    for a fraction of a second, had been throttled for all of that."""
    from tests.botocore_events import on_operation

    t = paged.targets
    clock = SteppedClock()
    with throttled_then_held(paged, "elbv2", "DescribeRules", 3, ELB_THROTTLED, monkeypatch, clock,
                             between_asks=True) as (elbv2, made), \
            on_operation(elbv2, "before-send", lambda **_: clock.advance(20), operation="DescribeLoadBalancers"):
        item = pin_item(AwsInfraChecker(*(paged.get_client(s) for s in SERVICES), t, elbv2=elbv2,
                                        canary_header=HEADER, read_seconds=30, clock=clock).check())
        assert made == ["DescribeRules"] * 3  # before the read given up on is let go
    assert (f"(DescribeRules): Elastic Load Balancing refused DescribeRules as throttled (Throttling: Rate exceeded), "
            "3 tries in under a second, and the read was given up on after 30 s; ") in item.reason, item.reason


def test_a_listener_read_given_up_on_and_left_running_says_nothing_after_its_item_said_it_was_given_up(
        paged, monkeypatch):
    """The pin's read given up on goes on in its thread, asked again while throttled: its "asking
    again" lines reached the run's log after its item had said it was given up on, as if the
    checklist were still reading."""
    from rollway.aws.errors import THROTTLED_ASKS

    t = paged.targets
    clock = SteppedClock()
    said: list[str] = []
    with throttled_then_held(paged, "elbv2", "DescribeRules", 3, ELB_THROTTLED, monkeypatch, clock,
                             throttled_after=True) as (elbv2, made):
        item = pin_item(AwsInfraChecker(*(paged.get_client(s) for s in SERVICES), t, elbv2=elbv2,
                                        canary_header=HEADER, read_seconds=1, say=said.append, clock=clock).check())
        said.append(f"item: {item.reason}")
    # Let go as the block ended, the read was throttled to its last ask, and ended.
    assert len(made) == 3 * THROTTLED_ASKS, made
    assert "refused DescribeRules as throttled" in item.reason and "given up on after 1 s" in item.reason, item.reason
    assert f"DescribeRules was throttled (Throttling); asking again in under a second (2 of {THROTTLED_ASKS})" \
           in said, said  # said while the item waited on it
    assert said[-1] == f"item: {item.reason}", said


def test_a_throttled_listener_read_asked_again_says_so_in_the_checklists_log(paged, monkeypatch):
    """The pin's read asked again while throttled was said to nothing: the run's log had no line
    for the wait, as it has for every other throttled read of the rules (the validation's)."""
    import rollway.aws.errors as errors
    from rollway.aws.errors import THROTTLED_ASKS
    from tests.botocore_events import on_operation
    from tests.flows.test_traffic_reads_denied import answering

    monkeypatch.setattr(errors, "time", SimpleNamespace(sleep=lambda _: None))  # the wait before the next ask
    t = paged.targets
    elbv2 = paged.get_client("elbv2")
    asked: list[str] = []
    said: list[str] = []
    with on_operation(elbv2, "before-parameter-build", answering("Throttling", 1, asked, "DescribeRules"),
                      operation="DescribeRules"):
        item = pin_item(AwsInfraChecker(*(paged.get_client(s) for s in SERVICES), t, elbv2=elbv2,
                                        canary_header=HEADER, say=said.append).check())
    assert "does not pin all the validation's HTTP checks" in item.reason, item.reason  # read: none pins
    assert (f"DescribeRules was throttled (Throttling); asking again in under a second (2 of {THROTTLED_ASKS})"
            in said), said


def test_a_table_read_given_up_on_while_throttled_says_so_and_so_do_the_tables_not_asked_after(paged, monkeypatch):
    """AWS's message is quoted from the try botocore saw, before the run's clients make it one line
    (``blocks.credentials``, after the last try): its line breaks and escape sequences reached the
    item's reason, and from it the run's log and the checklist's report."""
    t = paged.targets
    first, *rest = [spec.name for spec in all_tables(t)]
    throttled = ("application/x-amz-json-1.0", json.dumps({
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate of requests\r\nexceeds \x1b[2Jthe allowed throughput."}).encode())
    clock = SteppedClock()
    with throttled_then_held(paged, "dynamodb", "DescribeTable", 2, throttled, monkeypatch, clock) as (dynamodb, made):
        reasons = failed(AwsInfraChecker(dynamodb, *(paged.get_client(s) for s in SERVICES[1:]), t,
                                         read_seconds=1, clock=clock).check())
    assert made == ["DescribeTable"] * 3  # one read of the first table: the rest not asked
    said = (f"DynamoDB refused DescribeTable {first} as throttled (ThrottlingException: Rate of requests exceeds "
            "\\x1b[2Jthe allowed throughput.), 2 tries in under a second, then did not answer the next try, and the "
            "read was given up on after 1 s; run verify_infrastructure again (it only reads)")
    assert reasons[first].endswith(f"(DescribeTable {first}): {said}"), reasons
    for name in rest:
        assert reasons[name].endswith(f"(DescribeTable {name}): not asked: {said}"), reasons


def test_pinned_validation_judged_by_the_checks_requests_passes_what_the_validation_takes(paged):
    """A rule with no header condition on /admin/* ahead of the pin: no check asks for /admin, and
    the validation, judging the rules by its checks' requests, sends them pinned; the checklist,
    judging by the weighted rule's (every path), failed its item, a false alarm. Given the checks'
    requests (``rollway.validation.check_requests``), it judges as the validation does."""
    from rollway.aws.elbv2 import AlbRouter
    from rollway.validation import ValidationSpec, check_requests
    from tests.flows.test_validate_pinned import header_rule

    elbv2 = paged.get_client("elbv2")
    router = AlbRouter(elbv2, paged.targets)
    pin = header_rule(paged)
    elbv2.create_rule(ListenerArn=router.listener_arn, Priority=3,
                      Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/admin/*"]}}],
                      Actions=[{"Type": "forward", "TargetGroupArn": router.stable_target_group_arn}])
    assert not pin_item(check_pinned(paged)).passed  # the weighted rule's requests: /admin among them
    get = paged.get_client
    checks = check_requests(ValidationSpec(health_url="https://api.example.com/health",
                                           api_base_url="https://api.example.com"))
    item = pin_item(AwsInfraChecker(get("dynamodb"), get("sqs"), get("cloudwatch"), get("sns"), get("cloudformation"),
                                    paged.targets, elbv2=elbv2, canary_header=HEADER, checks=checks).check())
    assert item.passed and f"(rule {pin}, priority 5, ahead of the weighted rule's 10)" in item.reason, item.reason
    # The checks' requests without the header they are pinned by: refused before any call.
    with pytest.raises(ValueError, match="checks needs canary_header"):
        AwsInfraChecker(get("dynamodb"), get("sqs"), get("cloudwatch"), get("sns"), get("cloudformation"),
                        paged.targets, elbv2=elbv2, checks=checks)
