"""rollway's own warnings and errors in the log of the flow run that logged them.

rollway/ logs through Python's ``logging`` (loggers under "rollway") and may not import Prefect.
Prefect sends a logger's records to a run's log only when the logger is named in
PREFECT_LOGGING_EXTRA_LOGGERS, which nobody sets: "could not deregister ..., an unused copy of a
registration" or a flag left as a person set it reached the process's stderr and never the run
a person reads in the Prefect UI. Installed when the ``flows`` package is imported.

On the console of a run's process (the terminal of ``rollway up``, of ``serve.py``, of a worker)
such a record is the one line a ``rollway`` command prints, after the run's name: Prefect's console
handler printed it in its own format with the exception's traceback, where the exception's text
may carry a credential (a refused request's signature). The run's log keeps all of it.
"""

from __future__ import annotations

import logging
import sys

from rollway.log_line import one_line, show_warnings


class _ToRunLog(logging.Handler):
    """Hands a "rollway" record logged inside a flow or task run to Prefect's API handlers (those
    of the "prefect.extra" logger, as PREFECT_LOGGING_EXTRA_LOGGERS would), once. Outside a run it
    does nothing: a `rollway` command's warning stays the one line on stderr, without Prefect's
    "attempted to send logs to the API without a flow run id" warning. It prints nothing itself:
    the console line comes from the root logger's handler (Prefect's, in a served run, with the
    one-line format of ``_OnConsole``) or, in a `rollway` command, from the command's own
    (rollway/cli/stderr_log.py)."""

    def emit(self, record: logging.LogRecord) -> None:
        _one_line_on_console()
        context = sys.modules.get("prefect.context")  # not imported: no run either, and no import on a warning
        if context is None or (context.FlowRunContext.get() is None and context.TaskRunContext.get() is None):
            return
        from prefect.logging.handlers import APILogHandler

        if _sent_on_the_way(record.name, APILogHandler):
            return  # PREFECT_LOGGING_EXTRA_LOGGERS names this logger or one between: Prefect sends it
        for handler in logging.getLogger("prefect.extra").handlers:
            if isinstance(handler, APILogHandler) and record.levelno >= handler.level:
                handler.handle(record)


class _OnConsole(logging.Formatter):
    """Prefect's console format, except for a "rollway" record: its time, the run it came from and
    rollway's one line (``rollway.aws.ecs: error: could not deregister ...``), without the
    exception's traceback or text."""

    def __init__(self, prefect: logging.Formatter | None) -> None:
        super().__init__()
        self.prefect = prefect or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if record.name != "rollway" and not record.name.startswith("rollway."):
            return self.prefect.format(record)
        run = _run_named()
        return f"{self.formatTime(record, '%H:%M:%S')}.{int(record.msecs):03d} | {run}{one_line(record)}"


def _run_named() -> str:
    """``Flow run 'name' - `` (or the task run's) as Prefect's console names it; empty outside a run."""
    context = sys.modules.get("prefect.context")
    flow_run = getattr(context.FlowRunContext.get(), "flow_run", None) if context else None
    if flow_run is not None:
        return f"Flow run {flow_run.name!r} - "
    task_run = getattr(context.TaskRunContext.get(), "task_run", None) if context else None
    return f"Task run {task_run.name!r} - " if task_run is not None else ""


def _one_line_on_console() -> None:
    """Give the root logger's Prefect console handlers the ``_OnConsole`` format, once each. Done
    when a record comes, not on import: Prefect sets its handlers up when it is imported, possibly
    after this package, and again when a run's process takes its settings."""
    handlers = sys.modules.get("prefect.logging.handlers")
    if handlers is None:  # not imported: no Prefect console handler either
        return
    for handler in logging.getLogger().handlers:
        # By name: a reloaded module's class is another class.
        if isinstance(handler, handlers.PrefectConsoleHandler) and type(handler.formatter).__name__ != "_OnConsole":
            handler.setFormatter(_OnConsole(handler.formatter))


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

    Its warnings and errors reach the run log whatever level the root logger has
    (``show_warnings``): a worker configured with PREFECT_LOGGING_ROOT_LEVEL=ERROR (to quiet other
    libraries) dropped them from the run's log."""
    logger = logging.getLogger("rollway")
    show_warnings(logger)
    for old in [h for h in logger.handlers if type(h).__name__ == _ToRunLog.__name__]:
        logger.removeHandler(old)  # by name: a reloaded module's class is another class
    logger.addHandler(_ToRunLog())
