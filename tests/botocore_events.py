"""A botocore event handler on one operation of a client, for a ``with`` block only.

The embedded AWS's clients are shared between tests, so a handler must never outlive its test.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator


@contextmanager
def on_operation(client: Any, event: str, handler: Callable[..., Any], *, operation: str | None) -> Iterator[None]:
    """``handler`` on ``event`` ("before-send", "after-call", ...) of ``client``'s ``operation``
    (None: of every operation)."""
    name = f"{event}.{client.meta.service_model.service_id.hyphenize()}" + (f".{operation}" if operation else "")
    client.meta.events.register(name, handler)
    try:
        yield
    finally:
        client.meta.events.unregister(name, handler)
