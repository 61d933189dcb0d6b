"""One small Protocol per concern. Adapters (rollway.aws) and fakes (rollway.fakes) implement them.

Every write has a read, so a flow can verify what it set (set_weights / get_weights).
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Protocol, Sequence

from pydantic import SecretStr

from rollway.checklist import Checklist
from rollway.cleanup import StackState
from rollway.flags import FlagAuditEntry, FlagState, FlagStoreUnavailable, Writer
from rollway.infra import AppStacks, DeployedStack
from rollway.ledger import RefusedAnswer, RolloutRecord, Transition
from rollway.model import Observation, ServiceState, ShiftedRule, TargetGroup, Weights
from rollway.weights_read import FirstRead


class TrafficRouter(Protocol):
    def get_weights(self) -> Weights:
        """The weights the load balancer holds now."""

    def set_weights(self, weights: Weights) -> Weights | None:
        """Ask the load balancer for these weights (verify with get_weights).

        Returns the weights it held just before the write, read as get_weights reads them. A rule
        get_weights refuses (it also forwards to a target group other than stable and canary, or
        with weight 0 to both) is refused before the write, but by a rollback's router
        (``dropping_others``), which writes over it and gives back None."""

    def dropping_others(self, move: FirstRead) -> TrafficRouter:
        """This router for a rollback's move to stable, which users on the version rolled back wait
        on: its ``set_weights`` writes over a rule get_weights refuses as well (dropping a third
        group from it), and tells ``move``, at each send and before its write, what its read of the
        rule found and what it drops. Told then, a send that fails after its read (a lost answer, a
        throttle) leaves what it read in ``move``, beside its error, which may be stored and loaded
        again without it: the move may be sent again, and only its first read is the traffic from
        before it. A router whose rule forwards to stable and canary alone, and whose reads are
        all given back by ``set_weights`` (a fake), is its own."""

    def rolling_back(self, recorded: ShiftedRule | None) -> TrafficRouter:
        """This router for a rollback of the rollout that recorded ``recorded`` as its own (None:
        none recorded): it moves the traffic over that rule, and never over another service's rule
        found on its path (``AlbRouter.rolling_back``). A router with one rule of its own (a fake) is
        its own."""

    def check_move(self) -> None:
        """Raise now, with reads alone, what a rollback's move to stable (``dropping_others``) would
        refuse at its write (``AlbRouter.check_move``), for a rollback that writes something else
        first. A router with one rule of its own (a fake) refuses nothing."""

    def shifted_rule(self) -> ShiftedRule | None:
        """The rule its shifts write and the two groups they shift between, for the ledger to keep
        with a shift (None: it has no rule to name)."""

    def healthy_targets(self, version: str) -> int:
        """Healthy registered targets of the 'stable' or 'canary' target group."""

    def target_group(self, version: str) -> TargetGroup:
        """The 'stable' or 'canary' target group and its health check, as looked up."""

    def reading(self, seconds: float) -> TrafficRouter:
        """This router for the reads of a wait bounded by ``seconds``: reads that end within it
        (or this router itself, where its reads cannot be bounded)."""


class ServiceDeployer(Protocol):
    def describe(self, service: str) -> ServiceState:
        """The service as ECS reports it."""

    def register_revision(self, image: str, base_task_definition: str) -> str:
        """Copy ``base_task_definition`` with only the container image swapped; return its ARN."""

    def deregister_revision(self, task_definition: str) -> None:
        """Mark a revision INACTIVE (undo of register_revision; running tasks are unaffected)."""

    def image_of(self, task_definition: str) -> str:
        """The image of the rollout's container (``targets.container_name``) in a revision."""

    def update_service(
        self, service: str, *, task_definition: str | None = None, desired: int | None = None
    ) -> ServiceState:
        """Point the service at a task definition and/or scale it."""

    def wait_stable(
        self, services: Sequence[str], timeout_seconds: float, expected: Mapping[str, str] | None = None, *,
        between: Callable[[], None] | None = None,
    ) -> None:
        """Block until the services reach a steady state, each on the task definition
        ``expected`` names for it (service -> ARN, for services just pointed at one), or raise.
        ``between``: called before each wait between polls (a shift's watch on the canary's
        traffic); what it raises ends the wait."""


class ImagePinner(Protocol):
    def pin(self, image: str) -> str:
        """``image`` pinned to the digest it names now (as given when it names one); raises
        ``rollway.image.ImageNotPinned`` for one that cannot be pinned."""


class MetricSource(Protocol):
    def observe(self, start: float, end: float) -> Observation:
        """Per-interval counts for both versions in [start, end), plus DLQ depth.

        Never raises for a failed query: the Observation carries the error instead.
        """


class Notifier(Protocol):
    def notify(self, subject: str, message: str) -> str:
        """Send a message for people; returns the provider's message id."""


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, on the clock the metrics are stamped with."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of that clock."""


class Ledger(Protocol):
    """Where a rollout stands, durably; one owner at a time through a lease.

    Records are keyed by service; each write is conditional on the record's version and on
    the caller owning the lease, so two runs can never both move a rollout.
    """

    def get(self, service: str) -> "RolloutRecord | None":
        """The current (most recent) rollout of ``service``, or None."""

    def create(self, record: "RolloutRecord", *, owner: str, now: float, lease_seconds: float,
               wall: float | None = None) -> "RolloutRecord":
        """Start a rollout owned by ``owner``; raises RolloutInProgress if an unfinished one exists.

        ``now`` is the rollout clock (created_at, updated_at); leases are stamped and judged on
        ``wall``, the wall clock (None: ``now``), for ``lease_seconds`` wall seconds; the same in
        ``acquire`` and ``record``."""

    def acquire(self, service: str, *, owner: str, now: float, lease_seconds: float,
                rollout: str | None = None, wall: float | None = None, **changes) -> "RolloutRecord":
        """Take (or renew) ownership; raises LockHeld while another owner's lease runs (at
        ``wall``), RolloutSuperseded when ``rollout`` (None: the newest, whichever) is not the newest,
        and RolloutEnded once the rollout is being or has been rolled back (whoever holds it).
        ``changes``: RolloutRecord fields set in the same write, appending nothing to the history."""

    def release(self, service: str, *, owner: str) -> None:
        """Give up ownership (no error if not owned)."""

    def note(self, service: str, *, owner: str, now: float, rollout: str | None = None, **changes) -> "RolloutRecord":
        """Set ``changes`` (RolloutRecord fields) while ``owner`` holds the rollout, its lease lapsed
        or not, leaving the lease as it is and the history as it was; raises NotOwner once another run
        holds it (or none does), RolloutSuperseded when ``rollout`` is not the newest, and RolloutEnded
        once the rollout is being or has been rolled back (whoever holds it)."""

    def record(
        self, service: str, *, owner: str | None, now: float, transition: "Transition", lease_seconds: float = 0.0,
        rollout: str | None = None, followed_by: "Sequence[Transition]" = (),
        rule: "Callable[[RolloutRecord], None] | None" = None, wall: float | None = None, **changes
    ) -> "RolloutRecord":
        """Append ``transition`` and apply ``changes`` (fields of RolloutRecord) atomically.

        ``owner=None`` writes without a lease (rollback and manual actions, which must always
        be able to act); otherwise raises NotOwner if ``owner`` is not the recorded owner (an
        owner whose lease expired may still write until another run takes the rollout over).
        A positive ``lease_seconds`` renews the lease, from ``wall`` (None: ``now``). ``rollout``: the id of the rollout the write
        is for; raises RolloutSuperseded when the newest rollout is another one (None: the newest).
        ``followed_by``: transitions appended after ``transition`` in the same write.
        ``rule``: a further check of the stored rollout that raises to refuse the write, made
        atomically with it (on the very version written).
        """

    def refuse(self, service: str, *, rollout: str, answer: "RefusedAnswer") -> "RolloutRecord":
        """Append ``answer`` to rollout ``rollout``'s ``refused_answers``, lease-free, whatever its
        phase: the run refusing it and `rollway promote`/`hold`/`abort` refusing one it never got
        both append, and neither's entry is lost to the other's. Recorded after the history as read
        with the list (``RefusedAnswer.recorded_after``, whatever ``answer`` said): which pause it
        answered is told by that order, not by its time. Conditioned on the list as read, so
        a resent copy is not appended twice; the version and the history are left as they are (no
        other write's condition is refused for it). Past ``REFUSED_KEPT`` answers or ``REFUSED_BYTES``,
        the oldest are dropped (``refusals_kept``), counted in ``refused_dropped`` in the same write
        (unless an earlier rollway's uncounted drops left the count not known: None, kept so, and the
        least there were counted on in ``refused_dropped_least``), with
        the history's length as read beside the list (``refused_dropped_before``).
        Raises RolloutNotFound when there is no such rollout, and RefusalsFull, recording nothing,
        when ``answer`` alone does not fit."""

    def history(self, service: str, *, unreadable: dict[str, str] | None = None) -> list["RolloutRecord"]:
        """Every rollout recorded for ``service``, newest first. ``unreadable``: when given, a
        rollout whose stored item cannot be read is left out and its id mapped to why, instead
        of raising ``MalformedRollout``."""


class FlagStore(Protocol):
    """Feature flags, durably.

    Writes are conditional on the version read (optimistic concurrency) and append to the
    flag's audit trail in the same write.
    """

    def get(self, feature: str) -> "FlagState | None":
        """The flag as stored, or None if there is none.

        Raises FlagStoreUnavailable if the store cannot be read.
        """

    def list(self) -> list["FlagState"]:
        """Every flag (never audit entries), sorted by feature."""

    def put(
        self, flag: "FlagState", *, expected_version: int, actor: str, now: float, reason: str = "",
        writer: "Writer" = "person", rollout: str | None = None,
    ) -> "FlagState":
        """Store ``flag``'s settings if the stored version is ``expected_version`` (0: absent).

        ``writer`` and ``rollout`` go into the audit entry as given (see
        ``rollway.flags.prepare_write``). Returns the stored flag (version + 1, stamped with
        ``actor`` and ``now``); raises
        FlagConflict if the version moved, MissingUserId for a blank actor; nothing is written
        then.
        """

    def audit(self, feature: str, limit: int | None = None) -> list["FlagAuditEntry"]:
        """The flag's recorded changes, newest first (the most recent ``limit``)."""

    def unanswered(
        self, failure: "FlagStoreUnavailable", feature: str, settings: Mapping[str, object], *, actor: str,
        now: float, reason: str = "", writer: "Writer" = "person", rollout: str | None = None,
    ) -> "FlagStoreUnavailable":
        """``failure``, met by an attempt of the write ``put`` is given these arguments for (``settings``:
        some of the flag's, by name), as that write's outcome: a FlagWriteUnanswered when an earlier
        attempt of it (a task's retry) was sent and lost its answer and no answer settled it since;
        ``failure`` itself otherwise."""

    def read_back(
        self, flag: "FlagState", *, actor: str, now: float, reason: str = "", writer: "Writer" = "person",
        rollout: str | None = None,
    ) -> bool:
        """Whether ``flag``, read by an attempt of the write ``put`` is given these arguments for, is
        that write made: an earlier attempt of it (a task's retry) was sent and lost its answer, and
        the flag holds the settings it wrote, stamped by it. The write is settled then."""


class InfraDeployer(Protocol):
    """Deploys the stacks of one infrastructure-as-code app, one stack at a time (the CDK CLI)."""

    def list_stacks(self, on_line: "Callable[[str], None] | None" = None) -> "AppStacks":
        """The app's stacks and what each depends on; raises AppNotListed if the app cannot be read."""

    def deploy(self, stack: str, *, timeout_seconds: float,
               on_line: "Callable[[str], None] | None" = None) -> "DeployedStack":
        """Deploy one stack, streaming the tool's output lines to ``on_line``; raises
        StackDeployFailed (with the tool's last lines) if it fails or runs out of time."""


class InfraChecker(Protocol):
    """Judges the pre-deployment checklist from what the account holds (reads only)."""

    def check(self) -> "Checklist":
        """Every checklist item, passed or failed with its reason; a failed read is a failed item."""


class ImagePublisher(Protocol):
    """Builds an image and pushes it to a registry (``rollway.toolchain.docker.DockerCli``).

    Every push has a read: ``remote_digest`` asks the registry what it holds for a reference.
    """

    def server_version(self) -> str:
        """The builder's version; raises DaemonUnreachable when nothing answers."""

    def build(self, context_dir: str | os.PathLike[str], *, dockerfile: str | os.PathLike[str] | None = None,
              tags: Sequence[str] = (), labels: Mapping[str, str] | None = None) -> str:
        """Build the context and return the image id (``sha256:...``); BuildFailed says why not."""

    def image_platform(self, image: str) -> str:
        """The platform ``image`` was built for, ``os/architecture`` (``linux/amd64``)."""

    def tag(self, image: str, reference: str) -> None:
        """Tag ``image`` as ``reference``."""

    def login(self, registry: str, username: str, password: SecretStr) -> None:
        """Log in to ``registry`` (the password handed on stdin, never shown)."""

    def push(self, reference: str) -> str:
        """Push ``reference`` and return the digest the registry stored; PushRefused if refused."""

    def pushed_as(self, image: str) -> tuple[str, ...]:
        """What ``image`` (an id) was pushed as: ``<registry>/<repository>@<digest>`` each."""

    def remote_digest(self, reference: str) -> str | None:
        """The digest the registry holds for ``reference``, or None when it holds no such tag."""

    def remote_platforms(self, reference: str) -> tuple[str, ...]:
        """The platforms (``os/architecture``) the image the registry holds for ``reference`` runs on."""

    def remote_config_digest(self, reference: str) -> str | None:
        """The config blob's digest the manifest the registry holds for ``reference`` names (None: an index)."""

    def remote_tag(self, source: str, tag: str) -> str:
        """Tag the image the registry holds for ``source`` as ``tag`` in its repository, in the
        registry (nothing pulled or pushed); returns its digest."""

    def logout(self, registry: str) -> None:
        """Forget the login to ``registry``."""


class RollbackClaims(Protocol):
    """The claim on a rollout's rollback, which both Ledgers (DynamoLedger, FakeLedger) have
    beside the Ledger port: the one rollback carrying it out holds it, so a second one (`rollway
    abort` and a cancelled run's hook at once) waits instead of moving the traffic and paging again.
    ``rollway.ledger.begin_rollback`` takes it with the rollback's start."""

    def claim_rollback(self, service: str, *, holder: str, now: float, lease_seconds: float,
                       rollout: str | None = None, at: float | None = None) -> RolloutRecord:
        """Take, renew or (``lease_seconds`` 0) give up the claim, ``now`` on the wall clock, in one
        conditional write appending nothing, except on taking over another holder's lapsed claim:
        a ``takeover`` entry (``rollway.ledger.claim_takeover``) stamped ``at`` (the rollout clock;
        None: ``now``); raises RollbackClaimed while another holder's claim is live,
        RolloutClosed once the rollback ended, LedgerError when none has begun."""


class StackStatuses(Protocol):
    """What CloudFormation says of a stack (``rollway.aws.cloudformation.CloudFormationStacks``):
    a resumed infrastructure deploy asks it of the stacks it would skip, and every deploy of the
    stacks it deploys, to tell which it changed."""

    def status(self, name: str) -> str | None:
        """The stack's status (``CREATE_COMPLETE``, ...), None when there is no such stack."""

    def state(self, name: str) -> StackState:
        """The stack's id, status and CloudFormation's reason for it (``status`` None when there is
        no such stack), from one DescribeStacks: the CDK toolkit stack, read before any deploy."""

    def bootstrap_version(self, name: str) -> int | None:
        """The ``BootstrapVersion`` output of the CDK toolkit stack ``name``, None when it gives none."""

    def seen(self, name: str) -> StackState:
        """The stack's id, status, LastUpdatedTime (``status`` None when there is no such stack)
        and the id of its newest event."""
