"""A deploy whose RegisterTaskDefinition answer was lost points the canary at the revision it
made, and leaves no other (tasks/undoable.deploy_revision over EcsDeployer on the embedded AWS)."""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ReadTimeoutError
from prefect import flow

from rollway.aws.ecs import EcsDeployer
from tasks.undoable import deploy_revision


@flow
def deploy(deployer, service, image, base):
    return deploy_revision(deployer, service, image, base, base)


def test_a_deploy_whose_registration_answer_was_lost_runs_the_one_revision_it_made(aws):
    ecs = aws.get_client("ecs")
    base, service = aws.topology.task_definition_arn, aws.targets.canary_service

    def lose_answer(**_):  # registered on moto; the answer never arrives
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    ecs.meta.events.register("after-call.ecs.RegisterTaskDefinition", lose_answer)
    try:
        recorded = deploy(EcsDeployer(ecs, aws.targets), service, f"{aws.topology.repository_uri}:2.0.0", base)
    finally:
        ecs.meta.events.unregister("after-call.ecs.RegisterTaskDefinition", lose_answer)
    family = base.rsplit("/", 1)[1].rsplit(":", 1)[0]
    active = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    assert sorted(active) == sorted([base, recorded])
    runs = ecs.describe_services(cluster=aws.targets.cluster, services=[service])["services"][0]["taskDefinition"]
    assert runs == recorded


def test_a_deploy_whose_pointing_landed_but_lost_every_answer_leaves_the_canary_on_its_old_revision(aws, monkeypatch):
    # UpdateService lands and its answer is lost on every try: Prefect staged the pointing's undo
    # only on success, so the failed deploy deregistered the new revision while the canary ran it.
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    ecs = aws.get_client("ecs")
    base = aws.topology.task_definition_arn

    def lose_answer(**_):  # moto pointed the service; the answer never arrives
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    runs = deployed_as_pointing_answers(aws, lose_answer, ReadTimeoutError)
    assert runs == base
    status = ecs.describe_task_definition(taskDefinition=runs)["taskDefinition"]["status"]
    assert status == "ACTIVE"
    family = base.rsplit("/", 1)[1].rsplit(":", 1)[0]
    assert ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"] == [base]


def test_a_deploy_stopped_by_a_signal_as_its_pointing_lands_leaves_the_canary_on_its_revision_registered(aws):
    # A signal (here a BaseException raised as UpdateService's answer comes) stops the run with the
    # answer unread, and Prefect runs the undos: the registration's undo deregistered the revision
    # the canary had just been pointed at, which ECS then reports INACTIVE.
    class Stopped(BaseException):
        pass

    def stopped(**_):  # moto pointed the service; the process stops before reading the answer
        raise Stopped()

    runs = deployed_as_pointing_answers(aws, stopped, Stopped)
    ecs = aws.get_client("ecs")
    assert runs != aws.topology.task_definition_arn  # the pointing is left as the signal left it
    assert ecs.describe_task_definition(taskDefinition=runs)["taskDefinition"]["status"] == "ACTIVE"


def deployed_as_pointing_answers(aws, answered, raises) -> str:
    """A failed deploy of 2.0.0 on the canary whose UpdateService lands, then ``answered`` (an
    ``after-call`` handler) raises ``raises``; returns the revision the canary runs after it."""
    ecs = aws.get_client("ecs")
    base, service = aws.topology.task_definition_arn, aws.targets.canary_service
    ecs.meta.events.register("after-call.ecs.UpdateService", answered)
    try:
        with pytest.raises(raises):
            deploy.with_options(retries=0)(EcsDeployer(ecs, aws.targets), service,
                                           f"{aws.topology.repository_uri}:2.0.0", base)
    finally:
        ecs.meta.events.unregister("after-call.ecs.UpdateService", answered)
    return ecs.describe_services(cluster=aws.targets.cluster, services=[service])["services"][0]["taskDefinition"]
