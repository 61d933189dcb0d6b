"""Text from outside (AWS's answers, git's and docker's output, what a person typed) made safe to
show a person: its control characters (and bidirectional-text controls) escaped, and, on one line,
its line breaks gone.

Pure and free of AWS and Prefect imports, so that the AWS adapters' error messages
(``rollway.aws.errors``) and the reports (``rollway.report``, which reads ``rollway.aws``) share
one escaping without an import cycle.
"""

from __future__ import annotations

import unicodedata

# Control characters, and the line and paragraph separators (U+2028, U+2029), which break a line too.
_CONTROLS = frozenset({"Cc", "Zl", "Zp"})

# The bidirectional-text controls: the embeddings and overrides (U+202A-U+202E), the isolates
# (U+2066-U+2069) and the marks (U+200E, U+200F, U+061C). Invisible, they reorder what follows them:
# a right-to-left override in a comment made "reject" read "tcejer" in a report, and the words after
# it read as nobody typed them. Not every format character (Cf): a zero-width joiner is part of an emoji.
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def shown(text: str, keep: str = "\n") -> str:
    """``text`` with its control characters (but ``keep``'s) written as escapes (``\\x1b``,
    ``\\x00``), as `rollway flags` shows a reason: a reason quoting a crashed process's coloured
    output, or a name pasted with an escape sequence, reached `rollway report` as it was and acted
    on the terminal (colours, a cleared screen, a carriage return writing over who did it), and
    left stray "[31m"s around an invisible character in the Prefect UI. The bidirectional-text
    controls (``BIDI``: ``\\u202e``) too, which reordered the text around them."""
    return "".join(c.encode("unicode_escape").decode()
                   if c not in keep and (c in BIDI or unicodedata.category(c) in _CONTROLS) else c for c in text)


def on_one_line(text: str) -> str:
    """``text`` quoted on one line: whitespace runs (line breaks included) become one space, and
    other control characters are shown as escapes (``shown``). AWS's and git's words (a custom
    resource's answer, colours and line breaks and all) in a log line or a summary otherwise
    began lines of their own there."""
    return shown(" ".join(text.split()), keep="")
