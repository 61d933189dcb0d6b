"""decide() table-driven: every branch, from plain values."""

from __future__ import annotations

import pytest

from rollway.decide import (Hold, Pause, Promote, Rollback, SetWeight, StageState, accepted_stages, analysis_start,
                            decide, stage_over)
from rollway.ledger import RolloutRecord, Transition
from rollway.model import Verdict, Weights
from rollway.phases import Phase
from rollway.spec import Analysis, RolloutSpec, Stage

SPEC = RolloutSpec(
    image="repo/app:2.0.0",
    analysis=Analysis(metrics_delay_seconds=0),
    stages=[
        Stage(weight=5, bake_seconds=600, min_bake_seconds=120),
        Stage(weight=25, bake_seconds=600, approval=True),
        Stage(weight=100, bake_seconds=600),
    ],
)
T0 = 1_000_000.0


def v(phase: Phase) -> Verdict:
    return Verdict(phase=phase, reason=f"judge says {phase.value}")


def at(stage: int, passed: bool = False, approved: int | None = None) -> StageState:
    return StageState(stage_index=stage, started_at=T0, passed=passed, approved=approved)


CASES = [
    # (state, verdict, seconds since stage start, expected type, expected detail)
    ("start", StageState(), None, 0, SetWeight, {"weight": 5, "stage_index": 0}),
    ("failed rolls back at once", at(0), v(Phase.FAILED), 60, Rollback, {}),
    ("failed rolls back even at the end", at(0), v(Phase.FAILED), 600, Rollback, {}),
    ("running holds until next tick", at(0), v(Phase.RUNNING), 60, Hold, {"until": T0 + 120}),
    ("hold never past bake end", at(0), v(Phase.RUNNING), 590, Hold, {"until": T0 + 600}),
    ("success before min bake holds", at(0), v(Phase.SUCCESSFUL), 60, Hold, {}),
    ("success after min bake pauses for approval", at(0), v(Phase.SUCCESSFUL), 120, Pause,
     {"cause": "approval", "stage_index": 1, "stage_passed": True}),
    ("approved stage shifts", at(0, passed=True, approved=1), None, 200, SetWeight, {"weight": 25}),
    ("passed but unapproved pauses again", at(0, passed=True), None, 200, Pause, {"cause": "approval", "stage_passed": False}),
    ("an approved skip-ahead shifts straight to its stage", at(0, passed=True, approved=2), None, 200, SetWeight,
     {"weight": 100, "stage_index": 2}),
    ("an approval of a stage already reached skips nothing", at(1, passed=True, approved=1), None, 700, SetWeight,
     {"weight": 100, "stage_index": 2}),
    ("no min bake means full bake", at(1, approved=1), v(Phase.SUCCESSFUL), 300, Hold, {}),
    ("full bake success shifts", at(1, approved=1), v(Phase.SUCCESSFUL), 600, SetWeight,
     {"weight": 100, "stage_passed": True}),
    ("last stage success promotes", at(2), v(Phase.SUCCESSFUL), 600, Promote, {"stage_passed": True}),
    ("inconclusive pauses", at(0), v(Phase.INCONCLUSIVE), 600, Pause, {"cause": "inconclusive"}),
    ("error mid-stage retries", at(0), v(Phase.ERROR), 60, Hold, {}),
    # One throttled read at the stage's end is read again, a bounded few times, before a person is asked.
    ("error at the end reads again soon", at(0), v(Phase.ERROR), 600, Hold, {"until": T0 + 615}),
    ("error at the end retries within the bound", at(0), v(Phase.ERROR), 635, Hold, {"until": T0 + 645}),
    ("error still at the end after the retries pauses", at(0), v(Phase.ERROR), 645, Pause, {"cause": "metrics"}),
    ("running at the end is no pass", at(0), v(Phase.RUNNING), 600, Pause, {"cause": "inconclusive"}),
]


@pytest.mark.parametrize("name,state,verdict,elapsed,kind,detail", CASES, ids=[c[0] for c in CASES])
def test_decide(name, state, verdict, elapsed, kind, detail):
    decision = decide(SPEC, state, verdict, T0 + elapsed)
    assert isinstance(decision, kind), decision
    for key, value in detail.items():
        assert getattr(decision, key) == value, (key, decision)
    assert decision.reason


def test_a_stage_in_progress_needs_a_verdict():
    with pytest.raises(ValueError, match="needs a verdict"):
        decide(SPEC, at(0), None, T0)


def test_stage_over_and_analysis_start():
    assert not stage_over(SPEC, at(0), T0 + 599)
    assert stage_over(SPEC, at(0), T0 + 600)
    assert not stage_over(SPEC, StageState(), T0)
    # The first whole period after a shift at t=1000030 starts at 1000080 (60-s periods).
    assert analysis_start(SPEC, StageState(stage_index=0, started_at=1_000_030.0)) == 1_000_080.0
    assert analysis_start(SPEC, StageState(stage_index=0, started_at=1_000_020.0)) == 1_000_020.0


def test_phase_end_holds_instead_of_moving_on():
    from rollway.decide import PhaseComplete

    state = StageState(stage_index=0, started_at=T0, until_stage=0)
    decision = decide(SPEC, state, v(Phase.SUCCESSFUL), T0 + 600)
    assert isinstance(decision, PhaseComplete) and decision.stage_passed
    # The last stage promotes even when it also ends the phase.
    last = StageState(stage_index=2, started_at=T0, until_stage=2)
    assert isinstance(decide(SPEC, last, v(Phase.SUCCESSFUL), T0 + 600), Promote)
    # A phase that ends later lets the rollout move on.
    later = StageState(stage_index=0, started_at=T0, until_stage=2, approved=1)
    assert isinstance(decide(SPEC, later, v(Phase.SUCCESSFUL), T0 + 600), SetWeight)
    # A skip-ahead approval never carries the rollout past the end of its phase.
    beyond = StageState(stage_index=0, started_at=T0, passed=True, until_stage=1, approved=2)
    assert isinstance(decide(SPEC, beyond, None, T0 + 600), Pause)


def test_a_final_look_that_cannot_read_the_metrics_says_it_reads_again_and_when_it_stops():
    first = decide(SPEC, at(0), Verdict(phase=Phase.ERROR, reason="metrics unavailable: Rate exceeded"), T0 + 600)
    assert isinstance(first, Hold), first
    assert first.reason == ("5%: metrics unavailable: Rate exceeded; the stage's final look, read again in 15 s (3 "
                            "more reads; a person is asked if the last still fails)"), first.reason
    last = decide(SPEC, at(0), Verdict(phase=Phase.ERROR, reason="metrics unavailable: Rate exceeded"), T0 + 645)
    assert isinstance(last, Pause) and last.reason == (
        "5%: metrics unavailable: Rate exceeded (the stage's final look, read 4 times over 45 s)"), last.reason


def test_final_verdict_waits_for_late_metrics():
    late = SPEC.model_copy(update={"analysis": Analysis(metrics_delay_seconds=90)})
    # At the end of the bake the last period may not be in yet: hold, don't call it.
    decision = decide(late, at(0), v(Phase.RUNNING), T0 + 600)
    assert isinstance(decision, Hold) and decision.until == T0 + 660
    assert not stage_over(late, at(0), T0 + 600) and stage_over(late, at(0), T0 + 690)
    assert isinstance(decide(late, at(0), v(Phase.RUNNING), T0 + 690), Pause)


def _record(passed: bool, *after_shift):
    shift = Transition(at=T0, kind="shift", actor="alice", from_weights=Weights(stable=100, canary=0),
                       to_weights=Weights(stable=95, canary=5), to_stage=0)
    history = (Transition(at=T0 - 60, kind="start", actor="alice"), shift,
               *(Transition(at=T0 + 60 * i, kind=kind, actor=actor, to_stage=to) for i, (kind, actor, to)
                 in enumerate(after_shift, start=1)))
    return RolloutRecord(service="web", rollout_id="r1", image=SPEC.image, spec_json=SPEC.model_dump_json(),
                         stage_index=0, stage_passed=passed, weights=Weights(stable=95, canary=5), history=history)


@pytest.mark.parametrize("record,who", [
    (_record(True, ("pause", "alice", 0), ("approve", "dana", 0)), "dana"),  # accepted at an inconclusive pause
    (_record(True, ("verdict", "judge", None), ("pause", "alice", 1), ("approve", "dana", 1)), None),  # next stage's
    (_record(True, ("verdict", "judge", None)), None),  # the judge passed it
    (_record(False, ("pause", "alice", 0), ("hold", "dana", 0)), None),  # not passed
], ids=["accepted", "judge passed, next stage approved", "judge passed", "still baking"])
def test_a_resumed_stage_knows_who_accepted_it(record, who):
    state = StageState(stage_index=record.stage_index, started_at=T0, passed=record.stage_passed,
                       accepted=accepted_stages(record))
    assert state.accepted_by == who


def test_a_stage_run_anew_forgets_who_accepted_it_before():
    record = _record(True, ("pause", "alice", 0), ("approve", "dana", 0))
    again = Transition(at=T0 + 600, kind="adopt", actor="alice", from_weights=Weights(stable=95, canary=5),
                       to_weights=Weights(stable=95, canary=5), to_stage=0)
    assert accepted_stages(record) == ((0, "dana"),)
    assert accepted_stages(record.model_copy(update={"history": (*record.history, again)})) == ()


@pytest.mark.parametrize("accepted,said", [
    ((), "; all 3 stages passed"),
    (((0, "dana"),), "; all 3 stages done: 2 passed the judge, 1 accepted on a person's word, the judge unable "
                     "to pass it (5% accepted by dana)"),
    (((0, "dana"), (2, "erin")), "; all 3 stages done: 1 passed the judge, 2 accepted on a person's word, the "
                                 "judge unable to pass them (5% accepted by dana, 100% accepted by erin)"),
], ids=["all judged", "one accepted", "two accepted"])
def test_the_promotion_says_which_stages_a_person_accepted_and_who(accepted, said):
    last = StageState(stage_index=2, started_at=T0, accepted=accepted, passed=(2, "erin") in accepted)
    decision = decide(SPEC, last, None if last.passed else v(Phase.SUCCESSFUL), T0 + 600)
    assert isinstance(decision, Promote) and decision.reason.endswith(said), decision.reason


def test_a_passed_stages_windows_lie_on_a_grid_from_its_pass_whoever_looks():
    """Each window as long as the bake (600 s), begun again every half of one (300 s) once the first
    is that long, from the first whole period after the pass: a look at a given time judges the same
    window at the same index whichever watch (or run) makes it, so none begins the count again."""
    from rollway.decide import passed_window

    spec = RolloutSpec(image="repo:1.0", stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100)])
    passed = 1030.0  # the first whole period starts at 1080
    assert [passed_window(spec, 0, passed, now) for now in (1090, 1680, 1681, 1980, 1981, 2600)] == [
        (1080, 0), (1080, 0), (1380, 1), (1380, 1), (1680, 2), (2280, 4)]
    # A bake shorter than two periods still judges windows of two periods.
    short = RolloutSpec(image="repo:1.0", stages=[Stage(weight=5, bake_seconds=60), Stage(weight=100)])
    assert passed_window(short, 0, 0, 121) == (60, 1)


def test_a_resumed_look_gets_the_share_of_the_next_window_looked_at_not_of_the_time_since_the_pass():
    """The run that passed the stage looked at three of its windows and died; another run resumes
    the rollout a day later. Counted by the time since the pass, its first window was the 287th,
    at a sliver of the alpha (1e-9 while the shares were halved: the canary all but unjudged);
    counted by the windows looked at, it is the fourth: those in between were never tested, and
    spend nothing."""
    from rollway.decide import passed_window, window_looked
    from rollway.judge import window_alpha

    spec = RolloutSpec(image="repo:1.0", stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100)])
    passed, looks = 1030.0, None
    for now in (1090, 1300, 1681, 1700, 1981):  # windows 0, 0, 1, 1, 2 of the grid
        looks = window_looked(looks, 0, passed_window(spec, 0, passed, now)[0])
    assert (looks.stage, looks.window, looks.windows) == (0, 1680, 3)
    start, grid = passed_window(spec, 0, passed, passed + 86_400)
    resumed = window_looked(looks, 0, start)
    assert (grid, resumed.window, resumed.windows) == (286, start, 4)
    assert window_alpha(spec.analysis.alpha, resumed.windows - 1) == pytest.approx(spec.analysis.alpha / 20)
    assert window_alpha(spec.analysis.alpha, grid) < spec.analysis.alpha / 80_000  # the time since the pass
    # Every look at one window, by any run, is one test at one share; another stage's looks count nothing.
    assert window_looked(resumed, 0, start) is resumed
    assert window_looked(looks, 1, start).windows == 1


def test_a_record_from_before_windows_were_counted_shows_those_its_pause_spans():
    """A record written before ``passed_looks`` was kept: its pause's entries after the pass (the
    asking, a timeout that held and asked again an hour later) show its run looking at every window
    between them. A record that counts them is read as it counts; one whose stage has not passed
    brings no count, and one showing no look after the pass none either."""
    from rollway.decide import looks_shown, passed_window
    from rollway.ledger import PassedLooks, answer_comment
    from tests.unit.test_fake_ledger import rollout

    spec = RolloutSpec(image="repo:1.0", stages=[Stage(weight=5, bake_seconds=600), Stage(weight=25, approval=True),
                                                 Stage(weight=100)])
    passed = 1030.0
    before = Transition(at=passed - 100, kind="pause", actor="run-1", to_stage=0, comment="inconclusive pause: ...")
    verdict = Transition(at=passed, kind="verdict", actor="judge", from_stage=0)
    asked = Transition(at=passed + 1, kind="pause", actor="run-1", to_stage=1, comment="approval pause: ...")
    held = Transition(at=passed + 3601, kind="timeout", actor="run-1", to_stage=1,
                      comment=answer_comment("hold", "nobody answered in 1 h"))
    record = rollout(stage_index=0, stage_passed=True, history=(before, verdict, asked, held))
    window, last = passed_window(spec, 0, passed, held.at)
    assert looks_shown(spec, record, passed) == PassedLooks(stage=0, window=window, windows=last + 1)
    assert last + 1 == 11  # one begun every 300 s, each judged until it is 600 s long: eleven by the hour's end
    # The asking alone shows no look: its first was due a period later.
    assert looks_shown(spec, record.model_copy(update={"history": (before, verdict, asked)}), passed) is None
    counted = PassedLooks(stage=0, window=window, windows=3)
    assert looks_shown(spec, record.model_copy(update={"passed_looks": counted}), passed) == counted
    assert looks_shown(spec, record.model_copy(update={"stage_passed": False, "passed_looks": counted}), None) is None
    assert looks_shown(spec, record.model_copy(update={"history": (before, verdict)}), passed) is None



def test_a_record_from_before_windows_were_counted_shows_no_looks_between_a_dead_run_and_its_taker():
    """The run that asked the pause held it past a timeout an hour later and died; another took the
    rollout over a day later and held it past a timeout an hour after. Nobody looked at the canary
    between the two: the windows of that day were never tested, and cost nothing (``window_looked``).
    Counted from the asking to the last timeout, the day's windows were taken as looked at, and the
    resumed run's first window was judged at under a 90,000th of the alpha (its 300th share):
    its looks could not roll back, as when the shares were counted by the time since the pass."""
    from rollway.decide import looks_shown, passed_window
    from rollway.ledger import TAKEOVER, answer_comment
    from tests.unit.test_fake_ledger import rollout

    spec = RolloutSpec(image="repo:1.0", stages=[Stage(weight=5, bake_seconds=600), Stage(weight=25, approval=True),
                                                 Stage(weight=100)])
    passed = 1030.0
    verdict = Transition(at=passed, kind="verdict", actor="judge", from_stage=0)
    asked = Transition(at=passed + 1, kind="pause", actor="run-1", to_stage=1, comment="approval pause: ...")
    timeout = answer_comment("hold", "nobody answered in 1 h")
    held = Transition(at=passed + 3601, kind="timeout", actor="run-1", to_stage=1, comment=timeout)
    taken = Transition(at=passed + 86_400, kind=TAKEOVER, actor="run-2", comment="took over from run-1")
    held_again = Transition(at=taken.at + 3600, kind="timeout", actor="run-2", to_stage=1, comment=timeout)
    record = rollout(stage_index=0, stage_passed=True, history=(verdict, asked, held, taken, held_again))
    index = {t.at: passed_window(spec, 0, passed, t.at)[1] for t in (asked, held, taken, held_again)}
    shown = looks_shown(spec, record, passed)
    assert shown.window == passed_window(spec, 0, passed, held_again.at)[0], shown
    assert shown.windows == (index[held.at] - index[asked.at] + 1) + (index[held_again.at] - index[taken.at] + 1)
    assert shown.windows == 11 + 13, shown  # each run's hour, and none of the day between them


def test_a_record_from_before_windows_were_counted_shows_no_looks_between_a_run_and_one_taking_its_released_lease():
    """The run that asked the pause held it past a timeout an hour later and gave its lease back
    (stopped, say); another run took the released lease a day later, which writes no ``takeover``,
    and held the pause past two timeouts. Its first entry names its flow run, another than the one
    that asked: nobody looked between the two runs' entries, and those windows count nothing.
    Spanned as one run's, the day's windows counted as looked at, as before a takeover."""
    from rollway.decide import looks_shown, passed_window
    from rollway.ledger import answer_comment
    from tests.unit.test_fake_ledger import rollout

    spec = RolloutSpec(image="repo:1.0", stages=[Stage(weight=5, bake_seconds=600), Stage(weight=25, approval=True),
                                                 Stage(weight=100)])
    passed = 1030.0
    timeout = answer_comment("hold", "nobody answered in 1 h")
    verdict = Transition(at=passed, kind="verdict", actor="judge", from_stage=0)
    asked = Transition(at=passed + 1, kind="pause", actor="alice", to_stage=1, comment="approval pause: ...",
                       run="brisk-otter (1)")
    held = Transition(at=passed + 3601, kind="timeout", actor="alice", to_stage=1, comment=timeout)
    # The other run's first write names it; its later ones do not.
    taken = Transition(at=passed + 86_400, kind="timeout", actor="alice", to_stage=1, comment=timeout,
                       run="calm-heron (2)")
    held_again = Transition(at=taken.at + 3600, kind="timeout", actor="alice", to_stage=1, comment=timeout)
    record = rollout(stage_index=0, stage_passed=True, history=(verdict, asked, held, taken, held_again))
    index = {t.at: passed_window(spec, 0, passed, t.at)[1] for t in (asked, held, taken, held_again)}
    shown = looks_shown(spec, record, passed)
    assert shown.windows == (index[held.at] - index[asked.at] + 1) + (index[held_again.at] - index[taken.at] + 1)
    assert shown.windows == 11 + 13, shown
    # The same run named again (its pause asked anew, say) is no other run: one span.
    same = taken.model_copy(update={"run": asked.run})
    again = looks_shown(spec, record.model_copy(update={"history": (verdict, asked, held, same, held_again)}), passed)
    assert again.windows == index[held_again.at] - index[asked.at] + 1, again
