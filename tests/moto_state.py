"""The embedded AWS's state kept after a provision and put back for the next test.

Provisioning Webordinary's topology is about 70 API calls (0.2-0.3 s of CPU between the client
and moto's server); hundreds of tests each start from a freshly provisioned account. The first
provision of a session goes through the API as every run's does; what moto then holds (its
backends, in this process, since the embedded server is a thread of it) is pickled, and each
later test gets an unpickled copy after the usual reset: the same account, for about 2 ms.

Locks are not picklable; each copy gets new ones (nothing holds a lock between tests).
"""

from __future__ import annotations

import io
import pickle
import threading
from typing import Any

from moto.core.base_backend import BackendDict, backend_lock

_LOCK = type(threading.Lock())
_RLOCK = type(threading.RLock())


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCK):
            return threading.Lock, ()
        if isinstance(obj, _RLOCK):
            return threading.RLock, ()
        return NotImplemented


class MotoState:
    """What moto's backends hold now, to be put back by ``restore`` after a reset."""

    def __init__(self) -> None:
        with backend_lock:
            self._dicts = list(BackendDict._instances)  # the services that hold anything
            buffer = io.BytesIO()
            # One pickle for every service, so that objects two services share stay shared.
            _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump([dict(d) for d in self._dicts])
        self._pickled = buffer.getvalue()

    def reset_and_restore(self) -> None:
        """Reset moto (as its API's reset does) and put a copy of the saved state back, as one step.

        moto's server looks each request's access key up in its IAM backend, taking moto's backend
        lock to make one. A request between a reset and a restore (a thread no test's guard can
        name: one started before the test, or a process the test ran) left IAM holding state, and
        the restore refused, failing a test that did nothing wrong. Under the lock, held across
        both, such a request waits and then finds the restored account.
        """
        from moto.moto_api._internal.models import moto_api_backend

        accounts = pickle.loads(self._pickled)
        with backend_lock:
            moto_api_backend.reset()
            self._put_back(accounts)

    def restore(self) -> None:
        """Put a copy of the saved state into moto's backends, which a reset has just emptied."""
        self._put_back(pickle.loads(self._pickled))

    def _put_back(self, accounts: list[dict[str, Any]]) -> None:
        with backend_lock:
            for backend_dict, saved in zip(self._dicts, accounts):
                if backend_dict:
                    raise RuntimeError(f"moto's {backend_dict.service_name} holds state: reset the embedded AWS first")
                backend_dict.update(saved)
                if backend_dict not in BackendDict._instances:
                    BackendDict._instances.append(backend_dict)
