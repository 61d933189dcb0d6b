"""advance_phase's weekly schedule as `rollway up` and ``deployments/serve.py`` take it from their
``--weekly-cron`` / ``--weekly-timezone``: the defaults, and the check both make before anything
starts or is registered (one check, so the two refuse the same options with the same words)."""

from __future__ import annotations

import datetime as dt
from typing import Any

WEEKLY_CRON = "0 9 * * MON"
"""advance_phase runs on Mondays at 09:00 (in ``WEEKLY_TIMEZONE``): one weekly phase a week."""

WEEKLY_TIMEZONE = "UTC"


def weekly_schedule(cron: str, timezone: str) -> tuple[str, str]:
    """The weekly cron and its zone as Prefect will take them, or a ValueError naming the option.

    Checked before anything is registered: Prefect's ``Cron`` takes an unknown zone without a
    word, and the deployment's registration then failed with a validation traceback. It takes a
    cron no date matches too (``0 9 30 2 *``, 30 February): advance_phase was then served on a
    schedule that never ran. And one of more than five fields, whose sixth Prefect reads as seconds.
    """
    from prefect._vendor.croniter import CroniterBadDateError

    from rollway.weekly import zone

    try:
        # The spec's check of its weekly_timezone first: Prefect's own words for a misspelt zone
        # ("Value error, Invalid timezone ... (specify in IANA tzdata format") came with the cron.
        zone(timezone)
    except ValueError as err:
        raise ValueError(f"--weekly-timezone {str(err).removeprefix('weekly_timezone ')}") from None
    fields = cron.split()
    if len(fields) > 5:
        # Prefect's croniter takes a sixth field as seconds (and a seventh as the year): a
        # `* ` typed after the weekday had advance_phase fire every second of Monday 09:00.
        raise ValueError(f"--weekly-cron {cron!r} has {len(fields)} fields, not 5: Prefect would read the sixth as "
                         "seconds (a '*' there fires advance_phase every second of that minute); give minute, "
                         f"hour, day of the month, month and day of the week, like {WEEKLY_CRON!r}")
    try:
        walls = cron_walls(cron, timezone, dt.datetime(2000, 1, 1))
    except ValueError as err:
        reasons = "; ".join(e["msg"] for e in getattr(err, "errors", lambda: [])()) or str(err)
        raise ValueError(f"--weekly-cron {cron!r} / --weekly-timezone {timezone!r}: {reasons}") from None
    try:
        walls.get_next(dt.datetime)
    except CroniterBadDateError:
        raise ValueError(f"--weekly-cron {cron!r} never fires (no date matches it, like 30 February): advance_phase "
                         "would never start a weekly phase; give a cron that fires once a week, like "
                         f"{WEEKLY_CRON!r}") from None
    return cron, timezone


def cron_walls(cron: str, timezone: str, start: dt.datetime) -> Any:
    """A croniter over the wall times (naive, on ``timezone``'s clock) at which ``cron`` fires after
    ``start``, matched as Prefect's validation and scheduler match it: its vendored croniter, with
    ``CronSchedule``'s day_or (whether a day of the month and one of the week are either or both).
    The one matcher for the option's check here and advance_phase's ``schedule_fires``.

    Raises:
        ValueError: Prefect's ``CronSchedule`` refuses ``cron`` or ``timezone`` (pydantic's errors).
    """
    from prefect._vendor.croniter import croniter
    from prefect.client.schemas.schedules import CronSchedule

    return croniter(cron, start, day_or=CronSchedule(cron=cron, timezone=timezone).day_or)
