"""Webordinary's AWS topology, provisioned into any account (in practice: the embedded AWS).

``provision`` creates what a rollout touches — network, ALB with a weighted rule, ECS
cluster/services/task definition, ECR repository, DynamoDB tables, SQS queues with DLQs, an
SNS topic, CloudWatch alarms and a dashboard — taking every name from ``Targets``. It is
idempotent: each resource is looked up before it is created, so a second run makes no write
call and returns the same identifiers. A create botocore sends again (its answer came past the
read timeout) makes nothing twice either: an "already exists" answer is taken when what exists
is what was asked for (``_created``), a service's create carries a client token, and a create
AWS (or moto) would make twice (a VPC, a task definition's revision; on moto a load balancer
or a listener) is not resent (``_sent_once``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import uuid
from typing import Any, Callable, TypeVar

from botocore.exceptions import ClientError, HTTPClientError
from pydantic import BaseModel, ConfigDict

from rollway.aws.errors import THROTTLED_CODES, TargetNotFound, attempt_lost, error_code, on_event
from rollway.spec import Guardrails
from rollway.targets import QueueSpec, TableSpec, Targets

GetClient = Callable[[str], Any]
T = TypeVar("T")

# Rule priority of the one weighted rule; the listener's default action answers 404.
RULE_PRIORITY = 10
INITIAL_IMAGE_TAG = "1.0.0"
STABLE_DESIRED = 2
HEALTH_PATH = "/health"
_VPC_CIDR = "10.0.0.0/16"
_SUBNET_CIDRS = ("10.0.1.0/24", "10.0.2.0/24")
# Host offset of the stable service's registered target IPs inside each subnet.
_TARGET_HOST = 10
# How many times ``_sent_once`` sends a create, each time after a lost answer whose look-up found
# nothing made.
_SENDS = 2


class TopologyConflict(Exception):
    """A resource provision was creating is in the account, but not as provision makes it (or
    AWS said it was there and it is not): taking it would hand a rollout something else."""


class _Balancer(BaseModel):
    model_config = ConfigDict(frozen=True)

    load_balancer_arn: str
    load_balancer_dns: str
    listener_arn: str
    rule_arn: str
    stable_target_group_arn: str
    canary_target_group_arn: str


class Topology(_Balancer):
    """Identifiers of everything ``provision`` created (or found).

    Besides the fields below it carries the load balancer's: ``load_balancer_arn``,
    ``load_balancer_dns``, ``listener_arn``, ``rule_arn``, ``stable_target_group_arn`` and
    ``canary_target_group_arn``.
    """

    account_id: str
    region: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_id: str
    cluster_arn: str
    stable_service_arn: str
    canary_service_arn: str
    task_definition_arn: str
    execution_role_arn: str
    task_role_arn: str
    repository_uri: str
    flags_table_arn: str
    rollouts_table_arn: str
    table_arns: dict[str, str]
    queue_urls: dict[str, str]
    dlq_urls: dict[str, str]
    topic_arn: str
    alarm_names: tuple[str, ...]
    dashboard: str

    @property
    def initial_image(self) -> str:
        """The image the initial task definition runs."""
        return f"{self.repository_uri}:{INITIAL_IMAGE_TAG}"


class _Network(BaseModel):
    model_config = ConfigDict(frozen=True)

    vpc_id: str
    subnet_ids: tuple[str, ...]
    subnet_cidrs: tuple[str, ...]
    security_group_id: str


def provision(get_client: GetClient, targets: Targets) -> Topology:
    """Create (or find) Webordinary's topology, named by ``targets``.

    Args:
        get_client: returns a boto3 client for a service name (``blocks.credentials``).
        targets: every name to create.

    Returns:
        The identifiers of every resource, the same on every run.

    Raises:
        TargetNotFound: a target group given as an ARN does not exist (provision creates
            groups given by name only), or the tasks' security group, said by EC2 to exist when
            created, is not found.
        TopologyConflict: a create was answered that what it makes exists (a resend of it, or
            someone else's create since the look-up), and what exists is not what was asked for.
    """
    account_id = get_client("sts").get_caller_identity()["Account"]
    network = _network(get_client("ec2"), targets)
    elbv2 = get_client("elbv2")
    balancer = _balancer(elbv2, targets, network)
    repository_uri = _repository(get_client("ecr"), targets.ecr_repository)
    roles = _roles(get_client("iam"), targets)
    ecs = get_client("ecs")
    cluster_arn = _cluster(ecs, targets.cluster)
    task_definition_arn = _task_definition(
        ecs, targets, f"{repository_uri}:{INITIAL_IMAGE_TAG}", roles
    )
    service_arns = {
        name: _service(ecs, targets, name, task_definition_arn, group_arn, desired, network)
        for name, group_arn, desired in (
            (targets.stable_service, balancer.stable_target_group_arn, STABLE_DESIRED),
            (targets.canary_service, balancer.canary_target_group_arn, 0),
        )
    }
    # moto runs no tasks, so the stable service's tasks are stood in for by registered IPs.
    _register_targets(elbv2, balancer.stable_target_group_arn, network, targets)
    dynamodb = get_client("dynamodb")
    flags_arn = _table(dynamodb, TableSpec(name=targets.flags_table, hash_key="feature"))
    rollouts_arn = _table(
        dynamodb,
        TableSpec(name=targets.rollouts_table, hash_key="service", range_key="rollout_id"),
    )
    table_arns = {spec.name: _table(dynamodb, spec) for spec in targets.tables}
    sqs = get_client("sqs")
    queue_pairs = [_queue_pair(sqs, spec) for spec in targets.queues]
    topic_arn = _topic(get_client("sns"), targets.alert_topic)
    cloudwatch = get_client("cloudwatch")
    _alarms(cloudwatch, targets, topic_arn)
    _dashboard(cloudwatch, targets, balancer)
    return Topology(
        account_id=account_id,
        region=targets.region,
        vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids,
        security_group_id=network.security_group_id,
        **balancer.model_dump(),
        cluster_arn=cluster_arn,
        stable_service_arn=service_arns[targets.stable_service],
        canary_service_arn=service_arns[targets.canary_service],
        task_definition_arn=task_definition_arn,
        execution_role_arn=roles[0],
        task_role_arn=roles[1],
        repository_uri=repository_uri,
        flags_table_arn=flags_arn,
        rollouts_table_arn=rollouts_arn,
        table_arns=table_arns,
        queue_urls={spec.name: url for spec, (url, _) in zip(targets.queues, queue_pairs)},
        dlq_urls={spec.dlq_name: dlq for spec, (_, dlq) in zip(targets.queues, queue_pairs)},
        topic_arn=topic_arn,
        alarm_names=targets.alarms,
        dashboard=targets.dashboard,
    )


def _created(what: str, create: Callable[[], dict[str, Any]], exists: str,
             existing: Callable[[], dict[str, Any] | None], asked: dict[str, Any]) -> dict[str, Any]:
    """What ``create()`` made (AWS's description of it); or, when AWS answers ``exists`` (the
    name is taken), what ``existing()`` reads there, if each of its fields named in ``asked`` is
    as asked.

    botocore resends a create whose answer came after the client's read timeout (a loaded
    machine), and the resend finds what the first attempt made: that is ours, and done. One that
    differs from ``asked`` was made by someone else, and is not taken.

    Raises:
        TopologyConflict: what exists differs from ``asked`` (named, with each field that
            differs), or nothing is there to read.
    """
    try:
        return create()
    except ClientError as err:
        if error_code(err) != exists:
            raise
        found = existing()
        if found is None:
            raise TopologyConflict(f"{what} could not be created ({exists}), and none is there to take") from err
        unlike = [f"its {field} is {found.get(field)!r}, not {value!r}" for field, value in asked.items()
                  if found.get(field) != value]
        if unlike:
            raise TopologyConflict(f"{what} already exists, not as provision makes it: {'; '.join(unlike)}") from err
        return found


def _sent_once(client: Any, operation: str, create: Callable[[], T], made: Callable[[], T | None]) -> T:
    """``create()`` (``operation`` on ``client``), which botocore does not send again after an
    attempt whose answer was lost (a read timeout, a dropped connection, a 5xx other than a
    throttled call's): ``made()`` looks for what that attempt may have made, and the create is sent
    again only when it finds nothing.

    For creates AWS makes a second of when sent twice and takes no client token for: botocore's
    resend of a CreateVpc answered after the read timeout (a loaded machine) made a second VPC of
    the same name. On a real account a describe may not yet list what was made a moment ago: the
    create is then sent again, as botocore would have, and a lost answer can still leave two.
    """
    event = f"needs-retry.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    for send in range(1, _SENDS + 1):
        # Whether the error is that of an attempt ``_not_resent`` stopped: read from the error, a
        # 5xx whose code names no failure of AWS's (a proxy's 502) was raised as a refusal.
        stopped: list[bool] = []
        try:
            with on_event(client, event, lambda **kwargs: _not_resent(stopped, **kwargs)):
                return create()
        except (ClientError, HTTPClientError):
            if send == _SENDS or not stopped:
                raise
        found = made()
        if found is not None:
            return found
    raise AssertionError("unreachable")


def _not_resent(stopped: list[bool], caught_exception: BaseException | None = None, response: Any = None,
                operation: Any = None, **_: Any) -> None:
    # Called before botocore's own retry handler (that one is on the service's event, this on the
    # operation's): raising here ends the call with this attempt's error, not sent again, and
    # ``stopped`` says so.
    if not attempt_lost(caught_exception, response):
        return
    if response is not None and response[1].get("Error", {}).get("Code") in THROTTLED_CODES:
        # EC2 answers a throttled call 503 RequestLimitExceeded: AWS made nothing, and botocore's
        # resend after its backoff is what gets the call through.
        return
    stopped.append(True)
    if caught_exception is not None:
        raise caught_exception
    raise ClientError(response[1], operation.name)


def _tag(name: str) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": name}]


# --- network ---------------------------------------------------------------------------


def _network(ec2: Any, targets: Targets) -> _Network:
    vpc_name = f"{targets.cluster}-vpc"
    vpc_id = _vpc_named(ec2, vpc_name)
    if vpc_id is None:
        # Its name is a tag, which EC2 does not hold unique: a create sent twice makes two.
        vpc_id = _sent_once(
            ec2,
            "CreateVpc",
            lambda: str(ec2.create_vpc(
                CidrBlock=_VPC_CIDR, TagSpecifications=[{"ResourceType": "vpc", "Tags": _tag(vpc_name)}]
            )["Vpc"]["VpcId"]),
            lambda: _vpc_named(ec2, vpc_name),
        )
        # Fargate tasks in awsvpc mode need DNS hostnames; one attribute per call.
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnets = _subnets(ec2, vpc_id, targets.region)
    group_id = _security_group(ec2, targets, vpc_id)
    return _Network(
        vpc_id=vpc_id,
        subnet_ids=tuple(s["SubnetId"] for s in subnets),
        subnet_cidrs=tuple(s["CidrBlock"] for s in subnets),
        security_group_id=group_id,
    )


def _vpc_named(ec2: Any, name: str) -> str | None:
    found = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
    return str(found[0]["VpcId"]) if found else None


def _security_group(ec2: Any, targets: Targets, vpc_id: str) -> str:
    """The tasks' security group in ``vpc_id``: one already there is taken as it is (a second run
    makes no write call, and a group someone narrowed stays narrowed); one created gets its two
    ingress rules."""
    name = f"{targets.cluster}-tasks"
    group = _group_named(ec2, vpc_id, name)
    if group is not None:
        return str(group["GroupId"])
    try:
        # Its own answer names it: EC2's describe calls are eventually consistent, and on a real
        # account may not list a group made a moment ago.
        group_id = ec2.create_security_group(
            GroupName=name, Description=f"{targets.cluster} tasks and ALB", VpcId=vpc_id
        )["GroupId"]
        allowed: set[tuple[Any, str]] = set()
    except ClientError as err:
        # A create whose answer came after the read timeout (a loaded machine) is sent again by
        # botocore, and the resend finds the group the first attempt made, its rules not yet added.
        if error_code(err) != "InvalidGroup.Duplicate":
            raise
        made = _group_named(ec2, vpc_id, name)
        if made is None:
            raise TargetNotFound("security group", name, f"said to exist in {vpc_id}, then not found there") from err
        group_id = made["GroupId"]
        allowed = {(p.get("FromPort"), r["CidrIp"]) for p in made["IpPermissions"] for r in p.get("IpRanges", [])}
    wanted = [_ingress(targets.listener_port, "0.0.0.0/0"), _ingress(targets.container_port, _VPC_CIDR)]
    missing = [p for p in wanted if (p["FromPort"], p["IpRanges"][0]["CidrIp"]) not in allowed]
    if missing:
        try:
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=missing)
        except ClientError as err:
            if error_code(err) != "InvalidPermission.Duplicate":  # a resend, as above
                raise
    return str(group_id)


def _group_named(ec2: Any, vpc_id: str, name: str) -> dict[str, Any] | None:
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [name]},
        ]
    )["SecurityGroups"]
    return groups[0] if groups else None


def _ingress(port: int, cidr: str) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}


def _subnets(ec2: Any, vpc_id: str, region: str) -> list[dict[str, Any]]:
    existing = {
        s["CidrBlock"]: s
        for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    }
    missing = [cidr for cidr in _SUBNET_CIDRS if cidr not in existing]
    if missing:
        zones = [
            z["ZoneName"]
            for z in ec2.describe_availability_zones(
                Filters=[{"Name": "region-name", "Values": [region]}]
            )["AvailabilityZones"]
        ]
        # An ALB needs subnets in two different availability zones.
        for cidr in missing:
            existing[cidr] = _subnet(ec2, vpc_id, cidr, zones[_SUBNET_CIDRS.index(cidr) % len(zones)])
    return [existing[cidr] for cidr in _SUBNET_CIDRS]


def _subnet(ec2: Any, vpc_id: str, cidr: str, zone: str) -> dict[str, Any]:
    # A VPC's subnets do not overlap: a create sent twice finds the first one's (InvalidSubnet.Conflict).
    def at_cidr() -> dict[str, Any] | None:
        found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                              {"Name": "cidr-block", "Values": [cidr]}])["Subnets"]
        return dict(found[0]) if found else None

    return _created(
        f"subnet {cidr} of {vpc_id}",
        lambda: dict(ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]),
        "InvalidSubnet.Conflict",
        at_cidr,
        {"AvailabilityZone": zone},
    )


# --- load balancer ---------------------------------------------------------------------


def _balancer(elbv2: Any, targets: Targets, network: _Network) -> _Balancer:
    lb = _load_balancer(elbv2, targets.load_balancer, network)
    stable_arn = _target_group(elbv2, targets.stable_target_group, targets, network.vpc_id)
    canary_arn = _target_group(elbv2, targets.canary_target_group, targets, network.vpc_id)
    listener_arn = _listener(elbv2, lb["LoadBalancerArn"], targets.listener_port)
    rule_arn = _rule(elbv2, listener_arn, targets.rule_path, stable_arn, canary_arn)
    return _Balancer(
        load_balancer_arn=lb["LoadBalancerArn"],
        load_balancer_dns=lb["DNSName"],
        listener_arn=listener_arn,
        rule_arn=rule_arn,
        stable_target_group_arn=stable_arn,
        canary_target_group_arn=canary_arn,
    )


def _load_balancer(elbv2: Any, name: str, network: _Network) -> dict[str, Any]:
    asked = {"Scheme": "internet-facing", "Type": "application", "IpAddressType": "ipv4",
             "SecurityGroups": [network.security_group_id]}
    # AWS answers a second create of the same name with the first load balancer, or refuses it
    # (DuplicateLoadBalancerName); moto makes a second one: the create is not sent again.
    return _load_balancer_named(elbv2, name) or _sent_once(
        elbv2,
        "CreateLoadBalancer",
        lambda: _created(
            f"load balancer {name!r}",
            lambda: dict(elbv2.create_load_balancer(Name=name, Subnets=list(network.subnet_ids), **asked)[
                "LoadBalancers"][0]),
            "DuplicateLoadBalancerName",
            lambda: _load_balancer_named(elbv2, name),
            {**asked, "Subnets": sorted(network.subnet_ids)},
        ),
        lambda: _load_balancer_named(elbv2, name),
    )


def _load_balancer_named(elbv2: Any, name: str) -> dict[str, Any] | None:
    """The load balancer ``name``, with ``Subnets``: its subnets' IDs, sorted."""
    try:
        found = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"][0]
    except ClientError as err:
        if error_code(err) != "LoadBalancerNotFound":
            raise
        return None
    return {**found, "Subnets": sorted(zone["SubnetId"] for zone in found["AvailabilityZones"])}


def _target_group(elbv2: Any, ref: str, targets: Targets, vpc_id: str) -> str:
    if ref.startswith("arn:"):
        try:
            return elbv2.describe_target_groups(TargetGroupArns=[ref])["TargetGroups"][0][
                "TargetGroupArn"
            ]
        except ClientError as err:
            raise TargetNotFound("target group", ref, error_code(err)) from err
    asked = {"Protocol": "HTTP", "Port": targets.container_port, "VpcId": vpc_id, "TargetType": "ip"}
    group = _target_group_named(elbv2, ref) or _created(
        f"target group {ref!r}",
        lambda: dict(elbv2.create_target_group(Name=ref, **asked, **_HEALTH_CHECK)["TargetGroups"][0]),
        "DuplicateTargetGroupName",
        lambda: _target_group_named(elbv2, ref),
        asked,
    )
    return str(group["TargetGroupArn"])


def _target_group_named(elbv2: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(elbv2.describe_target_groups(Names=[name])["TargetGroups"][0])
    except ClientError as err:
        if error_code(err) != "TargetGroupNotFound":
            raise
    return None


# How a target group made by provision checks its targets.
_HEALTH_CHECK: dict[str, Any] = {
    "HealthCheckProtocol": "HTTP",
    "HealthCheckPath": HEALTH_PATH,
    "HealthCheckIntervalSeconds": 15,
    "HealthyThresholdCount": 2,
    "UnhealthyThresholdCount": 3,
    "Matcher": {"HttpCode": "200"},
}


def _listener(elbv2: Any, lb_arn: str, port: int) -> str:
    asked = {"Protocol": "HTTP", "Port": port, "DefaultActions": [{
        "Type": "fixed-response",
        "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "not found"},
    }]}
    # As a load balancer's: moto makes a second listener on the port, so it is not sent again.
    listener = _listener_on(elbv2, lb_arn, port) or _sent_once(
        elbv2,
        "CreateListener",
        lambda: _created(
            f"listener on port {port} of {lb_arn}",
            lambda: dict(elbv2.create_listener(LoadBalancerArn=lb_arn, **asked)["Listeners"][0]),
            "DuplicateListener",
            lambda: _listener_on(elbv2, lb_arn, port),
            asked,
        ),
        lambda: _listener_on(elbv2, lb_arn, port),
    )
    return str(listener["ListenerArn"])


def _listener_on(elbv2: Any, lb_arn: str, port: int) -> dict[str, Any] | None:
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]
    return next((dict(listener) for listener in listeners if listener["Port"] == port), None)


def _rule(elbv2: Any, listener_arn: str, path: str, stable_arn: str, canary_arn: str) -> str:
    conditions = [{"Field": "path-pattern", "PathPatternConfig": {"Values": [path]}}]
    rule = _rule_at(elbv2, listener_arn) or _created(
        f"rule of priority {RULE_PRIORITY} on listener {listener_arn}",
        lambda: dict(elbv2.create_rule(
            ListenerArn=listener_arn,
            Priority=RULE_PRIORITY,
            Conditions=conditions,
            Actions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": stable_arn, "Weight": 100},
                            {"TargetGroupArn": canary_arn, "Weight": 0},
                        ],
                        "TargetGroupStickinessConfig": {"Enabled": False},
                    },
                }
            ],
        )["Rules"][0]),
        "PriorityInUse",
        lambda: _rule_at(elbv2, listener_arn),
        # Its weights are the rollout's to move: what makes it the one asked for is where it
        # sends which requests.
        {"PathPatterns": [path], "TargetGroupArns": sorted((stable_arn, canary_arn))},
    )
    return str(rule["RuleArn"])


def _rule_at(elbv2: Any, listener_arn: str) -> dict[str, Any] | None:
    """The listener's rule of priority ``RULE_PRIORITY``, with ``PathPatterns`` (its path
    conditions' patterns) and ``TargetGroupArns`` (the groups it forwards to, sorted)."""
    for rule in elbv2.describe_rules(ListenerArn=listener_arn)["Rules"]:
        if rule["Priority"] == str(RULE_PRIORITY):
            patterns = [v for c in rule["Conditions"] for v in c.get("PathPatternConfig", {}).get("Values", [])]
            groups = [g["TargetGroupArn"] for a in rule["Actions"]
                      for g in a.get("ForwardConfig", {}).get("TargetGroups", [])]
            return {**rule, "PathPatterns": patterns, "TargetGroupArns": sorted(groups)}
    return None


def _register_targets(elbv2: Any, group_arn: str, network: _Network, targets: Targets) -> None:
    wanted = [
        str(ipaddress.ip_network(cidr)[_TARGET_HOST]) for cidr in network.subnet_cidrs
    ][:STABLE_DESIRED]
    registered = {
        d["Target"]["Id"]
        for d in elbv2.describe_target_health(TargetGroupArn=group_arn)["TargetHealthDescriptions"]
    }
    missing = [ip for ip in wanted if ip not in registered]
    if missing:
        elbv2.register_targets(
            TargetGroupArn=group_arn,
            Targets=[{"Id": ip, "Port": targets.container_port} for ip in missing],
        )


# --- containers ------------------------------------------------------------------------


def _repository(ecr: Any, name: str) -> str:
    scanning = {"scanOnPush": True}
    repository = _repository_named(ecr, name) or _created(
        f"ECR repository {name!r}",
        lambda: dict(ecr.create_repository(repositoryName=name, imageScanningConfiguration=scanning)["repository"]),
        "RepositoryAlreadyExistsException",
        lambda: _repository_named(ecr, name),
        {"imageScanningConfiguration": scanning},
    )
    return str(repository["repositoryUri"])


def _repository_named(ecr: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(ecr.describe_repositories(repositoryNames=[name])["repositories"][0])
    except ClientError as err:
        if error_code(err) != "RepositoryNotFoundException":
            raise
    return None


def put_release_image(get_client: GetClient, targets: Targets, tag: str) -> str:
    """Put an image of its own (a manifest; moto's ECR keeps no layers) into the targets' ECR
    repository under ``tag``, as a push would, so that a rollout can pin the tag to its digest.

    Returns:
        ``<repository URI>:<tag>``, the image a rollout's spec names.
    """
    ecr = get_client("ecr")
    repository_uri = _repository(ecr, targets.ecr_repository)
    layer = hashlib.sha256(tag.encode()).hexdigest()  # one image per tag: a digest of its own
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                   "digest": "sha256:" + "c" * 64},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 7,
                    "digest": f"sha256:{layer}"}],
    })
    try:
        ecr.put_image(repositoryName=targets.ecr_repository, imageManifest=manifest, imageTag=tag)
    except ClientError as err:
        if error_code(err) != "ImageAlreadyExistsException":  # put before: the same image
            raise
    return f"{repository_uri}:{tag}"


def _roles(iam: Any, targets: Targets) -> tuple[str, str]:
    """The task execution role (pulls images, writes logs) and the task role (the app's)."""
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    execution, task = (_role(iam, f"{targets.task_family}-{suffix}", trust) for suffix in ("execution", "task"))
    return execution, task


def _role(iam: Any, name: str, trust: str) -> str:
    role = _role_named(iam, name) or _created(
        f"IAM role {name!r}",
        lambda: dict(iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]),
        "EntityAlreadyExists",
        lambda: _role_named(iam, name),
        {"AssumeRolePolicyDocument": json.loads(trust)},  # boto3 reads the document back as JSON
    )
    return str(role["Arn"])


def _role_named(iam: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(iam.get_role(RoleName=name)["Role"])
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise
    return None


def _cluster(ecs: Any, name: str) -> str:
    # moto's create_cluster replaces an existing cluster (and forgets its services), so look first.
    for cluster in ecs.describe_clusters(clusters=[name])["clusters"]:
        if cluster["status"] == "ACTIVE":
            return cluster["clusterArn"]
    return ecs.create_cluster(
        clusterName=name, settings=[{"name": "containerInsights", "value": "enabled"}]
    )["cluster"]["clusterArn"]


def _task_definition(ecs: Any, targets: Targets, image: str, roles: tuple[str, str]) -> str:
    # Each registration is a revision of its own: one sent twice makes two, so it is not resent.
    return _latest_revision(ecs, targets.task_family) or _sent_once(
        ecs,
        "RegisterTaskDefinition",
        lambda: str(ecs.register_task_definition(**task_definition_input(targets, image, roles))[
            "taskDefinition"]["taskDefinitionArn"]),
        lambda: _latest_revision(ecs, targets.task_family),
    )


def _latest_revision(ecs: Any, family: str) -> str | None:
    """The ARN of ``family``'s latest ACTIVE revision; None when it has none."""
    try:
        return str(ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["taskDefinitionArn"])
    except ClientError as err:
        if error_code(err) not in ("ClientException", "ResourceNotFoundException"):
            raise
    return None


def task_definition_input(targets: Targets, image: str, roles: tuple[str, str]) -> dict[str, Any]:
    """RegisterTaskDefinition arguments of the initial revision: a realistic Fargate task.

    Every optional field a real definition carries is filled in, so that a copy which should
    change only the image can be checked field by field.
    """
    log_group = f"/ecs/{targets.task_family}"
    return {
        "family": targets.task_family,
        "executionRoleArn": roles[0],
        "taskRoleArn": roles[1],
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "1024",
        "memory": "2048",
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "ephemeralStorage": {"sizeInGiB": 30},
        "volumes": [{"name": "workspace"}],
        "tags": [{"key": "service", "value": targets.stable_service}],
        "containerDefinitions": [
            {
                "name": targets.container_name,
                "image": image,
                "essential": True,
                "cpu": 1024,
                "memory": 2048,
                "memoryReservation": 1024,
                "portMappings": [
                    {
                        "containerPort": targets.container_port,
                        "hostPort": targets.container_port,
                        "protocol": "tcp",
                    }
                ],
                "environment": [
                    {"name": "AWS_REGION", "value": targets.region},
                    {"name": "PORT", "value": str(targets.container_port)},
                    {"name": "FLAGS_TABLE", "value": targets.flags_table},
                    {"name": "WORKSPACE_PATH", "value": "/workspace"},
                ],
                "mountPoints": [
                    {"sourceVolume": "workspace", "containerPath": "/workspace", "readOnly": False}
                ],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": log_group,
                        "awslogs-region": targets.region,
                        "awslogs-stream-prefix": targets.container_name,
                    },
                },
                "healthCheck": {
                    "command": [
                        "CMD-SHELL",
                        f"curl -fsS http://localhost:{targets.container_port}{HEALTH_PATH} || exit 1",
                    ],
                    "interval": 30,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 60,
                },
                "stopTimeout": 30,
                "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
            }
        ],
    }


def _service(
    ecs: Any,
    targets: Targets,
    name: str,
    task_definition_arn: str,
    group_arn: str,
    desired: int,
    network: _Network,
) -> str:
    for service in ecs.describe_services(cluster=targets.cluster, services=[name])["services"]:
        if service["status"] == "ACTIVE":
            return service["serviceArn"]
    arn = ecs.create_service(
        cluster=targets.cluster,
        serviceName=name,
        taskDefinition=task_definition_arn,
        desiredCount=desired,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(network.subnet_ids),
                "securityGroups": [network.security_group_id],
                "assignPublicIp": "DISABLED",
            }
        },
        loadBalancers=[
            {
                "targetGroupArn": group_arn,
                "containerName": targets.container_name,
                "containerPort": targets.container_port,
            }
        ],
        healthCheckGracePeriodSeconds=60,
        deploymentConfiguration={
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        },
        # botocore's resend carries the same token, which ECS answers with the service the first
        # attempt made: without one, a second create of the name is refused ("not idempotent").
        clientToken=str(uuid.uuid4()),
    )["service"]["serviceArn"]
    if desired:
        # Restating the desired count changes nothing on AWS; moto (which starts no tasks)
        # counts a service's tasks as running only after an update, so without it the
        # stable service would never look steady to the services_stable waiter.
        ecs.update_service(cluster=targets.cluster, service=name, desiredCount=desired)
    return arn


# --- state and messaging ---------------------------------------------------------------


def _table(dynamodb: Any, spec: TableSpec) -> str:
    found = _table_named(dynamodb, spec.name)
    if found is not None:
        return str(found["TableArn"])
    keys = [(spec.hash_key, "HASH")] + ([(spec.range_key, "RANGE")] if spec.range_key else [])
    index_keys = {index: index_attribute(index) for index in spec.indexes}
    attributes = dict.fromkeys([k for k, _ in keys] + list(index_keys.values()))
    arguments: dict[str, Any] = {
        "TableName": spec.name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": k, "KeyType": t} for k, t in keys],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
    }
    if index_keys:
        arguments["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index,
                "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, attribute in index_keys.items()
        ]
    table = _created(
        f"DynamoDB table {spec.name!r}",
        lambda: dict(dynamodb.create_table(**arguments)["TableDescription"]),
        "ResourceInUseException",
        lambda: _table_named(dynamodb, spec.name),
        {"KeySchema": arguments["KeySchema"], "IndexKeys": dict(index_keys)},
    )
    return str(table["TableArn"])


def _table_named(dynamodb: Any, name: str) -> dict[str, Any] | None:
    """The table ``name``, with ``IndexKeys``: the hash key of each of its GSIs by name."""
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
    except ClientError as err:
        if error_code(err) != "ResourceNotFoundException":
            raise
        return None
    indexes = table.get("GlobalSecondaryIndexes", [])
    return {**table, "IndexKeys": {i["IndexName"]: i["KeySchema"][0]["AttributeName"] for i in indexes}}


def index_attribute(index: str) -> str:
    """The string attribute a GSI named ``index`` is keyed on: ``userId-index`` -> ``userId``.

    TableSpec names indexes only, so the convention ``<attribute>-index`` carries the key; a
    name without that suffix is taken as the attribute itself.
    """
    return index.removesuffix("-index")


def _queue_url(sqs: Any, name: str) -> str | None:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as err:
        if error_code(err) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
    return None


def _queue_pair(sqs: Any, spec: QueueSpec) -> tuple[str, str]:
    """The work queue and its DLQ; the queue redrives to the DLQ after max_receive_count."""
    dlq_url = _queue_url(sqs, spec.dlq_name) or sqs.create_queue(
        QueueName=spec.dlq_name, Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    url = _queue_url(sqs, spec.name)
    if url is None:
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.max_receive_count)}
        url = sqs.create_queue(
            QueueName=spec.name,
            Attributes={"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": "300"},
        )["QueueUrl"]
    return url, dlq_url


def _topic(sns: Any, name: str) -> str:
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page["Topics"]:
            if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                return topic["TopicArn"]
    return sns.create_topic(Name=name)["TopicArn"]


# --- monitoring ------------------------------------------------------------------------

# Metric each alarm watches, picked by a word in the alarm's name; thresholds are the
# seed's guardrails (rollway.spec.Guardrails), so the alarms and the rollout agree.
_GUARDRAILS = Guardrails()
_ALARM_METRICS: tuple[tuple[str, str, str, float], ...] = (
    # (word in alarm name, metric name, statistic, threshold)
    ("error", "ErrorRate", "Average", _GUARDRAILS.monitor_error_rate * 100),
    ("dlq", "DLQMessages", "Maximum", float(_GUARDRAILS.dlq_messages)),
    ("slow", "ResponseTime", "Average", _GUARDRAILS.response_time_seconds * 1000),
)


def alarm_metric(alarm: str) -> tuple[str, str, float]:
    """(metric name, statistic, threshold) an alarm named ``alarm`` watches.

    An alarm whose name matches none of the known words watches a metric of its own name.
    """
    for word, metric, statistic, threshold in _ALARM_METRICS:
        if word in alarm.lower():
            return metric, statistic, threshold
    return alarm, "Sum", 0.0


def _alarms(cloudwatch: Any, targets: Targets, topic_arn: str) -> None:
    existing = {
        a["AlarmName"]
        for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=list(targets.alarms)
        )
        for a in page["MetricAlarms"]
    }
    for alarm in targets.alarms:
        if alarm in existing:
            continue
        metric, statistic, threshold = alarm_metric(alarm)
        cloudwatch.put_metric_alarm(
            AlarmName=alarm,
            Namespace=targets.metrics_namespace,
            MetricName=metric,
            Dimensions=[{"Name": "Service", "Value": targets.stable_service}],
            Statistic=statistic,
            Period=60,
            EvaluationPeriods=2,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=[topic_arn],
        )


def _dashboard(cloudwatch: Any, targets: Targets, balancer: _Balancer) -> None:
    try:
        cloudwatch.get_dashboard(DashboardName=targets.dashboard)
        return
    except ClientError as err:
        if error_code(err) != "ResourceNotFound":
            raise
    widgets = [
        _widget(
            targets.region,
            metric,
            statistic,
            [
                [targets.metrics_namespace, metric, "Service", service]
                for service in (targets.stable_service, targets.canary_service)
            ],
        )
        for metric, statistic, _ in map(alarm_metric, targets.alarms)
    ]
    lb_dimension = balancer.load_balancer_arn.split(":loadbalancer/", 1)[-1]
    widgets.append(
        _widget(
            targets.region,
            "ALB requests",
            "Sum",
            [["AWS/ApplicationELB", "RequestCount", "LoadBalancer", lb_dimension]],
        )
    )
    cloudwatch.put_dashboard(DashboardName=targets.dashboard, DashboardBody=json.dumps({"widgets": widgets}))


def _widget(region: str, title: str, statistic: str, metrics: list[list[str]]) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "stat": statistic,
            "period": 60,
            "metrics": metrics,
        },
    }
