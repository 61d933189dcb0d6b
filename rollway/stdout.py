"""Standard output set up the same way by the `rollway` command and by ``python -m
rollway.judge.replay``, which skips the command's main: their exit codes for output that cannot
be written, and the two adjustments both make to standard output. Kept apart from both so that
neither loads the other (the command's package loads every subcommand)."""

from __future__ import annotations

import os
import sys

EXIT_NOT_WRITTEN = 74
"""sysexits' EX_IOERR: the output could not be written (a full disk, a dead device, standard
output closed); neither a verdict nor bad input. A reader gone early is not this: 141."""

EXIT_READER_GONE = 141
"""What a command killed by SIGPIPE reports: the reader went away (``| head -1``, a pager quit)."""


def escape_unencodable() -> None:
    """Write characters the output encoding lacks as \\u escapes (valid inside a JSON string)
    instead of failing on them: verdicts and tables hold "—" and "→", and under a Latin-1 locale
    or PYTHONIOENCODING=ascii printing one raised UnicodeEncodeError half-way through the output."""
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")


def to_devnull() -> None:
    """Standard output pointed at /dev/null, so that the exit's own flush of what could not be
    written does not fail again (a second traceback, from the interpreter)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
