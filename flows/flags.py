"""Set, enable and disable feature flags from Prefect (UI, schedule or another flow).

Every change is checked before the first write: a bad percentage or name fails when the
parameters are validated, and an unknown flag (without ``create``) fails the run, with
nothing written.
"""

from __future__ import annotations

import time
from typing import Annotated, Callable, Sequence

from botocore.exceptions import ClientError
from prefect import flow, get_run_logger
from pydantic import AfterValidator, Field

from flows.artifacts import create_markdown_artifact
from flows.env import load_clients
from flows.params import Actor
from flows.reports import named_table, unreadable_table
from flows.untraced import without_traceback
from rollway.aws.denied import ROLLOUT_POLICY, is_denied, permission_denied
from rollway.aws.errors import error_code
from rollway.aws.flags import DynamoFlagStore
from rollway.failure_words import failures_writable
from rollway.flag_binding import FlagChange, FlagUpdate
from rollway.flags import (
    FlagConflict, FlagStoreUnavailable, FlagTableRefused, InvalidFlagInput, UnknownFlag, validate_actor,
)
from rollway.flags_commands import changes_markdown, rollout_note, unknown_note, zero_note
from rollway.ports import FlagStore
from rollway.targets import Targets
from tasks import flags as flag_tasks


class UnknownFlagInChanges(UnknownFlag):
    """Flags the set-flags run's changes name that do not exist, with what to do from its form.

    The library's "create it first" named no way to: the form's change has a ``create`` switch,
    and a misspelt name (the likelier cause) wants `rollway flags list`, not a new flag.
    """

    def __init__(self, *features: str) -> None:
        super().__init__(*features)
        names = ", ".join(repr(f) for f in features)
        self.args = (f"unknown feature flag {names}: check the spelling (`rollway flags list` lists the flags "
                     "there are), or tick `create` in its change to create it; nothing was written",)


def flag_table_refusal(targets: Targets) -> Callable[[ClientError], str | None]:
    """What DynamoDB refusing the flags table of ``targets`` means to a person (``DynamoFlagStore``'s
    ``refused``), as the other commands and flows say it of the ledger: "feature flag table 'x':
    ResourceNotFoundException: Requested resource not found" named neither the region nor the fix,
    and AWS's "not authorized to perform" no statement to add."""

    def said(err: ClientError) -> str | None:
        if error_code(err) == "ResourceNotFoundException":
            missing = unreadable_table(err, targets, "flags_table")
            return None if missing is None else str(missing)
        if is_denied(err):
            # The table, for a refusal naming none: the ledger's statement grants GetItem and PutItem too.
            denied = permission_denied(err, job=ROLLOUT_POLICY, resource=targets.flags_table, targets=targets)
            return f"{named_table(targets, 'flags_table')}: {denied}"
        return None

    return said


def flag_table_missing(targets: Targets) -> Callable[[ClientError], str | None]:
    """``flag_table_refusal``'s words for a flags table DynamoDB does not hold, alone: a rollout's
    run and its rollback said DynamoDB's ("ResourceNotFoundException: Requested resource not found"),
    naming neither the region nor what to do. A refused permission they name themselves, as the
    statement of the rollout's policy (``rollway.aws.denied.named_denials``)."""

    def missing(err: ClientError) -> str | None:
        if error_code(err) != "ResourceNotFoundException":
            return None
        # Not a flags command's "nothing was written": inside a rollback's "could not disable ..."
        # line, after the traffic moved back, that read as the whole rollback having written nothing.
        refused = unreadable_table(err, targets, "flags_table", done="no flag was changed")
        return None if refused is None else str(refused)

    return missing


def apply_changes(store: FlagStore, changes: Sequence[FlagChange], *, actor: str, now: float,
                  done: list[FlagUpdate] | None = None, begun: list[FlagChange] | None = None,
                  notes: list[str | None] | None = None) -> list[FlagUpdate]:
    """Apply ``changes`` in order, after checking that every flag not created exists.

    ``done``: where each applied change is appended as it is made, so that a caller still has
    them when a later one fails. ``begun``: where each change is appended before its write is
    tried, so that a caller stopped during one (cancelled) can tell it may have been written.
    ``notes``: where, for each applied change, its notes are appended, as `rollway flags set` prints
    them: a flag left on at 0 % (``zero_note``) and what the change means to the rollout whose stages
    move the flag (``rollout_note``); None: neither applies, or the trail could not be read.

    Raises:
        UnknownFlag: flags that do not exist and are not to be created (all named);
            nothing is written.
        InvalidFlagInput: a change leaves a malformed flag's unreadable setting as it is;
            nothing is written.
    """
    validate_actor(actor)
    # A malformed flag counts as there, so its kill switch goes through here as from the CLI.
    try:
        flag_tasks.check_changes(store, changes)
    except UnknownFlag as unknown:
        raise UnknownFlagInChanges(*unknown.features) from None
    log = get_run_logger()
    updates = done if done is not None else []
    for change in changes:
        if begun is not None:
            begun.append(change)
        update = flag_tasks.set_flag(store, change, actor=actor, now=now)
        log.info("%s", update.describe())
        updates.append(update)
        # As `rollway flags set` says them: a team turning a bound flag off from the UI was told
        # "on 5% -> off 5%" alone, not whether the rollout's next stage would turn it back on, and
        # on-call's 0 % kill switch "on 5% -> on 0%", not that it stayed on without a user id.
        said = [zero_note(update.after, from_the_ui=True)]
        try:
            said.append(rollout_note(store, update.after))
        except FlagStoreUnavailable as unread:
            log.warning("%s", unknown_note(change.feature, unread))
        for note in filter(None, said):
            log.info("note: %s", note)
        if notes is not None:
            notes.append("; note: ".join(filter(None, said)) or None)
    return updates


def _some(changes: list[FlagChange]) -> list[FlagChange]:
    if not changes:
        # An empty list loaded the account, wrote nothing and succeeded: a form submitted before its
        # changes were filled in said nothing of having done nothing.
        raise ValueError("changes is empty: give at least one flag to set, enable or disable")
    return changes


# minItems is for the UI's form; the validator gives the message.
Changes = Annotated[list[FlagChange], AfterValidator(_some), Field(json_schema_extra={"minItems": 1})]


@flow(name="set-flags")
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def set_flags(
    changes: Changes,
    actor: Actor = "operator",
    aws_credentials_block: str | None = None,
    targets_block: str | None = None,
) -> list[FlagUpdate]:
    """Set, enable or disable feature flags in the flags table, recording who and why.

    Prefect refuses a run whose actor does not fit before it starts.

    Args:
        changes: what to change, applied in order: at least one.
        actor: who asks (recorded in each flag's audit trail): not blank, kept without surrounding spaces.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
        targets_block: a saved RollwayTargets block naming the table; cleared: the deployment's block, if it has one; none: Webordinary's names.
    """
    # A refused change says everything on its line (which flag, what to do, nothing written): a
    # traceback above it read as a crash of rollway. So does a change that lost the race to
    # another writer on every one of set_flag's reads (which flag, both versions, retry).
    without_traceback(UnknownFlag, InvalidFlagInput, FlagTableRefused, FlagConflict)
    # The same loading as every other flow: clients act in Targets.region, and a credentials
    # block naming another region is refused (AccountNotLoaded) before any call.
    targets, get_client = load_clients(targets_block, aws_credentials_block)
    store = DynamoFlagStore(get_client("dynamodb"), targets, refused=flag_table_refusal(targets))
    done: list[FlagUpdate] = []
    begun: list[FlagChange] = []
    notes: list[str | None] = []
    try:
        updates = apply_changes(store, changes, actor=actor, now=time.time(), done=done, begun=begun, notes=notes)
    except BaseException as stop:  # noqa: BLE001 - a failure, or cancelled (TerminationSignal) or Ctrl-C; raised again
        # The summary says the changes before the one that failed were written. Interrupted, without
        # one the key's newest artifact was an earlier run's, read as this one's, and nothing said
        # which flags were written, or that the one in flight may have been (``in_flight`` is read
        # for an interruption only: a failed change says its own error).
        _summary(changes, done, actor, failure=stop, in_flight=len(begun) > len(done), notes=notes)
        raise
    _summary(changes, updates, actor, notes=notes)
    return updates


def _summary(changes: Sequence[FlagChange], done: Sequence[FlagUpdate], actor: str,
             failure: BaseException | None = None, in_flight: bool = False, notes: Sequence[str | None] = ()) -> None:
    create_markdown_artifact(key="set-flags", markdown=changes_markdown(changes, done, actor=actor, failure=failure,
                                                                        in_flight=in_flight, notes=notes),
                             description="set-flags: the changes asked for and what became of each")
