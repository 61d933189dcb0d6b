"""The logic of ``rollway flags list|get|set|eval|release``: store in, text out, an exit code back.

Each command takes a FlagStore and two text streams, so the command line (rollway.cli) only
parses arguments and builds the store. Data (tables, ``--json`` documents) goes to ``out``;
an error is one ``error:`` line naming the offending value, on ``err``, so a caller piping
``--json`` into another program never gets the error mixed into the data. Every command
reads (and writes) before printing, so a failing command prints nothing on ``out``. Exit
codes say what kind of failure it was.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Callable, Sequence, TextIO

from rollway.bounds import as_given
from rollway.flag_binding import (
    RELEASE_TRIES,
    FlagChange,
    FlagUpdate,
    HoldNotNamed,
    HoldOpenHere,
    describe_hold,
    holder,
    newest_change,
    one_line,
    person_change_note,
    release_hold,
    release_settings,
    set_flag,
    settings_found,
    when_said,
)
from rollway.flags import (
    FlagAuditEntry,
    FlagConflict,
    FlagNotAtVersion,
    FlagError,
    FlagState,
    FlagStoreUnavailable,
    FlagTableRefused,
    FlagWriteUnanswered,
    MalformedFlag,
    InvalidFlagInput,
    InvalidPercentage,
    NAME_PATTERN,
    MalformedFlags,
    PercentageTooFine,
    MissingUserId,
    UnknownFlag,
    UnreadableAudit,
    bucket,
    evaluate,
    name_rule,
    validate_actor,
    validate_expected_version,
    validate_feature,
    validate_user_id,
)
from rollway.ports import FlagStore
from rollway.report import markdown_cell

# How `rollway flags set` gives each setting, for the refusal of a change that leaves a malformed
# flag unreadable. It has no option for a salt: the message must not send people looking for one,
# and names where a salt can be given.
_OPTIONS = {"enabled": "--enabled or --no-enabled", "percentage": "--percentage",
            "salt": "a salt (the set-flags flow's `salt`; `rollway flags set` has no option for it)"}

EXIT_OK = 0
EXIT_INVALID = 2
"""Bad input: unknown flag, percentage outside 0..100, empty user id, blank actor."""
EXIT_CONFLICT = 3
"""The flag changed concurrently (or is not at the expected version); for ``release``, it is not held
by the rollout named (another holds it, or none does)."""
EXIT_UNAVAILABLE = 4
"""The flag table could not be read or written."""
EXIT_PARTIAL = 5
"""``list`` printed the flags it could read; some items could not be used (named on stderr). Or ``get``
printed the audit entries it could read; some could not (named on stderr)."""
EXIT_INTERRUPTED = 130
"""``set`` or ``release`` was interrupted (Ctrl-C), as a shell reports a command stopped by SIGINT."""


def flags_list(store: FlagStore, out: TextIO, *, err: TextIO, as_json: bool = False) -> int:
    """Print every flag: feature, state, percentage, version, last change.

    A flag whose item cannot be used (written outside rollway) hides no other: the others are
    printed, each bad one is a ``warning:`` line on ``err`` naming it and what is wrong, and
    the exit code is EXIT_PARTIAL, so a script reading ``--json`` can tell the list is not whole.
    """
    failures: list = []

    def show() -> None:
        try:
            flags = store.list()
        except MalformedFlags as partial:
            flags = partial.flags
            failures.extend(partial.failures)
        _print_flags(flags, out, as_json, unusable=len(failures))
        for failure in failures:
            err.write(f"warning: {failure}\n")

    code = _run(err, show)
    return EXIT_PARTIAL if code == EXIT_OK and failures else code


def flags_get(
    store: FlagStore, out: TextIO, feature: str, *, err: TextIO, audit: int = 10, as_json: bool = False
) -> int:
    """Print one flag and its last ``audit`` changes (newest first)."""

    def show() -> None:
        if audit < 0:  # checked before the read: bad input is exit 2 whatever state the table is in
            raise InvalidFlagInput(f"--audit {audit} is negative: give how many changes to show (0 for none)")
        flag = _require(store, feature)
        # One read of the whole trail: the hold line needs it whatever --audit asks (it was read a
        # second time, limited, for the entries shown).
        try:
            whole, unread = store.audit(feature), None
        except UnreadableAudit as partial:
            whole, unread = partial.entries, partial
        held = holder(whole)  # a rollout's check leaves unreadable entries out too
        trail = whole[:audit]
        if unread is not None:
            # The flag and the entries that can be read are shown; what was left out of them is named.
            trail, shown = _newest(unread, audit)
            if shown is not None:
                failures.append(shown)
        if as_json:
            out.write(json.dumps({**flag.model_dump(), "held_by": held.model_dump() if held else None,
                                  "audit": [e.model_dump() for e in trail]}, indent=2) + "\n")
            return
        _print_flags([flag], out, as_json=False)
        if held is not None:
            out.write(f"  {one_line(describe_hold(held))}\n")
        for entry in trail:
            after = f"{'on' if entry.enabled else 'off'} {entry.percentage:g}%"
            why = f"  ({one_line(entry.reason)})" if entry.reason else ""
            out.write(f"  v{entry.version}  {when_said(entry.at)}  {one_line(entry.actor)}: "
                      f"{settings_found(entry)} -> {after}{why}\n")

    failures: list[UnreadableAudit] = []
    code = _run(err, show)
    for failure in failures:
        err.write(f"warning: {failure}\n")
    # As `flags list`: a script reading --json can tell the trail it got is not whole.
    return EXIT_PARTIAL if code == EXIT_OK and failures else code


def _newest(partial: UnreadableAudit, limit: int) -> tuple[list[FlagAuditEntry], UnreadableAudit | None]:
    """The entries read among the trail's newest ``limit`` changes, and what could not be read among
    them (None: all were). A limit counts changes, read or not, as ``FlagStore.audit``'s does: with the
    newest unreadable, ``--audit 1`` shows no entry, never an older one passed off as the newest."""
    if limit == 0:
        return [], None
    if len(partial.places) != len(partial.problems):  # a store that does not say where: all of it, as it came
        return partial.entries[:limit], partial
    readable = iter(partial.entries)
    unread = dict(zip(partial.places, partial.problems))
    shown: list[FlagAuditEntry] = []
    for place in range(1, limit + 1):
        if place in unread:
            continue
        entry = next(readable, None)
        if entry is None:
            break
        shown.append(entry)
    problems = [(place, problem) for place, problem in unread.items() if place <= limit]
    if not problems:
        return shown, None
    return shown, UnreadableAudit(partial.feature, shown, [p for _, p in problems], [place for place, _ in problems])




def flags_set(
    store: FlagStore,
    out: TextIO,
    feature: str,
    *,
    err: TextIO,
    actor: str,
    expected_version: int | None = None,
    now: float | None = None,
    **settings: Any,
) -> int:
    """Change a flag and print ``before -> after``.

    Args:
        store: where the flag lives.
        out: where the change is printed.
        feature: the flag.
        err: where an error is printed.
        actor: who makes the change.
        expected_version: change only if the flag is at this version.
        now: epoch seconds; the current time by default.
        **settings: the other fields of ``rollway.flag_binding.FlagChange``: enabled,
            percentage, salt, reason, create. None values are left out.
    """

    def change() -> None:
        # Every input is checked before the table is read, so bad input is exit 2 whatever
        # state the table is in (a negative version was once reported as a concurrent change).
        # Kept without surrounding spaces, as the set-flags flow and `rollway promote` keep names.
        who = _named(actor)
        validate_expected_version(expected_version)
        # A percentage finer than a basis point is refused by FlagChange, built before any read.
        given = {name: value for name, value in settings.items() if value is not None}
        if not given.keys() & {"enabled", "percentage", "salt", "create"}:
            # Read, it printed "unchanged" with exit 0 and dropped any --reason: a typo'd command
            # (`set F 30`, say) looked like one that found the flag already so.
            raise InvalidFlagInput(f"nothing to set on {feature}: give --enabled or --no-enabled, --percentage "
                                   "or --create; nothing was read or changed")
        asked = _asked(feature, given)
        sending = _Sending(store)
        try:
            update = set_flag(
                sending,
                asked,
                actor=who,
                now=time.time() if now is None else now,
                expected_version=expected_version,
                named=_OPTIONS,
            )
        except KeyboardInterrupt:
            raise _Interrupted(_interrupted(sending, feature, "setting it again")) from None
        except FlagNotAtVersion as stale:  # named as given here; still exit 3 (a FlagConflict)
            # Moved past the version given (read by `flags get` minutes ago, say): who moved it, and to
            # what, as for a race lost after the read; "is at version 2" alone sent people asking around.
            moved = stale.exists and 0 < stale.expected_version < stale.actual_version
            raise stale.named("--expected-version", newest_change(store, feature) if moved else "") from None
        except FlagConflict as lost:  # a write landed between this one's read and its write
            raise _lost_race(store, lost) from None
        except UnknownFlag as unknown:
            # The library's "create it first" names no way to do that from here: say the option.
            names = ", ".join(repr(name) for name in unknown.features)
            # --create alone would then be refused for the version: a flag is created from version 0.
            version = " with --expected-version 0 (or none)" if expected_version else ""
            raise InvalidFlagInput(f"unknown feature flag {names}: add --create to create it{version} (nothing was "
                                   "written)") from None
        except FlagStoreUnavailable as failed:
            # Chained to DynamoDB's answer, as the failure was, for whoever reads the traceback.
            raise _not_written(failed, feature) from failed.__cause__
        out.write(update.describe() + "\n")
        _zero_note(update.after, out)
        _rollout_note(store, update.after, out, err)

    return _run(err, change)


def _not_written(failed: FlagStoreUnavailable, feature: str) -> FlagStoreUnavailable:
    """``failed`` (still exit 4), saying that the change was not made when nothing can have written
    it: DynamoDB's words alone ("ProvisionedThroughputExceededException: ...") left on-call whose
    kill switch was throttled not knowing whether the flag had gone off. A write whose answer was
    lost says it may have been made (``FlagWriteUnanswered``); a refused table or a flag's unusable
    item says what to do in its own words."""
    if isinstance(failed, (FlagWriteUnanswered, FlagTableRefused, MalformedFlag, MalformedFlags, UnreadableAudit)):
        return failed
    return FlagStoreUnavailable(f"{failed}; nothing was written: {feature} is as it was (`rollway flags get "
                                f"{feature}` shows it); run the command again once the table answers (a throttled "
                                "one, in a moment)")


def _lost_race(store: FlagStore, lost: FlagConflict, then: str | None = None) -> FlagConflict:
    """``lost`` (still exit 3), saying the change that won, read now, and ``then`` what to do after
    "nothing was written" (default: how to read the flag): "changed concurrently ... read it again
    and retry" named neither who changed the flag nor to what, nor how to read it."""
    feature, found = lost.feature, lost.actual_version
    said = (f"feature flag {feature!r} changed concurrently: expected version {lost.expected_version}, found "
            f"{'a different version' if found is None else f'version {found}'}{newest_change(store, feature)}")
    conflict = FlagConflict(feature, lost.expected_version, found)
    then = then or f"`rollway flags get {feature}` shows the flag as it is now"
    conflict.args = (f"{said}; nothing was written: {then}",)
    return conflict




def _asked(feature: str, settings: dict[str, Any]) -> FlagChange:
    """The change ``settings`` ask of ``feature``, refused in the command line's words."""
    try:
        return FlagChange(feature=feature, **settings)
    except InvalidPercentage as bad:
        # The library's "percentage 150.0 is outside 0..100" named no option: say the one given.
        raise InvalidFlagInput(f"--percentage {as_given(bad.value)} is not a share of users: it must be from 0 "
                               "to 100; nothing was read or changed") from None
    except PercentageTooFine as fine:  # "percentage 0.004: ..." named no option either
        raise fine.named("--percentage") from None


class _Interrupted(Exception):
    """A write stopped by Ctrl-C, with what that means for the flag: one ``error:`` line, exit 130."""


def _interrupted(sending: "_Sending", feature: str, again: str) -> str:
    """What a Ctrl-C during a write means. A traceback from botocore's insides said nothing of the
    flag: whether the write was sent is all that tells a person whether to look before ``again``."""
    if sending.sent:
        return (f"interrupted while the change to {feature} was being written: it may have been written; check "
                f"with `rollway flags get {feature}` before {again}")
    return f"interrupted before the change to {feature} was sent: nothing was written"


def flags_release(store: FlagStore, out: TextIO, feature: str, *, err: TextIO, rollout: str, actor: str, reason: str,
                  enabled: bool | None = None, percentage: float | None = None, now: float | None = None,
                  newest: Callable[[], tuple[str, Any]] | None = None) -> int:
    """Free rollout ``rollout``'s hold on ``feature`` (``release_hold``) and print what was done.

    Args:
        store: where the flag lives.
        out: where the release is printed.
        feature: the flag.
        err: where an error is printed.
        rollout: the rollout whose hold is freed, as the refusal of a rollout bound to the flag names it.
        actor: who frees it (recorded in the audit trail).
        reason: why (recorded in the audit trail).
        enabled, percentage: settings to write with the release; None keeps the flag's.
        now: epoch seconds; the current time by default.
        newest: reads this service's ledger: (the service, its newest RolloutRecord or None). A
            rollout it records open is refused (``HoldOpenHere``); one it cannot read is warned of
            on ``err`` and not checked (the hold may be another service's, which no ledger here
            records). None: not checked.

    Returns:
        EXIT_OK freed; EXIT_INVALID bad input or an unknown flag; EXIT_CONFLICT not held by
        ``rollout`` (held by another rollout, or by none), open in this service's ledger, or
        changed on every attempt; EXIT_UNAVAILABLE the table; EXIT_INTERRUPTED Ctrl-C.
    """

    def release() -> None:
        # Every input is checked before the store is reached for (and the account loaded): bad input
        # is exit 2 whatever the account's settings or the table's state.
        validate_feature(feature)
        given = {name: value for name, value in (("enabled", enabled), ("percentage", percentage))
                 if value is not None}
        if given:
            _asked(feature, given)  # a bad percentage in the command line's words
        who = _named(actor)
        release_settings(feature, rollout, actor=who, reason=reason, **given)  # the rest, before the ledger too
        if newest is not None:
            _not_open_here(newest, rollout, err)
        sending = _Sending(store)
        try:
            released = release_hold(sending, feature, rollout, actor=who, reason=reason,
                                    now=time.time() if now is None else now, **given)
        except KeyboardInterrupt:
            raise _Interrupted(_interrupted(sending, feature, "freeing it again")) from None
        except FlagConflict as lost:  # a write landed between each read and its write
            raise _lost_race(store, lost, then=(
                f"it changed on each of {RELEASE_TRIES} tries to free rollout {rollout}'s hold; `rollway flags get "
                f"{feature}` shows who is changing it: once they stop, run `rollway flags release` again")) from None
        except FlagStoreUnavailable as failed:
            # Chained to DynamoDB's answer, as the failure was, for whoever reads the traceback.
            raise _not_written(failed, feature) from failed.__cause__
        # Each on one line: they name who moved the flag, as typed (a run form's text area).
        out.write(one_line(released.describe()) + "\n")
        _zero_note(released.update.after, out)
        out.write(f"note: {one_line(released.note())}\n")

    return _run(err, release)


def _not_open_here(newest: Callable[[], tuple[str, Any]], rollout: str, err: TextIO) -> None:
    """Refuse (``HoldOpenHere``) to free the hold of a rollout this service's ledger records open."""
    from rollway.phases import RolloutPhase

    try:
        service, record = newest()
    except KeyboardInterrupt:
        raise _Interrupted("interrupted while reading this service's ledger: nothing was written") from None
    except Exception as trouble:  # noqa: BLE001 - the hold may be another service's: said, not fatal
        err.write(f"warning: could not read this service's ledger ({trouble}): whether rollout {rollout} is open "
                  "there was not checked\n")
        return
    # Rolling back is open too: a rollback that stopped (at its flag step, say) is finished by abort.
    if (record is not None and record.rollout_id == rollout
            and record.phase not in (RolloutPhase.ROLLED_BACK, RolloutPhase.PROMOTED)):
        raise HoldOpenHere(
            f"rollout {rollout} is {service}'s, and its ledger records it {record.phase.value}: nothing was changed. "
            f"Its run (or a resume) ends its hold, and `rollway abort` rolls it back, traffic and flags with it; "
            "`rollway flags release` frees a hold no ledger of this service can end")


class _Sending:
    """``store``, noting whether a write was sent (``put`` called): a command interrupted after
    that may have written the flag, one interrupted before has not."""

    def __init__(self, store: FlagStore) -> None:
        self._store, self.sent = store, False

    def put(self, *args: Any, **kwargs: Any) -> FlagState:
        self.sent = True
        return self._store.put(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def zero_note(flag: FlagState, *, from_the_ui: bool = False) -> str | None:
    """That a flag left on at 0 % is still on without a user, or None: evaluated with a user id it is
    off for all, but an evaluation without one follows ``enabled``. "on 0%" alone read as off, and
    on-call dialling a flag down to 0 % as its kill switch left those evaluations on.
    ``from_the_ui``: said to a set-flags run (the Prefect UI's form), which names its own way first:
    the CLI's alone sent someone at the form to a terminal."""
    if flag.enabled and flag.threshold == 0:
        cli = f"`rollway flags set {flag.feature} --no-enabled`"
        how = f"a set-flags change of {flag.feature} with `enabled` false (or {cli})" if from_the_ui else cli
        return (f"{flag.feature} is on at 0%: off for every user id, but on where it is evaluated without one; "
                f"{how} turns it off there too")
    return None


def _zero_note(flag: FlagState, out: TextIO) -> None:
    note = zero_note(flag)
    if note is not None:
        out.write(f"note: {note}\n")


def rollout_note(store: FlagStore, flag: FlagState) -> str | None:
    """What a person's change, which left ``flag`` so, means to the rollout whose stages move it:
    whether its next stage leaves the flag as set or moves it again (``person_change_note``), read
    from the flag's trail now; None when no rollout moves it. For `rollway flags set` and the
    set-flags flow alike.

    Raises:
        FlagStoreUnavailable: the trail cannot be read (the change is made all the same).
    """
    try:
        trail = store.audit(flag.feature)
    except UnreadableAudit as partial:
        trail = partial.entries  # as a rollout reads it: without the entries it cannot use
    return person_change_note(trail, flag)


def unknown_note(feature: str, unread: FlagStoreUnavailable) -> str:
    """The warning for a change made whose ``rollout_note`` could not be read."""
    return f"the change is made, but whether a rollout moves {feature} is not known: {unread}"


def _rollout_note(store: FlagStore, flag: FlagState, out: TextIO, err: TextIO) -> None:
    """Say what the change means to a rollout whose stages move the flag (``rollout_note``). The
    change is made either way: a trail that cannot be read is a warning, not the command's failure."""
    try:
        note = rollout_note(store, flag)
    except FlagStoreUnavailable as unread:
        err.write(f"warning: {unknown_note(flag.feature, unread)}\n")
        return
    if note is not None:
        out.write(f"note: {note}\n")


def flags_eval(
    store: FlagStore,
    out: TextIO,
    feature: str,
    user_ids: Sequence[str | None] = (None,),
    *,
    err: TextIO,
    as_json: bool = False,
) -> int:
    """Print whether ``feature`` is on for each user id (None: without a user), read fresh.

    Each line shows the user's bucket and the flag's threshold in basis points, so a person
    can see why: on iff the flag is enabled and bucket < threshold (``--json`` gives ``enabled`` too).
    """

    def show() -> None:
        # Checked before the read: an empty user id is bad input (exit 2), not something an
        # unreachable table (exit 4) may hide.
        validate_feature(feature)
        for user in user_ids or ():
            if user == "":  # the library's message says "pass None": at a shell, that is no user id
                raise MissingUserId("user id '' is empty: name a user, or give no user id to evaluate without one")
            validate_user_id(user)
        flag = _require(store, feature)
        rows = [
            {
                "user": user,
                "bucket": None if user is None else bucket(flag.salt, flag.feature, user),
                "on": evaluate(flag, user),
            }
            for user in (user_ids or (None,))
        ]
        if as_json:
            # ``enabled`` as the table's line says it: a disabled flag's threshold and a bucket under it,
            # "on": false, gave no reason.
            out.write(json.dumps({"feature": flag.feature, "enabled": flag.enabled, "percentage": flag.percentage,
                                  "threshold": flag.threshold, "results": rows}) + "\n")
            return
        state = "enabled" if flag.enabled else "disabled"
        out.write(f"{flag.feature}: {state}, {flag.percentage:g}% (threshold {flag.threshold} of 10000)\n")
        for row in rows:
            # As typed: a line break in a pasted id printed a second line, read as another user's answer.
            who = "(no user)" if row["user"] is None else one_line(row["user"])
            where = "" if row["bucket"] is None else f"bucket {row['bucket']:>4}  "
            out.write(f"  {who}  {where}{'on' if row['on'] else 'off'}\n")

    return _run(err, show)


def _require(store: FlagStore, feature: str) -> FlagState:
    # Checked on a line of its own: in ``store.get(validate_feature(feature))`` the store is reached
    # for (and the account loaded) before the argument is evaluated, so a bad name answered with the
    # account's error (exit 1) instead of its own (exit 2).
    validate_feature(feature)
    flag = store.get(feature)
    if flag is None:
        # The library's "create it first (nothing was written)" is a change's answer: `flags get`
        # and `flags eval` wrote nothing to begin with, and named no way to create the flag.
        raise InvalidFlagInput(f"unknown feature flag {feature!r}: `rollway flags list` lists the flags there are; "
                               f"`rollway flags set {feature} --create` creates it")
    return flag


def _print_flags(flags: Sequence[FlagState], out: TextIO, as_json: bool, unusable: int = 0) -> None:
    """``flags`` as a table (or JSON); ``unusable``: how many items were left out, named on standard error."""
    if as_json:
        out.write(json.dumps([f.model_dump() for f in flags], indent=2) + "\n")
        return
    if not flags:
        # "no feature flags" over a table holding only items rollway cannot use read, without the
        # warnings (a script, `2>/dev/null`), as an empty table: those flags are still evaluated.
        items = "1 item" if unusable == 1 else f"{unusable} items"
        out.write("no feature flags\n" if not unusable else
                  f"no feature flags rollway can read: {items} it cannot use, named on standard error\n")
        return
    width = max(len("FEATURE"), *(len(f.feature) for f in flags))
    out.write(f"{'FEATURE':<{width}}  STATE  PERCENT  VERSION  UPDATED\n")
    for f in flags:
        updated = f"{when_said(f.updated_at)} by {one_line(f.updated_by)}" if f.updated_by else when_said(f.updated_at)
        state = "on" if f.enabled else "off"
        out.write(f"{f.feature:<{width}}  {state:<5}  {f.percentage:>7g}  {f.version:>7}  {updated}\n")


def _named(actor: object) -> str:
    """``--actor`` without surrounding spaces, if it is a name on one line (the approval form's
    ``NAME_PATTERN``, as `rollway finalize --actor` and every flow's actor are held to it).

    Raises:
        MissingUserId: blank.
        InvalidFlagInput: a control character (a line break, a tab, an escape sequence), or too long.
    """
    who = validate_actor(actor)
    if not re.search(NAME_PATTERN, who):
        # It goes as typed into the flag's audit trail, which `flags get` and the flows' summaries
        # show: a line break read as another change, by whoever it named, and an escape sequence
        # acted on the reader's terminal. (Names an older rollway stored are shown escaped.)
        raise InvalidFlagInput(f"--actor {who!r} must be {name_rule(who)}: the audit trail keeps it as typed; "
                               "nothing was read or changed")
    return who.strip()






def _run(err: TextIO, action: Callable[[], None]) -> int:
    """Run ``action``; a FlagError becomes one ``error:`` line on ``err`` and its exit code."""
    try:
        action()
    except _Interrupted as stop:
        err.write(f"error: {stop}\n")
        return EXIT_INTERRUPTED
    except (FlagConflict, HoldNotNamed, HoldOpenHere) as error:
        return _fail(err, error, EXIT_CONFLICT)
    except FlagStoreUnavailable as error:
        return _fail(err, error, EXIT_UNAVAILABLE)
    except FlagError as error:
        return _fail(err, error, EXIT_INVALID)
    return EXIT_OK


def _fail(err: TextIO, error: FlagError, code: int) -> int:
    # One line, whatever the names it quotes hold (who moved a flag, as typed): a line break in one
    # read as a line of the command's own.
    err.write(f"error: {one_line(str(error))}\n")
    return code


def changes_markdown(changes: Sequence[FlagChange], updates: Sequence[FlagUpdate], *, actor: str,
                     failure: BaseException | None = None, in_flight: bool = False,
                     notes: Sequence[str | None] = ()) -> str:
    """The set-flags run's summary: each change asked for, in order, and what became of it.

    ``updates`` are the changes applied (the first ``len(updates)`` of ``changes``). After a
    failure (named at the top), the others are listed as not written, so a person sees which
    flags were written before it stopped (each write is also in its flag's audit trail); but the
    one whose write was sent and its answer lost (``FlagWriteUnanswered``) may have been written,
    and says so: "not written" had a person apply it again, or take the flag as unchanged. So may
    the one under way when the run was interrupted (cancelled, stopped: ``failure`` is no
    Exception), when ``in_flight``. ``notes``: for each update, what it means to the rollout whose
    stages move its flag (``rollout_note``), or None.
    """
    interrupted = failure is not None and not isinstance(failure, Exception)
    # The actor (as typed) and the failure's text (a store's message) on one line each, their
    # control characters escaped: a line break in either began a heading or a row of its own.
    lines = [f"# Flag changes by {markdown_cell(actor)}", ""]
    if interrupted:
        said = f" ({type(failure).__name__}{f': {markdown_cell(str(failure))}' if str(failure) else ''})"
        lines += [f"**Interrupted** after {len(updates)} of {len(changes)} changes: the run was cancelled or "
                  f"stopped{said}", ""]
    elif failure is not None:
        lines += [f"**Stopped** after {len(updates)} of {len(changes)} changes: {markdown_cell(str(failure))}", ""]
    lines += ["| # | flag | asked | result |", "|---|---|---|---|"]
    for index, change in enumerate(changes):
        asked = ", ".join(f"{name} {value}" for name, value in change.settings().items()) or "nothing"
        if change.create:
            asked += " (create)"
        if index < len(updates):
            result = updates[index].describe()
            note = notes[index] if index < len(notes) else None
            if note is not None:
                result += f"; note: {note}"
        elif index == len(updates) and isinstance(failure, FlagWriteUnanswered) and failure.feature == change.feature:
            result = (f"**may have been written** (its answer was lost: check with "
                      f"`rollway flags get {change.feature}`)")
        elif index == len(updates) and interrupted and in_flight:
            result = (f"**may have been written** (the run was interrupted during it: check with "
                      f"`rollway flags get {change.feature}`)")
        else:
            result = "**not written**"
        # markdown_cell, as the heading: a result quotes what the table held (a malformed item's
        # values), whose carriage return ended the row, or backslash before a "|" split it.
        lines.append(f"| {index + 1} | {markdown_cell(change.feature)} | {markdown_cell(asked)} | "
                     f"{markdown_cell(result)} |")
    return "\n".join(lines) + "\n"
