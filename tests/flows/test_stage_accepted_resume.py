"""A stage a person accepted on their word, the judge unable to pass it, stays accepted when
the run dies before the next shift and another run resumes the rollout from the ledger."""

from __future__ import annotations

import pytest

from rollway.approvals import ApprovalAnswer
from rollway.spec import RolloutSpec, Stage
from tests.flows.test_progressive_fakes import IMAGE, Intercept, Killed, env_with_ledger, progressive_on

SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 25, 100)], monitor_seconds=0)


def dies_moving_to_25(name, args, kwargs):
    if name == "set_weights" and args and args[0].canary == 25:
        raise Killed("dies after the acceptance was recorded, before the load balancer moved")


def test_a_resumed_shift_after_an_accepted_stage_says_who_accepted_it_not_that_it_passed():
    env = env_with_ledger(rps=0.01)  # too little traffic: the judge cannot pass a stage, a person accepts it
    real = env.router
    env.router = Intercept(real, dies_moving_to_25)
    accept = ApprovalAnswer(action="approve", approver="dana", comment="traffic is low tonight")
    with pytest.raises(Killed):
        progressive_on(env, SPEC, lambda pause, summary: accept)
    env.router = real
    record = env.ledger.get(env.targets.canary_service)
    assert (record.stage_index, record.stage_passed, record.history[-1].kind) == (0, True, "approve")
    env.clock.sleep(601)  # the dead run's lease runs out
    reject = ApprovalAnswer(action="reject", approver="erin", comment="enough")
    result = progressive_on(env, SPEC, lambda pause, summary: reject, owner="run-2")
    assert result.outcome == "rolled_back"
    shift = next(t for t in env.ledger.get(env.targets.canary_service).history
                 if t.kind == "shift" and t.to_weights.canary == 25)
    # The judge never passed 5 %: the resumed shift must not say it did.
    assert shift.comment.startswith("stage 5% accepted by dana;"), shift.comment
