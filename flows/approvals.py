"""Approval pauses in the Prefect UI: a typed form, the stage's table above it, a timeout policy.

``pause_flow_run(wait_for_input=...)`` blocks the run until a person (or ``rollway promote``,
or the API) resumes it with a validated answer. A pause that times out never promotes: the
spec's ``approvals.on_timeout`` says whether it rolls back or keeps holding.
"""

from __future__ import annotations

from typing import Literal

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Running
from prefect.client.orchestration import get_client
from pydantic import Field

from rollway.approvals import ApprovalAnswer, Approver
from rollway.decide import Pause
from rollway.spec import Approvals


class ApprovalInput(RunInput):
    """The form a person fills in to answer a rollout's pause."""

    action: Literal["approve", "reject", "hold"] = Field(
        description="approve: go on; reject: roll back now; hold: stay at the current weights and ask again"
    )
    approver: str = Field(min_length=1, description="who is answering (recorded in the ledger)")
    comment: str = Field(default="", description="why (recorded in the ledger and the notifications)")
    next_weight: int | None = Field(
        default=None, ge=1, le=100, description="optional: a different next canary weight within the spec's stages"
    )


def _back_to_running() -> None:
    """After a pause timed out the run is still Paused on the server; put it back to Running
    so the rollback (or the next pause) can run its tasks."""
    context = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(context.flow_run.id, Running(), force=True)


def prefect_approver(approvals: Approvals, poll_interval: int = 2) -> Approver:
    """An Approver that pauses the flow run with an ApprovalInput form.

    Args:
        approvals: the spec's timeout policy.
        poll_interval: how often the paused run checks for an answer (seconds); Prefect's
            default of 10 s makes a person wait for nothing.
    """

    def answer(pause: Pause, summary: str) -> ApprovalAnswer:
        log = get_run_logger()
        form = ApprovalInput.with_initial_data(
            description=f"## rollway: {pause.cause} pause\n\n{summary}\n\n"
            "Answer **approve** to continue, **reject** to roll back now, **hold** to stay here.",
            action="approve" if pause.cause == "approval" else "hold",
        )
        try:
            given = pause_flow_run(
                wait_for_input=form,
                timeout=int(approvals.timeout_seconds),
                poll_interval=poll_interval,
            )
        except FlowPauseTimeout:
            _back_to_running()
            action = "reject" if approvals.on_timeout == "rollback" else "hold"
            log.warning("nobody answered within %ss: %s", approvals.timeout_seconds, action)
            return ApprovalAnswer(
                action=action, approver="timeout", timed_out=True,
                comment=f"no answer within {approvals.timeout_seconds:g} s",
            )
        return ApprovalAnswer(
            action=given.action, approver=given.approver, comment=given.comment, next_weight=given.next_weight
        )

    return answer
