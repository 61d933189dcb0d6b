"""Concurrency-slot leases across a Prefect server that died: the next server on the same home
frees a dead run's slot once its lease ends (`rollway up` keeps leases in files under its home).

A real `prefect server start` killed and another started; about 100 s, most of it the shortest
lease Prefect takes (60 s) running out. Moved out of tests/unit/test_up_processes.py so that the
wait runs beside other files instead of at the end of the suite.
"""

from __future__ import annotations

import os
import signal
import time

from rollway.cli.processes import PrefectServer, free_port


def test_a_slot_held_when_the_server_died_is_freed_by_the_next_server_on_the_same_home(tmp_path, monkeypatch):
    """The canary flow holds a Prefect concurrency slot under a lease. The server kept its leases in
    memory: when it stopped while a run held the slot (a Ctrl-C mid-rollout, `rollway up` killed),
    the next server on the home knew no lease to let run out, and every canary run after it was
    refused as "another canary run is under way", for good. The next server now frees it."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS", "1")  # look every second
    home, name = tmp_path / "home", "rollway-canary:cluster:service"
    with PrefectServer(home, free_port(), log=tmp_path / "first.log") as server:
        server.wait_healthy(timeout_seconds=180)
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            client.increment_concurrency_slots_with_lease(names=[name], slots=1, mode="concurrency", lease_duration=60)
        lease_ends = time.monotonic() + 60
        os.kill(server.pid, signal.SIGKILL)  # dies holding it, as under the OOM killer
    with PrefectServer(home, free_port(), log=tmp_path / "second.log") as server:
        server.wait_healthy(timeout_seconds=180)
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
            while (taken := client.read_global_concurrency_limit_by_name(name).active_slots) and \
                    time.monotonic() < lease_ends + 60:
                time.sleep(1)
    assert taken == 0, "the slot of a lease the dead server held is still taken a minute after the lease ended"
