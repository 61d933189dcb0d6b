"""Changing flags: one flag at a time, or every flag bound to a rollout's stages.

``set_flag`` is the one write path (commands, tasks and flows all use it). A FlagChange is
validated when it is built, before anything touches the store; ``set_flag`` reads the flag,
writes only if a setting changes, and retries a lost race by reading again (its targets are
absolute, so a retry is safe).

``apply_bindings`` moves the bound flags to a stage's percentage (enabled above 0 %, off at
0 %), and puts back the ones it moved if a later one cannot follow, so the flags never split
between two stages; ``disable_bindings`` turns them off on rollback, every one it can even
when one fails. Both are idempotent and return only what changed, for the flow to record in
the ledger (``flag_transition``).

A person's change wins over the rollouts': a bound flag someone changed after a rollout last
set it (the kill switch, on-call turning it off at 5 %) is left as they set it, with a warning,
and reported among the updates (``FlagUpdate.kept``), by this rollout and by every other rollout
that had already set the flag (another service bound to the same flag): a person who throws a
kill switch is answered by all of them. A rollout that first sets the flag after the person's
change (the next release) takes it over, as does any rollout after a rollback's disable, or once
the person sets the flag back as the rollout left it.

A flag follows one rollout's stages at a time: a new rollout binding a flag another rollout holds
(``holder``: it wrote the flag last and has been neither promoted nor rolled back) is refused
before its first write (``check_bindings(..., starting=True)``, ``FlagHeld``), unless the ledger of
the starting rollout's service records the holder promoted or rolled back (a trail written before
a promotion recorded the end of its hold). A rollout's stage checks it again at its first write of
the flag (``exclusive``), on the read that write is conditional on: two rollouts started together
both passed the start check. A rollback leaves alone a flag another rollout holds that its own
rollout never set, and reports it (``FlagUpdate.held``): its page must not read as the feature off.
A hold whose rollout's run died and that no ledger here can end (another service's rollout, a
`canary` run) is freed by a person naming it (``release_hold``: `rollway flags release`).

Which code wrote each change is recorded in its audit entry by the code that writes it
(``FlagAuditEntry.writer`` and ``rollout``), never read from the free-text reason: a person's
reason typed as ``rollout stage 5%`` is still a person's change. The reasons keep their marks
(``rollout R stage 25%``, ``rollout R undone: ...``, ``rollway rollback: ...``) for people, and
entries an earlier release wrote (no ``writer``) are still read by them.

A stage that finds a flag already at its settings claims it (one write that changes no setting)
unless this rollout wrote the flag last, so a person's change after it is known to be made under
this rollout even when the rollout never had to move the flag. It does not claim a person's
change it is under (one that holds for it): that claim would end the hold for the other rollouts.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Collection, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from rollway.errors_pickle import PicklableError
from rollway.failure_words import tell
from rollway.flags import (
    DEFAULT_SALT,
    FeatureName,
    FlagAuditEntry,
    FlagConflict,
    FlagNotAtVersion,
    FlagError,
    FlagState,
    FlagStoreUnavailable,
    MAX_REASON,
    InvalidFlagInput,
    ChangePercentage,
    MalformedFlag,
    Reason,
    Salt,
    UnknownFlag,
    UnreadableAudit,
    Writer,
    validate_actor,
    validate_feature,
    validate_percentage,
    validate_reason,
)
from rollway.ledger import Transition
from rollway.one_line import shown
from rollway.phases import RolloutPhase
from rollway.ports import FlagStore, Ledger
from rollway.spec import FlagBinding

log = logging.getLogger("rollway.flags")

_ATTEMPTS = 3
# The marks an earlier release read from its writes' audit reasons, used now only for entries
# it wrote (no ``writer``): ``rollout R stage W%``, ``rollout R undone: ...`` and, before the
# ids, ``rollout stage W%`` (this rollout's when W is not above its stage: a rollout under way
# across the upgrade keeps a kill switch thrown before it). A bare ``undone: ...`` is a person's.
_OWN = re.compile(r"^rollout (?:(?P<rollout>\S+) )?(?:stage (?P<weight>\d{1,3})%(?::|$)|undone: )")
ROLLBACK_MARK = "rollway rollback: "


class FlagsNotDisabled(PicklableError, FlagStoreUnavailable):
    """A rollback could not disable some bound flags; it disabled every other one.

    A store error, so the task that disables them retries (disabling is idempotent).

    Attributes:
        updates: the flags that were disabled.
        failures: (feature, error) for each flag that was not.
    """

    def __init__(self, updates: list["FlagUpdate"], failures: list[tuple[str, FlagError]]) -> None:
        self.updates = updates
        self.failures = failures
        names = "; ".join(f"{feature}: {err}" for feature, err in failures)
        super().__init__(f"could not disable bound feature flag(s) {names}")


class BoundFlagGone(UnknownFlag):
    """A flag bound to a rollout under way is not in the table: deleted since its start check found
    it. A stage does not recreate it: a rollout moves only flags that exist, each read with its audit
    trail (which the delete took with it). Said as the start check's "create it first", it read as
    a flag never made, and named neither the stage nor the way to go on."""

    def __init__(self, *features: str, weight: int | None = None) -> None:
        super().__init__(*features)
        self.weight = weight
        names = ", ".join(repr(f) for f in features)
        stage = f"this rollout's {weight}% stage" if weight is not None else "this rollout"
        recreate = " and ".join(f"`rollway flags set {f} --create --no-enabled`" for f in features)
        self.args = (
            f"bound feature flag {names} is gone from the flags table (deleted since this rollout's start check "
            f"found it, its audit trail with it): {stage} does not recreate it and wrote nothing to it, as a rollout "
            f"moves only flags that exist. Recreate it off ({recreate}) for a rollout to move it again; left deleted, "
            "it serves no one, and a rollback skips it",)


class UnknownBoundFlag(UnknownFlag):
    """Flags a spec binds that the flags table does not hold, found by the check before a rollout's
    first write (``check_bindings``). Said as the library's "create it first", it named neither the
    spec's binding (a typo is the likelier cause) nor how to create one, nor how to see the flags."""

    def __init__(self, *features: str) -> None:
        super().__init__(*features)
        names = ", ".join(repr(f) for f in features)
        create = " and ".join(f"`rollway flags set {f} --create --no-enabled`" for f in features)
        self.args = (
            f"the spec's `flags` bind feature flag {names}, which the flags table does not hold: check the spelling "
            f"(`rollway flags list` lists the flags there are), or create it off ({create}) for the rollout to move "
            "it from its first stage; nothing was changed",)


class RolloutRolledBack(FlagError):
    """A stage of a rollout whose rollback has already disabled its flags: not applied."""


class FlagUpdate(BaseModel):
    """A flag before and after a change (``before`` is None for a flag just created or repaired; for
    one written by an earlier attempt of the change, ``read_back``, it is the flag as that write's
    audit entry says it found it, None when the entry cannot be read)."""

    model_config = ConfigDict(frozen=True)

    feature: str
    before: FlagState | None = None
    after: FlagState
    reason: str = ""
    kept: str | None = Field(
        default=None, description="why a rollout left the flag as a person set it (nothing written)"
    )
    held: str | None = Field(
        default=None, description="why a rollback left the flag to another rollout that holds it (nothing written)"
    )
    malformed: str | None = Field(default=None, description="what was unusable in the item this write repaired")
    read_back: bool = Field(
        default=False, description="written by an earlier attempt of the change, whose answer was lost (read back)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def changed(self) -> bool:
        """Whether a setting changed (False: the flag already had them; nothing written)."""
        return self.before is None or self.before.settings() != self.after.settings()

    def describe(self) -> str:
        """One line for people, e.g. ``use_sqs_architecture: off 0% -> on 25% (v3)``."""
        left = self.kept if self.kept is not None else self.held
        if left is not None:
            return f"{self.feature}: left {_settings(self.after)} (v{self.after.version}): {left}"
        if self.read_back:
            # Not "unchanged": the run changed it, the attempt that did so heard no answer.
            moved = "" if self.before is None else f"{_settings(self.before)} -> "
            return f"{self.feature}: written (its answer was lost; read back): {moved}{_settings(self.after)} " \
                   f"(v{self.after.version})"
        before = "absent" if self.before is None else _settings(self.before)
        if self.malformed is not None:
            before = f"malformed ({self.malformed})"
        if not self.changed:
            return f"{self.feature}: unchanged, {before} (v{self.after.version})"
        return f"{self.feature}: {before} -> {_settings(self.after)} (v{self.after.version})"


def _settings(flag: FlagState) -> str:
    return f"{'on' if flag.enabled else 'off'} {flag.percentage:g}%"


class FlagChange(BaseModel):
    """A requested change to one flag; settings left as None keep their stored values.

    Validated at construction with the named errors (InvalidPercentage, InvalidFlagInput),
    so a bad change fails before any I/O: a percentage finer than a basis point is refused, not
    rounded (``validate_change_percentage``).
    """

    # A key it does not know is refused, not dropped: the set-flags flow's change
    # {"feature": F, "enabled": true, "percentag": 5} enabled F at the percentage it had stored
    # (100 %, say), and one whose only setting was misspelt reported the flag "unchanged".
    model_config = ConfigDict(frozen=True, extra="forbid")

    feature: FeatureName = Field(description="the flag's name")
    enabled: bool | None = Field(default=None, description="true enables, false disables")
    percentage: ChangePercentage | None = Field(
        default=None, description="users on, in percent (0..100, in steps of 0.01: flags hold basis points)")
    salt: Salt | None = Field(default=None, description="a new salt reshuffles which users are on")
    reason: Reason = Field(default="", description="why, for the audit trail (at most 1,000 characters)")
    create: bool = Field(default=False, description="create the flag if it does not exist (off at 0% unless set)")

    @model_validator(mode="after")
    def _sets_something(self) -> "FlagChange":
        # A change of nothing read the flag and reported it "unchanged": a set-flags run whose change
        # named only the flag (its setting left out of the form) succeeded having done nothing.
        if not self.settings() and not self.create:
            raise InvalidFlagInput(f"the change of {self.feature} sets nothing: give its `enabled`, `percentage` or "
                                   "`salt` (or `create` to create it off at 0%)")
        return self

    def settings(self) -> dict[str, object]:
        """The settings this change sets."""
        return self.model_dump(include={"enabled", "percentage", "salt"}, exclude_none=True)


def set_flag(
    store: FlagStore, change: FlagChange, *, actor: str, now: float, expected_version: int | None = None,
    named: Mapping[str, str] | None = None,
) -> FlagUpdate:
    """Apply ``change`` to its flag; settings it leaves out keep their stored values.

    A malformed item (``MalformedFlag``: written outside rollway) is repaired by a change that
    gives every setting it cannot read; a disable always repairs it, since settings that
    cannot be read serve nobody once the flag is off (they are stored as 0 % and the default
    salt).

    Args:
        store: where the flag lives.
        change: the flag and the settings to set.
        actor: who makes the change (recorded in the audit trail).
        now: epoch seconds.
        expected_version: write only if the flag is at this version (0: absent), no retry;
            None reads the current version and retries a lost race.
        named: how the caller's user gives each setting (``enabled``, ``percentage``, ``salt``),
            for the error on a malformed flag; None: the fields of a FlagChange.

    Returns:
        The flag before and after; ``changed`` is False when nothing had to be written.

    Raises:
        MissingUserId: blank actor; nothing read or written.
        UnknownFlag: the flag does not exist and ``change.create`` is False; nothing written.
        FlagConflict: the version is not ``expected_version``, or every retry lost a race.
        InvalidFlagInput: the flag is malformed and ``change`` leaves an unreadable setting as it is.
    """
    # Recorded as a person's change whatever its reason says: only this module's binding
    # functions write as a rollout or a rollback.
    return _set_flag(store, change, actor=actor, now=now, expected_version=expected_version, writer="person",
                     named=named)


def _set_flag(
    store: FlagStore, change: FlagChange, *, actor: str, now: float, expected_version: int | None = None,
    writer: Writer, rollout: str | None = None, named: Mapping[str, str] | None = None,
) -> FlagUpdate:
    """``set_flag``, recording ``writer`` (and ``rollout``) in the audit entry."""
    validate_actor(actor)
    feature, settings = change.feature, change.settings()
    attempts = 1 if expected_version is not None else _ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            current = _stored(store, feature)
        except FlagStoreUnavailable as failure:
            raise _outcome(store, failure, [change], actor=actor, now=now, writer=writer, rollout=rollout)
        if current is None and not change.create:
            raise UnknownFlag(feature)
        version = current.version if current is not None else 0
        if expected_version is not None and version != expected_version:
            # Found so on reading: the version given may be wrong or the flag absent; no race is known.
            raise FlagNotAtVersion(feature, expected_version, version, exists=current is not None)
        if isinstance(current, MalformedFlag):
            desired, before = _repaired(current, change, named), None
        else:
            base = current.model_dump() if current is not None else {"feature": feature}
            desired, before = FlagState.model_validate({**base, **settings}), current
            if current is not None and current.settings() == desired.settings():
                if store.read_back(current, actor=actor, now=now, reason=change.reason, writer=writer,
                                   rollout=rollout):
                    return _read_back(store, current, change.reason, trail=None)
                return FlagUpdate(feature=feature, before=current, after=current, reason=change.reason)
        try:
            after = store.put(desired, expected_version=version, actor=actor, now=now, reason=change.reason,
                              writer=writer, rollout=rollout)
        except FlagConflict as lost:
            if attempt == attempts:
                if attempts > 1:
                    raise _lost_every_race(store, lost, attempts, "change") from lost
                raise
            log.info("feature flag %r changed while being set; reading it again", feature)
            continue
        malformed = "; ".join(current.problems) if isinstance(current, MalformedFlag) else None
        return FlagUpdate(feature=feature, before=before, after=after, reason=change.reason, malformed=malformed)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _lost_every_race(store: FlagStore, lost: FlagConflict, attempts: int, what: str) -> FlagConflict:
    """``lost``, the last of ``attempts`` lost races of one ``what`` ("change", "25% stage"), said as
    such: FlagConflict's own "read it again and retry" told a flow's change, or a rollout's stage,
    to do what it had done on each of its tries, and not that the flag was not written. Of this flag
    only: a flow's changes before it, or a stage's other flags, may have been ("nothing was written"
    read as none of them, beside the flow's summary or the stage's "not all put back"). Names who
    kept changing it (``newest_change``), as `rollway flags set` does."""
    found = "a different version" if lost.actual_version is None else f"version {lost.actual_version}"
    conflict = FlagConflict(lost.feature, lost.expected_version, lost.actual_version)
    conflict.args = (
        f"feature flag {lost.feature!r} changed concurrently: expected version {lost.expected_version}, found {found}"
        f"{newest_change(store, lost.feature)}; "
        f"another write landed between each of this {what}'s {attempts} reads of the flag and its write: it was not "
        f"written; `rollway flags get {lost.feature}` shows the flag as it is now",)
    return conflict


def _outcome(store: FlagStore, failure: BaseException, changes: Sequence[FlagChange], *, actor: str, now: float,
             writer: Writer, rollout: str | None) -> BaseException:
    """``failure``, met before writing one of ``changes`` (read before it is written), as the outcome
    of those writes: the FlagWriteUnanswered of the first of them an earlier attempt (a task's retry)
    sent and lost the answer to, when the table could not be reached since; ``failure`` otherwise.

    Reading first, a retry that found the endpoint refusing connections said "unreachable" alone,
    read as "not written", though the earlier attempt may have written the flag. Callers raise what
    it returns: a FlagWriteUnanswered's cause is the failure's own, which a task's retry condition reads.
    """
    if not isinstance(failure, FlagStoreUnavailable) or isinstance(failure, MalformedFlag):
        return failure  # an item rollway cannot use reads so whatever was written: not an outage
    for change in changes:
        outcome = store.unanswered(failure, change.feature, change.settings(), actor=actor, now=now,
                                   reason=change.reason, writer=writer, rollout=rollout)
        if outcome is not failure:
            return outcome
    return failure


def _stored(store: FlagStore, feature: str) -> FlagState | MalformedFlag | None:
    """The flag as stored; a malformed item as its error, which a write may repair."""
    try:
        return store.get(feature)
    except MalformedFlag as bad:
        return bad


def check_changes(store: FlagStore, changes: Sequence[FlagChange]) -> None:
    """Check ``changes`` against the store before the first of them is written.

    A flag whose item cannot be used (``MalformedFlag``) exists: a change repairs it when it
    gives every unreadable setting, and a disable always does, as ``set_flag`` does for one
    flag. Reading it is not an outage to retry, nor a reason to refuse its kill switch.

    Raises:
        UnknownFlag: flags that do not exist and are not to be created (all named).
        InvalidFlagInput: a change that would leave a malformed flag unreadable.
    """
    missing: list[str] = []
    readable: set[str] = set()
    for change in changes:
        # Each flag is read once: one an earlier change creates exists by the time this one is
        # written, one an earlier change repaired is repaired, and one found missing is named once.
        if change.feature in readable or change.feature in missing:
            continue
        current = _stored(store, change.feature)
        if current is None and not change.create:
            missing.append(change.feature)
            continue
        if isinstance(current, MalformedFlag):
            # Only the flag's first change must repair it: the ones after find it repaired.
            _repaired(current, change, None)
        readable.add(change.feature)
    if missing:
        raise UnknownFlag(*missing)


def _repaired(bad: MalformedFlag, change: FlagChange, named: Mapping[str, str] | None) -> FlagState:
    """The flag ``change`` makes of a malformed item, or InvalidFlagInput naming what it must give
    (each setting as ``named`` says, by default as a FlagChange's field)."""
    fields = {name: bad.fields[name] for name in ("enabled", "percentage", "salt") if name in bad.fields}
    fields.update(change.settings())
    if fields.get("enabled") is False:
        # The kill switch always goes through: off, the unreadable settings serve nobody.
        fields = {"percentage": 0.0, "salt": DEFAULT_SALT, **fields}
    missing = [name for name in ("enabled", "percentage", "salt") if name not in fields]
    if missing:
        # The problems, not str(bad): that ends with the command line's repair (`rollway flags set
        # F ...`), which a person at the set-flags flow's form in the UI cannot run from there.
        raise InvalidFlagInput(
            f"feature flag {bad.feature!r} is malformed in the table ({'; '.join(bad.problems)}); this change "
            f"leaves {', '.join(missing)} unreadable: give "
            f"{' and '.join((named or CHANGE_FIELDS)[name] for name in missing)} too, or disable it "
            "(nothing was written)"
        )
    return FlagState(feature=change.feature, **fields)


# How a FlagChange gives each setting: the set-flags flow's form (a list of changes) and any caller
# of this module. The command line names its own options (rollway.flags_commands). The flow's
# refusal once named only `--enabled or --no-enabled` and `--percentage`, options its form has not.
CHANGE_FIELDS = {"enabled": "the change's `enabled` (true or false)", "percentage": "the change's `percentage`",
                 "salt": "the change's `salt`"}


def apply_bindings(
    store: FlagStore,
    bindings: Sequence[FlagBinding],
    weight: int,
    *,
    actor: str,
    now: float,
    rollout: str,
    reason: str | None = None,
    create_missing: bool = False,
    exclusive: bool = False,
    ledger: Ledger | None = None,
    service: str | None = None,
) -> list[FlagUpdate]:
    """Move every bound flag to its percentage for a stage of ``weight`` percent.

    A flag is enabled at a percentage above 0 and disabled at 0 (a schedule that starts at a
    later stage), so an evaluation without a user follows the schedule too. Every binding is
    checked (and every flag read) before the first write, so an unknown flag or a bad
    percentage writes nothing. A flag someone else changed after the rollout last set it is
    left as they set it (``FlagUpdate.kept``, with a warning): see the module's docstring.

    Args:
        store: where the flags live.
        bindings: the spec's flag bindings.
        weight: the canary's traffic weight at this stage, 0..100.
        actor: who moves the rollout.
        now: epoch seconds.
        rollout: the rollout's id (the ledger's, or the run's), in the marks of its writes: a
            flag someone changed since this rollout last wrote it is left alone.
        reason: for the audit trail, after the stage's mark ``"rollout <rollout> stage <weight>%"``.
        create_missing: create bound flags that do not exist instead of raising.
        exclusive: the rollout's own stages (not a test's or a tool's write): a flag this rollout
            has not written yet is refused when another rollout holds it, as the start check
            refuses it, with ``ledger`` and ``service`` read as it reads them (``_first_write``).

    Returns:
        The flags that changed and the flags left as a person set them (none when the stage
        was already applied).

    Raises:
        UnknownFlag: bound flags that do not exist (all named), unless ``create_missing``.
        InvalidFlagInput: a weight outside 0..100 or a blank actor.
        MalformedFlag: a bound flag's item cannot be used; nothing written.
        FlagHeld: ``exclusive``, and another rollout holds a flag this one has not written yet (it
            wrote it after this one's start check); the flags this stage moved are put back.
        FlagWriteUnanswered: a flag's write was sent and its answer lost, in this attempt or in
            an earlier one of this stage (a task's retry) when this one cannot reach the table: the
            flag may have moved.
    """
    validate_actor(actor)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise InvalidFlagInput(f"stage weight {weight!r} must be an integer within 0..100")
    check_rollout_id(rollout)
    targets = [(b.feature, validate_percentage(b.percentage_at(weight))) for b in bindings]
    # The stage's mark leads, so it survives _fit_reason and the rollout knows its own writes.
    why = _fit_reason(f"rollout {rollout} stage {weight}%" + (f": {reason}" if reason else ""))
    changes = [FlagChange(feature=feature, enabled=pct > 0, percentage=pct, reason=why, create=create_missing)
               for feature, pct in targets]
    # Read before written: a task's retry of the stage that cannot reach the table says whether
    # an earlier attempt's write, its answer lost, may have moved a flag (``_outcome``).
    if not create_missing:
        try:
            check_bindings(store, bindings)
        except FlagStoreUnavailable as failure:
            raise _outcome(store, failure, changes, actor=actor, now=now, writer="rollout", rollout=rollout)
        except UnknownFlag as unknown:
            if not exclusive:
                raise
            # The rollout's own stage: its start check found every bound flag, so a missing one was deleted since.
            raise BoundFlagGone(*unknown.features, weight=weight) from None
    updates: list[FlagUpdate] = []
    for change in changes:
        try:
            updates.append(_follow(store, change, rollout, weight, actor=actor, now=now,
                                   hold=(ledger, service) if exclusive else None))
        except Exception as err:  # noqa: BLE001 - whatever stopped it, the flags already moved go back
            failed = _outcome(store, err, [change], actor=actor, now=now, writer="rollout", rollout=rollout)
            _put_back([u for u in updates if u.changed], store, actor=actor, now=now, rollout=rollout,
                      why=f"{change.feature} could not follow to {weight}% ({failed})", failed=failed)
            raise failed
    return [u for u in updates if u.changed or u.kept is not None]


def check_rollout_id(rollout: object) -> str:
    """``rollout`` if it can be a rollout's id in a flag's trail, else InvalidFlagInput naming it.

    No control character either (rollway's ids have none): an escape sequence is no space, so
    `rollway flags release --rollout` took one for an id, read the ledger and the table for it, and
    wrote it to the terminal in its warning."""
    if not isinstance(rollout, str) or not re.fullmatch(r"[^\s:\x00-\x1f\x7f-\x9f]{1,100}", rollout):
        raise InvalidFlagInput(f"rollout id {rollout!r} must be 1..100 characters without spaces, control "
                               "characters or ':'")
    return rollout


def _follow(store: FlagStore, change: FlagChange, rollout: str, weight: int, *, actor: str, now: float,
            hold: tuple[Ledger | None, str | None] | None = None) -> FlagUpdate:
    """Set one bound flag for the stage, unless a person changed it under this rollout.

    The write is conditional on the version the audit trail was read at, so a person's
    change landing between the check and the write is seen on the next attempt. ``hold``: the
    ledger and service the start check read, for ``_first_write``.
    """
    for attempt in range(1, _ATTEMPTS + 1):
        current = store.get(change.feature)
        if current is None:
            if hold is not None and not change.create:
                raise BoundFlagGone(change.feature, weight=weight)  # deleted since apply_bindings' check read it
            return _set_flag(store, change, actor=actor, now=now, writer="rollout", rollout=rollout)  # created
        trail = _trail(store, change.feature)
        ended = _rolled_back(trail, rollout)
        if ended is not None:
            # The run's stage landed after its rollback (`rollway abort` from another process while
            # the run shifted): writing it turned the flag back on with the traffic on stable.
            # Or a person freed its hold (`rollway flags release`), taking its run for dead: said so.
            what = "had its hold on it freed" if _is_release(ended) else "was rolled back"
            raise RolloutRolledBack(
                f"feature flag {change.feature!r}: rollout {rollout} {what} (v{ended.version}, by "
                f"{ended.actor}) after it last set the flag: its stage {weight}% does not turn it back on")
        if hold is not None:
            _first_write(trail, change.feature, rollout, weight, *hold)
        try:
            held = _changed_since_rollout(trail, current, rollout, weight)
            if current.settings() == (change.enabled, change.percentage, current.salt):
                if held is not None:
                    # A person's change this rollout is under, which the stage happens to match:
                    # no claim, which would read as the newest rollout write and end the hold for
                    # the other rollouts riding the flag (their next stage would undo the person).
                    # At the last stage the end of this rollout's hold is written, which they read past.
                    after = _released(store, current, trail, change, rollout, weight, actor=actor, now=now)
                    return FlagUpdate(feature=change.feature, before=current, after=after, reason=change.reason)
                return _claimed(store, current, trail, change, rollout, actor=actor, now=now, last=weight == 100)
            if held is not None:
                after = _released(store, current, trail, change, rollout, weight, actor=actor, now=now)
                return _left_alone(after, *held, change, rollout, last=weight == 100)
            return _set_flag(store, change, actor=actor, now=now, expected_version=current.version,
                             writer="rollout", rollout=rollout)
        except FlagConflict as lost:
            if attempt == _ATTEMPTS:
                raise _lost_every_race(store, lost, _ATTEMPTS, f"{weight}% stage") from lost
            log.info("feature flag %r changed while the stage was applied; reading it again", change.feature)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _first_write(trail: Sequence[FlagAuditEntry], feature: str, rollout: str, weight: int, ledger: Ledger | None,
                 service: str | None) -> None:
    """Refuse a flag another rollout holds, when ``rollout`` has not written it yet (its first write).

    The start check reads the flags minutes before the first stage writes them: two rollouts of two
    services bound to one flag, started together, both found it free and both moved it, each to its
    own stage, users going on and off with every stage of either. Checked here on the read the
    write is conditional on (the version ``trail`` was read at), a write of the other rollout landing
    after it refuses this one's and is found on reading again. A hold the start check reads past
    (its rollout recorded ended in ``service``'s ledger) is read past here too.

    Raises:
        FlagHeld: naming the holder; FlagHoldUnknown: whether it ended cannot be read.
    """
    found = _other_holder(trail, rollout, weight)
    if found is not None:
        _refuse_held([(feature, found)], ledger, service, stage=weight)


def _other_holder(trail: Sequence[FlagAuditEntry], rollout: str, weight: int) -> FlagAuditEntry | None:
    """The holder of the flag of ``trail`` (``holder``) when it is another rollout and ``rollout``,
    applying a stage of ``weight``, has not written the flag since its last rollback; else None."""
    found = holder(trail)
    if found is None or found.rollout == rollout or _wrote_before(trail, rollout, weight):
        return None
    return found


def _released(store: FlagStore, current: FlagState, trail: Sequence[FlagAuditEntry], change: FlagChange,
              rollout: str, weight: int, *, actor: str, now: float) -> FlagState:
    """The flag, with the end of this rollout's hold recorded when ``weight`` is its last stage.

    A person's change the rollout is under leaves the stage without a write, so the newest write
    of the rollout stayed the one before the change (a 5 % stage, under a kill switch): the flag
    read as still held by a promoted rollout, and every later rollout bound to it was refused
    (``FlagHeld``), told to wait for a promotion that had happened. One write at the 100 % stage
    that changes nothing ends it (``holder``); other rollouts read past it (``_promotion``), so the
    person's change still holds for this rollout's resume and for another service's rollout.
    Written once: not again when this rollout's 100 % stage is the newest entry (a resume).
    """
    if weight != 100 or (trail and _writer(trail[0]) == ("rollout", rollout) and _promotion(trail[0])):
        return current
    try:
        return store.put(current, expected_version=current.version, actor=actor, now=now, reason=change.reason,
                         writer="rollout", rollout=rollout)
    except FlagStoreUnavailable as err:
        # The flag is as the person left it, which is the stage's job: its traffic does not go back
        # over a record that only frees the flag (a lost race, FlagConflict, is read again instead).
        log.warning("feature flag %r is left as a person set it, but the end of rollout %s's hold on it could not "
                    "be recorded in its audit trail (%s): it still reads as held by this rollout, and the next "
                    "rollout bound to it will be refused as held", change.feature, rollout, err)
        return current


def _promotion(entry: FlagAuditEntry) -> bool:
    """Whether ``entry`` is a rollout's 100 % stage that changed no setting (``_released``, or a
    claim): the rollout is done with the flag, and a person's change before it still holds."""
    own = _OWN.match(entry.reason)
    return (_writer(entry)[0] == "rollout" and own is not None and own.group("weight") == "100"
            and (entry.previous_enabled, entry.previous_percentage) == (entry.enabled, entry.percentage))


def _trail(store: FlagStore, feature: str, limit: int | None = None) -> list[FlagAuditEntry]:
    """The flag's audit trail, newest first, without the entries rollway cannot read (logged).

    The flag's settings do not depend on them: one such entry (written by hand in the console)
    must not stop every rollout from moving the flag. It is read as if it were not there.
    """
    try:
        return store.audit(feature, limit=limit)
    except UnreadableAudit as partial:
        log.warning("%s; reading the flag's trail without them", partial)
        return partial.entries


def _rolled_back(trail: Sequence[FlagAuditEntry], rollout: str) -> FlagAuditEntry | None:
    """The rollback of ``rollout`` written after its last write of the flag, if there is one."""
    for entry in trail:
        if _writer(entry) == ("rollback", rollout):
            return entry
        if _writer(entry) == ("rollout", rollout):
            return None
    return None


def _claimed(store: FlagStore, current: FlagState, trail: Sequence[FlagAuditEntry], change: FlagChange,
             rollout: str, *, actor: str, now: float, last: bool = False) -> FlagUpdate:
    """A flag already at the stage's settings, recorded as this rollout's (nothing changes).

    Without a write of its own in the trail, a person's later change (the kill switch) would
    read as made before this rollout set the flag, and its next stage would undo it. Written
    once: not when this rollout wrote the flag last (a resume applying the stage again), unless
    ``last`` (the 100 % stage) finds that write an earlier stage's: a schedule at its last setting
    before 100 % (``{25: 100}``) left the 25 % stage the newest write, and the promoted rollout
    held the flag for good (``holder``): another service's rollout binding it was refused.
    """
    own = _OWN.match(trail[0].reason) if trail else None
    promoting = last and (own is None or own.group("weight") != "100")
    if trail and _writer(trail[0]) == ("rollout", rollout) and not promoting:
        if store.read_back(current, actor=actor, now=now, reason=change.reason, writer="rollout", rollout=rollout):
            # This stage's own write, made by an earlier attempt whose answer was lost (the task's
            # retry): a move, from where that write found the flag. Taken for a resume's, the stage
            # recorded no move, and what the flag was before it (its put-back too) was lost.
            return _read_back(store, current, change.reason, trail=trail)
        if _this_attempts(trail[0], current, change, actor=actor, now=now):
            # Moved by an earlier try of this very stage (the task's retry: same actor, same instant),
            # answered, and not put back when a later flag failed. Taken for a resume's, it was left
            # out of the stage's moves: of the ledger, and of the put-back when a flag failed again
            # (it stayed at this stage with the traffic back at the one before).
            return FlagUpdate(feature=change.feature, before=_found_by(trail, current), after=current,
                              reason=change.reason)
        return FlagUpdate(feature=change.feature, before=current, after=current, reason=change.reason)
    after = store.put(current, expected_version=current.version, actor=actor, now=now, reason=change.reason,
                      writer="rollout", rollout=rollout)
    return FlagUpdate(feature=change.feature, before=current, after=after, reason=change.reason)


def _this_attempts(entry: FlagAuditEntry, flag: FlagState, change: FlagChange, *, actor: str, now: float) -> bool:
    """Whether ``entry``, the newest of ``flag``'s trail, is the write of an earlier try of this same
    stage (its retry passes the same actor and instant): a resume applies a stage at another instant."""
    return (entry.version == flag.version and entry.at == now and entry.actor == actor
            and entry.reason == change.reason)


def _read_back(store: FlagStore, flag: FlagState, reason: str,
               trail: Sequence[FlagAuditEntry] | None) -> FlagUpdate:
    """``flag`` as an earlier attempt's write left it, its answer lost and read back now (``FlagStore.
    read_back``), with the flag as that write found it: from the write's own audit entry (in ``trail``,
    newest first, or read now), whose ``previous_*`` fields are the settings it replaced."""
    if trail is None:
        try:
            trail = _trail(store, flag.feature, limit=2)
        except FlagError as err:
            # The write is made and read back: its report goes without the settings it replaced.
            log.warning("feature flag %r: the audit trail of its write read back could not be read: %s",
                        flag.feature, err)
            trail = []
    return FlagUpdate(feature=flag.feature, before=_found_by(trail, flag), after=flag, reason=reason, read_back=True)


def _found_by(trail: Sequence[FlagAuditEntry], flag: FlagState) -> FlagState | None:
    """The flag as the write of its version ``flag.version`` found it, from that write's audit entry in
    ``trail`` (newest first); None when the entry is not there, the write created the flag, or what it
    replaced could not all be read (a malformed item)."""
    entry = next((e for e in trail if e.version == flag.version), None)
    if entry is None or None in (entry.previous_enabled, entry.previous_percentage, entry.previous_salt):
        return None
    older = next((e for e in trail if e.version == flag.version - 1), None)
    return FlagState(feature=flag.feature, enabled=entry.previous_enabled, percentage=entry.previous_percentage,
                     salt=entry.previous_salt, version=flag.version - 1,
                     updated_at=older.at if older else 0.0, updated_by=older.actor if older else "")


def _writer(entry: FlagAuditEntry) -> tuple[Writer, str | None]:
    """Who wrote ``entry``: (``person``, None), (``rollback``, None) or (``rollout``, its id).

    An entry written before the writer was recorded is read by its reason's mark; an earlier
    release's stage mark without an id is a rollout's with the id None.
    """
    if entry.writer is not None:
        return entry.writer, entry.rollout
    if entry.reason.startswith(ROLLBACK_MARK):
        return "rollback", None
    own = _OWN.match(entry.reason)
    if own is None or (own.group("rollout") is None and own.group("weight") is None):
        return "person", None  # "rollout undone: ..." too: that release always wrote its id there
    return "rollout", own.group("rollout")


def _mine(entry: FlagAuditEntry, rollout: str, weight: int) -> bool:
    """Whether rollout ``rollout``, applying a stage of ``weight``, wrote ``entry``."""
    writer, by = _writer(entry)
    if writer != "rollout":
        return False
    if by is None:
        # An earlier release's stage mark without an id: this rollout's unless above the
        # stage (at the same weight, a resume applying it again).
        return int(_OWN.match(entry.reason).group("weight")) <= weight  # type: ignore[union-attr]
    return by == rollout


def _changed_since_rollout(
    trail: Sequence[FlagAuditEntry], current: FlagState, rollout: str, weight: int
) -> tuple[FlagAuditEntry, FlagAuditEntry] | None:
    """The newest change a person made after a rollout last set the flag, with that rollout's
    write, when the person made it under rollout ``rollout``; None when ``rollout`` may set it.

    The newest rollway write decides. A rollback's hands the flag over. A rollout's, followed
    by a person's change the flag still shows, holds it for this rollout when that write is
    this rollout's (a stage or an undo, whatever its weight: a resume re-applies a stage, an
    adopt may go down) or when this rollout had written the flag before it (another service
    bound to the same flag: the person changed it under both); a rollout that had not (the
    next release) takes the flag over. No rollway write in the trail kept: this rollout's
    first stage takes over the flag as people left it.

    Args:
        trail: the flag's audit trail, newest first.
        current: the flag as stored.
        rollout: the rollout applying a stage.
        weight: the stage's weight; only for a stage mark an earlier release wrote without an id.
    """
    person: FlagAuditEntry | None = None
    for at, entry in enumerate(trail):
        writer, _ = _writer(entry)
        if writer == "person":
            person = person or entry
            continue
        if _others_rollback(entry, rollout) or _promotion(entry):
            continue
        if writer == "rollback" or person is None:
            return None  # a rollback ended every hold, or a rollout wrote last: this one may set it
        if (current.enabled, current.percentage) == (entry.enabled, entry.percentage):
            # Set back as that rollout left it: handed back. The salt is not compared: a rollout
            # never sets one, so a person's reshuffle is no hold, and after one the flag could not
            # be set back as the hold's message says (`rollway flags set` gives no salt).
            return None
        if _mine(entry, rollout, weight) or _wrote_before(trail[at + 1:], rollout, weight):
            return person, entry
        return None  # another rollout's write, and this one had not set the flag yet: it takes it over
    return None


def _others_rollback(entry: FlagAuditEntry, rollout: str) -> bool:
    """Whether ``entry`` is the rollback of another, named rollout: it ends that rollout's hold, not
    this one's (two services bound to one flag: a person's 0 % stays off for the one still going).
    A rollback that names no rollout (an earlier release's, the `rollback` flow's blind one)
    ends every hold, as before."""
    writer, by = _writer(entry)
    return writer == "rollback" and by is not None and by != rollout


def _wrote_before(older: Sequence[FlagAuditEntry], rollout: str, weight: int) -> bool:
    """Whether ``rollout`` wrote one of ``older`` (newest first) since the last rollback."""
    for entry in older:
        if _writer(entry)[0] == "rollback" and not _others_rollback(entry, rollout):
            return False
        if _mine(entry, rollout, weight):
            return True
    return False


def _left_alone(current: FlagState, person: FlagAuditEntry, left: FlagAuditEntry, change: FlagChange,
                rollout: str, *, last: bool = False) -> FlagUpdate:
    why = f": {person.reason}" if person.reason else ""
    by = _writer(left)[1]
    whose = f"rollout {by}" if by not in (None, rollout) else "the rollout"
    # At the last stage, setting the flag back hands it to no one: this rollout moves it no more.
    then = ("this rollout ends here with it, and the next rollout bound to it sets it from its first stage" if last
            else f"setting it back to {'on' if left.enabled else 'off'} {left.percentage:g}% hands it back to the "
                 "rollouts")
    kept = (
        f"{person.actor} changed it after {whose} last set it (v{person.version}{why}), so this stage "
        f"does not set it {_settings_of(change)}; {then}"
    )
    log.warning("feature flag %r left %s as a person set it: %s", change.feature, _settings(current), kept)
    return FlagUpdate(feature=change.feature, before=current, after=current, reason=change.reason, kept=kept)


def _settings_of(change: FlagChange) -> str:
    return f"{'on' if change.enabled else 'off'} {change.percentage:g}%"


def _changed_by(store: FlagStore, feature: str) -> str:
    """Who last changed ``feature``, as its item records them; "someone else" when it does not say
    (or cannot be read now): the put-back's "someone else" sent people to the trail to find out."""
    try:
        current = store.get(feature)
    except FlagError:
        current = None
    return one_line(current.updated_by) if current is not None and current.updated_by else "someone else"


def _put_back(updates: Sequence[FlagUpdate], store: FlagStore, *, actor: str, now: float, rollout: str, why: str,
              failed: Exception) -> None:
    """Return flags moved for a stage to their settings before it (newest first).

    Best effort: ``failed`` is raised by the caller either way; a flag that cannot be put
    back is named in its message, for the person who reads the error. A note on it (``add_note``)
    showed in a traceback only: the run's failure, the rollback's page and the ledger carry the
    message, which then read as if every flag had gone back. Each put-back is conditional on
    the version this stage wrote: a flag changed since (a person's kill switch, thrown between
    the stage's write and this) keeps that person's setting.
    """
    trouble: list[str] = []
    for update in reversed(updates):
        before = update.before
        change = FlagChange(
            feature=update.feature,
            enabled=before.enabled if before else False,
            percentage=before.percentage if before else None,
            salt=before.salt if before else None,
            reason=_fit_reason(f"rollout {rollout} undone: {why}"),
        )
        try:
            _set_flag(store, change, actor=actor, now=now, writer="rollout", rollout=rollout,
                      expected_version=update.after.version)
        except FlagConflict as err:
            log.warning("feature flag %r changed since this stage set it: left as it is now (%s)", update.feature, err)
            trouble.append(f"feature flag {update.feature!r} was changed by {_changed_by(store, update.feature)} "
                           f"after this stage set it to {_settings(update.after)}: left as they set it")
        except FlagError as err:
            log.error("feature flag %r could not be put back: %s", update.feature, err)
            trouble.append(f"feature flag {update.feature!r} was left at {_settings(update.after)}: {err}")
    if trouble:
        tell(failed, f"the flags this stage moved were not all put back: {'; '.join(trouble)}")


class FlagHeld(PicklableError, FlagError):
    """A rollout about to start binds flags another rollout's stages are moving.

    A flag follows one rollout's stages at a time: two rollouts (two services bound to one
    flag) each set it to their own stage, so it went back and forth between them, and a user on
    at one's 50 % was off again at the other's 5 %.

    Attributes:
        holders: (feature, the holding rollout's newest write) per held flag.
        ledger_of: the service whose ledger the start check read for the holders, or None (not read).
        recorded: the holding rollouts that ledger records (open ones: it records every ended one read past).
    """

    def __init__(self, holders: list[tuple[str, FlagAuditEntry]], ledger_of: str | None = None,
                 recorded: Collection[str] = (), stage: int | None = None) -> None:
        self.holders = holders
        self.ledger_of = ledger_of
        self.recorded = frozenset(recorded)
        self.stage = stage
        held = "; ".join(
            f"{feature!r} follows rollout {entry.rollout} ({_stage_of(entry)}, set by {entry.actor} at "
            f"{iso_utc(entry.at)})" for feature, entry in holders)
        # At a stage (``_first_write``): the other rollout started with this one and wrote first.
        when = ("(nothing was changed)" if stage is None else
                f"(that rollout wrote it after this rollout's start check: this stage moved none of them to "
                f"{stage}%)")
        again = "" if stage is None else " again"
        super().__init__(
            f"bound feature flag(s) held by another rollout: {held}. A flag follows one rollout's stages at a time: "
            f"bind another flag, or start this rollout{again} once that one is promoted (its 100% stage) or rolled "
            f"back {when}. " + _how_to_free(holders, ledger_of, self.recorded)
        )


CANARY_RUN_ROLLOUT = "canary-"
"""How the id a `canary` flow run marks its flag writes with begins (the ledger never has it)."""


def _how_to_free(holders: list[tuple[str, FlagAuditEntry]], ledger_of: str | None,
                 recorded: Collection[str]) -> str:
    """What frees a hold whose rollout's run ended without rolling it back (killed, say): it lasts
    until that rollout is rolled back, and the refusal said only "once ... rolled back".

    A rollout the ledger of ``ledger_of`` does not record is another service's, and whether it ended
    cannot be read: a flag's audit trail names no service, and the ledger is keyed by service (a
    rollout id names none). One promoted long ago, whose trail was written before rollway recorded
    the end of a hold, was refused as if it were under way, told to wait for that promotion.
    """
    flags: dict[str, list[str]] = {}
    for feature, entry in holders:
        flags.setdefault(str(entry.rollout), []).append(feature)
    ways = []
    for rollout, features in flags.items():
        block = f"<the block of the service rollout {rollout} rolls out>"
        if rollout.startswith(CANARY_RUN_ROLLOUT):
            # A `canary` flow run keeps no ledger: `rollway abort` answers "nothing to abort".
            ways.append(f"{rollout} is a `canary` flow run, which the ledger does not record: run the `rollback` "
                        f"flow with the targets block of the service it ran on and bindings {', '.join(features)}")
        elif ledger_of is not None and rollout not in recorded:
            ways.append(
                f"the ledger of {ledger_of} does not record rollout {rollout}, so it is another service's, and whether "
                "it ended cannot be read from here (a flag's audit trail names no service, and the ledger finds a "
                f"rollout only under its service; `rollway flags get {features[0]}` shows who moved the flag, and "
                f"when). `rollway status --targets-block {block}` shows it: while it is open there, run `rollway abort "
                f"--targets-block <that block>` or let it be promoted; if that ledger records rollout {rollout} "
                "promoted or rolled back, the flag's trail was written before rollway recorded the end of a hold, "
                "and the next rollout of that service binding it frees it once promoted")
        else:
            ways.append(f"run `rollway abort --targets-block {block}` (`rollway status` there shows it)")
    # Whether such a run ended is for a person to find out (no ledger here says): one who knows it
    # did frees the flag by name. Not one this service's ledger records open: `rollway abort` puts
    # its traffic back too.
    releases = "; ".join(f"`rollway flags release {feature} --rollout {rollout} --reason '<why>'`"
                         for rollout, features in flags.items() if rollout not in recorded for feature in features)
    free = "" if not releases else (f". Or, once you know its run ended, free the flag as it is, rolling nothing "
                                    f"back: {releases} (written only while that rollout still holds it)")
    return ("If that rollout's run ended without rolling it back, the hold lasts until it is rolled back: "
            + "; ".join(ways) + free)


def _stage_of(entry: FlagAuditEntry) -> str:
    own = _OWN.match(entry.reason)
    weight = own.group("weight") if own else None
    return f"its stage {weight}%" if weight else "its stage being undone"


def iso_utc(at: float) -> str:
    """An epoch instant as ISO 8601 UTC to the second, as the flag commands print times."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def when_said(epoch: float) -> str:
    """``iso_utc``, or "-" for a time never recorded (0)."""
    if not epoch:
        return "-"
    return iso_utc(epoch)


def one_line(text: str) -> str:
    """``text`` (a reason or actor, as typed) on one line, its line breaks and other control
    characters escaped (``\\n``, ``\\x1b``): printed as they were, a reason's second line read as
    another change in the trail, by whoever it named, and a carriage return or an escape
    sequence could overwrite who made a change on a terminal. ``--json`` keeps the text as written."""
    return shown(text, keep="")


def settings_found(entry: FlagAuditEntry) -> str:
    """The settings a change found: none at all for a creation; some unreadable for the repair of
    a malformed item (its entry keeps only what could be read, so no percentage to format)."""
    previous = (entry.previous_enabled, entry.previous_percentage, entry.previous_salt)
    if previous == (None, None, None):
        return "created"
    if entry.previous_enabled is None or entry.previous_percentage is None:
        return "malformed"
    return f"{'on' if entry.previous_enabled else 'off'} {entry.previous_percentage:g}%"


def newest_change(store: FlagStore, feature: str) -> str:
    """The flag's newest change as a refusal's words (``: its newest change is v2, by bob at T: on 25% ->
    on 50% (why)``), read now; "" when its trail cannot be read or holds none. Said by every refusal
    of a write that lost its race, the CLI's and the flows' alike: who kept changing the flag."""
    try:
        newest = store.audit(feature, limit=1)
    except UnreadableAudit as partial:
        newest = partial.entries
    except FlagStoreUnavailable:
        newest = []
    if not newest:
        return ""
    entry = newest[0]
    why = f" ({one_line(entry.reason)})" if entry.reason else ""
    return (f": its newest change is v{entry.version}, by {one_line(entry.actor)} at {when_said(entry.at)}: "
            f"{settings_found(entry)} -> {'on' if entry.enabled else 'off'} {entry.percentage:g}%{why}")


def holder(trail: Sequence[FlagAuditEntry], *, ended: Collection[str] = ()) -> FlagAuditEntry | None:
    """The newest write of the rollout whose stages the flag follows, or None when it follows none.

    The rollout that wrote the flag last (a person's change since, say the kill switch, keeps it
    that rollout's) holds it until its 100 % stage or its rollback: a rollback entry naming it
    ends its hold, one naming no rollout ends every hold. Entries of an earlier release without
    the rollout's id hold nothing (no rollout to name).

    Args:
        trail: the flag's audit trail, newest first.
        ended: rollouts whose holds end before the trail's newest entry (a write about to be made).
    """
    done: set[str | None] = set(ended)
    for entry in trail:
        writer, by = _writer(entry)
        if writer == "person":
            continue
        if writer == "rollback":
            if by is None:
                return None
            done.add(by)
            continue
        if by in done:
            continue
        own = _OWN.match(entry.reason)
        if by is None or (own is not None and own.group("weight") == "100"):
            return None  # promoted, or no id to name
        return entry
    return None


def describe_hold(found: FlagAuditEntry) -> str:
    """A hold (``holder``'s answer) for people: whose, since when, and what frees it."""
    # Abort first: while that rollout is open, `rollway abort` on its service puts its traffic back
    # too; freeing the flag alone would leave its canary serving.
    return (f"held by rollout {found.rollout} ({_stage_of(found)}, set by {found.actor} at {iso_utc(found.at)}): a "
            "rollout binding it is refused until that one is promoted or rolled back (`rollway abort --targets-block "
            "<its service's block>` while it is open), or, once its run ended without a rollback, its hold freed "
            f"(`rollway flags release {found.feature} --rollout {found.rollout} --reason '<why>'`)")


def person_change_note(trail: Sequence[FlagAuditEntry], flag: FlagState) -> str | None:
    """What a person's change of ``flag`` means to the rollout whose stages it follows, or None
    when it follows none (``holder``).

    Changed to other settings than that rollout last set, the flag is held: the rollout's next
    stages leave it as it is (``_changed_since_rollout``), until its rollback turns it off or the
    next rollout takes it over. Set back as the rollout left it, it is handed back, and the next
    stage moves it again. `rollway flags set` said neither, so a person dialling a flag down
    could not tell whether the rollout would undo it at its next stage.

    Args:
        trail: the flag's audit trail, newest first, read after the change.
        flag: the flag as stored after the change.
    """
    entry = holder(trail)
    if entry is None:
        return None
    left = f"{'on' if entry.enabled else 'off'} {entry.percentage:g}%"
    where = (f"rollout {entry.rollout} moves {flag.feature} with its traffic stages (it set it {left} at "
             f"{_stage_of(entry)}, {iso_utc(entry.at)})")
    if (flag.enabled, flag.percentage) == (entry.enabled, entry.percentage):
        return f"{where}: the flag is as that rollout left it, so its next stage moves it again"
    back = f"--{'' if entry.enabled else 'no-'}enabled --percentage {entry.percentage:g}"
    return (f"{where}: its next stages leave the flag {_settings(flag)} as you set it, until that rollout is rolled "
            f"back (which turns the flag off) or the next rollout sets it; `rollway flags set {flag.feature} {back}` "
            "hands it back to the rollout")


def check_bindings(store: FlagStore, bindings: Sequence[FlagBinding], *, starting: bool = False,
                   ledger: Ledger | None = None, service: str | None = None) -> None:
    """Read every bound flag; a rollout checks this before its first write.

    Args:
        starting: a new rollout is about to start: also refuse flags another rollout holds.
        ledger, service: where the starting rollout's service records its rollouts: a hold by
            one of them that the ledger records promoted or rolled back has ended (``_still_held``).

    Raises:
        UnknownBoundFlag: naming every bound flag that does not exist (an UnknownFlag).
        FlagHeld: ``starting``, and other rollouts hold bound flags (all named).
        FlagHoldUnknown: ``starting``, and whether a holding rollout has ended cannot be read.
    """
    missing = [b.feature for b in bindings if store.get(b.feature) is None]
    if missing:
        raise UnknownBoundFlag(*missing)
    if starting:
        _refuse_held([(b.feature, entry) for b in bindings if (entry := holder(_trail(store, b.feature))) is not None],
                     ledger, service)


def _refuse_held(held: list[tuple[str, FlagAuditEntry]], ledger: Ledger | None, service: str | None,
                 stage: int | None = None) -> None:
    """Raise ``FlagHeld`` for the holds of ``held`` still held: those whose rollout the ledger of
    ``service`` does not record as ended (``_still_held``), every one when there is no ledger to read.
    ``stage``: refused at a stage's first write (``_first_write``), not at the start check.

    Raises:
        FlagHeld: a hold is still held; FlagHoldUnknown: whether one ended cannot be read.
    """
    read = bool(held) and ledger is not None and service is not None
    recorded: set[str] = set()
    if read:
        held, recorded = _still_held(held, ledger, service)  # type: ignore[arg-type]
    if held:
        raise FlagHeld(held, ledger_of=service if read else None, recorded=recorded, stage=stage)


class FlagHoldUnknown(FlagError):
    """A bound flag reads as held by a rollout whose end the ledger could not tell: a new rollout
    is refused (nothing was changed), never let through on a hold nobody could check."""


_ENDED = {RolloutPhase.PROMOTED: "promoted", RolloutPhase.ROLLED_BACK: "rolled back"}


def _still_held(held: list[tuple[str, FlagAuditEntry]], ledger: Ledger,
                service: str) -> tuple[list[tuple[str, FlagAuditEntry]], set[str]]:
    """The holds of ``held`` whose rollout the ledger of ``service`` does not record as ended, and
    the holding rollouts it records (the refusal tells an open one of this service from another's).

    A trail written before a promotion recorded the end of its hold on a flag a person had
    changed (the kill switch at 5 %: the rollout's later stages left the flag alone, so its
    newest write stayed the 5 % stage's) read as held by that rollout for good, and every later
    rollout bound to the flag was refused, told to wait for a promotion that had happened or to
    abort it. The ledger says the rollout ended: the hold is read past, and the run's log says so.
    The ledger is read by service: a rollout it does not record (another service's, a `canary`
    flow run's) keeps its hold, as its refusal says.

    Raises:
        FlagHoldUnknown: the ledger, or its item of a holding rollout, cannot be read.
    """
    if all(str(entry.rollout).startswith(CANARY_RUN_ROLLOUT) for _, entry in held):
        return held, set()  # no ledger records them: nothing to read
    unreadable: dict[str, str] = {}
    try:
        records = {r.rollout_id: r for r in ledger.history(service, unreadable=unreadable)}
    except Exception as err:  # noqa: BLE001 - whatever kept the ledger from answering, the hold stands unchecked
        raise FlagHoldUnknown(_unchecked(held, service, str(err))) from err
    still = []
    for feature, entry in held:
        rollout = str(entry.rollout)
        if rollout in unreadable:
            raise FlagHoldUnknown(_unchecked([(feature, entry)], service, unreadable[rollout]))
        record = records.get(rollout)
        ended = _ENDED.get(record.phase) if record is not None else None
        if ended is None:
            still.append((feature, entry))
            continue
        log.warning("bound feature flag %r read as held by rollout %s (%s, set by %s at %s), which the ledger of %s "
                    "records %s (%s): that hold ended with it, and this rollout takes the flag over at its first "
                    "stage. The flag's audit trail was written before a rollout whose stages a person's change kept "
                    "from writing the flag recorded the end of its hold", feature, rollout, _stage_of(entry),
                    entry.actor, iso_utc(entry.at), service, ended, record.image)  # type: ignore[union-attr]
    return still, {str(entry.rollout) for _, entry in held if str(entry.rollout) in records}


def _unchecked(held: Sequence[tuple[str, FlagAuditEntry]], service: str, why: str) -> str:
    flags = "; ".join(f"{feature!r} reads as held by rollout {entry.rollout} ({_stage_of(entry)}, set by "
                      f"{entry.actor} at {iso_utc(entry.at)})" for feature, entry in held)
    return (f"bound feature flag(s) {flags}, and whether that rollout has ended could not be read from the ledger of "
            f"{service} ({why}). Nothing was changed: start this rollout again once the ledger can be read")


class DisabledFlags(list):
    """What ``disable_bindings`` returns: its ``FlagUpdate`` list, as before, and ``missing``, the bound
    flags the table does not hold (skipped, nothing disabled). The rollback pages those NOT FOUND;
    finding them by reading each "already off" flag again cost a round trip each to a table that may
    be throttling, after the traffic had moved and before the page."""

    def __init__(self, updates: Sequence["FlagUpdate"] = (), missing: Sequence[str] = ()) -> None:
        super().__init__(updates)
        self.missing = tuple(missing)


def disable_bindings(
    store: FlagStore, bindings: Sequence[FlagBinding], *, actor: str, reason: str, now: float,
    rollout: str | None = None,
) -> DisabledFlags:
    """Disable every bound flag (rollback of ``rollout``, when known). Their percentages are kept.

    Written whoever changed a flag last, and a malformed item is repaired to off, except a flag a
    person turned back on after a rollback had disabled it (the rollback run again): that is left
    on, with a warning, and returned with ``kept`` saying who turned it on and when, for the
    rollback's notice. With ``rollout`` known, only a rollback of that rollout counts; without it
    (a rollback run by hand on a rollout the ledger has closed, or without the ledger), any
    rollback written after the last rollout's write does: no rollout has moved the flag since, so
    it is on because a person turned it on. The
    audit reason carries the rollback's mark (``rollway rollback: <reason>``), which tells
    the next rollout that the one holding the flag has ended. A bound flag that does not
    exist is already off for everyone: it is skipped with a warning, so a rollback never
    fails on it, and named in the result's ``missing``.

    Returns:
        The flags that changed (none when they were already off), the flags left on as a person
        set them (``FlagUpdate.kept``) and those left to another rollout that holds them, which
        ``rollout`` never set (``FlagUpdate.held``); nothing written for either. ``missing``: the
        bound flags the table does not hold.

    Raises:
        FlagsNotDisabled: some flags could not be written; every other one was disabled (its
        ``updates`` a ``DisabledFlags`` too).
    """
    validate_actor(actor)
    change_reason = _fit_reason(ROLLBACK_MARK + reason)
    updates, failures, missing = [], [], []
    for binding in bindings:
        # One read of the flag and its trail for both checks: each read is a round trip to a flag
        # table that may be throttling while the rollback runs (each check read both again).
        current, trail = _read_for_rollback(store, binding.feature, rollout)
        held = _held_by_another(binding.feature, rollout, current, trail) if rollout is not None else None
        if held is not None:
            updates.append(held)
            continue
        kept = _reenabled_after_rollback(binding.feature, rollout, current, trail)
        if kept is not None:
            updates.append(kept)
            continue
        try:
            update = _set_flag(store, FlagChange(feature=binding.feature, enabled=False, reason=change_reason),
                               actor=actor, now=now, writer="rollback", rollout=rollout)
        except UnknownFlag:
            log.warning("bound feature flag %r does not exist; nothing to disable", binding.feature)
            missing.append(binding.feature)
            continue
        except FlagError as err:
            # Keep going: each flag left on is a feature still served from the rolled-back version.
            log.error("bound feature flag %r could not be disabled: %s", binding.feature, err)
            failures.append((binding.feature, err))
            continue
        if update.changed:
            updates.append(update)
        else:
            # The trail read above (if it was) is the flag's still, unless a write landed since (a newer version).
            same = trail if current is not None and update.after.version == current.version else None
            try:
                _end_hold(store, update.after, actor=actor, now=now, reason=change_reason, rollout=rollout,
                          trail=same)
            except FlagError as err:
                # The flag is off: the rollback did its job, and is not failed (nor its flags reported
                # left on) over the record that only frees the flag for the next rollout.
                log.warning("bound feature flag %r is off, but its rollback could not be recorded in its audit "
                            "trail: %s", binding.feature, err)
    if failures:
        raise FlagsNotDisabled(DisabledFlags(updates, missing), failures)
    return DisabledFlags(updates, missing)


LEFT_TO_ANOTHER = " never set it; "
"""What the line of a flag a rollback left to the rollout holding it says (``_held_by_another``),
which the reports tell from a flag a person turned back on after a rollback."""


def _read_for_rollback(store: FlagStore, feature: str,
                       rollout: str | None) -> tuple[FlagState | None, list[FlagAuditEntry] | None]:
    """The flag and its trail, as a rollback's checks (``_held_by_another``, ``_reenabled_after_rollback``)
    read them: the trail only where one of them reads it, a rollout known or the flag on (None: not
    read); an absent flag has none. (None, None) when either cannot be read: the disable reads the
    flag again and reports what fails."""
    try:
        current = store.get(feature)
        if current is None:
            return None, []
        if rollout is None and not current.enabled:
            return current, None
        return current, _trail(store, feature)
    except FlagError:
        return None, None


def _held_by_another(feature: str, rollout: str, current: FlagState | None,
                     trail: Sequence[FlagAuditEntry] | None) -> FlagUpdate | None:
    """The flag left as it is, when another rollout holds ``feature`` and ``rollout`` never wrote
    it (since its last rollback), with ``held`` saying which rollout and stage; else None.

    A rollout refused at its first write of a flag another rollout had moved since its start check
    (``_first_write``) is rolled back, and its rollback turned the flag off under the other rollout's
    stage, for that rollout's users. Left alone with only a logged warning, the rollback's page said
    nothing of the flag, and on-call read the feature as off for everyone. A flag or trail that
    cannot be read disables as before (None): the disable reads the flag again and reports what fails.

    ``current`` and ``trail``: the flag and its trail as read (``_read_for_rollback``; None: unreadable).
    """
    if trail is None:
        return None
    found = _other_holder(trail, rollout, 100)
    if current is None or found is None:
        return None
    held = (f"rollout {found.rollout} holds it ({_stage_of(found)}, set by {found.actor} at {iso_utc(found.at)}) "
            f"and rollout {rollout}{LEFT_TO_ANOTHER}`rollway flags set {feature} --no-enabled` turns it off for that "
            "rollout's users too")
    log.warning("bound feature flag %r left %s: %s", feature, _settings(current), held)
    return FlagUpdate(feature=feature, before=current, after=current, held=held)


def _reenabled_after_rollback(feature: str, rollout: str | None, current: FlagState | None,
                              trail: Sequence[FlagAuditEntry] | None) -> FlagUpdate | None:
    """The flag left on, when a person turned ``feature`` back on after a rollback disabled it.

    Running the rollback again (to finish a step that failed, or from a late hook) turned such a
    flag off a second time, silently undoing on-call's decision after the rollout had ended. The
    rollout's flags went off once; what a person did with them after that is theirs. A rollback
    of ``rollout`` counts; with ``rollout`` None (a blind rollback: run by hand on a rollout the
    ledger has closed, or with no ledger), any rollback does, since the trail then shows no rollout
    moving the flag after it. A release of ``rollout``'s hold (`rollway flags release`, written as
    its rollback) counts too, and is named as such: it may have left the flag on, so no rollback
    "disabled" it. Anything else (a rollout wrote after the rollback, no rollback in the
    trail, a trail that cannot be read) disables as before (None).

    ``current`` and ``trail``: the flag and its trail as read (``_read_for_rollback``; None: unreadable).
    """
    if current is None or trail is None or not current.enabled:
        return None  # absent, off, or unreadable: the disable below reads the flag again and reports what fails
    person: FlagAuditEntry | None = None
    for entry in trail:
        writer, by = _writer(entry)
        if writer == "person":
            person = person or entry
            continue
        if writer != "rollback" or (rollout is not None and by != rollout) or person is None:
            return None
        why = f": {person.reason}" if person.reason else ""
        if by is not None and _is_release(entry):
            # A release frees the hold and may leave the flag on: no rollback ran, nothing was disabled.
            freed = entry.reason.removeprefix(_release_mark(by))
            did = (f"set it to {'on' if person.enabled else 'off'} {person.percentage:g}% after rollout {by}'s hold "
                   f"on it was freed (`rollway flags release`, v{entry.version} by {entry.actor} at "
                   f"{iso_utc(entry.at)}{f': {freed}' if freed else ''})")
        else:
            whose = f"rollout {by}'s rollback" if by is not None else "a rollback"
            did = f"turned it back on after {whose} disabled it"
        kept = (f"{person.actor} {did} (v{person.version} at {iso_utc(person.at)}{why}); `rollway flags set {feature} "
                "--no-enabled` turns it off")
        log.warning("bound feature flag %r left %s: %s", feature, _settings(current), kept)
        return FlagUpdate(feature=feature, before=current, after=current, kept=kept)
    return None


def _end_hold(store: FlagStore, flag: FlagState, *, actor: str, now: float, reason: str, rollout: str | None,
              trail: Sequence[FlagAuditEntry] | None = None) -> None:
    """Record the rollback of a flag that was already off, when the rollback ends a hold.

    Off already (a person's kill switch, a 0 % stage), the disable wrote nothing, so the trail
    still showed the rolled-back rollout holding the flag, and every rollout bound to it was
    refused from then on. One write that changes no setting ends it (rollout None: every hold).
    ``trail``: the flag's trail read at ``flag``'s version (None: read it now).
    """
    found = holder(trail if trail is not None else _trail(store, flag.feature))
    if found is None or (rollout is not None and found.rollout != rollout):
        return
    store.put(flag, expected_version=flag.version, actor=actor, now=now, reason=reason, writer="rollback",
              rollout=rollout)


RELEASE_MARK = "rollway flags release: "
"""How the reason of a release's entry begins (``release_hold``), for people reading the trail."""


class HoldNotNamed(PicklableError, FlagError):
    """``release_hold``: the flag is not held by the rollout named (another rollout holds it, or none
    does); nothing was written.

    Attributes:
        feature: the flag.
        rollout: the rollout named.
        holder: the newest write of the rollout holding the flag, or None when none does.
    """

    def __init__(self, feature: str, rollout: str, found: FlagAuditEntry | None, ended: str | None) -> None:
        self.feature, self.rollout, self.holder = feature, rollout, found
        if found is not None:
            said = (f"feature flag {feature!r} is held by rollout {found.rollout} ({_stage_of(found)}, set by "
                    f"{found.actor} at {iso_utc(found.at)}), not by rollout {rollout}: nothing was changed. "
                    f"`rollway flags release {feature} --rollout {found.rollout} --reason '<why>'` frees that hold, "
                    "once you know that rollout's run ended")
        else:
            said = (f"feature flag {feature!r} follows no rollout's stages: rollout {rollout} "
                    f"{ended or 'has not written it (in the changes its audit trail keeps)'}; nothing to free, and "
                    "nothing was changed")
        super().__init__(said)


class HoldOpenHere(FlagError):
    """``rollway flags release``: the rollout named is this service's and its ledger records it open
    (in progress, paused or rolling back); nothing was written. Its run, a resume or `rollway abort`
    ends its hold, and abort also puts its traffic back: freeing the flag alone left that rollout's
    next stage failing over a hold it no longer had, and its canary's share of the traffic on a flag
    no rollout moved."""


class HoldReleased(BaseModel):
    """What ``release_hold`` did: the flag before and after, the hold it freed, and who holds the
    flag now (an older hold of another rollout that never ended, or None)."""

    model_config = ConfigDict(frozen=True)

    update: FlagUpdate
    freed: FlagAuditEntry
    next_holder: FlagAuditEntry | None = None

    def describe(self) -> str:
        """One line, e.g. ``F: rollout R's hold freed (...); left on 5% (v4)``."""
        u, f = self.update, self.freed
        what = f"{_settings(u.before)} -> {_settings(u.after)}" if u.changed and u.before is not None else \
            f"left {_settings(u.after)}"
        return (f"{u.feature}: rollout {f.rollout}'s hold freed (it held it since {_stage_of(f)}, set by {f.actor} "
                f"at {iso_utc(f.at)}); {what} (v{u.after.version})")

    def note(self) -> str:
        """What follows for the rollouts bound to the flag."""
        feature, rollout, found = self.update.feature, self.freed.rollout, self.next_holder
        if found is not None:
            return (f"rollout {found.rollout} still holds {feature} ({_stage_of(found)}, set by {found.actor} at "
                    f"{iso_utc(found.at)}): `rollway flags release {feature} --rollout {found.rollout} --reason "
                    "'<why>'` frees that hold too, once you know that rollout's run ended")
        return (f"{feature} follows no rollout's stages now: the next rollout bound to it sets it from its first "
                f"stage; were rollout {rollout} still under way, its next stage fails rather than set the flag again")


def _is_release(entry) -> bool:
    """Whether a rollback-written audit entry is a person's release of a hold (no rollback ran)."""
    return entry.reason.startswith(RELEASE_MARK)


def _release_mark(rollout: str) -> str:
    """How a release's audit entry begins: the person's reason follows it."""
    return f"{RELEASE_MARK}rollout {rollout}'s hold freed: "


def release_settings(feature: str, rollout: str, *, actor: str, reason: str, enabled: bool | None = None,
                     percentage: float | None = None) -> dict[str, object]:
    """The settings a release of ``rollout``'s hold on ``feature`` writes (none: the flag's own), its
    input checked before anything is read (``release_hold``; `rollway flags release` before the ledger).

    Raises:
        InvalidFlagInput: a bad flag name, rollout id, actor, reason or setting.
    """
    validate_feature(feature)
    check_rollout_id(rollout)
    validate_actor(actor)
    mark = _release_mark(rollout)
    if not reason.strip():
        raise InvalidFlagInput("a release needs its reason (why the hold is freed), for the flag's audit trail")
    if len(mark) + len(reason) > MAX_REASON:
        raise InvalidFlagInput(f"the reason is {len(reason)} characters; at most {MAX_REASON - len(mark)} fit the "
                               "audit trail beside the release's mark (link to a longer note instead)")
    validate_reason(mark + reason)  # text a DynamoDB item can hold, refused before anything is read
    given = {name: value for name, value in (("enabled", enabled), ("percentage", percentage)) if value is not None}
    return FlagChange(feature=feature, **given).settings() if given else {}


RELEASE_TRIES = _ATTEMPTS
"""How many times ``release_hold`` reads the flag and writes it before a change landing between the
two, every time, refuses the release (``FlagConflict``)."""


def release_hold(store: FlagStore, feature: str, rollout: str, *, actor: str, now: float, reason: str,
                 enabled: bool | None = None, percentage: float | None = None) -> HoldReleased:
    """Free the hold of rollout ``rollout`` on ``feature``, as its rollback would, naming who and why.

    For a hold nothing else frees: another service's rollout, whose end this service's ledger cannot
    tell, or a `canary` run, whose run died without its rollback (``_how_to_free``). One write, as
    the rollback's (``writer`` "rollback" naming the rollout, which ``holder`` reads as the end of
    its hold, and which every rollway reading the trail already knows), that leaves the flag's
    settings as they are unless ``enabled`` or ``percentage`` is given. It is conditional on the
    version the trail was read at, so a write landing since (another rollout taking the flag, a
    person's change) refuses it, and the flag is read again: freed only while the trail still names
    ``rollout`` as the holder. A rollout still under way whose hold is freed does not take the flag
    back: its next stage fails, as after its rollback (``RolloutRolledBack``).

    Raises:
        InvalidFlagInput: a bad flag name, rollout id, actor, reason or setting; nothing read.
        UnknownFlag: no such flag; HoldNotNamed: the flag is held by another rollout, or none.
        FlagConflict: the flag changed between each read and its write, every time.
    """
    settings = release_settings(feature, rollout, actor=actor, reason=reason, enabled=enabled, percentage=percentage)
    mark = _release_mark(rollout)
    for attempt in range(1, RELEASE_TRIES + 1):
        current = store.get(feature)
        if current is None:
            raise UnknownFlag(feature)
        trail = _trail(store, feature)
        found = holder(trail)
        if found is None or found.rollout != rollout:
            raise HoldNotNamed(feature, rollout, found, None if found is not None else _hold_ended(trail, rollout))
        desired = FlagState.model_validate({**current.model_dump(), **settings})
        try:
            # Conditional on current.version: the trail read after it is then the one this write follows.
            after = store.put(desired, expected_version=current.version, actor=actor, now=now, reason=mark + reason,
                              writer="rollback", rollout=rollout)
        except FlagConflict:
            if attempt == RELEASE_TRIES:
                raise  # `rollway flags release` says who kept changing it, and to run it again
            log.info("feature flag %r changed while its hold was freed; reading it again", feature)
            continue
        update = FlagUpdate(feature=feature, before=current, after=after, reason=mark + reason)
        return HoldReleased(update=update, freed=found, next_holder=holder(trail, ended={rollout}))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _hold_ended(trail: Sequence[FlagAuditEntry], rollout: str) -> str | None:
    """What ended ``rollout``'s hold, from ``trail`` (newest first), for the refusal of a release of
    a flag nothing holds; None when the trail has no write of it."""
    later: FlagAuditEntry | None = None  # the first write of another rollout after ``rollout``'s
    for entry in trail:
        writer, by = _writer(entry)
        when = f"(v{entry.version}, by {entry.actor} at {iso_utc(entry.at)})"
        if writer == "rollback" and by is None:
            return f"held it no more after a rollback that named no rollout {when}"
        if writer == "rollback" and by == rollout:
            done = "was freed" if _is_release(entry) else "ended with its rollback"
            return f"held it no more: its hold {done} {when}"
        if writer == "rollout" and by == rollout:
            own = _OWN.match(entry.reason)
            if own is not None and own.group("weight") == "100":
                return f"held it no more: its 100% stage ended its hold {when}"
            if later is None:
                return None  # its write would hold the flag (``holder``): not a case this refusal meets
            # Not promoted: a write of another rollout (not exclusive, or of an earlier release,
            # which named none) took the flag over after this one's; that write ended the hold.
            other = f"rollout {later.rollout}" if later.rollout else "a rollout that named no id"
            return (f"held it no more: {other} set it after it (v{later.version}, by {later.actor} at "
                    f"{iso_utc(later.at)})")
        if writer == "rollout":
            later = entry
    return None


def _fit_reason(reason: str) -> str:
    """A reason rollway writes itself, cut to fit the audit trail: a rollback is never refused over it."""
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def flag_transition(update: FlagUpdate, *, at: float, actor: str) -> Transition:
    """The ledger entry recording a flag change."""
    why = f": {update.reason}" if update.reason else ""
    return Transition(at=at, kind="flag", actor=actor, comment=update.describe() + why)


def unrecorded_moves(store: FlagStore, bindings: Sequence[FlagBinding], weight: int, *, rollout: str,
                     skip: Sequence[str] = ()) -> list[str]:
    """The moves of bound flags that rollout ``rollout`` made for the stage of ``weight`` and that
    are the flag's newest write, as lines for the ledger (like ``FlagUpdate.describe``).

    For a resume that finds a shift on the load balancer the ledger lacks: the run that made it
    moved the flags and died before the one write recording both. The flags' audit trails still
    hold the moves; applying the stage again writes nothing (the flags are at its settings, and
    this rollout wrote them last), so without this the ledger would never say they moved.

    Args:
        skip: features the resume itself reports (moved or left alone), whose entries it records.
    """
    lines = []
    for binding in bindings:
        if binding.feature in skip:
            continue
        newest = _newest_stage_write(store, binding.feature, rollout)
        if newest is None or newest[1] != weight:
            continue
        entry = newest[0]
        before = (entry.previous_enabled, entry.previous_percentage)
        if before == (entry.enabled, entry.percentage):
            continue  # a claim: nothing moved
        was = "absent" if entry.previous_enabled is None else (
            f"{'on' if entry.previous_enabled else 'off'} {entry.previous_percentage:g}%")
        lines.append(f"{entry.feature}: {was} -> {'on' if entry.enabled else 'off'} {entry.percentage:g}% "
                     f"(v{entry.version}), by the run that made the shift (from the flag's audit trail)")
    return lines


def _newest_stage_write(store: FlagStore, feature: str, rollout: str) -> tuple[FlagAuditEntry, int] | None:
    """The flag's newest write with the stage it was for, when that write is a stage of rollout
    ``rollout`` (not its put-back, a person's change or another rollout's); else None."""
    trail = _trail(store, feature, limit=1)
    if not trail:
        return None
    own = _OWN.match(trail[0].reason)
    if _writer(trail[0]) != ("rollout", rollout) or own is None or own.group("weight") is None:
        return None
    return trail[0], int(own.group("weight"))


def stage_writes_elsewhere(store: FlagStore, bindings: Sequence[FlagBinding], weight: int, *,
                           rollout: str) -> list[str]:
    """The bound flags whose newest write is a stage of rollout ``rollout`` other than the one of
    ``weight``: for a resume whose ledger and load balancer agree on ``weight``, flags its dead run
    left at another stage (killed as a stage's shift was undone: the weights went back, the flags'
    put-back never ran). One read of each flag's newest audit entry."""
    return [binding.feature for binding in bindings
            if (newest := _newest_stage_write(store, binding.feature, rollout)) is not None and newest[1] != weight]
