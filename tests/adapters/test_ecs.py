"""EcsDeployer against the embedded AWS: image-only revisions, service updates, waiting."""

from __future__ import annotations

import pytest

from rollway.aws.ecs import READ_ONLY_FIELDS, EcsDeployer, registration_input, waiter_schedule
from rollway.aws.errors import AdapterError, ServiceNotStable, TargetNotFound

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
    assert new_tags == base_tags != []
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
