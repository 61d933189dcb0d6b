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


SHOWN_FROM = logging.WARNING
"""rollway's records a person is shown (a command's stderr, a run's log): warnings and above."""


def show_warnings(logger: logging.Logger) -> None:
    """Have ``logger`` pass its warnings on whatever the root logger's level: with no level of its
    own it took the root's, and a root set above warnings (a user's logging configuration,
    PREFECT_LOGGING_ROOT_LEVEL=ERROR) dropped them before any handler saw them. A level set on
    ``logger`` itself is left as chosen, and one that shows warnings already is not lowered (no
    info line starts printing)."""
    if logger.level == logging.NOTSET and logger.getEffectiveLevel() > SHOWN_FROM:
        logger.setLevel(SHOWN_FROM)
