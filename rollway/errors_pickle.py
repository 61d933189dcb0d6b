"""Exceptions that survive pickling, whatever their constructor takes.

Python pickles an exception as ``type(e)(*e.args)`` plus its ``__dict__``. One whose
``__init__`` takes other arguments than the message it hands ``super().__init__`` (keyword-only
fields, a result it describes) cannot be rebuilt that way: unpickling raises TypeError, or calls
``__init__`` with the message in the place of another argument. Prefect pickles a failed run's
exception when its result is persisted, and a hook or the UI in another process reading it back
would get an unknown failure instead of the named one with its fields.
"""

from __future__ import annotations

import copyreg
from typing import Any


class PicklableError:
    """Mixin that pickles an exception as what it holds rather than as a call of its constructor.

    Put it first in the bases of an exception class that defines ``__init__`` (subclasses inherit
    it). Unpickling makes a blank instance of the class (``BaseException.__new__``; ``__init__``
    does not run) and restores its ``args`` (hence its ``str()``) and its ``__dict__`` (every field
    ``__init__`` set, and any notes). Nothing is recomputed, so the arguments the constructor used
    and did not keep need not be picklable, and an argument changed since changes nothing. As in
    Python's own pickling of exceptions, ``__cause__``, ``__context__`` and ``__traceback__`` are
    not kept.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException.__setstate__ sets each item as an attribute: "args" lands in its slot.
        return copyreg.__newobj__, (type(self),), {**self.__dict__, "args": self.args}  # type: ignore[attr-defined]
