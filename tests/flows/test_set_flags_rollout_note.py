"""The set-flags flow says what a change means to the rollout whose stages move the flag, as
`rollway flags set` does on its `note:` line.

A product team turning a bound flag off from the UI while a rollout ran was told only "on 5% -> off
5%": not that the rollout's next stages would leave it so (until its rollback or the next rollout),
nor how to hand it back; set back as the rollout left it, not that its next stage moves it again.
"""

from __future__ import annotations

import logging

from flows.flags import set_flags
from rollway.flag_binding import FlagChange, apply_bindings
from rollway.spec import FlagBinding
from tests.flows.test_flags_flow import CREDENTIALS, INTERRUPTS, SQS, dynamo, flags_summary  # noqa: F401 - a fixture

ROLLOUT = "20270115T080000Z-1a2b3c4d"


def test_a_change_of_a_flag_a_rollout_moves_says_what_the_rollout_does_next(dynamo, caplog):
    apply_bindings(dynamo, [FlagBinding(feature=SQS)], 5, actor="rollout-run", now=2.0, rollout=ROLLOUT)

    with caplog.at_level(logging.INFO):
        state = set_flags(changes=[FlagChange(feature=SQS, enabled=False, reason="errors"),
                                   FlagChange(feature=INTERRUPTS, enabled=True)],
                          actor="alice", aws_credentials_block=CREDENTIALS, return_state=True)

    assert state.is_completed()
    text = flags_summary(state)
    (row,) = [line for line in text.splitlines() if line.startswith(f"| 1 | {SQS} |")]
    assert f"{SQS}: on 5% -> off 5% (v3)" in row, row
    assert f"rollout {ROLLOUT} moves {SQS} with its traffic stages" in row, row
    assert "its next stages leave the flag off 5% as you set it" in row, row
    assert f"`rollway flags set {SQS} --enabled --percentage 5` hands it back" in row, row
    (other,) = [line for line in text.splitlines() if line.startswith(f"| 2 | {INTERRUPTS} |")]
    assert "rollout" not in other, other  # a flag no rollout moves: no note
    assert f"rollout {ROLLOUT} moves {SQS} with its traffic stages" in caplog.text, caplog.text


def test_a_flag_left_on_at_0_percent_says_it_is_still_on_without_a_user(dynamo, caplog):
    """On-call dialled a flag to 0 % from the UI as its kill switch, and read "on 5% -> on 0%" as off:
    every evaluation with a user id is off, but one without follows `enabled`, and kept answering on.
    `rollway flags set` says so on a `note:` line; the set-flags run said nothing."""
    dynamo.put(dynamo.get(SQS).model_copy(update={"enabled": True, "percentage": 5.0}), expected_version=1,
               actor="seed", now=2.0)

    with caplog.at_level(logging.INFO):
        state = set_flags(changes=[FlagChange(feature=SQS, percentage=0, reason="errors")], actor="oncall",
                          aws_credentials_block=CREDENTIALS, return_state=True)

    assert state.is_completed()
    (row,) = [line for line in flags_summary(state).splitlines() if line.startswith(f"| 1 | {SQS} |")]
    assert f"{SQS}: on 5% -> on 0% (v3)" in row, row
    # The way to turn it off from where on-call stands (the UI), and the CLI's: the CLI's alone sent
    # someone at the form to a terminal.
    said = (f"{SQS} is on at 0%: off for every user id, but on where it is evaluated without one; a set-flags change "
            f"of {SQS} with `enabled` false (or `rollway flags set {SQS} --no-enabled`) turns it off there too")
    assert said in row and said in caplog.text, row
