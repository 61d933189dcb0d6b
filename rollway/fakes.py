"""In-memory implementations of every port, for fast tests of flow logic.

They keep the same contracts as the AWS adapters (read-back, named errors), and count the
calls made so tests can assert on order. They are never the only test of an adapter.
"""

from __future__ import annotations

import itertools
from typing import Callable, Mapping, Sequence

from rollway.aws.errors import ServiceNotStable
from rollway.model import Interval, Observation, QueueDepth, ServiceState, ShiftedRule, TargetGroup, VersionSample, Weights
from rollway.preflight_checks import QueueSeen
from rollway.targets import Targets
from rollway.weights_read import FirstRead


class FakeClock:
    """A clock that only moves when slept on: a rollout of hours runs in microseconds."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


class FakeRouter:
    """Weights in memory. ``lag`` makes the read-back stale for that many reads after a write."""

    def __init__(self, weights: Weights | None = None, healthy: dict[str, int] | None = None,
                 groups: dict[str, TargetGroup] | None = None) -> None:
        self.weights = weights or Weights(stable=100, canary=0)
        self.healthy = healthy if healthy is not None else {"stable": 2, "canary": 2}
        # Its targets are healthy as soon as they are counted, so its groups check nothing, unless
        # a test gives them the health check its targets' timeline follows.
        self.groups = groups if groups is not None else {
            version: TargetGroup(arn=f"arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/"
                                     f"webordinary-edit-{version}/{index:016x}")
            for index, version in enumerate(("stable", "canary"), start=1)}
        self.calls: list[str] = []
        self.lag = 0
        self._stale: Weights | None = None
        self.rule: ShiftedRule | None = None

    def get_weights(self) -> Weights:
        self.calls.append("get_weights")
        if self.lag > 0 and self._stale is not None:
            self.lag -= 1
            return self._stale
        return self.weights

    def set_weights(self, weights: Weights) -> Weights:
        self.calls.append(f"set_weights {weights}")
        self._stale = held = self.weights
        self.weights = weights
        return held

    def healthy_targets(self, version: str) -> int:
        self.calls.append(f"healthy_targets {version}")
        return self.healthy[version]

    def target_group(self, version: str) -> TargetGroup:
        return self.groups[version]

    def reading(self, seconds: float) -> "FakeRouter":
        return self

    def dropping_others(self, move: FirstRead) -> "FakeRouter":
        """Itself: its rule forwards to stable and canary alone, so a rollback's move drops nothing,
        and ``set_weights`` gives back what it read, for ``move`` to take (``FirstRead.answered``)."""
        return self

    def rolling_back(self, recorded: ShiftedRule | None) -> "FakeRouter":
        """Itself: it has one rule, the rollout's."""
        return self

    def check_move(self) -> None:
        """Nothing to refuse: its one rule is the rollout's, forwarding to stable and canary."""

    def shifted_rule(self) -> ShiftedRule | None:
        """``rule``: None unless a test names one, for the ledger to keep with a shift."""
        return self.rule


class FakeDeployer:
    """ECS services as dicts; a revision copies the base and swaps the image."""

    def __init__(self, services: dict[str, ServiceState], task_definitions: dict[str, str]) -> None:
        self.services = dict(services)
        self.task_definitions = dict(task_definitions)  # arn -> image
        self.calls: list[str] = []
        self._revision = itertools.count(100)
        self.unstable: set[str] = set()
        # Services whose new revision ECS's circuit breaker rolls back while it is waited for.
        self.rolls_back: set[str] = set()
        self._previous: dict[str, str] = {}
        self._pointed: dict[str, str] = {}  # as EcsDeployer: what wait_stable expects by default
        # A scale-up that takes ``polls`` waits of ``poll_seconds`` on ``clock`` (as EcsDeployer polls):
        # ``between`` is called before each, and the fake clock moves, so a flow test drives the
        # rollout clock through the wait without sleeping.
        self.clock: FakeClock | None = None
        self.polls, self.poll_seconds = 0, 15.0

    def describe(self, service: str) -> ServiceState:
        self.calls.append(f"describe {service}")
        return self.services[service]

    def image_of(self, task_definition: str) -> str:
        self.calls.append(f"image_of {task_definition}")
        return self.task_definitions[task_definition]

    def register_revision(self, image: str, base_task_definition: str) -> str:
        if not image:
            raise ValueError("image must not be empty")
        self.calls.append(f"register_revision {image}")
        family = base_task_definition.rsplit(":", 1)[0]
        arn = f"{family}:{next(self._revision)}"
        self.task_definitions[arn] = image
        return arn

    def deregister_revision(self, task_definition: str) -> None:
        self.calls.append(f"deregister_revision {task_definition}")
        self.task_definitions.pop(task_definition, None)

    def update_service(
        self, service: str, *, task_definition: str | None = None, desired: int | None = None
    ) -> ServiceState:
        self.calls.append(f"update_service {service} td={task_definition} desired={desired}")
        state = self.services[service]
        changes: dict = {}
        if task_definition is not None:
            changes["task_definition"] = task_definition
            self._previous[service] = state.task_definition
            self._pointed[service] = task_definition
        if desired is not None:
            changes["desired"] = desired
            changes["running"] = desired
        self.services[service] = state.model_copy(update=changes)
        return self.services[service]

    def wait_stable(
        self, services: Sequence[str], timeout_seconds: float, expected: Mapping[str, str] | None = None, *,
        between: Callable[[], None] | None = None,
    ) -> None:
        self.calls.append(f"wait_stable {','.join(services)}")
        for _ in range(self.polls):
            if between is not None:
                between()
            if self.clock is not None:
                self.clock.sleep(self.poll_seconds)
        for s in self.rolls_back & set(services) & set(self._previous):
            self.services[s] = self.services[s].model_copy(update={"task_definition": self._previous.pop(s)})
        stuck = [s for s in services if s in self.unstable]
        if stuck:
            raise ServiceNotStable(stuck, timeout_seconds)
        for s, td in {**self._pointed, **(expected or {})}.items():
            if s in services and self.services[s].task_definition != td:
                raise ServiceNotStable(list(services), timeout_seconds, f"{s} runs {self.services[s].task_definition}, not {td}")


Behaviour = Callable[[Weights, float], tuple[VersionSample | None, VersionSample | None]]


def steady(rps: float, stable_error_rate: float, canary_error_rate: float, interval: float = 60.0) -> Behaviour:
    """Deterministic traffic: rps split by weight, errors at the given rates (rounded)."""

    def sample(weights: Weights, _t: float) -> tuple[VersionSample | None, VersionSample | None]:
        def one(share: int, rate: float) -> VersionSample | None:
            n = round(rps * interval * share / 100)
            return VersionSample(requests=n, errors=round(n * rate), latency_avg_ms=120, latency_p99_ms=480) if n else None

        return one(weights.stable, stable_error_rate), one(weights.canary, canary_error_rate)

    return sample


class FakeMetrics:
    """Intervals generated from the router's live weights by a behaviour function.

    Each interval of ``interval`` seconds is sampled once, the first time it is observed, with
    the weights the router held then: like the simulator, but without AWS.
    """

    def __init__(self, router: FakeRouter, behaviour: Behaviour, interval: float = 60.0, dlq: int = 0,
                 dlq_queue: str = "webordinary-edit-input-dlq") -> None:
        self.router = router
        self.behaviour = behaviour
        self.interval = interval
        self.dlq = dlq  # messages in the one dead-letter queue, ``dlq_queue``
        self.dlq_queue = dlq_queue
        self.error: str | None = None
        self._recorded: dict[float, Interval] = {}
        self._dlq_at: dict[float, int] = {}
        self.calls = 0
        self.windows: list[tuple[float, float]] = []

    def observe(self, start: float, end: float) -> Observation:
        self.calls += 1
        self.windows.append((start, end))
        if self.error:
            return Observation(start=start, end=end, error=self.error)
        intervals = []
        t = (start // self.interval + 1) * self.interval
        while t <= end:
            if t not in self._recorded:
                baseline, canary = self.behaviour(self.router.weights, t)
                self._recorded[t] = Interval(t=t, baseline=baseline, canary=canary)
                self._dlq_at[t] = self.dlq
            intervals.append(self._recorded[t])
            t += self.interval
        # As CloudWatch: the DLQ's depth in each period, as it was when the period was first read.
        depths = [self._dlq_at[i.t] for i in intervals] or [self.dlq]
        held = (QueueDepth(queue=self.dlq_queue, first=depths[0], deepest=max(depths)),) if max(depths) else ()
        return Observation(start=start, end=end, intervals=tuple(intervals), dlq_messages=max(depths),
                           dead_letters=held)


class FakeNotifier:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def notify(self, subject: str, message: str) -> str:
        self.messages.append((subject, message))
        return f"msg-{len(self.messages)}"


class FakeFlagStore:
    """Feature flags in memory, with the DynamoDB store's semantics.

    Writes are conditional on the version (FlagConflict otherwise) and keep a capped audit
    trail, through the same ``rollway.flags.prepare_write``. ``reads`` and ``writes`` count
    calls; set ``unavailable`` to a message to make every call raise FlagStoreUnavailable.
    """

    def __init__(self, flags: Sequence["FlagState"] = (), *, audit_cap: int = 100) -> None:
        self.flags: dict[str, FlagState] = {f.feature: f for f in flags}
        self.trails: dict[str, list[FlagAuditEntry]] = {}
        self.audit_cap = audit_cap
        self.unavailable: str | None = None
        self.reads = 0
        self.writes = 0

    def get(self, feature: str) -> "FlagState | None":
        self._reachable()
        validate_feature(feature)
        self.reads += 1
        return self.flags.get(feature)

    def list(self) -> list["FlagState"]:
        self._reachable()
        self.reads += 1
        return sorted(self.flags.values(), key=lambda f: f.feature)

    def put(
        self, flag: "FlagState", *, expected_version: int, actor: str, now: float, reason: str = "",
        writer: str = "person", rollout: str | None = None,
    ) -> "FlagState":
        self._reachable()
        stored, entry = prepare_write(
            self.flags.get(flag.feature), flag, expected_version=expected_version, actor=actor, now=now, reason=reason,
            writer=writer, rollout=rollout,
        )
        self.flags[flag.feature] = stored
        trail = self.trails.setdefault(flag.feature, [])
        trail.append(entry)
        del trail[: -self.audit_cap]
        self.writes += 1
        return stored

    def audit(self, feature: str, limit: int | None = None) -> list["FlagAuditEntry"]:
        self._reachable()
        entries = list(reversed(self.trails.get(feature, [])))
        return entries if limit is None else entries[:limit]

    def unanswered(
        self, failure: "FlagStoreUnavailable", feature: str, settings: Mapping[str, object], *, actor: str,
        now: float, reason: str = "", writer: str = "person", rollout: str | None = None,
    ) -> "FlagStoreUnavailable":
        return failure  # every write here is answered

    def read_back(
        self, flag: "FlagState", *, actor: str, now: float, reason: str = "", writer: str = "person",
        rollout: str | None = None,
    ) -> bool:
        return False  # every write here is answered

    def _reachable(self) -> None:
        if self.unavailable is not None:
            raise FlagStoreUnavailable(self.unavailable)


class FlakyFlagStore(FakeFlagStore):
    """A FakeFlagStore whose writes to the flags in ``failing`` raise FlagStoreUnavailable
    (throttled, denied...), while every other call works: a partial outage."""

    def __init__(self, flags: Sequence["FlagState"] = (), *, failing: Sequence[str] = ()) -> None:
        super().__init__(flags)
        self.failing = set(failing)

    def put(self, flag: "FlagState", **kwargs) -> "FlagState":
        if flag.feature in self.failing:
            raise FlagStoreUnavailable(f"PutItem on {flag.feature}: ProvisionedThroughputExceededException")
        return super().put(flag, **kwargs)


from rollway.flags import (  # noqa: E402  (appended section: other fakes are added above)
    FlagAuditEntry,
    FlagState,
    FlagStoreUnavailable,
    prepare_write,
    validate_feature,
)


# --- Ledger -------------------------------------------------------------------------------
# Imports sit beside each appended fake so sections can be added without editing the header.

import threading  # noqa: E402
from typing import Any  # noqa: E402

from rollway.aws.ledger import as_stored  # noqa: E402  (the DynamoDB ledger's own escaping)
from rollway.ledger import (  # noqa: E402
    RefusedAnswer,
    RolloutNotFound,
    refusals_kept,
    RolloutRecord,
    Transition,
    as_started,
    check_lease,
    check_lease_seconds,
    check_new_rollout,
    check_owner,
    check_claimable,
    claim_changes,
    claim_takeover,
    check_rollout,
    lease_time,
    takeover,
    validate_changes,
)


class FakeLedger:
    """The Ledger port in memory, under the same rules as ``rollway.aws.ledger.DynamoLedger``.

    One lock makes every operation atomic, as DynamoDB makes each conditional write; the
    rules themselves (who may start, take the lease, write) are the shared checks of
    ``rollway.ledger``. ``calls`` lists the operations in order. Text is kept as DynamoDB's
    ledger stores it (``as_stored``).
    """

    def __init__(self) -> None:
        self._rollouts: dict[str, list[RolloutRecord]] = {}  # per service, oldest first
        self._lock = threading.Lock()
        self.calls: list[str] = []

    def get(self, service: str) -> RolloutRecord | None:
        with self._lock:
            self.calls.append(f"get {service}")
            rollouts = self._rollouts.get(service)
            return rollouts[-1] if rollouts else None

    def history(self, service: str, *, unreadable: dict[str, str] | None = None) -> list[RolloutRecord]:
        # Every record here was built as a RolloutRecord: none is unreadable.
        with self._lock:
            self.calls.append(f"history {service}")
            return list(reversed(self._rollouts.get(service, [])))

    def create(self, record: RolloutRecord, *, owner: str, now: float, lease_seconds: float,
               wall: float | None = None) -> RolloutRecord:
        check_lease_seconds(lease_seconds, owner)
        with self._lock:
            self.calls.append(f"create {record.service} {record.rollout_id}")
            rollouts = self._rollouts.setdefault(record.service, [])
            stored = as_stored(as_started(record, owner=owner, now=now, lease_seconds=lease_seconds, wall=wall))
            if rollouts and rollouts[-1] == stored:
                # As DynamoLedger: the same create again is a retry of one that committed (a
                # Prefect task retry), answered with the record stored, not RolloutInProgress.
                return stored
            check_new_rollout(rollouts[-1] if rollouts else None, record)
            rollouts.append(stored)
            return stored

    def acquire(self, service: str, *, owner: str, now: float, lease_seconds: float,
                rollout: str | None = None, wall: float | None = None, **changes: Any) -> RolloutRecord:
        fields = validate_changes(changes)
        check_lease_seconds(lease_seconds, owner)
        now = float(now)  # as DynamoDB hands numbers back: the same record from both ledgers
        leased = lease_time(now, wall)
        with self._lock:
            self.calls.append(f"acquire {service} {owner}")
            current = self._newest(service)
            check_rollout(current, rollout)
            check_lease(current, owner, leased)
            return self._hold(service, current, takeover(current, owner, now), **fields, owner=owner,
                              lease_expires=leased + lease_seconds, lease_seconds=float(lease_seconds), updated_at=now)

    def note(self, service: str, *, owner: str, now: float, rollout: str | None = None,
             **changes: Any) -> RolloutRecord:
        fields = validate_changes(changes)
        now = float(now)
        with self._lock:
            current = self._owned(service, rollout, owner, now, f"note {service} {owner}")
            return self._write(service, current, **fields, updated_at=now)

    def _owned(self, service: str, rollout: str | None, owner: str | None, now: float, call: str) -> RolloutRecord:
        """The newest rollout, for a write by ``owner`` meant for ``rollout`` (under the lock), the
        write logged in ``calls`` as ``call``."""
        self.calls.append(call)
        current = self._newest(service)
        check_rollout(current, rollout)
        check_owner(current, owner, now)
        return current

    def release(self, service: str, *, owner: str) -> None:
        with self._lock:
            self.calls.append(f"release {service} {owner}")
            rollouts = self._rollouts.get(service)
            if rollouts and rollouts[-1].owner == owner:
                self._write(service, rollouts[-1], owner=None, lease_expires=0.0)

    def record(
        self,
        service: str,
        *,
        owner: str | None,
        now: float,
        transition: Transition,
        lease_seconds: float = 0.0,
        rollout: str | None = None,
        followed_by: Sequence[Transition] = (),
        rule: Callable[[RolloutRecord], None] | None = None,
        wall: float | None = None,
        **changes: Any,
    ) -> RolloutRecord:
        fields = validate_changes(changes)
        check_lease_seconds(lease_seconds, owner)
        now = float(now)
        with self._lock:
            current = self._owned(service, rollout, owner, now, f"record {service} {transition.kind}")
            if rule is not None:  # under the lock: on the very record the write changes
                rule(current)
            if lease_seconds > 0:
                fields["lease_expires"] = lease_time(now, wall) + lease_seconds
                fields["lease_seconds"] = float(lease_seconds)
            return self._write(
                service, current, **fields, updated_at=now, history=current.history + (transition, *followed_by)
            )

    def refuse(self, service: str, *, rollout: str, answer: RefusedAnswer) -> RolloutRecord:
        # As DynamoLedger: appended whatever the lease and the phase, version and history left as they are.
        with self._lock:
            self.calls.append(f"refuse {service} {answer.actor}")
            rollouts = self._rollouts.get(service, [])
            index = next((i for i, r in enumerate(rollouts) if r.rollout_id == rollout), None)
            if index is None:
                raise RolloutNotFound(f"no rollout {rollout!r} recorded for service {service!r}")
            current = rollouts[index]
            entry = as_stored(answer).model_copy(update={"recorded_after": len(current.history)})
            kept, dropped = refusals_kept(current, entry)
            update = {"refused_answers": kept, "refused_dropped": dropped}
            if dropped is None and (least := (current.refused_dropped_least or 0) + len(current.refused_answers)
                                    + 1 - len(kept)):
                update["refused_dropped_least"] = least  # as DynamoLedger: not known how many, at least these
            if dropped is None:  # as DynamoLedger: written with a count alone, removed with it
                update["refused_dropped_before"] = None
            elif len(kept) <= len(current.refused_answers):  # some dropped: recorded before the history's next entry
                update["refused_dropped_before"] = len(current.history)
            rollouts[index] = as_stored(current.model_copy(update=update))
            return rollouts[index]

    def claim_rollback(self, service: str, *, holder: str, now: float, lease_seconds: float,
                       rollout: str | None = None, at: float | None = None) -> RolloutRecord:
        now = float(now)
        with self._lock:
            self.calls.append(f"claim_rollback {service} {holder}")
            current = self._newest(service)
            check_rollout(current, rollout)
            check_claimable(holder, now)(current)
            taken = claim_takeover(current, holder, now, lease_seconds, None if at is None else float(at))
            # A takeover is stamped on the rollout clock; a renewal leaves updated_at as it was, as in DynamoDB.
            return self._hold(service, current, taken, **claim_changes(holder, now, lease_seconds),
                              **({"updated_at": taken.at} if taken is not None else {}))

    def _newest(self, service: str) -> RolloutRecord:
        rollouts = self._rollouts.get(service)
        if not rollouts:
            raise RolloutNotFound(f"no rollout recorded for service {service!r}")
        return rollouts[-1]

    def _hold(self, service: str, current: RolloutRecord, taken: Transition | None, **fields: Any) -> RolloutRecord:
        """Write a lease or a rollback's claim (``fields``); ``taken``: the ``takeover`` entry when it
        was taken from another holder whose hold lapsed, appended in the same write (None: nothing)."""
        if taken is not None:
            fields["history"] = current.history + (taken,)
        return self._write(service, current, **fields)

    def _write(self, service: str, current: RolloutRecord, **fields: Any) -> RolloutRecord:
        """Replace the newest rollout with ``current`` changed by ``fields``, one version on."""
        updated = as_stored(current.model_copy(update={**fields, "version": current.version + 1}))
        self._rollouts[service][-1] = updated
        return updated


class FakeInfraDeployer:
    """An InfraDeployer over a made-up app: records the stacks deployed, in order.

    Args:
        stacks: stack -> the stacks it depends on.
        failing: stack -> the reason its deploy fails.
        already: stacks deployed before (by an earlier run), which others may depend on.
    """

    def __init__(self, stacks: Mapping[str, Sequence[str]], failing: Mapping[str, str] | None = None,
                 already: Sequence[str] = ()) -> None:
        from rollway.infra import AppStacks

        self.app = AppStacks(dependencies={name: tuple(deps) for name, deps in stacks.items()})
        self.failing = dict(failing or {})
        self.calls: list[str] = []
        self.deployed: list[str] = list(already)

    def list_stacks(self, on_line: Callable[[str], None] | None = None):
        self.calls.append("list")
        return self.app

    def deploy(self, stack: str, *, timeout_seconds: float, on_line: Callable[[str], None] | None = None):
        from rollway.infra import DeployedStack, PlanRefused, StackDeployFailed

        self.calls.append(f"deploy {stack}")
        if stack not in self.app.dependencies:
            raise PlanRefused(f"the app defines no stack {stack!r}")
        missing = [d for d in self.app.dependencies[stack] if d not in self.deployed]
        emit = on_line or (lambda _line: None)
        emit(f"{stack}: deploying... [1/1]")
        if stack in self.failing:
            tail = (f"{stack}: creating stack...", f"❌  {stack} failed to deploy", f"‣ {self.failing[stack]}")
            for line in tail[1:]:
                emit(line)
            raise StackDeployFailed(stack, self.failing[stack], tail)
        if missing:  # what CloudFormation says of an import whose export does not exist yet
            raise StackDeployFailed(stack, f"No export named {missing[0]}-Export found", ())
        emit(f"✅  {stack}")
        self.deployed.append(stack)
        return DeployedStack(stack=stack, seconds=0.0, arn=f"arn:aws:cloudformation:us-west-2:123456789012:stack/{stack}/1")


class FakeImagePinner:
    """An ImagePinner over tags in memory (``tags``: tag reference -> digest), pinning as ECR's
    adapter does: a tag to ``<repository>@<digest>``, an image given by digest as is, a tag the
    registry does not hold refused (``ImageNotPinned``). Push a tag again by changing ``tags``."""

    def __init__(self, tags: Mapping[str, str] | None = None) -> None:
        self.tags: dict[str, str] = dict(tags or {})
        self.calls: list[str] = []

    def pin(self, image: str) -> str:
        from rollway.image import ImageNotPinned, image_parts, pinned_reference

        self.calls.append(f"pin {image}")
        if image_parts(image).digest is not None:
            return image
        if image not in self.tags:
            raise ImageNotPinned(f"the registry holds no tag {image!r}: push it, or give the image by digest")
        return pinned_reference(image, self.tags[image])


class FakeImagePublisher:
    """An ImagePublisher in memory: builds give ids, pushes give digests (both derived from what
    was built, so the same build gives the same ones), and the registry remembers them.

    Args:
        registry: reference -> digest the registry holds already.
        refuse: references whose push the registry refuses (``PushRefused``).
        platform: what every build is built for (the machine docker runs on).
    """

    def __init__(self, registry: Mapping[str, str] | None = None, refuse: Sequence[str] = (),
                 platform: str = "linux/amd64") -> None:
        self.platform = platform
        self.registry: dict[str, str] = dict(registry or {})
        self.images: dict[str, str] = {}  # local tags: reference -> image id
        self.logins: dict[str, tuple[str, object]] = {}  # registry -> (username, SecretStr password)
        self.refuse = set(refuse)
        self.calls: list[str] = []
        self.pushed: dict[str, str] = {}  # reference -> the image id pushed as it
        # manifest digest -> the config blob's it names: the classic image store's image id
        self.configs: dict[str, str] = {}

    def server_version(self) -> str:
        self.calls.append("server_version")
        return "fake"

    def build(self, context_dir, *, dockerfile=None, tags: Sequence[str] = (),
              labels: Mapping[str, str] | None = None) -> str:
        import hashlib

        self.calls.append(f"build {context_dir}")
        made = repr((str(context_dir), str(dockerfile), sorted((labels or {}).items())))
        image_id = "sha256:" + hashlib.sha256(made.encode()).hexdigest()
        for reference in tags:
            self.images[reference] = image_id
        return image_id

    def image_platform(self, image: str) -> str:
        self.calls.append(f"image_platform {image}")
        return self.platform

    def tag(self, image: str, reference: str) -> None:
        self.calls.append(f"tag {reference}")
        self.images[reference] = image

    def login(self, registry: str, username: str, password) -> None:
        self.calls.append(f"login {registry}")
        self.logins[registry] = (username, password)

    def push(self, reference: str) -> str:
        import hashlib

        from rollway.toolchain.docker import PushRefused

        self.calls.append(f"push {reference}")
        if reference in self.refuse:
            raise PushRefused(reference, ["denied: the fake registry refuses this push"])
        if reference not in self.images:
            raise PushRefused(reference, [f"An image does not exist locally with the tag: {reference}"])
        digest = "sha256:" + hashlib.sha256(self.images[reference].encode()).hexdigest()
        self.registry[reference] = digest
        self.pushed[reference] = self.images[reference]
        self.configs[digest] = self.images[reference]
        return digest

    def pushed_as(self, image: str) -> tuple[str, ...]:
        self.calls.append(f"pushed_as {image}")
        return tuple(f"{reference.rsplit(':', 1)[0]}@{self.registry[reference]}"
                     for reference, pushed in self.pushed.items() if pushed == image)

    def remote_digest(self, reference: str) -> str | None:
        self.calls.append(f"remote_digest {reference}")
        return self.registry.get(reference)

    def remote_platforms(self, reference: str) -> tuple[str, ...]:
        self.calls.append(f"remote_platforms {reference}")
        return (self.platform,)

    def remote_config_digest(self, reference: str) -> str | None:
        self.calls.append(f"remote_config_digest {reference}")
        return self.configs.get(reference.rpartition("@")[2])

    def remote_tag(self, source: str, tag: str) -> str:
        self.calls.append(f"remote_tag {source} {tag}")
        digest = self.registry[source]
        self.registry[f"{source.rsplit(':', 1)[0]}:{tag}"] = digest
        return digest

    def logout(self, registry: str) -> None:
        self.calls.append(f"logout {registry}")
        self.logins.pop(registry, None)


class FakeQueues:
    """The watched queues as ``rollway.aws.sqs.SqsQueues`` looks them up: every work queue and
    DLQ of ``targets`` exists, each work queue redriving to its own DLQ, except the names in
    ``missing``; ``redrives`` (work queue -> DLQ name, "" for none) overrides where one
    redrives; ``failing``, when set, is every lookup's failure (a throttled SQS)."""

    def __init__(self, targets: Targets, *, missing: Sequence[str] = (), redrives: Mapping[str, str] | None = None,
                 failing: str = "") -> None:
        self.targets = targets
        self.missing = set(missing)
        self.redrives = dict(redrives or {})
        self.failing = failing
        self.calls: list[str] = []

    def _arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.targets.region}:123456789012:{name}"

    def lookup(self) -> dict[str, QueueSeen]:
        self.calls.append("lookup")
        seen: dict[str, QueueSeen] = {}
        for queue in self.targets.queues:
            for name in (queue.dlq_name, queue.name):
                if self.failing:
                    seen[name] = QueueSeen(failed=self.failing)
                elif name in self.missing:
                    seen[name] = QueueSeen()
                elif name == queue.name:
                    target = self.redrives.get(name, queue.dlq_name)
                    seen[name] = QueueSeen(arn=self._arn(name), redrive_target=self._arn(target) if target else "")
                else:
                    seen[name] = QueueSeen(arn=self._arn(name))
        return seen
