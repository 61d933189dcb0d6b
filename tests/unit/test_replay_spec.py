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


def test_the_spec_analysis_and_guardrails_are_what_the_replay_judges_by():
    """alpha 1e-6 over errors alone, a 1.5x margin ratio and 100 requests, and a 20 % guardrail:
    the replay decides as those options given one by one would, not as the defaults."""
    code, lines, errors = replay(DATA / "regression.jsonl", spec=str(SPEC))
    assert (code, errors) == (EXIT_OK, [])
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
    assert errors == [f"note: --alpha 0.01 overrides {SPEC}'s analysis.alpha (1e-06)",
                      f"note: --min-requests 50 overrides {SPEC}'s analysis.min_requests (100)"]
    assert "1/alpha = 100 " in summary(lines)["reason"]  # the spec's errors-only metrics still hold


@pytest.mark.parametrize("text,said", [
    ('{"image": "repo:1.4.0", "analysis": {"alpha": 0.7}}', "analysis.alpha: Input should be less than 0.5"),
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
        assert (done.returncode, done.stderr) == (EXIT_OK, ""), done.stderr
        assert "1/alpha = 1,000,000" in json.loads(done.stdout.splitlines()[-1])["reason"]
        shown = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60, check=False)
        assert "metrics_delay_seconds" in " ".join(shown.stdout.split()), shown.stdout
