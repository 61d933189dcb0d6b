"""`rollway status` of a rollout whose run moved the traffic to its next stage and stopped before
the ledger recorded it (or has not recorded it yet).

A resumed run recognises that shift as its own and records it (``reconcile``); status called it
"drift", as if someone had moved the traffic by hand, and on-call paged at night reached for
`rollway abort` to undo a healthy rollout.
"""

from __future__ import annotations

import pytest

from rollway.approvals import auto_approve
from rollway.cli import ops
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.test_progressive_fakes import (
    IMAGE, Intercept, Killed, dies_recording_the_shift_to, env_with_ledger, progressive_on, shifts,
)

SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 50, 100)], monitor_seconds=0)


def _killed_after_moving_to_50():
    env = env_with_ledger()
    real = env.ledger
    env.ledger = Intercept(real, dies_recording_the_shift_to(50))
    with pytest.raises(Killed):
        progressive_on(env, SPEC, auto_approve())
    env.ledger = real
    assert (env.ledger.get(env.targets.canary_service).weights, env.router.weights) == (
        Weights.canary_at(5), Weights.canary_at(50))
    return env


def _status(env, monkeypatch, capsys) -> str:
    service = ops.Service(targets=env.targets, targets_block=None, credentials_block=None, ledger=env.ledger,
                          router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    monkeypatch.setattr(ops, "find_paused_run", lambda *a: (_ for _ in ()).throw(ops.NoPausedRun("none")))
    code = ops.status(targets_block=None, credentials_block=None)
    out, err = capsys.readouterr()
    assert code == 0, err
    return " ".join(out.split())


def test_status_calls_a_shift_the_run_made_and_did_not_record_its_own_and_the_resume_records_it(monkeypatch, capsys):
    env = _killed_after_moving_to_50()
    said = _status(env, monkeypatch, capsys)
    assert "drift" not in said, said
    assert ("the load balancer holds 50/50, stage 2/3 (50%), the rollout's own next shift, which the ledger has "
            "not recorded yet") in said, said
    assert "a resumed run (progressive_rollout with the same image, or the next advance_phase run) records it" in said
    # What status said is what the resume does: the shift is taken as the rollout's, not refused as drift.
    env.clock.sleep(601)
    result = progressive_on(env, SPEC, auto_approve(), owner="run-2")
    assert result.outcome == "promoted" and shifts(env) == [5, 50, 100]


def test_status_of_weights_no_shift_of_the_rollout_explains_says_drift_and_the_ways_out(monkeypatch, capsys):
    env = _killed_after_moving_to_50()
    env.router.weights = Weights(stable=70, canary=30)  # by hand: no stage of the rollout is at 30 %
    said = _status(env, monkeypatch, capsys)
    assert "drift: the load balancer holds 70/30 but the ledger says 95/5" in said, said
    assert "a resumed run refuses it unless run with adopt_live_weights=true; `rollway abort` rolls back" in said


def test_on_aws_status_after_a_process_died_as_its_shift_landed_names_the_stage_and_the_resume_takes_it(aws, capsys):
    """The same on the embedded AWS: the ledger in its DynamoDB table, the weights read from the
    load balancer's rule, through the saved blocks, after the process died as its ModifyRule to 5 %
    came back."""
    from tests.flows.moto_env import paced_environment, saved_blocks
    from tests.flows.test_lost_answer_resumed_elsewhere import (
        first_process_dies_as_the_shift_loses_its_answer, process, progressive, spec,
    )

    image, settings = first_process_dies_as_the_shift_loses_its_answer(aws)
    blocks = saved_blocks(aws, "unrecorded-shift")
    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "drift" not in said, said
    assert "the load balancer holds 95/5, stage 1/2 (5%), the rollout's own next shift" in said, said

    get_client, simulator = process(aws, image, settings)
    with paced_environment(get_client, aws.targets, settings, simulator) as env, simulator:
        assert progressive(env, spec(image), "process/second").outcome == "promoted"
