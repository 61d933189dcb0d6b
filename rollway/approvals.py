"""Answers people give at a pause, as plain data (the Prefect form lives in flows/approvals.py)."""

from __future__ import annotations

from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from rollway.decide import Pause


COMMENT_LIMIT = 2_000


class ApprovalAnswer(BaseModel):
    """approve: go on; reject: roll back; hold: stay at the current weights and ask again."""

    model_config = ConfigDict(frozen=True)

    action: Literal["approve", "reject", "hold"]
    approver: str = Field(min_length=1)
    # Bounded: the comment is the rollback's reason, in the ledger item (400 KB in all) and the
    # SNS notice; the Prefect form allows 1,000 characters, scripted and API answers this many.
    comment: str = Field(default="", max_length=COMMENT_LIMIT)
    next_weight: int | None = Field(default=None, ge=1, le=100)
    timed_out: bool = False


# Called by the engine at each Pause with the decision and a markdown summary of the stage.
Approver = Callable[[Pause, str], ApprovalAnswer]


def scripted(*answers: ApprovalAnswer) -> Approver:
    """An approver that replays given answers in order (tests, and unattended demo runs)."""
    queue = list(answers)

    def answer(pause: Pause, summary: str) -> ApprovalAnswer:
        if not queue:
            raise RuntimeError(f"no scripted answer left for pause: {pause.reason}")
        return queue.pop(0)

    return answer


def auto_approve(actor: str = "auto") -> Approver:
    """Approves every pause: for flows run with approvals explicitly turned off."""
    return lambda pause, summary: ApprovalAnswer(action="approve", approver=actor, comment="approvals disabled")


def next_stage_for(spec, pause: Pause, next_weight: int, until_stage: int | None = None) -> int:
    """The stage index an approver's ``next_weight`` asks for.

    A person may skip ahead to a later stage of the spec (never back, never to a weight the
    spec does not list, never past the current weekly phase); anything else is refused with
    the reason, so a typo never becomes a traffic shift.
    """
    later = {s.weight: i for i, s in enumerate(spec.stages) if i >= pause.stage_index}
    if next_weight not in later:
        raise ValueError(
            f"next weight {next_weight}% is not a stage of this rollout at or after "
            f"{spec.stages[pause.stage_index].weight}% (choose from {sorted(later)})"
        )
    index = later[next_weight]
    if until_stage is not None and index > until_stage:
        raise ValueError(
            f"next weight {next_weight}% is past this phase, which ends at {spec.stages[until_stage].weight}%"
        )
    return index
