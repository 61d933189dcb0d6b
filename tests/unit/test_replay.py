"""The replay command on hand-written files (tests/unit/data), including malformed ones."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rollway.judge.replay import EXIT_BAD_INPUT, EXIT_OK, ReplayError, read_intervals, replay_main
from tests.unit.replay_run import DEFAULTS, run
from rollway.model import VersionSample

DATA = Path(__file__).parent / "data"


def summary(lines: list[str]) -> dict:
    return json.loads(lines[-1])


FILE_CASES = [
    # (file, options, verdict, decided_at_t, canary requests at decision, reason fragment)
    ("regression.jsonl", {}, "rollback", 120.0, 1200, "0.83%"),
    ("healthy.jsonl", {}, "promote", 1140.0, 11400, "pass"),
    ("incident_both.jsonl", {}, "inconclusive", 1200.0, 12000, "a person must decide"),
    # The canary's first bad minutes could be a burst of its own, so the one-interval
    # cap holds (its earlier counts are too few to show it steady): the third bad minute
    # decides.
    ("incident_canary.jsonl", {}, "rollback", 480.0, 4800, "canary is worse"),
    ("missing.jsonl", {"guardrails": False}, "inconclusive", 240.0, 180, "a person must decide"),
    # The guardrail sees the canary's 5 errors in 60 requests at t=120, which the two-sample
    # judge skips for want of a baseline count.
    ("missing.jsonl", {}, "rollback", 120.0, 120, "guardrail"),
    # A stricter alpha needs more evidence: the same regression is caught two minutes later.
    ("regression.jsonl", {"alpha": 1e-6}, "rollback", 240.0, 2400, "1/(alpha/2) = 2,000,000"),
    ("regression.jsonl", {"mode": "one-sample"}, "rollback", 120.0, 1200, "vs SLO"),
]


@pytest.mark.parametrize("name,options,verdict,t,requests,fragment", FILE_CASES,
                         ids=[f"{c[0]} {c[1]}" for c in FILE_CASES])
def test_replay_files(name, options, verdict, t, requests, fragment):
    code, lines = run(DATA / name, **options)
    assert code == EXIT_OK
    result = summary(lines)
    assert set(result) == {"verdict", "decided_at_t", "canary_requests_at_decision", "reason", "alerts", "metric",
                           "statistic"}
    assert result["alerts"] == []  # none of these files raises an alert
    assert (result["verdict"], result["decided_at_t"], result["canary_requests_at_decision"]) == (verdict, t, requests)
    assert fragment in result["reason"]


def test_canary_requests_at_decision_are_all_the_canary_served_by_then_compared_or_not():
    """What the canary served by the decision, as the guardrail counts it: the period at t=120 has
    no baseline count, so the two-sample judge's reason leaves it out, and the summary does not."""
    code, lines = run(DATA / "missing.jsonl", guardrails=False)
    result = summary(lines)
    assert (code, result["canary_requests_at_decision"]) == (EXIT_OK, 180)
    assert "canary errors 0/120 (0.00%)" in result["reason"], result


def test_a_line_is_printed_only_when_the_decision_changes():
    code, lines = run(DATA / "healthy.jsonl")
    changes = lines[:-1]
    # 19 intervals were read before the pass; only two decisions were ever taken.
    assert [line.split(":")[0] for line in changes] == ["t=60 running", "t=1140 promote"]
    assert summary(lines)["reason"] in changes[-1]


def test_the_first_decision_ends_the_replay():
    code, lines = run(DATA / "regression.jsonl")
    assert lines[-2].startswith("t=120 rollback: canary errors 10/1,200 (0.83%) vs baseline 23/22,800 (0.10%)")
    assert len(lines) == 3


def test_decision_lines_print_epoch_seconds_in_full(tmp_path):
    rows = [json.loads(line) for line in (DATA / "regression.jsonl").read_text().splitlines() if line.strip()]
    epoch = write_lines(tmp_path / "epoch.jsonl", [{**row, "t": 1_700_000_000 + row["t"]} for row in rows])
    code, lines = run(epoch)
    assert [line.split(":")[0] for line in lines[:-1]] == ["t=1700000060 running", "t=1700000120 rollback"]
    assert summary(lines)["decided_at_t"] == 1_700_000_120
    fraction = write_lines(tmp_path / "fraction.jsonl", [{**row, "t": row["t"] + 0.5} for row in rows])
    code, lines = run(fraction)
    assert [line.split(":")[0] for line in lines[:-1]] == ["t=60.5 running", "t=120.5 rollback"]


MALFORMED = [
    # (file content, line number and message fragment)
    ('{"t": 60, "canary": {"requests": 60}}\n[1, 2]\n', "line 2: expected a JSON object, got an array"),
    # The file is JSON: what a line holds is named as JSON writes it, not as Python's repr
    # (None, True, '60', list and nan named things the line never held).
    ("null\n", "line 1: expected a JSON object, got null"),
    ('"60"\n', "line 1: expected a JSON object, got a string"),
    ('{"baseline": {"requests": 60}, "canary": {"requests": 60}}\n', "line 1: no 't' (the interval's end"),
    ('{"t": null, "canary": {"requests": 60}}\n', "line 1: 't' must be a finite number (the interval's end in "
                                                  "seconds), got null"),
    ('{"t": true, "canary": {"requests": 60}}\n', "got true"),
    ('{"t": "60", "canary": {"requests": 60}}\n', 'got "60"'),
    ('{"t": NaN, "canary": {"requests": 60}}\n', "got NaN"),
    ('{"t": 60, "canary": {"requests": "é"}}\n', "'canary.requests' must be a whole number, got \"é\""),
    ('{"t": 60, "canary": true}\n', "'canary' must be an object or null, got true"),
    ('{"t": 60, "canary": {"requests": 60, "latency_p99_ms": "slow"}}\n',
     "'canary.latency_p99_ms' must be a finite number or null, got \"slow\""),
    # A count as written: 1e+300, not the 301 digits of the integer it converts to.
    ('{"t": 60, "canary": {"requests": 1e300}}\n', "line 1: 'canary.requests' is 1e+300, more than 1e+15"),
    ('{"t": 60, "canary": {"requests": 60}, "canry": {}}\n', "line 1: unknown key(s) 'canry'"),
    ('{"t": 60, "canary": {"requests": 60, "eror": 1}}\n', "line 1: unknown key(s) in 'canary': 'eror'"),
    # What a newcomer's slip was and what the line may hold, not only that it is wrong.
    ('{"t": 60, "canary": {"requests": 60, "eror": 1}}\n', "'eror' (did you mean 'errors'?); expected requests, "
                                                          "errors, slow, latency_avg_ms, latency_p99_ms"),
    ('{"t": 60, "canry": {"requests": 60}}\n', "'canry' (did you mean 'canary'?); expected t, baseline, canary"),
    ('{"t": 60, "canary": {"requests": 60},}\n', "line 1: not valid JSON (Expecting property name enclosed in double "
                                                 "quotes at column 38): a comma before the closing bracket (JSON "
                                                 "allows no trailing comma)"),
    ('{"t": 60, "canary": {"requests": 60}},\n', "line 1: not valid JSON (Extra data at column 38): the line goes on "
                                                 "after its object ends, at ',' (one object per line)"),
    ('[{"t": 60, "canary": {"requests": 60}}]\n', "line 1: expected a JSON object, got an array (one interval per "
                                                  "line, each an object, not an array of them)"),
    ('{"t": "60", "canary": {"requests": 60}}\n', "line 1: 't' must be a finite number"),
    # json.loads accepts NaN and Infinity; neither is a time, and NaN would defeat the order check.
    ('{"t": 60, "canary": {"requests": 60}}\n{"t": NaN, "canary": {"requests": 60}}\n',
     "line 2: 't' must be a finite number"),
    ('{"t": Infinity, "canary": {"requests": 60}}\n', "line 1: 't' must be a finite number"),
    ('{"t": 1' + "0" * 400 + ', "canary": {"requests": 60}}\n', "line 1: 't' must be a finite number"),
    ('{"t": 60, "canary": {"requests": 1' + "0" * 400 + '}}\n', "line 1: 'canary.requests' is 1000"),
    # Past 4300 digits json.loads itself refuses an integer (ValueError, not JSONDecodeError),
    # and a deeply nested line exhausts the recursion limit: both are a bad line, not a crash.
    ('{"t": 60, "canary": {"requests": 1' + "0" * 5000 + '}}\n',
     "line 1: not valid JSON (an integer with more than 4300 digits)"),
    ('{"t": 60, "canary": {"requests": 60}}\n' + "[" * 100_000 + "]" * 100_000 + "\n",
     "line 2: not valid JSON (nested too deeply)"),
    ('{"t": 60, "canary": {"requests": 60, "latency_p99_ms": NaN}}\n',
     "line 1: 'canary.latency_p99_ms' must be a finite number or null"),
    ('{"t": 60, "canary": {"requests": 60}}\n\n{"t": 60, "canary": {"requests": 60}}\n',
     "line 3: t=60 is not after the previous line's t=60"),
    # Epoch seconds are printed in full: "t=1.7e+09" would make both times look alike.
    ('{"t": 1700000060, "canary": {"requests": 60}}\n{"t": 1700000000, "canary": {"requests": 60}}\n',
     "line 2: t=1700000000 is not after the previous line's t=1700000060"),
    ('{"t": 1700000060.25, "canary": {"requests": 60}}\n{"t": 1700000060.125, "canary": {"requests": 60}}\n',
     "line 2: t=1700000060.125 is not after the previous line's t=1700000060.25"),
    ('{"t": 60, "canary": {"errors": 1}}\n', "line 1: 'canary' has no 'requests'"),
    ('{"t": 60, "canary": {"requests": 60.5}}\n', "line 1: 'canary.requests' must be a whole number"),
    ('{"t": 60, "canary": {"requests": 60, "errors": 0.5}}\n', "line 1: 'canary.errors' must be a whole number"),
    ('{"t": 60, "canary": {"requests": 1e20}}\n', "line 1: 'canary.requests' is 1e+20, more than"),
    # Past a double's range a number read as Infinity, which the line never held.
    ('{"t": 60, "canary": {"requests": 60}}\n{"t": 120, "canary": {"requests": 1e400}}\n',
     "line 2: 'canary.requests' is 1e400, too large for any field (a double holds up to about 1.8e308)"),
    ('{"t": -1E+400, "canary": {"requests": 60}}\n', "line 1: 't' is -1E+400, too large for any field"),
    # Below a double's smallest a number read as 0: 1e-400 errors, a fraction, replayed as none.
    ('{"t": 60, "canary": {"requests": 60, "errors": 1e-400}}\n', "line 1: 'canary.errors' must be a whole number, "
                                                                   "got 1e-400"),
    # A null request count is no data, but the version's other fields must still make sense.
    ('{"t": 60, "canary": {"requests": null, "errors": "3"}}\n', "line 1: 'canary.errors' must be a whole number"),
    ('{"t": 60, "canary": {"requests": true}}\n', "line 1: 'canary.requests' must be a whole number"),
    ('{"t": 60, "baseline": {"requests": -1}}\n', "line 1: 'baseline.requests' must be at least 0, not -1"),
    ('{"t": 60, "baseline": 5}\n', "line 1: 'baseline' must be an object or null"),
    ("\n\n", "no intervals"),
]


@pytest.mark.parametrize("content,message", MALFORMED, ids=[m[1] for m in MALFORMED])
def test_malformed_input_names_the_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    code, lines = run(path)
    assert code == EXIT_BAD_INPUT
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: ") and message in lines[0]


@pytest.mark.parametrize("name,message", [
    ("malformed_json.jsonl", "line 3: not valid JSON"),
    ("malformed_counts.jsonl", "line 2: 'canary.errors' is 61, more than 'canary.requests' (60)"),
])
def test_malformed_files(name, message):
    code, lines = run(DATA / name)
    assert code == EXIT_BAD_INPUT
    assert len(lines) == 1 and message in lines[0]


def test_missing_file_and_bad_options(tmp_path):
    code, lines = run(tmp_path / "nope.jsonl")
    assert code == EXIT_BAD_INPUT and "cannot read" in lines[0] and "nope.jsonl" in lines[0]
    code, lines = run(DATA / "healthy.jsonl", alpha=0.9)
    assert code == EXIT_BAD_INPUT and "alpha" in lines[0]


@pytest.mark.parametrize("options,message", [
    # pydantic's "Input should be less than 0.5" said neither the option nor how low it may go.
    ({"alpha": 0.0}, "error: --alpha 0 is out of range: it must be at least 1e-09 and under 0.5"),
    ({"alpha": 1.5}, "error: --alpha 1.5 is out of range: it must be at least 1e-09 and under 0.5"),
    ({"margin": -0.1}, "error: --margin -0.1 is out of range: it must be at least 0 and under 1"),
    ({"mode": "three-sample"}, "error: invalid option --mode three-sample: Input should be 'two-sample' or"),
    ({"mode": "one-sample", "slo_error_rate": 0.9},
     "error: --slo-error-rate 0.9 is out of range: it must be over 0 and at most 0.5"),
    ({"mode": "one-sample", "slo_slow_rate": float("nan")},
     "error: --slo-slow-rate nan is out of range: it must be over 0 and at most 0.5"),
    # Two-sample mode never reads an SLO, one-sample mode no baseline history: either would be
    # ignored without a word.
    ({"slo_error_rate": 0.005}, "error: --slo-error-rate applies to --mode one-sample only"),
    ({"mode": "one-sample", "history": str(DATA / "healthy.jsonl")},
     "error: --history applies to --mode two-sample only"),
])
def test_a_bad_option_is_named_as_typed(options, message):
    code, lines = run(DATA / "healthy.jsonl", **options)
    assert code == EXIT_BAD_INPUT and len(lines) == 1 and lines[0].startswith(message), lines


def test_one_sample_mode_holds_the_canary_to_the_slos_given(tmp_path):
    # One error every third minute of 60 requests (0.56 %): over the default 0.1 % SLO, well
    # within a 5 % one. The command had no way to give an SLO, so a policy with its own could
    # not be replayed.
    rows = [{"t": 60 * i, "canary": {"requests": 60, "errors": 1 if i % 3 == 0 else 0}} for i in range(1, 30)]
    path = write_lines(tmp_path / "canary.jsonl", rows)
    code, lines = run(path, mode="one-sample", guardrails=False)
    assert summary(lines)["verdict"] == "rollback" and "vs SLO 0.10%" in summary(lines)["reason"]
    code, lines = run(path, mode="one-sample", guardrails=False, slo_error_rate=0.05)
    assert summary(lines)["verdict"] == "promote", lines
    assert "canary errors 0/60 (0.00%) vs SLO 5.00%" in lines[0]


def test_an_option_where_the_file_should_be_is_named_as_such():
    """``rollway judge --replay --no-guardrails`` (file forgotten) says the file is missing, not unreadable."""
    rollway = Path(sys.executable).with_name("rollway")
    done = subprocess.run([str(rollway), "judge", "--replay", "--no-guardrails"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == EXIT_BAD_INPUT, done.stdout + done.stderr
    assert "'--no-guardrails' is not a replay file" in done.stderr
    assert done.stdout == "", "the error is not the replay's output"
    code, lines = run(DATA / "healthy.jsonl", history="--alpha")
    assert code == EXIT_BAD_INPUT and "'--alpha' is not a replay file" in lines[0]


def test_read_intervals_keeps_absent_versions_as_no_data():
    rows = read_intervals((DATA / "missing.jsonl").read_text().splitlines())
    assert [(i.t, i.baseline is None, i.canary is None) for i in rows] == [
        (60.0, False, False), (120.0, True, False), (180.0, False, True), (240.0, False, False),
    ]
    assert rows[0].canary.slow == 0  # absent counts are zero
    with pytest.raises(ReplayError, match="line 1"):
        read_intervals(["{"])


def test_null_counts_and_whole_decimals_follow_the_missing_data_rules():
    """A null 5xx or slow count is an absent datapoint, so 0; a null request count is no data
    for that version, as a null version is; CloudWatch's decimals (1140.0) are whole counts."""
    rows = read_intervals([
        '{"t": 60, "baseline": {"requests": 1140.0, "errors": null, "slow": null},'
        ' "canary": {"requests": 60.0, "errors": 1.0, "slow": 2e0}}',
        '{"t": 120, "baseline": {"requests": 1140, "errors": 2}, "canary": {"requests": null, "slow": 3}}',
        '{"t": 180, "baseline": {"requests": null, "slow": null}, "canary": {"requests": 60, "errors": null}}',
    ])
    assert rows[0].baseline == VersionSample(requests=1140, errors=0, slow=0)
    assert rows[0].canary == VersionSample(requests=60, errors=1, slow=2)
    assert type(rows[0].canary.requests) is int
    assert (rows[1].canary, rows[2].baseline) == (None, None)
    assert rows[1].baseline == VersionSample(requests=1140, errors=2)
    assert rows[2].canary == VersionSample(requests=60)


def test_a_utf8_byte_order_mark_is_skipped(tmp_path):
    """Windows editors and PowerShell start UTF-8 files with a BOM; it is not part of line 1."""
    text = (DATA / "regression.jsonl").read_text()
    stage = tmp_path / "stage.jsonl"
    stage.write_bytes(b"\xef\xbb\xbf" + text.encode())
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\xef\xbb\xbf" + b'{"t": -60, "baseline": {"requests": 22800, "errors": 23}}\n')
    code, lines = run(stage, history=str(history))
    assert code == EXIT_OK and summary(lines)["verdict"] == "rollback"
    # Standard input, or lines read some other way.
    assert read_intervals(["\ufeff" + line for line in text.splitlines()[:1]])[0].t == 60.0
    # (-m from the repository's root runs this checkout, whichever one the venv's script points at.)
    done = subprocess.run([sys.executable, "-m", "rollway.judge.replay", "-"], input=b"\xef\xbb\xbf" + text.encode(),
                          capture_output=True, timeout=60, check=False, cwd=Path(__file__).parents[2])
    assert done.returncode == EXIT_OK, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["verdict"] == "rollback"


def test_the_rollway_command_reads_standard_input_and_can_leave_out_the_guardrails():
    """``rollway judge --replay -`` reads standard input; ``--no-guardrails`` judges statistically only.

    missing.jsonl's guardrail rollback (5 canary errors in 60 requests, no baseline count that
    minute) is the guardrail's alone: without it the file ends inconclusive.
    """
    rollway = Path(sys.executable).with_name("rollway")
    text = (DATA / "missing.jsonl").read_text()
    for extra, verdict in (([], "rollback"), (["--no-guardrails"], "inconclusive")):
        done = subprocess.run([str(rollway), "judge", "--replay", "-", *extra], input=text,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout.splitlines()[-1])["verdict"] == verdict, extra


def test_runs_as_a_module():
    """``python -m rollway.judge.replay`` works before the CLI wires it in."""
    done = subprocess.run(
        [sys.executable, "-m", "rollway.judge.replay", str(DATA / "regression.jsonl"), "--alpha", "0.01"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["verdict"] == "rollback"
    bad = subprocess.run(
        [sys.executable, "-m", "rollway.judge.replay", str(DATA / "malformed_json.jsonl")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert bad.returncode == 2 and "line 3" in bad.stderr and bad.stdout == ""


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_first_bad_minute_of_a_canary_never_seen_steady_does_not_decide_alone(tmp_path):
    """The judge alone (no guardrails): a canary at 10% errors for two minutes. The baseline's
    steady past does not lift the cap by itself: the canary's own first minute could be a
    burst of its own."""
    stage = write_lines(tmp_path / "stage.jsonl", [
        {"t": t, "baseline": {"requests": 11400, "errors": 12}, "canary": {"requests": 600, "errors": 60}}
        for t in (60, 120)
    ])
    steady = write_lines(tmp_path / "steady.jsonl", [
        {"t": -3600 + 60 * i, "baseline": {"requests": 12000, "errors": 11 + i % 3}} for i in range(60)
    ])
    bursty = write_lines(tmp_path / "bursty.jsonl", [
        {"t": -3600 + 60 * i, "baseline": {"requests": 12000, "errors": 36 if i % 3 == 0 else 0}} for i in range(60)
    ])
    decided = {}
    for name, history in (("none", None), ("steady", steady), ("bursty", bursty)):
        code, lines = run(stage, guardrails=False, history=None if history is None else str(history))
        assert code == EXIT_OK, lines
        decided[name] = (summary(lines)["verdict"], summary(lines)["decided_at_t"])
    assert decided == {"none": ("rollback", 120.0), "steady": ("rollback", 120.0), "bursty": ("rollback", 120.0)}


def test_a_malformed_history_file_is_named_with_its_line(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text('{"t": -60, "baseline": {"requests": 100}}\n{"t": -30, "baseline": {"requests": "many"}}\n')
    code, lines = run(DATA / "regression.jsonl", history=str(history))
    assert code == EXIT_BAD_INPUT and len(lines) == 1
    assert "history.jsonl" in lines[0] and "line 2" in lines[0]
    for content, message in (('{"t": -60, "baseline": {"requests": 1' + "0" * 5000 + '}}\n', "more than 4300 digits"),
                             ("[" * 100_000 + "\n", "nested too deeply")):
        history.write_text(content)
        code, lines = run(DATA / "regression.jsonl", history=str(history))
        assert code == EXIT_BAD_INPUT and len(lines) == 1
        assert "history.jsonl: line 1: not valid JSON" in lines[0] and message in lines[0]
    code, lines = run("-", history="-")
    assert code == EXIT_BAD_INPUT and "standard input" in lines[0]


def test_a_history_that_is_not_before_the_stage_is_refused(tmp_path):
    # The stage file given as its own --history calibrated the judge on the stage's periods,
    # and the replay ran as if nothing were wrong.
    code, lines = run(DATA / "healthy.jsonl", history=str(DATA / "healthy.jsonl"))
    assert code == EXIT_BAD_INPUT and len(lines) == 1
    assert "--history" in lines[0] and "not before the stage's first (t=60 in" in lines[0]
    before = write_lines(tmp_path / "before.jsonl", [{"t": 0, "baseline": {"requests": 1000}}])
    code, lines = run(DATA / "healthy.jsonl", history=str(before))
    assert code == EXIT_OK


def test_a_slow_canary_is_alerted_once_as_the_flows_alert_it(tmp_path):
    # The response-time guardrail only alerts: no decision changes on it, so without a line of
    # its own a canary answering in 15 s replayed without a word of it.
    rows = [{"t": 60 * i, "baseline": {"requests": 1000, "latency_avg_ms": 80},
             "canary": {"requests": 60, "latency_avg_ms": 30_000 if i >= 2 else 90}} for i in range(1, 5)]
    code, lines = run(write_lines(tmp_path / "slow.jsonl", rows))
    assert code == EXIT_OK
    # Once, when first raised (the stage's average is 15.0 s then), as the flows notify it.
    assert [line for line in lines if " alert: " in line] == [
        "t=120 alert: canary average response time 15.0 s is over 10 s"]
    assert lines.index("t=120 alert: canary average response time 15.0 s is over 10 s") < len(lines) - 1
    assert summary(lines)["verdict"] == "inconclusive"  # the summary stays the last line
    # A caller reading only the JSON summary learns of it too, not only one reading the text lines.
    assert summary(lines)["alerts"] == [
        {"t": 120.0, "kind": "response_time", "message": "canary average response time 15.0 s is over 10 s"}]


def test_the_command_takes_the_slo_options(tmp_path):
    rollway = Path(sys.executable).with_name("rollway")
    path = write_lines(tmp_path / "canary.jsonl", [{"t": 60, "canary": {"requests": 60}}])
    done = subprocess.run([str(rollway), "judge", str(path), "--mode", "one-sample", "--slo-error-rate", "0.02",
                           "--slo-slow-rate", "0.03"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == EXIT_OK, done.stderr
    assert "canary errors 0/60 (0.00%) vs SLO 2.00%" in done.stdout
    done = subprocess.run([str(rollway), "judge", str(path), "--slo-slow-rate", "0.03"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (EXIT_BAD_INPUT, "")
    assert done.stderr == ("error: --slo-slow-rate applies to --mode one-sample only (two-sample compares the canary "
                           "with the baseline)\n")


def test_large_figures_in_a_verdict_are_separated_by_thousands(tmp_path):
    """Counts, bars and evidence read as the requests a pass needs already did ("18,998"):
    "10/1200" and "rollback evidence 1.41e+03 of 2000000" were hard to read at a glance."""
    rows = [{"t": 60 * i, "baseline": {"requests": 22_800, "errors": 23}, "canary": {"requests": 1_200, "errors": 10}}
            for i in range(1, 4)]
    code, lines = run(write_lines(tmp_path / "big.jsonl", rows), alpha=1e-6, guardrails=False)
    assert lines[0].startswith("t=60 running: canary errors 10/1,200 (0.83%) vs baseline 23/22,800 (0.10%): "
                               "rollback evidence 1,414 of 2,000,000, pass evidence 0.0044 of 1,000,000 "), lines
    assert lines[1].startswith("t=120 rollback: canary errors 20/2,400 (0.83%) vs baseline 46/45,600 (0.10%): "
                               "evidence 2,000,000 reached 1/(alpha/2) = 2,000,000 (alpha 1e-06 split over 2 metrics)"), lines


@pytest.mark.parametrize("mode,said", [
    ("two-sample", "canary errors vs baseline (no interval with requests from both versions yet): "),
    ("one-sample", "canary errors vs SLO 0.10% (no canary requests yet): "),
])
def test_a_stage_with_nothing_compared_yet_does_not_read_as_no_errors(tmp_path, mode, said):
    """The first minute had no baseline (two-sample) or no canary count: "canary errors 0/0
    (0.00%) vs baseline 0/0 (0.00%)" read as a canary measured without a single error."""
    rows = [{"t": 60, "baseline": None, "canary": None if mode == "one-sample" else {"requests": 60, "errors": 9}},
            {"t": 120, "baseline": {"requests": 1000}, "canary": {"requests": 60}}]
    code, lines = run(write_lines(tmp_path / "late.jsonl", rows), mode=mode, guardrails=False)
    assert lines[0].startswith(f"t=60 running: {said}rollback evidence 1 of 200"), lines
    assert "0/0" not in lines[0]


def test_an_empty_or_unprintable_file_name_is_named_on_one_line(tmp_path):
    """``rollway judge "$FILE"`` with FILE unset said "cannot read : No such file or directory",
    and a name holding a line break split the error over two lines."""
    assert run("") == (EXIT_BAD_INPUT, ["error: the replay file is an empty name"])
    assert run(DATA / "healthy.jsonl", history="") == (EXIT_BAD_INPUT, ["error: --history is an empty name"])
    name = str(tmp_path / "a\nb.jsonl")
    assert run(name) == (EXIT_BAD_INPUT, [f"error: cannot read {name!r}: No such file or directory"])


def test_unknown_keys_are_named_on_a_line_of_reasonable_length(tmp_path):
    """An export with 2,000 stray keys, or one a megabyte long, made an error line as long."""
    many = {"t": 60, "canary": {"requests": 60}, **{f"k{i:04}": 1 for i in range(2000)}}
    code, lines = run(write_lines(tmp_path / "many.jsonl", [many]))
    assert lines == ["error: " + str(tmp_path / "many.jsonl") + ": line 1: unknown key(s) 'k0000', 'k0001', 'k0002', "
                     "'k0003', 'k0004' and 1,995 more; expected t, baseline, canary"]
    code, lines = run(write_lines(tmp_path / "long.jsonl", [{"t": 60, "canary": {"requests": 60, "x" * 100_000: 1}}]))
    assert code == EXIT_BAD_INPUT and len(lines[0]) < 300 and "unknown key(s) in 'canary': 'xxxx" in lines[0]


def test_a_zero_margin_is_not_stated_as_a_way_to_pass():
    """--margin 0 turns the absolute pass test off: "(canary below 2x the baseline or 0.00%)"
    offered a way to pass that no canary has."""
    code, lines = run(DATA / "healthy.jsonl", margin=0.0)
    assert code == EXIT_OK
    assert "or 0.00%" not in "\n".join(lines)
    assert "(canary below 2x the baseline)" in lines[0], lines[0]
    code, lines = run(DATA / "healthy.jsonl")
    assert "(canary below 2x the baseline or 0.10%)" in lines[0], lines[0]


def test_an_unreadable_history_file_is_named_as_the_history(tmp_path):
    """Given both files, "cannot read before.jsonl" left the reader to work out which option it was."""
    code, lines = run(DATA / "healthy.jsonl", history=str(tmp_path / "before.jsonl"))
    assert code == EXIT_BAD_INPUT
    assert lines == [f"error: cannot read --history {tmp_path / 'before.jsonl'}: No such file or directory"]
    (tmp_path / "before.jsonl").write_text('{"t": -60, "baseline": {"requests": -1}}\n')
    code, lines = run(DATA / "healthy.jsonl", history=str(tmp_path / "before.jsonl"))
    assert lines[0].startswith(f"error: --history {tmp_path / 'before.jsonl'}: line 1: "), lines


def test_a_stage_whose_baseline_served_nothing_says_so_and_what_judges_it(tmp_path):
    """A replay of a 100 % stage (the baseline's counts all 0) ended "no interval had request counts
    for both versions": they had them, and the flows judge such a stage against the SLO."""
    rows = [{"t": 60 * i, "baseline": {"requests": 0}, "canary": {"requests": 1200, "errors": 1}} for i in (1, 2, 3)]
    stage = write_lines(tmp_path / "full.jsonl", rows)
    code, lines = run(stage)
    assert code == EXIT_OK
    assert summary(lines)["reason"] == (
        "stage over and the baseline served no requests: nothing to compare the canary with (one-sample mode "
        "judges it against the SLO): a person must decide")
    code, lines = run(stage, mode="one-sample")
    assert code == EXIT_OK and "vs SLO 0.10%" in summary(lines)["reason"]


def regressed(tmp_path) -> Path:
    """A canary failing 0.33 % beside a baseline's 0.1 %, errors only (no slow counts), half an hour."""
    rows = [{"t": 60 * i, "baseline": {"requests": 11400, "errors": 11 + i % 3}, "canary": {"requests": 600, "errors": 2}}
            for i in range(1, 31)]
    return write_lines(tmp_path / "errors-only.jsonl", rows)


def test_metrics_errors_judges_the_errors_alone_as_a_spec_that_says_so(tmp_path):
    """A service publishing no SlowRequestCount runs with analysis.metrics [errors]: its policy
    could not be replayed, the replay split alpha over a metric it has no counts of."""
    path = regressed(tmp_path)
    code, split = run(path, guardrails=False)
    assert (summary(split)["decided_at_t"], summary(split)["canary_requests_at_decision"]) == (540.0, 5400)
    assert "1/(alpha/2) = 200" in summary(split)["reason"]
    code, alone = run(path, guardrails=False, metrics="errors")
    assert code == EXIT_OK
    result = summary(alone)
    assert (result["verdict"], result["decided_at_t"], result["canary_requests_at_decision"]) == ("rollback", 480.0, 4800)
    assert "reached 1/alpha = 100" in result["reason"]
    assert "slow" not in "".join(alone)


def test_a_file_without_slow_counts_says_how_they_are_judged(tmp_path):
    path = regressed(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert replay_main(str(path), out=out, err=err, **DEFAULTS) == EXIT_OK
    assert err.getvalue() == (
        f"note: {path}: no interval gives a 'slow' count, so every one is judged as 0 slow requests and alpha is "
        "split over errors and slow, as a stage whose service publishes no SlowRequestCount; --metrics errors "
        "judges the errors alone (the spec's analysis.metrics: [errors])\n")
    for options in ({"metrics": "errors"}, {}):
        given = path if options else DATA / "healthy.jsonl"  # healthy.jsonl gives slow counts
        out, err = io.StringIO(), io.StringIO()
        assert replay_main(str(given), out=out, err=err, **DEFAULTS, **options) == EXIT_OK
        assert err.getvalue() == ""


@pytest.mark.parametrize("metrics,message", [
    ("latency", "error: --metrics latency: 'latency' is not a metric; give errors, slow or errors,slow"),
    ("errors,", "error: --metrics errors,: an empty name is not a metric; give errors, slow or errors,slow"),
    ("errors,errors", "error: --metrics errors,errors: names errors twice; alpha is split over the metrics named"),
    ("", "error: --metrics '': an empty name is not a metric; give errors, slow or errors,slow"),
])
def test_a_bad_metrics_option_is_refused_before_the_file_is_read(tmp_path, metrics, message):
    code, lines = run(tmp_path / "not-there.jsonl", metrics=metrics)
    assert code == EXIT_BAD_INPUT and len(lines) == 1 and lines[0].startswith(message), lines


def test_margin_ratio_and_min_requests_are_the_specs(tmp_path):
    # The canary passes at t=1140 on 11,400 requests; a policy asking for more passes no sooner.
    code, lines = run(DATA / "healthy.jsonl", min_requests=20_000)
    assert (summary(lines)["verdict"], summary(lines)["canary_requests_at_decision"]) == ("promote", 20_400)
    code, lines = run(DATA / "healthy.jsonl", min_requests=100_000)
    result = summary(lines)
    assert (result["verdict"], result["decided_at_t"]) == ("inconclusive", 3600.0)
    assert result["reason"].startswith("stage over with only 36,000 canary requests (need 100,000)")
    # Told to pass only below 1.2x the baseline (no absolute margin), the same canary is left to a person.
    code, loose = run(DATA / "healthy.jsonl", margin=0.0)
    code, tight = run(DATA / "healthy.jsonl", margin=0.0, margin_ratio=1.2)
    assert (summary(loose)["verdict"], summary(loose)["decided_at_t"]) == ("promote", 1140.0)
    assert summary(tight)["verdict"] == "inconclusive"
    assert "pass evidence 5 of 100 (canary below 1.2x the baseline)" in summary(tight)["reason"]
    code, lines = run(DATA / "healthy.jsonl", margin_ratio=1.0)
    assert code == EXIT_BAD_INPUT and lines == ["error: --margin-ratio 1 is out of range: it must be over 1"]
    code, lines = run(DATA / "healthy.jsonl", min_requests=0)
    assert code == EXIT_BAD_INPUT and lines == ["error: --min-requests 0 is out of range: it must be at least 1"]


def test_the_command_takes_the_policy_options(tmp_path):
    path = regressed(tmp_path)
    for command in ([str(Path(sys.executable).with_name("rollway")), "judge"],
                    [sys.executable, "-m", "rollway.judge.replay"]):
        done = subprocess.run([*command, str(path), "--metrics", "errors", "--margin-ratio", "1.5",
                               "--min-requests", "100", "--no-guardrails"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, done.stderr) == (EXIT_OK, ""), done.stderr
        assert json.loads(done.stdout.splitlines()[-1])["decided_at_t"] == 480.0
        assert "below 1.5x the baseline" in done.stdout


def test_overwhelming_evidence_reads_as_a_bound_and_the_summary_keeps_the_number(tmp_path):
    """A canary of a million requests printed "evidence 1.0e+304 reached 100"; a program reading
    the summary gets the statistic as a JSON number, beside the keys it always had."""
    rows = [{"t": 60, "canary": {"requests": 1_000_000, "errors": 997, "slow": 10_000}}]
    code, lines = run(write_lines(tmp_path / "big.jsonl", rows), mode="one-sample", guardrails=False)
    assert code == EXIT_OK
    assert not any("e+" in line for line in lines[:-1]), lines
    assert "evidence over 10^6 reached 100 that the canary is below 0.20%" in lines[0], lines
    result = summary(lines)
    assert {"verdict", "decided_at_t", "canary_requests_at_decision", "reason", "alerts"} <= set(result)
    assert result["verdict"] == "promote" and result["metric"] == "errors"
    assert isinstance(result["statistic"], float) and result["statistic"] > 1e100


def test_slow_counts_only_in_intervals_without_data_still_get_the_note(tmp_path):
    """A slow count beside a null request count is no data (the version is not judged there), so
    the file judges every interval as 0 slow requests: the note saying so was left out."""
    rows = [{"t": 60 * i, "baseline": {"requests": 11400, "errors": 11}, "canary": {"requests": 600, "errors": 1}}
            for i in range(1, 4)]
    rows[1]["canary"] = {"requests": None, "slow": 40}
    path = write_lines(tmp_path / "slow-without-requests.jsonl", rows)
    out, err = io.StringIO(), io.StringIO()
    assert replay_main(str(path), out=out, err=err, **DEFAULTS) == EXIT_OK
    assert err.getvalue().startswith(f"note: {path}: no interval gives a 'slow' count"), err.getvalue()
