"""One line for a record of rollway's own loggers, wherever a person reads it on a terminal: a
``rollway`` command's standard error (rollway/cli/stderr_log.py) and the console of the runs
``rollway up`` serves (flows/run_log.py)."""

from __future__ import annotations

import logging


def one_line(record: logging.LogRecord) -> str:
    """``<logger>: <level>: <message>``. A record's exception is left out, traceback and arguments
    alike: rollway's messages say what failed, and an exception's arguments may carry what must not
    be printed (a credential in a refused request)."""
    return f"{record.name}: {record.levelname.lower()}: {record.getMessage()}"
