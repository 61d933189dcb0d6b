"""The pre-deployment checklist, judged from what AWS shows (pure).

The seed's plan ends its infrastructure step with boxes a person ticks by hand: all CDK stacks
deployed, DynamoDB tables created with their indexes, SQS queues configured with DLQs, CloudWatch dashboards active,
alerts configured. Here each box is a ``CheckItem`` that passes or fails with a reason a person
can act on, judged from descriptions the adapter (``rollway.aws.checklist``) read. Something
that could not be read is a failed item saying why; a field that is missing fails too: an
item never passes on data it did not see. Something read outside ``Targets.region`` (the CDK
app deploys its stack elsewhere) says where in its reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from rollway.infra import DEPLOYED_STATUSES, construct_id_hint, did_you_mean, stuck_remedy
from rollway.one_line import on_one_line
from rollway.pinning import Pin, unpinned_said
from rollway.report import markdown_cell, markdown_code_cell
from rollway.targets import QueueSpec, TableSpec, Targets

Kind = Literal["stack", "table", "queue", "dashboard", "alarm", "alert topic", "listener rule"]

# A stack whose last operation finished and applied (UPDATE_ROLLBACK_COMPLETE is not: the last
# deploy was undone): the same set a resumed deploy skips a stack by.
_DEPLOYED = DEPLOYED_STATUSES


@dataclass(frozen=True)
class ReadFailed:
    """A read the adapter could not make (AccessDenied, throttling, no connection)."""

    what: str
    message: str


Observed = Mapping[str, Any] | None | ReadFailed
"""What the adapter read of one resource: its description, None when it does not exist, or
the failure of the read."""


class CheckItem(BaseModel):
    """One box of the checklist: what was checked, whether it passed, and why."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    name: str
    passed: bool
    reason: str


class Checklist(BaseModel):
    """Every item of the checklist, in a stable order (stacks, tables, queues, dashboard, alarms, topic,
    and the listener rule pinning the validation's checks when it is asked for)."""

    model_config = ConfigDict(frozen=True)

    items: tuple[CheckItem, ...]

    @property
    def passed(self) -> bool:
        return bool(self.items) and all(item.passed for item in self.items)

    @property
    def failed(self) -> tuple[CheckItem, ...]:
        return tuple(item for item in self.items if not item.passed)

    def summary(self) -> str:
        """One line per failed item, or a line saying all passed."""
        if self.passed:
            return f"all {len(self.items)} checklist items passed"
        return "\n".join(f"- {item.kind} {item.name}: {item.reason}" for item in self.failed)

    def markdown(self) -> str:
        """The checklist as a markdown table."""
        # The name escaped as the detail is: an alarm's may hold a "|" or a backtick.
        rows = [f"| {'✅ pass' if i.passed else '❌ FAIL'} | {i.kind} | {markdown_code_cell(i.name)} | "
                f"{markdown_cell(i.reason)} |"
                for i in self.items]
        return "\n".join(["| result | kind | name | detail |", "|---|---|---|---|", *rows])


# The attribute type of every key of rollway's own tables, as rollway.aws.flags and
# rollway.aws.ledger write them.
STATE_KEY_TYPE = "S"
_TYPE_NAMES = {"S": "a string", "N": "a number", "B": "binary"}


def state_tables(targets: Targets) -> tuple[TableSpec, ...]:
    """The tables rollway keeps its own state in, with the keys its adapters use
    (``rollway.aws.flags`` and ``rollway.aws.ledger``)."""
    return (
        TableSpec(name=targets.flags_table, hash_key="feature"),
        TableSpec(name=targets.rollouts_table, hash_key="service", range_key="rollout_id"),
    )


def all_tables(targets: Targets) -> tuple[TableSpec, ...]:
    """Every table the checklist expects, each once: the service's (``Targets.tables``), then rollway's own.

    A rollway table also listed in ``Targets.tables`` with rollway's keys is one table, with the
    indexes listed there: as two, it was judged once without rollway's string keys and once
    without the indexes, and failed twice (the run counted and listed it twice). Listed with
    other keys, it stays a table of its own: which keys are right is the person's to settle.
    """
    own = {spec.name: spec for spec in state_tables(targets)}
    service: list[TableSpec] = []
    for spec in dict.fromkeys(targets.tables):
        mine = own.get(spec.name)
        if mine is not None and (spec.hash_key, spec.range_key) == (mine.hash_key, mine.range_key):
            own[spec.name] = mine.model_copy(update={"indexes": tuple(dict.fromkeys((*mine.indexes, *spec.indexes)))})
        else:
            service.append(spec)
    return (*service, *own.values())


def checked_resources(targets: Targets) -> tuple[tuple[str, str], ...]:
    """(kind, name) of every resource the checklist reads besides the stacks, in the kinds
    ``rollway.infra.named_resources`` gives: where the app's templates may place them."""
    return (*(("table", spec.name) for spec in all_tables(targets)),
            *(("queue", name) for name in dict.fromkeys(n for q in targets.queues for n in (q.name, q.dlq_name))),
            ("dashboard", targets.dashboard), *(("alarm", a) for a in targets.alarms), ("topic", targets.alert_topic))


def unnamed_resources(targets: Targets, named: Mapping[str, Mapping[str, Sequence[str]]]) -> list[str]:
    """``<kind> <name>`` (with the closest name of that kind the app gives) for each resource the
    checklist reads that no stack's template names, of the kinds the templates name others of
    (``named``: stack -> kind -> names, ``rollway.infra.AppStacks.resources``).

    Read from the app before the first deploy: a name misspelt in the targets failed its item only
    once every stack was deployed. A kind the app names none of is left out: its resources are
    made outside the app, or named by a function (``Fn::Sub``, ``Ref``), and that is not a mistake.
    """
    by_kind: dict[str, list[str]] = {}
    for kinds in named.values():
        for kind, names in kinds.items():
            by_kind.setdefault(kind, []).extend(names)
    return [f"{kind} {name}{did_you_mean(name, by_kind[kind])}" for kind, name in checked_resources(targets)
            if by_kind.get(kind) and name not in by_kind[kind]]


def used_by_rollway(targets: Targets) -> tuple[tuple[str, str], ...]:
    """(kind, name) of what rollway's own flows use in ``Targets.region``: its flags and rollouts
    tables and the alert topic it pages. These are read there wherever the app deploys them: one
    the app deploys to another region (or account) fails, as rollway would not find it."""
    return (*(("table", spec.name) for spec in state_tables(targets)), ("topic", targets.alert_topic))


# --- items ------------------------------------------------------------------------------


def check_table(spec: TableSpec, table: Observed, region: str | None = None, key_type: str | None = None,
                defined_by: str | None = None) -> CheckItem:
    """The table exists, is ACTIVE, has the expected keys, and each named index exists and is ACTIVE.

    Args:
        spec: the table expected.
        table: DescribeTable's ``Table``.
        region: where it was read, when not ``Targets.region`` (the app's stack that defines it
            goes elsewhere): named in the reason.
        key_type: the attribute type (``S``, ``N``, ``B``) every key must have, when known: rollway's
            own tables, whose keys its adapters write as strings.
        defined_by: the CDK app's stack whose template defines it, when known: named in the remedy.
    """
    def item(passed: bool, reason: str) -> CheckItem:
        return CheckItem(kind="table", name=spec.name, passed=passed, reason=reason + _read_in(region))

    if (problem := _unseen(table, f"DynamoDB table {spec.name}{_in(region)}",
                           _create(defined_by, "create it (deploy the stack that defines it)"))):
        return CheckItem(kind="table", name=spec.name, passed=False, reason=problem)
    assert table is not None and not isinstance(table, ReadFailed)
    problems: list[str] = []
    status = table.get("TableStatus")
    if status != "ACTIVE":
        problems.append(f"status is {status or 'not reported'}, not ACTIVE: {_table_status_advice(status, defined_by)}")
    keys = {k.get("KeyType"): k.get("AttributeName") for k in table.get("KeySchema") or ()}
    types = {d.get("AttributeName"): d.get("AttributeType") for d in table.get("AttributeDefinitions") or ()}
    for role, expected in (("HASH", spec.hash_key), ("RANGE", spec.range_key)):
        if keys.get(role) != expected:
            problems.append(f"{role.lower()} key is {keys.get(role) or 'none'}, expected {expected or 'none'}")
        elif expected is not None and key_type is not None and types.get(expected) != key_type:
            # A key of another type refuses every write rollway makes ("Type mismatch for key"),
            # found only when the first rollout or flag change tries one.
            problems.append(f"{role.lower()} key {expected} is of type {types.get(expected) or 'not reported'}, "
                            f"expected {key_type}: rollway writes it as {_TYPE_NAMES.get(key_type, key_type)}")
    global_indexes = {i.get("IndexName"): i for i in table.get("GlobalSecondaryIndexes") or ()}
    local_indexes = {i.get("IndexName") for i in table.get("LocalSecondaryIndexes") or ()}
    missing: list[str] = []
    for index in spec.indexes:
        if index in global_indexes:
            index_status = global_indexes[index].get("IndexStatus")
            if index_status == "DELETING":  # the deployed template no longer has it
                problems.append(f"index {index} is DELETING, not ACTIVE: {_add_indexes(1, defined_by)}")
            elif index_status != "ACTIVE":
                # CREATING backfills the index from the table's items: minutes for a large table.
                problems.append(f"index {index} is {index_status or 'of unreported status'}, not ACTIVE: wait for it "
                                "to finish, then check again")
        elif index not in local_indexes:
            have = sorted(str(n) for n in [*global_indexes, *local_indexes])
            missing.append(f"index {index} is missing (it has {', '.join(have) or 'no indexes'})")
    if missing:  # what to do said once, after the last
        problems += [*missing[:-1], f"{missing[-1]}: {_add_indexes(len(missing), defined_by)}"]
    if problems:
        return item(False, "; ".join(problems))
    indexes = f", indexes {', '.join(spec.indexes)} ACTIVE" if spec.indexes else ""
    range_key = f", range key {spec.range_key}" if spec.range_key else ""
    return item(True, f"ACTIVE, hash key {spec.hash_key}{range_key}{indexes}")


# What to do about a table that is not ACTIVE (DescribeTable's TableStatus), other than "wait".
_TABLE_STATUS = {
    "INACCESSIBLE_ENCRYPTION_CREDENTIALS": "DynamoDB cannot use its KMS key (disabled, scheduled for deletion, or its "
                                           "grant revoked): restore DynamoDB's access to the table's KMS key (after "
                                           "seven days without it, DynamoDB archives the table), then check again",
    "ARCHIVING": "DynamoDB is archiving it (its KMS key was out of reach over seven days): once ARCHIVED, restore it "
                 "from the backup DynamoDB made when it archived it (ArchivalSummary's ArchivalBackupArn)",
    "ARCHIVED": "its KMS key was out of reach over seven days: restore it from the backup DynamoDB made when it "
                "archived it (ArchivalSummary's ArchivalBackupArn; to the same name once this table is deleted)",
}


def _table_status_advice(status: str | None, defined_by: str | None) -> str:
    if status in ("CREATING", "UPDATING"):
        return "wait for it to finish, then check again"
    if status == "DELETING":
        remedy = _create(defined_by, "create it (deploy the stack that defines it)")
        return f"it is being deleted: once it is gone, {remedy}"
    return _TABLE_STATUS.get(str(status), "see the table in the DynamoDB console, then check again")


def _add_indexes(count: int, defined_by: str | None) -> str:
    """How to get indexes the table lacks: they belong in its definition, in the stack that deploys it."""
    them = "it" if count == 1 else "them"
    if defined_by is None:
        return f"add {them} to the table's definition and deploy the stack that defines it"
    return f"add {them} to the table's definition in {defined_by} and deploy that stack (deploy_infrastructure)"


def check_queue(spec: QueueSpec, queue: Observed, dlq: Observed, region: str | None = None,
                dlq_region: str | None = None, defined_by: str | None = None,
                dlq_defined_by: str | None = None,
                redrive_targets: Mapping[str, Observed] | None = None) -> CheckItem:
    """The queue exists and redrives to its named DLQ after ``max_receive_count``; the DLQ exists,
    is of the queue's type (FIFO or standard), and keeps messages at least as long as the queue
    (a standard queue's).

    Args:
        spec: the queue expected.
        queue: GetQueueAttributes' ``Attributes`` of the queue (``QueueArn``, ``RedrivePolicy``).
        dlq: the same for the dead-letter queue.
        region: where the queue was read, when not ``Targets.region``: named in the reason.
        dlq_region: the same for the dead-letter queue.
        defined_by / dlq_defined_by: the CDK app's stack whose template defines the queue / the
            DLQ, when known: named in the remedy.
        redrive_targets: deadLetterTargetArn -> what was read of that queue, for a queue
            redriving to another than its DLQ: None (it no longer exists) is said.
    """
    def item(passed: bool, reason: str) -> CheckItem:
        read_in = _read_in(region) if dlq_region == region else (
            f" (read in {region or 'Targets.region'}, its DLQ in {dlq_region or 'Targets.region'})")
        return CheckItem(kind="queue", name=spec.name, passed=passed, reason=reason + read_in)

    dlq_problem = _unseen(dlq, f"its dead-letter queue {spec.dlq_name}{_in(dlq_region)}",
                          _create(dlq_defined_by, "create it"))
    if (problem := _unseen(queue, f"SQS queue {spec.name}{_in(region)}",
                           _create(defined_by, "create it (deploy the stack that defines it)"))):
        # The DLQ was read too: one missing as well is said now, not after the queue is made
        # (its remedy once, when the same stack makes both).
        if dlq is None and dlq_defined_by == defined_by:
            dlq_problem = f"its dead-letter queue {spec.dlq_name}{_in(dlq_region)} does not exist either"
        return CheckItem(kind="queue", name=spec.name, passed=False,
                         reason="; ".join(p for p in (problem, dlq_problem) if p))
    assert queue is not None and not isinstance(queue, ReadFailed)
    if isinstance(dlq, Mapping) and (mismatch := _other_type(spec, queue, dlq)) is not None:
        # No RedrivePolicy can name it (SQS refuses one; the embedded AWS took it, and the item
        # passed): what to set in the policy would be advice SQS refuses.
        return item(False, mismatch)
    problems: list[str] = [dlq_problem] if dlq_problem else []
    raw = queue.get("RedrivePolicy")
    # Every redrive problem says what to set, and in which stack when known.
    dlq_arn = dlq.get("QueueArn") if isinstance(dlq, Mapping) else None
    to = dlq_arn or f"the ARN of {spec.dlq_name}"
    fix = (f"in {defined_by} and deploy that stack (deploy_infrastructure)" if defined_by is not None
           else "and deploy the stack that defines it")
    wanted = json.dumps({"deadLetterTargetArn": to, "maxReceiveCount": spec.max_receive_count})
    if not raw:
        problems.append(f"it has no dead-letter queue (no RedrivePolicy): failed messages are never moved to "
                        f"{spec.dlq_name}: set its RedrivePolicy to {wanted} {fix}")
        return item(False, "; ".join(problems))
    try:
        policy = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (ValueError, TypeError):
        return item(False, "; ".join([*problems, f"its RedrivePolicy is not JSON: {raw!r}: set it to {wanted} {fix}"]))
    target = str(policy.get("deadLetterTargetArn") or "")
    if not target:
        problems.append(f"its RedrivePolicy names no deadLetterTargetArn: set it to {to} {fix}")
    elif (dlq_arn and target != dlq_arn) or target.rsplit(":", 1)[-1] != spec.dlq_name:
        # A DLQ deleted (renamed in the app, say) leaves the RedrivePolicy naming it: said, as
        # "redrives to old-dlq" alone read as if old-dlq still caught the failed messages.
        gone = (", a queue that no longer exists" if redrive_targets and target in redrive_targets
                and redrive_targets[target] is None else "")
        problems.append(f"it redrives to {target.rsplit(':', 1)[-1]} ({target}){gone}, not to {spec.dlq_name}: set "
                        f"its RedrivePolicy's deadLetterTargetArn to {to} {fix}")
    count = policy.get("maxReceiveCount")
    if str(count) != str(spec.max_receive_count):
        problems.append(f"maxReceiveCount is {count if count is not None else 'not set'}, "
                        f"expected {spec.max_receive_count}: set its RedrivePolicy's maxReceiveCount to "
                        f"{spec.max_receive_count} {fix}")
    if (short := _dlq_too_short(queue, dlq)) is not None:
        problems.append(short)
    if problems:
        return item(False, "; ".join(problems))
    return item(True, f"redrives to {spec.dlq_name} after {spec.max_receive_count} receives; the DLQ exists")


def redrive_target(queue: Mapping[str, Any]) -> str:
    """The deadLetterTargetArn of a queue's RedrivePolicy (GetQueueAttributes' ``Attributes``),
    or "" (none, or not JSON: ``check_queue`` says so). What the checklist follows to a DLQ of
    another name, and what the rollout's preflight compares with the watched DLQ's ARN."""
    try:
        raw = queue.get("RedrivePolicy")
        policy = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        return str(policy.get("deadLetterTargetArn") or "")
    except (ValueError, TypeError, AttributeError):
        return ""


def _fifo(attributes: Mapping[str, Any]) -> bool:
    return str(attributes.get("FifoQueue", "")).lower() == "true"  # a standard queue's has none


def _other_type(spec: QueueSpec, queue: Mapping[str, Any], dlq: Mapping[str, Any]) -> str | None:
    """Why the DLQ cannot be the queue's, being of the other type (FIFO, standard), or None."""
    if _fifo(queue) == _fifo(dlq):
        return None
    kind, other = ("FIFO", "standard") if _fifo(queue) else ("standard", "FIFO")
    return (f"it is a {kind} queue, but its dead-letter queue {spec.dlq_name} is a {other} queue: SQS moves a {kind} "
            f"queue's failed messages only to a {kind} queue (a {other} queue's only to a {other} queue); give it a "
            f"{kind} dead-letter queue (dlq_name in Targets.queues, and the queue's RedrivePolicy in the stack that "
            "defines it)")


def _dlq_too_short(queue: Mapping[str, Any], dlq: Observed) -> str | None:
    """Why the DLQ would delete what it receives too soon, or None.

    A standard queue's message keeps its first enqueue time when it is moved to the DLQ, so a
    DLQ keeping messages less long than the queue deletes a message that waited in the queue
    longer than that as soon as it arrives: the dead letter the DLQ alarm is about is gone. (A
    FIFO queue's move resets the time.) Judged when SQS gave both periods, as it always does.
    """
    if not isinstance(dlq, Mapping) or _fifo(queue):
        return None
    try:
        kept, waits = int(dlq["MessageRetentionPeriod"]), int(queue["MessageRetentionPeriod"])
    except (KeyError, TypeError, ValueError):
        return None
    if kept >= waits:
        return None
    return (f"its DLQ keeps messages {kept} s, less than the queue's {waits} s: a message moved there keeps its "
            f"enqueue time, so one that waited longer than {kept} s is deleted on arrival; set the DLQ's "
            "MessageRetentionPeriod at least as long as the queue's (AWS advises longer)")


def check_stack(name: str, stack: Observed, region: str | None = None,
                construct_ids: Mapping[str, str] | None = None,
                app_stacks: Sequence[str] | None = None) -> CheckItem:
    """The CloudFormation stack exists and its last operation completed (DescribeStacks' Stack).

    Args:
        name: the stack.
        stack: DescribeStacks' Stack, None when it does not exist, or the failed read.
        region: where it was read, when not ``Targets.region`` (a stack the app pins elsewhere):
            named in the reason, so "does not exist" says where it was looked for.
        construct_ids: the CDK app's construct id -> CloudFormation name, for its stacks with a
            stackName of their own (``AppStacks.construct_ids``), when the app was read: a
            ``name`` that is one of those ids fails saying which name to check instead.
        app_stacks: the CloudFormation names of the CDK app's stacks, when the app was read: a
            ``name`` that does not exist and is not one of them fails naming the closest.
    """
    where = f" in {region}" if region else ""
    if stack is None and (hint := construct_id_hint(name, construct_ids or {})) is not None:
        # "deploy it" sent a person to deploy a stack that is deployed, under its other name.
        return CheckItem(kind="stack", name=name, passed=False,
                         reason=f"CloudFormation stack {name}{where} does not exist: {hint} in Targets.stacks")
    if stack is None and app_stacks is not None and name not in app_stacks:
        # A misspelt name: "deploy it" sent a person to deploy the stacks again, to the same item.
        return CheckItem(kind="stack", name=name, passed=False, reason=(
            f"CloudFormation stack {name}{where} does not exist, and the CDK app defines no stack of that name"
            f"{did_you_mean(name, app_stacks)}: correct Targets.stacks, or deploy it from the app that defines it"))
    if (problem := _unseen(stack, f"CloudFormation stack {name}{where}", "deploy it (deploy_infrastructure)")):
        return CheckItem(kind="stack", name=name, passed=False, reason=problem)
    assert stack is not None and not isinstance(stack, ReadFailed)
    status = str(stack.get("StackStatus") or "not reported")
    if status in _DEPLOYED:
        return CheckItem(kind="stack", name=name, passed=True, reason=f"{status}{where}")
    why = f": {stack['StackStatusReason']}" if stack.get("StackStatusReason") else ""
    if status.endswith("_IN_PROGRESS"):
        advice = "an operation is still under way; wait for it, then check again"
    elif status == "UPDATE_ROLLBACK_COMPLETE":
        advice = "its last update was rolled back, so the account runs the version before it; fix and deploy again"
    elif (remedy := stuck_remedy(status, name, region)) is not None:
        # What a failed rollback, deletion or a --no-rollback deploy left behind takes no deploy until
        # a person acts, the deploy's refusal says so too: "see its events, fix and deploy it again"
        # left a person to find out alone whether a deploy can go over them, and what to do when not.
        advice = f"{remedy}, then deploy it again"
    else:
        advice = "it is not deployed as planned; see its events, fix and deploy it again"
    return CheckItem(kind="stack", name=name, passed=False, reason=f"{status}{why}: {advice}")


def check_dashboard(name: str, dashboard: Observed, region: str | None = None,
                    defined_by: str | None = None) -> CheckItem:
    """The CloudWatch dashboard exists (GetDashboard's answer) and has a body.

    Args:
        region: where it was read, when not ``Targets.region``: named in the reason.
        defined_by: the CDK app's stack whose template defines it, when known: named in the remedy.
    """
    if (problem := _unseen(dashboard, f"CloudWatch dashboard {name}{_in(region)}",
                           _create(defined_by, "create it (deploy the monitoring stack)"))):
        return CheckItem(kind="dashboard", name=name, passed=False, reason=problem)
    assert dashboard is not None and not isinstance(dashboard, ReadFailed)
    body = dashboard.get("DashboardBody")
    try:
        widgets = json.loads(body).get("widgets") if body else None
    except (ValueError, AttributeError):
        widgets = None
    if not widgets:
        # Widgets removed in the console come back with no deploy that leaves the template as it
        # is: CloudFormation changes only what the template changes.
        where = f"{defined_by}'s template" if defined_by is not None else "the template of the stack that defines it"
        deploy = " (deploy_infrastructure)" if defined_by is not None else ""
        return CheckItem(kind="dashboard", name=name, passed=False, reason=(
            f"it exists but shows no widgets: add its widgets in {where} and deploy that stack{deploy}, or in the "
            "CloudWatch console if they were removed there (a deploy with no change does not restore them)"
            + _read_in(region)))
    return CheckItem(kind="dashboard", name=name, passed=True,
                     reason=f"exists, {len(widgets)} widget(s)" + _read_in(region))


def check_alarm(name: str, alarm: Observed, topic_arn: str | None | ReadFailed, topic_name: str,
                region: str | None = None, defined_by: str | None = None) -> CheckItem:
    """The alarm exists, its actions are enabled, one of its alarm actions is the alert topic,
    and it is not firing (ALARM) already.

    Args:
        name: the alarm.
        alarm: DescribeAlarms' MetricAlarm (or CompositeAlarm).
        topic_arn: the alert topic's ARN, None when it was not found, or the failure to look it up
            (its actions then not judged, the rest still).
        topic_name: the alert topic's name, for the reason.
        region: where the alarm was read, when not ``Targets.region``: named in the reason.
        defined_by: the CDK app's stack whose template defines it, when known: named in the remedy.
    """
    def item(passed: bool, reason: str) -> CheckItem:
        return CheckItem(kind="alarm", name=name, passed=passed, reason=reason + _read_in(region))

    if (problem := _unseen(alarm, f"CloudWatch alarm {name}{_in(region)}",
                           _create(defined_by, "create it (deploy the monitoring stack)"))):
        return CheckItem(kind="alarm", name=name, passed=False, reason=problem)
    assert alarm is not None and not isinstance(alarm, ReadFailed)
    actions = [str(a) for a in alarm.get("AlarmActions") or ()]
    # Every problem at once: stopping at the first hid an alarm firing now behind a missing
    # action, found only once that was fixed and the checklist run again.
    problems: list[str] = []
    if isinstance(topic_arn, ReadFailed):
        problems.append(_topic_unread(topic_arn))
    elif topic_arn is None:
        problems.append(f"the alert topic {topic_name} was not found, so no alarm action can reach it "
                        f"(its actions: {', '.join(actions) or 'none'})")
    elif topic_arn not in actions:
        namesake = next((a for a in actions if a.startswith("arn:") and a.rsplit(":", 1)[-1] == topic_name), None)
        if namesake is not None:
            # An alarm notifies topics of its own region only: one deployed elsewhere pages a
            # same-named topic that rollway's pages and the topic's subscribers never see.
            problems.append(f"it notifies {namesake}, not the alert topic {topic_arn}: an alarm can notify "
                            "only a topic of its own region; deploy it where the alert topic is")
        else:
            problems.append(f"no alarm action on the alert topic {topic_name}: nobody is told when it fires "
                            f"(its actions: {', '.join(actions) or 'none'})")
    if alarm.get("ActionsEnabled") is not True:
        problems.append("its actions are disabled (ActionsEnabled is not true): it fires without telling "
                        "anyone; enable them with enable-alarm-actions")
    state = alarm.get("StateValue")
    if state == "ALARM":
        # Firing before the deploy: what it watches is failing already, and a rollout judged
        # against it (or its page lost among this one's) starts from a broken baseline.
        since = alarm.get("StateUpdatedTimestamp")
        when = f" since {since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if isinstance(since, datetime) else ""
        # CloudWatch's words, or anyone's (set-alarm-state takes any text): on one line, in the log and the message.
        why = f": {on_one_line(alarm['StateReason'])}" if alarm.get("StateReason") else ""
        problems.append(f"it is in ALARM{when}{why}; what it watches is failing now: fix that, then check again "
                        "once it is OK")
    if problems:
        return item(False, "; ".join(problems))
    if state == "INSUFFICIENT_DATA":
        # Passed: every alarm is so until its metric has data, as after the deploy that made it. But
        # said bare, a person could not tell that from an alarm whose dimensions name nothing, which
        # never gets data and never fires.
        why = f" (CloudWatch says: {on_one_line(alarm['StateReason'])})" if alarm.get("StateReason") else ""
        return item(True, f"exists, INSUFFICIENT_DATA{why}: it has no data to judge yet, as an alarm just made or "
                          "one whose metric comes only with traffic; if it stays so once the service runs, check its "
                          "metric's namespace, name and dimensions: an alarm that never gets data never fires; and "
                          f"notifies {topic_name}")
    return item(True, f"exists{f', {state},' if state else ''} and notifies {topic_name}")


def check_topic(name: str, topic_arn: str | None, subscriptions: Sequence[Mapping[str, Any]] | ReadFailed | None,
                region: str | None = None) -> CheckItem:
    """The alert topic exists and has at least one confirmed subscription: someone gets the page.

    Args:
        name: the topic.
        topic_arn: its ARN, None when no topic of that name exists.
        subscriptions: ListSubscriptionsByTopic's ``Subscriptions``, or the failure to read them.
        region: where it was read, when not ``Targets.region``: named in the reason.
    """
    def item(passed: bool, reason: str) -> CheckItem:
        return CheckItem(kind="alert topic", name=name, passed=passed, reason=reason + _read_in(region))

    if topic_arn is None:
        return CheckItem(kind="alert topic", name=name, passed=False,
                         reason=f"SNS topic {name}{_in(region)} does not exist: alarms have nowhere to send; create it")
    if isinstance(subscriptions, ReadFailed):
        return item(False, f"could not read its subscriptions ({subscriptions.what}): {subscriptions.message}")
    if subscriptions is None:
        return item(False, "its subscriptions were not read")
    confirmed = [s for s in subscriptions if str(s.get("SubscriptionArn", "")).startswith("arn:")]
    pending = len(subscriptions) - len(confirmed)
    if not confirmed:
        waiting = f" ({pending} pending confirmation: confirm them)" if pending else ""
        return item(False, f"it has no confirmed subscription: nobody gets the page{waiting}; subscribe the "
                           "on-call (email, chat, pager)")
    kinds = sorted({str(s.get("Protocol")) for s in confirmed})
    return item(True, f"{len(confirmed)} subscription(s) ({', '.join(kinds)})")


def _topic_unread(failed: ReadFailed) -> str:
    return f"could not look the alert topic up ({failed.what}): {failed.message}"


def _in(region: str | None) -> str:
    """`` in <region>`` for a resource read outside ``Targets.region``, after its name."""
    return f" in {region}" if region else ""


def _read_in(region: str | None) -> str:
    """`` (read in <region>)`` after a reason, for a resource read outside ``Targets.region``."""
    return f" (read in {region})" if region else ""


def _create(defined_by: str | None, otherwise: str) -> str:
    """How to make a missing resource: deploy the app's stack whose template defines it, when known.

    Without it the remedy guessed ("deploy the monitoring stack"): an app whose alarms live in
    its service stack, as many do, sent a person looking for a stack it does not have.
    """
    if defined_by is None:
        return otherwise
    return f"deploy {defined_by}, whose template defines it (deploy_infrastructure)"


def _unseen(observed: Observed, what: str, remedy: str) -> str | None:
    """Why ``observed`` cannot be judged (not found, or not read), or None when it can."""
    if observed is None:
        return f"{what} does not exist: {remedy}"
    if isinstance(observed, ReadFailed):
        return f"could not read {what} ({observed.what}): {observed.message}"
    return None


@dataclass(frozen=True)
class PinRead:
    """What was read of the listener rule pinning the validation's HTTP checks to the canary target
    group (``rollway.pinning``), for the header ``validate_deployment`` sends (its ``spec.canary_header``).

    Attributes:
        header: the header, ``Name: value``.
        listener: the listener, as the targets name it (``<load balancer>:<port>``), with its ARN
            when it was found.
        found: the pin; why there is none, with the rule to create (``find_pin``'s ``Unpinned``, which
            says too when whether there is one turns on regular expressions; or the load balancer,
            listener, target group or weighted rule not found); or the failed read.
    """

    header: str
    listener: str
    found: Pin | str | ReadFailed


def check_pin(read: PinRead) -> CheckItem:
    """The listener has a rule pinning requests carrying ``read.header`` to the canary target group
    ahead of the weighted rule: without it ``validate_deployment`` sends none of its HTTP checks."""
    def item(passed: bool, reason: str) -> CheckItem:
        return CheckItem(kind="listener rule", name=read.header, passed=passed, reason=reason)

    found = read.found
    if isinstance(found, Pin):
        return item(True, f"listener {read.listener}: the validation's HTTP checks are {found.said()}")
    if isinstance(found, ReadFailed):
        return item(False, f"could not read listener {read.listener}'s rules ({found.what}): {found.message}")
    # The header, the listener and what to create: the validation refused its checks only after a
    # deploy, and this item is where a person setting the infrastructure up looks. "Not all": a
    # rule may pin some of them, or all but those another rule ahead of it meets (``find_pin``
    # names each rule and what it does), where "does not pin them" denied the one pinning them.
    checks = (f"the validation's HTTP checks carrying `{read.header}` (validate_deployment's spec.canary_header) to "
              "the canary target group")
    return item(False, unpinned_said(found, not_pinned=f"listener {read.listener} does not pin all {checks}",
                                     whether=f"listener {read.listener} pins all {checks}"))


# --- the whole list ---------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """Everything the adapter read for the checklist.

    Attributes:
        stacks: stack name -> DescribeStacks' ``Stack``.
        tables: table name -> DescribeTable's ``Table``.
        queues: queue name (work queues and DLQs) -> its attributes.
        dashboard: GetDashboard's answer.
        alarms: alarm name -> its description.
        topic_arn: the alert topic's ARN; None when not found; ReadFailed when the topics
            could not be listed.
        subscriptions: the alert topic's subscriptions.
        stack_regions: stack -> the region it was read in, for those read outside ``Targets.region``.
        regions: (kind, name) -> the region it was read in, for the other resources read outside
            ``Targets.region`` (kinds: ``table``, ``queue``, ``dashboard``, ``alarm``, ``topic``).
        misplaced: (kind, name) -> where the app deploys it, for those of ``used_by_rollway``
            the app deploys outside ``Targets.region`` (or this account): their items fail.
        defined_by: (kind, name) -> the CDK app's stack whose template defines it, when the app
            was read: a missing one's remedy names that stack.
        construct_ids: the CDK app's construct id -> CloudFormation name of its stacks with a
            stackName of their own, when the app was read: a stack of ``Targets.stacks`` named by
            its construct id fails saying so.
        app_stacks: the CloudFormation names of the CDK app's stacks, when the app was read: a
            missing stack of ``Targets.stacks`` it does not define fails naming the closest.
        redrive_targets: deadLetterTargetArn -> what was read of that queue, for the queues
            redriving to another than their DLQ (those of their own account and region).
        pin: the listener rule pinning the validation's checks, when they are pinned (a
            ``canary_header`` given); None: not asked for, and no item.
    """

    stacks: Mapping[str, Observed]
    tables: Mapping[str, Observed]
    queues: Mapping[str, Observed]
    dashboard: Observed
    alarms: Mapping[str, Observed]
    topic_arn: str | None | ReadFailed
    subscriptions: Sequence[Mapping[str, Any]] | ReadFailed | None
    stack_regions: Mapping[str, str] = field(default_factory=dict)
    regions: Mapping[tuple[str, str], str] = field(default_factory=dict)
    misplaced: Mapping[tuple[str, str], str] = field(default_factory=dict)
    defined_by: Mapping[tuple[str, str], str] = field(default_factory=dict)
    construct_ids: Mapping[str, str] = field(default_factory=dict)
    redrive_targets: Mapping[str, Observed] = field(default_factory=dict)
    app_stacks: Sequence[str] | None = None
    pin: PinRead | None = None


def evaluate(targets: Targets, seen: Observation) -> Checklist:
    """Every checklist item for ``targets`` from what was read. A resource absent from ``seen``
    counts as not read, never as passing."""
    not_read = ReadFailed("not read", "the checklist read nothing for it")
    items = [check_stack(name, seen.stacks.get(name, not_read), seen.stack_regions.get(name), seen.construct_ids,
                         seen.app_stacks)
             for name in targets.stacks]
    where, stack_of = seen.regions.get, seen.defined_by.get
    own = {(t.name, t.hash_key, t.range_key) for t in state_tables(targets)}
    items += [check_table(spec, seen.tables.get(spec.name, not_read), where(("table", spec.name)),
                          STATE_KEY_TYPE if (spec.name, spec.hash_key, spec.range_key) in own else None,
                          stack_of(("table", spec.name)))
              for spec in all_tables(targets)]
    items += [check_queue(q, seen.queues.get(q.name, not_read), seen.queues.get(q.dlq_name, not_read),
                          where(("queue", q.name)), where(("queue", q.dlq_name)), stack_of(("queue", q.name)),
                          stack_of(("queue", q.dlq_name)), seen.redrive_targets)
              for q in dict.fromkeys(targets.queues)]  # one named twice is one item, not two failed alike
    items.append(check_dashboard(targets.dashboard, seen.dashboard, where(("dashboard", targets.dashboard)),
                                 stack_of(("dashboard", targets.dashboard))))
    topic = seen.topic_arn
    # The alarms are judged also when the topic could not be looked up: failing each alarm with
    # the lookup alone hid one missing, or firing now, until the lookup was fixed.
    items += [check_alarm(a, seen.alarms.get(a, not_read), topic, targets.alert_topic, where(("alarm", a)),
                          stack_of(("alarm", a)))
              for a in dict.fromkeys(targets.alarms)]
    if isinstance(topic, ReadFailed):
        items.append(CheckItem(kind="alert topic", name=targets.alert_topic, passed=False,
                               reason=_topic_unread(topic)))
    else:
        items.append(check_topic(targets.alert_topic, topic, seen.subscriptions,
                                 where(("topic", targets.alert_topic))))
    if seen.pin is not None:
        items.append(check_pin(seen.pin))
    # Also when the topics could not be listed: returning early passed a rollway table the app
    # deploys to another region whenever a same-named one stood in Targets.region.
    return Checklist(items=tuple(_misplaced(item, seen.misplaced, targets.region) for item in items))


def _misplaced(item: CheckItem, misplaced: Mapping[tuple[str, str], str], region: str) -> CheckItem:
    """``item`` failed when the app deploys what rollway uses in ``region`` somewhere else."""
    kind = "topic" if item.kind == "alert topic" else item.kind
    where = misplaced.get((kind, item.name))
    if where is None:
        return item
    return item.model_copy(update={"passed": False, "reason": (
        f"rollway uses it in {region} (Targets.region), but {where}, where rollway would not find it: deploy that "
        "stack to this account and region")})
