"""`rollway demo` as a user runs it, in a process of its own with a Prefect home of its own (a
fresh ephemeral API each): what it does with PREFECT_API_URL and with a slot a killed demo left.

Moved out of tests/flows/test_demo_scenarios.py: the test starts a whole demo process (a new
database migrated, a scenario run), and as a file of its own it runs beside the others.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.prefect_db import seed


def _rollway_demo_b(home, *, env: dict[str, str], before: str = "") -> subprocess.CompletedProcess:
    """`rollway demo` with scenario B alone (the shortest), in a process of its own on Prefect home
    ``home``, as a user runs it; ``before`` runs first in that process."""
    code = (
        "import sys\n"
        f"{before}"
        "import rollway.cli.demo as demo\n"
        "demo.SCENARIOS = tuple(s for s in demo.SCENARIOS if s.tag == '2.1.0')\n"
        "from rollway.cli import main\n"
        "sys.argv = ['rollway', 'demo']\n"
        "main()\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    # The first start migrates a new database: more than the ephemeral API's 20 s on a busy machine,
    # about 60 s on two cores under a load of 15, and over 90 s with a second demo beside it. Half
    # the process's 600 s: the demo then still has the rest for its scenario.
    environment.update(env, PREFECT_HOME=str(home), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1/1 scenarios as expected" in done.stdout
    return done


def test_a_demo_after_up_and_after_a_killed_demo_runs_on_its_own_api_and_frees_the_slot(tmp_path, prefect_database):
    """Two things a demo meets in a shell where people used rollway before; one demo process (a
    whole one costs half a minute) is run for both, and each is said in its own line.

    `rollway up` tells people to export PREFECT_API_URL; a demo run later in that shell, once
    `up` was stopped, died with an httpx "Connection refused" traceback before its first scenario.
    The demo's flows run on its own ephemeral API, as the README says, and it says so.

    A demo killed outright during a scenario (SIGKILL, the OOM killer) left the canary flow's
    Prefect concurrency slot taken in the Prefect home's database: the ephemeral API that held its
    lease died with it, and none frees a lease it never held. Every later demo in that home was
    refused ("another canary run ... is under way ... a run that died frees it within 5 min")
    for good. With no `rollway up` on the home, the demo frees such a slot and runs."""
    # Made on the home's own database, as the killed demo's ephemeral API made it.
    killed_run_left = (
        "from prefect import get_client\n"
        "from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate\n"
        "from prefect.settings import PREFECT_API_URL, temporary_settings\n"
        "from flows.canary import canary_slot_name\n"
        "from rollway.targets import Targets\n"
        "with temporary_settings(restore_defaults={PREFECT_API_URL}), get_client(sync_client=True) as client:\n"
        "    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(\n"
        "        name=canary_slot_name(Targets()), limit=1, active_slots=1))\n"
    )
    # A home demos ran in before: its database migrated already (tests/prefect_db.py), as the
    # killed demo left it.
    home = seed(tmp_path / "home", prefect_database)
    done = _rollway_demo_b(home, env={"PREFECT_API_URL": "http://127.0.0.1:9/api"}, before=killed_run_left)
    assert "demo's own ephemeral API, not PREFECT_API_URL (http://127.0.0.1:9/api)" in done.stdout
    assert "freed the Prefect concurrency slot 'rollway-canary:" in done.stdout, done.stdout[-3000:]
    # Prefect's line for every task that completed was two thirds of what the demo wrote (152 of 224
    # lines for the three scenarios), between the lines of the flow that say what happened. The
    # flow's own lines stay, as does a task that did not complete: the warning that names why the
    # 5 % stage rolls back. Its words are the verdict's that came first, which the machine's load
    # decides: the guardrail's ("rolling back: 5%: canary error rate 4.76% ... over the 1%
    # guardrail"), the judge's when both failed at the look ("rolling back: 5%: canary errors
    # 314/5,947 ... vs baseline"), or the judge's while an inconclusive stage waited for an answer
    # ("paused at 5%: the canary failed the judge ...: 5%: canary errors ...").
    said_why = [line for line in done.stderr.splitlines()
                if "| WARNING |" in line and "Flow run '" in line and "5%: canary error" in line]
    assert said_why, done.stderr[-3000:]
    assert "Finished in state Completed()" not in "".join(
        line for line in done.stderr.splitlines() if "Task run '" in line), done.stderr[-3000:]
