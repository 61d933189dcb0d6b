"""The state hook of a run that outwaited another rollback names that rollback's holder as every other
line does: on one line, escaped. It logged the holder as the ledger has it, and a name with an escape
sequence in it (a terminal's colours, pasted) acted on the terminal reading the log."""
from __future__ import annotations

import logging

import tests.flows.test_shift_overtaken as overtaken
from tests.flows.test_shift_overtaken import ErinStillActing, erin_moves_the_traffic_first, shift_raced_by

RAW = "erin\x1b[31m (flow run calm-heron, 7f1c...)"
SHOWN = "erin\\x1b[31m (flow run calm-heron, 7f1c...)"


def test_the_hook_names_the_rollback_it_does_not_wait_for_again_with_its_holder_shown(monkeypatch, caplog):
    monkeypatch.setattr(overtaken, "ERIN", RAW)
    ledger = ErinStillActing()
    with caplog.at_level(logging.INFO):
        shift_raced_by(monkeypatch, ledger, erin_moves_the_traffic_first(ledger))

    said = [r.getMessage() for r in caplog.records]
    assert any(f"waited 900 s for the rollback by {SHOWN} already" in m for m in said), said
    assert not [m for m in said if "\x1b" in m], [m for m in said if "\x1b" in m]
