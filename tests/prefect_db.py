"""One migrated Prefect database for the whole test session, copied under each server a test starts.

Every Prefect server the suite starts (the flow tests' harness, `prefect server start` in the
integration and CLI tests) began on an empty SQLite file and ran every one of Prefect's database
migrations first: about 5 s of CPU and of wall time per start, a dozen starts a session, on the
2-core machine whose CPU the suite is bound by. The migrations are the same for every start, so
they run once, into a template every xdist worker shares; a server started on a copy finds its
schema at the head revision and only checks it. Nothing else is in the template (no blocks, runs
or settings): each server still registers its block types and starts with nothing in it.

Tests about what a server does on a new home (the first start's migrations, a home it cannot
write) start it without the template.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

# The file `prefect server start` keeps under PREFECT_HOME (its default database URL).
DATABASE_FILE = "prefect.db"
# The Prefect settings that would point the migration elsewhere than the template's home.
_ELSEWHERE = ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_PROFILES_PATH")
# What a server's start does to its database before it serves (prefect.server.api.server's
# run_migrations and add_block_types): the migrations, then the block types of Prefect and of
# the collections installed (prefect-aws), registered by the server's own function.
_MIGRATE_AND_REGISTER = """
import asyncio

import prefect.plugins
from prefect.server.database import provide_database_interface
from prefect.server.models.block_registration import run_block_auto_registration


async def main():
    db = provide_database_interface()
    await db.create_db()
    prefect.plugins.load_prefect_collections()
    async with await db.session() as session:
        await run_block_auto_registration(session=session)


asyncio.run(main())
"""


def session_root(basetemp: Path) -> Path:
    """The directory every worker of this pytest run shares: the parent of a worker's base
    temporary directory under xdist (pytest-N/popen-gwK), the base itself without it."""
    return basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp


def migrated_template(root: Path) -> Path:
    """The template database under ``root``, migrated by the first worker to ask, under a lock.

    Raises:
        RuntimeError: the migration failed; its output is in the message.
    """
    made = root / "prefect-template" / DATABASE_FILE
    with open(root / "prefect-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait here for the first one's migration
        if made.exists():
            return made
        home = root / "prefect-template-building"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if k not in _ELSEWHERE}
        env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
        done = subprocess.run([sys.executable, "-c", _MIGRATE_AND_REGISTER], env=env, capture_output=True, text=True,
                              timeout=600)
        if done.returncode or not (home / DATABASE_FILE).exists():
            raise RuntimeError(f"migrating the template Prefect database failed ({done.returncode}):\n"
                               f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        # Renamed whole: a worker never sees a template half copied.
        (home / DATABASE_FILE).rename(home / "done.db")
        made.parent.mkdir(exist_ok=True)
        (home / "done.db").rename(made)
        shutil.rmtree(home, ignore_errors=True)
        return made


def seed(directory: Path, template: Path, name: str = DATABASE_FILE) -> Path:
    """``directory`` (created if need be) holding a copy of the template as ``name``."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, directory / name)
    return directory
