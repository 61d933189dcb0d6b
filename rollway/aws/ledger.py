"""The rollout ledger in DynamoDB: one item per rollout, a lease, an append-only history.

Layout of ``targets.rollouts_table`` (hash key ``service``, range key ``rollout_id``, both S):

- One item per rollout, its attributes the fields of RolloutRecord. Weights and transitions
  are maps, ``history`` is a list of transition maps, numbers are DynamoDB numbers (floats
  go through Decimal, so nothing is rounded on the way).
- Rollout ids sort by creation time (``rollway.ledger.new_rollout_id``), so the newest
  rollout of a service is the first item of a descending Query on ``rollout_id < "~"``.
- One pointer item per service, rollout id ``~active``, whose ``current`` attribute names the
  newest rollout. ``~`` sorts after every rollout id, so the Query's key range leaves it out.

Why the pointer: starting a rollout has to check that the newest one finished *and* write
the new one, as one atomic step. A condition on the new item cannot see the other items, so
two runs that both read "finished" would both succeed. ``create`` therefore runs one
TransactWriteItems of three operations:

1. ConditionCheck: the newest rollout it read is still in a terminal phase;
2. Put the pointer, on condition that it still names that rollout (or does not exist yet);
3. Put the new rollout, on condition that its key is free.

Every create of a service writes the same pointer item, so of two racing creates at most
one commits; the other fails its pointer condition (or conflicts), reads again and raises
RolloutInProgress naming the winner. A pointer naming a rollout whose item was deleted (a
person clearing a corrupt record) would fail every create the same way: a create that finds
one replaces it, on condition that the pointer still names it and that rollout is still absent.

The lease (``owner``, ``lease_expires``) lives on the rollout item. ``acquire``, ``record``
and ``release`` each read the newest rollout's key (a Query projecting the key and version
only; a ``record`` with a ``rule``, such as a rollback's start, reads the whole item for the rule
to check), then make one conditional UpdateItem that returns the whole record. ``record`` sets
the changed fields, bumps ``version`` and appends to ``history`` with ``list_append`` in
that one UpdateItem, so concurrent writers can never lose a history entry or a version.
``list_append`` is not idempotent, and botocore resends an UpdateItem whose answer was lost:
``record`` is therefore conditioned on the version it read. A resent copy of a write that
committed is refused, and ``record`` returns the item, which holds its transition; a write
refused because another got in first is made again on the version the refusal returned. (The newest rollout can only
change between the two calls once it is terminal, and a write naming its rollout is refused
then.) A refused condition comes back with the item as it stood, which names the holder in
the LockHeld or NotOwner message.

None is stored as an absent attribute: fewer bytes per history entry, and no NULL type to
test for in conditions.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from typing import Any, Callable, Sequence, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python

from rollway.aws.denied import ROLLOUT_POLICY, is_denied, permission_denied
from rollway.aws.errors import aws_message, error_code
from rollway.errors_pickle import PicklableError
from rollway.failure_words import error_said, writable
from rollway.ledger import (
    ENDED_PHASES,
    RESERVED_ID_PREFIX,
    LedgerError,
    MalformedRollout,
    RefusedAnswer,
    RolloutNotFound,
    RolloutRecord,
    Transition,
    may_have_dropped,
    refusals_kept,
    as_started,
    check_lease,
    check_lease_seconds,
    check_claimable,
    claim_changes,
    claim_takeover,
    lease_time,
    takeover,
    check_new_rollout,
    check_owner,
    check_rollout,
    validate_changes,
)
from rollway.one_line import shown
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec
from rollway.targets import Targets

POINTER_ID = RESERVED_ID_PREFIX + "active"
"""Range key of the per-service pointer item that serializes ``create``."""

_CREATE_ATTEMPTS = 3
_RECORD_ATTEMPTS = 10
_CLAIM_ATTEMPTS = 3  # a lease or a rollback's claim taken over, given up meanwhile

COUNTED_HEAD = "refused_counted_head"
"""The item's mark of the oldest refused answer kept when ``refused_dropped`` was last written
(``_head_mark``): a rollway from before the count drops the oldest past the bound and leaves the
count as it was, and only the list's head tells that it did. Not a field of the record: the
ledger's own check of its count (``_from_item``)."""


def _head_mark(answer: RefusedAnswer) -> str:
    """``answer``, as read back, in a few bytes: the list's head is compared, not stored twice. Its
    fields at their defaults are left out: a release that adds one reads the same answer to the
    same mark (made of every field, its mark of each answer this one wrote differed, and every
    count read as not known). Nor is ``recorded_after``, which the ledger sets on every answer: a
    release from before it, reading an answer this one wrote, marks it without it, and read each
    count as not known, and its next refusal removed it."""
    return hashlib.sha256(answer.model_dump_json(exclude_defaults=True, exclude={"recorded_after"}).encode()
                          ).hexdigest()[:32]


# "None" marks the operations of a cancelled transaction that were not at fault.
_RACE_REASONS = frozenset({"None", "ConditionalCheckFailed", "TransactionConflict"})
_TERMINAL = tuple(phase.value for phase in RolloutPhase if phase.terminal)
# The same rule as rollway.ledger.check_not_ended, as a condition: owners may not act on a
# rollout that is being or has been rolled back.
_NOT_ENDED = "NOT #phase IN (" + ", ".join(f":ended{i}" for i in range(len(ENDED_PHASES))) + ")"
_ENDED_VALUES = {f":ended{i}": phase.value for i, phase in enumerate(ENDED_PHASES)}
_PLACEHOLDER = re.compile(r"#(\w+)")
_serializer = TypeSerializer()
M = TypeVar("M", bound=BaseModel)
_deserializer = TypeDeserializer()


STORAGE_ERRORS = (ClientError, BotoCoreError)
"""What DynamoLedger lets through when DynamoDB itself refuses a call or cannot be reached (the
table is missing, the item would grow past 400 KB, access is denied, throttling outlived
botocore's retries). The ledger's own rules raise LedgerErrors instead, and ValueError for a
bad change."""


def storage_failure(err: BaseException, targets: Targets | None = None) -> str:
    """A storage error in the words a person acts on: the call, AWS's error code and message.

    A call the role may not make is said as the statement of the rollout's policy granting it
    (``permission_denied``; ``targets``, the run's own names, tell which table the ledger's is):
    a rollback's page said "fix the ledger" over AWS's bare refusal, and nothing of what to add
    to the role. Only what AWS answered is kept, never the request (it may carry a record's contents).
    """
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        if is_denied(err):
            table = targets.rollouts_table if targets is not None else None
            denied = permission_denied(err, job=ROLLOUT_POLICY, resource=table, targets=targets)
            return f"DynamoDB {err.operation_name} failed: {denied}"
        said = f"DynamoDB {err.operation_name} failed with {error.get('Code') or 'an unnamed error'}"
        if not str(error.get("Message") or "").strip():
            return said
        # AWS's words as ``aws_message`` says them: one line, escaped, bounded (a rollback's page,
        # the ledger's entry and the log quoted them raw, a line break and escape sequence and all).
        words = aws_message(err)
        return f"DynamoDB {err.operation_name} failed with {words}" if error.get("Code") else \
            f"{said}: {words.partition(': ')[2]}"
    return f"DynamoDB could not be reached ({error_said(err)})"


def ledger_failure(err: BaseException, targets: Targets | None = None) -> str:
    """Why a ledger read or write failed, as the ledger's failures are said: DynamoDB's refusal as
    ``storage_failure`` says it (not botocore's "An error occurred (...) when calling the ...
    operation" form), the ledger's own refusals (NotOwner, ...) and anything else as ``error_said``."""
    return storage_failure(err, targets) if isinstance(err, STORAGE_ERRORS) else error_said(err)


def write_or_why(write: Callable[[], object], targets: Targets | None = None) -> str | None:
    """Make a ledger write; None when it is stored, or why not when DynamoDB refused it or could
    not be reached (``storage_failure``, with the run's ``targets``). The ledger's own refusals
    (RolloutEnded, NotOwner, ...) propagate: they mean something to the caller.

    For writes that must not stop what they record, such as a rollback's: its traffic comes first.
    """
    try:
        write()
    except STORAGE_ERRORS as err:
        return storage_failure(err, targets)
    return None


class _Refused(PicklableError, Exception):
    """A conditional write was refused; ``record`` is the item as it stood (None: gone), and
    ``unversioned`` the MalformedRollout naming it when it holds no numeric version, which every
    write of ``_update`` is conditioned on (None: it holds one)."""

    def __init__(self, record: RolloutRecord | None, unversioned: MalformedRollout | None = None) -> None:
        super().__init__("conditional write refused")
        self.record = record
        self.unversioned = unversioned


class DynamoLedger:
    """The Ledger port on a DynamoDB table.

    Args:
        client: a boto3 DynamoDB client (low-level), made by the caller.
        targets: names; ``targets.rollouts_table`` is the table used.
        reads: seconds -> a DynamoDB client whose calls end within them, for reads given up on
            at a bound of their own (``reading``); None: they use ``client``.
    """

    def __init__(self, client: Any, targets: Targets, reads: Callable[[float], Any] | None = None) -> None:
        self._client = client
        self._targets = targets
        self._table = targets.rollouts_table
        self._reads = reads

    def reading(self, seconds: float) -> DynamoLedger:
        """This ledger for a read given up on after ``seconds`` (``rollway.deadline.answered``): on
        a client whose calls end within them. On the run's clients (six attempts of 10 s, kept for
        the writes) a read given up on went on in its thread for a minute or more. Not for writes."""
        return self if self._reads is None else DynamoLedger(self._reads(seconds), self._targets)

    def get(self, service: str) -> RolloutRecord | None:
        """The newest rollout of ``service``, or None when it never had one."""
        items = self._client.query(**self._newest_first(service), Limit=1)["Items"]
        return _from_item(items[0]) if items else None

    def history(self, service: str, *, unreadable: dict[str, str] | None = None) -> list[RolloutRecord]:
        """Every rollout of ``service``, newest first.

        ``unreadable``: when given, an item rollway cannot read is left out and recorded there
        (its rollout id: why, as ``MalformedRollout`` says) instead of failing the whole read,
        so that one rollout's item (written by another release, edited by hand) does not keep a
        report of another from being written. Without it, such an item raises ``MalformedRollout``.
        """
        pages = self._client.get_paginator("query").paginate(**self._newest_first(service))
        records = []
        for item in (item for page in pages for item in page["Items"]):
            try:
                records.append(_from_item(item))
            except MalformedRollout as err:
                if unreadable is None:
                    raise
                unreadable[item.get("rollout_id", {}).get("S", "?")] = str(err)
        return records

    def create(
        self, record: RolloutRecord, *, owner: str, now: float, lease_seconds: float, wall: float | None = None
    ) -> RolloutRecord:
        """Store ``record`` as the service's newest rollout, owned by ``owner``.

        The stored record has ``owner``, ``lease_expires = wall + lease_seconds`` (``wall``: the
        wall clock; None: ``now``),
        ``version = 1`` and ``created_at = updated_at = now``; its other fields (including
        any history) are ``record``'s.

        Raises:
            RolloutInProgress: the service's newest rollout is not in a terminal phase.
            ValueError: negative ``lease_seconds``, or an id that does not sort after the
                newest rollout's.
            LedgerError: concurrent writes kept the ledger changing for several attempts.
        """
        check_lease_seconds(lease_seconds, owner)
        # As it will read back (text escaped): a resent create is known by it, and answered with it.
        stored = as_stored(as_started(record, owner=owner, now=now, lease_seconds=lease_seconds, wall=wall))
        stale = None
        for _ in range(_CREATE_ATTEMPTS):
            newest = self.get(record.service)
            if newest == stored:
                # Our own earlier attempt committed although its answer was lost (a retry).
                return stored
            check_new_rollout(newest, record)
            try:
                self._client.transact_write_items(TransactItems=self._create_items(stored, newest, stale))
            except ClientError as err:
                if not _lost_a_race(err):
                    raise
                # Another write got there first: read again and decide again. Or the pointer
                # names a rollout whose item was deleted (a person clearing a corrupt record),
                # which no race explains and every attempt would fail on: replace it.
                stale = self._orphan_pointer(record.service, newest)
                continue
            return stored
        raise LedgerError(
            f"could not start rollout {record.rollout_id!r} of service {record.service!r}: "
            f"the ledger kept changing under {_CREATE_ATTEMPTS} attempts"
        )

    def acquire(self, service: str, *, owner: str, now: float, lease_seconds: float,
                rollout: str | None = None, wall: float | None = None, **changes: Any) -> RolloutRecord:
        """Take or renew the lease on the newest rollout of ``service``.

        ``rollout``: the id of the rollout meant (None: the newest, whichever it is); the write's
        condition refuses another, so a run never holds the lease of a rollout that superseded its own.
        ``changes``: RolloutRecord fields set in the same write (``asked_until``, say), appending
        nothing to the history.
        ``wall``: the wall clock the lease is stamped and judged on (None: ``now``, the rollout
        clock ``updated_at`` keeps).

        Taking over another run's lapsed lease appends a ``takeover`` transition naming that run
        (``rollway.ledger.takeover``), in the write that takes it: a renewal, or a lease nobody
        held, costs one UpdateItem; a takeover is tried after that one is refused, on condition
        that the same run still holds the same lapsed lease.

        Raises:
            RolloutEnded: the rollout is being or has been rolled back (``check_not_ended``),
                whoever holds its lease: no run takes it back to move the traffic again.
            LockHeld: another owner's lease has not expired at ``wall`` (None: ``now``).
            RolloutSuperseded: the newest rollout is not ``rollout``.
            RolloutNotFound: the service has no rollout.
        """
        fields = validate_changes(changes)
        check_lease_seconds(lease_seconds, owner)
        leased = lease_time(now, wall)
        condition = f"{_NOT_ENDED} AND (attribute_not_exists(#owner) OR #owner = :owner)"
        values: dict[str, Any] = {":owner": owner, **_ENDED_VALUES}
        if rollout is not None:
            condition += " AND #rollout_id = :rollout"
            values[":rollout"] = rollout
        sets = {**fields, "owner": owner, "lease_expires": leased + lease_seconds, "lease_seconds": float(lease_seconds),
                "updated_at": now}

        def rules(record: RolloutRecord) -> None:
            check_rollout(record, rollout)
            check_lease(record, owner, leased)

        def untaken(refused: _Refused) -> RolloutRecord:
            # The owner changed in between: held by nobody now, or by this owner.
            raise _explain(refused, service, rules)

        def take(held: RolloutRecord, taken: Transition) -> RolloutRecord:
            # Still that run's, and still lapsed: had it renewed meanwhile, it is alive and keeps it.
            lapsed = f"{_NOT_ENDED} AND #owner = :previous AND #lease_expires < :leased"
            if rollout is not None:
                lapsed += " AND #rollout_id = :rollout"
            return self._update(service, sets=sets, condition=lapsed, append=(taken,), key=_key(held),
                                values={":previous": held.owner, ":leased": leased, **_ENDED_VALUES,
                                        **({":rollout": rollout} if rollout is not None else {})})

        return self._take_or_take_over(
            service, rules=rules, untaken=untaken, take=take,
            write=lambda: self._update(service, sets=sets, condition=condition, values=values),
            entry=lambda held: takeover(held, owner, now), mine=lambda record: record.owner == owner,
            gave_up=f"could not take the lease on the rollout of service {service!r}: its owner kept changing")

    def note(self, service: str, *, owner: str, now: float, rollout: str | None = None,
             **changes: Any) -> RolloutRecord:
        """Set ``changes`` (RolloutRecord fields) on ``rollout`` (None: the newest) while ``owner``
        holds it, its lease lapsed or not, in one conditional UpdateItem that leaves the lease as it
        is and appends nothing (a paused run's looks count their windows so, renewing no lease).
        ``now``: the rollout clock ``updated_at`` keeps.

        Raises:
            NotOwner: another run holds the rollout now, or none does.
            RolloutSuperseded: the newest rollout is not ``rollout``.
            RolloutEnded: the rollout is being or has been rolled back.
        """
        fields = validate_changes(changes)

        def rules(record: RolloutRecord) -> None:
            check_rollout(record, rollout)
            check_owner(record, owner, now)

        condition = f"{_NOT_ENDED} AND #owner = :owner"
        values: dict[str, Any] = {":owner": owner, **_ENDED_VALUES}
        if rollout is not None:
            condition += " AND #rollout_id = :rollout"
            values[":rollout"] = rollout
        try:
            return self._update(service, sets={**fields, "updated_at": now}, condition=condition, values=values)
        except _Refused as refused:
            raise _explain(refused, service, rules) from None

    def release(self, service: str, *, owner: str) -> None:
        """Drop ``owner``'s lease on the newest rollout; nothing happens if it does not hold it."""
        try:
            self._update(
                service, sets={"owner": None, "lease_expires": 0.0}, condition="#owner = :holder", values={":holder": owner}
            )
        except (_Refused, RolloutNotFound):
            return

    def claim_rollback(self, service: str, *, holder: str, now: float, lease_seconds: float,
                       rollout: str | None = None, at: float | None = None) -> RolloutRecord:
        """Take, renew or (``lease_seconds`` 0) give up the claim on the rollback under way, in one
        conditional UpdateItem: the rollout is rolling back and nobody else holds a live claim.

        ``now``: the wall clock, as for leases. No history entry is appended for a renewal (one
        every few seconds of a long rollback must not grow the item), nor for a claim nobody held.
        Taking over another rollback's lapsed claim appends a ``takeover`` entry naming it
        (``rollway.ledger.claim_takeover``), stamped ``at`` (the rollout clock; None: ``now``): tried
        after the plain write is refused, on condition that the same holder still holds the same
        lapsed claim.

        Raises:
            RollbackClaimed: another rollback holds a live claim.
            RolloutClosed: the rollback has finished (or the rollout is closed).
            RolloutSuperseded: the newest rollout is not ``rollout``.
            LedgerError: no rollback has begun.
        """
        scope = " AND #rollout_id = :rollout" if rollout is not None else ""
        rolling: dict[str, Any] = {":rolling": RolloutPhase.ROLLING_BACK.value,
                                   **({":rollout": rollout} if rollout is not None else {})}
        free = "#phase = :rolling AND (attribute_not_exists(#rollback_holder) OR #rollback_holder = :holder"
        claimable = check_claimable(holder, now)
        sets = claim_changes(holder, now, lease_seconds)

        def rules(record: RolloutRecord) -> None:
            check_rollout(record, rollout)
            claimable(record)

        def untaken(refused: _Refused) -> RolloutRecord:
            # A claim given up (lease 0) over a lapsed one: nothing taken to record.
            try:
                return self._update(service, sets=sets, condition=f"{free} OR #rollback_expires < :now){scope}",
                                    values={**rolling, ":holder": holder, ":now": now})
            except _Refused as again:
                raise _explain(again, service, rules)

        def take(held: RolloutRecord, taken: Transition) -> RolloutRecord:
            # Still that rollback's, and still lapsed: had it renewed meanwhile, it is alive and keeps it.
            return self._update(
                service, sets={**sets, "updated_at": taken.at}, append=(taken,), key=_key(held),
                condition=f"#phase = :rolling AND #rollback_holder = :previous AND #rollback_expires < :now{scope}",
                values={**rolling, ":previous": held.rollback_holder, ":now": now},
            )

        return self._take_or_take_over(
            service, rules=rules, untaken=untaken, take=take,
            # Nobody's claim, or this holder's: a renewal, nothing appended.
            write=lambda: self._update(service, sets=sets, condition=f"{free}){scope}",
                                       values={**rolling, ":holder": holder}),
            entry=lambda held: claim_takeover(held, holder, now, lease_seconds, at),
            mine=lambda record: record.rollback_holder == holder,
            gave_up=f"could not claim the rollback of service {service!r}: the claim kept changing")

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
        """Apply ``changes``, append ``transition`` and bump the version in one conditional write.

        Args:
            service: whose newest rollout to write.
            owner: the lease holder writing, or None for a lease-free write (rollback and
                manual actions) that must succeed whoever holds the lease.
            now: the time of the write (an owner may write after its lease expired, as long as
                no other run took the rollout over).
            transition: appended to the history.
            followed_by: appended after ``transition`` in the same write (a shift's flag moves),
                so that no kill between two writes can keep one without the others.
            lease_seconds: if positive, the lease is renewed to ``wall + lease_seconds``.
            wall: the wall clock leases are stamped on (None: ``now``).
            rollout: the id of the rollout the write is meant for; None writes to the newest,
                whichever it is. Lease-free writes pass it: nothing else ties them to a rollout.
            rule: a further check of the rollout as stored, raising a LedgerError to refuse
                (``rollway.ledger.check_open_for_rollback``). The whole item is read for it and
                the write is conditioned on the version it was checked at, so the rule holds
                for the very item the write changes, as if it were part of the condition.
            **changes: RolloutRecord fields to set.

        Returns:
            The record as stored after the write.

        Raises:
            ValueError: a change names no writable field or has an invalid value, or a lease
                renewal without an owner; raised before anything is written.
            NotOwner: ``owner`` is not the rollout's owner (another run took it over, or it released it).
            RolloutSuperseded: the newest rollout is not ``rollout``.
            RolloutNotFound: the service has no rollout.
        """
        fields = validate_changes(changes)
        check_lease_seconds(lease_seconds, owner)
        sets = {**fields, "updated_at": now}
        if lease_seconds > 0:
            sets["lease_expires"] = lease_time(now, wall) + lease_seconds
            sets["lease_seconds"] = float(lease_seconds)
        # On the version read just before: botocore resends an UpdateItem whose answer was lost
        # (a timeout, a 500 after the commit), and list_append would append the transition again.
        conditions, values = ["#version = :expected"], {}
        if rollout is not None:
            # The item written is the newest one read just before; it must be the one meant.
            conditions.append("#rollout_id = :rollout")
            values[":rollout"] = rollout
        if owner is not None:
            # The owner alone, not its lease: see rollway.ledger.check_owner.
            conditions.append(f"{_NOT_ENDED} AND #owner = :holder")
            values.update({":holder": owner, **_ENDED_VALUES})

        def rules(record: RolloutRecord) -> None:
            check_rollout(record, rollout)
            check_owner(record, owner, now)
            if rule is not None:
                rule(record)

        appended = (transition, *followed_by)
        if rule is None:
            key, version = self._newest_head(service)
        else:
            # The rule reads more than the key and version: read the whole rollout and check it
            # before the first attempt. A refused attempt checks the item it was refused on.
            newest = self.get(service)
            if newest is None:
                raise self._not_found(service)
            rules(newest)
            key, version = _key(newest), newest.version
        for _ in range(_RECORD_ATTEMPTS):
            values[":expected"] = version
            try:
                return self._update(service, sets=sets, condition=" AND ".join(conditions), values=values,
                                    append=appended, key=key)
            except _Refused as refused:
                old = refused.record
                if old is not None and _holds(old.history, appended):
                    # This write committed and its answer was lost; the resent copy was refused.
                    return old
                if old is None or old.version == version:
                    raise _explain(refused, service, rules)
                rules(old)  # another write got in first: this one may be refused now
                version = old.version  # the item as it stands now: try again on it
        raise LedgerError(
            f"could not record {transition.kind} for service {service!r}: the rollout kept changing under "
            f"{_RECORD_ATTEMPTS} attempts"
        )

    def refuse(self, service: str, *, rollout: str, answer: RefusedAnswer) -> RolloutRecord:
        """Append ``answer`` to the rollout's ``refused_answers`` with ``list_append``, lease-free and
        whatever its phase, in one UpdateItem on the rollout's own key; past the bound
        (``refusals_kept``), the list is set whole, the oldest dropped.

        Conditioned on the list as read: ``list_append`` is not idempotent, and botocore resends an
        UpdateItem whose answer was lost. Told by its length and its oldest answer as stored:
        answers are appended at its end and dropped from its start, so once both are as read, so is
        the list, and a write past the bound sends the list once, as kept, and that one answer
        (conditioned on the list itself, it sent it twice, up to 200 KB). The length and the count
        of answers dropped (``refused_dropped``, set in the same write, compared too; never
        set while not known, ``may_have_dropped``) alone did not
        do: a drop an earlier rollway makes during an upgrade keeps the length and leaves the count
        as it was, and the answer it kept was lost. The count is written with a mark of the oldest
        answer kept (``COUNTED_HEAD``), which that drop leaves stale: read so, the count is not known,
        and this write removes it. A refusal whose
        item holds ``answer`` is that resent copy (the first committed); one whose list changed
        meanwhile (another refusal recorded) is made again on the new list. Neither the version nor
        ``updated_at`` changes: the version conditions of ``record`` and the history the paused run
        compares (``_retake``) are the rollout's moves, which a refused answer is not.

        Raises:
            RolloutNotFound: no rollout ``rollout`` of ``service``.
            RefusalsFull: ``answer`` alone does not fit in the refused answers kept.
            LedgerError: the list kept changing under _RECORD_ATTEMPTS attempts.
        """
        key = _values({"service": service, "rollout_id": rollout})
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            raise RolloutNotFound(f"no rollout {rollout!r} recorded for service {service!r} in table {self._table!r}")
        stored = as_stored(answer)
        held = _from_item(item)
        for _ in range(_RECORD_ATTEMPTS):
            length = len(held.refused_answers)
            # Recorded after the history as read with the list: which pause it answered is told so.
            entry = stored.model_copy(update={"recorded_after": len(held.history)})
            kept, dropped = refusals_kept(held, entry)
            values = _values({":length": length})
            # Whether the list is there is told before its size is compared, in both conditions:
            # DynamoDB reads a comparison of size() of a missing attribute as false, which moto
            # raised on (HTTP 500), the refusal unrecorded, on an item whose list had been removed.
            if length:
                # The oldest as stored: read back and written anew, an answer an earlier rollway
                # wrote may differ from the stored one (a field it left out), and never match.
                same = ("attribute_exists(#refused_answers) AND size(#refused_answers) = :length "
                        "AND #refused_answers[0] = :oldest")
                values[":oldest"] = item["refused_answers"]["L"][0]
            else:  # an absent list (an item an earlier rollway wrote, or one whose list was removed) is empty
                same = "(attribute_not_exists(#refused_answers) OR size(#refused_answers) = :length)"
            if "refused_dropped_least" in item:
                same += " AND #refused_dropped_least = :least_held"
                values[":least_held"] = item["refused_dropped_least"]
            else:
                same += " AND attribute_not_exists(#refused_dropped_least)"
            if "refused_dropped" in item:
                same += " AND #refused_dropped = :counted"
                values[":counted"] = item["refused_dropped"]  # as stored: read as not known (None), it is kept
            else:
                same += " AND attribute_not_exists(#refused_dropped)"
            if len(kept) == length + 1:
                update = "SET #refused_answers = list_append(if_not_exists(#refused_answers, :empty), :answer)"
                values.update(_values({":empty": [], ":answer": [entry]}))
            else:
                update = "SET #refused_answers = :kept"
                values.update(_values({":kept": list(kept)}))
            if dropped is not None:
                update += f", #refused_dropped = :dropped, #{COUNTED_HEAD} = :head"
                values.update(_values({":dropped": dropped, ":head": _head_mark(kept[0])}))
                if len(kept) <= length:
                    # Those dropped were in the list as read, so recorded before the history's next
                    # entry as read with it: a pause recorded from there on was given none of them.
                    update += ", #refused_dropped_before = :before"
                    values.update(_values({":before": len(held.history)}))
            else:
                # Not known how many: at least those counted (``_from_item``) and those this write drops.
                least = (held.refused_dropped_least or 0) + length + 1 - len(kept)
                if least:
                    update += ", #refused_dropped_least = :least"
                    values.update(_values({":least": least}))
                if "refused_dropped" in item:
                    # A count that no longer tells every drop: removed, not counted on from.
                    update += f" REMOVE #refused_dropped, #{COUNTED_HEAD}, #refused_dropped_before"
                # else: an earlier rollway's list that may have lost some uncounted: left without a count,
                # read as not known (``may_have_dropped``), where a count from here on read as every drop.
            guard = f"attribute_exists(#rollout_id) AND ({same})"
            try:
                answered = self._client.update_item(
                    TableName=self._table, Key=key, UpdateExpression=update, ConditionExpression=guard,
                    ExpressionAttributeNames=_names(update, guard), ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
            except ClientError as err:
                if error_code(err) != "ConditionalCheckFailedException":
                    raise
                item = err.response.get("Item")
                if not item:
                    raise RolloutNotFound(f"rollout {rollout!r} of service {service!r} disappeared during the write")
                held = _from_item(item)
                if entry in held.refused_answers:
                    return held  # this write committed and its answer was lost; the resent copy was refused
                continue
            return _from_item(answered["Attributes"])
        # The name as typed (a script's answer may hold a line break or a right-to-left override): escaped.
        raise LedgerError(f"could not record {shown(answer.actor, keep='')}'s refused answer for service {service!r}: "
                          f"the rollout's refused answers kept changing under {_RECORD_ATTEMPTS} attempts")

    # --- internals ------------------------------------------------------------------------

    def _take_or_take_over(
        self,
        service: str,
        *,
        write: Callable[[], RolloutRecord],
        rules: Callable[[RolloutRecord], None],
        entry: Callable[[RolloutRecord], Transition | None],
        untaken: Callable[[_Refused], RolloutRecord],
        take: Callable[[RolloutRecord, Transition], RolloutRecord],
        mine: Callable[[RolloutRecord], bool],
        gave_up: str,
    ) -> RolloutRecord:
        """Take a hold (a rollout's lease, a rollback's claim) that is free or the caller's with
        ``write``; once that is refused, take it over from a holder whose hold lapsed.

        A renewal, or a hold nobody held, costs one UpdateItem and appends nothing. A refusal is
        judged by ``rules`` on the item as it stood (raising the named error while another holder's
        hold is live); ``entry`` is then the ``takeover`` entry for the lapsed hold, and ``take`` the
        write that appends it on condition that the same holder still holds the same lapsed hold.
        ``entry`` None (nothing is taken from another holder) hands the refusal to ``untaken``.
        A takeover refused because it committed and its answer was lost (``mine``, the entry in
        the history) returns the item; one refused because the holder renewed or another took it
        over raises from ``rules``; one whose holder let go meanwhile is tried again as a plain write.

        Raises:
            LedgerError: ``gave_up``, after _CLAIM_ATTEMPTS rounds of the holder changing.
            Whatever ``rules`` and ``untaken`` raise.
        """
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                return write()
            except _Refused as refused:
                held, first = refused.record, refused
                if held is None:
                    raise _explain(refused, service, rules)
                rules(held)  # raises unless another holder's hold lapsed
                taken = entry(held)
            if taken is None:
                return untaken(first)
            try:
                return take(held, taken)
            except _Refused as refused:
                if refused.record is None:
                    raise _explain(refused, service, rules)
                if mine(refused.record) and _holds(refused.record.history, (taken,)):
                    # This takeover committed and its answer was lost; the resent copy was refused.
                    return refused.record
                rules(refused.record)  # renewed by its holder, or taken by another: the named error
                # Let go by its holder in between (it finished, or gave up): free for the plain write.
        raise LedgerError(f"{gave_up} under {_CLAIM_ATTEMPTS} attempts")

    def _newest_head(self, service: str) -> tuple[dict[str, Any], int]:
        """The key and version of the newest rollout: a cheap read, since writes return the whole record."""
        query = self._newest_first(service)
        query["ProjectionExpression"] = "#service, #rollout_id, #version"
        query["ExpressionAttributeNames"]["#version"] = "version"
        items = self._client.query(**query, Limit=1)["Items"]
        if not items:
            raise self._not_found(service)
        head = items[0]
        unversioned = _unversioned(head)
        if unversioned is not None:
            raise unversioned
        return {"service": head["service"], "rollout_id": head["rollout_id"]}, int(head["version"]["N"])

    def _not_found(self, service: str) -> RolloutNotFound:
        return RolloutNotFound(f"no rollout recorded for service {service!r} in table {self._table!r}")

    def _newest_first(self, service: str) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "KeyConditionExpression": "#service = :service AND #rollout_id < :reserved",
            "ExpressionAttributeNames": {"#service": "service", "#rollout_id": "rollout_id"},
            "ExpressionAttributeValues": _values({":service": service, ":reserved": RESERVED_ID_PREFIX}),
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }

    def _orphan_pointer(self, service: str, newest: RolloutRecord | None) -> str | None:
        """The rollout id the pointer names when no item of that rollout exists, else None.

        A create writes the pointer and the rollout's item in one transaction, so a pointer
        without its rollout is never a create under way: the item was deleted.
        """
        key = {"service": service, "rollout_id": POINTER_ID}
        pointer = self._client.get_item(TableName=self._table, Key=_values(key), ConsistentRead=True).get("Item")
        current = pointer.get("current", {}).get("S") if pointer else None
        if current is None or (newest is not None and current == newest.rollout_id):
            return None
        named = self._client.get_item(TableName=self._table, ConsistentRead=True,
                                      Key=_values({"service": service, "rollout_id": current}),
                                      ProjectionExpression="#rollout_id",
                                      ExpressionAttributeNames={"#rollout_id": "rollout_id"}).get("Item")
        return None if named else current

    def _create_items(self, stored: RolloutRecord, newest: RolloutRecord | None,
                      stale: str | None = None) -> list[dict[str, Any]]:
        pointer = {"service": stored.service, "rollout_id": POINTER_ID, "current": stored.rollout_id}
        pointer_put: dict[str, Any] = {"TableName": self._table, "Item": _values(pointer)}
        items: list[dict[str, Any]] = []
        if stale is not None:
            # Replace a pointer to a deleted rollout only while it still names it and that
            # rollout is still absent; the newest rollout's check below still applies.
            items.append({"ConditionCheck": {
                "TableName": self._table,
                "Key": _values({"service": stored.service, "rollout_id": stale}),
                **_expression("attribute_not_exists(#rollout_id)", {}),
            }})
            pointer_put.update(_expression("#current = :stale", {":stale": stale}))
        if newest is None:
            if stale is None:
                pointer_put.update(_expression("attribute_not_exists(#rollout_id)", {}))
        else:
            items.append({"ConditionCheck": {
                "TableName": self._table,
                "Key": _key(newest),
                **_expression("#phase IN (" + ", ".join(f":t{i}" for i in range(len(_TERMINAL))) + ")",
                              {f":t{i}": phase for i, phase in enumerate(_TERMINAL)}),
            }})
            if stale is None:
                pointer_put.update(
                    _expression("attribute_not_exists(#rollout_id) OR #current = :newest",
                                {":newest": newest.rollout_id})
                )
        items.append({"Put": pointer_put})
        items.append({"Put": {
            "TableName": self._table,
            "Item": _to_item(stored),
            **_expression("attribute_not_exists(#rollout_id)", {}),
        }})
        return items

    def _update(
        self,
        service: str,
        *,
        sets: dict[str, Any],
        condition: str | None,
        values: dict[str, Any],
        append: tuple[Transition, ...] = (),
        key: dict[str, Any] | None = None,
    ) -> RolloutRecord:
        """One UpdateItem on the newest rollout (``key``, if the caller read it): set ``sets``,
        bump the version, maybe append.

        A None in ``sets`` removes the attribute: the ledger stores None as an absent
        attribute, which keeps items small.

        Raises:
            RolloutNotFound: the service has no rollout.
            _Refused: the item is gone or ``condition`` did not hold.
        """
        assignments = ["#version = #version + :one"]
        values = {**values, ":one": 1}
        for name, value in sets.items():
            if value is not None:
                assignments.append(f"#{name} = :{name}")
                values[f":{name}"] = value
        if append:
            # if_not_exists: an item written by another tool without a history still takes one.
            assignments.append("#history = list_append(if_not_exists(#history, :empty), :transitions)")
            values.update({":empty": [], ":transitions": list(append)})
        removals = [f"#{name}" for name, value in sets.items() if value is None]
        update = "SET " + ", ".join(assignments) + (" REMOVE " + ", ".join(removals) if removals else "")
        guard = "attribute_exists(#rollout_id)" + (f" AND ({condition})" if condition else "")
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=key if key is not None else self._newest_head(service)[0],
                UpdateExpression=update,
                ConditionExpression=guard,
                ExpressionAttributeNames=_names(update, guard),
                ExpressionAttributeValues=_values(values),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if error_code(err) != "ConditionalCheckFailedException":
                raise
            old = err.response.get("Item")
            raise _Refused(_from_item(old) if old else None, _unversioned(old) if old else None) from err
        return _from_item(answer["Attributes"])


def _explain(refused: _Refused, service: str, check: Callable[[RolloutRecord], None]) -> LedgerError:
    """The named error for a refused write: ``check`` raises it from the item as it stood."""
    if refused.record is None:
        return RolloutNotFound(f"the rollout of service {service!r} disappeared during the write")
    check(refused.record)
    if refused.unversioned is not None:
        # Read whole (a rollback's rule reads more than the key), the item took the model's
        # version 0 (or a text "3" its number), and the write conditioned on it could never pass.
        return refused.unversioned
    # DynamoDB evaluated the same rule as ``check``; reaching here means they disagree.
    return LedgerError(f"the ledger refused a write to the rollout of service {service!r} for no known reason")


def _holds(history: tuple[Transition, ...], appended: tuple[Transition, ...]) -> bool:
    """Whether ``history`` holds ``appended``, in order and together.

    A transition is stamped with the instant it was made, so an equal run of them in the
    history is the write that appended them, not another one. They are compared as stored, their
    text ``writable`` (``_values``): one holding a byte that is not UTF-8 differed from its own
    entry read back, and its write, taken for another's, was made again.
    """
    appended = tuple(as_stored(t) for t in appended)
    n = len(appended)
    return any(history[i:i + n] == appended for i in range(len(history) - n, -1, -1))


def _lost_a_race(err: ClientError) -> bool:
    """A transaction cancelled only because the items changed since they were read."""
    if error_code(err) != "TransactionCanceledException":
        return False
    reasons = {reason.get("Code", "None") for reason in err.response.get("CancellationReasons", [])}
    return reasons <= _RACE_REASONS


def _key(record: RolloutRecord) -> dict[str, Any]:
    return _values({"service": record.service, "rollout_id": record.rollout_id})


def _expression(condition: str, values: dict[str, Any]) -> dict[str, Any]:
    """ConditionExpression with exactly the names and values it uses (DynamoDB rejects extras)."""
    expression: dict[str, Any] = {"ConditionExpression": condition, "ExpressionAttributeNames": _names(condition)}
    if values:
        expression["ExpressionAttributeValues"] = _values(values)
    return expression


def _names(*expressions: str) -> dict[str, str]:
    """``#field`` placeholders stand for the attribute ``field``, avoiding reserved words."""
    return {f"#{name}": name for expression in expressions for name in _PLACEHOLDER.findall(expression)}


def _values(values: dict[str, Any]) -> dict[str, Any]:
    """Python (and pydantic) values as DynamoDB attribute values.

    Floats go through Decimal (boto3 refuses floats); None fields of models are left out. Text is
    ``writable``: a lone surrogate (a byte that is not UTF-8, in a name AWS echoed in the refusal
    a rollback records as its failed step) could not be encoded into the request, and the write,
    which the rollback makes after the traffic is back, failed on it.
    """
    jsonable = to_jsonable_python(values, exclude_none=True)
    try:
        text = to_json(jsonable)
    except PydanticSerializationError:
        # A string UTF-8 cannot hold (a lone surrogate) is all to_json refuses of JSON-able values:
        # only then is the record made writable and serialised again. Checking first
        # (``_all_writable``) serialised every write twice, for a case nearly none of them is.
        text = to_json(_writable_text(jsonable))
    plain = json.loads(text, parse_float=Decimal)
    return {name: _serializer.serialize(value) for name, value in plain.items()}


def _all_writable(value: Any) -> bool:
    """Whether every string in JSON-able ``value``, keys too, is already ``writable``: UTF-8 holds
    all of them, as it does in nearly every write. Checked in one pass of the json module's C
    encoder, not by rebuilding the whole record string by string: a record's history grows with
    its rollout, and each write of a long-lived one walked it all in Python."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _writable_text(value: Any) -> Any:
    """JSON-able ``value`` with every string in it, keys too, ``writable``."""
    if isinstance(value, str):
        return writable(value)
    if isinstance(value, dict):
        return {_writable_text(name): _writable_text(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_writable_text(item) for item in value]
    return value


def as_stored(record: M) -> M:
    """``record`` (a RolloutRecord, a Transition) as the ledger stores it: a lone surrogate (a byte
    that is not UTF-8) in any of its text escaped (``_values``); ``record`` itself when it holds none."""
    plain = record.model_dump(mode="json")
    return record if _all_writable(plain) else type(record).model_validate(_writable_text(plain))


def _to_item(record: RolloutRecord) -> dict[str, Any]:
    return _values(record.model_dump(mode="json", exclude_none=True))


def _from_item(item: dict[str, Any]) -> RolloutRecord:
    # pydantic accepts the Decimals TypeDeserializer returns for int and float fields.
    values = {name: _deserializer.deserialize(value) for name, value in item.items()}
    try:
        record = RolloutRecord.model_validate(values)
        if "refused_dropped" not in values and may_have_dropped(record.refused_answers):
            # Written by a rollway that dropped refused answers uncounted, with some kept (any list it
            # kept may have lost some): how many is not known, where 0 (the default) read those kept as
            # every one there was.
            record = record.model_copy(update={"refused_dropped": None})
        elif record.refused_answers and values.get(COUNTED_HEAD) != _head_mark(record.refused_answers[0]):
            # The oldest answer kept is not the one the count was written with: a rollway from before the
            # count dropped some beside this one, uncounted. Or the count was written before the mark
            # was, by a release that may have run beside such a rollway: a count too low either way, and
            # the least there were (``refused_dropped_least``).
            least = max(record.refused_dropped or 0, record.refused_dropped_least or 0)
            record = record.model_copy(update={"refused_dropped": None, "refused_dropped_least": least or None})
    except ValidationError as err:
        # Every command and flow reading the ledger printed pydantic's traceback, naming no item.
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the item"
        raise _malformed(values, f"{err.error_count()} problem(s); first: {where}: {first['msg']}") from None
    # The spec is a string to the record, so a hand edit of it (a typo in its JSON, a field
    # removed) passed the read, and every rollback of the rollout (`rollway abort`, a hook) then
    # failed on it with a bare JSONDecodeError or KeyError: said here, naming the item, as above.
    # What a rollback reads of it is enough; a spec only today's rules refuse is read as before.
    try:
        RolloutSpec.for_rollback(record.spec_json)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise _malformed(values, f"spec_json: {where + ': ' if where else ''}{first['msg']}") from None
    except json.JSONDecodeError as err:
        raise _malformed(values, f"spec_json is not JSON: {err}") from None
    except KeyError as err:
        raise _malformed(values, f"spec_json has no {err}") from None
    except TypeError:
        raise _malformed(values, "spec_json is not a JSON object") from None
    return record


def _unversioned(item: dict[str, Any]) -> MalformedRollout | None:
    """The MalformedRollout naming ``item`` (as DynamoDB holds it) when it has no numeric version;
    None when it has one. An item made by hand, or by a rollway older than ``version``: every write
    is conditioned on the version and bumps it (``_update``), which DynamoDB refuses on an absent
    or non-numeric one, so it is named as unreadable (a bare KeyError, or "refused ... for no known
    reason", named no item before)."""
    if "N" in item.get("version", {}):
        return None
    key = {name: _deserializer.deserialize(item[name]) for name in ("service", "rollout_id") if name in item}
    return _malformed(key, "no numeric version, which every write is conditioned on")


def _malformed(values: dict[str, Any], problem: str) -> MalformedRollout:
    return MalformedRollout(
        f"the rollouts table's item of {values.get('service')!r}, rollout {values.get('rollout_id')!r}, is not one "
        f"rollway can read ({problem}): repair or delete that item in DynamoDB")
