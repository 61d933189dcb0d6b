"""The page of a monitoring window's end that asks people to act ("Decommission skipped",
"Monitoring unverified", "Breach not rolled back"), when SNS refused it.

Refused, it does not fail the run (a rollout run's hooks would roll back a release no look found
failing), and nothing sends it again: said only in the run's log and result, the run ended
Completed and nobody learnt that the old service was kept or a breach left in production. So the
refusal is recorded on the rollout (``WINDOW_PAGE_REFUSED``, the page's subject and SNS's answer in
its comment), and `rollway status` and the report say it until a later end of the window (a clean
close, a decommission, a finalize) or a rollback makes it old news; the page of a breach not rolled
back, which no later end sends again, until a rollback or a later breach (``breach_page_refused``).
"""

from __future__ import annotations

from rollway.finalize import START as FINALIZE_START
from rollway.ledger import BREACH_KEPT, RolloutRecord, Transition, notice_time
from rollway.phases import RolloutPhase

WINDOW_PAGE_REFUSED = "window-page-refused"

BREACH_PAGE = "Breach not rolled back"
"""The subject of the monitoring window's page of a breach it could not roll back (flows.monitor),
before ": <canary service>": the breach's incident report names it as the page was sent."""

# Entries after which a refused page of the window's end no longer says where the rollout stands.
_LATER_ENDS = ("watched", "decommission", FINALIZE_START)


def refused_comment(subject: str, refused: str) -> str:
    """A ``window-page-refused`` entry's comment: which page, and what SNS answered."""
    return f"the \"{subject}\" page was not sent: {refused}"


def breach_page_refused(record: RolloutRecord, breach: Transition) -> Transition | None:
    """The refusal of ``breach``'s own page ("Breach not rolled back: <service>"), which the
    monitor's run sends right after recording the breach (``flows.monitor._breach_kept``): the first
    ``window-page-refused`` after it naming that page, or None (none recorded).

    Never old news while the breach is the rollout's newest: no later end of the window, nor a
    finalize, sends it again. The one rule for the incident report, `rollway status` and the rollout
    report: the newest refusal of any window page gave another page's as this one's, and a later
    end of the window made it old news, the incident report saying "Page not sent" where status
    said nothing."""
    after = record.history[record.history.index(breach) + 1:]
    return next((t for t in after if _of_breach_page(record, t)), None)


def _of_breach_page(record: RolloutRecord, entry: Transition) -> bool:
    """Whether ``entry`` records SNS refusing a "Breach not rolled back" page of ``record``."""
    opening = refused_comment(f"{BREACH_PAGE}: {record.service}", "")
    return entry.kind == WINDOW_PAGE_REFUSED and (entry.comment or "").startswith(opening)


def window_page_refused(record: RolloutRecord | None) -> str | None:
    """What `rollway status` and the report say of the newest refused page of a promoted
    rollout's window end, or None: none was refused, or a later end of the window (or a finalize)
    came after it; the page of the rollout's newest breach not rolled back stays said after those
    (``breach_page_refused``). Said of that run's page alone: a later run's page of the same window
    that went out is not recorded, and "nobody was paged" then claimed what was no longer known."""
    if record is None or record.phase is not RolloutPhase.PROMOTED:
        return None
    breach = record.last_transition(BREACH_KEPT)
    own = breach_page_refused(record, breach) if breach is not None else None
    ended = False
    for entry in reversed(record.history):
        if entry is own:
            # Its breach is paged once, by the run that recorded it: no later look pages it anew.
            return _refusal(entry, "")
        if entry.kind in _LATER_ENDS:
            ended = True
        # Not another breach page: one not ``own`` is an earlier breach's, and the newest breach's
        # page (sent or not) is the one the rollout stands on.
        elif entry.kind == WINDOW_PAGE_REFUSED and not ended and not _of_breach_page(record, entry):
            return _refusal(entry, " (a later look at the window pages anew: a page a later run sent is not recorded)")
    return None


_ANSWER_LOST = ", and its answer lost ("
"""How the words of a page sent whose answer never came read (``rollway.aws.errors.AnswerLost``:
"SNS Publish sent, and its answer lost (...)"): SNS may have taken it all the same."""


def page_unconfirmed(refused: str) -> bool:
    """Whether SNS's answer to a page ``refused`` quotes (a ``window-page-refused`` entry's comment,
    or what ``window_page_refused`` says of it) was lost: the page may have gone out. Not
    ``rollway.aws.errors.answer_lost``, which reads the error itself: only its words are recorded."""
    return _ANSWER_LOST in refused


def _refusal(entry: Transition, again: str) -> str:
    """A ``window-page-refused`` entry as people read it: which page, SNS's answer, whose run and
    when, and what came of the page (``again``: what a later look does). With SNS's answer lost,
    "reached nobody" claimed what nobody knows."""
    said = (f"{entry.comment or 'a page of the monitoring window was not sent'} ({entry.actor}'s run, at "
            f"{notice_time(entry)})")
    if page_unconfirmed(said):
        return f"{said}: that run's page may have reached people or not, and no run sends it again{again}"
    return (f"{said}: that run's page reached nobody, and no run sends it again{again}; mend what SNS refused (the "
            "topic, the role's sns:Publish, its key)")
