"""What a rollout reports: one row per stage, and the outcome. Pure data plus renderers."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rollway.aws.cloudwatch import window_utc
from rollway.finalize import FinalizeResult
from rollway.judge import rate_percent
from rollway.model import Observation, VersionSample, Verdict, Weights
from rollway.one_line import on_one_line

if TYPE_CHECKING:
    from rich.table import Table


def artifact_key(service: str, suffix: str) -> str:
    """The key of a Prefect artifact about ``service``: Prefect's keys allow lowercase letters,
    digits and dashes only. Here so that the reports, which name the flows' artifacts as
    evidence, spell them as the flows write them."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{service}-{suffix}".lower()).strip("-")


Version = Literal["baseline", "canary"]
VERSIONS: tuple[Version, ...] = ("baseline", "canary")


class StageReport(BaseModel):
    """A stage as it ended: traffic served by each version, the last verdict and the decision.

    ``baseline`` and ``canary`` are None when no metrics could be read in the stage at all, or
    (``none_settled``) when they were but none of their periods had settled when the stage ended,
    and one of them alone (``no_data``) when no period counted had a request count for it:
    nothing was counted, which is not zero traffic (a sample of 0 requests is a measured zero).
    ``counting`` builds one from what the stage counted."""

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
    no_data: tuple[Version, ...] = Field(
        default=(), description="the versions no period counted had a request count for (the load balancer publishes "
                                "no RequestCount for a minute without requests to a target group): no data, not 0 "
                                "requests; their samples are None")
    window: tuple[float, float] | None = Field(
        default=None, description="the metrics window its counts cover: the start of the first period counted and "
                                  "the end of the last (None: no period counted)")

    @model_validator(mode="after")
    def _no_data_has_no_sample(self) -> "StageReport":
        for version in self.no_data:
            if getattr(self, version) is not None:
                raise ValueError(f"the {version} is said to have no data but has a sample; it must be None")
        return self

    @model_validator(mode="after")
    def _none_settled_has_no_samples(self) -> "StageReport":
        # The table shows such a stage as "none settled" in both columns: a sample beside it
        # would be a count the row does not show, and a stage both counted and not.
        for version in VERSIONS:
            if self.none_settled and getattr(self, version) is not None:
                raise ValueError(f"no period settled, yet the {version} has a sample; both must be None")
        return self

    @classmethod
    def counting(cls, observation: Observation | None, **fields: Any) -> "StageReport":
        """The report of a stage that counted ``observation``'s periods (those its verdict stood
        on; None: no read of its metrics succeeded), with ``fields`` as given: what the versions
        served, or why a version has no figures."""
        if observation is None:
            return cls(baseline=None, canary=None, **fields)
        if not observation.intervals:
            # Read, but every period in it was cut as not yet settled (or none had ended): its
            # totals of 0 would read as traffic measured at zero.
            return cls(baseline=None, canary=None, none_settled=True, **fields)
        samples = {version: observation.counted(version) for version in VERSIONS}
        # The flows read from the start of a whole period (``analysis_start``), and an interval's t is its end.
        window = (observation.start, observation.intervals[-1].t)
        return cls(**samples, no_data=tuple(v for v in VERSIONS if samples[v] is None), window=window, **fields)


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
    rule_replaced: str | None = Field(default=None, description=(
        "that the move to stable went over another listener rule than the one the run had looked up, gone since "
        "(replaced by a stack update, say), naming both rules (None: it went over the rule looked up)"))
    stable_desired: int
    canary_desired: int
    canary_task_definition: str
    stable_task_definition: str | None = Field(default=None, description=(
        "the task definition the stable service ran when the rollback put all the traffic on it: what users get"))
    scaled_stable: bool = False
    flags_disabled: tuple[str, ...] = ()
    flags_kept: tuple[str, ...] = Field(default=(), description=(
        "bound flags left on as a person set them after a rollback of the rollout disabled them, or after "
        "`rollway flags release` freed its hold on them (the rollback then disabled nothing), one line each"))
    flags_held: tuple[str, ...] = Field(default=(), description=(
        "bound flags left as they were because another rollout holds them and this one never set them, one line each"))
    notification_id: str | None = None
    traffic_back_seconds: float | None = Field(default=None, description=(
        "wall seconds from this rollback's start to the load balancer's read-back of all the traffic on stable: how "
        "long users stayed on the version rolled back once it was decided, from the rollback's recorded start when a run "
        "before this one began it (None: it was on stable already when this rollback first read it)"))
    traffic_back_at: float | None = Field(default=None, description=(
        "wall-clock epoch seconds this rollback read all the traffic back on stable (None: it was on stable "
        "already when this rollback first read it); its ledger entry keeps them (verified_wall)"))
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
# Those of a version no period counted had a request count for: CloudWatch held none, which is no count of 0.
NO_DATA = ("no data", "-", "-", "-")


def _version_cells(stage: StageReport, version: Version) -> tuple[str, str, str, str]:
    """A version's requests, errors, error rate and p99, as the columns of HEADERS order them."""
    sample: VersionSample | None = getattr(stage, version)
    if sample is None:
        if stage.none_settled:
            return NONE_SETTLED
        if version == "baseline" and stage.weights.stable == 0 and version in stage.no_data:
            # All the traffic on the canary: no request reached the stable version to be counted.
            return (f"no baseline traffic at {stage.weights.canary}%", "-", "-", "-")
        return NO_DATA if version in stage.no_data else NOT_MEASURED
    # Separated by thousands, as the reason in the same row writes them.
    return f"{sample.requests:,}", f"{sample.errors:,}", _rate(sample), _p99(sample)


HEADERS = (
    "stage", "weights s/c", "metrics window", "base req", "base err", "base rate", "base p99 ms",
    "canary req", "canary err", "canary rate", "canary p99 ms", "verdict", "decision", "reason",
)

P99_SAID = ("p99 ms is each version's worst period's: the highest p99 of the analysis periods the stage counted, "
            "not a p99 over all the stage's requests")
"""What the "p99 ms" columns hold. CloudWatch gives a p99 per period, and p99s do not add up: a
stage's is its worst period's (``Observation.totals``), which one slow minute sets. The columns
keep their keys, which the table artifact's readers use; this says what they hold beside them."""


def stage_rows(stages: tuple[StageReport, ...] | list[StageReport]) -> list[tuple[str, ...]]:
    """One row of strings per stage, in HEADERS order."""
    return [
        (
            str(s.stage_index + 1),
            str(s.weights),
            # In UTC, as a CloudWatch dashboard is set to it: the periods the counts beside it sum.
            "-" if s.window is None else window_utc(*s.window),
            *_version_cells(s, "baseline"),
            *_version_cells(s, "canary"),
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
    ``ERROR\\|FATAL`` opened a cell, shifted the rest of the row and lost its last column.
    Other control characters are shown as escapes (``shown``)."""
    return re.sub(r"(\\*)\|", lambda bar: bar.group(1) * 2 + r"\|", on_one_line(text))


def markdown_code_cell(text: str) -> str:
    """``text`` as code in one markdown table cell (``markdown_cell``): its fence one backtick
    longer than its longest run of them, and spaced when it starts or ends with one, so a
    backtick in it (an alarm name may hold any character) no longer ends the code early."""
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return markdown_cell(f"{fence}{pad}{text}{pad}{fence}")


def console_table(stages: tuple[StageReport, ...] | list[StageReport], title: str) -> Table:
    """The per-stage table for a terminal (`rollway demo`): markdown_table's rows and legend, its
    long cells folded rather than cut."""
    from rich.table import Table  # only a terminal needs it: the flows' tables are markdown

    table = Table(title=title, caption=f"{P99_SAID}.", show_lines=False)
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in stage_rows(stages):
        table.add_row(*row)
    return table


def markdown_table(stages: tuple[StageReport, ...] | list[StageReport]) -> str:
    """The per-stage table as markdown (artifacts, approval forms)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in stage_rows(stages):
        lines.append("| " + " | ".join(markdown_cell(cell) for cell in row) + " |")
    # After a blank line: a line right under the table would be read as one more row.
    return "\n".join(lines) + f"\n\n*{P99_SAID}.*"
