"""A flow's parameter errors, a line a field: the field, what was given, what is expected."""

from __future__ import annotations

import pytest
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from rollway.failure_words import parameter_problems


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight: int
    name: str = "x"
    seconds: float = 1.0
    level: Literal["low", "medium", "high"] = "low"

    @field_validator("seconds")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("seconds must be over 0")
        return value


@pytest.mark.parametrize("given,said", [
    ({"weight": "five"}, ["weight: 'five' given, expected a valid integer"]),
    ({"weight": 1.5}, ["weight: 1.5 given, expected a valid integer"]),
    ({"weight": 5, "level": "max"}, ["level: 'max' given, expected 'low', 'medium' or 'high'"]),
    ({}, ["weight: nothing given, and it is required"]),
    ({"weight": "x" * 200}, [f"weight: {'x' * 200!r:.60}… given, expected a valid integer"]),
    # A list or mapping may hold a URL with a password: said by its type.
    ({"weight": 5, "name": ["https://ops:pw@svc.example"]}, ["name: a list given, expected a valid string"]),
    ({"weight": "https://svc.example/?token=t0k"}, ["weight: 'https://svc.example/?token=****' given, expected a valid integer"]),
    # The validator says what it can of the value; a field the form lacks is named without its value.
    ({"weight": 5, "seconds": -1}, ["seconds: seconds must be over 0"]),
    ({"weight": 5, "colour": "https://ops:pw@svc.example"}, ["colour: Extra inputs are not permitted"]),
])
def test_each_bad_field_is_one_line_naming_what_was_given_and_what_is_expected(given, said):
    with pytest.raises(ValidationError) as refused:
        _Form(**given)
    assert parameter_problems(refused.value) == said
