"""``rollway report``: a rollout's report from the ledger, printed as markdown (pipe it to a file).

The same reports the ``rollout_report`` flow writes as artifacts, without a flow run: the
rollout report, followed by the incident report when the rollout was rolled back, or promoted with a
breach not rolled back standing or accepted (``wants_incident``; it names the rollout report's table of every
recorded transition rather than print it again). Read-only.
Imports stay inside the functions, so that ``rollway --help`` does not pay for Prefect.
"""

from __future__ import annotations

import time

from rollway.cli.blocks import CREDENTIALS_BLOCK, TARGETS_BLOCK


def report(*, rollout: str | None = None, targets_block: str | None = TARGETS_BLOCK,
           credentials_block: str | None = CREDENTIALS_BLOCK) -> int:
    """Print a rollout's report from the ledger as markdown, and its incident report if it was rolled back
    or a breach not rolled back stands or was accepted.

    Args:
        rollout: the rollout id (as `rollway status` shows it); the service's newest by default.
        targets_block: saved RollwayTargets block naming the service.
        credentials_block: saved AwsCredentials block of the account.
    """
    from rollway.cli.ops import reporting

    return reporting(_report)(rollout=rollout, targets_block=targets_block, credentials_block=credentials_block)


def _report(*, rollout: str | None, targets_block: str | None, credentials_block: str | None) -> int:
    from botocore.exceptions import ClientError

    from flows.reports import ReportRefused, choose, report_clock, unreadable_ledger
    from rollway.cli.ops import NoRollout, OpsError, UsageError, connect, ledger_read, no_revision_to_restore
    from rollway.phases import RolloutPhase
    from rollway.reports import incident_report, rollout_report, wants_incident

    if rollout is not None and (not rollout.strip() or rollout != rollout.strip()):
        raise UsageError(f"--rollout {rollout!r}: give a rollout id as `rollway status` shows it")
    service = connect(targets_block, credentials_block)
    targets = service.targets
    unreadable: dict[str, str] = {}
    try:
        # Within the bound `rollway status` reads it in, saying what it waits for: on the account's
        # clients a DynamoDB that stopped answering held the report over a minute, silent.
        records = ledger_read(service, lambda ledger: ledger.history(targets.canary_service, unreadable=unreadable))
    except ClientError as err:
        refused = unreadable_ledger(err, targets)
        if refused is None:
            raise
        raise OpsError(str(refused)) from err
    try:
        record = choose(records, targets.canary_service, targets.rollouts_table, rollout, unreadable)
    except ReportRefused as refused:
        raise NoRollout(str(refused)) from refused
    # The wall clock, which leases and rollback claims are stamped on: whether their holders still renew them.
    now = time.time()
    # What finishes a rollback under way, as `rollway status` reads it from ECS: the report said
    # "run the rollback again" where status said `rollway abort` cannot finish it.
    unrestorable = no_revision_to_restore(service, record) if record.phase is RolloutPhase.ROLLING_BACK else None
    print(rollout_report(record, now=now, unrestorable=unrestorable, targets=targets))
    if wants_incident(record):
        print(incident_report(record, alert_topic=targets.alert_topic, now=now, targets=targets,
                              unrestorable=unrestorable, clock=report_clock(record, now), timeline_above=True))
    return 0
