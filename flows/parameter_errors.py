"""A flow run's parameters that Prefect's own validation refused (a wrong type in the UI's form,
before the flow's body runs), said a line a bad field: the field, what was given, what is expected.

Prefect words them in its ``ParameterTypeError.from_validation_error``, one line a field in
pydantic's message alone ("Input should be a valid integer, unable to parse string as an
integer"), and makes the run's state message of it: what the UI shows, and what the rollback
hook reads. Its heading stays Prefect's, and the engine's prefix before it
(``flows.hooks.PARAMETERS_FAILED``). Installed when ``flows.env``, which every flow imports, is: in
a served deployment's process and each run's, before any run's parameters are validated.
"""

from __future__ import annotations

import logging
import re

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
    ``parameter_problems`` does, and print none of the values given on the process's console."""
    ParameterTypeError.from_validation_error = classmethod(_from_validation_error)
    _parameters_unsaid_on_console()


# Prefect's Flow.validate_parameters logs, on its "prefect.flows" logger, this, the flow's name
# quoted, then ": ", pydantic's errors and "\nParameters: " with every value as given.
_PREFECT_SAYS = "Parameter validation failed for flow "
_FLOW_NAME = re.compile(r"'[^']*'|\"[^\"]*\"")
_SAID_INSTEAD = (": the run's state names each refused field (the values given are not printed here: "
                 "they may hold a password or token)")


class _ParametersUnsaid(logging.Filter):
    """Prefect's line about a run's refused parameters, without the values given.

    That line reached the console of the process running the run (a served deployment's, a
    worker's), not the run's log: pydantic's errors quote each input, and the parameters follow
    whole, so a health_url's password or a token in a query was printed there in clear, though
    the run's state message (``parameter_problems``) hides it. What was wrong is in that state
    message; the console keeps the line's first words, naming the flow."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(_PREFECT_SAYS):
            named = _FLOW_NAME.match(record.msg, len(_PREFECT_SAYS))
            record.msg, record.args = _PREFECT_SAYS + (named.group(0) if named else "?") + _SAID_INSTEAD, ()
        return True


def _parameters_unsaid_on_console() -> None:
    """The filter on Prefect's "prefect.flows" logger, once (a reloaded module's replaces it: by
    name, its class is another class). Prefect's logging setup keeps a logger's filters."""
    logger = logging.getLogger("prefect.flows")
    for old in [f for f in logger.filters if type(f).__name__ == _ParametersUnsaid.__name__]:
        logger.removeFilter(old)
    logger.addFilter(_ParametersUnsaid())
