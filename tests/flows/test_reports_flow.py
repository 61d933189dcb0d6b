"""rollout_report on the Prefect harness, reading the real DynamoDB ledger on the embedded AWS."""

from __future__ import annotations

import re
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.reports import ReportRefused, rollout_report
from flows.rollback import rollback
from rollway.aws.environment import aws_environment
from rollway.aws.ledger import DynamoLedger
from rollway.clock import ClockSettings
from rollway.ledger import RolloutRecord, Transition, new_rollout_id, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import incident_report
from rollway.spec import RolloutSpec, Stage
from tests.flows.moto_env import saved_blocks


@pytest.fixture
def blocks(aws) -> str:
    return saved_blocks(aws, "reports")


def artifacts_of(state) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    return {a.key: a.data for a in found if a.type == "markdown"}


def recorded_start(aws, now: float, owner: str = "run-1"):
    """A rollout of 2.1.0 (stages 5, 25, 100) recorded as started at ``now`` by ``owner``, as the
    progressive flow records one; returns the environment, the ledger, the record and the stable service."""
    env = aws_environment(aws.get_client, aws.targets, ClockSettings().build())
    ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    service = aws.targets.canary_service
    stable = env.deployer.describe(aws.targets.stable_service)
    image = f"{aws.topology.repository_uri}:2.1.0"
    spec = RolloutSpec(image=image, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 25, 100)])
    newest = ledger.get(service)  # a second rollout within the same second still sorts after it
    record = RolloutRecord(
        service=service, rollout_id=new_rollout_id(now, after=newest.rollout_id if newest else None), image=image,
        spec_json=spec.model_dump_json(), previous_task_definition=stable.task_definition,
        stable_desired=stable.desired, created_at=now, updated_at=now,
        history=(Transition(at=now, kind="start", actor="alice", comment=f"rollout of {image}"),),
    )
    ledger.create(record, owner=owner, now=now, lease_seconds=60)
    return env, ledger, record, stable


def start_at_five_percent(aws) -> tuple[RolloutRecord, float]:
    """A rollout recorded as the progressive flow records one, its canary at 5 % on the load balancer."""
    now = time.time() - 600
    env, ledger, record, _ = recorded_start(aws, now)
    service = aws.targets.canary_service
    env.router.set_weights(Weights.canary_at(5))
    shifted = now + 30
    ledger.record(service, owner="run-1", now=shifted, transition=Transition(
        at=shifted, kind="shift", actor="alice", from_weights=Weights.canary_at(0), to_weights=Weights.canary_at(5),
        to_stage=0, comment="rollout starting"), phase=RolloutPhase.PROGRESSING, weights=Weights.canary_at(5),
        stage_index=0, stage_started_at=shifted)
    return record, shifted


def test_a_rolled_back_rollout_gets_its_rollout_and_incident_reports(aws, blocks):
    record, shifted = start_at_five_percent(aws)
    # The real rollback flow, as `rollway abort` runs it: it records its start and end in the ledger.
    done = rollback(reason="users report 500s on save", actor="carol", targets_block=blocks,
                    aws_credentials_block=blocks)

    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    result = state.result()
    service = aws.targets.canary_service
    assert (result.rollout_id, result.phase) == (record.rollout_id, RolloutPhase.ROLLED_BACK)
    written = artifacts_of(state)
    assert set(written) == set(result.artifacts) == {f"{service}-rollout-report", f"{service}-incident-report"}

    report = written[f"{service}-rollout-report"]
    assert f"rollout {record.rollout_id}" in report and record.image in report
    assert "**Outcome:** rolled back" in report
    assert f"| 1/3 | 95/5 | {utc(shifted)} |" in report
    assert "rolled back (carol: users report 500s on save)" in report

    incident = written[f"{service}-incident-report"]
    assert "**Trigger:** carol, with the rollback flow" in incident
    assert "**Reason:** users report 500s on save" in incident
    assert f"**First traffic to the new version:** {utc(shifted)} (5%)" in incident
    assert "**Weight when the rollback began:** 5% (95/5 stable/canary)" in incident
    assert "the load balancer read back **100/0** (stable/canary); recorded by carol" in incident
    assert f"pointed back at {record.previous_task_definition} (recorded by the rollback)" in incident
    # The id SNS gave the rollback's notice, recorded in DynamoDB with the rollback's end.
    assert done.notification_id and f"SNS message id `{done.notification_id}`" in incident
    assert "`webordinary-alerts` (subject `Rollback: webordinary-edit-service-canary`" in incident
    assert "## Next steps" in incident
    assert f"in cluster `{aws.targets.cluster}`, region {aws.targets.region}" in incident
    assert f"`{aws.targets.queues[0].dlq_name}`" in incident
    # Where the evidence is: the ledger item the flow read, and the keys of the runs' artifacts.
    evidence = incident.split("## Evidence", 1)[1].split("\n## ", 1)[0]
    assert (f"the DynamoDB table `{aws.targets.rollouts_table}` (region {aws.targets.region}), key `service` "
            f"{service}, `rollout_id` {record.rollout_id}") in evidence, evidence
    assert f"`{service}-stage-5`" in evidence and f"`{service}-summary`" in evidence, evidence
    assert "- **At each weight:** 5% for " in incident, incident


def test_a_rollback_run_while_the_rollout_waited_at_a_pause_reports_the_pause_unanswered(aws, blocks):
    """The rollback flow run by hand while the rollout waited for an approval: the Approvals table
    said "No approval was asked for or answered" and the incident report's trigger named the
    rollback alone, nothing of the pause it cut short."""
    record, shifted = start_at_five_percent(aws)
    ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    asked = shifted + 600
    question = "approval pause: 5%: canary 0.08% vs baseline 0.10%; approval needed before 25%"
    ledger.record(aws.targets.canary_service, owner="run-1", now=asked, transition=Transition(
        at=asked, kind="pause", actor="alice", to_stage=1, comment=question))
    rollback(reason="users report 500s on save", actor="carol", targets_block=blocks, aws_credentials_block=blocks)

    written = artifacts_of(rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True))
    report = written[f"{aws.targets.canary_service}-rollout-report"]
    approvals = report.split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    (row,) = [line for line in approvals.splitlines() if line.startswith(f"| {utc(asked)} |")]
    assert "| **not answered** | 25% | the wait ended with rollback-start (carol, " in row, row
    assert question in row, row
    incident = written[f"{aws.targets.canary_service}-incident-report"]
    assert f"**While it waited at a pause:** asked at {utc(asked)} for stage 2/3 (25%), not answered: {question}" in (
        incident)


def test_a_rollout_still_running_gets_no_incident_report(aws, blocks):
    record, _ = start_at_five_percent(aws)
    state = rollout_report(rollout_id=record.rollout_id, targets_block=blocks, aws_credentials_block=blocks,
                           return_state=True)
    assert state.result().artifacts == (f"{aws.targets.canary_service}-rollout-report",)
    report = artifacts_of(state)[f"{aws.targets.canary_service}-rollout-report"]
    assert "**Outcome:** progressing (not finished) at 95/5" in report
    # Its run's lease (60 s, ten minutes ago) had lapsed when the report was written.
    assert "**Held by:** run-1, whose lease lapsed at" in report


def test_no_rollout_recorded_is_refused_clearly(aws, blocks):
    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    with pytest.raises(ReportRefused, match="no rollout of webordinary-edit-service-canary is recorded in the ledger "
                                            "table webordinary-rollouts"):
        state.result()
    assert artifacts_of(state) == {}


def test_an_unknown_rollout_id_is_refused_naming_the_newest(aws, blocks):
    record, _ = start_at_five_percent(aws)
    state = rollout_report(rollout_id="20200101T000000Z-00000000", targets_block=blocks,
                           aws_credentials_block=blocks, return_state=True)
    with pytest.raises(ReportRefused, match=f"the newest are: {record.rollout_id} \\(progressing\\)"):
        state.result()


def test_rollway_report_prints_both_reports_of_a_rolled_back_rollout(aws, blocks, capsys):
    from rollway.cli.report import report

    record, _ = start_at_five_percent(aws)
    rollback(reason="latency doubled", actor="dave", targets_block=blocks, aws_credentials_block=blocks)
    capsys.readouterr()
    assert report(targets_block=blocks, credentials_block=blocks) == 0
    out = capsys.readouterr().out
    assert out.index(f"# Rollout report: {aws.targets.canary_service}, rollout {record.rollout_id}") \
        < out.index("# Incident report") and "**Reason:** latency doubled" in out


def test_rollway_report_lists_the_transitions_once_and_the_flows_incident_report_keeps_its_own(aws, blocks, capsys):
    """`rollway report` printed the incident report right after the rollout report, each with the
    whole table of recorded transitions: a big ledger's timeline was read twice in a row. The
    incident report names the table above; the flow's artifact, read alone, keeps its own."""
    from rollway.cli.report import report

    start_at_five_percent(aws)
    rollback(reason="latency doubled", actor="dave", targets_block=blocks, aws_credentials_block=blocks)
    capsys.readouterr()
    assert report(targets_block=blocks, credentials_block=blocks) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and " | rollback-start | dave |" in line]
    assert len(rows) == 1, rows
    incident = out[out.index("# Incident report"):]
    timeline = incident.split("## Timeline", 1)[1].split("\n## ", 1)[0]
    assert "listed in the rollout report above" in timeline, timeline
    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    artifact = artifacts_of(state)[f"{aws.targets.canary_service}-incident-report"]
    assert " | rollback-start | dave |" in artifact.split("## Timeline", 1)[1], artifact


def test_rollway_report_without_a_rollout_exits_1_saying_why(aws, blocks, capsys):
    from rollway.cli.report import report

    assert report(targets_block=blocks, credentials_block=blocks) == 1
    assert "no rollout of webordinary-edit-service-canary is recorded" in capsys.readouterr().err
    assert report(rollout=" ", targets_block=blocks, credentials_block=blocks) == 2


def test_a_rollback_under_way_is_reported_with_its_live_claim_holder_by_the_flow_and_the_cli(aws, blocks, capsys):
    from rollway.cli.report import report
    from rollway.ledger import begin_rollback

    record, _ = start_at_five_percent(aws)
    holder = "judge (flow run brave-fox, 0f1e2d3c)"
    begin_rollback(DynamoLedger(aws.get_client("dynamodb"), aws.targets), aws.targets.canary_service, actor="judge",
                   reason="5%: canary error rate 4.80% (48/1000) is over the 1% guardrail", now=time.time(),
                   rollout=record.rollout_id, holder=holder, lease_seconds=600)
    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    incident = artifacts_of(state)[f"{aws.targets.canary_service}-incident-report"]
    assert f"**It is being carried out by {holder}**" in incident and "live when this report was written)" in incident
    capsys.readouterr()
    assert report(targets_block=blocks, credentials_block=blocks) == 0
    assert "live when this report was written)" in capsys.readouterr().out


def spoil(aws, rollout_id: str) -> None:
    """The rollout's item as rollway cannot read it: a phase no release of it knows (written by
    another release, or edited by hand)."""
    aws.get_client("dynamodb").update_item(
        TableName=aws.targets.rollouts_table,
        Key={"service": {"S": aws.targets.canary_service}, "rollout_id": {"S": rollout_id}},
        UpdateExpression="SET phase = :p", ExpressionAttributeValues={":p": {"S": "verifying"}})


def test_one_unreadable_rollout_does_not_refuse_the_reports_of_the_others(aws, blocks, capsys):
    """An older rollout's item rollway cannot read refused every report, the newest's included:
    reading the service's history failed on it as a whole."""
    from rollway.cli.report import report

    older, _ = start_at_five_percent(aws)
    rollback(reason="latency doubled", actor="dave", targets_block=blocks, aws_credentials_block=blocks)
    newer, _ = start_at_five_percent(aws)
    spoil(aws, older.rollout_id)

    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert state.result().rollout_id == newer.rollout_id
    assert f"rollout {newer.rollout_id}" in artifacts_of(state)[f"{aws.targets.canary_service}-rollout-report"]
    capsys.readouterr()
    assert report(targets_block=blocks, credentials_block=blocks) == 0
    assert f"# Rollout report: {aws.targets.canary_service}, rollout {newer.rollout_id}" in capsys.readouterr().out

    # The unreadable one, asked for by its id, is refused naming the item and what is wrong with it.
    state = rollout_report(rollout_id=older.rollout_id, targets_block=blocks, aws_credentials_block=blocks,
                           return_state=True)
    with pytest.raises(ReportRefused, match=f"rollout '{older.rollout_id}', is not one rollway can read .*phase"):
        state.result()
    assert report(rollout=older.rollout_id, targets_block=blocks, credentials_block=blocks) == 1
    assert "repair or delete that item" in capsys.readouterr().err


def test_an_unreadable_newest_rollout_is_refused_not_replaced_by_an_older_one(aws, blocks, capsys):
    from rollway.cli.report import report

    older, _ = start_at_five_percent(aws)
    rollback(reason="latency doubled", actor="dave", targets_block=blocks, aws_credentials_block=blocks)
    newer, _ = start_at_five_percent(aws)
    spoil(aws, newer.rollout_id)
    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    with pytest.raises(ReportRefused, match=f"the newest rollout of {aws.targets.canary_service}, {newer.rollout_id}, "
                                            "cannot be read"):
        state.result()
    assert artifacts_of(state) == {}
    # An older one is still reported when asked for.
    capsys.readouterr()
    assert report(rollout=older.rollout_id, targets_block=blocks, credentials_block=blocks) == 0
    assert f"rollout {older.rollout_id}" in capsys.readouterr().out


def test_a_refused_report_fails_the_run_with_its_reason_on_one_line_not_a_traceback(aws, blocks, caplog):
    """A served run's log read like a crash of rollway: Prefect's traceback of ReportRefused above
    a reason `rollway report` prints on one line."""
    import logging

    with caplog.at_level(logging.INFO):
        state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert state.is_failed() and "no rollout of webordinary-edit-service-canary is recorded" in state.message
    assert "Traceback" not in caplog.text, caplog.text
    assert any("no rollout of webordinary-edit-service-canary is recorded" in r.getMessage() for r in caplog.records)


def test_a_missing_ledger_table_is_refused_naming_it_on_one_line(aws, blocks, caplog, capsys):
    """No ledger table (the account's infrastructure not deployed, or the targets block naming
    another): the run logged DynamoDB's ClientError with a traceback, from the task and again from
    the flow, and ended on 'ResourceNotFoundException ... Requested resource not found', which
    does not say which table."""
    import logging

    from rollway.cli.report import report

    aws.get_client("dynamodb").delete_table(TableName=aws.targets.rollouts_table)
    with caplog.at_level(logging.INFO):
        state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert state.is_failed()
    with pytest.raises(ReportRefused, match="the ledger table webordinary-rollouts .*ResourceNotFoundException"):
        state.result()
    assert "Traceback" not in caplog.text, caplog.text
    assert report(targets_block=blocks, credentials_block=blocks) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "the ledger table webordinary-rollouts" in err and "ResourceNotFoundException" in err, err


@pytest.mark.parametrize(("field", "statement"), [("rollouts_table", "Ledger"), ("flags_table", "Flags")])
def test_a_refusal_naming_no_table_names_the_statement_on_the_table_read(aws, field, statement):
    """moto names no resource in a refusal: GetItem, granted on both tables, named both statements
    although the report knew which table it read."""
    from botocore.exceptions import ClientError

    from flows.reports import unreadable_table

    err = ClientError({"Error": {"Code": "AccessDeniedException", "Message": (
        "User: arn:aws:iam::123456789012:user/gina is not authorized to perform: dynamodb:GetItem")}}, "GetItem")
    said = str(unreadable_table(err, aws.targets, field))
    assert f"it is granted by deployments/iam-policy.json, statement {statement}: add that statement" in said, said


def test_a_ledger_the_role_may_not_read_names_the_action_the_table_and_the_statement(aws, blocks, capsys,
                                                                                     monkeypatch):
    """A role without dynamodb:Query on the ledger: the report said the table "cannot be read with
    these credentials", leaving a person to find which permission, and which statement grants it."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    from rollway.cli.report import report

    table = f"arn:aws:dynamodb:{aws.targets.region}:123456789012:table/{aws.targets.rollouts_table}"
    real = BaseClient._make_api_call

    # AWS's answer to a role whose policy has no Query on the table (moto does not enforce IAM):
    # on every client, since the flow and the command make their own from the saved blocks.
    def refusing(client, operation_name, api_params):
        if operation_name == "Query" and client.meta.service_model.service_name == "dynamodb":
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": (
                "User: arn:aws:sts::123456789012:assumed-role/rollway-worker/i-0abc is not authorized to perform: "
                f"dynamodb:Query on resource: {table} because no identity-based policy allows the dynamodb:Query "
                "action")}}, operation_name)
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refusing)
    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert report(targets_block=blocks, credentials_block=blocks) == 1
    monkeypatch.undo()
    with pytest.raises(ReportRefused) as refused:
        state.result()
    said = (f"the ledger table webordinary-rollouts (region {aws.targets.region}) cannot be read: AWS refused "
            "dynamodb:Query (AccessDeniedException: ")
    granted = "it is granted by deployments/iam-policy.json, statement Ledger: add that statement"
    for message in (str(refused.value), " ".join(capsys.readouterr().err.split())):
        assert said in message and granted in message and message.endswith("nothing was written"), message
    assert artifacts_of(state) == {}


def test_a_shift_found_on_resume_is_not_reported_as_when_the_canary_first_took_traffic(aws, blocks):
    """A run moved the traffic to 5 % and died before recording the move; the next run found the
    weights on the load balancer and recorded the shift then (``reconcile``). The incident report
    gave that later time as the first traffic to the new version, and the exposure from it: the
    canary had served users since some time after the dead run's last entry, unrecorded."""
    now = time.time() - 3600
    env, ledger, record, _ = recorded_start(aws, now)
    service = aws.targets.canary_service
    env.router.set_weights(Weights.canary_at(5))  # the dead run's move, never recorded
    found = now + 1800  # the next run, half an hour later, takes the lapsed lease over and finds it
    ledger.acquire(service, owner="run-2", now=found - 5, lease_seconds=60, rollout=record.rollout_id)
    ledger.record(service, owner="run-2", now=found, transition=Transition(
        at=found, kind="shift", actor="reconcile", from_weights=Weights.canary_at(0), to_weights=Weights.canary_at(5),
        to_stage=0, comment="shift found on the load balancer but not in the ledger"),
        phase=RolloutPhase.PROGRESSING, weights=Weights.canary_at(5), stage_index=0, stage_started_at=found)
    rollback(reason="users report 500s on save", actor="carol", targets_block=blocks, aws_credentials_block=blocks)

    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    incident = artifacts_of(state)[f"{service}-incident-report"]
    assert f"**First traffic to the new version:** {utc(found)} (5%)" not in incident, incident
    assert (f"**First traffic to the new version:** between {utc(now)} and {utc(found)} (5%)") in incident, incident
    exposed = next(line for line in incident.splitlines() if line.startswith("- **Exposed for:**"))
    assert f"Read the canary's logs and metrics from {utc(now)} to" in incident, incident
    # From the found shift (half an hour before the rollback) to the dead run's last entry (an hour before).
    assert re.match(r"- \*\*Exposed for:\*\* at least 3\d\.\d min \(from .*, when a resumed run found the shift\) "
                    r"and at most 6\d\.\d min \(from .*, the dead run's last entry\)", exposed), exposed


def test_a_move_no_run_recorded_is_not_reported_as_no_traffic(aws, blocks):
    """The run deployed the canary, moved the traffic to 5 % and died before recording the move;
    `rollway abort` then rolled it back. Nothing in the ledger records the move, and the incident
    report said the new version never took traffic: users had been on it since. Then it could only
    hedge ("the ledger cannot tell"): the rollback recorded only the weights it read back at its
    end, not the 5 % it found on the canary and moved back."""
    now = time.time() - 600
    env, ledger, record, stable = recorded_start(aws, now)
    service, image = aws.targets.canary_service, record.image
    deployed = now + 20
    ledger.record(service, owner="run-1", now=deployed, transition=Transition(
        at=deployed, kind="deploy", actor="alice", comment=f"{service} on {stable.task_definition} ({image})"),
        canary_task_definition=stable.task_definition, phase=RolloutPhase.PROGRESSING)
    env.router.set_weights(Weights.canary_at(5))  # the dead run's move, never recorded
    rollback(reason="the rollout's run died", actor="carol", targets_block=blocks, aws_credentials_block=blocks)

    end = ledger.get(service).last_transition("rollback")
    assert (end.from_weights, end.to_weights) == (Weights.canary_at(5), Weights(stable=100, canary=0)), end

    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    incident = artifacts_of(state)[f"{service}-incident-report"]
    assert "never took traffic" not in incident, incident
    assert "cannot tell" not in incident, incident
    assert ("**No shift to the canary is recorded**, but the rollback found it taking **5%** of the traffic "
            f"(95/5 stable/canary) when carol's rollback first read the load balancer, before it moved anything "
            f"(recorded at {utc(end.at)})") in incident, incident
    assert f"The canary took 5% from after {utc(deployed)} (the last entry before the rollback)" in incident, incident
    assert "No traffic was ever shifted" not in incident, incident
    # A record from before rollbacks kept the weights they moved the traffic from reports as it did.
    older = ledger.get(service)
    older = older.model_copy(update={"history": tuple(
        t.model_copy(update={"from_weights": None}) for t in older.history)})
    hedged = incident_report(older, alert_topic=aws.targets.alert_topic)
    assert (f"**No shift to the canary is recorded**, but its revision was deployed on it at {utc(deployed)}, so the "
            "ledger cannot tell that it took no traffic") in hedged, hedged
    assert "5% (its first stage) from after" in hedged, hedged

    # A rollout rolled back before its revision was deployed on the canary took no traffic: said so.
    recorded_start(aws, time.time(), owner="run-2")
    rollback(reason="wrong image", actor="carol", targets_block=blocks, aws_credentials_block=blocks)
    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    incident = artifacts_of(state)[f"{service}-incident-report"]
    assert "The new version never took traffic: its revision was never deployed on the canary" in incident, incident


def test_a_rollback_whose_first_read_of_the_rule_is_refused_records_what_the_next_read_found(aws, blocks, monkeypatch):
    """The weights a rollback moves the traffic from are read by its write (its DescribeRules
    before the ModifyRule). A read throttled wrote nothing: the write is sent again, and what its
    read found is still the traffic from before the rollback moved anything."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    record, _ = start_at_five_percent(aws)
    real = BaseClient._make_api_call
    refused: list[str] = []

    def first_read_refused(client, operation_name, api_params):
        if operation_name == "DescribeRules" and "RuleArns" in api_params and not refused:
            refused.append(operation_name)
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, operation_name)
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", first_read_refused)
    rollback(reason="users report 500s on save", actor="carol", targets_block=blocks, aws_credentials_block=blocks)

    assert refused == ["DescribeRules"]
    done = DynamoLedger(aws.get_client("dynamodb"), aws.targets).get(aws.targets.canary_service)
    assert (done.rollout_id, done.phase) == (record.rollout_id, RolloutPhase.ROLLED_BACK)
    end = done.last_transition("rollback")
    assert (end.from_weights, end.to_weights) == (Weights.canary_at(5), Weights(stable=100, canary=0)), end


def test_the_weight_when_the_rollback_began_is_what_the_rollback_found_on_the_load_balancer(aws, blocks):
    """The rollout recorded its shift to 5 %; its run then moved the traffic to 25 % and died before
    recording that move, and `rollway abort` rolled it back from 25 %. The incident report gave 5 %,
    the last recorded move, as the weight when the rollback began, beside the 75/25 the rollback
    recorded it moved the traffic from: users were on the canary at 25 %."""
    start_at_five_percent(aws)
    service = aws.targets.canary_service
    env = aws_environment(aws.get_client, aws.targets, ClockSettings().build())
    env.router.set_weights(Weights.canary_at(25))  # the dead run's move to the next stage, never recorded
    rollback(reason="the rollout's run died", actor="carol", targets_block=blocks, aws_credentials_block=blocks)
    end = DynamoLedger(aws.get_client("dynamodb"), aws.targets).get(service).last_transition("rollback")
    assert end.from_weights == Weights.canary_at(25), end

    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    incident = artifacts_of(state)[f"{service}-incident-report"]
    began = next(line for line in incident.splitlines() if line.startswith("- **Weight when the rollback began:**"))
    assert began.startswith("- **Weight when the rollback began:** 25% (75/25 stable/canary), as carol's rollback "
                            "read the load balancer before it moved anything"), began
    assert began.endswith("(the rollout last recorded 5%, 95/5 stable/canary)"), began

    # A rollback that recorded no weights it moved the traffic from: the last recorded move, said to be that.
    record = DynamoLedger(aws.get_client("dynamodb"), aws.targets).get(service)
    older = record.model_copy(update={"history": tuple(t.model_copy(update={"from_weights": None})
                                                       for t in record.history)})
    began = next(line for line in incident_report(older).splitlines()
                 if line.startswith("- **Weight when the rollback began:**"))
    assert began == ("- **Weight when the rollback began:** 5% (95/5 stable/canary) as the rollout last recorded "
                     "them (the rollback recorded no weights it moved the traffic from)"), began


def test_the_rollout_report_says_a_decommission_page_is_owed_as_status_does(aws, blocks, capsys):
    """The run that decommissioned the old service died before paging: `rollway status` said the
    page was never sent and who sends it, the rollout report listed the decommission as done and
    said nothing, and a person reading it took people for told. Once sent, both say when and by whom."""
    import rollway.cli.ops as ops
    from rollway.cli.report import report

    record, shifted = start_at_five_percent(aws)
    ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    service, stable = aws.targets.canary_service, aws.targets.stable_service
    at = shifted + 60
    ledger.record(service, owner="run-1", now=at, transition=Transition(
        at=at, kind="promote", actor="alice", from_weights=Weights.canary_at(5), to_weights=Weights(stable=0, canary=100)),
        phase=RolloutPhase.PROMOTED, weights=Weights(stable=0, canary=100))
    ledger.record(service, owner=None, now=at + 60, rollout=record.rollout_id, transition=Transition(
        at=at + 60, kind="decommission", actor="monitor", wall=at + 60,
        comment=f"60 minutes of monitoring passed; {stable} scaled to 0"))
    owed = (f"whether the \"Old version decommissioned\" page of {stable} was sent is not known (the run that "
            "decommissioned recorded no page sent: it died before paging or before recording its page, or the ledger "
            "refused that record): the next run that looks at the rollout sends it late")

    def said_everywhere() -> list[str]:
        assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
        status = " ".join(capsys.readouterr().out.split())
        assert report(targets_block=blocks, credentials_block=blocks) == 0
        printed = " ".join(capsys.readouterr().out.split())
        state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
        written = " ".join(artifacts_of(state)[f"{service}-rollout-report"].split())
        return [status, printed, written]

    for said in said_everywhere():
        assert owed in said, said
    ledger.record(service, owner=None, now=at + 120, rollout=record.rollout_id, transition=Transition(
        at=at + 120, kind="decommission-paged", actor="schedule", message_id="sns-9",
        comment="the decommission's page was sent"))
    for said in said_everywhere():
        assert "never sent" not in said and "was sent is not known" not in said, said
        assert f"the decommission's page went out at {utc(at + 120)} (SNS message sns-9, sent by schedule)" in said, said


def test_the_incident_reports_log_window_is_on_the_wall_clock_under_a_faster_clock(aws, blocks, capsys):
    """Under `rollway up`'s 60x clock the next steps' window to read the logs in was the rollout
    clock's, two days ahead of the wall: pasted into CloudWatch Logs Insights, which reads wall
    time, it found nothing. The flow and `rollway report` read the clock of the rollout's runs."""
    from prefect.states import Completed

    from rollway.cli.report import report
    from rollway.rollout_tags import rollout_tag
    from tests.flows.test_abort_clock import stand_in

    clock = ClockSettings(speed=60.0, anchor=time.time() - 3600)  # an hour into `rollway up`
    ahead = clock.build().now()
    env, ledger, record, _ = recorded_start(aws, ahead - 1200)
    service = aws.targets.canary_service
    env.router.set_weights(Weights.canary_at(5))
    shifted = ahead - 600
    ledger.record(service, owner="run-1", now=shifted, transition=Transition(
        at=shifted, kind="shift", actor="alice", from_weights=Weights.canary_at(0), to_weights=Weights.canary_at(5),
        to_stage=0, comment="rollout starting"), phase=RolloutPhase.PROGRESSING, weights=Weights.canary_at(5),
        stage_index=0, stage_started_at=shifted)
    with get_client(sync_client=True) as client:
        client.create_flow_run(stand_in, parameters={"clock": clock.model_dump(mode="json")},
                               tags=[rollout_tag(record.rollout_id)], state=Completed())
    rollback(reason="latency doubled", actor="dave", targets_block=blocks, aws_credentials_block=blocks,
             clock=clock)
    end = ledger.get(service).last_transition("rollback")
    assert end is not None and end.wall is not None and end.at > end.wall + 3600, end
    window = (f"from {utc(clock.anchor + (shifted - clock.anchor) / clock.speed)} to {utc(end.wall)} (wall clock, "
              "the times CloudWatch Logs Insights reads")

    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    (logs,) = [x for x in artifacts_of(state)[f"{service}-incident-report"].splitlines() if "Read the canary's logs" in x]
    assert window in logs, logs
    capsys.readouterr()
    assert report(targets_block=blocks, credentials_block=blocks) == 0
    (logs,) = [x for x in capsys.readouterr().out.splitlines() if "Read the canary's logs" in x]
    assert window in logs, logs


def test_a_breach_left_in_production_gets_an_incident_report_from_the_flow_and_the_cli(aws, blocks, capsys):
    """A promotion whose monitoring window saw the guardrail breached and could not roll back
    (another run had closed the window): its rollout report said "breach not rolled back", and
    neither the flow nor `rollway report` wrote an incident report, as they did only for a
    rollback. Once a person accepts the breach (finalize's accept_breach), it is written again saying
    who accepted it and when: none was, and the newest one kept saying "still in production"."""
    from rollway.cli.report import report
    from rollway.ledger import BREACH_ACCEPTED, BREACH_KEPT

    record, shifted = start_at_five_percent(aws)
    ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    service = aws.targets.canary_service
    at = shifted + 60
    ledger.record(service, owner="run-1", now=at, transition=Transition(
        at=at, kind="promote", actor="alice", from_weights=Weights.canary_at(5), to_weights=Weights(stable=0, canary=100)),
        phase=RolloutPhase.PROMOTED, weights=Weights(stable=0, canary=100))
    ledger.record(service, owner=None, now=at + 3600, rollout=record.rollout_id, transition=Transition(
        at=at + 3600, kind="decommission", actor="run-9", wall=at + 3600, comment="60 minutes of monitoring passed"))
    saw = "monitoring after promotion: canary error rate 6.00% (60/1000) is over the 5% guardrail"
    ledger.record(service, owner=None, now=at + 3610, rollout=record.rollout_id, transition=Transition(
        at=at + 3610, kind=BREACH_KEPT, actor="monitor", wall=at + 3610,
        comment=f"{saw}; not rolled back: the monitoring window was closed by run-9. The release stays in production"))

    state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert state.result().artifacts == (f"{service}-rollout-report", f"{service}-incident-report")
    incident = artifacts_of(state)[f"{service}-incident-report"]
    assert incident.startswith(f"# Incident report: breach not rolled back of {service}, rollout {record.rollout_id}")
    assert f"**Reason:** {saw}" in incident and "**Traffic moved back:** none recorded" in incident, incident
    assert "the `rollback` flow (the rollback deployment)" in incident.split("## Next steps", 1)[1], incident
    with get_client(sync_client=True) as client:
        described = {a.key: a.description for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))}
    assert described[f"{service}-incident-report"] == (
        f"incident: breach not rolled back of rollout {record.rollout_id} of {service}"), described
    capsys.readouterr()
    assert report(targets_block=blocks, credentials_block=blocks) == 0
    out = capsys.readouterr().out
    assert out.index("**Breach not rolled back:**") < out.index("# Incident report: breach not rolled back"), out

    ledger.record(service, owner=None, now=at + 4000, rollout=record.rollout_id, transition=Transition(
        at=at + 4000, kind=BREACH_ACCEPTED, actor="dana", breach_at=at + 3610, wall=at + 4000,
        comment="the 5xx were our load test's probe"))
    accepted = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert accepted.result().artifacts == (f"{service}-rollout-report", f"{service}-incident-report")
    incident = artifacts_of(accepted)[f"{service}-incident-report"]
    assert incident.startswith(f"# Incident report: breach accepted of {service}, rollout {record.rollout_id}")
    assert f"**Accepted by:** dana at {utc(at + 4000)}" in incident and "still in production" not in incident
    assert report(targets_block=blocks, credentials_block=blocks) == 0
    out = capsys.readouterr().out
    assert f"# Incident report: breach accepted of {service}" in out and "still in production" not in out, out
    assert f"**Accepted by:** dana at {utc(at + 4000)}" in out, out


def test_an_unreadable_rollout_left_out_is_logged_with_its_id_escaped(aws, blocks, caplog):
    """An item made by hand whose rollout id holds an escape sequence and a right-to-left override:
    the report's "left out rollout" warning printed them as they were, clearing the console's line
    and reordering the rest of it."""
    import logging

    newer, _ = start_at_five_percent(aws)
    aws.get_client("dynamodb").put_item(TableName=aws.targets.rollouts_table, Item={
        "service": {"S": aws.targets.canary_service}, "rollout_id": {"S": "19990101T000000Z-\x1b[2K\u202eevil"}})
    with caplog.at_level(logging.WARNING):
        state = rollout_report(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    assert state.result().rollout_id == newer.rollout_id
    [said] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("left out rollout")]
    assert "\x1b" not in said and "\u202e" not in said, said
    assert "19990101T000000Z-\\x1b[2K\\u202eevil" in said, said


def test_a_refused_report_names_an_unreadable_rollouts_id_escaped():
    """An item made by hand whose rollout id holds an escape sequence and a right-to-left override,
    the newest or one of the newest listed: the refusal `rollway report` prints quoted it as it was."""
    from flows.reports import choose

    spoilt = "29990101T000000Z-\x1b[2K\u202eevil"
    said = "29990101T000000Z-\\x1b[2K\\u202eevil"
    with pytest.raises(ReportRefused) as newest:
        choose([], "billing", "ledger", None, {spoilt: "no phase"})
    record = RolloutRecord(service="billing", rollout_id="20260101T000000Z-a", image="webordinary/billing:3.1.0",
                           spec_json="{}", phase=RolloutPhase.PROMOTED, previous_task_definition="td:1",
                           stable_desired=4)
    with pytest.raises(ReportRefused) as listed:
        choose([record], "billing", "ledger", "20250101T000000Z-b", {spoilt: "no phase"})
    for refused in (str(newest.value), str(listed.value)):
        assert said in refused and "\x1b" not in refused and "\u202e" not in refused, refused
