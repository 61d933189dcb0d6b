"""Clocks. Production uses the system clock; a scaled clock runs the same flows faster.

A ScaledClock is anchored at a wall-clock instant and advances ``speed`` clock seconds per
wall second. The embedded simulator stamps its metrics on the same scale, which is how a
multi-stage rollout with minutes of bake per stage finishes in seconds.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field, model_validator


MAX_SPEED = 10_000.0
"""The fastest rollout clock: simulated seconds per wall second."""

MAX_ANCHOR = 1e11
"""Past every anchor in epoch seconds (the year 5138): a bigger one is milliseconds."""


class ClockSettings(BaseModel):
    """How fast rollout time runs relative to wall time. speed=1 is real time."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    speed: float = Field(default=1.0, gt=0, le=MAX_SPEED)
    anchor: float | None = Field(default=None, description="wall-clock epoch seconds where the scaled clock equals wall time")

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
    wall = (due - now) / speed
    left = f"{max(wall, 1):.0f} wall seconds" if wall < 120 else f"{wall / 60:.0f} wall minutes"
    return f" (the rollout clock runs {speed:g}x wall time: about {left} from now)"
