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


def test_a_stage_a_person_held_is_not_moved_on_by_the_judge_without_asking_them_again():
    env = fake_environment(rps=0.01)  # too little traffic: the 5 % stage ends inconclusive
    asked: list[tuple[str, int]] = []

    def alice(pause, summary):
        # Held until the judge has its say, a minute at a time; then approved, on her word.
        asked.append((pause.reason, env.router.weights.canary))
        env.metrics.behaviour = steady(5000.0, 0.001, 0.001)  # the traffic is back, the canary healthy
        if "the judge passes it now" in pause.reason or len(asked) > 30:
            return ApprovalAnswer(action="approve", approver="alice", comment="partner test passed")
        return ApprovalAnswer(action="hold", approver="alice", comment="the partner's test first")

    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=300)],
                       monitor_seconds=0)
    result = canary_on(env, spec, alice)
    assert result.outcome == "promoted", result.reason
    assert len(asked) > 1 and {weight for _reason, weight in asked} == {5}, asked
    last = asked[-1][0]
    assert last.startswith("5%: ") and "a person held this stage" in last and "the judge passes it now" in last, last
    assert [(s.weights.canary, s.decision) for s in result.stages][0] == (5, "accepted by alice"), result.stages
