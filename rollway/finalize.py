"""Finalizing a promotion: what to do, decided from what the ledger and AWS show (pure, no I/O).

After a promotion the canary service carries all the traffic, so the pair of services cannot
take another rollout. Finalizing puts the promoted task definition on the stable service, moves
the traffic back to it and scales the canary to 0, leaving it idle for the next release, as
Flagger and Argo Rollouts end a promotion. ``flows/finalize.py`` acts on the plan made here.

The ledger records a ``finalize-start`` before anything moves and ``finalized`` at the end, on
the promoted rollout's record (its phase stays promoted): a run that stopped between the two is
finished by the next run, and a finished one is recognised and left alone.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rollway.ledger import RolloutRecord, monitoring_owed, utc
from rollway.model import ServiceState, Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec
from rollway.targets import Targets

START = "finalize-start"
"""Transition recorded before finalize changes anything."""

DONE = "finalized"
"""Transition recorded once the stable service carries the traffic and the canary is at 0."""

ALL_STABLE = Weights(stable=100, canary=0)


class FinalizeRefused(RuntimeError):
    """The service is not in a state finalize may act on; nothing was written or changed."""


class FinalizeIncomplete(RuntimeError):
    """Finalize stopped part-way. What users are served is said in the message, and running
    finalize again carries on from where it stopped.

    Attributes:
        step: the step that failed.
        state: what the load balancer and the services hold now, for a person.
    """

    def __init__(self, step: str, why: str, state: str) -> None:
        self.step, self.state = step, state
        super().__init__(
            f"finalize stopped while it tried to {step}: {why}. {state} Run finalize again (`rollway finalize` "
            "or the finalize deployment) once that step can succeed: it carries on from where it stopped"
        )


class FinalizePlan(BaseModel):
    """What a finalize run does.

    ``start``: move ``task_definition`` onto the stable service, then the traffic, then idle
    the canary. ``after-traffic``: a previous run moved the traffic and stopped; idle the
    canary and record it. ``done``: finalized already, nothing to do.
    """

    model_config = ConfigDict(frozen=True)

    action: Literal["start", "after-traffic", "done"]
    task_definition: str = Field(description="the promoted task definition the stable service runs (or will)")
    stable_desired: int = Field(ge=1, description="tasks the stable service is given to carry all traffic")


class FinalizeResult(BaseModel):
    """What a finalize run did and read back."""

    model_config = ConfigDict(frozen=True)

    outcome: Literal["finalized", "already_finalized"]
    rollout_id: str
    image: str
    task_definition: str
    weights: Weights = Field(description="read back from the load balancer")
    stable_desired: int
    canary_desired: int
    notification_id: str | None = None
    steps: tuple[str, ...] = Field(default=(), description="what was done, in order")


def _last(record: RolloutRecord, kind: str) -> int:
    """Index in the history of the newest transition of ``kind`` (-1: none)."""
    return max((i for i, t in enumerate(record.history) if t.kind == kind), default=-1)


def is_finalized(record: RolloutRecord) -> bool:
    """Whether the rollout's newest finalize finished (a ``finalized`` after the last start)."""
    return record.phase is RolloutPhase.PROMOTED and _last(record, DONE) > _last(record, START)


def finalize_unfinished(record: RolloutRecord | None) -> bool:
    """Whether a finalize of this promoted rollout began and has not finished (its run stopped
    or is still going): until it is run again, a new rollout must not take the canary service."""
    return record is not None and record.phase is RolloutPhase.PROMOTED and _last(record, START) > _last(record, DONE)


def plan_finalize(
    record: RolloutRecord | None,
    spec: RolloutSpec | None,
    *,
    live: Weights,
    stable: ServiceState,
    canary: ServiceState,
    targets: Targets,
) -> FinalizePlan:
    """Decide what a finalize run does, or refuse.

    Args:
        record: the service's newest rollout in the ledger (None: none recorded).
        spec: its recorded spec (``RolloutSpec.for_rollback``: only the window is read).
        live: the load balancer's weights now.
        stable: the stable service now.
        canary: the canary service now.
        targets: the names, for messages.

    Raises:
        FinalizeRefused: no promoted rollout to finalize, its monitoring window is still
            open, or the load balancer and services are not what its promotion left.
    """
    service = targets.canary_service
    if record is None:
        raise FinalizeRefused(
            f"no rollout of {service} is recorded in table {targets.rollouts_table}: finalize completes a promoted "
            "rollout, and there is none (the `canary` flow keeps no ledger). Nothing was changed"
        )
    which = f"rollout {record.rollout_id} of {record.image}"
    if record.phase is not RolloutPhase.PROMOTED:
        raise FinalizeRefused(f"the newest rollout of {service}, {which}, is {record.phase.value}, not promoted: "
                              f"{_not_promoted_hint(record.phase)}. Nothing was changed")
    if monitoring_owed(spec, record):
        promoted = record.last_transition("promote").at
        raise FinalizeRefused(
            f"{which} was promoted at {utc(promoted)} and its {spec.monitor_seconds / 60:g}-minute monitoring window "
            f"is still open (until {utc(promoted + spec.monitor_seconds)}, rollout clock): until it closes, "
            f"{targets.stable_service} keeps the previous version for a cheap rollback. Run finalize again once "
            "the window has passed (`rollway status` then shows a `watched` or `decommission` transition). "
            "Nothing was changed"
        )
    if is_finalized(record):
        if live == ALL_STABLE and canary.desired == 0:
            return FinalizePlan(action="done", task_definition=stable.task_definition,
                                stable_desired=max(stable.desired, 1))
        raise FinalizeRefused(
            f"{which} was finalized already, but since then the load balancer holds {live} (stable/canary) and "
            f"{service} asks for {canary.desired} tasks: that is another rollout (the `canary` flow keeps no ledger) "
            "or a change by hand, not this one. Finish or roll back that rollout instead. Nothing was changed"
        )
    if live.canary == 0:
        if finalize_unfinished(record) and stable.task_definition == record.canary_task_definition:
            # A run moved the traffic and stopped before idling the canary: finish from there.
            return FinalizePlan(action="after-traffic", task_definition=stable.task_definition,
                                stable_desired=max(stable.desired, 1))
        raise FinalizeRefused(
            f"the load balancer sends no traffic to {service} ({live} stable/canary), though {which} was promoted "
            f"and never finalized: {targets.stable_service} serves everything on {stable.task_definition}, not the "
            f"promoted {record.canary_task_definition}. Someone moved the traffic back by hand. A new rollout can "
            f"start from here; or, to keep the promoted version, send the traffic to {service} again and run finalize. "
            "Nothing was changed"
        )
    # The canary serves what users see now: that is the version the stable service takes, with
    # at least the tasks the canary carries it with, what the rollout recorded the stable
    # service needing, and what it asks for already (capacity never shrinks as it takes over).
    needed = max(record.stable_desired or 0, canary.desired, stable.desired, 1)
    return FinalizePlan(action="start", task_definition=canary.task_definition, stable_desired=needed)


def _not_promoted_hint(phase: RolloutPhase) -> str:
    if phase is RolloutPhase.ROLLING_BACK:
        return "a rollback of it began and is not recorded as finished; finish it first (`rollway abort`)"
    if phase.terminal:  # rolled back or failed
        return "the stable service already serves its traffic, so a new rollout can start as things are"
    return "finish it (approve it, `rollway promote`) or roll it back (`rollway abort`) first"
