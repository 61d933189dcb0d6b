"""Waits of days in the words a person reads: whole seconds, not ``:g``'s exponent."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.engine import baked_by_said
from flows.params import WindowSeconds
from rollway.approvals import timed_out
from rollway.spec import Approvals, Stage


@pytest.mark.parametrize(("seconds", "said"), [(600, "600 s"), (14 * 86400, "1209600 s"), (90.5, "90.5 s")])
def test_a_pause_nobody_answered_says_how_long_it_waited_in_whole_seconds(seconds, said):
    # A two-week approval timeout is a weekly phase's: its ledger entry, status and the report
    # read "no answer within 1.2096e+06 s".
    answer = timed_out(Approvals(timeout_seconds=seconds, on_timeout="hold"))
    assert answer.comment == f"no answer within {said}", answer.comment
    assert (answer.action, answer.approver, answer.timed_out) == ("hold", "timeout", True)
    assert timed_out(Approvals(timeout_seconds=seconds, on_timeout="rollback")).action == "reject"


def test_a_stage_whose_minimum_bake_is_weeks_says_it_in_whole_seconds():
    stage = Stage(weight=5, bake_seconds=30 * 86400, min_bake_seconds=20 * 86400)
    assert baked_by_said(stage) == "; it passes once the stage has baked 1728000 s"


def test_a_window_refused_as_too_long_quotes_the_value_as_given():
    from pydantic import TypeAdapter

    with pytest.raises(ValidationError) as refused:
        TypeAdapter(WindowSeconds).validate_python(8_000_001.0)
    assert "not 8000001;" in str(refused.value), str(refused.value)
