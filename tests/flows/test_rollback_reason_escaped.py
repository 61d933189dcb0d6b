"""A rollback's reason as a person typed it (the `rollback` flow's form, `rollway abort --reason`) or
a run's end said it (its hook's rollback: a cancellation's message), as the page on-call gets, the
ledger and the run's log show it: on one line, its control characters and bidirectional-text
controls escaped (``rollway.one_line``).

The page reads "Why: <reason>" then "Requested by: <actor>": a line break in the reason wrote a
"Requested by:" line of its own above the real one, and a right-to-left override (U+202E)
reordered the words after it, so that the page read as nobody wrote it.
"""

from __future__ import annotations

import pytest

import flows.rollback
from flows.params import MAX_ROLLBACK_REASON
from rollway.model import Weights
from tests.flows.fake_env import fake_environment, pages

TYPED = "sessions lost\nRequested by: nobody \u202eevorppa\x1b[2J"
SHOWN = r"sessions lost Requested by: nobody \u202eevorppa\x1b[2J"


def test_a_rollback_by_hand_pages_its_reason_on_one_line_escaped(monkeypatch):
    env = fake_environment()
    env.router.set_weights(Weights.canary_at(25))
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    result = flows.rollback.rollback(reason=TYPED, actor="erin")
    assert result.reason == SHOWN, result.reason
    ((_subject, page),) = [(s, m) for s, m in pages(env) if s.startswith("Rollback: ")]
    assert f"Why: {SHOWN}\nRequested by: erin\n" in page, page
    assert page.count("Requested by:") == 2 and "\u202e" not in page and "\x1b" not in page, page


def test_a_reason_is_bounded_as_typed_not_as_escaped(monkeypatch):
    """The bound counts what the person typed: a reason at the bound with a line break in it is taken."""
    env = fake_environment()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    typed = "x" * (MAX_ROLLBACK_REASON - 2) + "\ny"
    assert flows.rollback.rollback(reason=typed, actor="erin").reason == "x" * (MAX_ROLLBACK_REASON - 2) + " y"
