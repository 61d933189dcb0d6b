"""EcsDeployer against the embedded AWS: image-only revisions, service updates, waiting."""

from __future__ import annotations

import pytest

from rollway.aws.ecs import READ_ONLY_FIELDS, EcsDeployer, registration_input, task_platform, waiter_schedule
from rollway.aws.errors import AdapterError, ServiceNotStable, TargetNotFound, TaskDefinitionInactive

NEW_IMAGE_TAG = "1.1.0"


@pytest.fixture
def deployer(aws) -> EcsDeployer:
    return EcsDeployer(aws.get_client("ecs"), aws.targets)


def _describe(aws, task_definition: str) -> tuple[dict, list]:
    answer = aws.get_client("ecs").describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
    return answer["taskDefinition"], answer.get("tags", [])


def test_new_revision_differs_from_its_base_only_by_image(aws, deployer):
    base_arn = aws.topology.task_definition_arn
    image = f"{aws.topology.repository_uri}:{NEW_IMAGE_TAG}"

    new_arn = deployer.register_revision(image, base_arn)

    base, base_tags = _describe(aws, base_arn)
    new, new_tags = _describe(aws, new_arn)
    assert new_arn != base_arn
    assert new["revision"] == base["revision"] + 1
    # The base's tags, and the token of the call that registered it (see test_ecs_lost_registration.py).
    assert [t for t in new_tags if t["key"] != "rollway:request"] == base_tags != []
    copied = set(base) - READ_ONLY_FIELDS
    # The base is realistic: the fields a careless copy tends to lose are really there.
    assert {"executionRoleArn", "taskRoleArn", "ephemeralStorage", "runtimePlatform", "volumes"} <= copied
    for field in sorted(copied - {"containerDefinitions"}):
        assert new.get(field) == base[field], field
    (base_container,) = base["containerDefinitions"]
    (new_container,) = new["containerDefinitions"]
    assert new_container["image"] == image
    for field in sorted(set(base_container) | set(new_container)):
        if field != "image":
            assert new_container.get(field) == base_container.get(field), field


def test_only_the_named_container_gets_the_new_image(aws, deployer):
    base, tags = _describe(aws, aws.topology.task_definition_arn)
    sidecar = {"name": "log-router", "image": "fluent/fluent-bit:2.2", "essential": False, "memory": 128}
    ecs = aws.get_client("ecs")
    two_containers = ecs.register_task_definition(
        family=base["family"],
        containerDefinitions=[*base["containerDefinitions"], sidecar],
        networkMode=base["networkMode"],
        requiresCompatibilities=base["requiresCompatibilities"],
        cpu=base["cpu"],
        memory=base["memory"],
    )["taskDefinition"]["taskDefinitionArn"]

    new_arn = deployer.register_revision("registry.example/edit:2.0.0", two_containers)

    images = {c["name"]: c["image"] for c in _describe(aws, new_arn)[0]["containerDefinitions"]}
    assert images == {aws.targets.container_name: "registry.example/edit:2.0.0", "log-router": sidecar["image"]}


def test_base_without_the_container_is_refused_by_name(aws):
    other = aws.targets.model_copy(update={"container_name": "no-such-container"})
    ecs = aws.get_client("ecs")
    before = ecs.list_task_definitions()["taskDefinitionArns"]
    with pytest.raises(TargetNotFound, match="no-such-container"):
        EcsDeployer(ecs, other).register_revision("repo/app:2", aws.topology.task_definition_arn)
    assert ecs.list_task_definitions()["taskDefinitionArns"] == before


def test_empty_image_is_refused_before_any_call(aws, deployer, watch_calls):
    calls = watch_calls(aws.get_client("ecs"))
    with pytest.raises(ValueError, match="image"):
        deployer.register_revision("  ", aws.topology.task_definition_arn)
    assert calls == []


def test_image_of_reads_the_rollouts_container_in_a_revision(aws, deployer):
    base, _ = _describe(aws, aws.topology.task_definition_arn)
    (container,) = base["containerDefinitions"]
    assert deployer.image_of(aws.topology.task_definition_arn) == container["image"]
    new_arn = deployer.register_revision("registry.example/edit:2.0.0", aws.topology.task_definition_arn)
    assert deployer.image_of(new_arn) == "registry.example/edit:2.0.0"
    other = EcsDeployer(aws.get_client("ecs"), aws.targets.model_copy(update={"container_name": "no-such-container"}))
    with pytest.raises(TargetNotFound, match="no-such-container"):
        other.image_of(new_arn)


def test_missing_base_is_named(deployer):
    with pytest.raises(TargetNotFound, match="no-such-family"):
        deployer.register_revision("repo/app:2", "no-such-family")


def test_access_denied_is_not_reported_as_not_found(aws):
    """Only ECS's own "cannot find it" reads as TargetNotFound; a permission problem says so."""
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    client = aws.get_client("ecs")
    stub = Stubber(client)
    stub.add_client_error("describe_task_definition", service_error_code="AccessDeniedException",
                          service_message="not authorized to perform ecs:DescribeTaskDefinition")
    with stub, pytest.raises(ClientError, match="AccessDeniedException") as denied:
        EcsDeployer(client, aws.targets).register_revision("repo/app:2", "webordinary-edit-task:1")
    assert not isinstance(denied.value, TargetNotFound)


def test_update_scale_and_describe_round_trip(aws, deployer):
    t = aws.targets
    stable = deployer.describe(t.stable_service)
    assert (stable.task_definition, stable.desired) == (aws.topology.task_definition_arn, 2)
    new_arn = deployer.register_revision(f"{aws.topology.repository_uri}:{NEW_IMAGE_TAG}", stable.task_definition)

    updated = deployer.update_service(t.canary_service, task_definition=new_arn, desired=1)

    assert (updated.task_definition, updated.desired) == (new_arn, 1)
    assert deployer.describe(t.canary_service) == updated
    scaled = deployer.update_service(t.canary_service, desired=0)
    assert (scaled.task_definition, scaled.desired) == (new_arn, 0)
    assert deployer.describe(t.stable_service) == stable
    with pytest.raises(ValueError):
        deployer.update_service(t.canary_service)


def test_describe_reads_the_target_groups_a_service_registers_its_tasks_in(aws, deployer):
    t = aws.targets
    assert deployer.describe(t.stable_service).target_groups == (aws.topology.stable_target_group_arn,)
    assert deployer.describe(t.canary_service).target_groups == (aws.topology.canary_target_group_arn,)
    aws.get_client("ecs").create_service(cluster=t.cluster, serviceName="edit-worker", desiredCount=0,
                                         taskDefinition=aws.topology.task_definition_arn)
    assert deployer.describe("edit-worker").target_groups == ()


def test_describe_names_a_missing_service(deployer):
    with pytest.raises(TargetNotFound, match="ghost-service"):
        deployer.describe("ghost-service")


def test_wait_stable_returns_for_steady_services(aws, deployer):
    deployer.update_service(aws.targets.canary_service, desired=1)
    deployer.wait_stable([aws.targets.stable_service, aws.targets.canary_service], timeout_seconds=5)


def test_wait_stable_names_the_services_on_failure(aws, deployer):
    # A service that does not exist is a terminal state for the waiter: it fails at once.
    with pytest.raises(ServiceNotStable) as caught:
        deployer.wait_stable([aws.targets.stable_service, "ghost-service"], timeout_seconds=1)
    assert caught.value.services == (aws.targets.stable_service, "ghost-service")
    assert "ghost-service" in str(caught.value)


def test_wait_stable_times_out_on_a_service_still_starting(aws, deployer):
    # moto counts a created service's tasks as pending until it is updated: never steady.
    ecs = aws.get_client("ecs")
    ecs.create_service(
        cluster=aws.targets.cluster,
        serviceName="still-starting",
        taskDefinition=aws.topology.task_definition_arn,
        desiredCount=1,
        launchType="FARGATE",
    )
    with pytest.raises(ServiceNotStable, match="still-starting"):
        deployer.wait_stable(["still-starting"], timeout_seconds=1)


def test_wait_stable_calls_its_watch_before_each_poll_and_ends_with_what_it_raises(aws, deployer, monkeypatch):
    """The canary serves traffic while it scales: the run's watch is called between DescribeServices
    polls (not before the first), and a rollback it raises ends the wait at once, not at the timeout."""
    ecs = aws.get_client("ecs")
    ecs.create_service(cluster=aws.targets.cluster, serviceName="still-starting",
                       taskDefinition=aws.topology.task_definition_arn, desiredCount=1, launchType="FARGATE")
    monkeypatch.setattr("rollway.aws.ecs.time.sleep", lambda seconds: None)  # the schedule's 15 s polls
    reads, real = [], deployer._describe_all
    monkeypatch.setattr(deployer, "_describe_all", lambda names, client: reads.append(names) or real(names, client))
    between = []

    class RolledBack(Exception):
        pass

    def watch():
        between.append(len(reads))
        if len(between) == 3:
            raise RolledBack("the canary failed the judge")

    with pytest.raises(RolledBack):
        deployer.wait_stable(["still-starting"], timeout_seconds=600, between=watch)
    assert between == [1, 2, 3] and len(reads) == 3
    # A wait that no look ends still times out as before, its watch called before every poll after the first.
    between.clear(), reads.clear()
    with pytest.raises(ServiceNotStable, match="still-starting"):
        deployer.wait_stable(["still-starting"], timeout_seconds=60, between=lambda: between.append(len(reads)))
    assert between == list(range(1, len(reads))) and len(reads) > 1


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [(1, (1, 1)), (2, (1, 2)), (10, (2, 5)), (60, (15, 4)), (600, (15, 40)), (0.5, (1, 1))],
)
def test_waiter_schedule_fits_the_timeout(timeout, expected):
    delay, attempts = waiter_schedule(timeout)
    assert (delay, attempts) == expected
    assert (attempts - 1) * delay <= max(timeout, 1)


def test_a_field_that_cannot_be_copied_is_refused_not_dropped():
    described = {"family": "f", "containerDefinitions": [], "revision": 3, "futureOutputOnlyField": 1}
    with pytest.raises(AdapterError, match="futureOutputOnlyField"):
        registration_input(described, [], frozenset({"family", "containerDefinitions"}))
    tags = [{"key": "k", "value": "v"}]
    kept = registration_input({"family": "f", "revision": 3}, tags, frozenset({"family", "tags"}))
    assert kept == {"family": "f", "tags": tags}


@pytest.mark.parametrize(("task_definition", "platform"), [
    ({"requiresCompatibilities": ["FARGATE"], "runtimePlatform": {"cpuArchitecture": "ARM64",
                                                                  "operatingSystemFamily": "LINUX"}}, "linux/arm64"),
    ({"requiresCompatibilities": ["FARGATE"]}, "linux/amd64"),  # Fargate's default
    ({"runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}},
     "windows/amd64"),
    ({"requiresCompatibilities": ["EC2"]}, None),  # the container instance decides
])
def test_the_platform_a_revisions_tasks_run_on_is_named_as_docker_names_it(task_definition, platform):
    assert task_platform(task_definition) == platform


def test_base_revision_reads_the_familys_latest_revision_its_image_and_platform(aws, deployer):
    base = deployer.base_revision(aws.targets.task_family)
    assert base.arn == aws.topology.task_definition_arn and base.platform == "linux/amd64"
    assert base.image == deployer.image_of(aws.topology.task_definition_arn)
    with pytest.raises(TargetNotFound):
        deployer.base_revision("no-such-family:1")


def test_a_service_refused_a_deregistered_revision_names_it(aws, deployer, ecs_refuses_inactive_revisions):
    """ECS answers "ClientException: TaskDefinition is inactive"; raised as it came, a rollback could
    not tell it from any other refusal (and said only botocore's words)."""
    gone = deployer.register_revision(f"{aws.topology.repository_uri}:{NEW_IMAGE_TAG}", aws.topology.task_definition_arn)
    aws.get_client("ecs").deregister_task_definition(taskDefinition=gone)
    canary = aws.targets.canary_service
    with pytest.raises(TaskDefinitionInactive, match=f"{gone} is INACTIVE .*{canary}") as refused:
        deployer.update_service(canary, task_definition=gone, desired=0)
    assert (refused.value.task_definition, refused.value.service) == (gone, canary)
    with pytest.raises(TargetNotFound, match="task definition 'webordinary-edit-tsak:1' not found"):
        deployer.update_service(canary, task_definition="webordinary-edit-tsak:1", desired=0)


def test_deregister_revision_marks_it_inactive(aws):
    from rollway.aws.ecs import EcsDeployer
    from rollway.aws.errors import TargetNotFound

    deployer = EcsDeployer(aws.get_client("ecs"), aws.targets)
    arn = deployer.register_revision(f"{aws.topology.repository_uri}:9.9.9", aws.topology.task_definition_arn)
    deployer.deregister_revision(arn)
    described = aws.get_client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert described["status"] == "INACTIVE"
    with pytest.raises(TargetNotFound):
        deployer.deregister_revision(arn.rsplit(":", 1)[0] + ":9999")


# --- wait_stable on answers moto cannot give: circuit breaker, failed tasks, events (Stubber) ---

OLD_TD = "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:7"
NEW_TD = "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:8"


def _ecs_service(name, td, running, desired, deployments, events=()):
    """A DescribeServices service as real ECS answers it (events newest first)."""
    return {"serviceName": name, "status": "ACTIVE", "taskDefinition": td, "desiredCount": desired,
            "runningCount": running, "pendingCount": 0, "deployments": deployments,
            "events": [{"id": str(i), "message": m} for i, m in enumerate(events)]}


def _ecs_deployment(td, rollout, running, desired, status="PRIMARY", reason=None):
    found = {"id": f"ecs-svc/{td[-1]}{status}", "status": status, "taskDefinition": td, "desiredCount": desired,
             "runningCount": running, "rolloutState": rollout}
    return found | ({"rolloutStateReason": reason} if reason else {})


@pytest.fixture
def stubbed(targets, monkeypatch):
    import boto3
    from botocore.stub import Stubber

    # The polls' sleeps are the schedule's, not what these tests are about.
    monkeypatch.setattr("rollway.aws.ecs.time.sleep", lambda seconds: None)
    client = boto3.client("ecs", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield EcsDeployer(client, targets), stub


def test_a_deployment_the_circuit_breaker_rolled_back_fails_the_wait_on_the_next_look(stubbed, targets):
    # ECS rolled the failed deployment back: one PRIMARY deployment, all tasks running, on the OLD
    # revision. botocore's services_stable waiter calls that steady; finalize then moved traffic.
    # The first read after the update may be stale (ECS is eventually consistent); the next is not.
    deployer, stub = stubbed
    name = targets.stable_service
    stub.add_response("update_service", {"service": _ecs_service(name, NEW_TD, 2, 2, [
        _ecs_deployment(NEW_TD, "IN_PROGRESS", 0, 2), _ecs_deployment(OLD_TD, "COMPLETED", 2, 2, "ACTIVE")])})
    for _ in range(2):
        stub.add_response("describe_services", {"services": [_ecs_service(name, OLD_TD, 2, 2, [
            _ecs_deployment(OLD_TD, "COMPLETED", 2, 2)], events=[
            f"(service {name}) rolling back to deployment ecs-svc/7PRIMARY.",
            f"(service {name}) (deployment ecs-svc/8PRIMARY) deployment failed: tasks failed to start."])]})
    deployer.update_service(name, task_definition=NEW_TD, desired=2)
    with pytest.raises(ServiceNotStable, match="rolling back to deployment") as caught:
        deployer.wait_stable([name], timeout_seconds=600)
    assert f"runs {OLD_TD}, not {NEW_TD}" in str(caught.value)
    assert not caught.value.timed_out and "600" not in str(caught.value)


def test_wait_stable_checks_the_revision_it_is_told_and_a_failed_deployment(stubbed, targets):
    deployer, stub = stubbed
    name = targets.stable_service
    steady_on_old = _ecs_service(name, OLD_TD, 2, 2, [_ecs_deployment(OLD_TD, "COMPLETED", 2, 2)])
    stub.add_response("describe_services", {"services": [steady_on_old]})
    stub.add_response("describe_services", {"services": [steady_on_old]})
    with pytest.raises(ServiceNotStable, match=r"task-definition/webordinary-edit-task:7, not webordinary-edit-task:8 \(rolled back"):
        deployer.wait_stable([name], timeout_seconds=5, expected={name: "webordinary-edit-task:8"})
    # The circuit breaker without rollback: the PRIMARY deployment is FAILED and starts no more tasks.
    stub.add_response("describe_services", {"services": [_ecs_service(name, NEW_TD, 0, 2, [_ecs_deployment(
        NEW_TD, "FAILED", 0, 2, reason="ECS deployment circuit breaker: tasks failed to start.")])]})
    with pytest.raises(ServiceNotStable, match="deployment .* failed: .*circuit breaker: tasks failed to start"):
        deployer.wait_stable([name], timeout_seconds=600, expected={name: NEW_TD})
    # Either form of the revision names the same one.
    stub.add_response("describe_services", {"services": [steady_on_old]})
    deployer.wait_stable([name], timeout_seconds=5, expected={name: "webordinary-edit-task:7"})


def test_a_timeout_quotes_what_ecs_says_about_the_tasks(stubbed, targets, monkeypatch):
    monkeypatch.setattr("rollway.aws.ecs.time.sleep", lambda _: None)
    deployer, stub = stubbed
    name = targets.canary_service
    why = f"(service {name}) is unable to consistently start tasks successfully."
    starting = _ecs_service(name, NEW_TD, 0, 1, [_ecs_deployment(NEW_TD, "IN_PROGRESS", 0, 1,
                            reason="ECS deployment ecs-svc/8 in progress.")], events=[why, "older event", "old", "oldest"])
    for _ in range(waiter_schedule(30)[1]):
        stub.add_response("describe_services", {"services": [starting]})
    with pytest.raises(ServiceNotStable) as caught:
        deployer.wait_stable([name], timeout_seconds=30)
    message = str(caught.value)
    assert caught.value.timed_out and "after 30 s" in message
    assert "0/1 tasks running" in message and "ECS deployment ecs-svc/8 in progress" in message
    assert why in message and "oldest" not in message, "the newest three events only"
    stub.assert_no_pending_responses()


def test_access_denied_while_waiting_is_raised_as_it_came(stubbed, targets):
    from botocore.exceptions import ClientError

    deployer, stub = stubbed
    stub.add_client_error("describe_services", service_error_code="AccessDeniedException",
                          service_message="not authorized to perform: ecs:DescribeServices")
    with pytest.raises(ClientError, match="AccessDeniedException") as caught:
        deployer.wait_stable([targets.stable_service], timeout_seconds=600)
    assert not isinstance(caught.value, ServiceNotStable)


def test_a_missing_service_is_named_at_once_not_reported_as_a_timeout(aws, deployer):
    import time

    start = time.monotonic()
    with pytest.raises(TargetNotFound, match="'ghost-service' not found") as caught:
        deployer.wait_stable([aws.targets.stable_service, "ghost-service"], timeout_seconds=600)
    assert time.monotonic() - start < 60  # a timeout would take the 600 s
    assert isinstance(caught.value, ServiceNotStable) and not caught.value.timed_out
    assert "600" not in str(caught.value)


def test_a_service_pointed_at_a_new_revision_is_stable_on_it(aws, deployer):
    # No false alarm on the embedded AWS: the revision just deployed is the one running.
    t = aws.targets
    arn = deployer.register_revision(f"{aws.topology.repository_uri}:{NEW_IMAGE_TAG}", aws.topology.task_definition_arn)
    deployer.update_service(t.canary_service, task_definition=arn, desired=1)
    deployer.wait_stable([t.stable_service, t.canary_service], timeout_seconds=5)


def test_a_stale_first_read_after_the_update_is_not_taken_for_a_rollback(stubbed, targets):
    """ECS's API is eventually consistent: the read right after UpdateService may still show the
    old revision, steady. That is not a circuit-breaker rollback, and the wait goes on."""
    deployer, stub = stubbed
    name = targets.stable_service
    stub.add_response("update_service", {"service": _ecs_service(name, NEW_TD, 2, 2, [
        _ecs_deployment(NEW_TD, "IN_PROGRESS", 0, 2), _ecs_deployment(OLD_TD, "COMPLETED", 2, 2, "ACTIVE")])})
    stub.add_response("describe_services", {"services": [_ecs_service(name, OLD_TD, 2, 2, [
        _ecs_deployment(OLD_TD, "COMPLETED", 2, 2)])]})
    stub.add_response("describe_services", {"services": [_ecs_service(name, NEW_TD, 2, 2, [
        _ecs_deployment(NEW_TD, "IN_PROGRESS", 1, 2), _ecs_deployment(OLD_TD, "COMPLETED", 1, 2, "ACTIVE")])]})
    stub.add_response("describe_services", {"services": [_ecs_service(name, NEW_TD, 2, 2, [
        _ecs_deployment(NEW_TD, "COMPLETED", 2, 2)])]})
    deployer.update_service(name, task_definition=NEW_TD, desired=2)
    deployer.wait_stable([name], 600, {name: NEW_TD})
    stub.assert_no_pending_responses()


def test_a_wait_with_room_for_one_look_still_names_a_circuit_breaker_rollback(stubbed, targets):
    """A 1 s timeout allows a single look: it is the answer, not a stale read to look past."""
    deployer, stub = stubbed
    name = targets.stable_service
    stub.add_response("describe_services", {"services": [_ecs_service(name, OLD_TD, 2, 2, [
        _ecs_deployment(OLD_TD, "COMPLETED", 2, 2)])]})
    with pytest.raises(ServiceNotStable, match=r"runs .*:7, not .*:8 \(rolled back") as caught:
        deployer.wait_stable([name], timeout_seconds=1, expected={name: NEW_TD})
    assert not caught.value.timed_out


def fifty_tagged(aws) -> str:
    """A revision of the family carrying 50 tags of its own, ECS's limit per resource (a team's
    cost, ownership and compliance tags); returns its ARN."""
    ecs = aws.get_client("ecs")
    base = ecs.describe_task_definition(taskDefinition=aws.topology.task_definition_arn)["taskDefinition"]
    arguments = registration_input(base, [{"key": f"team:tag-{i:02d}", "value": str(i)} for i in range(50)],
                                   EcsDeployer(ecs, aws.targets)._registerable_fields())
    return ecs.register_task_definition(**arguments)["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture
def ecs_tag_limit(aws):
    """ECS's refusal of a registration asking for more than 50 tags (moto takes any number)."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    def refuse(params, **_):
        if len(params.get("tags", [])) > 50:
            raise ClientError({"Error": {"Code": "InvalidParameterException", "Message": "Too many tags: a resource "
                                         "takes at most 50"}}, "RegisterTaskDefinition")

    with on_operation(aws.get_client("ecs"), "before-parameter-build", refuse, operation="RegisterTaskDefinition"):
        yield


def test_a_base_with_fifty_tags_gets_a_copy_with_all_its_tags_and_no_request_token(aws, deployer, ecs_tag_limit,
                                                                                 caplog):
    # rollway's own rollway:request tag made the copy's 51st: ECS refused the registration, after
    # the release was built and pushed. The base's tags are the team's (cost allocation, an SCP or
    # ABAC policy may require them): they are all kept, and the token, which only helps find a
    # revision whose answer was lost, is left off, saying so.
    base_arn = fifty_tagged(aws)
    new_arn = deployer.register_revision(f"{aws.topology.repository_uri}:{NEW_IMAGE_TAG}", base_arn)
    assert new_arn != base_arn
    assert _describe(aws, new_arn)[1] == _describe(aws, base_arn)[1]
    assert "rollway:request" in caplog.text and "50 tags" in caplog.text, caplog.text


def test_a_base_with_fifty_tags_one_of_them_an_older_request_token_keeps_the_others_and_a_new_token(
        aws, deployer, ecs_tag_limit):
    # A base rollway registered carries an older call's token: replacing it keeps the count at 50.
    first = deployer.register_revision(f"{aws.topology.repository_uri}:1.0.9", aws.topology.task_definition_arn)
    base_tags = [t for t in _describe(aws, first)[1] if t["key"] != "rollway:request"]
    ecs = aws.get_client("ecs")
    padding = [{"key": f"team:tag-{i:02d}", "value": str(i)} for i in range(49 - len(base_tags))]
    ecs.tag_resource(resourceArn=first, tags=padding)
    assert len(_describe(aws, first)[1]) == 50
    new_arn = deployer.register_revision(f"{aws.topology.repository_uri}:{NEW_IMAGE_TAG}", first)
    new_tags = _describe(aws, new_arn)[1]
    assert len(new_tags) == 50
    key = lambda tag: tag["key"]  # noqa: E731
    assert sorted((t for t in new_tags if t["key"] != "rollway:request"), key=key) == sorted(base_tags + padding, key=key)
    assert [t["value"] for t in new_tags if t["key"] == "rollway:request"] != \
        [t["value"] for t in _describe(aws, first)[1] if t["key"] == "rollway:request"]


def test_aws_reserved_tags_of_the_base_are_not_copied_and_the_team_tags_are(aws, deployer, caplog):
    """A base revision CloudFormation made carries its aws:cloudformation:* tags: copied into the
    registration, real ECS refuses it ("aws:" is a reserved prefix), after the release was built
    and pushed. moto takes them, so what rollway sends is what is checked here."""
    from tests.botocore_events import on_operation

    ecs = aws.get_client("ecs")
    base_arn = aws.topology.task_definition_arn
    reserved = [{"key": "aws:cloudformation:stack-name", "value": "edit"}, {"key": "AWS:Custom", "value": "x"}]
    ecs.tag_resource(resourceArn=base_arn, tags=[*reserved, {"key": "team", "value": "edit"}])
    sent: list[list[dict]] = []
    with on_operation(ecs, "before-parameter-build", lambda params, **_: sent.append(params.get("tags", [])),
                      operation="RegisterTaskDefinition"):
        new_arn = deployer.register_revision(f"{aws.topology.repository_uri}:{NEW_IMAGE_TAG}", base_arn)

    [tags] = sent
    assert not [t for t in tags if t["key"].lower().startswith("aws:")], tags
    assert {"key": "team", "value": "edit"} in tags and {"key": "team", "value": "edit"} in _describe(aws, new_arn)[1]
    assert caplog.text.count("aws:cloudformation:stack-name") <= 1


def test_a_deregistered_revision_is_copied_whole_and_its_copy_found_again(aws, deployer, ecs_refuses_inactive_revisions):
    """ECS points no service at an INACTIVE revision; its copy, a new ACTIVE revision, runs the same
    thing (the image by the same digest, the roles, sizes, tags), and names what it copies."""
    image = f"{aws.topology.repository_uri}@sha256:{'a' * 64}"
    gone = deployer.register_revision(image, aws.topology.task_definition_arn)
    aws.get_client("ecs").deregister_task_definition(taskDefinition=gone)
    assert deployer.copy_of(gone) is None

    copy = deployer.copy_revision(gone)

    old, old_tags = _describe(aws, gone)
    new, new_tags = _describe(aws, copy)
    assert new["status"] == "ACTIVE" and new["family"] == old["family"] and new["revision"] > old["revision"]
    for field in sorted(set(old) - READ_ONLY_FIELDS):
        assert new.get(field) == old[field], field
    assert new["containerDefinitions"][0]["image"] == image
    assert [t for t in new_tags if t["key"] not in ("rollway:request", "rollway:copy-of")] == [
        t for t in old_tags if t["key"] != "rollway:request"] != []
    assert {"key": "rollway:copy-of", "value": gone} in new_tags
    assert deployer.copy_of(gone) == copy and deployer.copied_from(copy) == gone and deployer.copied_from(gone) is None
    deployer.update_service(aws.targets.stable_service, task_definition=copy)
    assert ecs_refuses_inactive_revisions == []


def test_a_deregistered_revision_with_fifty_tags_is_copied_with_them_all(aws, deployer, ecs_tag_limit, caplog):
    # rollway:copy-of made the copy's 51st tag, which ECS refuses: finalize could not go on.
    base_arn = fifty_tagged(aws)
    aws.get_client("ecs").deregister_task_definition(taskDefinition=base_arn)
    copy = deployer.copy_revision(base_arn)
    assert _describe(aws, copy)[1] == _describe(aws, base_arn)[1]
    assert "rollway:copy-of" in caplog.text and "50 tags" in caplog.text, caplog.text


def being_deleted(aws, task_definition: str) -> None:
    """``task_definition`` as DeleteTaskDefinitions leaves it while a service still runs it:
    DELETE_IN_PROGRESS, still described, taken by no service. moto drops a deleted revision at
    once (DescribeTaskDefinition then finds none), so the status is set on its backend after the
    deregistration that must come first."""
    from moto.ecs.models import ecs_backends

    aws.get_client("ecs").deregister_task_definition(taskDefinition=task_definition)
    region, account = task_definition.split(":")[3:5]
    family, revision = task_definition.rsplit("/", 1)[-1].rsplit(":", 1)
    ecs_backends[account][region].task_definitions[family][int(revision)].status = "DELETE_IN_PROGRESS"


def test_a_revision_being_deleted_is_read_as_such_and_copied_whole(aws, deployer):
    """DeleteTaskDefinitions leaves a revision DELETE_IN_PROGRESS while a service runs it: read as
    such (not taken for ACTIVE, which finalize would point the stable service at), and copied."""
    gone = deployer.register_revision(f"{aws.topology.repository_uri}:{NEW_IMAGE_TAG}", aws.topology.task_definition_arn)
    being_deleted(aws, gone)
    assert deployer.revision_status(gone) == "DELETE_IN_PROGRESS"
    copy = deployer.copy_revision(gone)
    old, new = _describe(aws, gone)[0], _describe(aws, copy)[0]
    assert new["status"] == "ACTIVE" and new["containerDefinitions"] == old["containerDefinitions"]
    assert deployer.copy_of(gone) == copy and deployer.copied_from(copy) == gone


def test_the_copy_of_a_revision_is_found_however_many_revisions_were_registered_since(aws, deployer):
    """Only the family's ten newest revisions were searched: a finalize stopped after registering
    the copy, before recording it, and resumed after eleven registrations (CI builds) registered
    a second copy."""
    gone = deployer.register_revision(f"{aws.topology.repository_uri}:{NEW_IMAGE_TAG}", aws.topology.task_definition_arn)
    aws.get_client("ecs").deregister_task_definition(taskDefinition=gone)
    copy = deployer.copy_revision(gone)
    for i in range(11):
        deployer.register_revision(f"{aws.topology.repository_uri}:1.2.{i}", aws.topology.task_definition_arn)
    assert deployer.copy_of(gone) == copy


def test_the_search_for_a_copy_is_bounded_however_many_revisions_were_registered_since(
        aws, deployer, every_call, monkeypatch, caplog):
    """Every revision of the family registered after the original was described, one
    DescribeTaskDefinition each, inside finalize's 30-s read: a family with thousands of them (a
    CI's builds) ran the read out, or into ECS's throttling of the account, on every finalize of a
    deregistered revision (which searches before it registers the first copy). The newest
    ``COPY_LOOKBACK`` are searched, newest first, and the search ends at the copy it finds."""
    import rollway.aws.ecs as ecs_adapter

    monkeypatch.setattr(ecs_adapter, "COPY_LOOKBACK", 4, raising=False)
    base = aws.topology.task_definition_arn
    gone = deployer.register_revision(f"{aws.topology.repository_uri}:{NEW_IMAGE_TAG}", base)
    aws.get_client("ecs").deregister_task_definition(taskDefinition=gone)
    for i in range(7):
        deployer.register_revision(f"{aws.topology.repository_uri}:1.2.{i}", base)
    calls = every_call("ecs")
    with caplog.at_level("WARNING"):
        assert deployer.copy_of(gone) is None
    assert calls.count("DescribeTaskDefinition") == 1 + 4, calls
    assert f"the 4 newest revisions registered since {gone}" in caplog.text, caplog.text

    copy = deployer.copy_revision(gone)
    deployer.register_revision(f"{aws.topology.repository_uri}:1.3.0", base)
    calls = every_call("ecs")
    assert deployer.copy_of(gone) == copy
    assert calls.count("DescribeTaskDefinition") == 1 + 2, calls


_SAID = "Unable to describe\n12:00:00 INFO rollout done\x1b[2K"


@pytest.mark.parametrize("operation, code, call, named", [
    ("DescribeTaskDefinition", "ClientException", lambda d: d.image_of("webordinary-edit-task:1"),
     "task definition 'webordinary-edit-task:1' not found"),
    ("DescribeServices", "ClusterNotFoundException", lambda d: d.describe("webordinary-edit-service-canary"),
     "ECS cluster 'webordinary-edit-cluster' not found"),
    ("DescribeServices", "ServiceNotFoundException", lambda d: d.describe("webordinary-edit-service-canary"),
     "ECS service 'webordinary-edit-service-canary' not found: in cluster webordinary-edit-cluster"),
])
def test_what_ecs_could_not_find_is_named_with_awss_words_on_one_line_escaped(aws, deployer, operation, code, call,
                                                                              named):
    """A rollout's preflight and a rollback's page quote it: boto's text carried ECS's message raw,
    a line break beginning a log line of its own and an escape sequence acting on the terminal."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    def refused(**_):
        raise ClientError({"Error": {"Code": code, "Message": _SAID}}, operation)

    with on_operation(aws.get_client("ecs"), "before-call", refused, operation=operation), \
            pytest.raises(TargetNotFound) as failed:
        call(deployer)
    said = str(failed.value)
    assert said == f"{named}: {code} on {operation}: Unable to describe 12:00:00 INFO rollout done\\x1b[2K", said
