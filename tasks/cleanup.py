"""Thin tasks for the cleanup flow: one adapter call each, retries on the decorator.

Reads are retried when AWS or git failed in passing; a named refusal or a missing target fails
the same way every time and is not, and neither is a call AWS refused for want of a permission:
it fails at once as ``PermissionDenied``, naming the action and the policy statement granting it.
Of the writes, only the idempotent ones are retried: a tag
push and a batch delete of tags report what is already done as done; a stack deletion is not
retried here (its wait can be long, and running cleanup again carries on from where it stopped).
"""

from __future__ import annotations

from typing import Any, Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from rollway.aws.cloudformation import CloudFormationStacks, DeleteOutcome
from rollway.aws.ecr_images import EcrImages, TagDeletion
from rollway.aws.ecr_images import images_in_use as read_images_in_use
from rollway.aws.ecr_images import network_in_use as read_network_in_use
from rollway.aws.ecr_images import rollback_restores as read_rollback_restores
from rollway.aws.denied import INFRASTRUCTURE_POLICY, named_denials
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import REFUSED_CODES, AdapterError
from rollway.cleanup import ArchiveState, ImageUse, NetworkUse, RepositoryImage, RoutingInUse, StackState
from rollway.targets import Targets
from rollway.toolchain.git import GitCli, GitError
from tasks import retry


# Anything but a named adapter or git error, or a refused permission or unknown credentials:
# those fail the same way again (a refused read waited 1 s and 5 s for two more refusals).
_transient = retry.unless(AdapterError, GitError, ValueError, denied=REFUSED_CODES)


# The policy cleanup's role holds (README, Least privilege): a refusal names its statement, the
# run's targets telling which of its resources one of the user's names (or region) stands for.
_POLICY = INFRASTRUCTURE_POLICY

_READ = {"retries": 2, "retry_delay_seconds": [1, 5], "retry_condition_fn": _transient, "cache_policy": NONE}


@task(name="describe-stack", task_run_name="describe-stack-{name}", **_READ)
def describe_stack(stacks: CloudFormationStacks, name: str, targets: Targets) -> StackState:
    with named_denials(_POLICY, targets=targets):
        return stacks.describe(name)


@task(name="images-in-use", **_READ)
def images_in_use(ecs: Any, targets: Targets, restores: Sequence[tuple[str, str]] = ()) -> tuple[ImageUse, ...]:
    log = get_run_logger()
    with named_denials(_POLICY, targets=targets):
        return read_images_in_use(ecs, targets, on_progress=lambda line: log.info("%s", line), restores=restores)


@task(name="rollback-restores", **_READ)
def rollback_restores(ledger: Any, targets: Targets) -> tuple[tuple[str, str], ...]:
    """What a rollback of the newest rollout, still open, would restore on the canary (the ledger's)."""
    with named_denials(_POLICY, targets=targets):
        return read_rollback_restores(ledger, targets)


@task(name="network-in-use", **_READ)
def network_in_use(ecs: Any, elbv2: Any, targets: Targets) -> tuple[NetworkUse, ...]:
    """The VPC, subnets and security groups the services and the load balancer are in."""
    with named_denials(_POLICY, targets=targets):
        return read_network_in_use(ecs, elbv2, targets)


@task(name="routing-in-use", **_READ)
def routing_in_use(router: AlbRouter, targets: Targets) -> RoutingInUse:
    """The listener and the rule production's traffic comes through (a stack holding one is kept)."""
    with named_denials(_POLICY, targets=targets):
        return RoutingInUse(listener_arn=router.listener_arn, rule_arn=router.rule_arn)


@task(name="list-repository-images", **_READ)
def list_images(images: EcrImages, targets: Targets) -> tuple[RepositoryImage, ...]:
    with named_denials(_POLICY, targets=targets):
        return images.list_images()


@task(name="read-archive-tag", **_READ)
def archive_state(git: GitCli, tag: str, commit: str | None, remote: str | None) -> ArchiveState:
    """What git shows about the archive tag, locally and (when it is to be pushed) on ``remote``, and
    (when it is to tag HEAD) the working tree's changes it would not archive."""
    local, annotated = git.local_tag(tag)
    return ArchiveState(commit=git.commit_of(commit or "HEAD"), local_commit=local, local_annotated=annotated,
                        remote_commit=git.remote_tag(remote, tag) if remote is not None else None,
                        tagger_problem=git.tagger_problem() if local is None else None,
                        uncommitted=git.uncommitted() if commit is None else ())


@task(name="create-archive-tag", cache_policy=NONE)
def create_tag(git: GitCli, tag: str, message: str, commit: str) -> str:
    return git.create_tag(tag, message, commit)


@task(name="push-archive-tag", **_READ)  # idempotent: an identical tag on the remote is "already_there"
def push_tag(git: GitCli, remote: str, tag: str) -> str:
    return git.push_tag(remote, tag)


@task(name="delete-image-tags", **_READ)  # idempotent: a tag deleted before is reported gone
def delete_tags(images: EcrImages, tags: Sequence[str], targets: Targets) -> TagDeletion:
    with named_denials(_POLICY, targets=targets):
        return images.delete_tags(list(tags))


@task(name="delete-stack", task_run_name="delete-stack-{name}", cache_policy=NONE)
def delete_stack(stacks: CloudFormationStacks, name: str, timeout_seconds: float, targets: Targets) -> DeleteOutcome:
    log = get_run_logger()
    with named_denials(_POLICY, targets=targets):
        return stacks.delete(name, timeout_seconds=timeout_seconds, on_progress=lambda line: log.info("%s", line))
