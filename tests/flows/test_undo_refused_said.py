"""An undo AWS refuses, of a write whose answer was lost, is said as a sentence a person can act on
(tasks/undoable on the embedded AWS): what was being undone, on which resource, what AWS said, what
it leaves and what to do. The undo's log line was AWS's bare error text under "undo: ... failed".
"""
from __future__ import annotations

import logging
import time

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from prefect import flow
from prefect.transactions import transaction

import tasks.undoable
from rollway.aws.ecs import EcsDeployer
from rollway.aws.elbv2 import AlbRouter
from rollway.model import Weights
from tasks.undoable import deploy_revision, set_weights


class LaterStepFailed(RuntimeError):
    """A step after the shift, in the same transaction, failed."""


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def answers_lost_then_denied(client, operation: str, lost: int, endpoint: str):
    """Handlers for ``operation``: its first ``lost`` calls land and lose their answer, every later
    one AWS refuses with AccessDenied. Returns a function that unregisters them."""
    calls = []
    code = "AccessDeniedException" if operation == "UpdateService" else "AccessDenied"

    def before(**_):
        calls.append(operation)
        if len(calls) > lost:
            raise ClientError({"Error": {"Code": code, "Message": f"not authorized to perform {operation}"}},
                              operation)

    def after(**_):
        raise ReadTimeoutError(endpoint_url=endpoint)

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-call.{service}.{operation}", before)
    client.meta.events.register(f"after-call.{service}.{operation}", after)
    return lambda: (client.meta.events.unregister(f"before-call.{service}.{operation}", before),
                    client.meta.events.unregister(f"after-call.{service}.{operation}", after))


def undo_errors(caplog) -> str:
    return " ".join(r.getMessage() for r in caplog.records if r.name == "rollway.undo" and r.levelno >= logging.ERROR)


@flow
def shift_then_fail(router, weights, previous):
    with transaction():
        set_weights(router, weights, previous)
        raise LaterStepFailed("the flags could not follow")


def test_a_refused_undo_of_a_shift_whose_answer_was_lost_says_what_it_leaves_and_what_to_do(aws, caplog):
    elbv2 = aws.get_client("elbv2")
    router = AlbRouter(elbv2, aws.targets)
    before, shifted = Weights(stable=100, canary=0), Weights.canary_at(5)
    undo = answers_lost_then_denied(elbv2, "ModifyRule", 1, aws.endpoint_url)
    try:
        with caplog.at_level(logging.INFO, logger="rollway.undo"), pytest.raises(ReadTimeoutError):
            shift_then_fail(router, shifted, before)
    finally:
        undo()
    assert router.get_weights() == shifted
    said = undo_errors(caplog)
    assert ("could not undo the shift of the weights to 95/5 (stable/canary), whose answer was lost: setting them "
            "back to 100/0 was refused") in said, said
    assert "AWS refused elasticloadbalancing:ModifyRule (AccessDenied: not authorized to perform ModifyRule)" in said
    assert ("The load balancer holds 95/5: the canary takes 5 % of the traffic, and the bound feature flags may "
            "not have followed it") in said, said
    assert "roll the rollout back (`rollway abort`)" in said, said
    assert "undo: setting the weights back" not in said, said  # AWS's bare text is not said beside it


@flow
def deploy(deployer, service, image, base):
    return deploy_revision(deployer, service, image, base, base)


def test_a_refused_undo_of_a_pointing_whose_answer_was_lost_says_what_it_leaves_and_what_to_do(aws, caplog):
    ecs = aws.get_client("ecs")
    base, service = aws.topology.task_definition_arn, aws.targets.canary_service
    undo = answers_lost_then_denied(ecs, "UpdateService", tasks.undoable.UNDO_ATTEMPTS, aws.endpoint_url)
    try:
        with caplog.at_level(logging.INFO, logger="rollway.undo"), pytest.raises(ReadTimeoutError):
            deploy.with_options(retries=0)(EcsDeployer(ecs, aws.targets), service,
                                           f"{aws.topology.repository_uri}:2.0.0", base)
    finally:
        undo()
    runs = ecs.describe_services(cluster=aws.targets.cluster, services=[service])["services"][0]["taskDefinition"]
    assert runs != base  # the pointing landed, and its undo was refused
    said = undo_errors(caplog)
    assert (f"could not undo the pointing of ECS service {service} at {runs}, whose answer was lost: pointing it "
            f"back at {base} was refused") in said, said
    assert "AWS refused ecs:UpdateService (AccessDeniedException: not authorized to perform UpdateService)" in said
    assert f"{service} runs {runs}" in said, said
    assert f"roll the rollout back (`rollway abort`), which points {service} back at its previous revision" in said
    # Its tasks can start again: the revision it runs is not deregistered under it.
    assert ecs.describe_task_definition(taskDefinition=runs)["taskDefinition"]["status"] == "ACTIVE"
