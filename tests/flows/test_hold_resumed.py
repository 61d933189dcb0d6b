"""A person's *hold* is kept when the run that took it dies and another resumes the rollout.

A hold at a pause the judge could not decide says "stay and ask again": a pass the judge reaches
afterwards asks the person again (test_hold_asked_again). The hold lived only in the run's
process: killed after it, the run resumed from the ledger moved on as soon as the judge passed,
as if nobody had held the stage.
"""

from __future__ import annotations

import pytest

from rollway.approvals import ApprovalAnswer
from rollway.fakes import steady
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.test_progressive_fakes import IMAGE, Intercept, Killed, env_with_ledger, progressive_on

SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=300)],
                   monitor_seconds=0)


def held_then_killed(spec: RolloutSpec, answer: ApprovalAnswer):
    """Run 1 pauses its 5 % stage as inconclusive (too little traffic), gets ``answer``, and its
    process dies at the next look at the canary; the traffic is back and healthy by then."""
    env = env_with_ledger(rps=0.01)
    real, answered = env.metrics, []

    def dies_after_the_answer(name, args, kwargs):
        if name == "observe" and answered:
            raise Killed("the node running the rollout is lost after the hold")

    def run_1(pause, summary):
        answered.append(pause.reason)
        return answer

    env.metrics = Intercept(real, dies_after_the_answer)
    with pytest.raises(Killed):
        progressive_on(env, spec, run_1)
    env.metrics = real
    env.metrics.behaviour = steady(5000.0, 0.001, 0.001)  # the traffic is back, the canary healthy
    assert len(answered) == 1 and answered[0].startswith("5%: "), answered
    env.clock.sleep(601)  # the dead run's lease runs out
    return env


def test_a_resumed_run_asks_again_at_a_stage_a_person_held_before_the_run_died():
    env = held_then_killed(SPEC, ApprovalAnswer(action="hold", approver="alice", comment="the partner's test first"))
    asked: list[tuple[str, int, str]] = []

    def run_2(pause, summary):
        asked.append((pause.reason, env.router.weights.canary, summary))
        return ApprovalAnswer(action="approve", approver="bob", comment="partner test passed")

    result = progressive_on(env, SPEC, run_2, owner="run-2")
    assert result.outcome == "promoted", result.reason
    assert asked, "the resumed run moved on without asking the person who held the stage"
    reason, weight, form = asked[0]
    assert weight == 5 and reason.startswith("5%: "), asked
    assert "the judge passes it now" in reason and "a person held this stage" in reason, reason
    # Its form and its notice say who held, and why.
    assert "alice answered **hold**" in form and "the partner's test first" in form, form
    notices = [message for subject, message in env.notifier.messages if "Rollout waits for a person again" in subject]
    assert notices and "alice answered hold (the partner's test first); asked again." in notices[-1], \
        [subject for subject, _ in env.notifier.messages]
    record = env.ledger.get(env.targets.canary_service)
    accepted = [t for t in record.history if t.kind == "approve"]
    assert [(t.actor, t.to_stage) for t in accepted] == [("bob", 0)], [(t.kind, t.actor) for t in record.history]


def test_a_hold_by_timeout_is_no_person_s_and_the_resumed_run_moves_on_when_the_judge_passes():
    spec = SPEC.model_copy(update={"approvals": Approvals(on_timeout="hold")})
    env = held_then_killed(spec, ApprovalAnswer(action="hold", approver="timeout", timed_out=True,
                                                comment="no answer within 1 h"))
    asked: list[str] = []

    def run_2(pause, summary):
        asked.append(pause.reason)
        return ApprovalAnswer(action="reject", approver="bob", comment="not asked for")

    result = progressive_on(env, spec, run_2, owner="run-2")
    assert result.outcome == "promoted", result.reason
    assert asked == [], asked
