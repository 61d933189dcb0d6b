"""What `rollway abort` shows on the terminal while it runs the rollback flow in its process."""

from __future__ import annotations

import logging

import rollway.cli.ops as ops
from rollway.fakes import FakeLedger
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.test_abort_races import setup


def _aborted(monkeypatch, service) -> tuple[int, list[logging.LogRecord]]:
    """`rollway abort` with no run to answer: its exit code, and what Prefect's console handler (on
    the root logger) was handed, which the terminal shows."""
    from prefect.logging.handlers import PrefectConsoleHandler

    import prefect.main  # noqa: F401 - Prefect's console handler, on the root logger once imported
    consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    assert consoles, logging.getLogger().handlers
    shown: list[logging.LogRecord] = []
    for console in consoles:
        monkeypatch.setattr(console, "emit", shown.append)
    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)
    return code, shown


def test_rollway_abort_leaves_prefect_s_task_completions_off_the_terminal(monkeypatch):
    """With no run to answer, `rollway abort` rolls back in its process, and Prefect's console printed
    a "Task run '...' - Finished in state Completed()" line for every read and write the rollback
    flow made, between the flow's own lines that say each step: they are left off the terminal, as
    `rollway finalize` leaves them; the run's log in the Prefect API keeps them."""
    env, service, _ = setup(monkeypatch, RolloutPhase.PROGRESSING, ledger=lambda env: FakeLedger())
    code, shown = _aborted(monkeypatch, service)
    assert code == 0 and env.router.weights == Weights(stable=100, canary=0), code
    said = [(record.name, record.getMessage()) for record in shown]
    assert not [m for name, m in said if name == "prefect.task_runs" and m.startswith("Finished in state Completed(")], said
    # The flow's own lines stay: each step as it happens.
    assert any(name == "prefect.flow_runs" and m.startswith("all the traffic is back on") for name, m in said), said
    assert any(name == "prefect.flow_runs" and m.startswith(f"rolled back {env.targets.canary_service}: ")
               for name, m in said), said


def _aborted_with_the_canary_throttled(monkeypatch):
    """`rollway abort` of a rollout at 5 % whose canary's UpdateService is throttled every time (its
    restore and scale-down fail, the traffic back on stable): the environment, the exit code, and
    what the terminal was handed (``_aborted``)."""
    env, service, _ = setup(monkeypatch, RolloutPhase.PROGRESSING, ledger=lambda env: FakeLedger())
    updated = env.deployer.update_service

    def throttled(name, *args, **kwargs):
        if name == env.targets.canary_service:
            raise RuntimeError("ThrottlingException: Rate exceeded")
        return updated(name, *args, **kwargs)

    monkeypatch.setattr(env.deployer, "update_service", throttled)
    return (env, *_aborted(monkeypatch, service))


def test_rollway_abort_whose_rollback_step_fails_says_it_once_without_a_traceback(monkeypatch, capsys,
                                                                                 task_run_records):
    """A rollback step that fails (the canary's scale-down, throttled) is said by the command's own
    lines, the failed step and AWS's words: the task engine's ERROR line of it, with its traceback,
    stood above them on the terminal, as `rollway finalize` no longer shows its own."""
    env, code, shown = _aborted_with_the_canary_throttled(monkeypatch)
    err = capsys.readouterr().err
    assert code == 1 and env.router.weights == Weights(stable=100, canary=0), (code, err)
    assert "the rollback did not finish" in err and "ThrottlingException: Rate exceeded" in err, err
    failed = [r for r in task_run_records if "ThrottlingException" in r.getMessage()]
    assert failed and not any(r.exc_info for r in failed), "the step's error is logged, without its traceback"
    # The task engine's lines of the failure (its ERROR, its "Finished in state Failed(...)"): the flow's
    # own lines, each step as it happens, stay, as they do when every step succeeds.
    engine = [m for r in shown if r.name == "prefect.task_runs" and (m := r.getMessage())
              and (r.levelno >= logging.ERROR or "Finished in state Failed(" in m)]
    assert not engine, engine
    assert not [r for r in shown if r.exc_info], "no traceback on the terminal"


def test_rollway_abort_says_each_failed_step_once_the_runs_log_keeps_the_flows_own_lines(monkeypatch, capsys,
                                                                                       flow_run_records):
    """The rollback flow logs each step that fails at ERROR ("could not scale ... to 0: ..."), and the
    command lists the failed steps below: the terminal said each twice, the flow's line above the
    list. The list alone is on the terminal; the flow's lines stay in the run's log."""
    env, code, shown = _aborted_with_the_canary_throttled(monkeypatch)
    t = env.targets
    err = capsys.readouterr().err
    assert code == 1 and env.router.weights == Weights(stable=100, canary=0), (code, err)
    assert f"  scale {t.canary_service} to 0 (ThrottlingException: Rate exceeded)" in err, err
    duplicates = [m for r in shown if r.name == "prefect.flow_runs" and r.levelno >= logging.ERROR
                  and (m := r.getMessage())]
    assert not duplicates, duplicates
    logged = [r.getMessage() for r in flow_run_records if r.levelno >= logging.ERROR]
    assert f"could not scale {t.canary_service} to 0: ThrottlingException: Rate exceeded" in logged, logged
    # The flow's lines of each step as it happens stay on the terminal.
    assert any(r.name == "prefect.flow_runs" and r.getMessage().startswith("all the traffic is back on")
               for r in shown), [r.getMessage() for r in shown]


def test_rollway_abort_whose_move_fails_shows_the_page_once_without_the_engines_error_and_traceback(
        monkeypatch, capsys, flow_run_records):
    """The rollback could not move the traffic (the load balancer refused the write): the flow's page
    said it on the terminal, then the flow engine's ERROR line said the error again, with its
    traceback, above the command's own answer. The page and the answer stay; the engine's lines
    are in the run's log."""
    env, service, _ = setup(monkeypatch, RolloutPhase.PROGRESSING, ledger=lambda env: FakeLedger())

    def refused(weights):
        raise RuntimeError("ValidationError: the rule refused the weights")

    monkeypatch.setattr(env.router, "set_weights", refused)
    code, shown = _aborted(monkeypatch, service)
    err = capsys.readouterr().err
    t = env.targets
    assert code == 1 and env.router.weights == Weights.canary_at(5), (code, err)
    assert f"error: the rollback of {t.canary_service} failed: ValidationError: the rule refused the weights" in err, err
    pages = [m for r in shown if (m := r.getMessage()).startswith(f"The rollback of {t.canary_service} failed.")]
    assert len(pages) == 1, [r.getMessage() for r in shown]
    engine = [m for r in shown if r.name == "prefect.flow_runs" and (m := r.getMessage())
              and (m.startswith("Encountered exception") or "Finished in state Failed(" in m)]
    assert not engine, engine
    assert not [r for r in shown if r.exc_info], "no traceback on the terminal"
    # The run's log keeps the engine's line of the failure, with its traceback: the page says what
    # failed, not where, and the failure may be a defect.
    assert any(r.getMessage().startswith("Encountered exception") and r.exc_info for r in flow_run_records), \
        [(r.getMessage(), r.exc_info) for r in flow_run_records]
