"""How a promoted rollout's monitoring window that its run left open is said: by status's
monitoring row, the rollout report's outcome and finalize's refusal, in the same words.

Its own module so that finalize, which the reports import, says it too: finalize guessed "the
run watching it stopped, or too few of its checks counted requests" where the run had recorded
which (unverified, or kept for traffic put back on the old service by hand)."""

from __future__ import annotations

import re

from rollway.ledger import (KeptForTraffic, OpenWindowEnd, RolloutRecord, UnverifiedWindow, lease_held,
                            owed_kept, owed_unverified, utc, utc_read, wall_utc)
from rollway.spec import RolloutSpec

# How ends recorded before ``UnverifiedWindow.aged_out`` was kept named the minutes CloudWatch kept no
# more: in ``last_unread``, alone (its periods in ``unjudged_from``/``unjudged_to``), before the
# final look's failed read of the last period, or after its failed read of the other unjudged minutes.
_AGED_ALONE = "older than CloudWatch keeps "
_AGED_THEN_LAST = "; nor could it read the window's last period ("
_AGED_AFTER = re.compile(r"^(?P<why>.*); and from (?P<start>.+?) to (?P<end>.+?), older than CloudWatch keeps "
                         r"(?P<kept>.+)$", re.DOTALL)


def window_end(spec: RolloutSpec, record: RolloutRecord) -> float:
    """When a promoted rollout's monitoring window ends (rollout clock)."""
    return record.last_transition("promote").at + spec.monitor_seconds


def _newest_end(spec: RolloutSpec, record: RolloutRecord) -> UnverifiedWindow | KeptForTraffic | None:
    """The newest recorded end of a run that left the window the promotion owes open: kept for the
    traffic on the old service (``owed_kept``) or unverified (``owed_unverified``), or None."""
    seen, kept = owed_unverified(spec, record), owed_kept(spec, record)
    if kept is not None and (seen is None or kept.at >= seen.at):
        return kept
    return seen


def looks_said(spec: RolloutSpec, record: RolloutRecord) -> tuple[str, bool] | None:
    """What status's monitoring row and the report's outcome both say of how a run recorded ending
    the window a promotion still owes without closing it, and whether that run watched to the
    window's end; None when none is recorded (or none describes that window). A clean window kept
    for the traffic put back on the old service (``owed_kept``) says so: that run reached its end
    and decided, whatever its clock; else the looks of an unverified one (``owed_unverified``).

    One function, so that the two agree: the report said a run's counts as the window's end
    while status, before the window's end, said only "open until". Whether they are the window's
    is read from the record, not from the reader's clock: a run that watched to the window's end
    (the rollout's own, or a monitor run for what was left of it) found the window unverified,
    and its old service is kept; one that stopped before it (a monitor run given a shorter window)
    counted only part of it, and its counts are said as so far, never as the window's."""
    seen = _newest_end(spec, record)
    if isinstance(seen, KeptForTraffic):
        return kept_said(seen, record.service), True
    if seen is None:
        return None
    if seen.at >= window_end(spec, record):
        return unverified_said(seen), True
    failed = f"{seen.failed} could not read the metrics; " if seen.failed else ""
    return (f"so far: a run that stopped watching before the window's end counted requests to the new version in "
            f"{seen.counted} of its {seen.looks} looks ({failed}{seen.actor}'s run, ended {utc(seen.at)})"), False


def watching_run(spec: RolloutSpec, record: RolloutRecord, wall: float | None) -> tuple[str | None, str | None]:
    """The run watching the window the promotion owes now, other than the one whose end
    ``looks_said`` says ("run-8 (lease until ...)"), or None: no live lease at ``wall`` (the wall
    clock, as leases are stamped; None: not told), or the lease is the run's that recorded that end,
    or may be. A run writes its own end only when its window is over (one that dies must not lose
    the previous run's), so until then status said the previous run's end as if it were this one's,
    and that no run closed the window, or that the next run looks again, while one was looking.

    Second, what status says of a live lease beside an end recorded before ends named their run
    (``OpenWindowEnd.owner`` None), or None: its holder may be watching the window again, or be the
    run that recorded that end, its lease not yet given back (a release the ledger refused, a
    process killed). Status said "being watched again now by" that very run, whose end "replaces
    the previous run's", until its lease lapsed."""
    if not lease_held(record, wall):
        return None, None
    end, holder = _newest_end(spec, record), f"{record.owner} (lease until {wall_utc(record.lease_expires)})"
    if end is None:
        return holder, None
    if end.owner is None:
        return None, (f"{holder} holds the rollout's lease: it may be watching the window again, or be the run that "
                      "recorded this end, its lease not yet given back (an older rollway recorded the end without "
                      "naming its run)")
    return (None if record.owner == end.owner else holder), None


def nobody_watching(record: RolloutRecord, wall: float | None) -> str | None:
    """Why no run watches a window still running, when no run holds the rollout's lease at ``wall``
    (the wall clock; None: not told, and nothing is said), or None: one does. The watching run
    holds the lease from the promotion to the window's end and renews it at every look, so a lease
    lapsed (or given back) inside the window is a run that stopped or died, and nothing watches the
    release until another run does."""
    if wall is None or lease_held(record, wall):
        return None
    if record.owner:
        return f"{record.owner}'s lease lapsed at {wall_utc(record.lease_expires)}: its run stopped or died"
    return "no run holds the rollout's lease"


def not_closed(record: RolloutRecord, wall: float | None) -> str:
    """What the record holds of a window past its end that no run closed nor recorded watching to
    its end (``looks_said`` says one that did), for status's monitoring row and finalize's refusal:
    that much, and, told ``wall`` (the wall clock), why no run holds its lease (``nobody_watching``).

    Both guessed "the run watching it stopped, or too few of its looks counted requests to the new
    version or could read the metrics": a run that counts too few records an unverified end, said
    instead, so the second guess fitted only records from before runs did, or a write the ledger
    refused, and the record tells neither."""
    why = nobody_watching(record, wall)
    return "no run closed it, and none recorded watching it to its end" + ("" if why is None else f" ({why})")


def _old_service(end: OpenWindowEnd) -> str:
    """The old service a window kept, named when its run recorded which (records from before then do not)."""
    return f"the old service ({end.stable_service})" if end.stable_service else "the old service"


def unverified_said(seen: UnverifiedWindow) -> str:
    """How a monitoring window its run recorded unverified ended (``looks_said``): how many of its
    looks counted requests, of how many; first, which of its periods no look had judged were older
    than CloudWatch keeps (a window resumed that late), and when its final look could not read the
    window's last period, or its periods no look had judged, that (which, and why): the counts alone
    (10 of 11 looks) read as a window that had passed."""
    seen = _as_recorded_now(seen)
    failed = f"{seen.failed} could not read the metrics; " if seen.failed else ""
    # Not the final look's failed read, which it was said as: CloudWatch answered, with no data.
    aged = "" if seen.aged_out is None else (
        f"the window's periods from {utc(seen.aged_out_from)} to {utc(seen.aged_out_to)}, which no look had judged, "
        f"were older than CloudWatch keeps {seen.aged_out}, so they were not judged; ")
    unread = "" if seen.last_unread is None else (
        f"its final look could not read the metrics of the window's last period ({seen.last_unread}), so that "
        "period was not judged; ") if seen.unjudged_from is None else (
        # Its periods no look had judged (a resumed window's, a stretch of failed reads): the counts
        # alone read as a window that had passed, and nothing said which minutes nobody judged.
        f"its final look could not read the metrics of the window's periods from {utc(seen.unjudged_from)} to "
        f"{utc(seen.unjudged_to)}, which no look had judged ({seen.last_unread}), so they were not judged; ")
    return (f"unverified: {aged}{unread}{seen.counted} of {seen.looks} looks counted requests to the new version ({failed}"
            f"{seen.actor}'s run, window ended {utc(seen.at)}); {_old_service(seen)} is kept")


def _as_recorded_now(seen: UnverifiedWindow) -> UnverifiedWindow:
    """``seen`` with the minutes CloudWatch kept no more in ``aged_out``, as ends are recorded now.
    An older rollway put them in the final look's failed read (``last_unread``): said as such, status
    and the report told people the final look "could not read the metrics" of minutes CloudWatch had
    answered for, which sent them to mend a CloudWatch that worked. Any other end is returned as is."""
    why = seen.last_unread
    if seen.aged_out is not None or why is None:
        return seen
    if why.startswith(_AGED_ALONE):
        kept, _, last = why[len(_AGED_ALONE):].partition(_AGED_THEN_LAST)
        return seen.model_copy(update={
            "aged_out": kept, "aged_out_from": seen.unjudged_from, "aged_out_to": seen.unjudged_to,
            "unjudged_from": None, "unjudged_to": None, "last_unread": last.removesuffix(")") or None})
    after = _AGED_AFTER.match(why)
    if after is None:
        return seen
    try:
        start, end = utc_read(after["start"]), utc_read(after["end"])
    except ValueError:  # not the times utc() wrote: said as recorded
        return seen
    return seen.model_copy(update={"aged_out": after["kept"], "aged_out_from": start, "aged_out_to": end,
                                   "last_unread": after["why"]})


def kept_said(kept: KeptForTraffic, service: str) -> str:
    """How a monitoring window that passed cleanly but kept the old service for the traffic on it
    ended (``looks_said``), and what closes it. ``service``: the service the rollout is recorded
    under, its canary, which runs the new version."""
    return (f"passed cleanly, but {_old_service(kept)} still carried {kept.stable}% of traffic (put back on it by "
            f"hand) when {kept.actor}'s run ended the window at {utc(kept.at)}: not decommissioned, the old service "
            f"is kept; put all of it back on {service}")


def breach_said(record: RolloutRecord) -> str | None:
    """What status and the report say of a breach a monitoring window saw and could not roll back,
    because another run had closed the window meanwhile (``BREACH_KEPT``): the release that breached
    stays in production. None when no breach stands (``unhandled_breach``, finalize's own answer: a
    rollback took the release out, or a finalize began after it). Listed only as one more entry, it
    read as a window that closed cleanly. The facts alone (``entry_words``): the way out is said
    beside it, once, from the rollout as it stands (the finalize row, the report's outcome)."""
    from rollway.finalize import entry_words, unhandled_breach  # rollway.finalize imports this module

    kept = unhandled_breach(record)
    if kept is None:
        return None
    return f"{entry_words(kept)} ({kept.actor}'s run, {utc(kept.at)})"


def acceptance_said(record: RolloutRecord) -> str | None:
    """What status and the report say of a breach not rolled back that a person accepted, to
    finalize the release all the same (``accepted_breach``): who, when, which breach (by its time,
    with its words and run) and why; None when the newest breach is not accepted (or none is
    recorded, or the rollout is no longer promoted)."""
    from rollway.finalize import accepted_breach, entry_words  # rollway.finalize imports this module

    found = accepted_breach(record)
    if found is None:
        return None
    breach, accepted = found
    return (f"{accepted.actor} at {utc(accepted.at)} accepted the breach of {utc(breach.at)} ({entry_words(breach)}, "
            f"{breach.actor}'s run): {accepted.comment}")
