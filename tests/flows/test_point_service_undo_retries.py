"""point_service's undo (tasks/undoable._restore_task_definition) tries again what another ask
could get past, and only that, on the embedded AWS.

It used to make one UpdateService call: a throttle or a dropped connection left the canary on
the new revision while the rest of the deploy was undone.
"""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from prefect import flow
from prefect.transactions import transaction

import tasks.undoable
from rollway.aws.ecs import EcsDeployer
from tasks.undoable import point_service
from tests.flows.test_point_service_retries import new_revision, service_runs


class LaterStepFailed(RuntimeError):
    """A step after the pointing, in the same transaction, failed."""


@flow
def point_then_fail(deployer, service: str, revision: str, previous: str):
    with transaction():
        point_service(deployer, service, revision, previous)
        raise LaterStepFailed("a later step failed")


class Counting:
    """An EcsDeployer on moto that counts its update_service calls; those numbered in ``refuse``
    ECS answers with ``code`` (none: only counted)."""

    def __init__(self, deployer: EcsDeployer, code: str | None = None, refuse: tuple[int, ...] = ()) -> None:
        self.deployer, self.code, self.refuse, self.calls = deployer, code, refuse, 0

    def update_service(self, service, *, task_definition=None, desired=None):
        self.calls += 1
        if self.calls in self.refuse:
            raise ClientError({"Error": {"Code": self.code, "Message": f"{self.code} from ECS"}}, "UpdateService")
        return self.deployer.update_service(service, task_definition=task_definition, desired=desired)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """The undo's wait between tries is not what is tested: what is tried again is."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def test_an_undo_whose_connection_drops_is_tried_again(aws):
    ecs = aws.get_client("ecs")
    previous, revision = aws.topology.task_definition_arn, new_revision(aws)
    deployer = Counting(EcsDeployer(ecs, aws.targets))

    def drop(request, **_):  # every attempt botocore makes of the undo's first call loses its connection
        if deployer.calls == 2:
            raise ConnectionClosedError(endpoint_url=request.url)

    ecs.meta.events.register("before-send.ecs.UpdateService", drop)
    try:
        with pytest.raises(LaterStepFailed):
            point_then_fail(deployer, aws.targets.canary_service, revision, previous)
    finally:
        ecs.meta.events.unregister("before-send.ecs.UpdateService", drop)
    assert deployer.calls == 3  # the pointing, the dropped undo, the undo again
    assert service_runs(aws) == previous, "the canary was left on the new revision"


@pytest.mark.parametrize("code", ["ThrottlingException", "ServerException"])
def test_an_undo_refused_for_now_is_tried_again(aws, code):
    previous, revision = aws.topology.task_definition_arn, new_revision(aws)
    deployer = Counting(EcsDeployer(aws.get_client("ecs"), aws.targets), code, refuse=(2,))
    with pytest.raises(LaterStepFailed):
        point_then_fail(deployer, aws.targets.canary_service, revision, previous)
    assert deployer.calls == 3
    assert service_runs(aws) == previous, "the canary was left on the new revision"


def test_an_undo_refused_for_good_is_asked_once(aws):
    previous, revision = aws.topology.task_definition_arn, new_revision(aws)
    deployer = Counting(EcsDeployer(aws.get_client("ecs"), aws.targets), "AccessDeniedException", refuse=(2, 3))
    with pytest.raises(LaterStepFailed):
        point_then_fail(deployer, aws.targets.canary_service, revision, previous)
    assert deployer.calls == 2  # the pointing, and one undo: a second ask is denied again
    assert service_runs(aws) == revision


def test_an_undo_that_keeps_failing_is_tried_three_times(aws):
    previous, revision = aws.topology.task_definition_arn, new_revision(aws)
    deployer = Counting(EcsDeployer(aws.get_client("ecs"), aws.targets), "ThrottlingException", refuse=(2, 3, 4, 5))
    with pytest.raises(LaterStepFailed):
        point_then_fail(deployer, aws.targets.canary_service, revision, previous)
    assert deployer.calls == 1 + tasks.undoable.UNDO_ATTEMPTS
    assert service_runs(aws) == revision


class RefusingDeregister:
    """An EcsDeployer on moto whose deregister_revision ECS answers with ``code`` every time, counted."""

    def __init__(self, deployer: EcsDeployer, code: str) -> None:
        self.deployer, self.code, self.calls = deployer, code, 0

    def register_revision(self, image, base):
        return self.deployer.register_revision(image, base)

    def deregister_revision(self, task_definition):
        self.calls += 1
        raise ClientError({"Error": {"Code": self.code, "Message": f"{self.code} from ECS"}},
                          "DeregisterTaskDefinition")


@flow
def register_then_fail(deployer, image: str, base: str):
    from tasks.undoable import register_revision

    with transaction():
        register_revision(deployer, image, base)
        raise LaterStepFailed("a later step failed")


@pytest.mark.parametrize("code, asked", [("AccessDeniedException", 1), ("ThrottlingException", 3)])
def test_a_registrations_undo_asks_again_only_what_another_ask_could_get_past(aws, code, asked):
    deployer = RefusingDeregister(EcsDeployer(aws.get_client("ecs"), aws.targets), code)
    with pytest.raises(LaterStepFailed):
        register_then_fail(deployer, f"{aws.topology.repository_uri}:2.0.0", aws.topology.task_definition_arn)
    assert deployer.calls == asked


@flow
def point_on_clock_then_fail(deployer, service: str, revision: str, previous: str, sleep):
    with transaction():
        point_service(deployer, service, revision, previous, sleep=sleep)
        raise LaterStepFailed("a later step failed")


def test_the_pointing_and_its_undo_wait_between_tries_on_the_rollouts_clock(aws, monkeypatch):
    # Their waits were the wall clock's, whatever clock the rollout ran on: a fake clock's run (a
    # test, the demo's sped-up clock) waited real seconds between tries.
    from rollway.fakes import FakeClock

    waited: list[float] = []
    monkeypatch.setattr(time, "sleep", waited.append)
    clock, previous, revision = FakeClock(), aws.topology.task_definition_arn, new_revision(aws)
    start = clock.now()
    deployer = Counting(EcsDeployer(aws.get_client("ecs"), aws.targets), "ThrottlingException", refuse=(1, 3))
    with pytest.raises(LaterStepFailed):
        point_on_clock_then_fail(deployer, aws.targets.canary_service, revision, previous, clock.sleep)
    assert deployer.calls == 4  # the pointing tried twice, its undo twice
    assert service_runs(aws) == previous
    assert waited == []
    assert clock.now() - start == 2 * tasks.undoable.UNDO_FIRST_DELAY_SECONDS
