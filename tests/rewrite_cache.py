"""pytest's assertion rewriting of each test module done once per test run, not once per xdist worker.

Every xdist worker imports every test module to collect the whole suite, and pytest rewrites a
module's asserts as it imports it: parse, rewrite, compile, about 9 s of CPU per worker on a quiet
machine for the suite's modules (more under load), four times in `make test`. pytest keeps a
rewritten module in the module's __pycache__, but not where bytecode is not written
(PYTHONDONTWRITEBYTECODE, as in CI's clean clones), and the workers collect at the same moment,
so none found another's. Here the first worker to reach a module rewrites it, under a lock, and
keeps the code in the run's shared temporary directory; the others wait for it and load the same
code. The tests run exactly what pytest's rewriting made of them.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import marshal
import os
import sys
from pathlib import Path
from typing import Any, Callable


def share_rewrites(directory: Path) -> None:
    """pytest's rewriting of test modules kept in ``directory`` for every worker of this run.

    A pytest whose rewriting has moved on (no ``_rewrite_test``) rewrites as it does: this is a
    speed-up of the suite, not something a test relies on."""
    try:
        from _pytest.assertion import rewrite

        rewrite_one: Callable[[Path, Any], tuple[bytes, Any]] = rewrite._rewrite_test
    except (ImportError, AttributeError):
        return
    directory.mkdir(parents=True, exist_ok=True)

    def rewritten(fn: Path, config: Any) -> tuple[bytes, Any]:
        source_hash = importlib.util.source_hash(fn.read_bytes())
        # The module's path and source: a file changed during the run is rewritten again.
        key = hashlib.sha256(os.fsencode(fn) + b"\0" + source_hash + sys.version.encode()).hexdigest()
        kept = directory / f"{key}.code"
        with open(directory / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker rewriting it: wait for its code
            if kept.exists():
                return source_hash, marshal.loads(kept.read_bytes())
            made_hash, code = rewrite_one(fn, config)
            building = directory / f"{key}.{os.getpid()}"
            building.write_bytes(marshal.dumps(code))
            building.rename(kept)  # whole: a worker never loads code half written
            return made_hash, code

    rewrite._rewrite_test = rewritten
