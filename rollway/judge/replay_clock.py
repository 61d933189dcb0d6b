"""The replay file's clock: its times as a person reads them, and its steps against the spec's period.

With ``--spec`` the stage's bake (``replay_bake``) is timed from the file's first ``t`` on the
spec's ``analysis.interval_seconds``: that clock is the spec's only if the file steps by its
period, which ``off_period`` checks before any line is judged.
"""

from __future__ import annotations

import math
from typing import Sequence

# Fractional seconds (60.1, 120.1) subtract with a float's rounding error (1e-14 s there, near 1e-7 s
# at epoch seconds): a step that close to whole periods is one. Not more: a file whose steps wander
# is no period's, and its bake's hold (timed from the first t) would fall a whole line late.
_STEP_TOLERANCE_SECONDS = 1e-6


def format_t(t: float) -> str:
    """A time as a person reads it: 1700000060, 60.5; never rounded ("t=1.7e+09" hides minutes).

    Whole numbers print without a decimal point up to 1e16 (beyond, every float is whole and
    repr's exponent is shorter); anything else prints as repr, the shortest exact form.
    """
    t = float(t)
    return str(int(t)) if t.is_integer() and abs(t) < 1e16 else repr(t)


def off_period(ts: Sequence[float], period: float) -> int | None:
    """The index of the first ``t`` whose step from the one before is not a whole number of
    periods (at least one), or None. A step of several periods is a gap, not a different period:
    CloudWatch returns no datapoint for a period without one, so an export skips it; the bake is
    then still on the spec's clock. A shorter step, or one between two multiples, is a file
    recorded at another period, whose first ``t`` would start the stage, and hold its pass, at the
    wrong time."""
    for index in range(1, len(ts)):
        step = ts[index] - ts[index - 1]
        periods = round(step / period)
        if periods < 1 or not math.isclose(step, periods * period, rel_tol=0, abs_tol=_STEP_TOLERANCE_SECONDS):
            return index
    return None


def period_refusal(ts: Sequence[float], numbers: Sequence[int], shown: str, spec: str, period: int) -> str | None:
    """Why a file (``shown`` as the error names it) is not on the spec's period: its first line
    that is not, with its step (see ``off_period``); None when every line is."""
    index = off_period(ts, period)
    if index is None:
        return None
    t, previous = ts[index], ts[index - 1]
    step = format_t(round(t - previous, 3))  # float t: 0.1, not 0.09999999999999432
    return (f"{shown}: line {numbers[index]}: t={format_t(t)} is {step} s after the previous line's "
            f"t={format_t(previous)}; {spec}'s analysis.interval_seconds is {period}, so each line must end one "
            "period (or a whole number of periods, where periods are missing) after the one before")


def history_refusal(ts: Sequence[float], numbers: Sequence[int], first_t: float, shown: str, path: str, spec: str,
                    period: int, calibration_seconds: int) -> str | None:
    """Why the history (``ts`` ending before ``first_t``, the stage file's first) is not the
    baseline's past the flows read before this stage; None when it is.

    The flows read the whole periods of the ``calibration_seconds`` before the stage's start
    (``flows.engine.baseline_history``), which the replay takes one period before ``first_t``:
    a history at another period, reaching into the stage's first period, off the stage file's
    period edges, or longer than that calibrates the judge on another past than theirs.
    """
    steps = period_refusal(ts, numbers, shown, spec, period)
    if steps is not None:
        return steps
    start, last = first_t - period, ts[-1]
    if off_period([last, first_t], period) is not None:
        if first_t - last < period - _STEP_TOLERANCE_SECONDS:
            return (f"{shown}: line {numbers[-1]}: t={format_t(last)} is within the stage's first period, from "
                    f"t={format_t(start)} to t={format_t(first_t)} ({path}'s first line: the stage starts one analysis "
                    f"period, {period} s, before it); the history is the baseline's periods before the stage, so it "
                    f"ends by t={format_t(start)}")
        return (f"{shown}: line {numbers[-1]}: t={format_t(last)} is {format_t(round(first_t - last, 3))} s before "
                f"{path}'s first t={format_t(first_t)}, not a whole number of {spec}'s {period}-s analysis periods: "
                "the two files' periods do not share their edges")
    # The periods that start in the calibration_seconds before the stage's start.
    earliest = start - (calibration_seconds // period) * period + period
    outside = [i for i, t in enumerate(ts) if t < earliest - _STEP_TOLERANCE_SECONDS]
    if not outside:
        return None
    drop = (f"delete the lines before line {numbers[outside[-1] + 1]}" if len(outside) < len(ts)
            else "no line of it is within them")
    return (f"{shown}: line {numbers[0]}: t={format_t(ts[0])} is before the {calibration_seconds} s the flows read "
            f"({spec}'s analysis.calibration_seconds): the periods ending from t={format_t(earliest)} to the stage's "
            f"start at t={format_t(start)}; {drop}")
