"""`rollway status`'s history and the rollout report's timeline list a page's entry (a window page's
``window-page-refused``, the decommission's ``decommission-page-refused``) in the words its page
line reads it with (``rollway.window_page.page_outcome``). An entry of an older rollway, whose
page's SNS answer was lost, opened as a refusal does ("the ... page was not sent"): listed as
written, the history said "not sent" under a page line saying nobody knows whether it went out."""

from __future__ import annotations

import pytest

from rollway.reports import rollout_report
from tests.unit.test_breach_incident import LOST, SERVICE, T0, _answer_lost, _status, _with, breach_standing
from tests.unit.test_decommission_page_outcome import REFUSED, STABLE, owing

BREACH_PAGE = f'the "Breach not rolled back: {SERVICE}" page'


def _listed(rec, capsys, kind: str) -> tuple[str, str]:
    """The newest history row of status (its last transition) and the report's timeline row of ``kind``."""
    status = _status(rec, capsys).split(" last 1 transition", 1)[1]
    report = next(row for row in rollout_report(rec).splitlines() if f"| {kind} |" in row)
    return status, " ".join(report.split())


@pytest.mark.parametrize("shape", ["new", "old"])
def test_a_window_page_whose_answer_was_lost_is_listed_as_not_known_to_have_gone_out(shape, capsys):
    rec = _with(breach_standing(), _answer_lost(T0 + 5811, shape))
    for said in _listed(rec, capsys, "window-page-refused"):
        assert "was not sent" not in said, said
        assert f"whether {BREACH_PAGE} was sent is not known (SNS's answer was lost: it may have taken it): {LOST}" \
            in said, said


@pytest.mark.parametrize("comment, opening", [
    (LOST, "whether the \"Old version decommissioned\" page was sent is not known (SNS's answer was lost: it may have "
           "taken it): "),
    (REFUSED, "the \"Old version decommissioned\" page was not sent: "),
], ids=["answer lost", "refused"])
def test_an_older_decommission_page_entry_is_listed_as_its_page_line_reads_it(comment, opening, capsys):
    """An older rollway's entry held SNS's words alone: listed bare, nothing said which page they were of."""
    rec, _ = owing(comment)
    for said in _listed(rec, capsys, "decommission-page-refused"):
        assert f"{opening}{comment}" in said, said
