"""What ``rollway abort`` tells a person it cannot help: how to go back to the previous version
once the service's newest rollout is promoted and its monitoring window has closed.

Pure: the words come from the ledger's records, and the services as the caller read them. Until
the promotion is finalized the stable service still runs the previous version (finalize is the
only step that points it at the promoted one; a decommission scales it to 0 on the same
revision), so the hand-run
``rollback`` flow puts it back, decommissioned or not, and records it on the rollout
(``rollway.finalize.reversible_by_hand``) when the services are as the promotion left them
(``reverted_by_hand``, the flow's own check: a finalize done outside rollway leaves the ledger as it
was). Once finalized, no service runs it any more: going back is a new rollout of it, judged like
any other.
"""

from __future__ import annotations

from typing import Sequence

from rollway.cli.blocks import deployment_path
from rollway.finalize import (DONE, START, UNRECORDED_ROLLBACK, finalize_unfinished, is_finalized, reversible_by_hand,
                              reverted_by_hand, same_revision)
from rollway.image import with_pin
from rollway.ledger import RolloutRecord, utc
from rollway.model import ServiceState, Weights
from rollway.phases import RolloutPhase
from rollway.targets import Targets


def previous_image(record: RolloutRecord, history: Sequence[RolloutRecord]) -> str | None:
    """The image of the version ``record``'s rollout replaced, as the ledger knows it: that of the
    earlier promoted rollout whose revision the canary ran before this one; None when no earlier
    rollout names that revision (the first rollout of the service, say) or it was not recorded.

    Matched on the revision rather than taken as "the rollout before": one rolled back, or a
    version put on the services by hand since, would name an image that is not what ran.
    """
    revision = record.previous_task_definition
    for earlier in history:
        if (revision is not None and earlier.rollout_id < record.rollout_id
                and earlier.phase is RolloutPhase.PROMOTED and earlier.canary_task_definition is not None
                and same_revision(earlier.canary_task_definition, revision)):
            return with_pin(earlier.image, earlier.pinned_image)
    return None


def _previous(record: RolloutRecord, image: str | None) -> str:
    """" (<image>, revision <td>)" of the previous version, as much of it as the ledger knows."""
    known = [part for part in (image, record.previous_task_definition and f"revision {record.previous_task_definition}")
             if part]
    return f" ({', '.join(known)})" if known else ""


def _when(record: RolloutRecord, kind: str) -> str:
    done = record.last_transition(kind)
    return f" by {done.actor} at {utc(done.at)}" if done is not None else ""


def _new_rollout(record: RolloutRecord, image: str | None) -> str:
    if image is not None:
        which = f"`image` set to {image}"
    elif record.previous_task_definition is not None:
        which = f"`image` set to the image revision {record.previous_task_definition} names"
    else:
        which = "`image` set to the version you want back (the ledger does not record which ran before)"
    return ("roll the previous version out again as a new rollout, judged stage by stage like any release: in the "
            f"Prefect UI, Deployments -> {deployment_path('progressive_rollout')} -> Run -> Custom run, with the "
            f"spec's {which}; or `prefect deployment run {deployment_path('progressive_rollout')} "
            "--param spec=<that spec as JSON>`")


CANARY_RUN_NEXT = ("If a `canary` flow run drives it (`rollway status` lists one), let it finish, or cancel it "
                   "(in the Prefect UI, Flow Runs -> the run -> Cancel) and its hooks roll it back")
"""What to do about a `canary` flow run that may drive the canary service: it keeps no ledger, so
the ledger cannot tell, and a run left going moves the traffic again after any other rollback."""


def _unledgered(targets: Targets, live: Weights) -> str:
    """What to do about traffic on the canary that no open rollout in the ledger accounts for."""
    return (f"; yet the load balancer sends {live.canary}% of the traffic to {targets.canary_service}: a `canary` "
            f"flow run's, which keeps no ledger, or weights moved by hand. {CANARY_RUN_NEXT}; otherwise roll it "
            f"back with {UNRECORDED_ROLLBACK}")


def _canary_changed(targets: Targets, record: RolloutRecord,
                    services: tuple[ServiceState, ServiceState] | None) -> str:
    """" <sentence>" when the canary service, as read, no longer runs the promoted revision while the
    stable one still runs the previous (``reverted_by_hand`` false on the canary alone): said before
    the rollback flow is, since a `canary` flow run driving it would shift the traffic back onto it
    after the rollback. Empty otherwise. No flow runs are read here: the revision is what tells."""
    if services is None or not reversible_by_hand(record) or reverted_by_hand(record, *services):
        return ""
    return (f" Yet {targets.canary_service} runs {services[1].task_definition}, not the promoted revision "
            f"{record.canary_task_definition or '(not in the ledger)'}: a `canary` flow run may be driving it, or it "
            f"was changed outside rollway since. {CANARY_RUN_NEXT}, before going back; a run left going would move "
            "the traffic again after the rollback.")


def nothing_to_abort(targets: Targets, record: RolloutRecord | None, history: Sequence[RolloutRecord] = (),
                     live: Weights | None = None, services: tuple[ServiceState, ServiceState] | None = None) -> str:
    """Why ``rollway abort`` has nothing to roll back for the service, and what to do instead.

    ``record`` is the newest rollout, which the caller found closed to a rollback (None: there is
    none); ``history`` is the service's rollouts, newest first, for naming the previous version;
    ``live`` is the split the load balancer holds (None: it could not be read); ``services`` the
    stable and canary services as read (None: not read), which decide, as they do for the
    rollback flow (``reverted_by_hand``), whether a rollback by hand goes back and is recorded.
    """
    service = targets.canary_service
    if record is None or record.phase is not RolloutPhase.PROMOTED:
        where = f"its newest rollout {record.rollout_id} is {record.phase.value}" if record else "it has no rollout"
        if live is not None and live.canary > 0:
            return f"nothing to abort for {service}: {where}{_unledgered(targets, live)}"
        # Nothing of a rollout serves users: the stable service carries all the traffic (if read).
        return (f"nothing to abort for {service}: {where}"
                + (f", and {targets.stable_service} carries all the traffic" if live is not None else ""))
    stable = targets.stable_service
    image = previous_image(record, history)
    said = _previous(record, image)
    head = (f"nothing to abort for {service}: its newest rollout, {record.rollout_id} of "
            f"{with_pin(record.image, record.pinned_image)}, is promoted")
    if is_finalized(record):
        return (f"{head} and was finalized{_when(record, DONE)}: {stable} runs it now, and no service runs the "
                f"previous version{said} any more. To go back, {_new_rollout(record, image)}")
    if finalize_unfinished(record):
        # The stable service may already run the promoted version: a rollback would move the
        # traffic onto it, not back to the previous one.
        return (f"{head}, and its finalize, begun{_when(record, START)}, did not finish, so {stable} may "
                "already run the promoted version. Run `rollway finalize` again to finish it; then, to go back, "
                f"{_new_rollout(record, image)}")
    if (services is not None and reversible_by_hand(record)
            and not same_revision(services[0].task_definition, record.previous_task_definition)):
        return _finalized_outside(targets, record, image, head, services[0])
    return (f"{head} and its monitoring window has closed: it is production, which `rollway abort` no longer "
            f"rolls back. It is not finalized, so {stable} still runs the previous version{said}."
            f"{_canary_changed(targets, record, services)} To go back to it, run the `rollback` flow by hand: it scales {stable} back up if it was scaled down, moves all "
            f"the traffic to it and scales {service} to 0. In the Prefect UI, Deployments -> {deployment_path('rollback')} "
            f"-> Run; or `prefect deployment run {deployment_path('rollback')} --param reason=\"<why>\" --param "
            "actor=<you>`. "
            f"{_recorded(targets, record, services)}")


def _finalized_outside(targets: Targets, record: RolloutRecord, image: str | None, head: str,
                       stable: ServiceState) -> str:
    """The ledger records no finalize, yet the stable service no longer runs the previous revision:
    the rollback flow would move the traffic onto what it runs now, and record nothing."""
    promoted = record.canary_task_definition is not None and same_revision(stable.task_definition,
                                                                           record.canary_task_definition)
    runs = ("the promoted revision: it was finalized outside rollway" if promoted
            else "a revision set outside rollway")
    return (f"{head} and its monitoring window has closed, and the ledger records no finalize, yet "
            f"{targets.stable_service} runs {stable.task_definition}, not the previous version's revision "
            f"{record.previous_task_definition}, but {runs}. No service runs the previous version"
            f"{_previous(record, image)} any more: the `rollback` flow would move the traffic onto "
            f"{targets.stable_service} as it runs now, and not record it on rollout {record.rollout_id}. To go back, "
            f"{_new_rollout(record, image)}")


def _recorded(targets: Targets, record: RolloutRecord, services: tuple[ServiceState, ServiceState] | None) -> str:
    """What the ledger says after the hand-run rollback ``nothing_to_abort`` sends a person to:
    the rollback flow records it only on the services ``reverted_by_hand`` looks at."""
    recorded = (f"It records the rollback on rollout {record.rollout_id}, which `rollway status` then shows rolled "
                "back, and the next rollout starts as usual")
    if reversible_by_hand(record):
        stable, canary, promoted = targets.stable_service, targets.canary_service, record.canary_task_definition
        if services is None:
            # Not read here: the flow reads them itself, and records nothing if they changed by then.
            return (f"{recorded}, if {stable} still runs revision {record.previous_task_definition} and {canary} "
                    f"revision {promoted or 'the rollout promoted'} when it runs (they could not be read here); "
                    "otherwise it records nothing and the rollout stays promoted")
        if reverted_by_hand(record, *services):
            # The stable service runs the previous revision (at 0 tasks after a decommission,
            # which the rollback scales back up), the canary the promoted one.
            return recorded
        # The stable service runs the previous revision (else _finalized_outside): the canary does
        # not (_canary_changed said why, and what to do first).
        return (f"As {canary} does not run the promoted revision, the rollback takes no promotion out, so it does not "
                f"record it on rollout {record.rollout_id}, which stays promoted")
    # Not finalized (the caller said so before), so only the revision the rollout replaced is
    # missing from its record: the flow cannot tell that the rollback takes the promotion out.
    return ("The ledger does not record the revision the rollout replaced, so it keeps the rollout as promoted "
            "and `rollway finalize` then refuses it; the next rollout starts as usual")
