"""Clocks. Production uses the system clock; a scaled clock runs the same flows faster.

A ScaledClock is anchored at a wall-clock instant and advances ``speed`` clock seconds per
wall second. The embedded simulator stamps its metrics on the same scale, which is how a
multi-stage rollout with minutes of bake per stage finishes in seconds.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


# Validation context of the clock a flow run ran on, read back from its parameters (of_run).
_RECORDED = "rollway.recorded_clock"

MAX_SPEED = 10_000.0
"""The fastest rollout clock: simulated seconds per wall second."""

MIN_SPEED = 1.0
"""The slowest rollout clock: real time. A slower one serves nothing (AWS stamps metrics on real
time, the embedded AWS runs faster), and its sleeps are a period divided by the speed: at 1e-9 a
60-s wait became 6e10 s, which time.sleep refuses, and the run failed at its first wait."""

MAX_ANCHOR = 1e11
"""Past every anchor in epoch seconds (the year 5138): a bigger one is milliseconds."""


class ClockSettings(BaseModel):
    """How fast rollout time runs relative to wall time. speed=1 is real time."""

    # A key the model does not know is refused, not dropped: {"sped": 60} from a person (a run's
    # form, a deployment's parameters) ran the rollout at real time without a word, its bakes and
    # approval timeouts 60 times longer than meant. Settings read back from a run's stored
    # parameters go through ``of_run``, which still drops them.
    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="forbid")

    speed: float = Field(default=1.0, gt=0, le=MAX_SPEED, description=(
        "rollout seconds per wall second: 1 for a real rollout; more only on the embedded AWS, whose metrics "
        "share the anchor"))
    anchor: float | None = Field(default=None, description="wall-clock epoch seconds where the scaled clock equals wall time")

    @field_validator("speed")
    @classmethod
    def _not_slower_than_real_time(cls, speed: float, info: ValidationInfo) -> float:
        # A run's stored clock (of_run) is read as it ran: its hook must still roll it back.
        if speed < MIN_SPEED and not (info.context or {}).get(_RECORDED, False):
            raise ValueError(f"speed {speed:g} is slower than real time: 1 is real time (AWS's own clock), "
                             f"more runs a rollout faster on the embedded AWS (at most {MAX_SPEED:g})")
        return speed

    @model_validator(mode="after")
    def _anchor_in_seconds(self) -> "ClockSettings":
        # Date.now() and many exporters give milliseconds: such an anchor put the rollout clock
        # in the year 58,000, and the preflight refused with "metrics cannot be read".
        if self.anchor is not None and self.anchor < 0:
            raise ValueError(f"anchor {self.anchor:g} is before 1970: give the epoch seconds (like 1795000000) "
                             "where the rollout clock starts")
        if self.anchor is not None and self.anchor >= MAX_ANCHOR:
            raise ValueError(f"anchor {self.anchor:g} is not epoch seconds (like 1795000000); "
                             "a value this size is milliseconds or not a time")
        return self

    @model_validator(mode="after")
    def _anchored(self) -> "ClockSettings":
        # Checked here, not only in build(): settings that validate are a flow parameter Prefect
        # accepted, and build() failing inside the run made its hook roll back (and fail the same way).
        if self.speed != 1.0 and self.anchor is None:
            raise ValueError(f"a clock at speed {self.speed:g} (not real time) needs an anchor shared with the metric source")
        return self

    @classmethod
    def of_run(cls, stored: object) -> "ClockSettings":
        """The clock a flow run ran on, from its stored ``clock`` parameter (None or {}: real time).

        Keys the model does not know are dropped, and a speed under MIN_SPEED is taken, as they
        were when such a run validated: the state hooks and `rollway abort` read the parameters of
        runs that started before those were refused, and refusing them there would leave a failed
        run's rollout not rolled back.
        """
        if isinstance(stored, dict):
            stored = {key: value for key, value in stored.items() if key in cls.model_fields}
        return cls.model_validate(stored or {}, context={_RECORDED: True})

    def build(self) -> "SystemClock | ScaledClock":
        if self.speed == 1.0:
            return SystemClock()
        return ScaledClock(speed=self.speed, anchor=self.anchor)


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    def __init__(self, speed: float, anchor: float) -> None:
        self.speed = speed
        self.anchor = anchor

    def now(self) -> float:
        return self.anchor + (time.time() - self.anchor) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)


def on_the_wall(speed: float, due: float, now: float) -> str:
    """When ``due`` (rollout clock) comes in wall time, for a clock faster than real time: at
    ``make up``'s 60x a rollout week passes in under three wall hours and an hour's monitoring
    window in a wall minute, so a time on the rollout clock alone does not tell a person at a
    terminal how long to wait. Empty at real time or once ``due`` has passed."""
    if speed == 1.0 or due <= now:
        return ""
    return f" (the rollout clock runs {speed:g}x wall time: about {wall_span((due - now) / speed)} from now)"


def wall_span(wall: float, *, hours: bool = False) -> str:
    """``wall`` seconds in words: seconds under two minutes, then minutes (then, with ``hours``,
    hours from two hours on)."""
    if wall < 120:
        return f"{max(wall, 1):.0f} wall seconds"
    if hours and wall >= 7200:
        return f"{wall / 3600:.1f} wall hours"
    return f"{wall / 60:.0f} wall minutes"
