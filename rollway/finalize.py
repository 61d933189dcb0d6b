"""Finalizing a promotion: what to do, decided from what the ledger and AWS show (pure, no I/O).

After a promotion the canary service carries all the traffic, so the pair of services cannot
take another rollout. Finalizing puts the promoted task definition on the stable service, moves
the traffic back to it and scales the canary to 0, leaving it idle for the next release, as
Flagger and Argo Rollouts end a promotion. ``flows/finalize.py`` acts on the plan made here.

The ledger records a ``finalize-start`` before anything moves and ``finalized`` at the end, on
the promoted rollout's record (its phase stays promoted): a run that stopped between the two is
finished by the next run, and a finished one is recognised and left alone.

A promotion the ledger does not record (made by the ``canary`` flow, which keeps no ledger) is
planned by ``plan_unrecorded`` from what AWS shows alone, and nothing is written to the ledger.
"""

from __future__ import annotations

from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from rollway.bounds import duration_words, seconds_said
from rollway.clock import on_the_wall
from rollway.decide import window_settled
from rollway.errors_pickle import PicklableError
from rollway.image import with_pin
from rollway.ledger import (BREACH_ACCEPTED, BREACH_KEPT, NOTICE_FAILED, NOTIFIED, RolloutRecord, Transition, monitoring_owed, notice_time,
                            utc)
from rollway.model import ServiceState, Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec
from rollway.targets import Targets
from rollway.window_said import looks_said, nobody_watching, not_closed

START = "finalize-start"
"""Transition recorded before finalize changes anything."""

DONE = "finalized"
"""Transition recorded once the stable service carries the traffic and the canary is at 0."""

NOTICE_NOT_SENT = 'the "Finalized" notice was NOT sent, nobody was told: '
"""How the comment of the ``notice-failed`` entry a finalize records after its ``finalized`` begins
(SNS's answer after it): the finalize's work is done, the notice people expect is not."""

NOTICE_LATE_NOT_SENT = 'the late "Finalized" notice was NOT sent: '
"""How a late send's refusal is said, SNS's answer after it, where an earlier send lost its answer
(``lost_before``: the finalize's own notice and its repeat, or a late send): that send may have told
people, so not "nobody was told" (``NOTICE_NOT_SENT``)."""

NOTICE_NOT_KNOWN = ('whether the "Finalized" notice was sent is not known '
                    "(SNS's answer was lost: it may have taken it): ")
"""How the comment of a ``notice-failed`` entry whose answer was lost begins (SNS's answer after it):
the notice may have gone out (``rollway.window_page.unsent``'s words, lost). Spelled out, not derived
from ``unsent``: entries already in the ledger keep these words whatever ``unsent`` says later, and
``notice_lost`` finds them by them."""

UNANSWERED_WHY = "finalize stopped waiting for SNS's answer: it may have taken it"
"""Why nobody knows whether a notice went out whose publish the run gave up waiting on (``unsent``'s ``why``)."""

NOTICE_WAIT_STOPPED = f'whether the "Finalized" notice was sent is not known ({UNANSWERED_WHY}): '
"""``NOTICE_NOT_KNOWN`` for a publish the run gave up waiting on (``write_seconds``): no answer was
lost, none had come yet. ``notice_lost`` finds these entries too."""

NOTICE_LATE_TO = "running finalize again sends it late{to} once SNS takes it (it moves nothing)"
"""``NOTICE_LATE`` naming the topic (``to``: " to topic <arn>", or "")."""

NOTICE_LATE = NOTICE_LATE_TO.format(to="")
"""What is said of a "Finalized" notice owed: how it goes out."""

NOTICE_BARRED = ("no finalize sends it late while {barred}: every finalize refuses before its late send, so tell the "
                 "alert topic's subscribers yourself")
"""What is said of a "Finalized" notice owed while every finalize refuses before its late send
(``barred``: what for): a breach recorded after the finalize done (``unhandled_breach``; none may
accept the breach of a release finalized already), or the load balancer or the canary service
changed since."""

BREACH_BARS = "the breach recorded since stands"
"""``NOTICE_BARRED``'s ``barred`` for a breach recorded after the finalize done."""

NOTICE_UNSEEN = (f"{NOTICE_LATE}, while this rollout is the service's newest (a finalize reads no other) and the load "
                 "balancer sends all the traffic to the stable service and the canary service is at 0 tasks, as the "
                 "finalize left them; " + NOTICE_BARRED.format(barred="they are changed from that"))
"""What is said of a "Finalized" notice owed by a text that read neither the load balancer nor the
canary service: the report, `rollway status` where it could not read the load balancer, and a
finalize's refusal for the lease another run holds (``owed_as_well``). ``NOTICE_LATE`` alone sent
people to a run that refuses once either changed. The report may be of a rollout another followed,
whose notice no finalize sends at all."""

NOTICE_CANARY_UNSEEN = (f"{NOTICE_LATE}, while the canary service is at 0 tasks, as the finalize left it; "
                        + NOTICE_BARRED.format(barred="it is scaled up from that"))
"""``NOTICE_UNSEEN`` where the load balancer was read, sending all the traffic to the stable service,
and the rollout is the service's newest (`rollway status`): only the canary service is left unread."""

ALL_STABLE = Weights(stable=100, canary=0)

UNRECORDED_AGAIN = "`rollway finalize --unrecorded`, or the finalize deployment with `unrecorded` ticked"
"""How a person finalizes a promotion the ledger does not record."""
UNRECORDED_ROLLBACK = ("the `rollback` flow (the rollback deployment; `rollway abort` rolls back only rollouts the "
                       "ledger records)")
"""How a person rolls back a promotion the ledger does not record (the `canary` flow's)."""


class FinalizeRefused(RuntimeError):
    """The service is not in a state finalize may act on; nothing was written or changed."""


class FinalizeIncomplete(PicklableError, RuntimeError):
    """Finalize stopped part-way. What users are served is said in the message, and running
    finalize again carries on from where it stopped.

    Attributes:
        step: the step that failed.
        state: what the load balancer and the services hold now, for a person.
        done: the steps done before it, in order.
        longer: for a wait that ran out of time, how to give the next run more (said last).
    """

    def __init__(self, step: str, why: str, state: str, *, unrecorded: bool = False,
                 done: Sequence[str] = (), longer: str | None = None) -> None:
        self.step, self.state, self.done, self.longer = step, state, tuple(done), longer
        # Without --unrecorded, a run for a promotion the ledger does not record is refused: say which to run.
        again = UNRECORDED_AGAIN if unrecorded else "`rollway finalize` or the finalize deployment"
        super().__init__(
            f"finalize stopped while it tried to {step}: {why}. {state} Run finalize again ({again}) once that "
            "step can succeed: it carries on from where it stopped" + (f"; {longer}" if longer else "")
        )


class FinalizeNoticeRefused(PicklableError, RuntimeError):
    """Finalize did its work and recorded it done, and SNS did not take its "Finalized" notice:
    nobody was told (or SNS's answer was lost, to it and to its repeat, or the run stopped waiting
    for it: nobody knows, ``FinalizeResult.notice_lost``). Raised at the run's end, once the refusal is recorded on the
    rollout (``notice-failed``) and said in the run's summary, so that the run reads as needing a
    person (a topic policy or a role to mend, the topic's deliveries to check) rather than as all done."""


class FinalizePlan(BaseModel):
    """What a finalize run does.

    ``start``: move ``task_definition`` onto the stable service, then the traffic, then idle
    the canary. ``after-traffic``: a previous run moved the traffic and stopped; idle the
    canary and record it. ``done``: finalized already, nothing to do.
    """

    model_config = ConfigDict(frozen=True)

    action: Literal["start", "after-traffic", "done"]
    task_definition: str = Field(description="the promoted task definition the stable service runs (or will)")
    stable_desired: int = Field(ge=1, description="tasks the stable service is given to carry all traffic")
    accepts: Transition | None = Field(
        default=None, description="the breach not rolled back the person finalizing accepted (``accept_breach``): "
                                  "recorded as accepted before anything moves")

    @classmethod
    def on_stable(cls, action: Literal["after-traffic", "done"], stable: ServiceState,
                  accepts: Transition | None = None) -> "FinalizePlan":
        """A plan past the traffic move: the stable service already runs the promoted version."""
        return cls(action=action, task_definition=stable.task_definition, stable_desired=max(stable.desired, 1),
                   accepts=accepts)


class FinalizeResult(BaseModel):
    """What a finalize run did and read back."""

    model_config = ConfigDict(frozen=True)

    outcome: Literal["finalized", "already_finalized", "nothing_to_finalize"]
    rollout_id: str | None = Field(description="None: a promotion the ledger does not record (the `canary` flow's)")
    image: str | None = Field(description="None: unknown (a promotion the ledger does not record, or a stable service "
                                          "pointed elsewhere since it was finalized): see task_definition")
    pinned_image: str | None = Field(
        default=None, description="the digest ``image`` was pinned to when the rollout started, which the promoted "
                                  "revision names (None: not known, or recorded before images were pinned)")
    task_definition: str
    weights: Weights = Field(description="read back from the load balancer")
    stable_desired: int
    canary_desired: int
    notification_id: str | None = None
    notice_refused: str | None = Field(
        default=None, description="SNS's answer when it did not take the \"Finalized\" notice (the finalize is done "
                                  "and recorded; nobody was told, unless ``notice_lost_before``), or when its answer "
                                  "was lost (``notice_lost``)")
    notice_lost_before: str = Field(
        default="", description="``notice_refused`` refused a late send after an earlier send whose answer was "
                                "lost, which may have told people: that send, in ``lost_before``'s words (\"\": none)")
    notice_lost: bool = Field(
        default=False, description="``notice_refused`` is a lost answer (``rollway.aws.errors.answer_lost``), not a "
                                   "refusal: SNS may have delivered the notice. A first notice was sent once more, "
                                   "saying it may repeat the first, and that one's answer was lost (or SNS refused "
                                   "it); a late one (``already_finalized``) is not sent again. With "
                                   "``notice_unanswered``, the run stopped waiting for SNS's answer instead: no "
                                   "answer was lost, and the publish (a first notice's repeat after it) may still "
                                   "go out")
    notice_unanswered: bool = Field(
        default=False, description="with ``notice_lost``: the run stopped waiting for SNS's answer (its "
                                   "``write_seconds``) rather than lost it")
    notice_unrecorded: str = Field(
        default="", description="why the ledger could not record ``notice_refused`` as owed (its "
                                "``notice-failed`` write failed, in ``ledger_failure``'s words): nothing records "
                                "the notice owed (unless that write landed all the same), so a finalize run may "
                                "send nothing late (\"\": recorded, or nothing to record)")
    steps: tuple[str, ...] = Field(default=(), description="what was done, in order")


def last_index(record: RolloutRecord, kind: str) -> int:
    """Index in the history of the newest transition of ``kind`` (-1: none)."""
    return max((i for i, t in enumerate(record.history) if t.kind == kind), default=-1)


def already_finalized(record: RolloutRecord, *, runs: str, weights: Weights, targets: Targets,
                      sent_late: str | None = None, refused_late: Transition | None = None) -> str:
    """What a finalize run says of a rollout finalized already, in its log, its summary and as
    the command's closing line (one sentence, so that the three agree): when and by whom it was
    finalized, and what the services run now (``runs``: the stable service's task definition and,
    when it was pointed elsewhere since, saying so)."""
    done = record.last_transition(DONE)
    at = f" at {utc(done.at)} by {done.actor}" if done is not None else ""
    # A notice SNS refused stays said: "nothing changed" alone read as finalized and announced.
    # ``sent_late``: the message id of the notice owed this run sent (``record`` read before it).
    # A run says this only where it found the load balancer and services as the finalize left them.
    # ``refused_late``: this run's late send, refused again (its ``notice-failed``): SNS's newest answer,
    # where the earlier refusal in ``record`` was quoted as if it were still the newest.
    unsent = (f"{owed_notice(record)} was sent late (SNS message id {sent_late})"
              if sent_late else notice_not_sent(record, as_left=True, latest=refused_late))
    return (f"{record.rollout_id} was already finalized{at}: {finalized_state(targets, runs=runs, weights=weights)}; "
            "nothing changed"
            + (f"; {unsent}" if unsent else ""))


def owed_notice(record: RolloutRecord) -> str:
    """The "Finalized" notice owed, as a late send of it is said (``already_finalized``, and the
    finalize flow's step): the one "SNS refused earlier", or, after a late send whose answer was
    lost (``notice_lost``), the one "owed": SNS may have taken that one."""
    return f'{NOTICE} {"SNS refused earlier" if notice_lost(record) is None else "owed"}'


def finalized_state(targets: Targets, *, runs: str, weights: Weights) -> str:
    """What the services are after a finalize (``runs``: the stable service's task definition,
    ``weights``: read back), in the words every text that says it uses, so that they agree."""
    return (f"{targets.stable_service} runs {runs} and carries {weights.stable}% of the traffic, "
            f"{targets.canary_service} is at 0 tasks")


NOTICE = 'the "Finalized" notice'
"""The notice, as said where its publish failed (``rollway.window_page.unsent``)."""

UNRECORDED_UNTOLD = ("{advice}: the ledger does not record this promotion, so no run sends the notice again "
                     "(finalize run again finds nothing to finalize, and sends nothing)")
"""What a "Finalized" notice SNS refused, or whose answer was lost, calls for when the ledger does not
record the promotion (``advice``: tell the subscribers, or check the deliveries first): only a
finalize run sends one owed, and only of a rollout whose ``notice-failed`` the ledger keeps."""

NOTICE_UNRECORDED = ("{advice}: the ledger's write recording it owed failed ({why}), so a finalize run again may send "
                     "nothing (it sends the notice late only if the ledger holds that entry)")
"""``UNRECORDED_UNTOLD`` of a promotion the ledger records, whose ``notice-failed`` write failed
(``why``: its failure): nothing else makes the notice owed. "May": a write given up on, or whose
answer was lost, may land all the same, and a run again then sends it; "no finalize run sends it
late" was said of such a one."""


def notice_failed_said(answer: str, *, lost: bool, after_lost: bool = False, gave_up: bool = False,
                       before: str = "") -> str:
    """A "Finalized" notice whose publish failed, as the finalize flow's steps, summary and error,
    status and the report say it: NOT sent (SNS refused it, ``NOTICE_NOT_SENT``), or not known
    (``lost``: SNS's answer was lost, ``NOTICE_NOT_KNOWN``), SNS's ``answer`` after it. "NOT sent,
    nobody was told" said of a notice SNS may have delivered had nobody look at the topic's deliveries.
    ``after_lost``: a refusal of a late send after one whose answer was lost: it says the late notice
    was NOT sent (``NOTICE_LATE_NOT_SENT``), not that nobody was told, as that send may have told them.
    ``before``: that send, in ``lost_before``'s words, said after it (``after_lost`` then): a caller
    naming it (an entry recorded does not: its readers name that send from the ledger). ``gave_up``:
    with ``lost``, the run stopped waiting for SNS's answer (``NOTICE_WAIT_STOPPED``) rather than lost it."""
    if lost:
        return f"{NOTICE_WAIT_STOPPED if gave_up else NOTICE_NOT_KNOWN}{answer}{before}"
    return f"{NOTICE_LATE_NOT_SENT if after_lost or before else NOTICE_NOT_SENT}{answer}{before}"


def finalized_said(result: FinalizeResult, targets: Targets) -> str:
    """What a finalize done leaves (``finalized_state``), and, when SNS did not take its "Finalized"
    notice (or its answer was lost, ``notice_lost``), that nobody was told (or that nobody knows)
    and what to do: one sentence for the finalize flow's error and the `canary` flow's result.
    Unrecorded, nothing sends the notice late: "running finalize again sends it" sent a person to a
    run that finds nothing to do; nor where the ledger could not record it owed (``notice_unrecorded``)."""
    from rollway.window_page import CHECK_DELIVERY  # as in notice_failed_said

    state = finalized_state(targets, runs=result.task_definition, weights=result.weights)
    if result.notice_refused is None:
        return state
    # The topic inside the one sentence: "Once SNS takes it (topic X), " before NOTICE_LATE said it twice.
    late = NOTICE_LATE_TO.format(to=f" to topic {targets.alert_topic}")
    advice = (f"{CHECK_DELIVERY} ({targets.alert_topic})" if result.notice_lost
              else f"tell the subscribers of {targets.alert_topic} yourself")
    # Sent late only while the ledger records it owed: not of a promotion it does not record, nor where
    # it could not record the ``notice-failed``.
    then = (UNRECORDED_UNTOLD.format(advice=advice) if not result.rollout_id
            else NOTICE_UNRECORDED.format(advice=advice, why=result.notice_unrecorded) if result.notice_unrecorded
            else late)
    said = notice_failed_said(result.notice_refused, lost=result.notice_lost, gave_up=result.notice_unanswered,
                              before=result.notice_lost_before)
    return f"{state}; but {said}. {then[0].upper()}{then[1:]}"


def is_finalized(record: RolloutRecord) -> bool:
    """Whether the rollout's newest finalize finished (a ``finalized`` after the last start)."""
    return record.phase is RolloutPhase.PROMOTED and last_index(record, DONE) > last_index(record, START)


def notice_owed(record: RolloutRecord | None) -> Transition | None:
    """The newest ``notice-failed`` entry of a finalize done whose "Finalized" notice is still owed,
    or None. Owed, as the decommission's page is (``rollway.decommission_page``), while the newest
    ``notice-failed`` or ``notified`` after the newest ``finalized`` is a refusal: a finalize run
    again sends it late and records it ``notified``. Before, a run again moved nothing and sent
    nothing, and people had to tell the subscribers themselves. A notice whose answer was lost (the
    finalize's own and its repeat, or a late send) is recorded as a ``notice-failed`` too
    (``notice_lost``): nothing recorded it sent, so it stays owed."""
    if record is None or not is_finalized(record):
        return None
    # The newest finalized, notice-failed or notified: a refusal when one came after the finalize done.
    newest = record.newest_while_promoted(DONE, NOTICE_FAILED, NOTIFIED)
    return newest if newest is not None and newest.kind == NOTICE_FAILED else None


def notice_lost(record: RolloutRecord) -> Transition | None:
    """The newest ``notice-failed`` entry after the newest ``finalized`` that records a lost answer
    (``notice_failed_said``'s, ``lost``: the finalize's notice and its repeat, or a late send, which
    SNS may have delivered), or None. A notice sent late after it may repeat that one, and says so
    (``late_said``)."""
    after = record.history[last_index(record, DONE) + 1:]
    return next((t for t in reversed(after) if t.kind == NOTICE_FAILED
                 and (t.comment or "").startswith((NOTICE_NOT_KNOWN, NOTICE_WAIT_STOPPED))), None)


def late_said(record: RolloutRecord, owed: Transition) -> str:
    """How the late "Finalized" notice of ``owed`` (``notice_owed``) opens: late, and why; and, after
    a send whose answer was lost (``notice_lost``), that it may repeat that one. "This notice is
    late" alone was said of a notice people may have had already."""
    may = "" if notice_lost(record) is None else ", and may repeat one"
    return f"This notice is late{may}: {_owed_said(record, owed)}"


def _owed_said(record: RolloutRecord, owed: Transition) -> str:
    """Why the "Finalized" notice is owed: ``owed``, the newest failure (``refused_said``), and, when
    it is a refusal after a send whose answer was lost, that send too (``lost_before``)."""
    return refused_said(owed, before=lost_before(record, owed))


def lost_before(record: RolloutRecord, refused: Transition | None = None) -> str:
    """"; an earlier send's answer was lost: <its entry>" when ``record`` holds a send whose answer
    was lost (``notice_lost``) other than ``refused``, else "": said after a refusal of the notice
    owed, which alone said "NOT sent, nobody was told" of a notice that send may have delivered. Not
    "an earlier late send": the finalize's own notice (sent once more) may be the one lost."""
    lost = notice_lost(record)
    if lost is None or lost is refused:
        return ""
    what = ("finalize stopped waiting for SNS's answer to an earlier send"
            if (lost.comment or "").startswith(NOTICE_WAIT_STOPPED) else "an earlier send's answer was lost")
    return f"; {what}: {refused_said(lost)}"


def refused_said(refused: Transition, *, before: str = "") -> str:
    """A ``notice-failed`` entry of a finalize as people read it: SNS's answer, whose run, when.
    ``before``: a send before it whose answer was lost (``lost_before``), said after it, and
    the refusal without "nobody was told" (``notice_failed_said``), which an entry recorded before
    refusals after a lost answer were recorded so says."""
    comment = refused.comment or notice_failed_said("no answer recorded", lost=False, after_lost=bool(before))
    if before and comment.startswith(NOTICE_NOT_SENT):
        comment = notice_failed_said(comment.removeprefix(NOTICE_NOT_SENT), lost=False, after_lost=True)
    return f"{comment} ({refused.actor}'s run, at {notice_time(refused)}){before}"


def notice_not_sent(record: RolloutRecord | None, *, barred: str | None = None, as_left: bool = False,
                    latest: Transition | None = None, live: Weights | None = None,
                    canary: tuple[str, int] | None = None) -> str | None:
    """What `rollway status` and the report say of a finalize done whose "Finalized" notice is owed
    (``notice_owed``), or None: its run failed after recording the finalize done, and without this
    the rollout read as finalized and announced. A breach recorded since, or ``barred`` (what else a
    finalize the caller saw refuses for), bars the late send (``NOTICE_BARRED``): "running finalize
    again sends it" sent people to a run that refuses. ``as_left``: the caller read the load balancer
    and the services as the finalize left them, so a run again sends it (``NOTICE_LATE``); without
    it, neither was read, and the late send is said with its condition (``NOTICE_UNSEEN``). ``latest``:
    a refusal newer than ``record`` holds (a late send refused again, recorded after ``record`` was read),
    quoted instead of the one ``record`` holds; a send before it whose answer was lost is named
    too (``_owed_said``). ``live``: the load balancer's weights, read by a caller
    showing the service's newest rollout (`rollway status`): they settle what they can plainly, a late
    send barred while they are not all on the stable service, else only the canary's condition said
    (``NOTICE_CANARY_UNSEEN``). ``canary``: the canary service's name and the tasks it asks for, read
    by that caller too: with the traffic all on stable, they settle the rest (a finalize run again
    sends it only while the canary asks for none)."""
    refused = notice_owed(record)
    if refused is not None and latest is not None:
        refused = latest
    if refused is None:
        return None
    if unhandled_breach(record) is not None:
        barred = BREACH_BARS
    elif barred is None and live is not None and live != ALL_STABLE:
        barred = f"the load balancer holds {live} (stable/canary), not all the traffic on the stable service"
    elif barred is None and live is not None and canary is not None:
        # As ``plan_finalize`` judges a finalize found done: the canary's desired count.
        name, desired = canary
        if desired:
            barred = f"{name} asks for {desired} tasks, not the 0 the finalize left it at"
        else:
            as_left = True
    then = (NOTICE_BARRED.format(barred=barred) if barred else NOTICE_LATE if as_left
            else NOTICE_CANARY_UNSEEN if live is not None else NOTICE_UNSEEN)
    return f"{_owed_said(record, refused)}; {then}"


def owed_as_well(record: RolloutRecord, targets: Targets, barred: str | None = None) -> str:
    """The sentence a finalize's refusal of a rollout finalized already adds when that finalize's
    "Finalized" notice is owed (``notice_not_sent``): the refusal comes before the late send, and
    said nothing of it, as if the release had been announced. "" when none is owed. Every such
    refusal says it in these words: the plan's, and the lease's (``flows.finalize``'s ``_held_by``)."""
    unsent = notice_not_sent(record, barred=barred)
    return f" That finalize's notice is owed as well: {unsent} (topic {targets.alert_topic})." if unsent else ""


def finalize_unfinished(record: RolloutRecord | None) -> bool:
    """Whether a finalize of this promoted rollout began and has not finished (its run stopped
    or is still going): until it is run again, a new rollout must not take the canary service."""
    return record is not None and record.phase is RolloutPhase.PROMOTED and last_index(record, START) > last_index(record, DONE)


def unhandled_breach(record: RolloutRecord | None) -> Transition | None:
    """The breach that still stands on a rollout: the newest one its monitoring window saw and could
    not roll back (``BREACH_KEPT``: another run had closed the window), while the rollout is promoted,
    no person accepted it (``accepted_breach``) and no finalize began after it was recorded.
    Finalize would put the release that breached onto the stable service, so it refuses; status,
    the report and `rollway promote`'s message send people to the `rollback` flow (or to accept
    it) instead. None otherwise: a finalize begun after the breach (a person accepted it, or a
    rollway from before finalize refused) carries on from where it stopped, as any other; a breach
    recorded after a finalize began, or after an acceptance of an earlier one, stands, and that
    finalize does not carry on past it.

    The one answer to "which breach still stands": status and the report read the newest entry on
    their own and said "breach not rolled back" while finalize carried on, and "run finalize
    again" where finalize refused."""
    if record is None or record.phase is not RolloutPhase.PROMOTED:
        return None
    kept = last_index(record, BREACH_KEPT)
    if kept <= last_index(record, START) or accepted_breach(record) is not None:
        return None
    return record.history[kept]


def accepted_breach(record: RolloutRecord | None) -> tuple[Transition, Transition] | None:
    """The newest breach not rolled back of a promoted rollout and a person's acceptance of it
    (``BREACH_ACCEPTED`` naming its time), or None: none recorded, or not accepted. An acceptance
    covers the breach it named: a breach recorded after it stands, accepted by no one."""
    if record is None or record.phase is not RolloutPhase.PROMOTED:
        return None
    kept = last_index(record, BREACH_KEPT)
    if kept < 0:
        return None
    breach = record.history[kept]
    accepted = next((t for t in record.history[kept + 1:] if t.kind == BREACH_ACCEPTED and t.breach_at == breach.at),
                    None)
    return None if accepted is None else (breach, accepted)


ACCEPT_BREACH = ('`rollway finalize --accept-breach "REASON"` (the finalize deployment: `accept_breach`), which '
                 "records who accepted the breach and why, then finalizes")
"""How a person who judged a breach not rolled back harmless keeps the release."""

BREACH_WAY_OUT = ("run the `rollback` flow (the rollback deployment), which moves the traffic back to the stable "
                  "service, still on the previous version; `rollway finalize` refuses, as it would put the release "
                  f"that breached there. If you judged the breach harmless, keep the release: {ACCEPT_BREACH}")
"""What a promotion whose breach was not rolled back (``unhandled_breach``) calls for, while no
finalize began: the stable service is known to run the previous version (``breach_way_out``)."""


_AGAIN = ("roll the previous version{revision} out again as a new rollout (the `progressive_rollout` deployment, its "
          "spec's image set to that version)")
_FINALIZED_WAY_OUT = (
    "the release was finalized onto the stable service ({actor}, {at}) {when}: that finalize left the stable service "
    "running it, and the `rollback` flow would take nothing out of production. The way back is a new release: "
    "{again}, or point the stable service back at the previous revision by hand")
_BEGAN_WAY_OUT = (
    "a finalize began ({actor}, {at}) before the breach was recorded and did not finish, so the stable service may run "
    "the release that breached already. While it still runs the previous version{revision}, the `rollback` flow moves "
    "the traffic back to it; otherwise {again}. `rollway finalize` refuses to carry on, as it would leave the release "
    "that breached there. If you judged the breach harmless, keep the release: {accept}")
"""``breach_way_out`` past a finalize, finished or not: worded from these, and recognised by their
opening words in an entry an older rollway wrote (``entry_words``)."""


def breach_way_out(record: RolloutRecord) -> str:
    """What a promotion whose breach stands (``unhandled_breach``) calls for, saying of the stable
    service only what the ledger knows: ``BREACH_WAY_OUT`` while no finalize began. A finalize begun
    before the breach was recorded may have put the release on the stable service, and one that
    finished did: the `rollback` flow then moves the traffic onto the release, not away from it."""
    began, done = record.last_transition(START), record.last_transition(DONE)
    if began is None:
        return BREACH_WAY_OUT
    previous = record.previous_task_definition
    revision = f" (revision {previous})" if previous else ""
    again = _AGAIN.format(revision=revision)
    if is_finalized(record):
        when = "before the breach was recorded" if last_index(record, DONE) < last_index(record, BREACH_KEPT) else (
            "by a finalize begun before the breach was recorded")
        return _FINALIZED_WAY_OUT.format(actor=done.actor, at=utc(done.at), when=when, again=again)
    return _BEGAN_WAY_OUT.format(actor=began.actor, at=utc(began.at), revision=revision, again=again,
                                 accept=ACCEPT_BREACH)

TAKE_IT_OUT = "run the `rollback` flow to take it out"
"""The monitoring window's own way out of its breach not rolled back, while no finalize began
(and on the `canary` flow, which keeps no ledger): the stable service still runs the previous
version, which the `rollback` flow moves the traffic back to."""

_UNREAD_WAY_OUT = ("the ledger could not be read ({unread}) to tell whether a finalize began before this breach was "
                   "recorded: if none did, {take}; if one did, the stable service may run the release already, which "
                   "the `rollback` flow does not take out, and `rollway status` names the way back")


def kept_breach_way_out(record: RolloutRecord | None, *, unread: str | None = None) -> str:
    """How the monitoring window's page of a breach it could not roll back ends, from the rollout
    as read after the breach was recorded: ``TAKE_IT_OUT`` while no finalize began (``record``
    None: no ledger is kept, the `canary` flow's), ``breach_way_out`` past one begun before the
    breach was recorded (it may have put the release on the stable service, and the `rollback`
    flow would then move the traffic onto it). ``unread``: why the ledger could not be read, so
    that whether a finalize began is unknown; the words then claim nothing of what the stable
    service runs."""
    if unread is not None:
        return _UNREAD_WAY_OUT.format(unread=unread, take=TAKE_IT_OUT)
    if record is None or record.last_transition(START) is None:
        return TAKE_IT_OUT
    return breach_way_out(record)


_OLD_WAY_OUT = tuple(f"; {opening}" for opening in (
    TAKE_IT_OUT, _UNREAD_WAY_OUT.partition("{")[0], _FINALIZED_WAY_OUT.partition("{")[0],
    _BEGAN_WAY_OUT.partition("{")[0]))
"""How each way out ``kept_breach_way_out`` wrote at the end of a breach not rolled back's entry
began, as rollway did before its entries held the facts alone."""


def entry_words(entry: Transition) -> str | None:
    """An entry's comment as readers quote it (status, the report, finalize). A breach not rolled
    back (``BREACH_KEPT``) holds the facts: what was breached, that the rollback was refused and
    why, and that the release stays in production; each reader says the way out itself, from the
    rollout as it stands when read. One an older rollway wrote ends with the way out as it stood
    then, cut from where it begins (``_OLD_WAY_OUT``), so that it never reads beside the current
    one, stale. Found by its opening words, not matched whole: the facts before it are rollway's
    own, and a pattern over the whole tail (actors and errors quoted in it) backtracked for
    minutes on a long one."""
    if entry.kind != BREACH_KEPT or not entry.comment:
        return entry.comment
    starts = [at for at in (entry.comment.find(opening) for opening in _OLD_WAY_OUT) if at >= 0]
    return entry.comment[:min(starts)] if starts else entry.comment


UNRECORDED_ACCEPT = ("accept_breach applies only to a promotion the ledger records (its breach not rolled back is "
                     "recorded there), not with unrecorded: leave one of them out. Nothing was changed")
"""The refusal of ``accept_breach`` with ``unrecorded``, before anything is read."""


HISTORY_KINDS = (START, DONE)
"""Transitions after which a promoted rollout is history to a rollback run by hand: a finalize,
begun or done, may have put the promoted version on the stable service, and then the rollback
takes no version out of production. A decommission is not one: it scales the stable service to 0
on the same, previous revision, which the rollback scales back up (the hooks, whose rollback is
their own run's, say so and never record on a closed rollout: ``leave_closed``)."""


def reversible_by_hand(record: RolloutRecord | None) -> bool:
    """Whether a rollback run by hand on ``record`` is recorded on it, as far as the ledger can
    tell: it is promoted and no finalize (``HISTORY_KINDS``) is recorded on it, its window ended
    with a decommission or without ("watched"), or none was owed. The flow also checks that the
    stable service still runs the recorded ``previous_task_definition`` (at 0 tasks after a
    decommission): a finalize done outside rollway leaves no transition, and then the rollback
    takes no version out of production."""
    return (record is not None and record.phase is RolloutPhase.PROMOTED
            and record.previous_task_definition is not None
            and not any(t.kind in HISTORY_KINDS for t in record.history))


def same_revision(one: str, other: str) -> bool:
    """Whether two names of a task definition (ARN or family:revision) name one revision."""
    return one.rsplit("/", 1)[-1] == other.rsplit("/", 1)[-1]


def reverted_by_hand(record: RolloutRecord | None, stable: ServiceState, canary: ServiceState) -> bool:
    """Whether a rollback run by hand on ``record`` takes the promoted version out of production,
    and so is recorded on it, with the services as read: ``reversible_by_hand``, the stable service
    on the revision the promotion replaced (at any count) and the canary on the promoted one. The
    rollback flow decides on it, and `rollway abort` says what that flow would do by it."""
    return (reversible_by_hand(record) and same_revision(stable.task_definition, record.previous_task_definition)
            and record.canary_task_definition is not None
            and same_revision(canary.task_definition, record.canary_task_definition))


def stable_takes(record: RolloutRecord) -> str | None:
    """The revision a finalize of ``record`` puts on the stable service: the promoted one, or the
    identical copy its newest ``finalize-start`` names (``stable_task_definition``) when the promoted one
    was deregistered since the promotion (ECS points no service at an INACTIVE revision)."""
    start = record.last_transition(START)
    copied = start.stable_task_definition if start is not None else None
    return copied or record.canary_task_definition


def runs_promoted(record: RolloutRecord, task_definition: str) -> bool:
    """Whether ``task_definition`` is the promoted revision of ``record``, or its finalize's copy of it."""
    return any(td is not None and same_revision(task_definition, td)
               for td in (record.canary_task_definition, stable_takes(record)))


def moved_onto_stable(record: RolloutRecord | None, stable: ServiceState) -> bool:
    """Whether an unfinished finalize of ``record`` got as far as the stable service running the
    promoted version (or its copy, ``stable_takes``): what is left of it is to idle the canary
    (and record it)."""
    return (finalize_unfinished(record) and record.canary_task_definition is not None
            and runs_promoted(record, stable.task_definition))


def plan_finalize(
    record: RolloutRecord | None,
    spec: RolloutSpec | None,
    *,
    live: Weights,
    stable: ServiceState,
    canary: ServiceState,
    targets: Targets,
    now: float | None = None,
    speed: float = 1.0,
    wall: float | None = None,
    accept_breach: str | None = None,
) -> FinalizePlan:
    """Decide what a finalize run does, or refuse.

    Args:
        record: the service's newest rollout in the ledger (None: none recorded).
        spec: its recorded spec (``RolloutSpec.for_rollback``: only the window is read).
        live: the load balancer's weights now.
        stable: the stable service now.
        canary: the canary service now.
        targets: the names, for messages.
        now: the rollout clock's time, to tell a window still running from one whose time
            is up but that no run closed (None: not said).
        speed: the rollout clock's speed (rollout seconds per wall second): a refusal for a
            window still open says when it closes in wall time too.
        wall: the wall clock's time, on which leases are stamped, to tell a window still
            running that a run watches (and closes) from one no run holds the lease of, which
            waiting does not close (None: not said).
        accept_breach: why the person finalizing accepts the breach not rolled back that stands
            (``unhandled_breach``): the plan ``accepts`` it (None: such a breach refuses).

    Raises:
        FinalizeRefused: no promoted rollout to finalize, its monitoring window is still
            open, a breach not rolled back stands and was not accepted (or one was accepted and
            none stands), or the load balancer and services are not what its promotion left
            (the canary service no longer runs the recorded promoted revision, say).
    """
    service = targets.canary_service
    if record is None:
        raise FinalizeRefused(
            f"no rollout of {service} is recorded in table {targets.rollouts_table}: finalize completes a promoted "
            f"rollout the ledger records, and there is none. {_live_hint(live, targets)}. Nothing was changed"
        )
    which = _which(record)
    if record.phase is not RolloutPhase.PROMOTED:
        # A finished rollout says nothing about the traffic on the canary now: the weights do.
        hint = _live_hint(live, targets) if record.phase.terminal and live.canary else _not_promoted_hint(record)
        raise FinalizeRefused(f"the newest rollout of {service}, {which}, is {record.phase.value}, not promoted: "
                              f"{hint}. Nothing was changed")
    _refuse_open_window(record, spec, targets, now, speed, wall)
    breach = unhandled_breach(record)
    if breach is not None and is_finalized(record):
        # On the stable service already: "finalize would put it there" and the `rollback` flow were
        # wrong, and an acceptance, which only lets a finalize past the breach, was silently dropped.
        unrecorded = (" Your --accept-breach (accept_breach) was not recorded: it lets a finalize past a breach, and "
                      "this release was finalized already, so there is nothing left for it to let through."
                      if accept_breach is not None else "")
        raise FinalizeRefused(
            f"the monitoring window of {which} saw a breach and could not roll it back ({breach.actor}'s run, "
            f"{utc(breach.at)}): {entry_words(breach)}. But {breach_way_out(record)}."
            f"{owed_as_well(record, targets)}{unrecorded} Nothing was changed")
    if breach is None and accept_breach is not None:
        # Taken silently, the acceptance would be on record for nothing, or read as covering a
        # breach recorded later.
        accepted = accepted_breach(record)
        already = (f"; the breach of {utc(accepted[0].at)} was accepted already, by {accepted[1].actor} at "
                   f"{utc(accepted[1].at)}" if accepted is not None else "")
        raise FinalizeRefused(
            f"--accept-breach (accept_breach) was given, but no breach not rolled back stands on {which}{already}: "
            "there is nothing to accept. Run finalize without --accept-breach (clear accept_breach). Nothing was "
            "changed")
    if breach is not None and accept_breach is None:
        # The window's end said "Breach not rolled back"; finalizing would have made that release
        # the stable service's without a word of it.
        raise FinalizeRefused(
            f"the monitoring window of {which} saw a breach and could not roll it back ({breach.actor}'s run, "
            f"{utc(breach.at)}): {entry_words(breach)}. Finalize would put the release that breached onto "
            f"{targets.stable_service}: {breach_way_out(record)}. Nothing was changed")
    if is_finalized(record):
        if live == ALL_STABLE and canary.desired == 0:
            return FinalizePlan.on_stable("done", stable)
        # A "Finalized" notice owed is sent late only by a run that gets past here: "running finalize
        # again sends it", said elsewhere, sent people to this refusal.
        owed = owed_as_well(record, targets, barred=f"the load balancer and {service} stay so")
        raise FinalizeRefused(
            f"{which} was finalized already, but since then the load balancer holds {live} (stable/canary) and "
            f"{service} asks for {canary.desired} tasks: that is another rollout or a change by hand, not this "
            f"one. {_live_hint(live, targets)}.{owed} Nothing was changed"
        )
    if live.canary == 0:
        if moved_onto_stable(record, stable):
            # A run moved the traffic and stopped before idling the canary: finish from there.
            return FinalizePlan.on_stable("after-traffic", stable, breach)
        raise FinalizeRefused(
            f"the load balancer sends no traffic to {service} ({live} stable/canary), though {which} was promoted "
            f"and never finalized: {targets.stable_service} serves everything on {stable.task_definition}, not the "
            f"promoted {record.canary_task_definition}. Someone moved the traffic back by hand. A new rollout can "
            f"start from here; or, to keep the promoted version, send the traffic to {service} again and run finalize. "
            "Nothing was changed"
        )
    promoted = record.canary_task_definition
    if promoted is None or not same_revision(canary.task_definition, promoted):
        # Someone changed the canary after the promotion (a hotfix, an UpdateService by hand).
        # Following either revision would change production behind the operator's back: the
        # canary's puts an unjudged version on the stable service, the recorded one silently
        # drops what users are served now when the traffic moves. A person chooses.
        raise FinalizeRefused(
            f"{service} runs {canary.task_definition}, not the promoted {promoted or '(none recorded)'} of {which}: it "
            f"was changed after the promotion, and finalize moves only the promoted revision onto "
            f"{targets.stable_service}. To finalize, point {service} back at the promoted revision and run finalize "
            "again; ship the change afterwards as a new rollout, which judges it. Nothing was changed"
        )
    # The stable service takes the promoted version, with at least the tasks the canary carries
    # it with, what the rollout recorded the stable service needing, and what it asks for
    # already (capacity never shrinks as it takes over).
    needed = max(record.stable_desired or 0, canary.desired, stable.desired, 1)
    return FinalizePlan(action="start", task_definition=promoted, stable_desired=needed, accepts=breach)


def plan_unrecorded(
    newest: RolloutRecord | None,
    spec: RolloutSpec | None,
    *,
    live: Weights,
    stable: ServiceState,
    canary: ServiceState,
    canary_runs: Sequence[str],
    targets: Targets,
    finalize_runs: Sequence[str] = (),
    now: float | None = None,
    promoted: str | None = None,
    speed: float = 1.0,
    wall: float | None = None,
    stable_copy_of: str | None = None,
) -> FinalizePlan:
    """Decide how to finalize a promotion the ledger does not record, or refuse.

    The `canary` flow keeps no ledger, so only AWS says where such a promotion stands: 100 %
    on the canary is a promotion to finalize; 100 % on stable with the canary at 0 on the
    stable service's task definition is finalized already; the same with the canary still
    scaled up is a finalize whose traffic moved and whose canary was not scaled down yet.

    Args:
        newest: the service's newest rollout in the ledger, if any: it must be closed.
        spec: its recorded spec (``RolloutSpec.for_rollback``: only the window is read).
        live: the load balancer's weights now.
        stable: the stable service now.
        canary: the canary service now.
        canary_runs: `canary` flow runs on this service that have not ended, for a person (any refuses).
        finalize_runs: other `finalize` flow runs on this service that have not ended (any refuses:
            with nothing recorded, no lease keeps two finalizes apart).
        targets: the names, for messages.
        now, speed, wall: as for ``plan_finalize``.
        promoted: the task definition the promotion put on the canary, when known (the `canary`
            flow finalizing its own promotion knows it): a canary changed since is refused.
        stable_copy_of: the revision the stable service's is an identical copy of (``rollway:copy-of``,
            registered by a finalize because the promoted one was deregistered), or None: a stable
            service on such a copy of the canary's revision runs the same version.

    Raises:
        FinalizeRefused: the ledger's newest rollout is open or records the promotion, the
            canary does not carry all the traffic, or a `canary` flow run has not ended.
    """
    service = targets.canary_service
    if newest is not None:
        _refuse_recorded(newest, spec, targets, now, speed, wall)
    if live == ALL_STABLE and any(td is not None and same_revision(td, canary.task_definition)
                                  for td in (stable.task_definition, stable_copy_of)):
        plan = FinalizePlan.on_stable("done" if canary.desired == 0 else "after-traffic", stable)
        if plan.action == "done":
            return plan
    elif live.canary == 100:
        if promoted is not None and not same_revision(canary.task_definition, promoted):
            # Changed after the promotion (a hotfix, an UpdateService by hand): as plan_finalize,
            # never put an unjudged revision on the stable service.
            raise FinalizeRefused(
                f"{service} runs {canary.task_definition}, not the promoted {promoted}: it was changed after the "
                f"promotion, and finalize moves only the promoted revision onto {targets.stable_service}. To finalize, "
                f"point {service} back at the promoted revision first; ship the change afterwards as a new rollout, "
                "which judges it. Nothing was changed"
            )
        # No record of what the stable service needed: at least what either service asks for now.
        plan = FinalizePlan(action="start", task_definition=canary.task_definition,
                            stable_desired=max(canary.desired, stable.desired, 1))
    else:
        raise FinalizeRefused(f"{_live_hint(live, targets)}. Nothing was changed")
    if canary_runs:
        raise FinalizeRefused(
            f"{len(canary_runs)} run(s) of the `canary` flow on {service} have not ended: {', '.join(canary_runs)}. "
            f"Such a run may still be watching its promotion's monitoring window, and would roll it back, or be about "
            f"to deploy to {service}. Wait for it to end (or cancel it), then run finalize again. Nothing was changed"
        )
    if finalize_runs:
        raise FinalizeRefused(
            f"another run of the `finalize` flow on {service} has not ended: {', '.join(finalize_runs)}. Nothing is "
            "recorded of a promotion the ledger does not record, so no lease keeps two finalizes apart, and two at once "
            "would each move the services and the traffic and tell people twice. Let it finish (or cancel it); run "
            "finalize again if it stopped. Nothing was changed"
        )
    return plan


def _refuse_recorded(record: RolloutRecord, spec: RolloutSpec | None, targets: Targets, now: float | None,
                     speed: float = 1.0, wall: float | None = None) -> None:
    """Refuse a finalize without the ledger while the ledger's newest rollout is still open or
    records a promotion that finalize (without ``unrecorded``) finishes and records."""
    which = _which(record)
    if record.phase is RolloutPhase.PROMOTED:
        _refuse_open_window(record, spec, targets, now, speed, wall)
        if not is_finalized(record):
            raise FinalizeRefused(
                f"the ledger records {which} as promoted and not finalized: finalize it without `unrecorded` "
                "(`rollway finalize`), which records it. Nothing was changed"
            )
    elif not record.phase.terminal:
        raise FinalizeRefused(f"the newest rollout of {targets.canary_service} in the ledger, {which}, is "
                              f"{record.phase.value}: {_not_promoted_hint(record)}. Nothing was changed")


def _which(record: RolloutRecord) -> str:
    """``rollout <id> of <tag> (pinned as <digest>)``: the tag alone names another image than the one
    that ran once it is pushed again, and a person checking what finalize would put on the stable
    service reads the digest."""
    return f"rollout {record.rollout_id} of {with_pin(record.image, record.pinned_image)}"


def _refuse_open_window(record: RolloutRecord, spec: RolloutSpec | None, targets: Targets,
                        now: float | None, speed: float = 1.0, wall: float | None = None) -> None:
    if not monitoring_owed(spec, record):
        return
    promoted = record.last_transition("promote").at
    analysis = spec.analysis
    # The watching run's last look waits for the window's last period to be published, then
    # records its verdict (a look later at most): until then the window is closing, not abandoned.
    settles = window_settled(promoted, spec.monitor_seconds, analysis) + analysis.interval_seconds
    # The watching run holds the lease to the window's end and its last look: with none held at
    # ``wall``, its run was killed or gave it back, and waiting (the advice below) closes nothing.
    nobody = nobody_watching(record, wall)
    ended = now is not None and now >= promoted + spec.monitor_seconds
    if nobody is not None and not ended:
        raise FinalizeRefused(
            f"{_which(record)} was promoted at {utc(promoted)} and its "
            f"monitoring window is still open ({duration_words(spec.monitor_seconds, given=True)} from then, until "
            f"{utc(promoted + spec.monitor_seconds)}, rollout clock), and the ledger shows no run watching it now "
            f"({nobody}): waiting does not close it. Run `progressive_rollout` of {record.image} again, which watches "
            f"what is left of it and closes it, then run finalize again; until the window closes, "
            f"{targets.stable_service} keeps the previous version for a cheap rollback. Nothing was changed"
        )
    if ended and now < settles and nobody is None:
        raise FinalizeRefused(
            f"{_which(record)} was promoted at {utc(promoted)} and its "
            f"monitoring window ended at {utc(promoted + spec.monitor_seconds)}, "
            f"{duration_words(spec.monitor_seconds, given=True)} later "
            f"(rollout clock). The run watching it judges the window's last period once CloudWatch has published "
            f"it (about {seconds_said(analysis.metrics_delay_seconds)} late), then closes the window: run finalize again "
            f"after {utc(settles)}{on_the_wall(speed, settles, now)}. Nothing was changed"
        )
    if ended:
        # Its time is up (its last look's too, or no run holds the lease to make it) but no run
        # closed it: waiting changes nothing, running the rollout does.
        # A run that watched it to its end and recorded why it left it open is quoted, as status
        # quotes it; without one, what the record holds, in status's words.
        looks = looks_said(spec, record)
        why = (f"no run closed it: its run recorded it {looks[0]}" if looks is not None and looks[1] else
               not_closed(record, wall) + ("" if looks is None else f"; {looks[0]}"))
        raise FinalizeRefused(
            f"{_which(record)} was promoted at {utc(promoted)} and its "
            f"monitoring window ended at {utc(promoted + spec.monitor_seconds)}, "
            f"{duration_words(spec.monitor_seconds, given=True)} later "
            f"(rollout clock), but {why}. Run `progressive_rollout` of {record.image} again, which "
            "checks what is left of the window and closes it (or the weekly `advance_phase` does), then run finalize "
            "again. Nothing was changed"
        )
    raise FinalizeRefused(
        f"{_which(record)} was promoted at {utc(promoted)} and its "
        f"monitoring window is still open ({duration_words(spec.monitor_seconds, given=True)} from then, until "
        f"{utc(promoted + spec.monitor_seconds)}, rollout clock)"
        f"{'' if now is None else on_the_wall(speed, promoted + spec.monitor_seconds, now)}: until it closes, "
        f"{targets.stable_service} keeps the previous version for a cheap rollback. Run finalize again once the "
        "window has passed (`rollway status` then shows a `watched` or `decommission` transition). Nothing was changed"
    )


def _live_hint(live: Weights, targets: Targets) -> str:
    """What the load balancer's weights say when the ledger records no promotion to finalize."""
    service = targets.canary_service
    if live.canary == 100:
        return (f"The `canary` flow keeps no ledger: if {service} carries a version the `canary` flow promoted, "
                f"run {UNRECORDED_AGAIN}")
    if live.canary == 0:
        return (f"The load balancer sends no traffic to {service} ({live} stable/canary): there is no promotion "
                "to finalize, and a new rollout can start as things are")
    # Only called when the ledger holds no open rollout: `rollway abort` refuses such a split.
    return (f"{service} carries {live.canary}% of the traffic ({live} stable/canary): a rollout in progress, not a "
            "promotion (which sends it 100%). The ledger records no open rollout, so it is a `canary` flow run's "
            "(which keeps no ledger) or a change by hand: let that run finish, or cancel it (its hooks roll it back); "
            f"otherwise roll it back with {UNRECORDED_ROLLBACK}")


def _not_promoted_hint(record: RolloutRecord) -> str:
    phase = record.phase
    if phase is RolloutPhase.ROLLING_BACK:
        return "a rollback of it began and is not recorded as finished; finish it first (`rollway abort`)"
    if phase.terminal:  # rolled back
        return "the stable service already serves its traffic, so a new rollout can start as things are"
    if phase is RolloutPhase.PAUSED:
        # Recorded only at the end of a weekly phase that passed: nothing asks for an answer until
        # the next phase starts, so "approve it, `rollway promote`" sent the person to a command
        # that found nothing paused.
        from rollway.reports import between_phases  # rollway.reports imports this module

        holding = between_phases(record) or ("holding between weekly phases until an advance_phase run starts the "
                                             "next one")
        return (f"it is {holding}. Finalize once its last phase has promoted it and its monitoring window has "
                "passed; or roll it back (`rollway abort`)")
    return "finish it (approve it, `rollway promote`) or roll it back (`rollway abort`) first"
