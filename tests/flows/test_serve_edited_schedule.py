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


def test_a_weekly_schedule_changed_in_the_ui_is_named_when_serve_registers_it_again(monkeypatch, capsys):
    served = registers_without_serving(monkeypatch)
    served()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("advance_phase/rollway")
        (schedule,) = deployment.schedules
        client.update_deployment_schedule(deployment.id, schedule.id,
                                          schedule=CronSchedule(cron="0 9 * * MON", timezone="Europe/Berlin"))
    capsys.readouterr()

    served()  # registers it again as built: Monday 09:00 UTC, as the other tests expect it

    with get_client(sync_client=True) as client:
        again = client.read_deployment_by_name("advance_phase/rollway")
        assert [(s.schedule.cron, s.schedule.timezone) for s in again.schedules] == [("0 9 * * MON", "UTC")]
    out = " ".join(capsys.readouterr().out.split())
    assert ("advance_phase/rollway: its weekly schedule was '0 9 * * MON' in Europe/Berlin on the Prefect API, and is "
            "registered again as '0 9 * * MON' in UTC") in out, out
    assert "--weekly-cron '0 9 * * MON' --weekly-timezone Europe/Berlin" in out, out
