"""rollway's own warnings and errors in the log of the flow run that logged them.

rollway/ logs through Python's ``logging`` (loggers under "rollway") and may not import Prefect.
Prefect sends a logger's records to a run's log only when the logger is named in
PREFECT_LOGGING_EXTRA_LOGGERS, which nobody sets: "could not deregister ..., an unused copy of a
registration" or a flag left as a person set it reached the process's stderr and never the run
a person reads in the Prefect UI. Installed when the ``flows`` package is imported.
"""

from __future__ import annotations

import logging
import sys


class _ToRunLog(logging.Handler):
    """Hands a "rollway" record logged inside a flow or task run to Prefect's API handlers (those
    of the "prefect.extra" logger, as PREFECT_LOGGING_EXTRA_LOGGERS would), once. Outside a run it
    does nothing: a `rollway` command's warning stays the one line on stderr, without Prefect's
    "attempted to send logs to the API without a flow run id" warning. It prints nothing itself:
    the console line comes from the root logger's handler (Prefect's, in a served run) or, in a
    `rollway` command, from the command's own (rollway/cli/stderr_log.py)."""

    def emit(self, record: logging.LogRecord) -> None:
        context = sys.modules.get("prefect.context")  # not imported: no run either, and no import on a warning
        if context is None or (context.FlowRunContext.get() is None and context.TaskRunContext.get() is None):
            return
        from prefect.logging.handlers import APILogHandler

        if _sent_on_the_way(record.name, APILogHandler):
            return  # PREFECT_LOGGING_EXTRA_LOGGERS names this logger or one between: Prefect sends it
        for handler in logging.getLogger("prefect.extra").handlers:
            if isinstance(handler, APILogHandler) and record.levelno >= handler.level:
                handler.handle(record)


def _sent_on_the_way(name: str, api: type[logging.Handler]) -> bool:
    """Whether a logger from ``name`` up to "rollway" already holds one of Prefect's API handlers."""
    logger = logging.getLogger(name)
    while not any(isinstance(h, api) for h in logger.handlers):
        if logger.name == "rollway" or logger.parent is None:
            return False
        logger = logger.parent
    return True


def send_to_run_logs() -> None:
    """Install the handler on the "rollway" logger, once per process (a re-import replaces it).
    The logger's level stays as it is: its warnings and errors reach the run log, and no info
    line starts printing on a console."""
    logger = logging.getLogger("rollway")
    for old in [h for h in logger.handlers if type(h).__name__ == _ToRunLog.__name__]:
        logger.removeHandler(old)  # by name: a reloaded module's class is another class
    logger.addHandler(_ToRunLog())
