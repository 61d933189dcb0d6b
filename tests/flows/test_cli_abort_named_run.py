"""`rollway abort --flow-run ID` naming a run that is gone or not paused.

It refuses without rolling anything back, and ended "nothing was answered": on-call aborting a
rollout needs to know whether the traffic moved, which the message did not say.
"""

from __future__ import annotations

from types import SimpleNamespace
from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Completed

from rollway.cli import ops
from rollway.phases import RolloutPhase
from tests.flows.test_abort_clock import stand_in
from tests.flows.test_promote_race import commands_see_a_rollout_owned_by


@pytest.mark.parametrize("named", ["unknown", "finished"])
def test_abort_naming_no_paused_run_says_nothing_was_rolled_back(monkeypatch, capsys, named):
    owner = SimpleNamespace(id=uuid4())
    commands_see_a_rollout_owned_by(monkeypatch, owner)
    service = ops.connect(None, None)
    if named == "finished":
        with get_client(sync_client=True) as client:
            flow_run = client.create_flow_run(stand_in, state=Completed()).id
    else:
        flow_run = uuid4()
    code = ops.abort(approver="bob", reason="error budget", flow_run=flow_run, wait_seconds=0, targets_block=None,
                     credentials_block=None)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    assert str(flow_run) in err and err.endswith("; nothing was rolled back"), err
    # What it says is what happened: the rollout is where it was, its traffic unmoved.
    record = service.ledger.get(service.name)
    assert record.phase is RolloutPhase.PAUSED and [t.kind for t in record.history] == ["start"], record
    assert service.router.get_weights().canary == 5
