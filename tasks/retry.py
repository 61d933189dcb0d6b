"""Retry conditions for thin tasks: try again only what a second ask could get past."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from rollway.aws.denied import NAMED_REFUSALS
from rollway.aws.errors import REFUSED_CODES, AnswerLost

# DynamoDB's answers a second ask gets again: no such table, a request it refuses, a permission
# refused, credentials it does not know. Throttling botocore's own retries outlived, a 500 and a
# dropped connection are worth another try.
FINAL_DYNAMODB = frozenset({"ResourceNotFoundException", "ValidationException", *REFUSED_CODES})


def unless(*final: type[BaseException], denied: frozenset[str] = frozenset()) -> Callable[[Any, Any, Any], bool]:
    """A ``retry_condition_fn``: retry any failure but the ``final`` exceptions (named errors
    that fail the same way every time) and AWS errors whose code is in ``denied``, also when they
    answered the last attempt of a call whose answer an earlier one lost (``AnswerLost``)."""

    def condition(_task: Any, _task_run: Any, state: Any) -> bool:
        try:
            state.result()
        except Exception as err:  # noqa: BLE001 - judged by again()
            return again(err, *final, denied=denied)
        return False

    return condition


def again(err: BaseException, *final: type[BaseException], denied: frozenset[str] = frozenset()) -> bool:
    """Whether a call that failed with ``err`` is worth another try (``unless``'s rule, for a task
    that tries again itself: a bounded read, whose retries must end within its bound)."""
    # A refusal already named as the statement granting it is final whatever the caller's ``final``.
    if isinstance(err, (*final, *NAMED_REFUSALS)):
        return False
    if isinstance(err, AnswerLost):
        # A read timeout, then AccessDenied on botocore's own retry: another try is refused again
        # (and people may have been paged by the first all the same; AnswerLost says so).
        return getattr(err, "code", "") not in denied
    if isinstance(err, ClientError):
        return err.response.get("Error", {}).get("Code") not in denied
    # Throttling, a dropped connection: worth another try.
    return isinstance(err, Exception)
