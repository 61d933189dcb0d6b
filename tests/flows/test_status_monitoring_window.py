"""`rollway status` of a promotion inside its monitoring window (on moto, through the saved blocks).

Status read the rollout clock only for a rollout between weekly phases: for a promoted one it had
no "now", and its monitoring row said, from the promotion's first minute, "not recorded as closed:
its window was due to end ... and no run closed it (the run watching it stopped ...): run
`progressive_rollout` ... again" while the window's own run was watching it.
"""
from __future__ import annotations

import rollway.cli.ops as ops
from rollway.aws.environment import aws_environment
from rollway.clock import ClockSettings
from rollway.ledger import RolloutRecord, Transition, new_rollout_id, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.moto_env import saved_blocks


def test_status_of_a_promotion_inside_its_window_says_until_when_it_is_open(aws, capsys):
    t = aws.targets
    env = aws_environment(aws.get_client, t, ClockSettings().build())
    spec = RolloutSpec(image=f"{aws.topology.repository_uri}:2.1.0", stages=[Stage(weight=5), Stage(weight=100)],
                       monitor_seconds=3600)
    env.router.set_weights(Weights(stable=0, canary=100))
    promoted = env.clock.now() - 300
    env.ledger.create(RolloutRecord(
        service=t.canary_service, rollout_id=new_rollout_id(promoted - 600), image=spec.image,
        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROMOTED, stage_index=1,
        weights=Weights(stable=0, canary=100), monitor_until=promoted + 3600,
        history=(Transition(at=promoted - 600, kind="start", actor="alice"),
                 Transition(at=promoted, kind="promote", actor="alice", to_weights=Weights(stable=0, canary=100)))),
        owner="process/gone", now=promoted, lease_seconds=0)
    blocks = saved_blocks(aws, "window-open")

    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"monitoring open until {utc(promoted + 3600)} (rollout clock)" in out, out
    assert "no run closed it" not in out, out
    # Its run's lease lapsed (process/gone held it for 0 s): nobody watches what is left of it.
    assert "the ledger shows no run watching it now (process/gone's lease lapsed at" in out, out
    assert f"run `progressive_rollout` of {spec.image} again, which watches what is left of it" in out, out
