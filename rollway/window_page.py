"""The page of a monitoring window's end that asks people to act ("Decommission skipped",
"Monitoring unverified", "Breach not rolled back"), when SNS refused it or its answer was lost.

Refused, it does not fail the run (a rollout run's hooks would roll back a release no look found
failing), and nothing sends it again: said only in the run's log and result, the run ended
Completed and nobody learnt that the old service was kept or a breach left in production. So the
refusal is recorded on the rollout (``WINDOW_PAGE_REFUSED``, the page's subject and SNS's answer in
its comment), and `rollway status` and the report say it until a later end of the window (a clean
close, a decommission, a finalize) or a rollback makes it old news; the page of a breach not rolled
back, which no later end sends again, until a rollback or a later breach (``breach_page_refused``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rollway.finalize import START as FINALIZE_START
from rollway.ledger import BREACH_KEPT, RolloutRecord, Transition, notice_time
from rollway.phases import RolloutPhase

WINDOW_PAGE_REFUSED = "window-page-refused"

BREACH_PAGE = "Breach not rolled back"
"""The subject of the monitoring window's page of a breach it could not roll back (flows.monitor),
before ": <canary service>": the breach's incident report names it as the page was sent."""

# Entries after which a refused page of the window's end no longer says where the rollout stands.
_LATER_ENDS = ("watched", "decommission", FINALIZE_START)


_LOST_WHY = "SNS's answer was lost: it may have taken it"


def unsent(page: str, *, lost: bool, why: str = _LOST_WHY) -> str:
    """What came of ``page`` (as said: 'the "<subject>" page', "the decommission's page") when its
    publish failed: not sent (SNS refused it), or not known (``lost``: SNS's answer never came, or
    none was recorded, and the page may have gone out; ``why``: why nobody knows, in the reader's
    own words, such as SNS's answer and whose run, or that the run recorded no page). The one
    wording of the ledger's entry (``page_comment``), of the monitor's log, result and failure, and
    of `rollway status` (``rollway.decommission_page.page_said``): "was not sent" said of a page
    SNS may have delivered had nobody look at the topic's delivery logs or tell its subscribers."""
    return f"whether {page} was sent is not known ({why})" if lost else f"{page} was not sent"


_NOT_SENT = "\" page was not sent: "
_NOT_KNOWN = f"\" page was sent is not known ({_LOST_WHY}): "
"""After the page's subject, how an entry whose page SNS refused (``_NOT_SENT``), or whose answer
was lost (``_NOT_KNOWN``), reads before SNS's answer (``unsent``'s words). Spelled out, not derived
from ``unsent``: entries already in the ledger keep these words whatever ``unsent`` says later."""


def page_comment(subject: str, answer: str, *, lost: bool) -> str:
    """A ``window-page-refused`` entry's comment: which page, whether it went out, and what SNS
    answered (``lost``: its answer never came, ``rollway.aws.errors.AnswerLost``). The one shape its
    writer (``flows.monitor``) and its readers (``page_outcome``) share."""
    page = f"the \"{subject}\" page"
    return f"{unsent(page, lost=lost)}: {answer}"


@dataclass(frozen=True)
class PageOutcome:
    """A page whose publish failed, as its run knows it or as its entry reads (``page_outcome``):
    the page's subject, SNS's answer, and whether that answer was lost (the page may have gone out)
    rather than a refusal (it did not)."""

    subject: str
    answer: str
    lost: bool

    def said(self) -> str:
        """The entry in today's words, whichever version wrote it."""
        return page_comment(self.subject, self.answer, lost=self.lost)


def page_outcome(comment: str | None) -> PageOutcome | None:
    """A ``window-page-refused`` entry's comment (``page_comment``) read, or None: not of that shape.

    Entries written before a lost answer had words of its own open as a refusal does ("was not
    sent"), SNS's error then saying its answer was lost (``_ANSWER_LOST``): read as lost."""
    text = comment or ""
    for opening, then, lost in (("whether the \"", _NOT_KNOWN, True), ("the \"", _NOT_SENT, False)):
        if text.startswith(opening) and then in text:
            subject, _, answer = text.removeprefix(opening).partition(then)
            return PageOutcome(subject, answer, lost) if lost else answer_outcome(subject, answer)
    return None


def answer_outcome(subject: str, answer: str) -> PageOutcome:
    """The page ``subject`` whose publish SNS answered with ``answer``, read from an entry in a
    refusal's shape, or of SNS's answer alone (an older decommission page's), which older rollways
    wrote of a lost answer too: lost when SNS's words say so (``_ANSWER_LOST``), else refused."""
    return PageOutcome(subject, answer, _ANSWER_LOST in answer)


CHECK_DELIVERY = "check the topic's delivery logs, or tell its subscribers yourself"
"""What to do of a page whose SNS answer was lost: SNS may have delivered it, or not."""

_ANSWER_LOST = ", and its answer lost ("
"""How the words of a page sent whose answer never came read (``rollway.aws.errors.AnswerLost``:
"SNS Publish sent, and its answer lost (...)"), in an entry of the old shape."""


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
    outcome = page_outcome(entry.comment) if entry.kind == WINDOW_PAGE_REFUSED else None
    return outcome is not None and outcome.subject == f"{BREACH_PAGE}: {record.service}"


def window_page_refused(record: RolloutRecord | None) -> tuple[str, bool] | None:
    """What `rollway status` and the report say of the newest refused page of a promoted
    rollout's window end, and whether SNS's answer to it was lost (the page may have gone out), or
    None: none was refused, or a later end of the window (or a finalize)
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


def _refusal(entry: Transition, again: str) -> tuple[str, bool]:
    """A ``window-page-refused`` entry as people read it: which page, SNS's answer, whose run and
    when, and what came of the page (``again``: what a later look does); and whether SNS's answer
    was lost. With it lost, "reached nobody" claimed what nobody knows."""
    outcome = page_outcome(entry.comment)
    page = outcome.said() if outcome is not None else entry.comment or "a page of the monitoring window was not sent"
    said = f"{page} ({entry.actor}'s run, at {notice_time(entry)})"
    if outcome is not None and outcome.lost:
        return (f"{said}: nobody knows whether that run's page reached people, and no run sends it again{again}; "
                f"{CHECK_DELIVERY}"), True
    return (f"{said}: that run's page reached nobody, and no run sends it again{again}; mend what SNS refused (the "
            "topic, the role's sns:Publish, its key)"), False
