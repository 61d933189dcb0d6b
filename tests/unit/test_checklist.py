"""The pre-deployment checklist judged from what AWS shows (pure, table-driven)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from rollway.checklist import (
    Checklist, CheckItem, Observation, ReadFailed, check_alarm, check_dashboard, check_queue, check_stack, check_table,
    check_topic, evaluate,
)
from rollway.targets import QueueSpec, TableSpec, Targets

SESSIONS = TableSpec(name="sessions", hash_key="sessionId", indexes=("userId-index",))
ROLLOUTS = TableSpec(name="rollouts", hash_key="service", range_key="rollout_id")
DENIED = ReadFailed("DescribeTable sessions", "AccessDeniedException: not allowed")


def table(status="ACTIVE", keys=(("sessionId", "HASH"),), gsis=(("userId-index", "ACTIVE"),), lsis=(), key_type="S"):
    described = {"TableStatus": status, "KeySchema": [{"AttributeName": a, "KeyType": t} for a, t in keys],
                 "AttributeDefinitions": [{"AttributeName": a, "AttributeType": key_type} for a, _ in keys]}
    if gsis:
        described["GlobalSecondaryIndexes"] = [{"IndexName": n, "IndexStatus": s} for n, s in gsis]
    if lsis:
        described["LocalSecondaryIndexes"] = [{"IndexName": n} for n in lsis]
    return described


@pytest.mark.parametrize("spec, described, passed, words", [
    (SESSIONS, table(), True, ["ACTIVE", "userId-index"]),
    (SESSIONS, table(lsis=("userId-index",), gsis=()), True, []),
    (SESSIONS, None, False, ["does not exist"]),
    (SESSIONS, DENIED, False, ["could not read", "AccessDenied"]),
    (SESSIONS, table(status="CREATING"), False, ["CREATING, not ACTIVE"]),
    (SESSIONS, {"KeySchema": [{"AttributeName": "sessionId", "KeyType": "HASH"}]}, False, ["not reported"]),
    (SESSIONS, table(gsis=()), False, ["index userId-index is missing", "no indexes"]),
    (SESSIONS, table(gsis=(("other-index", "ACTIVE"),)), False, ["userId-index is missing", "other-index"]),
    (SESSIONS, table(gsis=(("userId-index", "CREATING"),)), False, ["userId-index is CREATING"]),
    (SESSIONS, table(gsis=(("userId-index", None),)), False, ["unreported status"]),
    (SESSIONS, table(keys=(("id", "HASH"),)), False, ["hash key is id, expected sessionId"]),
    (SESSIONS, table(keys=()), False, ["hash key is none"]),
    (ROLLOUTS, table(keys=(("service", "HASH"), ("rollout_id", "RANGE")), gsis=()), True, ["range key rollout_id"]),
    (ROLLOUTS, table(keys=(("service", "HASH"),), gsis=()), False, ["range key is none, expected rollout_id"]),
    (SESSIONS, table(keys=(("sessionId", "HASH"), ("at", "RANGE"))), False, ["range key is at, expected none"]),
])
def test_tables(spec, described, passed, words):
    item = check_table(spec, described)
    assert item.passed is passed, item.reason
    for word in words:
        assert word in item.reason


@pytest.mark.parametrize("described, defined_by, says", [
    # Each stated the problem and left what to do to the reader, where every other item says it.
    (table(gsis=()), None, "index userId-index is missing (it has no indexes): add it to the table's definition and "
                           "deploy the stack that defines it"),
    (table(gsis=()), "SessionStack", "index userId-index is missing (it has no indexes): add it to the table's "
                                     "definition in SessionStack and deploy that stack (deploy_infrastructure)"),
    (table(gsis=(("userId-index", "CREATING"),)), None, "index userId-index is CREATING, not ACTIVE: wait for it to "
                                                        "finish, then check again"),
    (table(gsis=(("userId-index", "DELETING"),)), "SessionStack", "index userId-index is DELETING, not ACTIVE: add it "
                                                                  "to the table's definition in SessionStack"),
    (table(status="UPDATING"), None, "status is UPDATING, not ACTIVE: wait for it to finish, then check again"),
    (table(status="CREATING"), None, "status is CREATING, not ACTIVE: wait for it to finish, then check again"),
    (table(status="DELETING"), "SessionStack", "status is DELETING, not ACTIVE: it is being deleted: once it is gone, "
                                               "deploy SessionStack, whose template defines it (deploy_infrastructure)"),
    (table(status="INACCESSIBLE_ENCRYPTION_CREDENTIALS"), None, "restore DynamoDB's access to the table's KMS key"),
    (table(status="ARCHIVED"), None, "restore it from the backup DynamoDB made when it archived it"),
])
def test_a_failed_table_says_what_to_do(described, defined_by, says):
    item = check_table(SESSIONS, described, defined_by=defined_by)
    assert not item.passed and says in item.reason, item.reason


def test_two_missing_indexes_are_each_said_and_what_to_do_once():
    spec = SESSIONS.model_copy(update={"indexes": ("userId-index", "byDate")})
    assert check_table(spec, table(gsis=())).reason == (
        "index userId-index is missing (it has no indexes); index byDate is missing (it has no indexes): add them to "
        "the table's definition and deploy the stack that defines it")


@pytest.mark.parametrize("described, passed, words", [
    (table(keys=(("service", "HASH"), ("rollout_id", "RANGE")), gsis=()), True, ["range key rollout_id"]),
    # Every write the ledger makes would be refused: "Type mismatch for key".
    (table(keys=(("service", "HASH"), ("rollout_id", "RANGE")), gsis=(), key_type="N"), False,
     ["hash key service is of type N, expected S", "range key rollout_id is of type N, expected S",
      "rollway writes it as a string"]),
    ({**table(keys=(("service", "HASH"), ("rollout_id", "RANGE")), gsis=()), "AttributeDefinitions": []}, False,
     ["hash key service is of type not reported"]),
])
def test_rollways_own_tables_need_string_keys(described, passed, words):
    item = check_table(ROLLOUTS, described, key_type="S")
    assert item.passed is passed, item.reason
    for word in words:
        assert word in item.reason


QUEUE = QueueSpec(name="input", dlq_name="input-dlq", max_receive_count=3)
DLQ_ARN = "arn:aws:sqs:us-west-2:123456789012:input-dlq"


def redrive(target=DLQ_ARN, count=3):
    return {"QueueArn": "arn:aws:sqs:us-west-2:123456789012:input",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": count})}


@pytest.mark.parametrize("queue, dlq, passed, words", [
    (redrive(), {"QueueArn": DLQ_ARN}, True, ["redrives to input-dlq after 3"]),
    (redrive(count="3"), {"QueueArn": DLQ_ARN}, True, []),
    (None, {"QueueArn": DLQ_ARN}, False, ["SQS queue input does not exist"]),
    (ReadFailed("GetQueueAttributes input", "Throttling: slow down"), {"QueueArn": DLQ_ARN}, False,
     ["could not read", "Throttling"]),
    ({"QueueArn": "arn:aws:sqs:us-west-2:123456789012:input"}, {"QueueArn": DLQ_ARN}, False,
     ["no dead-letter queue"]),
    (redrive(target="arn:aws:sqs:us-west-2:123456789012:other-dlq"), {"QueueArn": DLQ_ARN}, False,
     ["redrives to other-dlq", "not to input-dlq"]),
    (redrive(count=5), {"QueueArn": DLQ_ARN}, False, ["maxReceiveCount is 5, expected 3"]),
    (redrive(), None, False, ["dead-letter queue input-dlq does not exist"]),
    (redrive(), ReadFailed("GetQueueAttributes input-dlq", "AccessDenied: no"), False, ["could not read its dead"]),
    ({"RedrivePolicy": "{not json"}, {"QueueArn": DLQ_ARN}, False, ["not JSON"]),
    ({"RedrivePolicy": json.dumps({"maxReceiveCount": 3})}, {"QueueArn": DLQ_ARN}, False, ["no deadLetterTargetArn"]),
    ({"RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN})}, {"QueueArn": DLQ_ARN}, False,
     ["maxReceiveCount is not set"]),
    # A DLQ deleting what the queue moves there before anyone reads it (SQS's default 4 days against 1 minute).
    ({**redrive(), "MessageRetentionPeriod": "345600"}, {"QueueArn": DLQ_ARN, "MessageRetentionPeriod": "60"}, False,
     ["its DLQ keeps messages 60 s, less than the queue's 345600 s"]),
    ({**redrive(), "MessageRetentionPeriod": "345600"}, {"QueueArn": DLQ_ARN, "MessageRetentionPeriod": "1209600"},
     True, []),
    ({**redrive(), "MessageRetentionPeriod": "345600", "FifoQueue": "true"},
     {"QueueArn": DLQ_ARN, "MessageRetentionPeriod": "60", "FifoQueue": "true"}, True, []),
    # SQS moves a queue's failed messages only to a queue of its own type, whatever the policy says:
    # redriving to the named DLQ is impossible, so what to set is not said.
    ({**redrive(target="arn:aws:sqs:us-west-2:123456789012:other.fifo"), "FifoQueue": "true"},
     {"QueueArn": DLQ_ARN}, False, ["it is a FIFO queue, but its dead-letter queue input-dlq is a standard queue: "
                                    "SQS moves a FIFO queue's failed messages only to a FIFO queue"]),
    (redrive(), {"QueueArn": DLQ_ARN, "FifoQueue": "true"}, False,
     ["it is a standard queue, but its dead-letter queue input-dlq is a FIFO queue"]),
    # A DLQ of the same name in another account or region is not this queue's DLQ.
    (redrive(target="arn:aws:sqs:eu-west-1:999999999999:input-dlq"), {"QueueArn": DLQ_ARN}, False, ["not to input-dlq"]),
])
def test_queues(queue, dlq, passed, words):
    item = check_queue(QUEUE, queue, dlq)
    assert item.passed is passed, item.reason
    for word in words:
        assert word in item.reason


OTHER_DLQ = "arn:aws:sqs:us-west-2:123456789012:other-dlq"


@pytest.mark.parametrize("read, defined_by, says", [
    # It stated the problem only; a redrive target since deleted read as if it were still there.
    ({}, None, f"it redrives to other-dlq ({OTHER_DLQ}), not to input-dlq: set its RedrivePolicy's "
               f"deadLetterTargetArn to {DLQ_ARN} and deploy the stack that defines it"),
    ({OTHER_DLQ: None}, "SQSStack", f"it redrives to other-dlq ({OTHER_DLQ}), a queue that no longer exists, not to "
                                    f"input-dlq: set its RedrivePolicy's deadLetterTargetArn to {DLQ_ARN} in SQSStack "
                                    "and deploy that stack (deploy_infrastructure)"),
    ({OTHER_DLQ: {"QueueUrl": "https://sqs/other-dlq"}}, None, f"it redrives to other-dlq ({OTHER_DLQ}), not to"),
])
def test_a_queue_redriving_elsewhere_says_what_to_do_and_whether_that_queue_is_gone(read, defined_by, says):
    item = check_queue(QUEUE, redrive(target=OTHER_DLQ), {"QueueArn": DLQ_ARN}, defined_by=defined_by,
                       redrive_targets=read)
    assert not item.passed and says in item.reason, item.reason


@pytest.mark.parametrize("defined_by, deploy", [
    (None, "and deploy the stack that defines it"),
    ("SQSStack", "in SQSStack and deploy that stack (deploy_infrastructure)"),
])
@pytest.mark.parametrize("queue, says", [
    # Each stated the problem only, where a redrive to another queue said what to set, and where.
    (redrive(count=5), "maxReceiveCount is 5, expected 3: set its RedrivePolicy's maxReceiveCount to 3 "),
    ({}, "it has no dead-letter queue (no RedrivePolicy): failed messages are never moved to input-dlq: set its "
         f'RedrivePolicy to {{"deadLetterTargetArn": "{DLQ_ARN}", "maxReceiveCount": 3}} '),
    ({"RedrivePolicy": json.dumps({"maxReceiveCount": 3})},
     f"its RedrivePolicy names no deadLetterTargetArn: set it to {DLQ_ARN} "),
    ({"RedrivePolicy": "{not json"}, "its RedrivePolicy is not JSON: '{not json': set it to "
     f'{{"deadLetterTargetArn": "{DLQ_ARN}", "maxReceiveCount": 3}} '),
])
def test_a_queue_whose_redrive_policy_is_wrong_says_what_to_set_and_where(queue, says, defined_by, deploy):
    item = check_queue(QUEUE, queue, {"QueueArn": DLQ_ARN}, defined_by=defined_by)
    assert not item.passed and says + deploy in item.reason, item.reason


def test_a_redrive_remedy_names_the_dlq_by_name_when_its_arn_is_unknown():
    item = check_queue(QUEUE, {"RedrivePolicy": json.dumps({"maxReceiveCount": 3})}, None)
    assert "names no deadLetterTargetArn: set it to the ARN of input-dlq and deploy" in item.reason, item.reason


WIDGETS_GONE_BY_HAND = ("or in the CloudWatch console if they were removed there (a deploy with no change does not "
                        "restore them)")


@pytest.mark.parametrize("defined_by, says", [
    (None, "it exists but shows no widgets: add its widgets in the template of the stack that defines it and deploy "
           f"that stack, {WIDGETS_GONE_BY_HAND}"),
    ("MonitoringStack", "it exists but shows no widgets: add its widgets in MonitoringStack's template and deploy "
                        f"that stack (deploy_infrastructure), {WIDGETS_GONE_BY_HAND}"),
])
def test_a_dashboard_without_widgets_says_what_to_do(defined_by, says):
    item = check_dashboard("d", {"DashboardBody": json.dumps({"widgets": []})}, defined_by=defined_by)
    assert not item.passed and item.reason == says, item.reason


@pytest.mark.parametrize("dashboard, passed, words", [
    ({"DashboardBody": json.dumps({"widgets": [{}, {}]})}, True, ["2 widget"]),
    ({"DashboardBody": json.dumps({"widgets": []})}, False, ["no widgets"]),
    ({}, False, ["no widgets"]),
    (None, False, ["does not exist"]),
    (ReadFailed("GetDashboard d", "AccessDenied: no"), False, ["could not read"]),
])
def test_dashboard(dashboard, passed, words):
    item = check_dashboard("d", dashboard)
    assert item.passed is passed, item.reason
    for word in words:
        assert word in item.reason


TOPIC = "arn:aws:sns:us-west-2:123456789012:alerts"


@pytest.mark.parametrize("alarm, topic, passed, words", [
    ({"AlarmActions": [TOPIC], "ActionsEnabled": True}, TOPIC, True, ["notifies alerts"]),
    ({"AlarmActions": ["arn:aws:sns:us-west-2:123456789012:other"], "ActionsEnabled": True}, TOPIC, False,
     ["no alarm action on the alert topic", "other"]),
    ({"AlarmActions": [], "ActionsEnabled": True}, TOPIC, False, ["its actions: none"]),
    ({"AlarmActions": [TOPIC], "ActionsEnabled": False}, TOPIC, False, ["disabled"]),
    ({"AlarmActions": [TOPIC]}, TOPIC, False, ["disabled"]),  # not said is not a pass
    ({"AlarmActions": [TOPIC], "ActionsEnabled": True}, None, False, ["alert topic alerts was not found"]),
    (None, TOPIC, False, ["does not exist"]),
    (ReadFailed("DescribeAlarms", "Throttling: slow"), TOPIC, False, ["could not read", "Throttling"]),
    # Firing before the deploy: production is failing already.
    ({"AlarmActions": [TOPIC], "ActionsEnabled": True, "StateValue": "ALARM",
      "StateReason": "Threshold Crossed: 1 datapoint [12.0] was greater than 5.0",
      "StateUpdatedTimestamp": datetime(2026, 12, 1, 9, 58, tzinfo=timezone.utc)}, TOPIC, False,
     ["in ALARM since 2026-12-01 09:58:00 UTC: Threshold Crossed: 1 datapoint [12.0]"]),
    ({"AlarmActions": [TOPIC], "ActionsEnabled": True, "StateValue": "INSUFFICIENT_DATA"}, TOPIC, True,
     ["exists, INSUFFICIENT_DATA: it has no data to judge yet", "and notifies alerts"]),
    ({"AlarmActions": [TOPIC], "ActionsEnabled": True, "StateValue": "OK"}, TOPIC, True, ["OK"]),
])
def test_alarms(alarm, topic, passed, words):
    item = check_alarm("high-errors", alarm, topic, "alerts")
    assert item.passed is passed, item.reason
    for word in words:
        assert word in item.reason


def test_an_alarm_without_data_passes_saying_what_that_means_and_when_to_look_at_it():
    # "exists, INSUFFICIENT_DATA, and notifies alerts" left a person to guess whether the alarm
    # works: one whose metric's dimensions name nothing never gets data, and never fires.
    item = check_alarm("high-errors", {"AlarmActions": [TOPIC], "ActionsEnabled": True,
                                       "StateValue": "INSUFFICIENT_DATA",
                                       "StateReason": "Unchecked: Initial alarm creation"}, TOPIC, "alerts")
    assert item.passed, item.reason
    assert item.reason == (
        "exists, INSUFFICIENT_DATA (CloudWatch says: Unchecked: Initial alarm creation): it has no data to judge yet, "
        "as an alarm just made or one whose metric comes only with traffic; if it stays so once the service runs, "
        "check its metric's namespace, name and dimensions: an alarm that never gets data never fires; and notifies "
        "alerts")


@pytest.mark.parametrize("topic, subscriptions, passed, words", [
    (TOPIC, [{"SubscriptionArn": f"{TOPIC}:1", "Protocol": "email"}], True, ["1 subscription", "email"]),
    (TOPIC, [], False, ["no confirmed subscription", "nobody gets the page"]),
    (TOPIC, [{"SubscriptionArn": "PendingConfirmation", "Protocol": "email"}], False, ["1 pending confirmation"]),
    (None, [], False, ["does not exist"]),
    (TOPIC, ReadFailed("ListSubscriptionsByTopic alerts", "AccessDenied: no"), False, ["could not read"]),
    (TOPIC, None, False, ["not read"]),
])
def test_topic(topic, subscriptions, passed, words):
    item = check_topic("alerts", topic, subscriptions)
    assert item.passed is passed, item.reason
    for word in words:
        assert word in item.reason


def _everything_fine(targets: Targets) -> Observation:
    from rollway.checklist import all_tables

    def described(spec):
        keys = [(spec.hash_key, "HASH")] + ([(spec.range_key, "RANGE")] if spec.range_key else [])
        return table(keys=keys, gsis=[(i, "ACTIVE") for i in spec.indexes])

    queues = {}
    for q in targets.queues:
        arn = f"arn:aws:sqs:{targets.region}:123456789012:{q.dlq_name}"
        queues[q.dlq_name] = {"QueueArn": arn}
        queues[q.name] = redrive(target=arn, count=q.max_receive_count)
    topic = f"arn:aws:sns:{targets.region}:123456789012:{targets.alert_topic}"
    return Observation(
        stacks={name: {"StackName": name, "StackStatus": "UPDATE_COMPLETE"} for name in targets.stacks},
        tables={s.name: described(s) for s in all_tables(targets)}, queues=queues,
        dashboard={"DashboardBody": json.dumps({"widgets": [{}]})},
        alarms={a: {"AlarmActions": [topic], "ActionsEnabled": True} for a in targets.alarms},
        topic_arn=topic, subscriptions=[{"SubscriptionArn": f"{topic}:x", "Protocol": "email"}])


def test_evaluate_covers_every_named_resource_and_passes_when_all_is_there():
    targets = Targets()
    checklist = evaluate(targets, _everything_fine(targets))
    assert checklist.passed, checklist.summary()
    names = [(i.kind, i.name) for i in checklist.items]
    assert names == (
        [("stack", s) for s in targets.stacks]
        + [("table", t.name) for t in targets.tables]
        + [("table", targets.flags_table), ("table", targets.rollouts_table)]
        + [("queue", q.name) for q in targets.queues]
        + [("dashboard", targets.dashboard)]
        + [("alarm", a) for a in targets.alarms]
        + [("alert topic", targets.alert_topic)]
    )


def test_a_resource_the_observation_lacks_fails_as_not_read():
    targets = Targets()
    seen = _everything_fine(targets)
    tables = dict(seen.tables)
    del tables[targets.flags_table]
    checklist = evaluate(targets, Observation(**{**seen.__dict__, "tables": tables}))
    assert [i.name for i in checklist.failed] == [targets.flags_table]
    assert "not read" in checklist.failed[0].reason


def test_topics_that_could_not_be_listed_fail_every_alarm_and_the_topic():
    targets = Targets()
    seen = _everything_fine(targets)
    checklist = evaluate(targets, Observation(**{**seen.__dict__, "topic_arn": ReadFailed("ListTopics", "AccessDenied: x")}))
    assert {i.name for i in checklist.failed} == {*targets.alarms, targets.alert_topic}
    assert all("AccessDenied" in i.reason for i in checklist.failed)


def test_a_rollway_table_the_app_deploys_elsewhere_fails_also_when_the_topics_could_not_be_listed():
    targets = Targets()
    seen = _everything_fine(targets)
    misplaced = {("table", targets.rollouts_table): "the CDK app's stack S deploys it to aws://123456789012/eu-west-1"}
    checklist = evaluate(targets, Observation(**{**seen.__dict__, "misplaced": misplaced,
                                                 "topic_arn": ReadFailed("ListTopics", "AccessDenied: x")}))
    assert {i.name for i in checklist.failed} == {*targets.alarms, targets.alert_topic, targets.rollouts_table}
    assert "deploys it to aws://123456789012/eu-west-1" in next(
        i.reason for i in checklist.failed if i.name == targets.rollouts_table)


def test_an_empty_checklist_does_not_pass():
    assert not Checklist(items=()).passed


def test_summary_and_markdown_name_the_failed_items():
    checklist = Checklist(items=(CheckItem(kind="queue", name="q", passed=False, reason="no DLQ | none"),
                                 CheckItem(kind="dashboard", name="d", passed=True, reason="exists")))
    assert checklist.summary() == "- queue q: no DLQ | none"
    assert "❌ FAIL | queue | `q` | no DLQ \\| none |" in checklist.markdown()


def test_an_alarm_name_with_a_bar_or_a_backtick_keeps_its_checklist_row_whole():
    """CloudWatch alarm names may hold any character but a control one, and the targets take them
    so; the name went into its cell between backticks as it was: a "|" split the row (a cell too
    many, the detail pushed out of its column) and a backtick closed the code span early."""
    import re

    targets = Targets(alarms=("api 5xx | p99", "latency `p99` high", "`edge"))
    alarm_rows = [row for row in evaluate(targets, _everything_fine(targets)).markdown().splitlines()
                  if row.startswith("| ✅ pass | alarm |")]
    assert [row.split(" | ")[2] for row in alarm_rows] == [
        "`api 5xx \\| p99`", "``latency `p99` high``", "`` `edge ``"], alarm_rows
    for row in alarm_rows:  # four cells: every "|" of a name escaped (an odd number of backslashes before it)
        assert len(re.split(r"(?<!\\)(?:\\\\)*\|", row)) == 6, row


@pytest.mark.parametrize(("status", "reason", "passed", "says"), [
    ("CREATE_COMPLETE", None, True, "CREATE_COMPLETE"),
    ("UPDATE_COMPLETE", None, True, "UPDATE_COMPLETE"),
    ("IMPORT_COMPLETE", None, True, "IMPORT_COMPLETE"),
    ("UPDATE_ROLLBACK_COMPLETE", None, False, "its last update was rolled back"),
    ("ROLLBACK_COMPLETE", "Resource creation cancelled", False, "ROLLBACK_COMPLETE: Resource creation cancelled"),
    # Left by a failed rollback or deletion: whether a deploy goes over them, and what to do when not.
    # cdk does not go over it: CloudFormation refuses its update, and cdk's offer to roll back first needs a terminal.
    ("UPDATE_ROLLBACK_FAILED", None, False, "takes no update until the rollback is finished: finish it (aws "
                                            "cloudformation continue-update-rollback --stack-name S; add "
                                            "--resources-to-skip <logical id> for a resource its events say cannot "
                                            "roll back), then deploy it again"),
    ("UPDATE_FAILED", None, False, "roll it back (aws cloudformation rollback-stack --stack-name S), then deploy it"),
    # A deploy is refused over it (cdk's deletion of it fails where the rollback did): "deploy it again" sent a
    # person to a refusal.
    ("ROLLBACK_FAILED", None, False, "its creation failed and so did its rollback: cdk would delete it before "
                                     "creating it again, which fails where the rollback did unless its cause is gone; "
                                     "delete it (aws cloudformation delete-stack --stack-name S; "),
    ("DELETE_FAILED", None, False, "its deletion failed half-way, and CloudFormation takes no update of it: delete it "
                                   "again (aws cloudformation delete-stack --stack-name S --retain-resources"),
    ("UPDATE_IN_PROGRESS", None, False, "still under way"),
    ("CREATE_FAILED", "quota", False, "CREATE_FAILED: quota"),
    (None, None, False, "not reported"),
])
def test_a_stack_passes_only_when_its_last_operation_completed(status, reason, passed, says):
    stack = {"StackName": "S"} | ({"StackStatus": status} if status else {}) | (
        {"StackStatusReason": reason} if reason else {})
    item = check_stack("S", stack)
    assert (item.kind, item.passed) == ("stack", passed)
    assert says in item.reason


def test_a_stack_missing_or_unread_fails():
    assert check_stack("S", None).reason == "CloudFormation stack S does not exist: deploy it (deploy_infrastructure)"
    unread = check_stack("S", ReadFailed("DescribeStacks S", "AccessDenied: no"))
    assert not unread.passed and "AccessDenied" in unread.reason


def test_a_missing_stack_the_app_does_not_define_is_said_to_be_misnamed_and_one_it_does_to_be_deployed():
    app = ("AppStack", "DataStack")
    assert check_stack("AppStak", None, app_stacks=app).reason == (
        "CloudFormation stack AppStak does not exist, and the CDK app defines no stack of that name (did you mean "
        "'AppStack'?): correct Targets.stacks, or deploy it from the app that defines it")
    assert check_stack("DataStack", None, app_stacks=app).reason.endswith("does not exist: deploy it (deploy_infrastructure)")
    # Deployed from another app: it passes as any deployed stack does.
    assert check_stack("Other", {"StackStatus": "CREATE_COMPLETE"}, app_stacks=app).passed


def test_an_alarm_or_queue_named_twice_is_one_item():
    # Named twice in the targets, an alarm missing failed twice: the run said "2 of N items failed"
    # and listed the same line twice.
    base = Targets()
    targets = base.model_copy(update={"alarms": (*base.alarms, base.alarms[0]),
                                      "queues": (*base.queues, base.queues[0])})
    seen = _everything_fine(targets)
    alarms = {a: d for a, d in seen.alarms.items() if a != base.alarms[0]}
    checklist = evaluate(targets, Observation(**{**seen.__dict__, "alarms": alarms}))
    names = [(i.kind, i.name) for i in checklist.items]
    assert len(names) == len(set(names)), names
    assert [i.name for i in checklist.failed] == [base.alarms[0]]
    assert checklist.summary().count("\n") == 0


def test_a_rollway_table_also_in_targets_tables_is_one_item_judged_as_rollway_needs_it():
    # Listed in Targets.tables too (for its index), the rollouts table was two items: one judged
    # without rollway's string keys, one without the index, and a missing table failed twice.
    base = Targets()
    listed = TableSpec(name=base.rollouts_table, hash_key="service", range_key="rollout_id", indexes=("by-status",))
    targets = base.model_copy(update={"tables": (*base.tables, listed)})
    seen = _everything_fine(targets)
    tables = {**seen.tables, base.rollouts_table: table(keys=(("service", "HASH"), ("rollout_id", "RANGE")), gsis=(),
                                                       key_type="N")}
    checklist = evaluate(targets, Observation(**{**seen.__dict__, "tables": tables}))
    items = [i for i in checklist.items if i.name == base.rollouts_table]
    assert len(items) == 1, items
    assert "hash key service is of type N, expected S" in items[0].reason
    assert "index by-status is missing" in items[0].reason


def test_the_checked_resources_no_stack_of_the_app_names_are_told_with_the_closest_it_does():
    # A name misspelt in the targets (an alarm, a queue) failed its item only after every stack was deployed,
    # though the app's templates, read before the first deploy, named the resource under its right name.
    from rollway.checklist import unnamed_resources

    targets = Targets()
    alarm = targets.alarms[0]
    named = {"MonitoringStack": {"alarm": (alarm[:-1] + "X", "other-alarm"), "dashboard": (targets.dashboard,)},
             "QueueStack": {"queue": tuple(n for q in targets.queues for n in (q.name, q.dlq_name))}}
    said = unnamed_resources(targets, named)
    assert f"alarm {alarm} (did you mean {alarm[:-1] + 'X'!r}?)" in said, said
    # The kinds the app names none of (its tables, the topic: made outside it, or named by a function) are not told.
    assert not [line for line in said if line.startswith(("table ", "topic ", "queue ", "dashboard "))], said
    assert unnamed_resources(targets, {}) == []


@pytest.mark.parametrize("state, passed", [("ALARM", False), ("INSUFFICIENT_DATA", True)])
def test_an_alarms_state_reason_is_quoted_on_one_line_without_its_control_characters(state, passed):
    # CloudWatch's StateReason is anyone's text (set-alarm-state takes any): its line break began a
    # line of its own in the run's log and the failed checklist's message, its escape sequence acted
    # on the terminal of whoever read them.
    item = check_alarm("high-errors", {"AlarmActions": [TOPIC], "ActionsEnabled": True, "StateValue": state,
                                       "StateReason": "set by hand\n\x1b[2Jchecklist PASS alarm other"}, TOPIC, "alerts")
    assert item.passed is passed
    assert "set by hand \\x1b[2Jchecklist PASS alarm other" in item.reason, item.reason
    assert "\n" not in item.reason and "\x1b" not in item.reason, item.reason


def test_a_listener_whose_pin_turns_on_a_regular_expression_is_said_not_known_to_pin_them_all():
    """A pin rule matching the header by a regular expression, not compared: the item said the
    listener "does not pin all the validation's HTTP checks", of rules that may well pin every one."""
    from rollway.checklist import PinRead, check_pin
    from tests.unit.test_pinning import CANARY, STABLE, found_on_edit, header, path, regex_header, rule

    header_line = "X-Rollway-Target: canary"
    unknown = check_pin(PinRead(header=header_line, listener="alb:80",
                                found=found_on_edit(rule("pin", "5", [regex_header("^canary$")], CANARY))))
    assert not unknown.passed
    assert unknown.reason.startswith(
        "whether listener alb:80 pins all the validation's HTTP checks carrying `X-Rollway-Target: canary` "
        "(validate_deployment's spec.canary_header) to the canary target group is not known: it turns on which of "
        "them rule pin (priority 5) meets, by regular expressions that are not compared; rule pin (priority 5) "
        "matches the header X-Rollway-Target by a regular expression (^canary$)"), unknown.reason
    assert "does not pin" not in unknown.reason, unknown.reason
    # Known not to: said so, as before.
    for found in (found_on_edit(rule("pin", "5", [header("canary"), path("/edit/admin/*")], CANARY)),
                  found_on_edit(rule("regex", "5", [regex_header("^can")], STABLE)),
                  "load balancer 'x' not found, so nothing pins them yet"):
        known = check_pin(PinRead(header=header_line, listener="alb:80", found=found))
        assert known.reason.startswith("listener alb:80 does not pin all the validation's HTTP checks carrying "
                                       "`X-Rollway-Target: canary`"), known.reason


def test_a_listener_with_a_rule_without_the_header_ahead_of_the_pin_fails_its_item_naming_that_rule():
    """A rule ahead of the pin with no http-header condition, forwarding to the stable group: the item
    passed, "the validation's HTTP checks are pinned", while those on its paths met it first."""
    from rollway.checklist import PinRead, check_pin
    from tests.unit.test_pinning import CANARY, STABLE, found_on_edit, header, path, rule

    header_line = "X-Rollway-Target: canary"
    pin = rule("pin", "5", [header("canary")], CANARY)
    item = check_pin(PinRead(header=header_line, listener="alb:80",
                             found=found_on_edit(rule("admin", "3", [path("/edit/admin/*")], STABLE), pin)))
    assert not item.passed
    assert item.reason.startswith(
        "listener alb:80 does not pin all the validation's HTTP checks carrying `X-Rollway-Target: canary` "
        "(validate_deployment's spec.canary_header) to the canary target group: rule admin (priority 3), with no "
        "http-header condition, meets some of the weighted rule's requests"), item.reason
    assert item.reason.endswith("give rule pin a priority number below 3 (a listener meets its rules in priority "
                                "order)"), item.reason
    # On another header the checks send, whose value there is not compared: not known.
    item = check_pin(PinRead(header=header_line, listener="alb:80",
                             found=found_on_edit(rule("token", "3", [header("Bearer *", name="Authorization")], STABLE),
                                                 pin)))
    assert not item.passed and item.reason.startswith(
        "whether listener alb:80 pins all the validation's HTTP checks carrying `X-Rollway-Target: canary` "
        "(validate_deployment's spec.canary_header) to the canary target group is not known: it turns on which of "
        "them rule token (priority 3) meets, by headers other than X-Rollway-Target, whose values on the checks' "
        "requests are not compared; rule token (priority 3)"), item.reason
    # On a User-Agent the checks' own (rollway-validate) does not match: it meets none of them.
    item = check_pin(PinRead(header=header_line, listener="alb:80",
                             found=found_on_edit(rule("agent", "3", [header("curl*", name="User-Agent")], STABLE), pin)))
    assert item.passed, item.reason
    # On methods the checks never send (GET and POST alone): it meets none of them either.
    put = {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["PUT", "DELETE"]}}
    item = check_pin(PinRead(header=header_line, listener="alb:80", found=found_on_edit(rule("put", "3", [put], STABLE), pin)))
    assert item.passed, item.reason
