"""The embedded AWS server and the Webordinary topology, round trips through moto's server."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from rollway.sim.server import EmbeddedAws, EmbeddedAwsError
from rollway.sim.topology import RULE_PRIORITY, alarm_metric, index_attribute, provision
from rollway.targets import QueueSpec, TableSpec, Targets

_READ_PREFIXES = ("Describe", "Get", "List")
_SERVICES = ("sts", "ec2", "elbv2", "ecr", "iam", "ecs", "dynamodb", "sqs", "sns", "cloudwatch")


def _answers(url: str) -> bool:
    try:
        # The static dashboard page: data.json dumps every resource of this process (moto keeps
        # one state per process) and took over 2 s once earlier tests had filled it (a CI flake).
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=5):
            return True
    except (urllib.error.URLError, OSError):
        return False


# --- server ----------------------------------------------------------------------------


def test_server_starts_on_a_free_loopback_port_and_stops():
    with EmbeddedAws() as aws:
        url = aws.endpoint_url
        assert url.startswith("http://127.0.0.1:")
        assert aws.start() == url  # a second start() does not start a second server
        assert _answers(url)
    assert not _answers(url)
    with pytest.raises(EmbeddedAwsError, match="not running"):
        aws.endpoint_url


def test_a_request_to_the_embedded_aws_lists_no_directory(embedded_aws, independent_client, monkeypatch):
    """moto's server listed its package's directory, and checked every entry, on each request to
    find the service the Host header named (1.3 ms of CPU per request). Once per process now."""
    import os

    sqs = independent_client("sqs")
    sqs.list_queues()  # a connection made and a first request served
    listed: list[str] = []
    real = os.listdir

    def listdir(path="."):
        listed.append(str(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    for _ in range(3):
        sqs.list_queues()
    assert not listed, listed


def test_server_refuses_a_port_that_is_taken(embedded_aws):
    taken = int(embedded_aws.endpoint_url.rsplit(":", 1)[1])
    with pytest.raises(EmbeddedAwsError, match=str(taken)):
        EmbeddedAws(port=taken).start()


def test_reset_forgets_every_resource(embedded_aws, independent_client):
    sqs = independent_client("sqs")
    sqs.create_queue(QueueName="left-over")
    assert sqs.list_queues().get("QueueUrls")
    embedded_aws.reset()
    assert not sqs.list_queues().get("QueueUrls")


# --- topology --------------------------------------------------------------------------


def test_listener_answers_404_by_default_and_the_rule_sends_everything_to_stable(aws):
    t, top = aws.targets, aws.topology
    elbv2 = aws.get_client("elbv2")
    listener = elbv2.describe_listeners(ListenerArns=[top.listener_arn])["Listeners"][0]
    assert listener["Port"] == t.listener_port
    assert listener["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    rules = [r for r in elbv2.describe_rules(ListenerArn=top.listener_arn)["Rules"] if not r["IsDefault"]]
    assert [r["RuleArn"] for r in rules] == [top.rule_arn]
    rule = rules[0]
    assert rule["Priority"] == str(RULE_PRIORITY)
    assert rule["Conditions"][0]["PathPatternConfig"]["Values"] == [t.rule_path]
    weights = {
        g["TargetGroupArn"]: g["Weight"] for g in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
    }
    assert weights == {top.stable_target_group_arn: 100, top.canary_target_group_arn: 0}
    groups = elbv2.describe_target_groups(
        TargetGroupArns=[top.stable_target_group_arn, top.canary_target_group_arn]
    )["TargetGroups"]
    assert {g["TargetGroupName"] for g in groups} == {t.stable_target_group, t.canary_target_group}
    assert {(g["TargetType"], g["Port"], g["VpcId"]) for g in groups} == {
        ("ip", t.container_port, top.vpc_id)
    }
    health = elbv2.describe_target_health(TargetGroupArn=top.stable_target_group_arn)
    assert len(health["TargetHealthDescriptions"]) == 2


def test_network_has_dns_hostnames_and_subnets_in_two_zones(aws):
    ec2 = aws.get_client("ec2")
    top = aws.topology
    attribute = ec2.describe_vpc_attribute(VpcId=top.vpc_id, Attribute="enableDnsHostnames")
    assert attribute["EnableDnsHostnames"]["Value"] is True
    subnets = ec2.describe_subnets(SubnetIds=list(top.subnet_ids))["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 2


def test_services_run_the_initial_task_definition_behind_their_groups(aws):
    t, top = aws.targets, aws.topology
    ecs = aws.get_client("ecs")
    services = {
        s["serviceName"]: s
        for s in ecs.describe_services(cluster=t.cluster, services=[t.stable_service, t.canary_service])[
            "services"
        ]
    }
    stable, canary = services[t.stable_service], services[t.canary_service]
    assert (stable["desiredCount"], stable["runningCount"]) == (2, 2)
    assert canary["desiredCount"] == 0
    for service, group in ((stable, top.stable_target_group_arn), (canary, top.canary_target_group_arn)):
        assert service["taskDefinition"] == top.task_definition_arn
        assert service["launchType"] == "FARGATE"
        assert service["loadBalancers"] == [
            {"targetGroupArn": group, "containerName": t.container_name, "containerPort": t.container_port}
        ]
    task = ecs.describe_task_definition(taskDefinition=top.task_definition_arn)["taskDefinition"]
    assert task["family"] == t.task_family
    assert task["networkMode"] == "awsvpc"
    assert task["requiresCompatibilities"] == ["FARGATE"]
    (container,) = task["containerDefinitions"]
    assert container["name"] == t.container_name
    assert container["image"] == top.initial_image == f"{top.repository_uri}:1.0.0"
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert container["healthCheck"]["command"][0] == "CMD-SHELL"
    repos = aws.get_client("ecr").describe_repositories()["repositories"]
    assert [r["repositoryName"] for r in repos] == [t.ecr_repository]


def test_tables_queues_topic_alarms_and_dashboard_exist(aws):
    t, top = aws.targets, aws.topology
    dynamodb = aws.get_client("dynamodb")
    rollouts = dynamodb.describe_table(TableName=t.rollouts_table)["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in rollouts["KeySchema"]} == {
        ("service", "HASH"),
        ("rollout_id", "RANGE"),
    }
    flags = dynamodb.describe_table(TableName=t.flags_table)["Table"]
    assert flags["KeySchema"] == [{"AttributeName": "feature", "KeyType": "HASH"}]
    for spec in t.tables:
        table = dynamodb.describe_table(TableName=spec.name)["Table"]
        assert table["KeySchema"][0]["AttributeName"] == spec.hash_key
        indexes = {
            i["IndexName"]: i["KeySchema"][0]["AttributeName"]
            for i in table.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == {name: index_attribute(name) for name in spec.indexes}

    sqs = aws.get_client("sqs")
    for spec in t.queues:
        dlq_arn = sqs.get_queue_attributes(QueueUrl=top.dlq_urls[spec.dlq_name], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        attributes = sqs.get_queue_attributes(QueueUrl=top.queue_urls[spec.name], AttributeNames=["All"])
        redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == dlq_arn
        assert int(redrive["maxReceiveCount"]) == spec.max_receive_count

    assert top.topic_arn.endswith(f":{t.alert_topic}")
    cloudwatch = aws.get_client("cloudwatch")
    alarms = cloudwatch.describe_alarms(AlarmNames=list(t.alarms))["MetricAlarms"]
    assert {a["AlarmName"] for a in alarms} == set(t.alarms)
    assert {a["Namespace"] for a in alarms} == {t.metrics_namespace}
    assert all(a["AlarmActions"] == [top.topic_arn] for a in alarms)
    body = json.loads(cloudwatch.get_dashboard(DashboardName=t.dashboard)["DashboardBody"])
    assert body["widgets"]


def test_second_provision_makes_no_write_and_returns_the_same_identifiers(aws, watch_calls):
    ecs, elbv2 = aws.get_client("ecs"), aws.get_client("elbv2")
    rules_before = elbv2.describe_rules(ListenerArn=aws.topology.listener_arn)["Rules"]
    revisions_before = ecs.list_task_definitions(familyPrefix=aws.targets.task_family)["taskDefinitionArns"]
    calls = [watch_calls(aws.get_client(service)) for service in _SERVICES]

    again = provision(aws.get_client, aws.targets)

    made = [name for service_calls in calls for name in service_calls]
    assert made, "the watch saw no call at all"
    assert [name for name in made if not name.startswith(_READ_PREFIXES)] == []
    assert again == aws.topology
    assert elbv2.describe_rules(ListenerArn=aws.topology.listener_arn)["Rules"] == rules_before
    assert (
        ecs.list_task_definitions(familyPrefix=aws.targets.task_family)["taskDefinitionArns"]
        == revisions_before
    )


def test_a_security_group_narrowed_since_is_left_as_it_is(aws, watch_calls):
    """A provision again on an account whose tasks' group someone narrowed (the listener port no
    longer open to the world) makes no write: it re-opened the port to 0.0.0.0/0."""
    ec2 = aws.get_client("ec2")
    group_id = aws.topology.security_group_id
    ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": aws.targets.listener_port, "ToPort": aws.targets.listener_port,
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    calls = watch_calls(ec2)

    assert provision(aws.get_client, aws.targets) == aws.topology

    assert [name for name in calls if not name.startswith(_READ_PREFIXES)] == []
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert [p["FromPort"] for p in group["IpPermissions"]] == [aws.targets.container_port]


def test_every_name_comes_from_targets(aws):
    other = Targets(
        load_balancer="acme-alb",
        listener_port=8081,
        rule_path="/api/*",
        stable_target_group="acme-blue",
        canary_target_group="acme-green",
        cluster="acme-cluster",
        stable_service="acme-svc",
        canary_service="acme-svc-canary",
        task_family="acme-task",
        container_name="app",
        container_port=9000,
        ecr_repository="acme/app",
        flags_table="acme-flags",
        rollouts_table="acme-rollouts",
        queues=(QueueSpec(name="acme-jobs", dlq_name="acme-jobs-dlq", max_receive_count=5),),
        tables=(TableSpec(name="acme-sessions", hash_key="id", range_key="at", indexes=("owner-index",)),),
        alert_topic="acme-alerts",
        metrics_namespace="Acme/Prod",
        dashboard="acme-dash",
        alarms=("acme-errors",),
    )
    top = provision(aws.get_client, other)
    webordinary = aws.topology
    distinct = (
        "vpc_id", "load_balancer_arn", "listener_arn", "rule_arn", "stable_target_group_arn",
        "canary_target_group_arn", "cluster_arn", "stable_service_arn", "task_definition_arn",
        "repository_uri", "flags_table_arn", "rollouts_table_arn", "topic_arn",
    )  # fmt: skip
    assert all(getattr(top, f) != getattr(webordinary, f) for f in distinct)
    assert set(top.queue_urls) == {"acme-jobs"} and set(top.dlq_urls) == {"acme-jobs-dlq"}
    assert set(top.table_arns) == {"acme-sessions"}
    assert "acme-alb" in top.load_balancer_arn and top.repository_uri.endswith("/acme/app")
    rule = aws.get_client("elbv2").describe_rules(RuleArns=[top.rule_arn])["Rules"][0]
    assert rule["Conditions"][0]["PathPatternConfig"]["Values"] == ["/api/*"]
    alarm = aws.get_client("cloudwatch").describe_alarms(AlarmNames=["acme-errors"])["MetricAlarms"][0]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Acme/Prod", alarm_metric("acme-errors")[0])


def _answered_late(monkeypatch, embedded_aws, targets, backend, create: str, service: str, warm: str,
                   named: str | None = None):
    """provision's ``get_client`` on a reset account, whose ``service`` client waits 1 s per attempt
    for an answer, and the ``create`` method of moto's ``backend`` answering its first call (for
    ``named``, if given) 2.5 s after making what it makes: botocore sends the create again, as on
    a loaded machine. Returns it and the list that fills with what that first call made."""
    from blocks.credentials import client_factory, credentials_for_endpoint

    made = getattr(backend, create)
    answered_late: list = []

    def made_but_answered_late(self, *args, **kwargs):
        what = made(self, *args, **kwargs)
        if not answered_late and (named is None or named in (*args, *kwargs.values())):
            answered_late.append(what)
            time.sleep(2.5)  # past the 1 s read timeout below: the client resends
        return what

    embedded_aws.reset()
    credentials = credentials_for_endpoint(embedded_aws.endpoint_url, targets.region)
    clients = client_factory(credentials)
    # moto builds the account's backend (slow, and with a default VPC of its own) on its first request.
    getattr(clients(service), warm)()
    monkeypatch.setattr(backend, create, made_but_answered_late)
    # Two seconds shared by the service's calls and their one resend: 1 s per attempt.
    late = client_factory(credentials, read_seconds=2.0)(service)
    return (lambda name: late if name == service else clients(name)), answered_late


def test_a_security_group_whose_create_answer_was_lost_is_taken_with_its_ingress(embedded_aws, targets, monkeypatch):
    """On a loaded machine moto's answer to CreateSecurityGroup came after the client's read timeout;
    botocore sent the create again, which found the group the first attempt had made
    (InvalidGroup.Duplicate), and `rollway up` stopped while provisioning. The group is ours."""
    from moto.ec2.models.security_groups import SecurityGroupBackend

    get_client, answered_late = _answered_late(
        monkeypatch, embedded_aws, targets, SecurityGroupBackend, "create_security_group", "ec2", "describe_vpcs",
        named=f"{targets.cluster}-tasks")  # not the VPC's default group

    topology = provision(get_client, targets)

    assert [group.id for group in answered_late] == [topology.security_group_id]
    group = get_client("ec2").describe_security_groups(GroupIds=[topology.security_group_id])["SecurityGroups"][0]
    assert sorted(p["FromPort"] for p in group["IpPermissions"]) == sorted(
        {targets.listener_port, targets.container_port})
    assert provision(get_client, targets) == topology  # `rollway up` again on the same account


def test_a_vpc_whose_create_answer_was_lost_is_made_once(embedded_aws, targets, monkeypatch):
    """botocore's resend of a late-answered CreateVpc made a second VPC of the same name (EC2 holds
    no name unique): the resend is not sent, and the VPC the first attempt made is looked up and taken."""
    from moto.ec2.models.vpcs import VPCBackend

    get_client, answered_late = _answered_late(
        monkeypatch, embedded_aws, targets, VPCBackend, "create_vpc", "ec2", "describe_vpcs")

    topology = provision(get_client, targets)

    ec2 = get_client("ec2")
    named = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{targets.cluster}-vpc"]}])["Vpcs"]
    assert [vpc["VpcId"] for vpc in named] == [vpc.id for vpc in answered_late] == [topology.vpc_id]
    attribute = ec2.describe_vpc_attribute(VpcId=topology.vpc_id, Attribute="enableDnsHostnames")
    assert attribute["EnableDnsHostnames"]["Value"] is True
    assert provision(get_client, targets) == topology


def _vpc_creates_answered(embedded_aws, targets, *answers: tuple[int, bytes]):
    """provision's ``get_client`` on a reset account, with a real account's retries (the embedded
    AWS's allow one resend), whose first CreateVpc attempts are answered ``answers`` (HTTP status,
    body) without reaching moto, as AWS or a proxy in front of it would; later attempts reach it."""
    from botocore.awsrequest import AWSResponse
    from prefect_aws import AwsCredentials
    from prefect_aws.client_parameters import AwsClientParameters

    from blocks.credentials import client_factory

    embedded_aws.reset()
    clients = client_factory(AwsCredentials(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=targets.region,
        aws_client_parameters=AwsClientParameters(endpoint_url=embedded_aws.endpoint_url)))
    left = list(answers)

    class Body:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def stream(self, **_):
            yield self.body

    def answered(request, **_):
        if left:
            status, body = left.pop(0)
            return AWSResponse(request.url, status, {}, Body(body))
        return None

    clients("ec2").meta.events.register_first("before-send.ec2.CreateVpc", answered)
    return clients


def test_a_vpc_create_answered_throttled_is_sent_again_by_botocore(embedded_aws, targets):
    """EC2 answers a throttled call 503 RequestLimitExceeded: AWS made nothing, and botocore's
    resend after a backoff is what gets it through. Stopped as an answer lost, the create was sent
    once more at once, throttled again, and `rollway up` stopped while provisioning."""
    throttled = (503, b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                      b"</Message></Error></Errors><RequestID>1</RequestID></Response>")
    get_client = _vpc_creates_answered(embedded_aws, targets, throttled, throttled)

    topology = provision(get_client, targets)

    named = get_client("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{targets.cluster}-vpc"]}])
    assert [vpc["VpcId"] for vpc in named["Vpcs"]] == [topology.vpc_id]


def test_a_vpc_create_answered_by_a_proxys_502_is_looked_up_then_sent_again(embedded_aws, targets):
    """A 5xx is an answer lost (the call may have gone through), whatever its code: a proxy's 502
    names none of AWS's. botocore's resend was stopped, and the error raised as it came, with no
    look-up and no second send: `rollway up` stopped where botocore alone would have sent it again."""
    get_client = _vpc_creates_answered(embedded_aws, targets, (502, b"<html><body>Bad Gateway</body></html>"))

    topology = provision(get_client, targets)

    named = get_client("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{targets.cluster}-vpc"]}])
    assert [vpc["VpcId"] for vpc in named["Vpcs"]] == [topology.vpc_id]


def test_a_repository_whose_create_answer_was_lost_is_taken(embedded_aws, targets, monkeypatch):
    """botocore's resend of a late-answered CreateRepository found the repository the first attempt
    made (RepositoryAlreadyExistsException), and `rollway up` stopped while provisioning."""
    from moto.ecr.models import ECRBackend

    get_client, answered_late = _answered_late(
        monkeypatch, embedded_aws, targets, ECRBackend, "create_repository", "ecr", "describe_repositories")

    topology = provision(get_client, targets)

    assert [repository.uri for repository in answered_late] == [topology.repository_uri]
    assert provision(get_client, targets) == topology


@pytest.mark.parametrize(("backend", "create", "service", "warm", "made_id", "taken"), [
    ("moto.ec2.models.subnets.SubnetBackend", "create_subnet", "ec2", "describe_vpcs", "id",
     lambda top: top.subnet_ids[0]),
    ("moto.iam.models.IAMBackend", "create_role", "iam", "list_roles", "arn", lambda top: top.execution_role_arn),
    ("moto.dynamodb.models.DynamoDBBackend", "create_table", "dynamodb", "list_tables", "table_arn",
     lambda top: top.flags_table_arn),
    ("moto.elbv2.models.ELBv2Backend", "create_load_balancer", "elbv2", "describe_load_balancers", "arn",
     lambda top: top.load_balancer_arn),
    ("moto.elbv2.models.ELBv2Backend", "create_target_group", "elbv2", "describe_load_balancers", "arn",
     lambda top: top.stable_target_group_arn),
    ("moto.elbv2.models.ELBv2Backend", "create_listener", "elbv2", "describe_load_balancers", "arn",
     lambda top: top.listener_arn),
    ("moto.elbv2.models.ELBv2Backend", "create_rule", "elbv2", "describe_load_balancers", "arn",
     lambda top: top.rule_arn),
], ids=["subnet", "role", "table", "load-balancer", "target-group", "listener", "rule"])
def test_a_create_by_name_whose_answer_was_lost_is_taken(embedded_aws, targets, monkeypatch, backend, create,
                                                         service, warm, made_id, taken):
    """botocore's resend of a late-answered create found what the first attempt made (the name, or
    a subnet's CIDR, taken: EntityAlreadyExists, ResourceInUseException, DuplicateListener...), and
    `rollway up` stopped while provisioning. What the first attempt made is taken."""
    import importlib

    module, name = backend.rsplit(".", 1)
    get_client, answered_late = _answered_late(
        monkeypatch, embedded_aws, targets, getattr(importlib.import_module(module), name), create, service, warm)

    topology = provision(get_client, targets)

    assert [getattr(made, made_id) for made in answered_late] == [taken(topology)]
    assert provision(get_client, targets) == topology


def test_a_task_definition_whose_registration_answer_was_lost_is_registered_once(embedded_aws, targets, monkeypatch):
    """botocore's resend of a late-answered RegisterTaskDefinition registered a second revision: the
    resend is not sent, and the revision the first attempt registered is taken."""
    from moto.ecs.models import EC2ContainerServiceBackend

    get_client, answered_late = _answered_late(monkeypatch, embedded_aws, targets, EC2ContainerServiceBackend,
                                               "register_task_definition", "ecs", "list_clusters")

    topology = provision(get_client, targets)

    revisions = get_client("ecs").list_task_definitions(familyPrefix=targets.task_family)["taskDefinitionArns"]
    assert revisions == [revision.arn for revision in answered_late] == [topology.task_definition_arn]
    assert provision(get_client, targets) == topology


def test_a_service_create_resent_carries_its_first_attempts_client_token(embedded_aws, targets, monkeypatch):
    """A CreateService of a name ECS has is refused ("Creation of service was not idempotent")
    unless it carries the client token of the create that made it: botocore's resend of a
    late-answered create stopped `rollway up` on AWS (moto makes the service again in place)."""
    from moto.ecs.models import EC2ContainerServiceBackend

    get_client, answered_late = _answered_late(
        monkeypatch, embedded_aws, targets, EC2ContainerServiceBackend, "create_service", "ecs", "list_clusters")
    tokens: list[str | None] = []

    def sent(request, **_):
        tokens.append(json.loads(request.body).get("clientToken"))

    get_client("ecs").meta.events.register("before-send.ecs.CreateService", sent)
    topology = provision(get_client, targets)

    assert [service.arn for service in answered_late] == [topology.stable_service_arn]
    first, resent, canary = tokens  # the stable service's create, its resend, the canary's create
    assert first is not None and resent == first and canary not in (None, first)


def test_a_repository_made_otherwise_since_the_look_up_is_not_taken(embedded_aws, targets, independent_client):
    """Someone else's repository of the same name, made between provision's look-up and its create,
    is named in the error, with what differs: not taken as the one provision makes."""
    from blocks.credentials import client_factory, credentials_for_endpoint

    from rollway.sim.topology import TopologyConflict

    embedded_aws.reset()
    clients = client_factory(credentials_for_endpoint(embedded_aws.endpoint_url, targets.region))

    def someone_else_first(**_):
        independent_client("ecr").create_repository(repositoryName=targets.ecr_repository)

    clients("ecr").meta.events.register_first("before-call.ecr.CreateRepository", someone_else_first)
    try:
        with pytest.raises(TopologyConflict) as raised:
            provision(clients, targets)
    finally:
        clients("ecr").meta.events.unregister("before-call.ecr.CreateRepository", someone_else_first)
    assert str(raised.value) == (
        f"ECR repository {targets.ecr_repository!r} already exists, not as provision makes it: "
        "its imageScanningConfiguration is {'scanOnPush': False}, not {'scanOnPush': True}")
