"""publish_container: build the release image, push its version, register its task-definition
revision, then move latest to it.

The seed's "Deploy Container Image" step, made safe to run and re-run:

1. refuse (``PublishRefused``, before any AWS call or docker command) a bad version (``latest``,
   anything that is not a docker tag), registry, Dockerfile or docker host; then, unless nothing
   needs docker (``register_existing`` on ECR), refuse a worker without the docker CLI or a
   docker daemon that does not answer, still before any AWS call (the credentials' own check
   included): a problem on the worker is not one AWS should be asked about first;
2. read the ECR repository (``Targets.ecr_repository``; ``TargetNotFound`` if absent) and, when a
   revision is asked for, the base revision's container (``Targets.task_family``,
   ``Targets.container_name``); refuse before building a version the registry already holds
   (a version must mean one image) and ``latest`` on a repository with immutable tags;
3. with ``registry`` given, ask that registry for the version, and refuse as above; ECR: log
   in (the GetAuthorizationToken asked for before building, so a role without it is refused
   before any build; handed to ``docker login`` on stdin) in a private docker config directory,
   before the build, which pulls base images with that config's logins (one in the release's
   own registry too);
4. build (labels: the version, the git commit), check that the image is built for the platform
   the family's tasks run on (push nothing otherwise), tag the version (only), ask the registry
   again that it holds no version (another run of it may have pushed it during the build: push
   nothing over it), log in
   again before any push (a push made again too) whose login would expire before the push could
   end, ``docker_timeout_seconds`` (and push once more after a new login a push ECR
   refused because the login expired during it, and again after a wait, a few times, a push
   the network or the registry failed in passing), push the version (checking with the daemon that
   it pushed this run's build: another run of the same version on the daemon may have tagged
   it meanwhile; a push that failed after the registry took this run's build is done, and said
   so, not pushed again; any other image found there after a failed push, or one it cannot tell
   is this run's build, is never pushed over: the run stops, saying which);
5. register a revision of ``Targets.task_family`` copied from its latest ACTIVE revision with
   only the container's image changed, to the version's digest (``<repository>@sha256:...``, the
   one the registry holds for the version: no tag, which a later push could move); a revision
   registered into the family during the build is the one copied, once checked as the first was;
   its tags are copied too, with rollway's ``rollway:request`` token, left off (which the run
   says before building and in its steps) when the base carries 50, ECS's limit; only then move
   ``latest`` to the version's digest by the registry's API (ECR's PutImage, or
   the other registry's own: one manifest put, nothing pushed again, never the daemon's local
   ``latest``, which other runs share), so a run that stops before registering leaves ``latest``
   on the release before, not on an image no revision runs; the log says which tags moved;
6. log out and delete the private config (always, in a finally), and write a markdown artifact
   (a refused run too: why, and that nothing was built, pushed or registered; a run that failed
   before building, as a read AWS denied: the error, and that nothing was pushed or registered;
   one cancelled or interrupted before building, or between its reads and its first docker
   command: that, and that nothing was built, pushed or registered; one interrupted later, in a
   step or between two: what was pushed and registered as far as it saw).

A read AWS denies before building is ``PermissionDenied``, naming the action and the statement of
``deployments/iam-policy-release.json`` that grants it. A permission denied after the build (the
registry read before registering, the registration, the task roles it passes) is named so too, in
the ``PublishIncomplete`` and its artifact, beside what was pushed and how to go on.

With ``registry`` given, the release goes to that registry instead (no ECR login: a local or
private registry that takes pushes without one) under the same repository path. A revision is
registered only into a family whose latest revision already pulls from that registry. A run that
stops part-way raises ``PublishIncomplete`` saying what was pushed and registered and how to go
on: re-running with the same version is safe while the version is not in the registry; once it
is, ``register_existing=True`` registers the revision without rebuilding (for ECR, without docker)
and moves ``latest`` to the version as a push would, by the registry's API (refused while ECR
reports the image ARCHIVED or ACTIVATING, which no task could pull, or when it is built for another
platform than the family's), or returns the family's latest ACTIVE revision when it already pins
the version; the version is asked for again right before registering (its tag may have been deleted
since), and one gone is to be published again (built and pushed: ``publish_again``). ``latest``
stays on an image ECR says was pushed after the version (a newer release's), and the run says so.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, NamedTuple

from botocore.exceptions import ClientError
from prefect import flow, get_run_logger
from pydantic import ValidationError

from flows.artifacts import create_markdown_artifact, for_people
from flows.env import load_clients
from flows.params import WaitSeconds
from rollway.aws.denied import RELEASE_POLICY, named_denials, named_refusal
from rollway.aws.ecr import ACTIVE, EcrRepository, HeldImage, PlatformUnknown, RegistryLogin
from rollway.aws.ecs import REQUEST_TAG, BaseRevision, EcsDeployer, may_have_registered, task_family
from rollway.aws.errors import AdapterError, TargetNotFound, answer_lost, never_reached
from rollway.failure_words import error_said, failures_writable, tell
from rollway.image import (
    LATEST, ImageReferences, InvalidImageTarget, image_references, pinned_reference, registry_of,
)
from rollway.publish import (
    DOCKER_TIMEOUT_SECONDS, Known, PublishIncomplete, PublishProgress, PublishRefused, PublishRequest, PublishResult,
    VersionImage, login_renewal, register_existing_as_asked, release_refusal, tags_moved,
)
from rollway.ports import ImagePublisher
from rollway.targets import Targets
from rollway.toolchain.docker import (
    DaemonUnreachable, DockerCommandFailed, PushRefused, docker_session, host_said, retry_reason,
)
from rollway.toolchain.process import ToolMissing
from rollway.url_passwords import passwords_hidden
from tasks import container as steps

ARTIFACT_KEY = "publish-container"


# ECR refusing a push for want of a permission, as docker prints it: "denied: User: ... is not
# authorized to perform: ecr:InitiateLayerUpload on resource: ...".
_PUSH_DENIED = re.compile(r"not authorized to perform: ecr:[A-Za-z]+")


def _push_denied(err: BaseException, targets: Targets | None) -> Exception | None:
    """A push ECR refused for want of a permission as the refusal of any other ECR call
    (``named_refusal``: the action and the release policy's statement granting it); None for any
    other failure. docker pushes with ECR's login, issued to the run's own credentials; its bare
    words left a person to find the statement to add before a re-run, which builds again and is
    refused the same way until it is added."""
    if not isinstance(err, PushRefused):
        return None
    said = next((line.strip() for line in reversed(err.tail) if _PUSH_DENIED.search(line)), None)
    if said is None:
        return None
    answer = {"Error": {"Code": "AccessDeniedException", "Message": said}}  # docker's words whole
    return named_refusal(ClientError(answer, "push"), RELEASE_POLICY, targets)


def _request(**parameters: Any) -> PublishRequest:
    """The parameters as a PublishRequest, or PublishRefused naming every one that is wrong."""
    try:
        return PublishRequest(**parameters)
    except ValidationError as err:
        # The validators' own messages name the parameter; pydantic's (a bound, a type) do not.
        problems = "; ".join(e["msg"].removeprefix("Value error, ") if e["type"] == "value_error"
                             else f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise PublishRefused(f"refused before building anything: {problems}") from None


class _Run:
    """One run's progress: each step logged as it is done and kept for the result, and a
    failure turned into PublishIncomplete saying what is where."""

    def __init__(self, refs: ImageReferences, register: bool = True, targets: Targets | None = None,
                 existing: bool = False, now: Callable[[], dt.datetime] | None = None) -> None:
        self.log = get_run_logger()
        # The run's clock (UTC), against which a login's expiry is judged.
        self.now = now or _utcnow
        # When this run last had ECR issue its login (None: it has none).
        self.login_issued: dt.datetime | None = None
        # The run's own names, for the statement a refused permission names (named_refusal).
        self.targets = targets
        self.progress = PublishProgress(refs=refs, register=register, existing=existing)
        # What the image this run built (or registers) runs on (None: not known).
        self.built_platforms: tuple[str, ...] | None = None

    def done(self, step: str, *, warning: bool = False) -> None:
        self.log.log(logging.WARNING if warning else logging.INFO, "publish: %s", step)
        self.progress.steps.append(step)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        try:
            yield
        except Exception as err:  # noqa: BLE001 - every failure is reported with where things stand
            # A permission AWS refused after the build (the registry read before registering, the
            # registration, the roles it passes) is named as one refused before it: the action and
            # the release policy's statement granting it, not AWS's bare text.
            named = named_refusal(err, RELEASE_POLICY, self.targets) or _push_denied(err, self.targets)
            why = str(named) if named is not None else error_said(err)
            # A registration whose answer was lost may have made its revision: where things stand
            # must not say that none was registered.
            self.progress.unanswered = self.progress.unanswered or may_have_registered(err)
            failed = PublishIncomplete(name, why, self.progress)
            self.log.error("%s", failed)
            self._record(f"{failed.step} failed.", failed.state, failed.advice, error=why)
            raise failed from err
        except BaseException as stop:
            # Cancelled from the UI (Prefect's TerminationSignal) or Ctrl-C: docker is stopped
            # mid-step. Such a run left no word of where it stood, and the key's newest artifact
            # was still an earlier release's. The step may have finished on the registry's side
            # before the interrupt; a new run asks the registry before building, so that is safe.
            if not _recorded(stop):
                self.interrupted(f"during {name}", f"{name} was interrupted (the run was cancelled or stopped); it "
                                 "may have finished.")
                _mark_recorded(stop)
            raise

    def interrupted(self, when: str, what: str) -> None:
        """Log and record that the run was interrupted ``when`` (``what``: the artifact's words for
        it), with what is where as far as it saw."""
        state = self.progress.state()
        advice = self.progress.how_to_go_on_interrupted()
        self.log.error("publish: interrupted %s; as far as this run saw: %s. To go on: %s", when, state, advice)
        self._record(what, f"{state} (as far as this run saw)", advice)

    def _record(self, what: str, state: str, advice: str, error: str | None = None) -> None:
        """The run's artifact when it stopped part-way: what failed and why, what is where, what next."""
        done = "\n".join(f"{i}. {s}" for i, s in enumerate(self.progress.steps, 1)) or "(none)"
        said = f"**Error:** {error}\n\n" if error else ""
        try:
            create_markdown_artifact(
                key=ARTIFACT_KEY, description="container release (stopped)",
                markdown=f"# Container release `{self.progress.refs.version}` stopped\n\n"
                         f"**{what}**\n\n{said}**Where things stand:** {state}.\n\n"
                         f"**To go on:** {advice}.\n\n## Steps done\n\n{done}\n")
        except Exception as err:  # noqa: BLE001 - the error raised says all of this too
            self.log.warning("publish: could not write the artifact: %s", passwords_hidden(str(err)))


@flow(name="publish_container", log_prints=True)
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def publish_container(
    version: str,
    context_dir: str | None = None,
    dockerfile: str | None = None,
    registry: str | None = None,
    push_latest: bool = True,
    register_task_definition: bool = True,
    register_existing: bool = False,
    git_commit: str | None = None,
    labels: dict[str, str] | None = None,
    docker_host: str | None = None,
    docker_executable: str = "docker",
    docker_timeout_seconds: WaitSeconds = DOCKER_TIMEOUT_SECONDS,
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
) -> PublishResult:
    """Build the image in ``context_dir``, push it as ``<repository>:<version>``, register a
    task-definition revision pinning the version's digest, then move ``:latest`` to it.

    See the module docstring for the steps.

    Args:
        version: the release's image tag (never ``latest``); a version already pushed is refused.
        context_dir: the docker build context, on the machine that runs the flow (not with ``register_existing``).
        dockerfile: the Dockerfile, relative to the context or absolute; empty: the context's ``Dockerfile``.
        registry: push to this registry host[:port] (local or private, no ECR login) instead of the ECR repository.
        push_latest: also move ``latest`` to this version.
        register_task_definition: register a task-definition revision pinning the version's digest.
        register_existing: the version is already pushed (a run stopped before registering): only register it.
        git_commit: the commit built, recorded as the image's revision label.
        labels: further image labels (name: value).
        docker_host: the daemon that builds (DOCKER_HOST; with ECR, tcp:// only on this machine); empty: docker's default.
        docker_executable: the docker CLI (a name on PATH or a path).
        docker_timeout_seconds: how long one docker build or push may take (at most a day).
        targets_block: a saved RollwayTargets block (the ECR repository and task family); cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
    """
    with _outcome_recorded(version):
        request = _request(version=version, context_dir=context_dir, dockerfile=dockerfile, registry=registry,
                           push_latest=push_latest, register_task_definition=register_task_definition,
                           register_existing=register_existing, git_commit=git_commit, labels=labels or {},
                           docker_host=docker_host, docker_executable=docker_executable,
                           docker_timeout_seconds=docker_timeout_seconds)
    log = get_run_logger()
    return run_publish(request, lambda: load_clients(targets_block, aws_credentials_block),
                       open_publisher=lambda: docker_session(
                           request.docker_executable, docker_host=request.docker_host,
                           on_line=lambda line: log.info("docker: %s", line),
                           timeout_seconds=request.docker_timeout_seconds))


@contextmanager
def _outcome_recorded(version: str) -> Iterator[_Watch]:
    """Leave the artifact saying how a run that did not finish ended, for the block it guards:
    refused, failed before building, stopped part-way (``_Run.step`` writes that one) or
    interrupted (``_interrupt_recorded``)."""
    try:
        with _interrupt_recorded(version) as watch:
            yield watch
    except (PublishRefused, TargetNotFound) as refused:
        _record_refusal(version, refused)
        raise
    except PublishIncomplete:
        raise  # its artifact (_Run.step) says what was pushed and registered
    except Exception as err:
        _record_failure(version, err)
        raise


def _record_refusal(version: str, refused: Exception) -> None:
    """The run's artifact when it was refused: why, and that nothing was built, pushed or
    registered (every PublishRefused, and a TargetNotFound that ends a run, comes before any
    of that: later failures are PublishIncomplete)."""
    # The version may be the refused value itself: backticks in it would break the heading's code span.
    shown = str(version).replace("`", "'")
    try:
        create_markdown_artifact(
            key=ARTIFACT_KEY, description="container release (refused)",
            markdown=f"# Container release `{shown}` refused\n\n**Why:** {refused}\n\n"
                     "**Nothing was built, pushed or registered.** Fix the cause above and run again.\n")
    except Exception as err:  # noqa: BLE001 - the PublishRefused raised says all of this too
        get_run_logger().warning("publish: could not write the artifact: %s", passwords_hidden(str(err)))


def _record_failure(version: str, err: Exception) -> None:
    """The run's artifact when it failed before building, other than by a refusal (a permission
    AWS denied, an endpoint botocore could not reach, a block that would not load): that it
    failed, that nothing was pushed or registered, and the error. Such a run left no artifact,
    and the key's newest one, the previous release's, read as this run's. Every failure from the
    build on is a PublishIncomplete, whose artifact says what is where."""
    shown = str(version).replace("`", "'")
    for_people("container release (failed)", lambda: create_markdown_artifact(
        key=ARTIFACT_KEY, description="container release (failed)",
        markdown=f"# Container release `{shown}` failed\n\n**Error:** {error_said(err)}\n\n"
                 "**Nothing was pushed or registered:** the run stopped before building. Fix the cause above "
                 "and run again.\n"))


class _Watch:
    """What ``_interrupt_recorded`` knows of the run it guards: its progress, once the reads before
    building are done (``run``; None before)."""

    run: _Run | None = None


# Set on an interrupt once its artifact is written, so that a guard further out writes no other.
_RECORDED = "rollway_publish_recorded"


def _recorded(stop: BaseException) -> bool:
    return bool(getattr(stop, _RECORDED, False))


def _mark_recorded(stop: BaseException) -> None:
    try:
        setattr(stop, _RECORDED, True)
    except AttributeError:  # an interrupt that takes no attribute: a guard further out may write another
        pass


@contextmanager
def _interrupt_recorded(version: str) -> Iterator[_Watch]:
    """Leave the artifact saying where the run stood when the block is stopped, wherever it is.

    Prefect's cancel (the UI's Cancel, stopping the process that serves the flow) raises
    TerminationSignal in the flow's own code, as Ctrl-C raises KeyboardInterrupt; an
    ``on_cancellation`` hook runs where the engine or the runner decides and cannot tell whether
    the build had begun, so the word is written here, where the run knows. Such a run left no
    artifact, and the key's newest one, the previous release's summary, read as this run's.
    The step interrupted writes its own (``_Run.step``); an interrupt between steps (after the
    reads, before the first docker command; during the logout after the pushes) writes
    "cancelled" while nothing is built, pushed or registered (``_Watch.run``'s progress), else
    "stopped" with what is where.
    """
    watch = _Watch()
    try:
        yield watch
    except Exception:
        raise
    except BaseException as stop:  # noqa: BLE001 - KeyboardInterrupt, TerminationSignal; raised again
        if not _recorded(stop):
            run = watch.run
            progress = run.progress if run is not None else None
            if progress is None or (progress.image_id is None and not progress.digests
                                    and progress.task_definition is None):
                _record_cancelled(version, stop)
            else:
                last = progress.steps[-1] if progress.steps else "the reads before building"
                run.interrupted(f"after: {last}", "The run was interrupted (cancelled or stopped) between "
                                f"steps, after: {last}.")
            _mark_recorded(stop)
        raise


def _record_cancelled(version: str, stop: BaseException) -> None:
    """The run's artifact when it was cancelled (or interrupted) before building: that nothing
    was built, pushed or registered, so running again is safe."""
    shown = str(version).replace("`", "'")
    get_run_logger().error("publish: cancelled before building (%s): nothing was built, pushed or registered",
                           type(stop).__name__)
    for_people("container release (cancelled)", lambda: create_markdown_artifact(
        key=ARTIFACT_KEY, description="container release (cancelled)",
        markdown=f"# Container release `{shown}` cancelled\n\n**The run was cancelled or interrupted "
                 f"({type(stop).__name__}) before building.** Nothing was built, pushed or registered: run again "
                 "to release it.\n"))


def run_publish(request: PublishRequest, clients: Callable[[], tuple[Targets, Callable[[str], Any]]], *,
                open_publisher: Callable[[], AbstractContextManager[ImagePublisher]],
                now: Callable[[], dt.datetime] | None = None) -> PublishResult:
    """Publish the release ``request`` asks for; see the module docstring for the order. The
    body of the ``publish_container`` flow, which hands it the saved blocks' clients and docker.

    Args:
        request: the validated parameters.
        clients: loads the targets (the repository, task family and container names) and the
            boto3 clients (``ecr``, ``ecs``) in ``targets.region``; called once docker answered
            (loading credentials asks AWS already), and not at all for a run refused before.
        open_publisher: opens the image publisher (a docker CLI in a private config
            directory), first of all (its daemon is asked before any AWS call), and cleans it
            up when the run ends; not called when nothing needs docker.
        now: the run's clock (an aware UTC datetime), against which ECR's login is judged to
            last a push (default: the system's).

    Every run that does not finish leaves the artifact saying so (refused, failed, stopped,
    cancelled) and what is where.

    Raises:
        PublishRefused: before anything was built or pushed.
        TargetNotFound: the repository or the task family (or its container) does not exist.
        PermissionDenied: AWS refused a read before building; names the release policy's statement.
        PublishIncomplete: a step failed; says what was pushed and registered, and how to go on.
    """
    with _outcome_recorded(request.version) as watch, _docker_ready(request, open_publisher) as docker:
        targets, get_client = clients()
        return _publish(request, targets, get_client, docker, watch, now or _utcnow)


class _Docker(NamedTuple):
    """The run's docker, its daemon asked before any AWS call (``_docker_ready``)."""

    publisher: ImagePublisher
    server: str  # the daemon's version


@contextmanager
def _docker_ready(request: PublishRequest,
                  open_publisher: Callable[[], AbstractContextManager[ImagePublisher]]) -> Iterator[_Docker | None]:
    """The run's docker, open for the block, once its daemon answered; None when the run needs
    none (``register_existing`` on ECR registers by ECR's API alone). A missing docker CLI or a
    daemon that does not answer is PublishRefused: nothing is asked of AWS first."""
    if request.register_existing and request.registry is None:
        yield None
        return
    with ExitStack() as opened:
        try:
            publisher = opened.enter_context(open_publisher())
            server = steps.daemon_version(publisher)
        except (ToolMissing, DaemonUnreachable) as problem:
            get_run_logger().error("publish: refused: %s", problem)
            raise PublishRefused(f"refused before building anything: {problem}") from None
        yield _Docker(publisher, server)


def _publish(request: PublishRequest, targets: Targets, get_client: Callable[[str], Any], docker: _Docker | None,
             watch: _Watch, now: Callable[[], dt.datetime]) -> PublishResult:
    """run_publish's steps, with ``docker`` ready (None: not needed); ``watch`` is told the run's
    progress once the reads before building are done."""
    log = get_run_logger()
    # A refused read (DescribeRepositories, DescribeImages, DescribeTaskDefinition) came out as a
    # bare ClientError: it is PermissionDenied, naming the statement of the release policy to add.
    with _outage_said(targets), named_denials(RELEASE_POLICY, targets=targets):
        ecr = EcrRepository(get_client("ecr"), targets) if request.registry is None else None
        deployer = EcsDeployer(get_client("ecs"), targets)

        # Everything that can refuse is asked before the first docker command.
        refs, latest_immutable, ecr_image = _target(request, targets, ecr)
        ecr_digest = ecr_image.digest if ecr_image is not None else None
        platform, base = None, None
        if request.register_task_definition:
            base = steps.base_revision(deployer, targets.task_family)
            log.info("publish: the latest ACTIVE revision of %s is %s, whose container %s runs %s", targets.task_family,
                     base.arn, targets.container_name, base.image)
            why = _registry_problem(base, refs, request, targets)
            if why:
                why = f"{why}: run with register_task_definition=False to only push there"
                log.error("publish: refused: %s", why)
                raise PublishRefused(f"refused before building anything: {why}")
            platform = base.platform
            if base.tags_full:
                log.warning("publish: %s", _untokened(base))
        credentials = None
        checked_platforms = None
        if ecr is not None:
            _refuse(refs, version_digest=ecr_digest, latest_immutable=latest_immutable, request=request,
                    version_status=ecr_image.status if ecr_image is not None else ACTIVE, base=base,
                    deployer=deployer)
            if request.register_existing and platform is not None:
                checked_platforms = _existing_platforms(lambda: steps.ecr_image_platforms(ecr, refs.version),
                                                        PlatformUnknown, refs, platform)
            elif not request.register_existing:
                # Asked before building: a role without ecr:GetAuthorizationToken learns it now, not
                # after a build that may take many minutes.
                credentials = _ecr_login(ecr, refs, targets)

    run = _Run(refs, register=request.register_task_definition, targets=targets,
               existing=request.register_existing, now=now)
    if credentials is not None:
        run.login_issued = run.now()  # asked for just now, with the reads
    run.built_platforms = checked_platforms
    watch.run = run  # an interrupt from here on says what this run did (_interrupt_recorded)
    if request.register_existing and ecr is not None:
        # ECR answered already: registering a pushed version needs no docker at all.
        run.progress.digests[refs.versioned] = ecr_digest
        run.done(f"{refs.versioned} is in ECR ({ecr_digest}): nothing built or pushed")
    else:
        assert docker is not None  # opened before the reads (_docker_ready)
        # Said as a refusal says it: a password in the address was shown in the result, log and artifact.
        where = host_said(request.docker_host) if request.docker_host else "the default socket"
        run.done(f"docker daemon {docker.server} answers at {where}")
        if credentials is not None:
            run.done(f"ECR issued a docker login for {credentials.registry}")
        _with_publisher(run, docker.publisher, request, refs, ecr, credentials, platform, base)
    if request.register_existing:
        # As a release run asks right before registering what it pushed: the version found at
        # the start may have been deleted since (by hand, a lifecycle rule), and a revision
        # pinning an image the registry no longer holds is one no task can pull.
        with run.step(f"check {refs.versioned} in the registry"):
            _version_is_ours(run, docker.publisher if docker is not None else None, refs, ecr, request)
        run.done(f"{refs.versioned} is still in the registry ({run.progress.digests[refs.versioned]})")

    digest = run.progress.digests.get(refs.versioned)
    pinned = None
    if request.register_task_definition:
        assert base is not None  # read before anything was built
        with run.step(f"register a revision of {targets.task_family}"):
            # The revision pins the image by the digest the registry holds for the version, not by
            # its tag: a tag can move (the version pushed again by hand, another run), and every
            # task ECS starts from a revision pinning the tag (a scale-out, a rollback restoring
            # it) would run the moved image.
            if digest is None:
                raise RuntimeError(f"no digest is known for {refs.versioned}, so no revision can pin it")
            pinned = refs.pinned(digest)
            base = _base_now(run, deployer, refs, request, targets, checked=base)
            # register_existing is the way on after a run that stopped (or was killed) before it
            # said whether it registered: when it had, a copy was a second revision identical to
            # the family's latest, which already pins the version.
            registered = request.register_existing and base.image == pinned
            # An older revision pinning it (a newer version released since) is not reused: the copy
            # of the latest runs the version with the family's settings of now (the refusal of a
            # plain re-run said register_existing registers a second revision), but it is named.
            older = (deployer.revision_search(task_family(base.arn), pinned).arn
                     if request.register_existing and not registered else None)
            arn = base.arn if registered else steps.register_revision(deployer, pinned, base.arn)
        run.progress.task_definition = arn
        run.done(f"{arn}, the family's latest ACTIVE revision, already pins {refs.versioned} ({pinned}): nothing "
                 "registered" if registered else
                 f"registered {arn}, a copy of {base.arn}: container {targets.container_name} runs {refs.versioned}, "
                 f"pinned by its digest ({pinned})"
                 + (f"; {older}, an older revision of the family, pins it already, with that revision's settings"
                    if older else "")
                 + (f"; {_untokened(base)}" if base.tags_full else ""))
    if refs.latest is not None and digest is not None:
        # Last of all, once the release is registered: a run that stopped before (a refused
        # registration, a permission, a crash) left latest on the release before, not on an
        # image no revision runs. By the registry's API, to the digest pushed: one manifest put,
        # nothing pushed again, and not the daemon's local latest tag, which other runs share.
        _latest_to_release(run, refs, digest, request, ecr, docker.publisher if docker is not None else None,
                           ecr_image if request.register_existing else None)
    run.log.info("publish: %s", tags_moved(run.progress))  # what latest names now, and since this run
    result = PublishResult(
        version=request.version, image=refs.versioned, pinned_image=pinned or _pinned(refs, digest),
        references=tuple(r for r in refs.all if r in run.progress.digests),
        digest=run.progress.digests.get(refs.versioned), image_id=run.progress.image_id,
        task_definition=run.progress.task_definition, steps=tuple(run.progress.steps),
    )
    # Everything is pushed and registered by now: failing the run over its summary would report
    # a release that happened as failed, lose the revision's ARN from the result, and a re-run
    # (refused: the version is in the registry; or register_existing) would register a second
    # revision. The log above holds every step.
    for_people("container release summary",
               lambda: create_markdown_artifact(key=ARTIFACT_KEY, markdown=_summary(result),
                                                description="container release"))
    return result


def _latest_to_release(run: _Run, refs: ImageReferences, digest: str, request: PublishRequest,
                       ecr: EcrRepository | None, docker: ImagePublisher | None, version: HeldImage | None) -> None:
    """Move latest to the release's ``digest`` by the registry's API (ECR's PutImage, or the other
    registry's own through ``docker``); ``version``: ECR's image of the version as read before
    (None: read it when needed, to tell whether latest names a newer release)."""
    if ecr is not None:
        _move_latest(run, refs, digest, held=lambda: steps.ecr_image(ecr, LATEST),
                     retag=lambda: steps.ecr_retag(ecr, digest, LATEST), how="ECR PutImage",
                     newer=lambda latest: _pushed_after(latest, version or steps.ecr_image(ecr, request.version),
                                                        refs),
                     version_held=lambda: _version_is_ours(run, None, refs, ecr, request))
        return
    assert docker is not None and refs.latest is not None  # another registry is asked through docker
    latest = refs.latest
    _move_latest(run, refs, digest, held=lambda: _digest_only(steps.registry_digest(docker, latest)),
                 retag=lambda: steps.registry_tag(docker, refs.versioned, LATEST), how="the registry's API",
                 version_held=lambda: _version_is_ours(run, docker, refs, None, request))


def _untokened(base: BaseRevision) -> str:
    """What a copy of ``base``, whose tags fill ECS's limit, goes without (EcsDeployer.register_revision)."""
    return (f"{base.arn} carries {base.tags} tags, ECS's limit per resource: the revision copied from it keeps them "
            f"all and goes without rollway's {REQUEST_TAG} tag (by which a registration whose answer is lost is "
            f"found; after such a loss, register_existing=True finds the revision if it is the family's latest). "
            f"Remove a tag from the family's revisions to make room for it")


def _pinned(refs: ImageReferences, digest: str | None) -> str | None:
    """The version by its digest, for the result of a run that registered nothing (None: no
    digest known, or one no reference can carry)."""
    try:
        return refs.pinned(digest) if digest is not None else None
    except InvalidImageTarget:
        return None


def _registry_problem(base: BaseRevision, refs: ImageReferences, request: PublishRequest,
                      targets: Targets) -> str | None:
    """Why a revision pinning ``refs.versioned`` must not be copied from ``base``, or None.

    Without advice: before the build, the way on is to only push; after the push (the family
    changed during the build) it is pushed already, and the run's state says what is left.
    """
    # The override registry is where this run pushes, not necessarily where the family's
    # tasks pull from: a revision pinning 127.0.0.1:5000/... in a family whose tasks pull
    # from ECR is a revision no Fargate task can start. Only register it for a family that
    # already pulls from that registry.
    if request.registry is None or registry_of(base.image) == refs.registry:
        return None
    return (f"the latest ACTIVE revision of {targets.task_family} pulls from {registry_of(base.image)} "
            f"({base.image}), and a revision pinning {refs.versioned} would make its tasks pull from "
            f"{refs.registry}")


def _base_now(run: _Run, deployer: EcsDeployer, refs: ImageReferences, request: PublishRequest, targets: Targets,
              *, checked: BaseRevision) -> BaseRevision:
    """The revision to copy: the family's latest ACTIVE one as it is now, checked as ``checked``
    (the one read before building) was.

    A build takes minutes, and the family can get a newer revision meanwhile (a CDK deploy, a
    rollout's canary). Its fields are the ones to copy (a secret or a role added meanwhile would
    otherwise be lost), but the run was checked against the older one: a family moved to ARM64
    got a copy pinning an amd64 image, and its tasks could not start. It is read once, checked,
    and copied by ARN, so that no later revision is copied unchecked.
    """
    base = steps.base_revision(deployer, targets.task_family)
    if base.arn == checked.arn:
        return base
    run.log.warning("publish: the latest ACTIVE revision of %s is now %s, not %s as before the build: it is "
                    "the one copied", targets.task_family, base.arn, checked.arn)
    why = _registry_problem(base, refs, request, targets)
    if why is None and (why := _platform_problem(run.built_platforms, base.platform)) is not None:
        why = f"{why}, under a new version"  # this version's tag is pushed already
    if why is not None:
        # Registering this image into the family (register_existing) is no way on.
        run.progress.register = False
        raise RuntimeError(f"the latest ACTIVE revision of {targets.task_family} changed during the run, from "
                           f"{checked.arn} to {base.arn}, and no revision was registered: {why}")
    return base


def _platform_problem(built: tuple[str, ...] | None, runs_on: str | None) -> str | None:
    """Why the task family's tasks could not start an image built for ``built`` (its platforms);
    None when they can, or when either is not known."""
    if built is None or runs_on is None or runs_on in built:
        return None
    return (f"the image was built for {' and '.join(built) or 'no platform'}, and the task family's tasks run on "
            f"{runs_on} (its runtimePlatform; "
            f"Fargate's default is linux/amd64), so they could not start it: build on a {runs_on} machine "
            "(docker_host can name a daemon there)")


def _existing_platforms(read: Callable[[], tuple[str, ...]], unknown: type[Exception], refs: ImageReferences,
                        runs_on: str) -> tuple[str, ...] | None:
    """The platforms the pushed version runs on, as ``read`` asks the registry (None: it cannot
    tell, raising ``unknown``, which is logged); PublishRefused when the task family's tasks could
    not start it.

    register_existing builds nothing, so no build checked the image: an arm64-only image
    registered into an X86_64 family failed only when its tasks started (the canary's first stage).
    """
    log = get_run_logger()
    try:
        platforms = read()
    except unknown as err:
        log.warning("publish: could not check which platform %s runs on: %s; it is registered unchecked, and the "
                    "task family's tasks run on %s", refs.versioned, err, runs_on)
        return None
    if _platform_problem(platforms, runs_on) is None:
        log.info("publish: %s runs on %s, what the task family's tasks run on", refs.versioned, runs_on)
        return platforms
    why = (f"register_existing: {refs.versioned} is built for {' and '.join(platforms) or 'no platform'}, and the "
           f"task family's tasks run on {runs_on} (its runtimePlatform; Fargate's default is linux/amd64), so they "
           f"could not start it: build it on a {runs_on} machine (docker_host can name a daemon there) under a new "
           "version")
    log.error("publish: refused: %s", why)
    raise PublishRefused(f"refused before registering anything: {why}")


def _move_latest(run: _Run, refs: ImageReferences, digest: str | None, *, held: Callable[[], HeldImage | None],
                 retag: Callable[[], object], how: str, version_held: Callable[[], object],
                 newer: Callable[[HeldImage], str | None] | None = None) -> None:
    """Point ``latest`` at the version's image ``digest``, as the push of a release does, unless
    ``newer`` says why the image latest names now is a newer release's.

    register_existing pushes nothing, so latest stayed on the release before: the way on after
    a run that stopped before registering (or before pushing latest) left it there for good.
    ``retag`` tags the image by the registry's API (``how``), without docker or a pull;
    ``held`` reads the image latest names. A release pushed after the version took latest
    meanwhile, and moving it back would hand whatever pulls latest an older release: it is left
    there, and the run says so (``newer`` judges the image read: None where the registry cannot
    tell which was pushed first). latest is read once for the decision: a second read for when
    it was pushed could find another image (a release pushed in between), and the run said it
    left latest on the first read's image for the second's push time. ``version_held`` raises,
    saying so, when the registry no longer holds the version as read: a retag that failed because
    the version's image was deleted since said the version was in the registry, and to go on
    with register_existing, which is then refused.
    """
    assert refs.latest is not None and digest is not None
    with run.step(f"move {refs.latest} to {digest}"):
        found = held()
        now = found.digest if found is not None else None
        run.progress.latest_was = now
        if now == digest:
            run.progress.digests[refs.latest] = digest
            run.done(f"{refs.latest} names {digest} already")
            return
        later = newer(found) if newer is not None and found is not None else None
        if later is not None:
            run.progress.latest_left = now
            run.log.warning("publish: %s is left on %s: %s", refs.latest, now, later)
            run.done(f"left {refs.latest} on {now}: {later}; tag {refs.versioned} as {LATEST} by hand if latest "
                     "should go back to it")
            return
        try:
            retag()
        except Exception:
            _unless_gone(run, version_held)
            raise
        before, found = now, held()
        now = found.digest if found is not None else None
        if now != digest:
            run.progress.latest_taken = (digest, now)
            raise RuntimeError(f"the registry holds {now or 'no image'} for {refs.latest} after it was tagged "
                               f"{digest}: another run moved it meanwhile")
    run.progress.digests[refs.latest] = digest
    unsure = ""
    if newer is None and before is not None:
        unsure = (f"; it named {before}, and the registry does not say which was pushed first: if that is a newer "
                  f"release, tag it {LATEST} again")
        run.log.warning("publish: moved %s to %s%s", refs.latest, digest, unsure)
    run.done(f"moved {refs.latest} to {digest} ({how}){unsure}")


def _unless_gone(run: _Run, version_held: Callable[[], object]) -> None:
    """After a step on the version's image failed: raise ``version_held``'s word when the
    registry no longer holds the version as this run read it; return (the step's own failure
    then stands) when it does, or when the registry could not be asked."""
    try:
        version_held()
    except RuntimeError:
        raise
    except Exception as err:  # noqa: BLE001 - the step's own failure is the one to report
        run.log.warning("publish: could not ask the registry for %s after a step failed: %s",
                        run.progress.refs.versioned, err)


def _digest_only(digest: str | None) -> HeldImage | None:
    """A registry's answer for a tag (its digest; None: no such tag), which says nothing of when it was pushed."""
    return HeldImage(digest=digest) if digest is not None else None


def _pushed_after(latest: HeldImage | None, version: HeldImage | None, refs: ImageReferences) -> str | None:
    """Why ``latest`` (the image ECR's latest names) is a newer release than ``version``: it was
    pushed after it; None when it was not, or when ECR does not say when either was pushed."""
    if latest is None or version is None or latest.pushed_at is None or version.pushed_at is None:
        return None
    if latest.pushed_at <= version.pushed_at:
        return None
    return (f"it names an image pushed after {refs.versioned} ({latest.pushed_at.isoformat(timespec='seconds')}, "
            f"the version {version.pushed_at.isoformat(timespec='seconds')}), a newer release's")


@contextmanager
def _outage_said(targets: Targets) -> Iterator[None]:
    """Add to a read before building that AWS never answered (no connection made, or an outage:
    a 5xx, an answer lost, once botocore's and the task's retries are spent) that nothing was
    built, pushed or registered, and what to do: botocore's words alone ("Could not connect to the
    endpoint URL", "An error occurred (ServiceUnavailableException)") said neither whether to fix
    the way to AWS or to wait for it. The error keeps its type (one line: ``tell``)."""
    try:
        yield
    except Exception as err:
        if never_reached(err):
            tell(err, "AWS was not reached, so nothing was built, pushed or registered: check the worker's network "
                      "and proxy (HTTPS_PROXY), and the endpoint the AwsCredentials block's "
                      "aws_client_parameters.endpoint_url names, if any; then run again")
        elif answer_lost(err):
            operation = getattr(err, "operation_name", None)
            tell(err, f"AWS did not answer{f' {operation}' if operation else ''} (an outage, or a fault on the way), so "
                      "nothing was built, pushed or registered: run again once it answers (the AWS Health Dashboard "
                      f"says whether ECR or ECS is down in {targets.region})")
        raise


def _ecr_login(ecr: EcrRepository, refs: ImageReferences, targets: Targets) -> RegistryLogin:
    """ECR's docker login for the repository's registry, or PublishRefused (nothing built yet)."""
    try:
        # A refusal named as every other refused permission (PermissionDenied, an AdapterError):
        # the action and the release policy's statement.
        with named_denials(RELEASE_POLICY, targets=targets):
            credentials = steps.ecr_login(ecr)
    except (ClientError, AdapterError) as err:
        if answer_lost(err):  # an outage, not a refusal: said so by _outage_said
            raise
        why = f"ECR gave no docker login (GetAuthorizationToken): {err}"
        get_run_logger().error("publish: refused: %s", why)
        raise PublishRefused(f"refused before building anything: {why}") from None
    if credentials.registry != refs.registry:
        why = f"ECR's login is for {credentials.registry}, the repository is on {refs.registry}"
        get_run_logger().error("publish: refused: %s", why)
        raise PublishRefused(f"refused before building anything: {why}")
    return credentials


def _with_publisher(run: _Run, docker: ImagePublisher, request: PublishRequest, refs: ImageReferences,
                    ecr: EcrRepository | None, credentials: RegistryLogin | None = None,
                    platform: str | None = None, base: BaseRevision | None = None) -> None:
    """The docker part of a run: for a registry other than ECR, check what it holds; then build
    and push, logging out at the end whatever happened. ``base``: the revision a new one would be
    copied from (None: none is registered)."""
    if ecr is None:
        with run.step(f"ask {refs.registry} for {refs.versioned}"):
            found = steps.registry_digest(docker, refs.versioned)
        _refuse(refs, version_digest=found, latest_immutable=False, request=request, base=base)
        if request.register_existing:
            if platform is not None:
                run.built_platforms = _existing_platforms(lambda: steps.registry_platforms(docker, refs.versioned),
                                                          DockerCommandFailed, refs, platform)
            run.progress.digests[refs.versioned] = found
            run.done(f"{refs.versioned} is in {refs.registry} ({found}): nothing built or pushed")
            return
    try:
        _build_and_push(run, docker, request, refs, ecr, credentials, platform)
    finally:
        _logout(run, docker)


def _target(request: PublishRequest, targets: Targets,
            ecr: EcrRepository | None) -> tuple[ImageReferences, bool, HeldImage | None]:
    """Where the release goes, whether ``latest`` is immutable there, and (ECR) the image the
    repository already holds for the version (its digest and status)."""
    if ecr is None:
        assert request.registry is not None
        return _references(request.registry, targets.ecr_repository, request), False, None
    repository = steps.describe_repository(ecr)
    refs = _references(repository.registry, repository.name, request)
    return refs, repository.tag_immutable(LATEST), steps.ecr_image(ecr, request.version)


def _references(registry: str, repository: str, request: PublishRequest) -> ImageReferences:
    try:
        refs = image_references(registry, repository, request.version, push_latest=request.push_latest)
        if request.register_task_definition:
            # The revision pins the digest, 65 characters longer than a short version: a long
            # repository path fit ECS's limit as a tag and failed only after the push.
            refs.pinned("sha256:" + "0" * 64)
        return refs
    except InvalidImageTarget as err:
        raise PublishRefused(f"refused before building anything: {err}") from None


def _refuse(refs: ImageReferences, *, version_digest: str | None, latest_immutable: bool,
            request: PublishRequest, version_status: str = ACTIVE, base: BaseRevision | None = None,
            deployer: EcsDeployer | None = None) -> None:
    # A release done already: the revision the family runs pins the version's digest, or (a newer
    # version released since) an older one does, searched for when ``deployer`` is given.
    pinned = _pinned(refs, version_digest)
    released = base.arn if base is not None and pinned is not None and base.image == pinned else None
    older = searched = unsearched = None
    every = False
    if (released is None and base is not None and pinned is not None and deployer is not None
            and not request.register_existing):
        search = deployer.revision_search(task_family(base.arn), pinned)
        older = search.arn
        if older is None:
            searched, unsearched, every = (task_family(base.arn), search.read), search.unread, search.every
    why = release_refusal(refs, version_digest=version_digest, latest_immutable=latest_immutable,
                          register_existing=request.register_existing, version_status=version_status,
                          released_as=released or older, latest_revision=base.arn if older else None,
                          searched=searched, unsearched=unsearched, searched_every=every)
    if why:
        get_run_logger().error("publish: refused: %s", why)
        raise PublishRefused(f"refused before building anything: {why}")


def _build_and_push(run: _Run, docker: ImagePublisher, request: PublishRequest, refs: ImageReferences,
                    ecr: EcrRepository | None, credentials: RegistryLogin | None, platform: str | None) -> None:
    """Build, tag and push; ``platform``: what the task family's tasks run on (None: not known)."""
    if ecr is not None:
        # Before the build: docker pulls the Dockerfile's base images with the logins of its
        # config, and this run's is private, so a base image in the release's own ECR registry
        # (one the team keeps there) could not be pulled ("no basic auth credentials").
        assert credentials is not None  # asked for before building (run_publish)
        credentials = _log_in(run, docker, ecr, refs, credentials, request)
    with run.step(f"build {request.context_dir}"):
        image_id = steps.build(docker, str(request.context_dir),
                               str(request.dockerfile) if request.dockerfile else None, [], request.image_labels())
    run.progress.image_id = image_id
    run.done(f"built {image_id} from {request.context_dir}")
    if platform is not None:
        # docker builds for the machine it runs on: on an arm64 worker (Graviton, a Mac) the
        # image of an X86_64 family was pushed and registered, and its tasks could not start
        # ("exec format error", or no manifest for linux/amd64) until the canary failed on it.
        with run.step(f"check that {image_id} runs on {platform}"):
            run.built_platforms = (steps.image_platform(docker, image_id),)
            if (why := _platform_problem(run.built_platforms, platform)) is not None:
                raise RuntimeError(why)
        run.done(f"{image_id} is built for {platform}, what the task family runs on")
    # Only the version: latest is moved once the release is registered (run_publish), by the
    # registry's API.
    reference = refs.versioned
    with run.step(f"tag {reference}"):
        steps.tag(docker, image_id, reference)
    run.done(f"tagged {reference}")
    # The version was free before the build, which takes minutes: another run of it (a CI job
    # started again while this one built) may have pushed it since, and a push over it made the
    # version name a second image, with a second revision registered for it.
    with run.step(f"check that {reference} is still not in the registry"):
        _still_free(run, docker, refs, ecr, request)
    run.done(f"{reference} is still not in the registry")
    digest, credentials = _push(run, docker, reference, refs, ecr, credentials, request)
    run.progress.digests[reference] = digest
    run.done(f"pushed {reference} ({digest})")
    with run.step(f"check that {reference} was pushed as this run's build"):
        _pushed_is_ours(run, docker, refs, ecr, image_id, digest)
    run.progress.version_image = VersionImage(Known.OURS, digest)
    run.done(f"{digest} is this run's build ({image_id})")
    # Two runs of the same version at once both find it absent and both push: the tag then names
    # the image pushed last, and a revision pinning it would run the other run's image while this
    # run reports its own digest. Ask the registry once more, right before registering.
    with run.step(f"check {refs.versioned} in the registry"):
        pushed = _version_is_ours(run, docker, refs, ecr, request)
    run.done(f"{refs.versioned} in the registry is this run's image ({pushed})")


def _log_in(run: _Run, docker: ImagePublisher, ecr: EcrRepository, refs: ImageReferences,
            credentials: RegistryLogin, request: PublishRequest, *, renew: str | None = None) -> RegistryLogin:
    """docker login to the release's ECR registry (in the private docker config) with
    ``credentials``, or a new login from ECR when those would expire before a push could end
    (``_renewal``) or ``renew`` says why they are no good any more; returns the one used."""
    with run.step(f"log in to {refs.registry}"):
        renew = renew or _renewal(run, credentials, request)
        if renew is not None:
            credentials = steps.ecr_login(ecr)
            run.login_issued = run.now()
        # The network that fails a push fails a login too: made again after a wait, as a push is
        # (one before the pushes, failed, left the image built and a re-run rebuilding it).
        for attempt, wait in enumerate((*PUSH_RETRY_SECONDS, None), 1):
            try:
                steps.login(docker, credentials)
                break
            except Exception as err:
                retry = retry_reason(err)
                if wait is None or retry is None or retry.kind != "transient":
                    _made_again(err, f"the docker login to {refs.registry}", attempt)
                    raise
                said = (f"docker login to {refs.registry} failed for a reason that passes ({retry.said}); logging in "
                        f"again in {wait:g} s (attempt {attempt + 1} of {len(PUSH_RETRY_SECONDS) + 1})")
                run.done(said, warning=True)
            _pause(wait)
    again = run.progress.logged_in is not None
    run.progress.logged_in = refs.registry
    why = renew or "the login before it was no good any more"
    run.done(f"logged in to {refs.registry}{' again' if again else ''} as {credentials.username} (private docker "
             f"config){f': {why}' if again else ''}")
    return credentials


# How long to wait before each new push (or docker login) of one that failed in passing (a
# connection reset, a TLS handshake or i/o timeout, a 5xx from the registry: ``retry_reason``).
# docker retried each layer's upload already; a few minutes more span a registry's or a NAT's hiccup,
# and a network down for longer stops the run as before (re-running it rebuilds).
PUSH_RETRY_SECONDS = (10.0, 30.0, 90.0)


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _made_again(err: Exception, what: str, attempts: int) -> None:
    """Add to ``err``, the failure that ended ``what`` after ``attempts`` tries (made again after
    each failure that passes), how many there were: its own words (docker's timeout, a login's
    refusal) said nothing of the tries before, and read as the only one."""
    if attempts > 1:
        tell(err, f"{what} was made {attempts} times, again after each failure that passes (as a connection reset "
                  "or a registry's 5xx): this is the last one's failure")


def _push(run: _Run, docker: ImagePublisher, reference: str, refs: ImageReferences, ecr: EcrRepository | None,
          credentials: RegistryLogin | None, request: PublishRequest) -> tuple[str, RegistryLogin | None]:
    """Push ``reference``; returns the digest the registry stored and the login in use after it.

    A failed push is pushed again when ``retry_reason`` says it is worth it, docker sending only the
    layers the registry does not hold yet (a failure stopped the run with the image built and
    nothing, or only the version, pushed, and a re-run built it all again):

    - the network or the registry failed in passing: after a wait (``PUSH_RETRY_SECONDS``, as
      many times as it has waits);
    - ECR refused it because the login expired during it (each push starts with a login that
      lasts as long as a push may take, ``_renewal``, but ECR may end one sooner): once, after a
      new login.

    Any other refusal (denied, an immutable tag, an invalid manifest) stands at once.

    Before either, a failed push of the version asks the registry for it: a push whose answer was
    lost after the registry took its manifest left this run's build there. That is the push done
    (said so, with no wait and no push again): it was pushed again after waits, and on a
    repository with immutable tags refused as "already exists", the run stopping with its own
    image in the registry and telling the operator to run again with register_existing. Any other
    image there (another run's, or one whose build cannot be told) is never pushed over: the run
    stops, saying whose it is as far as it can tell. A registry that could not be read after the
    failure is read again before the push made again (which stops the run if it still cannot be).
    """
    waits = list(PUSH_RETRY_SECONDS)
    renewed = False  # a push after a new login is one attempt more than the waits allow
    attempt = 0
    unread: tuple[str, Exception] | None = None  # the failure after which the registry could not be read
    while True:
        attempt += 1
        if ecr is not None and credentials is not None and (why := _renewal(run, credentials, request)) is not None:
            # Before every push, a push made again too: a build of hours, or the pushes and
            # waits before it, left the login less than this push may take.
            credentials = _log_in(run, docker, ecr, refs, credentials, request, renew=why)
        if unread is not None:
            # Pushed again blind, the version replaced (on a repository with mutable tags) an
            # image another run pushed during the wait or the failed push, and registered this run's.
            failed, err = unread
            with run.step(f"check {reference} in the registry before pushing it again"):
                try:
                    held = _held_digest(docker, refs, ecr, request)
                except Exception as read:
                    run.progress.version_image = VersionImage(Known.UNREAD)
                    raise RuntimeError(
                        f"the push of {reference} failed ({failed}), and the registry could not be read after it, nor "
                        f"again before pushing it again ({error_said(read)}): whether it holds an image for the "
                        "version now is not known, so this run pushed nothing again and registered nothing") from read
                if held is not None:
                    return _held_not_pushed_over(run, docker, refs, ecr, reference, held, failed, err), credentials
            run.progress.version_image = None  # read: none held
            run.done(f"{reference} is still not in the registry")
        with run.step(f"push {reference}"):
            try:
                return steps.push(docker, reference), credentials
            except Exception as err:
                versioned = reference == refs.versioned
                held = _held_after_failed_push(run, docker, refs, ecr, request) if versioned else None
                # docker's last line says why: its whole output is the failure's, not this step's.
                failed = error_said(err).splitlines()[-1].strip()
                if held is not _UNREAD and held is not None:
                    return _held_not_pushed_over(run, docker, refs, ecr, reference, held, failed, err), credentials
                unread = (failed, err) if versioned and held is _UNREAD else None
                # Where things stand does not say "not in the registry" of a registry not read.
                run.progress.version_image = VersionImage(Known.UNREAD) if unread is not None else None
                retry = retry_reason(err)
                if retry is not None and retry.kind == "login" and (renewed or ecr is None or credentials is None):
                    retry = None
                if retry is None or (retry.kind == "transient" and not waits):
                    if attempt > 1 and isinstance(err, PushRefused):
                        raise PushRefused(reference, err.tail, pushes=attempt) from err
                    _made_again(err, f"the push of {reference}", attempt)  # it timed out, or lost its daemon
                    raise
                if retry.kind == "transient":
                    wait = waits.pop(0)
                    said = (f"push of {reference} failed for a reason that passes ({retry.said}); pushing it again "
                            f"in {wait:g} s (attempt {attempt + 1} of {len(PUSH_RETRY_SECONDS) + 1 + renewed})")
                    run.done(said, warning=True)
                else:
                    run.log.warning("publish: ECR refused the push of %s: its login expired during the push; logging "
                                    "in again to push it once more", reference)
        if retry.kind == "transient":
            _pause(wait)
            continue
        assert ecr is not None and credentials is not None  # an expired login is ECR's, and this run made it
        renewed = True
        credentials = _log_in(run, docker, ecr, refs, credentials, request, renew=(
            f"ECR refused the push of {reference}, the login having expired during it"))


def _held_not_pushed_over(run: _Run, docker: ImagePublisher, refs: ImageReferences, ecr: EcrRepository | None,
                          reference: str, held: str, failed: str, err: Exception) -> str:
    """``held``, the image the registry holds for the version after its push failed (``failed``,
    ``err``), when it is this run's build (the push got that far, its answer lost: said so);
    RuntimeError otherwise. An image under the version that is not this run's build as far as it
    can tell is never pushed over: on a repository with mutable tags (ECR's default) the push made
    again replaced another run's image, silently, and registered this run's."""
    ours = _is_this_build(docker, refs, ecr, run.progress.image_id, held)
    if ours is True:
        run.done(f"the push of {reference} failed ({failed}), yet the "
                 f"registry holds it as this run's build ({held}): the push got that far, and it is not "
                 "pushed again", warning=True)
        return held
    if ours is False:
        run.progress.version_image = VersionImage(Known.THEIRS, held)
        raise RuntimeError(
            f"the registry holds {held} for {reference}, which is not this run's build "
            f"({run.progress.image_id}): another run pushed the same version while this run's push "
            f"failed ({failed}); a version must mean one image, so this run pushed nothing over it and "
            "registered nothing") from err
    # Not this run's push as far as it knows: where things stand says what was read, as read.
    run.progress.held[refs.versioned] = held
    run.progress.version_image = VersionImage(Known.UNTOLD, held)
    raise RuntimeError(
        f"the push of {reference} failed ({failed}), and the registry holds {held} for it all the "
        f"same, which is not pushed over: {ours}") from err


def _version_is_ours(run: _Run, docker: ImagePublisher | None, refs: ImageReferences, ecr: EcrRepository | None,
                     request: PublishRequest) -> str:
    """The digest this run pushed (or, register_existing, found) for the version, once the
    registry says it still holds it; RuntimeError when it holds another image (or none).
    ``docker``: for a registry other than ECR (``ecr`` None)."""
    held = _held_digest(docker, refs, ecr, request)
    pushed = run.progress.digests[refs.versioned]
    how = "found" if request.register_existing else "pushed"  # register_existing pushes nothing
    # Asked again when latest's move fails, after the revision was registered (latest moves last).
    registered = run.progress.task_definition
    so = ("so nothing was registered from this run" if registered is None else
          f"after {registered} was registered from this run, pinning {pushed}")
    if held is None:
        # Not "another run pushed (or deleted) it ... register_existing=True would register the
        # image the registry holds now": there is none, and register_existing is refused.
        run.progress.gone = run.progress.digests.pop(refs.versioned)
        raise RuntimeError(
            f"the registry no longer holds {refs.versioned} (it named {pushed} when this run {how} it): its tag "
            f"was deleted meanwhile, {so}")
    if held != pushed:
        run.progress.held[refs.versioned] = held
        run.progress.version_image = VersionImage(Known.THEIRS, held)
        raise RuntimeError(
            f"the registry now holds {held} for {refs.versioned}, not {pushed} which this run {how}: another "
            f"run pushed the same version meanwhile, {so}"
            + (f" ({register_existing_as_asked(refs)} would register the image the registry holds now)"
               if registered is None else ""))
    return pushed


def _still_free(run: _Run, docker: ImagePublisher, refs: ImageReferences, ecr: EcrRepository | None,
                request: PublishRequest) -> None:
    """RuntimeError, before this run pushes anything, when the registry holds the version now."""
    try:
        taken = _held_digest(docker, refs, ecr, request)
    except Exception:
        # Not "the version is not in the registry": that is what was not read.
        run.progress.version_image = VersionImage(Known.UNASKED)
        raise
    if taken is not None:
        run.progress.version_image = VersionImage(Known.THEIRS, taken)
        raise RuntimeError(
            f"{refs.versioned} names {taken} in the registry now, pushed during this run's build by another run of "
            "the same version: a version must mean one image, so this run pushed nothing over it and registered "
            "nothing")


def _pushed_is_ours(run: _Run, docker: ImagePublisher, refs: ImageReferences, ecr: EcrRepository | None,
                    image_id: str, digest: str) -> None:
    """RuntimeError unless the version's push (``digest``) pushed this run's build ``image_id``.

    The local tags are the daemon's, shared by every run on it: another run of the same version
    that tagged it between this run's tag and push made this run push that run's image. The
    registry then holds what this run pushed, latest agrees, and the revision pinned the other
    run's image while this run reported its own build.
    """
    try:
        ours = _is_build(docker, refs, ecr, image_id, digest)
    except Exception:
        # The way on is register_existing only once it is told.
        run.progress.version_image = VersionImage(Known.UNTOLD, digest)
        raise
    if ours:
        return
    # The version names that run's build: the way on is that run's.
    run.progress.version_image = VersionImage(Known.THEIRS, digest)
    raise RuntimeError(
        f"{refs.versioned} was pushed as {digest}, which is not this run's build ({image_id}): another run on this "
        "docker daemon tagged the same version between this run's tag and its push, so the registry holds that "
        f"run's image and nothing was registered from this run ({register_existing_as_asked(refs)} would register "
        "that image)")


def _is_build(docker: ImagePublisher, refs: ImageReferences, ecr: EcrRepository | None, image_id: str,
              digest: str) -> bool:
    """Whether the version's image ``digest`` in the registry is the build ``image_id``, as the
    daemon knows it or as its manifest (ECR's, or the other registry's) names its config."""
    # The containerd image store's id is the digest of the index it pushes; the classic store's
    # is its config's, and the daemon records each push of it (RepoDigests). Unchecked
    # (pinned_reference, not refs.pinned): a push-only run's reference may be too long for ECS.
    if digest == image_id or pinned_reference(refs.versioned, digest) in steps.pushed_as(docker, image_id):
        return True
    # The classic store records a push only once the registry answered it: a push whose answer
    # was lost left the build in the registry and no RepoDigest. Its manifest names the build's
    # config, which no other build has (the config lists the layers). Another registry's is read
    # over its API: unread, this run's own build there was taken for what may be another run's.
    try:
        if ecr is None:
            return steps.registry_config_digest(docker, pinned_reference(refs.versioned, digest)) == image_id
        return steps.ecr_config_digest(ecr, digest) == image_id
    except Exception as err:
        # The registry's own words alone (a ClientError, an IndexError) said neither what was being
        # checked nor what to do.
        said = named_refusal(err, RELEASE_POLICY) or error_said(err)
        raise RuntimeError(
            f"could not tell whether {digest}, which the registry holds for {refs.versioned}, is this run's build "
            f"({image_id}): the daemon recorded no push of it, and reading its manifest failed ({said}); nothing "
            f"was registered: if that manifest names {image_id} as its config, it is this run's build and the way "
            "on below registers it; if it is not, it is another run's image, and this build needs a new version"
        ) from err


def _is_this_build(docker: ImagePublisher, refs: ImageReferences, ecr: EcrRepository | None, image_id: str | None,
                   digest: str) -> bool | str:
    """``_is_build`` after a failed push, or why it cannot be told (nothing is then pushed over the
    image, and the run stops saying so: the user learnt only the push's failure)."""
    if image_id is None:
        return f"this run built no image to tell {digest} by"
    try:
        return _is_build(docker, refs, ecr, image_id, digest)
    except Exception as err:  # noqa: BLE001 - said in the run's failure
        return str(err)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _renewal(run: _Run, credentials: RegistryLogin, request: PublishRequest) -> str | None:
    """Why ``credentials`` would not last a push (``login_renewal``) on the run's clock, or None."""
    return login_renewal(credentials.expires_at, now=run.now(), issued=run.login_issued,
                         push_bound=dt.timedelta(seconds=request.docker_timeout_seconds))


def _held_digest(docker: ImagePublisher | None, refs: ImageReferences, ecr: EcrRepository | None,
                 request: PublishRequest) -> str | None:
    """The digest the registry holds for the version now (None: no such tag), asked of ECR, or
    through ``docker`` of a registry other than ECR (``ecr`` None)."""
    if ecr is not None:
        return steps.ecr_image_digest(ecr, request.version)
    assert docker is not None  # a registry other than ECR is asked through docker
    return steps.registry_digest(docker, refs.versioned)


# What _held_after_failed_push gives when the registry could not be asked.
_UNREAD = "the registry could not be read"


def _held_after_failed_push(run: _Run, docker: ImagePublisher, refs: ImageReferences, ecr: EcrRepository | None,
                            request: PublishRequest) -> str | None:
    """After a failed push of the version: the digest the registry holds for it all the same (the
    push got as far as the manifest before its answer was lost, or another run pushed it first),
    None (none), or ``_UNREAD`` (the registry could not be asked: a push made again reads it
    first). The failure then says so, instead of promising that a re-run (which would be refused)
    is safe."""
    try:
        return _held_digest(docker, refs, ecr, request)
    except Exception as err:  # noqa: BLE001 - the push's own failure is the one to report
        run.log.warning("publish: could not ask the registry for %s after its push failed: %s", refs.versioned, err)
        return _UNREAD


def _logout(run: _Run, docker: ImagePublisher) -> None:
    """Log out if logged in; the private config directory is deleted anyway when the session ends,
    so a failed logout is logged, never raised over the run's own outcome."""
    registry = run.progress.logged_in
    if registry is None:
        return
    try:
        steps.logout(docker, registry)
        run.done(f"logged out of {registry}")
    except Exception as err:  # noqa: BLE001 - see the docstring
        run.log.warning("publish: docker logout of %s failed (%s); its private config is deleted anyway", registry, err)


def _summary(result: PublishResult) -> str:
    rows = [("Version", f"`{result.version}`"), ("Image", f"`{result.image}`"),
            ("Pinned as", f"`{result.pinned_image}`" if result.pinned_image else "—"),
            ("Digest", f"`{result.digest}`" if result.digest else "—"),
            ("Image id", f"`{result.image_id}`" if result.image_id else "— (not built: register_existing)"),
            ("Task definition", f"`{result.task_definition}`" if result.task_definition else "— (not asked for)")]
    table = "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
    pushed = "\n".join(f"- `{r}`" for r in result.references) or "- (none)"
    steps_done = "\n".join(f"{i}. {s}" for i, s in enumerate(result.steps, 1))
    return (f"# Container release `{result.version}`\n\n{table}\n\n## References\n\n{pushed}\n\n"
            f"## Steps\n\n{steps_done}\n")

