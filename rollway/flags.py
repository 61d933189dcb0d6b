"""Feature flags: the flag model, consistent bucketing and cached evaluation.

A flag is on for a user when it is enabled and the user's bucket lies under the flag's
percentage. The bucket is a hash of the flag's salt, the feature name and the user id,
reduced to basis points (0..9999), so:

* it is deterministic: the same user gets the same answer on every host, every time;
* it is uniform: each basis point holds 1/10,000 of the users;
* it is monotonic: a user on at p% stays on at every q >= p, because raising the percentage
  only raises the threshold the (unchanged) bucket is compared with. Changing the salt is the
  one way to reshuffle who is in.

An evaluation without a user id follows ``enabled`` alone. A disabled flag is off for
everyone. Percentages have basis-point resolution: finer values are rounded to 0.01%.

``FlagEvaluator`` reads flags through a ``rollway.ports.FlagStore`` and caches each one for a
TTL; ``invalidate`` drops cached flags at once (a read in flight then answers only its own
request). What it answers when the store cannot be read,
or holds an item for the flag that rollway cannot use (``MalformedFlag``: written outside
rollway, say with ``enabled`` as the text "false"), is configured (fail closed, i.e. off, by
default) and logged. An unknown flag evaluates to
off with a warning, as flag clients in production do (a request path should not crash on a
flag that has not been created yet); ``on_unknown="raise"`` raises ``UnknownFlag`` instead.
Writes never guess: setting an unknown flag raises ``UnknownFlag`` (see rollway.flag_binding).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, NoReturn, Sequence

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from rollway.bounds import seconds_said
from rollway.errors_pickle import PicklableError
from rollway.one_line import BIDI

if TYPE_CHECKING:
    from rollway.ports import FlagStore

BASIS_POINTS = 10_000
DEFAULT_SALT = "v1"
AUDIT_CAP = 100
# Audit text limits: with AUDIT_CAP entries of at most these, a flag's item stays well under
# DynamoDB's 400 KB item limit (a pasted incident note would otherwise lock the flag).
MAX_REASON = 1_000
MAX_ACTOR = 200
# A name the run's log can print as typed: some character that is not a space, and no control
# character (nor a line or paragraph separator). A line break in a name wrote a line of its own in
# the run's log, a forged answer beneath the real one, and an escape sequence rewrote a console's
# line. (A trailing line break passes Python's ``$``: it is stripped with the name's spaces.)
# Spaces, then the first character to read: read in one pass, however long the name sent (the
# server checks the pattern whatever the length); "any, then one to read, then any" backtracked.
# Nor a bidirectional-text control (the marks U+061C, U+200E, U+200F, the embeddings and overrides
# U+202A-U+202E, the isolates U+2066-U+2069, as ``rollway.one_line`` escapes them): invisible, one
# reorders the words after it wherever the name is shown raw ("carol<U+202E> tcejer" reads "carol
# reject"). The places rollway shows a name escape them; a name refused as it is typed is shown raw
# nowhere else either. The set ``rollway.one_line`` escapes, so the two cannot drift apart, written
# as ``\uXXXX`` escapes only: the UI reads the pattern with JavaScript's RegExp.
_BIDI_CONTROL = "".join(f"\\u{ord(c):04x}" for c in sorted(BIDI))
_CONTROL = rf"\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI_CONTROL}"
NAME_PATTERN = rf"^[^\S{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
_REFUSED_IN_NAME = re.compile(f"[{_CONTROL}]")
# Matched with fullmatch: ``$`` also matches before a final line break, and "newflag\n" was a
# flag of its own, beside the "newflag" the application evaluates.
_FEATURE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# No ':' in salts or feature names, so "salt:feature:" is an unambiguous hash prefix.
_SALT = re.compile(r"[A-Za-z0-9_.-]{1,64}")

OnUnavailable = Literal["closed", "open", "stale"]
# Who wrote a change, recorded by the code that writes it (never read from its reason): a
# person (the CLI, the set-flags flow, anything else), a rollout's stage or its undo, or a
# rollback's disable. See rollway.flag_binding for what a rollout makes of it.
Writer = Literal["person", "rollout", "rollback"]
OnUnknown = Literal["off", "raise"]

log = logging.getLogger("rollway.flags")


class FlagError(Exception):
    """Base of the feature-flag errors."""


class UnknownFlag(PicklableError, FlagError):
    """No flag of that name exists.

    Attributes:
        features: the names that were not found.
    """

    def __init__(self, *features: str) -> None:
        self.features = features
        names = ", ".join(repr(f) for f in features)
        super().__init__(f"unknown feature flag {names}: create it first (nothing was written)")


class FlagConflict(PicklableError, FlagError):
    """A versioned write lost to a concurrent one.

    Attributes:
        feature: the flag written.
        expected_version: the version the write was conditional on.
        actual_version: the version found, when known.
    """

    def __init__(self, feature: str, expected_version: int, actual_version: int | None) -> None:
        self.feature = feature
        self.expected_version = expected_version
        self.actual_version = actual_version
        found = "a different version" if actual_version is None else f"version {actual_version}"
        super().__init__(
            f"feature flag {feature!r} changed concurrently: expected version {expected_version}, "
            f"found {found}; read it again and retry"
        )


class FlagNotAtVersion(FlagConflict):
    """A change conditional on a version the flag was not at when read; nothing was written.

    Not told as a concurrent change, which nothing shows: `--expected-version 7` on a flag at
    version 1 said "changed concurrently ... found version 1" though nobody had changed it (the 7
    was wrong), and on a flag that does not exist "found version 0". A write refused after its
    read (``FlagConflict`` itself) is the lost race.

    Attributes:
        exists: whether the flag exists (``actual_version`` is 0 when it does not).
        option: how the caller's user gives the expected version (``--expected-version``), or None.
        newest: the flag's newest change, in words (``: its newest change is v2, by ...``), or "".
    """

    def __init__(self, feature: str, expected_version: int, actual_version: int, *, exists: bool = True,
                 option: str | None = None, newest: str = "") -> None:
        super().__init__(feature, expected_version, actual_version)
        self.exists, self.option, self.newest = exists, option, newest
        expected = f"{option} {expected_version}" if option else f"the expected version {expected_version}"
        if not exists:
            create = f"--create creates it with {option} 0 (or none)" if option else "creating it expects version 0"
            said = f"feature flag {feature!r} does not exist, so it is not at {expected}; nothing was written: {create}"
        elif expected_version == 0:
            said = (f"feature flag {feature!r} exists (it is at version {actual_version}), so it is not at {expected}, "
                    "which means absent; nothing was written")
        else:
            said = (f"feature flag {feature!r} is at version {actual_version}, not at {expected}{newest}; nothing was "
                    f"written: `rollway flags get {feature}` shows its version and its latest changes")
        self.args = (said,)

    def named(self, option: str, newest: str = "") -> "FlagNotAtVersion":
        """The same refusal naming the expected version as the caller's input does (``--expected-version``),
        and ``newest``, the flag's newest change in words (who moved it past that version, to what)."""
        return FlagNotAtVersion(self.feature, self.expected_version, self.actual_version, exists=self.exists,
                                option=option, newest=newest)


class InvalidFlagInput(FlagError):
    """A flag name, salt, percentage, user id or actor that cannot be used."""


class InvalidPercentage(PicklableError, InvalidFlagInput):
    """A percentage outside 0..100 (or not a number).

    Attributes:
        value: the value given.
    """

    def __init__(self, value: object) -> None:
        self.value = value
        # "50%" was refused as "outside 0..100", which it is not: the person then tried 50.0%.
        meant = percent_sign_meant(value)
        if meant is not None:
            why = f"is not a number: give {meant} (without the % sign)"
        elif isinstance(value, str) and _number(value) is None:
            why = "is not a number: give a percentage 0..100"
        else:
            why = "is outside 0..100"
        super().__init__(f"percentage {value!r} {why}")


class PercentageTooFine(PicklableError, InvalidFlagInput):
    """A percentage finer than the basis point a flag holds (``validate_change_percentage``).

    Attributes:
        value: the percentage given, as a number.
    """

    def __init__(self, value: float, name: str = "percentage") -> None:
        self.value = value
        stored = round(value, 2)
        below, above = math.floor(value * 100) / 100, math.ceil(value * 100) / 100
        super().__init__(f"{name} {value}: flags are stored in basis points, so the finest step is 0.01 % (it would "
                         f"be stored as {stored:g}%); give {below:g} or {above:g}; nothing was read or changed")

    def named(self, name: str) -> "PercentageTooFine":
        """The same refusal naming the setting as the caller's input does (``--percentage``)."""
        return PercentageTooFine(self.value, name)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def percent_sign_meant(value: object) -> str | None:
    """The number a person meant by a percentage written with its sign (``"50%"`` -> ``"50"``),
    for a message saying to give that instead; None for anything else."""
    if not isinstance(value, str) or not value.strip().endswith("%"):
        return None
    number = value.strip()[:-1].strip()
    parsed = _number(number)
    return number if parsed is not None and 0 <= parsed <= 100 else None


class MissingUserId(InvalidFlagInput):
    """An empty user id (or actor) where one is required."""


class FlagStoreUnavailable(FlagError):
    """The flag store could not be read or written (unreachable, no such table, denied...)."""


class FlagTableRefused(FlagStoreUnavailable):
    """The flags table does not exist, or the credentials may not use it, said as a person reads
    it (the table, its region, what to do): asked again, it is refused again."""


class FlagWriteUnanswered(PicklableError, FlagStoreUnavailable):
    """A flag's write was sent and no answer to it came back (a timeout, a connection dropped
    after sending, an internal error: ``rollway.aws.errors.answer_lost``): it may have been
    written. "Unreachable" alone read as "not written", and a person set the flag again or took
    it as unchanged.

    Attributes:
        feature: the flag written.
    """

    def __init__(self, feature: str, detail: str) -> None:
        self.feature = feature
        super().__init__(f"{detail}; the change to {feature!r} may have been written all the same: check with "
                         f"`rollway flags get {feature}` before setting it again")


class MalformedFlag(PicklableError, FlagStoreUnavailable):
    """A stored flag whose item rollway cannot use (written outside rollway: the console, a script).

    A store error: an evaluation answers it as it answers an unreachable store (off, by
    default), and the flag stays readable for everyone else. A write can repair it: the
    settings it gives replace the unusable ones (see ``rollway.flag_binding.set_flag``).

    Attributes:
        feature: the flag's name as stored.
        problems: one line per unusable attribute.
        fields: the FlagState fields that could be read, for a repair.
        version: the stored version (0 when absent or unreadable); a repair writes the next.
    """

    def __init__(self, feature: str, problems: list[str], fields: dict[str, Any], version: int) -> None:
        self.feature = feature
        self.problems = problems
        self.fields = fields
        self.version = version
        if _FEATURE.fullmatch(feature):
            repair = f"repair it by setting what is unusable (`rollway flags set {feature} ...`); a disable always can"
        else:
            # Every flags command refuses the name (a key added in the console, "new feature"), so the
            # repair above named a command that cannot run, and the list stayed partial.
            repair = ("no flag can have that name, so nothing evaluates it and rollway cannot repair it: delete the "
                      "item in the DynamoDB console, and create the flag with `rollway flags set <a usable name> "
                      "--create`")
        super().__init__(f"feature flag {feature!r} is malformed in the table ({'; '.join(problems)}); {repair}")


class MalformedFlags(PicklableError, FlagStoreUnavailable):
    """A listing found flags it cannot use; every other flag was read.

    Attributes:
        flags: the flags that were read, sorted by feature.
        failures: one MalformedFlag for each flag that was not.
    """

    def __init__(self, flags: list["FlagState"], failures: list[MalformedFlag]) -> None:
        self.flags = flags
        self.failures = failures
        super().__init__("; ".join(str(f) for f in failures))


class UnreadableAudit(PicklableError, FlagStoreUnavailable):
    """A flag's audit trail holds entries rollway cannot read (written outside rollway); every
    other entry was read.

    Reported, not fatal: the flag's settings do not depend on its trail, so a rollout still
    moves the flag and a person still sees the trail, told what was left out.

    Attributes:
        feature: the flag.
        entries: the entries that were read, newest first (the most recent ``limit`` asked for).
        problems: one line per entry that was not, naming its place in the trail.
        places: each problem's place in the trail (1 for the newest change; 0 for the trail as a
            whole), so a reader of the whole trail can tell which of its newest N changes were read.
    """

    def __init__(self, feature: str, entries: list["FlagAuditEntry"], problems: list[str],
                 places: Sequence[int] = ()) -> None:
        self.feature, self.entries, self.problems, self.places = feature, entries, problems, tuple(places)
        count = "1 entry" if len(problems) == 1 else f"{len(problems)} entries"
        super().__init__(f"feature flag {feature!r}: its audit trail holds {count} rollway cannot read, left out "
                         f"({'; '.join(problems)})")


def validate_percentage(value: object) -> float:
    """``value`` as a percentage rounded to basis points.

    Raises:
        InvalidPercentage: not a finite number within 0..100.
    """
    if isinstance(value, bool):
        raise InvalidPercentage(value)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidPercentage(value) from None
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise InvalidPercentage(value)
    return round(number, 2) + 0.0  # + 0.0: -0 is 0 (it was stored, shown and audited as "-0%")


def validate_change_percentage(value: object) -> float:
    """``value`` as a percentage a flag holds exactly, for a change a person asks for.

    Flags are stored in basis points. ``validate_percentage`` rounds to them, as reading a stored
    flag must (it acts at the basis point it holds); a change rounded so was a silent loss:
    0.004 % was stored as 0 %, off for every user, and reported as done. Every write path (the
    CLI, the set-flags flow) builds a ``FlagChange``, whose percentage this is, so each refuses
    it in these words.

    Raises:
        InvalidPercentage: not a finite number within 0..100.
        PercentageTooFine: finer than 0.01 %; nothing is read or changed.
    """
    stored = validate_percentage(value)
    given = float(value)  # type: ignore[arg-type]  # validate_percentage took it as a number
    if abs(stored - given) > 1e-9:
        raise PercentageTooFine(given)
    return stored


def validate_feature(feature: object) -> str:
    """``feature`` if it is a usable flag name.

    Raises:
        InvalidFlagInput: empty, too long, or with characters outside ``A-Za-z0-9_.-``.
    """
    if not isinstance(feature, str) or not _FEATURE.fullmatch(feature):
        raise InvalidFlagInput(
            f"feature flag name {feature!r} must be 1-128 characters of A-Z a-z 0-9 _ . - "
            "starting with a letter or digit"
        )
    return feature


def validate_salt(salt: object) -> str:
    """``salt`` if it is usable.

    Raises:
        InvalidFlagInput: not 1-64 characters of ``A-Za-z0-9_.-``.
    """
    if not isinstance(salt, str) or not _SALT.fullmatch(salt):
        raise InvalidFlagInput(f"salt {salt!r} must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return salt


def encodable(text: str, what: str) -> str:
    """``text`` if it can be written as UTF-8, as every record of it is (a flow run's parameters,
    the ledger, the page, the flags' audit trail, an artifact).

    Raises:
        ValueError: it holds a lone surrogate, naming ``what`` and the character's position (a
            ValueError, so a pydantic validator reports it as the parameter's own error).
    """
    try:
        text.encode()
    except UnicodeEncodeError as err:
        # A byte that is not UTF-8 (a Latin-1 terminal, an error pasted from a binary log) reaches
        # Python as a lone surrogate, which none of those can hold: `rollway finalize --actor` passed
        # its option check, loaded the blocks and failed in Prefect with a bare UnicodeEncodeError.
        raise ValueError(f"{what} is not valid UTF-8 text (character {err.start + 1} cannot be encoded)") from None
    return text


def _require_utf8(text: str, what: str) -> None:
    """Refuse text that cannot be stored or hashed (``encodable``), as a flag error showing the
    text: a command-line byte that is not UTF-8 (a user id copied from a binary log)."""
    try:
        encodable(text, what)
    except ValueError as err:
        shown = repr(text) if len(text) <= 60 else repr(text[:57]) + "..."
        # encodable's words, which begin with ``what``, with the text shown after it.
        raise InvalidFlagInput(f"{what} {shown}{str(err)[len(what):]}") from None


def validate_actor(actor: object) -> str:
    """``actor`` (who makes a change, for the audit trail) if it is not blank.

    Raises:
        MissingUserId: empty or blank.
        InvalidFlagInput: not UTF-8 text, or longer than MAX_ACTOR characters.
    """
    if not isinstance(actor, str) or not actor.strip():
        raise MissingUserId(f"a flag change needs the id of who makes it, got {actor!r}")
    _require_utf8(actor, "the actor")
    if len(actor) > MAX_ACTOR:
        raise InvalidFlagInput(f"the actor is {len(actor)} characters; at most {MAX_ACTOR} are kept in the audit trail")
    return actor


def name_rule(name: str) -> str:
    """What a name ``NAME_PATTERN`` refused must be, and the first character of ``name`` that
    broke the rule, as its code point (``U+202E``): an invisible character, or one a terminal acts
    on, is not to be found by reading the name back."""
    rule = ("a name on one line, with no control characters (a line break, a tab, an escape sequence) and no "
            "bidirectional-text controls")
    found = _REFUSED_IN_NAME.search(name)
    if found is None:  # blank: the callers say so before they try the pattern
        return rule
    kind = ("a bidirectional-text control (it reorders the words after it wherever the name is shown)"
            if found.group() in BIDI else "a control character")
    return f"{rule}; it holds U+{ord(found.group()):04X}, {kind}"


def validate_user_id(user_id: object) -> str | None:
    """``user_id`` if it can be evaluated: None (no user) or a non-empty string of UTF-8 text.

    Raises:
        MissingUserId: the empty string.
        InvalidFlagInput: not a string, or not UTF-8 text (it could not be hashed).
    """
    if user_id is not None:
        if not user_id or not isinstance(user_id, str):
            _require_user(user_id)
        _require_utf8(user_id, "user id")
    return user_id


def validate_expected_version(version: object) -> int | None:
    """``version`` if a flag can be at it: None (any version) or an integer >= 0 (0: absent).

    A negative version would otherwise be read as a concurrent change (``FlagConflict``).

    Raises:
        InvalidFlagInput: negative, or not an integer.
    """
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
        raise InvalidFlagInput(
            f"expected version {version!r} must be a whole number >= 0 (0: the flag does not exist yet)"
        )
    return version


def validate_reason(reason: object) -> str:
    """``reason`` (why a change is made, for the audit trail) if it fits the trail.

    Raises:
        InvalidFlagInput: not a string, not UTF-8 text, or longer than MAX_REASON characters.
    """
    if not isinstance(reason, str):
        raise InvalidFlagInput(f"a reason must be text, got {type(reason).__name__}")
    _require_utf8(reason, "the reason")
    if len(reason) > MAX_REASON:
        raise InvalidFlagInput(
            f"the reason is {len(reason)} characters; at most {MAX_REASON} fit the audit trail "
            "(link to a longer note instead)"
        )
    return reason


# Field types that validate with the named errors, which pydantic lets through unwrapped
# (they are not ValueErrors), so bad input surfaces as itself whichever way a model is built.
FeatureName = Annotated[str, AfterValidator(validate_feature)]
Percentage = Annotated[float, BeforeValidator(validate_percentage)]
ChangePercentage = Annotated[float, BeforeValidator(validate_change_percentage)]
Salt = Annotated[str, AfterValidator(validate_salt)]
Reason = Annotated[str, AfterValidator(validate_reason)]


class FlagState(BaseModel):
    """One feature flag as stored.

    ``version`` counts the writes (0: never written by rollway); every write is conditional
    on it. ``updated_at`` is epoch seconds.
    """

    model_config = ConfigDict(frozen=True)

    feature: FeatureName
    enabled: bool = False
    percentage: Percentage = 0.0
    salt: Salt = DEFAULT_SALT
    updated_at: float = 0.0
    updated_by: str = ""
    version: int = Field(default=0, ge=0)

    @property
    def threshold(self) -> int:
        """Basis points under which a user's bucket is on."""
        return round(self.percentage * 100)

    def settings(self) -> tuple[bool, float, str]:
        """What decides evaluation: (enabled, percentage, salt)."""
        return (self.enabled, self.percentage, self.salt)


class FlagAuditEntry(BaseModel):
    """One change in a flag's audit trail: who, when, why, and the settings before and after.

    ``writer`` and ``rollout`` say which code wrote it, so a rollout knows its own writes
    without reading the free-text ``reason`` (which a person could type to look like a mark).
    Entries written before they were recorded have ``writer`` None.
    """

    model_config = ConfigDict(frozen=True)

    feature: str
    version: int
    at: float
    actor: str
    reason: str = ""
    enabled: bool
    percentage: float
    salt: str
    previous_enabled: bool | None = None
    previous_percentage: float | None = None
    previous_salt: str | None = None
    writer: Writer | None = None
    rollout: str | None = None


def prepare_write(
    current: FlagState | MalformedFlag | None,
    proposed: FlagState,
    *,
    expected_version: int,
    actor: str,
    now: float,
    reason: str = "",
    writer: Writer = "person",
    rollout: str | None = None,
) -> tuple[FlagState, FlagAuditEntry]:
    """The state to store and its audit entry, for a write conditional on ``expected_version``.

    Every FlagStore implementation writes through this, so they agree on versions and audit.

    Args:
        current: the flag as stored now (None: absent; a MalformedFlag: an item being repaired).
        proposed: the settings to store; its version and update stamps are replaced.
        expected_version: the version the caller read (0 for a flag never written).
        actor: who makes the change.
        now: epoch seconds.
        reason: why, for the audit trail.
        writer: which code writes (``person`` unless rollway's binding functions write).
        rollout: the rollout's id: always for ``rollout``, never for ``person``; for ``rollback``,
            the rollout it rolls back when known.

    Raises:
        FlagConflict: the stored version is not ``expected_version``.
        MissingUserId: ``actor`` is blank.
        InvalidFlagInput: ``actor`` or ``reason`` too long for the audit trail, or not UTF-8.
    """
    validate_actor(actor)
    validate_reason(reason)
    # A rollout's write names it; a rollback's may name the rollout it rolls back; a person's never.
    if (writer == "rollout" and not rollout) or (writer == "person" and rollout):
        raise InvalidFlagInput(f"a {writer}'s write gives {'its' if writer == 'rollout' else 'no'} rollout id, "
                               f"got {rollout!r}")
    if rollout:
        # Stored in the audit entry: DynamoDB's store failed building the request on such an id,
        # the fake stored it; both refuse it here, before any write.
        _require_utf8(rollout, "the rollout id")
    found = current.version if current is not None else 0
    if found != expected_version:
        raise FlagConflict(proposed.feature, expected_version, found)
    stored = proposed.model_copy(update={"version": found + 1, "updated_at": now, "updated_by": actor})
    previous = current.fields if isinstance(current, MalformedFlag) else (current.model_dump() if current else {})
    entry = FlagAuditEntry(
        feature=proposed.feature,
        version=stored.version,
        at=now,
        actor=actor,
        reason=reason,
        enabled=stored.enabled,
        percentage=stored.percentage,
        salt=stored.salt,
        previous_enabled=previous.get("enabled"),
        previous_percentage=previous.get("percentage"),
        previous_salt=previous.get("salt"),
        writer=writer,
        rollout=rollout,
    )
    return stored, entry


def flag_from_item(item: dict[str, Any]) -> FlagState:
    """A FlagState from a plain stored record, including the seed's older items.

    The seed wrote ``feature``, ``enabled``, ``percentage`` and an ISO ``updatedAt``, and
    its rollback wrote ``enabled`` alone: missing fields take their defaults, a missing
    percentage means everyone (100), and such an item reads as version 0.

    A value that is present but unusable is never guessed at: ``enabled`` must be a boolean
    (or the number 0 or 1), since ``bool("false")`` would turn a flag on for everyone, and a
    percentage a number, not text that reads as one.

    Raises:
        MalformedFlag: naming the flag and every unusable attribute.
    """
    feature = item.get("feature")
    fields: dict[str, Any] = {}
    problems: list[str] = []
    readers: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("feature", lambda: validate_feature(feature)),
        ("enabled", lambda: _stored_enabled(item.get("enabled", False))),
        ("percentage", lambda: validate_percentage(_stored_number(_a_number(item.get("percentage", 100))))),
        ("salt", lambda: validate_salt(item.get("salt") or DEFAULT_SALT)),
        ("updated_at", lambda: _stored_seconds(item)),
        ("updated_by", lambda: _stored_text(item.get("updated_by") or "")),
        ("version", lambda: _stored_version(item.get("version", 0))),
    )
    for name, read in readers:
        try:
            fields[name] = read()
        except FlagError as err:
            problems.append(str(err))  # these name the setting themselves
        except (TypeError, ValueError, ArithmeticError) as err:
            problems.append(f"{name} {err}")
    if problems:
        raise MalformedFlag(str(feature), problems, fields, fields.get("version", 0))
    return FlagState(**fields)


def _stored_enabled(value: object) -> bool:
    # DynamoDB numbers come back as Decimal; 0 and 1 are what other tools write for booleans.
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{value!r} is not a boolean (true/false, or the number 0 or 1)")


# The attribute types DynamoDB's values come back as (boto3's TypeDeserializer), other than Number;
# a Binary one is named by its class (boto3's, which this module does not import).
_NOT_NUMBERS = ((bool, "a Boolean attribute"), (str, "text (a String attribute)"), (list, "a List attribute"),
                (dict, "a Map attribute"), ((set, frozenset), "a Set attribute"), (type(None), "a Null attribute"))


def _a_number(value: object) -> object:
    """``value``, stored as a Number; any other attribute type is refused naming it.

    A number stored as text (the console's default attribute type is String) is refused, not
    parsed: another reader of the table expecting the Number it should be would find none, and
    the flag would be half on for rollway and something else for the application. A Boolean was
    said to be "outside 0..100", which sent a person looking for a number where there was none.
    """
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value
    kind = next((kind for kinds, kind in _NOT_NUMBERS if isinstance(value, kinds)), f"a {type(value).__name__}")
    shown = type(value)(map(_stored_number, value)) if isinstance(value, (list, set, frozenset)) else value
    raise ValueError(f"{shown!r} is stored as {kind}, not a number: store it as a Number")


def _stored_number(value: object) -> object:
    # A Decimal as a plain number, so a message shows 150, not Decimal('150').
    if not isinstance(value, Decimal) or not value.is_finite():
        return value
    return int(value) if value == value.to_integral_value() else float(value)


def _stored_seconds(item: dict[str, Any]) -> float:
    updated_at = item.get("updated_at")
    if updated_at is None and isinstance(item.get("updatedAt"), str):
        updated_at = _iso_seconds(item["updatedAt"])
    if isinstance(updated_at, bool) or not isinstance(updated_at, (int, float, Decimal, type(None))):
        raise ValueError(f"{updated_at!r} is not epoch seconds")
    return float(updated_at or 0.0)


def _stored_text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


def _stored_version(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value < 0 or value != int(value):
        raise ValueError(f"{value!r} is not a whole number >= 0")
    return int(value)


def _iso_seconds(value: str) -> float:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return 0.0


def _prefix_hasher(salt: str, feature: str) -> "hashlib._Hash":
    # blake2b with an 8-byte digest: the prefix is hashed once per flag and copied per user.
    return hashlib.blake2b(f"{salt}:{feature}:".encode(), digest_size=8)


def bucket(salt: str, feature: str, user_id: str) -> int:
    """The user's basis point (0..9999) for this flag: uniform, and fixed for a given salt."""
    hasher = _prefix_hasher(salt, feature)
    hasher.update(user_id.encode())
    # 2**64 is not a multiple of 10,000; the modulo bias is below 1e-15 per bucket.
    return int.from_bytes(hasher.digest(), "big") % BASIS_POINTS


def _require_user(user_id: object) -> NoReturn:
    """Raise for a user id that is given but unusable (empty, not a string, not UTF-8)."""
    if not isinstance(user_id, str):
        raise InvalidFlagInput(
            f"user id {user_id!r} ({type(user_id).__name__}) must be a string: pass str(user_id)"
        )
    if user_id:
        _require_utf8(user_id, "user id")
    raise MissingUserId(
        f"user id {user_id!r} is empty: pass None to evaluate without a user, or a non-empty id"
    )


# A compiled flag for the hot path: (answer without a user or for everyone when the hasher
# is None, threshold in basis points, prefix hasher or None).
_Compiled = tuple[bool, int, Any]


def _compile(flag: FlagState) -> _Compiled:
    if not flag.enabled:
        return (False, 0, None)
    if flag.threshold >= BASIS_POINTS:
        return (True, BASIS_POINTS, None)
    return (True, flag.threshold, _prefix_hasher(flag.salt, flag.feature))


def evaluate(flag: FlagState, user_id: str | None = None) -> bool:
    """Whether ``flag`` is on for ``user_id`` (None: no user, the flag's ``enabled``).

    Raises:
        MissingUserId: ``user_id`` is the empty string.
        InvalidFlagInput: ``user_id`` is not a string, or not UTF-8 text.
    """
    without_user, threshold, hasher = _compile(flag)
    if user_id is None:
        return without_user
    validate_user_id(user_id)
    if hasher is None:
        return without_user
    return bucket(flag.salt, flag.feature, user_id) < threshold


class FlagEvaluator:
    """``is_enabled(feature, user_id)`` over a FlagStore, with a per-flag TTL cache.

    Args:
        store: where flags are read from (one ``get`` per flag per TTL).
        ttl_seconds: how long a flag read is used before it is read again; while one thread reads
            it again, the others answer the value it replaces, for ``retry_seconds`` at most.
        retry_seconds: after a failed read, how long to answer per ``on_unavailable`` before
            trying the store again (keeps an outage from turning every call into a request).
        clock: monotonic seconds; injected so tests move time without sleeping.
        on_unavailable: the answer while the store cannot be read or holds a malformed item
            for the flag: ``"closed"`` (off, the default), ``"open"`` (on for everyone), or
            ``"stale"`` (the last value read, off if there is none). Each failed read is
            logged as a warning naming the flag.
        on_unknown: ``"off"`` (default: off, with a warning once per TTL) or ``"raise"``
            (``UnknownFlag``).
    """

    def __init__(
        self,
        store: "FlagStore",
        *,
        ttl_seconds: float = 30.0,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_unavailable: OnUnavailable = "closed",
        on_unknown: OnUnknown = "off",
    ) -> None:
        for name, value in (("ttl_seconds", ttl_seconds), ("retry_seconds", retry_seconds)):
            # Not just ``value <= 0``: that is False for NaN, and a NaN (or infinite) TTL would
            # keep a flag cached forever, so a kill switch would never reach this process.
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
        if on_unavailable not in ("closed", "open", "stale"):
            raise ValueError(f"on_unavailable must be 'closed', 'open' or 'stale', got {on_unavailable!r}")
        if on_unknown not in ("off", "raise"):
            raise ValueError(f"on_unknown must be 'off' or 'raise', got {on_unknown!r}")
        self._store = store
        self._ttl = ttl_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._on_unavailable = on_unavailable
        self._on_unknown = on_unknown
        # feature -> (expires, *compiled). A dict of tuples rather than a cachetools TTLCache:
        # failures need their own (shorter) lifetime, "stale" needs values past expiry, and
        # a dict lookup is about four times cheaper on the hot path.
        self._entries: dict[str, tuple[float, bool, int, Any]] = {}
        self._last_good: dict[str, _Compiled] = {}
        self._unknown_until: dict[str, float] = {}
        # feature -> when the read whose answer is cached began. Request threads read an expired
        # flag at once: a slow read answering after one begun later (a rollback's disable between
        # them) must not replace the newer answer, for a whole TTL, with what it read before.
        self._read_at: dict[str, float] = {}
        # feature -> when the read in flight began (``_refresh``).
        self._reading: dict[str, float] = {}
        # Counts the invalidations; feature (None: every flag) -> the count at its last one. A read
        # begun before that answers its own request but is not cached, or the invalidation it began
        # before was undone by it. A count, not the clock: a read begun after it in the same tick
        # (a coarse or a test's clock) is cached.
        self._invalidations = 0
        self._invalidated: dict[str | None, int] = {}
        # Held by invalidate and while a read's answer is checked (against invalidate and a newer read's
        # answer) and cached, in one step: an invalidate, or a newer answer, another thread's, between
        # the check and the store was undone by it. Not
        # taken on the hot path, nor across a read or a log line (a handler may call invalidate).
        self._keeping = threading.Lock()

    def is_enabled(self, feature: str, user_id: str | None = None) -> bool:
        """Whether ``feature`` is on for ``user_id`` (None: no user, the flag's ``enabled``).

        Raises:
            MissingUserId: ``user_id`` is the empty string.
            InvalidFlagInput: ``user_id`` is not a string or not UTF-8 text (whatever the
                flag's percentage, so the mistake shows before a rollout moves the flag), or
                ``feature`` can never be a flag's name.
            UnknownFlag: no such flag, with ``on_unknown="raise"``.
        """
        encoded = b""
        if user_id is not None:
            # Checked before the table is read (bad input reaches no AWS call) and before the
            # percentage is looked at: a user id that cannot be hashed is refused at 5 % as at 100 %.
            if not user_id or not isinstance(user_id, str):
                _require_user(user_id)
            try:
                encoded = user_id.encode()
            except UnicodeEncodeError:
                _require_user(user_id)
        entry = self._entries.get(feature)
        if entry is None or entry[0] <= self._clock():
            entry = self._refresh(feature, entry)
        if user_id is None:
            return entry[1]
        hasher = entry[3]
        if hasher is None:
            return entry[1]
        # Inlined bucket(): this is the hot path.
        hashed = hasher.copy()
        hashed.update(encoded)
        return int.from_bytes(hashed.digest(), "big") % BASIS_POINTS < entry[2]

    def invalidate(self, feature: str | None = None) -> None:
        """Forget one cached flag (or all): the next evaluation reads the store (a read in flight,
        begun before, answers its own request and is not cached)."""
        with self._keeping:
            self._invalidations += 1
            self._invalidated[feature] = self._invalidations
            if feature is None:
                self._entries.clear()
                self._unknown_until.clear()
                self._read_at.clear()
            else:
                self._entries.pop(feature, None)
                self._unknown_until.pop(feature, None)
                self._read_at.pop(feature, None)

    def _refresh(self, feature: str, expired: tuple[float, bool, int, Any] | None = None,
                 ) -> tuple[float, bool, int, Any]:
        # A name that can never be a flag is a mistake in the caller, not an outage: it must
        # not be answered by on_unavailable (fail open would turn it on for everyone).
        validate_feature(feature)
        now = self._clock()
        if self._unknown_until.get(feature, -math.inf) > now:
            raise UnknownFlag(feature)
        if expired is not None and self._reading.get(feature, -math.inf) > now - self._retry:
            # Another thread is reading it: its answer, not a read of each request thread, which had
            # every request met in the meantime wait on the store (on botocore's timeouts, retried,
            # with the table slow or out). For retry_seconds at most: a read that hangs must not keep
            # a kill switch from the process.
            return expired
        self._reading[feature] = now
        try:
            return self._read(feature, now, self._invalidations)
        finally:
            if self._reading.get(feature) == now:  # not a later read's, begun after this one gave up waiting
                self._reading.pop(feature, None)

    def _read(self, feature: str, now: float, invalidations: int) -> tuple[float, bool, int, Any]:
        """``feature`` read from the store, cached (``now``: when the read began; ``invalidations``: their
        count then), or what a newer read cached."""
        try:
            flag = self._store.get(feature)
        except UnknownFlag:
            flag = None
        except FlagStoreUnavailable as err:
            return self._unavailable(feature, err, now, invalidations)
        compiled: _Compiled = (False, 0, None) if flag is None else _compile(flag)
        entry = (now + self._ttl, *compiled)
        raising = flag is None and self._on_unknown == "raise"
        # Checked and cached in one step, as another read caches and invalidate clears (the same
        # lock): a newer answer cached between the check and the store was replaced by this older one.
        with self._keeping:
            newer = self._newer(feature, now)
            if newer is None and flag is None:
                # The last value read is now "no such flag" (off): "stale" must not bring a deleted
                # flag's older settings back on during a later outage.
                self._last_good.pop(feature, None)
            # Invalidated while this read was in flight (a kill switch the application was told of):
            # it answers its own request, but cached, read before the change, it undid the
            # invalidation and answered the flag as it was for a whole TTL.
            if newer is None and not self._invalidated_since(feature, invalidations):
                self._read_at[feature] = now
                if raising:
                    self._unknown_until[feature] = now + self._ttl
                else:
                    if flag is not None:
                        self._last_good[feature] = compiled
                    self._entries[feature] = entry
        if newer is not None:
            return newer
        if raising:
            raise UnknownFlag(feature)
        if flag is None:
            log.warning("feature flag %r does not exist; evaluating it as off", feature)
        return entry

    def _invalidated_since(self, feature: str, invalidations: int) -> bool:
        """Whether ``feature`` (or every flag) was invalidated since a read of it began, when the
        invalidations counted ``invalidations``."""
        return max(self._invalidated.get(feature, 0), self._invalidated.get(None, 0)) > invalidations

    def _newer(self, feature: str, began: float) -> tuple[float, bool, int, Any] | None:
        """The cached answer of a read of ``feature`` begun after ``began`` (another thread's), if any:
        it answers, not the read begun at ``began`` (older, or failed)."""
        entry = self._entries.get(feature)
        if entry is not None and self._read_at.get(feature, -math.inf) > began:
            return entry
        return None

    def _unavailable(self, feature: str, err: FlagError, now: float,
                     invalidations: int) -> tuple[float, bool, int, Any]:
        if self._on_unavailable == "stale" and feature in self._last_good:
            compiled, answer = self._last_good[feature], "its last known value"
        elif self._on_unavailable == "open":
            compiled, answer = (True, BASIS_POINTS, None), "on (fail open)"
        else:
            compiled, answer = (False, 0, None), "off (fail closed)"
        entry = (now + self._retry, *compiled)
        # Not cached when the flag was invalidated since the read began, as a read's answer (``_read``);
        # a newer read's answer, cached meanwhile, answers instead.
        with self._keeping:
            newer = self._newer(feature, now)
            keep = newer is None and not self._invalidated_since(feature, invalidations)
            if keep:
                self._entries[feature] = entry
        if newer is not None:
            return newer
        log.warning("feature flag %r could not be read (%s); answering %s %s", feature, err, answer,
                    f"for {seconds_said(self._retry)}" if keep
                    else "to this request (invalidated since the read began)")
        return entry
