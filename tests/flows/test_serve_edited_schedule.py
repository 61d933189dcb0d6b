"""A weekly schedule a person changed in the Prefect UI, and serve.py restarted.

serve.py registers advance_phase's schedule as its --weekly-cron / --weekly-timezone say. A person
who drives the rollout from the UI and moved the schedule there (to Europe/Berlin, where the
rollout's weeks are counted) had it put back to Monday 09:00 UTC by the next restart (a reboot,
`rollway up` again) without a word: the Monday phases then started, and their approvals asked, at
another hour. serve.py says so as it starts, and how to keep the edited one.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.schedules import CronSchedule

from tests.flows.test_deployment_form_refusals import registers_without_serving


def _edited_in_the_ui(monkeypatch, *added: CronSchedule):
    """serve.py's registration, run once; its weekly schedule then moved to Europe/Berlin on the
    API, as a person does in the UI, and ``added`` schedules added beside it. Returns the
    registration, to run again."""
    from prefect.client.schemas.actions import DeploymentScheduleCreate

    served = registers_without_serving(monkeypatch)
    served()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("advance_phase/rollway")
        (schedule,) = deployment.schedules
        client.update_deployment_schedule(deployment.id, schedule.id,
                                          schedule=CronSchedule(cron="0 9 * * MON", timezone="Europe/Berlin"))
        if added:
            client.create_deployment_schedules(deployment.id, [DeploymentScheduleCreate(schedule=more, active=True)
                                                               for more in added])
    return served


def test_a_weekly_schedule_changed_in_the_ui_is_named_when_serve_registers_it_again(monkeypatch, capsys):
    served = _edited_in_the_ui(monkeypatch)
    capsys.readouterr()

    served()  # registers it again as built: Monday 09:00 UTC, as the other tests expect it

    with get_client(sync_client=True) as client:
        again = client.read_deployment_by_name("advance_phase/rollway")
        assert [(s.schedule.cron, s.schedule.timezone) for s in again.schedules] == [("0 9 * * MON", "UTC")]
    out = " ".join(capsys.readouterr().out.split())
    assert ("advance_phase/rollway: its weekly schedule was '0 9 * * MON' in Europe/Berlin on the Prefect API, and is "
            "registered again as '0 9 * * MON' in UTC") in out, out
    assert "--weekly-cron '0 9 * * MON' --weekly-timezone Europe/Berlin" in out, out


def test_several_weekly_schedules_added_in_the_ui_are_each_named_in_the_advice(monkeypatch, capsys):
    """The advice named the first of several schedules on the API alone ("start serve.py with
    --weekly-cron '0 9 * * MON' ..."), as if it were the only one the restart replaced."""
    served = _edited_in_the_ui(monkeypatch, CronSchedule(cron="0 14 * * THU", timezone="America/New_York"))
    capsys.readouterr()

    served()

    out = " ".join(capsys.readouterr().out.split())
    options = {"--weekly-cron '0 9 * * MON' --weekly-timezone Europe/Berlin",
               "--weekly-cron '0 14 * * THU' --weekly-timezone America/New_York"}
    assert any(", or ".join(pair) in out for pair in (sorted(options), sorted(options, reverse=True))), out
    assert "register one weekly schedule: to keep one of the 2 on the API" in out, out


def test_a_weekly_schedule_set_to_an_interval_in_the_ui_is_named_when_serve_registers_a_cron_again(monkeypatch,
                                                                                                    capsys):
    """The UI's schedule editor sets an interval too ("every 7 days" from a Monday 09:00 in
    Europe/Berlin). serve.py's restart replaced it with its cron without a word: only cron
    schedules were compared and named, and the Monday phases came back at 09:00 UTC."""
    import datetime as dt

    from prefect.client.schemas.schedules import IntervalSchedule

    served = registers_without_serving(monkeypatch)
    served()
    weekly = IntervalSchedule(interval=dt.timedelta(days=7), timezone="Europe/Berlin",
                              anchor_date=dt.datetime(2026, 1, 5, 8, tzinfo=dt.timezone.utc))
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("advance_phase/rollway")
        (schedule,) = deployment.schedules
        client.update_deployment_schedule(deployment.id, schedule.id, schedule=weekly)
    capsys.readouterr()

    served()

    out = " ".join(capsys.readouterr().out.split())
    assert ("advance_phase/rollway: its weekly schedule was every 7 days, 0:00:00 from 2026-01-05T08:00:00+00:00 "
            "(Europe/Berlin) on the Prefect API, and is registered again as '0 9 * * MON' in UTC") in out, out
    assert "`rollway up` register a cron schedule only: to keep the times of the one on the API" in out, out


def test_a_schedule_added_in_the_ui_to_a_deployment_serve_schedules_nothing_for_is_not_sent_to_weekly_cron(
        monkeypatch, capsys):
    """A daily report scheduled in the UI (rollout_report's deployment has no schedule of its own):
    the restart dropped it and said to keep it with --weekly-cron, which sets advance_phase's
    weekly schedule: followed, advance_phase ran daily and the report still not at all."""
    from prefect.client.schemas.actions import DeploymentScheduleCreate

    served = registers_without_serving(monkeypatch)
    served()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("rollout_report/rollway")
        client.create_deployment_schedules(deployment.id, [DeploymentScheduleCreate(
            schedule=CronSchedule(cron="0 8 * * *", timezone="Europe/Berlin"), active=True)])
    capsys.readouterr()

    served()

    out = " ".join(capsys.readouterr().out.split())
    assert "--weekly-cron '0 8 * * *'" not in out, out
    assert ("rollout_report/rollway: its schedule was '0 8 * * *' in Europe/Berlin on the Prefect API, and serve.py "
            "(or `rollway up`) registers it with none: add it again in the UI after it starts") in out, out
