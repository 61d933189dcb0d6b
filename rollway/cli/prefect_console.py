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


@contextmanager
def task_completions_unsaid() -> Iterator[None]:
    """While it lasts, Prefect's console leaves out the tasks that completed.

    Their lines were two thirds of what the demo wrote (152 of 224 for the three scenarios), between
    the flow's own lines that say what each scenario did. Only the console's handlers are filtered:
    the runs' logs in the Prefect API keep every line, and a task that failed, retried or was
    cancelled is still said."""
    import prefect.main  # noqa: F401 - configures Prefect's logging, its console handler on the root logger
    from prefect.logging.handlers import PrefectConsoleHandler

    unsaid = _TaskCompletionUnsaid()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    for handler in handlers:
        handler.addFilter(unsaid)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(unsaid)
