"""A rollout run builds one AWS session per region and passes it down: every session made without
a role asks STS who its keys are (GetCallerIdentity), so a run that built its session again (a
resume whose recorded metrics period differs from the given spec's) asked STS twice before its
first step, and read its credentials block twice."""

from __future__ import annotations

import time

import pytest

from flows.progressive import progressive_rollout
from rollway.aws.ledger import DynamoLedger
from rollway.ledger import RolloutRecord
from rollway.phases import RolloutPhase
from rollway.spec import Analysis, RolloutSpec, Stage
from tests.flows.moto_env import saved_blocks

IMAGE = "webordinary/edit-container:2.0.0"


def _spec(interval_seconds: int) -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 100)],
                       analysis=Analysis(interval_seconds=interval_seconds), monitor_seconds=0)


def _held_elsewhere(aws, phase: RolloutPhase, interval_seconds: int, lease_seconds: float = 600) -> None:
    """The service's rollout of IMAGE in ``phase``, recorded at ``interval_seconds`` periods and held
    by a live run elsewhere for ``lease_seconds``."""
    DynamoLedger(aws.get_client("dynamodb"), aws.targets).create(
        RolloutRecord(service=aws.targets.canary_service, rollout_id="r-20260101", image=IMAGE,
                      spec_json=_spec(interval_seconds).model_dump_json(), phase=phase),
        owner="process/elsewhere", now=time.time(), lease_seconds=lease_seconds)


def test_a_resume_at_the_recorded_period_asks_sts_once(aws, every_call, credentials_loaded):
    # An unfinished rollout of the image, recorded at 120-s periods and held by a run elsewhere
    # for longer than this run would wait: this run, given 60-s periods, reads metrics at the
    # recorded period, then is refused by the lease (it writes nothing; its hook leaves the
    # rollout alone).
    blocks = saved_blocks(aws)
    _held_elsewhere(aws, RolloutPhase.PROGRESSING, 120, lease_seconds=3600)
    asked = every_call("sts")
    state = progressive_rollout(spec=_spec(60), phased=False, targets_block=blocks, aws_credentials_block=blocks,
                                lease_wall_seconds=60, return_state=True)
    assert state.is_failed() and "LockHeld" in (state.message or ""), state
    # One for the run's session (it built a second one for the recorded period: three in all),
    # one for its on_failure hook's, which reads the ledger to see that another run owns the
    # rollout, and leaves it alone.
    assert asked == ["GetCallerIdentity"] * 2, asked
    assert credentials_loaded == [blocks] * 2, credentials_loaded


def test_a_failed_runs_hook_reads_the_ledger_on_one_session(aws, every_call, credentials_loaded):
    """The hook of a run that lost its lease asks whether its rollout is still the newest, then
    whether another run owns it: each question built a session of its own."""
    from prefect.states import Failed

    from flows.hooks import leave_alone
    from rollway.ledger import LockHeld

    blocks = saved_blocks(aws)
    _held_elsewhere(aws, RolloutPhase.PROGRESSING, 60)
    asked = every_call("sts")
    why = leave_alone(Failed(data=LockHeld("held by process/elsewhere")),
                      {"targets_block": blocks, "aws_credentials_block": blocks}, rollout="r-20260101")
    assert why is not None and why.startswith("another run owns the rollout now"), why
    assert asked == ["GetCallerIdentity"], asked
    assert credentials_loaded == [blocks], credentials_loaded


def test_a_monitor_given_another_spec_than_recorded_asks_sts_once(aws, every_call, credentials_loaded):
    """The monitor reads CloudWatch at the recorded spec's period: it built a second session for it."""
    from flows.monitor import monitor
    from rollway.ledger import LockHeld

    blocks = saved_blocks(aws)
    _held_elsewhere(aws, RolloutPhase.PROMOTED, 120)
    asked = every_call("sts")
    with pytest.raises(LockHeld):  # another run watches it: refused before anything is read or written
        monitor(spec=_spec(60), targets_block=blocks, aws_credentials_block=blocks)
    assert asked == ["GetCallerIdentity"], asked
    assert credentials_loaded == [blocks], credentials_loaded
