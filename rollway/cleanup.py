"""Cleanup after the migration: what may be deleted, decided from what AWS and git show (pure, no I/O).

Webordinary's plan ends by deleting the old CloudFormation stack, deleting old container images
from ECR and archiving the old code under a git tag. Each is destructive and is triggered by a
person, so nothing production runs on may be deleted, whatever the person typed:

- a stack named in ``Targets.stacks`` (the live stacks), or nested in one, is refused, and so is
  one nested in a stack not being deleted (its root would name a stack that is gone);
- a stack holding a resource ``Targets`` names (its cluster, services, load balancer, target
  groups, repository, queues, tables, topic, alarms, dashboard), itself or in a nested stack of
  its own, is refused (told by its resource type too: a table named like the cluster is not the
  cluster): deleting a stack deletes what it made, whatever the stack is called
  (what its template's DeletionPolicy keeps excepted, here and below: that stays); so is one
  holding the Application Auto Scaling scalable target, a scaling policy or a scheduled action of a
  service or a table it names (deleted, the service or the table no longer scales);
- a stack holding a task definition in use (below) is refused: deleting it deregisters the
  revision, and ECS will not point a service at it again (a rollback's restore); so is one
  holding the task execution role, task role, awslogs group or a secret of one (no task of it
  could start), or an EFS file system or access point it mounts (its data would go with it);
- a stack whose export (its own or a nested stack's) another stack imports is refused, unless
  that stack is deleted first (listed before it): CloudFormation would not delete it, and the
  run would stop there after deleting what came before;
- a stack holding the listener or the listener rule production's traffic comes through (read
  from ELB: the listener on ``Targets.listener_port``, the rule rollouts shift) is refused;
- a stack holding the VPC, a subnet or a security group the stable or canary service's tasks
  or the load balancer are in, or the certificate a listener of the load balancer serves (read
  from ECS and ELB), is refused: CloudFormation cannot delete them while they are in use, and
  stops at DELETE_FAILED after deleting the rest of the stack; so is one holding a mount target
  of an EFS file system a task definition in use mounts (read from EFS): deleted, the tasks in
  its subnet lose the file system; and one holding the VPC, the subnet or a security group such a
  mount target is in (read from EFS too), which CloudFormation cannot delete either;
- a stack with termination protection is refused (someone protected it on purpose), and so is
  one CloudFormation is changing (``UPDATE_IN_PROGRESS`` and the like: DeleteStack refuses it);
- a stack name CloudFormation has no record of, neither there nor listed as deleted (it lists
  deleted stacks for 90 days), is refused as a misspelling, naming the live stacks of close
  names: the old stack would stay, costing money, under a run that looked done. One listed as
  deleted (by an earlier run, or by hand) is reported as deleted before: nothing to do;
- the tag ``latest`` is refused (what an image reference without a tag pulls);
- an image in ECR's archive (ARCHIVED, ACTIVATING) is judged as any other, unless an archived
  image index is there: ECR serves no manifest of an archived image, so the platform images it
  lists cannot be read, and every tag of an archived image is refused, saying how to let it go;
- an image tag that a task definition in use references is refused, and so is any other tag of
  an image whose digest is in use (a task definition may pin ``repo@sha256:...``, or name the
  same image under another tag), and any tag of a platform image an image index in use lists
  (or of an index listing a platform image in use). "In use": the task definitions the stable and canary services
  (and every other service of the cluster, one scaled to zero too) deploy, every ACTIVE revision of ``Targets.task_family`` (a rollback restores the previous), the
  task definition the ledger records the canary ran before a rollout that may still be rolled back (of any family), and
  the revision every running task of the cluster runs (its roles and log group stay in use
  while it runs, INACTIVE or of another family).

``flows/cleanup.py`` reads AWS and git first, then calls ``plan_cleanup``; any refusal fails the
run before anything is deleted, each refusal named with its reason. Right before each stack's
deletion it reads the stack and what production runs again, and ``judge_stack_again`` keeps a stack
that changed since the plan or that the plan would refuse now.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from typing import Collection, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from rollway.bounds import seconds_said
from rollway.deadline import MAX_READ_SECONDS, READ_SECONDS, Unanswered
from rollway.errors_pickle import PicklableError
from rollway.image import image_parts
from rollway.one_line import on_one_line
from rollway.targets import STACK_NAME, Targets

LATEST = "latest"
"""The tag an image reference without a tag or digest resolves to."""

# Docker's (and ECR's) tag grammar.
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# An http(s) URL carrying a user (and perhaps a password or token) before the host.
_URL_WITH_USER = re.compile(r"^https?://[^/]*@", re.IGNORECASE)
# What git refuses in a ref name (git check-ref-format, rules 4, 5 and 10): control characters,
# space, ~ ^ : ? * [ and backslash.
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")

GONE_STATUSES = frozenset({"DELETE_COMPLETE"})
DELETE_FAILED = "DELETE_FAILED"
# In-progress statuses CloudFormation deletes from: a deletion under way (a run that stopped
# while waiting for it) and a change set never executed. Any other *_IN_PROGRESS is refused by
# DeleteStack ("cannot be deleted while in status ..."), or queued behind the change under way.
_DELETABLE_IN_PROGRESS = frozenset({"DELETE_IN_PROGRESS", "REVIEW_IN_PROGRESS"})


class CleanupRefused(PicklableError, RuntimeError):
    """The plan names something production runs on (or that cannot be deleted): nothing was deleted.

    Attributes:
        refusals: every refusal, each with its reason.
    """

    def __init__(self, refusals: Sequence["Refusal"]) -> None:
        self.refusals = tuple(refusals)
        listed = "\n".join(f"- {r}" for r in self.refusals)
        super().__init__(f"cleanup refused {len(self.refusals)} item(s); nothing was deleted:\n{listed}")


class CleanupIncomplete(PicklableError, RuntimeError):
    """Cleanup stopped part-way: what was done and what was not are listed, and re-running is safe.

    Attributes:
        step: the step that failed.
        done: what was archived or deleted (or found gone) before it.
        not_done: what was left as it was.
    """

    def __init__(self, step: str, why: str, done: Sequence[str], not_done: Sequence[str]) -> None:
        self.step, self.done, self.not_done = step, tuple(done), tuple(not_done)
        why = why_shown(why)
        # The first few of each: 150 tags made a message of 20,000 characters, the run's state
        # and log drowned in it. Every one is in the run's artifact (and in done / not_done).
        done_text = first_few(self.done, where=IN_ARTIFACT) or "nothing"
        left_text = first_few(self.not_done, where=IN_ARTIFACT) or "nothing"
        super().__init__(
            f"cleanup stopped while it tried to {step}: {why}. Done: {done_text}. Not done: {left_text}. "
            "Run cleanup again with the same parameters once that step can succeed: what is gone is reported as "
            "gone, and it carries on with the rest"
        )


WHY_SHOWN = 1_000
"""How many characters of why a run stopped its error and its log line quote: CloudFormation's
reason quotes a custom resource's answer as it came, a whole stack trace at times."""


def why_shown(why: str, whole: str | None = None) -> str:
    """``why`` on one line, its control characters escaped (``on_one_line``), and cut at
    ``WHY_SHOWN`` characters: the run's state message and log carried CloudFormation's words raw,
    a line break beginning a line of its own, an escape sequence acting on the terminal, and
    thousands of characters where a reason belongs. ``whole``: where the whole of it is
    (``IN_ARTIFACT`` unless given: the run's artifact keeps it)."""
    said = on_one_line(why)
    if len(said) <= WHY_SHOWN:
        return said
    return f"{said[:WHY_SHOWN]}... ({len(said) - WHY_SHOWN:,} characters more {whole or IN_ARTIFACT})"


READ_BOUND = "read_timeout_seconds"
"""The parameter (and ``CleanupSpec`` field) bounding each of cleanup's reads of AWS."""


class CleanupReadUnanswered(PicklableError, Unanswered):
    """A read of AWS got no answer within the run's read bound, and was given up on (not retried).

    Attributes:
        service: who did not answer ("ECS"); call: the operation left unanswered ("ListServices");
        seconds: the bound (``read_timeout_seconds``); reading: what the read was for;
        nothing: what the run had not done yet (None: said by the step that made the read).
    """

    def __init__(self, service: str, call: str, seconds: float, reading: str, nothing: str | None = None) -> None:
        self.service, self.call, self.seconds, self.reading, self.nothing = service, call, seconds, reading, nothing
        then = (f"; {nothing}: run cleanup again once {service} answers (or with a longer {READ_BOUND})"
                if nothing else "")
        super().__init__(f"{service} did not answer {call} within {seconds_said(seconds)} ({READ_BOUND}), read for {reading}"
                         f"{then}")


def check_git_tag_name(name: str) -> str:
    """``name`` if git accepts it as a tag name, else a ValueError saying which rule it breaks.

    The rules of ``git check-ref-format`` applied to ``refs/tags/<name>``, git tag's own refusal
    of a name starting with ``-`` (it would read as an option), and ``@`` and ``HEAD``, which git
    accepts but which would be read as the current commit.
    """
    def bad(why: str) -> ValueError:
        return ValueError(f"{name!r} is not a valid git tag name: {why}")

    if not name:
        raise bad("it is empty")
    if name.startswith("-"):
        raise bad("it starts with '-'")
    if name in ("@", "HEAD"):
        # git would take either, and every later `git checkout <name>` would mean the current commit.
        raise bad(f"{name!r} is ambiguous: git reads it as the current commit")
    found = _REF_FORBIDDEN.search(name)
    if found:
        raise bad(f"it contains {found.group()!r} (no control characters, spaces, ~ ^ : ? * [ or \\)")
    if ".." in name:
        raise bad("it contains '..'")
    if "@{" in name:
        raise bad("it contains '@{'")
    if name.endswith("."):
        raise bad("it ends with '.'")
    for component in name.split("/"):
        if not component:
            raise bad("it has an empty component (a leading, trailing or doubled '/')")
        if component.startswith("."):
            raise bad(f"its component {component!r} starts with '.'")
        if component.endswith(".lock"):
            raise bad(f"its component {component!r} ends with '.lock'")
    return name


def _option_safe(value: str, what: str) -> str:
    # Handed to git as an argument: a leading '-' would be read as an option, whitespace and
    # control characters are never part of a revision or a remote.
    if not value or value.startswith("-") or any(ord(c) < 0x21 or ord(c) == 0x7f for c in value):
        raise ValueError(f"{value!r} is not a usable git {what} (not empty, no leading '-', no spaces)")
    return value


class CleanupSpec(BaseModel):
    """What a cleanup run is asked to do; validated at construction, before any call.

    Attributes:
        old_stacks: CloudFormation stacks to delete.
        old_image_tags: tags to delete from ``Targets.ecr_repository``.
        archive_tag: an annotated git tag to create (and push) first; None archives nothing.
        archive_message: the tag's message (required with ``archive_tag``).
        archive_commit: what the tag points at (a revision git understands); None: HEAD.
        repo_dir: the git checkout to tag in (required with ``archive_tag``).
        remote: where the tag is pushed.
        push: push the tag to ``remote``.
        dry_run: read and plan, report what would be deleted, delete nothing.
        allow_uncommitted: archive HEAD even though the checkout has uncommitted changes (they are
            left out of the tag, and the run says so); by default such a run is refused.
        read_timeout_seconds: how long one read of AWS may take (``CleanupReadUnanswered`` after).
    """

    # Errors name the rule broken, never echo the input: a remote URL may hold a token.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    old_stacks: tuple[str, ...] = ()
    old_image_tags: tuple[str, ...] = ()
    archive_tag: str | None = None
    archive_message: str = ""
    archive_commit: str | None = None
    repo_dir: str | None = None
    remote: str = "origin"
    push: bool = True
    dry_run: bool = False
    allow_uncommitted: bool = False
    read_timeout_seconds: float = Field(default=READ_SECONDS, gt=0, le=MAX_READ_SECONDS, allow_inf_nan=False)

    @field_validator("old_stacks")
    @classmethod
    def _stacks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not STACK_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a CloudFormation stack name (a letter, then letters, digits and "
                                 "'-', at most 128 characters)")
        return _distinct(value, "stack")

    @field_validator("old_image_tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not _IMAGE_TAG.fullmatch(tag):
                raise ValueError(_not_a_tag(tag))
        return _distinct(value, "image tag")

    @field_validator("archive_tag")
    @classmethod
    def _archive_tag(cls, value: str | None) -> str | None:
        return None if value is None else check_git_tag_name(value)

    @field_validator("archive_commit")
    @classmethod
    def _commit(cls, value: str | None) -> str | None:
        return None if value is None else _option_safe(value, "revision")

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str) -> str:
        if _URL_WITH_USER.match(value):
            # It would be in git's argument list and in the run's logs: secrets belong elsewhere.
            raise ValueError("the remote is an http(s) URL with credentials in it; name a configured remote (or use "
                             "a URL without them and a git credential helper)")
        return _option_safe(value, "remote")

    @model_validator(mode="after")
    def _complete(self) -> "CleanupSpec":
        if self.archive_tag is not None:
            if not self.archive_message.strip():
                raise ValueError("archive_message must say why the tag archives this code (git tag -a needs a message)")
            if not self.repo_dir or not self.repo_dir.strip():
                raise ValueError("repo_dir must name the git checkout where the archive tag is created")
        elif self.archive_commit is not None or self.archive_message:
            raise ValueError("archive_commit and archive_message need archive_tag (the tag to create)")
        if self.archive_tag is None and not self.old_stacks and not self.old_image_tags:
            raise ValueError("nothing to clean up: name old_stacks, old_image_tags or an archive_tag")
        return self


def _not_a_tag(value: str) -> str:
    """Why ``value`` is refused as an old image tag; for a whole image reference (copied from a
    task definition or `docker images`), the tag it holds, which is what to give."""
    parts = image_parts(value)
    if parts.tag is not None and _IMAGE_TAG.fullmatch(parts.tag):
        return (f"{value!r} is an image reference, not a tag: give only its tag, {parts.tag!r} (old_image_tags are "
                "deleted from the targets' ECR repository)")
    if parts.tag is None and (parts.digest or "").startswith("sha256:"):
        return (f"{value!r} is an image reference by digest, not a tag: give the image's tags (cleanup deletes tags; "
                "an image goes with its last one)")
    return (f"{value!r} is not an image tag (letters, digits, '_', '.', '-', not starting with '.' or '-', at most "
            "128 characters)")


def _distinct(value: tuple[str, ...], what: str) -> tuple[str, ...]:
    repeated = sorted({v for v in value if value.count(v) > 1})
    if repeated:
        raise ValueError(f"{what}s named more than once: {', '.join(repeated)}")
    return value


# --- What was read ------------------------------------------------------------------------------


DELETED_KEPT_DAYS = 90
"""How long CloudFormation lists a deleted stack (ListStacks, ``DELETE_COMPLETE``)."""


class Holding(BaseModel):
    """What a stack's listing of one of its resources says besides its physical id."""

    model_config = ConfigDict(frozen=True)

    type: str = Field(description=(
        "its CloudFormation resource type (AWS::Logs::LogGroup, AWS::IAM::Role...); empty: none listed, of any type"))
    retained: bool = Field(default=False, description=(
        "its template's DeletionPolicy (Retain, RetainExceptOnCreate) keeps it: deleting the stack leaves it"))
    nested_in: str | None = Field(default=None, description=(
        "the name of the nested stack that lists it; None: the stack itself does. Per listing, not per id: a role "
        "of the stack and a log group of its name in a nested stack share one physical id"))


def retained_by(resources: Sequence[str], holdings: Sequence[Holding]) -> tuple[str, ...]:
    """The resources (physical ids) whose holdings' DeletionPolicy keeps them: what a stack state's
    ``retained`` says, as CloudFormation's description and a saved plan's check both derive it."""
    return tuple(r for r, holding in zip(resources, holdings) if holding.retained)


class StackState(BaseModel):
    """A stack as CloudFormation describes it; ``status`` None: it does not exist (as
    ``CloudFormationStacks.describe`` reads it: nor is one of that name listed as deleted in the
    last ``DELETED_KEPT_DAYS`` days, a name no stack had, misspelt most likely)."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: str | None = None
    status_reason: str | None = Field(default=None, description=(
        "CloudFormation's StackStatusReason, when it gives one (why a deletion failed, say)"))
    stack_id: str | None = Field(default=None, description=(
        "its id (ARN): a stack made again under the same name has another"))
    last_updated: str | None = Field(default=None, description=(
        "its LastUpdatedTime (ISO 8601), None when it was never updated"))
    last_event: str | None = Field(default=None, description=(
        "the id of its newest event (DescribeStackEvents), None when it has none, does not exist or was not read: "
        "every operation CloudFormation runs on the stack adds events, where an update of a stack already "
        "UPDATE_COMPLETE leaves its status as it was, and LastUpdatedTime does not move for each (moto never sets it)"))
    termination_protection: bool = False
    root_stack: str | None = Field(default=None, description="for a nested stack, the name of its root stack")
    resources: tuple[str, ...] = Field(default=(), description=(
        "the physical ids of the resources it holds, its nested stacks' resources included"))
    retained: tuple[str, ...] = Field(default=(), description=(
        "those of resources its template's DeletionPolicy (Retain, RetainExceptOnCreate) keeps: deleting the stack "
        "leaves them in place. With holdings, what they keep: derived from them when not given, and a state (a "
        "saved plan's) giving another is refused; without, one naming an id resources do not list (or more times "
        "than they do) is refused"))
    holdings: tuple[Holding, ...] = Field(default=(), description=(
        "for each of resources, in its order, its resource type and whether its DeletionPolicy keeps it (empty: not "
        "read, each judged as of any type, kept when retained names it): a log group's, a table's and a role's "
        "physical id are each a bare name, and a stack may hold two of one name, one of them kept"))
    nested_events: dict[str, str | None] = Field(default_factory=dict, description=(
        "each of its nested stacks (their nested stacks' too), by id -> the id of its newest event: a nested stack "
        "updated on its own adds no event to its root"))
    nested_in: dict[str, str] = Field(default_factory=dict, description=(
        "for a resource of a nested stack (a physical id in resources), that nested stack's name, as a plan read "
        "before its holdings named it (``Holding.nested_in``) says it: by id, which a role and a log group of one "
        "name share"))
    imported_by: dict[str, tuple[str, ...]] = Field(default_factory=dict, description=(
        "export name -> the other stacks importing it, for each export of it (or of its nested stacks) in use"))
    deleted_at: str | None = Field(default=None, description=(
        "for a stack listed as deleted (DELETE_COMPLETE), its DeletionTime (ISO 8601), when CloudFormation gives it"))
    similar: tuple[str, ...] = Field(default=(), description=(
        "for a stack that does not exist, the live stacks of names close to it (``close_names``), the targets' "
        "own left out"))

    @property
    def gone(self) -> bool:
        return self.status is None or self.status in GONE_STATUSES

    @model_validator(mode="after")
    def _one_holding_each(self) -> "StackState":
        if self.holdings and len(self.holdings) != len(self.resources):
            raise ValueError(f"{len(self.holdings)} holdings for {len(self.resources)} resources: one each, or none")
        if self.holdings:
            self._retained_as_held()
        else:
            self._retained_among_resources()
        if self.nested_in and any(holding.nested_in for holding in self.holdings):
            # Two records of where each resource is, which could tell two stories: one or the other.
            raise ValueError("nested_in (by physical id) and holdings naming their nested stacks both say where its "
                             "resources are: give the holdings alone")
        return self

    def _retained_as_held(self) -> None:
        """``retained`` as its holdings say it: derived from them when not given (a plan of holdings
        need not repeat it), refused when it says otherwise. The plan judges each resource by its
        holding, and the run's record says what ``retained`` keeps: a saved plan whose two disagree
        would delete on the one and report on the other."""
        held = retained_by(self.resources, self.holdings)
        if "retained" not in self.model_fields_set:
            # Frozen: pydantic's __setattr__ refuses it, so object's sets it, once, here, as the
            # model is made (left out of model_fields_set: derived, not given).
            object.__setattr__(self, "retained", held)
        elif Counter(self.retained) != Counter(held):
            raise ValueError(
                f"stack {self.name}: its retained ({', '.join(self.retained) or 'none'}) is not what its holdings' "
                f"DeletionPolicy keeps ({', '.join(held) or 'none'}): a plan saying two things of what deleting the "
                "stack leaves is not acted on; run cleanup again to judge the stack as it is now")

    def _retained_among_resources(self) -> None:
        """Without holdings, ``retained`` says by id which resources stay: one naming an id the stack
        does not list (or more times than it lists it) is refused, as a saved plan's record would say
        the deletion left in place what the stack never held."""
        listed = Counter(self.resources)
        extra = Counter(self.retained) - listed
        if extra:
            said = ", ".join(f"{r} (not among its resources)" if not listed[r]
                             else f"{r} (named {listed[r] + n} times, listed {listed[r]})" for r, n in extra.items())
            raise ValueError(
                f"stack {self.name}: its retained names what it does not hold: {said}; a plan saying the stack's "
                "deletion leaves what it does not hold is not acted on; run cleanup again to judge the stack as it "
                "is now")

    def nested_stack(self, resource: str, holding: Holding | None) -> str | None:
        """The nested stack holding the listing ``resource`` (``holding``: its holding, None: not
        read), None when the stack itself holds it; by id (``nested_in``) for a plan whose holdings
        name none."""
        return holding.nested_in if holding is not None and holding.nested_in else self.nested_in.get(resource)

    def listings(self) -> list[tuple[str, Holding | None]]:
        """Each of ``resources`` with its holding (None: not read, of any type, and kept when
        ``retained`` names it)."""
        return list(zip(self.resources, self.holdings)) if self.holdings else [(r, None) for r in self.resources]


def close_names(name: str, names: Collection[str], *, cutoff: float = 0.85) -> tuple[str, ...]:
    """The few (``FIRST_FEW``) of ``names`` closest to ``name``, compared without case (a misspelt
    stack name's likeliest meanings), closest first; none when nothing is close (``cutoff``:
    difflib's ratio a name must reach; ``TAG_CUTOFF`` for image tags)."""
    count = FIRST_FEW
    # A typo scores above 0.9; the cutoff leaves out most other stacks of the same project, whose
    # shared prefix and "Stack" alone score about 0.8.
    by_lower: dict[str, list[str]] = defaultdict(list)
    for candidate in sorted(names):
        by_lower[candidate.lower()].append(candidate)
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=count, cutoff=cutoff)
    return tuple([found for lower in close for found in by_lower[lower]][:count])


def describe_stack_state(state: StackState) -> str:
    """The log's word on an old stack as the plan read it: its status, deleted before, or no such
    stack. A failed status (DELETE_FAILED: a deletion tried before, which this run tries again)
    with CloudFormation's reason (``why_shown``): the status alone left a person to find in the
    stack's events what had kept it, and would again."""
    if state.status is not None and state.status.endswith("_FAILED") and (state.status_reason or "").strip():
        reason = why_shown(str(state.status_reason), whole="in the stack's events")
        return f"{state.status} (CloudFormation's reason: {reason})"
    if state.status == "DELETE_COMPLETE":
        return "deleted before" + (f" (at {state.deleted_at})" if state.deleted_at else "") + ": nothing to do"
    if state.status is None:
        return (f"no stack of that name, live or deleted in the last {DELETED_KEPT_DAYS} days"
                + (f" (live stacks of close names: {', '.join(state.similar)})" if state.similar else ""))
    return state.status


AGAIN = "run cleanup again to judge it as it is now"
"""What to do about a stack kept because it changed after the plan."""


def stack_moved(before: StackState, after: StackState) -> list[str]:
    """How CloudFormation shows the stack moved between two reads, in words (empty: it did not):
    made again (another stack id), or another status, LastUpdatedTime or newest event.

    What both the clean-up and a deploy read as CloudFormation's own work on a stack, neither's
    whole notion of "changed": each compares termination protection beside it (``stack_changed``
    keeps a planned stack that moved or was protected since; ``rollway.infra.changed_stacks`` also
    counts protection turned on or off, which cdk applies with no event). Status and
    LastUpdatedTime alone missed an update of a stack already UPDATE_COMPLETE whose LastUpdatedTime
    did not move (a failed update rolled back within the second; moto never sets it): its events
    did. A read without a newest event (``before.last_event`` None: a plan recorded before it was
    read, or a stack that did not exist) is judged on the rest.
    """
    changes = []
    if before.stack_id is not None and after.stack_id != before.stack_id:
        changes.append(f"it is a new stack of that name ({after.stack_id}, not {before.stack_id})")
    if after.status != before.status:
        changes.append(f"its status is {after.status} now, not {before.status} as the plan read it")
    if after.last_updated != before.last_updated:
        changes.append(f"it was updated at {after.last_updated}, after the plan read it")
    # Any change adds events: said only when nothing else shows it, the one change that tells.
    if not changes and before.last_event is not None and after.last_event != before.last_event:
        changes.append(f"CloudFormation has worked on it since the plan read it: its newest event is "
                       f"{after.last_event}, not {before.last_event}")
    return changes


def stack_changed(judged: StackState, now: StackState) -> str | None:
    """How the stack ``now`` differs from the one the plan judged (``judged``), in words, and what
    to do about it (``AGAIN``: each caller keeps such a stack and says so); None when
    it is the same stack, not moved (``stack_moved``) or protected since. A stack gone since is
    not a change: deleting it is what was planned.

    Compared right before its deletion: the plan judged it maybe an hour before (image tags and
    other stacks deleted first), and a stack updated, deployed again or protected since is no longer
    the one judged safe to delete. One whose deletion (under way when the plan read it, say) ended
    DELETE_FAILED since is said as such, with CloudFormation's StackStatusReason: this run does not
    try it again, the next judges it afresh.
    """
    if now.gone or judged.gone:
        return None
    same_stack = judged.stack_id is None or now.stack_id == judged.stack_id
    if now.status == DELETE_FAILED and judged.status != DELETE_FAILED and same_stack:
        # Someone's deletion of it failed (one under way when the plan read it, most often): "its
        # status is DELETE_FAILED now" said what, not why, nor what becomes of it.
        when = ("under way when the plan read it" if judged.status == "DELETE_IN_PROGRESS"
                else "begun after the plan read it")
        reason = (now.status_reason or "").strip()
        said = (f"CloudFormation's reason: {reason}" if reason
                else "CloudFormation gave no reason; the stack's events name what it could not delete")
        return (f"its deletion, {when}, failed: it is {DELETE_FAILED} now ({said}); this run did not try again: fix "
                "what stopped it, and the next cleanup run judges the stack afresh, as it is then")
    if judged.status == now.status == "DELETE_IN_PROGRESS":
        # A deletion under way when the plan read it adds events as it goes: what was planned.
        now = now.model_copy(update={"last_event": judged.last_event})
    changes = stack_moved(judged, now)
    if now.termination_protection and not judged.termination_protection:
        changes.append("termination protection was turned on")
    return _changed_since_plan("; ".join(changes)) if changes else None


def _changed_since_plan(said: str) -> str:
    """A planned stack kept because it changed after the plan, ``said`` saying how, and ``AGAIN``:
    one sentence for whichever read saw it (the stack, its nested stacks, what it holds)."""
    return f"it changed after the plan judged it ({said}); {AGAIN}"


_NESTED_UPDATED = "a nested stack of it was updated on its own: "
"""How ``nested_changed`` and ``holdings_changed`` begin what they saw."""


def nested_changed(judged: StackState, now: Mapping[str, str | None]) -> str | None:
    """How the nested stacks of the stack ``judged`` moved since the plan read them, in words, and
    ``AGAIN``; None when none did. ``now``: each of ``judged.nested_events`` still there (one deleted
    on its own since is left out: what it held went, as the plan had it go) -> its newest event.

    Read right before DeleteStack: a nested stack updated on its own leaves its root's status,
    LastUpdatedTime and events as they were (``stack_changed`` sees none of it), and what is read
    before (``holdings_changed``) has no word of one updated after.
    """
    moved = [stack_name(stack_id) for stack_id, event in now.items()
             if stack_id in judged.nested_events and event != judged.nested_events[stack_id]]
    return _changed_since_plan(f"{_NESTED_UPDATED}{', '.join(moved)} {'has' if len(moved) == 1 else 'have'} events the "
                               "plan did not read") if moved else None


def stack_name(stack_id: str) -> str:
    """The name in a stack ARN (``arn:...:stack/<name>/<uuid>``), or the value itself."""
    parts = stack_id.split("/")
    return parts[1] if stack_id.startswith("arn:") and len(parts) >= 3 else stack_id


def holdings_changed(judged: StackState, now: StackState) -> str | None:
    """How what the stack holds ``now`` differs from what the plan read (``judged``) in a way its
    deletion would not match the plan: a resource the plan did not read, or one whose DeletionPolicy
    keeps it now and did not (or the other way round); in words, and ``AGAIN``. None otherwise: a
    resource gone since (a deletion under way) leaves nothing the plan did not read.

    ``stack_changed`` sees the stack itself only: a nested stack updated on its own leaves its
    root's status and LastUpdatedTime as they were, and the root passed for the stack judged. Its
    deletion took what the nested stack gained with it, and the run's record, what the plan had
    read, did not name it. Both must have been read with what they hold (``describe``).
    """
    if now.gone or judged.gone:
        return None
    # By id and type where both were read with their types: a log group and a role of one name share an
    # id, and a role gained beside the log group the plan read passed for read.
    typed = bool(judged.holdings and now.holdings)
    before, after = _kept_by_listing(judged, typed), _kept_by_listing(now, typed)
    listed = "listed by `aws cloudformation list-stack-resources`"
    said = [("it holds {} now, which the plan did not read", [key for key in after if key not in before]),
            ("its DeletionPolicy keeps {} in place now, which the plan read as deleted with it",
             [key for key, kept in after.items() if key in before and kept and not before[key]]),
            ("its DeletionPolicy no longer keeps {}, which the plan read as staying",
             [key for key, kept in after.items() if key in before and before[key] and not kept])]
    # An id listed under two types is named with the type meant.
    shared = {r for r, n in Counter(r for r, _ in {**before, **after}).items() if n > 1}
    changes = [words.format(first_few([f"{r} ({kind})" if r in shared else r for r, kind in keys], where=listed))
               for words, keys in said if keys]
    return _changed_since_plan(_NESTED_UPDATED + "; and ".join(changes)) if changes else None


def _kept_by_listing(state: StackState, typed: bool) -> dict[tuple[str, str | None], bool]:
    """Each of the stack's resources, by id and (``typed``) type -> whether its DeletionPolicy keeps it."""
    if typed:
        return {(r, holding.type): holding.retained for r, holding in state.listings() if holding is not None}
    kept = set(state.retained)
    return {(r, None): r in kept for r in state.resources}


class RepositoryImage(BaseModel):
    """One image in the repository: its digest and every tag it carries."""

    model_config = ConfigDict(frozen=True)

    digest: str
    tags: tuple[str, ...] = ()
    children: tuple[str, ...] = Field(default=(), description=(
        "for an image index (a multi-platform image), the digests of the platform images it lists (none read for "
        "one not ACTIVE: ECR serves no manifest of an archived image)"))
    status: str = Field(default="ACTIVE", description=(
        "ACTIVE, or ARCHIVED / ACTIVATING: in ECR's archive storage class, or on its way back from it"))
    index: bool = Field(default=False, description="whether it is an image index (a multi-platform image)")


class ImageUse(BaseModel):
    """A container image named by a task definition in use, with the roles and log group it runs with.

    The roles and the log group are what a stack may have made too: deleting the task execution
    role or the awslogs group stops new tasks of a revision in use from starting. So are its
    secrets and EFS file systems: ECS fetches the secrets before a task starts, and deleting the
    file system deletes the data every task of it mounts.
    """

    model_config = ConfigDict(frozen=True)

    task_definition: str
    why: str = Field(description="why the task definition is in use, e.g. 'the stable service deploys it'")
    image: str
    execution_role: str | None = Field(default=None, description="the task definition's executionRoleArn")
    task_role: str | None = Field(default=None, description="the task definition's taskRoleArn")
    log_group: str | None = Field(default=None, description=(
        "the container's awslogs-group, or the CloudWatch log group its FireLens options send its logs to"))
    log_group_templates: tuple[str, ...] = Field(default=(), description=(
        "the FireLens log group templates (``log_group_template``, a ``log_group_name`` holding ``$(...)``) its "
        "logs go to, which cleanup cannot resolve: every log group one may name counts as in use"))
    secrets: tuple[str, ...] = Field(default=(), description=(
        "where the container's secrets come from (``secrets``, the log driver's ``secretOptions``, private "
        "registry ``repositoryCredentials``): Secrets Manager secret ARNs, SSM parameter ARNs or names"))
    file_systems: tuple[str, ...] = Field(default=(), description=(
        "the EFS file systems and access points (``fs-...``, ``fsap-...``) the task definition's volumes mount"))


class OpenRolloutNeeds(BaseModel):
    """What the service's newest rollout, still open, needs kept: read from the ledger, as ECS may
    not name it yet (or any more)."""

    model_config = ConfigDict(frozen=True)

    restores: tuple[tuple[str, str], ...] = Field(default=(), description=(
        "(task definition, why) a rollback restores on the canary service"))
    deploys: tuple[ImageUse, ...] = Field(default=(), description=(
        "the image it has still to deploy on the canary: a run that stopped before pointing the canary at it "
        "resumes onto it, and no service, revision or task names it until then"))


class RoutingInUse(BaseModel):
    """What production's traffic comes through on the load balancer, by ARN (read from ELB).

    A stack that made the listener (on ``Targets.listener_port``) or the rule rollway shifts
    deletes it with itself: every request then meets the listener's default action, or nothing.
    Other listeners and rules of the load balancer (an old version's rule) may go.
    """

    model_config = ConfigDict(frozen=True)

    listener_arn: str
    rule_arn: str


class NetworkUse(BaseModel):
    """A VPC, subnet or security group production runs in, a certificate its load balancer
    serves, or a mount target of an EFS file system it mounts (and the VPC, subnet and security
    groups that mount target is in), and what uses it (read from ECS, ELB and EFS).

    A stack that made a VPC, subnet, security group or certificate cannot delete it while tasks,
    the load balancer or a mount target are in it: CloudFormation deletes the rest of the stack
    first (a route table, the internet gateway, a queue), then ends in DELETE_FAILED on it, with
    production cut off by what went before. A mount target it deletes: the tasks in its subnet
    lose the file system.
    """

    model_config = ConfigDict(frozen=True)

    resource: str = Field(description="its id: vpc-..., subnet-..., sg-..., fsmt-..., or an ACM certificate's ARN")
    user: str = Field(description="what uses it, e.g. 'a subnet of the stable service webordinary-edit-service'")
    leaving: bool = Field(default=False, description=(
        "it is the VPC, subnet or a security group of a mount target EFS is deleting: no task mounts through it, "
        "but CloudFormation cannot delete what its network interface is in until it is gone"))


def describe_network(network: Sequence[NetworkUse]) -> str:
    """The plan's log line on the network production uses, each kind of thing said as what production
    does with it: "production runs in" named the certificates its load balancer serves and the mount
    targets it mounts its file systems through, where it runs in neither."""
    resources = list(dict.fromkeys(use.resource for use in network))
    certificates = [r for r in resources if r.startswith("arn:")]
    mount_targets = [r for r in resources if r.startswith("fsmt-")]
    inside = [r for r in resources if r not in certificates and r not in mount_targets]
    said: list[tuple[bool, str]] = []  # (whether said of something of production's, what is said)
    if inside:
        # A mount target's VPC, subnet and security groups are among them only when a file system is mounted.
        users = ("tasks, its load balancer or the mount targets of the EFS file systems it mounts are"
                 if mount_targets or any(use.leaving for use in network) else "tasks or its load balancer are")
        said.append((True, f"{users} in {', '.join(inside)}"))
    if certificates:
        said.append((True, f"load balancer serves {', '.join(certificates)}"))
    if mount_targets:
        said.append((False, f"mounts EFS file systems through {', '.join(mount_targets)}"))
    if not said:
        return "production's network: nothing read"
    # Production named first, then "it": (of something of its, of itself).
    subjects = [("production's", "production"), ("its", "it")]
    return "; ".join(f"{subjects[min(n, 1)][0 if owned else 1]} {what}" for n, (owned, what) in enumerate(said))


class ImageRef(BaseModel):
    """An image reference split into repository path, tag and digest."""

    model_config = ConfigDict(frozen=True)

    registry: str | None
    repository: str
    tag: str | None
    digest: str | None


def parse_image(image: str) -> ImageRef:
    """Split ``[registry/]repository[:tag][@digest]`` as docker reads it.

    The first path component is a registry when it holds a '.' or ':' or is ``localhost``.
    """
    parts = image_parts(image)
    registry, rest = None, parts.name
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    return ImageRef(registry=registry, repository=rest, tag=parts.tag, digest=parts.digest)


class ArchiveState(BaseModel):
    """What git shows about the archive tag before anything is written.

    Attributes:
        commit: the full commit the tag is to point at (``archive_commit`` or HEAD, resolved).
        local_commit: the commit an existing local tag of that name points at (None: no such tag).
        local_annotated: whether that existing local tag is annotated.
        remote_commit: the commit the remote's tag of that name points at (None: none, or not asked).
        tagger_problem: why git could not name the tagger of a new tag here (None: it can, or no
            tag is to be created).
        uncommitted: the checkout's changes a tag of HEAD does not hold (``git status --porcelain``
            lines); empty when it is clean, or when the tag is to go on ``archive_commit``.
    """

    model_config = ConfigDict(frozen=True)

    commit: str
    local_commit: str | None = None
    local_annotated: bool = True
    remote_commit: str | None = None
    tagger_problem: str | None = None
    uncommitted: tuple[str, ...] = ()


def describe_archive(tag: str, archive: ArchiveState, remote: str | None) -> str:
    """The log's line about the archive tag before anything is written (``remote`` None: not pushed).

    It read "locally on no such tag, on not pushed: no such tag" before.
    """
    local = f"locally on {archive.local_commit}" if archive.local_commit else "not made locally yet"
    pushed = ("not to be pushed" if remote is None
              else f"on {remote}: " + (f"on {archive.remote_commit}" if archive.remote_commit else "not there yet"))
    return f"archive tag {tag}: to point at {archive.commit} ({local}; {pushed})"


# --- The plan ------------------------------------------------------------------------------------


class Refusal(BaseModel):
    """Something the spec named that will not be deleted (or archived), and why."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["stack", "image tag", "archive tag"]
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}: {self.reason}"


class ArchiveStep(BaseModel):
    """The archive tag to create (unless it exists already on the commit) and push."""

    model_config = ConfigDict(frozen=True)

    tag: str
    message: str
    commit: str
    exists: bool = Field(description="the tag exists already on this commit: nothing to create")
    push_to: str | None = Field(description="the remote to push to; None: not pushed")
    pushed: bool = Field(description="the remote has the tag on this commit already")
    uncommitted: tuple[str, ...] = Field(default=(), description=(
        "the checkout's changes the new tag of HEAD leaves out (allow_uncommitted): said in the log and the artifact"))

    def left_out(self) -> str:
        """What the archive leaves out, for the log and the artifact ("" when nothing)."""
        if self.exists or not self.uncommitted:
            return ""
        return (f"; NOT archived: {len(self.uncommitted)} uncommitted change(s) in the checkout "
                f"({first_few(list(self.uncommitted), where='listed by `git status` there')}), left out as "
                "allow_uncommitted asks")


class CleanupPlan(BaseModel):
    """What a cleanup run does, in order: archive, delete image tags, delete stacks.

    Attributes:
        archive: the archive step, or None.
        delete_tags: image tags present in the repository, to delete.
        gone_tags: image tags the repository no longer has.
        tags_close: each of ``gone_tags`` close to tags the repository has (not asked for here)
            -> those tags: a misspelling's likeliest meanings (ECR keeps no record of a deleted
            tag to tell one deleted before from one never there).
        delete_stacks: stacks that exist, to delete.
        gone_stacks: stacks deleted before (CloudFormation lists them as DELETE_COMPLETE); a name no
            stack had is refused.
        refusals: what will not be deleted, with reasons; any refusal stops the run before it deletes.
        in_use: every task definition in use and the image it runs (``describe_uses``), for the
            run's artifact: a refusal and the run's log name only the first few.
        tag_digests: each of ``delete_tags`` -> the digest of the image it tags, for the record.
        tags_kept: each of ``delete_tags`` whose image keeps other tags -> those tags: the image stays
            (ECR deletes an image with its last tag only).
        stacks_judged: each of ``delete_stacks`` as the plan read it: each is read again right
            before its deletion, and kept if it changed (``judge_stack_again``).
        stack_resources: each of ``delete_stacks`` -> the physical ids of what it holds (its
            nested stacks' included), for the record (read from ``stacks_judged``).
        stack_retained: each of ``delete_stacks`` holding any -> those of its resources its
            DeletionPolicy keeps: they stay when the stack goes (the rest is deleted with it)
            (read from ``stacks_judged``).
        stack_holdings: each of ``delete_stacks`` read with its holdings -> each resource's type and
            DeletionPolicy, in ``stack_resources``' order, for the record (read from ``stacks_judged``).
    """

    model_config = ConfigDict(frozen=True)

    archive: ArchiveStep | None = None
    delete_tags: tuple[str, ...] = ()
    gone_tags: tuple[str, ...] = ()
    tags_close: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    delete_stacks: tuple[str, ...] = ()
    gone_stacks: tuple[str, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    in_use: tuple[str, ...] = ()
    tag_digests: dict[str, str] = Field(default_factory=dict)
    tags_kept: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    stacks_judged: dict[str, StackState] = Field(default_factory=dict)

    # Read from the judged stacks, not kept beside them: two copies of what a stack holds could
    # tell two stories. Still dumped under their names; a plan dumped when they were fields loads
    # (the extra keys are ignored, and said again from stacks_judged).
    @computed_field  # type: ignore[prop-decorator]
    @property
    def stack_resources(self) -> dict[str, tuple[str, ...]]:
        return {name: stack.resources for name, stack in self.stacks_judged.items()}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stack_retained(self) -> dict[str, tuple[str, ...]]:
        return {name: stack.retained for name, stack in self.stacks_judged.items() if stack.retained}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stack_holdings(self) -> dict[str, tuple[Holding, ...]]:
        return {name: stack.holdings for name, stack in self.stacks_judged.items() if stack.holdings}

    @property
    def refused(self) -> bool:
        return bool(self.refusals)


def plan_cleanup(
    spec: CleanupSpec,
    targets: Targets,
    *,
    stacks: Mapping[str, StackState],
    in_use: Sequence[ImageUse],
    images: Sequence[RepositoryImage],
    archive: ArchiveState | None = None,
    routing: RoutingInUse | None = None,
    network: Sequence[NetworkUse] = (),
) -> CleanupPlan:
    """Decide what to delete and refuse what must stay.

    Args:
        spec: what was asked.
        targets: the live stacks, the repository and (in ``in_use``) what production runs.
        stacks: each of ``spec.old_stacks`` as described (a missing key: CloudFormation has no
            record of it, live or deleted, and it is refused as misspelt).
        in_use: the images named by the task definitions in use.
        images: every image in ``targets.ecr_repository``.
        archive: what git shows about the archive tag (required when ``spec.archive_tag`` is set).
        routing: the listener and rule production's traffic comes through (None: not read).
        network: the VPC, subnets and security groups the services and the load balancer use, the
            certificates its listeners serve, and the mount targets of the EFS file systems a task
            definition in use mounts, with their VPCs, subnets and security groups (``NetworkUse``).

    Raises:
        ValueError: ``spec`` asks for an archive tag and ``archive`` is None.
    """
    refusals: list[Refusal] = []
    archive_step = None
    if spec.archive_tag is not None:
        if archive is None:
            raise ValueError("plan_cleanup needs the archive tag's state (ArchiveState) to plan the archive")
        archive_step, refused = _plan_archive(spec, archive)
        refusals += refused
    delete_tags, gone_tags, refused = _plan_images(spec.old_image_tags, targets.ecr_repository, in_use, images,
                                                   way_forward=True)
    refusals += refused
    delete_tags, refused = _archived_unjudged(delete_tags, images)
    refusals += refused
    delete_stacks, gone_stacks, refused = _plan_stacks(spec.old_stacks, targets.stacks, stacks,
                                                       _production(targets, in_use, routing, network),
                                                       region=targets.region)
    refusals += refused
    # What each deletion removes, so the run's record says more than names that then mean nothing.
    digest_of = {tag: image.digest for image in images for tag in image.tags}
    others = set(digest_of) - set(spec.old_image_tags)
    close = {tag: close_names(tag, others, cutoff=TAG_CUTOFF) for tag in gone_tags}
    return CleanupPlan(archive=archive_step, delete_tags=delete_tags, gone_tags=gone_tags,
                       tags_close={tag: names for tag, names in close.items() if names},
                       delete_stacks=delete_stacks, gone_stacks=gone_stacks, refusals=tuple(refusals),
                       in_use=describe_uses(in_use),
                       tag_digests={tag: digest_of[tag] for tag in delete_tags},
                       tags_kept=_tags_kept(delete_tags, images),
                       stacks_judged={name: stacks[name] for name in delete_stacks})


def _production(targets: Targets, in_use: Sequence[ImageUse], routing: RoutingInUse | None,
                network: Sequence[NetworkUse]) -> dict[_Identity, str]:
    """Everything production uses that a stack may hold, by identity -> what it is."""
    return {**production_resources(targets), **_task_definitions(in_use), **_routing(routing, targets),
            **_network(network)}


def judge_stack_again(name: str, plan: CleanupPlan, now: StackState, targets: Targets, *,
                      deleted: Sequence[str], later: Sequence[str], in_use: Sequence[ImageUse],
                      routing: RoutingInUse | None, network: Sequence[NetworkUse]) -> str | None:
    """Why the planned stack ``name``, read again right before its deletion (``now``), is not to be
    deleted after all, in one sentence; None: delete it.

    A stack gone by now (``now.gone``) is the caller's to report as gone, before it reads what
    production runs (the flow's ``_judged_again``, the one place "already gone" is decided before
    a deletion); judged anyway, it is not kept: nothing is left of it to refuse.

    Between the plan and the deletion, the image tags and the stacks before it went, a wait of up
    to ``stack_timeout_seconds`` each: the stack may have been updated or protected since
    (``stack_changed``), a nested stack of it updated (``holdings_changed``), or production may have come to use what it holds or to import its exports
    (what the plan refuses, judged again on ``in_use``, ``routing`` and ``network`` read again).

    Args:
        deleted: the stacks this run deleted before it (or found gone): an importer among them is gone.
        later: the planned stacks still to come after it (its root among them deletes it with itself).
    """
    if now.gone:
        return None
    judged = plan.stacks_judged[name]
    changed = stack_changed(judged, now)
    if changed is not None:
        return changed
    _, _, refused = _plan_stacks([*deleted, name, *later], targets.stacks, {name: now},
                                 _production(targets, in_use, routing, network))
    reasons = [refusal.reason for refusal in refused if refusal.name == name]
    # A resource it gained that production uses is said as such, before the gain itself.
    return f"since the plan judged it, {reasons[0]}" if reasons else holdings_changed(judged, now)


def _tags_kept(delete_tags: Sequence[str], images: Sequence[RepositoryImage]) -> dict[str, tuple[str, ...]]:
    """Each tag to delete whose image keeps other tags (not deleted too) -> those tags.

    Deleting a tag deletes its image only when it is the image's last: "deleted image tag X"
    alone left a person believing the image (and its storage) gone while another tag kept it.
    """
    deleting = set(delete_tags)
    kept: dict[str, tuple[str, ...]] = {}
    for image in images:
        others = tuple(t for t in image.tags if t not in deleting)
        for tag in image.tags:
            if tag in deleting and others:
                kept[tag] = others
    return kept


FIRST_FEW = 3
"""How many items a log line or a refusal names before it says how many more there are."""


def describe_use(use: ImageUse) -> str:
    """One task definition in use, for a person: ``family:revision (why) runs image``."""
    return f"task definition {_short(use.task_definition)} ({use.why}) runs {use.image}"


def mounted_by(uses: Sequence[ImageUse]) -> str:
    """Which task definitions in use mount a file system (``uses``: each of them, a revision perhaps
    more than once), for a person: "task definition X mounts, why", or each of several with why it
    is in use (``holders_said``) and "mount". The first alone was named: the person deregistering it to
    let the file system go found the next one keeping it."""
    whys = _whys(uses)
    if len(whys) == 1:
        ((revision, why),) = whys.items()
        return f"task definition {revision} mounts, {why}"
    return f"{holders_said(uses)} mount"


def holders_said(uses: Sequence[ImageUse]) -> str:
    """The task definitions in use ``uses`` (a revision perhaps more than once), for a person: "task
    definition X, why", or "task definitions X (why), Y (why) and Z (why)", the first few
    (``FIRST_FEW``) and how many more past them. A role, a log group or a secret several share named
    the first holder alone, and deregistering it left the stack refused for the next."""
    whys = _whys(uses)
    if len(whys) == 1:
        ((revision, why),) = whys.items()
        return f"task definition {revision}, {why}"
    named = [f"{revision} ({why})" for revision, why in whys.items()]
    if len(named) > FIRST_FEW:
        return f"task definitions {', '.join(named[:FIRST_FEW])} and {len(named) - FIRST_FEW} more"
    return f"task definitions {', '.join(named[:-1])} and {named[-1]}"


def _whys(uses: Sequence[ImageUse]) -> dict[str, str]:
    """Each task definition of ``uses`` once (``family:revision``), in their order -> why it is in use
    (the first said)."""
    whys: dict[str, str] = {}
    for use in uses:
        whys.setdefault(_short(use.task_definition), use.why)
    return whys


def describe_uses(in_use: Sequence[ImageUse]) -> tuple[str, ...]:
    return tuple(describe_use(use) for use in in_use)


IN_ARTIFACT = "in the run's artifact"


def first_few(items: Sequence[str], first: int = FIRST_FEW, where: str = "under In use in the run's artifact") -> str:
    """``items`` joined with "; ", at most ``first`` of them, then how many more and where they are.

    A big cluster keeps hundreds of ACTIVE revisions in use: the full list goes to the run's
    artifact (its "In use" section), the log and the refusals name the first few.
    """
    shown = "; ".join(items[:first])
    more = len(items) - first
    return f"{shown}; and {more} more (every one {where})" if more > 0 else shown


def in_use_summary(in_use: Sequence[ImageUse]) -> str:
    """The log's one line about what production runs: counts, then the first few."""
    if not in_use:
        return "no task definition in use"
    images = len({use.image for use in in_use})
    return (f"{len(in_use)} task definition(s) in use, running {images} distinct image(s): "
            f"{first_few(describe_uses(in_use))}")


def _plan_archive(spec: CleanupSpec, archive: ArchiveState) -> tuple[ArchiveStep, list[Refusal]]:
    tag = spec.archive_tag
    assert tag is not None
    refusals = []
    if archive.local_commit is not None and archive.local_commit != archive.commit:
        # Without archive_commit the tag goes on HEAD, and a checkout that moved on since an
        # earlier run tagged it would refuse the re-run that run's error asked for: say how to go on.
        resume = ("; if an earlier cleanup run created it and the checkout has moved on since, run again with "
                  f"archive_commit {archive.local_commit}" if spec.archive_commit is None else "")
        refusals.append(Refusal(kind="archive tag", name=tag, reason=(
            f"the tag exists already on commit {archive.local_commit}, not on {archive.commit}: a tag that moves "
            f"archives nothing; choose another name, or delete the old tag yourself if it is wrong{resume}")))
    elif archive.local_commit is not None and not archive.local_annotated:
        refusals.append(Refusal(kind="archive tag", name=tag, reason=(
            "the tag exists already as a lightweight tag (no message, no tagger); delete it (`git tag -d "
            f"{tag}`) to have it created annotated, or choose another name")))
    if archive.local_commit is None and archive.tagger_problem is not None:
        refusals.append(Refusal(kind="archive tag", name=tag, reason=(
            f"git cannot name the tagger of an annotated tag on this worker ({archive.tagger_problem}); set "
            "user.name and user.email in the checkout (`git config user.name ...`, `git config user.email ...`) "
            "or GIT_COMMITTER_NAME and GIT_COMMITTER_EMAIL in the worker's environment")))
    if spec.push and archive.remote_commit is not None and archive.remote_commit != archive.commit:
        resume = ("; if an earlier cleanup run pushed it and the checkout has moved on since, run again with "
                  f"archive_commit {archive.remote_commit}" if spec.archive_commit is None else "")
        refusals.append(Refusal(kind="archive tag", name=tag, reason=(
            f"remote {spec.remote!r} has the tag already on commit {archive.remote_commit}, not on "
            f"{archive.commit}; choose another name{resume}")))
    if archive.local_commit is None and archive.uncommitted and not spec.allow_uncommitted:
        # A tag holds commits only: the old code's edits never committed would be lost from the
        # archive without a word, and the stacks and images deleted after it.
        refusals.append(Refusal(kind="archive tag", name=tag, reason=(
            f"the checkout {spec.repo_dir} has {len(archive.uncommitted)} uncommitted change(s) "
            f"({first_few(list(archive.uncommitted), where='listed by `git status` there')}), and a tag archives "
            f"commit {archive.commit} (HEAD) without them; commit them first (or name the commit to archive in "
            "archive_commit), or set allow_uncommitted to archive HEAD as committed and leave them out")))
    step = ArchiveStep(tag=tag, message=spec.archive_message, commit=archive.commit,
                       exists=archive.local_commit == archive.commit,
                       push_to=spec.remote if spec.push else None,
                       pushed=spec.push and archive.remote_commit == archive.commit,
                       uncommitted=archive.uncommitted)
    return step, refusals


def _plan_images(
    tags: Sequence[str], repository: str, in_use: Sequence[ImageUse], images: Sequence[RepositoryImage],
    way_forward: bool = False,
) -> tuple[tuple[str, ...], tuple[str, ...], list[Refusal]]:
    """(tags to delete, tags not found, refusals); ``way_forward``: a refusal adds what lets the
    image go (``_way_forward``, given what keeps it)."""
    forward = _way_forward if way_forward else (lambda _keepers: "")
    digest_of = {tag: image.digest for image in images for tag in image.tags}
    by_tag: dict[str, list[ImageUse]] = defaultdict(list)
    # Why each digest is kept, and by whom (None: an image index or platform image of one in
    # use), for the way forward a refusal says when only ACTIVE revisions keep it
    # (``_revisions_only``): one list, so that no reason is said without its keeper.
    by_digest: dict[str, list[tuple[str, ImageUse | None]]] = defaultdict(list)
    for use in in_use:
        ref = parse_image(use.image)
        # The registry is not compared: a reference to the same repository through another
        # registry host (an account alias, a pull-through cache) is counted, never missed.
        if ref.repository != repository:
            continue
        where = f"task definition {_short(use.task_definition)} ({use.why})"
        if ref.digest is not None:
            by_digest[ref.digest].append((f"{where} pins it by digest", use))
        # docker pulls ``repo:tag@digest`` by its digest; its tag is still kept, as named.
        if ref.digest is None or ref.tag is not None:
            tag = ref.tag or LATEST
            by_tag[tag].append(use)
            if tag in digest_of:
                by_digest[digest_of[tag]].append((f"{where} runs it as {tag!r}", use))
    # A multi-platform image is an index and one image per platform, each with tags of its own or
    # none. A task of the index runs the platform image of its architecture: deleting that image's
    # own tag (1.0.0-amd64) deleted what production runs. Either in use keeps the other.
    direct = {digest: [why for why, _ in kept] for digest, kept in by_digest.items()}
    for image in images:
        for child in image.children:
            if image.digest in direct:
                by_digest[child].append((f"a platform image of image index {image.digest} "
                                         f"({direct[image.digest][0]})", None))
            if child in direct:
                by_digest[image.digest].append((f"an image index listing the platform image {child} "
                                                f"({direct[child][0]})", None))
    delete, gone, refusals = [], [], []
    for tag in tags:
        if (latest := _latest_refused(tag)) is not None:
            refusals.append(latest)
        elif tag in by_tag:
            uses = by_tag[tag]
            keepers = [use for _, use in by_digest.get(digest_of.get(tag, ""), ())]
            refusals.append(Refusal(kind="image tag", name=tag, reason="in use: " + first_few(describe_uses(uses))
                                    + forward([*uses, *keepers])))
        elif tag in digest_of and digest_of[tag] in by_digest:
            kept = by_digest[digest_of[tag]]
            refusals.append(Refusal(kind="image tag", name=tag, reason=(
                f"it tags image {digest_of[tag]}, which is in use: " + first_few([why for why, _ in kept])
                + forward([use for _, use in kept]))))
        elif tag not in digest_of:
            gone.append(tag)
        else:
            delete.append(tag)
    return tuple(delete), tuple(gone), refusals


def _archived_unjudged(delete: Sequence[str], images: Sequence[RepositoryImage]) -> tuple[tuple[str, ...],
                                                                                           list[Refusal]]:
    """(the tags of ``delete`` left to delete, refusals of the others): every tag of an image in
    ECR's archive while an archived image index is there.

    ECR serves no manifest of an archived image, so which platform images an archived index
    lists cannot be read, and an archived platform image's tag may be all that keeps the image
    an index in use lists (``_plan_images`` keeps those of an ACTIVE one).
    """
    unread = [image.digest for image in images if image.index and image.status != "ACTIVE"]
    status = {tag: (image.digest, image.status) for image in images for tag in image.tags}
    if not unread:
        return tuple(delete), []
    kept = [tag for tag in delete if status[tag][1] != "ACTIVE"]
    refusals = [Refusal(kind="image tag", name=tag, reason=(
        f"it tags image {status[tag][0]}, which ECR holds {status[tag][1]}: ECR serves no manifest of an archived "
        f"image, so the platform images the archived image {'index' if len(unread) == 1 else 'indexes'} "
        f"{first_few(unread, where='listed by `aws ecr describe-images --filter imageStatus=ARCHIVED`')} {'lists' if len(unread) == 1 else 'list'} cannot be read, nor told "
        "from this one; restore the archived images (`aws ecr update-image-storage-class --target-storage-class "
        "STANDARD`) for cleanup to judge them, or delete them by hand")) for tag in kept]
    return tuple(tag for tag in delete if tag not in kept), refusals


TAG_CUTOFF = 0.75
"""``close_names``'s cutoff for image tags: short, so one character off scores below a stack name's
0.85 (``0.9.1`` against ``0.9.0`` scores 0.8)."""


ACTIVE_REVISION = "an ACTIVE revision of "
"""How a use says a task definition is in use only for being an ACTIVE revision of the task
family (``rollway.aws.ecr_images.images_in_use`` words it so, one reason among others joined
with ", ")."""


def _revisions_only(keepers: Sequence[ImageUse | None]) -> list[str]:
    """The revisions (``family:revision``) keeping an image when nothing but their being ACTIVE
    does (no service deploys them, no task runs them, no open rollout restores them), else []."""
    if not keepers or any(use is None or not use.why.startswith(ACTIVE_REVISION) or ", " in use.why
                          for use in keepers):
        return []
    return list(dict.fromkeys(_short(use.task_definition) for use in keepers if use is not None))


def _way_forward(keepers: Sequence[ImageUse | None]) -> str:
    """What lets an image go that only ACTIVE revisions keep ("" otherwise): in week 3 the old
    version's revision is still ACTIVE, and the refusal named it and nothing else, leaving the
    person who came to delete the old image no way forward."""
    revisions = _revisions_only(keepers)
    if not revisions:
        return ""
    command = "aws ecs deregister-task-definition --task-definition"
    how = (f"deregister it (`{command} {revisions[0]}`)" if len(revisions) == 1 else
           f"deregister each (`{command} <family:revision>`: {first_few(revisions)})")
    return ("; no service, running task or open rollout runs it: only being ACTIVE keeps it, as a rollback may "
            f"restore it; once the old version is not to be rolled back to, {how} and run cleanup again")


# What a physical resource id identifies, compared whole: (kind, name) or, for an ECS service,
# (kind, cluster, name). CloudFormation's physical id of a cluster, a repository, a table, an
# alarm or a dashboard is its bare name, which carries no kind (``_NAMED``): the kind is its
# listing's resource type's (``_BARE_KINDS``), none for a type known to be another kind of thing
# (``_OTHER_BARE_TYPES``), any of them for every other type, or when that is not known.
_Identity = tuple[str, ...]
_NAMED = "name"
_CLUSTER, _REPOSITORY, _TABLE, _ALARM, _DASHBOARD = "cluster", "repository", "table", "alarm", "dashboard"
_PARAMETER, _FILE_SYSTEM, _NETWORK = "parameter", "file-system", "network"
# The VPC, subnet or a security group only a mount target EFS is deleting is in (``NetworkUse.leaving``).
_LEAVING = "network-until-gone"
# The kind of production's resource a bare physical id of each CloudFormation resource type is, or
# configures under that resource's name: a table named like the cluster was kept as the cluster, and
# the cluster's capacity provider associations (its name their physical id) are the cluster's: deleted,
# a service whose capacity provider strategy names them can no longer place its tasks.
_BARE_KINDS = {
    "AWS::ECS::Cluster": _CLUSTER, "AWS::ECS::ClusterCapacityProviderAssociations": _CLUSTER,
    "AWS::ECR::Repository": _REPOSITORY,
    "AWS::DynamoDB::Table": _TABLE, "AWS::DynamoDB::GlobalTable": _TABLE,
    "AWS::CloudWatch::Alarm": _ALARM, "AWS::CloudWatch::CompositeAlarm": _ALARM,
    "AWS::CloudWatch::Dashboard": _DASHBOARD, "AWS::SSM::Parameter": _PARAMETER,
}
# Those of ``_BARE_KINDS`` that configure the resource of their name rather than being it -> what they
# are of it: deleting the stack deletes them, not the resource, which a refusal says.
_CONFIGURING = {"AWS::ECS::ClusterCapacityProviderAssociations": "the capacity provider associations"}
# AWS types whose bare physical id is a thing of its own, none of the kinds above: a bucket named like
# the cluster is not the cluster. Any other type (custom, third-party, or an AWS type not listed here)
# may be, or configure, the resource of its name: judged as of every kind, too much kept, not too little.
_OTHER_BARE_TYPES = frozenset({"AWS::S3::Bucket", "AWS::Lambda::Function", "AWS::Kinesis::Stream", "AWS::IAM::User",
                               "AWS::IAM::Group"})
# Kinds whose ids say their kind themselves (fs-..., fsap-..., fsmt-..., vpc-..., subnet-..., sg-...), as an ARN
# does: matched whatever the listing's type, which no name-alike shares.
_SELF_NAMED_KINDS = (_FILE_SYSTEM, _NETWORK, _LEAVING)
# A log group's identity, by its name: the physical id of a table or a role is its bare name as a log
# group's is, an awslogs-group in use names a log group only, and a log group is held by nothing else
# (``_held``).
_LOG_GROUP = "log-group"
# A log group's CloudFormation resource type: the one kind a log group in use may be.
LOG_GROUP_TYPE = "AWS::Logs::LogGroup"
# A role's identity, by its name: the physical id of a table or a log group is its bare name as a role's
# is, a task definition's roles in use name roles only, and a role is held by nothing else (``_held``).
_ROLE = "role"
# A role's CloudFormation resource type: the one kind a role in use may be.
ROLE_TYPE = "AWS::IAM::Role"
# The resource type of a custom resource not named Custom::<name>.
_CUSTOM_RESOURCE = "AWS::CloudFormation::CustomResource"
# A log group template's identity: every bare name it may stand for (``log_group_pattern``) is held.
_TEMPLATE = "log-group-template"
# The placeholders of a FireLens log group template, each standing for text only a log record
# tells: the Go plugin's ``$(ecs_task_id)`` or ``$(kubernetes['namespace_name'])``, record_accessor's
# ``$ecs_cluster`` or ``$kubernetes['labels']['app']``, and Fluent Bit's ``${ENV_VAR}``.
_PLACEHOLDER = re.compile(r"\$\([^)]*\)|\$\{[^}]*\}|\$[A-Za-z_]\w*(?:\[[^\]]*\])*")
# The random suffix Secrets Manager appends to a secret's name in its ARN.
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
# An SQS queue URL: scheme, host, account, queue name; nothing after.
_QUEUE_URL = re.compile(r"^https?://[^/]+/[^/]+/([^/]+)$", re.IGNORECASE)
# What Application Auto Scaling scales an ECS service or a DynamoDB table (or one of its indexes)
# through, each naming it by its resource id (``service/<cluster>/<service>``, ``table/<table>[/index/
# <index>]``): a scalable target's physical id (its resource id, dimension and namespace; its scheduled
# actions are its own, ScheduledActions in a template), and the rest of a scaling policy's or a
# scheduled action's ARN after ``arn:aws:autoscaling:<region>:<account>:``. Deleted, the service stays,
# held at its desired count whatever its load, and the table at its provisioned capacity (throttled).
_SCALED = (r"service/(?P<cluster>[^/|:]+)/(?P<service>[^/|:]+)"
           r"|table/(?P<table>[^/|:]+)(?:/index/(?P<index>[^/|:]+))?")
_SCALABLE_TARGET = re.compile(rf"^(?:{_SCALED})\|(?:ecs:service:DesiredCount\|ecs"
                              r"|dynamodb:(?:table|index):(?:Read|Write)CapacityUnits\|dynamodb)$")
_SCALING_ARN = re.compile(rf"^(?P<what>scalingPolicy|scheduledAction):[^:]+:resource/(?:ecs|dynamodb)/(?:{_SCALED})"
                          r":(?:policyName|scheduledActionName)/(?P<name>.+)$")
_SCALING = "scaling"
_SCALING_WORDS = {"scalingPolicy": "scaling policy", "scheduledAction": "scheduled action"}


def production_resources(targets: Targets) -> dict[_Identity, str]:
    """Every resource ``targets`` names that production runs on, by identity -> what it is, for refusals."""
    named: dict[_Identity, str] = {
        (_CLUSTER, targets.cluster): f"{targets.cluster} (Targets.cluster, the ECS cluster)",
        ("service", targets.cluster, targets.stable_service):
            f"{targets.stable_service} (Targets.stable_service, the stable service)",
        ("service", targets.cluster, targets.canary_service):
            f"{targets.canary_service} (Targets.canary_service, the canary service)",
        ("load-balancer", targets.load_balancer): f"{targets.load_balancer} (Targets.load_balancer, the load balancer)",
        ("target-group", targets.stable_target_group):
            f"{targets.stable_target_group} (Targets.stable_target_group, the stable target group)",
        ("target-group", targets.canary_target_group):
            f"{targets.canary_target_group} (Targets.canary_target_group, the canary target group)",
        (_REPOSITORY, targets.ecr_repository):
            f"{targets.ecr_repository} (Targets.ecr_repository, the image repository)",
        (_TABLE, targets.flags_table): f"{targets.flags_table} (Targets.flags_table, the feature flags table)",
        (_TABLE, targets.rollouts_table): f"{targets.rollouts_table} (Targets.rollouts_table, the rollout ledger)",
        ("topic", targets.alert_topic): f"{targets.alert_topic} (Targets.alert_topic, the alert topic)",
        (_DASHBOARD, targets.dashboard): f"{targets.dashboard} (Targets.dashboard, the dashboard)",
    }
    for queue in targets.queues:
        named[("queue", queue.name)] = f"{queue.name} (a queue in Targets.queues)"
        named[("queue", queue.dlq_name)] = f"{queue.dlq_name} (a dead-letter queue in Targets.queues)"
    for table in targets.tables:
        named.setdefault((_TABLE, table.name), f"{table.name} (a table in Targets.tables)")
    for alarm in targets.alarms:
        named.setdefault((_ALARM, alarm), f"{alarm} (an alarm in Targets.alarms)")
    return named


def _task_definitions(in_use: Sequence[ImageUse]) -> dict[_Identity, str]:
    """Every task definition in use, its roles and its log groups, by identity -> what it is, for refusals.

    A stack that registered one deregisters it when deleted: the service goes on running it, but
    ECS refuses to point a service at an INACTIVE revision again (the rollback's restore).
    """
    named: dict[_Identity, str] = {}
    # A role, a log group or a secret -> how each task definition holding it holds it -> those holding it so.
    shared: dict[_Identity, dict[str, list[ImageUse]]] = defaultdict(lambda: defaultdict(list))
    # A FireLens log group template -> the task definitions sending their logs to it.
    sending: dict[str, list[ImageUse]] = defaultdict(list)
    for use in in_use:
        family_revision = _short(use.task_definition)
        if ":" in family_revision:
            named.setdefault(("task-definition", family_revision),
                             f"task definition {family_revision} ({use.why})")
        # A stack's role or log group has its bare name as physical id. Deleted, a revision in
        # use can no longer start a task (no role to pull the image with, no log group to write to).
        for role, which in ((use.execution_role, "task execution role"), (use.task_role, "task role")):
            if role:
                name = role.rsplit("/", 1)[-1]  # arn:aws:iam::<account>:role[/<path>]/<name>
                shared[(_ROLE, name)][f"the {which} of"].append(use)
        if use.log_group:
            shared[(_LOG_GROUP, use.log_group)]["the log group of"].append(use)
        for template in use.log_group_templates:
            sending[template].append(use)
        for value in use.secrets:
            identity = _secret_identity(value)
            if identity is not None:
                shared[identity]["a secret of"].append(use)
    # Every task definition holding each is named (how it holds it, then which): deregistering the
    # one named let the next keep the stack refused, unsaid.
    for identity, holds in shared.items():
        said = "; ".join(f"{how} {holders_said(uses)}" for how, uses in holds.items())
        named.setdefault(identity, f"{identity[-1]} ({said})")
    for template, uses in sending.items():
        whys = _whys(uses)
        sent = (f"FireLens sends the logs of task definition {next(iter(whys))} to ({uses[0].why})" if len(whys) == 1
                else f"FireLens sends the logs of {holders_said(uses)} to")
        # Made only of placeholders (``${service}/${task}``), it fits nearly any name: cleanup has
        # no suspicion of the group it fits, only no way to tell, which is what it says.
        named[(_TEMPLATE, template)] = (
            f"the log group template {template!r} that {sent} is made only of placeholders: cleanup cannot "
            "tell which log groups it writes to, and keeps every log group that fits it"
            if only_placeholders(template) else
            f"perhaps: the log group template {template!r} {sent}, which cleanup cannot resolve")
    mounting: dict[str, list[ImageUse]] = defaultdict(list)
    for use in in_use:
        for volume in use.file_systems:
            mounting[volume].append(use)
    for volume, uses in mounting.items():
        what = "access point" if volume.startswith("fsap-") else "file system"
        named.setdefault((_FILE_SYSTEM, volume), f"{volume} (an EFS {what} {mounted_by(uses)})")
    return named


def _routing(routing: RoutingInUse | None, targets: Targets) -> dict[_Identity, str]:
    """The listener and rule production's traffic comes through, by identity -> what it is."""
    if routing is None:
        return {}
    rule = f"path {targets.rule_path}" + (f", host {targets.rule_host}" if targets.rule_host else "")
    return {
        ("listener", routing.listener_arn): (
            f"the listener on port {targets.listener_port} of {targets.load_balancer} (Targets.listener_port), "
            "which takes production's traffic"),
        ("listener-rule", routing.rule_arn): (
            f"the listener rule ({rule}) that forwards production's traffic to {targets.stable_target_group} and "
            f"{targets.canary_target_group}, the rule rollouts shift"),
    }


def _network(network: Sequence[NetworkUse]) -> dict[_Identity, str]:
    """The VPC, subnets, security groups, EFS mount targets and certificates production uses, by
    identity -> what uses each.

    A stack's VPC, subnet, security group or mount target has its id as physical id, a bare name;
    a certificate, its ARN."""
    users: dict[str, list[str]] = {}
    for use in network:
        if use.user not in users.setdefault(use.resource, []):
            users[use.resource].append(use.user)
    # One only a mount target EFS is deleting is in is held until it is gone (``_LEAVING``).
    staying = {use.resource for use in network if not use.leaving}
    # A bare id (vpc-..., subnet-..., sg-..., fsmt-...) is of the network's kind; a certificate's ARN names its own.
    return {(_NETWORK if resource in staying else _LEAVING, identity[1]) if identity[0] == _NAMED else identity:
            f"{resource} ({'; '.join(who)})"
            for resource, who in users.items() for identity in [resource_identity(resource)] if identity is not None}


def _secret_identity(value: str) -> _Identity | None:
    """What a container secret's ``valueFrom`` names, as ``resource_identity`` reads the physical
    id of the stack resource that made it: a Secrets Manager secret by its name (with the random
    suffix its ARN carries), an SSM parameter by its name (a bare name, or an ARN's)."""
    if not value.startswith("arn:"):
        return (_PARAMETER, value)  # an SSM parameter in the task's region, by name
    parts = value.split(":")
    if len(parts) >= 7 and parts[2] == "secretsmanager" and parts[5] == "secret":
        return ("secret", parts[6])  # ...:secret:<name>-<6 chars>[:json-key:stage:version]
    if len(parts) >= 6 and parts[2] == "ssm" and parts[5].startswith("parameter/"):
        name = parts[5].removeprefix("parameter/")
        # A hierarchical name (/webordinary/api-key) loses its leading '/' in the ARN.
        return (_PARAMETER, f"/{name}" if "/" in name else name)
    return None


def resource_identity(physical_id: str) -> _Identity | None:
    """What a CloudFormation physical resource id identifies, read whole, or None when it is of a
    kind production's resources never are (a log stream, a subscription...).

    A bare name (cluster, repository, table, alarm, dashboard, role, log group, SSM parameter, EFS
    file system or access point), a queue URL, or the ARN of a queue, topic, table, cluster,
    service, load balancer, target group, listener, listener rule, repository, alarm, dashboard,
    task definition, secret or certificate; the Application Auto Scaling scalable target (its id),
    scaling policy or scheduled action (their ARNs) of an ECS service or a DynamoDB table.
    A service ARN of the old form (no cluster in it) counts as in every cluster.
    """
    if not physical_id.startswith("arn:"):
        if (scaled := _SCALABLE_TARGET.match(physical_id)) is not None:
            return _scaling("scalable target", scaled)
        if "://" in physical_id:
            found = _QUEUE_URL.match(physical_id)
            return ("queue", found.group(1)) if found else None
        return (_NAMED, physical_id)
    parts = physical_id.split(":", 5)
    if len(parts) != 6:
        return None
    service, resource = parts[2], parts[5]
    kind, _, rest = resource.partition("/")
    if service == "sqs" and "/" not in resource:
        return ("queue", resource)
    if service == "sns" and "/" not in resource:
        return ("topic", resource)
    if service == "secretsmanager" and resource.startswith("secret:"):
        return ("secret", resource.removeprefix("secret:").split(":")[0])
    if service == "autoscaling" and (scaled := _SCALING_ARN.match(resource)) is not None:
        return _scaling(f"{_SCALING_WORDS[scaled['what']]} {scaled['name']}", scaled)
    if service == "acm" and resource.startswith("certificate/"):
        return ("certificate", physical_id)
    if service == "cloudwatch" and resource.startswith("alarm:"):
        return (_ALARM, resource.removeprefix("alarm:"))
    arn_kinds = {("dynamodb", "table"): _TABLE, ("ecs", "cluster"): _CLUSTER, ("cloudwatch", "dashboard"): _DASHBOARD}
    if (service, kind) in arn_kinds and "/" not in rest:
        return (arn_kinds[service, kind], rest) if rest else None
    if (service, kind) == ("ecr", "repository") and rest:
        return (_REPOSITORY, rest)
    if (service, kind) == ("ecs", "task-definition") and rest and "/" not in rest:
        return ("task-definition", rest)  # task-definition/<family>:<revision>
    if (service, kind) == ("ecs", "service"):
        cluster, _, name = rest.rpartition("/")
        return ("service", cluster, name) if name and "/" not in cluster else None
    segments = rest.split("/")
    if (service, kind) == ("elasticloadbalancing", "loadbalancer") and len(segments) == 3:
        return ("load-balancer", segments[1])  # loadbalancer/app/<name>/<id>
    if (service, kind) == ("elasticloadbalancing", "targetgroup") and len(segments) == 2:
        return ("target-group", segments[0])  # targetgroup/<name>/<id>
    if (service, kind) == ("elasticloadbalancing", "listener") and len(segments) == 4:
        return ("listener", physical_id)  # listener/app/<lb name>/<lb id>/<id>: its ARN is its identity
    if (service, kind) == ("elasticloadbalancing", "listener-rule") and len(segments) == 5:
        return ("listener-rule", physical_id)
    return None


def _scaling(what: str, scaled: re.Match[str]) -> _Identity:
    """The identity of Application Auto Scaling's ``what`` (its scalable target, a scaling policy or
    scheduled action) of the ECS service or DynamoDB table ``scaled`` names (``_SCALED``): (kind, what,
    the index of the table it scales, or "", then the identity of the service or the table)."""
    if scaled["table"] is not None:
        return (_SCALING, what, scaled["index"] or "", _TABLE, scaled["table"])
    return (_SCALING, what, "", "service", scaled["cluster"], scaled["service"])


def log_group_pattern(name: str) -> re.Pattern[str] | None:
    """The log group names ``name``, a FireLens log group option, may stand for: any text in the
    place of each placeholder it holds; None when it holds none (it is a name)."""
    parts = _PLACEHOLDER.split(name)
    return None if len(parts) == 1 else re.compile(".*".join(re.escape(part) for part in parts))


def only_placeholders(template: str) -> bool:
    """Whether the log group template ``template`` holds no text of its own besides placeholders and
    separators (``${service}/${task}``, ``$(ecs_task_id)``): it says nothing of which groups it names."""
    return not any(character.isalnum() for character in _PLACEHOLDER.sub("", template))


# The log group templates in use, compiled once for every resource a plan judges: (pattern, what it is).
_Templates = Sequence[tuple[re.Pattern[str], str]]


def _templates(production: Mapping[_Identity, str]) -> _Templates:
    return [(pattern, what) for (kind, *rest), what in production.items() if kind == _TEMPLATE
            for pattern in [log_group_pattern(rest[0])] if pattern is not None]


# How production uses what a stack holds, as a refusal says it, surest first: a resource known to be
# production's, one of a type in neither type table (``_BARE_KINDS``, ``_OTHER_BARE_TYPES``) whose bare
# name is that of one of production's, or a custom resource answering with one's id (it may be that
# resource, or configure it), and a log group that fits a log group template in use.
_RUNS_ON, _MAY_RUN_ON, _MAY_WRITE_TO = "runs on it", "may run on it", "may write to it"
# Last, what production no longer uses but CloudFormation cannot delete yet: the VPC, subnet or a
# security group of a mount target EFS is deleting (``_LEAVING``), said as such in the refusal.
_UNTIL_GONE = "until gone"
_SUREST = (_RUNS_ON, _MAY_RUN_ON, _MAY_WRITE_TO, _UNTIL_GONE)


def _held_until_gone(*, several: bool) -> str:
    """Why a stack holding only what mount targets EFS is deleting still hold stays (``_UNTIL_GONE``):
    "it ... that mount target" said of a list of several (subnets in two zones) pointed at none."""
    if not several:
        return ("CloudFormation cannot delete it while that mount target's network interface is in it, and would end "
                "DELETE_FAILED after deleting the rest of the stack; run cleanup again once EFS has deleted the mount "
                "target (within minutes)")
    return ("CloudFormation cannot delete them while the network interface of a mount target EFS is deleting is in "
            "each, and would end DELETE_FAILED after deleting the rest of the stack; run cleanup again once EFS has "
            "deleted the mount targets named (within minutes)")


def _held(physical_id: str, production: Mapping[_Identity, str], templates: _Templates, *,
          kind: str | None = None) -> tuple[str, str] | None:
    """What of ``production`` the resource ``physical_id`` is, and how production uses it (``_SUREST``:
    ``_RUNS_ON`` when it is known to be production's; ``_MAY_RUN_ON``, said as what it may be, when
    only its bare name and a type in neither type table tie it to it, or it is a custom resource;
    ``_MAY_WRITE_TO`` when it fits a log group template in use, ``templates``), or None. ``kind``: its
    CloudFormation resource type (None: not known, judged as of any type, what it is known to be first). Only a
    CloudWatch log group (AWS::Logs::LogGroup) may be a log group in use by name or template, only
    a role (AWS::IAM::Role, or a custom resource) a role in use, and each is held by nothing else; a
    custom resource may also be the log group a task definition in use names. Any other bare name is
    of its type's kind only when its type is known (``_BARE_KINDS``, ``_OTHER_BARE_TYPES``: a table
    named like the cluster is not the cluster), of any kind otherwise."""
    identity = resource_identity(physical_id)
    if identity is None:
        return None
    # A custom resource's physical id is whatever its handler returned, and deleting the stack runs the
    # handler's Delete: it may be a role (made through the SDK) or a log group (CDK's
    # Custom::LogRetention answers with the group's name, and may delete it) as well as what else
    # production names. Held as a log group by a name in use alone: a template of placeholders fits
    # almost any id.
    custom = kind is not None and (kind.startswith("Custom::") or kind == _CUSTOM_RESOURCE)
    as_log_group = (_held_as_log_group(identity, production, () if custom else templates)
                    if kind in (LOG_GROUP_TYPE, None) or custom else None)
    # A role in use is a role: a table or a log group of its name is another resource, and a role
    # of the flags table's name was kept "as the feature flags table" it is not.
    as_role = (production.get((_ROLE, identity[1])) if (kind in (ROLE_TYPE, None) or custom) and identity[0] == _NAMED
               else None)
    as_other = _held_as_other(identity, production, kind) if kind not in (LOG_GROUP_TYPE, ROLE_TYPE) else None
    known = [held for held in (as_log_group, None if as_role is None else (as_role, True), as_other)
             if held is not None and held[1]]
    held = known[0] if known else as_log_group
    if held is None:
        return None
    if not held[1]:
        return held[0], _MAY_WRITE_TO
    if identity[0] == _NAMED and production.get((_LEAVING, identity[1])) == held[0]:
        return held[0], _UNTIL_GONE
    # A bare name, not an id saying its kind (fs-..., vpc-...): only the name ties it to production's.
    by_name_only = identity[0] == _NAMED and not any((each, identity[1]) in production for each in _SELF_NAMED_KINDS)
    if custom or (by_name_only and kind is not None
                  and kind not in (*_BARE_KINDS, *_OTHER_BARE_TYPES, LOG_GROUP_TYPE, ROLE_TYPE)):
        # Only its name ties it to production's resource of that name: a custom resource's handler or
        # a type cleanup knows nothing of may have made it, or configure it, or neither. Said as such:
        # "it holds <the cluster>" said the stack held the cluster itself. A custom resource's id is
        # whatever its handler answered, an ARN or an fs-... id as well: said so whatever it is.
        return f"{kind} {physical_id}, which may be or configure {held[0]}", _MAY_RUN_ON
    if kind is None and by_name_only:
        # Its type was never read (a plan an older release saved, a listing without one): it may be
        # production's resource of its name, configure it, or merely share its name (a table named like
        # the task role). Said as such, not as that resource.
        return f"{physical_id}, a resource of no known type, which may be or configure {held[0]}", _MAY_RUN_ON
    return held[0], _RUNS_ON


def _held_as_log_group(identity: _Identity, production: Mapping[_Identity, str],
                       templates: _Templates) -> tuple[str, bool] | None:
    """``_held`` of a log group of the identity ``identity``."""
    # A log group's physical id is its bare name: one a task definition in use names (its
    # awslogs-group), or one a log group template in use may stand for, kept as a log group
    # cleanup cannot tell is not the one the template names. Nothing else holds it: a table
    # or a role in use of the same name is another resource, and a log group sharing its name
    # was kept "as the feature flags table" it is not.
    if identity[0] != _NAMED:
        return None
    if (named := production.get((_LOG_GROUP, identity[1]))) is not None:
        return named, True
    return next(((f"{identity[1]} ({what})", False) for pattern, what in templates
                 if pattern.fullmatch(identity[1])), None)


def _held_as_other(identity: _Identity, production: Mapping[_Identity, str],
                   kind: str | None = None) -> tuple[str, bool] | None:
    """``_held`` of a resource of the identity ``identity`` that is neither a log group nor a role
    (``kind``: its resource type, None: not known)."""
    if identity[0] == _NAMED:
        # A bare name is of its type's kind only, or of none for a type known to be another thing; of
        # any kind when its type is not known, or is not in either table (a custom or third-party
        # type, whose handler may have made any of them, or an AWS type that may configure one).
        kinds = ((_BARE_KINDS[kind],) if kind in _BARE_KINDS else () if kind in _OTHER_BARE_TYPES
                 else tuple(dict.fromkeys(_BARE_KINDS.values()))) + _SELF_NAMED_KINDS
        matched = next((each for each in kinds if (each, identity[1]) in production), None)
        found = None if matched is None else production[(matched, identity[1])]
        if found is not None and kind in _CONFIGURING and matched == _BARE_KINDS[kind]:
            # It belongs to the resource it names (not one of the self-named kinds its id may also match).
            found = f"{_CONFIGURING[kind]} ({kind}) of {found}"
    elif identity[0] == "service" and not identity[1]:  # old-form ARN: whatever cluster it is in
        found = next((what for (kind, *rest), what in production.items()
                      if kind == "service" and rest[-1] == identity[2]), None)
    elif identity[0] == _SCALING:
        # What scales a service or a table production uses is production's too, told as what it is, not as
        # the service or the table.
        _, what, index, *scales = identity
        scaled = production.get(tuple(scales))
        index_of = f"index {index} of " if index else ""
        found = None if scaled is None else f"the Application Auto Scaling {what} that scales {index_of}{scaled}"
    elif identity[0] == "secret":
        # A task definition may name a secret by its partial ARN, without the 6 random
        # characters Secrets Manager appends to the name in its full ARN: one naming it so and another
        # by its full ARN are each said (the first alone was, and deregistering it left the other).
        partial = ("secret", _SECRET_SUFFIX.sub("", identity[1]))
        said = [production[each] for each in dict.fromkeys((identity, partial)) if each in production]
        found = ", also named ".join(said) or None
    else:
        found = production.get(identity)
    return None if found is None else (found, True)


def _live_by_lower(live: Sequence[str]) -> dict[str, str]:
    # Compared without case: a name differing from a live stack only by case is far likelier
    # a typo of it than an old stack to delete.
    return {name.lower(): name for name in live}


def _live_refused(name: str, live_by_lower: Mapping[str, str]) -> Refusal | None:
    """The refusal of stack ``name`` when it is a live stack (``_live_by_lower``), else None."""
    if name.lower() not in live_by_lower:
        return None
    return Refusal(kind="stack", name=name, reason=(
        f"it is the live stack {live_by_lower[name.lower()]!r} (Targets.stacks): production runs on it"))


def _latest_refused(tag: str) -> Refusal | None:
    """The refusal of image tag ``tag`` when it is ``latest``, else None."""
    if tag != LATEST:
        return None
    return Refusal(kind="image tag", name=tag, reason=(
        "'latest' is what an image reference without a tag pulls; it is never deleted by cleanup"))


def refused_before_reading(spec: CleanupSpec, targets: Targets) -> tuple[Refusal, ...]:
    """What ``plan_cleanup`` refuses whatever AWS holds, told from ``spec`` and ``targets`` alone:
    ``latest``, and a stack ``targets.stacks`` names (the live stacks). Refused before the first
    call: such input was refused only at the plan, after every read of production, and bad input
    gets its error before any AWS call. The plan refuses them too (with what needs reading)."""
    live = _live_by_lower(targets.stacks)
    return tuple(refusal for refusal in (*map(_latest_refused, spec.old_image_tags),
                                         *(_live_refused(name, live) for name in spec.old_stacks))
                 if refusal is not None)


def _plan_stacks(
    names: Sequence[str], live: Sequence[str], stacks: Mapping[str, StackState],
    production: Mapping[_Identity, str] | None = None, region: str | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...], list[Refusal]]:
    live_by_lower = _live_by_lower(live)
    templates = _templates(production or {})
    delete, gone, refusals = [], [], []
    for index, name in enumerate(names):
        state = stacks.get(name, StackState(name=name))
        # CloudFormation does not delete a stack whose export another stack imports: the run
        # would stop there after deleting what came before. An importer this run deletes first
        # (listed before it) is no obstacle.
        importers = sorted({stack for by in state.imported_by.values() for stack in by} - set(names[:index]))
        # A stack deletes what it made: one that made something production still uses (the
        # old stack kept the queue the new service reads) is refused, whatever its name.
        # Its nested stacks' resources count too: deleting it deletes them. One its DeletionPolicy
        # keeps does not: it stays when the stack goes (a migration's old stack keeping the table
        # the new service reads was refused, told that deleting the stack deletes it).
        kept = set(state.retained)
        found: dict[str, str] = {}  # what it holds of production's -> how production uses it (``_SUREST``)
        # Each listing judged by its own type and DeletionPolicy: a log group, a table and a role of
        # the same name share one physical id (their bare name), and a stack may hold more than one.
        # Judged by the id, the task role of a revision in use beside a log group of its name was taken
        # for a log group, and one beside a retained log group of its name for kept.
        for resource, holding in state.listings():
            if holding.retained if holding is not None else resource in kept:
                continue
            # No type listed ("") is not known either: judged as of any type, as one not read.
            judged = _held(resource, production or {}, templates, kind=(holding.type or None) if holding else None)
            if judged is not None:
                inner = state.nested_stack(resource, holding)
                what = judged[0] + (f", in its nested stack {inner}" if inner else "")
                found[what] = min(found.get(what, judged[1]), judged[1], key=_SUREST.index)
        held = sorted(found)
        if (live_refusal := _live_refused(name, live_by_lower)) is not None:
            refusals.append(live_refusal)
        elif state.status is None:
            # Neither there nor listed as deleted: not a re-run's stack deleted before, but a name no
            # stack had. Passed as "not found", the run ended Completed with the real old stack still
            # there under its own name, costing money.
            where = f" in {region}" if region else ""
            # The targets' own stacks are never offered (``similar`` leaves them out), but one of a
            # close name is not "no live stack": the region is right, the name is a typo of it.
            own = close_names(name, live)
            close = (f"is it the live stack {state.similar[0]}?" if len(state.similar) == 1
                     else f"is it one of the live stacks {', '.join(state.similar)}?" if state.similar
                     else f"no live stack{where} but the targets' own {', '.join(own)} (Targets.stacks: production "
                          f"runs on {'it) has' if len(own) == 1 else 'them) have'} a close name." if own
                     else f"no live stack{where} has a close name (is the region right?).")
            refusals.append(Refusal(kind="stack", name=name, reason=(
                f"CloudFormation has no stack of that name{where}, live or deleted in the last {DELETED_KEPT_DAYS} "
                f"days (it lists deleted stacks that long): check its spelling; {close} If it was deleted more than "
                f"{DELETED_KEPT_DAYS} days ago, leave it out of old_stacks")))
        elif state.gone:
            gone.append(name)
        elif state.root_stack is not None and state.root_stack.lower() in live_by_lower:
            refusals.append(Refusal(kind="stack", name=name, reason=(
                f"it is nested in the live stack {state.root_stack!r} (Targets.stacks): production runs on it")))
        elif state.root_stack is not None and state.root_stack.lower() not in {n.lower() for n in names}:
            # Deleted on its own, it leaves its root naming a stack that is gone: every later
            # update of the root fails on it. Its root's deletion deletes it with the rest.
            refusals.append(Refusal(kind="stack", name=name, reason=(
                f"it is nested in stack {state.root_stack!r}, which is not being deleted: CloudFormation deletes a "
                f"nested stack with its root; list {state.root_stack} in old_stacks instead (or remove the nested "
                "stack from its root's template)")))
        elif held:
            # A log group only fitting a template in use is not known to be production's, nor is what
            # only its name ties to it: the surest of them is said.
            uses = min(found.values(), key=_SUREST.index)
            why = (f"deleting the stack deletes it, and production {uses}" if uses != _UNTIL_GONE else
                   _held_until_gone(several=len(held) > 1))
            refusals.append(Refusal(kind="stack", name=name, reason=f"it holds {'; '.join(held)}: {why}"))
        elif importers:
            exports = sorted(export for export, by in state.imported_by.items() if set(by) & set(importers))
            live_importers = [stack for stack in importers if stack.lower() in live_by_lower]
            # "Delete those stacks first" about a live stack sent a person to delete production.
            advice = (f"the live stack(s) {', '.join(live_importers)} (Targets.stacks) depend on it: production "
                      "runs on them, so it stays until they no longer import it" if live_importers
                      else f"delete those stacks first (or list them before {name} in old_stacks)")
            refusals.append(Refusal(kind="stack", name=name, reason=(
                f"stack(s) {', '.join(importers)} import its export(s) {', '.join(exports)}, and CloudFormation "
                f"does not delete a stack whose exports are imported; {advice}")))
        elif state.status is not None and state.status.endswith("_IN_PROGRESS") \
                and state.status not in _DELETABLE_IN_PROGRESS:
            # Caught here, before the run deleted image tags and earlier stacks and then stopped on it.
            refusals.append(Refusal(kind="stack", name=name, reason=(
                f"it is {state.status}: CloudFormation is changing it right now (someone is deploying or rolling it "
                "back), and does not delete a stack mid-change; run cleanup again once it has settled, after "
                "checking that whatever changes it is not production's")))
        elif state.termination_protection:
            refusals.append(Refusal(kind="stack", name=name, reason=(
                "termination protection is on; if it really is to go, lift it first with "
                f"`aws cloudformation update-termination-protection --no-enable-termination-protection "
                f"--stack-name {name}` (or in the console: Stack actions -> Edit termination protection)")))
        else:
            delete.append(name)
    return tuple(delete), tuple(gone), refusals


def _short(task_definition: str) -> str:
    """``family:revision`` of a task definition ARN (or the value itself)."""
    return task_definition.rsplit("/", 1)[-1]


# --- What a run did ------------------------------------------------------------------------------


class CleanupResult(BaseModel):
    """What a cleanup run did (or, with ``dry_run``, would do).

    Attributes:
        dry_run: nothing was written; ``deleted_*`` and ``archived`` say what would be.
        archived: "tag -> commit" and what happened to it (created / existed already / would be created).
        pushed: what happened on the remote (pushed / there already / would be pushed), or None.
        deleted_tags, deleted_stacks: what was deleted (would be, in a dry run).
        gone_tags, gone_stacks: what was already gone (a tag: or never there; a stack: listed as deleted).
        tags_close: each of ``gone_tags`` -> the repository's tags close to it (``CleanupPlan``'s).
        refusals: what was refused (a run with any deletes nothing).
        stacks_kept: each planned stack not deleted because it changed after the plan (or production came
            to need it since) -> why (``judge_stack_again``).
        in_use: every task definition in use and the image it runs (what image tags it kept).
        not_done: what a run that stopped part-way left as it was.
        stopped: why it stopped part-way, or None.
        tag_digests, tags_kept, stack_resources, stack_retained, stack_holdings: what each tag named (and
            whether its image stays, tagged otherwise), what each stack held, what of that its DeletionPolicy
            keeps and each resource's type and DeletionPolicy, in stack_resources' order (none: not read)
            (``CleanupPlan``'s; a stack the run went on to delete, as read right before its deletion).
    """

    model_config = ConfigDict(frozen=True)

    dry_run: bool = False
    archived: str | None = None
    pushed: str | None = None
    deleted_tags: tuple[str, ...] = ()
    gone_tags: tuple[str, ...] = ()
    tags_close: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    deleted_stacks: tuple[str, ...] = ()
    gone_stacks: tuple[str, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    stacks_kept: dict[str, str] = Field(default_factory=dict)
    in_use: tuple[str, ...] = ()
    not_done: tuple[str, ...] = ()
    stopped: str | None = None
    tag_digests: dict[str, str] = Field(default_factory=dict)
    tags_kept: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    stack_resources: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    stack_retained: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    stack_holdings: dict[str, tuple[Holding, ...]] = Field(default_factory=dict)


def planned_result(plan: CleanupPlan) -> CleanupResult:
    """The plan as a result: what would be done (in a dry run, or a refused run)."""
    archived = pushed = None
    if plan.archive is not None:
        a = plan.archive
        archived = f"tag `{a.tag}` -> {a.commit}: " + ("exists already" if a.exists else "would be created") \
            + a.left_out()
        if a.push_to is not None:
            pushed = f"`{a.tag}` on remote `{a.push_to}`: " + ("there already" if a.pushed else "would be pushed")
    return CleanupResult(dry_run=True, archived=archived, pushed=pushed, deleted_tags=plan.delete_tags,
                         gone_tags=plan.gone_tags, tags_close=plan.tags_close, deleted_stacks=plan.delete_stacks, gone_stacks=plan.gone_stacks,
                         refusals=plan.refusals, in_use=plan.in_use, tag_digests=plan.tag_digests,
                         tags_kept=plan.tags_kept,
                         stack_resources=plan.stack_resources, stack_retained=plan.stack_retained,
                         stack_holdings=plan.stack_holdings)


def moved_tags(plan: CleanupPlan, images: Sequence[RepositoryImage]) -> dict[str, str]:
    """Each of ``plan.delete_tags`` that names another image now than the one the plan judged ->
    the digest it names now (one gone since is not moved: there is nothing left to delete)."""
    now = {tag: image.digest for image in images for tag in image.tags}
    return {tag: now[tag] for tag in plan.delete_tags
            if tag in now and plan.tag_digests.get(tag) not in (None, now[tag])}


def came_into_use(plan: CleanupPlan, remaining: Sequence[str], repository: str, in_use: Sequence[ImageUse],
                  images: Sequence[RepositoryImage], *, pushed_again: Collection[str] = ()) -> dict[str, str]:
    """Each of ``remaining`` (planned tags not deleted yet) whose image is in use now -> why it is kept.

    ``pushed_again``: planned tags neither in ``remaining`` nor deleted (pushed again since the
    plan, and kept for that): not said to have gone in an earlier batch.

    The plan judged ``plan.delete_tags`` unused; ``in_use`` is what production runs read again
    right before a deletion (a rollout started since, a revision registered, a service pointed at
    an old image), ``images`` the repository as read after the plan. Every tag of such an image is
    kept (what the plan refuses, now), said once per image with its first user, and whether any of
    its tags went in an earlier batch of the same run, before it came into use.
    """
    # No way forward said: a revision registered since the plan is likelier someone's deployment
    # under way than the old version's, and is not to be deregistered on cleanup's word.
    _, _, refused = _plan_images(remaining, repository, in_use, images)
    first_reason: dict[str, str] = {}
    kept: dict[str, str] = {}
    for refusal in refused:
        digest = plan.tag_digests.get(refusal.name, refusal.name)
        reason = first_reason.setdefault(digest, refusal.reason)
        earlier = [t for t in plan.delete_tags
                   if t not in remaining and t not in pushed_again and plan.tag_digests.get(t) == digest]
        fate = (f"its tag(s) {', '.join(earlier)} went in an earlier batch, before it came into use; it keeps the "
                "others" if earlier else "none of its tags was deleted")
        kept[refusal.name] = (f"image {digest} came into use after the plan read what production runs ({reason}); "
                              f"{fate}")
    return kept


def image_fate(kept: Sequence[str] | None) -> str:
    """What becomes of the image a deleted tag named: it goes with its last tag, or stays tagged."""
    if not kept:
        return ", deleted with it: its last tag"
    more = f" and {len(kept) - FIRST_FEW} more" if len(kept) > FIRST_FEW else ""
    return f", which stays: still tagged {', '.join(f'`{t}`' for t in kept[:FIRST_FEW])}{more}"


def tags_left(plan: CleanupPlan, removed: Collection[str]) -> dict[str, tuple[str, ...]]:
    """``plan.tags_kept`` once the deletion is done: each tag in ``removed`` whose image still has
    tags, those outside the plan or planned and not deleted (a later batch ECR refused)."""
    planned: dict[str, list[str]] = defaultdict(list)
    for tag in plan.delete_tags:
        planned[plan.tag_digests.get(tag, tag)].append(tag)
    left = {}
    for tag in removed:
        others = plan.tags_kept.get(tag, ()) + tuple(
            t for t in planned[plan.tag_digests.get(tag, tag)] if t not in removed)
        if others:
            left[tag] = others
    return left


NOT_FOUND = "Not found: deleted before, or never there (check the spelling of any you did not delete)"
"""What an image tag no longer (or never) there is reported under: resuming needs it to pass, and
ECR keeps no record of a deleted tag to tell one deleted before from a misspelt name."""

STACKS_DELETED_BEFORE = ("Already deleted: stacks CloudFormation lists as DELETE_COMPLETE (by an earlier run, or by "
                         "hand)")
"""What an old stack deleted before this run deleted it is reported under (a name no stack had is refused)."""


def no_image_tagged(tag: str, repository: str, close: Sequence[str]) -> str:
    """What is known of an image tag the repository does not have: ECR cannot tell one deleted
    before from one never there, so the tags there close to it are named (a misspelling's). The
    tag is named once: "image tag `x`: no image tagged `x` in ..." said it twice."""
    return f"image tag `{tag}`: not in `{repository}`" + (
        f"; tags there close to it: {', '.join(f'`{c}`' for c in close)} (misspelt?)" if close else "")


def summary_markdown(result: CleanupResult, repository: str) -> str:
    """The run's summary for a person: archived, deleted, already gone, refused, not done."""
    if result.refusals:
        title = "Cleanup refused: nothing was deleted"
    elif result.stopped:
        title = "Cleanup stopped part-way"
    elif result.dry_run:
        title = "Cleanup dry run: nothing was deleted"
    else:
        title = "Cleanup done"
    would = ("Left alone, deletable once the refusals are resolved" if result.refusals
             else "Would delete" if result.dry_run else "Deleted")
    lines = [f"# {title}", ""]
    if result.stopped:
        lines += [f"**Stopped:** {on_one_line(result.stopped)}", ""]

    def section(heading: str, items: Sequence[str]) -> None:
        lines.extend([f"## {heading}", ""] + ([f"- {item}" for item in items] or ["- nothing"]) + [""])

    archive = [a for a in (result.archived, result.pushed) if a]
    section("Archived" if not (result.dry_run or result.refusals) else "Archive (not written)", archive)
    section(f"{would}: image tags in `{repository}`",
            [f"`{t}`" + (f" (image {result.tag_digests[t]}" + image_fate(result.tags_kept.get(t)) + ")"
                         if t in result.tag_digests else "")
             for t in result.deleted_tags])
    def typed(stack: str) -> bool:
        """Whether each of the stack's resources was read with its type (``stack_holdings``)."""
        holdings = result.stack_holdings.get(stack, ())
        return bool(holdings) and len(holdings) == len(result.stack_resources.get(stack, ()))

    def listings(stack: str, by_type: bool) -> list[tuple[str | None, str]]:
        """The stack's resources as (type, id), the type None unless ``by_type``."""
        everything = result.stack_resources.get(stack, ())
        return ([(holding.type, r) for r, holding in zip(everything, result.stack_holdings[stack])] if by_type
                else [(None, r) for r in everything])

    def held_by(stack: str) -> str:
        everything = result.stack_resources.get(stack, ())
        # A root's holdings include its nested stacks': one listed and deleted with it had each of
        # its resources listed twice, as if two stacks had held them. Each is listed once, under
        # the stack that owns it: the one of the fewest holdings that holds it (the innermost).
        # By type and id where both were read with their types: a role of the root and a log group of
        # its name in the nested stack share an id, and the root's role went unlisted.
        inner = [other for other in result.deleted_stacks
                 if other != stack and len(result.stack_resources.get(other, ())) < len(everything)
                 and Counter(listings(stack, typed(stack) and typed(other)))
                 & Counter(listings(other, typed(stack) and typed(other)))]
        # Each listing of theirs once: a nested stack's nested stack is listed by both, so only the
        # outermost of them count (those no other lists by its stack id), each with all it holds.
        # Two nested stacks side by side may each hold a resource of one id (a role, a log group):
        # counted once between them, the second was listed under the root too.
        listed_by_inner = {stack_name(r) for other in inner for r in result.stack_resources.get(other, ())
                           if r.startswith("arn:") and ":stack/" in r}
        outermost = [other for other in inner if other not in listed_by_inner]
        theirs: Counter[tuple[str | None, str]] = sum(
            (Counter(listings(other, typed(stack) and typed(other))) for other in outermost), Counter())
        held, kept = [], list[bool]()
        # A resource its DeletionPolicy keeps stays: listed among what went, it was taken for deleted.
        # Per listing: a log group and a role of one name share an id, and with the log group kept,
        # the id was said kept at both listings, the role's too. Typed, each listing's holding says
        # it; read without types, counted per id, less what its nested stacks keep (its retained
        # names theirs too: the root's role was said kept for its nested stack's log group).
        untyped_retained = None if typed(stack) else (
            Counter(result.stack_retained.get(stack, ()))
            - sum((Counter(result.stack_retained.get(other, ())) for other in outermost), Counter()))
        holdings = result.stack_holdings.get(stack, ()) if typed(stack) else (None,) * len(everything)
        for (kind, r), holding in zip(listings(stack, typed(stack)), holdings):
            # Typed or not, as the inner stack's listing was compared with it.
            listed_inside = next((key for key in ((kind, r), (None, r)) if theirs[key] > 0), None)
            if listed_inside is not None:
                theirs[listed_inside] -= 1
                continue
            held.append(r)
            if holding is not None:
                kept.append(holding.retained)
            else:
                assert untyped_retained is not None  # no holdings read: judged by id
                untyped_retained[r] -= 1
                kept.append(untyped_retained[r] >= 0)
        if not held:
            return ""
        nested = (f" (besides those of {', '.join(f'`{other}`' for other in inner)}, listed under "
                  f"{'it' if len(inner) == 1 else 'them'})") if inner else ""
        return (f", with the {len(held)} resource(s) it holds{nested}"
                + (f" ({sum(kept)} kept by their DeletionPolicy: they stay)" if any(kept) else "") + ":"
                + "".join(f"\n  - `{r}`" + (" (kept: its DeletionPolicy retains it)" if stays else "")
                          for r, stays in zip(held, kept)))

    section(f"{would}: stacks", [f"`{s}`" + held_by(s) for s in result.deleted_stacks])
    # "Already gone" said a misspelt tag had existed and been deleted: the run looked done while
    # the old image was still there under its real tag.
    section(NOT_FOUND, [no_image_tagged(t, repository, result.tags_close.get(t, ())) for t in result.gone_tags])
    if result.gone_stacks:  # listed as deleted by CloudFormation: a name no stack had is refused
        section(STACKS_DELETED_BEFORE, [f"`{s}`" for s in result.gone_stacks])
    section("Refused", [f"{r.kind} `{r.name}`: {on_one_line(r.reason)}" for r in result.refusals])
    if result.stacks_kept:
        # Not only stacks that changed: one production came to need since the plan is kept too.
        section("Kept: planned stacks not deleted after all", [f"`{name}`: {on_one_line(why)}"
                                                               for name, why in result.stacks_kept.items()])
    if result.stopped or result.not_done:
        section("Not done", list(result.not_done))
    if result.in_use:
        section(f"In use: {len(result.in_use)} task definition(s), whose images are kept", list(result.in_use))
    return "\n".join(lines).rstrip() + "\n"
