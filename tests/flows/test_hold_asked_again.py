"""A person's *hold* at a pause the judge could not decide is asked again, not overtaken by a pass.

*hold* promises "stay and ask again". At a stage the judge could not decide (too little traffic),
the look after a hold found the traffic back and the judge passing: the run shifted to the next
stage without asking the person who had just chosen not to go on.
"""

from __future__ import annotations

from prefect import flow

from flows.canary import run_canary
from rollway.approvals import ApprovalAnswer
from rollway.fakes import steady
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


@flow
def canary_on(env, spec, approver):
    return run_canary(env, spec, approver)


def held_until_the_judge_passes(refused: ApprovalAnswer | None = None):
    """alice holds the 5 % stage the judge could not decide until the judge passes it, then
    approves, on her word; ``refused``, when given, is answered first at the pass's pause.
    Returns the environment, the (reason, canary weight) of each pause asked, and the result."""
    env = fake_environment(rps=0.01)  # too little traffic: the 5 % stage ends inconclusive
    asked: list[tuple[str, int]] = []

    def people(pause, summary):
        asked.append((pause.reason, env.router.weights.canary))
        env.metrics.behaviour = steady(5000.0, 0.001, 0.001)  # the traffic is back, the canary healthy
        passes = [reason for reason, _weight in asked if "the judge passes it now" in reason]
        if refused is not None and len(passes) == 1:
            return refused
        if passes or len(asked) > 30:
            return ApprovalAnswer(action="approve", approver="alice", comment="partner test passed")
        return ApprovalAnswer(action="hold", approver="alice", comment="the partner's test first")

    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=300)],
                       monitor_seconds=0)
    result = canary_on(env, spec, people)
    assert result.outcome == "promoted", result.reason
    assert [(s.weights.canary, s.decision) for s in result.stages][0] == (5, "accepted by alice"), result.stages
    return env, asked, result


def test_a_stage_a_person_held_is_not_moved_on_by_the_judge_without_asking_them_again():
    _env, asked, _result = held_until_the_judge_passes()
    assert len(asked) > 1 and {weight for _reason, weight in asked} == {5}, asked
    last = asked[-1][0]
    assert last.startswith("5%: ") and "a person held this stage" in last and "the judge passes it now" in last, last


def test_an_answer_refused_at_a_held_stages_pause_does_not_let_the_judge_move_the_stage_on():
    """Asked again "a person held this stage", bob answers hold with a next_weight: refused, it
    approves nothing. The hold stays: the judge's pass moved the stage on at the next look, with no
    person approving, and nobody was asked again."""
    env, asked, _result = held_until_the_judge_passes(
        ApprovalAnswer(action="hold", approver="bob", comment="skip ahead", next_weight=100))
    held = [reason for reason, weight in asked if "a person held this stage" in reason and weight == 5]
    assert len(held) == 2, asked
    # Told again after each of alice's holds, not after bob's refused answer: the form says why it asks.
    again = [s for s, _b in env.notifier.messages if s.startswith("Rollout waits for a person again")]
    holds = len(asked) - 2  # all but bob's and the approval
    assert len(again) == holds, (again, asked)
