"""`rollway up --weekly-cron / --weekly-timezone`: advance_phase's weekly schedule, as serve.py's
options of the same names set it.

serve.py's lines (a schedule changed in the UI and registered again, a rollout's weeks in another
zone than the schedule's) name those options, and `rollway up` had neither: its users could only
take the Monday 09:00 UTC it served. It passes them on to the serve.py it starts, and refuses one
serve.py would refuse before anything starts (the server's first start migrates its database).
"""

from __future__ import annotations

import pytest

from rollway.cli import app
from rollway.cli.processes import serve_process
from rollway.clock import ClockSettings
from tests.unit.test_up_processes import no_server  # noqa: F401 - the fixture: `up` stopped where the server would start


def test_up_passes_its_weekly_schedule_on_to_the_serve_py_it_starts(monkeypatch) -> None:
    import rollway.cli.up as up

    started: list[dict] = []
    monkeypatch.setattr(up, "run_up", lambda **options: started.append(options) or 0)
    command, bound, _ = app.parse_args(["up", "--weekly-cron", "30 10 * * TUE", "--weekly-timezone", "Europe/Berlin"])
    assert command(*bound.args, **bound.kwargs) == 0
    assert started and (started[0]["weekly_cron"], started[0]["weekly_timezone"]) == ("30 10 * * TUE", "Europe/Berlin")

    serve = serve_process("http://127.0.0.1:4200/api", targets_block=None, credentials_block=None,
                          clock=ClockSettings(), weekly_cron="30 10 * * TUE", weekly_timezone="Europe/Berlin")
    argv = serve.argv
    assert argv[argv.index("--weekly-cron") + 1] == "30 10 * * TUE", argv
    assert argv[argv.index("--weekly-timezone") + 1] == "Europe/Berlin", argv


@pytest.mark.parametrize(("args", "said"), [
    (["--weekly-timezone", "Europe/Berln"], "error: --weekly-timezone 'Europe/Berln' is not an IANA time zone"),
    (["--weekly-cron", "0 9 30 2 *"], "error: --weekly-cron '0 9 30 2 *' never fires"),
    # Prefect's croniter reads a sixth field as seconds: Monday 09:00:00 to 09:00:59, 60 phases.
    (["--weekly-cron", "0 9 * * MON *"], "error: --weekly-cron '0 9 * * MON *' has 6 fields, not 5"),
])
def test_up_refuses_a_weekly_schedule_serve_py_would_refuse_before_starting_anything(no_server, capsys, args,
                                                                                    said) -> None:
    command, bound, _ = app.parse_args(["up", *args])
    assert command(*bound.args, **bound.kwargs) == 2
    captured = capsys.readouterr()
    assert no_server == [], "a Prefect server was set up for a schedule serve.py refuses"
    assert captured.err.startswith(said) and captured.err.count("\n") == 1, captured.err


@pytest.mark.parametrize("cron", ["0 9 * * MON *", "0 9 * * MON 0", "0 9 * * MON * *"])
def test_a_weekly_cron_of_more_than_five_fields_is_refused_naming_what_prefect_would_read(cron) -> None:
    """`0 9 * * MON *` was taken: Prefect's croniter reads its sixth field as seconds, so advance_phase
    was served to fire every second of Monday 09:00, up to 60 runs a week racing for the rollout."""
    from rollway.cli.weekly_schedule import weekly_schedule

    with pytest.raises(ValueError) as refused:
        weekly_schedule(cron, "UTC")
    said = str(refused.value)
    assert said.startswith(f"--weekly-cron {cron!r} has {len(cron.split())} fields, not 5"), said
    assert "seconds" in said and "'0 9 * * MON'" in said and "\n" not in said, said


@pytest.mark.parametrize("cron", ["0 9 * * MON", " 30  10 * * TUE ", "@weekly"])
def test_a_five_field_weekly_cron_or_a_nickname_is_still_taken(cron) -> None:
    from rollway.cli.weekly_schedule import weekly_schedule

    assert weekly_schedule(cron, "UTC") == (cron, "UTC")
