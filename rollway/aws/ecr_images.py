"""Old images in ECR: list tags and digests, find what the task definitions in use name, delete tags.

(``rollway/aws/ecr.py`` is the repository's URI and registry login; this module is cleanup's.)

What is in use is read from ECS, not assumed: the task definitions every deployment of the
stable and canary services (and of every other service of the cluster) runs, and every ACTIVE revision of the task family, since a rollback
restores the previous one. ``rollway.cleanup.plan_cleanup`` turns those references into refusals.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping, Sequence

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from rollway.aws.ecr import ACTIVE
from rollway.aws.errors import (AdapterError, TargetNotFound, answer_lost, aws_message, error_code, failed_in_passing,
                                 lost_answers)
from rollway.cleanup import (ACTIVE_REVISION, ImageUse, NetworkUse, OpenRolloutNeeds, RepositoryImage,
                             log_group_pattern, mounted_by)
from rollway.failure_words import error_said
from rollway.image import INDEX_TYPES
from rollway.ledger import LedgerError, open_for_rollback
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec
from rollway.targets import Targets

# BatchDeleteImage takes at most 100 image ids per call.
_BATCH = 100
# ECR's failure codes for an image id that names nothing: the tag is gone already.
_GONE_CODES = frozenset({"ImageNotFound", "ImageTagDoesNotMatchDigest"})


class InUseUnknown(AdapterError):
    """What production runs could not be read, so nothing may be judged safe to delete.

    Attributes:
        passing: the read failed in passing (throttled past botocore's retries, AWS's own side
            failing: ``failed_in_passing``), which another try most often reads; False for an
            answer to what was asked (no such cluster, service or load balancer).
    """

    passing = False


def _unread(what: str, err: ClientError, *, names: bool = False, unknown: str = "") -> InUseUnknown:
    """``what`` could not be read (so ``unknown`` is not known), AWS's words ``err`` said after it;
    ``names``: the targets' names may be at fault ("check the targets block"), unless ``err``
    failed in passing: a throttled read sent people to names that were right, and was not asked again."""
    passing = failed_in_passing(err)
    hint = " (check the targets block)" if names and not passing else ""
    so = f", so {unknown} is not known" if unknown else ""
    found = InUseUnknown(f"{what} could not be read{hint}{so}: {aws_message(err, call=True)}")
    found.passing = passing
    return found


class TagDeletion(BaseModel):
    """What a batch delete did, per tag.

    Attributes:
        deleted: tags ECR removed.
        gone: tags the repository did not have (deleted before: re-running is safe).
        failed: tag -> ECR's failure code and reason.
        withheld: tag -> why it was not asked to be deleted (``delete_tags``'s ``withhold``).
        deleted_on_retry: the tags among ``deleted`` ECR called not found when botocore retried
            the call after a try whose answer was lost (a 5xx, a read timeout: that try deleted them).
    """

    model_config = ConfigDict(frozen=True)

    deleted: tuple[str, ...] = ()
    deleted_on_retry: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()
    failed: dict[str, str] = {}
    withheld: dict[str, str] = {}


class EcrImages:
    """The images of one ECR repository.

    Args:
        client: a boto3 ``ecr`` client.
        repository: the repository name (``Targets.ecr_repository``).
    """

    def __init__(self, client: Any, repository: str) -> None:
        self._client = client
        self._repository = repository

    def list_images(self) -> tuple[RepositoryImage, ...]:
        """Every image in the repository with its digest, tags (untagged ones too) and status
        (archived ones too), and for an ACTIVE image index the digests of the platform images it lists.

        Raises:
            TargetNotFound: there is no such repository.
            InUseUnknown: an image index could not be read (its platform images would look unused).
        """
        images = []
        indexes: list[str] = []
        try:
            # Every status: DescribeImages lists ACTIVE images only unless asked for others, and the
            # old version's image a lifecycle rule had archived was reported as never there.
            for page in self._client.get_paginator("describe_images").paginate(repositoryName=self._repository,
                                                                              filter={"imageStatus": "ANY"}):
                for detail in page.get("imageDetails", []):
                    # A multi-platform image: an index listing one image per platform, each an image
                    # of the repository in its own right, with tags of its own or none.
                    index = bool({detail.get("imageManifestMediaType"), detail.get("artifactMediaType")}
                                 & set(INDEX_TYPES))
                    status = detail.get("imageStatus") or ACTIVE
                    images.append(RepositoryImage(digest=detail["imageDigest"], tags=tuple(detail.get("imageTags", [])),
                                                  status=status, index=index))
                    if index and status == ACTIVE:  # ECR serves no manifest of an archived image
                        indexes.append(detail["imageDigest"])
            children = self._platform_images(indexes)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "RepositoryNotFoundException":
                raise TargetNotFound("ECR repository", self._repository, aws_message(err, call=True)) from err
            raise
        return tuple(image.model_copy(update={"children": children[image.digest]}) if image.digest in children
                     else image for image in images)

    def _platform_images(self, indexes: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Image index digest -> the digests of the platform images it lists.

        A task runs ``repo:1.0.0`` (the index) on the platform image of its architecture, which
        may carry a tag of its own (``1.0.0-amd64``): deleting that tag deletes the image under
        the index production runs. Read here so the plan can see it.
        """
        found: dict[str, tuple[str, ...]] = {}
        for start in range(0, len(indexes), _BATCH):
            batch = indexes[start:start + _BATCH]
            answer = self._client.batch_get_image(repositoryName=self._repository,
                                                  imageIds=[{"imageDigest": digest} for digest in batch],
                                                  acceptedMediaTypes=list(INDEX_TYPES))
            for image in answer.get("images", []):
                try:
                    manifests = json.loads(image.get("imageManifest") or "{}").get("manifests") or []
                except ValueError:
                    manifests = None
                if manifests is None:
                    raise InUseUnknown(f"image index {image['imageId']['imageDigest']} in {self._repository} is not "
                                       "readable JSON: the platform images it lists cannot be told from unused ones")
                found[image["imageId"]["imageDigest"]] = tuple(
                    m["digest"] for m in manifests if isinstance(m, dict) and m.get("digest"))
            unread = [digest for digest in batch if digest not in found]
            if unread:
                why = "; ".join(f"{f.get('failureCode')}: {f.get('failureReason')}" for f in answer.get("failures", []))
                raise InUseUnknown(f"image index(es) {', '.join(unread)} in {self._repository} could not be read "
                                   f"({why or 'ECR did not return them'}): the platform images they list cannot be "
                                   "told from unused ones")
        return found

    def delete_tags(self, tags: Sequence[str],
                    withhold: Callable[[Sequence[str]], Mapping[str, str]] | None = None,
                    sending: Callable[[Sequence[str]], None] | None = None) -> TagDeletion:
        """Delete ``tags`` (an image loses the tag; one left with no tag is deleted by ECR).

        A tag the repository does not have is reported as gone, not failed, unless botocore retried
        the call that found it not found after a try whose answer was lost: that try deleted it
        (``deleted_on_retry``); after a throttle (a refusal) it is gone as ever. A call that fails
        after an earlier one deleted tags marks its own tags failed (with the error) and the rest
        goes on, so what was deleted is never lost from the answer; a call failing before any tag
        was deleted or found gone is raised (nothing was done: trying the whole again is safe).

        Args:
            withhold: asked right before each call with the tags not asked for yet (that call's
                and the later ones'); those it returns (tag -> why) are not deleted, now or later.
                What it raises is raised as a failed call is: before any tag was deleted or found
                gone, raised; after, every tag not asked for yet is failed with it, and no call is made.
            sending: told each call's tags right before it is made (a caller that retries a failed
                call can tell which tags a call whose answer was lost may have deleted).

        Raises:
            TargetNotFound: there is no such repository.
        """
        deleted: list[str] = []
        deleted_on_retry: list[str] = []
        gone: list[str] = []
        failed: dict[str, str] = {}
        withheld: dict[str, str] = {}
        wanted = list(dict.fromkeys(tags))
        start = 0
        while start < len(wanted):
            if withhold is not None:
                try:
                    withheld.update(withhold(wanted[start:]))
                except Exception as err:  # noqa: BLE001 - raised, or said for each tag left, as a failed call
                    if not (deleted or gone):
                        raise
                    failed.update((tag, f"not asked to be deleted: {error_said(err)}")
                                  for tag in wanted[start:])
                    break
                wanted = wanted[:start] + [tag for tag in wanted[start:] if tag not in withheld]
            batch = wanted[start:start + _BATCH]
            start += _BATCH
            if not batch:
                break
            if sending is not None:
                sending(batch)
            try:
                with lost_answers(self._client, "BatchDeleteImage", "ECR") as lost:
                    answer = self._client.batch_delete_image(
                        repositoryName=self._repository, imageIds=[{"imageTag": tag} for tag in batch])
            except (ClientError, BotoCoreError) as err:
                if isinstance(err, ClientError) and \
                        err.response.get("Error", {}).get("Code") == "RepositoryNotFoundException":
                    raise TargetNotFound("ECR repository", self._repository, aws_message(err, call=True)) from err
                if deleted or gone:
                    # Raised now, the tags the earlier calls deleted would be lost from the record
                    # (and a retry would report them as gone, deleted by someone else): this call's
                    # tags are failed instead, the next calls still made, and all of it returned.
                    # A call whose answer was lost may have deleted its tags: said, or a new run
                    # listing them as not found read as someone else's deletion.
                    why = (f"BatchDeleteImage got no answer ({aws_message(err)}): ECR may have deleted it all the "
                           "same, and a new run then lists it as not found" if answer_lost(err)
                           else f"BatchDeleteImage failed: {aws_message(err)}")
                    failed.update((tag, why) for tag in batch)
                    continue
                raise
            removed = {i.get("imageTag") for i in answer.get("imageIds", [])}
            # botocore retried the call itself after a try whose answer was lost (a 5xx, a read
            # timeout): that try may have deleted the tags, and the retry then finds them not found.
            # This call sent them, and the caller sends only tags it saw in the repository: its
            # deletion. Not after a throttle or a connection never made: ECR did nothing then.
            retried = bool(lost)
            for failure in answer.get("failures", []):
                tag = failure.get("imageId", {}).get("imageTag")
                if tag is None or tag in removed:
                    continue
                if retried and failure.get("failureCode") == "ImageNotFound" and tag in batch:
                    removed.add(tag)
                    deleted_on_retry.append(tag)
                elif failure.get("failureCode") in _GONE_CODES:
                    gone.append(tag)
                else:
                    failed[tag] = f"{failure.get('failureCode')}: {failure.get('failureReason')}"
            deleted += [tag for tag in batch if tag in removed]
            # A tag neither removed nor failed cannot be vouched for: it counts as failed.
            for tag in batch:
                if tag not in removed and tag not in gone and tag not in failed:
                    failed[tag] = "ECR neither deleted it nor said why"
        return TagDeletion(deleted=tuple(deleted), gone=tuple(gone), failed=failed, withheld=withheld,
                           deleted_on_retry=tuple(deleted_on_retry))


# A task definition named with its revision (``family:3``, or its ARN): what it says never changes.
_REVISION = re.compile(r":[0-9]+$")


class DescribedTaskDefinitions:
    """What ECS answered to DescribeTaskDefinition, kept for each revision named with its number.

    A revision never changes once registered: a second read of what is in use (cleanup's, right
    before each batch of tag deletions) describes only the revisions it had not read before,
    instead of the hundreds of ACTIVE ones a family keeps, one call each.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, dict[str, Any]] = {}

    def known(self, task_definition: str) -> bool:
        """Whether ``describe`` answers ``task_definition`` without a call."""
        return task_definition in self._by_name

    def describe(self, ecs: Any, task_definition: str) -> dict[str, Any]:
        """``taskDefinition`` of ECS's answer for ``task_definition``, asked only once per revision."""
        found = self._by_name.get(task_definition)
        if found is None:
            found = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
            if _REVISION.search(task_definition):  # a bare family names its newest revision: asked each time
                self._by_name[task_definition] = found
        return found


# Task definitions described between two progress lines: a family deployed for a year keeps
# hundreds of ACTIVE revisions, one DescribeTaskDefinition each, a minute or more of silence.
PROGRESS_EVERY = 100


def images_in_use(ecs: Any, targets: Targets,
                  on_progress: Callable[[str], None] = lambda line: None,
                  restores: Sequence[tuple[str, str]] = (),
                  described: DescribedTaskDefinitions | None = None) -> tuple[ImageUse, ...]:
    """Every container image named by a task definition in use.

    In use: the task definition of every deployment of the stable and canary services (a
    service mid-deployment runs two) and of every other service of the cluster (one scaled to
    zero too: it pulls the image again when scaled up), every ACTIVE revision of ``targets.task_family`` (and
    of any family whose name begins with it: ECS's ``familyPrefix`` matches those too), the
    task definition a rollback of an open rollout restores on the canary service (``restores``,
    from ``open_rollout_needs``: of another family, no ACTIVE revision of the family names it), the
    task definition every running task of the cluster runs (INACTIVE or of another family
    as well), and the digest each of those tasks resolved its image to.

    Args:
        restores: (task definition, why) for each task definition a rollback would restore.
        described: the revisions read before, not asked again (and where those read now are kept).

    Raises:
        InUseUnknown: the cluster or either service cannot be found (wrong names would make
            everything look unused), or a task definition cannot be read.
    """
    uses: dict[str, list[str]] = {}
    for task_definition, why in _service_task_definitions(ecs, targets) + _other_services(ecs, targets):
        uses.setdefault(task_definition, []).append(why)
    for arn in _active_revisions(ecs, targets.task_family):
        uses.setdefault(arn, []).append(f"{ACTIVE_REVISION}{targets.task_family}")
    for task_definition, why in restores:
        uses.setdefault(task_definition, []).append(why)
    running = _running_tasks(ecs, targets)
    # A task still running a revision none of the above is (a one-off task, another service's,
    # a revision deregistered under it) runs with its roles, log group, secrets and file systems
    # all the same: only its image digest was kept, and the stack that made its task role or
    # log group was deleted under it. Described once per revision, however many tasks run it.
    by_revision: dict[str, list[str]] = {}
    for task in running:
        if task.get("taskDefinitionArn") and task["taskDefinitionArn"] not in uses:
            by_revision.setdefault(task["taskDefinitionArn"], []).append(task["taskArn"].rsplit("/", 1)[-1])
    for arn, task_ids in by_revision.items():
        more = f" and {len(task_ids) - 1} more" if len(task_ids) > 1 else ""
        uses[arn] = [f"running task {task_ids[0]}{more}"]
    described = described if described is not None else DescribedTaskDefinitions()
    found = []
    # Counted in calls: a second read (the revisions known) makes few, and said it read hundreds.
    unread = sum(not described.known(task_definition) for task_definition in uses)
    if unread > PROGRESS_EVERY:
        on_progress(f"reading the {unread} task definitions in use (one call each)")
    done = 0
    for task_definition, whys in uses.items():
        if not described.known(task_definition):
            if done and done % PROGRESS_EVERY == 0:
                on_progress(f"read {done} of {unread} task definitions in use")
            done += 1
        try:
            definition = described.describe(ecs, task_definition)
        except ClientError as err:
            raise _unread(f"task definition {task_definition} (in use: {', '.join(whys)})", err) from err
        # What its tasks need besides roles and logs, which a stack may have made as well: the
        # file systems its volumes mount, and (per container) where its secrets come from.
        file_systems = tuple(dict.fromkeys(
            found_id for volume in definition.get("volumes", [])
            for efs in [volume.get("efsVolumeConfiguration") or {}]
            for found_id in (efs.get("fileSystemId"), (efs.get("authorizationConfig") or {}).get("accessPointId"))
            if found_id))
        for container in definition.get("containerDefinitions", []):
            logs = container.get("logConfiguration") or {}
            secrets = [s.get("valueFrom") for s in [*container.get("secrets", []), *logs.get("secretOptions", [])]]
            secrets.append((container.get("repositoryCredentials") or {}).get("credentialsParameter"))
            found.append(ImageUse(
                task_definition=definition["taskDefinitionArn"], why=", ".join(whys), image=container["image"],
                execution_role=definition.get("executionRoleArn"), task_role=definition.get("taskRoleArn"),
                secrets=tuple(dict.fromkeys(s for s in secrets if s)), file_systems=file_systems,
                **_log_groups(logs)))
    return tuple(found) + _running_digests(running)


# Fluent Bit's CloudWatch Logs outputs (the C plugin and the older Go one).
_FIRELENS_CLOUDWATCH = frozenset({"cloudwatch_logs", "cloudwatch"})
# Their options naming the log group they write to, first the one used when it is a name: the C
# plugin's log_group_template (used when it resolves, log_group_name when not), the Go plugin's
# log_group_name (a template too) and default_log_group_name (its group when that does not resolve).
_FIRELENS_GROUPS = ("log_group_template", "log_group_name", "default_log_group_name")


def _log_groups(logs: Mapping[str, Any]) -> dict[str, Any]:
    """``ImageUse``'s ``log_group`` and ``log_group_templates`` of a container's ``logConfiguration``:
    its awslogs group, or the group (or the templates) its FireLens options send it to (its logs go
    nowhere once a stack deleted that one). Fluent Bit reads option names in any case."""
    options = logs.get("options") or {}
    if logs.get("logDriver") == "awslogs":
        return {"log_group": options.get("awslogs-group")}
    lowered = {str(key).lower(): value for key, value in options.items()}
    if logs.get("logDriver") != "awsfirelens" or str(lowered.get("name", "")).lower() not in _FIRELENS_CLOUDWATCH:
        return {}
    named = [str(lowered[key]) for key in _FIRELENS_GROUPS if lowered.get(key)]
    names = [name for name in named if log_group_pattern(name) is None]
    return {"log_group": names[0] if names else None,
            "log_group_templates": tuple(name for name in named if name not in names)}


def open_rollout_needs(ledger: Any, targets: Targets) -> OpenRolloutNeeds:
    """What the canary service's newest rollout needs kept while it is open
    (``rollway.ledger.open_for_rollback``), as the ledger recorded it:

    - the task definition the canary ran before the rollout, which its rollback restores. Of
      another family (the new architecture's task family is a new one), nothing else read from ECS
      names it: its image deleted, the rollback would point the canary at an image that cannot be
      pulled;
    - while it still goes forward (pending, progressing, paused), the image it deploys (pinned to
      its digest at its start; the tag for a record from before images were pinned). A run that
      stopped before pointing the canary at it left nothing in ECS naming it, and the resumed run
      registers a revision of it: its last tag deleted, ECR deletes the image with it.

    A ledger table that does not exist records no rollout (the `canary` flow keeps none): nothing.

    Raises:
        InUseUnknown: the ledger could not be read, or its newest rollout of the service cannot be.
    """
    try:
        record = ledger.get(targets.canary_service)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return OpenRolloutNeeds()
        raise _unread(f"the rollout ledger (table {targets.rollouts_table})", err,
                      unknown=f"what a rollback of {targets.canary_service} would restore") from err
    except LedgerError as err:
        raise InUseUnknown(f"the newest rollout of {targets.canary_service} in the ledger (table "
                           f"{targets.rollouts_table}) cannot be read, so what its rollback would restore is not "
                           f"known: {err}") from err
    if record is None:
        return OpenRolloutNeeds()
    try:
        still_open = open_for_rollback(RolloutSpec.for_rollback(record.spec_json), record)
    except ValueError:  # a spec this release cannot read: a rollback may still come, so it counts
        still_open = True
    if not still_open:
        return OpenRolloutNeeds()
    restores = ((record.previous_task_definition,
                 f"a rollback of rollout {record.rollout_id} ({record.phase.value}) restores it on "
                 f"{targets.canary_service}"),) if record.previous_task_definition else ()
    forward = not record.phase.terminal and record.phase is not RolloutPhase.ROLLING_BACK
    deploys = (ImageUse(task_definition=record.canary_task_definition or "(not registered yet)",
                        why=(f"rollout {record.rollout_id} ({record.phase.value}) deploys it on "
                             f"{targets.canary_service}"),
                        image=record.pinned_image or record.image),) if forward else ()
    return OpenRolloutNeeds(restores=restores, deploys=deploys)


# DescribeTasks takes at most 100 tasks per call.
_TASKS_BATCH = 100


def _running_tasks(ecs: Any, targets: Targets) -> list[dict[str, Any]]:
    """Every running task of the cluster, described (not only the two services')."""
    arns: list[str] = []
    try:
        for page in ecs.get_paginator("list_tasks").paginate(cluster=targets.cluster, desiredStatus="RUNNING"):
            arns += page.get("taskArns", [])
        return [task for start in range(0, len(arns), _TASKS_BATCH)
                for task in ecs.describe_tasks(cluster=targets.cluster,
                                               tasks=arns[start:start + _TASKS_BATCH]).get("tasks", [])]
    except ClientError as err:
        raise _unread(f"the running tasks of cluster {targets.cluster}", err) from err


def _running_digests(described: Sequence[dict[str, Any]]) -> tuple[ImageUse, ...]:
    """The image digest each container of each running task runs.

    ECS resolves a task definition's tag to a digest when it deploys, and its tasks run (and are
    replaced from) that digest. Once the tag has moved (pushed again), the image they run is no
    longer what the tag names, only what its other tags do: without this, deleting one of those
    left production's tasks on an image that is gone. Every task of the cluster counts, not only
    the two services' (a one-off or another service's task runs on it too).
    """
    found = []
    for task in described:
        for container in task.get("containers", []):
            image, digest = container.get("image"), container.get("imageDigest")
            if image and digest:
                task_id = task["taskArn"].rsplit("/", 1)[-1]
                found.append(ImageUse(task_definition=task.get("taskDefinitionArn", "?"),
                                      why=f"running task {task_id}, on the digest ECS resolved its tag to",
                                      image=f"{image.partition('@')[0]}@{digest}"))
    return tuple(found)


def network_in_use(ecs: Any, elbv2: Any, targets: Targets) -> tuple[NetworkUse, ...]:
    """The VPC, subnets and security groups production runs in: those of the stable and canary
    services' tasks (every deployment's awsvpc configuration), and the load balancer's, with the
    certificate each of its listeners serves.

    Raises:
        InUseUnknown: a service or the load balancer cannot be found or read.
    """
    found = []
    for service in _services(ecs, targets):
        which = "stable" if service["serviceName"] == targets.stable_service else "canary"
        configurations = [service.get("networkConfiguration")]
        configurations += [deployment.get("networkConfiguration") for deployment in service.get("deployments", [])]
        for configuration in configurations:
            awsvpc = (configuration or {}).get("awsvpcConfiguration") or {}
            for field, kind in (("subnets", "subnet"), ("securityGroups", "security group")):
                found += [NetworkUse(resource=resource, user=f"a {kind} of the {which} service {service['serviceName']}")
                          for resource in awsvpc.get(field, [])]
    try:
        (balancer,) = elbv2.describe_load_balancers(Names=[targets.load_balancer])["LoadBalancers"]
    except ClientError as err:
        raise _unread(f"load balancer {targets.load_balancer}", err, names=True) from err
    lb = f"load balancer {targets.load_balancer}"
    if balancer.get("VpcId"):
        found.append(NetworkUse(resource=balancer["VpcId"], user=f"the VPC of {lb}"))
    found += [NetworkUse(resource=zone["SubnetId"], user=f"a subnet of {lb}")
              for zone in balancer.get("AvailabilityZones", []) if zone.get("SubnetId")]
    found += [NetworkUse(resource=group, user=f"a security group of {lb}") for group in balancer.get("SecurityGroups", [])]
    # ACM refuses to delete a certificate a listener serves: the stack that made it would stop
    # at DELETE_FAILED too, after deleting the rest.
    try:
        for page in elbv2.get_paginator("describe_listeners").paginate(LoadBalancerArn=balancer["LoadBalancerArn"]):
            found += [NetworkUse(resource=certificate["CertificateArn"],
                                 user=f"the certificate of the listener on port {listener.get('Port')} of {lb}")
                      for listener in page.get("Listeners", []) for certificate in listener.get("Certificates", [])
                      if certificate.get("CertificateArn")]
    except ClientError as err:
        raise _unread(f"the listeners of {lb}", err) from err
    return tuple(dict.fromkeys(found))


def mount_targets_in_use(efs: Any, in_use: Sequence[ImageUse]) -> tuple[NetworkUse, ...]:
    """The mount targets of the EFS file systems the task definitions ``in_use`` mount, and the VPC,
    subnet and security groups each is in: deleting a mount target cuts the tasks in its subnet off the
    file system, which stays; its VPC, subnet and security groups cannot be deleted while its network
    interface is in them (CloudFormation ends DELETE_FAILED on them, after deleting the rest of their stack).
    One DescribeMountTargets for each file system in use (it has one mount target per availability
    zone at most; a page holds ten), and one DescribeMountTargetSecurityGroups for each mount target.
    One EFS is creating counts (the tasks mount through it once it is available); one it has deleted
    does not; one it is deleting does not, but its VPC, subnet and security groups count until it is
    gone (``NetworkUse.leaving``).

    Raises:
        InUseUnknown: the mount targets of a file system, or the security groups of one, cannot be read
            (or not yet, or no more: those of one EFS is creating or deleting).
    """
    mounting: dict[str, list[ImageUse]] = {}
    for use in in_use:
        # Every EFS volume names its file system; an access point's is that one, read once.
        for file_system in use.file_systems:
            if file_system.startswith("fs-"):
                mounting.setdefault(file_system, []).append(use)
    found = []
    for file_system, uses in mounting.items():
        who = f"which {mounted_by(uses)}"
        try:
            targets = [target for page in efs.get_paginator("describe_mount_targets").paginate(FileSystemId=file_system)
                       for target in page.get("MountTargets", [])]
        except ClientError as err:
            if error_code(err) == "FileSystemNotFound":  # gone: no stack holds a mount target of it
                continue
            raise _unread(f"the mount targets of EFS file system {file_system}", err) from err
        of = f"of the EFS file system {file_system}, {who}"
        for target in targets:
            mount_target, subnet, state = target["MountTargetId"], target.get("SubnetId"), target.get("LifeCycleState")
            if state == _MOUNT_TARGET_DELETED:
                continue  # gone: nothing mounts through it, and what it was in is free
            # One EFS is deleting: no task mounts through it any more, but its network interface stays in
            # its subnet, VPC and security groups until it is gone (within minutes). A stack holding one was
            # planned: CloudFormation deleted the rest of it, then ended DELETE_FAILED there. Held until then
            # (``leaving``); the mount target itself holds nothing.
            leaving = state == _MOUNT_TARGET_DELETING
            target_said = f"the mount target {mount_target}" + (", which EFS is deleting," if leaving else "")
            in_subnet = f"in subnet {subnet or '?'}"
            if not leaving:
                # One being created is production's already: the tasks mount through it once it is available.
                being = " being created" if state == _MOUNT_TARGET_CREATING else ""
                found.append(NetworkUse(resource=mount_target, user=f"a mount target{being} {in_subnet} {of}"))
            if subnet:
                found.append(NetworkUse(resource=subnet, user=f"the subnet of {target_said} {of}", leaving=leaving))
            if target.get("VpcId"):
                # Its VPC may be none the tasks or the load balancer are in (reached over peering): a
                # stack holding it (its routes, not the subnet) deleted the routes, then ended
                # DELETE_FAILED on the VPC the subnet is still in.
                found.append(NetworkUse(resource=target["VpcId"], user=f"the VPC of {target_said} {in_subnet} {of}",
                                        leaving=leaving))
            found += [NetworkUse(resource=group, user=f"a security group of {target_said} {in_subnet} {of}",
                                 leaving=leaving)
                      for group in _mount_target_groups(efs, mount_target, file_system, state, of)]
    return tuple(found)


# A mount target's LifeCycleState while EFS makes it, while it deletes it, and once it has.
_MOUNT_TARGET_CREATING, _MOUNT_TARGET_DELETING, _MOUNT_TARGET_DELETED = "creating", "deleting", "deleted"


def _mount_target_groups(efs: Any, mount_target: str, file_system: str, state: str | None, of: str) -> list[str]:
    """The security groups of ``mount_target`` in LifeCycleState ``state`` (none once it is gone: no
    stack holds it in them); ``of``: which file system it is of, and who mounts it.

    Raises:
        InUseUnknown: they cannot be read, or not yet, or no more: EFS tells those of a mount target it
            is creating once it is available, and may no longer tell those of one it is deleting.
    """
    try:
        return list(efs.describe_mount_target_security_groups(MountTargetId=mount_target).get("SecurityGroups")
                    or [])
    except ClientError as err:
        if error_code(err) == "MountTargetNotFound":
            return []
        if error_code(err) == "IncorrectMountTargetState" and state in (_MOUNT_TARGET_CREATING, _MOUNT_TARGET_DELETING):
            # Not a failed read: EFS has not given them yet, or no longer does (its groups are held
            # until it is gone). A group a stack holds may be one of them.
            tells = ("tells its security groups once it is available" if state == _MOUNT_TARGET_CREATING
                     else "no longer tells its security groups, which it is in until it is gone")
            raise InUseUnknown(
                f"EFS is {state} the mount target {mount_target} {of}, and {tells} (within minutes): a stack holding "
                f"one of them cannot be judged before; run cleanup again then ({aws_message(err, call=True)})") from err
        raise _unread(f"the security groups of mount target {mount_target} of EFS file system {file_system}",
                      err) from err


def _services(ecs: Any, targets: Targets) -> list[dict[str, Any]]:
    """The stable and canary services as ECS describes them.

    Raises:
        InUseUnknown: either cannot be read or found (wrong names would make everything look unused).
    """
    services = [targets.stable_service, targets.canary_service]
    try:
        answer = ecs.describe_services(cluster=targets.cluster, services=services)
    except ClientError as err:
        raise _unread(f"the services {', '.join(services)} in cluster {targets.cluster}", err, names=True) from err
    missing = [f.get("arn", "?") for f in answer.get("failures", [])]
    missing += [s["serviceName"] for s in answer.get("services", []) if s.get("status") == "INACTIVE"]
    if missing:
        raise InUseUnknown(f"cannot tell what production runs: {', '.join(missing)} not found in cluster "
                           f"{targets.cluster} (check the targets block)")
    return list(answer["services"])


def _service_task_definitions(ecs: Any, targets: Targets) -> list[tuple[str, str]]:
    pairs = []
    for service in _services(ecs, targets):
        which = "stable" if service["serviceName"] == targets.stable_service else "canary"
        pairs.append((service["taskDefinition"], f"the {which} service deploys it"))
        for deployment in service.get("deployments", []):
            if deployment.get("taskDefinition") and deployment["taskDefinition"] != service["taskDefinition"]:
                pairs.append((deployment["taskDefinition"],
                               f"a {deployment.get('status', '').lower() or 'running'} deployment of the {which} "
                               "service runs it"))
    return pairs


# DescribeServices takes at most 10 services per call.
_SERVICES_BATCH = 10


def _other_services(ecs: Any, targets: Targets) -> list[tuple[str, str]]:
    """(task definition, why) for every deployment of the cluster's services other than the
    stable and canary ones.

    A worker scaled to zero runs no task, so only its service names the revision it starts
    from: its image deleted, the next scale-up (the morning's queue) could not pull it.
    """
    ours = {targets.stable_service, targets.canary_service}
    try:
        arns = [arn for page in ecs.get_paginator("list_services").paginate(cluster=targets.cluster)
                for arn in page.get("serviceArns", []) if arn.rsplit("/", 1)[-1] not in ours]
        services = [service for start in range(0, len(arns), _SERVICES_BATCH)
                    for service in ecs.describe_services(cluster=targets.cluster,
                                                         services=arns[start:start + _SERVICES_BATCH])["services"]
                    if service.get("status") != "INACTIVE"]
    except ClientError as err:
        raise _unread(f"the services of cluster {targets.cluster}", err) from err
    pairs = []
    for service in services:
        why = f"service {service['serviceName']} of the cluster deploys it"
        if not service.get("desiredCount"):
            why += " (scaled to zero: it runs it again when scaled up)"
        revisions = [service.get("taskDefinition")] + [d.get("taskDefinition") for d in service.get("deployments", [])]
        pairs += [(revision, why) for revision in dict.fromkeys(revisions) if revision]
    return pairs


def _active_revisions(ecs: Any, family: str) -> list[str]:
    arns = []
    for page in ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE"):
        # familyPrefix also matches longer family names (``<family>-worker``): their revisions
        # are kept in the count, since refusing one tag too many costs less than deleting one in use.
        arns += page.get("taskDefinitionArns", [])
    return arns
