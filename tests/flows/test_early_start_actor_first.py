"""An early start from the UI's advance_phase form with its actor left at "schedule".

The form's actor defaults to "schedule"; a person who fills in only "Start the next phase early,
because" is refused (the schedule keeps to the calendar; an early start needs a person's name).
The refusal came only after the run had loaded its blocks and read AWS (STS, the ledger): a block
name mistyped, or credentials that had expired, failed the run on that instead, and the person
fixed it only to be refused for the actor next. It is refused first, before anything is read.
"""

from __future__ import annotations

from flows.progressive import advance_phase


def test_an_early_start_named_schedule_is_refused_before_any_block_or_aws_is_read():
    state = advance_phase(actor="schedule", start_early_because="the fix must reach everyone today",
                          targets_block="no-such-targets-block", aws_credentials_block="no-such-aws-block",
                          return_state=True)
    assert state.is_failed(), state
    message = state.message or ""
    assert "name of the person who starts it as actor" in message, message
    assert "no-such" not in message, message
