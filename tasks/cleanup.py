"""Thin tasks for the cleanup flow: one adapter call each, retries on the decorator.

Each read of AWS is bounded by the run's ``read_timeout_seconds`` (``bounded``): one that gets no
answer by then fails as ``CleanupReadUnanswered``, naming the service, the call and the bound, and
is not made again (on the run's clients, retried, a service that stopped answering held a run
for minutes per read, silent). Reads are retried when AWS or git failed in passing; a named refusal or a missing target fails
the same way every time and is not, and neither is a call AWS refused for want of a permission:
it fails at once as ``PermissionDenied``, naming the action and the policy statement granting it.
Of the writes, only the idempotent ones are retried: a tag
push and a batch delete of tags report what is already done as done; a stack deletion is not
retried here (its wait can be long, and running cleanup again carries on from where it stopped).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Sequence, TypeVar

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from rollway.aws.cloudformation import CloudFormationStacks, DeleteOutcome, StackDeleteFailed, StackDeleteUnfollowed
from rollway.aws.ecr_images import DescribedTaskDefinitions, EcrImages, InUseUnknown, TagDeletion
from rollway.aws.ecr_images import images_in_use as read_images_in_use
from rollway.aws.ecr_images import mount_targets_in_use as read_mount_targets_in_use
from rollway.aws.ecr_images import network_in_use as read_network_in_use
from rollway.aws.ecr_images import open_rollout_needs as read_open_rollout_needs
from rollway.aws.denied import INFRASTRUCTURE_POLICY, named_denials, named_refusal
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import REFUSED_CODES, AdapterError, answer_lost
from rollway.cleanup import (ArchiveState, CleanupReadUnanswered, ImageUse, NetworkUse, OpenRolloutNeeds,
                             RepositoryImage, RoutingInUse, StackState)
from rollway.deadline import Hushable, Unanswered, within
from rollway.failure_words import error_said
from rollway.targets import Targets
from rollway.toolchain.git import GitCli, GitError
from tasks import retry


# Anything but a named adapter or git error, or a refused permission or unknown credentials:
# those fail the same way again (a refused read waited 1 s and 5 s for two more refusals).
# A read given up on at its bound is not asked again either: its bound is the whole read's.
_final = retry.unless(AdapterError, GitError, ValueError, Unanswered, denied=REFUSED_CODES)


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """``_final``'s rule, but what production runs read unknown because AWS throttled the read or
    failed on its side (``InUseUnknown.passing``) is asked again, as the repository's and the stacks'
    reads are: named, it failed the run at once."""
    try:
        state.result()
    except InUseUnknown as err:
        if err.passing:
            return True
    except Exception:  # noqa: BLE001 - judged by _final
        pass
    return _final(task, task_run, state)


# The policy cleanup's role holds (README, Least privilege): a refusal names its statement, the
# run's targets telling which of its resources one of the user's names (or region) stands for.
_POLICY = INFRASTRUCTURE_POLICY

_READ = {"retries": 2, "retry_delay_seconds": [1, 5], "retry_condition_fn": _transient, "cache_policy": NONE}


T = TypeVar("T")

NOTHING_DELETED = "nothing was deleted (nor archived)"
"""What a read before any write that got no answer says the run did not do."""

# The operations the current thread's bounded read has asked, in order (``_asked``).
_asking = threading.local()


def _asked(model: Any, **_: Any) -> None:
    calls = getattr(_asking, "calls", None)
    if calls is not None:
        calls.append((model.service_model.service_id, model.name))


def naming_calls(client: Any) -> Any:
    """``client``, whose calls a bounded read (``bounded``) can name when one gets no answer."""
    client.meta.events.register("before-call", _asked, unique_id="rollway-cleanup-read-call")
    return client


def bounded(seconds: float, reading: str, work: Callable[[Callable[[str], None]], T], *,
            nothing: str | None = NOTHING_DELETED) -> T:
    """``work(say)``, a read of AWS for ``reading``, given up on after ``seconds``; the log says every
    10 s that it still waits, and ``say`` (its progress lines) is quiet once it is given up on.

    Raises:
        CleanupReadUnanswered: naming the call that got no answer (on a client ``naming_calls``
            made), the bound, and ``nothing``.
        Whatever ``work`` raised, as it raised it.
    """
    log = get_run_logger()
    calls: list[tuple[str, str]] = []
    # Hushed as the read is given up on: a line begun before is said before, none after (a check
    # of a flag, then the log call, let a line past the check reach the log after the give-up).
    say = Hushable(lambda line: log.info("%s", line))

    def read() -> T:
        _asking.calls = calls
        try:
            return work(say)
        finally:
            _asking.calls = None

    def waiting(elapsed: float) -> None:
        service, call = calls[-1] if calls else ("AWS", "its first call")
        log.info("still waiting for %s (%s, read for %s) after %.0f s of %g s", service, call, reading, elapsed, seconds)

    try:
        return within(seconds, read, name="rollway-cleanup-read", waiting=waiting)
    except Unanswered:
        say.hush()
        service, call = calls[-1] if calls else ("AWS", "its first call")
        raise CleanupReadUnanswered(service, call, seconds, reading, nothing) from None


@task(name="describe-stack", task_run_name="describe-stack-{name}", **_READ)
def describe_stack(stacks: CloudFormationStacks, name: str, targets: Targets, seconds: float,
                   nothing: str | None = NOTHING_DELETED) -> StackState:
    with named_denials(_POLICY, targets=targets):
        return bounded(seconds, f"stack {name}", lambda _say: stacks.describe(name), nothing=nothing)


@task(name="images-in-use", **_READ)
def images_in_use(ecs: Any, targets: Targets, seconds: float, restores: Sequence[tuple[str, str]] = (),
                  described: DescribedTaskDefinitions | None = None,
                  nothing: str | None = NOTHING_DELETED) -> tuple[ImageUse, ...]:
    with named_denials(_POLICY, targets=targets):
        return bounded(seconds, "what production runs",
                       lambda say: read_images_in_use(ecs, targets, on_progress=say, restores=restores,
                                                      described=described), nothing=nothing)


@task(name="open-rollout-needs", **_READ)
def open_rollout_needs(ledger: Any, targets: Targets, seconds: float,
                       nothing: str | None = NOTHING_DELETED) -> OpenRolloutNeeds:
    """What the newest rollout, still open, needs kept (the ledger's): what its rollback would
    restore on the canary, and the image it has still to deploy."""
    with named_denials(_POLICY, targets=targets):
        return bounded(seconds, "what an open rollout needs (the ledger)",
                       lambda _say: read_open_rollout_needs(ledger, targets), nothing=nothing)


@task(name="network-in-use", **_READ)
def network_in_use(ecs: Any, elbv2: Any, targets: Targets, seconds: float,
                   nothing: str | None = NOTHING_DELETED) -> tuple[NetworkUse, ...]:
    """The VPC, subnets and security groups the services and the load balancer are in, and the
    certificates its listeners serve."""
    with named_denials(_POLICY, targets=targets):
        return bounded(seconds, "the network production's tasks and load balancer are in, and the certificates its "
                       "load balancer serves", lambda _say: read_network_in_use(ecs, elbv2, targets), nothing=nothing)


@task(name="mount-targets-in-use", **_READ)
def mount_targets_in_use(efs: Any, in_use: Sequence[ImageUse], targets: Targets, seconds: float,
                         nothing: str | None = NOTHING_DELETED) -> tuple[NetworkUse, ...]:
    """The mount targets of the EFS file systems the task definitions in use mount, with their
    VPCs, subnets and security groups."""
    with named_denials(_POLICY, targets=targets):
        return bounded(seconds, "the mount targets of the EFS file systems production mounts, and their security "
                       "groups",
                       lambda _say: read_mount_targets_in_use(efs, in_use), nothing=nothing)


@task(name="routing-in-use", **_READ)
def routing_in_use(router: AlbRouter, targets: Targets, seconds: float,
                   nothing: str | None = NOTHING_DELETED) -> RoutingInUse:
    """The listener and the rule production's traffic comes through (a stack holding one is kept)."""
    with named_denials(_POLICY, targets=targets):
        return bounded(seconds, "the listener and rule production's traffic comes through",
                       lambda _say: RoutingInUse(listener_arn=router.listener_arn, rule_arn=router.rule_arn),
                       nothing=nothing)


@task(name="list-repository-images", **_READ)
def list_images(images: EcrImages, targets: Targets, seconds: float,
                nothing: str | None = NOTHING_DELETED) -> tuple[RepositoryImage, ...]:
    with named_denials(_POLICY, targets=targets):
        return bounded(seconds, f"the images of {targets.ecr_repository}", lambda _say: images.list_images(),
                       nothing=nothing)


@task(name="read-archive-tag", **_READ)
def archive_state(git: GitCli, tag: str, commit: str | None, remote: str | None) -> ArchiveState:
    """What git shows about the archive tag, locally and (when it is to be pushed) on ``remote``, and
    (when it is to tag HEAD) the working tree's changes it would not archive."""
    local, annotated = git.local_tag(tag)
    return ArchiveState(commit=git.commit_of(commit or "HEAD"), local_commit=local, local_annotated=annotated,
                        remote_commit=_remote_tag(git, remote, tag) if remote is not None else None,
                        tagger_problem=git.tagger_problem() if local is None else None,
                        uncommitted=git.uncommitted() if commit is None else ())


def _remote_tag(git: GitCli, remote: str, tag: str) -> str | None:
    """``git.remote_tag``; a remote it cannot read says which parameters to change: git's words
    ("'origin' does not appear to be a git repository") said what failed, not what to do."""
    try:
        return git.remote_tag(remote, tag)
    except GitError as err:
        raise GitError(f"{err}; set `remote` to one of repo_dir's remotes this worker can reach (`git remote -v` in "
                       "the checkout lists them), or set push=False to create the archive tag in the checkout only, "
                       "unpushed") from err


@task(name="create-archive-tag", cache_policy=NONE)
def create_tag(git: GitCli, tag: str, message: str, commit: str) -> str:
    return git.create_tag(tag, message, commit)


@task(name="push-archive-tag", **_READ)  # idempotent: an identical tag on the remote is "already_there"
def push_tag(git: GitCli, remote: str, tag: str) -> str:
    return git.push_tag(remote, tag)


class UnansweredDeletes:
    """The tags of one ``delete_tags`` task run's BatchDeleteImage calls whose answers never came
    (a read timeout, a connection closed: ``answer_lost``), over all its tries, and what was raised
    instead. A call never sent (no connection) or refused deleted nothing: nothing is kept for it.

    Made by the caller for one call of the task and handed to it: its tries share it, and it goes
    with the caller's run however the task ends. Kept in the worker by task run id, an entry
    outlived a task run that ended Crashed (a cancel, Ctrl-C: no failure hook runs then); read by
    the caller, it says which tags ECR may have deleted though the task failed, whichever try lost
    the answer (the last try may have stopped before sending anything).
    """

    def __init__(self) -> None:
        self.tags: tuple[str, ...] = ()
        self.why = ""

    def lost(self, tags: Sequence[str], why: str) -> None:
        self.tags = tuple(dict.fromkeys((*self.tags, *tags)))
        self.why = why


# Set on what ``withhold`` raised: the failure of a read that was a task of its own, tried as its
# rule says (``_READ``'s) already.
_READ_TRIED = "_rollway_read_tried"


def _withheld_by(withhold: Callable[[Sequence[str]], Mapping[str, str]]
                 ) -> Callable[[Sequence[str]], Mapping[str, str]]:
    """``withhold``, whose failures are marked as tried already (``_not_read_again``)."""

    def asked(tags: Sequence[str]) -> Mapping[str, str]:
        try:
            return withhold(tags)
        except Exception as err:
            setattr(err, _READ_TRIED, True)
            raise

    return asked


def _not_read_again(task: Any, task_run: Any, state: Any) -> bool:
    """``_final``'s rule for the deletion's own calls; a read before a batch that failed
    (``withhold``'s) is not tried again: its task had tried it three times, and each of this task's
    tries asking it three times more, a read throttled before the first batch was asked nine."""
    try:
        state.result()
    except Exception as err:  # noqa: BLE001 - judged by _final
        if getattr(err, _READ_TRIED, False):
            return False
    return _final(task, task_run, state)


# Idempotent: a tag deleted before is reported gone.
@task(name="delete-image-tags", **{**_READ, "retry_condition_fn": _not_read_again})
def delete_tags(images: EcrImages, tags: Sequence[str], targets: Targets,
                withhold: Callable[[Sequence[str]], Mapping[str, str]] | None = None,
                sending: Callable[[Sequence[str]], None] | None = None,
                unanswered: UnansweredDeletes | None = None) -> TagDeletion:
    """``images.delete_tags``: ``withhold`` (the flow's second read of what production runs) is
    asked right before each batch which of the tags left to keep, and ``sending`` told each
    call's tags right before it is made.

    Retried as a whole when its first call failed (``images.delete_tags`` raises only then), but not
    when ``withhold`` failed: its reads are tasks, each tried as its rule says already. ECR
    may have deleted that call's tags all the same, its answer lost on the way: the retry then finds
    them gone, and they were reported as gone before the run (or never there). Those are reported
    deleted, by this run, and the log says why. ``unanswered``: where the tries keep the tags of
    calls whose answers were lost (None: this try's own, as outside a task run, which has no others).
    """
    unanswered = UnansweredDeletes() if unanswered is None else unanswered
    sent: list[str] = []  # the tags of the last BatchDeleteImage call made

    def send(batch: Sequence[str]) -> None:
        sent[:] = batch
        if sending is not None:
            sending(batch)

    try:
        with named_denials(_POLICY, targets=targets):
            deletion = images.delete_tags(list(tags), withhold=None if withhold is None else _withheld_by(withhold),
                                          sending=send)
    except Exception as err:
        if sent and answer_lost(err):  # sent, and no answer: ECR may have done it
            unanswered.lost(sent, error_said(err))
        raise
    if deletion.deleted_on_retry:
        get_run_logger().warning(
            "image tag(s) %s: deleted (ECR's retry found them gone): ECR answered BatchDeleteImage with an error "
            "(a 5xx) or not at all (its answer lost) after deleting them, and botocore's retry of the call found "
            "them not found; reported deleted by this run", ", ".join(deletion.deleted_on_retry))
    lost, why = unanswered.tags, unanswered.why
    deleted_unanswered = tuple(tag for tag in deletion.gone if tag in lost)
    if not deleted_unanswered:
        return deletion
    get_run_logger().warning(
        "image tag(s) %s: most likely deleted just now by this run's first call, whose answer was lost (%s), not "
        "before the run: asked again, ECR no longer has them; reported deleted by this run",
        ", ".join(deleted_unanswered), why)
    return deletion.model_copy(update={"deleted": deleted_unanswered + deletion.deleted,
                                       "gone": tuple(t for t in deletion.gone if t not in deleted_unanswered)})


@task(name="delete-stack", task_run_name="delete-stack-{name}", cache_policy=NONE)
def delete_stack(stacks: CloudFormationStacks, name: str, timeout_seconds: float, targets: Targets,
                 judged: StackState | None = None) -> DeleteOutcome:
    """``stacks.delete``: a stack that is no longer ``judged`` (updated, made again, protected) is not deleted."""
    log = get_run_logger()
    with named_denials(_POLICY, targets=targets):
        try:
            return stacks.delete(name, timeout_seconds=timeout_seconds,
                                 on_progress=lambda line: log.info("%s", line), judged=judged)
        except (StackDeleteUnfollowed, StackDeleteFailed) as err:
            # A read of its progress, or of a failed deletion's events, refused after DeleteStack: the
            # refusal named as the statement granting it, in the deletion's own message (named_denials
            # would raise the statement alone, with no word that DeleteStack was sent, nor how it ended).
            named = named_refusal(err, _POLICY, targets)
            if named is None:
                raise
            # read_back passed on as it came, though always None here: a failed deletion has a refusal
            # behind it only when its events went unread (``CloudFormationStacks._failed``), none read back.
            raise (StackDeleteFailed(err.name, err.status, list(err.reasons), list(err.failed), unread=str(named),
                                     read_back=err.read_back)
                   if isinstance(err, StackDeleteFailed) else
                   StackDeleteUnfollowed(err.name, err.last_status, err.seen_seconds_ago, str(named),
                                         err.timeout_seconds, passing=err.passing)) from named
