"""ApprovalAnswer as plain data: a comment is bounded, since it becomes a rollback's reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollway.approvals import COMMENT_LIMIT, ApprovalAnswer


def test_a_comment_up_to_the_limit_is_kept_and_a_longer_one_refused_by_name():
    kept = ApprovalAnswer(action="reject", approver="alice", comment="é" * COMMENT_LIMIT)
    assert len(kept.comment) == COMMENT_LIMIT == 2_000
    with pytest.raises(ValidationError, match=r"comment\n.*at most 2000 characters"):
        ApprovalAnswer(action="reject", approver="alice", comment="x" * (COMMENT_LIMIT + 1))
    assert ApprovalAnswer(action="approve", approver="alice").comment == ""


def test_an_answer_to_a_dead_paused_run_is_recorded_at_the_stage_its_question_asked_about():
    """Recorded with its question alone, the reports placed it by the wait it closed: recorded by the
    rollback flow after the rollback's start, it closed none, and showed at no stage. The pause it
    answered is the newest asking its question (a run that died paused asks nothing after), else the
    newest pause."""
    from rollway.approvals import UnheardAnswer, unheard_transitions
    from rollway.ledger import Transition

    def pause(at: float, stage: int, reason: str) -> Transition:
        return Transition(at=at, kind="pause", actor="alice", to_stage=stage,
                          comment=f"approval pause: {reason}; unanswered by 2027-01-15 10:00:00 UTC (wall clock)")

    history = (pause(1, 1, "approval needed before  25%"), pause(2, 2, "approval needed before 100%"),
               Transition(at=3, kind="rollback-start", actor="operator"))
    unheard = [UnheardAnswer(answer=ApprovalAnswer(action="approve", approver="dana"), run="dead (1)",
                             answered_at=10.0, silent_since=5.0, question=question)
               for question in ("approval needed before 25%", None, "a question no pause asked")]
    stages = [t.to_stage for t in unheard_transitions(unheard, 4.0, history=history)]
    assert stages == [1, 2, 2], stages
    assert [t.to_stage for t in unheard_transitions(unheard, 4.0)] == [None] * 3  # no history given: as before


def test_a_recorded_comment_opening_with_the_answers_word_is_kept_whole():
    """An answer's comment not written as "<action>: <words>" (a record written by hand, or before
    answers were recorded so) lost the answer's word from its own: "rejected because x" gave the
    rollback the reason "ed because x", while the Approvals table kept it whole."""
    from rollway.ledger import Transition, answer_said, rejection_reason

    reject = Transition(at=1.0, kind="reject", actor="erin", comment="rejected because x")
    assert rejection_reason(reject) == "rejected by erin: rejected because x"
    assert answer_said("hold", "holding for INC-7") == "holding for INC-7"
    assert answer_said("reject", "reject: latency looks off") == "latency looks off"
    assert answer_said("reject", "reject") == answer_said("reject", None) == ""


@pytest.mark.parametrize("comment, action, words", [
    ("reject: latency looks off", "reject", "latency looks off"),
    ("approve: per INC-42: ok", "approve", "per INC-42: ok"),  # the first colon ends the action
    ("hold", "hold", ""),
    ("  reject:  x ", "reject", "x"),  # the comment's surrounding spaces are not the action's
    ("rejected because x", "rejected because x", None),  # no action named: the words are all theirs
    ("holding: INC-7", "holding", None),
    ("reject : x", "reject ", None),
    (None, "", None),
])
def test_an_answers_action_is_read_whole_and_as_its_words_are(comment, action, words):
    """An answer's recorded comment ("<action>: <words>", ``answer_comment``) has one reading of its
    action: the words before its first colon, whole, so that "holding: INC-7" is no hold; and the
    words ``answer_said`` leaves are the comment whole whenever it names another action, or none."""
    from rollway.ledger import answer_action, answer_comment, answer_said

    assert answer_action(comment) == action
    for said in ("approve", "reject", "hold"):
        assert answer_said(said, comment) == (words if said == action else (comment or "").strip())
    for said in ("approve", "reject", "hold"):
        assert answer_action(answer_comment(said, words or "")) == said  # as rollway writes every answer


def test_an_unheard_entrys_answer_is_read_up_to_what_its_entry_says_of_it():
    """The answer in an ``unheard`` entry's comment is the answer as recorded, whatever the person's
    words say (even the very words the entry goes on with)."""
    from rollway.approvals import UnheardAnswer, unheard_answer, unheard_comment
    from rollway.ledger import answer_action, answer_comment

    for action, words in (("approve", ""), ("reject", "holding: see (given to flow run x)"), ("hold", "reject: no")):
        unheard = UnheardAnswer(answer=ApprovalAnswer(action=action, approver="dana", comment=words),
                                run="dead-fox (1)", answered_at=10.0, silent_since=5.0)
        said = unheard_answer(unheard_comment(unheard))
        assert said == answer_comment(action, words) and answer_action(said) == action, said
