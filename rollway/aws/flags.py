"""Feature flags in DynamoDB, with versioned writes and an audit trail in the same item.

Layout of ``targets.flags_table`` (hash key ``feature``, S): one item per flag with
``enabled`` (BOOL), ``percentage`` (N), ``salt`` (S), ``updated_at`` (N, epoch seconds),
``updated_by`` (S), ``version`` (N) and ``audit``, a list of the flag's last ``audit_cap``
changes (maps of FlagAuditEntry fields, among them ``writer`` and ``rollout``: which code wrote
the change; entries from before they were recorded lack them). Items the seed wrote (no version, no salt) read as
version 0 and are upgraded by their first write. An item rollway cannot use (written by hand:
``enabled`` as the text "false", a percentage of 150 or the text "50") reads as ``MalformedFlag`` naming it, and
a write repairs it, conditional on the item as read.

Why the audit trail lives in the item: a write is one PutItem conditional on the version
read, so the flag and its audit entry change together or not at all, with no transaction,
and a Scan of the table returns flags only (``list`` projects ``audit`` away). Capping the
list keeps the item below DynamoDB's 400 KB limit. A write reads the item (consistent
read) to carry its trail forward; the condition on ``version`` catches any write that lands
between that read and the put. botocore resends a PutItem whose answer was lost; its copy is
refused by that condition, and a refusal whose item holds this write's audit entry is this write
having committed, not a lost race. The trail is also bounded by size: the limits on a change's
reason and actor count characters, and at four bytes a character a hundred long entries would
outgrow the item, so the oldest entries are dropped until the item fits (the new one always does).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from typing import Any, Callable, Iterator, Mapping

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from pydantic_core import to_json

from rollway.aws.errors import answer_lost, aws_message, error_code, lost_answers
from rollway.flags import (
    AUDIT_CAP,
    FlagAuditEntry,
    FlagConflict,
    FlagState,
    FlagStoreUnavailable,
    FlagTableRefused,
    FlagWriteUnanswered,
    MalformedFlag,
    MalformedFlags,
    UnreadableAudit,
    Writer,
    flag_from_item,
    prepare_write,
    validate_actor,
    validate_feature,
)
from rollway.targets import Targets

_FLAG_ATTRIBUTES = ("feature", "enabled", "percentage", "salt", "updated_at", "updated_by", "version", "updatedAt")
# DynamoDB's item limit is 400 KB (409,600 bytes); _item_size is an upper bound of how it
# counts, and the rest is margin.
_ITEM_BUDGET = 400_000
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class DynamoFlagStore:
    """The FlagStore port on a DynamoDB table (``targets.flags_table``).

    Args:
        client: a boto3 DynamoDB client.
        targets: names; only ``flags_table`` is used.
        audit_cap: how many changes each flag keeps in its audit trail.
        refused: what a refusal of the table (no such table, a permission refused) means to a
            person, or None to give DynamoDB's words; raised as ``FlagTableRefused``. The
            commands and the set-flags flow name the table, its region and what to do.
    """

    def __init__(self, client: Any, targets: Targets, *, audit_cap: int = AUDIT_CAP,
                 refused: Callable[[ClientError], str | None] | None = None) -> None:
        if audit_cap < 1:
            raise ValueError(f"audit_cap must be at least 1, got {audit_cap}")
        self._client = client
        self._table = targets.flags_table
        self._refused = refused
        self._audit_cap = audit_cap
        # Writes one attempt of which was sent and lost its answer, with the settings it wrote, by
        # what a task's retry of the write calls ``put`` with again (``_write_key``): a later attempt
        # that fails, even before sending, leaves the flag possibly written all the same. A definite
        # answer to the write forgets it.
        self._unanswered: dict[tuple[Any, ...], tuple[FlagWriteUnanswered, dict[str, Any]]] = {}
        self._projection = {
            "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(_FLAG_ATTRIBUTES))),
            "ExpressionAttributeNames": {f"#a{i}": name for i, name in enumerate(_FLAG_ATTRIBUTES)},
        }

    def get(self, feature: str) -> FlagState | None:
        """The flag, or None.

        Raises:
            MalformedFlag: the item cannot be used (naming the flag and what is wrong).
            FlagStoreUnavailable: the table cannot be read.
        """
        item = self._read(feature, **self._projection)
        return None if item is None else flag_from_item(item)

    def list(self) -> list[FlagState]:
        """Every flag, sorted by feature; audit trails are not read.

        Raises:
            MalformedFlags: some items cannot be used; it holds every flag that can, and one
                MalformedFlag per item that cannot (one bad item hides no other flag).
            FlagStoreUnavailable: the table cannot be read.
        """
        items: list[dict[str, Any]] = []
        with self._errors():
            for page in self._client.get_paginator("scan").paginate(TableName=self._table, **self._projection):
                items.extend(page.get("Items", []))
        flags, failures = [], []
        for item in items:
            try:
                flags.append(flag_from_item(_plain(item)))
            except MalformedFlag as bad:
                failures.append(bad)
        flags.sort(key=lambda f: f.feature)
        if failures:
            raise MalformedFlags(flags, sorted(failures, key=lambda f: f.feature))
        return flags

    def put(
        self, flag: FlagState, *, expected_version: int, actor: str, now: float, reason: str = "",
        writer: Writer = "person", rollout: str | None = None,
    ) -> FlagState:
        """Store ``flag``'s settings if the stored version is ``expected_version`` (0: absent).

        Returns:
            The stored flag: version ``expected_version + 1``, stamped with actor and now.

        A malformed item is overwritten (repaired) like any other, at its version as read
        (0 when that is unreadable); the write is conditional on the stored version attribute
        being still what was read.

        Raises:
            FlagConflict: the version moved (before or during this write); nothing written.
            MissingUserId: blank actor; nothing read or written.
            FlagStoreUnavailable: the table cannot be read or written.
            FlagWriteUnanswered: the PutItem was sent and its answer lost, or an earlier attempt of
                this same write (a task's retry: the same flag, actor, now, reason, writer and
                rollout) was and no answer since settled it; the flag may have been written.
        """
        validate_actor(actor)
        key = _write_key(flag.feature, actor, now, reason, writer, rollout)
        try:
            stored = self._put(flag, expected_version=expected_version, actor=actor, now=now, reason=reason,
                               writer=writer, rollout=rollout)
        except FlagWriteUnanswered as lost:
            self._unanswered[key] = lost, _settings(flag)
            raise
        except FlagConflict:
            self._unanswered.pop(key, None)
            raise
        except FlagStoreUnavailable as failure:
            # The failure itself, or a FlagWriteUnanswered whose cause is the failure's own (a
            # task's retry condition reads it).
            raise self._unanswered_since(key, _settings(flag), failure)
        self._unanswered.pop(key, None)
        return stored

    def unanswered(
        self, failure: FlagStoreUnavailable, feature: str, settings: Mapping[str, Any], *, actor: str, now: float,
        reason: str = "", writer: Writer = "person", rollout: str | None = None,
    ) -> FlagStoreUnavailable:
        """``failure``, met by an attempt of a write (``put``'s arguments, ``settings`` some of the
        flag's), as that write's outcome.

        ``FlagWriteUnanswered`` when an earlier attempt of the same write (a task's retry) was sent
        and lost its answer, and no answer since settled it: the flag may have been written, whatever
        stopped this attempt (the table refusing a connection before anything was sent, say).
        ``failure`` itself otherwise.
        """
        return self._unanswered_since(_write_key(feature, actor, now, reason, writer, rollout), settings, failure)

    def read_back(
        self, flag: FlagState, *, actor: str, now: float, reason: str = "", writer: Writer = "person",
        rollout: str | None = None,
    ) -> bool:
        """Whether ``flag``, as read by an attempt of a write (``put``'s other arguments), is that
        write made: an earlier attempt of it (a task's retry) was sent and lost its answer, and the
        flag holds what it wrote, stamped by it (``actor``, ``now``). Settled then: forgotten.

        Found so, the retry wrote nothing and was reported "unchanged", though the run had changed it.
        """
        key = _write_key(flag.feature, actor, now, reason, writer, rollout)
        lost, wrote = self._unanswered.get(key, (None, {}))
        if lost is None or _settings(flag) != wrote or (flag.updated_by, flag.updated_at) != (actor, now):
            return False
        del self._unanswered[key]
        return True

    def _unanswered_since(
        self, key: tuple[Any, ...], settings: Mapping[str, Any], failure: FlagStoreUnavailable,
    ) -> FlagStoreUnavailable:
        lost, wrote = self._unanswered.get(key, (None, {}))
        # Two changes of one flag in a set-flags run share the rest of the key: their settings differ.
        if lost is None or isinstance(failure, FlagWriteUnanswered) or \
                any(wrote.get(name) != value for name, value in settings.items()):
            return failure
        unanswered = FlagWriteUnanswered(lost.feature, f"{failure}, after an earlier attempt's PutItem on "
                                                       f"{lost.feature!r} was sent and its answer lost")
        unanswered.__cause__ = failure.__cause__
        return unanswered

    def _put(
        self, flag: FlagState, *, expected_version: int, actor: str, now: float, reason: str,
        writer: Writer, rollout: str | None,
    ) -> FlagState:
        raw = self._read(flag.feature, raw=True)
        current: FlagState | MalformedFlag | None = None
        if raw is not None:
            try:
                current = flag_from_item(_plain(raw))
            except MalformedFlag as bad:
                current = bad
        stored, entry = prepare_write(
            current, flag, expected_version=expected_version, actor=actor, now=now, reason=reason,
            writer=writer, rollout=rollout,
        )
        trail = (raw or {}).get("audit", {}).get("L", [])
        item = _attributes(stored.model_dump())
        item["audit"] = {"L": _fitting(item, [*trail, _attributes({"e": entry.model_dump()})["e"]][-self._audit_cap :])}
        found = (raw or {}).get("version")
        if found is None:
            condition = {"ConditionExpression": "attribute_not_exists(#v)"}
        else:
            # The attribute as read (not the number): a malformed version is matched as stored.
            condition = {"ConditionExpression": "#v = :found", "ExpressionAttributeValues": {":found": found}}
        try:
            with self._errors(conflict=(flag.feature, expected_version)), \
                    lost_answers(self._client, "PutItem", "DynamoDB") as lost:
                try:
                    self._client.put_item(
                        TableName=self._table,
                        Item=item,
                        ExpressionAttributeNames={"#v": "version"},
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                        **condition,
                    )
                except (ClientError, BotoCoreError) as err:
                    if (lost or answer_lost(err)) and not _condition_failed(err):
                        raise FlagWriteUnanswered(flag.feature, f"feature flag table {self._table!r}: PutItem on "
                                                  f"{flag.feature!r} sent, and its answer lost ({aws_message(err)})"
                                                  ) from err
                    raise
        except FlagConflict as conflict:
            # botocore resends a PutItem whose answer was lost (a timeout, a 500 after the
            # commit); the copy is refused by this write's own version. Taken for a lost race, a
            # person was told "unchanged" (or exit 3) and a stage left the flag out of its
            # put-back and its ledger entry. The item the refusal returns holds this write's entry.
            if _holds_entry(conflict.__cause__, entry):
                return stored
            raise
        return stored

    def audit(self, feature: str, limit: int | None = None) -> list[FlagAuditEntry]:
        """The flag's recorded changes, newest first (an unknown flag has none).

        Raises:
            UnreadableAudit: some entries cannot be read (written outside rollway); it holds the
                others. One bad entry once made the whole trail unreadable, and with it every
                rollout stage on the flag (rollbacks, which read no trail, still disabled it).
            FlagStoreUnavailable: the table cannot be read.
        """
        item = self._read(feature, ProjectionExpression="#t", ExpressionAttributeNames={"#t": "audit"})
        stored = (item or {}).get("audit", [])
        entries, problems, places = [], [], []
        if not isinstance(stored, list):
            problems.append(f"the trail is {type(stored).__name__}, not a list")
            places.append(0)
            stored = []
        # ``limit`` counts changes, read or not: with the newest unreadable, audit(limit=1) is
        # no entry, never an older one passed off as the newest.
        newest = list(reversed(stored))[:limit] if limit is not None else list(reversed(stored))
        for place, raw in enumerate(newest, start=1):
            try:
                entries.append(FlagAuditEntry.model_validate(raw))
            except ValidationError as err:
                problems.append(f"the {_ordinal(place)} newest: {err.error_count()} problem(s), first: "
                                f"{_field(err)}{err.errors()[0]['msg']}")
                places.append(place)
        if problems:
            raise UnreadableAudit(feature, entries, problems, places)
        return entries

    def _read(self, feature: str, *, raw: bool = False, **projection: Any) -> dict[str, Any] | None:
        validate_feature(feature)
        with self._errors():
            response = self._client.get_item(
                TableName=self._table, Key={"feature": {"S": feature}}, ConsistentRead=True, **projection
            )
        item = response.get("Item")
        if item is None:
            return None
        return item if raw else _plain(item)

    def _errors(self, conflict: tuple[str, int] | None = None) -> "AbstractContextManager[None]":
        return _translated(self._table, conflict, self._refused)


@contextmanager
def _translated(table: str, conflict: tuple[str, int] | None,
                refused: Callable[[ClientError], str | None] | None = None) -> Iterator[None]:
    """Turn botocore errors into the flag errors callers catch by name.

    Args:
        table: the table name, for messages.
        conflict: (feature, expected version) when a failed condition means a lost race.
        refused: what a refusal of the table means to a person (``DynamoFlagStore``), or None.
    """
    try:
        yield
    except ClientError as err:
        if _condition_failed(err) and conflict is not None:
            found = err.response.get("Item", {}).get("version", {}).get("N")
            raise FlagConflict(conflict[0], conflict[1], int(found) if found and found.isdigit() else None) from err
        # Chained to the answer itself: a task's retry condition reads its code (not retried).
        if refused is not None and (said := refused(err)):
            raise FlagTableRefused(said) from err
        # AWS's words one line, escaped and bounded: a flag step's log line and the ledger quote them.
        raise FlagStoreUnavailable(f"feature flag table {table!r}: {aws_message(err)}") from err
    except BotoCoreError as err:
        raise FlagStoreUnavailable(f"feature flag table {table!r} unreachable: {err}") from err


def _write_key(feature: str, actor: str, now: float, reason: str, writer: Writer,
               rollout: str | None) -> tuple[Any, ...]:
    """What tells one write from another across its attempts: a retry repeats all of it, and
    another write of the flag (a rollback's disable, the next stage) differs in its time or reason."""
    return feature, actor, now, reason, writer, rollout


def _settings(flag: FlagState) -> dict[str, Any]:
    return flag.model_dump(include={"enabled", "percentage", "salt"})


def _condition_failed(err: BaseException) -> bool:
    return isinstance(err, ClientError) and error_code(err) == "ConditionalCheckFailedException"


def _holds_entry(refusal: BaseException | None, entry: FlagAuditEntry) -> bool:
    """Whether the item a refused put found (``ALL_OLD``) has ``entry`` in its audit trail: the
    put committed before, and the refusal was of botocore's resent copy."""
    old = refusal.response.get("Item") if isinstance(refusal, ClientError) else None
    for raw in reversed((old or {}).get("audit", {}).get("L", [])):
        try:
            if FlagAuditEntry.model_validate(_deserializer.deserialize(raw)) == entry:
                return True
        except (ValidationError, TypeError, ValueError):
            continue  # an entry rollway cannot read is not this write's
    return False


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _field(err: ValidationError) -> str:
    where = ".".join(str(part) for part in err.errors()[0]["loc"])
    return f"{where}: " if where else ""


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    # pydantic accepts the Decimals TypeDeserializer returns for int and float fields.
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Python values as DynamoDB attribute values; floats go through Decimal, unrounded."""
    plain = json.loads(to_json(values), parse_float=Decimal)
    return {name: _serializer.serialize(value) for name, value in plain.items()}


def _fitting(item: dict[str, Any], trail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest entries of ``trail`` that fit in the item beside its other attributes.

    The newest entry is always kept: a write (a rollback's disable above all) is never refused
    over the length of its history.
    """
    room = _ITEM_BUDGET - _item_size(item) - len("audit") - 3
    sizes = [1 + _value_size(entry) for entry in trail]
    start, total = 0, sum(sizes)
    while total > room and start < len(trail) - 1:
        total -= sizes[start]
        start += 1
    return trail[start:]


def _item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    """An upper bound of an attribute value's size as DynamoDB counts it (UTF-8 bytes for text)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return len(data) + 1  # DynamoDB: about one byte per two digits, plus one
    if kind == "B":
        return len(data)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: member}) for member in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(member) for member in data)
    if kind == "M":
        return 3 + sum(len(name.encode()) + 1 + _value_size(member) for name, member in data.items())
    return 1  # BOOL, NULL
