"""Which pause a refused answer was given to is told by the order the ledger recorded them in
(``RefusedAnswer.recorded_after``), not by their times: an answer's time is its writer's clock
(the run's, or that of the machine `rollway promote` ran on), and a clock behind the run's
stamped an answer given to a pause before the pause, one ahead after the next."""

from __future__ import annotations

import pytest

from rollway.approvals import taken_over_pause
from rollway.decide import Pause
from rollway.ledger import TAKEOVER, RefusedAnswer, Transition, refused_after
from rollway.reports import refused_at_pause, rollout_report
from rollway.spec import Approvals
from tests.unit.test_fake_ledger import recorded
from tests.unit.test_refused_dropped_reports import answer, outcome, pause_line, rolled_back_at_a_pause, waiting
from tests.unit.test_reports import T0


@pytest.mark.parametrize("at, after, given", [
    (100, 3, True),   # its clock behind the run's: stamped before the pause, recorded after it
    (130, 2, False),  # its clock ahead: stamped after the pause, recorded before it
    # Recorded before the order was kept: told by its time, as then.
    (130, None, True),
    (100, None, False),
])
def test_the_answers_refused_at_the_waiting_pause_are_those_recorded_after_it(at, after, given):
    """`rollway status` and the report list the answers refused at the pause the rollout waits at
    (its entry the history's third): one `rollway promote` gave it from a machine whose clock is
    behind the run's read as given before it was asked, and nobody having tried."""
    refused = recorded(answer(at), after)
    rec = waiting((refused,), 0)
    assert refused_at_pause(rec) == ([refused] if given else [])
    assert ("; an answer was refused (dana's), and it is asked again at " in outcome(rec)) is given, outcome(rec)


def test_an_answer_refused_at_a_pause_cut_short_is_named_though_stamped_before_it():
    """The incident report's line for the pause a rollback ended said "not answered" of a pause
    erin had answered, her answer stamped by a clock behind the run's before the pause was."""
    rec = rolled_back_at_a_pause(recorded(RefusedAnswer(at=T0 + 150, actor="erin", action="approve", to_stage=1,
                                                        reason="answered first by carol"), 4), dropped=0)
    line = pause_line(rec)
    assert "not answered" not in line, line
    assert "answered approve by erin at " in line and "refused: answered first by carol" in line, line
    # Recorded before the pause (the history held 3 entries), by a clock ahead: no answer to it.
    early = rolled_back_at_a_pause(recorded(RefusedAnswer(at=T0 + 250, actor="erin", action="approve", to_stage=1,
                                                          reason="nothing waits for an answer"), 3), dropped=0)
    assert f"(25%), not answered: " in pause_line(early), pause_line(early)


def taken_over(*refused: RefusedAnswer):
    """A rollout whose run died waiting at a pause (recorded at T0 + 120, the history's third entry)
    and was taken over, the pause still asked."""
    rec = waiting(refused, 0)
    return rec.model_copy(update={
        "history": (*rec.history, Transition(at=T0 + 900, kind=TAKEOVER, actor="run-2")),
        "asked_until": T0 + 3720})


@pytest.mark.parametrize("at, after, anew", [(100, 3, True), (130, 2, False)])
def test_a_pause_taken_over_is_asked_anew_after_an_answer_recorded_after_it(at, after, anew):
    """An answer `rollway promote` gave the dead run, refused, has the run taking over ask the pause
    anew (acted on past its deadline, the timeout rolled back over a recorded approval). Stamped
    by a clock behind the run's, it read as given before the pause, and the deadline stood."""
    pause = Pause(stage_index=0, cause="inconclusive", reason="5%: stage over, no canary requests")
    rec = taken_over(recorded(answer(at), after))
    assert (taken_over_pause(rec, pause, Approvals(on_timeout="hold")) is None) is anew


def test_an_entry_the_history_does_not_hold_is_told_by_time():
    """An entry that is no entry of the history (none equal to it): the order cannot tell, its time does."""
    rec = waiting((), 0)
    stray = Transition(at=T0 + 110, kind="pause", actor="alice", to_stage=0)
    assert refused_after(rec, recorded(answer(110), 0), stray)
    assert not refused_after(rec, recorded(answer(100), 3), stray)


def test_an_answer_refused_after_the_last_one_taken_is_told_by_recording_order():
    """A person who finds nothing paused is told of an answer refused after the last one the run
    took: one `rollway promote` gave from a machine whose clock is behind the run's, stamped before
    the answer taken, went unsaid; one recorded before it, stamped by a clock ahead, was said as the
    later one."""
    from rollway.cli.ops import last_answer
    from tests.unit.test_cli_ops import record

    accepted = Transition(at=T0 + 600, kind="approve", actor="ann", comment="approve: looks fine")
    history = (*record().history, accepted)  # the answer taken is the history's third entry
    behind = recorded(RefusedAnswer(at=T0 + 590, actor="bob", action="approve", reason="answered first by ann"), 3)
    said = " ".join(last_answer(record(history=history, refused_answers=(behind,))).split())
    assert "; a later answer, by bob at " in said and "refused: answered first by ann" in said, said
    ahead = recorded(RefusedAnswer(at=T0 + 700, actor="carl", action="hold", reason="timed out"), 2)
    said = " ".join(last_answer(record(history=history, refused_answers=(ahead,))).split())
    assert "carl" not in said and said.startswith("; its last pause was answered by ann at "), said


def moved_on(*refused: RefusedAnswer):
    """A rollout that left its 5% pause (asked at T0 + 120, the history's third entry) without an
    answer, shifted to 25% and waits at its 25% pause (the fifth entry)."""
    from rollway.phases import RolloutPhase
    from tests.unit.test_reports import record, shift, started, w

    return record([started(), shift(60, 5, 0), Transition(at=T0 + 120, kind="pause", actor="alice", to_stage=0,
                                                          comment="approval pause: 5%: approval needed before 25%"),
                   shift(300, 25, 1, 5), Transition(at=T0 + 900, kind="pause", actor="alice", to_stage=1,
                                                    comment="approval pause: 25%: approval needed before 100%")],
                  RolloutPhase.PROGRESSING, weights=w(25)).model_copy(update={"refused_answers": refused})


def test_an_answer_to_an_earlier_stages_pause_recorded_after_the_next_pause_is_that_earlier_pauses():
    """`rollway promote` read the 5% pause, and its refusal was recorded once the run waited at the
    25% one: status and the report said the pause still open had been answered and refused, and
    the 5% pause's row said "not answered" of the pause bob had answered."""
    from tests.unit.test_refused_dropped_reports import approvals_row

    late = recorded(RefusedAnswer(at=T0 + 310, actor="bob", action="approve", to_stage=0,
                                  reason="given with `rollway promote`, not taken: the pause had ended"), 5)
    rec = moved_on(late)
    assert refused_at_pause(rec) == []
    assert "answer was refused" not in outcome(rec), outcome(rec)
    row = approvals_row(rec, T0 + 120)
    assert "**no answer taken** (refused: approve by bob at " in row, row
    # Given to the 25% pause, it is that one's.
    now = recorded(late.model_copy(update={"to_stage": 1}), 5)
    assert refused_at_pause(moved_on(now)) == [now]
    assert "**not answered**" in approvals_row(moved_on(now), T0 + 120)
    # Given with no stage (the command read no pause), recorded after the 25% pause: it may be that one's.
    unstaged = recorded(late.model_copy(update={"to_stage": None}), 5)
    assert refused_at_pause(moved_on(unstaged)) == [unstaged]


def kinds_listed(rec) -> list[str]:
    """The report's timeline, each row's kind and who: as `rollway status` lists the history too."""
    from rollway.reports import as_listed

    timeline = rollout_report(rec).split("## Every recorded transition", 1)[1]
    rows = [line.split(" | ")[1:3] for line in timeline.splitlines() if line.startswith("| 2027-")]
    assert rows == [[t.kind, t.actor] for t in as_listed(rec)], rows
    return [" ".join(row) for row in rows]


@pytest.mark.parametrize("at, after, where", [
    (100, 3, 3),   # its clock behind the run's: stamped before the pause, listed after it, as recorded
    (130, 2, 2),   # its clock ahead: stamped after the pause, listed before it, as recorded
    # Recorded before the order was kept (or its list rewritten by such a rollway): by its time, as then.
    (100, None, 2),
    (130, None, 3),
])
def test_the_timeline_lists_a_refused_answer_where_it_was_recorded(at, after, where):
    """The report's timeline and `rollway status`'s history listed refused answers among the entries
    by their times: one `rollway promote` gave the pause from a machine whose clock is behind the
    run's stood above the pause it answered, and read as given before it was asked."""
    listed = kinds_listed(waiting((recorded(answer(at), after),), 0))
    assert listed.index("refused dana") == where, listed
    assert listed[2 if where == 3 else 3] == "pause alice", listed


def test_answers_refused_in_turn_are_listed_in_the_order_recorded():
    """Two refusals recorded after the 5% pause and before the 25% shift, the first stamped after
    the shift by a clock ahead, the second before the pause by one behind: listed as recorded, and
    the Approvals table as the timeline. By time, the shift stood above the first."""
    rec = moved_on(recorded(answer(350, "erin"), 3), recorded(answer(100), 3))
    assert kinds_listed(rec)[3:] == ["refused erin", "refused dana", "shift alice", "pause alice"]
    approvals = rollout_report(rec).split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    rows = [line for line in approvals.splitlines() if "**refused**" in line or "waiting for an answer" in line]
    assert ["erin" in rows[0], "dana" in rows[1], "waiting" in rows[2]] == [True] * 3, rows


def test_an_answer_recorded_after_one_placed_by_its_time_keeps_its_place():
    """dana's answer, kept without its place (its list rewritten by a release from before it), is
    stamped by a clock ahead of the run's past the 25% shift; erin's, recorded after it while the
    history held the 5% pause, stood below the shift too, as if given after it, and only dana's was
    said to be placed by its time. dana's was recorded before erin's, so before the shift as well."""
    from rollway.reports import refusals_by_time_said

    rec = moved_on(answer(400), recorded(answer(130, "erin"), 3))
    assert kinds_listed(rec)[3:] == ["refused dana", "refused erin", "shift alice", "pause alice"]
    assert refusals_by_time_said(rec).startswith("1 of the 2 refused answers kept is placed"), refusals_by_time_said(rec)


def test_answers_placed_by_time_are_said_to_be():
    """An answer recorded without its place (before it was kept, or its list rewritten by a release
    from before it) is listed by its time, its writer's clock: the report and `rollway status` said
    nothing, and the list read as the order recorded, as the others' is."""
    from rollway.reports import refusals_by_time_said

    said = ("the refused answer kept is placed among the entries by its time, not where the ledger recorded it "
            "(recorded, or its list rewritten, by a rollway that did not keep that): the time is its writer's clock, "
            "which may be behind or ahead of the run's, so it may stand above the pause it answered, or below a "
            "later entry, and be read as given to another pause")
    rec = waiting((answer(100),), 0)
    assert refusals_by_time_said(rec) == said
    assert f"**{said}.**" in rollout_report(rec).split("## Approvals", 1)[1], rollout_report(rec)
    mixed = waiting((answer(100), recorded(answer(240, "erin"), 3), answer(250, "fay")), 0)
    assert refusals_by_time_said(mixed).startswith("2 of the 3 refused answers kept are placed among the entries by "
                                                   "their times, not where the ledger recorded them (recorded, or "
                                                   "their list rewritten, by a rollway that did not keep that): each "
                                                   "time is its writer's clock"), refusals_by_time_said(mixed)
    # Each placed where it was recorded: nothing to say.
    assert refusals_by_time_said(waiting((recorded(answer(100), 3),), 0)) is None
    assert "placed among the entries" not in rollout_report(waiting((recorded(answer(100), 3),), 0))


def test_status_says_which_refused_answers_it_lists_by_time(capsys):
    """`rollway status` lists the refused answers among the history as the report does, and says as
    it does those placed by their times."""
    from types import SimpleNamespace

    from rollway.cli.ops import print_status
    from rollway.model import Weights
    from rollway.reports import refusals_by_time_said
    from rollway.targets import Targets
    from tests.unit.test_cli_ops import record

    late = RefusedAnswer(at=1_799_999_050.0, actor="bob", action="hold", reason="answered first by ann")
    for refused, said in (((late,), True), ((recorded(late, 2),), False)):
        rec = record(refused_answers=refused)
        print_status(SimpleNamespace(name="svc-canary", targets=Targets()), rec, Weights.canary_at(50), None, limit=5)
        out = " ".join(capsys.readouterr().out.split())
        assert ("the refused answer kept is placed among the entries by its time" in out) is said, out
        assert (refusals_by_time_said(rec) is not None) is said
