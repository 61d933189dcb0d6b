"""A slot of a Prefect global concurrency limit, held under a lease for the whole life of a run.

Prefect's own ``concurrency()`` context manager renews its lease on a thread that tries three
times and then stops for good, without a word unless asked to fail the run: after an API outage
of a minute in a canary run that lasts hours, the lease ran out five minutes later and a second
run of the same service could start. This holder renews through the public client methods
(``increment_concurrency_slots_with_lease``, ``renew_concurrency_lease``,
``release_concurrency_slots_with_lease``) for as long as the run holds the slot, backing off
after failures (``rollway.lease.RenewalPolicy``) and never raising into the run. A lease the API
no longer has (it ran out during an outage) is taken again when no other run took the slot.

It also outlives the body of a run that fails. A failed, crashed or cancelled run rolls back
in its state hook, which Prefect runs in the same thread once the run's final state is set;
freeing the slot when the body raised let a second run start and drive the load balancer while
the first run's rollback moved its traffic. So a run whose flow has a hook that takes slots over
(``releases_handed_over_slot``) hands its slot to that hook (``hand_over``, keyed by the flow run
id), still renewed; the hook takes it (``claim_handed_over``) and releases it when it returns,
whatever its rollback did. A hook that runs in another process (the runner
that reports a crash, or that cancels the run's process for the UI's Cancel) has no hand-over:
the run's process, and its renewals, are gone. So the run also records its lease on its own
flow run, as a tag (``record_lease``), and such a hook adopts it (``adopt_recorded``): it renews
the lease while it rolls back and releases it after, or, when the lease has already run out,
takes the slot afresh if no other run has.

A slot is never kept forever in a live process: a hand-over no hook takes within the policy's
``handover_seconds`` stops being renewed, and its lease runs out one lease later. A claimed slot
is released in the hook's ``finally``; only a hook that never returns keeps it, and that hook is
still rolling back.
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import threading
import time
from contextlib import AbstractContextManager
from typing import Any, Callable
from uuid import UUID

import httpx
from prefect import get_client
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse
from prefect.context import get_settings_context
from prefect.logging import get_logger

from rollway.api_error import as_cause
from rollway.bounds import duration_said, seconds_said, whole_seconds
from rollway.lease import RenewalPolicy
from rollway.url_passwords import passwords_hidden

# What the API answers a renewal of a lease it no longer has: 410 Gone in Prefect 3.9 (it ran out and
# the server revoked it, or it was released); 404 from servers that say it that way.
LEASE_GONE = frozenset({404, 410})

ClientFactory = Callable[[], AbstractContextManager[Any]]


class SlotTaken(Exception):
    """Another holder has the limit's slots: the API answered 423 Locked."""


class SlotMissing(Exception):
    """The concurrency limit does not exist, so taking it would guard nothing."""


def lease_said(policy: RenewalPolicy) -> str:
    """How long a slot left to its lease may stay held, as "frees itself within" says it: "5 min",
    "1 min 40 s" (``duration_said``), where ``%g`` minutes said a 100 s lease "1.66667 minutes" and
    the API's shortest "1 minutes". To the second above, as a bound is: never less than the lease."""
    return duration_said(math.ceil(policy.lease_seconds))


def _sync_client() -> AbstractContextManager[Any]:
    return get_client(sync_client=True)


class HeldSlot:
    """One slot of the limit ``name``, held under the lease ``lease_id`` until ``release``.

    Use ``take`` to get one, then ``start`` to renew it on a background thread.
    ``renew_until_released`` is that thread's loop; tests drive it with a fake clock and a fake
    wait instead of a thread.
    """

    def __init__(self, name: str, lease_id: UUID, policy: RenewalPolicy, *, taken_at: float,
                 client: ClientFactory = _sync_client, clock: Callable[[], float] = time.monotonic,
                 logger: logging.Logger | logging.LoggerAdapter | None = None,
                 flow_run_id: UUID | None = None) -> None:
        self.name = name
        self.flow_run_id = flow_run_id
        self.lease_id = lease_id
        self.policy = policy
        self._client = client
        self._clock = clock
        self._log = logger or get_logger("rollway.slot")
        self._renewed_at = taken_at
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._handed_over_at: float | None = None
        self._claimed = False
        self._released = False
        self._thread: threading.Thread | None = None
        self.lost = False
        """The API said the lease is gone: it ran out, and another run may have taken the slot."""

    @classmethod
    def take(cls, name: str, policy: RenewalPolicy, *, flow_run_id: UUID | None = None,
             client: ClientFactory = _sync_client, clock: Callable[[], float] = time.monotonic,
             logger: logging.Logger | logging.LoggerAdapter | None = None) -> "HeldSlot":
        """Take one slot of ``name`` under a lease of ``policy.lease_seconds``, without waiting.

        Raises:
            SlotTaken: another holder has it (423).
            SlotMissing: no limit of that name exists.
            Exception: whatever else the API or the client raised; nothing is held then.
        """
        sent = clock()
        lease_id = _increment(client, name, policy, flow_run_id)
        return cls(name, lease_id, policy, taken_at=sent, client=client, clock=clock, logger=logger,
                   flow_run_id=flow_run_id)

    # -- the renewals ------------------------------------------------------------------------

    def start(self) -> None:
        """Renew the lease on a daemon thread until ``release`` (a process that exits stops it)."""
        # A thread starts with no Prefect settings: give it the caller's (the API URL the run
        # uses), in a context of its own, so its client is not the run's (closed when the run ends).
        settings = get_settings_context().model_copy()

        def renew() -> None:
            try:
                with settings:
                    self.renew_until_released(self._stop.wait)
            finally:
                with _registry:
                    _renewing.discard(self)

        _stop_at_shutdown()
        with _registry:
            _renewing.add(self)
        self._thread = threading.Thread(target=renew, name=f"rollway-slot-{self.name}", daemon=True)
        self._thread.start()

    def stop_renewing(self) -> None:
        """End the renewals without a word and without releasing: the lease runs out on its own
        (``stop_renewals``)."""
        self._stop.set()

    def renew_until_released(self, wait: Callable[[float], bool]) -> None:
        """Renew the lease until ``wait`` says the slot was released (returns True), the API says
        the lease is gone, or a hand-over goes unclaimed too long. Never raises.

        Args:
            wait: Waits the given seconds; True when told to stop meanwhile (``Event.wait``).
        """
        failures = 0
        while not wait(self.policy.next_wait(failures)):
            now = self._clock()
            if not self._renewing(now):
                self._log.warning(
                    "no state hook took over the Prefect concurrency slot %r in the %s since its run ended: renewals "
                    "stop, and it frees itself within %s, when its lease runs out", self.name,
                    seconds_said(self.policy.handover_seconds), lease_said(self.policy))
                _forget(self)
                return
            try:
                with self._client() as api:
                    api.renew_concurrency_lease(lease_id=self.lease_id, lease_duration=self.policy.lease_seconds)
            except Exception as err:  # noqa: BLE001 - a renewal must never fail the run: its hooks would roll back
                if self._stop.is_set():
                    return  # released while this renewal was under way: nothing to say
                if isinstance(err, httpx.HTTPStatusError) and err.response.status_code in LEASE_GONE:
                    if self._retake(err):
                        failures = 0
                        continue
                    return
                failures += 1
                self._failed(err, failures)
                continue
            self._renewed_at = now
            if failures and not self._stop.is_set():
                self._log.info("renewed the lease on the Prefect concurrency slot %r after %d failed attempts",
                               self.name, failures)
            failures = 0

    def _renewing(self, now: float) -> bool:
        with self._lock:
            return self.policy.keeps_renewing(now, self._handed_over_at, self._claimed)

    def _failed(self, err: Exception, failures: int) -> None:
        left = self.policy.left(self._renewed_at, self._clock())
        retry = self.policy.next_wait(failures)
        said = passwords_hidden(str(err))  # httpx's words quote the URL asked, PREFECT_API_URL's password with it
        # The seconds a half up (whole_seconds), as every span measured: %.0f took 76.5 s to the even 76.
        if left > 0:
            self._log.warning(
                "could not renew the lease on the Prefect concurrency slot %r (%d failed in a row, the last: %s): "
                "%d s of the lease left; trying again in %s", self.name, failures, said, whole_seconds(left),
                seconds_said(retry))
        else:
            self._log.error(
                "could not renew the lease on the Prefect concurrency slot %r (%d failed in a row, the last: %s): "
                "the lease ran out %d s ago unless the API still has it, and another canary run may take the slot; "
                "trying again in %s", self.name, failures, said, whole_seconds(max(0.0, -left)), seconds_said(retry))

    def _retake(self, gone: Exception) -> bool:
        """The API no longer has the lease (it ran out while renewals failed): take the slot again
        unless another run has meanwhile. True when this holder holds it again."""
        try:
            lease_id = _increment(self._client, self.name, self.policy, self.flow_run_id)
        except Exception as err:  # noqa: BLE001 - taken by another run, or the API failing again: lost
            self._lost(gone, err)
            return False
        with self._lock:
            self.lease_id, self._renewed_at = lease_id, self._clock()
        if self._stop.is_set():
            # Released while the slot was taken again: the release may have given back the old
            # lease only, so give back the new one too rather than hold it a lease longer.
            self._give_back(lease_id)
            return False
        self._log.error(
            "the lease on the Prefect concurrency slot %r ran out while renewals failed (%s); no other run had taken "
            "the slot, and this run holds it again under a new lease", self.name, passwords_hidden(str(gone)))
        if self.flow_run_id is not None:
            try:
                record_lease(self.flow_run_id, self, client=self._client)
            except Exception as err:  # noqa: BLE001 - only a hook in another process misses the new lease
                self._log.warning("could not record the new lease on the flow run (%s): a hook in another process "
                                  "would not find it", passwords_hidden(str(err)))
        return True

    def _lost(self, gone: Exception, retaking: Exception) -> None:
        self.lost = True
        _forget(self)
        self._log.error(
            "the Prefect concurrency slot %r is no longer held: the API no longer has its lease (%s), so it ran out "
            "while renewals failed, and it could not be taken again (%s): another run may be driving the same "
            "service. This run goes on without it", self.name, passwords_hidden(str(gone)),
            passwords_hidden(str(retaking)))

    # -- hand-over to the failure hook, and release ---------------------------------------------

    def hand_over(self) -> None:
        """Mark the slot as waiting for the run's state hook (renewed ``handover_seconds`` more)."""
        with self._lock:
            self._handed_over_at = self._clock()
            self._claimed = False

    def claim(self) -> None:
        """A hook took the slot over: renewed until it releases it."""
        with self._lock:
            self._claimed = True

    def take_back(self) -> None:
        """The run's body holds the slot again (a retry of the run): renewed until released."""
        with self._lock:
            self._handed_over_at = None
            self._claimed = False

    @property
    def renewing(self) -> bool:
        """Whether the renewal thread is still running."""
        return self._thread is not None and self._thread.is_alive()

    def release(self) -> None:
        """Stop renewing and give the slot back; a release the API refuses is logged, never raised.

        Raised, it would replace the run's own outcome (a promoted run would fail and its hooks roll
        the promotion back). The slot then frees itself when its lease runs out. Idempotent.
        """
        with self._lock:
            if self._released:
                return
            self._released = True
        self._stop.set()
        _forget(self)
        if self._thread is not None and self._thread is not threading.current_thread():
            # Brief: a renewal under way may be waiting on the API; it ends quietly once it answers.
            self._thread.join(timeout=2.0)
        self._give_back(self.lease_id)

    def _give_back(self, lease_id: UUID) -> None:
        try:
            with self._client() as api:
                api.release_concurrency_slots_with_lease(lease_id)
        except Exception as err:  # noqa: BLE001 - whatever failed, the lease ends it
            self._log.error("could not release the Prefect concurrency slot %r (%s): it frees itself within %s, "
                            "when its lease runs out", self.name, passwords_hidden(str(err)), lease_said(self.policy))


def _increment(client: ClientFactory, name: str, policy: RenewalPolicy, flow_run_id: UUID | None) -> UUID:
    """Take one slot of ``name`` under a new lease; its id. Raises as ``HeldSlot.take`` says."""
    holder = ConcurrencyLeaseHolder(type="flow_run", id=flow_run_id) if flow_run_id is not None else None
    with client() as api:
        try:
            response = api.increment_concurrency_slots_with_lease(
                names=[name], slots=1, mode="concurrency", lease_duration=policy.lease_seconds, holder=holder)
        except httpx.HTTPStatusError as err:
            if err.response.status_code == 423:
                # From the error as ApiError says it: httpx's words quote the URL asked, PREFECT_API_URL's
                # password with it, and Prefect logs the run's refusal with its causes.
                raise SlotTaken(
                    f"another holder has the slot of the Prefect concurrency limit {name!r}") from as_cause(err)
            raise
        granted = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
        if not any(limit.name == name for limit in granted.limits):
            # The API grants a lease on no limit at all when the name is unknown; give it back.
            try:
                api.release_concurrency_slots_with_lease(granted.lease_id)
            except Exception:  # noqa: BLE001 - a lease on nothing guards nothing; it runs out
                pass
            raise SlotMissing(f"the Prefect concurrency limit {name!r} does not exist")
    return granted.lease_id


# -- the lease recorded on the flow run, for a hook in another process ----------------------------

LEASE_TAG = "rollway:slot-lease"


def lease_tag(name: str, lease_id: UUID) -> str:
    """The flow-run tag that records the slot ``name`` held under ``lease_id``."""
    return f"{LEASE_TAG}:{lease_id}:{name}"


def recorded_lease(tags: list[str] | None) -> tuple[str, UUID] | None:
    """The (limit name, lease id) a flow run's tags record, or None."""
    for tag in tags or []:
        if tag.startswith(f"{LEASE_TAG}:"):
            lease, _, name = tag[len(LEASE_TAG) + 1:].partition(":")
            try:
                return name, UUID(lease)
            except ValueError:
                continue  # a tag a person wrote by hand: not ours to act on
    return None


def record_lease(flow_run_id: UUID, slot: "HeldSlot", *, client: ClientFactory = _sync_client) -> None:
    """Tag flow run ``flow_run_id`` with ``slot``'s lease, replacing any lease it recorded before.

    Raises whatever the API raises.
    """
    with client() as api:
        run = api.read_flow_run(flow_run_id)
        tags = [tag for tag in run.tags or [] if not tag.startswith(f"{LEASE_TAG}:")]
        api.update_flow_run(flow_run_id, tags=[*tags, lease_tag(slot.name, slot.lease_id)])


def adopt_recorded(flow_run_id: UUID, policy: RenewalPolicy, *, client: ClientFactory = _sync_client,
                   clock: Callable[[], float] = time.monotonic,
                   logger: logging.Logger | logging.LoggerAdapter | None = None) -> "HeldSlot | None":
    """The slot flow run ``flow_run_id`` recorded, held for a hook in a process that did not run it.

    The recorded lease is renewed at once, and then on a thread until ``release``. When the API no
    longer has it (the run's process died a lease ago), the slot is taken afresh, so that no
    other run starts under the hook's rollback; when another run already holds it, that is
    logged and None returned. Never raises: a hook must roll back whatever happens here.
    """
    log = logger or get_logger("rollway.slot")
    try:
        with client() as api:
            recorded = recorded_lease(api.read_flow_run(flow_run_id).tags)
        if recorded is None:
            return None
        name, lease_id = recorded
        slot = HeldSlot(name, lease_id, policy, taken_at=clock(), client=client, clock=clock, logger=log,
                        flow_run_id=flow_run_id)
        try:
            with client() as api:
                api.renew_concurrency_lease(lease_id=lease_id, lease_duration=policy.lease_seconds)
            log.info("this hook holds the Prefect concurrency slot %r its run recorded, until its rollback ends", name)
        except httpx.HTTPStatusError as err:
            if err.response.status_code not in LEASE_GONE:
                raise
            try:
                slot = HeldSlot.take(name, policy, flow_run_id=flow_run_id, client=client, clock=clock, logger=log)
            except SlotTaken:
                log.warning("the Prefect concurrency slot %r ran out before this hook began, and another run holds "
                            "it now: that run may drive the same service while this hook rolls back", name)
                return None
            log.info("the lease the run recorded on the Prefect concurrency slot %r had run out; this hook took the "
                     "slot again, until its rollback ends", name)
    except Exception as err:  # noqa: BLE001 - the rollback matters more than the slot
        log.warning("could not read or hold a Prefect concurrency slot the run recorded (%s): this hook rolls "
                    "back without it", passwords_hidden(str(err)))
        return None
    slot.claim()
    slot.start()
    return slot


# -- the hand-over registry: the run's body puts its slot here, the run's hook takes it --------

_handed_over: dict[UUID, HeldSlot] = {}
_registry = threading.Lock()
RELEASES = "_rollway_releases_handed_over_slot"


def hand_over(flow_run_id: UUID, slot: HeldSlot) -> None:
    """Leave ``slot`` for the state hook of flow run ``flow_run_id`` (or a retry of its body)."""
    slot.hand_over()
    with _registry:
        earlier = _handed_over.get(flow_run_id)
        _handed_over[flow_run_id] = slot
    if earlier is not None and earlier is not slot:
        earlier.release()  # cannot happen in one run's thread; never keep two


def take_back(flow_run_id: UUID) -> HeldSlot | None:
    """The slot an earlier attempt of this flow run handed over, for its retry to hold again."""
    with _registry:
        slot = _handed_over.pop(flow_run_id, None)
    if slot is not None:
        slot.take_back()
    return slot


def claim_handed_over(flow_run_id: UUID) -> HeldSlot | None:
    """The slot flow run ``flow_run_id`` handed to its hook, now the hook's to release; None if none."""
    with _registry:
        slot = _handed_over.pop(flow_run_id, None)
    if slot is not None:
        slot.claim()
    return slot


_renewing: set[HeldSlot] = set()
"""The slots whose renewal thread runs in this process."""
_shutdown_hooked = False


def stop_renewals(timeout_seconds: float = 2.0) -> None:
    """End every lease renewal this process runs, without a word and without a release.

    For a process that is ending: its runs are over or abandoned, and a renewal thread left
    running went on calling the API and logging into the run's log after the process had shut
    that log down ("--- Logging error ---" tracebacks at exit), for up to ``handover_seconds``
    when a run's hook never took its slot. Each lease then runs out on its own, which is what
    a process that dies does too. A renewal under way is waited on up to ``timeout_seconds``.
    """
    with _registry:
        slots = list(_renewing)
    for slot in slots:
        slot.stop_renewing()
    for slot in slots:
        if slot._thread is not None and slot._thread is not threading.current_thread():
            slot._thread.join(timeout=timeout_seconds)


def _stop_at_shutdown() -> None:
    """Have the interpreter's shutdown stop the renewals before anything else of it.

    Python waits for its threads and runs the hooks of ``threading._register_atexit`` (newest
    first) before ``atexit``'s: Prefect's run-log worker drains there, so a renewal thread
    logging after it (or during ``atexit``'s hooks, which stop the ephemeral API server) broke
    the log. Registered at the first start, after the run's log worker started, so it runs
    first. Python without that hook gets ``atexit``'s, late but still before logging shuts down.
    """
    global _shutdown_hooked
    with _registry:
        if _shutdown_hooked:
            return
        _shutdown_hooked = True
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError("no threading hook")
        register(stop_renewals)
    except RuntimeError:  # no such hook, or the interpreter is already shutting down
        atexit.register(stop_renewals)


def _forget(slot: HeldSlot) -> None:
    with _registry:
        for run_id, held in list(_handed_over.items()):
            if held is slot:
                del _handed_over[run_id]


def releases_handed_over_slot(hook: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    """Wrap a flow state hook so that it holds the slot its run handed over until it returns.

    The slot is taken before the hook starts and released in a ``finally``: after a rollback
    that finished, failed or refused alike. A hook with no slot handed over in this process
    adopts the one its run recorded on the API (``adopt_recorded``).
    """
    @functools.wraps(hook)
    def holding(flow, flow_run, state):
        slot = claim_handed_over(flow_run.id)
        if slot is None:
            # The run's body ran in another process (this is the runner reporting a crash or a
            # cancel): hold the lease it recorded, if any.
            slot = adopt_recorded(flow_run.id, RenewalPolicy())
        try:
            return hook(flow, flow_run, state)
        finally:
            if slot is not None:
                slot.release()

    setattr(holding, RELEASES, True)
    return holding


def hooks_release_slots(flow: Any) -> bool:
    """Whether every state hook list that runs after a failed, crashed or cancelled run of ``flow``
    has a hook that releases a handed-over slot (``rollback_hooks`` gives all three)."""
    lists = (flow.on_failure_hooks, flow.on_crashed_hooks, flow.on_cancellation_hooks)
    return all(any(getattr(hook, RELEASES, False) for hook in hooks or []) for hooks in lists)
