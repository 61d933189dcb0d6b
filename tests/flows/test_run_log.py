"""rollway's own warnings in the log of the run that logged them, read back from the Prefect API.

A person reads a run in the Prefect UI: a warning rollway's library logs while a task runs ("bound
feature flag ... does not exist; nothing to disable") must be there, once, and still print once on
the console. Outside a run, a `rollway` command's warning stays its one line on stderr.
"""

from __future__ import annotations

import importlib
import io
import logging
import warnings

from prefect import flow, get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.formatters import PrefectFormatter
from prefect.logging.handlers import APILogHandler, PrefectConsoleHandler
from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

import flows
from rollway.fakes import FakeFlagStore
from rollway.flag_binding import disable_bindings
from rollway.spec import FlagBinding
from tasks import flags as flag_tasks

MISSING = "bound feature flag 'gone_flag' does not exist; nothing to disable"


@flow(name="rollback-a-missing-flag")
def rollback_a_missing_flag() -> None:
    flag_tasks.disable_patiently(FakeFlagStore(), [FlagBinding(feature="gone_flag")], actor="judge",
                                 reason="error rate", now=20.0)


def run_log(caplog) -> tuple[list[str], list[str]]:
    """Run the flow with logs sent to the API (the harness turns them off); the messages of its
    run's log, and those the root logger's handlers (the console's) got."""
    caplog.clear()
    with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: True}):
        state = rollback_a_missing_flag(return_state=True)
        APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    return [log.message for log in logs], [record.getMessage() for record in caplog.records]


def test_a_warning_rollway_logs_in_a_task_run_is_in_the_runs_log_once(caplog):
    importlib.reload(flows)  # imported again: still once
    messages, printed = run_log(caplog)

    assert messages.count(MISSING) == 1, messages
    assert printed.count(MISSING) == 1, printed


def test_once_too_when_prefect_logging_extra_loggers_names_rollway(caplog, monkeypatch):
    # What Prefect's setup_logging does for PREFECT_LOGGING_EXTRA_LOGGERS=rollway: the API
    # handler of the "prefect.extra" logger on the logger named.
    rollway_logger = logging.getLogger("rollway")
    api = [h for h in logging.getLogger("prefect.extra").handlers if isinstance(h, APILogHandler)]
    monkeypatch.setattr(rollway_logger, "handlers", [*rollway_logger.handlers, *api])

    messages, printed = run_log(caplog)

    assert messages.count(MISSING) == 1, messages
    assert printed.count(MISSING) == 1, printed


def test_a_warning_outside_a_run_reaches_the_console_alone(caplog):
    # What a `rollway` command does: it has imported the flows package (`rollway flags`,
    # `status`, ...) and runs rollway's library outside any flow run, which may log a warning.
    # Prefect's API handler there warns that it "attempted to send logs to the API without a flow
    # run id": on a user's terminal, under the command's own line.
    with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: True}), warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        disable_bindings(FakeFlagStore(), [FlagBinding(feature="gone_flag")], actor="judge", reason="r", now=1.0)

    assert [str(w.message) for w in said] == []
    assert [record.getMessage() for record in caplog.records] == [MISSING]


REFUSED = "could not deregister td/web:8"


@flow(name="refused-deregistration")
def refused_deregistration() -> None:
    try:
        raise RuntimeError("AccessDenied: X-Amz-Credential=AKIAIOSFODNN7EXAMPLE signature=wJalrXUtnFEMI")
    except RuntimeError:
        logging.getLogger("rollway.aws.ecs").error("could not deregister %s", "td/web:8", exc_info=True)


def test_a_served_runs_rollway_error_is_one_line_on_the_console_and_complete_in_its_log():
    # What `rollway up` shows of the runs it serves: each run's process has Prefect's console
    # handler on the root logger (its logging.yml), writing to the terminal `rollway up` runs in.
    printed = io.StringIO()
    console = PrefectConsoleHandler(stream=printed)
    console.setFormatter(PrefectFormatter(format="%(asctime)s | %(levelname)s | %(name)s - %(message)s",
                                          flow_run_fmt="%(asctime)s | Flow run %(flow_run_name)r - %(message)s"))
    logging.getLogger().addHandler(console)
    try:
        with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: True}):
            state = refused_deregistration(return_state=True)
            APILogHandler().flush()
    finally:
        logging.getLogger().removeHandler(console)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))

    # The terminal: the run it came from and rollway's one line, as a command prints it; no
    # traceback, and nothing of the exception, whose text may carry a credential.
    mine = [line for line in printed.getvalue().splitlines() if REFUSED in line]
    assert len(mine) == 1 and mine[0].endswith(f"Flow run {run.name!r} - rollway.aws.ecs: error: {REFUSED}"), \
        printed.getvalue()
    assert "Traceback" not in printed.getvalue() and "AKIA" not in printed.getvalue(), printed.getvalue()
    # The run's log in the UI stays complete: the message and its traceback.
    [logged] = [log.message for log in logs if REFUSED in log.message]
    assert "Traceback" in logged and "RuntimeError: AccessDenied" in logged, logged


def test_a_root_logger_set_above_warnings_still_lets_rollways_warnings_into_the_runs_log(caplog):
    # PREFECT_LOGGING_ROOT_LEVEL=ERROR quiets other libraries on a worker's console; rollway's
    # "rollway" logger took the root's level and dropped its warnings before any handler saw them,
    # from the run's log too (a flag it left as a person set it, a registration it could not remove).
    root, rollway_logger = logging.getLogger(), logging.getLogger("rollway")
    levels = root.level, rollway_logger.level
    root.setLevel(logging.ERROR)  # setLevel: logging caches each logger's answer until it is called
    rollway_logger.setLevel(logging.NOTSET)
    try:
        importlib.reload(flows)  # as a run's process imports it, with the root already set
        messages, _ = run_log(caplog)
    finally:
        root.setLevel(levels[0])
        rollway_logger.setLevel(levels[1])

    assert messages.count(MISSING) == 1, messages


def test_a_level_set_on_rollways_logger_is_left_as_chosen():
    rollway_logger = logging.getLogger("rollway")
    level = rollway_logger.level
    rollway_logger.setLevel(logging.ERROR)
    try:
        importlib.reload(flows)
        assert rollway_logger.level == logging.ERROR
    finally:
        rollway_logger.setLevel(level)
