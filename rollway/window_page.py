"""The page of a monitoring window's end that asks people to act ("Decommission skipped",
"Monitoring unverified", "Breach not rolled back"), when SNS refused it.

Refused, it does not fail the run (a rollout run's hooks would roll back a release no look found
failing), and nothing sends it again: said only in the run's log and result, the run ended
Completed and nobody learnt that the old service was kept or a breach left in production. So the
refusal is recorded on the rollout (``WINDOW_PAGE_REFUSED``, the page's subject and SNS's answer in
its comment), and `rollway status` and the report say it until a later end of the window (a clean
close, a decommission, a finalize) or a rollback makes it old news.
"""

from __future__ import annotations

from rollway.finalize import START as FINALIZE_START
from rollway.ledger import RolloutRecord, notice_time

WINDOW_PAGE_REFUSED = "window-page-refused"

# Entries after which a refused page of the window's end no longer says where the rollout stands.
_LATER_ENDS = ("watched", "decommission", FINALIZE_START)


def refused_comment(subject: str, refused: str) -> str:
    """A ``window-page-refused`` entry's comment: which page, and what SNS answered."""
    return f"the \"{subject}\" page was not sent: {refused}"


def window_page_refused(record: RolloutRecord | None) -> str | None:
    """What `rollway status` and the report say of the newest refused page of a promoted
    rollout's window end, or None: none was refused, or a later end of the window (or a finalize)
    came after it. Said of that run's page alone: a later run's page of the same window that went
    out is not recorded, and "nobody was paged" then claimed what was no longer known."""
    newest = None if record is None else record.newest_while_promoted(WINDOW_PAGE_REFUSED, *_LATER_ENDS)
    if newest is None or newest.kind != WINDOW_PAGE_REFUSED:
        return None
    when = notice_time(newest)
    return (f"{newest.comment or 'a page of the monitoring window was not sent'} ({newest.actor}'s run, at {when}): "
            "that run's page reached nobody, and no run sends it again (a later look at the window pages anew: "
            "a page a later run sent is not recorded); mend what SNS refused (the topic, the role's sns:Publish, "
            "its key)")
