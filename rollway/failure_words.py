"""How a failed or crashed run, or an error that stopped it, is said to a person.

These words end up in the rollback's reason (the hook's page, the ledger's entry, ``rollway
status``, the incident report) and in the errors a paused run stops with. An exception raised
with no message (``raise TimeoutError()``) left them ending in ": " and nothing, and a state
with no message read "(no message)": neither said what had happened. What is known is said
instead: the exception's type and where it was raised, or the Prefect state's name.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from rollway.model import validation_problems
from rollway.one_line import on_one_line, shown

T = TypeVar("T")

# Frames in these are named from here: an absolute path (a venv's, a worktree's) is long and
# says nothing more to the person reading a page.
_ROOTS = (str(Path(__file__).resolve().parent.parent) + os.sep,)
# The packages under them whose errors are rollway's own words: their line breaks are meant (a list
# of what a plan refused, a tool's last lines of output, a parameter error said as Prefect says
# one). An error raised elsewhere is a third party's (botocore's, pydantic's, the json module's),
# written for a traceback.
_OWN = frozenset({"rollway", "flows", "tasks", "blocks", "deployments"})
# What rollway's own words keep of the control characters: their lines, and a tool's tabs.
_KEPT = "\n\t"


def _raised_in(error: BaseException) -> tuple[str, int, str] | None:
    """The file (from a root of ``_ROOTS``, or site-packages, when under one), line and function
    ``error`` was raised in, from its traceback; None when it has none."""
    tb = error.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    path = code.co_filename
    for root in _ROOTS:
        path = path.removeprefix(root)
    if "site-packages" + os.sep in path:
        path = path.split("site-packages" + os.sep, 1)[1]
    return path, tb.tb_lineno, code.co_name


def where_raised(error: BaseException) -> str | None:
    """Where ``error`` was raised ("tasks/metrics.py:40 in observe"), from its traceback; None
    when it has none (an exception rebuilt from a stored result, say)."""
    raised = _raised_in(error)
    return None if raised is None else f"{raised[0]}:{raised[1]} in {raised[2]}"


def _own_words(error: BaseException) -> bool:
    """Whether rollway wrote ``error``'s text: one of its classes, or raised in its code (the
    Prefect ParameterTypeError cleanup raises with a line per problem)."""
    if type(error).__module__.partition(".")[0] in _OWN:
        return True
    raised = _raised_in(error)
    return raised is not None and raised[0].partition(os.sep)[0] in _OWN


def text_said(error: BaseException) -> str:
    """``str(error)`` as a person is shown it: rollway's own words keep their lines, with any other
    control character escaped (a tool's output quoted in them: docker's and cdk's colours); a third
    party's on one line, escaped (``on_one_line``). botocore's ParamValidationError ("Parameter
    validation failed:\\nInvalid type for parameter ...") broke a run's state message, a rollback's
    reason and the CLI's error line after "failed:", and an escape sequence coloured the terminal.

    pydantic's ValidationError is said by its problems, each field named with what was wrong
    ("RolloutSpec: stages.0.weight: weight must be at most 100, not 150"): its own text gives each
    on lines of their own, with the value given and a link to pydantic's documentation."""
    text = (f"{error.title}: {validation_problems(error, 'as a whole')}" if isinstance(error, ValidationError)
            else str(error).strip())
    return _as_shown(error, text)


# How much of a value given is quoted in a parameter error: a whole spec pasted into one field
# would otherwise be the line.
_GIVEN_CHARS = 60
_SHOULD_BE = "Input should be "
# pydantic's clause after what it expected, saying why the value did not fit ("a valid integer,
# unable to parse string as an integer"): the value given says it. Not any comma: "'low', 'high'".
_WHY_NOT = re.compile(r", (?:unable to|got|invalid|input is)\b")


def _given(value: object) -> str:
    """A value that did not fit its field's type, as the state message (shown in the UI) may show
    it: a text as logs show a URL (``shown_url``: a password or a query's token masked), a number
    or flag as it is, anything else by its type alone (a list or mapping may hold a URL)."""
    from rollway.validation import shown_url  # not at import: rollway.validation imports modules importing this one

    if isinstance(value, str):
        given = repr(shown_url(value))
    elif value is None or isinstance(value, (bool, int, float)):
        given = repr(value)
    else:
        return f"a {type(value).__name__}"
    return given if len(given) <= _GIVEN_CHARS else given[:_GIVEN_CHARS] + "…"


def parameter_problems(err: ValidationError) -> list[str]:
    """A flow's parameters refused, one line a bad field: the field, what was given and what is
    expected ("spec.stages.0.weight: 'five' given, expected a valid integer"). Prefect's own lines
    gave pydantic's message alone ("Input should be a valid integer, unable to parse string as an
    integer"): nothing of what the form held, and a second clause saying the first again.

    The value given is quoted only where its type or form did not fit. A validator's refusal says
    the value itself as it may be shown (a URL with its query masked; one with a password refused
    without quoting it), and a field the form does not have is named without its value: quoted as
    given beside them, a password or token reached the run's state message."""
    lines = []
    for e in err.errors():
        field = ".".join(map(str, e["loc"])) or "the parameters as a whole"
        if e["type"] == "missing":
            lines.append(f"{field}: nothing given, and it is required")
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if msg.startswith(_SHOULD_BE):
            expected = _WHY_NOT.split(msg.removeprefix(_SHOULD_BE))[0]
            lines.append(f"{field}: {_given(e['input'])} given, expected {expected}")
        else:
            lines.append(f"{field}: {msg}")
    return [on_one_line(line) for line in lines]


class ValidationFailed(ValueError):
    """A pydantic ValidationError that left a flow's body, said as ``text_said`` says it.

    Prefect makes a failed run's state message (one line in the UI, a rollback's reason) of the
    exception's text; a ValidationError's is not its argument, which ``made_shown`` rewrites, and
    it cannot be built again with other words. A ValueError, as a ValidationError is, for whoever
    catches one by that type (a flow that ran this one as its subflow)."""


def _as_shown(error: BaseException, text: str) -> str:
    return shown(text, keep=_KEPT) if _own_words(error) else on_one_line(text)


def made_shown(error: BaseException) -> BaseException:
    """``error`` with its text as ``text_said`` shows it, in place, when its text is its one
    argument (botocore's are): Prefect makes a failed run's state message of it (one line in the
    UI, quoted in its hook's rollback reason) and logs it with the traceback. Others (KeyError's,
    OSError's formatted text) are left as they are."""
    before = error.args
    if len(before) == 1 and isinstance(before[0], str) and str(error) == before[0]:
        if (said := _as_shown(error, before[0])) != before[0]:
            error.args = (said,)
    return error


def error_said(error: BaseException) -> str:
    """``error`` as people read it: "ValueError: bad input", or, when it has no message,
    "ValueError with no message, raised at tasks/metrics.py:40 in observe". Its text is
    ``text_said``: a third party's on one line."""
    name = type(error).__name__
    said = text_said(error)
    if said:
        return f"{name}: {said}"
    where = where_raised(error)
    return f"{name} with no message" + (f", raised at {where}" if where else "")


def tell(err: BaseException, more: str) -> None:
    """Add ``more`` to ``err``'s message (``str(err)``), keeping its type: callers catch it by
    name, and a task retries it or not by its type. A note (``add_note``) showed in a traceback
    only: a run's failure, its artifact, a rollback's page and the ledger carry the message. An
    error whose message is not its one argument (KeyError quotes it, OSError formats several)
    gets ``more`` as a note instead."""
    before = err.args
    if len(before) == 1 and isinstance(before[0], str):
        err.args = (f"{before[0]}; {more}",)
        # Judged by what it says: botocore's timeouts are OSErrors too, whose message is their one argument.
        if str(err) == err.args[0]:
            return
        err.args = before
    err.add_note(more)


def end_said(message: str | None, error: BaseException | None, state: str) -> str:
    """How a run ended, in words that are never empty: the state's ``message`` when it says
    something; else what its ``error`` (the exception it ended with, when known) is and where it
    was raised; else Prefect's words without the empty end they had ("Flow run encountered an
    exception: ValueError: " for an exception with no message); else the ``state``'s name
    ("Failed"), which is all that is known of a state set with no message and no exception.

    On one line, escaped: it is a rollback's reason (the page's Why, the ledger's entry), and the
    state's message quotes the exception's text, a third party's lines and escapes and all."""
    said = on_one_line(message or "")
    if said and not said.endswith(":"):
        return said
    if error is not None:
        return on_one_line(error_said(error))
    if said:
        return f"{said.rstrip(':').rstrip()}, with no message"
    return f"its Prefect state {state or 'unnamed'} came with no message and no exception"


def writable(text: str) -> str:
    """``text`` as UTF-8 can hold it: a lone surrogate, which is how Python decodes a byte that is
    not UTF-8 (surrogateescape: a file name, an error AWS echoed a name in), written as its escape
    (``\\udcff``), which says which byte it was."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _writable_value(value: object) -> object:
    """``value`` made ``writable`` when it is a string, or a plain list or tuple holding strings;
    ``value`` itself when that changes nothing."""
    if isinstance(value, str):
        said = writable(value)
        return value if said == value else said
    if type(value) in (tuple, list):
        items = [_writable_value(item) if isinstance(item, str) else item for item in value]  # type: ignore[attr-defined]
        return value if all(new is old for new, old in zip(items, value)) else type(value)(items)  # type: ignore[call-overload]
    return value


def made_writable(error: BaseException) -> BaseException:
    """``error`` with its text and its fields (strings, and lists or tuples of them) ``writable``,
    in place: the same exception, of the same type, for whoever judges it by its type.

    Prefect records a failed run's state with the exception's text as its message, as UTF-8: one
    holding a lone surrogate could not be recorded, so the run raised UnicodeEncodeError instead
    of ending Failed, and its on_failure hook (the rollback) never ran. Its fields go where its
    text goes (a rollback's reason and failed steps, a flow run's parameters)."""
    if (args := _writable_value(error.args)) is not error.args:
        error.args = args  # type: ignore[assignment]
    for name, value in list(vars(error).items()):
        if (changed := _writable_value(value)) is not value:
            setattr(error, name, changed)
    return error


def failures_writable(run: Callable[..., T]) -> Callable[..., T]:
    """``run`` with whatever it raises ``made_writable`` and ``made_shown`` as it leaves (a pydantic
    ValidationError as ``ValidationFailed``, on one line): for a flow's
    whole body, under its ``@flow``, every flow's once. Escaped only inside a rollout's own run, a failure raised
    before it (the credentials STS refused, the ledger read a flow makes first) or in a flow with no
    rollout (the infrastructure's, a report's) left with its lone surrogate: Prefect could not
    record the Failed state and the run crashed: a served one's on_crashed hook had no exception to
    tell it the run was refused before any write. Applied again (a subflow's failure raised in its
    parent), it changes nothing: the escape is plain text."""

    @functools.wraps(run)
    def leaving(*args: object, **kwargs: object) -> T:
        try:
            return run(*args, **kwargs)
        except ValidationError as err:
            raise ValidationFailed(writable(text_said(err))) from err
        except BaseException as err:
            made_shown(made_writable(err))
            raise

    # Its signature with the annotations evaluated where ``run`` was written: Prefect validates a
    # flow's parameters by the signature, resolving names written as text (``from __future__
    # import annotations``) in the called function's module, which is this one.
    try:
        leaving.__signature__ = inspect.signature(run, eval_str=True)  # type: ignore[attr-defined]
    except NameError:  # a name imported for type checkers only: no flow's parameter, which Prefect must build
        leaving.__signature__ = inspect.signature(run)  # type: ignore[attr-defined]
    return leaving
