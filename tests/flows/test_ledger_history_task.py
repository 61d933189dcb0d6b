"""The ledger history task (the reports' read) tries again only what a second read may change."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from prefect import flow

from rollway.fakes import FakeLedger
from rollway.ledger import MalformedRollout
from tasks.ledger import rollout_history

SERVICE = "webordinary-edit-service-canary"


class FailingReads(FakeLedger):
    """Every history read raises ``errors[n]`` (the last one once they run out), counting the reads."""

    def __init__(self, *errors: Exception) -> None:
        super().__init__()
        self.errors, self.reads = list(errors), 0

    def history(self, service, **kwargs):
        self.reads += 1
        if self.errors:
            raise self.errors.pop(0)
        return super().history(service, **kwargs)


@flow
def read_history(ledger):
    return rollout_history(ledger, SERVICE)


@pytest.mark.parametrize("error", [
    MalformedRollout(f"the rollouts table's item of {SERVICE!r}, rollout 'r1', is not one rollway can read "
                     "(spec_json is not JSON: Expecting value: line 1 column 1 (char 0)): repair or delete that item"),
    ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "Requested resource not found"}}, "Query"),
], ids=["an item rollway cannot read", "no such table"])
def test_a_read_that_fails_the_same_every_time_is_not_tried_again(error):
    """An item edited by hand, or a missing table, reads the same on every try: the retries only
    delayed the report's failure and logged it three times."""
    ledger = FailingReads(error, error, error)
    with pytest.raises(type(error)):
        read_history(ledger)
    assert ledger.reads == 1


def test_a_dropped_connection_is_tried_again():
    ledger = FailingReads(EndpointConnectionError(endpoint_url="https://dynamodb.us-west-2.amazonaws.com"))
    assert read_history(ledger) == ([], {})
    assert ledger.reads == 2
