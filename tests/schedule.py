"""The order pytest-xdist hands test files to its workers: the longest first.

`make test` runs `--dist loadfile --no-loadscope-reorder`: each file goes whole to one worker, in
collection order, the next file to whichever worker is free. Collected alphabetically (or as
xdist reorders them by default, by number of tests), the few long files with few tests (a real
Prefect server, a demo process, the real cdk) came last, and one worker ran them alone for minutes
while the others sat idle. Longest first, the many short files fill the workers evenly at the end.

The seconds come from ``tests/file_seconds.json``, one figure per file, written by
`make file-seconds` (``--record-file-seconds``) on this suite's own run. A file it does not list
(a new one) goes first: a long one then cannot end up last, and a short one costs nothing there.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

SECONDS = Path(__file__).with_name("file_seconds.json")


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--record-file-seconds", metavar="PATH", default=None,
                     help="write each test file's seconds (setup, call and teardown summed) to PATH as JSON")


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def file_order(files: list[str], seconds: dict[str, float]) -> dict[str, int]:
    """Each file's place: unlisted files first, then the longest; ties keep collection order."""
    unknown = float("inf")
    ranked = sorted(dict.fromkeys(files), key=lambda f: -seconds.get(f, unknown))
    return {f: place for place, f in enumerate(ranked)}


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    seconds = json.loads(SECONDS.read_text()) if SECONDS.exists() else {}
    order = file_order([_file(item.nodeid) for item in items], seconds)
    items.sort(key=lambda item: order[_file(item.nodeid)])  # stable: a file's tests keep their order


class _Recorder:
    """Sums each file's test durations as the reports reach the controller (or the one process)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.seconds[_file(report.nodeid)] += report.duration

    def pytest_sessionfinish(self) -> None:
        ranked = dict(sorted(((f, round(s, 1)) for f, s in self.seconds.items()), key=lambda kv: -kv[1]))
        self.path.write_text(json.dumps(ranked, indent=1) + "\n")


def pytest_configure(config: Any) -> None:
    path = config.getoption("--record-file-seconds")
    # On the controller only: a worker's reports reach it, and a worker writing too would race it.
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Recorder(path), "rollway-file-seconds")
