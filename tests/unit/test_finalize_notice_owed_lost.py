"""A "Finalized" notice owed whose late sends failed twice: one lost SNS's answer (it may have gone
out), a later one was refused. `rollway status`, the report and a finalize's refusals quote the
newest entry (``notice_not_sent``): the refusal alone said the notice "NOT sent, nobody was told",
of a notice the earlier late send may have delivered. The late notice itself already said it may
repeat one (``late_said``); these say the earlier lost try too. Said before it, "nobody was told"
was still untrue: every text now says the late notice was NOT sent, then that earlier send."""

from __future__ import annotations

import pytest

from rollway.finalize import (NOTICE_NOT_SENT, FinalizeResult, already_finalized, finalized_said, late_said,
                              lost_before, notice_failed_said, notice_not_sent, notice_owed)
from rollway.ledger import NOTICE_FAILED, Transition
from rollway.model import Weights
from rollway.reports import finalize_row, rollout_report
from rollway.targets import Targets
from tests.unit.test_reports import T0, promoted_record

REFUSED = "AuthorizationError: not authorized to perform SNS:Publish"
LOST = "AnswerLost: SNS Publish sent, and its answer lost (ReadTimeoutError)"
# A late send's refusal after one that lost its answer: that one may have told them.
LATE_NOT_SENT = 'the late "Finalized" notice was NOT sent: '


def _owed(*failed: tuple[str, str]):
    rec = promoted_record()
    entries = tuple(Transition(at=T0 + 9001 + i, kind=NOTICE_FAILED, actor=actor, comment=comment)
                    for i, (actor, comment) in enumerate(failed))
    return rec.model_copy(update={"history": (*rec.history, *entries)})


def test_a_refusal_after_an_earlier_late_send_lost_its_answer_names_that_send():
    rec = _owed(("carol", f"{NOTICE_NOT_SENT}{REFUSED}"), ("bob", notice_failed_said(LOST, lost=True)),
                ("dana", f"{NOTICE_NOT_SENT}{REFUSED}"))
    said = notice_not_sent(rec, as_left=True)
    assert said.startswith(f"{LATE_NOT_SENT}{REFUSED} (dana's run, at "), said
    assert (f"; an earlier send's answer was lost: {notice_failed_said(LOST, lost=True)} (bob's run, at "
            in said), said
    assert "nobody was told" not in said, said


# The late send's refusal as recorded before, as any refusal, and as the finalize flow records it now.
RECORDED = pytest.mark.parametrize("recorded", [NOTICE_NOT_SENT, LATE_NOT_SENT], ids=["as-before", "as-now"])


def _after_lost(recorded: str):
    """Refused, then a late send that lost its answer (bob's), then a late send refused (dana's),
    its entry opening with ``recorded``."""
    return _owed(("carol", f"{NOTICE_NOT_SENT}{REFUSED}"), ("bob", notice_failed_said(LOST, lost=True)),
                 ("dana", f"{recorded}{REFUSED}"))


@RECORDED
def test_status_and_the_report_do_not_say_nobody_was_told_after_a_late_send_that_lost_its_answer(recorded):
    rec = _after_lost(recorded)
    row = finalize_row(rec)
    report = rollout_report(rec)
    (outcome,) = (line for line in report.splitlines() if line.startswith("- **Outcome:**"))
    for said in (row, outcome):
        assert f"{LATE_NOT_SENT}{REFUSED} (dana's run, at " in said, said
        assert "bob's run" in said and "nobody was told" not in said, said
    if recorded == LATE_NOT_SENT:
        # Every recorded transition: only the first refusal, of the notice nobody had, says so.
        assert report.count("nobody was told") == 1 and f"| dana |  | {LATE_NOT_SENT}{REFUSED} |" in report, report


@RECORDED
def test_the_late_notice_after_a_refusal_that_followed_a_lost_answer_does_not_say_nobody_was_told(recorded):
    rec = _after_lost(recorded)
    said = late_said(rec, notice_owed(rec))
    assert said.startswith(f"This notice is late, and may repeat one: {LATE_NOT_SENT}{REFUSED} (dana's run"), said
    assert "nobody was told" not in said and "bob's run" in said, said


def test_a_late_send_refused_by_this_run_after_a_lost_answer_does_not_say_nobody_was_told():
    """The run's closing line (``already_finalized``, this run's refusal not yet in ``record``) and its
    error (``finalized_said``, the refusal and the lost send before it)."""
    rec = _owed(("carol", f"{NOTICE_NOT_SENT}{REFUSED}"), ("bob", notice_failed_said(LOST, lost=True)))
    refused = Transition(at=T0 + 9100, kind=NOTICE_FAILED, actor="dana",
                         comment=notice_failed_said(REFUSED, lost=False))
    closing = already_finalized(rec, runs="td:7", weights=Weights(stable=100, canary=0), targets=Targets(),
                                refused_late=refused)
    assert f"nothing changed; {LATE_NOT_SENT}{REFUSED} (dana's run, at " in closing, closing
    assert "bob's run" in closing and "nobody was told" not in closing, closing
    result = FinalizeResult(outcome="already_finalized", rollout_id=rec.rollout_id, image=None, task_definition="td:7",
                            weights=Weights(stable=100, canary=0), stable_desired=2, canary_desired=0,
                            notice_refused=REFUSED, notice_lost_before=lost_before(rec))
    said = finalized_said(result, Targets())
    assert f"; but {LATE_NOT_SENT}{REFUSED}; an earlier send's answer was lost: " in said, said
    assert "bob's run" in said and "nobody was told" not in said, said


def test_a_refusal_with_no_lost_answer_before_it_says_the_refusal_alone():
    rec = _owed(("carol", f"{NOTICE_NOT_SENT}{REFUSED}"), ("dana", f"{NOTICE_NOT_SENT}{REFUSED}"))
    said = notice_not_sent(rec, as_left=True)
    assert said.startswith(f"{NOTICE_NOT_SENT}{REFUSED} (dana's run, at ") and "carol" not in said, said
    assert "answer was lost" not in said, said


def test_a_lost_answer_that_is_the_newest_entry_is_said_once():
    rec = _owed(("carol", f"{NOTICE_NOT_SENT}{REFUSED}"), ("bob", notice_failed_said(LOST, lost=True)))
    said = notice_not_sent(rec, as_left=True)
    assert said.startswith(f"{notice_failed_said(LOST, lost=True)} (bob's run, at "), said
    assert "earlier send" not in said and said.count(LOST) == 1, said
