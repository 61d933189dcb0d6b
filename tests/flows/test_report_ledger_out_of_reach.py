"""`rollway report` and `rollway status` on a ledger out of reach: one line naming the table (and,
when no connection could be made, what to check), within the bound the other commands a person
waits on keep.

On blocks as for a real account, their DynamoDB calls sent to an endpoint that never answers, or
that nothing listens on. `rollway report` read the ledger on the account's clients: a DynamoDB that
stopped answering held it over a minute, silent, and it ended on "AWS refused or could not be
reached: Read timeout on endpoint URL", naming neither DynamoDB nor the ledger table. A ledger no
connection could be made to ended both commands on botocore's words alone ("... Could not connect
to the endpoint URL: ..."): which service, which table, and what to check were left to guess.
"""

from __future__ import annotations

import socket
import time

import pytest

import rollway.cli.ops as ops
from rollway.cli.report import report
from rollway.deadline import within
from tests.flows.moto_env import account_blocks
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


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: every connection to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


COMMANDS = {
    "status": lambda blocks: ops.status(targets_block=blocks, credentials_block=blocks),
    "report": lambda blocks: report(targets_block=blocks, credentials_block=blocks),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_ledger_that_cannot_be_connected_to_is_named_with_what_to_check(aws, monkeypatch, closed_port, capsys,
                                                                         command):
    blocks = account_blocks(aws, monkeypatch, "ledger-closed", DYNAMODB=f"http://127.0.0.1:{closed_port}")
    code = within(GIVEN_UP_SECONDS, lambda: COMMANDS[command](blocks))
    err = capsys.readouterr().err
    assert code == 1, err
    (line,) = err.splitlines()
    assert line.startswith(f"error: DynamoDB (table {aws.targets.rollouts_table!r}, region {aws.targets.region}) "
                           "could not be reached: Could not connect to the endpoint URL: "
                           f'"http://127.0.0.1:{closed_port}/"'), line
    assert "check this machine's network and proxy (HTTPS_PROXY)" in line and "endpoint_url" in line, line
