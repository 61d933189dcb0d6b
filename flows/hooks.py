"""State hooks that roll a rollout back when its run fails, crashes or is cancelled.

The hook rebuilds the environment from the run's own parameters (block names, clock) and
runs the rollback flow, so the rollback shows in the UI as a run of its own.
"""

from __future__ import annotations

import logging

from rollway.clock import ClockSettings

log = logging.getLogger("rollway.hooks")


def _refused(state) -> bool:
    """Whether the run failed because it refused to start (it changed nothing to undo).

    A run refused for a lock, drift or another unfinished rollout must not roll back: the
    traffic it would move belongs to someone else's rollout.
    """
    from flows.canary import RolloutRefused
    from flows.progressive import DriftDetected, PhaseRefused
    from rollway.ledger import LedgerError

    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # the result is not retrievable: assume the run acted
        return False
    return isinstance(exc, (RolloutRefused, DriftDetected, PhaseRefused, LedgerError))


def _rollback_from_state(flow, flow_run, state) -> None:
    from flows.rollback import rollback

    if _refused(state):
        log.info("run %s refused to start; nothing to roll back", flow_run.name)
        return
    params = dict(flow_run.parameters or {})
    spec = params.get("spec") or {}
    bindings = spec.get("flags") if isinstance(spec, dict) else None
    reason = f"run {flow_run.name} ended {state.type.value.lower()}: {state.message or 'no message'}"
    try:
        rollback(
            reason=reason,
            actor=f"state hook ({state.type.value.lower()})",
            bindings=bindings or None,
            targets_block=params.get("targets_block"),
            aws_credentials_block=params.get("aws_credentials_block"),
            clock=ClockSettings.model_validate(params.get("clock") or {}),
        )
    except Exception:  # a hook must not hide the original failure; log loudly instead
        log.exception("automatic rollback after %s failed; run `rollway abort` by hand", flow_run.name)
        raise


def rollback_hooks() -> dict:
    """Keyword arguments for @flow: the same rollback on failure, crash and cancellation."""
    return {
        "on_failure": [_rollback_from_state],
        "on_crashed": [_rollback_from_state],
        "on_cancellation": [_rollback_from_state],
    }
