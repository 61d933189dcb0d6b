"""RolloutSpec: what to roll out and the policy that governs it, validated at construction.

Everything here is checked before any AWS call: a spec that constructs is one the flows can
run. Defaults follow Webordinary's plan (stages 5, 25, 50, 75, 100; approvals before 25% and
100%; week 1 at 5%, week 2 at 25% then 50%, week 3 at 75% then 100% and decommission: the 75 % stage
of the default stages has to fall in some week, and the plan's third week is the one that reaches 100 %).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo, field_validator, model_validator,
)
from pydantic_core import PydanticCustomError

from rollway.bounds import bound_said, field_range_refusal, seconds_said
from rollway.flags import PercentageTooFine, percent_sign_meant, validate_change_percentage
from rollway.image import IMAGE_FORM, image_problem
from rollway.known_keys import KnownKeys, validated_rebuilding
from rollway.weekly import DEFAULT_SCHEDULE_SLACK_SECONDS, DEFAULT_TIMEZONE, zone

if TYPE_CHECKING:
    from rollway.ledger import RolloutRecord

# A key the model does not know is refused, not dropped: a misspelt "aproval" or "on_timout"
# was silently ignored, and the rollout ran without the pause or with the default it named.
# Ledger records store specs as JSON (model_dump_json), and no field has ever been removed or
# renamed, so every recorded key is still a field; a field retired later must be dropped by
# name where records are read, not by letting unknown keys through again.
_STRICT = ConfigDict(frozen=True, allow_inf_nan=False, extra="forbid")

# Validation context of a spec read back from a ledger record (RolloutSpec.from_record).
_RECORDED = "rollway.recorded_spec"


# Upper bounds on the durations that become sleeps, deadlines and datetimes. Without them a
# "never" such as approvals.timeout_seconds=1e12 passed validation, the rollout shifted to 5 %,
# and the run died with an OverflowError (Prefect's Paused computes now + timedelta).
_HOUR = 3600
_DAY = 24 * _HOUR
MAX_BAKE_SECONDS = 30 * _DAY
MAX_APPROVAL_TIMEOUT_SECONDS = 30 * _DAY
MAX_MONITOR_SECONDS = 90 * _DAY
MAX_INTERVAL_SECONDS = _DAY
MAX_METRICS_DELAY_SECONDS = _DAY
MAX_CALIBRATION_SECONDS = 15 * _DAY
MAX_VERIFY_TIMEOUT_SECONDS = _HOUR
# How far back the guardrail reads the load balancer's own 5xx rate before a stage when the judge
# does not calibrate (calibration_seconds 0).
BACKGROUND_SECONDS = _HOUR
# CloudWatch keeps one-minute periods for 15 days, five-minute ones for 63: a GetMetricData whose
# start lies further back than its period's retention returns no data points for that time range.
FINE_PERIOD_RETENTION_SECONDS = 15 * _DAY
COARSE_PERIOD = 300
MAX_PHASE_NAME = 100


def period_retention(interval_seconds: int) -> tuple[float, str]:
    """How long CloudWatch keeps periods of ``interval_seconds``, and that said for people ("1-minute
    data for 15 days"): one-minute data 15 days, five-minute 63, hourly 455."""
    if interval_seconds % COARSE_PERIOD:
        return FINE_PERIOD_RETENTION_SECONDS, "1-minute data for 15 days"
    if interval_seconds % _HOUR:
        return 63 * _DAY, "5-minute data for 63 days"
    return 455 * _DAY, "1-hour data for 455 days"


def outlasts_retention(seconds: float, interval_seconds: int, delay_seconds: float) -> str | None:
    """What to do instead when a span of ``seconds`` (a stage's bake, a monitoring window), read
    back to its start at periods of ``interval_seconds`` published ``delay_seconds`` late, outlasts
    what CloudWatch keeps of those periods ("at most 1295940 s (15 days less ...)"), or None when it
    does not. One rule for both: CloudWatch answers a read of periods it keeps no more with no data,
    which read as minutes that served nobody, not as minutes nobody could see."""
    kept, said = period_retention(interval_seconds)
    if seconds + delay_seconds <= kept:
        return None
    # Every digit: :g said "1.3824e+06 s", and rounded the longest span allowed up to one refused again.
    return (f"at most {seconds_said(kept - delay_seconds)} ({said.split(' for ')[1]} less metrics_delay_seconds, "
            f"{seconds_said(delay_seconds)})"
            + (f", or set interval_seconds to a multiple of {COARSE_PERIOD} (5-minute data is kept 63 days)"
               if interval_seconds % COARSE_PERIOD else ""))


def window_unreadable(window_seconds: float, interval_seconds: int, delay_seconds: float) -> str | None:
    """Why a monitoring window of ``window_seconds`` cannot be watched at periods of
    ``interval_seconds`` published ``delay_seconds`` late, or None: it outlasts what CloudWatch keeps
    of those periods (``outlasts_retention``). A window resumed near its end reads back to its opening."""
    instead = outlasts_retention(window_seconds, interval_seconds, delay_seconds)
    if instead is None:
        return None
    return (f"a monitoring window of {seconds_said(window_seconds)} is longer than CloudWatch keeps "
            f"{period_retention(interval_seconds)[1]} (interval_seconds {interval_seconds}): a run resuming it near "
            f"its end could not read its first minutes. Watch {instead}")


def _at_most(field: str, limit: int, instead: str):
    """A wrap validator for ``field`` (declared with ``le=limit``) whose error for a value over
    the limit says what the limit is and what to do instead."""

    def check(cls, value, handler):
        try:
            return handler(value)
        except ValidationError as err:
            if not any(e["type"] == "less_than_equal" for e in err.errors()):
                raise
            raise PydanticCustomError(
                "less_than_equal",
                f"{field} must be at most {bound_said(limit, seconds=True)}; {instead}",
            ) from None

    return field_validator(field, mode="wrap")(classmethod(check))


def _range_said(model: type[BaseModel], error: dict[str, Any]) -> str | None:
    """``error`` (one of ``model``'s) in the words of the spec's other refusals when it is
    pydantic's for a number outside the range of one of ``model``'s own fields: the field, its
    whole range and the value given. pydantic said only the bound crossed ("Input should be less
    than 0.5"), and "a finite number" for nan, with no range at all. None for any other error: a
    refusal of rollway's own (``_at_most``'s), one inside a field (a flag schedule's key), or a
    part's, which the part has said in these words already.
    """
    return field_range_refusal(model, error) if error["msg"].startswith("Input should") else None


class _RangesSaid(KnownKeys):
    """A model of the spec, alone or within one: a number outside its field's range is refused
    naming the field, its range and the value given (``_range_said``), not in pydantic's words."""

    @model_validator(mode="wrap")
    @classmethod
    def _ranges_said(cls, data: Any, handler):
        # Each model says its own fields' ranges, so a stage built alone says them as a spec's
        # stage does; a part's error, said by the part, is kept as it is (KnownKeys keeps it too).
        # Defined after KnownKeys' own validator, this one wraps it and sees the errors it rebuilt.
        def rebuilt(errors: list[dict]) -> list[dict] | None:
            said = [_range_said(cls, error) for error in errors]
            if not any(said):
                return None
            # Every error rebuilt with its message: rebuilt from its type alone, one pydantic has
            # words for would lose the spec's own (an unknown key's "did you mean 'alpha'?").
            return [{**error, "type": PydanticCustomError(error["type"], new or error["msg"])}
                    for error, new in zip(errors, said)]
        return validated_rebuilding(handler, data, rebuilt)


def _no_percent_sign(what: str, value: object) -> None:
    """Refuse "50%" saying to give 50: pydantic said only that it could not parse the string."""
    meant = percent_sign_meant(value)
    if meant is not None:
        raise ValueError(f"{what} is a number of percent: give {meant}, not {value!r}")


def _new_spec(info: ValidationInfo) -> bool:
    """Whether the rules a spec must meet to start a rollout apply: not to a recorded spec.

    A rollout recorded before a rule existed must still be read back, or its rollback (the
    rollback flow, `rollway abort`) could not read its record; only what a new spec is held to
    (a last stage of 100, a phase plan, bakes of a whole period, schedules on stage weights)
    is waived, never the types and ranges every spec has always had.
    """
    return not (info.context or {}).get(_RECORDED, False)


class Stage(_RangesSaid):
    """One traffic step: shift the canary to ``weight`` percent, then bake under the judge.

    ``min_bake_seconds`` lets a judge with enough evidence pass the stage early; a judge never
    passes before it, and ``bake_seconds`` bounds how long the stage observes.
    """

    model_config = _STRICT

    weight: int = Field(ge=1, le=100, description="the canary's share of the traffic at this stage, in percent 1..100")
    bake_seconds: float = Field(
        default=600.0, gt=0, le=MAX_BAKE_SECONDS,
        description="how long the stage is judged before it passes, in seconds (at most 30 days)",
    )

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: object) -> object:
        # "stages": [5, 25, 100] is the usual first try: pydantic said only "Input should be a
        # valid dictionary or instance of Stage", once per stage.
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            raise ValueError(f"a stage is an object, not the number {data!r}: write {{\"weight\": {data!r}}} (with "
                             "bake_seconds or approval beside it as needed)")
        return data

    @field_validator("weight", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        # pydantic reads true as 1: a form's checkbox would become a 1 % stage.
        if isinstance(value, bool):
            raise ValueError(f"a stage weight is a percentage 1..100, not {str(value).lower()}")
        _no_percent_sign("a stage weight", value)
        return value

    min_bake_seconds: float | None = Field(
        default=None, ge=0,
        description="seconds after which the judge may pass the stage, given enough evidence (empty: at bake_seconds)",
    )
    approval: bool = Field(default=False, description="pause for a person before this stage")

    _bake_bound = _at_most("bake_seconds", MAX_BAKE_SECONDS,
                           "to hold at this weight for longer, end a weekly phase at this stage")

    @model_validator(mode="after")
    def _min_within_bake(self) -> "Stage":
        if self.min_bake_seconds is not None and self.min_bake_seconds > self.bake_seconds:
            # The bake and the stage said: with bake_seconds left out, "cannot exceed bake_seconds"
            # named a figure the person never wrote, in a list that pydantic names by index alone.
            default = "" if "bake_seconds" in self.model_fields_set else " (the default)"
            raise ValueError(f"stage {self.weight}%: min_bake_seconds {seconds_said(self.min_bake_seconds)} cannot "
                             f"exceed bake_seconds {seconds_said(self.bake_seconds)}{default}: raise bake_seconds or "
                             "lower min_bake_seconds")
        return self

    @property
    def earliest_pass_seconds(self) -> float:
        return self.bake_seconds if self.min_bake_seconds is None else self.min_bake_seconds


class Guardrails(_RangesSaid):
    """The seed's absolute thresholds; they apply whatever the judge says."""

    model_config = _STRICT

    canary_error_rate: float = Field(default=0.01, gt=0, le=1,
                                     description="roll back above, during canary stages (a fraction below 1: 0.01 is 1 %)")
    monitor_error_rate: float = Field(default=0.05, gt=0, le=1,
                                      description="roll back above, while monitoring (a fraction below 1: 0.05 is 5 %)")
    dlq_messages: int = Field(default=0, ge=0, description="alert when the dead-letter queues gain more than this "
                                                           "many messages in a stage or the monitoring window")
    response_time_seconds: float = Field(default=10.0, gt=0, description="alert above (average)")
    min_errors: int = Field(default=5, ge=1, description="errors the canary must have before an error-rate guardrail acts")

    @field_validator("canary_error_rate", "monitor_error_rate")
    @classmethod
    def _can_be_exceeded(cls, value: float, info: ValidationInfo) -> float:
        # The guardrail rolls back above its rate, and no error rate is above 1: a rate of 1 (meant
        # as 1 %, or as "off") was taken, and that guardrail then never acted whatever the canary did.
        if value == 1 and _new_spec(info):
            raise ValueError(f"{info.field_name} 1 can never be exceeded (an error rate is at most 1), so the guardrail "
                             "would never act: it is a fraction of requests, 0.01 for 1 %")
        return value


JudgedMetric = Literal["errors", "slow"]
"""What the sequential judge compares (``Analysis.metrics``); `rollway judge --replay --metrics` takes these."""


class Analysis(_RangesSaid):
    """How stages are judged."""

    model_config = _STRICT

    judge: Literal["threshold", "sequential"] = Field(
        default="sequential",
        description="sequential (anytime-valid, against the baseline) or threshold (the fixed error-rate check)",
    )
    # ALB metrics have one-minute resolution: CloudWatch accepts only periods that are multiples of 60 for them.
    interval_seconds: int = Field(
        default=60, ge=60, le=MAX_INTERVAL_SECONDS, multiple_of=60,
        description="one CloudWatch period per analysis tick (a multiple of 60 s, at most a day)",
    )
    # From 1e-9: alpha is split over the metrics and inverted into the rollback bar, and a
    # subnormal alpha split in two is 0.
    alpha: float = Field(default=0.01, ge=1e-9, lt=0.5, description="probability of rolling back a healthy canary")
    margin: float = Field(default=0.001, ge=0, lt=1,
                          description="the canary passes once its own rate is shown below this, whatever the baseline's (one-sample: below the SLO plus this; 0: off)")
    mode: Literal["two-sample", "one-sample"] = Field(
        default="two-sample",
        description="two-sample (against the baseline) or one-sample (against slo_error_rate and slo_slow_rate)",
    )
    # SLOs stop at 50 %: the judge's alternatives are multiples (from 1.3x) of the SLO, which
    # must stay rates below 100 %.
    slo_error_rate: float = Field(default=0.001, gt=0, le=0.5, description="one-sample mode: the error rate the canary is held to")
    # ALB metrics give no count of requests over a threshold (and moto serves no extended
    # statistics to test one against), so slow counts come from the service's own
    # SlowRequestCount metric: this field states its threshold, it does not set it.
    slow_threshold_ms: float = Field(
        default=2000.0, gt=0,
        description="the latency over which the service's SlowRequestCount metric counts a request as slow "
        "(the traffic simulator counts at this threshold; on AWS the service's own setting must match it)",
    )
    min_requests: int = Field(default=50, ge=1, description="canary requests below which a stage is inconclusive")
    # CloudWatch publishes ALB metrics about a minute late: rollbacks use every period, and the final
    # verdict's wait lets the stage's last period be judged too (README, "Late metrics").
    metrics_delay_seconds: float = Field(
        default=60.0, ge=0, le=MAX_METRICS_DELAY_SECONDS,
        description="how late a period's metrics may arrive: a stage passes only on periods that ended this long "
        "ago, and its verdict waits this long after its bake",
    )
    # Sequential judge (rollway/judge/sequential.py); the threshold judge ignores these.
    # One extra GetMetricData per stage: counts close to Poisson let one overwhelming interval roll
    # back, bursty ones keep needing two. At 0 the guardrail still reads the hour before each stage
    # for the load balancer's own 5xx rate, hence interval_seconds at most 3600 then.
    calibration_seconds: int = Field(
        default=3600, ge=0, le=MAX_CALIBRATION_SECONDS,
        description="seconds of the baseline's metrics read before each stage to measure how bursty its errors "
        "are; 0: off for the judge (interval_seconds then at most 3600), otherwise at least interval_seconds",
    )
    metrics: tuple[JudgedMetric, ...] = Field(
        default=("errors", "slow"),
        min_length=1,
        description="what the sequential judge compares: errors (the error rate), slow (the share of requests "
        "over slow_threshold_ms); alpha is split evenly across them",
    )
    margin_ratio: float = Field(
        default=2.0,
        gt=1,
        description="a canary may also pass once shown below this multiple of the baseline's rate (one-sample: of the SLO)",
    )
    slo_slow_rate: float = Field(
        default=0.01, gt=0, le=0.5, description="one-sample mode: the share of slow requests the canary is held to"
    )

    @field_validator("metrics")
    @classmethod
    def _each_metric_once(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        # alpha is split over the entries: a metric named twice halves every metric's share, a
        # stricter judge nobody asked for (slower promotions, more inconclusive stages).
        if _new_spec(info) and len(set(value)) != len(value):
            raise ValueError(f"name each metric once: {list(value)} names one twice, and alpha is split evenly "
                             "across the entries")
        return value

    @model_validator(mode="after")
    def _background_reads_a_period(self, info: ValidationInfo) -> "Analysis":
        # With calibration off, the guardrail still reads the hour before each stage for the load
        # balancer's own 5xx rate (flows/engine.py's baseline_history): periods longer than that
        # hour leave it no whole period, so every load-balancer 5xx of a stage could be the
        # canary's, and a steady background held a healthy canary at a low weight.
        if self.calibration_seconds == 0 and self.interval_seconds > BACKGROUND_SECONDS and _new_spec(info):
            raise ValueError(
                f"calibration_seconds 0 with interval_seconds {self.interval_seconds}: the guardrail still reads the "
                f"{BACKGROUND_SECONDS} s before each stage for the load balancer's own 5xx rate, which holds no whole "
                f"period of {self.interval_seconds} s; give calibration_seconds of at least {self.interval_seconds}, "
                f"or interval_seconds of at most {BACKGROUND_SECONDS}")
        return self

    @model_validator(mode="after")
    def _calibration_reads_a_period(self, info: ValidationInfo) -> "Analysis":
        # The read before a stage takes whole periods only: fewer seconds than one period read
        # nothing at all, so the judge got no calibration and the guardrail no rate of the load
        # balancer's own 5xx before the stage (which 0 still reads an hour for), and every one
        # of them then counted as the canary's, holding a healthy canary at a low weight.
        if 0 < self.calibration_seconds < self.interval_seconds and _new_spec(info):
            default = "" if "calibration_seconds" in self.model_fields_set else " (the default)"
            raise ValueError(
                f"calibration_seconds {self.calibration_seconds}{default} is less than one period (interval_seconds "
                f"{self.interval_seconds}) and would read nothing before each stage; use 0 to turn calibration "
                f"off (the guardrail still reads the hour before), or at least {self.interval_seconds}")
        return self

    _interval_bound = _at_most("interval_seconds", MAX_INTERVAL_SECONDS,
                               "a stage is judged on whole periods, and bakes for at most 30 days")
    _delay_bound = _at_most("metrics_delay_seconds", MAX_METRICS_DELAY_SECONDS,
                            "CloudWatch publishes ALB metrics about a minute late")
    _calibration_bound = _at_most("calibration_seconds", MAX_CALIBRATION_SECONDS,
                                  "CloudWatch keeps one-minute data for 15 days; 0 turns calibration off")


class Approvals(_RangesSaid):
    """What happens when nobody answers an approval pause."""

    model_config = _STRICT

    timeout_seconds: float = Field(default=3600.0, gt=0, le=MAX_APPROVAL_TIMEOUT_SECONDS,
                                   description="how long a pause waits for an answer, in seconds (at most 30 days)")
    on_timeout: Literal["rollback", "hold"] = Field(
        default="rollback", description="what an unanswered pause does: rollback, or hold (stay and ask again)"
    )

    _timeout_bound = _at_most(
        "timeout_seconds", MAX_APPROVAL_TIMEOUT_SECONDS,
        "to wait for an answer indefinitely, set on_timeout: hold, which keeps the rollout where it is and asks "
        "again after every timeout",
    )


class WeeklyPhase(_RangesSaid):
    """A weekly phase: the stages (by weight) it runs, and whether it ends by decommissioning."""

    model_config = _STRICT

    name: str = Field(description="the phase's name (one line: week 1), shown in the ledger, notices and summaries")
    weights: tuple[int, ...] = Field(description="the stage weights (percent) this phase runs, in order")
    decommission: bool = Field(
        default=False, description="scale the old service to zero after a clean monitoring window (last phase only)"
    )

    @field_validator("name")
    @classmethod
    def _a_name_to_show(cls, value: str, info: ValidationInfo) -> str:
        # The name is what people read of a phase: the ledger's "starting <name>", the summary's
        # "holding after <name>" heading, "<name> may start from ...". Blank, those lines named
        # nothing; a line break in it ended the summary's heading and began markdown of its own.
        # A recorded spec is read back as it was.
        if not _new_spec(info):
            return value
        value = value.strip()
        if not value:
            raise ValueError("a weekly phase needs a name (like 'week 1'): it is shown in the ledger and the "
                             "run's summary")
        if len(value) > MAX_PHASE_NAME or not value.isprintable():
            shown = repr(value) if len(value) <= 40 else f"{value[:40]!r}..."
            raise ValueError(f"phase name {shown} must be one line of at most {MAX_PHASE_NAME} printable characters")
        return value

    @field_validator("weights")
    @classmethod
    def _non_empty(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("a phase needs at least one stage weight")
        return value


class FlagBinding(_RangesSaid):
    """A feature flag whose rollout percentage follows the traffic (or a schedule of its own)."""

    model_config = _STRICT

    feature: str = Field(min_length=1, description="the feature flag's name; a rollback disables it")
    follow: Literal["traffic", "schedule"] = Field(
        default="traffic",
        description="traffic: its percentage is the canary's weight; schedule: the percentages schedule gives",
    )

    @field_validator("feature")
    @classmethod
    def _usable_name(cls, value: str) -> str:
        from rollway.flags import InvalidFlagInput, validate_feature

        try:
            return validate_feature(value)
        except InvalidFlagInput as err:  # pydantic reports ValueErrors as validation errors
            raise ValueError(str(err)) from None
    schedule: dict[int, float] = Field(
        default_factory=dict, description="stage weight -> flag percentage, when follow='schedule'"
    )

    @field_validator("schedule", mode="before")
    @classmethod
    def _percentages_without_sign(cls, value: object) -> object:
        if isinstance(value, dict):
            for weight, pct in value.items():
                _no_percent_sign(f"the flag percentage at stage {weight}", pct)
        return value

    @model_validator(mode="after")
    def _schedule_valid(self, info: ValidationInfo) -> "FlagBinding":
        if self.follow == "schedule" and not self.schedule:
            raise ValueError(f"flag {self.feature!r} follows a schedule but has none")
        if self.follow == "traffic" and self.schedule and _new_spec(info):
            # It used to be ignored without a word: the flag followed the traffic instead.
            raise ValueError(
                f"flag {self.feature!r} follows the traffic but has a schedule; set follow='schedule' to use it"
            )
        for weight, pct in self.schedule.items():
            if not 0 <= pct <= 100:
                raise ValueError(f"flag {self.feature!r}: percentage {pct} outside 0..100")
            if not _new_spec(info):
                continue
            try:
                # Refused as `rollway flags set` refuses it: the stage stored it rounded (0.004 as 0,
                # off for every user) without a word.
                validate_change_percentage(pct)
            except PercentageTooFine as fine:
                raise ValueError(str(fine.named(f"flag {self.feature!r}: the percentage at stage {weight},"))) from None
        ordered = [self.schedule[w] for w in sorted(self.schedule)]
        if _new_spec(info) and any(later < earlier for earlier, later in zip(ordered, ordered[1:])):
            # Bucketing keeps a user who has the feature at p % at every higher percentage; a
            # schedule that falls takes it away from users as the rollout goes on.
            raise ValueError(
                f"flag {self.feature!r}: its schedule {dict(sorted(self.schedule.items()))} falls as the traffic "
                "grows; a rollout only widens a flag (disable it with `rollway flags set` to take it away)"
            )
        return self

    def percentage_at(self, weight: int) -> float:
        """The flag percentage while the canary serves ``weight`` percent."""
        if self.follow == "traffic":
            return float(weight)
        reached = [w for w in self.schedule if w <= weight]
        return float(self.schedule[max(reached)]) if reached else 0.0


def default_stages() -> tuple[Stage, ...]:
    return (
        Stage(weight=5),
        Stage(weight=25, approval=True),
        Stage(weight=50),
        Stage(weight=75),
        Stage(weight=100, approval=True),
    )


def default_phases() -> tuple[WeeklyPhase, ...]:
    return (
        WeeklyPhase(name="week 1", weights=(5,)),
        WeeklyPhase(name="week 2", weights=(25, 50)),
        WeeklyPhase(name="week 3", weights=(75, 100), decommission=True),
    )


class RolloutSpec(_RangesSaid):
    """One rollout: the image to ship and the policy to ship it with."""

    model_config = _STRICT

    image: str = Field(description="the container image of the new version, e.g. repo:1.4.0")
    stages: tuple[Stage, ...] = Field(
        default_factory=default_stages, description="the traffic steps, by increasing weight; the last one is 100 %"
    )
    analysis: Analysis = Field(default_factory=Analysis,
                               description="how each stage is judged: the judge, its period, its error margins")
    guardrails: Guardrails = Field(default_factory=Guardrails,
                                   description="absolute thresholds that roll back or alert, whatever the judge says")
    approvals: Approvals = Field(default_factory=Approvals,
                                 description="how long an approval pause waits, and what an unanswered one does")
    phases: tuple[WeeklyPhase, ...] = Field(
        default_factory=default_phases,
        description="the weekly plan: the stages each phase runs (leave it out to run every stage as one phase)",
    )
    # Counted on the wall clock, so a week across a daylight-saving switch counts 7 days, less the
    # slack for the scheduled runs' start-up delays: a 7-day minimum passes at the next week's cron;
    # a phase that reached its last weight in a later week than it started waits a week more (weekly.py).
    min_phase_seconds: float = Field(
        default=3 * _DAY, ge=0, le=30 * _DAY,
        description="how long a weekly phase runs at least from its start (at most 30 days), on the "
        "weekly_timezone's wall clock less schedule_slack_seconds; reaching its last weight a week late, into the next week",
    )
    # The scheduled runs start some seconds to minutes after their cron time, by a little more or
    # less each week; at 0 a 7-day minimum may wait a week more.
    schedule_slack_seconds: float = Field(
        default=DEFAULT_SCHEDULE_SLACK_SECONDS, ge=0,
        description="how much shorter than min_phase_seconds a phase may have run when the weekly schedule ends it, "
        "for the scheduled runs' start-up delays (0: exact); less than min_phase_seconds",
    )
    weekly_timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        description="the IANA time zone (UTC, Europe/Berlin, ...) whose weeks the phase plan counts, from Monday "
        "00:00 there. Give the advance_phase schedule's zone (a run warns if its clocks differ)",
    )
    flags: tuple[FlagBinding, ...] = Field(
        default=(), description="feature flags whose percentage follows the stages; a rollback disables them"
    )
    verify_timeout_seconds: float = Field(
        default=30.0, gt=0, le=MAX_VERIFY_TIMEOUT_SECONDS, description=(
            "how long a weight read-back may lag; also ends each read of the load balancer's weights a run waits on")
    )
    healthy_timeout_seconds: float = Field(
        default=300.0, gt=0, le=MAX_VERIFY_TIMEOUT_SECONDS,
        # A rollback waits the longer of 300 s (flows.rollback.DEFAULT_HEALTHY_SECONDS) and this for
        # a healthy stable target: the preflight checks the stable group's health check against it.
        description="how long new tasks may take to pass health checks: at least the canary group's "
        "HealthCheckIntervalSeconds + HealthCheckTimeoutSeconds, and the stable group's when over 300 s "
        "(checked before any write)",
    )
    scale_timeout_seconds: float = Field(
        default=600.0, gt=0, le=MAX_VERIFY_TIMEOUT_SECONDS,
        description="how long ECS may take to start the canary's new tasks when a stage scales it up "
        "(steady state on the rollout's revision), before the health-check wait begins",
    )
    monitor_seconds: float = Field(
        default=3600.0, ge=0, le=MAX_MONITOR_SECONDS,
        description="after 100%: how long to watch before decommissioning the old service (at most 90 days)",
    )

    _verify_bound = _at_most("verify_timeout_seconds", MAX_VERIFY_TIMEOUT_SECONDS,
                             "it bounds how long a weight read-back may take")
    # A new target is "initial" until it passes the target group's healthy threshold of checks
    # (AWS's defaults: 5 checks 30 s apart) after its task is RUNNING, which is all the ECS wait
    # waits for: this wait is minutes where a weight read-back is seconds.
    _healthy_bound = _at_most("healthy_timeout_seconds", MAX_VERIFY_TIMEOUT_SECONDS,
                              "it bounds how long a scaled-up service's targets may take to become healthy")
    # A large image on Fargate can take minutes to pull and start: a scale-up that outlasts a
    # fixed wait failed the run, and its hook rolled a healthy rollout back.
    _scale_bound = _at_most("scale_timeout_seconds", MAX_VERIFY_TIMEOUT_SECONDS,
                            "it bounds how long ECS may take to start the canary's new tasks")
    _monitor_bound = _at_most("monitor_seconds", MAX_MONITOR_SECONDS,
                              "watch for longer with your own alarms after the window")

    @field_validator("image")
    @classmethod
    def _image_valid(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("image must not be empty")
        problem = image_problem(value)
        if problem:
            # The old check let through a pasted URL, two tags and an empty path component:
            # the run registered a task definition and updated the canary service with it.
            raise ValueError(f"image {value!r} {problem}; an image is {IMAGE_FORM}")
        return value

    @field_validator("weekly_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # Checked here, so a misspelt zone refuses the run before any AWS call (Prefect validates
        # the spec parameter before the body starts), not the weekly schedule a week later.
        value = value.strip()
        zone(value)
        return value

    @field_validator("stages")
    @classmethod
    def _stages_increasing(cls, value: tuple[Stage, ...], info: ValidationInfo) -> tuple[Stage, ...]:
        if not value:
            raise ValueError("a rollout needs at least one stage")
        weights = [s.weight for s in value]
        for before, after in zip(weights, weights[1:]):
            if after <= before:
                # Which pair, and the fix: in a list of ten, "got [...]" left the reader to find it.
                raise ValueError(f"stage weights must be strictly increasing, got {weights}: {after} comes after "
                                 f"{before} (list each weight once, from the smallest to 100)")
        if weights[-1] != 100 and _new_spec(info):
            # A plan ending below 100 % was "promoted" with the old version still serving the
            # rest, which nothing watched and `rollway abort` could not undo. Holding at a lower
            # weight is what a weekly phase does: end a phase there, not the stage list.
            raise ValueError(
                f"the last stage must be 100 (stages are {weights}): to hold at a lower weight for a "
                "while, end a weekly phase there"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _phases_follow_custom_stages(cls, data):
        # Custom stages without a phase plan run as one phase, instead of failing against
        # the default weekly plan the user never asked for.
        if isinstance(data, dict) and "stages" in data and "phases" not in data:
            stages = data["stages"]
            # Anything but a list of valid stages is left for the field's own validation to report
            # (null, a number, a bad stage): raised from here, it was a bare TypeError, which
            # Prefect and the rollback hooks did not recognise as a bad parameter.
            if not isinstance(stages, (list, tuple)) or not stages:
                return data
            try:
                weights = tuple(s.weight if isinstance(s, Stage) else Stage.model_validate(s).weight for s in stages)
            except ValidationError:
                return data
            data = {**data, "phases": (WeeklyPhase(name="all stages", weights=weights),)}
        return data

    @model_validator(mode="after")
    def _slack_under_the_minimum(self, info: ValidationInfo) -> "RolloutSpec":
        # A slack as long as the minimum makes the minimum count for nothing, and a phase started
        # on Sunday evening ended the next morning without a word. A minimum of 0 asks for none, so
        # the slack does not matter then; a recorded spec runs as it was recorded.
        if _new_spec(info) and 0 < self.min_phase_seconds <= self.schedule_slack_seconds:
            raise ValueError(
                f"schedule_slack_seconds ({seconds_said(self.schedule_slack_seconds)}) must be less than "
                f"min_phase_seconds ({seconds_said(self.min_phase_seconds)}), or the minimum counts for nothing: lower "
                "schedule_slack_seconds (0 counts the minimum exactly) or raise min_phase_seconds"
            )
        return self

    @model_validator(mode="after")
    def _phases_cover_stages(self, info: ValidationInfo) -> "RolloutSpec":
        stage_weights = [s.weight for s in self.stages]
        if _new_spec(info):
            self._runnable(stage_weights)
        phase_weights = [w for p in self.phases for w in p.weights]
        names = [p.name for p in self.phases]
        if _new_spec(info) and len(set(names)) != len(names):
            # "holding after week 2; week 2 may start from ..." could not tell people which phase held.
            raise ValueError(f"name each phase once: the phase plan names {names}")
        if self.phases and phase_weights != stage_weights:
            # The usual cause is stages changed and phases kept (or copied from the default plan):
            # say the way out, not only the mismatch.
            raise ValueError(
                f"the phase plan must run the stages in order: phases give {phase_weights}, stages are "
                f"{stage_weights}; list every stage's weight once across the phases, in order, or leave `phases` "
                "out to run every stage as one phase"
            )
        # Decommissioning scales the old service to zero: only once the new one has all the traffic.
        ends_at_100 = self.stages[-1].weight == 100
        for i, phase in enumerate(self.phases):
            if phase.decommission and (i != len(self.phases) - 1 or not ends_at_100):
                raise ValueError(
                    f"phase {phase.name!r} decommissions the old service: only the last phase may, and only "
                    f"when the last stage is 100% (stages are {stage_weights})"
                )
        names = [f.feature for f in self.flags]
        if len(set(names)) != len(names):
            raise ValueError("a flag may be bound only once")
        return self

    def _runnable(self, stage_weights: list[int]) -> None:
        """Rules a spec must meet to start a rollout (waived for recorded specs: see _new_spec)."""
        if not self.phases:
            # An empty plan runs no phase: the run crashed after deploying the canary.
            raise ValueError("a phase plan needs at least one phase: leave phases out to run every stage as one "
                             "phase, or list the weekly phases")
        interval = self.analysis.interval_seconds
        short = [s.weight for s in self.stages if s.bake_seconds < interval]
        if short:
            # The judge reads whole periods of interval_seconds: a shorter stage never has one,
            # and ends Inconclusive (a pause for a person) however healthy the canary is.
            raise ValueError(
                f"stage(s) {short}% bake for less than one analysis interval ({interval} s), "
                "so the judge would never see a whole period to pass them: bake at least that long"
            )
        # Every look reads the stage from its first period, until its bake and the metrics' delay are
        # over. At a period CloudWatch keeps only 15 days, a stage baking longer lost its periods from
        # the start as they aged: from day 15 on the judge and the guardrail read no data, and a
        # canary that began failing then was never rolled back. The monitoring window's rule.
        delay = self.analysis.metrics_delay_seconds
        instead = outlasts_retention(max((s.bake_seconds for s in self.stages), default=0), interval, delay)
        if instead is not None:
            long = [s.weight for s in self.stages if outlasts_retention(s.bake_seconds, interval, delay) is not None]
            raise ValueError(
                f"stage(s) {long}% bake longer than CloudWatch keeps periods of interval_seconds {interval}: "
                f"{period_retention(interval)[1].split(' for ')[1]}, and a look further back returns no data, so "
                f"from then on the stage would be judged blind; bake {instead}"
            )
        unreadable = window_unreadable(self.monitor_seconds, interval, self.analysis.metrics_delay_seconds)
        if unreadable is not None:
            raise ValueError(f"monitor_seconds: {unreadable}")
        for binding in self.flags:
            strays = sorted(w for w in binding.schedule if w not in stage_weights)
            if strays:
                # A key is the stage the percentage applies from: anything else never applies
                # where it says (a weight between stages applies at the next one, unseen).
                raise ValueError(
                    f"flag {binding.feature!r}: schedule keys {strays} are not stage weights (stages are {stage_weights})"
                )

    def phase_calendar(self, record: "RolloutRecord | None" = None) -> dict:
        """The weekly calendar's rules of this spec, as ``rollway.weekly.phase_wait`` and
        ``next_phase_due`` take them: the zone, the minimum and the schedule's slack; with the
        ledger's ``record``, also when its current phase reached its last weight (its last stage's
        weights set, as recorded: a resumed run keeps it): reached in a later week than the phase
        started, the next phase waits for the week after it."""
        calendar = {"timezone": self.weekly_timezone, "min_phase_seconds": self.min_phase_seconds,
                    "slack_seconds": self.schedule_slack_seconds}
        if record is not None and 0 <= record.weekly_phase_index < len(self.phases) \
                and record.stage_index >= phase_end_stage(self, record.weekly_phase_index):
            calendar["at_weight_since"] = record.stage_started_at
        return calendar

    @classmethod
    def from_record(cls, spec_json: str) -> "RolloutSpec":
        """Read a spec back from a ledger record (its ``spec_json``), without the rules a new
        spec must meet (see ``_new_spec``): a rollout recorded before a rule existed must still
        be resumed and rolled back. A spec from a person goes through ``model_validate``."""
        return cls.model_validate_json(spec_json, context={_RECORDED: True})

    @classmethod
    def for_rollback(cls, spec_json: str) -> "RolloutSpec":
        """A recorded spec for a rollback, which must act even on a record today's field rules
        refuse (say, an ``interval_seconds`` of 30, accepted before periods had to be whole
        minutes): if the whole spec does not validate, only what a rollback reads is (the
        image, the bound flags, the phase plan's end, the monitoring window, the read-back
        wait, the healthy-target wait and the scale-up wait), and the rest keeps its defaults. A resume, which
        runs the policy, uses ``from_record`` and refuses.
        """
        try:
            return cls.from_record(spec_json)
        except ValidationError:
            raw = json.loads(spec_json)
            context = {_RECORDED: True}
            parts = {
                "image": raw["image"],
                "flags": TypeAdapter(tuple[FlagBinding, ...]).validate_python(raw.get("flags", ()), context=context),
            }
            # The window, and how long its load balancer may take to read back, its targets to pass
            # their health checks and ECS to start its tasks: a rollback waits at least that.
            for name in ("monitor_seconds", "verify_timeout_seconds", "healthy_timeout_seconds",
                         "scale_timeout_seconds"):
                parts[name] = TypeAdapter(float).validate_python(raw.get(name, cls.model_fields[name].default))
            if raw.get("phases"):
                parts["phases"] = TypeAdapter(tuple[WeeklyPhase, ...]).validate_python(raw["phases"], context=context)
            return cls.model_construct(**parts)

    @property
    def weights(self) -> tuple[int, ...]:
        return tuple(s.weight for s in self.stages)

    def stage_index(self, weight: int) -> int:
        """Index of the stage at ``weight``; raises for a weight that is not a stage."""
        try:
            return self.weights.index(weight)
        except ValueError:
            raise ValueError(f"{weight}% is not a stage of this rollout ({list(self.weights)})") from None


def phase_end_stage(spec: RolloutSpec, phase_index: int) -> int:
    """Index of the last stage of weekly phase ``phase_index``."""
    return sum(len(p.weights) for p in spec.phases[: phase_index + 1]) - 1
