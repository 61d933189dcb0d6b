"""A pause asked again at the same stage for another cause is recorded as the question it asks now."""

from __future__ import annotations

from rollway.approvals import ApprovalAnswer
from rollway.reports import open_question, waiting_pause
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.test_progressive_fakes import IMAGE, env_with_ledger, progressive_on

SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=0,
                   approvals=Approvals(timeout_seconds=600, on_timeout="hold"))


def test_a_metrics_pause_after_an_unanswered_inconclusive_one_is_recorded_as_a_metrics_pause():
    """Nobody answered the inconclusive pause (its policy holds), then CloudWatch stopped answering:
    the run asked a metrics question while the ledger, and `rollway status`, still gave the
    inconclusive one."""
    env = env_with_ledger(rps=0.01)  # too little traffic: the 5 % stage ends inconclusive
    recorded = []

    def approver(pause, summary):
        record = env.ledger.get(env.targets.canary_service)
        recorded.append((pause.cause, open_question(record, waiting_pause(record))))
        if len(recorded) == 1:
            env.metrics.error = "GetMetricData: throttled"  # the next looks read nothing
            return ApprovalAnswer(action="hold", approver="timeout", timed_out=True, comment="no answer within 600 s")
        return ApprovalAnswer(action="reject", approver="dana", comment="metrics are down")

    result = progressive_on(env, SPEC, approver)
    assert result.outcome == "rolled_back"
    assert [cause for cause, _ in recorded] == ["inconclusive", "metrics"]
    assert recorded[0][1].startswith("inconclusive pause: 5%"), recorded[0][1]
    assert recorded[1][1].startswith("metrics pause: 5%"), recorded[1][1]
