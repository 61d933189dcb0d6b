"""Strict JSON for the files a person hands the judge's replay (intervals, history, a spec).

json.loads keeps the last of two equal keys and error messages can grow with the input; these
helpers refuse the first and keep the second to one short line, for every file the replay reads.
"""

from __future__ import annotations

from typing import Any

from rollway.errors_pickle import PicklableError


class DuplicateKey(PicklableError, Exception):
    """A JSON object with a key written twice (not a ValueError: parse_line reads those as JSON's own)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object_pairs_hook: an object as a dict, refusing a key written twice.

    json.loads keeps the last of two equal keys, so ``"errors": 50, "errors": 0`` would replay
    as 0 errors; whichever one the exporter meant, the line cannot be trusted.
    """
    record = dict(pairs)
    if len(record) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return record


def short_value(value: object) -> str:
    """A value for an error message, cut short (a 400-digit number is not worth printing)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def file_named(path: str) -> str:
    """A file name for a message on one line: as given, or quoted when it holds a line break or
    another character that does not print (the message would split, or garble the terminal)."""
    return path if path.isprintable() else repr(path)
