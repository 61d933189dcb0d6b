"""``rollway judge --replay FILE --spec SPEC``: the policy a user's flows run, read for the replay.

SPEC is the RolloutSpec JSON the flows take as their ``spec`` parameter, validated by that same
model (a spec the flows would refuse is refused here, naming the field), so the replay judges by
its ``analysis`` and ``guardrails`` rather than by options retyped from it. Its stages are the ones
``--stage`` may name (the replay judges one stage); the rest (approvals, flags) is checked, not used.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import ValidationError

from rollway.bounds import as_given
from rollway.judge.strict_json import DuplicateKey, file_named, short_value, unique_keys
from rollway.model import validation_problems
from rollway.spec import RolloutSpec


class SpecFileError(ValueError):
    """A spec file that cannot be used; the message names the file (and the field)."""


def read_spec(path: str) -> RolloutSpec:
    """The RolloutSpec in ``path``.

    Raises:
        SpecFileError: the file cannot be read, is not JSON (a key written twice included), is
            a spec the flows would refuse, or names a judge other than the sequential one.
    """
    where = f"--spec {file_named(path)}"
    if path == "-":
        # Standard input is the replay file's, or --history's: a spec is a file the flows were given.
        raise SpecFileError(f"{where}: give the spec as a file (standard input is for the replay file)")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise SpecFileError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")  # an editor's byte order mark is not part of the JSON
    except UnicodeDecodeError as exc:
        raise SpecFileError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start + 1})") from None
    try:
        raw: Any = json.loads(text, object_pairs_hook=unique_keys)
    except DuplicateKey as exc:
        # json.loads keeps the last of two equal keys: which alpha was meant cannot be told.
        raise SpecFileError(f"{where}: key {short_value(exc.key)} appears twice in one object") from None
    except json.JSONDecodeError as exc:
        raise SpecFileError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError):
        raise SpecFileError(f"{where}: not valid JSON (an integer with more than "
                            f"{sys.get_int_max_str_digits()} digits, or nested too deeply)") from None
    try:
        spec = RolloutSpec.model_validate(raw)
    except ValidationError as err:
        raise SpecFileError(f"{where}: {validation_problems(err, 'spec')}") from None
    if spec.analysis.judge != "sequential":
        raise SpecFileError(f"{where}: analysis.judge is {spec.analysis.judge}: the replay runs the sequential judge "
                            "only (drop analysis.judge, or set it to sequential, to replay that one)")
    return spec


def shown_setting(value: object) -> str:
    """A setting as a note prints it: 1e-06, 100, errors,slow; a number with every digit given
    (``:g`` said 1.2345678e-05 as 1.23457e-05)."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return as_given(value)
