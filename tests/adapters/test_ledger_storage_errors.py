"""What DynamoLedger lets through when DynamoDB itself fails, told apart from the ledger's own refusals.

A rollback records itself with ``write_or_why``: a storage failure becomes a sentence naming the
call and AWS's error code (and the rollback goes on), while a refusal that means something to
the rollout (RolloutEnded, NotOwner) still raises.
"""

from __future__ import annotations

import socket
from typing import Iterator

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from rollway.aws.ledger import DynamoLedger, storage_failure, write_or_why
from rollway.ledger import RolloutEnded, RolloutRecord, Transition, begin_rollback
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec
from rollway.targets import Targets

TARGETS = Targets()
SERVICE = TARGETS.canary_service


@pytest.fixture
def ledger() -> Iterator[DynamoLedger]:
    """A DynamoLedger on in-process moto, holding one rollout owned by run-1."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=TARGETS.region)
        client.create_table(
            TableName=TARGETS.rollouts_table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "service", "KeyType": "HASH"},
                       {"AttributeName": "rollout_id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "service", "AttributeType": "S"},
                                  {"AttributeName": "rollout_id", "AttributeType": "S"}],
        )
        ledger = DynamoLedger(client, TARGETS)
        ledger.create(RolloutRecord(service=SERVICE, rollout_id="20270101T000000Z-00000001", image="app:2",
                                    spec_json=RolloutSpec(image="app:2").model_dump_json(),
                                    phase=RolloutPhase.PROGRESSING),
                      owner="run-1", now=1_800_000_000.0, lease_seconds=600)
        yield ledger


def test_a_missing_table_is_told_with_the_call_and_the_aws_error_code(ledger):
    boto3.client("dynamodb", region_name=TARGETS.region).delete_table(TableName=TARGETS.rollouts_table)
    why = write_or_why(lambda: begin_rollback(ledger, SERVICE, actor="erin", reason="bad", now=1_800_000_100.0))
    assert why is not None and why.startswith("DynamoDB Query failed with ResourceNotFoundException"), why


def test_the_ledgers_own_refusal_still_raises(ledger):
    begin_rollback(ledger, SERVICE, actor="erin", reason="bad", now=1_800_000_100.0)
    shift = Transition(at=1_800_000_200.0, kind="shift", actor="run-1")
    with pytest.raises(RolloutEnded, match="rolling_back by erin"):
        write_or_why(lambda: ledger.record(SERVICE, owner="run-1", now=1_800_000_200.0, transition=shift))


def test_an_unreachable_dynamodb_is_told_as_such():
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name=TARGETS.region,
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    why = write_or_why(lambda: DynamoLedger(client, TARGETS).get(SERVICE))
    assert why is not None and why.startswith("DynamoDB could not be reached (EndpointConnectionError"), why
    assert "testing" not in why, "the credentials must never reach a message"


def test_a_read_failing_with_no_message_is_told_by_the_exception_and_where(ledger):
    # What a rollback's check of the ledger logs when the read fails with no words of its own (a
    # reset connection): "DynamoDB could not be reached (ConnectionResetError: )".
    from tests.botocore_events import on_operation

    def reset(**_):
        raise ConnectionResetError()

    client = boto3.client("dynamodb", region_name=TARGETS.region)  # the fixture's table, on a client of this test's
    with on_operation(client, "before-call", reset, operation="Query"), pytest.raises(ConnectionResetError) as failed:
        DynamoLedger(client, TARGETS).history(SERVICE)
    said = storage_failure(failed.value)
    assert said.startswith("DynamoDB could not be reached (ConnectionResetError with no message, raised at "
                           "tests/adapters/test_ledger_storage_errors.py:"), said


def test_awss_words_in_a_storage_failure_are_one_line_with_control_characters_escaped(ledger):
    # Said on a rollback's page, in the ledger's own entry and the run's log: AWS's message (an
    # endpoint's coloured error, a proxy's page) went there raw, an escape sequence acting on the
    # terminal of whoever read the log, a line break beginning a log line of its own.
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    def throttled(**_):
        raise ClientError({"Error": {"Code": "ThrottlingException",
                                     "Message": "Rate exceeded\n12:00:00 INFO rollback done\x1b[2K"}}, "Query")

    client = boto3.client("dynamodb", region_name=TARGETS.region)  # the fixture's table, on a client of this test's
    with on_operation(client, "before-call", throttled, operation="Query"):
        why = write_or_why(lambda: begin_rollback(DynamoLedger(client, TARGETS), SERVICE, actor="erin", reason="bad",
                                                  now=1_800_000_100.0))
    assert why == ("DynamoDB Query failed with ThrottlingException: Rate exceeded 12:00:00 INFO rollback done"
                   "\\x1b[2K"), repr(why)
