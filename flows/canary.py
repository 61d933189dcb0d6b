"""The canary flow: ship a new image to the canary service and walk it through the spec's stages.

Each stage shifts the ALB weights (read back and verified), bakes under the judge every
analysis tick, and decides: promote, hold or roll back. After 100 % it watches the new
version for the spec's ``monitor_seconds`` while the old one still runs, and rolls back on
the monitoring guardrail. A run that fails, crashes or is cancelled rolls back through its
state hooks, so traffic never stays on a version nobody is watching.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator

from prefect import flow, get_run_logger

from flows.approvals import prefect_approver
from flows.engine import run_stages
from flows.env import load_environment
from flows.hooks import rollback_hooks
from flows.monitor import after_window, run_monitor
from flows.params import Actor
from flows.rollback import judge_rollback
from rollway.approvals import Approver
from rollway.clock import ClockSettings
from rollway.decide import StageState
from rollway.environment import Environment
from rollway.model import ServiceState
from rollway.finalize import finalize_unfinished
from rollway.phases import RolloutPhase
from rollway.report import RolloutResult
from rollway.spec import RolloutSpec
from tasks import ecs, flags, metrics, traffic, undoable


class RolloutRefused(RuntimeError):
    """The service is not in a state a new rollout can start from."""


@contextmanager
def before_any_write() -> Iterator[None]:
    """Whatever fails in here failed before the run wrote anything: a refusal to start.

    The rollback hooks leave a refused run alone. Raised as anything else (an unknown bound
    flag, a misnamed target group, a read that kept failing), the failure made the hook roll
    back whatever rollout held the service: a promoted version, or another run's rollout.
    """
    try:
        yield
    except RolloutRefused:
        raise
    except Exception as err:
        raise RolloutRefused(f"refused before any write: {err}") from err


def preflight(env: Environment, spec: RolloutSpec) -> tuple[ServiceState, ServiceState]:
    """Resolve every name and read the stable and canary services with read-only calls, so bad
    targets (or unknown bound flags) fail before any write, as RolloutRefused.

    Returns:
        The stable and the canary service, as they are before the rollout.
    """
    t = env.targets
    with before_any_write():
        resolve = getattr(env.router, "resolve", None)
        if resolve is not None:
            resolve()
        if spec.flags and env.flags is not None:
            flags.check_bindings(env.flags, list(spec.flags))
        weights = traffic.get_weights(env.router)
        if weights.canary != 0:
            record = env.ledger.get(t.canary_service) if env.ledger is not None else None
            if record is not None and record.phase is RolloutPhase.PROMOTED:
                # Rolling back would put the previous version back in production: not the advice to give.
                raise RolloutRefused(
                    f"the canary target group carries {weights.canary}% of traffic because rollout "
                    f"{record.rollout_id} promoted {record.image}: {t.canary_service} is production now. Finalize "
                    "that promotion first: run the finalize flow (the finalize deployment in the Prefect UI) or "
                    f"`rollway finalize`, which puts {record.image} on {t.stable_service}, moves the traffic back to "
                    f"it and scales {t.canary_service} to 0 (once the rollout's monitoring window has passed); then "
                    "start this rollout again"
                )
            raise RolloutRefused(
                f"the canary target group already carries {weights.canary}% of traffic; "
                "roll back (rollway abort) or resume that rollout before starting a new one"
            )
        newest = env.ledger.get(t.canary_service) if env.ledger is not None else None
        if finalize_unfinished(newest):
            # Its traffic is back on stable, but the canary service is not idle yet: finishing the
            # finalize first keeps it from scaling down the canary this rollout deploys to.
            raise RolloutRefused(
                f"the finalize of rollout {newest.rollout_id} began and did not finish: run `rollway finalize` "
                "(or the finalize flow) again to finish it, then start this rollout"
            )
        return ecs.describe_service(env.deployer, t.stable_service), ecs.describe_service(env.deployer, t.canary_service)


def run_canary(env: Environment, spec: RolloutSpec, approver: Approver, *, actor: str = "operator") -> RolloutResult:
    """Deploy ``spec.image`` to the canary service and run the stages. Plain Python over tasks."""
    log = get_run_logger()
    t = env.targets
    stable, canary = preflight(env, spec)
    metrics.notify(
        env.notifier,
        f"Rollout starting: {t.canary_service}",
        f"{actor} started a canary of {spec.image} on {t.cluster}: stages "
        f"{', '.join(f'{w}%' for w in spec.weights)}; {spec.analysis.judge} judge, "
        f"automatic rollback on failure.",
    )
    revision = undoable.deploy_revision(env.deployer, t.canary_service, spec.image, stable.task_definition,
                                        canary.task_definition)
    log.info("canary service %s now on %s", t.canary_service, revision)

    rollback = judge_rollback(env, spec, previous_task_definition=canary.task_definition, stable_desired=stable.desired)

    result = run_stages(
        env, spec, state=StageState(), stable_desired=stable.desired, approver=approver, rollback=rollback
    )
    if result.outcome != "promoted":
        return result
    watching = spec.monitor_seconds > 0
    metrics.notify(
        env.notifier,
        f"Rollout complete: {t.canary_service}",
        f"{spec.image} now serves {result.final_weights.canary}% of traffic on {t.canary_service}. {result.reason}."
        + (f" Watching it for {spec.monitor_seconds / 60:g} minutes while {t.stable_service} keeps running: a "
           f"5-minute error rate over {spec.guardrails.monitor_error_rate:.0%} rolls it back." if watching else ""),
    )
    if not watching:
        return result
    # The stable service still runs, so this is when a rollback is cheap. This flow keeps no
    # ledger (the window lives in this run, and its hooks roll back if it dies), and must not
    # write into a record another rollout of the service left.
    watched = run_monitor(
        replace(env, ledger=None), spec, window_seconds=spec.monitor_seconds, decommission=False,
        previous_task_definition=canary.task_definition, stable_desired=stable.desired,
    )
    return after_window(result, watched)


@flow(name="canary", log_prints=True, **rollback_hooks())
def canary(
    spec: RolloutSpec,
    actor: Actor = "operator",
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    clock: ClockSettings = ClockSettings(),
) -> RolloutResult:
    """Canary ``spec.image`` through ``spec.stages``; promote, hold for a person, or roll back."""
    env = load_environment(targets_block, aws_credentials_block, clock, interval_seconds=spec.analysis.interval_seconds)
    return run_canary(env, spec, prefect_approver(spec.approvals), actor=actor)
