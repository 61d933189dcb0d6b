"""The commands a person waits on read the load balancer within a bound, and say so.

`rollway status`, `promote --weight` and `abort` read the weights (and, first, look up the load
balancer, its listener, target groups and rule) on the account's clients: six attempts of 10 s,
kept for the writes. A load balancer that stopped answering held the command about a minute,
saying nothing. These run the commands on blocks as for a real account (no endpoint_url: the
rollout's client limits), their Elastic Load Balancing calls sent to an endpoint that never
answers, each in a thread given up on well short of that minute.
"""

from __future__ import annotations

import time
import pytest

import rollway.cli.ops as ops
import rollway.deadline as deadline
from rollway.deadline import within
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.moto_env import account_blocks

BOUND = 2.0  # the commands' bound on a read of the load balancer, here (seconds)
GIVEN_UP_SECONDS = 40.0  # well short of the account's clients' minute
ENDS_WITHIN = 20.0  # the bound and a loaded machine's slack; the bug held the command about 60 s


def silent_load_balancer(aws, monkeypatch, silent_endpoint: str) -> str:
    """Blocks as for a real account, saved under one name; Elastic Load Balancing never answers."""
    monkeypatch.setattr(ops, "LOAD_BALANCER_READ_SECONDS", BOUND)
    return account_blocks(aws, monkeypatch, "lb-silent", ELASTIC_LOAD_BALANCING_V2=silent_endpoint)


def recorded_rollout(aws, owner: str = "process/gone", phase: RolloutPhase = RolloutPhase.PROGRESSING) -> None:
    t = aws.targets
    spec = RolloutSpec(image=f"{aws.topology.repository_uri}:2.1.0", stages=[Stage(weight=5), Stage(weight=100)])
    from rollway.aws.ledger import DynamoLedger

    now = time.time()
    DynamoLedger(aws.get_client("dynamodb"), t).create(RolloutRecord(
        service=t.canary_service, rollout_id=new_rollout_id(now - 600), image=spec.image,
        spec_json=spec.model_dump_json(), phase=phase, stage_index=0, weights=Weights.canary_at(5)),
        owner=owner, now=now - 600, lease_seconds=0)


UNANSWERED = (f"Elastic Load Balancing (load balancer {{lb!r}}) did not answer within {BOUND:g} s")


def test_status_on_a_load_balancer_that_never_answers_shows_the_ledger_within_its_bound(
        aws, monkeypatch, silent_endpoint, capsys):
    blocks = silent_load_balancer(aws, monkeypatch, silent_endpoint)
    recorded_rollout(aws)
    began = time.monotonic()
    code = within(GIVEN_UP_SECONDS, lambda: ops.status(targets_block=blocks, credentials_block=blocks))
    took = time.monotonic() - began
    out = capsys.readouterr().out
    assert code == 0, out
    assert took < ENDS_WITHIN, took
    said = UNANSWERED.format(lb=aws.targets.load_balancer)
    assert f"load balancer unreadable ({said})" in out, out


def test_status_with_no_rollout_on_a_load_balancer_that_never_answers_ends_within_its_bound(
        aws, monkeypatch, silent_endpoint, capsys):
    """No rollout recorded: the weights were read again to find a misspelt name in the block."""
    blocks = silent_load_balancer(aws, monkeypatch, silent_endpoint)
    began = time.monotonic()
    code = within(GIVEN_UP_SECONDS, lambda: ops.status(targets_block=blocks, credentials_block=blocks))
    took = time.monotonic() - began
    assert code == 0  # no rollout yet: the weights it could not read are said as unreadable
    assert took < ENDS_WITHIN, took
    out = capsys.readouterr().out
    assert "no rollout recorded" in out and "load balancer unreadable" in out, out


def test_a_wait_on_the_load_balancer_says_what_it_waits_for(aws, monkeypatch, silent_endpoint, capsys):
    """A bound long enough to wait through a 'still waiting' line: said while the command waits
    (here every 2 s rather than every 10 s, within a bound of 3 s)."""
    blocks = silent_load_balancer(aws, monkeypatch, silent_endpoint)
    monkeypatch.setattr(ops, "LOAD_BALANCER_READ_SECONDS", 3.0)
    monkeypatch.setattr(deadline, "WAITING_SAID_EVERY_SECONDS", 2.0)
    service = ops.connect(blocks, blocks)
    with pytest.raises(Exception) as raised:
        within(GIVEN_UP_SECONDS, lambda: ops.live_weights(service))
    assert str(raised.value) == UNANSWERED.format(lb=aws.targets.load_balancer).replace(f"{BOUND:g} s", "3 s")
    err = capsys.readouterr().err
    assert f"still waiting for Elastic Load Balancing (load balancer {aws.targets.load_balancer!r}) after 2 s " \
           "of 3 s" in err, err


def test_abort_whose_rollback_completed_exits_0_when_the_weights_cannot_be_read_back(
        aws, monkeypatch, silent_endpoint, capsys):
    """The rejected run rolled back and completed; only the command's own read of the weights after
    it ran out. It exited 1, which on-call reads as "the rollback did not happen"."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.states import Completed

    from tests.flows.test_promote_race import paused_run

    blocks = silent_load_balancer(aws, monkeypatch, silent_endpoint)
    run = paused_run(targets_block=blocks)
    recorded_rollout(aws, owner=f"flow-run/{run.id}", phase=RolloutPhase.PAUSED)
    original = SyncPrefectClient.resume_flow_run

    def rejected_run_rolls_back(self, flow_run_id, run_input=None):
        resumed = original(self, flow_run_id, run_input=run_input)
        self.set_flow_run_state(flow_run_id, Completed(), force=True)  # its rollback done
        return resumed

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", rejected_run_rolls_back)
    code = within(GIVEN_UP_SECONDS, lambda: ops.abort(
        approver="erin", reason="errors", flow_run=None, wait_seconds=10, targets_block=blocks,
        credentials_block=blocks))
    out, err = capsys.readouterr()
    assert f"flow run {run.name} is Completed" in out, out
    said = UNANSWERED.format(lb=aws.targets.load_balancer)
    assert f"could not read the load balancer back ({said})" in err, err
    assert code == 0, err
