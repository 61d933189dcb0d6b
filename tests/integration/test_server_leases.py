"""Concurrency-slot leases across a Prefect server that died: the next server on the same home
frees a dead run's slot once its lease ends (`rollway up` keeps leases in files under its home).

A real `prefect server start` killed and another started. The shortest lease Prefect takes (60 s)
is aged on disk rather than waited out.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rollway.cli.processes import PrefectServer, free_port
from tests.prefect_db import seed


def test_a_slot_held_when_the_server_died_is_freed_by_the_next_server_on_the_same_home(tmp_path, monkeypatch, prefect_database):
    """The canary flow holds a Prefect concurrency slot under a lease. The server kept its leases in
    memory: when it stopped while a run held the slot (a Ctrl-C mid-rollout, `rollway up` killed),
    the next server on the home knew no lease to let run out, and every canary run after it was
    refused as "another canary run is under way", for good. The next server now frees it."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS", "1")  # look every second
    home, name = seed(tmp_path / "home", prefect_database), "rollway-canary:cluster:service"
    with PrefectServer(home, free_port(), log=tmp_path / "first.log") as server:
        server.wait_healthy(timeout_seconds=180)
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            client.increment_concurrency_slots_with_lease(names=[name], slots=1, mode="concurrency", lease_duration=60)
        os.kill(server.pid, signal.SIGKILL)  # dies holding it, as under the OOM killer
    # The shortest lease Prefect takes is a minute: the lease's minute is passed on disk instead of
    # waited out (that was 60 s of this test's ~100). The slot is still taken until a server frees it.
    lease_ends = time.monotonic()
    assert _aged(home / "concurrency_leases") == 1, "the dead server kept no lease on disk"
    with PrefectServer(home, free_port(), log=tmp_path / "second.log") as server:
        server.wait_healthy(timeout_seconds=180)
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
            while (taken := client.read_global_concurrency_limit_by_name(name).active_slots) and \
                    time.monotonic() < lease_ends + 90:
                time.sleep(1)
    assert taken == 0, "the slot of a lease the dead server held is still taken 90 s after the lease ended"


def _aged(leases: Path) -> int:
    """Set every lease kept in ``leases`` (Prefect's file lease storage) to have ended a second ago,
    in its own file and in the expiration index; returns how many there were."""
    ended = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    index_path = leases / "expirations.json"
    if not index_path.exists():  # the leases were in the dead server's memory
        return 0
    index = json.loads(index_path.read_text())
    for lease_id in index:
        lease_file = leases / f"{lease_id}.json"
        lease_file.write_text(json.dumps({**json.loads(lease_file.read_text()), "expiration": ended}))
    index_path.write_text(json.dumps({lease_id: ended for lease_id in index}))
    return len(index)
