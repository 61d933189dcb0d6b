"""``rollway flags list|get|set|eval|release``: feature flags in the rollout's DynamoDB table.

Data (tables, ``--json`` documents) goes to standard output and every ``error:`` line to
standard error, so ``rollway flags list --json | jq`` never parses an error as data.
"""

from __future__ import annotations

import getpass
import sys
from cyclopts import App

from rollway.cli.blocks import CREDENTIALS_BLOCK, TARGETS_BLOCK
from rollway.cli.whole import Whole

# The commands as they are typed: "show, change and evaluate" sent people to `flags show`.
flags_app = App(name="flags", help="Feature flags: list, get, set and eval them, and release one from a rollout's "
                                   "hold (`rollway flags set NAME --no-enabled` turns one off).")


class _Store:
    """The flag store, built at its first use: each command checks its input first, so a bad
    percentage or name is refused as such (exit 2) whatever the account's settings; built up
    front, it was answered with "PREFECT_API_URL is not set" (exit 1), then, once that was
    fixed, refused for the input after all."""

    def __init__(self, targets_block: str | None, credentials_block: str | None) -> None:
        self._blocks = (targets_block, credentials_block)
        self._store = None
        self._account = None  # (targets, the DynamoDB client), once opened

    def _open(self):
        if self._store is None:
            self._store, self._account = _open_store(*self._blocks)
        return self._store

    def __getattr__(self, name: str):
        return getattr(self._open(), name)

    def newest_rollout(self) -> tuple[str, object]:
        """This service's name and its newest rollout in the ledger, on the account the store was
        opened on (its blocks are read once)."""
        from rollway.aws.ledger import DynamoLedger

        self._open()
        targets, client = self._account
        return targets.canary_service, DynamoLedger(client, targets).get(targets.canary_service)


def _store(targets_block: str | None, credentials_block: str | None) -> _Store:
    return _Store(targets_block, credentials_block)


def _open_store(targets_block: str | None, credentials_block: str | None):
    import httpx

    from flows.flags import flag_table_refusal
    from rollway.api_error import ApiError
    from rollway.aws.flags import DynamoFlagStore
    from rollway.cli.ops import OpsError, api_unreachable, credentials_refused, load_account

    # A setting or block the command cannot use (PREFECT_API_URL unset, a block missing, a region
    # botocore refuses) is exit 1, as for every other command: 2 is a command line's mistake.
    try:
        targets, get_client = load_account(targets_block, credentials_block)
        client = get_client("dynamodb")
    except OpsError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from err
    except (httpx.HTTPError, ApiError) as err:  # the blocks are read from the API: it was down, or refused
        print(f"error: {api_unreachable(err)}", file=sys.stderr)
        raise SystemExit(1) from err
    # A table DynamoDB does not hold, or one the credentials may not use, is named with its region
    # and what to do (deploy it, or the IAM statement granting the action), as the set-flags flow
    # and the other commands say it: DynamoDB's own words named neither. Credentials that expired
    # after the account was loaded are said as such: "feature flag table 'x': ExpiredTokenException"
    # read as the table's failure.
    table_refused = flag_table_refusal(targets)

    def refused(err):
        return table_refused(err) or credentials_refused(err, f"dynamodb {err.operation_name}")

    return DynamoFlagStore(client, targets, refused=refused), (targets, client)


@flags_app.command(name="list")
def list_(*, json: bool = False, targets_block: str | None = TARGETS_BLOCK,
          credentials_block: str | None = CREDENTIALS_BLOCK) -> int:
    """Every flag: state, percentage, version, last change.

    Args:
        json: print JSON instead of a table (errors still go to standard error).
        targets_block: saved RollwayTargets block naming the flags table.
        credentials_block: saved AwsCredentials block of the account.
    """
    from rollway.flags_commands import flags_list

    return flags_list(_store(targets_block, credentials_block), sys.stdout, err=sys.stderr, as_json=json)


# The flag is positional only in every command: otherwise a missing one was "parameter --feature
# requires an argument", an option no help shows.
@flags_app.command
def get(feature: str, /, *, audit: Whole = 10, json: bool = False, targets_block: str | None = TARGETS_BLOCK,
        credentials_block: str | None = CREDENTIALS_BLOCK) -> int:
    """One flag and its latest changes.

    Args:
        feature: the flag.
        audit: how many changes to show.
        json: print JSON instead of a table (errors still go to standard error).
        targets_block: saved RollwayTargets block naming the flags table.
        credentials_block: saved AwsCredentials block of the account.
    """
    from rollway.flags_commands import flags_get

    return flags_get(_store(targets_block, credentials_block), sys.stdout, feature, err=sys.stderr, audit=audit,
                     as_json=json)


@flags_app.command(name="set")
def set_(feature: str, /, *, enabled: bool | None = None, percentage: float | None = None, reason: str = "",
         create: bool = False, expected_version: Whole | None = None, actor: str | None = None,
         targets_block: str | None = TARGETS_BLOCK, credentials_block: str | None = CREDENTIALS_BLOCK) -> int:
    """Change a flag (conditional on its version; bad input writes nothing).

    Args:
        feature: the flag.
        enabled: turn it on or off.
        percentage: share of users it is on for, 0..100.
        reason: recorded in the audit trail.
        create: create the flag if it does not exist.
        expected_version: change only if the flag is at this version.
        actor: who changes it (default: your user name).
        targets_block: saved RollwayTargets block naming the flags table.
        credentials_block: saved AwsCredentials block of the account.
    """
    from rollway.flags_commands import flags_set

    return flags_set(
        _store(targets_block, credentials_block), sys.stdout, feature, err=sys.stderr, actor=_actor(actor),
        expected_version=expected_version, enabled=enabled, percentage=percentage, reason=reason or None,
        create=create or None,
    )


def _actor(actor: str | None) -> str:
    """Only an omitted --actor defaults to the OS user; a given one, even empty, is checked as
    given (an empty one is refused, never replaced)."""
    if actor is not None:
        return actor
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError) as err:
        print(f"error: cannot tell who you are ({err}): pass --actor", file=sys.stderr)
        raise SystemExit(2) from err


@flags_app.command
def release(feature: str, /, *, rollout: str, reason: str, enabled: bool | None = None,
            percentage: float | None = None, actor: str | None = None, targets_block: str | None = TARGETS_BLOCK,
            credentials_block: str | None = CREDENTIALS_BLOCK) -> int:
    """Free a flag from a rollout's hold, when that rollout's run ended without its rollback (say,
    another service's rollout that was killed): written only while the flag's trail still names that
    rollout as its holder; the flag keeps its settings unless --enabled/--no-enabled or --percentage
    is given. A rollout this service's ledger records open is refused: `rollway abort` ends it.

    Args:
        feature: the flag.
        rollout: the id of the rollout holding it, as the refusal of a rollout bound to it names it.
        reason: why the hold is freed, recorded in the audit trail.
        enabled: also turn it on or off.
        percentage: also set the share of users it is on for, 0..100.
        actor: who frees it (default: your user name).
        targets_block: saved RollwayTargets block naming the flags table.
        credentials_block: saved AwsCredentials block of the account.
    """
    from rollway.flags_commands import flags_release

    store = _store(targets_block, credentials_block)
    # This service's newest rollout: one still open here is `rollway abort`'s, not a release's.
    return flags_release(store, sys.stdout, feature, err=sys.stderr, rollout=rollout, actor=_actor(actor),
                         reason=reason, enabled=enabled, percentage=percentage, newest=store.newest_rollout)


@flags_app.command(name="eval")
def eval_(feature: str, /, *users: str, json: bool = False, targets_block: str | None = TARGETS_BLOCK,
          credentials_block: str | None = CREDENTIALS_BLOCK) -> int:
    """Whether the flag is on for each user id (none given: without a user).

    Args:
        feature: the flag.
        users: user ids.
        json: print JSON instead of a table (errors still go to standard error).
        targets_block: saved RollwayTargets block naming the flags table.
        credentials_block: saved AwsCredentials block of the account.
    """
    from rollway.flags_commands import flags_eval

    return flags_eval(_store(targets_block, credentials_block), sys.stdout, feature, users or (None,), err=sys.stderr,
                      as_json=json)
