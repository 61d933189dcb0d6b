"""Thin tasks over the ECR repository and the docker CLI: one call each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefect import task
from prefect.cache_policies import NONE

from rollway.aws.ecr import EcrRepository, HeldImage, RegistryLogin, Repository
from rollway.aws.ecs import BaseRevision, EcsDeployer
from rollway.aws.errors import REFUSED_CODES, AdapterError
from rollway.ports import ImagePublisher, ServiceDeployer
from rollway.toolchain.process import ToolError
from tasks import retry

# Not worth a second ask a second later: the adapters' named errors (a missing repository, a
# refused push) and a permission AWS refused.
_transient = retry.unless(AdapterError, ToolError, denied=REFUSED_CODES)


_READ = {"retries": 2, "retry_delay_seconds": 1, "retry_condition_fn": _transient, "cache_policy": NONE}


@task(name="describe-ecr-repository", **_READ)
def describe_repository(repository: EcrRepository) -> Repository:
    return repository.describe()


@task(name="ecr-image-digest", **_READ)
def ecr_image_digest(repository: EcrRepository, tag: str) -> str | None:
    return repository.image_digest(tag)


@task(name="ecr-image", **_READ)
def ecr_image(repository: EcrRepository, tag: str) -> HeldImage | None:
    return repository.image(tag)


@task(name="ecr-config-digest", **_READ)
def ecr_config_digest(repository: EcrRepository, digest: str) -> str | None:
    return repository.config_digest(digest)


@task(name="ecr-image-platforms", **_READ)
def ecr_image_platforms(repository: EcrRepository, tag: str) -> tuple[str, ...]:
    return repository.image_platforms(tag)


# Safe to send again: a tag that names the image already is success (ImageAlreadyExists).
@task(name="ecr-retag", **_READ)
def ecr_retag(repository: EcrRepository, digest: str, tag: str) -> None:
    repository.retag(digest, tag)


# The login holds ECR's docker password, and pickling a SecretStr keeps its value: with result
# persistence on (PREFECT_RESULTS_PERSIST_BY_DEFAULT, a default result storage) it must never be
# written to result storage. cache_policy NONE alone only keeps it out while the task has no cache
# key (Prefect writes a task's result under its key); persist_result=False holds with one too.
@task(name="ecr-login-token", **{**_READ, "persist_result": False})
def ecr_login(repository: EcrRepository) -> RegistryLogin:
    return repository.login()


@task(name="docker-daemon-version", cache_policy=NONE)
def daemon_version(docker: ImagePublisher) -> str:
    return docker.server_version()


@task(name="registry-digest", **_READ)
def registry_digest(docker: ImagePublisher, reference: str) -> str | None:
    return docker.remote_digest(reference)


@task(name="registry-config-digest", **_READ)
def registry_config_digest(docker: ImagePublisher, reference: str) -> str | None:
    return docker.remote_config_digest(reference)


@task(name="registry-platforms", **_READ)
def registry_platforms(docker: ImagePublisher, reference: str) -> tuple[str, ...]:
    return docker.remote_platforms(reference)


# Safe to send again: the same manifest put under the same tag.
@task(name="registry-tag", **_READ)
def registry_tag(docker: ImagePublisher, source: str, tag: str) -> str:
    return docker.remote_tag(source, tag)


@task(name="docker-build", cache_policy=NONE)
def build(docker: ImagePublisher, context_dir: str, dockerfile: str | None, tags: Sequence[str],
          labels: Mapping[str, str]) -> str:
    return docker.build(context_dir, dockerfile=dockerfile, tags=tags, labels=labels)


@task(name="docker-image-platform", cache_policy=NONE)
def image_platform(docker: ImagePublisher, image: str) -> str:
    return docker.image_platform(image)


@task(name="docker-tag", cache_policy=NONE)
def tag(docker: ImagePublisher, image: str, reference: str) -> None:
    docker.tag(image, reference)


@task(name="docker-login", cache_policy=NONE)
def login(docker: ImagePublisher, credentials: RegistryLogin) -> None:
    docker.login(credentials.registry, credentials.username, credentials.password)


@task(name="docker-pushed-as", cache_policy=NONE)
def pushed_as(docker: ImagePublisher, image: str) -> tuple[str, ...]:
    return docker.pushed_as(image)


# No task retries: docker push retries each layer's upload itself, and the flow's _push decides
# (rollway.toolchain.docker.retry_reason) which failures are pushed again, after a new login or a
# wait; a refusal (denied, an immutable tag) would only be refused again.
@task(name="docker-push", cache_policy=NONE)
def push(docker: ImagePublisher, reference: str) -> str:
    return docker.push(reference)


@task(name="docker-logout", cache_policy=NONE)
def logout(docker: ImagePublisher, registry: str) -> None:
    docker.logout(registry)


# No retries: RegisterTaskDefinition makes a new revision on every call (see tasks/undoable.py).
@task(name="register-task-definition", cache_policy=NONE)
def register_revision(deployer: ServiceDeployer, image: str, base_task_definition: str) -> str:
    return deployer.register_revision(image, base_task_definition)


@task(name="base-task-definition", **_READ)
def base_revision(deployer: EcsDeployer, task_definition: str) -> BaseRevision:
    # The revision a new one is copied from (TargetNotFound is final): its container's image
    # and the platform its tasks run on, against which the release is checked.
    return deployer.base_revision(task_definition)
