"""What a rollout reports: one row per stage, and the outcome. Pure data plus renderers."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rollway.finalize import FinalizeResult
from rollway.judge import rate_percent
from rollway.model import VersionSample, Verdict, Weights


class StageReport(BaseModel):
    """A stage as it ended: traffic served by each version, the last verdict and the decision.

    ``baseline`` and ``canary`` are None when no metrics could be read in the stage at all, or
    (``none_settled``) when they were but none of their periods had settled when the stage ended:
    nothing was counted, which is not zero traffic (a sample of 0 requests is a measured zero)."""

    model_config = ConfigDict(frozen=True)

    stage_index: int
    weights: Weights
    started_at: float
    ended_at: float
    ticks: int
    baseline: VersionSample | None
    canary: VersionSample | None
    verdict: Verdict
    decision: str
    alerts: tuple[str, ...] = Field(default=(), description="each kind of alert raised in the stage, first message")
    none_settled: bool = Field(
        default=False, description="metrics were read, but no period in them had settled (CloudWatch's publication "
                                   "delay) when the stage ended; baseline and canary are then None")


class RolloutResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Literal["promoted", "rolled_back", "paused", "holding"]
    reason: str
    image: str
    final_weights: Weights
    stages: tuple[StageReport, ...] = ()
    rollback: "RollbackResult | None" = None
    finalized: FinalizeResult | None = Field(default=None, description="the canary flow's finalize, with finalize=True")
    monitoring_verified: bool | None = Field(
        default=None, description="whether enough of the monitoring window's checks counted requests to the "
                                  "promoted version (None: no window was watched, or it rolled back)")
    pinned_image: str | None = Field(
        default=None, description="what the canary's revision names: ``image`` pinned to the digest its tag named "
                                  "when the rollout started (None: not known to this result)")


class RollbackResult(BaseModel):
    """What a rollback did, what it read before it moved anything and what it read back afterwards."""

    model_config = ConfigDict(frozen=True)

    reason: str
    weights: Weights
    weights_before: Weights | None = Field(default=None, description=(
        "the weights the load balancer held when the rollback first read it, before it moved anything: what it "
        "moved the traffic from (None: not read, or no split of the stable and canary groups alone)"))
    dropped: str | None = Field(default=None, description=(
        "a target group other than stable and canary the rule had come to forward to, with its weight, which the "
        "move to stable dropped from it (None: none)"))
    stable_desired: int
    canary_desired: int
    canary_task_definition: str
    stable_task_definition: str | None = Field(default=None, description=(
        "the task definition the stable service ran when the rollback put all the traffic on it: what users get"))
    scaled_stable: bool = False
    flags_disabled: tuple[str, ...] = ()
    flags_kept: tuple[str, ...] = Field(default=(), description=(
        "bound flags left on because a person turned them back on after a rollback disabled them, one line each"))
    notification_id: str | None = None
    steps: tuple[str, ...] = Field(default=(), description="what was done, in order")
    done_by: str | None = Field(default=None, description="the other rollback that did all this while this one "
                                                          "waited for it (None: this one did)")


RolloutResult.model_rebuild()


def _rate(sample: VersionSample) -> str:
    # As the verdict's sentence beside it words rates: 1 error in 200,000 requests is not "0.00%".
    return rate_percent(sample.errors / sample.requests) if sample.requests else "-"


def _p99(sample: VersionSample) -> str:
    p99 = sample.latency_p99_ms
    if p99 is None:
        return "-"
    # Whole milliseconds, but a p99 under half of one is not "0": that reads as no time at all.
    return "<1" if 0 < p99 < 0.5 else f"{p99:,.0f}"


# The count cells of a stage no metrics were read in: "0" there read as traffic measured at zero.
NOT_MEASURED = ("not measured", "-", "-", "-")
# Those of a stage whose metrics were read before any of their periods had settled: none was counted.
NONE_SETTLED = ("none settled", "-", "-", "-")


def _version_cells(sample: VersionSample | None, none_settled: bool) -> tuple[str, str, str, str]:
    """A version's requests, errors, error rate and p99, as the columns of HEADERS order them."""
    if sample is None:
        return NONE_SETTLED if none_settled else NOT_MEASURED
    # Separated by thousands, as the reason in the same row writes them.
    return f"{sample.requests:,}", f"{sample.errors:,}", _rate(sample), _p99(sample)


HEADERS = (
    "stage", "weights s/c", "base req", "base err", "base rate", "base p99 ms",
    "canary req", "canary err", "canary rate", "canary p99 ms", "verdict", "decision", "reason",
)


def stage_rows(stages: tuple[StageReport, ...] | list[StageReport]) -> list[tuple[str, ...]]:
    """One row of strings per stage, in HEADERS order."""
    return [
        (
            str(s.stage_index + 1),
            str(s.weights),
            *_version_cells(s.baseline, s.none_settled),
            *_version_cells(s.canary, s.none_settled),
            s.verdict.phase.value,
            s.decision,
            # The reason is the stage's last verdict, an alert its kind's message when first raised (a
            # kind is raised once): its figure ("15.0 s is over 10 s") may be long past by the end.
            s.verdict.reason + "".join(f"; alert: {a} (when first raised)" for a in s.alerts),
        )
        for s in stages
    ]


def markdown_cell(text: str) -> str:
    """One markdown table cell. A line break would end the row (an approver's name comes from a
    text area) and a bare ``|`` would start a new cell: whitespace runs become one space, and
    ``|`` is escaped, so the text reads as typed.

    Backslashes right before a ``|`` are doubled first: the Prefect UI's renderer (marked)
    splits a row at every ``|`` behind an even number of them, so a comment quoting grep's
    ``ERROR\\|FATAL`` opened a cell, shifted the rest of the row and lost its last column."""
    return re.sub(r"(\\*)\|", lambda bar: bar.group(1) * 2 + r"\|", " ".join(text.split()))


def markdown_table(stages: tuple[StageReport, ...] | list[StageReport]) -> str:
    """The per-stage table as markdown (artifacts, approval forms)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in stage_rows(stages):
        lines.append("| " + " | ".join(markdown_cell(cell) for cell in row) + " |")
    return "\n".join(lines)
