"""rollway's own warnings and errors, as a ``rollway`` command prints them on standard error.

rollway/ logs through Python's ``logging`` (loggers under "rollway"). In a command nothing had
configured logging: a warning came out as a bare line naming neither its level nor where it came
from, and once the ``flows`` package was imported (its run-log handler on the "rollway" logger)
not at all. Each runs the command in a process of its own, as a person's shell does: pytest's own
handlers would otherwise take the records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# The judge command's body, replaced by one whose library calls log what rollway's modules log (a
# warning, an error carrying an exception, an info line), and whose result goes to standard output
# as ``judge --replay``'s JSON summary does.
COMMAND = """
import logging
import rollway.judge.replay as replay

def replay_main(path, *, out, err, **options):
    logging.getLogger("rollway.aws.ecs").warning("deregistered %s: a second copy of a registration", "td/web:7")
    try:
        raise RuntimeError("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG")
    except RuntimeError:
        logging.getLogger("rollway.aws.ecs").error("could not deregister %s", "td/web:8", exc_info=True)
    logging.getLogger("rollway.flags").info("feature flag %r changed while being set; reading it again", "f")
    out.write(json.dumps({"verdict": "promote"}) + "\\n")
    return 0

replay.replay_main = replay_main
from rollway.cli import main
before = [(logger.level, logger.propagate, list(logger.handlers))
          for logger in (logging.getLogger(), logging.getLogger("rollway"))]
for _ in range(TIMES):
    try:
        main()
    except SystemExit as stop:
        assert stop.code == 0, stop.code
# Afterwards the process's logging is as it was: its own handlers keep their records and levels.
assert [(logger.level, logger.propagate, list(logger.handlers))
        for logger in (logging.getLogger(), logging.getLogger("rollway"))] == before
"""

SHOWN = ["rollway.aws.ecs: warning: deregistered td/web:7: a second copy of a registration",
         "rollway.aws.ecs: error: could not deregister td/web:8"]


def run(prelude: str, times: int = 1, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = f"import json\n{prelude}\n" + COMMAND.replace("TIMES", str(times))
    return subprocess.run([sys.executable, "-c", script, "judge", "--replay", "m.jsonl"], capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("prelude", [
    "",  # `rollway judge --replay`: nothing imports Prefect
    "import flows",  # `rollway flags ...`, `status`: the run-log handler is on the "rollway" logger
    "import prefect.main",  # a command that runs a flow in-process: Prefect's console handler is on the root logger
], ids=["bare", "flows imported", "prefect logging"])
def test_a_warning_a_command_logs_is_one_line_on_stderr_naming_its_level_and_logger(prelude):
    done = run(prelude)

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == SHOWN, done.stderr
    # One line per record: no traceback, and no exception's arguments (which may carry credentials).
    assert "wJalrXUtnFEMI" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [{"verdict": "promote"}]


def test_main_run_twice_in_one_process_prints_each_record_once():
    done = run("import flows", times=2)

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == SHOWN * 2, done.stderr


@pytest.mark.parametrize(("prelude", "env"), [
    # A user's own logging configuration, quieter than warnings for the libraries it uses.
    ("import logging; logging.basicConfig(level=logging.ERROR)", {}),
    # Prefect's logging settings: its root logger at ERROR.
    ("import prefect.main", {"PREFECT_LOGGING_ROOT_LEVEL": "ERROR"}),
], ids=["logging config", "prefect root level"])
def test_a_warning_shows_when_the_root_logger_is_set_above_warnings(prelude, env):
    done = run(prelude, env=env)

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == SHOWN, done.stderr
