"""Thin tasks over the ECR repository and the docker CLI: one call each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefect import task
from prefect.cache_policies import NONE

from rollway.aws.ecr import EcrRepository, RegistryLogin, Repository
from rollway.ports import ImagePublisher, ServiceDeployer


@task(name="describe-ecr-repository", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def describe_repository(repository: EcrRepository) -> Repository:
    return repository.describe()


@task(name="ecr-image-digest", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def ecr_image_digest(repository: EcrRepository, tag: str) -> str | None:
    return repository.image_digest(tag)


# The login holds a SecretStr: never persisted (cache_policy NONE, no result persistence asked).
@task(name="ecr-login-token", retries=2, retry_delay_seconds=1, cache_policy=NONE)
def ecr_login(repository: EcrRepository) -> RegistryLogin:
    return repository.login()


@task(name="docker-daemon-version", cache_policy=NONE)
def daemon_version(docker: ImagePublisher) -> str:
    return docker.server_version()


@task(name="registry-digest", retries=1, retry_delay_seconds=2, cache_policy=NONE)
def registry_digest(docker: ImagePublisher, reference: str) -> str | None:
    return docker.remote_digest(reference)


@task(name="docker-build", cache_policy=NONE)
def build(docker: ImagePublisher, context_dir: str, dockerfile: str | None, tags: Sequence[str],
          labels: Mapping[str, str]) -> str:
    return docker.build(context_dir, dockerfile=dockerfile, tags=tags, labels=labels)


@task(name="docker-tag", cache_policy=NONE)
def tag(docker: ImagePublisher, image: str, reference: str) -> None:
    docker.tag(image, reference)


@task(name="docker-login", cache_policy=NONE)
def login(docker: ImagePublisher, credentials: RegistryLogin) -> None:
    docker.login(credentials.registry, credentials.username, credentials.password)


# No task retries: docker push retries each layer's upload itself, and a refusal (denied, an
# immutable tag) would only be refused again.
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

