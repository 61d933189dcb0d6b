"""`rollway report` on a ledger out of reach: one line naming the table, within the bound the
other commands a person waits on keep.

On blocks as for a real account, their DynamoDB calls sent to an endpoint that never answers.
`rollway report` read the ledger on the account's clients: a DynamoDB that stopped answering held
it over a minute, silent, and it ended on "AWS refused or could not be reached: Read timeout on
endpoint URL", naming neither DynamoDB nor the ledger table.
"""

from __future__ import annotations

import time

from rollway.cli.report import report
from rollway.deadline import within
from tests.flows.test_cli_ledger_bound import BOUND, ENDS_WITHIN, GIVEN_UP_SECONDS, silent_ledger, unanswered


def test_rollway_report_on_a_ledger_that_never_answers_ends_within_its_bound_saying_so(
        aws, monkeypatch, silent_endpoint, capsys):
    blocks = silent_ledger(aws, monkeypatch, silent_endpoint)
    began = time.monotonic()
    code = within(GIVEN_UP_SECONDS, lambda: report(targets_block=blocks, credentials_block=blocks))
    took = time.monotonic() - began
    err = capsys.readouterr().err
    assert code == 1, err
    assert took < ENDS_WITHIN, took
    assert f"error: {unanswered(aws, BOUND)}" in err, err
