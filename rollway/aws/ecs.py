"""ServiceDeployer on ECS: task definition revisions that differ only by image, and services.

A new revision is a copy of a base revision with one container's image swapped. Which
fields can be copied is read from botocore's model of RegisterTaskDefinition, so a field
AWS adds later is carried over too instead of being silently dropped.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from rollway.aws.errors import AdapterError, ServiceNotStable, TargetNotFound
from rollway.model import ServiceState
from rollway.targets import Targets

# DescribeTaskDefinition fields that RegisterTaskDefinition does not accept: AWS sets them.
READ_ONLY_FIELDS = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)
# The waiter polls at most this often; real ECS needs minutes, so finer polling only adds calls.
_MAX_DELAY_SECONDS = 15


class EcsDeployer:
    """Registers image-only revisions and points and scales the services of one cluster.

    Args:
        client: a boto3 ``ecs`` client.
        targets: the cluster and the name of the container whose image is swapped.
    """

    def __init__(self, client: Any, targets: Targets) -> None:
        self._client = client
        self._targets = targets

    def describe(self, service: str) -> ServiceState:
        """The service as ECS reports it.

        Raises:
            TargetNotFound: no such cluster, or no such service in it (or it was deleted).
        """
        try:
            found = self._client.describe_services(cluster=self._targets.cluster, services=[service])
        except ClientError as err:
            raise _missing(err, self._targets.cluster, service) from err
        for item in found["services"]:
            if item["status"] != "INACTIVE":
                return _service_state(item)
        raise TargetNotFound("ECS service", service, f"in cluster {self._targets.cluster}")

    def register_revision(self, image: str, base_task_definition: str) -> str:
        """Register a copy of ``base_task_definition`` whose only change is the image.

        Args:
            image: the new image of the container ``targets.container_name``.
            base_task_definition: family, family:revision or ARN of the revision to copy.

        Returns:
            The new revision's ARN.

        Raises:
            ValueError: ``image`` is empty (raised before any call).
            TargetNotFound: the base does not exist, or has no container of that name.
        """
        if not image or not image.strip():
            raise ValueError("image must not be empty")
        try:
            described = self._client.describe_task_definition(
                taskDefinition=base_task_definition, include=["TAGS"]
            )
        except ClientError as err:
            raise _named(err, base_task_definition) from err
        arguments = registration_input(
            described["taskDefinition"],
            described.get("tags", []),
            self._registerable_fields(),
        )
        _swap_image(arguments, self._targets.container_name, image, base_task_definition)
        return self._client.register_task_definition(**arguments)["taskDefinition"]["taskDefinitionArn"]

    def check_container(self, task_definition: str) -> None:
        """Read-only: raise unless ``task_definition`` has the container ``targets.container_name``,
        the one ``register_revision`` puts the new image in (for the check before any write).

        Raises:
            TargetNotFound: no such task definition, or no container of that name in it.
        """
        try:
            described = self._client.describe_task_definition(taskDefinition=task_definition)
        except ClientError as err:
            raise _named(err, task_definition) from err
        _container(described["taskDefinition"], self._targets.container_name, task_definition)

    def deregister_revision(self, task_definition: str) -> None:
        """Mark a revision INACTIVE: the undo of ``register_revision`` (running tasks keep it).

        Raises:
            TargetNotFound: no such revision.
        """
        try:
            self._client.deregister_task_definition(taskDefinition=task_definition)
        except ClientError as err:
            raise _named(err, task_definition) from err

    def update_service(
        self, service: str, *, task_definition: str | None = None, desired: int | None = None
    ) -> ServiceState:
        """Point ``service`` at ``task_definition`` and/or scale it to ``desired`` tasks.

        Raises:
            ValueError: neither change was asked for, or ``desired`` is negative.
            TargetNotFound: no such cluster, or no such (active) service in it.
        """
        if task_definition is None and desired is None:
            raise ValueError("update_service needs a task_definition or a desired count")
        if desired is not None and desired < 0:
            raise ValueError(f"desired count must be >= 0, got {desired}")
        arguments: dict[str, Any] = {"cluster": self._targets.cluster, "service": service}
        if task_definition is not None:
            arguments["taskDefinition"] = task_definition
        if desired is not None:
            arguments["desiredCount"] = desired
        try:
            return _service_state(self._client.update_service(**arguments)["service"])
        except ClientError as err:
            raise _missing(err, self._targets.cluster, service) from err

    def wait_stable(self, services: Sequence[str], timeout_seconds: float) -> None:
        """Block until every service runs its desired count in a single deployment.

        Uses botocore's ``services_stable`` waiter, polling every ``min(15, timeout/4)``
        seconds (at least 1) for as many attempts as fit in ``timeout_seconds``.

        Raises:
            ValueError: ``services`` is empty or the timeout is not positive.
            ServiceNotStable: the timeout passed, or a service is missing or draining.
        """
        names = list(services)
        if not names:
            raise ValueError("wait_stable needs at least one service")
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        delay, attempts = waiter_schedule(timeout_seconds)
        try:
            self._client.get_waiter("services_stable").wait(
                cluster=self._targets.cluster,
                services=names,
                WaiterConfig={"Delay": delay, "MaxAttempts": attempts},
            )
        except WaiterError as err:
            raise ServiceNotStable(names, timeout_seconds, str(err)) from err

    def _registerable_fields(self) -> frozenset[str]:
        shape = self._client.meta.service_model.operation_model("RegisterTaskDefinition").input_shape
        return frozenset(shape.members)


def _service_state(service: dict[str, Any]) -> ServiceState:
    return ServiceState(
        name=service["serviceName"],
        task_definition=service["taskDefinition"],
        desired=service["desiredCount"],
        running=service["runningCount"],
        status=service["status"],
    )


def waiter_schedule(timeout_seconds: float) -> tuple[int, int]:
    """(Delay, MaxAttempts) for a waiter that should give up after about ``timeout_seconds``.

    The waiter sleeps Delay seconds between attempts, so MaxAttempts * Delay bounds the wait;
    botocore wants whole seconds for both.
    """
    delay = max(1, min(_MAX_DELAY_SECONDS, int(timeout_seconds // 4)))
    attempts = max(1, math.ceil(timeout_seconds / delay))
    return delay, attempts


def registration_input(
    task_definition: dict[str, Any], tags: list[dict[str, str]], registerable: frozenset[str]
) -> dict[str, Any]:
    """RegisterTaskDefinition arguments that reproduce a described revision.

    Args:
        task_definition: the ``taskDefinition`` of a DescribeTaskDefinition answer.
        tags: the answer's ``tags`` (DescribeTaskDefinition returns them beside it).
        registerable: the parameters RegisterTaskDefinition accepts.

    Raises:
        AdapterError: a described field is neither registerable nor known to be read-only,
            so copying would silently lose it.
    """
    unknown = set(task_definition) - registerable - READ_ONLY_FIELDS
    if unknown:
        raise AdapterError(
            f"task definition {task_definition.get('taskDefinitionArn')} has fields that cannot "
            f"be copied: {', '.join(sorted(unknown))}"
        )
    arguments = {k: copy.deepcopy(v) for k, v in task_definition.items() if k in registerable}
    if tags:
        arguments["tags"] = copy.deepcopy(tags)
    return arguments


def _swap_image(arguments: dict[str, Any], container: str, image: str, base: str) -> None:
    _container(arguments, container, base)["image"] = image


def _container(task_definition: dict[str, Any], container: str, name: str) -> dict[str, Any]:
    """The definition of ``container`` in a task definition (or its registration input)."""
    for definition in task_definition.get("containerDefinitions", []):
        if definition.get("name") == container:
            return definition
    names = [d.get("name") for d in task_definition.get("containerDefinitions", [])]
    raise TargetNotFound("container", container, f"in task definition {name} (it has {names})")


def _named(err: ClientError, task_definition: str) -> Exception:
    """TargetNotFound when ECS says the task definition does not exist; otherwise the error as
    it came (access denied or throttling must not read as "not found")."""
    # ECS answers ClientException for a task definition it cannot find (or whose name it cannot parse).
    if err.response.get("Error", {}).get("Code", "") == "ClientException":
        return TargetNotFound("task definition", task_definition, str(err))
    return err


def _missing(err: ClientError, cluster: str, service: str) -> Exception:
    """TargetNotFound naming the cluster or the service ECS could not find (its own message
    names neither); any other error as it came."""
    code = err.response.get("Error", {}).get("Code", "")
    if code == "ClusterNotFoundException":
        return TargetNotFound("ECS cluster", cluster, str(err))
    if code in ("ServiceNotFoundException", "ServiceNotActiveException"):
        return TargetNotFound("ECS service", service, f"in cluster {cluster}: {err}")
    return err
