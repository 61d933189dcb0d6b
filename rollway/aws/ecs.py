"""ServiceDeployer on ECS: task definition revisions that differ only by image, and services.

A new revision is a copy of a base revision with one container's image swapped. Which
fields can be copied is read from botocore's model of RegisterTaskDefinition, so a field
AWS adds later is carried over too instead of being silently dropped.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from rollway.aws.denied import pass_role_denied
from rollway.aws.errors import (NOT_TAKEN, SERVER_SIDE_CODES, AdapterError, ServiceGone, ServiceNotStable,
                                TargetNotFound, TaskDefinitionInactive, aws_message, error_code)
from rollway.deadline import read_back_within
from rollway.failure_words import tell
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
# Tag on each revision register_revision makes: a token of that call's own, by which a
# registration whose answer was lost finds the revision it made (RegisterTaskDefinition is not
# idempotent, and takes no client token).
REQUEST_TAG = "rollway:request"
# Tag on a revision copy_revision makes: the ARN of the (deregistered) revision it copies.
COPY_TAG = "rollway:copy-of"
# How many of a family's newest revisions are searched for that token.
REQUEST_LOOKBACK = 10
# How many of the revisions registered after a deregistered one are searched for its copy (one
# DescribeTaskDefinition each, inside finalize's bounded read, on the account's ECS request quota).
COPY_LOOKBACK = 100
# How many revisions one ListTaskDefinitions call asks for (ECS's most), and how many calls one
# search makes at most. familyPrefix is a prefix: listed newest first (sort DESC, by family name,
# then revision), the revisions of every family whose name begins with this one's and sorts after
# it ("app-worker" for "app") come first, and a family beside one with thousands of revisions cost
# a call per page of those, without a bound, before its own were reached. At the bound the search
# stops, as unsuccessful, and says what it did not list.
LIST_PAGE_SIZE = 100
LIST_PAGES = 10
# ECS's limit of tags on one resource: a registration asking for more is refused.
MAX_TAGS = 50
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaseRevision:
    """A revision a new one is copied from, as read at one moment.

    Attributes:
        arn: its ARN (``family:revision`` pinned: a family name means whichever is latest).
        image: the image of ``targets.container_name`` in it.
        platform: what its tasks run on, as docker names it (``task_platform``), or None.
        tags: how many tags of its own it carries (not counting an older ``rollway:request``,
            which a copy replaces): at ``MAX_TAGS``, a copy of it goes without that token.
    """

    arn: str
    image: str
    platform: str | None
    tags: int = 0

    @property
    def tags_full(self) -> bool:
        """Whether a copy of it has no room for the ``rollway:request`` token (see ``copied_tags``)."""
        return self.tags >= MAX_TAGS
# wait_stable polls at most this often; real ECS needs minutes, so finer polling only adds calls.
_MAX_DELAY_SECONDS = 15


REVISIONS_SEARCHED = 20
"""How many of a family's newest revisions are read for the one pinning a version (``revision_search``)."""


@dataclass
class _Listing:
    """What one search listed of ``family``'s revisions (``EcsDeployer._own_revisions``)."""

    family: str
    calls: int = 0
    listed: int = 0  # revisions listed, of other families too
    others: set[str] = field(default_factory=set)  # the other families listed (familyPrefix is a prefix)
    unlisted: str | None = None  # what was not listed, once the listing stopped at its bound


@dataclass(frozen=True)
class RevisionSearch:
    """What ``EcsDeployer.revision_search`` found of a family's revisions pinning an image."""

    arn: str | None
    """The newest revision pinning it, or None: none of those read does."""
    read: int
    """How many revisions were read, newest first."""
    unread: str | None = None
    """Why the search stopped before reading all it was to (AWS's answer, the listing's bound)."""
    every: bool = False
    """Whether every ACTIVE revision of the family was read: none older is left unread."""


class EcsDeployer:
    """Registers image-only revisions and points and scales the services of one cluster.

    Args:
        client: a boto3 ``ecs`` client.
        targets: the cluster and the name of the container whose image is swapped.
        reads: seconds -> an ``ecs`` client whose calls end within them, for ``wait_stable``'s
            reads; None: they use ``client``.
    """

    def __init__(self, client: Any, targets: Targets, reads: Callable[[float], Any] | None = None) -> None:
        self._client = client
        self._targets = targets
        self._reads = reads
        # service -> the task definition this deployer last pointed it at: what wait_stable
        # expects it to run unless told otherwise.
        self._pointed: dict[str, str] = {}

    def reading(self, seconds: float) -> EcsDeployer:
        """This deployer for reads given up on after ``seconds`` (a describe a person waits on): on
        a client whose calls end within them (``reads``). Not for writes."""
        return self if self._reads is None else EcsDeployer(self._reads(seconds), self._targets)

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

        The revision is tagged ``rollway:request`` with a token of this call's own. When the
        answer is lost (a dropped connection, a timeout, an internal error), or botocore sent
        the call more than once, the family's newest revisions are searched for the token: a
        revision the call made is used rather than reported as a failure (and left unused), and
        any second copy botocore's resending made is deregistered. A base that carries 50 tags of
        its own (ECS's limit) is copied with them all and without the token (``copied_tags``),
        which is logged: a lost answer is then raised saying it may have registered one.

        Returns:
            The new revision's ARN.

        Raises:
            ValueError: ``image`` is empty (raised before any call).
            TargetNotFound: the base does not exist, or has no container of that name.
            PassRoleDenied: the credentials' role or user may not pass the copied roles to ECS; nothing registered.
            ClientError, BotoCoreError: the registration failed and made no revision.
        """
        if not image or not image.strip():
            raise ValueError("image must not be empty")
        return self._register_copy(base_task_definition, image)

    def copy_revision(self, task_definition: str) -> str:
        """Register an identical copy of ``task_definition`` (deregistered: ECS points no service
        at an INACTIVE revision, and DescribeTaskDefinition still answers for it) as a new ACTIVE
        revision of its family: every field RegisterTaskDefinition takes, the image as it names it
        (a digest the same digest, a tag the same tag), its tags, and ``rollway:copy-of`` naming the revision copied,
        by which ``copy_of`` finds it again. As ``register_revision`` otherwise (a lost answer).

        Raises:
            TargetNotFound: no such revision.
            AdapterError: it has a field RegisterTaskDefinition does not take (copying would lose it).
            PassRoleDenied, ClientError, BotoCoreError: as ``register_revision``; nothing registered.
        """
        return self._register_copy(task_definition, None)

    def copy_of(self, task_definition: str) -> str | None:
        """The newest ACTIVE revision ``copy_revision`` made of ``task_definition``, or None
        (read-only). The ``COPY_LOOKBACK`` newest revisions of its family registered after it are
        searched, newest first, until one is the copy: a finalize stopped between registering the
        copy and recording it, and resumed after more than ``REQUEST_LOOKBACK`` registrations (a
        CI's builds), registered a second copy. Not every one: each is a DescribeTaskDefinition,
        and a family with thousands since ran finalize's read out. They are listed in at most
        ``LIST_PAGES`` ListTaskDefinitions calls of ``LIST_PAGE_SIZE`` (``_own_revisions``), which
        list the revisions of families whose names begin with this one's too: a search that reaches
        that bound stops there, having searched what it listed (maybe fewer than ``COPY_LOOKBACK``).
        A copy not searched is not found (logged, either way): the caller registers another, and
        that one stays unused."""
        try:
            described = self._client.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        except ClientError as err:
            raise _named(err, task_definition) from err
        arn, family, revision = described["taskDefinitionArn"], described["family"], int(described["revision"])
        tag = {"key": COPY_TAG, "value": arn}
        listing = _Listing(family)
        newer: list[str] = []
        for other in self._own_revisions(listing):
            if _number(other) <= revision or len(newer) > COPY_LOOKBACK:
                break
            newer.append(other)
        for other in newer[:COPY_LOOKBACK]:
            if tag in self._client.describe_task_definition(taskDefinition=other, include=["TAGS"]).get("tags", []):
                return other
        if len(newer) > COPY_LOOKBACK:
            _log.warning("no copy of %s among the %d newest revisions registered since %s; older ones were not "
                         "searched: a copy among them, registered by a finalize that stopped before recording it, "
                         "stays unused", arn, COPY_LOOKBACK, task_definition)
        elif listing.unlisted is not None:
            _log.warning("no copy of %s among the revisions of %s listed: %s; a copy among those not listed, "
                         "registered by a finalize that stopped before recording it, stays unused", arn, family,
                         listing.unlisted)
        return None

    def copied_from(self, task_definition: str) -> str | None:
        """The revision ``task_definition`` is a ``copy_revision`` of (its ``rollway:copy-of``), or None."""
        try:
            tags = self._client.describe_task_definition(taskDefinition=task_definition, include=["TAGS"]).get("tags", [])
        except ClientError as err:
            raise _named(err, task_definition) from err
        return next((tag["value"] for tag in tags if tag.get("key") == COPY_TAG), None)

    def _register_copy(self, base_task_definition: str, image: str | None) -> str:
        """``register_revision``'s work; ``image`` None: an identical copy (``copy_revision``)."""
        try:
            described = self._client.describe_task_definition(
                taskDefinition=base_task_definition, include=["TAGS"]
            )
        except ClientError as err:
            raise _named(err, base_task_definition) from err
        arguments = registration_input(
            described["taskDefinition"],
            [tag for tag in described.get("tags", []) if tag.get("key") != COPY_TAG],
            self._registerable_fields(),
        )
        if image is not None:
            _swap_image(arguments, self._targets.container_name, image, base_task_definition)
        elif sum(not reserved_tag(tag) and tag.get("key") != REQUEST_TAG for tag in arguments.get("tags", [])) < MAX_TAGS:
            # Which revision it stands in for: a finalize resumed after registering it finds it again.
            copied = {"key": COPY_TAG, "value": described["taskDefinition"]["taskDefinitionArn"]}
            arguments["tags"] = [*arguments.get("tags", []), copied]
        else:
            # ECS refuses a 51st tag: the team's own are kept, and a run stopped before the
            # ledger names the copy registers another (inert) one.
            _log.warning("%s carries %d tags, ECS's limit per resource: its copy keeps them all and goes without "
                         "rollway's %s tag", base_task_definition, MAX_TAGS, COPY_TAG)
        # RegisterTaskDefinition is not idempotent: botocore sends it again after a lost answer,
        # and each copy that arrived is a revision. A token of this call's own, as a tag, tells
        # which revisions it made (a base made by rollway carries an older call's: it is replaced).
        reserved = [tag["key"] for tag in arguments.get("tags", []) if reserved_tag(tag)]
        if reserved:
            _log.info("%s carries AWS's own tags (%s): its copy goes without them, as ECS refuses a registration "
                      "that sets one", base_task_definition, ", ".join(reserved))
        arguments["tags"], token = copied_tags(arguments.get("tags", []), uuid.uuid4().hex)
        family = arguments["family"]
        if token is None:
            _log.warning("%s carries %d tags, ECS's limit per resource: its copy keeps them all and goes without "
                         "rollway's %s tag, so a registration whose answer is lost cannot be found by it",
                         base_task_definition, len(arguments["tags"]), REQUEST_TAG)
        try:
            answer = self._client.register_task_definition(**arguments)
        except ClientError as err:
            resent = err.response.get("ResponseMetadata", {}).get("RetryAttempts")
            if error_code(err) not in SERVER_SIDE_CODES and not resent:
                # ECS refused the only copy sent: nothing was registered. A refused PassRole of
                # the copied roles is named, with the policy statement to change.
                roles = tuple(arguments[k] for k in ("executionRoleArn", "taskRoleArn") if arguments.get(k))
                denied = pass_role_denied(err, family, roles)
                if denied is not None:
                    raise denied from err
                raise
            return self._recover(family, token, err)
        except BotoCoreError as err:  # the connection dropped, or the answer timed out
            return self._recover(family, token, err)
        arn = answer["taskDefinition"]["taskDefinitionArn"]
        if answer.get("ResponseMetadata", {}).get("RetryAttempts") and token is None:
            _log.warning("%s was registered by a call botocore sent more than once: an earlier copy may have "
                         "registered another revision like it, which carries no %s tag to find it by", arn,
                         REQUEST_TAG)
        elif answer.get("ResponseMetadata", {}).get("RetryAttempts"):
            # Sent more than once: an attempt whose answer was lost may have registered too.
            try:
                extras = [other for other in self._registered_with(family, token) if other != arn]
            except Exception as err:  # noqa: BLE001 - the registration succeeded: a failed search must not fail it
                _log.error("could not look for a second copy of %s (%s=%s) that botocore's resending may have "
                           "registered: %s", arn, REQUEST_TAG, token, err)
                return arn
            self._deregister_extras(extras)
        return arn

    def _recover(self, family: str, token: str | None, err: Exception) -> str:
        """The revision a failed RegisterTaskDefinition made after all (its answer was lost), or
        ``err`` raised when it made none (or they cannot be looked up; ``token`` None: it was
        sent without one). Of several (botocore sent it more than once), the newest is kept and
        the others deregistered."""
        if token is None:
            _unsure(err, f"it may have registered a revision all the same, which carries no {REQUEST_TAG} tag "
                         f"(its base has {MAX_TAGS} tags, ECS's limit) to find it by")
            raise err
        try:
            found = self._registered_with(family, token, err)
        except Exception as lookup:  # noqa: BLE001 - the registration's own error is the one to tell
            _unsure(err, f"looking up a revision registered with {REQUEST_TAG}={token} failed too: {lookup}")
            raise err from None
        if not found:
            raise err
        keep, extras = found[0], found[1:]
        _log.warning("RegisterTaskDefinition failed (%s) but registered %s: using it", err, keep)
        self._deregister_extras(extras)
        return keep

    def _registered_with(self, family: str, token: str, err: Exception | None = None) -> list[str]:
        """ARNs of the ACTIVE revisions of ``family`` tagged ``rollway:request=token``, newest
        first, among its ``REQUEST_LOOKBACK`` newest (other runs may have registered since).

        The revision was registered moments ago, as the call that lost its answer was sent: it is
        among the newest unless as many others were registered meanwhile, and each one searched
        costs a DescribeTaskDefinition; they are listed in at most ``LIST_PAGES`` calls. ``err``:
        the registration's own error, which, when none is found and the family has revisions not
        searched (older ones, or ones not listed by then), is told so and what to look for.
        """
        tag = {"key": REQUEST_TAG, "value": token}
        searched = 0
        found = []
        listing = _Listing(family)
        unread = None
        for arn in self._own_revisions(listing):
            if searched == REQUEST_LOOKBACK:
                unread = (f"no ACTIVE revision of {family} tagged {tag['key']}={token} among its "
                          f"{REQUEST_LOOKBACK} newest, which were searched; older ones were not: if as many "
                          "were registered while the answer was awaited, one this call made may be among "
                          "them, carrying that tag, unused (deregister it)")
                break
            searched += 1
            if tag in self._client.describe_task_definition(taskDefinition=arn, include=["TAGS"]).get("tags", []):
                found.append(arn)
        if unread is None and listing.unlisted is not None:
            unread = (f"no ACTIVE revision of {family} tagged {tag['key']}={token} among the {searched} listed, "
                      f"which were searched; {listing.unlisted}: one this call made may be among those, carrying "
                      "that tag, unused (deregister it)")
        if unread is not None and not found and err is not None:
            _log.warning("RegisterTaskDefinition failed (%s): %s", err, unread)
            _unsure(err, unread)
        return found

    def _own_revisions(self, listing: _Listing) -> Iterator[str]:
        """The ACTIVE revisions of ``listing.family``, newest first, as ListTaskDefinitions lists
        them page by page: at most ``LIST_PAGES`` calls, after which ``listing`` says what was not
        listed (its ``unlisted``)."""
        family = listing.family
        pages = self._client.get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status="ACTIVE", sort="DESC", PaginationConfig={"PageSize": LIST_PAGE_SIZE})
        for page in pages:
            listing.calls += 1
            arns = page.get("taskDefinitionArns", [])
            listing.listed += len(arns)
            ours = _newest_first(family, arns)
            listing.others.update(task_family(arn) for arn in arns if arn not in ours)
            yield from ours
            if page.get("nextToken") and listing.calls >= LIST_PAGES:
                others = ", ".join(sorted(listing.others)[:3]) + (", ..." if len(listing.others) > 3 else "")
                listing.unlisted = (
                    f"ListTaskDefinitions was called {listing.calls} times, its bound, and listed {listing.listed} "
                    "revisions" + (f", among them those of other families whose names begin with {family} "
                                   f"({others}), listed first" if listing.others else "")
                    + f", with more to list: the revisions of {family} it would list next were not searched")
                return

    def _deregister_extras(self, extras: list[str]) -> None:
        """Deregister revisions a resent registration made besides the one used. A failure is
        logged, not raised: the registration itself succeeded, and an extra is inert."""
        for arn in extras:
            try:
                self._client.deregister_task_definition(taskDefinition=arn)
                _log.warning("deregistered %s: a second copy of a registration that botocore sent again", arn)
            except Exception as err:  # noqa: BLE001 - see above
                _log.error("could not deregister %s, an unused copy of a registration (%s)", arn, err)

    def image_of(self, task_definition: str) -> str:
        """The image of the container ``targets.container_name`` in ``task_definition``
        (read-only: the preflight's check that the container a new image goes into exists).

        Raises:
            TargetNotFound: no such task definition, or no container of that name in it.
        """
        try:
            described = self._client.describe_task_definition(taskDefinition=task_definition)
        except ClientError as err:
            raise _named(err, task_definition) from err
        return _container(described["taskDefinition"], self._targets.container_name, task_definition)["image"]

    def base_revision(self, task_definition: str) -> BaseRevision:
        """The revision ``task_definition`` names now (a family: its latest ACTIVE one), read
        once: its ARN, the image of ``targets.container_name`` and the platform its tasks run on.

        Raises:
            TargetNotFound: no such task definition, or no container of that name in it.
        """
        try:
            answer = self._client.describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
        except ClientError as err:
            raise _named(err, task_definition) from err
        described = answer["taskDefinition"]
        return BaseRevision(arn=described["taskDefinitionArn"],
                            image=_container(described, self._targets.container_name, task_definition)["image"],
                            platform=task_platform(described),
                            tags=sum(tag.get("key") != REQUEST_TAG and not reserved_tag(tag)
                                     for tag in answer.get("tags", [])))

    def revision_search(self, family: str, image: str, searched: int = REVISIONS_SEARCHED) -> RevisionSearch:
        """The newest ACTIVE revision of ``family`` whose container ``targets.container_name`` runs
        ``image``, among its ``searched`` newest, with how far the search went: a refusal said "none
        among the 20 newest pins it" of a search AWS refused, or that a listing's bound cut short."""
        listing = _Listing(family=family)
        read, every = 0, False
        try:
            for arn in self._own_revisions(listing):
                if read >= searched:
                    break  # an older one is listed, and left unread
                described = self._client.describe_task_definition(taskDefinition=arn)["taskDefinition"]
                read += 1
                if any(d.get("name") == self._targets.container_name and d.get("image") == image
                       for d in described.get("containerDefinitions", [])):
                    return RevisionSearch(str(described["taskDefinitionArn"]), read)
            else:
                # Listed to its end, not cut at the listing's bound: none older is left unread.
                every = listing.unlisted is None
        except (ClientError, BotoCoreError) as err:
            return RevisionSearch(None, read, aws_message(err, call=True))
        return RevisionSearch(None, read, listing.unlisted if read < searched else None, every=every)

    def revision_status(self, task_definition: str) -> str:
        """Whether ECS still takes ``task_definition`` for a service: ``ACTIVE``, ``INACTIVE``
        (deregistered) or ``DELETE_IN_PROGRESS`` (read-only: `rollway status` tells from it
        whether a rollback can restore the revision it would restore).

        Raises:
            TargetNotFound: no such revision.
        """
        try:
            described = self._client.describe_task_definition(taskDefinition=task_definition)
        except ClientError as err:
            raise _named(err, task_definition) from err
        return described["taskDefinition"].get("status", "ACTIVE")

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
            TargetNotFound: no such cluster, or no such (active) service in it, or no such
                task definition.
            TaskDefinitionInactive: ``task_definition`` was deregistered (or deleted); ECS refuses it.
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
            state = _service_state(self._client.update_service(**arguments)["service"])
        except ClientError as err:
            if task_definition is not None and error_code(err) == "ClientException":
                # ECS answers a revision deregistered (or deleted) since it was recorded ("TaskDefinition is
                # inactive") with the code it uses for most refusals: the revision's status says
                # which, so a caller can name it (a rollback restores another revision instead).
                raise self._refused_revision(err, task_definition, service) from err
            raise _missing(err, self._targets.cluster, service) from err
        if task_definition is not None:
            self._pointed[service] = state.task_definition
        return state

    def _refused_revision(self, err: ClientError, task_definition: str, service: str) -> Exception:
        """TaskDefinitionInactive when UpdateService was refused ``task_definition`` because it is
        INACTIVE or DELETE_IN_PROGRESS, TargetNotFound when ECS cannot find it; otherwise the refusal
        as ``_missing`` names it (also when the revision cannot be described: the refusal's own words stand)."""
        try:
            described = self._client.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        except ClientError as lookup:
            named = _named(lookup, task_definition)
            if isinstance(named, TargetNotFound):
                return named
        else:
            if described.get("status") in NOT_TAKEN:
                return TaskDefinitionInactive(task_definition, service, aws_message(err, call=True),
                                              status=described["status"])
        return _missing(err, self._targets.cluster, service)

    def wait_stable(
        self, services: Sequence[str], timeout_seconds: float, expected: Mapping[str, str] | None = None, *,
        between: Callable[[], None] | None = None,
    ) -> None:
        """Block until every service runs its desired count in a single deployment (what
        botocore's ``services_stable`` waiter waits for) and on the revision it should run.

        Polls DescribeServices every ``min(15, timeout/4)`` seconds (at least 1), as many times
        as fit in ``timeout_seconds``. A loop of our own rather than the waiter: the waiter
        reports a missing service, a refused call and a timeout alike, and cannot say why. Each
        read is given up on at the timeout (and ``READ_BACK_MARGIN_SECONDS``), on a client whose
        calls end within it (``reads``): on the client that writes, an ECS that never answered
        held the wait for about a minute past a shorter timeout, silent.

        Args:
            expected: service -> the task definition it should run; by default the one this
                deployer last pointed it at. ECS's deployment circuit breaker rolls a failed
                deployment back to the previous revision, and the service is then steady, on
                the old version.
            between: called before each wait between polls (a shift's watch on the canary,
                which serves traffic meanwhile); what it raises ends the wait.

        Raises:
            ValueError: ``services`` is empty or the timeout is not positive.
            ServiceNotStable: the timeout passed, a service runs another revision than
                expected, or its deployment failed; the message quotes ECS's newest events.
            ServiceGone: a service does not exist, or is being deleted (at once, not a timeout).
            TargetNotFound: the cluster does not exist.
            ReadBackUnanswered: ECS did not answer a read by the timeout.
            ClientError: any other refusal (access denied, throttling), as it came.
        """
        names = list(services)
        if not names:
            raise ValueError("wait_stable needs at least one service")
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        expected = {**self._pointed, **(expected or {})}
        delay, attempts = waiter_schedule(timeout_seconds)
        client = self._client if self._reads is None else self._reads(timeout_seconds)
        deadline = time.monotonic() + timeout_seconds
        for attempt in range(attempts):
            if attempt:
                left = deadline - time.monotonic()
                if left <= 0:  # slow answers used the time the schedule gave the polls left
                    break
                if between is not None:
                    between()
                    left = deadline - time.monotonic()
                    if left <= 0:  # the watch's look used it
                        break
                time.sleep(min(delay, left))
            found = read_back_within(deadline - time.monotonic(), lambda: self._describe_all(names, client),
                                     what=f"the state of ECS service(s) {', '.join(names)}", seconds=timeout_seconds,
                                     service="ECS")
            # ECS's reads are eventually consistent: the first one after an UpdateService may
            # still show the old revision, steady. From the next poll on (a second or more
            # later), or at the only one a short timeout allows, the revision read is ECS's answer.
            unsteady = [item for item in found
                        if not _on_revision(names, item, expected.get(item["serviceName"]), timeout_seconds,
                                            final=attempt > 0 or attempt == attempts - 1)
                        or not _steady(item)]
            if not unsteady:
                return
        raise ServiceNotStable(names, timeout_seconds, "; ".join(_why(item) for item in unsteady))

    def _describe_all(self, names: list[str], client: Any) -> list[dict[str, Any]]:
        """The services as ECS describes them, one call (DescribeServices takes up to 10)."""
        cluster = self._targets.cluster
        try:
            found = client.describe_services(cluster=cluster, services=names)
        except ClientError as err:
            raise _missing(err, cluster, ", ".join(names)) from err
        for failure in found.get("failures", []):
            # ECS answers MISSING for a service it does not know (no error is raised).
            raise ServiceGone(names, failure.get("arn", "?").rsplit("/", 1)[-1], f"in cluster {cluster}: "
                              f"{failure.get('reason')} {failure.get('detail', '')}".rstrip())
        for item in found["services"]:
            if item["status"] in ("DRAINING", "INACTIVE"):
                raise ServiceGone(names, item["serviceName"], f"in cluster {cluster}: it is {item['status']}")
        return found["services"]

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
        # A classic load balancer's entry names no target group: it registers in none of the rule's.
        target_groups=tuple(lb["targetGroupArn"] for lb in service.get("loadBalancers", [])
                            if lb.get("targetGroupArn")),
    )


def _steady(service: dict[str, Any]) -> bool:
    """botocore's ``services_stable`` condition: one deployment, running all desired tasks."""
    return len(service.get("deployments", [])) == 1 and service["runningCount"] == service["desiredCount"]


def _primary(service: dict[str, Any]) -> dict[str, Any]:
    return next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})


def _on_revision(names: list[str], service: dict[str, Any], expected: str | None, timeout_seconds: float,
                 *, final: bool) -> bool:
    """Whether ``service`` deploys ``expected`` (True when nothing is expected); raises once it
    is ``final`` that it does not, since waiting longer would not help.

    The service's ``taskDefinition`` is its PRIMARY deployment's, and ECS points it back at the
    old revision when the circuit breaker rolls back (it is read there, not from the deployment,
    because moto does not move its deployment on UpdateService). A PRIMARY deployment marked
    FAILED is the circuit breaker without rollback: it launches no more tasks.
    """
    if expected is None:
        return True
    runs = service["taskDefinition"]
    if _revision(runs) != _revision(expected):
        if not final:
            return False
        raise ServiceNotStable(names, timeout_seconds, f"{service['serviceName']} runs {runs}, not {expected} "
                               f"(rolled back by ECS's circuit breaker, or replaced): {_why(service)}", timed_out=False)
    if _primary(service).get("rolloutState") == "FAILED":
        raise ServiceNotStable(names, timeout_seconds, f"the deployment of {expected} failed: {_why(service)}",
                               timed_out=False)
    return True


def _revision(task_definition: str) -> str:
    """"family:revision" of an ARN or of "family:revision" itself, to compare either form."""
    return task_definition.rsplit("/", 1)[-1]


def task_family(task_definition: str) -> str:
    """The family of an ARN or of "family:revision"."""
    return _revision(task_definition).rsplit(":", 1)[0]


def _number(task_definition: str) -> int:
    """The revision number of an ARN or of "family:revision"."""
    return int(task_definition.rsplit(":", 1)[1])


def _newest_first(family: str, listed: Sequence[str]) -> list[str]:
    """The revisions of ``family`` among ``listed``, newest first. familyPrefix is a prefix to
    moto ("app" lists "app-v2" too), which also ignores sort and maxResults."""
    return sorted((arn for arn in listed if task_family(arn) == family), key=_number, reverse=True)


def _why(service: dict[str, Any], events: int = 3) -> str:
    """What ECS says about ``service``: counts, its deployment's rollout reason, newest events."""
    parts = [f"{service['serviceName']} has {service['runningCount']}/{service['desiredCount']} tasks running "
             f"in {len(service.get('deployments', []))} deployment(s)"]
    reason = _primary(service).get("rolloutStateReason")
    if reason:
        parts.append(reason.rstrip("."))
    # ECS lists events newest first.
    newest = [e["message"] for e in service.get("events", [])[:events]]
    if newest:
        parts.append("latest events: " + " | ".join(newest))
    return "; ".join(parts)


def waiter_schedule(timeout_seconds: float) -> tuple[int, int]:
    """(Delay, MaxAttempts) for a poll that should give up after about ``timeout_seconds``.

    The poll sleeps Delay whole seconds between attempts, so MaxAttempts * Delay bounds the wait.
    """
    delay = max(1, min(_MAX_DELAY_SECONDS, int(timeout_seconds // 4)))
    attempts = max(1, math.ceil(timeout_seconds / delay))
    return delay, attempts


# runtimePlatform.cpuArchitecture -> docker's architecture name.
_ARCHITECTURES = {"X86_64": "amd64", "ARM64": "arm64"}


def task_platform(task_definition: Mapping[str, Any]) -> str | None:
    """The platform (``os/architecture`` as docker names it) a task definition's tasks run on.

    Its ``runtimePlatform`` when it names a CPU architecture; otherwise, for a Fargate one,
    Fargate's default (Linux on X86_64); otherwise (EC2 without runtimePlatform: the container
    instance decides) None.
    """
    runtime = task_definition.get("runtimePlatform") or {}
    architecture = runtime.get("cpuArchitecture")
    if architecture is None and "FARGATE" in (task_definition.get("requiresCompatibilities") or []):
        architecture = "X86_64"
    if architecture is None:
        return None
    system = "windows" if (runtime.get("operatingSystemFamily") or "LINUX").startswith("WINDOWS") else "linux"
    return f"{system}/{_ARCHITECTURES.get(architecture, architecture.lower())}"


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


def copied_tags(tags: list[dict[str, str]], token: str) -> tuple[list[dict[str, str]], str | None]:
    """The tags of a copy of a revision tagged ``tags``, and the ``rollway:request`` token among
    them (None: left off).

    The base's own tags are all kept and an older token is replaced by ``token``; AWS's own
    (``reserved_tag``: CloudFormation's ``aws:cloudformation:*`` on a revision a stack made) are left
    to AWS, which refuses a registration that sets them. A base that
    carries ``MAX_TAGS`` of its own has no room for it: ECS refused the registration, after the
    release was built and pushed. Those tags are the team's (cost allocation; a service control
    or ABAC policy may require them), the token only helps find a revision whose answer was
    lost, so the token is what is left off.
    """
    own = [tag for tag in tags if tag.get("key") != REQUEST_TAG and not reserved_tag(tag)]
    if len(own) >= MAX_TAGS:
        return own, None
    return [*own, {"key": REQUEST_TAG, "value": token}], token


def reserved_tag(tag: Mapping[str, str]) -> bool:
    """Whether ``tag``'s key has AWS's reserved prefix (``aws:`` in any case): AWS sets such tags
    itself, refuses a request that sets one, and does not count them against the 50-tag limit."""
    return str(tag.get("key", "")).lower().startswith("aws:")


def _swap_image(arguments: dict[str, Any], container: str, image: str, base: str) -> None:
    _container(arguments, container, base)["image"] = image


def _container(task_definition: dict[str, Any], container: str, name: str) -> dict[str, Any]:
    """The definition of ``container`` in a task definition (or its registration input)."""
    for definition in task_definition.get("containerDefinitions", []):
        if definition.get("name") == container:
            return definition
    names = [d.get("name") for d in task_definition.get("containerDefinitions", [])]
    raise TargetNotFound("container", container, f"in task definition {name} (it has {names})")


# Set on a registration's error when it may have registered a revision all the same: its answer
# was lost, and the search for the revision could not tell (``may_have_registered``).
_UNSURE = "rollway_may_have_registered"


def _unsure(err: Exception, why: str) -> None:
    """Say ``why`` in ``err``'s message, and mark it as a registration that may have registered."""
    tell(err, why)
    try:
        setattr(err, _UNSURE, True)
    except AttributeError:  # an error that takes no attribute: its message says it all the same
        pass


def may_have_registered(err: BaseException) -> bool:
    """Whether ``err``, raised by ``register_revision`` or ``copy_revision``, comes from a
    registration whose answer was lost and that may have registered a revision all the same
    (its message says why it could not be told): not one ECS refused, which registered nothing."""
    return bool(getattr(err, _UNSURE, False))


def _named(err: ClientError, task_definition: str) -> Exception:
    """TargetNotFound when ECS says the task definition does not exist; otherwise the error as
    it came (access denied or throttling must not read as "not found")."""
    # ECS answers ClientException for a task definition it cannot find (or whose name it cannot parse).
    if err.response.get("Error", {}).get("Code", "") == "ClientException":
        return TargetNotFound("task definition", task_definition, aws_message(err, call=True))
    return err


def _missing(err: ClientError, cluster: str, service: str) -> Exception:
    """TargetNotFound naming the cluster or the service ECS could not find (its own message
    names neither); any other error as it came."""
    code = err.response.get("Error", {}).get("Code", "")
    if code == "ClusterNotFoundException":
        return TargetNotFound("ECS cluster", cluster, aws_message(err, call=True))
    if code in ("ServiceNotFoundException", "ServiceNotActiveException"):
        return TargetNotFound("ECS service", service, f"in cluster {cluster}: {aws_message(err, call=True)}")
    return err
