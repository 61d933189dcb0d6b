"""The HTTP servers the tests start on 127.0.0.1 (a proxy in front of the embedded AWS or the
Prefect API, a service of a test's own)."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class QuietHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that says nothing of a client that hung up before its answer was
    written: a client giving up on a slow answer (its read bound, on a loaded machine) is what
    the tests expect of it, and http.server printed "Exception occurred during processing of
    request" and a BrokenPipeError's traceback into the suite's output for it. Any other error
    of a handler is still printed."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # broken pipe, reset, aborted
            return
        super().handle_error(request, client_address)
