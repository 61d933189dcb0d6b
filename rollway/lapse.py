"""When the weekly tick, or a run started by hand, waits for the lease of a run that has ended, and
for how long. Pure: no clock, no I/O.

The run that drives a rollout holds its lease (``owner`` and ``lease_expires`` on the ledger
record) and renews it as it works; another run may take the rollout over once the lease has run
out and the owner's flow run has ended. A run killed less than a lease before the Monday cron
left a lease still running when the tick came: the tick refused (its ``acquire`` raised LockHeld,
or it found the phase "not passed" and raised PhaseRefused) and the rollout lost a week.

The tick now waits such a lease out, bounded, when it has something to do with it. It waits
rather than taking the rollout at once: Prefect's final state says the run has ended, but a
run it marked crashed (its infrastructure was lost) may still be writing, and the lease is the
one guard every writer honours. A lease renewed meanwhile shows its holder alive; the tick then
stops waiting and leaves the rollout to it.

A ``progressive_rollout`` run started by hand to resume such a rollout met the same lease and
failed at once with LockHeld, though Prefect said its holder had ended: the person had to work
out when the lease ran out and start the run again. It now waits the same way
(``run_needs_the_lease`` says when it has to).
"""

from __future__ import annotations

from rollway import weekly
from rollway.ledger import RolloutRecord, monitoring_owed, rejection_owed
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec

PAST_EXPIRY_SECONDS = 1.0
"""How long after ``lease_expires`` the wait ends (wall seconds, as leases are): a lease is taken once it has
expired (``lease_expires < now``), not at the instant it does."""


def tick_needs_the_lease(spec: RolloutSpec, record: RolloutRecord, now: float) -> bool:
    """Whether the weekly tick at ``now`` would take ``record``'s rollout over, so that a lease
    left running by a run that has ended holds it back.

    The same cases ``flows.progressive.advance`` acts on: a monitoring window left unfinished, a
    phase (or an unphased run, or a first run) left unfinished, and the next phase, once due.
    A held phase whose next one is not due yet gains nothing from the lease.
    """
    if monitoring_owed(spec, record):
        return True
    if record.phase.terminal or record.phase is RolloutPhase.ROLLING_BACK:
        return False
    if (not record.weekly_phase_passed or not record.phased) \
            and record.phase in (RolloutPhase.PROGRESSING, RolloutPhase.PENDING):
        return True
    return (record.phased and record.weekly_phase_index + 1 < len(spec.phases)
            and weekly.phase_wait(record.weekly_phase_started_at, now, **spec.phase_calendar(record)) is None)


def run_needs_the_lease(image: str, spec: RolloutSpec, record: RolloutRecord, now: float, *,
                        phased: bool = False) -> bool:
    """Whether a ``progressive_rollout`` run of ``image`` would take ``record``'s rollout over
    (``flows.progressive.run_progressive``), so that a lease left running by a run that has ended
    holds it back.

    It would to resume the rollout of the same image, or to finish its monitoring window. A
    rollout of another image is refused whatever its lease (RolloutInProgress), one finished is
    history (a new rollout starts beside it), and a rollback, or a rejection whose rollback is
    owed, is carried out under the rollback's own claim, not the owner's lease.

    Args:
        image: the image the run was asked to roll out.
        spec: the spec recorded with ``record`` (read leniently: only its monitoring plan counts).
        record: the service's newest rollout.
        now: the rollout clock's time (unused: the tick's question takes it; same signature).
        phased: the run stops at the end of a weekly phase: at one already complete it has
            nothing to do (it says so), so it has no lease to wait for.
    """
    del now
    if record.image != image:
        return False
    if phased and record.phase is RolloutPhase.PAUSED and record.weekly_phase_passed:
        return False
    if monitoring_owed(spec, record):
        return True
    return not record.phase.terminal and record.phase is not RolloutPhase.ROLLING_BACK and not rejection_owed(record)


def lapse_wait(lease_expires: float, now: float, *, max_wait: float) -> float | None:
    """How long to wait at ``now`` for a lease expiring at ``lease_expires`` to have run out.

    Args:
        lease_expires: when the lease runs out (wall clock, as leases are stamped).
        now: the wall clock's time.
        max_wait: the longest the caller waits: its own lease length plus a margin, since the
            run that ended took a lease of the same deployment's length, renewed it at most
            that long ago.

    Returns:
        Seconds to wait (0: it has run out already), or None when it runs out further off than
        ``max_wait`` (a lease longer than the caller's: the caller says when, and does not wait).
    """
    if max_wait < 0:
        raise ValueError(f"max_wait must be 0 or more, not {max_wait}")
    if lease_expires < now:
        return 0.0
    wait = lease_expires - now + PAST_EXPIRY_SECONDS
    return wait if wait <= max_wait + PAST_EXPIRY_SECONDS else None


def looks_hung(lease_expires: float, now: float, *, grace: float) -> bool:
    """Whether a lease that lapsed at ``lease_expires`` says, at ``now`` (wall clock), that its
    holder (a run Prefect shows as not ended, asking nothing) is hung rather than slow.

    A live run renews at every look, but a look that runs long (a slow read, a shift waiting for
    ECS) renews late, and two hosts' clocks disagree a little: the tick that came minutes after
    such a lapse called a working run hung. ``grace``: the holder's lease length, as the ledger
    recorded it (never less than the caller's own), plus the margin for clocks; a
    lease lapsed longer ago than that has had a whole lease's time to be renewed, and was not.
    """
    return now - lease_expires > grace
