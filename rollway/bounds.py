"""A pydantic field's allowed range in words, for a refusal that names the option given.

pydantic says only the bound crossed ("Input should be less than 0.5"): a person who gave
``--alpha 1.5`` learnt neither the option's name in the message nor how low it may go.

And a duration in words (``duration_said``), as every message says one (a wait or a time left,
under a second said so: ``wait_said``); a monitoring window's length spelt out (``duration_words``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import annotated_types
from pydantic import BaseModel, Field, ValidationError, ValidationInfo, WrapValidator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"})
"""pydantic's error types for a number outside a field's bounds (or not finite)."""


def allowed_range(field: FieldInfo, seconds: bool = False) -> str | None:
    """``field``'s bounds as words ("at least 1e-09 and under 0.5"), or None when it has none.

    ``seconds``: the field is a duration in seconds, whose bounds of whole hours are said as the
    spec's own limits are ("at most 30 days (2592000 s)")."""
    said = []
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            said.append(f"at least {bound_said(bound.ge, seconds)}")
        elif isinstance(bound, annotated_types.Gt):
            said.append(f"over {bound_said(bound.gt, seconds)}")
        elif isinstance(bound, annotated_types.Le):
            said.append(f"at most {bound_said(bound.le, seconds)}")
        elif isinstance(bound, annotated_types.Lt):
            said.append(f"under {bound_said(bound.lt, seconds)}")
    return " and ".join(said) or None


def range_refusal(name: str, field: FieldInfo, value: Any) -> str | None:
    """The refusal of ``value`` outside the range of the field ``name`` (``field``): the field, its
    whole range and the value given; None for a field with no range. A spec's model and a flow's
    parameter both say it so."""
    allowed = allowed_range(field, seconds=name.endswith("_seconds"))
    return None if allowed is None else f"{name} must be {allowed}, not {as_given(value)}"


def field_range_refusal(model: type[BaseModel], error: Any, name: str | None = None) -> str | None:
    """``error`` (one of ``model``'s, as pydantic lists them) as ``range_refusal`` says it when it
    is pydantic's for a number outside the range of one of ``model``'s own fields, naming the field
    ``name`` (its own name when None); None for any other error, one inside a field included."""
    if error["type"] not in RANGE_ERRORS or len(error["loc"]) != 1:
        return None
    field = model.model_fields.get(str(error["loc"][0]))
    if field is None:
        return None
    return range_refusal(str(error["loc"][0]) if name is None else name, field, error["input"])


def ranged(kind: Any, **constraints: Any) -> Any:
    """``kind`` within ``Field(**constraints)``, a number outside them refused as a spec's is
    ("lease_wall_seconds must be over 0 and at most a day (86400 s), not 0"): a flow's parameter
    has no spec around it to reword pydantic's "Input should be greater than 0"."""
    field = Field(**constraints)

    def said(value: Any, handler, info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except ValidationError as err:
            error = err.errors()[0]
            if error["type"] not in RANGE_ERRORS or info.field_name is None:
                raise
            refusal = range_refusal(info.field_name, field, value)
            if refusal is None:
                raise
            raise PydanticCustomError(error["type"], refusal) from None

    return Annotated[kind, field, WrapValidator(said)]


def bound_said(value: float, seconds: bool = False) -> str:
    """A bound as a person says it: 2592000, not ``:g``'s 2.592e+06, or "30 days (2592000 s)"
    for a duration of whole hours; a fraction as ``:g`` has it (1e-09, 0.5)."""
    if not float(value).is_integer():
        return f"{value:g}"
    whole = int(value)
    words = duration(whole) if seconds else None
    return f"{words} ({whole} s)" if words else str(whole)


def duration(seconds: int) -> str | None:
    """Whole days or hours in words ("a day", "30 days", "an hour"); None for anything else."""
    if seconds <= 0 or seconds % 3600:
        return None
    days, hours = divmod(seconds // 3600, 24)
    if hours == 0:
        return "a day" if days == 1 else f"{days} days"
    if days == 0:
        return "an hour" if hours == 1 else f"{hours} hours"
    return None


def seconds_said(value: float) -> str:
    """Seconds a person gave, as a message quotes them: every digit ("1209600 s"), not ``:g``'s
    exponent ("1.2096e+06 s") nor its six digits ("1.23457e+06 s", a figure nobody gave)."""
    return f"{_in_full(value)} s"


def _in_full(value: float) -> str:
    """``value`` with every digit: a whole one as an integer ("1209600"), a fraction as Python's
    shortest figure that reads back as it ("12.3456789"); ``:g`` keeps six digits."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def duration_said(seconds: float, *, given: bool = False) -> str:
    """``seconds`` as a person reads a wait or a span: "1 h", "1 h 30 min", "2 d 3 h", "45 s"
    (under a minute to the tenth of a second: "0.5 s", ``under_a_minute``; above, to the second;
    a half rounded up either way: ``whole_seconds``); the run's log, its forms and the publish flow's
    steps all say a duration so. ``given``: a setting a person gave, under a minute as given."""
    said = under_a_minute(seconds, given)
    if said is not None:
        return f"{said} s"
    return " ".join(f"{n} {unit}" for n, unit in zip(_parts(whole_seconds(seconds)), ("d", "h", "min", "s")) if n)


def under_a_minute(seconds: float, given: bool = False) -> str | None:
    """The figure of ``seconds`` under a minute, to the tenth of a second, a half rounded up: "0.5",
    "45", "59.9"; "under 0.1" for a span above none that rounds to nothing; None from what rounds
    to a minute on (said in minutes). ``:g`` said 59.9999999 s "60 s", where 60 s reads "1 min",
    and 0.0001 s and 12.3456789 s to six digits, more than any wait is read to.

    ``given``: ``seconds`` is a setting a person gave (a pause's timeout, a monitoring window), said
    as given (``as_given``: "0.25", "59.96"), None from a minute on: only a span measured is rounded,
    and to the tenth a timeout given as 0.25 s read "0.3 s", one of 59.96 s "1 min"."""
    if given:
        return as_given(float(seconds)) if seconds < 60 else None
    tenth = to_the_tenth(seconds)
    if tenth >= 60:
        return None
    return "under 0.1" if tenth == 0 and seconds > 0 else f"{tenth:g}"


def wait_said(seconds: float) -> str:
    """A wait or a time left as a person says it: "under a second" below one, where rounding said
    "0s" (a wait of nothing) or "1s" for 0.6 s; whole seconds and minutes above (``duration_said``),
    a half second rounded up (``whole_seconds``)."""
    return "under a second" if seconds < 1 else duration_said(whole_seconds(seconds))


def whole_seconds(seconds: float) -> int:
    """``seconds`` to the nearest whole second, a half rounded up: Python's ``round`` takes a half
    to the even whole, and a wait of 2.5 s read "2 s", less than was waited, where 1.5 s read "2 s"."""
    return math.floor(seconds + 0.5)


def to_the_tenth(seconds: float) -> float:
    """``seconds`` to the nearest tenth of a second, a half rounded up (``whole_seconds``): Python's
    ``round(seconds, 1)`` took 2.25 s to 2.2 s."""
    return whole_seconds(seconds * 10) / 10


def whole_minutes(seconds: float) -> int:
    """``seconds`` to the nearest whole minute, in seconds, a half rounded up (``whole_seconds``):
    Python's ``round`` took 150 s to "2 min", as it took 90 s."""
    return 60 * whole_seconds(seconds / 60)


def _parts(seconds: int) -> tuple[int, int, int, int]:
    """Whole ``seconds`` as days, hours, minutes and seconds."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return days, hours, minutes, secs


def duration_words(seconds: float, *, given: bool = False) -> str:
    """``seconds`` as a monitoring window's length is said, in words, to the second: "1 minute" ("1
    minutes" read as a typo), minutes up to two hours ("60 minutes", "120 minutes"), then hours
    ("23 hours 59 minutes 59 seconds"), days from a day ("7 days 2 hours"); "0 minutes" for none.
    The window's end, its pages and its log said a window of 86399.4 s "1439.99 minutes", and the
    rest of one "59.0117 minutes": fractions of a minute nobody gave, in a unit nobody counts a day in.
    Under a minute it is said to the tenth of a second ("0.4 seconds", "2.5 seconds", as ``duration_said``
    does, ``under_a_minute``): a window's last 0.3 s, rounded to the minute, was "watching the 0 minutes
    left" of it. Whole seconds round half up (Python's round took 90.5 s to "1 minute 30 seconds").
    ``given``: a setting a person gave, under a minute as given (``under_a_minute``)."""
    if seconds > 0 and (figure := under_a_minute(seconds, given)) is not None:
        return f"{figure} second{'' if figure == '1' else 's'}"
    whole = max(0, whole_seconds(seconds))
    days, hours, minutes, secs = _parts(whole)
    if whole <= 2 * 3600:
        hours, minutes = 0, minutes + 60 * hours
    said = " ".join(f"{n} {unit}{'' if n == 1 else 's'}"
                    for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second")) if n)
    return said or "0 minutes"


def as_given(value: object) -> str:
    """A number as the person typed it, for a refusal that quotes it: 150, not 150.0; 100.0001,
    not ``:g``'s six digits' 100, which read as a value in range refused."""
    if isinstance(value, float):
        # 1e+12 as typed (one digit and a power of ten, as a large round figure is typed), every
        # other whole figure in full: :g said 2592001.0 "2.592e+06", a round figure nobody gave,
        # and 2592000.0 (30 days, typed in full) the same, four digits as if rounded.
        short = f"{value:g}"
        one_digit = value.is_integer() and "." not in short and float(short) == value
        return short if one_digit else _in_full(value)
    return str(value)
