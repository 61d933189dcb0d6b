"""The "Old version decommissioned" page, sent at least once.

A decommission is two writes a run can die between: the ``decommission`` entry in the ledger,
then the SNS page. A run that died after the first left the rollout closed with nobody told, and
every later run saw the decommission recorded and did nothing. So the page is followed by a
``decommission-paged`` entry, and whatever looks at the rollout again (the ``monitor`` flow, a
resumed rollout run, advance_phase) sends a page still owed, saying it is late and why.

At least once, not exactly once: a run that dies after the publish and before its
``decommission-paged`` write (or whose write the ledger refuses) leaves the page owed, and it is
sent a second time.
"""

from __future__ import annotations

from rollway.finalize import START as FINALIZE_START
from rollway.ledger import RolloutRecord, Transition, notice_time, utc
from rollway.window_page import CHECK_DELIVERY, PageOutcome, answer_outcome, page_outcome, unsent

DECOMMISSION = "decommission"
PAGED = "decommission-paged"
"""The history entry recorded after the decommission's page was published (its SNS message id)."""

PAGE_REFUSED = "decommission-page-refused"
"""The history entry recorded when SNS refused the decommission's page, or its answer was lost
(the window page's shape, written by ``rollway.window_page.page_comment``): the page stays
owed, and the late one says why."""

SUBJECT = "Old version decommissioned"

LATE_WHY = ("the run that decommissioned recorded no page sent: it died before paging or before recording its page, "
            "or the ledger refused that record")
"""Why a page is owed with no answer of SNS's recorded. The ledger cannot tell these apart, and in
the last two the page went out: "died before paging" was said of a run that paged and then had its
``decommission-paged`` write refused, the late page a second one."""


def page_owed(record: RolloutRecord | None) -> Transition | None:
    """The decommission whose page is still owed, or None.

    Owed while the rollout is promoted and not being finalized (a finalize moves the promoted
    version onto the decommissioned service: "decommissioned" would be stale news), and its newest
    ``decommission`` has no ``decommission-paged`` after it. A decommission recorded before pages
    were tracked carries no wall time: its run paged, or nobody knows, and paging every such
    rollout late would tell people of decommissions long past.
    """
    newest = _newest_of_the_page(record)
    return newest if newest is not None and newest.kind == DECOMMISSION and newest.wall is not None else None


def _newest_of_the_page(record: RolloutRecord | None) -> Transition | None:
    """A promoted rollout's newest ``decommission``, ``decommission-paged`` or finalize start: which
    of them came last says whether the page is owed, sent, or stale news. None for any other."""
    return None if record is None else record.newest_while_promoted(DECOMMISSION, PAGED, FINALIZE_START)


def refusal_read(entry: Transition) -> PageOutcome:
    """A ``decommission-page-refused`` entry read. One written before it had the window page's shape
    holds SNS's answer alone: read as that shape's older entries are, lost when SNS's words say its
    answer was (``answer_outcome``), else refused."""
    return page_outcome(entry.comment) or answer_outcome(SUBJECT, entry.comment or "no answer recorded")


Refusal = tuple[Transition, PageOutcome]
"""A ``decommission-page-refused`` entry, and what it reads (``refusal_read``)."""


def _refused(record: RolloutRecord, owed: Transition) -> list[Refusal]:
    """The ``decommission-page-refused`` entries after ``owed``, read, newest first (none: []):
    looked up once by each reader, which says both why the page is owed and whether it may have
    gone out. Every one, not the newest alone: an earlier try whose answer was lost may have paged
    people, whatever a later try got."""
    after = record.history[record.history.index(owed) + 1:]
    return [(t, refusal_read(t)) for t in reversed(after) if t.kind == PAGE_REFUSED]


def why_owed(record: RolloutRecord, owed: Transition) -> str:
    """Why the page of the decommission ``owed`` is still owed (``_why``)."""
    return _why(_refused(record, owed))


def _why(refused: list[Refusal]) -> str:
    """Why a decommission's page is still owed: SNS's answer when it refused it, or when that answer
    was lost (the newest ``decommission-page-refused`` entry after it), else that its run recorded
    no page (``LATE_WHY``); a refusal after an earlier try lost its answer names that try too. A
    page SNS refused was said to be owed because its run died, and nobody looked at the topic or
    the role; one whose answer was lost said "SNS refused it" of a page SNS may have delivered."""
    if not refused:
        return LATE_WHY
    (entry, outcome), earlier = refused[0], refused[1:]
    if outcome.lost:
        return f"SNS's answer to it was lost, and it may have gone out: {outcome.answer} {_run(entry)}"
    lost = next(((t, o) for t, o in earlier if o.lost), None)
    also = ("" if lost is None else
            f"; an earlier try's answer was lost, and that page may have gone out: {lost[1].answer} {_run(lost[0])}")
    return f"SNS refused it: {outcome.answer} {_run(entry)}{also}"


def _run(entry: Transition) -> str:
    return f"({entry.actor}'s run, at {notice_time(entry)})"


def _may_have_gone_out(refused: list[Refusal]) -> bool:
    """Whether a page still owed may have gone out all the same: no answer of SNS's recorded
    (``LATE_WHY``: its run may have paged, and not recorded it), or any one lost (``refused``): a
    later try refused does not unsend an earlier one."""
    return not refused or any(outcome.lost for _, outcome in refused)


def subject(stable_service: str, *, late: bool = False) -> str:
    return f"{SUBJECT}{' (late)' if late else ''}: {stable_service}"


def late_message(record: RolloutRecord, decommission: Transition, stable_service: str) -> str:
    """The late page: what was decommissioned, when, by which run, and why it comes now."""
    run = f", run {decommission.run}" if decommission.run else ""
    when = notice_time(decommission)
    refused = _refused(record, decommission)
    late = "late, or a second one" if _may_have_gone_out(refused) else "late"
    return (f"This page is {late}: {_why(refused)}. Rollout {record.rollout_id} of {record.image}: "
            f"{stable_service} was scaled to 0 at {when} (by {decommission.actor}{run}): "
            f"{decommission.comment or 'decommissioned'}.")


def page_said(record: RolloutRecord | None, stable_service: str) -> tuple[str, bool] | None:
    """What `rollway status` says of the newest decommission's page, and whether it is a warning:
    still owed (not recorded as sent: nobody may have been told the old version went), or when,
    by whom and as which SNS message it went out. None when no decommission of a promoted rollout
    is in question. The history listed ``decommission-paged`` as any other entry, and nothing said
    a page was owed."""
    owed = page_owed(record)
    if owed is not None:
        then = ("the next run that looks at the rollout sends it late (the `monitor` flow, a re-run of the rollout, "
                "or the weekly `advance_phase` tick)")
        refused = _refused(record, owed)
        page = f"the \"{SUBJECT}\" page of {stable_service}"
        if _may_have_gone_out(refused):
            return f"{unsent(page, lost=True, why=_why(refused))}: {then}, again if it went out; {CHECK_DELIVERY}", True
        # Not "never sent": every answer recorded is a refusal, and a later run that sent the
        # page and had its ``decommission-paged`` write refused (or died before it) left no trace.
        return f"{page} is not recorded as sent ({_why(refused)}): {then}", True
    sent = _newest_of_the_page(record)
    if sent is None or sent.kind != PAGED:
        return None
    return (f"the decommission's page went out at {utc(sent.at)} (SNS message {sent.message_id or '-'}, sent by "
            f"{sent.actor})", False)
