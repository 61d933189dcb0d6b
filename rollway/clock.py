"""Clocks. Production uses the system clock; a scaled clock runs the same flows faster.

A ScaledClock is anchored at a wall-clock instant and advances ``speed`` clock seconds per
wall second. The embedded simulator stamps its metrics on the same scale, which is how a
multi-stage rollout with minutes of bake per stage finishes in seconds.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field


MAX_SPEED = 10_000.0
"""The fastest rollout clock: simulated seconds per wall second."""


class ClockSettings(BaseModel):
    """How fast rollout time runs relative to wall time. speed=1 is real time."""

    model_config = ConfigDict(frozen=True)

    speed: float = Field(default=1.0, gt=0, le=MAX_SPEED)
    anchor: float | None = Field(default=None, description="wall-clock epoch seconds where the scaled clock equals wall time")

    def build(self) -> "SystemClock | ScaledClock":
        if self.speed == 1.0:
            return SystemClock()
        if self.anchor is None:
            raise ValueError("a clock faster than real time needs an anchor shared with the metric source")
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
