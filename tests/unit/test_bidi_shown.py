"""Bidirectional-text controls from outside (a person's comment, a stack name, AWS's words) shown as
escapes, as the other control characters are: as they were, they reordered what a report, a log line
or `rollway status` showed (a right-to-left override makes "reject" read as "tcejer", and text after
it as a person never typed it), invisibly."""

from __future__ import annotations

import pytest

from rollway.ledger import Transition
from rollway.one_line import on_one_line, shown
from rollway.phases import RolloutPhase
from rollway.reports import incident_report, rollout_report
from tests.unit.test_reports import T0, record, shift, started, w

# The explicit embeddings and overrides, their pop, the isolates and theirs, and the marks.
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


@pytest.mark.parametrize("control", list(BIDI))
def test_each_bidi_control_is_shown_as_its_escape(control):
    said = f"stack webordinary-\u202e{control}edit failed"
    assert not set(BIDI) & set(shown(said)), repr(shown(said))
    assert control.encode("unicode_escape").decode() in on_one_line(said)


def test_a_right_to_left_override_in_a_persons_words_reaches_neither_report_as_it_is():
    why = "latency looks off \u202egnikrow lla\u202c, see INC-7"
    rolled_back = record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 600, kind="reject", actor="dana\u2067", to_stage=1, comment=f"reject: {why}",
                   verdict="approval before 25%"),
        Transition(at=T0 + 660, kind="rollback-start", actor="dana\u2067", comment=f"rejected by dana: {why}"),
        Transition(at=T0 + 700, kind="rollback", actor="dana\u2067", to_weights=w(0), comment=f"rejected by dana: {why}"),
    ], RolloutPhase.ROLLED_BACK, weights=w(0))
    for text in (rollout_report(rolled_back), incident_report(rolled_back)):
        assert not set(BIDI) & set(text), [c for c in text if c in BIDI]
        assert r"latency looks off \u202egnikrow lla\u202c, see INC-7" in text, text
        assert r"dana\u2067" in text, text
