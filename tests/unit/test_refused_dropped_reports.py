"""What the reports say of a pause when refused answers were dropped past the bound
(``refusals_kept``): the ledger counts those dropped (``RolloutRecord.refused_dropped``), not
whom or when they answered, and how long the history was when it dropped them
(``refused_dropped_before``): a pause recorded before then may have had any of them, and one
recorded after it none."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from rollway.ledger import OpenPause, RefusedAnswer, Transition, utc
from rollway.phases import RolloutPhase
from rollway.reports import incident_report, rollout_report
from rollway.spec import Approvals
from tests.unit.test_reports import T0, before_trigger, passed, record, shift, started, w

QUESTION = ("approval pause: 5%: canary 0.08% vs baseline 0.10%; approval needed before 25%; unanswered by "
            f"{utc(T0 + 3800)} (wall clock) the rollout rolls back")


def waiting(refused: tuple[RefusedAnswer, ...], dropped: int | None):
    """A rollout waiting at a pause asked at 08:02, asked again at 08:10 after ``refused``."""
    from flows.approvals import pause_question
    from rollway.decide import Pause

    pause = Pause(stage_index=0, cause="inconclusive", reason="5%: stage over, no canary requests")
    first = pause_question(pause, Approvals(on_timeout="hold"), datetime(2027, 1, 15, 8, 2, tzinfo=timezone.utc))
    now = pause_question(pause, Approvals(on_timeout="hold"), datetime(2027, 1, 15, 8, 10, tzinfo=timezone.utc))
    entries = [started(), shift(60, 5, 0), Transition(at=T0 + 120, kind="pause", actor="alice", to_stage=0,
                                                      comment=first)]
    return record(entries, RolloutPhase.PROGRESSING, weights=w(5)).model_copy(update={
        "refused_answers": refused, "refused_dropped": dropped,
        "open_pause": OpenPause(stage=0, cause="inconclusive", question=now,
                                since=datetime(2027, 1, 15, 8, 2, tzinfo=timezone.utc).timestamp(), asked=2,
                                causes=("inconclusive",))})


def answer(at: float, actor: str = "dana", stage: int | None = 0) -> RefusedAnswer:
    return RefusedAnswer(at=T0 + at, actor=actor, action="approve", next_weight=50, to_stage=stage,
                         reason="next_weight (50%) applies only at an approval pause")


def outcome(rec) -> str:
    return rollout_report(rec).split("- **Outcome:** ", 1)[1].splitlines()[0]


@pytest.mark.parametrize("dropped, says", [
    (3, "; 2 answers were refused (dana, erin), and up to 3 refused answers no longer kept may have been given to "
        "it, and it is asked again at "),
    (1, "; 2 answers were refused (dana, erin), and a refused answer no longer kept may have been given to it, and "
        "it is asked again at "),
    # Maybe kept by a rollway that did not count those it dropped: not known whether any were, nor how many.
    (None, "; 2 answers were refused (dana, erin), and refused answers dropped uncounted, if any were, may have "
           "been given to it, and it is asked again at "),
])
def test_the_waiting_pauses_refused_answers_say_those_dropped_may_be_among_them(dropped, says):
    """"2 answers were refused": past the bound, the oldest were dropped, and those at the pause
    still open may have been among them; the count said only those kept."""
    rec = waiting((answer(240), answer(250, "erin")), dropped)
    assert says in outcome(rec), outcome(rec)


def test_answers_dropped_before_the_pause_was_recorded_are_not_its_own():
    """The drop was written while the history held no pause yet: those dropped, recorded before it,
    were not given to the pause, and its count is all there was."""
    rec = dropped_before(waiting((answer(100, "bob"), answer(240), answer(250, "erin")), 3), 2)
    said = outcome(rec)
    assert "; 2 answers were refused (dana, erin), and it is asked again at " in said, said
    assert "no longer kept" not in said, said
    # No answer dropped: said as before.
    assert "no longer kept" not in outcome(waiting((answer(240), answer(250, "erin")), 0))


def dropped_before(rec, entries: int):
    """``rec`` whose newest drop of refused answers was written while its history held ``entries``."""
    return rec.model_copy(update={"refused_dropped_before": entries})


@pytest.mark.parametrize("oldest, before, said", [
    # Its clock behind the run's, `rollway promote` stamped the oldest answer kept before the pause;
    # the drop was written after the pause was recorded, and those dropped may have answered it.
    (100, 3, True),
    # Its clock ahead, it stamped the answer after the pause; the drop was written before the pause.
    (240, 2, False),
])
def test_whether_dropped_answers_may_have_answered_a_pause_is_told_by_recording_order_not_clocks(oldest, before,
                                                                                                 said):
    """The answers' times are each its writer's clock (the run's, or `rollway promote`'s machine):
    "recorded before the oldest kept" read from them said none was given to a pause stamped after it,
    though another machine's clock may have been behind. The history's length when the drop was
    written tells it: every answer dropped was recorded before then, and a pause recorded later was
    given none of them."""
    rec = dropped_before(waiting((answer(oldest, "bob"), answer(250, "erin")), 3), before)
    assert ("up to 3 refused answers no longer kept may have been given to it" in outcome(rec)) is said, outcome(rec)


def rolled_back_at_a_pause(*refused: RefusedAnswer, dropped: int | None):
    """A rollout rolled back by carol while it waited at a pause (asked at T0 + 200) nobody's answer
    was kept for: ``refused`` given after the rollback began."""
    rec = before_trigger("carol", "aborted by carol: users report 500s", passed(190, 0),
                         Transition(at=T0 + 200, kind="pause", actor="alice", to_stage=1, comment=QUESTION))
    return rec.model_copy(update={"refused_answers": refused, "refused_dropped": dropped})


def approvals_row(rec, at: float = T0 + 200) -> str:
    approvals = rollout_report(rec).split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    (row,) = [line for line in approvals.splitlines() if line.startswith(f"| {utc(at)} |")]
    return row


def pause_line(rec) -> str:
    trigger = incident_report(rec).split("## What triggered it", 1)[1].split("## ", 1)[0]
    (line,) = [line for line in trigger.splitlines() if line.startswith("- **While it waited at a pause:**")]
    return line


def test_a_pause_whose_refused_answers_may_have_been_dropped_is_not_said_unanswered():
    """The pause's row said "**not answered**", and the incident report's pause line "not
    answered", where refused answers given to it may have been among those dropped past the bound."""
    late = RefusedAnswer(at=T0 + 400, actor="erin", action="approve", reason="nothing waits for an answer")
    rec = rolled_back_at_a_pause(late, dropped=3)
    row = approvals_row(rec)
    assert "not answered" not in row, row
    assert ("| **no answer taken** (up to 3 refused answers no longer kept may have been given to it) | 25% | the wait "
            "ended with rollback-start (carol, ") in row, row
    line = pause_line(rec)
    assert "not answered" not in line, line
    assert (f"asked at {utc(T0 + 200)} for stage 2/3 (25%), no answer taken (up to 3 refused answers no longer kept may "
            f"have been given to it): {QUESTION}") in line, line
    unknown = rolled_back_at_a_pause(late, dropped=None)
    assert ("| **no answer taken** (refused answers dropped uncounted, if any were, may have been given to it) |"
            ) in approvals_row(unknown), approvals_row(unknown)
    # None dropped, or all of them before the pause was recorded (its history then held 3 entries): nobody
    # answered it.
    for nobody in (rolled_back_at_a_pause(late, dropped=0),
                   dropped_before(rolled_back_at_a_pause(answer(100, "bob", None), late, dropped=3), 3)):
        assert "| **not answered** |" in approvals_row(nobody), approvals_row(nobody)
        assert f"(25%), not answered: {QUESTION}" in pause_line(nobody), pause_line(nobody)


def test_a_pause_whose_refused_answers_a_count_not_known_dropped_says_the_least_there_were():
    """A count found not to tell every drop (``refused_dropped_least``): some were dropped, at least
    those it counted, where "if any were" said maybe none was."""
    rec = waiting((answer(240), answer(250, "erin")), None).model_copy(update={"refused_dropped_least": 2})
    said = outcome(rec)
    assert ("; 2 answers were refused (dana, erin), and refused answers no longer kept (at least 2, how many more is "
            "not known) may have been given to it, and it is asked again at ") in said, said
    assert "if any were" not in rollout_report(rec), rollout_report(rec)
