"""``Whole``: the type of every whole-number option of the ``rollway`` commands.

cyclopts converts an ``int`` option by rounding what was typed ("1.5" to 2, "2.5" to 2), so a
count, a weight, a version or a port nobody gave was acted on. Annotated ``Whole``, a number
with a fraction is refused on the one ``error:`` line every unparsable command line gets (exit 2),
before anything is read or changed.
"""

from __future__ import annotations

from typing import Annotated, Any, Sequence

from cyclopts import Parameter


def _whole(type_: Any, tokens: Sequence[Any]) -> int:
    """The number as typed, refused unless it is a whole number (never rounded)."""
    given = tokens[0].value
    try:
        return int(given, 10)
    except ValueError:
        raise ValueError(f"{given!r} is not a whole number") from None


Whole = Annotated[int, Parameter(converter=_whole)]
