"""What status and the late page say of an "Old version decommissioned" page still owed after SNS
refused it, or lost its answer (``rollway.aws.errors.AnswerLost``: SNS may have delivered it). The
entry recorded SNS's words alone, and ``why_owed`` said "SNS refused it" of a page that may have gone
out; entries of that older shape are still read, lost when SNS's words say its answer was."""

from __future__ import annotations

import pytest

from rollway.decommission_page import PAGE_REFUSED, late_message, page_said, why_owed
from rollway.window_page import page_comment
from rollway.ledger import Transition
from tests.unit.test_breach_incident import LOST
from tests.unit.test_reports import T0, promoted_record

STABLE = "webordinary-edit-service"
REFUSED = "SNS topic 'webordinary-alerts' not found"


def owing(comment: str):
    """A promoted rollout decommissioned at T0 + 6000, whose page's entry says ``comment``."""
    rec = promoted_record()
    decommission = Transition(at=T0 + 6000, kind="decommission", actor="monitor", wall=T0 + 6000,
                              comment="60 minutes of monitoring passed; webordinary-edit-service scaled to 0")
    refused = Transition(at=T0 + 6001, kind=PAGE_REFUSED, actor="monitor", wall=T0 + 6001, comment=comment)
    return rec.model_copy(update={"history": (*rec.history, decommission, refused)}), decommission


@pytest.mark.parametrize("comment", [page_comment(f"Old version decommissioned: {STABLE}", LOST, lost=True), LOST],
                         ids=["this version's entry", "an older version's entry"])
def test_a_page_whose_answer_was_lost_is_not_said_refused_or_never_sent(comment):
    rec, decommission = owing(comment)
    why = why_owed(rec, decommission)
    assert "SNS refused" not in why and why.startswith("SNS's answer to it was lost, and it may have gone out: "), why
    assert LOST in why, why
    said, warning = page_said(rec, STABLE)
    assert warning and "never sent" not in said and "SNS refused" not in said, said
    assert said.startswith(f"whether the \"Old version decommissioned\" page of {STABLE} was sent is not known"), said
    assert "again if it went out" in said and "delivery logs" in said, said
    late = late_message(rec, decommission, STABLE)
    assert late.startswith("This page is late, or a second one: SNS's answer to it was lost"), late


@pytest.mark.parametrize("comment", [page_comment(f"Old version decommissioned: {STABLE}", REFUSED, lost=False),
                                     REFUSED], ids=["this version's entry", "an older version's entry"])
def test_a_page_sns_refused_is_said_refused_and_not_recorded_as_sent(comment):
    rec, decommission = owing(comment)
    assert why_owed(rec, decommission) == f"SNS refused it: {REFUSED} (monitor's run, at {_at(rec)})"
    said, warning = page_said(rec, STABLE)
    assert warning and said.startswith(f"the \"Old version decommissioned\" page of {STABLE} is not recorded as sent "
                                       f"(SNS refused it: {REFUSED} ("), said
    assert "again if it went out" not in said, said
    assert late_message(rec, decommission, STABLE).startswith(f"This page is late: SNS refused it: {REFUSED}")


def _at(rec) -> str:
    from rollway.ledger import notice_time

    return notice_time(rec.history[-1])


def test_a_page_refused_after_an_earlier_try_lost_its_answer_is_not_said_unsent():
    """An earlier run's page lost SNS's answer (it may have gone out), a later run's was refused: the
    newest entry alone read as a refusal, and the page as one nobody had."""
    rec, decommission = owing(page_comment(f"Old version decommissioned: {STABLE}", LOST, lost=True))
    refused = Transition(at=T0 + 6100, kind=PAGE_REFUSED, actor="advance_phase", wall=T0 + 6100,
                         comment=page_comment(f"Old version decommissioned: {STABLE}", REFUSED, lost=False))
    rec = rec.model_copy(update={"history": (*rec.history, refused)})
    why = why_owed(rec, decommission)
    assert why.startswith(f"SNS refused it: {REFUSED} (advance_phase's run, at "), why
    assert f"an earlier try's answer was lost, and that page may have gone out: {LOST} (monitor's run, at " in why, why
    said, warning = page_said(rec, STABLE)
    assert warning and "not recorded as sent" not in said, said
    assert said.startswith(f"whether the \"Old version decommissioned\" page of {STABLE} was sent is not known "
                           f"(SNS refused it: {REFUSED}"), said
    assert "again if it went out" in said and "delivery logs" in said, said
    late = late_message(rec, decommission, STABLE)
    assert late.startswith(f"This page is late, or a second one: SNS refused it: {REFUSED}"), late
