"""``rollway.window_page.unsent``: what came of a page whose publish failed, and why nobody knows
whether a page whose answer was lost went out."""

from __future__ import annotations

from rollway.window_page import unsent


def test_a_lost_answer_says_it_is_not_known_why():
    assert unsent("the page", lost=True) == "whether the page was sent is not known (SNS's answer was lost: it may " \
                                            "have taken it)"
    assert unsent("the page", lost=True, why="no page recorded") == ("whether the page was sent is not known (no page "
                                                                     "recorded)")


def test_a_refusal_says_it_was_not_sent():
    assert unsent("the page", lost=False) == "the page was not sent"
