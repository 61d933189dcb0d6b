"""``judge --replay FILE --spec SPEC``: the policy a user's flows run, replayed (hand-written files)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rollway.judge.replay import EXIT_BAD_INPUT, EXIT_OK, replay_main

DATA = Path(__file__).parent / "data"
SPEC = DATA / "spec_strict.json"


def replay(path: Path | str, **options) -> tuple[int, list[str], list[str]]:
    """The exit code, the output lines and the error lines, options as the command passes them."""
    out, err = io.StringIO(), io.StringIO()
    code = replay_main(str(path), out=out, err=err, **options)
    return code, out.getvalue().splitlines(), err.getvalue().splitlines()


def summary(lines: list[str]) -> dict:
    return json.loads(lines[-1])


def unnoted(errors: list[str]) -> list[str]:
    """The error lines but the note saying the stage's clock, which every replay of a spec prints
    (``test_the_stage_clock_the_replay_takes_is_said_before_it_judges``)."""
    return [line for line in errors if not line.startswith("note: the stage starts at t=")]


def test_the_spec_analysis_and_guardrails_are_what_the_replay_judges_by():
    """alpha 1e-6 over errors alone, a 1.5x margin ratio and 100 requests, and a 20 % guardrail:
    the replay decides as those options given one by one would, not as the defaults."""
    code, lines, errors = replay(DATA / "regression.jsonl", spec=str(SPEC))
    assert (code, unnoted(errors)) == (EXIT_OK, [])
    code, same, _ = replay(DATA / "regression.jsonl", alpha=1e-6, metrics="errors", margin_ratio=1.5,
                           min_requests=100)
    assert summary(lines) == summary(same)
    assert "1/alpha = 1,000,000" in summary(lines)["reason"]  # one metric: alpha not split
    # The spec's guardrail (20 %) does not roll back 5 errors in 60 requests; the default 1 % does.
    code, lines, _ = replay(DATA / "missing.jsonl", spec=str(SPEC))
    assert summary(lines)["verdict"] == "inconclusive" and "guardrail" not in summary(lines)["reason"]
    code, lines, _ = replay(DATA / "missing.jsonl")
    assert summary(lines)["verdict"] == "rollback" and "1% guardrail" in summary(lines)["reason"]


def test_an_option_beside_the_spec_overrides_its_setting_and_says_so():
    code, lines, errors = replay(DATA / "regression.jsonl", spec=str(SPEC), alpha=0.01, min_requests=50)
    assert code == EXIT_OK
    assert unnoted(errors) == [f"note: --alpha 0.01 overrides {SPEC}'s analysis.alpha (1e-06)",
                      f"note: --min-requests 50 overrides {SPEC}'s analysis.min_requests (100)"]
    assert "1/alpha = 100 " in summary(lines)["reason"]  # the spec's errors-only metrics still hold
    # Every digit given: :g's six said 1.23457e-05 and 1.23457e+06, figures nobody typed.
    code, _, errors = replay(DATA / "regression.jsonl", spec=str(SPEC), alpha=1.2345678e-05, margin_ratio=1234567.0)
    assert code == EXIT_OK
    assert unnoted(errors) == [f"note: --alpha 1.2345678e-05 overrides {SPEC}'s analysis.alpha (1e-06)",
                               f"note: --margin-ratio 1234567 overrides {SPEC}'s analysis.margin_ratio (1.5)"]


@pytest.mark.parametrize("text,said", [
    ('{"image": "repo:1.4.0", "analysis": {"alpha": 0.7}}', "analysis.alpha: alpha must be at least 1e-09 and under 0.5, not 0.7"),
    ('{"image": "repo:1.4.0", "analysis": {"alhpa": 0.05}}', "analysis.alhpa: "),
    ('{"image": "repo:1.4.0", "guardrails": {"canary_error_rate": 1}}', "guardrails.canary_error_rate: "),
    ('{"analysis": {"alpha": 0.05}}', "image: Field required"),
    ('{"image": "repo:1.4.0", "analysis": {"judge": "threshold"}}',
     "analysis.judge is threshold: the replay runs the sequential judge"),
    ('{"image": "repo:1.4.0",}', "not valid JSON"),
    ('{"image": "repo:1.4.0", "image": "repo:1.5.0"}', "key 'image' appears twice"),
    ('[{"image": "repo:1.4.0"}]', "spec: Input should be a valid dictionary"),
])
def test_a_bad_spec_is_refused_naming_the_file_and_field_before_a_line_is_read(tmp_path, text, said):
    bad = tmp_path / "bad-spec.json"
    bad.write_text(text)
    # The replay file is malformed: refused on the spec first, no line of it was read.
    code, out, errors = replay(DATA / "malformed_json.jsonl", spec=str(bad))
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert len(errors) == 1 and errors[0].startswith(f"error: --spec {bad}: "), errors
    assert said in errors[0], errors


def test_a_spec_that_cannot_be_read_is_named():
    code, _, errors = replay(DATA / "regression.jsonl", spec=str(DATA / "no-such-spec.json"))
    assert code == EXIT_BAD_INPUT
    assert errors == [f"error: cannot read --spec {DATA / 'no-such-spec.json'}: No such file or directory"]


def test_history_is_refused_beside_a_spec_that_does_not_calibrate(tmp_path):
    spec = tmp_path / "no-calibration.json"
    spec.write_text('{"image": "repo:1.4.0", "analysis": {"calibration_seconds": 0}}')
    code, _, errors = replay(DATA / "regression.jsonl", spec=str(spec), history=str(DATA / "healthy.jsonl"))
    assert code == EXIT_BAD_INPUT
    assert errors == [f"error: --history applies to a spec that calibrates: {spec}'s analysis.calibration_seconds "
                      "is 0, so the flows judge without the baseline's past"]


def test_the_command_takes_a_spec_and_its_help_says_the_replay_does_not_wait_for_late_metrics():
    for command in ([str(Path(sys.executable).with_name("rollway")), "judge"],
                    [sys.executable, "-m", "rollway.judge.replay"]):
        done = subprocess.run([*command, str(DATA / "regression.jsonl"), "--spec", str(SPEC)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, unnoted(done.stderr.splitlines())) == (EXIT_OK, []), done.stderr
        assert "1/alpha = 1,000,000" in json.loads(done.stdout.splitlines()[-1])["reason"]
        shown = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60, check=False)
        assert "metrics_delay_seconds" in " ".join(shown.stdout.split()), shown.stdout


# A 100 % stage: the stable version serves nothing, so no interval has baseline requests.
FULL = DATA / "full_canary.jsonl"


@pytest.mark.parametrize("command", [["rollway.cli", "judge"], ["rollway.judge.replay"]], ids=["rollway", "module"])
def test_a_100_percent_stage_replayed_through_the_command_is_held_to_the_slo_as_the_flows_judge_it(command):
    """The flows judge a two-sample spec's 100 % stage against its SLO (``stage_mode``); the replay
    compared two samples there, and found every such stage inconclusive for want of a baseline."""
    done = subprocess.run([sys.executable, "-m", *command, str(FULL), "--spec", str(SPEC), "--stage", "100"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == EXIT_OK, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    assert said["verdict"] == "promote" and "vs SLO 0.10%" in said["reason"], said
    assert "--stage 100" in done.stderr and "one-sample" in done.stderr, done.stderr
    # Exactly the one-sample judge of the spec's other settings (alpha 1e-6, errors alone, 1.5x).
    code, lines, _ = replay(FULL, spec=str(SPEC), mode="one-sample")
    assert json.loads(done.stdout.splitlines()[-1]) == summary(lines)
    shown = subprocess.run([sys.executable, "-m", *command, "--help"], capture_output=True, text=True, timeout=60,
                           check=False)
    assert "--stage" in shown.stdout and "one-sample" in " ".join(shown.stdout.split()), shown.stdout


def test_a_stage_below_100_percent_is_judged_by_the_spec_mode():
    code, lines, errors = replay(DATA / "regression.jsonl", spec=str(SPEC), stage=5)
    assert (code, unnoted(errors)) == (EXIT_OK, [])
    assert summary(lines) == summary(replay(DATA / "regression.jsonl", spec=str(SPEC))[1])
    code, lines, _ = replay(FULL, spec=str(SPEC), stage=5)
    assert summary(lines)["verdict"] == "inconclusive"  # two samples, and no baseline to compare with


@pytest.mark.parametrize("spec,stages", [(str(SPEC), f"{SPEC}'s stages are 5 and 100 %"),
                                         (None, "the default stages are 5, 25, 50, 75 and 100 %")],
                         ids=["the spec's", "the default"])
def test_a_stage_the_spec_does_not_have_is_refused_before_a_line_is_read(spec, stages):
    code, out, errors = replay(DATA / "malformed_json.jsonl", spec=spec, stage=30)
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert errors == [f"error: --stage 30 is not a stage to replay: {stages} (give the canary weight of the stage "
                      "the file records)"], errors


def test_a_100_percent_stage_refuses_what_only_two_samples_read():
    code, _, errors = replay(FULL, spec=str(SPEC), stage=100, mode="two-sample")
    assert code == EXIT_BAD_INPUT and len(errors) == 1, errors
    assert errors[0].startswith("error: --mode two-sample cannot replay --stage 100: "), errors
    code, _, errors = replay(FULL, spec=str(SPEC), stage=100, history=str(DATA / "healthy.jsonl"))
    assert code == EXIT_BAD_INPUT and errors[-1].startswith("error: --history applies to --mode two-sample only"), errors
    # The SLOs are what a 100 % stage reads, whatever the spec's mode.
    code, lines, errors = replay(FULL, spec=str(SPEC), stage=100, slo_error_rate=0.0002)
    assert code == EXIT_OK and "vs SLO 0.02%" in summary(lines)["reason"], (lines, errors)


def _spec(tmp_path: Path, stages: list[dict]) -> str:
    """The strict spec's analysis and guardrails, with these stages."""
    data = json.loads(SPEC.read_text())
    data["stages"] = stages
    path = tmp_path / "baked-spec.json"
    path.write_text(json.dumps(data))
    return str(path)


def _file(tmp_path: Path, canary_errors: dict[int, int], minutes: int = 20) -> Path:
    """A healthy 5 % stage, a minute a line from t=60 (the stage starts at t=0), with these
    canary errors at these t; the strict spec's judge passes it at t=240."""
    path = tmp_path / "stage.jsonl"
    path.write_text("".join(json.dumps({"t": 60 * m, "baseline": {"requests": 114000, "errors": 114},
                                        "canary": {"requests": 6000, "errors": canary_errors.get(60 * m, 0)}}) + "\n"
                            for m in range(1, minutes + 1)))
    return path


def test_a_pass_before_the_minimum_bake_is_held_until_it_as_the_flows_hold_it(tmp_path):
    """The flows pass a stage only once it has baked min_bake_seconds (``decide``): the replay
    promoted at the judge's first pass, minutes before the policy would."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200, "min_bake_seconds": 600}, {"weight": 100}])
    code, lines, errors = replay(_file(tmp_path, {}), spec=spec, stage=5)
    assert (code, unnoted(errors)) == (EXIT_OK, [])
    said = summary(lines)
    assert said["verdict"] == "promote" and said["decided_at_t"] == 600, said
    assert said["canary_requests_at_decision"] == 60000
    held = [line for line in lines if " passing, held until min bake at t=600: " in line]
    assert len(held) == 1 and held[0].startswith("t=240 "), lines
    # The promote line (and the summary) repeated the pass of t=240 as if it had just happened.
    passed = held[0].split(": ", 1)[1]
    released = f"{passed}; passing since t=240, held until min bake at t=600"
    assert lines[-2] == f"t=600 promote: {released}", lines
    assert said["reason"] == released
    # Without the spec, the same file promotes at the judge's first pass, as before.
    plain = summary(replay(_file(tmp_path, {}), alpha=1e-6, metrics="errors", margin_ratio=1.5, min_requests=100)[1])
    assert plain["verdict"] == "promote" and plain["decided_at_t"] == 240


def test_a_rollback_before_the_minimum_bake_wins_over_a_held_pass(tmp_path):
    """The judge keeps judging a held pass, and a rollback before the minimum bake rolls back."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200, "min_bake_seconds": 600}, {"weight": 100}])
    code, lines, _ = replay(_file(tmp_path, {t: 600 for t in (300, 360, 420, 480)}), spec=spec, stage=5)
    said = summary(lines)
    assert said["verdict"] == "rollback" and said["decided_at_t"] == 480, said
    assert any(" passing, held until min bake at t=600: " in line for line in lines), lines


def test_the_stage_ends_at_its_bake_and_a_file_that_ends_first_passes_nothing(tmp_path):
    """Without min_bake_seconds a stage passes only at its bake's end; a file that stops while a
    pass is held is inconclusive (the flows had not passed it yet), and lines after the bake are
    not judged."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 900}, {"weight": 100}])
    said = summary(replay(_file(tmp_path, {1200: 3000}), spec=spec, stage=5)[1])
    assert said["verdict"] == "promote" and said["decided_at_t"] == 900, said
    code, lines, _ = replay(_file(tmp_path, {}, minutes=10), spec=spec, stage=5)
    said = summary(lines)
    assert said["verdict"] == "inconclusive" and said["decided_at_t"] == 600, said
    assert "before the stage's minimum bake ends at t=900" in said["reason"], said


def test_without_a_stage_a_spec_whose_stages_bake_differently_is_refused(tmp_path):
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 900}, {"weight": 50, "bake_seconds": 1200},
                            {"weight": 100}])
    code, out, errors = replay(DATA / "malformed_json.jsonl", spec=spec)
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert len(errors) == 1 and errors[0].startswith(f"error: {spec}'s stages below 100 % bake differently"), errors
    assert "--stage" in errors[0]


def _steps(tmp_path: Path, ts: list[float], blank_at: int | None = None) -> Path:
    """A healthy 5 % stage ending at these t, with a blank line before the ``blank_at``-th record."""
    lines = [json.dumps({"t": t, "baseline": {"requests": 114000, "errors": 114},
                         "canary": {"requests": 6000, "errors": 0}}) for t in ts]
    if blank_at is not None:
        lines.insert(blank_at, "")
    path = tmp_path / "steps.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_file_recorded_at_another_period_than_the_spec_is_refused_naming_the_line(tmp_path):
    """The bake starts one analysis period before the first t: a file of 10-s steps replayed by a
    60-s spec started it 60 s early and held a pass on the wrong clock, without a word."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200, "min_bake_seconds": 600}, {"weight": 100}])
    code, out, errors = replay(_steps(tmp_path, list(range(10, 610, 10))), spec=spec, stage=5)
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert errors == [f"error: {tmp_path / 'steps.jsonl'}: line 2: t=20 is 10 s after the previous line's t=10; "
                      f"{spec}'s analysis.interval_seconds is 60, so each line must end one period (or a whole "
                      "number of periods, where periods are missing) after the one before"], errors
    # A step that is no whole number of periods, counted as an editor counts lines (a blank one included).
    code, out, errors = replay(_steps(tmp_path, [60, 120, 240, 330, 390], blank_at=2), spec=spec, stage=5)
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {tmp_path / 'steps.jsonl'}: line 5: t=330 is 90 s after the previous line's t=240; "), errors


def test_missing_periods_in_a_recorded_file_are_replayed_with_the_spec(tmp_path):
    """CloudWatch returns no datapoint for a period without one: an export skips it, and the
    replay judges the periods it has, on the file's clock."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200, "min_bake_seconds": 600}, {"weight": 100}])
    code, lines, errors = replay(_steps(tmp_path, [60, 120, 180, 360, 420, 480, 540, 600, 660]), spec=spec, stage=5)
    assert (code, unnoted(errors)) == (EXIT_OK, [])
    said = summary(lines)
    assert said["verdict"] == "promote" and said["decided_at_t"] == 600, said
    # Without the spec, no period is known to check the steps against: 10-s steps replay as before.
    code, lines, errors = replay(_steps(tmp_path, list(range(10, 610, 10))), metrics="errors")
    assert (code, errors) == (EXIT_OK, [])


def test_steps_of_fractional_seconds_are_whole_periods_despite_rounding(tmp_path):
    """Fractional t (60.1, 120.1, ...) subtract to 60 s give or take a float's rounding error: one
    period. A step that wanders further (60.1 s) is refused, saying the step as written."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200, "min_bake_seconds": 600}, {"weight": 100}])
    ts = [60 * m + 0.1 for m in range(1, 12)]
    assert {b - a for a, b in zip(ts, ts[1:])} != {60.0}  # the rounding this is about
    code, lines, errors = replay(_steps(tmp_path, ts), spec=spec, stage=5)
    assert (code, unnoted(errors)) == (EXIT_OK, [])
    assert summary(lines)["decided_at_t"] == ts[9]
    code, _, errors = replay(_steps(tmp_path, [ts[0], ts[0] + 60.1]), spec=spec, stage=5)
    assert code == EXIT_BAD_INPUT and " is 60.1 s after the previous line's " in errors[0], errors


def _history(tmp_path: Path, ts: list[float]) -> Path:
    """The baseline's steady past, ending at these t."""
    path = tmp_path / "before.jsonl"
    path.write_text("".join(json.dumps({"t": t, "baseline": {"requests": 114000, "errors": 114}}) + "\n" for t in ts))
    return path


def test_a_history_recorded_at_another_period_than_the_spec_is_refused_naming_its_line(tmp_path):
    """The judge's calibration counts the history's periods: an hour of 10-s periods is six times
    as many, each a sixth as big, and changed when the cap lifts, without a word."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200}, {"weight": 100}])
    history = _history(tmp_path, list(range(-590, 1, 10)))
    code, out, errors = replay(_file(tmp_path, {}), spec=spec, stage=5, history=str(history))
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert errors == [f"error: --history {history}: line 2: t=-580 is 10 s after the previous line's t=-590; "
                      f"{spec}'s analysis.interval_seconds is 60, so each line must end one period (or a whole "
                      "number of periods, where periods are missing) after the one before"], errors


def test_a_history_that_reaches_into_the_stage_or_off_its_period_edges_is_refused(tmp_path):
    """The stage starts one period before the stage file's first t (its first line is the stage's
    first period): a history line ending after that start is a period of the stage, and one off
    the stage file's period edges was recorded on another clock."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200}, {"weight": 100}])
    stage = _file(tmp_path, {})
    code, out, errors = replay(stage, spec=spec, stage=5, history=str(_history(tmp_path, [-30, 30])))
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert errors == [f"error: --history {tmp_path / 'before.jsonl'}: line 2: t=30 is within the stage's first period, "
                      f"from t=0 to t=60 ({stage}'s first line: the stage starts one analysis period, 60 s, before it); "
                      "the history is the baseline's periods before the stage, so it ends by t=0"], errors
    code, out, errors = replay(stage, spec=spec, stage=5, history=str(_history(tmp_path, [-90, -30])))
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert errors == [f"error: --history {tmp_path / 'before.jsonl'}: line 2: t=-30 is 90 s before {stage}'s first "
                      f"t=60, not a whole number of {spec}'s 60-s analysis periods: the two files' periods do not "
                      "share their edges"], errors
    # Ending at the stage's start, or periods before it (an export that skipped some), is the past.
    for ts in ([-60, 0], [-180, -120]):
        code, lines, errors = replay(stage, spec=spec, stage=5, history=str(_history(tmp_path, ts)))
        assert (code, unnoted(errors)) == (EXIT_OK, []), (ts, errors)


def test_a_history_longer_than_the_flows_read_is_refused_saying_which_lines_to_drop(tmp_path):
    """The flows calibrate on analysis.calibration_seconds before the stage (an hour by default):
    two hours of history calibrated the replay on twice the past the policy's flows ever read."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200}, {"weight": 100}])
    stage = _file(tmp_path, {})
    history = _history(tmp_path, list(range(-7140, 1, 60)))
    code, out, errors = replay(stage, spec=spec, stage=5, history=str(history))
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert errors == [f"error: --history {history}: line 1: t=-7140 is before the 3600 s the flows read "
                      f"({spec}'s analysis.calibration_seconds): the periods ending from t=-3540 to the stage's "
                      "start at t=0; delete the lines before line 61"], errors
    history = _history(tmp_path, list(range(-7140, -3599, 60)))
    code, out, errors = replay(stage, spec=spec, stage=5, history=str(history))
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert errors[0].endswith("; no line of it is within them"), errors
    code, lines, errors = replay(stage, spec=spec, stage=5, history=str(_history(tmp_path, list(range(-3540, 1, 60)))))
    assert (code, unnoted(errors)) == (EXIT_OK, [])


def test_the_stage_clock_the_replay_takes_is_said_before_it_judges(tmp_path):
    """The bake is timed from one period before the first t (a line's t ends its period, and the
    first line is taken as the stage's first): a file holding CloudWatch's timestamps (period
    starts) replayed its stage a period early, and nothing showed when the replay took it to start."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200, "min_bake_seconds": 600}, {"weight": 100}])
    stage = _file(tmp_path, {})
    code, lines, errors = replay(stage, spec=spec, stage=5)
    assert code == EXIT_OK
    assert errors == [f"note: the stage starts at t=0, one analysis period (60 s) before the first t=60 of {stage}: a "
                      "line's t is the end of its period (CloudWatch's timestamp, the period's start, plus 60 s), and "
                      "the first line is taken as the stage's first period; it may pass from t=600 (min bake) and its "
                      "bake ends at t=1200"], errors
    # Without the spec there is no bake to time, and nothing to say.
    assert replay(stage, metrics="errors")[2] == []


def test_the_stage_clock_of_standard_input_names_it(tmp_path, monkeypatch):
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200, "min_bake_seconds": 600}, {"weight": 100}])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(_file(tmp_path, {}).read_bytes())))
    code, _, errors = replay("-", spec=spec, stage=5)
    assert code == EXIT_OK and errors[0].startswith(
        "note: the stage starts at t=0, one analysis period (60 s) before the first t=60 of standard input: "), errors


def test_errors_about_standard_input_name_it_not_a_dash(tmp_path, monkeypatch):
    """``judge -``: "error: -: line 2: ..." named a file called "-", which a reader looks for in vain."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200, "min_bake_seconds": 600}, {"weight": 100}])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(_steps(tmp_path, [60, 70]).read_bytes())))
    code, out, errors = replay("-", spec=spec, stage=5)
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert len(errors) == 1 and errors[0].startswith(
        "error: standard input: line 2: t=70 is 10 s after the previous line's t=60; "), errors
    stage = _file(tmp_path, {})
    for ts, said in (([-60, -120], "line 2: t=-120 is not after the previous line's t=-60"),
                     ([-30, 30], "line 2: t=30 is within the stage's first period")):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(_history(tmp_path, ts).read_bytes())))
        code, out, errors = replay(stage, spec=spec, stage=5, history="-")
        assert (code, out) == (EXIT_BAD_INPUT, [])
        assert len(errors) == 1 and errors[0].startswith(f"error: --history - (standard input): {said}"), errors
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(_history(tmp_path, [60, 120]).read_bytes())))
    code, out, errors = replay(stage, metrics="errors", history="-")
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert errors == ["error: --history - (standard input): its last interval ends at t=120, not before the stage's "
                      f"first (t=60 in {stage}); --history is the baseline's intervals from before the stage"], errors


def test_a_file_off_the_clocks_minute_edges_bakes_as_one_on_them(tmp_path):
    """The stage starts at a period edge of the file (one period before its first t), wherever
    those edges fall: a file of t=90, 150, ... bakes as one of t=60, 120, ... does. The bake's end
    was rounded to the next whole minute of the clock, so a one-period stage started at t=30 ran
    to t=120 and was judged a line late, on a period past its bake."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 60}, {"weight": 100}])
    for offset in (0, 30, 0.5):
        ts = [60 * m + offset for m in range(1, 4)]
        code, lines, errors = replay(_steps(tmp_path, ts), spec=spec, stage=5)
        assert code == EXIT_OK, errors
        assert summary(lines)["decided_at_t"] == ts[0], (offset, lines)
        assert errors[0].endswith(f"its bake ends at t={ts[0]:g}"), errors
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 1200, "min_bake_seconds": 600}, {"weight": 100}])
    ts = [60 * m + 30 for m in range(1, 22)]
    code, lines, errors = replay(_steps(tmp_path, ts), spec=spec, stage=5)
    assert code == EXIT_OK and summary(lines)["decided_at_t"] == 630, lines


def test_bakes_of_days_in_a_refusal_are_said_in_full(tmp_path):
    """:g said a 12-day bake was "1.0368e+06 s"."""
    spec = _spec(tmp_path, [{"weight": 5, "bake_seconds": 12 * 86400, "min_bake_seconds": 1012345.5},
                            {"weight": 50, "bake_seconds": 1200}, {"weight": 100}])
    code, out, errors = replay(_file(tmp_path, {}), spec=spec)
    assert (code, out) == (EXIT_BAD_INPUT, [])
    assert errors == [f"error: {spec}'s stages below 100 % bake differently (5 %: min bake 1012345.5 s, bake "
                      "1036800 s; 50 %: min bake 1200 s, bake 1200 s): give --stage, the canary weight of the stage "
                      "the file records, to replay its bake"], errors


def test_the_slos_a_100_percent_stage_is_held_to_are_said_with_every_digit():
    """:g said an SLO of 0.0012345678 as 0.00123457."""
    code, _, errors = replay(FULL, stage=100, mode=None, slo_error_rate=0.0012345678, slo_slow_rate=0.25)
    assert code == EXIT_OK
    assert [line for line in errors if line.startswith("note: --stage 100: ")] == [
        "note: --stage 100: the stable version serves nothing to compare with, so the canary is held to the SLOs "
        "(one-sample: errors 0.0012345678, slow 0.25), as the flows judge that stage"], errors
