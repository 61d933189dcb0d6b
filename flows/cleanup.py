"""cleanup: after the migration, archive the old code, then delete old images and old stacks.

Destructive, and started by a person (from the Prefect UI, after week 3), so in order:

1. validate the parameters (``CleanupSpec``): a bad stack name, image tag or git tag name fails
   the run before any call, and so does ``latest`` or a live stack (``refused_before_reading``);
2. read (each read of AWS bounded by ``read_timeout_seconds``: one given no answer by then fails
   the run, naming the service, the call and the bound, before anything is written): the archive
   tag in git (locally and on the remote), the task definitions in use (every
   deployment of the stable and canary services, every ACTIVE revision of the task family, what a
   rollback of a rollout still open restores and the image it has still to deploy (the ledger's),
   the revision of every running task) and the images they name, the repository's images, and each old stack;
3. plan (``rollway.cleanup.plan_cleanup``): a live stack, a stack holding a resource the targets
   name, a task definition in use, the VPC, a subnet or a security group the services or the load
   balancer are in, or the listener or rule production's traffic comes through, a stack whose export another stack imports, a stack CloudFormation is changing, a stack name CloudFormation has no record of (live or deleted: a misspelling), ``latest``, an image in use (by tag or by digest), an image in ECR's archive while an archived image index is there (which platform images it lists cannot be read) or a protected stack is refused, and any refusal fails the run here, each one
   named with its reason, before anything is written;
4. archive the code first (an annotated tag, pushed), so it is kept before its infrastructure goes;
5. check that each old image tag still names the image the plan judged (a tag pushed again since
   stops the run, no tag deleted), then delete them (in batches of 100), reading again right
   before each batch what production runs (the reads of 2, on the same bound): every tag of an
   image that came into use since the plan (a rollout started, a revision registered, a service
   pointed at it) is kept, and so is a tag pushed again while an earlier batch was deleted (the
   repository is read again before each batch after the first), and the run stops after the
   batches, before the stacks, naming its user or the image the tag names now;
6. delete the old stacks, each its own task, waiting for DELETE_COMPLETE with progress logged,
   each read again right before (the stack, what production runs, its routing and network): one
   changed since the plan (status, LastUpdatedTime, newest event, protection, a new stack of the name, what it
   holds through a nested stack updated on its own; a
   deletion under way at the plan that ended DELETE_FAILED since is said as such, with
   CloudFormation's reason) or refused now (``judge_stack_again``) is kept, the others still go,
   and the run fails at the end naming it; one gone meanwhile is reported gone.

``dry_run`` stops after 3 and reports what would be archived and deleted. A run that stops
part-way raises ``CleanupIncomplete`` naming what was done and what was not; running it again
is safe (what is gone is reported as gone). Every run ends with a markdown artifact, one
cancelled or interrupted part-way too (what it had deleted, and what it had not).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Sequence

from prefect import flow, get_run_logger
from prefect.exceptions import ParameterTypeError
from pydantic import ValidationError

from flows.artifacts import create_markdown_artifact, for_people
from flows.env import load_clients
from flows.params import ReadSeconds, StackName, WaitSeconds
from rollway.aws.cloudformation import CloudFormationStacks, StackNotDeleted
from rollway.aws.ecr_images import DescribedTaskDefinitions, EcrImages
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.ledger import DynamoLedger
from rollway.cleanup import (
    IN_ARTIFACT, NOT_FOUND, CleanupIncomplete, CleanupPlan, CleanupRefused, CleanupResult, CleanupSpec, ImageUse, NetworkUse,
    RepositoryImage, RoutingInUse, StackState, came_into_use, describe_archive, describe_network, describe_stack_state,
    first_few,
    image_fate, in_use_summary,
    Refusal, judge_stack_again, moved_tags, no_image_tagged, plan_cleanup, planned_result, refused_before_reading,
    summary_markdown, tags_left, why_shown,
)
from rollway.deadline import READ_SECONDS
from rollway.failure_words import error_said, failures_writable
from rollway.targets import Targets
from rollway.toolchain.git import GitCli
from tasks import cleanup as steps

ARTIFACT_KEY = "cleanup-summary"


def run_cleanup(spec: CleanupSpec, targets: Targets, get_client: Callable[[str], Any], *,
                stack_timeout_seconds: float = 1800.0, git_timeout_seconds: float = 120.0) -> CleanupResult:
    """Read, plan, then archive and delete as the module docstring says.

    Raises:
        CleanupRefused: the plan refuses something; nothing was written.
        CleanupIncomplete: a step failed after others were done; the message lists both.
        GitError, InUseUnknown, TargetNotFound: a read failed; nothing was written.
        CleanupReadUnanswered: a read of AWS got no answer within ``spec.read_timeout_seconds``;
            nothing was written.
    """
    with _stops_before_writing():
        # What no read can change (``latest``, a live stack) is refused before the first call.
        if refused := refused_before_reading(spec, targets):
            raise _refused(refused)
        plan, git, images, again, stacks = _read_and_plan(spec, targets, get_client, git_timeout_seconds)
    log = get_run_logger()
    # In the log too: a misspelt tag leaves its image in place, the run Completed.
    for tag, close in plan.tags_close.items():
        log.warning("%s", no_image_tagged(tag, targets.ecr_repository, close))
    if plan.refused:
        refusal = _refused(plan.refusals)
        _report(planned_result(plan), targets)
        raise refusal
    if spec.dry_run:
        result = planned_result(plan)
        log.info("dry run: would archive %s; would delete image tags %s and stacks %s; image tags not found (deleted "
                 "before, or never there: check the spelling): %s; stacks deleted before: %s",
                 result.archived or "nothing", list(plan.delete_tags) or "none", list(plan.delete_stacks) or "none",
                 list(plan.gone_tags) or "none", list(plan.gone_stacks) or "none")
        _report(result, targets)
        return result
    # Said before the first write, as a dry run says it: a run with dry_run unticked logged each
    # deletion only once it was done, and what it set out to delete nowhere.
    # (The tags not found are said one by one below.)
    log.info("the plan: archive %s; delete image tags %s and stacks %s, each read again right before it goes; stacks "
             "deleted before: %s", _archive_planned(plan), list(plan.delete_tags) or "none",
             list(plan.delete_stacks) or "none", list(plan.gone_stacks) or "none")
    # The others too (close to none: a wrong repository, a tag deleted before): said in the artifact
    # alone, the log of a Completed run read as if every tag asked for had been dealt with.
    for tag in plan.gone_tags:
        if tag not in plan.tags_close:
            log.info("%s; %s", no_image_tagged(tag, targets.ecr_repository, ()), NOT_FOUND.lower())
    return _act(spec, plan, git, images, again, stacks, targets, stack_timeout_seconds)


def _refused(refusals: Sequence[Refusal]) -> CleanupRefused:
    """The run's error for ``refusals``, each said in the log."""
    log = get_run_logger()
    for refusal in refusals:
        log.error("refused: %s", refusal)
    return CleanupRefused(refusals)


def _archive_planned(plan: CleanupPlan) -> str:
    """The archive the plan writes, for the plan's log line: "tag T (pushed to origin)"."""
    archive = plan.archive
    if archive is None:
        return "nothing"
    notes = ["it exists already"] if archive.exists else []
    if archive.push_to is not None:
        notes.append(f"on {archive.push_to} already" if archive.pushed else f"pushed to {archive.push_to}")
    return f"tag {archive.tag}" + (f" ({'; '.join(notes)})" if notes else "")


def _how_stopped(err: BaseException) -> str:
    """What stopped a run, as its artifact and log say it: the error, or that it was interrupted."""
    if isinstance(err, Exception):
        return error_said(err)
    return "interrupted (the run was cancelled, or its worker was stopped)"


@contextmanager
def _stops_before_writing() -> Iterator[None]:
    """Leave the run's artifact when it stops before anything is written (a bad parameter, a read
    that failed or got no answer, a cancel): such a run left none, and the key's newest was the
    previous run's summary ("Cleanup done", what it deleted), which read as this run's."""
    try:
        yield
    except BaseException as err:  # noqa: BLE001 - said in the artifact, then raised as it came
        how = _how_stopped(err)
        for_people("cleanup summary", lambda: create_markdown_artifact(
            key=ARTIFACT_KEY, description="cleanup summary (stopped before writing)",
            markdown=f"# Cleanup stopped before anything was written\n\n**Stopped:** {how}\n\n"
                     "**Nothing was archived or deleted.** Fix the cause above and run cleanup again.\n"))
        raise


class _Reads:
    """The reads the deletion makes again after the plan, on the plan's read clients and bound."""

    def __init__(self, reads: Callable[[str], Any], targets: Targets, seconds: float) -> None:
        self._reads, self._targets, self.seconds = reads, targets, seconds
        self._images = EcrImages(reads("ecr"), targets.ecr_repository)
        self._stacks = CloudFormationStacks(reads("cloudformation"), keep=targets.stacks)
        # Revisions the plan described are not described again by the reads before each batch.
        self._described = DescribedTaskDefinitions()

    def in_use(self, nothing: str | None = steps.NOTHING_DELETED) -> tuple[ImageUse, ...]:
        """What production runs, the ledger's open rollout included (``nothing``: as the tasks take it)."""
        targets, seconds = self._targets, self.seconds
        # What a rollback still to come would put back on the canary: the ledger knows it, ECS may not
        # (a task definition of another family than the one the rollout registered).
        needs = steps.open_rollout_needs(DynamoLedger(self._reads("dynamodb"), targets), targets, seconds,
                                         nothing=nothing)
        return steps.images_in_use(self._reads("ecs"), targets, seconds, needs.restores, described=self._described,
                                   nothing=nothing) + needs.deploys

    def repository(self, nothing: str | None = steps.NOTHING_DELETED) -> tuple[RepositoryImage, ...]:
        """The repository's images."""
        return steps.list_images(self._images, self._targets, self.seconds, nothing=nothing)

    def stack(self, name: str, nothing: str | None = steps.NOTHING_DELETED) -> StackState:
        """The stack with all it holds and who imports its exports."""
        return steps.describe_stack(self._stacks, name, self._targets, self.seconds, nothing=nothing)

    def routing(self, nothing: str | None = steps.NOTHING_DELETED) -> RoutingInUse:
        """The listener and rule production's traffic comes through (a router of its own: one
        resolves them once)."""
        return steps.routing_in_use(AlbRouter(self._reads("elbv2"), self._targets), self._targets, self.seconds,
                                    nothing=nothing)

    def network(self, in_use: Sequence[ImageUse],
                nothing: str | None = steps.NOTHING_DELETED) -> tuple[NetworkUse, ...]:
        """The VPC, subnets and security groups production's tasks and load balancer are in, the
        certificates its load balancer serves, and the mount targets of the EFS file systems ``in_use``
        mounts, with their VPCs, subnets and security groups (none read when it mounts none)."""
        network = steps.network_in_use(self._reads("ecs"), self._reads("elbv2"), self._targets, self.seconds,
                                       nothing=nothing)
        if not any(use.file_systems for use in in_use):
            return network
        return network + steps.mount_targets_in_use(self._reads("efs"), in_use, self._targets, self.seconds,
                                                    nothing=nothing)


def _read_and_plan(spec: CleanupSpec, targets: Targets, get_client: Callable[[str], Any],
                   git_timeout_seconds: float) -> tuple[CleanupPlan, GitCli | None, EcrImages, _Reads,
                                                        CloudFormationStacks]:
    """Every read, then the plan: nothing is written here. Returns the plan, the clients that act
    on it and the reads made again before deleting."""
    log = get_run_logger()
    git = None
    if spec.archive_tag is not None:
        assert spec.repo_dir is not None  # CleanupSpec requires it with archive_tag
        git = GitCli(spec.repo_dir, timeout_seconds=git_timeout_seconds, on_line=lambda line: log.info("git: %s", line))
    stacks = CloudFormationStacks(get_client("cloudformation"), keep=targets.stacks)
    images = EcrImages(get_client("ecr"), targets.ecr_repository)
    # The reads, on clients whose calls end within the bound (a read given up on goes on in its
    # thread: on the run's clients, for up to a minute after), each naming its calls.
    seconds = spec.read_timeout_seconds
    again = _Reads(_read_clients(get_client, seconds), targets, seconds)

    # Reads, all of them before anything is written.
    archive = None
    if git is not None:
        archive = steps.archive_state(git, spec.archive_tag, spec.archive_commit, spec.remote if spec.push else None)
        log.info("%s", describe_archive(spec.archive_tag, archive, spec.remote if spec.push else None))
        if archive.uncommitted and archive.local_commit is None and spec.allow_uncommitted:
            log.warning("the checkout %s has %d uncommitted change(s) the archive tag leaves out (allow_uncommitted): "
                        "%s", spec.repo_dir, len(archive.uncommitted),
                        first_few(list(archive.uncommitted), where="listed by `git status` there"))
    # What production runs matters to image tags and to stacks (one that registered a task
    # definition in use deregisters it when deleted); an archive-only run does not read it.
    reads_in_use = bool(spec.old_image_tags or spec.old_stacks)
    in_use = again.in_use() if reads_in_use else ()
    if reads_in_use:  # counts and the first few: a big cluster's full list is the artifact's
        log.info("in use: %s", in_use_summary(in_use))
    repository_images = again.repository() if spec.old_image_tags else ()
    described = {name: again.stack(name) for name in spec.old_stacks}
    for state in described.values():
        log.info("stack %s: %s", state.name, describe_stack_state(state))
    # A stack may also hold the listener or the rule production's traffic comes through.
    routing = again.routing() if spec.old_stacks else None
    if routing is not None:
        log.info("production's traffic comes through listener %s and rule %s", routing.listener_arn, routing.rule_arn)

    # And the network production uses: CloudFormation cannot delete a VPC, subnet, security group or
    # listener certificate in use, and stops there after deleting the rest of the stack. It does
    # delete a mount target of a file system in use: the tasks in its subnet lose the file system.
    network = again.network(in_use) if spec.old_stacks else ()
    if network:
        log.info("%s", describe_network(network))

    plan = plan_cleanup(spec, targets, stacks=described, in_use=in_use, images=repository_images, archive=archive,
                        routing=routing, network=network)
    return plan, git, images, again, stacks


def _read_clients(get_client: Callable[[str], Any], seconds: float) -> Callable[[str], Any]:
    """Clients for the reads: the run's, bounded at ``seconds`` where its factory makes such
    clients (``SessionClients.reading``), each naming its calls for a read given up on."""
    reading = getattr(get_client, "reading", None)
    factory = reading(seconds) if reading is not None else get_client
    return lambda service: steps.naming_calls(factory(service))


class _Progress:
    """What this run has done so far, so a failure can say what was done and what was not."""

    def __init__(self, spec: CleanupSpec, plan: CleanupPlan) -> None:
        self.log = get_run_logger()
        self.fields: dict[str, Any] = {"gone_tags": plan.gone_tags, "tags_close": plan.tags_close,
                                       "gone_stacks": plan.gone_stacks,
                                       "in_use": plan.in_use, "tag_digests": plan.tag_digests, "tags_kept": plan.tags_kept,
                                       "stack_resources": plan.stack_resources,
                                       "stack_retained": plan.stack_retained,
                                       "stack_holdings": plan.stack_holdings}
        self.done: list[str] = []
        self.left: list[str] = []
        if plan.archive is not None:
            self.left.append(f"create tag {plan.archive.tag}")
            if plan.archive.push_to is not None:
                self.left.append(f"push tag {plan.archive.tag}")
        self.left += [f"image tag {t}" for t in plan.delete_tags] + [f"stack {s}" for s in plan.delete_stacks]
        # The step under way, and what may still become of it if the run stops during it.
        self.step = "start"
        self.meanwhile = "nothing had been written yet"

    def at(self, step: str, meanwhile: str) -> str:
        self.step, self.meanwhile = step, meanwhile
        return step

    def did(self, item: str, line: str) -> None:
        self.log.info("%s", line)
        self.done.append(line)
        if item in self.left:
            self.left.remove(item)

    def holds(self, stack: StackState) -> None:
        """Record what ``stack`` holds, what of it its DeletionPolicy keeps and each one's type, as read now."""
        self.fields["stack_resources"] = {**self.fields["stack_resources"], stack.name: stack.resources}
        for field, now in (("stack_retained", stack.retained), ("stack_holdings", stack.holdings)):
            others = {name: held for name, held in self.fields[field].items() if name != stack.name}
            self.fields[field] = {**others, **({stack.name: now} if now else {})}

    def result(self, stopped: str | None = None) -> CleanupResult:
        return CleanupResult(**self.fields, not_done=tuple(self.left), stopped=stopped)

    def failed(self, step: str, err: Exception, targets: Targets, also: str = "", after: str = "") -> CleanupIncomplete:
        """``err`` stopped the run during ``step``: said in the log, the artifact and the error
        returned, with ``after`` (what ``err`` may have left done) and ``also`` (what else the run
        left undone on purpose, and why) after it."""
        why = error_said(err) + (f"; {after}" if after else "") + (f"; before it, {also}" if also else "")
        # On one line, escaped, as the summary writes it: CloudFormation's reasons quote a custom
        # resource's answer as it came, and a line break in it read as a log line of its own.
        self.log.error("cleanup stopped at %s: %s", step, why_shown(why))
        _report(self.result(stopped=f"while it tried to {step}: {why}"), targets)  # the whole of it
        return CleanupIncomplete(step, why, self.done, self.left)

    def interrupted(self, err: BaseException, targets: Targets) -> None:
        """Say, in the log and the artifact, what a run that stopped during ``self.step`` had done.

        Cancelled from the UI (Prefect's TerminationSignal), Ctrl-C, or an error no step expected:
        such a run ended with no artifact, and what it had deleted before was known to no one.
        """
        how = _how_stopped(err)
        stopped = (f"{how} while it tried to {self.step}; {self.meanwhile}. Run cleanup again with the same "
                   "parameters: what is gone is reported as gone, and it carries on with the rest")
        self.log.error("cleanup stopped: %s. Done: %s. Not done: %s", stopped,
                       first_few(self.done, where=IN_ARTIFACT) or "nothing",
                       first_few(self.left, where=IN_ARTIFACT) or "nothing")
        _report(self.result(stopped=stopped), targets)  # never in the way of the interruption itself


_GIT_STOPPED = "git was stopped, so the tag may or may not be there"


def _act(spec: CleanupSpec, plan: CleanupPlan, git: GitCli | None, images: EcrImages, again: _Reads,
         stacks: CloudFormationStacks, targets: Targets, stack_timeout_seconds: float) -> CleanupResult:
    progress = _Progress(spec, plan)
    try:
        return _act_steps(progress, plan, git, images, again, stacks, targets, stack_timeout_seconds)
    except CleanupIncomplete:
        raise  # its artifact is written
    except BaseException as err:
        progress.interrupted(err, targets)
        raise


def _act_steps(progress: _Progress, plan: CleanupPlan, git: GitCli | None, images: EcrImages, again: _Reads,
               stacks: CloudFormationStacks, targets: Targets, stack_timeout_seconds: float) -> CleanupResult:
    archive = plan.archive
    if archive is not None and git is not None:
        # Each archive write is its own step, so a failed push still says the tag was created.
        step = progress.at(f"create the archive tag {archive.tag}", _GIT_STOPPED)
        try:
            created = steps.create_tag(git, archive.tag, archive.message, archive.commit)
        except Exception as err:  # noqa: BLE001 - reported with what was done and what was not
            raise progress.failed(step, err, targets) from err
        progress.fields["archived"] = (f"tag `{archive.tag}` -> {archive.commit}: "
                                       + ("created" if created == "created" else "existed already")
                                       + (archive.left_out() if created == "created" else ""))
        progress.did(f"create tag {archive.tag}", f"archived: {progress.fields['archived']}")
        if archive.push_to is not None:
            step = progress.at(f"push the archive tag {archive.tag} to {archive.push_to}",
                               f"git was stopped, so {archive.push_to} may or may not have the tag")
            try:
                pushed = steps.push_tag(git, archive.push_to, archive.tag)
            except Exception as err:  # noqa: BLE001
                raise progress.failed(step, err, targets) from err
            progress.fields["pushed"] = (f"`{archive.tag}` on remote `{archive.push_to}`: "
                                         + ("pushed" if pushed == "pushed" else "there already"))
            progress.did(f"push tag {archive.tag}", f"archive: {progress.fields['pushed']}")

    if plan.delete_tags:
        # The plan judged the image each tag named when it read the repository. A tag pushed again
        # since (by CI while the archive was pushed, say) names an image nothing judged, perhaps
        # one just deployed: deleting by tag would delete that.
        step = progress.at("check that each image tag still names the image the plan judged",
                           "it had deleted no image tag")
        try:
            # Read after the archive: what was done before it is said with its failure
            # (``progress.failed``), not here.
            repository = again.repository(nothing=None)
            moved = moved_tags(plan, repository)
        except Exception as err:  # noqa: BLE001
            raise progress.failed(step, err, targets) from err
        if moved:
            raise progress.failed(step, RuntimeError(
                _pushed_again(plan, moved) + "; no image tag was deleted, and a new run judges the images they name now"),
                targets)
        tags = plan.delete_tags
        named = ", ".join(tags[:3]) + (f" and {len(tags) - 3} more" if len(tags) > 3 else "")
        step = progress.at(f"delete {len(tags)} image tag(s) ({named}) from {targets.ecr_repository}",
                           "ECR may have deleted some of the tags listed as not done")

        # The tags of a later batch pushed again while an earlier one was deleted -> what they name now.
        pushed_again: dict[str, str] = {}
        batches = 0

        def still_unused(remaining: Sequence[str]) -> dict[str, str]:
            # What production runs may have changed since the plan read it (a rollout started, a
            # revision registered, a service pointed at an old image): read again, right before
            # each batch of 100 tags, what the plan read, on the same bound. Per batch: 1 Query of
            # the ledger; ECS: 1 DescribeServices (stable and canary), the pages of ListServices (10
            # a page), ListTaskDefinitions and ListTasks (100 a page), 1 DescribeServices per 10
            # other services, 1 DescribeTasks per 100 running tasks, and 1 DescribeTaskDefinition
            # per revision in use not described before (none when nothing changed). ECR deletes
            # by tag with no condition: a use that starts after this read is still not seen.
            # And the repository, before each batch after the first (read right above): a tag of
            # a later batch CI pushed again meanwhile, deleted by its name, took the new image
            # nothing judged with it. It is kept, as one whose image came into use is.
            nonlocal repository, batches
            if batches:
                repository = again.repository(nothing=None)
            batches += 1
            moved_now = {tag: digest for tag, digest in moved_tags(plan, repository).items() if tag in remaining}
            pushed_again.update(moved_now)
            unmoved = [tag for tag in remaining if tag not in moved_now]
            return {**{tag: _pushed_again(plan, {tag: digest}) for tag, digest in moved_now.items()},
                    **came_into_use(plan, unmoved, targets.ecr_repository, again.in_use(nothing=None), repository,
                                    pushed_again=pushed_again)}

        # The tags of every try's BatchDeleteImage call whose answer was lost: the last try may
        # have stopped before sending anything (a read before its first call), or lost no answer.
        unanswered = steps.UnansweredDeletes()
        try:
            deletion = steps.delete_tags(images, plan.delete_tags, targets, still_unused, unanswered=unanswered)
        except Exception as err:  # noqa: BLE001
            # ECR may have acted on a call whose answer was lost: its tags are gone, yet listed
            # as not done, and a new run lists them as not found, as if someone else had deleted them.
            maybe = ("ECR may have deleted the image tags of the call whose answer was lost "
                     f"({first_few(list(unanswered.tags), where=IN_ARTIFACT)}), though listed as not done: a new run "
                     "finds them gone and lists them as not found") if unanswered.tags else ""
            raise progress.failed(step, err, targets, after=maybe) from err
        # Whether an image went with its tag is known once ECR has answered for all of them.
        progress.fields["tags_kept"] = left = tags_left(plan, set(deletion.deleted) | set(deletion.gone))
        for tag in deletion.deleted:
            progress.did(f"image tag {tag}", f"deleted image tag {tag} (image {plan.tag_digests.get(tag, '?')}"
                                             f"{image_fate(left.get(tag))}) from {targets.ecr_repository}")
        for tag in deletion.gone:  # deleted by someone else since the plan read the repository
            progress.did(f"image tag {tag}", f"image tag {tag} was already gone")
        progress.fields["deleted_tags"] = deletion.deleted
        progress.fields["gone_tags"] = plan.gone_tags + deletion.gone
        problems = []
        came = {tag: why for tag, why in deletion.withheld.items() if tag not in pushed_again}
        if came:
            problems.append("not deleted: "
                            + _once_each(came, before="image tag(s) ")
                            + " (a new run refuses them while they are in use: leave them out of old_image_tags); "
                            "the stacks were left as they are, planned against what production ran before")
        moved = {tag: digest for tag, digest in pushed_again.items() if tag in deletion.withheld}
        if moved:
            problems.append(f"not deleted: {_pushed_again(plan, moved)}, while an earlier batch was deleted; a new run "
                            "judges the images they name now, and the stacks were left as they are")
        if deletion.failed:
            # Not "did not delete": a call whose answer was lost may have.
            problems.append(f"ECR did not confirm deleting {_once_each(deletion.failed)}")
        if problems:
            raise progress.failed(step, RuntimeError("; and ".join(problems)), targets)

    deleted_stacks: list[str] = []
    gone_stacks = list(plan.gone_stacks)
    kept_stacks: dict[str, str] = {}

    def kept_said() -> str:
        # Said with a failure of a later stack too: "Not done: stack A" alone left a person reading
        # the run's state to guess that stack A was kept on purpose, and why.
        return "; and ".join(f"stack {name} was not deleted: {why}" for name, why in kept_stacks.items())

    for index, name in enumerate(plan.delete_stacks):
        # The plan judged the stack before the image tags and the stacks before it went (each
        # waited on for up to stack_timeout_seconds): read it again, and what production runs.
        step = progress.at(f"read stack {name} again before deleting it", f"stack {name} was not asked to be deleted")
        try:
            now, why = _judged_again(name, plan, again, targets, done=deleted_stacks + gone_stacks,
                                     later=plan.delete_stacks[index + 1:])
        except Exception as err:  # noqa: BLE001
            raise progress.failed(step, err, targets, also=kept_said()) from err
        outcome: str | None = "already_gone" if now.gone else None
        if outcome is None and why is None:
            # The record says what it held when read right before its deletion: what a nested stack
            # lost since the plan (deleted on its own) was not deleted with it.
            progress.holds(now)
            step = progress.at(f"delete stack {name}", f"CloudFormation goes on deleting stack {name} if it had "
                                                       "begun: it may be gone or still DELETE_IN_PROGRESS")
            try:
                outcome = steps.delete_stack(stacks, name, stack_timeout_seconds, targets,
                                             judged=plan.stacks_judged.get(name))
            except StackNotDeleted as err:  # changed (or protected) between the read above and DeleteStack's own
                why = err.why
            except Exception as err:  # noqa: BLE001
                raise progress.failed(step, err, targets, also=kept_said()) from err
        if outcome is None:
            assert why is not None  # not deleted, and not gone: kept for this reason
            kept_stacks[name] = why
            progress.fields["stacks_kept"] = dict(kept_stacks)
            # On one line, escaped and cut, as the run's error says it: CloudFormation's reason for a
            # failed deletion quotes a custom resource's answer, line breaks and all (the summary keeps it whole).
            progress.log.warning("stack %s was not deleted: %s", name, why_shown(why))
            continue
        # A nested stack listed after its root went with the root this run deleted: not "already
        # gone", which read as deleted by hand or by an earlier run.
        root = plan.stacks_judged[name].root_stack if name in plan.stacks_judged else None
        with_root = outcome == "already_gone" and root is not None and root.lower() in {
            s.lower() for s in deleted_stacks}
        (deleted_stacks if outcome == "deleted" or with_root else gone_stacks).append(name)
        progress.fields.update(deleted_stacks=tuple(deleted_stacks), gone_stacks=tuple(gone_stacks))
        kept = progress.fields["stack_retained"].get(name, ())
        progress.did(f"stack {name}", (f"deleted stack {name}" + (
            f"; its DeletionPolicy kept {len(kept)} of its resources in place: {', '.join(kept)}" if kept else ""))
            if outcome == "deleted" else f"deleted stack {name} with its root stack {root}, which this run deleted "
            "(CloudFormation deletes a nested stack with its root)" if with_root
            else f"stack {name} was already gone: deleted since the plan read it")
    if kept_stacks:
        raise progress.failed("delete the old stacks", RuntimeError(kept_said()), targets)

    progress.at("write its summary", "everything it was to do was done")
    result = progress.result()
    _report(result, targets)
    return result


def _judged_again(name: str, plan: CleanupPlan, again: _Reads, targets: Targets, *, done: Sequence[str],
                  later: Sequence[str]) -> tuple[StackState, str | None]:
    """The planned stack ``name`` as read again (gone already, perhaps), and why it is not to be
    deleted now (``judge_stack_again``; None: delete it).

    Reads again the stack, then what production runs, the routing and the network (each on the
    read bound): per stack, the plan's reads of that stack (DescribeStacks, the pages of
    ListStackResources, GetTemplate, ListExports and ListImports), of what production runs (as
    before each batch of tags: revisions known are not described again), of the load balancer and
    of the mount targets of the EFS file systems in use, beside a deletion that takes minutes. A
    stack gone is read no further.
    """
    now = again.stack(name, nothing=None)
    if now.gone:
        return now, None
    in_use = again.in_use(nothing=None)
    return now, judge_stack_again(name, plan, now, targets, deleted=done, later=later, in_use=in_use,
                                    routing=again.routing(nothing=None), network=again.network(in_use, nothing=None))


def _pushed_again(plan: CleanupPlan, moved: dict[str, str]) -> str:
    """What the tags ``moved`` (tag -> the digest it names now) name since the plan read them."""
    return ("image tag(s) pushed again since the plan read the repository, so they name images nothing judged: "
            + "; ".join(f"{tag} named {plan.tag_digests[tag]}, now {digest}" for tag, digest in moved.items()))


def _once_each(why_by_tag: dict[str, str], before: str = "") -> str:
    """Tag -> why, each why said once with its tags: one refused call fails up to 100 tags with
    the same error, and an image in use keeps all its tags for the same reason."""
    by_reason: dict[str, list[str]] = {}
    for tag, why in why_by_tag.items():
        by_reason.setdefault(why, []).append(tag)
    return "; ".join(f"{before}{', '.join(tags)}: {why}" for why, tags in by_reason.items())


def _report(result: CleanupResult, targets: Targets) -> None:
    # Written while the run fails or stops too: an artifact the Prefect API refused replaced the
    # run's error, the one saying what was deleted and what was not. Logged instead.
    for_people("cleanup summary", lambda: create_markdown_artifact(
        key=ARTIFACT_KEY, markdown=summary_markdown(result, targets.ecr_repository), description="cleanup summary"))


def _spec(**parameters: Any) -> CleanupSpec:
    """The parameters as a CleanupSpec, or a parameter error said as Prefect says another flow's.

    pydantic's own said "1 validation error for CleanupSpec" and, under each problem, a link to
    its documentation: in the run's state and its artifact, which other flows' parameter errors
    are not.
    """
    try:
        return CleanupSpec(**parameters)
    except ValidationError as err:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"] for e in err.errors()]
        raise ParameterTypeError("Flow run received invalid parameters:\n - " + "\n - ".join(problems)) from None


@flow(name="cleanup", log_prints=True)
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def cleanup(
    old_stacks: list[StackName] | None = None,
    old_image_tags: list[str] | None = None,
    archive_tag: str | None = None,
    archive_message: str = "",
    archive_commit: str | None = None,
    repo_dir: str | None = None,
    remote: str = "origin",
    push: bool = True,
    dry_run: bool = False,
    allow_uncommitted: bool = False,
    stack_timeout_seconds: WaitSeconds = 1800.0,
    read_timeout_seconds: ReadSeconds = READ_SECONDS,
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
) -> CleanupResult:
    """Archive the old code under a git tag, then delete old ECR image tags and old CloudFormation stacks.

    Refuses, before anything is deleted, a live stack (``Targets.stacks``), ``latest``, an image
    tag a task definition in use references (by tag or by digest), a stack with termination
    protection and a stack name CloudFormation has no record of (a misspelling), naming each.
    ``dry_run`` reads, plans and reports, deleting nothing. Safe to run again after a failure. A
    tag made with ``allow_uncommitted`` leaves the uncommitted changes out of the archive, and the
    log and the summary say so.

    Args:
        old_stacks: CloudFormation stacks to delete (e.g. webordinary-old-stack).
        old_image_tags: tags to delete from the targets' ECR repository (e.g. old-version).
        archive_tag: an annotated git tag to create and push first (e.g. pre-sqs-architecture).
        archive_message: its message (e.g. "Archive before SQS migration").
        archive_commit: the commit to tag (default: HEAD of ``repo_dir``).
        repo_dir: the git checkout to tag in, on the machine that runs the flow.
        remote: where the tag is pushed.
        push: push the tag.
        dry_run: report what would be archived and deleted; change nothing.
        allow_uncommitted: tag HEAD although ``repo_dir`` has uncommitted changes; off: such a run is refused.
        stack_timeout_seconds: how long each stack's deletion may take.
        read_timeout_seconds: how long one read of AWS may take, retries included, before the run stops unanswered.
        targets_block: a saved RollwayTargets block; cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
    """
    with _stops_before_writing():
        spec = _spec(old_stacks=tuple(old_stacks or ()), old_image_tags=tuple(old_image_tags or ()),
                     archive_tag=archive_tag, archive_message=archive_message, archive_commit=archive_commit,
                     repo_dir=repo_dir, remote=remote, push=push, dry_run=dry_run,
                     allow_uncommitted=allow_uncommitted, read_timeout_seconds=read_timeout_seconds)
        targets, get_client = load_clients(targets_block, aws_credentials_block)
    return run_cleanup(spec, targets, get_client, stack_timeout_seconds=stack_timeout_seconds)
