"""One Prefect test harness for every flow test: it costs ~14 s to start (DB migration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import prefect.events.utilities
import prefect.task_engine
import prefect.testing.utilities
import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_TO_API_ENABLED,
    PREFECT_SERVER_DATABASE_CONNECTION_URL,
    PREFECT_SERVER_REGISTER_BLOCKS_ON_START,
    PREFECT_SERVER_SERVICES_EVENT_LOGGER_ENABLED,
    PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED,
    PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED,
    PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from tests.prefect_db import seed

# The file prefect_test_harness keeps its database in, inside the directory mkdtemp gives it.
_HARNESS_DATABASE = "prefect-test.db"


@pytest.fixture(scope="session", autouse=True)
def prefect_harness(tmp_path_factory: pytest.TempPathFactory, prefect_database: Path) -> Iterator[str]:
    """A temporary Prefect API for the session, without flow-run heartbeats or task-run recording.

    The heartbeat thread's join adds about a second to every flow run; tests do not need it.
    The server's task-run recorder writes every task run into the harness's SQLite database
    while the next flow run is being created; the two writers collide ("database is locked"),
    the API answers 503 and the client retries after about 2 s. Tests assert on flow runs,
    their states, pauses and artifacts, never on recorded task runs, so the recorder is off:
    the kill-at-every-step tests ran 2.5x faster without it.

    The server's event services (automation triggers, the event persister and event logger) are
    off too: rollway uses no automations and reads no events, and the harness's server spent more
    CPU on the events of every task run than the tests themselves did (the kill-at-every-step
    file: 126 s with them, 103 s without, on a quiet machine).

    The harness is plain HTTP on loopback: its clients, like every Prefect client of the tests,
    trust a CA file of one certificate (tests/conftest.py), not certifi's whole bundle.

    Nor do the tests read what the flows' clients send the server besides states: run logs and
    task-run events. Every log line went through Prefect's API log worker, and every task run's
    state changes became events whose worker first asked the API for the run's related
    resources, then sent them over a websocket the server read and dropped; together about a
    tenth of the suite's CPU. Logs to the API are off, and events are not emitted, the way
    Prefect's own test fixtures turn them off. Flow-run states, pauses, inputs and artifacts
    still go through the API as in production. A task run's state-change event was still built
    (its run and both states dumped to JSON, at each of its state changes) before Prefect found
    that no event is emitted, for nothing: it is not built (the kill-at-every-step tests' own
    CPU, the harness's server aside: 10.3 s with it, 9.3 s without, on a loaded machine).

    The harness's database is a copy of the session's template, which holds Prefect's block types
    as a server's start registers them (tests/prefect_db.py): the harness does not register them
    again (about 1 s of its server's CPU, in every pytest worker).
    """
    off = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED: False,
           PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED: False, PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED: False,
           PREFECT_SERVER_SERVICES_EVENT_LOGGER_ENABLED: False,
           PREFECT_LOGGING_TO_API_ENABLED: False, PREFECT_SERVER_REGISTER_BLOCKS_ON_START: False}
    # Prefect's 30 s default for the harness's server to start is too short on a loaded 2-core
    # machine: one slow start errored every flow test of that pytest worker.
    database_dir = seed(tmp_path_factory.mktemp("harness-db"), prefect_database, name=_HARNESS_DATABASE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prefect.events.utilities, "should_emit_events", lambda: False)
        patch.setattr(prefect.task_engine, "emit_task_run_state_change_event", _no_event)
        patch.setattr(prefect.testing.utilities, "mkdtemp", lambda: str(database_dir))
        with temporary_settings(updates=off), prefect_test_harness(server_startup_timeout=120):
            # Said, not assumed: a harness that named its database otherwise would migrate its own.
            assert PREFECT_SERVER_DATABASE_CONNECTION_URL.value().endswith(f"{database_dir}/{_HARNESS_DATABASE}")
            yield PREFECT_API_URL.value()


def _no_event(**_: Any) -> None:
    """A task run's state-change event, never emitted in the tests: not built either (the task
    engine only keeps it as what the next event follows)."""
    return None


@pytest.fixture(autouse=True)
def on_the_harness(prefect_harness: str) -> Iterator[None]:
    """Every flow test talks to the harness, whatever a session fixture set since.

    tests/integration's ``prefect_server`` points PREFECT_API_URL at its `prefect server start`
    for the rest of the session, so a flow test run after it in the same pytest worker talked to
    two servers: its own calls went to that one, while a client bound earlier kept the harness.
    (The canary flow, when it took its slot through Prefect's slot-acquisition service, created
    its concurrency limit on one and took the slot on the other.)

    Settings are only swapped when they point elsewhere: a swap copies and validates every
    Prefect setting (about 30 ms), in every flow test.
    """
    if PREFECT_API_URL.value() == prefect_harness:
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: prefect_harness}):
        yield


@pytest.fixture(scope="session")
def harness_client(prefect_harness: str) -> Iterator[Any]:
    """One synchronous client of the harness for the session's housekeeping."""
    from prefect import get_client

    # Bound to the harness whatever PREFECT_API_URL says by the time the first flow test runs.
    with temporary_settings(updates={PREFECT_API_URL: prefect_harness}):
        client = get_client(sync_client=True)
    with client:
        yield client



@pytest.fixture(autouse=True)
def no_canary_slot_held(on_the_harness: None, harness_client: Any) -> Iterator[None]:
    """Each test starts with no `canary` run holding its service's Prefect concurrency slot.

    Every test's canary service has the same name and the harness lives for the session, so a
    slot left held by one test (a run still going in a thread it started) would refuse the next
    test's run for up to the lease's five minutes. That refusal is what a user gets, and
    tests/flows/test_canary_concurrent.py covers it; here it would only couple unrelated tests.
    """
    for limit in harness_client.read_global_concurrency_limits(limit=200):
        if limit.name.startswith("rollway-canary:"):
            harness_client.delete_global_concurrency_limit_by_name(limit.name)
    yield


@pytest.fixture
def ecs_updates_retried_at_once(monkeypatch) -> None:
    """UpdateService's retries without their 2-s waits: a test that has ECS refuse it (throttled)
    checks where the run stops once the retries are spent, not their spacing; each such refusal
    slept 4 s."""
    from tasks import ecs

    monkeypatch.setattr(ecs, "update_service", ecs.update_service.with_options(retry_delay_seconds=0))


@pytest.fixture
def credentials_loaded(monkeypatch) -> list[str]:
    """The names of the AwsCredentials blocks loaded (a read of the Prefect API each) from now on."""
    from prefect_aws import AwsCredentials

    loaded: list[str] = []
    real = AwsCredentials.load.__func__

    def load(cls, name, *args, **kwargs):
        loaded.append(name)
        return real(cls, name, *args, **kwargs)

    monkeypatch.setattr(AwsCredentials, "load", classmethod(load))
    return loaded
