"""rollout_report: a rollout's report from the ledger, and its incident report when it was rolled back
(or promoted with a breach its monitoring window could not roll back still standing).

Reads every rollout the ledger holds for the service (``Targets.canary_service``, the key the
rollout flows record under), takes the one asked for (the newest by default), and writes:

- a ``<service>-rollout-report`` markdown artifact: outcome, stages with weights, times,
  verdicts and reasons, approvals (who, when, what), every recorded transition;
- a ``<service>-incident-report`` markdown artifact when the rollout was rolled back (or its
  rollback began): trigger, exposure, traffic moved back, steps, notification, next steps; or
  when it was promoted and a breach its monitoring window could not roll back stands, not
  accepted (``wants_incident``): the breach, the exposure still going, the way out; or was
  accepted: the breach, who accepted it and when, the exposure kept by that choice.

Read-only: it changes nothing, so it can run at any time, as often as wanted. The `canary` flow
keeps no ledger, so its runs have no report here (their own artifacts are the record).
"""

from __future__ import annotations

import logging
import time

from botocore.exceptions import ClientError
from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict

from flows.artifacts import create_markdown_artifact
from flows.env import load_clients
from flows.journal import artifact_key
from flows.params import RolloutId
from flows.rollback import no_revision_to_restore
from flows.untraced import without_traceback
from rollway.aws.denied import ROLLOUT_POLICY, is_denied, permission_denied
from rollway.aws.ecs import EcsDeployer
from rollway.aws.errors import REFUSED_CODES, error_code
from rollway.aws.ledger import DynamoLedger, storage_failure
from rollway.clock import ClockSettings
from rollway.deadline import READ_SECONDS, answered
from rollway.failure_words import failures_writable
from rollway.ledger import RolloutRecord
from rollway.one_line import shown
from rollway.phases import RolloutPhase
from rollway.reports import incident_of, incident_report, ran_ahead, rollout_report as render_rollout, wants_incident
from rollway.targets import Targets
from rollway.url_passwords import passwords_hidden
from tasks.ledger import rollout_history

CLOCK_READ_SECONDS = READ_SECONDS
"""How long the incident report waits for the Prefect API to say which clock a rollout ran on: a
server that takes the connection and never answers held the report for minutes (the client's
minute per request, tried again), and the clock gives the wall times alone."""


class ReportRefused(ValueError):
    """The ledger holds no such rollout, or cannot be read (no such table, access denied):
    nothing was written."""


# DynamoDB's answers that mean the table cannot be read: no such table, a refused permission,
# credentials it does not know (tasks.ledger does not retry them either: retry.FINAL_DYNAMODB).
_FINAL = frozenset({"ResourceNotFoundException", *REFUSED_CODES})


# The tables rollway reads, by the RollwayTargets field naming each: what it is, and what it keeps.
_TABLES = {"rollouts_table": ("the ledger table", "the ledger's", "the rollouts are recorded in"),
           "flags_table": ("the feature flag table", "the flags table's", "the feature flags are kept in")}


def unreadable_ledger(err: BaseException, targets: Targets) -> ReportRefused | None:
    """The refusal for a ledger DynamoDB will not read (``err``), naming the table and what to
    do, or None for another error (a defect, or trouble worth a traceback).

    DynamoDB's own words ("Requested resource not found") name no table: the report named none
    either, and the targets block naming the wrong table looked like a crash of rollway.
    """
    return unreadable_table(err, targets, "rollouts_table")


def named_table(targets: Targets, field: str) -> str:
    """The table ``field`` of ``targets`` names, as a person reads it: what it is, its name and its
    region (``_TABLES``)."""
    return f"{_TABLES[field][0]} {getattr(targets, field)} (region {targets.region})"


def unreadable_table(err: BaseException, targets: Targets, field: str, *,
                     done: str = "nothing was written") -> ReportRefused | None:
    """``unreadable_ledger`` for the table ``field`` of ``targets`` names (``_TABLES``); ``done``: what
    the refusal ends on, what it left undone (a rollback's flags: "no flag was changed", where
    "nothing was written" read as the whole rollback having written nothing)."""
    code = error_code(err) if isinstance(err, ClientError) else None
    if code not in _FINAL:
        return None
    _, whose, keeps = _TABLES[field]
    table = named_table(targets, field)
    if code == "ResourceNotFoundException":
        hint = (f"does not exist: deploy {whose} infrastructure (deploy_infrastructure), or name the table {keeps} as "
                f"{field} in the RollwayTargets block")
    elif is_denied(err):
        # The action and the statement to add to the role, as every other refusal names them: "cannot
        # be read with these credentials" left a person to find both. The table stands for the
        # resource AWS did not name: a refused GetItem named the flags' statement beside the ledger's.
        denied = permission_denied(err, job=ROLLOUT_POLICY, resource=getattr(targets, field), targets=targets)
        return ReportRefused(f"{table} cannot be read: {denied}; {done}")
    else:
        hint = "cannot be read with these credentials"
    return ReportRefused(f"{table} {hint} ({storage_failure(err)}); {done}")


def publish_incident(record: RolloutRecord, targets: Targets, *, now: float, unrestorable: str | None = None,
                     clock: ClockSettings | None = None) -> str:
    """Write ``record``'s incident report (``wants_incident``; the arguments as ``incident_report``
    takes them) as the ``<service>-incident-report`` markdown artifact, the newest under its key in
    the Prefect UI; returns the key. For the `rollout_report` flow, and for the finalize that records
    a breach accepted, after which the newest one said the breach was still going."""
    key = artifact_key(targets.canary_service, "incident-report")
    incident = incident_report(record, alert_topic=targets.alert_topic, now=now, targets=targets,
                               unrestorable=unrestorable, clock=clock)
    create_markdown_artifact(key=key, markdown=incident, description=(
        f"incident: {incident_of(record)} of rollout {record.rollout_id} of {targets.canary_service}"))
    return key


class ReportResult(BaseModel):
    """What the run wrote: the rollout it reported on and the artifacts' keys."""

    model_config = ConfigDict(frozen=True)

    service: str
    rollout_id: str
    phase: RolloutPhase
    artifacts: tuple[str, ...]


def choose(records: list[RolloutRecord], service: str, table: str, rollout_id: str | None,
           unreadable: dict[str, str] | None = None) -> RolloutRecord:
    """The rollout asked for (None: the newest) among ``records`` (newest first).

    ``unreadable``: rollout ids whose items could not be read, with why. One of them is refused
    when it is the one asked for, or the newest when none is named (an older one reported as
    "the newest" would mislead); any other is no reason to refuse.

    Raises:
        ReportRefused: the service has no rollout, none with that id (the newest are named), or
            the one asked for cannot be read.
    """
    unreadable = unreadable or {}
    if rollout_id in unreadable:
        raise ReportRefused(unreadable[rollout_id])
    newest_unreadable = max(unreadable, default=None)
    if rollout_id is None and newest_unreadable is not None and (
            not records or newest_unreadable > records[0].rollout_id):
        raise ReportRefused(
            f"the newest rollout of {service}, {shown(newest_unreadable, keep='')}, cannot be read: {unreadable[newest_unreadable]}; "
            "name another rollout to report on it")
    if not records:
        raise ReportRefused(
            f"no rollout of {service} is recorded in the ledger table {table}: nothing to report (the `canary` "
            "flow keeps no ledger; progressive_rollout does)")
    if rollout_id is None:
        return records[0]
    for record in records:
        if record.rollout_id == rollout_id:
            return record
    listed = sorted([(r.rollout_id, r.phase.value) for r in records] + [(shown(i, keep=""), "unreadable") for i in unreadable],
                    reverse=True)
    newest = ", ".join(f"{rollout} ({phase})" for rollout, phase in listed[:5])
    raise ReportRefused(f"no rollout {rollout_id!r} of {service} in the ledger table {table}; the newest are: {newest}")


def report_clock(record: RolloutRecord, now: float) -> ClockSettings | None:
    """The clock the runs of a rollout with an incident (``wants_incident``) ran on (``rollway.cli.ops.recorded_clock``: the
    ``clock`` of the newest flow run tagged with it), for the incident report to give its window to
    read the logs in on the wall clock; None when the report needs none (no incident, or its
    times are the wall's at ``now``) or the Prefect API cannot say (said, and the window is labelled
    the rollout clock's, with how to convert it: a report is never refused for it)."""
    if not wants_incident(record) or not ran_ahead(record, now):
        return None
    from rollway.cli.ops import recorded_clock

    log = logging.getLogger("rollway.reports")
    try:
        clock = answered("the Prefect API", CLOCK_READ_SECONDS, lambda: recorded_clock(record), log.info)
    except Exception as err:  # noqa: BLE001 - the report reads the clock for its wall times alone
        log.warning("could not read from the Prefect API which clock rollout %s ran on (%s): its incident report's "
                    "times stay the rollout clock's", record.rollout_id, passwords_hidden(str(err)))
        return None
    # Real time, said of a rollout whose times ran ahead of the wall: its runs are not the ones read.
    return clock if clock.speed != 1.0 else None


def _unrestorable(get_client, targets: Targets, record: RolloutRecord) -> str | None:
    """What finishes a rollback under way that cannot restore a revision on the canary, read from
    ECS as `rollway status` reads it (``no_revision_to_restore``), or None: it can, the rollout is
    not rolling back, or ECS could not be read (said, and the report's advice stays as it was)."""
    if record.phase is not RolloutPhase.ROLLING_BACK:
        return None
    try:
        return no_revision_to_restore(EcsDeployer(get_client("ecs"), targets), targets, record)
    except Exception as err:  # noqa: BLE001 - a report reads ECS for its advice alone
        get_run_logger().warning("could not read from ECS which revision a rollback would restore (%s)", err)
        return None


@flow(name="rollout_report", log_prints=True)
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def rollout_report(
    rollout_id: RolloutId | None = None,
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
) -> ReportResult:
    """Write the report of one rollout of the service from the ledger (the newest by default), and
    its incident report if it was rolled back or a breach not rolled back stands or was accepted. Read-only.

    Args:
        rollout_id: which rollout (as `rollway status` shows it); leave empty for the newest.
        targets_block: a saved RollwayTargets block (the ledger table); cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
    """
    # A refusal says everything on its line: a traceback made it read as a crash of rollway.
    without_traceback(ReportRefused)
    log = get_run_logger()
    targets, get_client = load_clients(targets_block, aws_credentials_block)
    service = targets.canary_service
    try:
        records, unreadable = rollout_history(DynamoLedger(get_client("dynamodb"), targets), service)
    except ClientError as err:
        refused = unreadable_ledger(err, targets)
        if refused is None:
            raise
        raise refused from None  # DynamoDB's error is quoted in it
    for unread, why in unreadable.items():
        if unread != rollout_id:
            # A hand-made item's id is anyone's text (an escape sequence cleared the console's line).
            log.warning("left out rollout %s: %s", shown(unread, keep=""), shown(why, keep=""))
    record = choose(records, service, targets.rollouts_table, rollout_id, unreadable)
    log.info("reporting rollout %s of %s (%s, %s; %d transitions)", record.rollout_id, service, record.image,
             record.phase.value, len(record.history))

    keys = [artifact_key(service, "rollout-report")]
    # The wall clock, which leases and rollback claims are stamped on: whether their holders still renew them.
    now = time.time()
    unrestorable = _unrestorable(get_client, targets, record)
    create_markdown_artifact(key=keys[0], markdown=render_rollout(record, now=now, unrestorable=unrestorable,
                                                                           targets=targets),
                             description=f"rollout {record.rollout_id} of {service}")
    log.info("wrote the rollout report (artifact %s)", keys[0])
    if wants_incident(record):
        keys.append(publish_incident(record, targets, now=now, unrestorable=unrestorable,
                                     clock=report_clock(record, now)))
        # Promoted here is a breach left in production (``wants_incident``): "was promoted" misnamed it.
        log.warning("rollout %s %s: wrote the incident report (artifact %s)", record.rollout_id,
                    f"has a {incident_of(record)}" if record.phase is RolloutPhase.PROMOTED
                    else f"was {record.phase.value.replace('_', ' ')}", keys[1])
    return ReportResult(service=service, rollout_id=record.rollout_id, phase=record.phase, artifacts=tuple(keys))
