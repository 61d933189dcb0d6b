"""The flow tests' Prefect harness (tests/flows/conftest.py): what a pytest run says when it does
not start, and that it answers when it does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_harness_answers_its_health_check(harness_client):
    assert harness_client.api_healthcheck() is None


def test_the_harness_is_the_api_the_flow_tests_talk_to(prefect_harness):
    from prefect.settings import PREFECT_API_URL

    assert PREFECT_API_URL.value() == prefect_harness


def test_a_harness_that_does_not_start_errors_one_test_in_one_line_and_skips_the_others(tmp_path, prefect_database):
    """On a loaded machine the harness's server did not answer within pytest's 300 s: pytest
    reported that test's timeout again, traceback and all, for each of the worker's 1,220 flow
    tests. The two tests above, in a pytest run whose harness may take no time to start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PREFECT_API_URL"))}
    env.update(ROLLWAY_TESTS_HARNESS_START_SECONDS="0", ROLLWAY_TESTS_PREFECT_TEMPLATE=str(prefect_database))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-rA",
         f"--basetemp={tmp_path / 'run'}", "tests/flows/test_harness_start.py", "-k", "answers or talk_to"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    counts = out.splitlines()[-1]
    assert "1 skipped" in counts and "1 error" in counts and "passed" not in counts, out
    first = "tests/flows/test_harness_start.py::test_the_harness_answers_its_health_check"
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if f"ERROR at setup of {first.split('::')[1]} " in line)
    error = lines[header + 1:next(i for i in range(header + 1, len(lines)) if " Captured " in lines[i])]
    said = "the Prefect test harness's server did not answer its health check within 0 s of its start (waited "
    assert len(error) == 1 and error[0].startswith(said), out
    assert (f"the Prefect test harness did not start in this pytest worker: see the error at setup of {first}"
            in next(line for line in out.splitlines() if line.startswith("SKIPPED"))), out
    assert "Traceback" not in out and "prefect_test_harness" not in out, out
