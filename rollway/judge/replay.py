"""Replay recorded metrics through the judge: ``rollway judge --replay FILE``.

FILE is JSON Lines, one object per interval, in time order::

    {"t": 60, "baseline": {"requests": 1140, "errors": 1, "slow": 12}, "canary": {"requests": 60, "errors": 0}}

``errors`` and ``slow`` absent or null count as 0 (an absent 5xx datapoint means none); a
version that is absent or null, or whose ``requests`` is null, had no request count in that
interval (no data, not zero traffic); 5xx with a null request count are refused, as more 5xx
than requests are (the flows read both as contradictory, never as no data); more slow requests
than requests are read as all slow, with a warning, as the flows read them. Counts may be
whole decimals (1140.0, as CloudWatch returns them); latencies are milliseconds from 0 to a
day, or null. Blank lines are skipped; anything else that is not such an object (a key written twice
included) stops the replay with an error naming the line. Lines end at a line feed only, so
line numbers are grep's and an editor's; a carriage return is whitespace (CRLF endings are
fine). The file is UTF-8, a byte order mark allowed at its start only: UTF-16 (what PowerShell
5's ``>`` writes) and a mark further on (files joined with ``cat``) are refused, saying so.

The replay feeds the intervals one at a time to the sequential judge with the seed's
guardrails on top (as the flows do), prints a line whenever the decision changes and one when
a kind of alert is first raised (``t=... alert: ...``, as a stage's row shows it), and ends at
the first rollback or promotion; a file that ends without one is inconclusive. With ``--spec``,
the stage bakes as the flows bake it (``replay_bake``): it starts one analysis period before the
file's first ``t`` (a line's ``t`` ends its period, and the first line is taken as the stage's
first; a note on standard error says that clock); a pass before its ``min_bake_seconds``
(``bake_seconds`` when empty) is printed as ``passing, held until min bake at t=...`` and judging
goes on, so a rollback before then wins; it promotes at the first line from then on (its reason, the held pass's, then ends with
``; passing since t=..., held until min bake at t=...``), and ends at its ``bake_seconds`` (later
lines are not judged). A file that ends while a pass is held is inconclusive. That clock is the
spec's only if each line ends one ``analysis.interval_seconds`` after the one before, or a whole
number of them (periods missing from an export): a file recorded at another period is refused,
naming its first line that is not, before any is judged. The last line is a
JSON summary::

    {"verdict": "rollback" | "promote" | "inconclusive", "decided_at_t": ..., "canary_requests_at_decision": ...,
     "reason": "...", "alerts": [{"t": ..., "kind": "response_time", "message": "..."}],
     "metric": "errors", "statistic": 1.0e+304}

``canary_requests_at_decision`` counts every canary request of the lines up to ``decided_at_t`` (what
the canary served by then, as the guardrail counts it), periods without a baseline count included:
the reason's counts are the judge's, the periods it compared (two-sample mode skips those), and a
held pass's reason gives its counts when it passed.
``alerts`` holds each kind of alert the replay raised, as first raised (the ``alert:`` lines),
and is empty when there was none. ``metric`` and ``statistic`` are the last verdict's: the
judge's evidence for ``errors`` or ``slow`` (a likelihood ratio, saturated near 1e304, which the
reason says as "over 10^6" and the like), a guardrail's rate for ``error_rate``; null when none.

``--history FILE2`` (same format) gives the baseline's intervals from before the stage, as the
flows read them (``analysis.calibration_seconds``): only their baseline counts are used, to
measure how bursty the traffic is (see ``EvidenceSettings.lift_cap_below``). Its last ``t`` must
be before the stage file's first. With ``--spec`` it is on the spec's clock too, as the flows read
it (``replay_clock.history_refusal``): its lines step by the spec's period, its last ends by the
stage's start, on the stage file's period edges, and it goes back no further than
``analysis.calibration_seconds``; a refusal names its line, before any line is judged.

``--spec SPEC`` reads the RolloutSpec JSON the flows take as their ``spec`` parameter (validated by
that model, before any line of FILE is read; see ``replay_spec``): the replay judges by its
analysis settings and guardrails. An option given beside it overrides the spec's setting, and a
note on standard error says so. The replay does not wait out ``metrics_delay_seconds``: its records
are complete, so it may decide one period earlier than a flow.

``--stage WEIGHT`` names the spec's stage the file records (one of the default stages without
``--spec``; any other weight is refused before FILE is read): the replay judges it by the
comparison the flows judge that stage by (``rollway.judge.stage_mode``), one-sample against the
SLOs at 100 %, where no stable traffic is left to compare with, and bakes it as that stage bakes.
Without it, the stage is one below 100 %, judged by the spec's mode; a spec whose stages below
100 % bake differently (or that has none) is then refused, asking for ``--stage``.

``--metrics``, ``--margin-ratio`` and ``--min-requests`` are the spec's analysis settings of those
names; a file no interval of which gives ``slow``, judged on slow requests too, gets a note on
standard error saying they were all read as 0 (``--metrics errors`` judges the errors alone).

Run it with ``python -m rollway.judge.replay FILE`` (or ``-`` for standard input).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence, TextIO, get_args

from pydantic import ValidationError

from rollway.bounds import RANGE_ERRORS, as_given, field_range_refusal, seconds_said
from rollway.judge import stage_mode, with_guardrails
from rollway.judge.guardrails import RunningTotals, check_totals
from rollway.judge.replay_bake import Bake
from rollway.judge.replay_clock import format_t, history_refusal, period_refusal
from rollway.judge.sequential import SequentialJudge
from rollway.judge.strict_json import DuplicateKey, file_named, short_value, unique_keys
from rollway.model import Interval, Verdict, VersionSample
from rollway.phases import Phase
from rollway.spec import Analysis, Guardrails, JudgedMetric, Stage, default_stages
from rollway.stdout import EXIT_NOT_WRITTEN, EXIT_READER_GONE, escape_unencodable, to_devnull

EXIT_OK = 0
EXIT_BAD_INPUT = 2
# Said in both commands' help: a flow passes a stage only on periods that ended
# metrics_delay_seconds ago, for CloudWatch's late datapoints; a replay file is already complete.
NO_DELAY = ("The replay does not wait out the spec's analysis.metrics_delay_seconds: its records are complete, so it "
            "may decide one period earlier than a flow would.")
# Said in both commands' help.
STAGE_HELP = ("the canary weight (percent) of the spec's stage the file records (without --spec, of the default "
              "stages): it is judged as the flows judge that stage, at 100 % one-sample against the SLOs (no stable "
              "traffic is left to compare with); with --spec, it bakes as that stage does (a pass waits for its "
              "min_bake_seconds, the stage ends at its bake_seconds); without it, a stage below 100 % by the spec's mode")

_TOP_KEYS = ("t", "baseline", "canary")
# No load balancer serves this many requests in one interval: a bigger count is a broken
# export, and past 2**53 it would no longer be exact as a float.
MAX_COUNT = 10**15
# Nor does a request last a day (a load balancer's idle timeout is at most 4,000 s): a longer
# latency is a broken export, and 1e308 ms overflowed the average to "inf s" in the alert.
MAX_LATENCY_MS = 86_400_000
_VERSION_KEYS = tuple(VersionSample.model_fields)
_DECISION = {
    Phase.FAILED: "rollback",
    Phase.SUCCESSFUL: "promote",
    Phase.INCONCLUSIVE: "inconclusive",
    Phase.RUNNING: "running",
    Phase.ERROR: "error",
}


class ReplayError(ValueError):
    """A replay file that cannot be read; the message names the line."""


def parse_line(text: str, number: int, previous_t: float | None, notes: list[str] | None = None,
               written: set[str] | None = None) -> Interval:
    """One JSON Lines record as an Interval; what was read other than as written goes in ``notes``,
    and each optional count the record gives (``slow``, not null, in a version with a request
    count) in ``written``.

    Raises:
        ReplayError: naming line ``number`` and what is wrong with it.
    """
    where = f"line {number}"
    try:
        record = json.loads(text.strip(), object_pairs_hook=unique_keys, parse_float=_double)
    except DuplicateKey as exc:
        raise ReplayError(f"{where}: key {short_value(exc.key)} appears twice in one object") from None
    except json.JSONDecodeError as exc:
        raise ReplayError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}){_json_hint(exc)}") from None
    except ValueError:
        # json.loads converts integer literals with int(), which refuses more digits than
        # sys.get_int_max_str_digits() (a guard against quadratic-time conversion).
        raise ReplayError(f"{where}: not valid JSON (an integer with more than "
                          f"{sys.get_int_max_str_digits()} digits)") from None
    except RecursionError:
        # The decoder recurses once per nested array or object.
        raise ReplayError(f"{where}: not valid JSON (nested too deeply)") from None
    if not isinstance(record, dict):
        # An array of intervals is the usual slip of an exporter that writes JSON, not JSON Lines.
        hint = " (one interval per line, each an object, not an array of them)" if isinstance(record, list) else ""
        raise ReplayError(f"{where}: expected a JSON object, got {_json_kind(record)}{hint}")
    huge = _huge(record)
    if huge is not None:
        field, literal = huge
        shown = literal if len(literal) <= 40 else f"{literal[:20]}...({len(literal)} characters)"
        raise ReplayError(f"{where}: '{field}' is {shown}, too large for any field (a double holds up to about 1.8e308)")
    unknown = sorted(set(record) - set(_TOP_KEYS))
    if unknown:
        raise ReplayError(f"{where}: {_unknown(unknown, _TOP_KEYS)}")
    if "t" not in record:
        raise ReplayError(f"{where}: no 't' (the interval's end in seconds)")
    t = record["t"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not _finite(t):
        raise ReplayError(f"{where}: 't' must be a finite number (the interval's end in seconds), got {_value(t)}")
    # Compared as stored (a float), so two lines never end up with the same t.
    if previous_t is not None and float(t) <= previous_t:
        raise ReplayError(f"{where}: t={format_t(t)} is not after the previous line's t={format_t(previous_t)}")
    versions = {}
    for name in ("baseline", "canary"):
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ReplayError(f"{where}: '{name}' must be an object or null, got {_value(value)}")
        extra = sorted(set(value) - set(_VERSION_KEYS))
        if extra:
            raise ReplayError(f"{where}: {_unknown(extra, _VERSION_KEYS, within=name)}")
        if "requests" not in value:
            raise ReplayError(f"{where}: '{name}' has no 'requests' (write null, or leave the version out, "
                              "when it has no data)")
        value = dict(value)
        for key in ("requests", "errors", "slow"):
            count = value.get(key)
            if count is None:
                # A missing datapoint: no errors or slow requests (the model's default of 0);
                # for requests, no data (handled below).
                value.pop(key, None)
                continue
            shown = count  # for messages: 1e+300, not the 301 digits of int(1e300)
            # CloudWatch returns every value as a double: 1140.0 is the count 1140.
            if isinstance(count, float) and count.is_integer() and not isinstance(count, _Inexact):
                count = value[key] = int(count)
            if isinstance(count, bool) or not isinstance(count, int):
                raise ReplayError(f"{where}: '{name}.{key}' must be a whole number, got {_value(shown)}")
            if count > MAX_COUNT:
                raise ReplayError(f"{where}: '{name}.{key}' is {_value(shown)}, more than {MAX_COUNT:.0e}")
        for key in ("latency_avg_ms", "latency_p99_ms"):
            latency = value.get(key)
            if latency is not None and (isinstance(latency, bool) or not isinstance(latency, (int, float))
                                        or not _finite(latency)):
                raise ReplayError(f"{where}: '{name}.{key}' must be a finite number or null, got {_value(latency)}")
            # A latency is a duration: a negative one would cancel a slow interval out of the
            # stage's average and hide it from the response-time guardrail.
            if latency is not None and latency < 0:
                raise ReplayError(f"{where}: '{name}.{key}' is {_value(latency)}; a latency cannot be negative")
            if latency is not None and latency > MAX_LATENCY_MS:
                raise ReplayError(f"{where}: '{name}.{key}' is {_value(latency)} ms, more than a day "
                                  f"({MAX_LATENCY_MS} ms)")
        if "requests" not in value:
            if value.get("errors"):
                # Both are the load balancer's counts of one period: 5xx without a request count
                # contradict each other (the flows never pass a stage on such a period), and
                # reading them as no data would drop the errors without a word.
                raise ReplayError(f"{where}: '{name}.errors' is {value['errors']} but '{name}.requests' is null: "
                                  "5xx without a request count contradict each other (fix the export, or write "
                                  "the period's request count)")
            continue  # a null request count: no data for the version, as when it is null or absent
        if written is not None and "slow" in value:
            # Only here: a slow count beside a null request count is dropped with the rest of the
            # version's no-data interval, and judges nothing.
            written.add("slow")
        if value["requests"] >= 0 and value.get("slow", 0) > value["requests"]:
            # As the flows read CloudWatch: the slow count is the application's, the request count
            # the load balancer's, with their own period edges; at most every request was slow.
            if notes is not None:
                notes.append(f"{where}: '{name}.slow' is {value['slow']}, more than '{name}.requests' "
                             f"({value['requests']}); read as {value['requests']}")
            value["slow"] = value["requests"]
        # The model's own check says only "errors and slow requests": name the count and both
        # figures. (A negative request count is the model's to name.) Both 5xx and requests are
        # the load balancer's own counts: more 5xx is a broken export.
        if value["requests"] >= 0 and value.get("errors", 0) > value["requests"]:
            raise ReplayError(f"{where}: '{name}.errors' is {value['errors']}, more than '{name}.requests' "
                              f"({value['requests']})")
        try:
            versions[name] = VersionSample.model_validate(value)
        except ValidationError as exc:
            # Name the field (loc) as the checks above do; a rule over the whole version
            # (errors within requests) has an empty loc and names the version.
            raise ReplayError(f"{where}: {'; '.join(_version_problem(name, e) for e in exc.errors())}") from None
    return Interval(t=float(t), **versions)


def _version_problem(name: str, error: Any) -> str:
    """One of VersionSample's refusals, naming the field (``name``: the version) as the checks
    before it do; a count out of range as the spec says one ("'canary.errors' must be at least 0,
    not -1"), not pydantic's "is invalid: Input should be greater than or equal to 0". A rule over
    the whole version has an empty loc and names the version."""
    shown = ".".join(map(str, (name, *error["loc"])))
    return field_range_refusal(VersionSample, error, f"'{shown}'") or f"'{shown}' is invalid: {error['msg']}"


class _Inexact(float):
    """A number literal a double does not hold, as float() reads it (infinity past its range, 0
    below its smallest), with the literal it was read from."""

    literal: str


def _double(literal: str) -> float:
    """json.loads' parse_float: a number with a fraction or an exponent. One a double does not
    hold keeps its literal: "1e400" was named "Infinity", which the line never held (``_huge``),
    and 1e-400 errors, a fraction, replayed as 0."""
    value = float(literal)
    if not math.isinf(value) and (value != 0 or not any(c in "123456789" for c in literal.lower().split("e")[0])):
        return value
    inexact = _Inexact(value)
    inexact.literal = literal
    return inexact


def _huge(record: dict[str, Any]) -> tuple[str, str] | None:
    """The first field of a record (a version's included) holding a number past a double's range,
    and the number as written; None when there is none."""
    for key, value in record.items():
        inner = value.items() if isinstance(value, dict) else ()
        for field, item in ((key, value), *((f"{key}.{name}", v) for name, v in inner)):
            if isinstance(item, _Inexact) and math.isinf(item):
                return field, item.literal
    return None


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int too large for a float
        return False


def _keys(keys: Sequence[str], shown: int = 5) -> str:
    """Unknown keys for an error message: the first few, each cut short (an exporter's mistake
    can add thousands of keys, or one a megabyte long, and the error is one line)."""
    more = f" and {len(keys) - shown:,} more" if len(keys) > shown else ""
    return ", ".join(short_value(key) for key in keys[:shown]) + more


def _unknown(keys: Sequence[str], known: Sequence[str], within: str | None = None) -> str:
    """Unknown keys, the one a lone misspelt key probably meant, and the keys that are known.

    Only the line's top level named the keys it takes: "unknown key(s) in 'canary': 'eror'" left
    the reader to look the version's keys up in the README."""
    where = f" in '{within}':" if within else ""
    close = difflib.get_close_matches(keys[0], known, n=1, cutoff=0.6) if len(keys) == 1 else []
    meant = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key(s){where} {_keys(keys)}{meant}; expected {', '.join(known)}"


def _json_hint(exc: json.JSONDecodeError) -> str:
    """What a newcomer's usual JSON slips look like to the decoder, said in their words.

    Python's decoder calls a trailing comma "Expecting property name enclosed in double quotes"
    (or "Expecting value"), and a comma after the object "Extra data": neither names the comma."""
    before = exc.doc[:exc.pos].rstrip()
    if exc.msg == "Extra data":
        return f": the line goes on after its object ends, at {short_value(exc.doc[exc.pos:exc.pos + 1])} (one object per line)"
    if before.endswith(",") and exc.doc[exc.pos:exc.pos + 1] in ("}", "]"):
        return ": a comma before the closing bracket (JSON allows no trailing comma)"
    return ""


def _value(value: object) -> str:
    """A value read from a line as JSON writes it (null, true, "60", NaN, 1e+300), cut short.

    The file is JSON: Python's None, True or '60' named something the line never held.
    """
    text = value.literal if isinstance(value, _Inexact) else json.dumps(value, ensure_ascii=False)
    if not text.isprintable():  # a control or bidi character would garble the terminal: escape it
        text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _json_kind(value: object) -> str:
    """What a JSON value is, in JSON's words: an array, a string, a number, true, null."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number"


def read_intervals(lines: Iterable[str], notes: list[str] | None = None,
                   written: set[str] | None = None, numbers: list[int] | None = None) -> list[Interval]:
    """Every interval of a replay file, in order; blank lines are skipped. Counts read other
    than as written (more slow requests than requests) are named in ``notes``; the optional
    counts some line gives go in ``written`` (see parse_line); each interval's line number in
    ``numbers`` (blank lines counted, as an editor counts them).

    Raises:
        ReplayError: for the first malformed line, or when there is no interval at all.
    """
    intervals: list[Interval] = []
    for number, text in enumerate(lines, start=1):
        if number == 1:
            # A UTF-8 byte order mark (Windows editors, PowerShell) is not part of the first
            # line (files and standard input are decoded as plain UTF-8, which keeps it).
            text = text.removeprefix("\ufeff")
        if "\ufeff" in text:
            raise ReplayError(_stray_bom(text, number))
        if not text.strip():
            continue
        intervals.append(parse_line(text, number, intervals[-1].t if intervals else None, notes, written))
        if numbers is not None:
            numbers.append(number)
    if not intervals:
        raise ReplayError("no intervals: the file has no JSON lines")
    return intervals


def _stray_bom(text: str, number: int) -> str:
    """A byte order mark past the file's start, as what it almost always is: files joined with
    ``cat``, a later one saved with a BOM (json's own "Unexpected UTF-8 BOM (decode using
    utf-8-sig)" named a codec, and nothing to do; after a line without its line feed it was
    "Extra data"). No JSON the replay reads holds one: its strings are keys, all known."""
    column = text.index("\ufeff") + 1
    if number == 1 and column == 1:  # the first mark was taken off already
        return "line 1: starts with two byte order marks (U+FEFF): delete one"
    if not text[:column - 1].strip():
        return (f"line {number}: starts with a byte order mark (U+FEFF), which only a file's first line may: "
                "were two files joined (cat a b), the second saved with a BOM? Delete it from line "
                f"{number} (or re-save that file as UTF-8 without a BOM and join them again)")
    return (f"line {number}: a byte order mark (U+FEFF) at column {column}: were two files joined (cat a b), "
            "the first not ending in a line feed and the second saved with a BOM? Put a line break there in "
            "place of the BOM (or end the first file with a line feed, re-save the second as UTF-8 without a "
            "BOM, and join them again)")


@dataclass(frozen=True)
class ReplayResult:
    """The decision a replay reached, and the lines printed on the way."""

    verdict: str
    decided_at_t: float
    canary_requests_at_decision: int
    reason: str
    changes: tuple[str, ...]
    # Each kind of alert as first raised: {"t", "kind", "message"}. The decision lines print them,
    # and a caller parsing only the summary would otherwise never learn of a 15-s canary.
    alerts: tuple[dict[str, Any], ...] = ()
    # The deciding verdict's metric and statistic (the judge's evidence, a guardrail's rate): the
    # reason says "evidence over 10^6" to a person, a program reads the number here.
    metric: str | None = None
    statistic: float | None = None

    def summary(self) -> str:
        """The JSON summary line."""
        return json.dumps({
            "verdict": self.verdict,
            "decided_at_t": self.decided_at_t,
            "canary_requests_at_decision": self.canary_requests_at_decision,
            "reason": self.reason,
            "alerts": list(self.alerts),
            "metric": self.metric,
            "statistic": self.statistic,
        }, ensure_ascii=False)


def replay(intervals: Sequence[Interval], analysis: Analysis, guardrails: Guardrails | None,
           history: Sequence[Interval] = (), bake: Bake | None = None) -> ReplayResult:
    """Judge ``intervals`` one at a time, as the flows would, until the first decision.

    ``history``: the baseline's intervals before the stage (only their baseline counts count).
    ``bake``: the spec's stage the file records: a pass waits for its minimum bake, and the stage
    ends at its bake (None: the first decision ends it, and the file's last line).
    """
    state = SequentialJudge(analysis).start()
    state.calibrate(history)
    # A replay file never revises an interval, so the judge's state and the guardrail's totals
    # run along with the file: each tick reads only the new interval (the flows re-fold every
    # tick because CloudWatch may revise recent datapoints).
    canary_totals, baseline_totals = RunningTotals("canary"), RunningTotals("baseline")
    decisions = Decisions(bake.passes_from if bake is not None else None)
    for i, interval in enumerate(intervals):
        stage_over = i == len(intervals) - 1 or (bake is not None and bake.over(interval.t))
        state.observe_interval(interval)
        verdict = state.verdict(stage_over=stage_over)
        if guardrails is not None:
            canary_totals.add(interval)
            baseline_totals.add(interval)
            guard = check_totals(guardrails, canary_totals.sample(), baseline_totals.requests, monitoring=False)
            verdict = with_guardrails(verdict, guard)
        held = bake is not None and bake.held(verdict, interval.t)
        ended = decisions.see(interval, verdict, stage_over=stage_over, held=held)
        if ended is not None:
            return ended
    raise AssertionError("unreachable: the last interval always decides")


class Decisions:
    """A replay's decision lines, its canary requests so far, and its end.

    ``passes_from``: the ``t`` from which the stage may pass (its minimum bake), with a spec's bake.
    """

    def __init__(self, passes_from: float | None = None) -> None:
        # As the lines say it, formatted once: every tick's held or released pass quotes it.
        self.until = format_t(passes_from) if passes_from is not None else None
        self.changes: list[str] = []
        self.last: str | None = None
        self.canary_requests = 0
        self.alerted: set[str] = set()
        self.alerts: list[dict[str, Any]] = []
        # The first t a pass was held at: the promote line that releases it says so, or it
        # repeated the held pass's reason (its counts then) as if the pass had just come.
        self.held_since: float | None = None

    def see(self, interval: Interval, verdict: Verdict, *, stage_over: bool, held: bool = False) -> ReplayResult | None:
        """Take one tick's verdict; the result once the replay has decided (or run out).

        ``held``: the verdict passes, but the flows hold the stage until ``passes_from`` (its
        minimum bake) and judge on, so a rollback may still come first.
        """
        if interval.canary is not None:
            self.canary_requests += interval.canary.requests
        decision, reason = _DECISION[verdict.phase], verdict.reason
        if held:
            decision = f"passing, held until min bake at t={self.until}"
            if self.held_since is None:
                self.held_since = interval.t
        elif self.held_since is not None and verdict.phase is Phase.SUCCESSFUL:
            reason = f"{reason}; passing since t={format_t(self.held_since)}, held until min bake at t={self.until}"
        if decision != self.last:
            self.changes.append(f"t={format_t(interval.t)} {decision}: {reason}")
            self.last = decision
        # Alerts (a canary's average response time over the guardrail) do not change the
        # decision, so no decision line would show them: the flows put each kind's first
        # message in the stage's row and notify it once, and the replay prints it once too.
        for alert in verdict.alerts:
            if alert.kind not in self.alerted:
                self.alerted.add(alert.kind)
                self.changes.append(f"t={format_t(interval.t)} alert: {alert.message}")
                self.alerts.append({"t": interval.t, "kind": alert.kind, "message": alert.message})
        if held:
            if not stage_over:
                return None
            # The file ends while the flows would still be holding the pass: they had not passed it.
            reason = (f"{verdict.reason}; but the file ends at t={format_t(interval.t)}, before the stage's minimum "
                      f"bake ends at t={self.until}: the flows would not have passed it yet")
            return ReplayResult("inconclusive", interval.t, self.canary_requests, reason, tuple(self.changes),
                                tuple(self.alerts), verdict.metric, verdict.statistic)
        if verdict.phase in (Phase.FAILED, Phase.SUCCESSFUL) or stage_over:
            final = "inconclusive" if decision in ("running", "error") else decision
            return ReplayResult(final, interval.t, self.canary_requests, reason, tuple(self.changes),
                                tuple(self.alerts), verdict.metric, verdict.statistic)
        return None


def replay_main(
    path: str,
    *,
    out: TextIO,
    err: TextIO,
    alpha: float | None = None,
    margin: float | None = None,
    mode: str | None = None,
    spec: str | None = None,
    guardrails: bool = True,
    history: str | None = None,
    slo_error_rate: float | None = None,
    slo_slow_rate: float | None = None,
    metrics: str | None = None,
    margin_ratio: float | None = None,
    min_requests: int | None = None,
    stage: int | None = None,
) -> int:
    """Everything ``rollway judge --replay FILE`` does; returns the exit code.

    Every analysis setting left None is the spec's (``spec``), or else the spec model's default;
    one given beside ``spec`` overrides the spec's, with a note on ``err`` saying so.

    Args:
        path: the JSON Lines file, or ``-`` for standard input.
        out: where the decision lines and the JSON summary go (what a caller parses).
        err: where an error or a note goes; nothing is printed on ``out`` after an error.
        alpha: probability of rolling back a healthy canary.
        margin: absolute error-rate margin tolerated when passing.
        mode: "two-sample" or "one-sample".
        spec: a RolloutSpec JSON file, as the flows' ``spec`` parameter: its analysis settings and
            guardrails are the replay's (see ``replay_spec``); read and checked before any line.
        guardrails: apply the seed's absolute guardrails on top of the judge, as the flows do.
        history: a JSON Lines file of the baseline's intervals before the stage, or None.
        slo_error_rate: one-sample mode: the error rate the canary is held to (None: the spec's default).
        slo_slow_rate: one-sample mode: the share of slow requests it is held to (None: the spec's default).
        metrics: what the judge compares, comma-separated ("errors", "slow" or "errors,slow"), as the
            spec's analysis.metrics (None: its default, both).
        margin_ratio: as the spec's analysis.margin_ratio (None: its default).
        min_requests: as the spec's analysis.min_requests (None: its default).
        stage: the weight (percent) of the spec's stage the file records, or of the default
            stages without ``spec``; the replay judges it by the comparison the flows judge that
            stage by (``stage_mode``: one-sample at 100 %, where no stable traffic is left). None:
            a stage below 100 %, judged by the spec's mode. One the stages lack is refused before
            any line is read.

    Returns:
        0 when the replay ran (whatever the verdict), 2 for an unreadable file or bad options.
    """
    base, rails, stages = Analysis(), Guardrails(), default_stages()
    if spec is not None:
        from rollway.judge.replay_spec import SpecFileError, read_spec

        try:
            policy = read_spec(spec)
        except SpecFileError as exc:
            print(f"error: {exc}", file=err)
            return EXIT_BAD_INPUT
        base, rails, stages = policy.analysis, policy.guardrails, policy.stages
    weights = [s.weight for s in stages]
    if stage is not None and stage not in weights:
        # Checked before the file is read: a stage the policy does not have is judged by nothing
        # the flows would run, and a 30 meant as 100 replays the wrong comparison.
        whose = f"{file_named(spec)}'s stages are" if spec is not None else "the default stages are"
        listed = ", ".join(map(str, weights[:-1])) + f" and {weights[-1]}" if len(weights) > 1 else str(weights[0])
        print(f"error: --stage {stage} is not a stage to replay: {whose} {listed} % (give the canary weight of the "
              "stage the file records)", file=err)
        return EXIT_BAD_INPUT
    baked = _baked_stage(spec, stages, stage, err) if spec is not None else None
    if baked is False:
        return EXIT_BAD_INPUT
    given_mode, mode = mode, mode if mode is not None else base.mode
    # The comparison the flows judge this stage by: the same decision as theirs (``stage_mode``).
    staged = stage_mode(mode, stage) if stage is not None else mode
    if staged != mode and given_mode is not None:
        print(f"error: --mode {given_mode} cannot replay --stage {stage}: the flows judge that stage {staged} (at "
              "100 % the stable version serves nothing to compare with); leave --mode out", file=err)
        return EXIT_BAD_INPUT
    switched, mode = staged != mode, staged
    slos = {name: value for name, value in (("slo_error_rate", slo_error_rate), ("slo_slow_rate", slo_slow_rate))
            if value is not None}
    if slos and mode == "two-sample":
        # Two-sample mode compares with the baseline and never reads an SLO: the option would be
        # ignored without a word, and the replay judged against something else than asked.
        print(f"error: {_option(next(iter(slos)))} applies to --mode one-sample only (two-sample compares the "
              "canary with the baseline)", file=err)
        return EXIT_BAD_INPUT
    if history is not None and mode == "one-sample":
        # One-sample mode holds the canary to its SLOs and never calibrates on the baseline:
        # the file would be read, checked, and then ignored without a word.
        at = f"; --stage {stage} is judged one-sample, as the flows judge it" if switched else ""
        print("error: --history applies to --mode two-sample only (one-sample holds the canary to its SLOs and "
              f"reads no baseline{at})", file=err)
        return EXIT_BAD_INPUT
    if history is not None and spec is not None and base.calibration_seconds == 0:
        # The flows judge such a spec without the baseline's past: replaying with it would not be
        # that policy.
        print(f"error: --history applies to a spec that calibrates: {file_named(spec)}'s analysis.calibration_seconds "
              "is 0, so the flows judge without the baseline's past", file=err)
        return EXIT_BAD_INPUT
    judged = _metrics(metrics, err)
    if judged is None:
        return EXIT_BAD_INPUT
    given = {name: value for name, value in (("alpha", alpha), ("margin", margin), ("margin_ratio", margin_ratio),
                                              ("min_requests", min_requests)) if value is not None}
    options = {**given, **({"mode": given_mode} if given_mode is not None else {}), **slos, **judged}
    try:
        analysis = Analysis.model_validate({**base.model_dump(), **options, **({"mode": mode} if switched else {})})
    except ValidationError as exc:
        print(f"error: {'; '.join(_refused_option(e, options) for e in exc.errors())}", file=err)
        return EXIT_BAD_INPUT
    if spec is not None:
        from rollway.judge.replay_spec import shown_setting

        for name in (n for n in Analysis.model_fields if n in options):
            print(f"note: {_option(name)} {shown_setting(options[name])} overrides {file_named(spec)}'s analysis.{name} "
                  f"({shown_setting(getattr(base, name))})", file=err)
    if switched:
        slos_said = f"errors {as_given(analysis.slo_error_rate)}, slow {as_given(analysis.slo_slow_rate)}"
        print(f"note: --stage {stage}: the stable version serves nothing to compare with, so the canary is held to "
              f"the SLOs (one-sample: {slos_said}), as the flows judge that stage", file=err)
    for label, name in (("the replay file", path), ("--history", history)):
        if name == "":
            # open("") says "No such file or directory" about a name nobody can see.
            print(f"error: {label} is an empty name", file=err)
            return EXIT_BAD_INPUT
        # The command takes "-" (standard input) as a file, so a forgotten file name lets the
        # next option stand in for it; say so rather than fail later with "cannot read --alpha".
        if name is not None and name.startswith("-") and name != "-":
            print(f"error: {name!r} is not a replay file; it looks like an option (write ./{name} for a "
                  "file of that name)", file=err)
            return EXIT_BAD_INPUT
    if history == "-" and path == "-":
        print("error: only one of the stage file and --history can be standard input", file=err)
        return EXIT_BAD_INPUT
    written: set[str] = set()
    numbers: list[int] = []
    intervals = _load(path, err, written=written, numbers=numbers)
    if intervals is None:
        return EXIT_BAD_INPUT
    if spec is not None:
        # The stage's bake is timed from the file's first t on the spec's period: checked before any line is judged.
        off = period_refusal([i.t for i in intervals], numbers, _named(path), file_named(spec),
                             policy.analysis.interval_seconds)
        if off is not None:
            print(f"error: {off}", file=err)
            return EXIT_BAD_INPUT
    past_numbers: list[int] = []
    past = _load(history, err, option="--history", numbers=past_numbers) if history is not None else []
    if past is None:
        return EXIT_BAD_INPUT
    if past and past[-1].t >= intervals[0].t:
        # The judge would measure the traffic's burstiness on the stage's own periods (the stage
        # file given twice, or the two swapped), which the flows never do: say so instead.
        print(f"error: {_named(history, '--history')}: its last interval ends at t={format_t(past[-1].t)}, not before "
              f"the stage's first (t={format_t(intervals[0].t)} in {_named(path)}); --history is the baseline's "
              "intervals from before the stage", file=err)
        return EXIT_BAD_INPUT
    if past and spec is not None:
        # The judge's calibration counts the history's periods: checked against the spec's clock as the stage file is.
        off = history_refusal([i.t for i in past], past_numbers, intervals[0].t, _named(history, "--history"),
                              _named(path), file_named(spec), policy.analysis.interval_seconds,
                              policy.analysis.calibration_seconds)
        if off is not None:
            print(f"error: {off}", file=err)
            return EXIT_BAD_INPUT
    if "slow" in analysis.metrics and "slow" not in written:
        # The flows read a service that publishes no SlowRequestCount as 0 slow requests, and so
        # does the replay; but its verdicts then show "slow 0/N" as if measured, and alpha is
        # still split over both metrics (a later rollback than errors judged alone would give).
        print(f"note: {_named(path)}: no interval gives a 'slow' count, so every one is judged as 0 slow requests "
              "and alpha is split over errors and slow, as a stage whose service publishes no SlowRequestCount; "
              "--metrics errors judges the errors alone (the spec's analysis.metrics: [errors])", file=err)
    bake = Bake.of(policy, baked, intervals[0].t) if baked is not None else None
    if bake is not None:
        print(f"note: {bake.timeline(_named(path))}", file=err)
    result = replay(intervals, analysis, rails if guardrails else None, past, bake)
    for line in result.changes:
        print(line, file=out)
    print(result.summary(), file=out)
    return EXIT_OK


def _baked_stage(spec: str, stages: Sequence[Stage], weight: int | None, err: TextIO) -> int | Literal[False]:
    """The index of the spec's stage the file records, whose bake the replay follows; False after
    printing why it cannot be told. Without ``--stage``, the stages below 100 % must bake alike:
    which of them the file records decides when the flows would pass it."""
    if weight is not None:
        return next(i for i, s in enumerate(stages) if s.weight == weight)
    below = [(i, s) for i, s in enumerate(stages) if s.weight < 100]
    if len({(s.earliest_pass_seconds, s.bake_seconds) for _, s in below}) == 1:
        return below[0][0]
    bakes = "; ".join(f"{s.weight} %: min bake {seconds_said(s.earliest_pass_seconds)}, "
                      f"bake {seconds_said(s.bake_seconds)}" for _, s in below)
    said = f"bake differently ({bakes})" if below else "are none"
    print(f"error: {file_named(spec)}'s stages below 100 % {said}: give --stage, the canary weight of the stage the "
          "file records, to replay its bake", file=err)
    return False


def _option(field: str) -> str:
    """An Analysis field as the command's option: slo_error_rate is --slo-error-rate."""
    return "--" + field.replace("_", "-")


def _refused_option(error: Any, options: dict[str, Any]) -> str:
    """One of Analysis's refusals, named as typed ("--alpha 1.5", not the model's field), with the
    option's allowed range when it is a bound that was crossed (pydantic names only that bound)."""
    from rollway.bounds import allowed_range

    if not error["loc"]:
        return f"invalid options: {error['msg']}"
    name = str(error["loc"][0])
    given = f"{_option(name)} {as_given(options.get(name))}"
    field = Analysis.model_fields.get(name)
    allowed = allowed_range(field) if field is not None and error["type"] in RANGE_ERRORS else None
    if allowed is not None:
        return f"{given} is out of range: it must be {allowed}"
    return f"invalid option {given}: {error['msg']}"


def _metrics(given: str | None, err: TextIO) -> dict[str, tuple[str, ...]] | None:
    """``--metrics`` as Analysis's field ({} when not given), or None after printing why not."""
    if given is None:
        return {}
    names = [name.strip() for name in given.split(",")]
    known = get_args(JudgedMetric)
    shown = given if given.strip() else repr(given)  # "--metrics :" named nothing
    for name in names:
        if name not in known:
            said = f"{name!r} is not a metric" if name else "an empty name is not a metric"
            print(f"error: --metrics {shown}: {said}; give errors, slow or errors,slow", file=err)
            return None
    if len(set(names)) != len(names):
        # alpha is split over the entries: a metric named twice would judge it at a stricter alpha.
        twice = next(name for name in names if names.count(name) > 1)
        print(f"error: --metrics {shown}: names {twice} twice; alpha is split over the metrics named, so name "
              "each once", file=err)
        return None
    return {"metrics": tuple(names)}


def _load(path: str, err: TextIO, option: str | None = None, written: set[str] | None = None,
          numbers: list[int] | None = None) -> list[Interval] | None:
    """The intervals of a replay file (``-``: standard input), or None after printing why not.

    ``option``: the option that named the file, said with it (given both files, "cannot read
    before.jsonl" left the reader to work out which one it was).
    """
    notes: list[str] = []
    shown = _named(path, option)
    try:
        with _open(path) as handle:
            intervals = read_intervals(handle, notes, written, numbers)
    except OSError as exc:
        print(f"error: cannot read {shown}: {exc.strerror or exc}", file=err)
    except ReplayError as exc:
        print(f"error: {shown}: {exc}", file=err)
    except UnicodeDecodeError as exc:
        print(f"error: {shown}: not UTF-8 text ({exc.reason})", file=err)
    else:
        if notes:
            more = f" (and {len(notes) - 1} more line(s) alike)" if len(notes) > 1 else ""
            print(f"warning: {shown}: {notes[0]}{more}: at most every request was slow, as the flows read it",
                  file=err)
        return intervals
    return None


def _named(path: str, option: str | None = None) -> str:
    """A replay file as a message names it, after the option that named it if any: "-" is
    standard input ("error: -: line 3" named a file nobody has)."""
    if path == "-":
        return f"{option} - (standard input)" if option else "standard input"
    return f"{option} {file_named(path)}" if option else file_named(path)


@contextmanager
def _open(path: str) -> Iterator[Iterable[str]]:
    """The lines of a replay file (``-``: standard input), split at line feeds only.

    Python's default newline mode also ends a line at a lone carriage return, which JSON Lines
    does not: a record with a CR between its keys would be cut in two, and CR CR LF endings
    would count two lines each. The bytes are split first and each line decoded on its own,
    strictly: a byte that is not UTF-8 is an error naming its line (a decoder reading ahead in
    blocks cannot say which), and standard input gets the file's error rather than the
    locale's decoding (surrogateescape under the C locales, which turned such bytes into odd
    keys or "not valid JSON"). A UTF-8 BOM stays at the start of line 1, which
    ``read_intervals`` skips.
    """
    if path != "-":
        with open(path, "rb") as handle:
            yield _decoded(handle)
        return
    if sys.stdin is None:  # started with standard input closed (``<&-``)
        raise OSError("it is closed")
    binary = getattr(sys.stdin, "buffer", None)
    if binary is None:  # a text stream put in place of stdin (an embedding program): read as given
        yield sys.stdin
        return
    yield _decoded(binary)  # not closed: sys.stdin's buffer stays open for whoever reads it next


def _decoded(lines: Iterable[bytes]) -> Iterator[str]:
    """Each line of a binary stream as UTF-8 text; a line that is not names its number."""
    for number, raw in enumerate(lines, start=1):
        utf16 = _utf16(raw, number)
        if utf16 is not None:
            raise ReplayError(utf16)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReplayError(f"line {number}: not UTF-8 text ({exc.reason} at byte {exc.start + 1})") from None


# PowerShell 5's ``>`` (Out-File) writes UTF-16 with this mark; -Encoding UTF8 writes UTF-8.
_RESAVE = ("re-save {} as UTF-8 (in PowerShell 5: Get-Content FILE | Set-Content -Encoding UTF8 NEWFILE, "
           "or export with | Out-File -Encoding UTF8 rather than >)")


def _utf16(raw: bytes, number: int) -> str | None:
    """Why line ``number`` is UTF-16 rather than UTF-8, or None. Read as UTF-8, a UTF-16 byte
    order mark is "invalid start byte", and UTF-16 without one (ASCII with a NUL byte beside each
    character: valid UTF-8) a JSON error: neither said what the file is or what to do."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        if number == 1:
            return ("line 1: the file is UTF-16 (it starts with a UTF-16 byte order mark, as PowerShell 5's > "
                    f"writes): {_RESAVE.format('it')}")
        return (f"line {number}: UTF-16 from here on (the line starts with a UTF-16 byte order mark: two files "
                f"joined, the second written by PowerShell 5's >?): {_RESAVE.format('that file')}")
    if b"\x00" in raw:
        # JSON text holds no NUL byte (not even in a string, escaped as \u0000).
        return (f"line {number}: holds NUL bytes, which JSON text never does: is the file UTF-16 without a byte "
                f"order mark? If so, {_RESAVE.format('it')}")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rollway.judge.replay FILE [--alpha A] [--margin M] [--mode ...]``."""
    defaults = Analysis()
    parser = argparse.ArgumentParser(prog="python -m rollway.judge.replay", description=__doc__.splitlines()[0],
                                     epilog=NO_DELAY)
    parser.add_argument("file", help="JSON Lines, one interval per line ('-' for standard input)")
    parser.add_argument("--spec", help="a RolloutSpec JSON file, as the flows' spec parameter: its analysis and "
                        "guardrails are replayed, and the stage's bake; an option given beside it overrides that setting, with a note")
    parser.add_argument("--alpha", type=float, help=f"default {defaults.alpha}")
    parser.add_argument("--margin", type=float, help=f"default {defaults.margin}")
    parser.add_argument("--mode", choices=["two-sample", "one-sample"], help=f"default {defaults.mode}")
    parser.add_argument("--no-guardrails", action="store_true", help="judge only, without the absolute guardrails")
    parser.add_argument("--history", help="JSON Lines of the baseline's intervals before the stage")
    parser.add_argument("--stage", type=int, help=STAGE_HELP.replace("%", "%%"))  # argparse formats help with %
    parser.add_argument("--slo-error-rate", type=float,
                        help=f"one-sample mode: the error rate the canary is held to (default {defaults.slo_error_rate})")
    parser.add_argument("--slo-slow-rate", type=float,
                        help=f"one-sample mode: the share of slow requests (default {defaults.slo_slow_rate})")
    parser.add_argument("--metrics", help="what the judge compares: errors, slow or errors,slow (default "
                        f"{','.join(defaults.metrics)}), as the spec's analysis.metrics")
    parser.add_argument("--margin-ratio", type=float,
                        help=f"the canary may pass once shown below this multiple of the baseline's rate "
                        f"(default {defaults.margin_ratio:g})")
    parser.add_argument("--min-requests", type=int,
                        help=f"canary requests below which a stage is inconclusive (default {defaults.min_requests})")
    args = parser.parse_args(argv)
    return to_stdout(lambda out: replay_main(
        args.file, alpha=args.alpha, margin=args.margin, mode=args.mode, spec=args.spec, out=out, err=sys.stderr,
        guardrails=not args.no_guardrails, history=args.history, slo_error_rate=args.slo_error_rate,
        slo_slow_rate=args.slo_slow_rate, metrics=args.metrics, margin_ratio=args.margin_ratio,
        min_requests=args.min_requests, stage=args.stage))


def to_stdout(replay: Callable[[TextIO], int]) -> int:
    """``replay`` (``replay_main`` with its options) printing to standard output, and its exit code,
    for both commands that run it.

    The rollway command's main sets standard output up the same way, which ``python -m
    rollway.judge.replay`` skips: there a reason's "—" under an ASCII or Latin-1 output encoding
    raised UnicodeEncodeError (a traceback, and no JSON summary), and a reader gone early a
    BrokenPipeError. Neither set up a write that fails (a full disk): a traceback, exit 1.
    """
    if sys.stdout is None:
        # Started with standard output closed (``>&-``): print() to None writes nothing, so the
        # replay would run for no reader, and end in a traceback at the flush below.
        print("error: cannot write the replay's output: standard output is closed", file=sys.stderr)
        return EXIT_NOT_WRITTEN
    escape_unencodable()  # \u2014, valid inside the summary's JSON strings
    try:
        code = replay(sys.stdout)
        sys.stdout.flush()  # here, where a failed write is caught, not at the interpreter's exit
    except BrokenPipeError:
        # Not the replay's failure; 141 is what a command killed by SIGPIPE reports.
        to_devnull()
        return EXIT_READER_GONE
    except OSError as exc:
        to_devnull()
        print(f"error: cannot write the replay's output: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_NOT_WRITTEN
    return code


if __name__ == "__main__":
    raise SystemExit(main())
