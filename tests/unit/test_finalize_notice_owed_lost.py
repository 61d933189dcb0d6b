"""A "Finalized" notice owed whose late sends failed twice: one lost SNS's answer (it may have gone
out), a later one was refused. `rollway status`, the report and a finalize's refusals quote the
newest entry (``notice_not_sent``): the refusal alone said the notice "NOT sent, nobody was told",
of a notice the earlier late send may have delivered. The late notice itself already said it may
repeat one (``late_said``); these say the earlier lost try too."""

from __future__ import annotations

from rollway.finalize import NOTICE_NOT_SENT, notice_failed_said, notice_not_sent
from rollway.ledger import NOTICE_FAILED, Transition
from tests.unit.test_reports import T0, promoted_record

REFUSED = "AuthorizationError: not authorized to perform SNS:Publish"
LOST = "AnswerLost: SNS Publish sent, and its answer lost (ReadTimeoutError)"


def _owed(*failed: tuple[str, str]):
    rec = promoted_record()
    entries = tuple(Transition(at=T0 + 9001 + i, kind=NOTICE_FAILED, actor=actor, comment=comment)
                    for i, (actor, comment) in enumerate(failed))
    return rec.model_copy(update={"history": (*rec.history, *entries)})


def test_a_refusal_after_an_earlier_late_send_lost_its_answer_names_that_send():
    rec = _owed(("carol", f"{NOTICE_NOT_SENT}{REFUSED}"), ("bob", notice_failed_said(LOST, lost=True)),
                ("dana", f"{NOTICE_NOT_SENT}{REFUSED}"))
    said = notice_not_sent(rec, as_left=True)
    assert said.startswith(f"{NOTICE_NOT_SENT}{REFUSED} (dana's run, at "), said
    assert (f"; an earlier late send's answer was lost: {notice_failed_said(LOST, lost=True)} (bob's run, at "
            in said), said


def test_a_refusal_with_no_lost_answer_before_it_says_the_refusal_alone():
    rec = _owed(("carol", f"{NOTICE_NOT_SENT}{REFUSED}"), ("dana", f"{NOTICE_NOT_SENT}{REFUSED}"))
    said = notice_not_sent(rec, as_left=True)
    assert said.startswith(f"{NOTICE_NOT_SENT}{REFUSED} (dana's run, at ") and "carol" not in said, said
    assert "answer was lost" not in said, said


def test_a_lost_answer_that_is_the_newest_entry_is_said_once():
    rec = _owed(("carol", f"{NOTICE_NOT_SENT}{REFUSED}"), ("bob", notice_failed_said(LOST, lost=True)))
    said = notice_not_sent(rec, as_left=True)
    assert said.startswith(f"{notice_failed_said(LOST, lost=True)} (bob's run, at "), said
    assert "earlier late send" not in said and said.count(LOST) == 1, said
