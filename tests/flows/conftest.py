"""One Prefect test harness for every flow test, started once per pytest worker: its start (a server
and its database migration) takes seconds on a quiet machine and minutes on a loaded one."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack, contextmanager
from typing import Any, Iterator

import prefect.events.utilities
import prefect.server.api.server
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
from prefect.server.api.server import SubprocessASGIServer
from prefect.testing.utilities import prefect_test_harness

from tests.prefect_db import seed

# The file prefect_test_harness keeps its database in, inside the directory mkdtemp gives it.
_HARNESS_DATABASE = "prefect-test.db"
# How long the harness's server may take to answer, in wall time from its start: a bound of its
# own, with pytest's per-test timeout (300 s) suspended meanwhile. Prefect's bound counted its
# 0.1-s sleeps, not the time its polls took: on a machine loaded by other suites a start asked to
# take at most 120 s ran into pytest's 300 s, which errored that pytest worker's 1,220 flow tests
# with the same traceback. (Set lower by tests/flows/test_harness_start.py.)
HARNESS_START_SECONDS = float(os.environ.get("ROLLWAY_TESTS_HARNESS_START_SECONDS", "600"))
# The test at whose setup the harness failed to start, once it has: the rest are skipped.
_harness_failed_at: list[str] = []
# The test being set up (for its per-test timer).
_setting_up: list[pytest.Item] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A flow test after the harness failed to start in this pytest worker is skipped, pointing at
    that one error, rather than erroring with its traceback again."""
    if _harness_failed_at:
        pytest.skip(f"the Prefect test harness did not start in this pytest worker: see the error at setup of "
                    f"{_harness_failed_at[0]}")
    _setting_up[:] = [item]


class _NotStarted(Exception):
    """The harness's server did not answer: why, in one line."""


@pytest.fixture(scope="session", autouse=True)
def prefect_harness(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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

    A harness that does not start fails the one test being set up, with one line saying what did
    not start and how long it was waited for; the worker's other flow tests are skipped, naming
    that test (``pytest_runtest_setup``).
    """
    off = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED: False,
           PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED: False, PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED: False,
           PREFECT_SERVER_SERVICES_EVENT_LOGGER_ENABLED: False,
           PREFECT_LOGGING_TO_API_ENABLED: False, PREFECT_SERVER_REGISTER_BLOCKS_ON_START: False}
    item, not_started = _setting_up[0], None
    with pytest.MonkeyPatch.context() as patch, ExitStack() as harness:
        try:
            with _per_test_timer_suspended(item):
                # The template too (another worker may be migrating it): asked for here, not as a parameter.
                database_dir = seed(tmp_path_factory.mktemp("harness-db"), request.getfixturevalue("prefect_database"),
                                    name=_HARNESS_DATABASE)
                patch.setattr(prefect.events.utilities, "should_emit_events", lambda: False)
                patch.setattr(prefect.task_engine, "emit_task_run_state_change_event", _no_event)
                patch.setattr(prefect.testing.utilities, "mkdtemp", lambda: str(database_dir))
                harness.enter_context(temporary_settings(updates=off))
                with _start_watched(HARNESS_START_SECONDS):
                    # Prefect's count of its sleeps never runs ahead of the wall time: its bound, past
                    # the watch's, is never the one met.
                    harness.enter_context(prefect_test_harness(server_startup_timeout=int(HARNESS_START_SECONDS) + 60))
        except _NotStarted as said:
            not_started = str(said)
        except BaseException:
            _harness_failed_at.append(item.nodeid)
            raise
        if not_started:  # failed here, not in the except: the line alone, not "during handling of" it
            _harness_failed_at.append(item.nodeid)
            pytest.fail(not_started, pytrace=False)
        # Said, not assumed: a harness that named its database otherwise would migrate its own.
        assert PREFECT_SERVER_DATABASE_CONNECTION_URL.value().endswith(f"{database_dir}/{_HARNESS_DATABASE}")
        yield PREFECT_API_URL.value()


@contextmanager
def _per_test_timer_suspended(item: pytest.Item) -> Iterator[None]:
    """pytest-timeout's timer of the test being set up stopped, then started again from zero: the
    harness's start has its own bound, and the test its whole 300 s after it."""
    hook = item.config.hook
    if not hasattr(hook, "pytest_timeout_cancel_timer"):  # run with -p no:timeout
        yield
        return
    from pytest_timeout import _get_item_settings  # the settings it armed the timer with (timeout, method)

    hook.pytest_timeout_cancel_timer(item=item)
    try:
        yield
    finally:
        settings = _get_item_settings(item)
        if settings.timeout and not settings.func_only:
            hook.pytest_timeout_set_timer(item=item, settings=settings)


@contextmanager
def _start_watched(seconds: float) -> Iterator[None]:
    """Prefect's SubprocessASGIServer.start polls the server's health, sleeping 0.1 s between polls,
    until it answers: each sleep here first checks the server process has not exited (Prefect
    only looks for exit code 3, a port taken, which it retries on another port) and that
    ``seconds`` have not passed since the start, in wall time. Either ends the start with one line
    saying so, and the server is stopped."""
    began = time.monotonic()

    def watched_sleep(interval: float) -> None:
        server = SubprocessASGIServer._instances.get(None)  # the harness's, registered before its start
        process = getattr(server, "server_process", None)
        waited = time.monotonic() - began
        code = process.poll() if process is not None else None
        if code not in (None, 3):
            raise _NotStarted(f"the Prefect test harness's server exited with code {code} {waited:.0f} s after it "
                              "started, before answering its health check (its output is this test's captured stderr)")
        if waited >= seconds:
            raise _NotStarted(f"the Prefect test harness's server did not answer its health check within {seconds:g} s "
                              f"of its start (waited {waited:.0f} s)")
        time.sleep(interval)

    class _Time:
        """The ``time`` module as prefect.server.api.server sees it, its ``sleep`` watched."""

        sleep = staticmethod(watched_sleep)

        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prefect.server.api.server, "time", _Time())
        try:
            yield
        except _NotStarted:
            server = SubprocessASGIServer._instances.get(None)
            if server is not None:
                server.stop()  # a server still starting would go on taking the loaded machine's CPU
            raise


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
