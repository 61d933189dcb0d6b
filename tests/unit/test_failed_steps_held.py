"""``failed_steps_held``: a flow's lines of failed steps kept off the terminal only when the command
prints the list of them; ended otherwise, they are shown after all."""
from __future__ import annotations

import logging

import pytest

from flows.untraced import FAILED_STEP
from rollway.cli.prefect_console import failed_steps_held


class Listed(Exception):
    pass


@pytest.fixture
def terminal():
    shown: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: shown.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        yield shown
    finally:
        logging.getLogger().removeHandler(handler)


def _run(ends: BaseException | None) -> None:
    log = logging.getLogger("prefect.flow_runs.held-test")
    with failed_steps_held(Listed):
        log.error("could not scale the canary to 0: throttled", extra={FAILED_STEP: True})
        log.error("another line")
        if ends is not None:
            raise ends


def test_the_lines_of_failed_steps_are_left_off_when_the_command_lists_them(terminal):
    with pytest.raises(Listed):
        _run(Listed())
    assert terminal == ["another line"]


@pytest.mark.parametrize("ends", [RuntimeError("the ledger refused"), None], ids=["another error", "no error"])
def test_the_lines_of_failed_steps_are_shown_after_all_when_nothing_lists_them(terminal, ends):
    if ends is None:
        _run(None)
    else:
        with pytest.raises(RuntimeError):
            _run(ends)
    assert terminal == ["another line", "could not scale the canary to 0: throttled"]
