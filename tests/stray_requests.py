"""Threads a test leaves behind still calling the embedded AWS.

moto's server keeps its state per process and finds each request's access key in its IAM
backend, so one request landing between the next test's reset and its restore of a provisioned
account (tests/moto_state.py) makes the restore find IAM holding state: an error in a test that
did nothing wrong, at random. A thread a test gives up on (a bounded read left behind, a
simulator outliving its stop's join) is such a request's source. Each botocore request to a
local endpoint records the thread that sends it; after each test, the threads it started that
sent one and are still alive are waited for, and a test whose threads outlive that wait fails,
naming them, rather than the next test.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any
from urllib.parse import urlsplit

import botocore.endpoint

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})

_senders: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()
_senders_lock = threading.Lock()


def record_local_senders() -> None:
    """Have every botocore request to a local endpoint record its thread (once per process)."""
    send = botocore.endpoint.Endpoint._send
    if getattr(send, "records_senders", False):
        return

    def recording_send(self: Any, request: Any) -> Any:
        if urlsplit(request.url).hostname in LOCAL_HOSTS:
            with _senders_lock:
                _senders.add(threading.current_thread())
        return send(self, request)

    recording_send.records_senders = True  # type: ignore[attr-defined]
    botocore.endpoint.Endpoint._send = recording_send  # type: ignore[method-assign]


def senders_started_since(before: set[threading.Thread]) -> list[threading.Thread]:
    """Live threads, other than this one and those in ``before``, that sent a local AWS request."""
    with _senders_lock:
        senders = list(_senders)
    here = threading.current_thread()
    return [t for t in senders if t is not here and t not in before and t.is_alive()]


def wait_for(threads: list[threading.Thread], seconds: float) -> list[threading.Thread]:
    """Join ``threads`` for at most ``seconds`` in all; the ones still alive after that."""
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threads if t.is_alive()]
