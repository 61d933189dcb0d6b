"""How a ``rollway`` command prints rollway's own warnings and errors: one line on standard error each,
as the command's own ``error:`` lines, naming the logger it came from (``rollway.aws.ecs: warning:
deregistered ...``).

rollway/ logs through Python's ``logging`` (loggers under "rollway"). Nothing had configured
logging in a command: a warning came out through Python's last resort as a bare line naming
neither its level nor its source; once the ``flows`` package was imported (its run-log handler on
the "rollway" logger) not at all; and where Prefect's console handler was on the root logger, in
Prefect's own format, with a traceback. Warnings and above are shown: an info line ("reading it
again") is for a run's log, not a person's terminal.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator

from rollway.log_line import SHOWN_FROM, one_line, show_warnings


class _Stderr(logging.Handler):
    """Writes each record to the standard error of the moment (a test's capture, a reconfigured
    stream), not the one there when the command started."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except RecursionError:  # pragma: no cover - as logging.StreamHandler
            raise
        except Exception:
            self.handleError(record)


class _OneLine(logging.Formatter):
    """``<logger>: <level>: <message>`` (rollway/log_line.py): no traceback, no exception's arguments."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(record)


@contextmanager
def rollway_log_on_stderr() -> Iterator[None]:
    """For the command's duration: the "rollway" logger's records, warnings and above, on standard
    error, once each. They do not go on to the root logger, whose handlers (Prefect's console
    handler, once a flow runs in this process) would print them a second time in another format;
    the run-log handler on the "rollway" logger itself still sends them to a run's log. They are
    shown whatever the root logger's level: the "rollway" logger took it, and a root set above
    warnings (a user's logging configuration, PREFECT_LOGGING_ROOT_LEVEL=ERROR) dropped them
    before any handler saw them. A level set on the "rollway" logger itself is left as chosen.
    Afterwards the logger is as it was: a caller running commands in its own process (a test)
    keeps its handlers' records and levels, and a second command adds no second handler."""
    logger = logging.getLogger("rollway")
    if any(isinstance(handler, _Stderr) for handler in logger.handlers):  # a command run inside a command
        yield
        return
    handler = _Stderr(SHOWN_FROM)
    handler.setFormatter(_OneLine())
    propagate, level = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    show_warnings(logger)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        logger.setLevel(level)
