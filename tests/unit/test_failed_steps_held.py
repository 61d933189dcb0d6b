"""``failed_steps_held``: a flow's lines of failed steps kept off the terminal only when the command
prints the list of them; ended otherwise, they are shown after all."""
from __future__ import annotations

import logging

import pytest

from flows.untraced import FAILED_STEP
from rollway.cli.prefect_console import failed_steps_held


class Listed(Exception):
    pass


def _on_root(handler: logging.Handler):
    shown: list[str] = []
    handler.emit = lambda record: shown.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    return shown


@pytest.fixture
def terminal():
    """What Prefect's console handler (the terminal) is handed."""
    from prefect.logging.handlers import PrefectConsoleHandler

    handler = PrefectConsoleHandler()
    try:
        yield _on_root(handler)
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.fixture
def own_file():
    """What a handler of the user's own on the root logger (a log file) is handed."""
    handler = logging.Handler()
    try:
        yield _on_root(handler)
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


def test_a_users_own_root_handler_still_gets_the_lines_of_failed_steps(terminal, own_file):
    """Every root handler was filtered: a log file of the user's own lost the flow's lines of the
    failed steps, which only Prefect's console (the terminal) says twice."""
    with pytest.raises(Listed):
        _run(Listed())
    assert terminal == ["another line"]
    assert own_file == ["could not scale the canary to 0: throttled", "another line"]
