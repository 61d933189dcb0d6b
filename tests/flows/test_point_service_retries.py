"""point_service (tasks/undoable.py) tries again what another ask could get past, and only that.

It used to have no retries: one throttled UpdateService failed the deploy, and its transaction
deregistered the revision just registered. Then it had Prefect's task retries, which roll the
deploy's transaction back at the first failed try and retry all the same (the last test).
"""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from rollway.aws.ecs import EcsDeployer
from rollway.aws.errors import TargetNotFound
from tasks.undoable import point_service


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """The wait between tries is not what is tested: what is tried again is."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


quick_point = point_service


class RefusesFirst:
    """An EcsDeployer on moto whose first ``failures`` UpdateService calls ECS answers with ``code``."""

    def __init__(self, deployer: EcsDeployer, code: str, failures: int) -> None:
        self.deployer, self.code, self.failures, self.calls = deployer, code, failures, 0

    def update_service(self, service, *, task_definition=None, desired=None):
        self.calls += 1
        if self.calls <= self.failures:
            raise ClientError({"Error": {"Code": self.code, "Message": f"{self.code} from ECS"}}, "UpdateService")
        return self.deployer.update_service(service, task_definition=task_definition, desired=desired)


def new_revision(aws) -> str:
    deployer = EcsDeployer(aws.get_client("ecs"), aws.targets)
    return deployer.register_revision(f"{aws.topology.repository_uri}:2.0.0", aws.topology.task_definition_arn)


def service_runs(aws) -> str:
    ecs = aws.get_client("ecs")
    found = ecs.describe_services(cluster=aws.targets.cluster, services=[aws.targets.canary_service])
    return found["services"][0]["taskDefinition"]


@pytest.mark.parametrize("code", ["ThrottlingException", "ServerException", "ServiceUnavailableException"])
def test_a_transient_refusal_is_tried_again_and_the_service_is_pointed(aws, code):
    revision = new_revision(aws)
    deployer = RefusesFirst(EcsDeployer(aws.get_client("ecs"), aws.targets), code, failures=2)
    quick_point(deployer, aws.targets.canary_service, revision, aws.topology.task_definition_arn)
    assert deployer.calls == 3
    assert service_runs(aws) == revision


class Counting:
    """An EcsDeployer on moto that counts its update_service calls (each one UpdateService,
    which botocore may itself send more than once)."""

    def __init__(self, deployer: EcsDeployer) -> None:
        self.deployer, self.calls = deployer, 0

    def update_service(self, service, *, task_definition=None, desired=None):
        self.calls += 1
        return self.deployer.update_service(service, task_definition=task_definition, desired=desired)


def test_a_dropped_connection_is_tried_again(aws):
    ecs = aws.get_client("ecs")
    revision = new_revision(aws)
    deployer = Counting(EcsDeployer(ecs, aws.targets))

    def drop(request, **_):  # every attempt botocore makes of the first call loses its connection
        if deployer.calls == 1:
            raise ConnectionClosedError(endpoint_url=request.url)

    ecs.meta.events.register("before-send.ecs.UpdateService", drop)
    try:
        quick_point(deployer, aws.targets.canary_service, revision, aws.topology.task_definition_arn)
    finally:
        ecs.meta.events.unregister("before-send.ecs.UpdateService", drop)
    assert deployer.calls == 2
    assert service_runs(aws) == revision


@pytest.mark.parametrize("code", ["AccessDeniedException", "InvalidParameterException", "ClientException"])
def test_a_final_refusal_is_not_tried_again(aws, code):
    deployer = RefusesFirst(EcsDeployer(aws.get_client("ecs"), aws.targets), code, failures=1)
    with pytest.raises(ClientError, match=code):
        quick_point(deployer, aws.targets.canary_service, new_revision(aws), aws.topology.task_definition_arn)
    assert deployer.calls == 1


def test_a_cluster_that_does_not_exist_is_asked_once(aws, watch_calls):
    ecs = aws.get_client("ecs")
    revision = new_revision(aws)
    deployer = EcsDeployer(ecs, aws.targets.model_copy(update={"cluster": "no-such-cluster"}))
    calls = watch_calls(ecs)
    with pytest.raises(TargetNotFound, match="no-such-cluster"):
        quick_point(deployer, aws.targets.canary_service, revision, aws.topology.task_definition_arn)
    assert calls.count("UpdateService") == 1, calls


def test_a_throttled_pointing_inside_the_deploy_keeps_the_revision_it_points_at(aws):
    # Prefect rolls a transaction back on a task's first failed attempt, then retries the task:
    # with Prefect's retries the throttle deregistered the new revision, and the retry pointed
    # the canary at it (an INACTIVE revision, which real ECS refuses to start tasks of).
    from prefect import flow

    from tasks.undoable import deploy_revision

    ecs = aws.get_client("ecs")
    base = aws.topology.task_definition_arn
    deployer = EcsDeployer(ecs, aws.targets)
    refusing = RefusesFirst(deployer, "ThrottlingException", failures=1)
    refusing.register_revision = deployer.register_revision
    refusing.deregister_revision = deployer.deregister_revision

    @flow
    def deploy():
        return deploy_revision(refusing, aws.targets.canary_service, f"{aws.topology.repository_uri}:2.0.0", base, base)

    revision = deploy()

    assert refusing.calls == 2 and service_runs(aws) == revision
    assert ecs.describe_task_definition(taskDefinition=revision)["taskDefinition"]["status"] == "ACTIVE"
