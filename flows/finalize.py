"""finalize: after a promotion, move the promoted version onto the stable service and the traffic back to it.

A promotion leaves the canary service carrying all the traffic; another rollout needs it idle.
In order, each step logged and recorded:

1. refuse (``FinalizeRefused``, before any write) unless the newest rollout is promoted, its
   monitoring window is over and the canary carries the traffic; a finalized one is reported
   and left alone;
2. record ``finalize-start`` in the ledger (lease-free, as a rollback: no run owns a promoted
   rollout whose window is over);
3. point the stable service at the promoted task definition with the capacity to carry all
   traffic, and wait until it is steady with healthy targets: until then the canary serves
   everything, as before;
4. send 100 % to stable and read it back: both services run the same version now, so users
   see no change whichever one a request reaches;
5. scale the canary to 0 (it keeps the promoted task definition: idle, it mirrors stable, and
   the next rollout restores it on rollback), tell people, and record ``finalized``.

A run that stops part-way raises ``FinalizeIncomplete`` saying what users are served, and the
next run carries on. No state hooks: a failed finalize must not trigger a rollback, which
would put the previous version back in production.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated, Callable, Iterator

from prefect import flow, get_run_logger
from pydantic import Field

from flows.engine import wait_healthy
from flows.env import load_environment
from flows.params import Actor
from rollway.clock import ClockSettings
from rollway.environment import Environment
from rollway.finalize import (
    ALL_STABLE, DONE, START, FinalizeIncomplete, FinalizePlan, FinalizeRefused, FinalizeResult, plan_finalize,
)
from rollway.ledger import RolloutRecord, Transition
from rollway.model import Weights
from rollway.spec import RolloutSpec
from tasks import ecs, metrics, traffic

WaitSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""How long to wait for AWS to reach a state: a positive, finite number of seconds."""


class _Progress:
    """The steps of one run: logged as they happen, returned in the result, and turned into
    ``FinalizeIncomplete`` (saying what users are served) when one fails."""

    def __init__(self) -> None:
        self.log = get_run_logger()
        self.steps: list[str] = []

    def done(self, step: str) -> None:
        self.log.info("finalize: %s", step)
        self.steps.append(step)

    def stopped(self, step: str, why: str, state: str) -> FinalizeIncomplete:
        failed = FinalizeIncomplete(step, why, state)
        self.log.error("%s", failed)
        return failed

    @contextmanager
    def trying(self, step: str, state: str | Callable[[], str]) -> Iterator[None]:
        """Run a step; on failure raise FinalizeIncomplete with ``state`` (called then, if callable)."""
        try:
            yield
        except Exception as err:  # noqa: BLE001 - any failure is reported with where things stand
            raise self.stopped(step, f"{type(err).__name__}: {err}", state() if callable(state) else state) from err


def _record(env: Environment, transition: dict, **changes) -> RolloutRecord:
    # owner=None: a promoted rollout past its window has no run owning it, and finalize acts
    # whoever last held its lease, as a rollback does.
    now = env.clock.now()
    return env.ledger.record(env.targets.canary_service, owner=None, now=now,
                             transition=Transition(at=now, **transition), **changes)


def run_finalize(env: Environment, *, actor: str, stable_timeout_seconds: float = 600.0,
                 verify_timeout_seconds: float = 30.0) -> FinalizeResult:
    """Finalize the service's promoted rollout; see the module docstring for the order.

    Args:
        actor: who asked, recorded in the ledger and the notice.
        stable_timeout_seconds: how long the stable service may take to become steady.
        verify_timeout_seconds: how long to wait for healthy targets and for the read-back.

    Raises:
        FinalizeRefused: before any write, when there is nothing this run may finalize.
        FinalizeIncomplete: a step failed; the message says what users are served.
    """
    t = env.targets
    if env.ledger is None:
        raise FinalizeRefused("finalize needs the rollout ledger: it acts only on a rollout recorded as promoted")
    progress = _Progress()
    record = env.ledger.get(t.canary_service)
    spec = RolloutSpec.for_rollback(record.spec_json) if record is not None else None
    live = traffic.get_weights(env.router)
    stable = ecs.describe_service(env.deployer, t.stable_service)
    canary = ecs.describe_service(env.deployer, t.canary_service)
    plan = plan_finalize(record, spec, live=live, stable=stable, canary=canary, targets=t)
    td = plan.task_definition

    if plan.action == "done":
        progress.done(f"rollout {record.rollout_id} is finalized already: {t.stable_service} runs {td} and carries "
                      f"{live.stable}% of the traffic, {t.canary_service} is at 0 tasks; nothing to do")
        return FinalizeResult(outcome="already_finalized", rollout_id=record.rollout_id, image=record.image,
                              task_definition=td, weights=live, stable_desired=stable.desired, canary_desired=0,
                              steps=tuple(progress.steps))

    if plan.action == "start":
        weights = _move_to_stable(env, record, plan, live, actor, progress, stable_timeout_seconds=stable_timeout_seconds,
                                  verify_timeout_seconds=verify_timeout_seconds)
    else:
        weights = live
        progress.done(f"a previous run moved the traffic already ({live} stable/canary, {t.stable_service} on {td}): "
                      "carrying on from there")

    after = f"The traffic is on {t.stable_service}, which runs the promoted {td}: users see the promoted version."
    scale_down = f"scale {t.canary_service} to 0"
    with progress.trying(scale_down, after):
        newest = env.ledger.get(t.canary_service)
    if newest is None or newest.rollout_id != record.rollout_id:
        # Once the traffic left the canary, a new rollout could start on it: that canary is not ours to scale down.
        raise progress.stopped(scale_down, f"rollout {newest.rollout_id if newest else '?'} of {t.canary_service} "
                                           "started meanwhile and owns the canary service now", after)
    with progress.trying(scale_down, after):
        retired = ecs.update_service(env.deployer, t.canary_service, desired=0)
    progress.done(f"{t.canary_service} scaled to 0 on {retired.task_definition}, idle for the next rollout")
    # Told before it is recorded: if the ledger write fails, the next run tells again rather than never.
    with progress.trying("notify", after):
        message_id = metrics.notify(
            env.notifier, f"Finalized: {t.stable_service}",
            f"{t.stable_service} now runs {record.image} ({td}) on {plan.stable_desired} tasks and carries 100% of the "
            f"traffic (read back from the load balancer: {weights} stable/canary). {t.canary_service} is at 0 tasks on "
            f"the same task definition, ready for the next rollout.\n\nRollout {record.rollout_id}, finalized by {actor}.",
        )
    progress.done("notified")
    with progress.trying(f"record {DONE!r} in the ledger", after):
        _record(env, {"kind": DONE, "actor": actor, "from_weights": live, "to_weights": weights,
                      "comment": f"{t.stable_service} runs {td} and carries the traffic; {t.canary_service} at 0"},
                weights=weights)
    progress.done(f"recorded {DONE!r} on rollout {record.rollout_id}")
    return FinalizeResult(outcome="finalized", rollout_id=record.rollout_id, image=record.image, task_definition=td,
                          weights=weights, stable_desired=plan.stable_desired, canary_desired=retired.desired,
                          notification_id=message_id, steps=tuple(progress.steps))


def _move_to_stable(env: Environment, record: RolloutRecord, plan: FinalizePlan, live: Weights, actor: str,
                    progress: _Progress, *, stable_timeout_seconds: float, verify_timeout_seconds: float) -> Weights:
    """Record the intent, bring the stable service onto the promoted version, then move the traffic.

    Returns:
        The weights read back: 100 % stable.
    """
    t = env.targets
    td = plan.task_definition
    before = f"The load balancer was not changed: {t.canary_service} still serves {live.canary}% of the traffic on {td}."
    with progress.trying(f"record {START!r} in the ledger", before):
        # canary_task_definition: what the stable service must run, so that a run finding the
        # traffic already moved knows it was moved onto the promoted version.
        _record(env, {"kind": START, "actor": actor, "from_weights": live,
                      "comment": f"moving {td} onto {t.stable_service} at {plan.stable_desired} tasks, then the "
                                 f"traffic from {t.canary_service} to it"},
                canary_task_definition=td)
    progress.done(f"recorded {START!r} on rollout {record.rollout_id}")
    with progress.trying(f"point {t.stable_service} at {td}", before):
        ecs.update_service(env.deployer, t.stable_service, task_definition=td, desired=plan.stable_desired)
    progress.done(f"{t.stable_service} pointed at {td} with {plan.stable_desired} tasks")
    # The waits the rollback makes before it moves traffic: steady, then healthy targets.
    with progress.trying(f"wait until {t.stable_service} is steady with healthy targets", before):
        ecs.wait_stable(env.deployer, [t.stable_service], stable_timeout_seconds)
        healthy = wait_healthy(env, "stable", verify_timeout_seconds)
    progress.done(f"{t.stable_service} is steady with {healthy} healthy target(s) in the stable target group")
    def during() -> str:
        # A refused or unverified write may or may not have landed: say what the load balancer holds.
        try:
            holds = f"the load balancer holds {traffic.get_weights(env.router)} (stable/canary), read back after the failure"
        except Exception as err:  # noqa: BLE001 - the message still says what is known
            holds = f"the load balancer could not be read back ({err})"
        return (f"{t.stable_service} already runs {td}, as {t.canary_service} does, so users see the promoted version "
                f"whichever target group serves them; {holds}.")

    with progress.trying("move the traffic to the stable target group", during):
        traffic.set_weights(env.router, ALL_STABLE)
        weights = traffic.verify_weights(env.router, ALL_STABLE, verify_timeout_seconds)
    progress.done(f"traffic moved: the load balancer holds {weights} (stable/canary), read back")
    return weights


@flow(name="finalize", log_prints=True)
def finalize(
    actor: Actor = "operator",
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    clock: ClockSettings = ClockSettings(),
    stable_timeout_seconds: WaitSeconds = 600.0,
    verify_timeout_seconds: WaitSeconds = 30.0,
) -> FinalizeResult:
    """After a promotion: put the promoted version on the stable service, move the traffic back to
    it and scale the canary to 0, ready for the next rollout (idempotent; run again after a failure).

    ``stable_timeout_seconds``: how long the stable service may take to become steady on the
    promoted version. ``verify_timeout_seconds``: how long to wait for healthy targets, and
    for the load balancer to read back the new weights.
    """
    env = load_environment(targets_block, aws_credentials_block, clock)
    return run_finalize(env, actor=actor, stable_timeout_seconds=stable_timeout_seconds,
                        verify_timeout_seconds=verify_timeout_seconds)
