"""The commands a person waits on read the ledger within a bound, and say so.

`rollway status`, `promote`, `abort` and `finalize` read the ledger (DynamoDB Query) on the account's clients:
several attempts of up to a minute. A DynamoDB that stopped answering held `rollway status` for
minutes, saying nothing. These run the commands on blocks as for a real account, their DynamoDB
calls sent to an endpoint that never answers, each in a thread given up on well short of that.
"""

from __future__ import annotations

import re
import time

import pytest

import rollway.cli.ops as ops
import rollway.deadline as deadline
from rollway.deadline import within
from tests.flows.moto_env import account_blocks

BOUND = 2.0  # the commands' bound on a read of the ledger, here (seconds)
GIVEN_UP_SECONDS = 40.0  # well short of the account's clients' minutes
ENDS_WITHIN = 20.0  # the bound and a loaded machine's slack


def silent_ledger(aws, monkeypatch, silent_endpoint: str, bound: float = BOUND) -> str:
    """Blocks as for a real account, saved under one name; DynamoDB never answers."""
    monkeypatch.setattr(ops, "LEDGER_READ_SECONDS", bound)
    return account_blocks(aws, monkeypatch, "ledger-silent", DYNAMODB=silent_endpoint)


def unanswered(aws, bound: float = BOUND) -> str:
    return f"DynamoDB (table {aws.targets.rollouts_table!r}) did not answer within {bound:g} s"


def _finalize(blocks: str) -> int:
    from rollway.cli.finalize import finalize

    return finalize(actor="alice", targets_block=blocks, credentials_block=blocks)


COMMANDS = {
    "finalize": _finalize,
    "status": lambda blocks: ops.status(targets_block=blocks, credentials_block=blocks),
    "promote": lambda blocks: ops.promote(approver="alice", comment="", weight=None, flow_run=None,
                                          targets_block=blocks, credentials_block=blocks),
    "abort": lambda blocks: ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=5,
                                      targets_block=blocks, credentials_block=blocks),
}
NOTHING_DONE = {"finalize": "; nothing was finalized", "status": "", "promote": "; nothing was answered", "abort": "; nothing was rolled back"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_on_a_ledger_that_never_answers_ends_within_its_bound_saying_so(
        aws, monkeypatch, silent_endpoint, capsys, command):
    blocks = silent_ledger(aws, monkeypatch, silent_endpoint)
    began = time.monotonic()
    code = within(GIVEN_UP_SECONDS, lambda: COMMANDS[command](blocks))
    took = time.monotonic() - began
    err = capsys.readouterr().err
    assert code == 1, err
    assert took < ENDS_WITHIN, took
    assert f"error: {unanswered(aws)}{NOTHING_DONE[command]}" in err, err


def test_a_wait_on_the_ledger_says_what_it_waits_for(aws, monkeypatch, silent_endpoint, capsys):
    """A bound long enough to wait through a 'still waiting' line: said while the command waits
    (here every 2 s rather than every 10 s, within a bound of 3 s)."""
    monkeypatch.setattr(deadline, "WAITING_SAID_EVERY_SECONDS", 2.0)
    blocks = silent_ledger(aws, monkeypatch, silent_endpoint, bound=3.0)
    code = within(GIVEN_UP_SECONDS, lambda: COMMANDS["status"](blocks))
    err = capsys.readouterr().err
    assert code == 1, err
    # Said at 2 s; a loaded machine wakes the saying late, up to the bound itself.
    assert re.search(rf"still waiting for DynamoDB \(table {re.escape(repr(aws.targets.rollouts_table))}\) after [23] s "
                     "of 3 s", err), err
    assert unanswered(aws, 3.0) in err, err
