"""A period whose settled CloudWatch counts contradict each other (more 5xx than requests)
ends in a pause a person can act on, not in a stage held to read the same figures again."""

from __future__ import annotations

from rollway.approvals import ApprovalAnswer
from rollway.model import Observation
from rollway.spec import RolloutSpec, Stage
from tests.flows.test_progressive_fakes import IMAGE, env_with_ledger, progressive_on


class Contradictory:
    """The fake's metrics, with the canary's period ending at ``bad`` contradictory for good
    (what CloudWatchMetrics reads as no data, listed in ``inconsistent``)."""

    def __init__(self, inner, bad: float) -> None:
        self.inner, self.bad = inner, bad

    def observe(self, start: float, end: float) -> Observation:
        observation = self.inner.observe(start, end)
        return observation.model_copy(update={"intervals": tuple(
            i.model_copy(update={"canary": None, "inconsistent": ("canary",)}) if i.t == self.bad else i
            for i in observation.intervals)})


def test_a_settled_contradictory_period_pauses_the_stage_for_a_person_at_once():
    env = env_with_ledger()
    start = env.clock.now()
    env.metrics = Contradictory(env.metrics, bad=start + 120)
    spec = RolloutSpec(image=IMAGE, monitor_seconds=0,
                       stages=[Stage(weight=w, bake_seconds=600, min_bake_seconds=300) for w in (5, 100)])
    pauses = []

    def person(pause, summary):
        pauses.append((env.clock.now() - start, pause.cause, pause.reason))
        return ApprovalAnswer(action="approve", approver="bob", comment="one bad minute in CloudWatch")

    result = progressive_on(env, spec, person)

    # Was: "error ...; retrying" every tick to the end of the bake (660 s), then a "metrics"
    # pause, again after every hold, for figures no second read changes. Not at once either (at
    # 180 s, once the period settled): an approve then accepted the stage before its minimum bake.
    [(at, cause, reason)] = pauses
    assert cause == "inconclusive" and at >= 600, pauses  # the whole bake was judged
    assert "settled by now; reading again will not change them" in reason
    # Named as on a CloudWatch graph, not in epoch seconds ("the canary's interval ending 1800000120").
    assert "the canary's period 2027-01-15 08:01:00 to 08:02:00 UTC" in reason, reason
    assert result.outcome == "promoted" and result.stages[0].decision == "accepted by bob"
    # The shift after it is recorded as following bob's word, not a pass the judge never gave.
    [record] = env.ledger.history(env.targets.canary_service)
    said = [t.comment for t in record.history if t.kind == "shift" and "shifting to 100%" in (t.comment or "")]
    assert said and all(r.startswith("stage 5% accepted by bob;") for r in said), record.history
