"""The replay as a test calls it in process: exit code and the lines a user reads."""

from __future__ import annotations

import io
from pathlib import Path

from rollway.judge.replay import EXIT_OK, replay_main

DEFAULTS = dict(alpha=0.01, margin=0.001, mode="two-sample")


def run(path: Path | str, **options) -> tuple[int, list[str]]:
    """The exit code, and the lines of the stream that got them: the output, or the errors."""
    out, err = io.StringIO(), io.StringIO()
    code = replay_main(str(path), out=out, err=err, **{**DEFAULTS, **options})
    # A caller parses the output: an error never lands in it, and a replay that ran prints no error
    # (a file without slow counts gets the note saying how they were judged, and nothing else).
    if code == EXIT_OK:
        named = "standard input" if str(path) == "-" else path
        assert all(line.startswith(f"note: {named}: no interval gives a 'slow' count")
                   for line in err.getvalue().splitlines()), err.getvalue()
    else:
        assert out.getvalue() == ""
    return code, (out if code == EXIT_OK else err).getvalue().splitlines()
