"""How the replay reads its input: line ends, duplicate keys, negative latencies, and which
field an invalid count is in. Each case is what a user sees: the exit code and the error line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollway.judge.replay import EXIT_BAD_INPUT, EXIT_NOT_WRITTEN, EXIT_OK, replay_main
from tests.unit.replay_run import DEFAULTS, run

ROOT = Path(__file__).parents[2]
GOOD = '{"t": %d, "baseline": {"requests": 1140, "errors": 1}, "canary": {"requests": 60, "errors": 0}}'


def run_bytes(tmp_path: Path, content: bytes) -> tuple[int, list[str]]:
    path = tmp_path / "stage.jsonl"
    path.write_bytes(content)
    return run(path)


def run_stdin(monkeypatch, content: bytes, errors: str = "strict") -> tuple[int, list[str]]:
    """``rollway judge --replay -`` in process; ``errors`` is how the interpreter set up stdin
    (surrogateescape under the C and C.UTF-8 locales)."""
    binary = io.BytesIO(content)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(binary, encoding="utf-8", errors=errors))
    result = run("-")
    assert not binary.closed, "standard input stays open for whoever reads it next"
    return result


def bad_input(lines: list[str]) -> str:
    assert len(lines) == 1, lines
    return lines[0]


# Line ends: a JSON Lines record ends at "\n" only.

CR_INSIDE = b'{"t": 60,\r "baseline": {"requests": 1140, "errors": 1},\r "canary": {"requests": 60, "errors": 0}}\n'
CR_CR_LF = (b'{"t":60,"canary":{"requests":1}}\r\r\n{"t":120,"canary":{"requests":1}}\r\r\n'
            b'{"t":180,"canary":{"requests":-1}}\r\r\n')


def test_a_lone_carriage_return_inside_a_record_is_whitespace(tmp_path, monkeypatch):
    for code, lines in (run_bytes(tmp_path, CR_INSIDE), run_stdin(monkeypatch, CR_INSIDE)):
        assert code == EXIT_OK, lines
        assert json.loads(lines[-1])["decided_at_t"] == 60.0


def test_line_numbers_are_those_grep_and_editors_show(tmp_path, monkeypatch):
    """\\r\\r\\n endings are one line each, not two: the bad record is line 3 of 3."""
    assert CR_CR_LF.count(b"\n") == 3
    for code, lines in (run_bytes(tmp_path, CR_CR_LF), run_stdin(monkeypatch, CR_CR_LF)):
        assert code == EXIT_BAD_INPUT
        assert ": line 3: " in bad_input(lines)


def test_crlf_files_and_blank_crlf_lines_still_read(tmp_path):
    content = "\r\n".join([GOOD % 60, "", GOOD % 120, ""]).encode()
    code, lines = run_bytes(tmp_path, content)
    assert code == EXIT_OK and json.loads(lines[-1])["decided_at_t"] == 120.0


NOT_UTF8 = b'{"t": 60, "canary": {"requests": 60}}\n{"t": 120, "canary": {"requests": 60, "err\xffors": 1}}\n'


def test_standard_input_that_is_not_utf8_gets_the_files_error(tmp_path, monkeypatch):
    code, lines = run_bytes(tmp_path, NOT_UTF8)
    assert code == EXIT_BAD_INPUT and "stage.jsonl: line 2: not UTF-8 text (invalid start byte" in bad_input(lines)
    # Under the C and C.UTF-8 locales Python decodes stdin with surrogateescape, which turned
    # the byte into an unknown key '\udcff' rather than an encoding error.
    code, lines = run_stdin(monkeypatch, NOT_UTF8, errors="surrogateescape")
    assert code == EXIT_BAD_INPUT
    assert bad_input(lines).startswith("error: standard input: line 2: not UTF-8 text (invalid start byte")


def test_a_byte_that_is_not_utf8_is_reported_with_its_line(tmp_path, monkeypatch):
    """A Latin-1 "é" typed into line 203 of an export: the error says where, as every other error
    does, instead of "not UTF-8 text" somewhere in a file of thousands of lines."""
    good = "".join(GOOD % (60 * i) + "\n" for i in range(1, 203)).encode()
    content = good + b'{"t": 99999, "canary": {"requests": 60, "note\xe9": 1}}\n' + good
    for code, lines in (run_bytes(tmp_path, content), run_stdin(monkeypatch, content)):
        assert code == EXIT_BAD_INPUT
        assert ": line 203: not UTF-8 text (invalid continuation byte" in bad_input(lines)


def test_the_rollway_command_reads_standard_input_as_bytes():
    """End to end, under the C locale: line 3 for \\r\\r\\n endings, and "not UTF-8" for bad bytes."""
    rollway = Path(sys.executable).with_name("rollway")
    env = {**os.environ, "LC_ALL": "C"}
    for content, message in ((CR_CR_LF, "error: standard input: line 3: "),
                             (NOT_UTF8, "error: standard input: line 2: not UTF-8 text")):
        done = subprocess.run([str(rollway), "judge", "--replay", "-"], input=content, capture_output=True,
                              timeout=60, check=False, cwd=ROOT, env=env)
        assert done.returncode == EXIT_BAD_INPUT, done.stderr
        assert done.stdout == b""
        assert done.stderr.decode().startswith(message), done.stderr



@pytest.mark.parametrize("extra", [["0.05"], ["before.jsonl"], ["0.05", "0.002", "one-sample"]])
def test_the_judges_options_are_named_not_taken_by_position(extra):
    """`rollway judge m.jsonl 0.05` judged at alpha 0.05 without a word (every other command's
    options are named), and `rollway judge m.jsonl before.jsonl` said "Invalid value for ALPHA"."""
    from cyclopts import CycloptsError

    from rollway.cli import app

    with pytest.raises(CycloptsError, match="Unused Tokens"):
        app.parse_args(["judge", "m.jsonl", *extra], exit_on_error=False, print_error=False)
    _command, bound, _ = app.parse_args(["judge", "m.jsonl", "--alpha", "0.05", "--history", "before.jsonl"])
    assert bound.arguments == {"replay": "m.jsonl", "alpha": 0.05, "history": "before.jsonl"}


def test_closed_standard_input_is_an_error_not_a_traceback(monkeypatch):
    """``rollway judge --replay - <&-`` (or a service started without stdin): Python sets
    sys.stdin to None; the replay said TypeError: 'NoneType' object is not iterable."""
    monkeypatch.setattr(sys, "stdin", None)
    code, lines = run("-")
    assert code == EXIT_BAD_INPUT
    assert bad_input(lines) == "error: cannot read standard input: it is closed"

# Duplicate keys: json.loads would keep the last one silently.

@pytest.mark.parametrize("record,key", [
    ('{"t": 120, "baseline": {"requests": 1140, "errors": 1}, "canary": {"requests": 100, "errors": 50, "errors": 0}}',
     "errors"),
    ('{"t": 120, "canary": {"requests": 100}, "canary": {"requests": 100, "errors": 50}}', "canary"),
    ('{"t": 120, "t": 180, "canary": {"requests": 100}}', "t"),
    # Reported as written twice before being reported as unknown.
    ('{"t": 120, "canary": {"requests": 100, "eror": 1, "eror": 2}}', "eror"),
], ids=["count", "version", "t", "unknown key"])
def test_a_key_written_twice_names_the_line_and_the_key(tmp_path, record, key):
    code, lines = run_bytes(tmp_path, f"{GOOD % 60}\n{record}\n".encode())
    assert code == EXIT_BAD_INPUT
    assert bad_input(lines).endswith(f"stage.jsonl: line 2: key '{key}' appears twice in one object")


def test_the_same_key_in_two_objects_is_not_a_duplicate(tmp_path):
    code, lines = run_bytes(tmp_path, f"{GOOD % 60}\n".encode())
    assert code == EXIT_OK, lines


# Latencies are durations: at least 0.

@pytest.mark.parametrize("key", ["latency_avg_ms", "latency_p99_ms"])
@pytest.mark.parametrize("version", ["baseline", "canary"])
def test_a_negative_latency_names_the_line_and_the_field(tmp_path, key, version):
    content = (f'{{"t": 60, "{version}": {{"requests": 10, "{key}": 20000}}}}\n'
               f'{{"t": 120, "{version}": {{"requests": 10, "{key}": -20000}}}}\n')
    code, lines = run_bytes(tmp_path, content.encode())
    assert code == EXIT_BAD_INPUT
    assert bad_input(lines).endswith(f"line 2: '{version}.{key}' is -20000; a latency cannot be negative")


@pytest.mark.parametrize("key", ["latency_avg_ms", "latency_p99_ms"])
def test_a_latency_of_more_than_a_day_is_refused_not_alerted_as_inf(tmp_path, key):
    """A request lasting longer than a day is a broken export (no load balancer waits that long);
    read as written, 1e308 ms alerted "canary average response time inf s is over 10 s"."""
    content = (f'{{"t": 60, "canary": {{"requests": 10, "{key}": 86400000}}}}\n'
               f'{{"t": 120, "canary": {{"requests": 10, "{key}": 1e308}}}}\n')
    code, lines = run_bytes(tmp_path, content.encode())
    assert code == EXIT_BAD_INPUT
    assert bad_input(lines).endswith(f"line 2: 'canary.{key}' is 1e+308 ms, more than a day (86400000 ms)")


def test_a_zero_latency_is_accepted(tmp_path):
    content = '{"t": 60, "canary": {"requests": 10, "latency_avg_ms": 0, "latency_p99_ms": 0.0}}\n'
    code, lines = run_bytes(tmp_path, content.encode())
    assert code == EXIT_OK, lines


# Validation errors name the field.

@pytest.mark.parametrize("version,field", [("canary", "errors"), ("baseline", "slow"), ("canary", "requests")])
def test_a_negative_count_names_the_field(tmp_path, version, field):
    """In the spec's words for a number out of range (the field, its range, the value), not
    pydantic's "is invalid: Input should be greater than or equal to 0"."""
    sample = {"requests": 100, field: -1}
    content = f"{GOOD % 60}\n\n{json.dumps({'t': 120, version: sample})}\n"
    code, lines = run_bytes(tmp_path, content.encode())
    assert code == EXIT_BAD_INPUT
    assert bad_input(lines).endswith(
        f"stage.jsonl: line 3: '{version}.{field}' must be at least 0, not -1")


def test_every_invalid_field_is_named(tmp_path):
    code, lines = run_bytes(tmp_path, b'{"t": 60, "canary": {"requests": 100, "errors": -1, "slow": -2}}\n')
    assert code == EXIT_BAD_INPUT
    assert bad_input(lines).endswith("line 1: 'canary.errors' must be at least 0, not -1; "
                                     "'canary.slow' must be at least 0, not -2")


# 5xx with no request count: both are the load balancer's counts of one period, so they
# contradict each other (the flows never pass a stage on such a period); dropping the 5xx as
# "no data" let a canary that answered them promote.

def test_errors_without_a_request_count_are_refused_not_dropped(tmp_path):
    rows = [{"t": 60 * i, "baseline": {"requests": 6000, "errors": 6},
             "canary": {"requests": 600} if i % 3 else {"requests": None, "errors": 300}} for i in range(1, 31)]
    code, lines = run_bytes(tmp_path, "".join(json.dumps(row) + "\n" for row in rows).encode())
    assert code == EXIT_BAD_INPUT, lines  # was: exit 0, {"verdict": "promote", ...}
    assert "stage.jsonl: line 3: 'canary.errors' is 300 but 'canary.requests' is null" in bad_input(lines)
    # Slow requests without a request count stay no data, as in the flows (SlowRequestCount is
    # the application's own metric, published apart from the load balancer's).
    code, lines = run_bytes(tmp_path, b'{"t": 60, "canary": {"requests": null, "slow": 3, "errors": 0}}\n')
    assert code == EXIT_OK, lines


@pytest.mark.parametrize("version,field", [("canary", "errors"), ("baseline", "errors")])
def test_a_count_over_the_requests_names_the_field_and_both_figures(tmp_path, version, field):
    """'canary' is invalid: errors and slow requests cannot exceed requests" left the user to
    find which of the two counts, in which of the 5 fields, was wrong."""
    content = f"{GOOD % 60}\n{json.dumps({'t': 120, version: {'requests': 60, 'errors': 1, 'slow': 1, field: 61}})}\n"
    code, lines = run_bytes(tmp_path, content.encode())
    assert code == EXIT_BAD_INPUT
    assert bad_input(lines).endswith(f"stage.jsonl: line 2: '{version}.{field}' is 61, more than "
                                     f"'{version}.requests' (60)")


def test_more_slow_requests_than_requests_read_as_all_slow_with_a_warning(tmp_path):
    """The flows clamp the application's SlowRequestCount to the load balancer's RequestCount
    (two publishers, their own period edges); the replay refused such a line, so an export of a
    stage the flows had judged could not be replayed. It now reads it as they do, and says so."""
    slow = '{"t": %d, "baseline": {"requests": 1140, "errors": 1}, "canary": {"requests": 60, "errors": 0, "slow": %d}}'
    path = tmp_path / "stage.jsonl"
    path.write_text("\n".join([GOOD % 60, slow % (120, 61), slow % (180, 70), GOOD % 240]) + "\n")
    out, err = io.StringIO(), io.StringIO()
    assert replay_main(str(path), out=out, err=err, **DEFAULTS) == EXIT_OK
    assert err.getvalue().splitlines() == [
        f"warning: {path}: line 2: 'canary.slow' is 61, more than 'canary.requests' (60); read as 60 "
        "(and 1 more line(s) alike): at most every request was slow, as the flows read it"]
    # Read as 60 and 60 slow of 60: the canary is rolled back on what the figures say.
    summary = json.loads(out.getvalue().splitlines()[-1])
    assert summary["verdict"] == "rollback" and "slow requests 120/180" in summary["reason"]


# Encodings other than UTF-8, and byte order marks where a file's start is not.

TWO = "".join(GOOD % t + "\n" for t in (60, 120))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_utf16_file_is_named_so_with_how_to_resave_it(tmp_path, monkeypatch, encoding):
    """PowerShell 5's `>` writes UTF-16 (with a byte order mark): "not UTF-8 text (invalid start
    byte at byte 1)" said neither what the file is nor what to do."""
    content = TWO.replace("\n", "\r\n").encode(encoding)
    if encoding == "utf-16-be":
        content = "\ufeff".encode(encoding) + content
    for code, lines in (run_bytes(tmp_path, content), run_stdin(monkeypatch, content)):
        assert code == EXIT_BAD_INPUT
        line = bad_input(lines)
        assert ": line 1: the file is UTF-16" in line and "PowerShell" in line, line
        assert "re-save it as UTF-8" in line, line


def test_utf16_without_a_byte_order_mark_is_named_by_its_nul_bytes(tmp_path):
    """Without a BOM, UTF-16's ASCII is every other byte NUL, valid UTF-8: "Expecting property
    name enclosed in double quotes" blamed the JSON."""
    for encoding in ("utf-16-le", "utf-16-be"):
        code, lines = run_bytes(tmp_path, TWO.encode(encoding))
        assert code == EXIT_BAD_INPUT
        assert ": line 1: " in bad_input(lines) and "NUL bytes" in bad_input(lines), lines
        assert "UTF-16" in bad_input(lines) and "re-save it as UTF-8" in bad_input(lines), lines


def test_a_byte_order_mark_starting_a_later_line_names_the_line_and_the_join(tmp_path, monkeypatch):
    """Two exports joined with `cat`, the second saved with a BOM: Python's "Unexpected UTF-8 BOM
    (decode using utf-8-sig)" named a codec the user never chose, and nothing to do."""
    content = TWO.encode() + b"\xef\xbb\xbf" + (GOOD % 180 + "\n").encode()
    for code, lines in (run_bytes(tmp_path, content), run_stdin(monkeypatch, content)):
        assert code == EXIT_BAD_INPUT
        line = bad_input(lines)
        assert ": line 3: starts with a byte order mark (U+FEFF)" in line, line
        assert "utf-8-sig" not in line and "joined" in line and "Delete it from line 3" in line, line


def test_a_byte_order_mark_after_a_line_without_its_line_feed_is_named_too(tmp_path):
    """The first file ended without a line feed: the BOM comes after line 2's object, and
    "the line goes on after its object ends, at '\\ufeff'" left the reader to guess why."""
    content = TWO.rstrip("\n").encode() + b"\xef\xbb\xbf" + (GOOD % 180 + "\n").encode()
    code, lines = run_bytes(tmp_path, content)
    assert code == EXIT_BAD_INPUT
    column = len(GOOD % 120) + 1
    assert f": line 2: a byte order mark (U+FEFF) at column {column}" in bad_input(lines), lines
    assert "line feed" in bad_input(lines), lines



# The module's own entry (``python -m rollway.judge.replay``, as the module's docstring says to
# run it) writes to a pipe as the rollway command does.

def module(*args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rollway.judge.replay", *args], cwd=ROOT, timeout=60,
                          check=False, **options)


def test_the_module_under_an_ascii_output_encoding_still_ends_in_the_summary():
    """A rollback's reason holds "—": under PYTHONIOENCODING=ascii (or a Latin-1 locale) the module
    ended in a UnicodeEncodeError traceback, exit 1, with no JSON summary for the pipe reading it."""
    done = module(str(ROOT / "tests/unit/data/regression.jsonl"), env={**os.environ, "PYTHONIOENCODING": "ascii"},
                  capture_output=True)
    assert done.returncode == EXIT_OK, done.stderr.decode(errors="replace")
    summary = json.loads(done.stdout.decode("ascii").splitlines()[-1])  # \u2014 inside a JSON string
    assert summary["verdict"] == "rollback" and "\u2014" in summary["reason"]


def test_the_module_stops_quietly_when_its_reader_is_gone():
    """``python -m rollway.judge.replay f | head -1`` with the reader gone before the first line:
    a BrokenPipeError traceback, exit 1, read as a failed replay. It stops as the rollway command
    does, with 141 (what a command killed by SIGPIPE reports) and nothing on standard error."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = module(str(ROOT / "tests/unit/data/healthy.jsonl"), stdout=writer, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (141, "")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, a device every write to fails")
@pytest.mark.parametrize("command", [["rollway.cli", "judge"], ["rollway.judge.replay"]], ids=["rollway", "module"])
def test_output_that_cannot_be_written_is_an_error_of_its_own_not_a_traceback(command):
    """``rollway judge --replay f > summary.json`` on a full disk: a traceback, exit 1, as any
    crash. It says what failed, with an exit code neither a verdict (0) nor bad input (2) has."""
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", *command, str(ROOT / "tests/unit/data/healthy.jsonl")],
                              stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (
        EXIT_NOT_WRITTEN, "error: cannot write the replay's output: No space left on device\n")


def test_the_module_with_standard_output_closed_says_so():
    """``python -m rollway.judge.replay f >&-``: Python gives no standard output at all, and the
    replay's lines went nowhere before an AttributeError traceback, exit 1."""
    done = module(str(ROOT / "tests/unit/data/healthy.jsonl"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                  text=True, preexec_fn=lambda: os.close(1))
    assert (done.returncode, done.stderr) == (
        EXIT_NOT_WRITTEN, "error: cannot write the replay's output: standard output is closed\n")
