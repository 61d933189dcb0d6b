"""Publishing a container release: the request, the refusals before building, and what a run
that stopped part-way has done.

Pure apart from checking that the build context exists: the `container` flow
(``flows/container.py``) validates its parameters with ``PublishRequest`` and asks
``release_refusal`` whether the registry can take the release before it builds anything.

A version means one image: a version the registry already holds is refused (a rebuild would
give the tag another image, and every task definition pinning it would silently change), and so
is ``latest`` on a repository whose tags are immutable (it could be pushed once, never moved).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rollway.bounds import duration_said
from rollway.errors_pickle import PicklableError
from rollway.image import LATEST, ImageReferences, ecr_location, plain_tcp_elsewhere, registry_problem, version_problem
from rollway.toolchain.docker import holds_password, host_said

_DOCKER_HOST = re.compile(r"^(unix|tcp|ssh|fd|npipe)://[^\s\x00]+$")  # no NUL: an environment cannot carry one
_GIT_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")

DOCKER_TIMEOUT_SECONDS = 1800.0
MAX_DOCKER_TIMEOUT_SECONDS = 24 * 3600.0

VERSION_LABEL = "org.opencontainers.image.version"
REVISION_LABEL = "org.opencontainers.image.revision"


# A login is asked for again when it expires within this much, whatever the push may take.
LOGIN_MARGIN = dt.timedelta(minutes=10)
# A login ECR issued this recently lasts as long as a new one would: asking again gains nothing
# (with a push bound longer than ECR's 12 hours, no login can outlast it).
LOGIN_FRESH = dt.timedelta(minutes=1)


def span_said(span: dt.timedelta) -> str:
    """A span of time as the log says it (``duration_said``), in whole seconds: "11 h 39 min 48 s",
    "25 min", "40 s"."""
    return duration_said(max(0, int(span.total_seconds())))


def login_renewal(expires_at: dt.datetime | None, *, now: dt.datetime, push_bound: dt.timedelta,
                  issued: dt.datetime | None = None) -> str | None:
    """Why a push must not start with a registry login that expires at ``expires_at`` (None: it
    may), judged at ``now``.

    A push may take ``push_bound`` (docker_timeout_seconds); ECR refuses the rest of a push whose
    login expires during it, and the layers sent so far were sent for nothing. So a login that
    expires before such a push could end is asked for again, unless ECR ``issued`` it moments ago
    (a new one would expire no later) and it lasts ``LOGIN_MARGIN`` at least.
    """
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=dt.timezone.utc)
    left = expires_at - now
    if left >= max(push_bound, LOGIN_MARGIN):
        return None
    if left >= LOGIN_MARGIN and issued is not None and now - issued < LOGIN_FRESH:
        return None
    if left <= dt.timedelta(0):
        return f"the login expired {span_said(-left)} ago"
    if left >= push_bound:
        return f"the login expires in {span_said(left)}, within {span_said(LOGIN_MARGIN)}"
    return (f"the login expires in {span_said(left)}, sooner than a push may take ({span_said(push_bound)}, "
            "docker_timeout_seconds)")


class PublishRefused(ValueError):
    """The release cannot be published as asked: refused before anything was built or pushed."""


class PublishRequest(BaseModel):
    """The `container` flow's parameters, checked before any AWS call or docker command.

    Attributes:
        version: the release's tag (never ``latest``).
        context_dir: the docker build context (an existing directory); not needed with
            ``register_existing``.
        dockerfile: its Dockerfile, relative to the context or absolute (default: the
            context's ``Dockerfile``).
        registry: push to this registry host[:port] instead of the ECR repository's, with no
            ECR login (a local or private registry that takes pushes without a login).
        push_latest: also move ``latest`` to this release.
        register_task_definition: register a task-definition revision pinning the version.
        register_existing: the version is already pushed (a run that pushed it stopped before
            registering): build and push nothing, only register the revision.
        git_commit: recorded as the image's revision label.
        labels: further image labels.
        docker_host: DOCKER_HOST of the daemon that builds; ``tcp://`` only to this machine when
            docker is handed ECR's login (plain TCP would carry it in clear): ``ssh://`` otherwise.
        docker_executable: the docker CLI (a name on PATH or a path).
        docker_timeout_seconds: how long one docker build or push may take.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    context_dir: Path | None = None
    dockerfile: Path | None = None
    registry: str | None = None
    push_latest: bool = True
    register_task_definition: bool = True
    register_existing: bool = False
    git_commit: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    docker_host: str | None = None
    docker_executable: str = "docker"
    # Bounded as the flows' other waits (flows/params.py WaitSeconds): positive, at most a day.
    docker_timeout_seconds: float = Field(default=DOCKER_TIMEOUT_SECONDS, gt=0, le=MAX_DOCKER_TIMEOUT_SECONDS,
                                          allow_inf_nan=False)

    @field_validator("context_dir", "dockerfile", "docker_host", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # Path("") is ".": a blank context_dir (a form's empty text field) built whatever directory
        # the worker ran in, and a blank dockerfile named the context itself ("does not exist").
        # Blank means not given: the context is then required, the Dockerfile the context's own,
        # the daemon docker's default (as the flow documents; a blank one was refused).
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        problem = version_problem(value)
        if problem:
            raise ValueError(f"version {value!r} {problem}")
        return value

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        problem = registry_problem(value) if value is not None else None
        if problem:
            raise ValueError(f"registry {value!r} {problem}")
        return value

    @field_validator("docker_host")
    @classmethod
    def _docker_host(cls, value: str | None) -> str | None:
        if value is not None and not _DOCKER_HOST.fullmatch(value):
            raise ValueError(f"docker_host '{host_said(value)}' is not unix://<socket>, tcp://<host>:<port>, ssh://... "
                             "(what DOCKER_HOST takes)")
        if value is not None and holds_password(value):
            # The Prefect API records a flow's parameters as given, in its database and on the
            # run's page; docker takes no password there (ssh:// logs in with the SSH agent's keys).
            # Checked in the run, once the run and its parameters were recorded: the password is
            # there already, and only a new one makes it of no use to whoever reads it.
            raise ValueError(f"docker_host '{host_said(value)}' holds a password: the Prefect API keeps a flow "
                             "run's parameters as given, for anyone who can read the run, and this run's parameters "
                             "hold it already: change that password; docker logs in to a daemon "
                             "over SSH with the SSH agent's keys, not a password; name the daemon without it "
                             "(ssh://<user>@<host>, or one on this machine)")
        return value

    @field_validator("git_commit")
    @classmethod
    def _git_commit(cls, value: str | None) -> str | None:
        if value is not None and not _GIT_COMMIT.fullmatch(value):
            raise ValueError(f"git_commit {value!r} is not a commit id (7-64 lowercase hex digits)")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not _LABEL_KEY.fullmatch(key):
                raise ValueError(f"label key {key!r} is not a label name (letters, digits, '.', '_', '/', '-')")
            if "\n" in text or "\r" in text:
                raise ValueError(f"label {key!r} holds a line break")
            # docker build takes it on its command line, which cannot carry a NUL: refused here,
            # not by the build's exec after ECR's login was asked for.
            if "\x00" in text:
                raise ValueError(f"label {key!r} holds a NUL character, which no command line can carry")
        return value

    @model_validator(mode="after")
    def _labels_agree(self) -> "PublishRequest":
        # The caller's labels were laid over rollway's: an image tagged 2.0.0 could say 1.9.0.
        given = self.labels.get(VERSION_LABEL)
        if given is not None and given != self.version:
            raise ValueError(f"label {VERSION_LABEL} is the version's: it would say {given} on an image tagged "
                             f"{self.version}; leave it out (rollway sets it)")
        given = self.labels.get(REVISION_LABEL)
        if given is not None and self.git_commit and given != self.git_commit:
            raise ValueError(f"label {REVISION_LABEL} is git_commit's: it would say {given} on an image built from "
                             f"{self.git_commit}; leave it out (rollway sets it from git_commit)")
        return self

    @model_validator(mode="after")
    def _login_stays_on_this_machine(self) -> "PublishRequest":
        # docker login and every push hand the daemon the registry's login (POST /auth,
        # X-Registry-Auth), and docker runs with no TLS settings (DOCKER_TLS_VERIFY and
        # DOCKER_CERT_PATH are not inherited): to a daemon on another machine over tcp://, the ECR
        # token (good for 12 hours) crossed the network in clear. No login: a registry override,
        # or register_existing on ECR (no docker at all).
        if self.docker_host is None or self.registry is not None or self.register_existing:
            return self
        if plain_tcp_elsewhere(self.docker_host):
            raise ValueError(
                f"docker_host '{host_said(self.docker_host)}' is plain TCP to another machine: docker hands its daemon the ECR "
                "login, which would cross the network unencrypted (rollway gives docker no TLS settings); name the "
                "daemon as ssh://<user>@<host> (docker over SSH), or one on this machine")
        return self

    @model_validator(mode="after")
    def _paths(self) -> "PublishRequest":
        if self.register_existing:
            if not self.register_task_definition:
                raise ValueError("register_existing only registers a task definition: it needs "
                                 "register_task_definition=True")
            return self  # nothing is built: the context is not needed
        if self.context_dir is None:
            raise ValueError("context_dir is required: the directory to build (docker build's context)")
        if not self.context_dir.is_dir():
            raise ValueError(f"context_dir {str(self.context_dir)!r} is not a directory")
        dockerfile = self.dockerfile_path
        if dockerfile.is_dir():
            raise ValueError(f"the Dockerfile {str(dockerfile)!r} is a directory: name the file in it "
                             "(dockerfile=..., relative to the context or absolute)")
        if not dockerfile.is_file():
            raise ValueError(f"the Dockerfile {str(dockerfile)!r} does not exist"
                             + ("" if self.dockerfile else " (pass dockerfile=...)"))
        return self

    @property
    def dockerfile_path(self) -> Path:
        """The Dockerfile as docker will read it (a relative one is taken from the context)."""
        assert self.context_dir is not None, "no context: nothing is built"
        if self.dockerfile is None:
            return self.context_dir / "Dockerfile"
        return self.dockerfile if self.dockerfile.is_absolute() else self.context_dir / self.dockerfile

    def image_labels(self) -> dict[str, str]:
        """Labels the image is built with: the version, the commit, then the caller's."""
        labels = {VERSION_LABEL: self.version}
        if self.git_commit:
            labels[REVISION_LABEL] = self.git_commit
        return {**labels, **self.labels}


def release_refusal(refs: ImageReferences, *, version_digest: str | None, latest_immutable: bool,
                    register_existing: bool, version_status: str = "ACTIVE",
                    released_as: str | None = None, latest_revision: str | None = None,
                    searched: tuple[str, int] | None = None, unsearched: str | None = None,
                    searched_every: bool = False) -> str | None:
    """Why the release cannot go ahead, or None: asked before anything is built.

    Args:
        refs: where it would be pushed.
        version_digest: the digest the registry holds for the version, or None when it holds none.
        latest_immutable: the registry will not let ``latest`` be pushed again.
        register_existing: only a revision for an already pushed version is asked for.
        version_status: the version's image status in ECR (ACTIVE, ARCHIVED, ACTIVATING): only
            an ACTIVE image can be pulled by the tasks a revision starts.
        released_as: the task family's latest ACTIVE revision, when it pins ``version_digest``
            (the release is done: a run that registered it is being run again), or an older one
            that does, with ``latest_revision``, the family's latest.
        searched: (family, n) when the family's n newest ACTIVE revisions were searched for one
            pinning ``version_digest`` and none does (None: not searched).
        unsearched: why the search of ``searched``'s family stopped short (AWS's answer, a
            listing's bound): then its n revisions read are all it says of.
        searched_every: ``searched``'s n revisions are all the family's ACTIVE ones: none older
            is left unread.
    """
    # Released before a newer version: "if a run stopped before registering, register_existing"
    # was said of a version an older revision pins, the release done.
    which = (f"an ACTIVE revision of the task family (not its latest, {latest_revision})" if latest_revision
             else "the task family's latest ACTIVE revision")
    # ARCHIVED (a lifecycle rule's archive) or ACTIVATING: no task can pull it until it is restored.
    restore = ("wait until ECR has restored it" if version_status == "ACTIVATING"  # restored already: a wait
               else "restore it (ECR UpdateImageStorageClass to STANDARD)")
    archived = (f"{refs.versioned} is {version_status} in ECR, not ACTIVE, so no task could pull it: {restore}"
                if version_digest is not None and version_status != "ACTIVE" else "")
    if register_existing:
        if version_digest is None:
            return (f"register_existing: {refs.versioned} is not in the registry (never pushed, or its tag deleted "
                    f"since), so there is nothing to register: {publish_again(refs)}")
        if archived:
            return f"register_existing: {archived} and, once it is ACTIVE, run again"
    elif archived and released_as is not None:
        # "it is released, nothing is left to run" of an image the revision's new tasks cannot pull.
        return (f"{archived}: {released_as}, {which}, pins it, and no new task of it "
                "(a scale-out, a task replaced) can start until it is ACTIVE again; nothing is to be built or "
                "registered for it")
    elif version_digest is not None and released_as is not None:
        # Run again as it was (a CI job re-triggered): "if a run pushed it and stopped before
        # registering" left the operator to find out whether the release was done, and by which revision.
        latest = (f"; {register_existing_as_asked(refs, latest_immutable)} would register a second revision "
                  f"pinning it, newer than {latest_revision}" if latest_revision else
                  f"; if {LATEST} should name it and does not, {register_existing_as_asked(refs)} moves it there and "
                  "registers no second revision" if refs.latest is not None and not latest_immutable else
                  # register_existing moves latest, which immutable tags refuse: no way on to name.
                  f"; {LATEST} is not moved here: the repository's tags are immutable" if refs.latest is not None
                  else "")
        return (f"{refs.versioned} is already in the registry (digest {version_digest}), and it is released: "
                f"{released_as}, {which}, pins it by that digest. A version must "
                f"mean one image, so nothing is left to run for it{latest}; a new build needs a new version")
    elif version_digest is not None:
        first = f"{archived}, then " if archived else ""
        # Only the newest revisions are searched: "if a run stopped before registering" was said of
        # a version an older revision pins, and register_existing then registered a second one.
        unfound = "; if"
        if searched is not None and searched_every and unsearched is None:
            # Every ACTIVE revision was read: "an older one may" was said of a family with none older.
            family, newest = searched
            every = "its only one was" if newest == 1 else f"all {newest} were"
            unfound = (f"; no ACTIVE revision of {family} pins it ({every} searched; a deregistered one may: `aws ecs "
                       f"list-task-definitions --family-prefix {family} --status INACTIVE` lists those). If")
        elif searched is not None:
            family, newest = searched
            found = (f"no ACTIVE revision among the {newest} newest of {family}, the ones searched, pins it; an "
                     "older one" if unsearched is None else
                     f"the revisions of {family} could not be searched for one pinning it ({unsearched})"
                     + (f", and none of the {newest} newest read does" if newest else "") + "; one")
            unfound = (f"; {found} may (its release done): `aws ecs list-task-definitions --family-prefix {family} "
                       "--status ACTIVE --sort DESC` lists them all, and `aws ecs describe-task-definition` names "
                       "the image each runs. If none does and")
        return (f"{refs.versioned} is already in the registry (digest {version_digest}): a version must mean one "
                f"image. Give the new build a new version{unfound} a run pushed it and stopped before registering, "
                f"{first}run again with {register_existing_as_asked(refs, latest_immutable)}")
    # register_existing moves latest to the version as well, as the release's push does.
    if refs.latest is not None and latest_immutable:
        return (f"the repository's tags are immutable, so the moving tag {LATEST!r} cannot be pushed (it could be "
                "pushed once, and never moved to the next release): run with push_latest=False")
    return None


def register_existing_as_asked(refs: ImageReferences, latest_immutable: bool = False) -> str:
    """The parameters that register a pushed version as the run that pushed it was asked to:
    register_existing moves latest by default, so a run asked to leave latest alone (a release
    staged without becoming latest), or one on a repository whose tags are immutable (which
    refuses latest moved), names push_latest=False too."""
    return ("register_existing=True" if refs.latest is not None and not latest_immutable
            else "register_existing=True and push_latest=False")


def publish_again(refs: ImageReferences) -> str:
    """The way on when the registry holds no image for the version a run was to register: it
    must be built and pushed again. register_existing takes no build context, and "run without
    register_existing" alone was refused for want of one."""
    return (f"publish it again: run publish_container with version={refs.version!r}, context_dir=<the build "
            "context> and your other parameters as before, without register_existing (it builds and pushes the "
            "version, then registers it)")


class Known(Enum):
    """What a run knows of the image the registry holds under the version (``VersionImage``)."""

    # The registry could not be read for the version right before this run would have pushed it:
    # whether another run pushed it during the build is not known (this run pushed nothing).
    UNASKED = "unasked"
    # The push of the version failed and the registry could not be read after it: whether it holds
    # the version (this run's build, if the push got that far, or another run's) is not known.
    UNREAD = "unread"
    # The registry holds ``digest``, and whether it is this run's build could not be told (the
    # daemon recorded no push of the build, and the manifest could not be read): register_existing
    # would register it, and move latest to it, whoever built it.
    UNTOLD = "untold"
    # The registry holds ``digest``, checked to be this run's build: before that (interrupted during
    # the push, or before it), the image under the version may be another run's.
    OURS = "ours"
    # The registry holds ``digest``, another run's build: pushed during this run's build, or while
    # its push failed (this run pushed nothing over it); or this run's push sent another run's image
    # (tagged on the shared daemon meanwhile), or another run pushed over it since. The way on is then
    # that run's: register_existing would register that image as this release.
    THEIRS = "theirs"


@dataclass(frozen=True)
class VersionImage:
    """What is known of the image under the version, and its digest when the registry was read to
    hold one (``Known``): a digest with "not read" (or none with "another run's") cannot be made."""

    known: Known
    digest: str | None = None

    def __post_init__(self) -> None:
        read = self.known in (Known.UNTOLD, Known.OURS, Known.THEIRS)
        if read != (self.digest is not None):
            raise ValueError(f"the version's image is {self.known.value}: "
                             + ("its digest is needed" if read else "no digest was read"))


@dataclass
class PublishProgress:
    """What a run has done so far, to say on failure what is where and how to go on."""

    refs: ImageReferences
    # Whether the run registers a revision: one that only pushes must not be told to go on by
    # registering one (register_existing).
    register: bool = True
    image_id: str | None = None
    digests: dict[str, str] = field(default_factory=dict)
    task_definition: str | None = None
    # The digest latest was left on, a release pushed after the version's (register_existing):
    # not a latest still to move, which the way on would leave there again.
    latest_left: str | None = None
    # (the digest this run tagged latest, what latest named right after): another run tagged
    # latest (or deleted it: None) while register_existing moved it, so latest is not this run's.
    latest_taken: tuple[str, str | None] | None = None
    # The digest latest named when this run read it before moving it (None: no image, or not read).
    latest_was: str | None = None
    logged_in: str | None = None
    steps: list[str] = field(default_factory=list)
    # A register_existing run: it builds nothing, so a version gone from the registry is not
    # one it can run again to push.
    existing: bool = False
    # The digest the version named when this run pushed (or found) it, once the registry holds
    # no image for the version any more (its tag deleted meanwhile).
    gone: str | None = None
    # reference -> the digest the registry was last read to hold for it, when that is not one
    # this run pushed (or found): another run pushed over it, or this run's push failed and the
    # registry held the version all the same. Kept apart from ``digests`` so that where things
    # stand names what is in the registry now and what this run pushed, each as what it is.
    held: dict[str, str] = field(default_factory=dict)
    # The registration failed with its answer lost, and may have registered a revision all the
    # same (``EcsDeployer`` could not find out): not "no task definition was registered".
    unanswered: bool = False
    # What this run last learned of the image the registry holds under the version, beyond what it
    # pushed (None: nothing more than the check before the build, which found none). One fact,
    # each replacing the one before: the way on follows from it.
    version_image: VersionImage | None = None

    def _knows(self, known: Known) -> bool:
        return self.version_image is not None and self.version_image.known is known

    def state(self) -> str:
        """Where things stand, in a sentence or two."""
        parts: list[str] = []
        # Something reached the registry: pushed (or found), if deleted from it since.
        reached = bool(self.digests) or self.gone is not None or bool(self.held)
        if not reached and self._knows(Known.UNREAD):
            built = "" if self.image_id is None else f"the image was built ({self.image_id}), and "
            parts.append(f"{built}whether the registry holds {self.refs.versioned} is not known (its push failed and "
                         "the registry could not be read after it)")
        elif not reached:
            parts.append("nothing was pushed" if self.image_id is None else
                         f"the image was built ({self.image_id}) but nothing was pushed")
            if self._knows(Known.UNASKED):
                parts.append(f"whether the registry holds {self.refs.versioned} (another run's push during the build) "
                             "is not known: it could not be read before pushing")
        versioned = self.refs.versioned
        image = self.version_image
        if image is not None and image.known is Known.THEIRS and versioned not in self.digests \
                and versioned not in self.held:  # read, never pushed nor read before: nothing else says it
            parts.append(f"{versioned} names {image.digest} in the registry, another run's push of the same version")
        did = "found" if self.existing else "pushed"
        for reference in self.refs.all:
            now = self.held.get(reference)
            if now is not None and reference in self.digests and now != self.digests[reference]:
                parts.append(f"{reference} names {now} in the registry now (another run's push), not "
                             f"{self.digests[reference]}, which this run {did}")
            elif now is not None and reference not in self.digests:
                parts.append(f"{reference} names {now} in the registry, read after this run's push of it failed "
                             "(another run's image, or this run's if its push got that far)")
            elif reference in self.digests:
                parts.append(f"{reference} is pushed ({self.digests[reference]})")
            elif reference == self.refs.versioned and self.gone is not None:
                parts.append(f"{reference} is no longer in the registry (it named {self.gone}, since deleted)")
            elif reference == self.refs.latest and self.latest_taken is not None:
                tagged, now = self.latest_taken
                parts.append(f"{reference} names {now or 'no image'} in the registry now, tagged by another run while "
                             f"this one moved it to {tagged}")
            elif reference == self.refs.latest and self.latest_left is not None:
                parts.append(f"{reference} was left on {self.latest_left}, a newer release's")
            elif self.digests or self.held:
                # latest is never pushed: it is moved by the registry's API once the release is registered.
                parts.append(f"{reference} was not moved to {self.refs.versioned}" if reference == self.refs.latest
                             else f"{reference} was not pushed")
        if self.task_definition:
            parts.append(f"task definition {self.task_definition} is registered")
        elif self.unanswered:
            parts.append("a task definition may have been registered all the same (the registration's answer was "
                         "lost, see the error)")
        elif reached and self.register:
            parts.append("no task definition was registered")
        return "; ".join(parts)

    def how_to_go_on(self) -> str:
        """What to run next: safe to re-run as is, or with register_existing; once whose image the
        registry holds for the version is told, when this run could not tell it."""
        advice = self._way_on()
        image = self.version_image
        if image is None or image.known is not Known.UNTOLD or self.task_definition is not None:
            return advice
        return self._once_told(f"whose image {image.digest} (what the registry holds for {self.refs.versioned}) is",
                               advice)

    def _once_told(self, question: str, advice: str) -> str:
        """``advice`` (register_existing) for when the image under the version is this run's build,
        once ``question`` (whose image it is) is told: unconditioned, "run again with
        register_existing=True" registered (and moved latest to) that image whoever built it,
        another run's as this run's release."""
        return (f"first tell {question}: if its manifest names {self.image_id} as its config, it is this run's build, "
                f"and {advice}; if it names another, it is another run's image (that run registers it): nothing is "
                "left to run for this build, and a new build needs a new version")

    def _way_on(self) -> str:
        # Another run's image under the version makes the way on that run's only while this run
        # registered nothing and built its own (a register_existing run's way on stays its own).
        if self._knows(Known.THEIRS) and self.task_definition is None and not self.existing:
            # Not "re-running is safe": the version is the other run's now, and a re-run is refused.
            return ("the version is another run's now (that run registers it; if it stopped before registering, "
                    f"{register_existing_as_asked(self.refs)} registers its image): nothing is left to run for this "
                    "build, and a new build needs a new version")
        if self._knows(Known.THEIRS) and self.existing and self.task_definition is None:
            # register_existing read the version again right before registering and found another
            # image: "run again with register_existing" registered that image, which nobody on this
            # run built or checked, as the release.
            assert self.version_image is not None  # _knows
            theirs, found = self.version_image.digest, self.digests.get(self.refs.versioned, "the image it found")
            return (f"{self.refs.versioned} names {theirs} now, pushed over {found} (the image this run found) by "
                    "another run or by hand, and neither built nor checked by this run: nothing was registered. "
                    f"Release {theirs} only knowingly: once you have checked that {theirs} is a build you mean to "
                    f"release (its labels: the version and git commit it was built from), run again with "
                    f"{register_existing_as_asked(self.refs)}, which registers the image the version names when it "
                    f"runs (check that its revision pins {theirs}); or publish the build you meant ({found}) under a "
                    "new version and register that one")
        if self._knows(Known.THEIRS) and self.task_definition is not None:
            # Read again after registering (latest's move failed): register_existing would pin the
            # image the version names now, another run's, in a second revision and move latest to
            # it, and "tag the version as latest" would hand latest that image too.
            mine = self.digests.get(self.refs.versioned, "this run's digest")
            latest = (f"; {LATEST} was not moved: tag {mine} as {LATEST} in the registry by hand if it should name "
                      "this release" if self.refs.latest is not None and self.refs.latest not in self.digests
                      and self.latest_left is None else "")
            return (f"the release is registered ({self.task_definition}, pinning {mine}, the image this run "
                    f"{'found' if self.existing else 'pushed'}), and {self.refs.versioned} names another run's image "
                    "now (that run registers it): a re-run with register_existing would register that image in a "
                    f"second revision, so nothing is left to run for this release{latest}")
        if self.refs.versioned not in self.digests and self.refs.versioned not in self.held:
            if self.existing:  # run again as it was, it is refused: nothing to register
                return ("the version is not in the registry, so register_existing has nothing to register: "
                        f"{publish_again(self.refs)}")
            # "Not in the registry" is not known: the re-run's own check makes it safe.
            if self._knows(Known.UNREAD) or self._knows(Known.UNASKED):
                return ("re-running with the same version is safe: it asks the registry for the version before "
                        "building, and is refused, saying how to go on, if the registry holds it")
            return "re-running with the same version is safe (the version is not in the registry)"
        latest = (f"; {LATEST} was not moved, push it by hand if you need it"
                  if self.refs.latest is not None and self.refs.latest not in self.digests
                  and self.latest_left is None else "")
        if not self.register:
            # Nothing this run was to do is left but latest: "a plain re-run is refused" alone
            # named no way on, and read as if one were needed.
            if not latest:
                return ("the version is in the registry, so a re-run is refused, and nothing is left to run for this "
                        "version (no task definition is to be registered for it); a new build needs a new version")
            # The daemon's local latest tag is shared with other runs: the built image is named by its id.
            what = (f"docker tag {self.image_id} {self.refs.latest}, then docker push {self.refs.latest}"
                    if self.image_id is not None else f"tag {self.refs.versioned} as {LATEST} in the registry")
            return (f"the version is in the registry, so a re-run is refused and none is needed{latest}, logged in "
                    f"to the registry: {what}")
        # Only ECR says when an image was pushed; on another registry the re-run moves latest back.
        taken = latest and self.latest_taken is not None
        unless = (" unless ECR says the image it names was pushed after the version"
                  if self.refs.latest is not None and ecr_location(self.refs.latest) is not None else "")
        if self.task_definition is None:
            if taken:
                latest = (f"; {LATEST} is another run's now: the re-run reads it again and puts it back on the version"
                          f"{unless} (push_latest=False leaves it)")
            elif latest:  # register_existing retags latest by the registry's API
                latest = f"; {LATEST} was not moved: register_existing moves it (push_latest=False leaves it)"
            found = (" (it finds the revision the lost answer may have registered, while that is the family's latest "
                     "ACTIVE one, and registers no second)" if self.unanswered else "")
            return ("the version is in the registry, so a plain re-run is refused: run again with "
                    f"{register_existing_as_asked(self.refs)} to register its task definition without "
                    f"rebuilding{found}{latest}")
        if taken:
            # "which moves latest to it" was untrue of a latest ECR says a newer release took.
            return (f"the release is registered ({self.task_definition}), and {LATEST} is another run's now: run "
                    f"again with {register_existing_as_asked(self.refs)}, which registers no second revision while "
                    f"{self.task_definition} is the family's latest ACTIVE one; the re-run reads {LATEST} again and "
                    f"puts it back on the version{unless}")
        if latest:
            # latest moves last, once the release is registered: a failure there left it on the
            # release before (or another run's image), and the release registered all the same.
            return (f"the release is registered ({self.task_definition}), and {LATEST} does not name it: run again "
                    f"with {register_existing_as_asked(self.refs)}, which moves {LATEST} to it and registers no "
                    f"second revision while {self.task_definition} is the family's latest ACTIVE one (or tag "
                    f"{self.refs.versioned} as {LATEST} in the registry by hand)")
        return "nothing is left to do"

    def how_to_go_on_interrupted(self) -> str:
        """What to run next after an interrupt, which may have come after a step finished on the
        registry's side though the run did not see it: run again, which asks the registry first."""
        if self.existing:  # it builds nothing: run as it was, not as a plain run, which is refused
            return (f"run it again as it was ({register_existing_as_asked(self.refs)}): it asks the registry "
                    "first, and registers the version, or finds the revision this run registered if it got that "
                    "far (while it is the family's latest ACTIVE one)")
        # A push-only run told to go on with register_existing=True would register a revision it
        # was never to register (and register_existing refuses register_task_definition=False).
        if self.register and self.task_definition is not None:
            # Stopped once the revision was registered (moving latest, the last step): the re-run
            # finds that revision, and "then registers it" promised a registration it does not make.
            moves = f" and moves {LATEST} to it" if self.refs.latest is not None else ""
            then = (f" ({register_existing_as_asked(self.refs)} then finds {self.task_definition}, which this run "
                    f"registered, and registers no second revision while it is the family's latest ACTIVE one{moves})")
        elif self.register and self._knows(Known.OURS):
            then = f" ({register_existing_as_asked(self.refs)} then registers it without rebuilding)"
        elif self.register and self.image_id is not None:
            # Interrupted during the push (or before it was checked): the push may have finished, or
            # another run of the version pushed; register_existing registers whichever it is.
            then = "; if it is refused, " + self._once_told(
                f"whose image the registry holds for {self.refs.versioned}",
                f"{register_existing_as_asked(self.refs)} registers it without rebuilding")
        elif self.register:  # interrupted before its build was done: nothing of this run's was pushed
            then = ("; one there is another run's (that run registers it): nothing is left to run for this build, and "
                    "a new build needs a new version")
        elif self.refs.latest is not None:
            then = f" (it is pushed then: push {LATEST} by hand if it does not name the version)"
        else:  # push_latest=False: no latest to move
            then = " (it is pushed then, and nothing is left to run for this version)"
        return f"run again: it asks the registry first, and a version that is there is refused{then}"


def tags_moved(progress: PublishProgress) -> str:
    """Which tags a run that finished moved, and which it left as they were: for its log, where a
    person reading it after a release wants to know what ``latest`` names now and since when."""
    refs, digests = progress.refs, progress.digests
    moved: list[str] = []
    kept: list[str] = []
    version = digests.get(refs.versioned)
    if progress.existing:
        kept.append(f"{refs.versioned} (on {version} already)")
    else:
        moved.append(f"{refs.versioned} to {version} (a new tag)")
    latest = digests.get(refs.latest) if refs.latest is not None else None
    if refs.latest is None:
        kept.append(f"{LATEST} (push_latest=False)")
    elif progress.latest_left is not None:
        kept.append(f"{refs.latest} (on {progress.latest_left}, a newer release's)")
    elif latest is not None and progress.latest_was == latest:
        kept.append(f"{refs.latest} (on {latest} already)")
    elif latest is not None:
        moved.append(f"{refs.latest} from {progress.latest_was or 'no image'} to {latest}")
    said = "tags moved: " + (", ".join(moved) or "none")
    return said + (f"; left as they were: {', '.join(kept)}" if kept else "")


class PublishIncomplete(PicklableError, RuntimeError):
    """A step failed part-way through publishing.

    Attributes:
        step: the step that failed.
        state: what was done (pushed references, registered revision).
        advice: how to go on.
    """

    def __init__(self, step: str, why: str, progress: PublishProgress) -> None:
        self.step = step
        self.state = progress.state()
        self.advice = progress.how_to_go_on()
        super().__init__(f"{step} failed: {why}\nWhere things stand: {self.state}.\nTo go on: {self.advice}.")


class PublishResult(BaseModel):
    """What a `container` run published.

    Attributes:
        version: the release's tag.
        image: the release's reference for people (``<registry>/<repository>:<version>``).
        pinned_image: the version by its digest (``<registry>/<repository>@sha256:...``), which
            no later push can move: what the task definition pins (None: no digest known).
        references: every reference pushed (or found, with register_existing).
        digest: the registry's digest of the version.
        image_id: the built image's id (None with register_existing).
        task_definition: the registered revision's ARN (None when not asked for).
        steps: what was done, in order.
    """

    model_config = ConfigDict(frozen=True)

    version: str
    image: str
    pinned_image: str | None
    references: tuple[str, ...]
    digest: str | None
    image_id: str | None
    task_definition: str | None
    steps: tuple[str, ...]
