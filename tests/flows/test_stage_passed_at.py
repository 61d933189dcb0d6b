"""From when a resumed run counts a passed stage's windows (``flows.progressive.stage_passed_at``),
read from the ledger's history in the shapes runs leave it in.

The windows' alphas add up to the spec's alpha only while every look at them is counted from the
same point: a later point begins the split again (a healthy canary rolled back at up to alpha
more); a point long before the first look judges every window at a sliver of it (the canary all but
unjudged). Between a weekly phase's end and the run that takes the rollout up again, nobody looks.
"""

from __future__ import annotations

from flows.progressive import stage_passed_at
from rollway.ledger import RolloutRecord, Transition
from rollway.model import Weights

DAY = 86_400.0


def record(*history: Transition) -> RolloutRecord:
    """A rollout standing at its second stage (25 %), passed, with ``history``."""
    return RolloutRecord(service="edit-container", rollout_id="r-1", image="edit:2", spec_json="{}", stage_index=1,
                         stage_passed=True, weights=Weights.canary_at(25), history=history)


def entry(at: float, kind: str, **fields) -> Transition:
    return Transition(at=at, kind=kind, actor="rollway", **fields)


WEEK_1 = (entry(0, "phase", comment="starting week 1"),
          entry(100, "shift", to_weights=Weights.canary_at(5), to_stage=0),
          entry(800, "verdict", from_stage=0),
          entry(900, "shift", to_weights=Weights.canary_at(25), to_stage=1))


def test_the_pass_counts_when_the_run_that_passed_it_died_before_the_next_shift():
    assert stage_passed_at(record(*WEEK_1, entry(1600, "verdict", from_stage=1))) == 1600


def test_a_persons_acceptance_counts_as_the_pass():
    assert stage_passed_at(record(*WEEK_1, entry(1700, "approve", to_stage=1, verdict="inconclusive"))) == 1700


def test_a_phase_caught_up_on_resume_does_not_begin_the_split_again():
    """An unphased run passed 25 % and died in the scale-up after it; the phased run resuming it
    records the weekly phase the rollout is in. The dead run's looks spent the first windows'
    share: the phase's entry begins no count of its own."""
    caught_up = entry(2300, "phase", comment="in week 2: the rollout is at 25% already")
    assert stage_passed_at(record(*WEEK_1, entry(1600, "verdict", from_stage=1), caught_up)) == 1600


def test_the_next_weekly_phase_counts_from_its_start():
    ended = entry(1600, "phase", comment="stage passed; this phase ends at 25%")
    started = entry(1600 + 7 * DAY, "phase", comment="starting week 2")
    assert stage_passed_at(record(*WEEK_1, entry(1600, "verdict", from_stage=1), ended, started)) == 1600 + 7 * DAY


def test_a_phase_held_and_resumed_unphased_counts_from_the_resume():
    """A person takes the held rollout on through every stage a week after its phase ended: nobody
    looked at the canary in that week, and counted from the pass, the run's pause and scale-up were
    judged on windows a week of halvings down (an alpha of 1e-9 instead of half the spec's)."""
    ended = entry(1600, "phase", comment="stage passed; this phase ends at 25%")
    resumed = entry(1600 + 7 * DAY, "resume", comment="this run stops after the last stage, running every "
                                                      "remaining stage now")
    assert stage_passed_at(record(*WEEK_1, entry(1600, "verdict", from_stage=1), ended, resumed)) == 1600 + 7 * DAY


def test_a_stage_not_passed_has_no_such_time():
    assert stage_passed_at(record(*WEEK_1).model_copy(update={"stage_passed": False})) is None
