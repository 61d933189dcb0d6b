"""The order test files go to pytest-xdist's workers: the longest first, new files before them."""

import json
from types import SimpleNamespace

from tests.schedule import SECONDS, _Recorder, file_order


def test_the_longest_files_go_first_and_files_not_measured_before_them():
    files = ["tests/unit/test_a.py", "tests/integration/test_server.py", "tests/unit/test_new.py",
             "tests/flows/test_b.py"]
    seconds = {"tests/unit/test_a.py": 3.0, "tests/integration/test_server.py": 220.0, "tests/flows/test_b.py": 3.0}

    order = file_order(files, seconds)

    assert sorted(order, key=order.get) == ["tests/unit/test_new.py", "tests/integration/test_server.py",
                                            "tests/unit/test_a.py", "tests/flows/test_b.py"]


def test_a_run_records_each_files_setup_call_and_teardown_seconds_longest_first(tmp_path):
    recorder = _Recorder(str(tmp_path / "seconds.json"))
    for nodeid, duration in [("tests/unit/test_a.py::test_one", 0.25), ("tests/unit/test_a.py::test_one", 1.0),
                             ("tests/flows/test_b.py::test_two[x]", 4.0), ("tests/unit/test_a.py::test_three", 0.5)]:
        recorder.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, duration=duration))

    recorder.pytest_sessionfinish()

    written = json.loads((tmp_path / "seconds.json").read_text())
    assert list(written.items()) == [("tests/flows/test_b.py", 4.0), ("tests/unit/test_a.py", 1.8)]


def test_the_committed_seconds_name_test_files_that_exist():
    seconds = json.loads(SECONDS.read_text())

    assert seconds and all(isinstance(s, (int, float)) and s >= 0 for s in seconds.values())
    root = SECONDS.parent.parent
    assert [f for f in seconds if not (root / f).is_file()] == []
