"""Retry conditions for thin tasks: try again only what a second ask could get past."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

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
        except final:
            return False
        except AnswerLost as lost:
            # A read timeout, then AccessDenied on botocore's own retry: another try is refused again
            # (and people may have been paged by the first all the same; AnswerLost says so).
            return getattr(lost, "code", "") not in denied
        except ClientError as err:
            return err.response.get("Error", {}).get("Code") not in denied
        except Exception:  # noqa: BLE001 - throttling, a dropped connection: worth another try
            return True
        return False

    return condition
