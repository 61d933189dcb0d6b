"""Thin tasks over the ServiceDeployer port."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from prefect import task
from prefect.cache_policies import NONE

from rollway.aws.errors import AdapterError
from rollway.deadline import ReadBackUnanswered
from rollway.model import ServiceState
from rollway.ports import ServiceDeployer
from tasks import retry

# ECS's answers to UpdateService that a second ask gets again: no such cluster or service (the
# adapter names those TargetNotFound), a parameter or a task definition it refuses, a permission
# refused. Throttling, ServerException (5xx) and a dropped connection are worth another try.
FINAL_ECS = frozenset({
    "ClientException", "InvalidParameterException", "AccessDeniedException", "ClusterNotFoundException",
    "ServiceNotFoundException", "ServiceNotActiveException", "PlatformUnknownException",
    "PlatformTaskDefinitionIncompatibilityException", "UnsupportedFeatureException", "NamespaceNotFoundException",
    "UnrecognizedClientException", "InvalidClientTokenId", "ValidationException",
})
# A misspelt service or task definition (TargetNotFound), a denied permission: asked again, ECS
# answers the same, and the retries only delayed the refusal and logged it three times.
_transient = retry.unless(AdapterError, ValueError, denied=FINAL_ECS)


@task(name="describe-service", retries=2, retry_delay_seconds=1, cache_policy=NONE, retry_condition_fn=_transient)
def describe_service(deployer: ServiceDeployer, service: str) -> ServiceState:
    return deployer.describe(service)


@task(name="image-of-task-definition", retries=2, retry_delay_seconds=1, cache_policy=NONE,
      retry_condition_fn=_transient)
def image_of(deployer: ServiceDeployer, task_definition: str) -> str:
    return deployer.image_of(task_definition)


@task(name="deregister-task-definition", retries=2, retry_delay_seconds=1, cache_policy=NONE,
      retry_condition_fn=_transient)
def deregister_revision(deployer: ServiceDeployer, task_definition: str) -> None:
    # DeregisterTaskDefinition of a revision already INACTIVE succeeds: safe to retry.
    deployer.deregister_revision(task_definition)


@task(name="update-service", retries=2, retry_delay_seconds=2, cache_policy=NONE, retry_condition_fn=_transient)
def update_service(
    deployer: ServiceDeployer, service: str, task_definition: str | None = None, desired: int | None = None
) -> ServiceState:
    # UpdateService is idempotent for the same arguments, so retrying it is safe.
    return deployer.update_service(service, task_definition=task_definition, desired=desired)


@task(name="wait-services-stable", cache_policy=NONE)
def wait_stable(
    deployer: ServiceDeployer, services: Sequence[str], timeout_seconds: float = 600,
    expected: Mapping[str, str] | None = None, bound: str | None = None,
    between: Callable[[], None] | None = None, ends: tuple[type[Exception], ...] = (),
) -> Exception | None:
    # ``expected``: service -> the revision it was just pointed at, so a deployment ECS rolled
    # back (steady, on the old revision) fails the wait instead of passing it. ``bound``: the
    # parameter that sets ``timeout_seconds``, named by a read not answered by then.
    # ``between``: called before each poll after the first (``ServiceDeployer.wait_stable``).
    # ``ends``: what ``between`` raises to end the wait as planned (a shift's watch rolling back):
    # returned for the caller to raise outside the task. Raised here, Prefect logged the task as
    # failed, an ERROR line quoting it above the rollback it is part of.
    try:
        # Given only when there is one: a deployer's wait that takes no watch still serves the others.
        deployer.wait_stable(list(services), timeout_seconds, expected,
                             **({"between": between} if between is not None else {}))
    except ends as ended:
        return ended
    except ReadBackUnanswered as unanswered:
        if bound is None:
            raise
        raise unanswered.named(bound) from None
    return None
