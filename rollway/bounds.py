"""A pydantic field's allowed range in words, for a refusal that names the option given.

pydantic says only the bound crossed ("Input should be less than 0.5"): a person who gave
``--alpha 1.5`` learnt neither the option's name in the message nor how low it may go.
"""

from __future__ import annotations

import annotated_types
from pydantic.fields import FieldInfo

RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"})
"""pydantic's error types for a number outside a field's bounds (or not finite)."""


def allowed_range(field: FieldInfo) -> str | None:
    """``field``'s bounds as words ("at least 1e-09 and under 0.5"), or None when it has none."""
    said = []
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            said.append(f"at least {bound.ge:g}")
        elif isinstance(bound, annotated_types.Gt):
            said.append(f"over {bound.gt:g}")
        elif isinstance(bound, annotated_types.Le):
            said.append(f"at most {bound.le:g}")
        elif isinstance(bound, annotated_types.Lt):
            said.append(f"under {bound.lt:g}")
    return " and ".join(said) or None


def as_given(value: object) -> str:
    """A number as the person typed it, for a refusal that quotes it: 150, not 150.0; 100.0001,
    not ``:g``'s six digits' 100, which read as a value in range refused."""
    if isinstance(value, float):
        return f"{value:g}" if value.is_integer() else repr(value)
    return str(value)
