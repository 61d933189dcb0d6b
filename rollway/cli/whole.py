"""``Whole``: the type of every whole-number option of the ``rollway`` commands.

cyclopts converts an ``int`` option by rounding what was typed ("1.5" to 2, "2.5" to 2), so a
count, a weight, a version or a port nobody gave was acted on. Annotated ``Whole``, a number
with a fraction is refused on the one ``error:`` line every unparsable command line gets (exit 2),
before anything is read or changed.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Sequence

from cyclopts import Parameter

# A whole number written out longer than this is not spelled back in the refusal: no option
# takes one anywhere near it, and ``int()`` of ``1e400000000`` would take minutes.
_DIGITS_SPELLED = 30


def _whole(type_: Any, tokens: Sequence[Any]) -> int:
    """The number as typed, refused unless it is written as a whole number (never rounded)."""
    given = tokens[0].value
    try:
        return int(given, 10)
    except ValueError:
        raise ValueError(_refusal(given)) from None


def _refusal(given: str) -> str:
    """Why ``given`` is refused. A whole number in another notation (``1e3``, ``100.0``, ``0x10``)
    is refused too, as cyclopts once read it (1000, 100, 16) without a word, but the refusal says
    what to write: "not a whole number" of 1e3 left the person to guess what the parser wanted."""
    try:
        value: int | None = int(given, 0)  # 0x10, 0o20, 0b10000
    except ValueError:
        value = None
    if value is not None and value.bit_length() > _DIGITS_SPELLED * 10 // 3:
        # Base 16, 8 and 2 have no length limit in int(), but spelling the value in decimal for
        # "write N" does: 0x followed by 5,000 digits was refused in Python's own words about
        # sys.set_int_max_str_digits().
        return (f"{given[:_DIGITS_SPELLED]!r}... is a number {len(given):,} characters long: options take a whole "
                "number in plain digits (0-9, an optional leading -), and no count, weight, port or version is "
                "anywhere near this long")
    if value is None:
        try:
            number = Decimal(given)
        except InvalidOperation:
            return f"{given!r} is not a whole number"
        if not number.is_finite() or number != number.to_integral_value():
            return f"{given!r} is not a whole number"
        if number.adjusted() >= _DIGITS_SPELLED:
            # "write it in digits" told a person to type out 1e400000000, and said neither what was
            # wrong with it nor what an option takes.
            # Only of what was typed with an exponent: thousands of plain digits (past int()'s
            # limit) or a long "1000...0.0" come here too.
            if "e" in given.lower():
                return (f"{given!r} is a number {number.adjusted() + 1:,} digits long in exponent notation: options "
                        "take a whole number in plain digits (0-9, an optional leading -), and no count, weight, port "
                        "or version is anywhere near this long")
            return (f"{given!r} is a number {number.adjusted() + 1:,} digits long: no count, weight, port or version "
                    "is anywhere near this long")
        value = int(number)
    return f"{given!r} is not written as a whole number; write {value}"


Whole = Annotated[int, Parameter(converter=_whole)]
