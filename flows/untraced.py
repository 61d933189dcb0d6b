"""Findings a flow fails on, logged without a Python traceback.

Prefect's engines log a task's exception, once its retries are exhausted, and the flow's, each
with a traceback. For a finding whose message says everything (a health check answering 503, a
report of a rollout the ledger does not hold) that read as a crash of rollway above the one line
that matters. A flow names its findings here; any other exception, a defect, keeps its traceback.
"""

from __future__ import annotations

import logging


class _Untraced(logging.Filter):
    """Drops the traceback of the exceptions registered with ``without_traceback``; the line
    itself (the engine's message, which quotes the exception) stays."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: tuple[type[BaseException], ...] = ()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.kinds):
            record.exc_info = record.exc_text = None
        return True


_UNTRACED = _Untraced()


def without_traceback(*kinds: type[BaseException]) -> None:
    """Log ``kinds`` without their traceback on the engines' run loggers (their adapters log to
    these), from now on in this process: the filter stays, since the flow engine logs the run's
    failure after the flow returns, and it touches nothing but the exceptions named."""
    _UNTRACED.kinds = tuple(dict.fromkeys((*_UNTRACED.kinds, *kinds)))
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if _UNTRACED not in logger.filters:
            logger.addFilter(_UNTRACED)


FAILED_STEP = "rollway_failed_step"
"""Marks (``extra={FAILED_STEP: True}``) a flow's log line of a step that failed which the flow's error
lists again (``flows.rollback.RollbackIncomplete``): a command that prints that list leaves the line
off the terminal (``rollway.cli.prefect_console.failed_steps_held``); the run's log keeps it."""


PAGED = "rollway_paged"
"""Set (``True``) on an error a flow raises after logging and paging it in its own words (a rollback
that could not move the traffic: ``flows.rollback._page_failed_move``): a command running the flow
in its process leaves the flow engine's ERROR line of it, and its traceback, off the terminal, below
the page's own line (``rollway.cli.ops.without_traceback``); the run's log keeps them."""
