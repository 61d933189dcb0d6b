"""An HTTP API's error as a run keeps it: what it said, its status, what was asked; never the request.

httpx's errors hold the request they were raised for, headers and all: the Prefect client's
carries ``Authorization: Bearer <API key>`` on Prefect Cloud. A run that failed with one had it
pickled into Prefect's result storage (when results are persisted), key included, for whoever
reads that storage. ``ApiError.of`` keeps what a person and the code need of it instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from rollway.errors_pickle import PicklableError
from rollway.url_passwords import passwords_hidden


class ApiError(PicklableError, Exception):
    """An HTTP API refused a request, or did not answer it; its ``str`` is the httpx error's, the URL
    it quotes without its query and its password.

    Attributes:
        status_code: what the API answered (None: no answer, the connection failed or timed out).
        method: the request's method ("" when httpx did not say).
        url: the request's URL, without its query (a presigned URL carries its signature there) or its
            user and password (a Prefect API behind basic auth is reached as ``https://<user>:<password>@host``).
    """

    def __init__(self, message: str, *, status_code: int | None, method: str, url: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.method = method
        self.url = url

    @classmethod
    def of(cls, err: httpx.HTTPError) -> "ApiError":
        """``err`` without its request or response."""
        message = str(err)
        try:
            request = err.request
        except RuntimeError:  # httpx raises it for an error made without a request
            method, url = "", ""
        else:
            method, url = request.method, str(request.url.copy_with(query=None, userinfo=b""))
            if request.url.query:
                # httpx's words quote the URL asked, query and all (a token sent as a parameter).
                message = message.replace(str(request.url), str(request.url.copy_with(query=None)))
        status = err.response.status_code if isinstance(err, httpx.HTTPStatusError) else None
        # ...and password and all.
        return cls(passwords_hidden(message), status_code=status, method=method, url=url)


def as_cause(err: BaseException) -> BaseException:
    """``err`` as an error raised from it keeps it: an httpx error as ``ApiError.of`` says it, any
    other as it is. Prefect logs a failed run's error with its causes, and httpx's words quote the
    URL asked: a PREFECT_API_URL behind basic auth, its password with it."""
    return ApiError.of(err) if isinstance(err, httpx.HTTPError) else err


@contextmanager
def request_left_out() -> Iterator[None]:
    """Raises an httpx error from inside as ``ApiError``: one that escaped failed the run with the
    Prefect client's request, its API key pickled into the run's persisted result."""
    try:
        yield
    except httpx.HTTPError as err:
        # Not chained: Prefect logs a failed run's error with its causes, httpx's words among them,
        # which quote the URL asked (PREFECT_API_URL's password with it); ApiError says them without.
        raise ApiError.of(err) from None
