"""FakeLedger keeps text as the DynamoDB ledger stores it.

DynamoLedger writes a string holding a lone surrogate (a byte that is not UTF-8, as Python decodes
it: a role's name AWS echoed in a refusal) with the byte escaped (``rollway.failure_words.writable``):
the request could not be encoded otherwise. A fake that kept the text as given showed flow tests
records production never reads back. Both ledgers are written the same and read back here.
"""

from __future__ import annotations

from typing import Any, Iterator

import boto3
import pytest
from moto import mock_aws

from rollway.aws.ledger import DynamoLedger
from rollway.failure_words import writable
from rollway.fakes import FakeLedger
from rollway.phases import RolloutPhase
from rollway.targets import Targets
from tests.unit.test_fake_ledger import LEASE, SERVICE, START, rollout, step

NOT_UTF8 = b"role web\xff".decode("utf-8", "surrogateescape")
DENIED = f"restore failed: {NOT_UTF8} is not authorized to perform: ecs:UpdateService"


@pytest.fixture
def dynamo() -> Iterator[DynamoLedger]:
    """A DynamoLedger on moto in process, over a table with the key schema the topology provisions."""
    targets = Targets(rollouts_table="webordinary-rollouts-text")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=targets.region)
        keys = {"service": "HASH", "rollout_id": "RANGE"}
        client.create_table(
            TableName=targets.rollouts_table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in keys.items()],
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in keys],
        )
        yield DynamoLedger(client, targets)


def both(dynamo: DynamoLedger, write: Any, **fields: Any) -> tuple[FakeLedger, Any, Any]:
    """The same rollout (``fields``) started on a FakeLedger and on ``dynamo``, then ``write(ledger)``
    on each: the fake and what each answered."""
    record, fake = rollout(**fields), FakeLedger()
    for ledger in (fake, dynamo):
        ledger.create(record, owner="run-1", now=START, lease_seconds=LEASE)
    return fake, write(fake), write(dynamo)


def test_a_transition_whose_text_is_not_utf8_reads_back_as_from_dynamodb(dynamo):
    def write(ledger: Any) -> Any:
        return ledger.record(SERVICE, owner=None, now=START + 1, phase=RolloutPhase.ROLLING_BACK,
                             transition=step(START + 1, "rollback-stopped", "erin", comment=DENIED,
                                             verdict=f"canary {NOT_UTF8}"))

    fake, on_fake, on_dynamo = both(dynamo, write)
    assert on_dynamo.history[-1].comment == writable(DENIED) != DENIED  # what production stores
    assert on_fake == on_dynamo
    assert fake.get(SERVICE) == dynamo.get(SERVICE) == on_dynamo


def test_a_created_rollout_whose_history_is_not_utf8_reads_back_as_from_dynamodb(dynamo):
    _, on_fake, on_dynamo = both(dynamo, lambda ledger: ledger.get(SERVICE),
                                 history=(step(START, "adopt", f"ops {NOT_UTF8}", comment=DENIED),))
    assert on_dynamo.history[0].actor == writable(f"ops {NOT_UTF8}")
    assert on_fake == on_dynamo


def test_the_same_create_again_is_answered_with_the_rollout_stored():
    """A Prefect task retry sends the same create again: the fake knows it by the record as stored,
    escaped, and answers it rather than refusing it as a second rollout in progress."""
    fake = FakeLedger()
    record = rollout(history=(step(START, "adopt", "ops", comment=DENIED),))
    first = fake.create(record, owner="run-1", now=START, lease_seconds=LEASE)
    again = fake.create(record, owner="run-1", now=START, lease_seconds=LEASE)
    assert again == first == fake.get(SERVICE)
    assert len(fake.history(SERVICE)) == 1


def test_dynamodb_answers_the_same_create_again_with_the_rollout_as_stored(dynamo):
    """DynamoLedger compared the record read back (escaped) with the one it meant to write (not):
    the same create sent again (a task's retry after a lost answer) was refused as a second
    rollout in progress, and its first answer was the record as given, not as stored."""
    record = rollout(history=(step(START, "adopt", "ops", comment=DENIED),))
    first = dynamo.create(record, owner="run-1", now=START, lease_seconds=LEASE)
    assert first == dynamo.get(SERVICE), "create answered a record other than the one stored"
    again = dynamo.create(record, owner="run-1", now=START, lease_seconds=LEASE)
    assert again == first
