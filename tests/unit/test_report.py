"""The per-stage markdown table shown in artifacts and approval forms."""

from __future__ import annotations

from rollway.model import VersionSample, Verdict, Weights
from rollway.phases import Phase
from rollway.report import markdown_table, StageReport


def _report(decision: str, reason: str = "canary errors 0/600 vs baseline 1/11400") -> StageReport:
    return StageReport(
        stage_index=0, weights=Weights.canary_at(5), started_at=0.0, ended_at=600.0, ticks=10,
        baseline=VersionSample(requests=11400, errors=1), canary=VersionSample(requests=600),
        verdict=Verdict(phase=Phase.INCONCLUSIVE, reason=reason), decision=decision,
    )


def test_a_line_break_in_a_cell_does_not_break_the_table():
    """An approver's name typed in the Resume form's text area may end with Enter."""
    table = markdown_table([_report("accepted by alice\n")])
    lines = table.split("\n\n")[0].splitlines()  # the table, without the legend under it
    assert len(lines) == 3, table
    assert "| accepted by alice | canary errors 0/600 vs baseline 1/11400 |" in lines[2], table


def test_a_bar_in_a_cell_is_escaped_not_rewritten():
    row = markdown_table([_report("accepted by a|b", reason="p99 | latency")]).splitlines()[2]
    assert r"accepted by a\|b" in row and r"p99 \| latency" in row
    # Fourteen columns: escaped bars do not open cells.
    assert row.replace(r"\|", "").count("|") == 15


def cells_as_the_prefect_ui_splits(row: str) -> list[str]:
    """A row's cells as the Prefect UI's markdown renderer (marked's ``splitCells``) finds them:
    a ``|`` is a border unless an odd number of backslashes stands right before it."""
    borders = [i for i, c in enumerate(row) if c == "|" and (len(row[:i]) - len(row[:i].rstrip("\\"))) % 2 == 0]
    return [row[a + 1:b].strip() for a, b in zip(borders, borders[1:])]


def test_a_backslash_before_a_bar_does_not_open_a_cell_in_the_prefect_ui():
    """A person quoting grep's alternation (ERROR\\|FATAL) in a comment: the escaped bar, behind
    the comment's own backslash, opened a cell in the UI, and the row lost its last column."""
    said = r"grep 'ERROR\|FATAL' finds nothing"
    row = markdown_table([_report(f"accepted by alice: {said}", reason="p99 \\| latency")]).splitlines()[2]
    cells = cells_as_the_prefect_ui_splits(row)
    assert len(cells) == 14, cells
    # Shown as typed: marked unescapes the cell's bars, then the markdown escape of the backslash.
    shown = [cell.replace("\\|", "|").replace("\\\\", "\\") for cell in cells[-2:]]
    assert shown == [f"accepted by alice: {said}", "p99 \\| latency"]


def test_a_small_error_rate_never_reads_as_none():
    """A healthy baseline's 3 errors in 250,000 requests printed "0.00%" in the table beside its
    3 errors; the table and the verdict's sentence word a rate alike."""
    from rollway.judge.sequential import SequentialJudge
    from rollway.model import Interval
    from rollway.report import HEADERS, stage_rows
    from rollway.spec import Analysis

    report = StageReport(
        stage_index=0, weights=Weights.canary_at(5), started_at=0.0, ended_at=600.0, ticks=10,
        baseline=VersionSample(requests=250_000, errors=3), canary=VersionSample(requests=99_999, errors=99_998),
        verdict=Verdict(phase=Phase.RUNNING, reason="-"), decision="hold",
    )
    row = dict(zip(HEADERS, stage_rows([report])[0]))
    assert {k: row[k] for k in ("base rate", "canary rate")} == {"base rate": "0.001%", "canary rate": ">99.99%"}

    verdict = SequentialJudge(Analysis()).evaluate(
        [Interval(t=60, baseline=VersionSample(requests=3_600_000, errors=1), canary=VersionSample(requests=60))],
        stage_over=False)
    assert "vs baseline 1/3,600,000 (<0.001%)" in verdict.reason, verdict.reason


def test_the_stage_tables_counts_read_as_the_reason_beside_them_writes_them():
    """"base req 285000" beside a reason reading "baseline 285/285,000"."""
    from rollway.report import HEADERS, stage_rows

    report = StageReport(
        stage_index=0, weights=Weights.canary_at(5), started_at=0.0, ended_at=600.0, ticks=10,
        baseline=VersionSample(requests=285_000, errors=1_285, latency_p99_ms=1_480.4),
        canary=VersionSample(requests=15_000, errors=0), verdict=Verdict(phase=Phase.RUNNING, reason="-"),
        decision="hold",
    )
    row = dict(zip(HEADERS, stage_rows([report])[0]))
    assert {k: row[k] for k in ("base req", "base err", "base p99 ms", "canary req", "canary err")} == {
        "base req": "285,000", "base err": "1,285", "base p99 ms": "1,480", "canary req": "15,000", "canary err": "0"}


def test_a_p99_under_a_millisecond_does_not_read_as_zero():
    """A service answering from memory publishes a p99 of 0.3 ms: rounded to whole milliseconds, the
    table printed "0", as a p99 of no time at all (which a p99 of 0 still reads as)."""
    from rollway.report import HEADERS, stage_rows

    report = StageReport(
        stage_index=0, weights=Weights.canary_at(5), started_at=0.0, ended_at=600.0, ticks=10,
        baseline=VersionSample(requests=1_000, latency_p99_ms=0.3), canary=VersionSample(requests=50, latency_p99_ms=0.0),
        verdict=Verdict(phase=Phase.RUNNING, reason="-"), decision="hold",
    )
    row = dict(zip(HEADERS, stage_rows([report])[0]))
    assert (row["base p99 ms"], row["canary p99 ms"]) == ("<1", "0")


def test_an_alert_in_a_stage_row_says_its_figure_is_from_when_it_was_raised():
    """A stage row's reason is the stage's last verdict; an alert beside it is its kind's first
    message, raised once: "canary average response time 15.0 s is over 10 s" read as the canary's
    average now, at the end of a stage it had long recovered in."""
    from rollway.report import HEADERS, stage_rows

    report = _report("hold").model_copy(update={"alerts": ("canary average response time 15.0 s is over 10 s",)})
    reason = dict(zip(HEADERS, stage_rows([report])[0]))["reason"]
    assert reason == ("canary errors 0/600 vs baseline 1/11400; alert: canary average response time 15.0 s is over "
                      "10 s (when first raised)")


def test_a_stage_with_no_settled_period_reads_apart_from_one_never_read_and_one_measured_at_zero():
    def stage(sample: VersionSample | None, none_settled: bool = False) -> list[str]:
        report = _report("accepted by alice").model_copy(
            update={"baseline": sample, "canary": sample, "none_settled": none_settled})
        return cells_as_the_prefect_ui_splits(markdown_table([report]).splitlines()[2])[3:11]

    assert stage(None, none_settled=True) == ["none settled", "-", "-", "-"] * 2
    assert stage(None) == ["not measured", "-", "-", "-"] * 2
    assert stage(VersionSample(requests=0))[0::4] == ["0", "0"]


def test_a_version_no_counted_period_had_a_request_count_for_reads_no_data():
    """CloudWatch has no RequestCount for a minute without requests to a target group: a version
    with none in any period counted has no data, which its row says apart from a counted 0."""
    from rollway.model import Interval, Observation

    def row(observation: Observation | None) -> list[str]:
        report = StageReport.counting(
            observation, stage_index=0, weights=Weights.canary_at(5), started_at=0.0, ended_at=600.0, ticks=10,
            verdict=Verdict(phase=Phase.INCONCLUSIVE, reason="no period had a canary request count"), decision="hold")
        return cells_as_the_prefect_ui_splits(markdown_table([report]).splitlines()[2])[3:11]

    served = VersionSample(requests=1140, errors=2, latency_p99_ms=480)
    quiet = Observation(start=0, end=180, intervals=tuple(Interval(t=t, baseline=served) for t in (60, 120, 180)))
    assert row(quiet) == ["3,420", "6", "0.18%", "480", "no data", "-", "-", "-"]
    # One period with a count is a count: the others add nothing to it.
    counted_once = quiet.model_copy(update={"intervals": (*quiet.intervals[:2], Interval(
        t=180, baseline=served, canary=VersionSample(requests=60)))})
    assert row(counted_once)[4:6] == ["60", "0"]
    counted_zero = quiet.model_copy(update={"intervals": (Interval(
        t=60, baseline=served, canary=VersionSample(requests=0)),)})
    assert row(counted_zero)[4:6] == ["0", "0"]
    assert row(Observation(start=0, end=180)) == ["none settled", "-", "-", "-"] * 2
    assert row(None) == ["not measured", "-", "-", "-"] * 2


def test_a_version_said_to_have_no_data_cannot_carry_a_sample():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="canary is said to have no data"):
        StageReport.model_validate({**_report("hold").model_dump(), "no_data": ("canary",)})


def test_the_p99_columns_say_they_are_the_worst_periods_p99_not_the_stages():
    """A stage's p99 cell is the highest of its periods' p99s (a p99 over the whole stage cannot
    be had from CloudWatch's per-period figures), and the table said only "p99 ms": a p99 of
    1,480 ms in one slow minute read as the stage's p99. The artifact's column keys stay."""
    from rollway.report import HEADERS

    table = markdown_table([_report("accepted by alice")])
    legend = table.split("\n\n")[-1]
    assert not legend.startswith("|") and "worst" in legend and "not a p99 over" in legend, table
    assert ("base p99 ms", "canary p99 ms") == (HEADERS[6], HEADERS[10])


def test_a_stage_said_to_have_no_settled_period_cannot_carry_a_sample():
    """``none_settled`` says the stage's metrics were read and none of their periods had settled:
    a report saying so beside a sample read as both "none settled" and a measured count."""
    import pytest
    from pydantic import ValidationError

    for version in ("baseline", "canary"):
        fields = {**_report("hold").model_dump(), "none_settled": True}
        fields["canary" if version == "baseline" else "baseline"] = None
        with pytest.raises(ValidationError, match=f"no period settled, yet the {version} has a sample"):
            StageReport.model_validate(fields)
    settled_none = StageReport.model_validate({**_report("hold").model_dump(), "none_settled": True,
                                               "baseline": None, "canary": None})
    assert settled_none.none_settled


def test_the_demos_stage_table_says_what_its_p99_columns_hold_as_the_flows_table_does():
    """`rollway demo` printed its own table of the same rows without the legend under the flows'
    one: its p99 columns read as each stage's p99 over all its requests."""
    from rich.console import Console

    from rollway.cli.demo import result_table
    from rollway.report import P99_SAID, RolloutResult

    result = RolloutResult(outcome="promoted", reason="passed", image="repo/edit-container:2.0.0",
                           final_weights=Weights(stable=0, canary=100), stages=(_report("accepted by alice"),))
    console = Console(width=400, record=True)
    console.print(result_table(result))
    shown = " ".join(console.export_text().split())
    assert P99_SAID in shown and "repo/edit-container:2.0.0: promoted" in shown, shown
    assert "accepted by alice" in shown and "11,400" in shown, shown


def test_each_stage_row_says_the_utc_window_its_counts_cover():
    """Held beside a CloudWatch dashboard, a row's counts could not be lined up with its graphs:
    nothing said which periods they were. The window is the counted periods', in UTC, in the
    markdown (artifact, approval form) and the demo's console table alike."""
    from rich.console import Console

    from rollway.model import Interval, Observation
    from rollway.report import HEADERS, console_table, stage_rows

    served = VersionSample(requests=1140, errors=2)
    start = 1_800_000_000  # 2027-01-15 08:00:00 UTC
    counted = Observation(start=start, end=start + 200, intervals=tuple(
        Interval(t=start + t, baseline=served, canary=VersionSample(requests=60)) for t in (60, 120, 180)))

    def report(observation: Observation | None) -> StageReport:
        return StageReport.counting(observation, stage_index=0, weights=Weights.canary_at(5), started_at=start - 30,
                                    ended_at=start + 200, ticks=3, verdict=Verdict(phase=Phase.RUNNING, reason="-"),
                                    decision="hold")

    [row] = stage_rows([report(counted)])
    assert dict(zip(HEADERS, row))["metrics window"] == "2027-01-15 08:00:00 to 08:03:00 UTC", row
    assert "| 2027-01-15 08:00:00 to 08:03:00 UTC |" in markdown_table([report(counted)])
    # No count, no window: a stage never read, or read before any period settled.
    for nothing in (None, Observation(start=start, end=start + 50)):
        assert dict(zip(HEADERS, stage_rows([report(nothing)])[0]))["metrics window"] == "-"
    console = Console(width=400, record=True)
    console.print(console_table([report(counted)], "stages"))
    assert "2027-01-15 08:00:00 to 08:03:00 UTC" in console.export_text()


def test_the_baseline_of_a_stage_with_all_its_traffic_on_the_canary_says_why_it_has_no_data():
    """At 100 % the stable version gets no request, so CloudWatch has no RequestCount for it: its
    cells read "no data" as a version whose metrics are missing would, in the row where it was
    expected."""
    from rollway.model import Interval, Observation

    served = VersionSample(requests=60000, errors=46, latency_p99_ms=387)
    all_on_canary = Observation(start=0, end=120, intervals=tuple(Interval(t=t, canary=served) for t in (60, 120)))
    report = StageReport.counting(
        all_on_canary, stage_index=3, weights=Weights.canary_at(100), started_at=0.0, ended_at=120.0, ticks=2,
        verdict=Verdict(phase=Phase.SUCCESSFUL, reason="passed"), decision="passed")
    cells = cells_as_the_prefect_ui_splits(markdown_table([report]).splitlines()[2])[3:11]
    assert cells == ["no baseline traffic at 100%", "-", "-", "-", "120,000", "92", "0.077%", "387"], cells
