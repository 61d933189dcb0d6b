"""Post-promotion monitoring, then decommission of the old service.

After 100 %, the old (stable) service is still running: this is the window in which a
rollback is cheap. ``monitor`` checks the new version every interval for the configured
window (default one hour, every minute, as the seed's DeploymentMonitor): a 5-minute error
rate over the monitoring guardrail (5 %) rolls back while the old version can still take
the traffic; DLQ messages that arrive during the window and slow responses alert. As a stage's, the window's final verdict
waits until its last period (the one its end falls in) is published
(``metrics_delay_seconds`` after that period's end) and judges it. Only when the window passes cleanly, with
at least half of its checks measured, is the old service scaled to zero; and if a rollback
lands while it is being scaled down, it is scaled back up (the rollback looks again too).
A plan that does not decommission gets the same window, closed in the ledger ("watched")
instead of by a scale-down.

Every ledger write and lease renewal names the rollout being watched: once another rollout is
the service's newest, the monitor stops (``RolloutSuperseded``) instead of judging, owning or
rolling back the newer one.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, ValidationError

from flows.engine import AlertsOnce, canary_targets_if_unattributed
from flows.env import load_session, run_label, run_owner
from flows.artifacts import create_markdown_artifact, for_people
from flows.journal import artifact_key
from flows.params import LeaseSeconds, WindowSeconds
from flows.rollback import (act_recorded, claimant, execute_rollback, over_recorded_rule, record_rollback_end,
                            rollback_waits)
from flows.untraced import without_traceback
from rollway.aws.denied import ROLLOUT_POLICY, named_denials, names_rollout_denials
from rollway.aws.errors import TargetNotFound, answer_lost
from rollway.aws.cloudwatch import window_utc
from rollway.aws.denied import rollout_said
from rollway.aws.ledger import write_or_why
from rollway.bounds import duration_words, whole_minutes, whole_seconds
from rollway.clock import ClockSettings
from rollway.decide import FINAL_READ_RETRIES, FINAL_READ_RETRY_SECONDS, window_settled
from rollway.decommission_page import (DECOMMISSION, PAGE_REFUSED, PAGED, late_message, page_owed,
                                       why_owed)
from rollway.decommission_page import subject as page_subject
from rollway.environment import Environment
from rollway.failure_words import error_said, failures_writable
from rollway.finalize import UNRECORDED_AGAIN, UNRECORDED_ROLLBACK, is_finalized, kept_breach_way_out, reverted_by_hand
from rollway.finalize import START as FINALIZE_START
from rollway.image import with_pin
from rollway.judge.guardrails import check
from rollway.ledger import (BREACH_KEPT, CLAIM_SECONDS, WINDOW_ENDS, check_lease, KeptForTraffic, RolloutClosed,
                            RolloutRecord, LockHeld, Transition, begin_rollback, UnverifiedWindow, WindowClosed, monitoring_left,
                            monitoring_owed, utc)
from rollway.model import Observation, ShiftedRule, Verdict, Weights
from rollway.one_line import shown
from rollway.preflight_checks import dead_letters_unseen
from rollway.phases import Phase, RolloutPhase
from rollway.report import RollbackResult, RolloutResult
from rollway.window_page import BREACH_PAGE, CHECK_DELIVERY, WINDOW_PAGE_REFUSED, PageOutcome, unsent
from rollway.reports import MONITORING_ROLLBACK
from rollway.spec import RolloutSpec, period_retention, window_unreadable
from rollway.targets import Targets
from tasks import ecs, metrics, traffic

# The seed judges the error rate over the last 5 minutes.
RECENT_SECONDS = 300
# The seed's monitoring window: a window started by hand for a rollout whose policy watches none.
ONE_HOUR = 3600.0
# The final look judges the window's last period: a read CloudWatch refused there (throttled, say),
# or that found no request count in it yet (published later than the delay), is tried again as a
# stage's final look is (rollway.decide's FINAL_READ_RETRIES, FINAL_READ_RETRY_SECONDS). All of them
# fit in one period (at least 60 s), so each still reads that period, and finalize's wait for the
# window's close (a period after its settling) covers them.


class MonitorRefused(RuntimeError):
    """The ``monitor`` flow was asked to watch a rollout that is not the service's newest
    promoted one, or through a load balancer, listener, rule or target group that is not found;
    nothing was changed."""


class MonitorResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Literal["decommissioned", "rolled_back", "passed"]
    reason: str
    checks: int
    alerts: tuple[str, ...] = ()
    rollback: RollbackResult | None = None
    verified: bool = True  # False: too few looks counted requests (or read the metrics): the window did not pass cleanly
    # The decommission's page SNS refused, or whose answer was lost (``AnswerLost``: SNS may have
    # delivered it): its subject and SNS's answer (None: sent, or none was due). The window is done
    # and recorded, the page owed (``rollway.decommission_page.PAGE_REFUSED``).
    decommission_page: PageOutcome | None = None
    # The same of the page of a window's end that asks people to act ("Decommission skipped", ...).
    window_page: PageOutcome | None = None

    def pages_unsent(self) -> tuple[PageOutcome, ...]:
        """The pages of the window's end SNS refused or lost the answer to, as typed, never read
        back from the words that say them."""
        return tuple(page for page in (self.decommission_page, self.window_page) if page is not None)


class DecommissionPageRefused(RuntimeError):
    """The `monitor` run's window passed and the old service was decommissioned and recorded, but
    SNS refused the decommission's page (or its answer was lost): the run fails, so that somebody
    sees it, and the page is owed."""


class WindowPageRefused(RuntimeError):
    """The `monitor` run's window ended keeping the old service (or a breach), recorded, but SNS
    refused the page that asks people to act, or its answer was lost: the run fails, so that
    somebody sees it."""


def decommission_page_unsent(page: PageOutcome) -> str:
    """What came of the decommission's page a window owes: not sent (SNS refused it), or not
    known (its answer lost: SNS may have delivered it, and the late page may be a second one)."""
    return unsent("the decommission's page", lost=page.lost)


def after_window(result: RolloutResult, watched: MonitorResult) -> RolloutResult:
    """A promotion's result once its monitoring window is over: rolled back if the window
    rolled it back (or found it rolled back by someone else), otherwise still promoted, and
    said to be unverified when too few of the window's looks counted requests to it (or could read
    the metrics)."""
    if (page := watched.decommission_page) is not None:
        # The run completes (failed, its hooks would act on a release whose window passed): its
        # result says what nobody was told, as the log and `rollway status` do.
        result = result.model_copy(update={"reason": f"{result.reason}; {decommission_page_unsent(page)} and is "
                                                     f"owed: {page.answer}"})
    if watched.outcome != "rolled_back":
        if watched.verified:
            if watched.window_page is not None and result.reason != watched.reason:
                # The window's end ("Decommission skipped": what keeps the old service), which its page,
                # refused, told nobody: the result kept the last stage's reason alone, "promoted". A
                # resumed window's result is that end already.
                result = result.model_copy(update={"reason": f"{result.reason}; {watched.reason}"})
            return result.model_copy(update={"monitoring_verified": True})
        # The page and the monitoring artifact say the window is unverified: so does the result
        # (the `canary` run's summary), which said only "promoted" with the last stage's reason.
        note = f"monitoring window unverified: {watched.reason}"
        reason = note if result.reason == watched.reason else f"{result.reason}; {note}"
        return result.model_copy(update={"reason": reason, "monitoring_verified": False})
    # No rollback of its own: another one (`rollway abort`) closed the rollout first, and the
    # ledger records a rollback's end only once it has read the traffic back on stable.
    weights = watched.rollback.weights if watched.rollback is not None else Weights(stable=100, canary=0)
    return result.model_copy(update={"outcome": "rolled_back", "reason": watched.reason,
                                     "rollback": watched.rollback, "final_weights": weights})


def recent(observation: Observation, seconds: float) -> Observation:
    """The part of an observation inside its last ``seconds``."""
    cutoff = observation.end - seconds
    return observation.model_copy(update={"intervals": tuple(i for i in observation.intervals if i.t > cutoff)})


def _has_period(observation: Observation, end: float) -> bool:
    """Whether a look read a request count for the new version in the period ending at ``end``."""
    return any(i.t == end and i.canary is not None for i in observation.intervals)


def _saw_the_release(observation: Observation) -> bool:
    """Whether a check saw the promoted version's traffic: a request count of more than 0 for it.
    A check that read CloudWatch without error but found none, or a count of 0, measured no error
    rate, and a window of such checks is not a clean one: a count of 0 was taken for a sighting,
    and a window in which the version served nobody decommissioned the old one on no evidence. The
    load balancer's own 5xx alone are not a sighting: with no request count they make no error
    rate (``check_totals``), and if they are the version's, its lack of healthy targets rolls it back."""
    return any(i.canary is not None and i.canary.requests > 0 for i in observation.intervals)


# Named as the rollout flows' runs name theirs: the monitor flow's own window (no rollout run
# around it) failed on AWS's bare refusal (a page or a decommission the role may not make).
@names_rollout_denials
def run_monitor(
    env: Environment,
    spec: RolloutSpec,
    *,
    window_seconds: float = 3600.0,
    decommission: bool = True,
    previous_task_definition: str | None = None,
    stable_desired: int | None = None,
    actor: str = "monitor",
    owner: str | None = None,
    lease_seconds: float = 600.0,
    rollout: str | None = None,
    opened_at: float | None = None,
    pinned_image: str | None = None,
    extra_look: str | None = None,
    only_watches: str | None = None,
    paged_late: bool = False,
    shifted_rule: ShiftedRule | None = None,
) -> MonitorResult:
    """Watch the promoted version for ``window_seconds``; roll back or decommission the old one.

    The last look comes ``spec.analysis.metrics_delay_seconds`` after the end of the period the
    window ends in, once that period is published, so the window's last minute is judged before
    any decommission.

    With an ``owner``, the run holds the rollout's lease while it watches (renewed every
    check), so a second run of the same rollout is refused instead of watching and
    decommissioning alongside it.

    Args:
        actor: the run that looks, as every ledger entry, claim and rollback of the window names
            it: "monitor" for the `monitor` flow, the rollout run's own actor for its window.
        rollout: the id of the promoted rollout watched, named in every ledger write and
            checked before every lease renewal (None: no recorded rollout, nothing is written).
        opened_at: when the window opened (the promotion), for a window resumed after its run
            died: its looks read back to then, not only from the resume, so the periods the dead
            run had not seen yet (its last one, published after the window's end) are judged.
            ``window_seconds`` is then what is left of ``spec.monitor_seconds``, by which the
            window's end names it.
        pinned_image: the digest the promoted revision names (``spec.image`` pinned when the
            rollout started), which a rollback's page names beside the tag.
        extra_look: a window a person started on a rollout that owes none (its window closed, or its
            policy watched none): what its end says of it (an extra look, and why none is owed), or
            None. Its rollback is recorded as the `rollback` flow's run by hand is; an end that keeps
            the old service (unverified, or traffic back on it) records and pages nothing.
        only_watches: why the window only watches, said at its end: the old service was
            decommissioned already (when and by whom), or the window is an extra look started by
            hand on a rollout that owes none and keeps its old service (why it owes none). A
            failing release is rolled back; any other end scales, records and pages nothing.
        paged_late: the decommission's page was owed and went out as the window opened: its end
            then says nothing else was paged.
        shifted_rule: the rule the rollout recorded as its own (``RolloutRecord.shifted_rule``; None:
            none recorded), which a rollback moves the traffic over (``over_recorded_rule``).

    Raises:
        LockHeld: another run holds the rollout's lease (it is watching already).
        RolloutSuperseded: another rollout became the service's newest: this one stops.
    """
    lease = _Lease(env, owner, rollout, lease_seconds)
    # Another run watching (LockHeld) stops this one; a DynamoDB that throttles the claim does
    # not: failing here would have the hook roll back the release just promoted. The run's targets
    # name a refused write's statement (the ledger's, on the run's own table), here and at every
    # write below: without them every statement granting the action was named, the flags' too.
    unclaimed = write_or_why(lease.renew, env.targets)
    if unclaimed is not None:
        get_run_logger().warning("could not claim the rollout's lease to monitor it (%s); watching anyway", unclaimed)
    tally = _Looks()
    try:
        watched = _watch(env, spec, window_seconds=window_seconds, decommission=decommission,
                         previous_task_definition=previous_task_definition, stable_desired=stable_desired,
                         actor=actor, lease=lease, tally=tally, opened_at=opened_at, pinned_image=pinned_image,
                         extra_look=extra_look, only_watches=only_watches, paged_late=paged_late,
                         shifted_rule=shifted_rule)
        _summary(env, spec, watched, pinned_image)
        return watched
    except Exception as err:
        # The artifact's key then showed the window before this one (its "decommissioned", say)
        # as the newest monitoring of the service, while this run had failed.
        _stopped(env, spec, err, pinned_image, tally)
        raise
    finally:
        # A ledger that cannot take the release must not replace the outcome being raised or
        # returned (a RollbackUnrecorded, which tells the hooks the traffic has moved): the
        # lease runs out on its own.
        why = write_or_why(lease.release, env.targets)
        if why is not None:
            get_run_logger().error("could not release the rollout's lease after monitoring: %s", why)


def _summary(env: Environment, spec: RolloutSpec, watched: MonitorResult, pinned_image: str | None) -> None:
    """The window's end as the run's artifact: what people open an hour-long run for. An API
    error here is logged, never raised. Its title names the digest the promoted revision runs
    beside the tag (``pinned_image``), which may name another image by the time it is read."""
    ran = with_pin(spec.image, pinned_image)
    # An unverified window did not pass: "passed (unverified)" titled one in which nothing was measured.
    outcome = watched.outcome.replace('_', ' ') if watched.verified else "unverified"
    lines = [f"# Monitoring of `{ran}` on {env.targets.canary_service}: {outcome}", "", watched.reason, "",
             f"- checks: {watched.checks}"]
    if watched.rollback is not None:
        lines.append(f"- traffic after the rollback (stable/canary): {watched.rollback.weights}")
        if watched.rollback.done_by is not None:
            # Another rollback (`rollway abort`) held the claim and this run waited for it: without
            # its steps the page read as this run's rollback and notice, which it never made.
            lines += [f"- {step}" for step in watched.rollback.steps]
    lines += [f"- alert: {alert}" for alert in watched.alerts]
    if (page := watched.decommission_page) is not None:
        lines.append(f"- {decommission_page_unsent(page)}, and is owed: {page.answer}")
    # After the window's outcome: raised, a refusal would fail the run, and a `canary` run's
    # hooks (no ledger) would roll back a release whose window had passed.
    for_people("monitoring window", lambda: create_markdown_artifact(
        key=artifact_key(env.targets.canary_service, "monitoring"), markdown="\n".join(lines),
        description="monitoring window"))


def _stopped(env: Environment, spec: RolloutSpec, err: Exception, pinned_image: str | None, tally: _Looks) -> None:
    """The run's artifact when the window stopped on an error before its end (another run took
    the rollout, a rollback began, a call failed): what stopped it and how much of the window it
    had watched (``tally``), under the key a finished window's summary (``_summary``) takes.
    Logged, never raised, as that one."""
    lines = [f"# Monitoring of `{with_pin(spec.image, pinned_image)}` on {env.targets.canary_service}: stopped", "",
             f"The run stopped before the window's end: {error_said(err)}", "",
             f"- looks before it stopped: {tally.said()}",
             "- `rollway status` shows where the rollout stands now"]
    for_people("monitoring window", lambda: create_markdown_artifact(
        key=artifact_key(env.targets.canary_service, "monitoring"), markdown="\n".join(lines),
        description="monitoring window"))


class _Looks:
    """The window's looks so far: how many, how many counted requests to the new version, how many
    could not read the metrics. Kept outside ``_watch``, so that a run stopped by an error mid-window
    still says how much of the window it had watched (``_stopped``): without it, a run that died at
    its first look read the same as one that died near the window's end."""

    def __init__(self) -> None:
        self.checks = self.measured = self.failed = 0

    def said(self) -> str:
        """"3, of which 2 counted requests to the new version and 1 could not read the metrics"."""
        if self.checks == 0:
            return "none"
        failed = f" and {self.failed} could not read the metrics" if self.failed else ""
        return f"{self.checks}, of which {self.measured} counted requests to the new version{failed}"


class _Lease:
    """The watched rollout's lease while monitoring; does nothing without an owner or a recorded rollout."""

    def __init__(self, env: Environment, owner: str | None, rollout: str | None, lease_seconds: float) -> None:
        held = owner is not None and rollout is not None and env.ledger is not None
        self.env, self.service, self.seconds = env, env.targets.canary_service, lease_seconds
        self.owner, self.rollout = owner if held else None, rollout

    def renew(self, **changes) -> None:
        """Renew the lease; ``changes``: RolloutRecord fields set in the same write, the history untouched."""
        if self.owner is None:
            return
        # Named, so that the monitor never holds the lease of a rollout that superseded the one it watches.
        self.env.ledger.acquire(self.service, owner=self.owner, now=self.env.clock.now(), lease_seconds=self.seconds,
                                rollout=self.rollout, wall=self.env.wall(), **changes)

    def renew_passed(self) -> None:
        """Renew the lease for a window that passed cleanly, clearing an earlier run's recorded end of
        it left open (``UnverifiedWindow``, ``KeptForTraffic``): status said "unverified: ...; the
        old service is kept" of a window that had passed since, after its decommission or while
        traffic put back on the old service kept it. The run's own end replaces them."""
        self.renew(unverified_window=None, kept_for_traffic=None)

    def release(self) -> None:
        if self.owner is not None:
            self.env.ledger.release(self.service, owner=self.owner)


def _watch(
    env: Environment,
    spec: RolloutSpec,
    *,
    window_seconds: float,
    decommission: bool,
    previous_task_definition: str | None,
    stable_desired: int | None,
    actor: str,
    lease: _Lease,
    tally: _Looks,
    opened_at: float | None = None,
    pinned_image: str | None = None,
    extra_look: str | None = None,
    only_watches: str | None = None,
    paged_late: bool = False,
    shifted_rule: ShiftedRule | None = None,
) -> MonitorResult:
    log = get_run_logger()
    t = env.targets
    interval = spec.analysis.interval_seconds
    start = env.clock.now()
    # Long enough to hold one whole period: a window resumed with little or no time left (the
    # weekly watchdog's, a week on) is judged on what the version does now, not closed unseen
    # nor left open for ever. The final verdict waits for the window's last period to be
    # published (CloudWatch is about a minute late), as a stage's does: a look at the window's
    # end would not see it, and a regression in the last minute before the decommission would
    # go unjudged.
    settled = window_settled(start, window_seconds, spec.analysis)
    last_period = settled - spec.analysis.metrics_delay_seconds  # the end of the window's last period
    # Periods before the promotion are the last stage's, judged there; those since are the window's.
    since = start if opened_at is None else min(start, opened_at)
    # Each look in the log is placed in the whole window: a resumed one's "at 120 of 660 s" counted
    # from the resume, while its result and pages say "(resumed 5 minutes after the promotion)".
    # A window of days is placed in days, hours and minutes: "at 345600 of 604860 s" had on-call dividing.
    days = settled - since >= 24 * 3600
    unit = "" if days else " s"

    def at(seconds: float) -> str:
        return duration_words(whole_minutes(seconds)) if days else str(whole_seconds(seconds))

    placed = (lambda now: f"at {at(now - start)} of {at(settled - start)}{unit}") if since == start else (
        lambda now: f"at {at(now - since)} of {at(settled - since)}{unit} of the window, resumed at "
                    f"{at(start - since)}{unit}")
    alerted = AlertsOnce()
    # Each dead-letter queue's depth in the window's first period: an alert counts what arrived
    # since (a 5-minute look alone would count only its own minutes, and a DLQ that held messages
    # before the promotion is no news about this release). SQS's readings reach CloudWatch late,
    # and a missing one reads as an idle, empty queue: taken at the first look with a whole
    # period, the depth was often 0, and everything the queue held was announced as new. So it
    # is taken again at every look that still reads from the window's opening (the first minutes),
    # each seeing what has been published since, and read once more from the opening if none of
    # them came after the first period's metrics delay (long periods; a window resumed after its
    # run died, whose looks start later: what arrived while nobody watched is counted).
    first_period_end = math.ceil(since / interval) * interval + interval
    dlq_before: dict[str, int | None] | None = None
    dlq_settled = False  # whether dlq_before was read once the first period had been published
    failure: str | None = None  # the last failed read, named in an unverified window's message
    # Periods longer than 5 minutes: a look's newest published period may have ended up to one
    # period and the publication delay ago (every look sits at the same offset in its period),
    # and a 5-minute cut would leave every look of the window empty.
    recent_seconds = max(RECENT_SECONDS, interval + spec.analysis.metrics_delay_seconds)
    # Every period of the window ending by then was judged by a look made once it was published.
    # The looks read only their last few minutes: periods older than that which no look judged (a
    # resumed window's, from its opening, while the dead run's lease kept this run out; those of a
    # stretch in which every read failed) are read and judged at the next look that can read: a
    # breach of the guardrail in them (the window's last minute, say) went unjudged, and the old
    # service was decommissioned under it.
    judged_to = since
    # CloudWatch answers a read of periods older than it keeps them with no data: the periods no look
    # judged that it keeps no more (a window resumed that late) read as minutes that served nobody,
    # and the window passed on the rest. They are named instead, and the window does not pass.
    kept_for, kept_said = period_retention(interval)
    expired: tuple[float, float] | None = None
    # Past it, periods are no longer the window's (a week-late resume reads no week of minutes).
    window_last = _window_last(spec, window_seconds, since, start) + recent_seconds
    retried = 0  # the final look's reads tried again
    final: tuple[int, int, int] | None = None  # the tally before the final look, which each retry replaces
    while True:
        if final is not None:
            # A retry is the final look again, not one more look: counted once, as its last try went.
            tally.checks, tally.measured, tally.failed = final
        before = (tally.checks, tally.measured, tally.failed)
        now = env.clock.now()
        look_from = max(since, now - recent_seconds - interval)
        observation = metrics.observe(env.metrics, look_from, now)
        # Until a period of the window has had time to be published (CloudWatch is about a
        # minute late), a look that finds nothing is early, not blind: it may alert (dead
        # letters) or roll back, but the window's verdict counts it only if it saw data. Counted
        # from the window's opening: a resumed window's periods were published long ago.
        early = now - since <= interval + spec.analysis.metrics_delay_seconds
        # The window's periods no look had judged that this look could not read: (from, to, why), or None.
        unjudged: tuple[float, float, str] | None = None
        # Whether this look's read went through or not: a failed one named them among the minutes
        # its final look "could not read", sending people to mend CloudWatch and look again for
        # minutes no read can bring back.
        kept_from = math.ceil((now - kept_for) / interval) * interval
        if now - recent_seconds > judged_to and judged_to < min(kept_from, window_last):
            lost_to = min(kept_from, window_last)
            expired = (judged_to if expired is None else expired[0], lost_to)
            log.warning("the window's periods %s, which no look has judged, cannot be read any more (CloudWatch "
                        "keeps %s): they are not judged, and the window cannot pass cleanly",
                        window_utc(expired[0], lost_to), kept_said)
            judged_to = lost_to
        if observation.error is None:
            missed = None
            published = math.floor((now - spec.analysis.metrics_delay_seconds) / interval) * interval
            if now - recent_seconds > judged_to and judged_to < window_last:
                # From a stretch earlier, for the context of the first period not judged.
                caught = metrics.observe(env.metrics, max(since, judged_to - recent_seconds), min(now, window_last))
                if caught.error is None:
                    missed = _first_breach(spec, caught, recent_seconds, after=judged_to, resumed_at=start)
                    opening = judged_to == since and now >= first_period_end + spec.analysis.metrics_delay_seconds
                    if not dlq_settled and opening:
                        # The same read gives each dead-letter queue's depth when the window opened.
                        dlq_before, dlq_settled = {d.queue: d.first for d in caught.dead_letters}, True
                else:
                    unjudged = (judged_to, min(now, window_last), caught.error)
                    log.warning("could not read the window's periods from %s on, which no look has judged (%s); "
                                "reading them again at the next look", utc(judged_to), caught.error)
            if unjudged is None:
                judged_to = max(judged_to, published)
            if look_from == since:
                # A queue with no reading yet has no depth known before (None): SQS publishes nothing
                # for one idle for hours, empty or holding old failures, and its first reading would
                # be announced whole as new dead letters.
                dlq_before = {d.queue: d.first for d in observation.dead_letters}
                dlq_settled = now >= first_period_end + spec.analysis.metrics_delay_seconds
            elif not dlq_settled:
                # Long periods: the looks from the opening all came before its first period was
                # published. Resumed: none of this run's looks read from the opening.
                read = _dead_letters_in(env, since, first_period_end)
                if read is not None:
                    dlq_before, dlq_settled = read, True
            seen = recent(observation, recent_seconds)
            if dlq_before is not None:
                seen = seen.model_copy(update={"dead_letters": tuple(
                    d.model_copy(update={"first": dlq_before.get(d.queue)}) for d in observation.dead_letters)})
            saw = _saw_the_release(seen)
            if saw:
                tally.checks, tally.measured = tally.checks + 1, tally.measured + 1
            elif not early:
                tally.checks += 1
                log.warning("monitoring check saw no request count for %s: no data", t.canary_service)
            healthy = canary_targets_if_unattributed(env, seen, monitoring=True, seconds=spec.verify_timeout_seconds)
            verdict = check(spec.guardrails, seen, monitoring=True, healthy_targets=healthy)
            if missed is not None and verdict.phase is not Phase.FAILED:
                # The breach decides; the look's own alerts (dead letters, slow responses) are still
                # news, paged and kept beside its own: replaced with it, they were never sent.
                verdict = missed.model_copy(update={"alerts": missed.alerts + tuple(
                    a for a in verdict.alerts if a not in missed.alerts)})
            for message in alerted.new(verdict):
                metrics.alert(env.notifier, f"Alert: {t.canary_service}", f"While monitoring {spec.image}: {message}",
                              targets=t)
            if verdict.phase is not Phase.FAILED:
                # A window lasts an hour: each look shows in the run's log, with what it read.
                log.info("monitoring check %s (%d of %d looks counted requests to %s): %s", placed(now),
                         tally.measured, tally.checks, t.canary_service, _look_said(saw, early, seen, verdict.reason, interval))
            if verdict.phase is Phase.FAILED:
                reason = f"{MONITORING_ROLLBACK}{verdict.reason}"
                log.warning(reason)
                holder = claimant(actor)
                # The ledger never stops the rollback: a write DynamoDB refuses fails the run after it.
                try:
                    result = act_recorded(
                        env, lambda ledger_failure: execute_rollback(
                            over_recorded_rule(env, shifted_rule), reason, actor=actor,
                            previous_task_definition=previous_task_definition,
                            stable_desired=stable_desired, bindings=spec.flags, ledger_failure=ledger_failure,
                            rollout=lease.rollout, image=with_pin(spec.image, pinned_image),
                            # The rollout's own waits, as its stages' rollbacks take: a window after a
                            # decommission scales the stable service back up from 0.
                            **rollback_waits(spec),
                            # The `canary` flow watches with no ledger: `rollway abort` has nothing of it.
                            ledgered=env.ledger is not None and lease.rollout is not None,
                        ),
                        begin=lambda: _begin_rollback(env, lease.rollout, reason, holder, actor,
                                                       by_hand=extra_look is not None),
                        # Written as every rollback's end is (the weights it read back, which the
                        # reports read), and not on a rollout another rollback ended meanwhile.
                        finish=lambda done: _record_end(env, lease.rollout, reason, done, actor),
                        phase=RolloutPhase.PROMOTED, claim_rollout=lease.rollout, holder=holder,
                    )
                except RolloutClosed as closed:
                    # `rollway abort` finished its rollback since this check's lease renewal:
                    # the release is rolled back already; acting again would only page twice.
                    # Its end says both: the other rollback alone lost why this window wanted one.
                    if isinstance(closed, WindowClosed):
                        # Closed by another run's end of the window, not by a rollback: the release
                        # is production and nothing moved. "rolled_back" (100/0 in the result) said
                        # the opposite of what the traffic does.
                        return _breach_kept(env, f"{reason}; not rolled back: {closed.window or closed}. The release "
                                                 "stays in production", tally.checks, alerted.messages(), lease.rollout,
                                            actor)
                    # Its words quote who rolled back and their comment (`rollway abort --reason`).
                    ended = shown(str(closed), keep="")
                    log.info("not rolling back: %s", ended)
                    return MonitorResult(outcome="rolled_back", checks=tally.checks, alerts=alerted.messages(),
                                         reason=f"{reason}; not rolled back by this run: {ended}")
                return MonitorResult(outcome="rolled_back", reason=reason, checks=tally.checks,
                                     alerts=alerted.messages(), rollback=result)
        else:
            tally.checks, tally.failed = tally.checks + 1, tally.failed + 1
            failure = observation.error
            # Not past the window's own end: resumed days after it, the final look's period is the
            # resume's, and the range ran to it, days of minutes called "the window's periods".
            unread_to = min(last_period, window_last)
            if now >= settled and judged_to < unread_to - interval:
                # The final look judges every period no look has judged, not only the window's last:
                # unread, they are all named (its end said "the window's last period" of a stretch
                # of minutes that went unjudged, in which a breach had rolled nothing back).
                unjudged = (judged_to, unread_to, observation.error)
            # "monitoring check failed" read as the window failing (or the check crashing): say
            # what a look that read nothing leaves unjudged, and what it does to the window.
            log.warning("monitoring check %s could not read the metrics (%s): no error rate was measured, so this "
                        "look could not roll a failing release back; it counts against the window, which passes "
                        "cleanly only if at least half of its looks measured one", placed(now), observation.error)
        if now >= settled and (retried == FINAL_READ_RETRIES or (
                observation.error is None and unjudged is None
                and _has_period(observation, settled - spec.analysis.metrics_delay_seconds))):
            break
        if now >= settled:
            # The window's last period is unjudged until a read succeeds and finds it (CloudWatch
            # is at times later than the delay): passing on the looks before it scaled the old
            # service to zero under a release nobody saw finish. Still without a request count
            # after the retries, that period served nobody, or nothing says otherwise. So are the
            # periods no look judged (a resumed window's, a stretch of failed reads) until read:
            # no look comes after the final one to read them.
            retried, final = retried + 1, final or before
        # To the next look from this one's start, not from its end: a slow read (up to its 15-s
        # bound) put that much more between the looks and took the last past the window's end.
        next_look = now + FINAL_READ_RETRY_SECONDS if now >= settled else min(now + interval, settled)
        env.clock.sleep(max(0.0, next_look - env.clock.now()))
        # A run that went silent past its lease loses the rollout here (LockHeld). A renewal
        # DynamoDB throttled is not that: the watch goes on, since failing the run would have
        # its hook roll back a release whose window is passing cleanly.
        unrenewed = write_or_why(lease.renew, t)
        if unrenewed is not None:
            log.warning("could not renew the rollout's lease while monitoring (%s); watching on", unrenewed)

    # A resumed window is the policy's whole window from the promotion: named by what was left,
    # it "passed 0 minutes of monitoring" in the result, the ledger and the page. Said to be
    # resumed: this run watched only its end.
    resumed = ""
    if opened_at is not None and spec.monitor_seconds > 0:
        window_seconds = spec.monitor_seconds
        resumed = f" (resumed {duration_words(whole_minutes(start - opened_at))} after the promotion)"
    verified, reason, counted = _window_said(f"{duration_words(window_seconds)} of monitoring", resumed,
                                             tally.measured, tally.checks, tally.failed, failure,
                                             last_unread=observation.error is not None and unjudged is None,
                                             unjudged=unjudged,
                                             expired=None if expired is None else (*expired, f"CloudWatch keeps "
                                                                                             f"{kept_said}"))
    if verified and not _has_period(observation, last_period):
        # Passed on the looks before it (nothing says that period served anyone): said so in the
        # result, the ledger and the page, which read as if the window's last minute had been judged.
        unseen = (f"; its last period ({window_utc(last_period - interval, last_period)}) had no request count for "
                  f"the new version in the final look's {retried + 1} read{'s' if retried else ''}, so it was not "
                  "judged")
        reason, counted = reason + unseen, counted + unseen
    alerts = alerted.messages()
    if only_watches is not None:
        return _watched_only(reason, verified, only_watches, alerts, tally.checks, paged_late=paged_late)
    if not verified and extra_look is not None:
        # An extra look leaves nothing open: the rollout's own window closed (or was never owed),
        # so no run looks again and nobody need act. "Decommission skipped ... run the monitor
        # again" paged people as if that window had been left open. Paged nothing, as its clean
        # end on a plan that keeps the old service is: an extra look pages only what it changes
        # (a rollback, a decommission); the person who started it reads its end in the run.
        return _watched_only(reason, verified, extra_look, alerts, tally.checks)
    if not verified:
        # A window nobody could see is not a clean window: the old service stays for a person,
        # and the rollout's window, if it owes one, stays open (the watchdog or the monitor flow
        # checks again).
        # A window of no recorded rollout (the `canary` flow's) cannot be watched again: the
        # monitor flow refuses a rollout the ledger does not hold, as `rollway abort` does.
        then = ("run the monitor again" if lease.rollout is not None else
                f"check the metrics, then finalize it with {UNRECORDED_AGAIN}; or roll it back with {UNRECORDED_ROLLBACK}")
        seen = UnverifiedWindow(at=env.clock.now(), actor=actor, counted=tally.measured, looks=tally.checks,
                                failed=tally.failed, owner=lease.owner, stable_service=t.stable_service,
                                # Why the old service was kept though most looks may have measured the release,
                                # and which minutes nobody judged: status said only the look counts. The
                                # periods the final look could not read, or else its last one, unread...
                                last_unread=unjudged[2] if unjudged is not None else
                                failure if observation.error is not None else None,
                                unjudged_from=None if unjudged is None else unjudged[0],
                                unjudged_to=None if unjudged is None else unjudged[1],
                                # ...and apart from them those CloudWatch kept no more, which no look could read.
                                aged_out=None if expired is None else kept_said,
                                aged_out_from=None if expired is None else expired[0],
                                aged_out_to=None if expired is None else expired[1])
        _record_open_end(lease, t, "how many looks counted requests", unverified_window=seen,
                         kept_for_traffic=None)
        return _skip(env, f"{reason} ({t.stable_service} kept running; {then})", tally.checks, alerts,
                     subject="Monitoring unverified" if not decommission else "Decommission skipped", verified=False,
                     rollout=lease.rollout, actor=actor)
    if not decommission:
        return _watched(env, reason, _passed(spec, window_seconds, counted, resumed), tally.checks, alerts, lease,
                        actor)
    # Claim the rollout again right before acting: a rollback begun since the last check
    # raises RolloutEnded here, and nothing is scaled down. Unable to claim it (the ledger
    # cannot be reached), nothing is scaled down either; the window stays open. The claim clears
    # an earlier run's recorded open end (``_Lease.renew_passed``).
    unclaimed = write_or_why(lease.renew_passed, t)
    if unclaimed is not None:
        return _not_decommissioned(env, f"{reason}, but the ledger could not be reached to claim the rollout "
                                        f"({unclaimed}): {t.stable_service} kept running, not decommissioned",
                                   "; run the monitor again", tally.checks, alerts, extra_look, lease.rollout, actor,
                                   look_again="once the ledger answers")
    live = traffic.weights_within(env.router, spec.verify_timeout_seconds)
    if live.stable > 0:
        # Someone moved traffic back by hand (or the spec never reached 100%): scaling the old
        # service to zero now would drop that share of requests.
        # The window stays open (a finalize waits for its end; the weekly tick watches again and
        # skips again): said what ends it, which "not decommissioned" alone did not. Only a
        # recorded rollout decommissions (the `canary` flow's window never does). An extra look
        # leaves nothing open: it records no such end.
        if extra_look is None:
            kept = KeptForTraffic(at=env.clock.now(), actor=actor, stable=live.stable, owner=lease.owner,
                                  stable_service=t.stable_service)
            _record_open_end(lease, t, f"that the window kept {t.stable_service} for its traffic",
                             kept_for_traffic=kept)
        return _not_decommissioned(env, f"{reason}, but {t.stable_service} still carries {live.stable}% of traffic: "
                                        "not decommissioned",
                                   f"; put all of it back on {t.canary_service} and run the monitor again, or roll "
                                   "the release back with `rollway abort`", tally.checks, alerts, extra_look,
                                   lease.rollout, actor)
    before = ecs.describe_service(env.deployer, t.stable_service)
    ecs.update_service(env.deployer, t.stable_service, desired=0)
    # A rollback may have landed between the claim and the scale-down. Look again now: either
    # this sees it, or the rollback (which looks at the stable service after moving traffic)
    # sees the scale-down; whichever sees the other puts the old service back.
    try:
        raced = _rollback_since(env, spec.verify_timeout_seconds)
    except Exception as err:  # noqa: BLE001 - not knowing, the old service goes back up whatever the cause
        # Raised, it failed the run with the old service at 0, nothing recorded and nobody paged;
        # a rollback that had landed sent its traffic to no tasks. Scaling it back loses nothing:
        # the window stays open, and the next run decommissions it.
        ecs.update_service(env.deployer, t.stable_service, desired=before.desired)
        return _not_decommissioned(env, f"{reason}, but whether a rollback began while {t.stable_service} was being "
                                        f"scaled down could not be read ({err}): {t.stable_service} scaled back to "
                                        f"{before.desired}, not decommissioned", "; run the monitor again",
                                   tally.checks, alerts, extra_look, lease.rollout, actor, scaled_back=True,
                                   look_again="once the load balancer answers")
    if raced:
        ecs.update_service(env.deployer, t.stable_service, desired=before.desired)
        return _not_decommissioned(env, f"{reason}, but {raced} while it was being scaled down: {t.stable_service} "
                                        f"scaled back to {before.desired}, not decommissioned", "", tally.checks,
                                   alerts, extra_look, lease.rollout, actor, scaled_back=True)
    # Done is done: a record DynamoDB refuses now must not fail the run (its hook would roll the
    # release back). The window stays open in the ledger; the next look finds the old service
    # at 0 already and records it.
    # Stamped on the wall clock: a late page says when, and the stamp marks a decommission whose
    # page is tracked (``rollway.decommission_page``).
    unrecorded = write_or_why(lambda: _record(env, lease.rollout, DECOMMISSION,
                                              f"{reason}; {t.stable_service} scaled to 0", wall=env.wall(),
                                              actor=actor), t)
    if unrecorded is not None:
        log.error("the ledger could not record the decommission: %s", unrecorded)
    # A run that dies here leaves the page owed: the next run that looks at the rollout sends it
    # late (``send_owed_decommission_page``). One SNS refuses leaves it owed too, with SNS's answer
    # recorded: raised, it failed the run as if the window had not been watched (and a rollout
    # run's hooks then acted on a release whose window had passed).
    sent = _send_page(
        env, page_subject(t.stable_service),
        f"{_passed(spec, window_seconds, counted, resumed)}; {t.stable_service} is scaled to 0."
        + (f" The ledger could not record it ({unrecorded}): run the monitor again to close the window."
           if unrecorded else ""),
    )
    if isinstance(sent, PageOutcome):
        # Its answer lost, SNS may have delivered it: the page stays owed all the same (at least once).
        log.error("%s was decommissioned, but %s: %s; the next run that looks at the rollout sends it late%s",
                  t.stable_service, _unsent(sent), sent.answer, _AGAIN if sent.lost else "")
        if unrecorded is None:
            _record_refused(env, lease.rollout, sent, actor=actor)
        return MonitorResult(outcome="decommissioned", reason=reason, checks=tally.checks, alerts=alerts,
                             decommission_page=sent)
    if unrecorded is None:
        _record_paged(env, lease.rollout, sent, actor=actor)
    return MonitorResult(outcome="decommissioned", reason=reason, checks=tally.checks, alerts=alerts)


def _breach_kept(env: Environment, said: str, checks: int, alerts: tuple[str, ...], rollout: str | None,
                 actor: str) -> MonitorResult:
    """A look saw the guardrail breached, but the rollback was refused because another run had
    closed the window meanwhile (``WindowClosed``): nothing moved, and the release that breached
    stays in production (``said``: the breach and the refusal). Said only in the run's log, nobody
    learnt it: it is recorded on the rollout (``BREACH_KEPT``, which `rollway status` and the report
    show) and paged, as a window's other ends that ask people to act are (``_skip``: a page SNS
    refuses is said in the result and the log). A write DynamoDB refuses is logged, and said in the page.

    The entry holds the facts alone: each reader (status, the report, finalize, promote) says what
    takes the release out from the rollout as it stands when read; a way out written into the entry
    went stale once a finalize ran. The page says it from a read after the write
    (``kept_breach_way_out``): a finalize begun before the breach was recorded (after another run
    closed the window cleanly) may have put the release on the stable service, and "run the
    `rollback` flow" would then move the traffic onto it."""
    unrecorded = write_or_why(lambda: _record(env, rollout, BREACH_KEPT, said, wall=env.wall(), actor=actor),
                              env.targets)
    written, unread = _rollout_read(env, rollout)
    if unrecorded is not None:
        get_run_logger().error("the ledger could not record the breach left in production: %s", unrecorded)
        if written is not None:
            # Worded as if recorded: it came after whatever finalize the rollout holds.
            written = written.model_copy(update={"history": (*written.history, Transition(
                at=env.clock.now(), kind=BREACH_KEPT, actor=actor))})
    page = f"{said}; {kept_breach_way_out(written, unread=unread)}"
    if unrecorded is not None:
        page += f" (the ledger could not record it: {unrecorded})"
    return _skip(env, page, checks, alerts, subject=BREACH_PAGE, service=env.targets.canary_service,
                 verified=False, rollout=rollout, actor=actor)


def _rollout_read(env: Environment, rollout: str | None) -> tuple[RolloutRecord | None, str | None]:
    """The watched rollout as the ledger has it, or why it could not be read: (None, None) with no
    ledger (the `canary` flow's) or no rollout watched. Read only for the words of a page: any
    failure is said in them, never fails the run that pages a breach left in production."""
    if env.ledger is None or rollout is None:
        return None, None
    try:
        return env.ledger.get(env.targets.canary_service), None
    except Exception as err:  # noqa: BLE001 - said in the page; the page itself matters more
        get_run_logger().warning("could not read the rollout to say what takes the breach out: %s", error_said(err))
        return None, error_said(err)


def _record_open_end(lease: _Lease, targets: Targets, what: str, **end) -> None:
    """Record how the window ended with the old service kept (``end``: an ``UnverifiedWindow`` or a
    ``KeptForTraffic``, each replacing the other) beside the history, for `rollway status` and the
    report: the run wrote nothing else, and status could only say "no run closed it (the run
    watching it stopped, or ...)". Written through the lease, as the decommission's claim is: a
    rollback begun since the last look raises RolloutEnded here. A DynamoDB that refuses it loses
    only this record (``what`` it said, logged): the old service runs and the window stays open.

    Never of an extra look (``_watch``'s ``extra_look``), which ends before it: the rollout's own
    window is closed (or its policy watched none), so nothing is left open, and the readers
    (``owed_unverified``, ``owed_kept``) take no such record of it."""
    unrecorded = write_or_why(lambda: lease.renew(**end), targets)
    if unrecorded is not None:
        get_run_logger().error("the ledger could not record %s: %s", what, unrecorded)


def _look_said(saw: bool, early: bool, seen: Observation, reason: str, interval: float) -> str:
    """What a look read, for the log. With no request count and no load-balancer 5xx the guardrail
    has nothing to take a rate over, and its "canary error rate 0.00% within the 5% guardrail" read
    as a healthy measurement: the look says it measured nothing, and what that does to the window.
    A look that counted requests says over how many, and which periods (``interval`` long): its
    rate read the same over 3 requests as over 15,000, and said nothing of how late CloudWatch was.
    The 5xx the load balancer answered itself are named too: the monitoring rate is taken over them
    as well (``check_totals``), and the new version's figures alone made another rate."""
    if saw:
        counted = [i.t for i in seen.intervals if i.canary is not None]
        totals, unserved = seen.totals("canary"), seen.unserved()
        itself = f", and {unserved:,} the load balancer answered 5xx itself" if unserved else ""
        return (f"{reason} (over {totals.requests:,} request{'s' if totals.requests != 1 else ''} to the new version, "
                f"{totals.errors:,} answered 5xx by it{itself}, in {len(counted)} "
                f"period{'s' if len(counted) != 1 else ''}, {window_utc(counted[0] - interval, counted[-1])})")
    if seen.unserved():
        return f"no request count in this look; {reason}"
    nothing = "no requests were counted in this look, so no error rate was measured"
    if early:
        return (f"{nothing} (the window's first period may not be published yet: this look does not count against "
                "the window)")
    return (f"{nothing}: it counts against the window, which passes cleanly only if at least half of its looks "
            "measured one")


def _window_said(watched: str, resumed: str, measured: int, checks: int, failed: int,
                 failure: str | None, *, last_unread: bool = False,
                 unjudged: tuple[float, float, str] | None = None,
                 expired: tuple[float, float, str] | None = None) -> tuple[bool, str, str]:
    """Whether the window passed cleanly (at least half of its looks counted requests to the new
    version, and so measured an error rate), and how its end says so: in the result, the ledger's
    closing entry and the page. "Passed" alone read as a watched, healthy window when looks had
    counted no requests, or none had: a night in which the new version served nobody. The third
    part is what a clean window's pages add to "passed": how many of its looks counted requests,
    when some did not ("" when all did), in the ledger's words.

    ``watched``: "60 minutes of monitoring"; ``resumed``: what a resumed window adds to it;
    ``failed``: looks whose read failed, the last of them ``failure`` (named: running the monitor
    again only helps once what refused the reads is mended). ``last_unread``: the final look, which
    judges the window's last period, could not read it (``failure`` says why), however often it
    tried: the window does not pass cleanly, whatever the looks before it measured. ``unjudged``:
    the same of the window's periods no look had judged, which the final look could not read: (from,
    to, why). ``expired``: the window's periods no look had judged that CloudWatch keeps no more
    (a window resumed that late): (from, to, how long it keeps them): not judged either."""
    verified = measured > 0 and 2 * measured >= checks
    lost = "" if expired is None else (
        f"the window's periods from {utc(expired[0])} to {utc(expired[1])}, which no look had judged, could not be "
        f"read any more ({expired[2]}), so they were not judged")
    why = f"; the last failed read: {failure}" if failure else ""
    unread = (f"last period ({failure}, {FINAL_READ_RETRIES + 1} tries), so that period was" if last_unread else
              f"periods from {utc(unjudged[0])} to {utc(unjudged[1])}, which no look had judged ({unjudged[2]}, "
              f"{FINAL_READ_RETRIES + 1} tries), so they were" if unjudged is not None else None)
    if unread is not None:
        return False, (f"{watched}{resumed} did not pass cleanly: its final look could not read the metrics of the "
                       f"window's {unread} not judged{'; ' if lost else ''}{lost}; {measured} of its {checks} looks "
                       "counted requests to the new version"), ""
    if lost:
        return False, (f"{watched}{resumed} did not pass cleanly: {lost}; {measured} of its {checks} looks counted "
                       "requests to the new version"), ""
    if measured == 0 and failed == 0:
        return False, (f"{watched}{resumed}: the new version served no requests during its monitoring window: nothing "
                       f"was measured (none of its {checks} looks counted a request to it)"), ""
    quiet = checks - measured - failed
    others = ", ".join(part for part in (f"{quiet} counted no requests" if quiet else "",
                                         f"{failed} could not read the metrics" if failed else "") if part)
    if verified:
        counted = "" if measured == checks else (f"; {measured} of its {checks} looks counted requests to the new "
                                                 f"version; no error rate was measured in the others ({others})")
        counted += why if counted else ""
        return True, f"{watched} passed{resumed}{counted}", counted
    # Not "passed, but only ...": the page of a window throttled most of the time opened on "passed".
    return False, (f"{watched}{resumed} did not pass cleanly: only {measured} of its {checks} looks counted requests to "
                   f"the new version, too few (at least half must); no error rate was measured in the others "
                   f"({others}){why}"), ""


def _passed(spec: RolloutSpec, window_seconds: float, counted: str, resumed: str) -> str:
    """How a clean window's page ("Old version decommissioned", "Monitoring passed") opens: what
    passed, ``resumed`` (a resumed window's "(resumed 30 minutes after the promotion)") and
    ``counted`` (``_window_said``), as the result and the ledger say them. The pages said "passed 30
    minutes of monitoring at 100%" when a third of the looks had counted no requests, or when this
    run watched only the end of a window another run had watched until it died."""
    return f"{spec.image} passed {duration_words(window_seconds)} of monitoring at 100%{resumed}{counted}"


def _window_last(spec: RolloutSpec, window_seconds: float, since: float, start: float) -> float:
    """The end of a window's last period: opened at ``since``, watched from ``start`` for
    ``window_seconds`` (a resumed one's whole length is the policy's)."""
    whole = spec.monitor_seconds if since < start and spec.monitor_seconds > 0 else start - since + window_seconds
    period = spec.analysis.interval_seconds
    return math.ceil((since + max(whole, 2 * period)) / period) * period


def _first_breach(spec: RolloutSpec, look: Observation, span: float, *, after: float,
                  resumed_at: float) -> Verdict | None:
    """The first stretch of ``span`` seconds (the guardrail's: 5 minutes), ending at one of
    ``look``'s periods ending ``after`` or later, whose error rate is over the monitoring
    guardrail, as a FAILED verdict saying which minutes and why no look judged them then (no run
    watched them: the window was resumed at ``resumed_at``; or the looks could not read them), or None.

    Judged as a look judges its own stretch, less what only now can say: no dead-letter depths (the
    looks count those from the opening already) and no healthy targets (those of now do not say
    whose the load balancer's 5xx were then; with no request count those never roll back)."""
    periods, first = look.intervals, 0
    for last, end in enumerate(periods):
        while periods[first].t <= end.t - span:
            first += 1
        if end.t <= after:
            continue
        stretch = Observation(start=end.t - span, end=end.t, intervals=periods[first:last + 1])
        verdict = check(spec.guardrails, stretch, monitoring=True)
        if verdict.phase is Phase.FAILED:
            why = (f"no run watched the window then: this run resumed it at {utc(resumed_at)}" if end.t <= resumed_at
                   else "the looks could not read the metrics then")
            return verdict.model_copy(update={"reason": (
                f"{verdict.reason}, in the {duration_words(span)} to {utc(end.t)}, which no look judged ({why})")})
    return None


def _dead_letters_in(env: Environment, since: float, first_end: float) -> dict[str, int | None] | None:
    """Each dead-letter queue's depth in the window's first period (one read; None for a queue
    with no reading from before it: unknown), or None when the read failed: the next look reads
    it again, and until then the look's alert counts from the look's own first period."""
    look = metrics.observe(env.metrics, since, first_end)
    if look.error is not None:
        get_run_logger().warning("could not read the dead-letter queues' depth when the window opened (%s); "
                                 "reading it again at the next look", look.error)
        return None
    return {d.queue: d.first for d in look.dead_letters}


def _skip(env: Environment, reason: str, checks: int, alerts: tuple[str, ...], *, rollout: str | None, actor: str,
          subject: str = "Decommission skipped", service: str | None = None, verified: bool = True) -> MonitorResult:
    """The window is over but the old service stays: say why, to the log and to people. Unlike
    "Monitoring passed", this page asks people to act (a window nobody could see, an old service
    kept): refused, it is said as an error naming SNS's answer (the statement that grants the
    publish, for a refused permission), and in the result, the run's artifact and log. It does not
    fail the run: a rollout run's hooks then rolled back a release no look had found failing,
    because a page could not be sent. ``service``: the one the subject names (None: the old
    service, which the window kept).

    ``reason`` is escaped (``shown``) for all of them: it quotes people's names and comments (who
    promoted, who began a finalize), and a right-to-left override in a name reordered the page and
    the log line after it, a line break in a comment wrote a line of its own in the run's log."""
    reason = shown(reason, keep="")
    log = get_run_logger()
    log.warning(reason)
    subject = f"{subject}: {service or env.targets.stable_service}"
    sent = _send_page(env, subject, reason)
    page = sent if isinstance(sent, PageOutcome) else None
    if page is not None:
        if page.lost:
            # Sent, and SNS's answer lost: it may have delivered the page, and "nobody was told" sent
            # people to mend a topic that works while they may have been paged.
            log.error("%s: %s; %s", _unsent(page), page.answer, CHECK_DELIVERY)
            reason = f"{reason}; {_unsent(page)}: {page.answer}; {CHECK_DELIVERY}"
        else:
            log.error("the \"%s\" page was not sent, nobody was told of it: %s", subject, page.answer)
            reason = f"{reason}; its \"{subject}\" page was NOT sent, nobody was told: {page.answer}"
        # Said only in the log and the result, a Completed run hid it from whoever looks at the
        # rollout: recorded, `rollway status` and the report say it. A write refused (the ledger,
        # or a rollout superseded meanwhile) is logged: raised, it failed the run after all.
        comment = page.said()
        try:
            why = write_or_why(lambda: _record(env, rollout, WINDOW_PAGE_REFUSED, comment, wall=env.wall(),
                                               actor=actor), env.targets)
        except Exception as err:  # noqa: BLE001 - the window's end is decided; this record only says it
            why = error_said(err)
        if why is not None:
            log.error("the ledger could not record what came of the \"%s\" page: %s", subject, why)
    return MonitorResult(outcome="passed", reason=reason, checks=checks, alerts=alerts, verified=verified,
                         window_page=page)


def _not_decommissioned(env: Environment, said: str, then: str, checks: int, alerts: tuple[str, ...],
                        extra_look: str | None, rollout: str | None, actor: str, *, scaled_back: bool = False,
                        look_again: str = "") -> MonitorResult:
    """A clean window whose decommission did not happen (``said``: why, and what the old service
    runs): the rollout's own window stays open, so people are paged "Decommission skipped" with
    ``then`` (what to do). An extra look (``extra_look``: why none is owed) leaves nothing open and
    nothing owed: the old service runs as before the look, and a rollback that raced the scale-down
    pages for itself, so it pages nobody ("run the monitor again" paged people for a look nobody
    owed) and says it in its result, artifact and log, for the person who started it, as a warning:
    said at INFO among the looks' lines, it was missed, and with nothing owed no run comes back to
    the old service, whose tasks run on at 0 % of traffic. ``look_again``: when a decommission
    interrupted by something passing (a ledger or a load balancer that did not answer) is worth
    trying again, which the warning then says with what finishes it ("" when nothing does: a
    rollback took the old service back, or traffic did).
    ``scaled_back``: the old service was scaled down and back up, so the look did scale it."""
    if extra_look is not None:
        finish = (f"; {env.targets.stable_service} still runs the previous version at 0% of traffic, and no run will "
                  f"come back to it: start the `monitor` flow again {look_again} (its clean end decommissions it), or "
                  "run `rollway finalize`" if look_again else "")
        return _watched_only(said, True, extra_look, alerts, checks, warn=True, then=finish,
                             left="recorded or paged" if scaled_back else "scaled, recorded or paged")
    return _skip(env, f"{said}{then}", checks, alerts, rollout=rollout, actor=actor)


def _watched(env: Environment, reason: str, passed: str, checks: int,
             alerts: tuple[str, ...], lease: _Lease, actor: str) -> MonitorResult:
    """A clean window that keeps the old service: close the window in the ledger, if there is one,
    and page ``passed`` (``_passed``).

    Until it is closed, the rollout stays open for a rollback and the watchdog watches again
    if this run dies, so the mark is what ends the rollout's cheap-rollback period.
    """
    t = env.targets
    # A rollback begun since the last check raises RolloutEnded here: nothing is closed. A
    # ledger that cannot be reached leaves the window open (run the monitor again), and does
    # not fail the run, whose hook would roll the release back. The renewal clears an earlier
    # run's recorded open end, as the decommission's claim does.
    unrecorded = write_or_why(lease.renew_passed, t) or write_or_why(
        lambda: _record(env, lease.rollout, "watched",
                        f"{reason}; {t.stable_service} keeps running (the plan does not decommission it)",
                        actor=actor), t)
    if unrecorded is not None:
        get_run_logger().error("the ledger could not close the monitoring window: %s", unrecorded)
    # Sent as an alert is (logged if SNS refuses it): the window is closed, and failing the run
    # here, after the fact, left a healthy watched release under a failed run, for its hooks.
    metrics.alert(
        env.notifier, f"Monitoring passed: {t.canary_service}",
        f"{passed}. {t.stable_service} keeps running at 0% of traffic: this rollout does not decommission it."
        + (f" The ledger could not record it ({unrecorded}): run the monitor again to close the window."
           if unrecorded else ""),
        targets=t,
    )
    return MonitorResult(outcome="passed", reason=reason, checks=checks, alerts=alerts)


def _watched_only(reason: str, verified: bool, why: str, alerts: tuple[str, ...], checks: int, *,
                  paged_late: bool = False, left: str = "scaled, recorded or paged", warn: bool = False,
                  then: str = "") -> MonitorResult:
    """The end of a window started by hand after the rollout's decommission, or as an extra look
    at a rollout that owes none and keeps its old service, or that ends keeping it (``why``: which,
    and when and by whom its window closed): its rollback was the point. A second decommission entry and page told people
    the old version went twice; a second "watched" entry was quoted by the rollout's report as the
    window's close, though it had closed earlier; an unverified window's "kept running" would
    contradict either. The result, the artifact and this log line carry the look's outcome. ``left``:
    what the look did none of (an old service scaled down and back up was scaled); ``warn``: a
    warning whatever the verdict (a decommission that did not happen); ``then``: what to do next."""
    said = f"{reason}; {why}: nothing {'else ' if paged_late else ''}was {left}{then}"
    get_run_logger().log(logging.INFO if verified and not warn else logging.WARNING, said)
    return MonitorResult(outcome="passed", reason=said, checks=checks, alerts=alerts, verified=verified)


def _rollback_since(env: Environment, seconds: float) -> str | None:
    """What shows that a rollback has begun (the ledger says so, or traffic is back), or None.

    The weights are read within ``seconds`` (the spec's ``verify_timeout_seconds``).

    Raises:
        ReadBackUnanswered: the load balancer did not answer within ``seconds``.
    """
    record = env.ledger.get(env.targets.canary_service) if env.ledger is not None else None
    if record is not None and record.phase in (RolloutPhase.ROLLING_BACK, RolloutPhase.ROLLED_BACK):
        return f"a rollback began ({record.phase.value})"
    live = traffic.weights_within(env.router, seconds)
    if live.stable > 0:
        return f"{live.stable}% of traffic went back to it"
    return None


def _begin_rollback(env: Environment, rollout: str | None, reason: str, holder: str, actor: str, *,
                    by_hand: bool = False) -> None:
    """Record the monitor's rollback start on the watched rollout as ``actor``'s (the run watching:
    the `monitor` flow's, or the rollout run's own), taking the rollback's claim;
    refused (RolloutClosed) when another rollback closed it since, by the same rule as every
    rollback's start (``by_hand``: a rollback run by hand's), and RollbackClaimed while another
    one carries it out."""
    if env.ledger is None or rollout is None:
        return
    begin_rollback(env.ledger, env.targets.canary_service, actor=actor, reason=reason, now=env.clock.now(),
                   rollout=rollout, holder=holder, lease_seconds=CLAIM_SECONDS, wall=env.wall(), by_hand=by_hand)


def _record_end(env: Environment, rollout: str | None, reason: str, done: RollbackResult, actor: str) -> None:
    if env.ledger is not None and rollout is not None:
        record_rollback_end(env, rollout=rollout, actor=actor, reason=reason, result=done)


def _send_page(env: Environment, subject: str, message: str) -> str | PageOutcome:
    """Publish the page ``subject``: its SNS message id when it went out, else what came of it
    (``PageOutcome``: SNS's answer in the rollout's words, and whether that answer was lost, the page
    then maybe delivered all the same), the one reading of a failed publish every caller says and
    records. Any failure leaves the page unsent to the caller, who says so in its own words."""
    try:
        return metrics.notify(env.notifier, subject, message)
    except Exception as err:  # noqa: BLE001 - any failure to send leaves the page owed, the same to the caller
        return PageOutcome(subject, str(rollout_said(err, env.targets)), answer_lost(err))


_AGAIN = f" (again, if it went out); {CHECK_DELIVERY}"
"""What follows a page still owed whose answer was lost: the next run's may be the second one."""


def _unsent(page: PageOutcome) -> str:
    """What came of ``page``, whose publish failed: not sent (SNS refused it), or not known (its
    answer lost, SNS may have delivered it)."""
    return unsent(f"its \"{page.subject}\" page", lost=page.lost)


def _record_paged(env: Environment, rollout: str | None, message_id: str, *, actor: str) -> None:
    """Record that the decommission's page went out. A write the ledger refuses (or a run that
    died before it) leaves the page owed, and the next run sends it a second time: at least
    once, not exactly once. Logged, never raised: the old service is at 0 and people were paged."""
    unrecorded = write_or_why(lambda: _record(env, rollout, PAGED, "the decommission's page was sent",
                                              message_id=message_id, actor=actor), env.targets)
    if unrecorded is not None:
        get_run_logger().error("the ledger could not record that the decommission's page was sent (%s): the next "
                               "run that looks at the rollout will send it again", unrecorded)


def _record_refused(env: Environment, rollout: str | None, page: PageOutcome, *, actor: str) -> None:
    """Record that SNS refused the decommission's ``page``, or that its answer was lost (it may have
    gone out): the page stays owed, and ``why_owed`` gives the newest answer. Logged, never raised:
    the window is done, and failing the run would have a rollout run's hooks act on a release whose
    window passed."""
    comment = page.said()
    why = write_or_why(lambda: _record(env, rollout, PAGE_REFUSED, comment, wall=env.wall(), actor=actor), env.targets)
    if why is not None:
        # A lost answer is no refusal: said as the window's page says what came of it.
        get_run_logger().error("the ledger could not record what came of the \"%s\" page: %s", page.subject, why)


def send_owed_decommission_page(env: Environment, record: RolloutRecord | None, *, actor: str) -> bool:
    """Send the "Old version decommissioned" page a run that died after the decommission owed
    (``rollway.decommission_page.page_owed``), late and saying so, then record it as sent by
    ``actor`` (the run's: the monitor, a rollout run's, the weekly tick's). An SNS that
    refuses it is logged and recorded (``PAGE_REFUSED``), not raised: the page stays owed and the
    next look sends it; failing
    the run (a rollout run's hooks, the weekly tick) would act on a rollout whose window passed.

    Returns:
        Whether a late page went out.
    """
    owed = page_owed(record)
    if owed is None:
        return False
    t, log = env.targets, get_run_logger()
    sent = _send_page(env, page_subject(t.stable_service, late=True), late_message(record, owed, t.stable_service))
    if isinstance(sent, PageOutcome):
        # "Never paged" was said of a page whose answer was lost: ``why_owed`` says which it was.
        log.error("the page of %s's decommission (rollout %s) is still owed (%s), and %s: %s; the next run that looks "
                  "at the rollout sends it%s", t.stable_service, record.rollout_id, why_owed(record, owed),
                  _unsent(sent), sent.answer, _AGAIN if sent.lost else "")
        # Recorded as the first refusal was: status, the report and the next late page give SNS's
        # newest answer, not an older one (a topic mended since) or that no page was recorded.
        _record_refused(env, record.rollout_id, sent, actor=actor)
        return False
    log.warning("sent the \"%s\" page of rollout %s late: %s", page_subject(t.stable_service), record.rollout_id,
                why_owed(record, owed))
    _record_paged(env, record.rollout_id, sent, actor=actor)
    return True


def _record(env: Environment, rollout: str | None, kind: str, comment: str, *, to_weights: Weights | None = None,
            message_id: str | None = None, task_definition: str | None = None, wall: float | None = None,
            actor: str, **changes) -> None:
    """Record on the watched rollout as ``actor``'s, the run that looked (the `monitor` flow's, or the
    rollout run's watching its own window: "monitor" named a run that never ran); RolloutSuperseded
    if another one is the newest by now."""
    if env.ledger is None or rollout is None:
        return
    env.ledger.record(
        env.targets.canary_service, owner=None, now=env.clock.now(), rollout=rollout,
        transition=Transition(at=env.clock.now(), kind=kind, actor=actor, comment=comment, to_weights=to_weights,
                              message_id=message_id, task_definition=task_definition, wall=wall),
        **changes,
    )


def unwatched_dead_letters_said(env: Environment, record: RolloutRecord, *, owner: str, actor: str,
                                lease_seconds: float) -> None:
    """Say, in the run's log and the rollout's ledger, that the monitoring window this run resumes
    watches dead letters nowhere: a watched queue deleted (or redriven elsewhere) since the rollout
    checked its queues reads in CloudWatch as an empty one, and the window's dead-letter alert is
    silent whatever the release does.

    Not refused: refusing left the window unwatched altogether (its error-rate guardrail too, and
    the decommission waiting), a worse place than a window without one of its alerts. Nothing here
    fails the run (`progressive_rollout`'s hooks would roll back a promoted release): a look-up or a
    write refused is said and the window goes on. Serves the `monitor` flow resuming a window by
    hand too.
    """
    if env.queues is None:
        return
    log, service = get_run_logger(), env.targets.canary_service
    try:
        seen = env.queues.lookup()
        unseen = dead_letters_unseen(env.targets, seen)
        unknown = any(s.failed for s in seen.values())
    except Exception as err:  # noqa: BLE001 - see above
        unseen = (f"SQS could not be asked whether the watched queues exist ({rollout_said(err, env.targets)})", False)
        unknown = True
    if unseen is None:
        return
    if unknown:
        # SQS did not answer (throttled, say): the queues are most likely there. "Watching nothing",
        # and fixing the targets block's queues, claimed what nobody knew, in the ledger for good.
        said = (f"the monitoring window of rollout {record.rollout_id} is resumed, and whether its dead-letter alert "
                f"watches anything could not be checked: {unseen[0]}. Should a watched dead-letter queue be gone (or "
                "no failure reach it), CloudWatch shows it as an empty one and no dead letter the new version causes "
                "is alerted on: the window goes on (its error-rate guardrail still rolls a failing release back). "
                "Check that the targets block's queues exist (aws sqs get-queue-url --queue-name <name>)")
    else:
        said = (f"the monitoring window of rollout {record.rollout_id} is resumed with its dead-letter alert watching "
                f"nothing: {unseen[0]}. CloudWatch shows no messages for a dead-letter queue that is not there or "
                "that no failure reaches, which reads as an empty one: the window goes on (its error-rate guardrail "
                "still rolls a failing release back), but no dead letter the new version causes is alerted on. Fix "
                "the targets block's queues, or deploy the queues (the infra flow) with their redrive policy, for the "
                "rollouts to come")
    now = env.clock.now()
    try:
        # Taken first: another run watching it refuses this one (as the window's own claim of the
        # lease would), before this run says anything of a window it does not watch.
        env.ledger.acquire(service, owner=owner, now=now, lease_seconds=lease_seconds, rollout=record.rollout_id,
                           wall=env.wall())
    except LockHeld:
        raise
    except Exception as err:  # noqa: BLE001 - see above
        unrecorded: Exception | None = err
    else:
        unrecorded = None
    log.warning("%s", said)
    try:
        if unrecorded is None:
            env.ledger.record(service, owner=owner, now=now, rollout=record.rollout_id, wall=env.wall(),
                              transition=Transition(at=now, kind="resume", actor=actor, comment=said, run=run_label()))
    except Exception as err:  # noqa: BLE001 - see above
        unrecorded = err
    if unrecorded is not None:
        log.warning("could not record in the ledger what the run log above says of the resumed window's dead-letter "
                    "alert (%s)", rollout_said(unrecorded, env.targets))


def watched_rollout(record: RolloutRecord | None, spec: RolloutSpec, service: str) -> RolloutRecord:
    """The rollout the ``monitor`` flow watches: the service's newest, promoted, of ``spec.image``.

    Raises:
        MonitorRefused: it is not (none recorded, another image's, or not promoted). Watching
            anyway would judge another rollout's canary and could roll it back.
    """
    if record is None:
        raise MonitorRefused(f"no rollout of {service} is recorded, so there is no promoted rollout of {spec.image} "
                             "to watch. Nothing was changed")
    if record.image != spec.image or record.phase is not RolloutPhase.PROMOTED:
        raise MonitorRefused(
            f"the newest rollout of {service} is {record.rollout_id} of {record.image}, {record.phase.value}: not a "
            f"promoted rollout of {spec.image}, so there is nothing of it to watch. Nothing was changed"
        )
    return record


def _previous_version_left(env: Environment, record: RolloutRecord) -> None:
    """Refuse a window on a rollout that owes none unless a rollback of it goes back to the
    previous version (``reverted_by_hand``: no finalize recorded, the stable service on the
    revision the promotion replaced, the canary on the promoted one).

    Raises:
        MonitorRefused: it does not; nothing was changed.
    """
    t = env.targets
    stable = ecs.describe_service(env.deployer, t.stable_service)
    canary = ecs.describe_service(env.deployer, t.canary_service)
    if reverted_by_hand(record, stable, canary):
        return
    which = f"rollout {record.rollout_id} of {record.image}"
    if is_finalized(record):
        why = (f"{which} was finalized: {t.stable_service} runs it, and no service runs the version it replaced "
               "for a monitoring window to roll back to. Nothing was changed; to go back, roll that version out again")
    elif record.last_transition(FINALIZE_START) is not None:
        why = (f"a finalize of {which} began and did not finish, so a monitoring window has no version left to roll "
               "back to. Nothing was changed; run `rollway finalize` again to finish it")
    elif record.previous_task_definition is None:
        why = (f"the ledger does not record the revision {which} replaced, so a monitoring window has no version to "
               "roll back to. Nothing was changed")
    else:
        why = (f"{which} is no longer as its promotion left it: {t.stable_service} runs {stable.task_definition} "
               f"and {t.canary_service} {canary.task_definition}, not the revision it replaced "
               f"({record.previous_task_definition}) and the promoted one ({record.canary_task_definition}), so a "
               "monitoring window has no previous version to roll back to. Nothing was changed")
    raise MonitorRefused(why)


def _owes_none(record: RolloutRecord, policy: RolloutSpec) -> str:
    """Why a promoted rollout owes no monitoring window (``monitoring_owed``), for a window started by hand on it."""
    closed = next((t for t in reversed(record.history) if t.kind in WINDOW_ENDS), None)
    if closed is not None:
        return f"its own window closed ({closed.kind} by {closed.actor} at {utc(closed.at)})"
    if policy.monitor_seconds <= 0:
        return "its policy watches none (monitor_seconds 0)"
    return "it was promoted before windows were recorded for a plan that keeps the old service"


def watched_spec(record: RolloutRecord, given: RolloutSpec) -> tuple[RolloutSpec, list[str]]:
    """The spec a window started by hand judges and rolls back by, and what of the given one
    differs: the rollout's recorded spec, as a resumed rollout runs. A form filled with only the
    image would otherwise judge on default guardrails and, rolling back, leave the rollout's
    bound flags on. A record today's rules refuse keeps the given judge, with the recorded flags.
    """
    try:
        recorded = RolloutSpec.from_record(record.spec_json)
    except ValidationError:
        recorded = given.model_copy(update={"flags": RolloutSpec.for_rollback(record.spec_json).flags})
    return recorded, [name for name in ("guardrails", "analysis", "flags")
                      if getattr(given, name) != getattr(recorded, name)]


@flow(name="monitor", log_prints=True)
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def monitor(
    spec: RolloutSpec,
    window_seconds: WindowSeconds | None = None,
    decommission: bool | None = None,
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    clock: ClockSettings = ClockSettings(),
    lease_wall_seconds: LeaseSeconds = 600.0,
) -> MonitorResult:
    """Watch a promoted version, roll back on a 5-minute error rate over 5 %, then decommission the old service.

    It watches the service's newest rollout, which must be a promoted rollout of ``spec.image``
    (``MonitorRefused`` otherwise, before any write), and stops (``RolloutSuperseded``) if another
    rollout becomes the newest while it watches. Unset, ``window_seconds`` and ``decommission``
    follow the rollout's record, as the rollout flows' own windows do.

    Args:
        spec: the promoted rollout's spec: its ``image`` names the rollout (the recorded policy governs the window).
        window_seconds: how long to watch; unset: the rest of the window owed since the promotion (its newest periods if it ended), else the recorded ``monitor_seconds`` (an hour if 0).
        decommission: scale the old service to zero after a clean window; unset: as the recorded last phase says.
        targets_block: a saved RollwayTargets block; cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
        clock: the rollout clock; leave it for a real rollout (speed 1), the simulator speeds it up.
        lease_wall_seconds: how long this run may go silent (wall time) before another run may watch instead.
    """
    session = load_session(targets_block, aws_credentials_block)
    env = session.environment(clock, interval_seconds=spec.analysis.interval_seconds)
    service = env.targets.canary_service
    # Read before run_monitor, which names what it raises: a read the role may not make is named
    # the same way (the ledger's statement, with the run's own names), not AWS's bare refusal.
    with named_denials(ROLLOUT_POLICY, targets=env.targets):
        newest = env.ledger.get(service) if env.ledger else None
    record = watched_rollout(newest, spec, service)
    spec, differs = watched_spec(record, spec)
    if differs:
        get_run_logger().warning(
            "the given spec's %s differ from what rollout %s recorded: the recorded ones govern this window (its "
            "rollback disables the rollout's own flags)", " and ".join(differs), record.rollout_id)
        # CloudWatch is read at the period the rollout's judge counts in (on the same session: a
        # second one asked STS again who the keys are).
        env = session.environment(clock, interval_seconds=spec.analysis.interval_seconds)
    if window_seconds is not None:
        # At the periods of the recorded judge, which the window is read at, before anything is read
        # from CloudWatch, sent or recorded: checked first at the given spec's (before the ledger's
        # read), a 20-day window of a rollout judged at 5-minute periods (kept 63 days) was refused
        # for a form's default 1-minute ones. A window nobody gave is the record's own, watched
        # whatever its length (a rollout recorded before this rule must still be watched): the
        # minutes CloudWatch no longer keeps are named at its end.
        _window_readable(window_seconds, spec)
    # Unset, the rollout's own policy decides, read leniently as a rollback reads it. Defaults of
    # True and an hour scaled the old service of a plan that keeps it to zero after a window
    # started from the UI (its rollback target gone), and cut a two-hour policy's window to one.
    policy = RolloutSpec.for_rollback(record.spec_json)
    # A rollout that owes no window (its policy watched none, or its window closed) refused the
    # monitor's rollback as any closed rollout's: a failing release moved no traffic and paged
    # nobody, and the run said "rolled_back". A person watching it rolls back as the rollback
    # flow run by hand does, while the previous version is still there to go back to.
    # Why it owes none (said twice: in the warning below and in the window's end), or None: it owes one.
    owes_none = _owes_none(record, policy) if not monitoring_owed(policy, record) else None
    owner = run_owner()
    # Another run watching it refuses this one first (run_monitor's claim would), before the
    # by-hand check reads the services and refuses it for a reason that is not this run's to fix.
    check_lease(record, owner, env.wall())
    if owes_none is not None:
        with named_denials(ROLLOUT_POLICY, targets=env.targets):
            _previous_version_left(env, record)
        # Not refused: a person's look while the previous version still runs is what the window is
        # for, and its rollback is cheap. Said, as nothing in its end would: it neither reopens nor
        # recloses the rollout's window.
        get_run_logger().warning(
            "rollout %s owes no monitoring window: %s. This window, started by hand, rolls a failing release back "
            "(recorded as the `rollback` flow's run by hand is); an end that keeps the old service (a clean one of a "
            "plan that keeps it, too few looks counting requests, or traffic back on it) is said here, not recorded "
            "on the rollout nor paged",
            record.rollout_id, owes_none)
    decommissioned = _decommissioned(env, record, decommission, page_owed=page_owed(record))
    paged_late = False
    if decommissioned is not None:
        decommission = False
        # Sent now, not at the window's end: the page is overdue already, and this window may
        # last an hour (or roll the release back).
        owed = page_owed(record)
        paged_late = send_owed_decommission_page(env, record, actor="monitor")
        if paged_late:
            decommissioned += f" (its page was sent late when this window opened: {why_owed(record, owed)})"
    elif decommission is None:
        decommission = policy.phases[-1].decommission
    extra_look = (f"this window was an extra look, started by hand: rollout {record.rollout_id} owes none, "
                  f"{owes_none}") if owes_none is not None else None
    only_watches = decommissioned
    if extra_look is not None and not decommission and decommissioned is None:
        # Its window closed (or was never owed): a clean end recorded a second "watched", which
        # the rollout's report then quoted as the window's close.
        only_watches = extra_look
    opened_at = None
    if window_seconds is None and owes_none is None and decommissioned is None:
        # The rollout's own window, its run dead (or stopped): a new one from now kept the old
        # service a whole window past the one owed (an hour past one that had ended). What is left
        # of it is watched, from the promotion, as `progressive_rollout` resuming it does.
        window_seconds, opened_at = _what_is_left(env, policy, record)
    elif window_seconds is None:
        window_seconds = policy.monitor_seconds or ONE_HOUR
    _load_balancer_found(env, spec)
    if owes_none is None and decommissioned is None:
        # The rollout's own window, resumed by hand: a watched queue gone since the rollout checked
        # them leaves its dead-letter alert watching nothing, said as `progressive_rollout` says it.
        unwatched_dead_letters_said(env, record, owner=owner, actor="monitor", lease_seconds=lease_wall_seconds)
    watched = run_monitor(
        env, spec, window_seconds=window_seconds, decommission=decommission,
        previous_task_definition=record.previous_task_definition, stable_desired=record.stable_desired,
        owner=owner, lease_seconds=lease_wall_seconds, rollout=record.rollout_id, opened_at=opened_at,
        pinned_image=record.pinned_image, extra_look=extra_look, only_watches=only_watches, paged_late=paged_late,
        shifted_rule=record.shifted_rule,
    )
    if (page := watched.decommission_page) is not None:
        # Raised once the window is done and recorded (the decommission, SNS's refusal, the
        # artifact): Completed, the run read as all done while nobody had been told. This flow has
        # no rollback hooks: failing it moves nothing.
        without_traceback(DecommissionPageRefused)
        raise DecommissionPageRefused(
            f"{watched.reason} and {env.targets.stable_service} was decommissioned and recorded, but "
            f"{_unsent(page)} ({page.answer}): "
            f"the page is owed, and the next run that looks at the rollout sends it late"
            f"{_AGAIN if page.lost else ''}")
    if watched.window_page is not None:
        # Completed, the run read as a window that ended with people told; it has no rollback hooks,
        # so failing it moves nothing (a rollout run's window completes: its hooks would roll back).
        without_traceback(WindowPageRefused)
        # A lost answer's own words (the reason's) say what to do: SNS refused nothing to mend.
        mend = "" if watched.window_page.lost else ": mend what SNS refused"
        raise WindowPageRefused(f"{watched.reason}. This run fails so that someone sees it; what the window did "
                                f"stands{mend}")
    return watched


def _window_readable(window_seconds: float, spec: RolloutSpec) -> None:
    """Refuse a window longer than CloudWatch keeps the periods it is read at (15 days of 1-minute
    data): a run resuming it near its end read its first minutes as empty, and a breach in them as
    minutes that served nobody.

    Raises:
        MonitorRefused: it is; nothing was watched or changed.
    """
    why = window_unreadable(window_seconds, spec.analysis.interval_seconds, spec.analysis.metrics_delay_seconds)
    if why is not None:
        raise MonitorRefused(f"window_seconds: {why}. Nothing was watched or changed")


def _load_balancer_found(env: Environment, spec: RolloutSpec) -> None:
    """Look up the load balancer's listener, rule and target groups the run's targets name, which
    the looks read the metrics by and a rollback moves traffic on.

    A misspelt one made every look of the window say it "could not read the metrics", for the
    window's whole length, which then ended unverified, recorded and paged as if CloudWatch had been
    throttled. Any other failure of the lookup (throttled, say) is left to the looks, each of which
    reads again.

    Raises:
        MonitorRefused: one of them is not found (named); nothing was watched or changed.
    """
    try:
        env.router.reading(spec.verify_timeout_seconds).target_group("canary")
    except TargetNotFound as missing:
        raise MonitorRefused(
            f"{missing}: the window's looks could not read the new version's metrics, nor a rollback move its "
            f"traffic. Nothing was watched or changed, and the rollout's window stays open: correct the targets "
            f"block's names and run the monitor again") from missing
    except Exception:  # noqa: BLE001 - a lookup that failed otherwise is read again by the looks
        return


def _what_is_left(env: Environment, policy: RolloutSpec, record: RolloutRecord) -> tuple[float, float | None]:
    """The seconds left of the monitoring window ``record`` owes, and when it opened (its
    promotion; None: just now), said in the log: when the window ends, or that it ended and this
    run judges the release on its newest periods and closes the window."""
    promoted = record.last_transition("promote").at
    ends = promoted + policy.monitor_seconds
    left = monitoring_left(policy, record, env.clock.now()) or 0.0
    log = get_run_logger()
    if left > 0:
        log.info("rollout %s's %s monitoring window ends at %s (rollout clock): watching the %s left of it",
                 record.rollout_id, duration_words(policy.monitor_seconds, given=True), utc(ends), duration_words(left))
    else:
        log.warning(
            "rollout %s's %s monitoring window ended at %s (rollout clock), and no run closed it: this run watches no "
            "new window; it judges the release on its newest periods (what it does now) and closes the window by its "
            "plan, as `progressive_rollout` resuming it does", record.rollout_id,
            duration_words(policy.monitor_seconds, given=True), utc(ends))
    # Started within half a minute of the promotion, it is the window itself, not a resumed one (its
    # end said "resumed 0 minutes after the promotion").
    return left, (promoted if env.clock.now() - promoted >= 30 else None)


def _decommissioned(env: Environment, record: RolloutRecord, asked: bool | None, *,
                    page_owed: Transition | None) -> str | None:
    """When and by whom the rollout's old service was decommissioned, if the ledger says it was
    (said in the log), or None. The window then only watches: a decommission again would record a
    second one and page "Old version decommissioned" twice for a service at 0 already.

    ``page_owed``: that decommission, whose page is not recorded as sent, and goes out now: "pages
    nothing", logged just before it, read as a contradiction."""
    done = record.last_transition("decommission")
    if done is None:
        return None
    run = f" (run {done.run})" if done.run else ""
    said = f"{env.targets.stable_service} was decommissioned already, by {done.actor} at {utc(done.at)}{run}"
    clean = ("scales and records nothing, and its only page is that decommission's own, not recorded as sent and "
             f"sent now ({why_owed(record, page_owed)})" if page_owed is not None
             else "scales, records and pages nothing")
    get_run_logger().warning(
        "%s: this window of rollout %s only watches (a failing release is rolled back; a clean window %s)%s", said,
        record.rollout_id, clean, "; decommission=true is not acted on" if asked else "")
    return said
