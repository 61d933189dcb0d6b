"""What a progressive rollout records as it goes: the ledger, Prefect artifacts, notifications.

The engine calls one method per event; each writes the ledger first (the durable truth a
resumed run reads), then the artifacts and messages people see.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.approvals import pause_question, question_deadline
from flows.artifacts import create_markdown_artifact, create_table_artifact, for_people
from flows.engine import PAUSE_ROLLBACK, SCALING_ROLLBACK, NoticeUnsent, pause_notice
from flows.env import run_label
from flows.lease_keeper import LeaseKeeper
from flows.rollback import (ClaimKeeper, claimant, record_rollback_end, rollback_overtaken, try_record,
                            unrecorded)
from rollway import weekly
from rollway.approvals import ApprovalAnswer, TakenOver, pause_deadline, taken_over_pause, taken_over_said
from rollway.clock import on_the_wall as wall_wait
from rollway.decide import Pause, StageState, stage_end
from rollway.environment import Environment
from rollway.ledger import (CLAIM_SECONDS, ENDED_PHASES, NOT_APPLIED, LedgerError, LockHeld, OpenPause, RefusalsFull,
                            PassedLooks, RefusedAnswer,
                            RolloutMovedOn, RolloutRecord, RolloutSuperseded, Transition, answer_comment, begin_rollback, held_by_timeout, pause_asked_now, pause_cause,
                            WindowUnrecorded, unanswered_wait, utc, wall_utc)
from rollway.model import Verdict, Weights
from rollway.one_line import shown
from rollway.phases import RolloutPhase
from rollway.reports import stage_lines
from rollway.report import HEADERS, P99_SAID, RollbackResult, RolloutResult, StageReport, artifact_key, markdown_cell, markdown_table, stage_rows
from rollway.aws.ledger import STORAGE_ERRORS, ledger_failure, storage_failure
from rollway.spec import RolloutSpec
from tasks import metrics


def rule_recorded(router) -> dict[str, Any]:
    """The ledger's changes recording the rule ``router`` shifts the traffic with, by ARN, and its two
    groups (``shifted_rule``; none when it names no rule): a rollback looking the rule up afresh (a
    hook's, `rollway abort`'s) moves the traffic over that rule, never over another service's rule
    on its path. Written when the canary is deployed, before any shift, and with each shift (a rollout
    an older release deployed records it at its next)."""
    rule = router.shifted_rule()
    return {"shifted_rule": rule} if rule is not None else {}


def stage_table(service: str, weight: int, report: StageReport) -> None:
    """The table artifact of a stage that ended (``<service>-stage-<weight>``): its canary vs baseline.

    The row of a passed stage's pause that rolled back (``PAUSE_ROLLBACK``) is
    ``<service>-stage-<weight>-pause``: under the stage's own key, it replaced the table of the
    stage as it passed; so is that of the looks made while the canary scaled for the next stage
    (``scaling_rollback``), ``<service>-stage-<weight>-scaling``."""
    suffix = ("-pause" if report.decision == PAUSE_ROLLBACK
              else "-scaling" if report.decision.startswith(SCALING_ROLLBACK) else "")
    for_people(f"stage {weight}% table", lambda: create_table_artifact(
        key=artifact_key(service, f"stage-{weight}{suffix}"),
        table=[dict(zip(HEADERS, row)) for row in stage_rows([report])],
        description=f"{service} at {weight}%: canary vs baseline ({P99_SAID})",
    ))


def verdict_summary(verdict: Verdict | None) -> str | None:
    if verdict is None:
        return None
    return (
        f"{verdict.phase.value}: {verdict.reason} "
        f"(canary {verdict.canary_requests:,} req, baseline {verdict.baseline_requests:,} req)"
    )


class LedgerJournal:
    """Records a rollout's transitions in the ledger and shows them to people.

    Args:
        env: ports (ledger, notifier, clock).
        spec: the rollout's policy.
        owner: the run that holds the rollout's lease.
        lease_seconds: lease length in wall seconds (leases are on the wall clock); renewed every analysis tick.
        actor: who started the rollout.
        rollout_id: the rollout it records; the lease-free rollback writes name it, so that they
            never land on a rollout started since (None: the newest, whichever it is).
        lease_written: the wall time ``owner``'s lease was last written before this journal's first
            write (None: not known; the loop then counts it from when it begins).
    """

    def __init__(self, env: Environment, spec: RolloutSpec, *, owner: str, lease_seconds: float, actor: str,
                 rollout_id: str | None = None, lease_written: float | None = None, took_released: bool = False) -> None:
        assert env.ledger is not None, "a LedgerJournal needs a ledger"
        self.env = env
        self.ledger = env.ledger
        self.spec = spec
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.lease_written = lease_written
        self.actor = actor
        self.service = env.targets.canary_service
        self.rollout_id = rollout_id
        self._progress_id = None
        self._seen: RolloutRecord | None = None  # the record as this run last read or wrote it
        self._rollback_actor = actor  # who asked for the rollback: the judge, a person, "timeout"
        self._unrecorded: str | None = None  # what the ledger could not record of the rollback's start
        self._claim: ClaimKeeper | None = None  # renews the rollback's claim while it acts
        self._run_named = False  # whether this run's flow run is in the ledger yet (``_record``)
        self._asked = False  # whether this run has asked a pause (``taken_over``: else one open is its own, retried)
        # Whether the lease this run took had been released (no ``takeover`` was written): a pause left
        # open is its own, retried, only if this run asked it (``taken_over``).
        self._took_released = took_released

    # --- helpers -----------------------------------------------------------------------
    def _record(self, transition: Transition, owner: str | None = "self", followed_by: tuple = (), **changes):
        if owner == "self" and transition.run is None and (transition.kind == "pause" or not self._run_named):
            # Each run that drove the rollout is named once, on its first write (and on every pause,
            # which a person answers in that run): its lease's owner is gone from the record once
            # it ends, and the reports could name no run to look for in the Prefect UI.
            transition = transition.model_copy(update={"run": run_label()})
        self._seen = self.ledger.record(
            self.service,
            rollout=self.rollout_id,
            owner=self.owner if owner == "self" else owner,
            now=self.env.clock.now(),
            transition=transition,
            followed_by=followed_by,
            lease_seconds=self.lease_seconds if owner == "self" else 0.0,
            wall=self.env.wall(),
            **changes,
        )
        self._run_named = self._run_named or owner == "self"
        return self._seen

    def give_back(self, held: RolloutRecord | None = None) -> None:
        """Give the run's lease on the rollout back once what it did is recorded (or before it stands
        down). A release DynamoDB refuses (throttled past botocore's retries, say) is logged, never
        raised: raised, it failed a run whose promotion or phase end was recorded, and its hook rolled
        the healthy release back and paged people. The lease runs out on its own; a run taking the
        rollout over before then waits for it, as for any run that ended holding one. ``held``: the
        rollout as this run last wrote its lease (None: as it last read or wrote it)."""
        try:
            self.ledger.release(self.service, owner=self.owner)
        except STORAGE_ERRORS as err:
            seen = held if held is not None else self._seen
            lapses = (f"at {wall_utc(seen.lease_expires)}" if seen is not None and seen.owner == self.owner
                      else "within its lease")
            get_run_logger().warning(
                "could not give this run's lease on the rollout of %s back (%s): it runs out on its own %s, and a run "
                "taking the rollout over before then waits for it", self.service, storage_failure(err, self.env.targets),
                lapses)

    def _notify(self, subject: str, message: str) -> None:
        # Progress told after the fact (a shift, a phase, a promotion), logged if SNS refuses it:
        # a failed run's hooks rolled back the healthy rollout the notice was about.
        metrics.alert(self.env.notifier, subject, message, targets=self.env.targets)

    def _progress(self, stage_index: int, done: bool) -> None:
        total = len(self.spec.stages)
        value = 100.0 * (stage_index + (1 if done else 0)) / total
        description = f"{self.service}: stage {stage_index + 1}/{total} ({self.spec.stages[stage_index].weight}%)"
        if self._progress_id is None:
            self._progress_id = for_people("progress", lambda: create_progress_artifact(
                progress=value, key=artifact_key(self.service, "progress"), description=description))
        else:
            for_people("progress", lambda: update_progress_artifact(self._progress_id, progress=value,
                                                                    description=description))

    # --- Journal -----------------------------------------------------------------------
    def tick(self, state: StageState, verdict: Verdict | None) -> None:
        # Renews the lease, so a live run keeps the rollout and a dead one loses it.
        self._seen = self._renew()

    def _renew(self, **changes: Any) -> RolloutRecord:
        """Take or renew this run's lease, setting ``changes`` (RolloutRecord fields) in the same write.

        Named, as every write of the journal: a run whose rollout was rolled back and superseded
        meanwhile took the next rollout's lapsed lease (its run paused for an approval), leaving it ownerless."""
        return self.ledger.acquire(self.service, owner=self.owner, now=self.env.clock.now(),
                                   lease_seconds=self.lease_seconds, rollout=self.rollout_id, wall=self.env.wall(),
                                   **changes)

    def renewing(self) -> LeaseKeeper:
        """The lease renewed from a thread while a shift waits for the canary's tasks (``LeaseKeeper``);
        the record this run last read is left as it was, for the shift's own write to update."""
        return LeaseKeeper(self.env, self._renew, self.lease_seconds)

    def shifted(self, state: StageState, before: Weights, after: Weights, reason: str, flags: list,
                from_stage: int | None) -> None:
        now = self.env.clock.now()
        # A stage begins: the windows counted after the last pass were that pass's looks' alone.
        # Kept, a stage passed again once the weights came back to it (moved by hand, adopted)
        # counted its new pass's windows on from the old pass's: its first window was judged at a
        # later, smaller share of the alpha, as if the tests made before its new bake were its own.
        # The shift and the flag moves made inside it in one write: the flags have moved already,
        # and a run killed between two writes would leave the ledger without them for good (the
        # resume finds the load balancer and the ledger in agreement and records nothing).
        self._record(
            Transition(
                at=now, kind="shift", actor=self.actor, from_weights=before, to_weights=after,
                from_stage=from_stage, to_stage=state.stage_index,
                comment=reason,
            ),
            followed_by=tuple(Transition(at=now, kind="flag", actor=self.actor, comment=update.describe())
                              for update in flags),
            phase=RolloutPhase.PROGRESSING, weights=after, stage_index=state.stage_index,
            stage_started_at=state.started_at, stage_passed=False, passed_looks=None,
            **rule_recorded(self.env.router),
        )
        self._progress(state.stage_index, done=False)
        self._notify(
            # The service named, as every other notice's subject names it: one alert topic often serves
            # several services, and an inbox shows the subject first.
            f"Rollout stage {state.stage_index + 1}/{len(self.spec.stages)}, {after.canary}% on the new version: "
            f"{self.service}",
            f"{self.spec.image} now serves {after.canary}% of traffic on {self.service} "
            f"(weights read back from the load balancer: stable {after.stable}%, canary {after.canary}%).\n"
            f"The judge watches it for up to {(stage_end(self.spec, state) - state.started_at) / 60:.1f} minutes "
            "(its bake, until a whole metric period has ended, and the metrics' delay)."
            + (f"\nFlags: {'; '.join(u.describe() for u in flags)}" if flags else ""),
        )

    def stage_passed(self, state: StageState, report: StageReport) -> None:
        self._record(
            Transition(
                # When the judge passed it, as the run that did counts the stage's windows from it
                # (``passed_window``): stamped once written, after the look's reads, a resumed run
                # counted them from a later period at times, one window's alpha spent on two tests.
                at=report.ended_at, kind="verdict", actor="judge", from_stage=state.stage_index,
                verdict=verdict_summary(report.verdict),
            ),
            stage_passed=True,
        )
        self._progress(state.stage_index, done=True)

    def looked(self, looks: PassedLooks) -> None:
        """Record the passed stage's windows looked at, ``looks``, before the look at the newest
        judges it (``flows.engine.PassedWindows``), while this run holds the rollout, its lease left
        as it is (a pause renews none: status and the runs that take rollouts over read its lapse so).

        Never written over another run that took the rollout over (this one taken for dead), even
        once that run's lease lapsed: the look is then not judged, and the answer to the pause finds
        the rollout moved on.

        Raises:
            WindowUnrecorded: the ledger refused the write (another run holds the rollout, or none
                does; another rollout is the service's newest) or DynamoDB failed it, said as the
                ledger's failures are: the look's line read botocore's bare error, as if the canary's
                metrics could not be read.
        """
        try:
            self._seen = self.ledger.note(self.service, owner=self.owner, now=self.env.clock.now(),
                                          rollout=self.rollout_id, passed_looks=looks)
        except (LedgerError, *STORAGE_ERRORS) as err:
            why = ledger_failure(err, self.env.targets)
            raise WindowUnrecorded(
                f"the window it would judge could not be recorded in the ledger ({why}), so it is not judged: the "
                "windows' shares of the alpha are counted there, for the runs that resume the rollout") from err

    def stage_ended(self, state: StageState, report: StageReport) -> None:
        stage_table(self.service, self.spec.stages[state.stage_index].weight, report)

    def earlier_stages(self, before: int) -> str | None:
        """The ledger's stages before stage index ``before``, as the record this run last read
        holds them (``rollway.reports.stage_lines``): the weights, when, and the verdict as
        recorded, with its counts. None when it holds none."""
        weights = self.spec.stages
        lines = [line for line in (stage_lines(self._seen) if self._seen is not None else ())
                 if line.stage is not None and 0 <= line.stage < min(before, len(weights))]
        if not lines:
            return None
        rows = ["Recorded in the ledger for the earlier stage(s):", "",
                "| stage | weights s/c | from | until | verdict, reason and counts |", "|---|---|---|---|---|"]
        for line in lines:
            until = utc(line.ended_at) if line.ended_at is not None else "(still)"
            rows.append(f"| {line.stage + 1}/{len(weights)} ({weights[line.stage].weight}%) | {line.weights} | "
                        f"{utc(line.started_at)} | {until} | {markdown_cell(line.verdict)} |")
        return "\n".join(rows)

    def taken_over(self, pause: Pause) -> TakenOver | None:
        """The pause ``pause`` asks again when the run that asked it died waiting and this run took
        the rollout over (``taken_over_pause``, on the record as this run last read it)."""
        return taken_over_pause(self._seen, pause, self.spec.approvals, fresh=not self._asked,
                                this_run=run_label() if self._took_released else None)

    def asking(self, pause: Pause, held_by: ApprovalAnswer | None = None, judging: str = "",
               taken_over: TakenOver | None = None) -> NoticeUnsent | None:
        """Tell people a pause waits for them. The weekly schedule starts a phase on its own (week 2
        opens with the approval before 25 % by default) and nobody was told: unanswered, the pause
        timed out an hour later and rolled a healthy rollout back. Once per pause, and again when a
        person held it (``held_by``): the hold's pause is asked again an analysis interval later,
        and whoever follows the rollout from their phone never heard that it waits once more. Not
        again after a timeout whose policy holds, unless it asks another question (its cause changed
        to one not asked yet in the wait): nobody answered the first message, and one an hour for a
        rollout left holding for weeks (or for each asking of a pause whose cause flaps between
        unreadable and inconclusive metrics) would only bury it. An alert: a message SNS
        refuses must not fail the run, whose hooks would roll back. ``judging``: the form's words on
        the canary judged while the pause waits, said here too: a person reading only this took
        their time, not knowing the run rolls back on its own meanwhile and their answer then lapses.
        ``taken_over``: the pause a run that died waiting asked, asked again: by its own deadline (its
        ``began``), and its notice says so (sent again: it named the dead run, and no notice said
        where the pause was asked now)."""
        began = taken_over.began if taken_over is not None and taken_over.began is not None else self.env.wall()
        paused_at = datetime.fromtimestamp(began, timezone.utc)
        # This run's first asking of a pause another run (or this one, before a retry) left open is told
        # too, with its own deadline: asked anew (an answer refused at the dead run), it was told nobody.
        first, self._asked = not self._asked, True
        if not self._record_pause(pause, paused_at) and held_by is None and taken_over is None and not first:
            asked = self._seen.open_pause if self._seen is not None else None
            # Not sent again: still untold.
            return NoticeUnsent(asked.notice_refused, asked.notice_lost) if asked and asked.notice_refused else None
        refused = pause_notice(self.env, self.spec, pause, paused_at=paused_at, held_by=held_by, judging=judging,
                               weights=self._seen.weights if self._seen is not None else None,
                               taken_over=taken_over_said(taken_over) if taken_over is not None else None)
        asked = self._seen.open_pause if self._seen is not None else None
        said = (refused.said, refused.lost) if refused is not None else (None, False)
        if asked is not None and (asked.notice_refused, asked.notice_lost) != said:
            self._notice_said(asked, refused)
        return refused

    def _notice_said(self, asked: OpenPause, refused: NoticeUnsent | None) -> None:
        """Record on the open pause ``asked`` whether its notice went out (``refused``: SNS's answer
        and whether it was a lost one, or None once one did), where `rollway status` and the report
        read it. Logged, never raised, when the ledger refuses it: the form says it all the same,
        and the pause goes on."""
        update = {"notice_refused": refused.said if refused else None, "notice_lost": bool(refused and refused.lost)}
        try:
            self._seen = self._renew(open_pause=asked.model_copy(update=update))
        except (LedgerError, *STORAGE_ERRORS) as err:
            # A lost answer's notice (SNS may have delivered it) is no refused one's.
            sent = "went out" if refused is None else "may have gone out or not" if refused.lost else "was not sent"
            get_run_logger().error("could not record on the rollout that the pause's notice %s (%s)",
                                   sent, ledger_failure(err, self.env.targets))

    def _record_pause(self, pause: Pause, paused_at: datetime) -> bool:
        """Record that the run waits for a person (which stage, why, until when), so the reports
        read it from the ledger: without it a paused rollout read "progressing (not finished)",
        and a report must not depend on reaching the Prefect API. Its answer (or timeout) is
        recorded after it as ever.

        The question asked now goes on the record with every asking (``OpenPause``), and is
        recorded in the history once per wait: a pause nobody answers is asked again as long as
        nobody does (for weeks, say), and an entry per asking would grow the item past DynamoDB's
        400 KB limit. A question of another cause than those already asked in the wait (metrics
        unreadable after an unanswered inconclusive pause) gets its entry, once, however often the
        causes alternate: status and the report read the question asked now from the record.

        Returns whether the question is new to the wait (recorded in the history now): people are
        told of each question once.
        """
        question = pause_question(pause, self.spec.approvals, paused_at)  # its reason, and until when
        asked_until = question_deadline(self.spec.approvals, paused_at).timestamp()
        seen = self._seen
        wait = unanswered_wait(seen, pause.stage_index) if seen is not None else ()
        before = pause_asked_now(seen) if wait else None
        if before is not None:
            since, asked, causes = before.since, before.asked + 1, before.causes
        elif wait:  # a wait recorded before the open pause was kept: since its first question
            first = pause_deadline(next((t.comment for t in wait if t.kind == "pause"), None))
            since = paused_at.timestamp() if first is None else first - self.spec.approvals.timeout_seconds
            asked, causes = 2, tuple(dict.fromkeys(c for t in wait if (c := pause_cause(t)) is not None))
        else:
            since, asked, causes = paused_at.timestamp(), 1, ()
        # A refused notice stays said until one goes out: asking again sends none.
        # Kept while the pause stays open: asked anew once for answers unread, its new deadline stands at
        # the next takeover (``taken_over_pause``), which says what became of those answers, and of any since.
        unread = {} if before is None else before.model_dump(include={
            "answers_unread", "answers_unrecorded", "answers_not_read", "answers_unread_again",
            "answers_unrecorded_again"})
        open_pause = OpenPause(stage=pause.stage_index, cause=pause.cause, question=question, since=since,
                               asked=asked, causes=causes + (() if pause.cause in causes else (pause.cause,)),
                               notice_refused=before.notice_refused if before is not None else None,
                               notice_lost=before is not None and before.notice_lost, run=run_label(),
                               **unread)
        if any(pause_cause(t) == pause.cause for t in wait):
            # Asked again: the new question and its deadline, with no entry. Without the deadline
            # `rollway status` and the report gave the first question's, past, of a pause still waiting.
            self._seen = self._renew(asked_until=asked_until, open_pause=open_pause)
            return False
        self._record(Transition(at=self.env.clock.now(), kind="pause", actor=self.actor, to_stage=pause.stage_index,
                                comment=question),
                     asked_until=asked_until, open_pause=open_pause)
        return True

    def answered(self, pause: Pause, answer: ApprovalAnswer, approved_stage: int | None) -> None:
        """Record a person's answer; ``approved_stage``: the stage an approval lets the rollout
        shift to (a later one when it skips ahead), None when it approves no shift."""
        kind = "timeout" if answer.timed_out else {"approve": "approve", "reject": "reject", "hold": "hold"}[answer.action]
        changes: dict = {} if approved_stage is None else {"approved_stage": approved_stage}
        if answer.action == "approve" and pause.cause != "approval":
            # A person accepted a stage the judge could not pass: it counts as passed, so a run
            # that dies after the next shift still recognises that shift as its own on resume.
            changes["stage_passed"] = True
        now = self._take_back(pause, answer)
        if answer.timed_out and answer.action == "hold":
            # No answer: the pause stays open (its OpenPause too) and is asked again. One entry
            # per unanswered wait, not one per timeout: a rollout left holding for weeks would grow
            # its ledger item past DynamoDB's 400 KB limit, and from then on no write could be
            # recorded, not even a rollback's intent.
            if any(held_by_timeout(t) for t in unanswered_wait(now, pause.stage_index)):
                self._seen = now
                return
            asked = None  # its answer, once given, says how often it was asked
        else:
            asked = pause_asked_now(now)
            changes["open_pause"] = None  # answered: nothing is open any more
        times = asked.asked if asked is not None and asked.asked > 1 else None
        self._record(
            Transition(
                at=self.env.clock.now(), kind=kind, actor=answer.approver,
                to_stage=pause.stage_index if approved_stage is None else approved_stage,
                comment=answer_comment(answer.action, answer.comment), verdict=pause.reason, asked=times,
            ),
            **changes,
        )

    def refused(self, pause: Pause, answer: ApprovalAnswer, reason: str) -> None:
        """Record a person's answer the run refused, and ``reason``, beside the history
        (``RefusedAnswer`` says why not in it): an auditor sees that someone tried to skip ahead,
        where only the run's log and the next form said so. The pause stays open, as recorded."""
        now = self._take_back(pause, answer)
        entry = RefusedAnswer(
            at=self.env.clock.now(), actor=answer.approver, action=answer.action, next_weight=answer.next_weight,
            comment=answer.comment.strip() or None, to_stage=pause.stage_index, question=pause.reason,
            reason=reason, run=run_label())
        # Appended, not set whole from the record just read: `rollway promote`, `hold` and `abort`
        # append the answers they refuse (answered first, timed out) to the same list, lease-free.
        try:
            self._seen = self.ledger.refuse(self.service, rollout=now.rollout_id, answer=entry)
        except RefusalsFull as full:
            # Record-keeping: the run asks again as it would, its rollout unaffected.
            get_run_logger().warning("%s's refused answer (%s) is not recorded in the ledger: %s", answer.who,
                                     answer.action, full)
            self._seen = now

    def not_applied(self, pause: Pause, answer: ApprovalAnswer, reason: str) -> None:
        """Record a person's answer to ``pause`` that this run read only after it had rolled the
        rollout back (``reason``: why it was not applied, and what the run did): the person who
        approved found no word of it in the ledger. Lease-free, after the rollback's end: the
        rollout is closed to this run's lease writes (``NOT_APPLIED``). Record-keeping: a write the
        ledger refuses is said, and the run ends as rolled back."""
        now = self.env.clock.now()
        entry = Transition(at=now, kind=NOT_APPLIED, actor=answer.approver, to_stage=pause.stage_index,
                           comment=f"{answer_comment(answer.action, answer.comment)}; {reason}",
                           verdict=pause.reason, run=run_label(), answered_at=answer.answered_at)
        try:
            self.ledger.record(self.service, owner=None, now=now, rollout=self.rollout_id, transition=entry,
                               rule=_rolled_back_rule)
        except LedgerError as err:
            get_run_logger().warning("%s's answer (%s) is not recorded in the ledger: %s", answer.who,
                                     answer.action, err)
        except STORAGE_ERRORS as err:
            get_run_logger().warning("%s's answer (%s) is not recorded in the ledger: %s", answer.who,
                                     answer.action, storage_failure(err, self.env.targets))

    def _take_back(self, pause: Pause, answer: ApprovalAnswer) -> RolloutRecord:
        """Take the lease back before recording ``answer`` (accepted or refused), and return the
        rollout as that write found it (``_retake``).

        Raises:
            RolloutMovedOn: another run drove the rollout while this one waited.
        """
        return self._retake(pause, f"{answer.who}'s answer ({answer.action}) is not applied")

    def taking_back(self, pause: Pause, reason: str) -> None:
        """Take the rollout back before the run rolls it back on what its look at ``pause`` found
        (``reason``): nothing renews the lease while a pause waits, and another run may have taken
        the rollout over meanwhile (a run taken for dead, say), whose shift the look then read as
        someone moving the traffic. A ledger that cannot be reached does not stop the rollback
        (the rollback itself records what it can).

        Raises:
            RolloutMovedOn: another run drove the rollout meanwhile: this run stands down.
            RolloutSuperseded: another rollout began meanwhile (this one was rolled back, say): this
                run stands down too, naming the run that drives it.
        """
        try:
            self._retake(pause, f"the rollback this run's look asked for is not done ({reason}): this run stands "
                                "down, and leaves the rollout and its traffic to the run that drives it")
        except STORAGE_ERRORS as err:
            get_run_logger().warning("could not take the rollout back before rolling it back (%s): rolling back "
                                     "anyway, the traffic first", storage_failure(err, self.env.targets))

    def _retake(self, pause: Pause, not_applied: str) -> RolloutRecord:
        """Take the lease back after ``pause`` (nothing renews it while a pause waits) before acting,
        and return the rollout as that write found it; ``not_applied``: what is then not done.

        Taken on this run's rollout only (RolloutSuperseded if another began since: taking and
        giving back its lease left that rollout's paused run without its ownership), and not from
        another run holding it, even on a lapsed lease: taken and given back, that run was left
        without its ownership, and refused its own next answer.

        Raises:
            RolloutMovedOn: another run drove the rollout while this one waited.
            RolloutSuperseded: another rollout began while this one waited.
        """
        before = self._seen
        held = self.ledger.get(self.service) if before is not None else None
        # Whatever its phase (pending, promoted): another run's, and not being rolled back (the
        # write below says so, RolloutEnded), it is not this run's to take, even on a lapsed lease.
        if (held is not None and held.rollout_id == before.rollout_id and held.owner not in (None, self.owner)
                and held.phase not in ENDED_PHASES):
            raise self._moved_on(pause, held, not_applied)
        try:
            now = self._renew()
        except LockHeld:
            # Taken by another run between the read and the write: it stands down all the same.
            raise self._moved_on(pause, self.ledger.get(self.service), not_applied) from None
        except RolloutSuperseded as superseded:
            # The ledger's own words ("the write meant for ... is not applied") named neither the
            # stand-down nor whose the traffic is now, and no line of the run's log said it.
            raise self._superseded(pause, self.ledger.get(self.service), not_applied) from superseded
        if before is not None and (now.rollout_id != before.rollout_id or len(now.history) != len(before.history)):
            # Another run drove the rollout while this one waited (say, it took the expired lease
            # and promoted): acting on this answer would undo that, a timeout would roll it back.
            self.give_back(now)
            raise self._moved_on(pause, now, not_applied)
        return now

    def _superseded(self, pause: Pause, record: RolloutRecord, not_applied: str) -> RolloutSuperseded:
        held = f", driven by {record.owner}" if record.owner else ", held by no run at the moment"
        return RolloutSuperseded(
            f"rollout {self.rollout_id!r} of {self.service!r} is no longer the newest: rollout {record.rollout_id!r} "
            f"({record.image}) began while this run waited for {pause.reason!r}, and is {record.phase.value} at "
            f"{record.weights}{held}; {not_applied}"
        )

    def _moved_on(self, pause: Pause, record: RolloutRecord, not_applied: str) -> RolloutMovedOn:
        last = record.history[-1] if record.history else None
        held = f", held by {record.owner}" if record.owner not in (None, self.owner) else ""
        return RolloutMovedOn(
            f"rollout {record.rollout_id!r} of {self.service!r} moved on while this run waited for "
            f"{pause.reason!r}: it is {record.phase.value} at {record.weights}"
            + (f" after {last.kind} by {shown(last.actor, keep='')}" if last else "") + f"{held}; {not_applied}"
        )

    def rolling_back(self, reason: str, actor: str) -> str | None:
        """Record the rollback's intent; what the ledger could not record and why (the rollback
        goes ahead and says so), or None."""
        self._rollback_actor = actor
        holder = claimant(actor)
        # RollbackClaimed (another rollback, `rollway abort`'s, carries it out) stops this run
        # like any RolloutEnded; its hook then waits for that rollback and pages nobody again.
        self._unrecorded = try_record("the rollback's start", lambda: begin_rollback(
            self.ledger, self.service, actor=actor, reason=reason, now=self.env.clock.now(),
            rollout=self.rollout_id, holder=holder, lease_seconds=CLAIM_SECONDS, wall=self.env.wall()),
            self.env.targets)
        if self._unrecorded is None:
            self._claim = ClaimKeeper(self.env, holder, self.rollout_id).__enter__()
        return self._unrecorded

    def rollback_failed(self, error: BaseException) -> None:
        """The rollback raised: give its claim up, so the next rollback finishes it at once."""
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.__exit__(type(error), error, error.__traceback__)

    def overtaken(self, reason: str, rollback) -> None:
        """Someone else began the rollback while this run shifted: through its claim, so that the
        rollout keeps one rollback record and people one page (``rollback_overtaken``)."""
        rollback_overtaken(self.env, reason, actor=self.actor, rollout=self.rollout_id, rollback=rollback,
                           verify_timeout_seconds=self.spec.verify_timeout_seconds)

    def rolled_back(self, result: RollbackResult, stages: list[StageReport]) -> None:
        """Record the rollback's end; raises RollbackUnrecorded when its start or end is not recorded."""
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.__exit__(None, None, None)  # the end below gives the claim up
        seen = self._seen  # as this run last read it: the phase the ledger shows if the start failed
        failure, phase, tell = self._unrecorded, seen.phase if seen is not None else None, False
        if failure is None:
            failure = try_record("the rollback's end", lambda: record_rollback_end(
                self.env, rollout=self.rollout_id, actor=self._rollback_actor, reason=result.reason,
                result=result), self.env.targets)
            # The notice went out before this write: people are told again if it failed.
            phase, tell = RolloutPhase.ROLLING_BACK, True
        if failure is None:
            self.give_back()
        self._summary(
            # The reason may quote a person's comment (a rejection, typed in the pause form's text
            # area): on one line, so a line break in it cannot start markdown of its own.
            markdown=f"# Rollout of `{self.spec.image}` rolled back\n\n**Why:** {markdown_cell(result.reason)}\n\n"
            + (f"**The ledger could not record {failure}.**\n\n" if failure else "")
            + "\n".join(f"- {s}" for s in result.steps)
            + self._stage_tables(stages),
        )
        if failure is not None:
            raise unrecorded(self.env, result, failure, rollout_id=seen.rollout_id if seen is not None else None,
                             phase=phase, tell=tell)

    def phase_complete(self, result: RolloutResult) -> None:
        self._record(
            Transition(at=self.env.clock.now(), kind="phase", actor=self.actor, comment=result.reason),
            weekly_phase_passed=True, phase=RolloutPhase.PAUSED,
        )
        self.give_back()
        # The run's log said nothing after the last stage passed: not that the phase was
        # complete, where the traffic holds, nor when the next phase is due.
        get_run_logger().info("%s of %s complete: holding at %s (stable/canary). Next: %s", self._phase_name(),
                              self.service, result.final_weights, self._next_phase())
        # People are told when the next phase is due, as the summary tells them (it used to say
        # only "on schedule", leaving them to work out the weekly calendar).
        self._notify(
            f"Rollout phase complete: {self.service} holds at {result.final_weights.canary}%",
            f"{self.spec.image}: {result.reason}. Next: {self._next_phase()}",
        )
        self._holding_summary(result)

    def _next_phase(self) -> str:
        """When the phase after the one just completed may start, in words."""
        record = self._seen
        index = record.weekly_phase_index if record is not None else -1
        phases = self.spec.phases
        if 0 <= index < len(phases) - 1 and record.weekly_phase_started_at is not None:
            due, now = weekly.next_phase_due(record.weekly_phase_started_at, **self.spec.phase_calendar(record)), \
                self.env.clock.now()
            following, when = phases[index + 1].name, weekly.describe(due, self.spec.weekly_timezone)
            if due <= now:  # the phase outlasted its calendar slot (a pause answered days late)
                return f"{following} {weekly.due_since(due, self.spec.weekly_timezone)}"
            return (f"{following} may start from {when}{on_the_wall(self.env.clock, due, now)}; the first "
                    "`advance_phase` run from then on starts it.")
        return "the next weekly phase starts on schedule."

    def _phase_name(self) -> str:
        """The name of the weekly phase this run holds after, as the ledger last showed it."""
        record = self._seen
        index = record.weekly_phase_index if record is not None else -1
        phases = self.spec.phases
        return phases[index].name if 0 <= index < len(phases) else "its weekly phase"

    def _holding_summary(self, result: RolloutResult) -> None:
        """The summary a promoted or rolled-back run leaves, for a run that ends a weekly phase:
        without it, the run page did not say that the phase passed, where the traffic holds, or
        when the next phase is due. The phase is recorded complete by now: an API error here is
        logged, never a failed run (whose hooks would roll back)."""
        name = self._phase_name()
        nxt = f"**Next:** {self._next_phase()}"
        weights = result.final_weights
        self._summary(
            f"# Rollout of `{self.spec.image}` holding after {name}\n\n{result.reason}\n\n"
            f"**Holds at:** {weights} (stable/canary): the canary serves {weights.canary}% of traffic.\n\n"
            f"{nxt}" + self._stage_tables(result.stages))

    def _stage_tables(self, stages: list[StageReport] | tuple[StageReport, ...]) -> str:
        """The stage tables a summary ends with, after a blank line: the ledger's record of the
        stages before this run's (``earlier_stages``), then this run's. The run that promotes week 3
        judged its 75 % and 100 % alone: its summary said "all 5 stages passed" above two rows."""
        before = min((s.stage_index for s in stages), default=len(self.spec.stages))
        parts = [part for part in (self.earlier_stages(before) if before > 0 else None,
                                   markdown_table(stages) if stages else None) if part]
        return "".join(f"\n\n{part}" for part in parts)

    def _summary(self, markdown: str) -> None:
        """The run's summary artifact, made after the outcome is recorded (promoted, rolled back,
        holding): through ``for_people``, so a refused one cannot replace the RollbackUnrecorded
        that tells people what the ledger missed, nor have a hook roll back a promotion."""
        for_people("summary", lambda: create_markdown_artifact(
            key=artifact_key(self.service, "summary"), markdown=markdown, description="rollout summary"))

    def promoted(self, result: RolloutResult) -> None:
        now = self.env.clock.now()
        # The window is recorded with the promotion itself, so a run that dies right after still
        # leaves a watch owed (the watchdog resumes it) and a rollback still open.
        window = {"monitor_until": now + self.spec.monitor_seconds} if self.spec.monitor_seconds > 0 else {}
        self._record(
            Transition(at=now, kind="promote", actor=self.actor, to_weights=result.final_weights, comment=result.reason),
            phase=RolloutPhase.PROMOTED, weights=result.final_weights, **window,
        )
        self.give_back()
        self._summary(f"# Rollout of `{self.spec.image}` promoted\n\n{result.reason}" + self._stage_tables(result.stages))
        self._notify(
            f"Rollout complete: {self.service}",
            f"{self.spec.image} serves {result.final_weights.canary}% of traffic. {result.reason}.",
        )

    def window_ended(self, result: RolloutResult, *, page_not_sent: bool = False, page_lost: bool = False) -> None:
        """The summary again once the monitoring window is over, if the window did not end as the
        promotion's summary says: rolled back, promoted unverified, or a page of its end SNS refused
        (``page_not_sent``: the decommission's, or "Decommission skipped"; ``result.reason`` says
        which and why), or whose answer was lost (``page_lost``: SNS may have delivered it). That
        summary, what people open first, was the run's last word, and read "promoted" over a run
        that returned rolled_back, or whose window's page nobody got; "NOT sent" over one whose page
        may have gone out."""
        if result.outcome == "rolled_back":
            heading = "rolled back"
        elif result.monitoring_verified is False:
            heading = "promoted (monitoring unverified)"
        elif page_lost:
            heading = "promoted (whether a page of its monitoring window was sent is NOT known)"
        elif page_not_sent:
            heading = "promoted (a page of its monitoring window was NOT sent)"
        else:
            return
        steps = "\n".join(f"- {step}" for step in result.rollback.steps) if result.rollback is not None else ""
        self._summary(f"# Rollout of `{self.spec.image}` {heading}\n\n**Why:** {markdown_cell(result.reason)}\n\n"
                      + steps + self._stage_tables(result.stages))


def _rolled_back_rule(record: RolloutRecord) -> None:
    """A ledger rule: the rollout is rolled back (or rolling back): a ``not-applied`` entry is
    never the newest of a rollout some run still drives."""
    if record.phase not in ENDED_PHASES:
        raise LedgerError(f"rollout {record.rollout_id!r} of service {record.service!r} is {record.phase.value}, "
                          "not rolled back")


def on_the_wall(clock, due: float, now: float) -> str:
    """When ``due`` (rollout clock) comes in wall time, for a clock faster than real time: the
    cron fires on the wall calendar, so a run by hand in between finds nothing to do and should
    say how long (``rollway.clock.on_the_wall``)."""
    return wall_wait(getattr(clock, "speed", 1.0), due, now)
