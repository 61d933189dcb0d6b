"""Refusing a key a model does not know, naming the field it was probably meant as.

A key no model knows is refused, not dropped (``extra="forbid"``); pydantic's own words for it,
"Extra inputs are not permitted", said neither which key was meant nor which keys there are.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError


class KnownKeys(BaseModel):
    """Refuses keys the model does not know, naming each and the field it was probably meant as."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler):
        def rebuilt(errors: list[dict]) -> list[dict] | None:
            if not any(e["type"] == "extra_forbidden" and len(e["loc"]) == 1 for e in errors):
                return None
            return [unknown_key(e, cls.model_fields) if len(e["loc"]) == 1 else _kept(e) for e in errors]
        return validated_rebuilding(handler, data, rebuilt)


def validated_rebuilding(handler, data: Any, rebuild) -> Any:
    """``handler(data)``, its validation errors replaced by ``rebuild(errors)`` unless that is None.

    For a wrap validator that rewords errors: the errors must be rebuilt whole, since pydantic
    raises them together."""
    try:
        return handler(data)
    except ValidationError as err:
        errors = rebuild(err.errors())
        if errors is None:
            raise
        raise ValidationError.from_exception_data(err.title, errors) from None


def _kept(error: dict) -> dict:
    """A nested model's error as it said it: rebuilt from its type alone, an unknown key's would
    lose the field it was probably meant as whenever the outer model had an unknown key too, and a
    model's own refusal under a type of pydantic's (a spec's too-long bake) could not be rebuilt."""
    return {**error, "type": PydanticCustomError(error["type"], error["msg"])}


def unknown_key(error: dict, fields) -> dict:
    """``error`` for a key the model does not know, with the field it was probably meant as."""
    if error["type"] != "extra_forbidden":
        return error
    close = difflib.get_close_matches(str(error["loc"][0]), list(fields), n=1, cutoff=0.6)
    if close:
        message, context = "Extra inputs are not permitted: unknown key (did you mean '{field}'?)", {"field": close[0]}
    else:
        message, context = "Extra inputs are not permitted: unknown key (the keys are {fields})", {
            "fields": ", ".join(fields)}
    return {**error, "type": PydanticCustomError("extra_forbidden", message, context)}
