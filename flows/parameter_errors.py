"""A flow run's parameters that Prefect's own validation refused (a wrong type in the UI's form,
before the flow's body runs), said a line a bad field: the field, what was given, what is expected.

Prefect words them in its ``ParameterTypeError.from_validation_error``, one line a field in
pydantic's message alone ("Input should be a valid integer, unable to parse string as an
integer"), and makes the run's state message of it: what the UI shows, and what the rollback
hook reads. Its heading stays Prefect's, and the engine's prefix before it
(``flows.hooks.PARAMETERS_FAILED``). Installed when ``flows.env``, which every flow imports, is.
"""

from __future__ import annotations

from prefect.exceptions import ParameterTypeError
from pydantic import ValidationError

from rollway.failure_words import parameter_problems

HEADING = "Flow run received invalid parameters:"
"""Prefect's heading of a ParameterTypeError's lines, each after "\\n - "."""


def _from_validation_error(cls: type[ParameterTypeError], exc: ValidationError) -> ParameterTypeError:
    return cls(HEADING + "\n - " + "\n - ".join(parameter_problems(exc)))


# Why a process-wide patch of Prefect's classmethod: the run's state message (what the UI shows)
# is the engine's prefix and this exception's text, made before any rollway code runs; the hook
# can reword its own log, not that message. Overriding Flow.validate_parameters, or validating in
# the body with Prefect's off, would replace far more. If a later Prefect stops calling this
# classmethod, its own wording comes back (the hook reads both): tests/flows/test_refusals.py's
# test of the wording, on the real engine, is what fails then.
def say_parameter_errors() -> None:
    """Have Prefect word the parameter errors of every flow run in this process as
    ``parameter_problems`` does."""
    ParameterTypeError.from_validation_error = classmethod(_from_validation_error)
