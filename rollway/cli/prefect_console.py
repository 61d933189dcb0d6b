"""What Prefect's console handler leaves out while a command runs flows in its own process.

Prefect's console handler (on the root logger once ``prefect.main`` is imported) prints every run's
log lines on the terminal; the runs' logs in the Prefect API keep them all whatever is left out here.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator


class _TaskCompletionUnsaid(logging.Filter):
    """Drops Prefect's "Task run '...' - Finished in state Completed()" lines from the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "prefect.task_runs" and record.levelno <= logging.INFO
                    and record.getMessage().startswith("Finished in state Completed("))


def console_handlers() -> list[logging.Handler]:
    """Prefect's console handlers on the root logger: the terminal, not a handler of the user's own
    there (a log file), which keeps every line whatever the terminal leaves out."""
    import prefect.main  # noqa: F401 - configures Prefect's logging, its console handler on the root logger
    from prefect.logging.handlers import PrefectConsoleHandler

    return [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]


@contextmanager
def task_completions_unsaid() -> Iterator[None]:
    """While it lasts, Prefect's console leaves out the tasks that completed.

    Their lines were two thirds of what the demo wrote (152 of 224 for the three scenarios), between
    the flow's own lines that say what each scenario did. Only the console's handlers are filtered:
    the runs' logs in the Prefect API keep every line, and a task that failed, retried or was
    cancelled is still said."""
    unsaid = _TaskCompletionUnsaid()
    handlers = console_handlers()
    for handler in handlers:
        handler.addFilter(unsaid)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(unsaid)


@contextmanager
def failed_steps_held(listed: type[BaseException]) -> Iterator[None]:
    """While it lasts, a flow's log lines of steps that failed (``flows.untraced.FAILED_STEP``) are
    held off the terminal (Prefect's console handler): the flow's error ``listed`` lists those steps,
    and the command prints that list, each step with its error; the terminal said each twice. Ended
    by anything else (the list never printed), the lines held are shown then. The run's log keeps
    them either way (its handlers are not the root's), and so does a handler of the user's own on
    the root logger (a log file): only Prefect's console is filtered, as ``task_completions_unsaid``
    filters it; holding every root handler's lines dropped them from such a file."""
    from flows.untraced import FAILED_STEP

    held: list[tuple[logging.Handler, logging.LogRecord]] = []

    class Held(logging.Filter):
        def __init__(self, handler: logging.Handler) -> None:
            super().__init__()
            self.handler = handler

        def filter(self, record: logging.LogRecord) -> bool:
            if getattr(record, FAILED_STEP, False):
                held.append((self.handler, record))
                return False
            return True

    filters = [(handler, Held(handler)) for handler in console_handlers()]
    for handler, kept in filters:
        handler.addFilter(kept)
    try:
        yield
    except listed:
        held.clear()
        raise
    finally:
        for handler, kept in filters:
            handler.removeFilter(kept)
        for handler, record in held:
            handler.handle(record)
