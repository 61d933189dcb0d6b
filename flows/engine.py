"""The rollout loop shared by the canary and the progressive flows: observe -> decide -> act -> record.

The loop is plain Python calling thin tasks, so the flows that use it differ only in what
they record (a ledger, artifacts) and how they ask people (pauses). Decisions come from
``rollway.decide.decide`` alone.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from contextlib import AbstractContextManager, nullcontext
from typing import Callable, NamedTuple, NoReturn, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from prefect import get_run_logger
from prefect.context import FlowRunContext

from flows.approvals import duration_said, pause_question
from flows.renewing import recovered_said, trouble_said
from flows.untraced import without_traceback
from rollway.approvals import (ApprovalAnswer, Approver, TakenOver, ask, next_stage_for, taken_over_said,
                               taken_over_timeout, takes_watch)
from rollway.aws.cloudwatch import window_utc
from rollway.aws.ledger import STORAGE_ERRORS
from prefect.transactions import transaction

from rollway.decide import (
    PERSON_HELD,
    Hold,
    Pause,
    PhaseComplete,
    Promote,
    Rollback,
    SetWeight,
    StageState,
    analysis_start,
    decide,
    passed_window,
    stage_end,
    stage_over,
    window_looked,
)
from rollway.aws.errors import AdapterError, WeightMismatch, answer_lost
from rollway.bounds import seconds_said
from rollway.deadline import ReadBackUnanswered, within
from rollway.environment import Environment
from rollway.errors_pickle import PicklableError
from rollway.judge import assess, canary_rate, judge_for_pause_window, judge_for_stage, setting_percent
from rollway.judge.guardrails import asked_by, unattributed
from rollway.latency_unpublished import unmeasured_slow
from rollway.ledger import PassedLooks, RolloutEnded, RolloutMovedOn, RolloutSuperseded, timeout_reason
from rollway.model import Interval, Observation, Verdict, Weights
from rollway.one_line import on_one_line
from rollway.one_line import shown as escaped  # `shown` names a stage list below
from rollway.phases import Phase
from rollway.ports import TrafficRouter
from rollway.report import RollbackResult, RolloutResult, StageReport, markdown_table
from rollway.reports import NOTICE_LOST
from rollway.spec import BACKGROUND_SECONDS, RolloutSpec, Stage
from rollway.weights_read import FirstRead
from tasks import ecs, metrics, traffic, undoable
from tasks.inline import run_as
from tasks.flags import PATIENT_FIRST_DELAY_SECONDS
from tasks.retry import FINAL_DYNAMODB, again



class Journal(Protocol):
    """Where the loop records what happened (the ledger, artifacts, notifications)."""

    lease_seconds: float | None
    """How long (wall seconds) the run's hold on the rollout lasts unless ``tick`` renews it; None:
    the journal holds nothing."""

    lease_written: float | None
    """The wall time the run's lease was last written before the loop began (None: not known, taken
    as when the loop began)."""

    def tick(self, state: StageState, verdict: Verdict | None) -> None: ...

    def shifted(self, state: StageState, before: Weights, after: Weights, reason: str, flags: list,
                from_stage: int | None) -> None: ...

    def renewing(self) -> AbstractContextManager:
        """Keep the run's hold on the rollout while a shift waits for the canary's tasks (its
        lease, renewed at each tick otherwise); a journal that holds nothing does nothing."""

    def stage_passed(self, state: StageState, report: StageReport) -> None: ...

    def looked(self, looks: PassedLooks) -> None:
        """Record ``looks``, a passed stage's windows looked at (``PassedWindows``), before the look
        at the newest of them judges it: a run resuming the rollout counts on from them. Raises when
        they cannot be recorded (the look is then not judged)."""

    def stage_ended(self, state: StageState, report: StageReport) -> None:
        """Every stage that ends (passed, accepted, rejected, rolled back) shows its table."""

    def earlier_stages(self, before: int) -> str | None:
        """What is recorded of the stages before stage index ``before`` (judged by an earlier
        weekly phase's run, or a run that died), as markdown for the approval form; None: nothing."""

    def asking(self, pause: Pause, held_by: ApprovalAnswer | None = None, judging: str = "",
               taken_over: TakenOver | None = None) -> NoticeUnsent | None:
        """A person is about to be asked ``pause``'s question (the run waits for the answer);
        ``held_by``: the person's hold this pause asks again after, if it does; ``judging``: what
        the form says of the canary judged meanwhile ("" when nothing is); ``taken_over``: the pause
        a run that died waiting left open, asked again (``taken_over``). Returns why people were
        not told of this wait (SNS refused its notice, or lost its answer, now or at an earlier asking
        of it), or None."""

    def taken_over(self, pause: Pause) -> TakenOver | None:
        """The pause ``pause`` asks again when the run that asked it died waiting and this run took
        the rollout over (``rollway.approvals.taken_over_pause``); None: it asks anew."""

    def answered(self, pause: Pause, answer: ApprovalAnswer, approved_stage: int | None) -> None: ...

    def taking_back(self, pause: Pause, reason: str) -> None:
        """Before the run rolls back on what its look at ``pause`` found (``reason``): take the
        rollout back (nothing held it while the pause waited); raises RolloutMovedOn when another
        run drove it meanwhile, RolloutSuperseded when another rollout began meanwhile, and this run
        then stands down."""

    def refused(self, pause: Pause, answer: ApprovalAnswer, reason: str) -> None:
        """A person's answer the run refused (``reason``), recorded without closing the pause."""

    def not_applied(self, pause: Pause, answer: ApprovalAnswer, reason: str) -> None:
        """A person's answer to ``pause`` the run read only after it had rolled the rollout back
        (``reason``: why it was not applied), recorded on the rolled-back rollout; never raises."""

    def rolling_back(self, reason: str, actor: str) -> str | None:
        """Record the rollback's intent; what could not be recorded and why, or None."""

    def rollback_failed(self, error: BaseException) -> None:
        """The rollback begun by ``rolling_back`` raised ``error`` (it stays open for the next one)."""

    def overtaken(self, reason: str, rollback: "Rollbacker") -> None:
        """Someone else began rolling the rollout back while this run shifted (``shifted`` raised
        RolloutEnded): make sure the traffic the shift may just have moved is off the canary,
        without a second rollback record or a second page."""

    def rolled_back(self, result: RollbackResult, stages: list[StageReport]) -> None: ...

    def promoted(self, result: RolloutResult) -> None: ...

    def phase_complete(self, result: RolloutResult) -> None: ...


def pause_notice(env: Environment, spec: RolloutSpec, pause: Pause, *, paused_at: datetime,
                 held_by: ApprovalAnswer | None, judging: str, weights: Weights | None,
                 taken_over: str | None = None) -> NoticeUnsent | None:
    """Tell people (an SNS alert: a message SNS refuses is logged, never a failed run whose hooks
    would roll back) that the run waits for their answer to ``pause``: the question, the run, by
    when, what the run judges meanwhile (``judging``) and how to answer; ``held_by``: the person's
    hold it is asked again after; ``weights``: where the traffic holds (None: not known here);
    ``taken_over``: why a run that took the rollout over asks a dead run's pause again
    (``taken_over_said``): a second notice of the same pause, from another run, read as a new one.

    Returns:
        None once sent; else why SNS did not take it (or that its answer was lost), which the
        journal records on the rollout and the form says: logged alone, nobody knew an answer was
        waiting, and the pause timed out."""
    service = env.targets.canary_service
    context = FlowRunContext.get()
    run = f" (flow run {context.flow_run.name})" if context and context.flow_run else ""
    where = f" (traffic at {weights}, stable/canary)" if weights is not None else ""
    again = ""
    if held_by is not None:
        # Typed in the form's text areas: on one line (its line breaks read as the page's own lines),
        # its other control characters shown escaped, as the run's log shows them (an escape
        # sequence pasted from a terminal cleared or recoloured the page in a terminal mail client).
        comment = on_one_line(held_by.comment)
        why = f" ({comment})" if comment else ""
        again = f"{on_one_line(held_by.approver)} answered hold{why}; asked again. "
    elif taken_over is not None:
        again = f"{taken_over}. "
    alerted = metrics.alert_or_refusal(
        env.notifier, f"Rollout waits for a person{' again' if again else ''}: {service}",
        f"{again}{spec.image} on {service}{where} waits for an answer{run}: "
        f"{pause_question(pause, spec.approvals, paused_at)}.\n"
        + (f"{judging}\n" if judging else "") +
        # Whoever reads this on a phone may want neither to approve nor to roll back yet.
        "Answer from the Prefect UI (the paused run: Resume), or with `rollway promote` (approve), "
        "`rollway hold` (keep the traffic where it is; asked again later) or `rollway abort` (reject: roll back).",
        targets=env.targets,
    )
    return None if alerted.failure is None else NoticeUnsent(alerted.failure, alerted.lost)


class NoticeUnsent(NamedTuple):
    """Why a pause's "Rollout waits for a person" notice may not have reached anyone."""

    said: str  # SNS's answer, as logged
    lost: bool = False  # a lost answer (SNS may have delivered it), not a refusal


def not_told(unsent: NoticeUnsent) -> str:
    """The form's first line when the pause's notice was not sent, or may not have been."""
    if unsent.lost:
        return (f"> **The \"Rollout waits for a person\" {NOTICE_LOST}** ({unsent.said}). Make sure whoever "
                f"answers it knows, or it times out as its line below says.\n\n")
    return (f"> **Nobody was told this run waits: the \"Rollout waits for a person\" notice was NOT sent** "
            f"({unsent.said}). Tell whoever answers it, or it times out as its line below says.\n\n")


class NullJournal:
    lease_seconds = None
    lease_written = None

    def tick(self, state, verdict): pass

    def shifted(self, state, before, after, reason, flags, from_stage): pass

    def renewing(self): return nullcontext()

    def stage_passed(self, state, report): pass

    def looked(self, looks): pass

    def stage_ended(self, state, report): pass

    def earlier_stages(self, before): return None

    def asking(self, pause, held_by=None, judging="", taken_over=None): return None

    def taken_over(self, pause): return None

    def answered(self, pause, answer, approved_stage): pass

    def taking_back(self, pause, reason): pass

    def refused(self, pause, answer, reason): pass

    def not_applied(self, pause, answer, reason): pass

    def rolling_back(self, reason, actor): pass

    def rollback_failed(self, error): pass

    def overtaken(self, reason, rollback):
        # Nothing records a rollout here, so nothing else rolled it back: this run does.
        rollback(reason)

    def rolled_back(self, result, stages): pass

    def promoted(self, result): pass

    def phase_complete(self, result): pass


class Rollbacker(Protocol):
    def __call__(self, reason: str, *, actor: str = "judge", ledger_failure: str | None = None,
                 notify: bool = True, traffic_only: bool = False) -> RollbackResult:
        """Roll back; ``actor``: who asked (the judge, a guardrail, the person who rejected, "timeout");
        ``ledger_failure``: what the journal could not record of it, told with the rollback;
        ``notify``: False when another rollback of the rollout has told people already;
        ``traffic_only``: only put the traffic back on stable (another rollback does the rest)."""


def canary_capacity(stable_desired: int, weight: int) -> int:
    """Tasks the canary needs to carry ``weight`` percent of what ``stable_desired`` tasks carry."""
    return max(1, math.ceil(stable_desired * weight / 100))


HEALTHY_POLL_MAX_SECONDS = 5.0


class TooFewHealthyTargets(PicklableError, RuntimeError):
    """``wait_healthy`` ran out: the target group had ``healthy`` of the ``needed`` healthy targets
    at its last look, made at its bound. A RuntimeError still, as the wait's refusal always was."""

    def __init__(self, message: str, *, healthy: int, needed: int) -> None:
        super().__init__(message)
        self.healthy, self.needed = healthy, needed


def wait_healthy(env: Environment, version: str, timeout_seconds: float, needed: int = 1, *,
                 setting: str | None = None, between: Callable[[], None] | None = None) -> int:
    """Poll until the target group has ``needed`` healthy targets: traffic never goes to an
    empty group, nor a stage's share to fewer targets than were started to carry it.

    ``needed`` > 1 (a forward shift, sized by ``canary_capacity``): the targets that served the
    last stage are healthy long before those just started for this one, and the load balancer
    sends the new share to the healthy ones alone; a shift made as soon as one was healthy put
    25 % of the traffic on the one task sized for 5 %, whose errors the judge then counted.

    The first look comes at once (a service that already runs has healthy targets); then the
    gap doubles up to 5 s, since new targets take a health check interval or more to change
    state, and each look is a DescribeTargetHealth call and a task run. Each look is made on the
    router's bounded reads and given up on at the timeout: on the run's clients (six attempts of
    10 s, kept for the writes) a load balancer that stopped answering held the wait a minute or
    more past it, silent.

    ``setting``: what sets ``timeout_seconds``, as a person changes it ("the spec's
    healthy_timeout_seconds"): the wait's line and its refusal name it and say what to do (a bare
    figure of seconds named neither). None: the caller says so itself (finalize's ``ran_out``).

    ``between``: called before each pause between looks (a shift's watch on the canary's traffic,
    ``PauseWatch`` with ``scaling``); what it raises ends the wait.

    Raises:
        TooFewHealthyTargets: too few healthy targets at the timeout (how many, of how many).
        ReadBackUnanswered: a look not answered by the timeout (``READ_BACK_MARGIN_SECONDS``).
    """
    reader = env.router.reading(timeout_seconds)
    deadline = time.monotonic() + timeout_seconds
    gap, told = 0.1, False
    while True:
        healthy = traffic.healthy_targets(reader, version, wait=(deadline - time.monotonic(), timeout_seconds))
        if healthy >= needed:
            return healthy
        if not told:
            told = True
            # Health checks take minutes: say what the run waits for, or it looks stuck.
            # The setting's figure as it was given (``seconds_said``): ``:g`` cut 1000.125 s to "1000.12 s".
            get_run_logger().info("the %s target group has %d of the %d healthy target(s) needed; waiting up to "
                                  "%s%s for the load balancer's health checks", version, healthy, needed,
                                  seconds_said(timeout_seconds), f" ({setting})" if setting else "")
        left = deadline - time.monotonic()
        if left <= 0:
            waited = seconds_said(timeout_seconds) + (f" ({setting})" if setting else "")
            advice = "" if not setting else (
                f": see why its targets fail the load balancer's health checks (the target group's health check, "
                f"the {version} service's tasks and their logs), or raise {setting} if they only need longer")
            if healthy == 0:
                raise TooFewHealthyTargets(
                    f"the {version} target group has no healthy targets after {waited}; refusing to send traffic to "
                    f"it{advice}", healthy=0, needed=needed,
                )
            # More than one stable target is waited for by a rollback alone (all the traffic goes back).
            needs = (f"of the {needed} needed for all the traffic; refusing to move the traffic to it"
                     if version == "stable" else
                     f"of the {needed} this stage needs; refusing to send it the stage's traffic")
            raise TooFewHealthyTargets(f"the {version} target group has {healthy} healthy target(s) after "
                                       f"{waited}, {needs}{advice}", healthy=healthy, needed=needed)
        if between is not None:
            between()
            # The watch's look took some of what was left (at the bound, one more look is made).
            left = max(0.0, deadline - time.monotonic())
        time.sleep(min(gap, left))
        gap = min(gap * 2, HEALTHY_POLL_MAX_SECONDS)


def set_and_verify(env: Environment, target: Weights, timeout_seconds: float, *, tries: int = 1,
                   first: FirstRead | None = None, dropping: bool = False, moving: str = "the shift") -> Weights:
    """Set the weights (no flags move with them) and read them back until they match.

    ``first`` is given what the write's first read of the rule found, before any of its sends
    (``FirstRead``): the weights the move took the traffic from; known too when the move fails,
    if ``dropping`` (a rollback's router tells each send's read before its write).

    A ModifyRule whose answer was lost (a dropped connection, a read timeout) may have moved the
    traffic all the same: the read-back decides. When it shows ``target``, the shift landed and
    the rollout goes on, rather than failing a run (and rolling it back) over an answer that
    never came. When it does not, or AWS said it did not act, the write's error is raised.

    ``tries`` > 1 (a rollback's move to stable): a write that did not land is sent again, up to
    that many times in all, 1 s and then 2 s apart, unless the load balancer refused it for good
    (``traffic.final_for_elb``). Sending the same weights twice is harmless, and leaving users on
    a canary being rolled back over one throttled or lost ModifyRule is not. While a send is left,
    a lost answer is read back for ``LOST_ANSWER_READ_BACK_SECONDS`` at most, not ``timeout_seconds``,
    and the read-back's error names that bound (``LOST_ANSWER_BOUND``).

    ``dropping`` (a rollback's move to stable): a rule that has come to forward to a third target
    group as well (or with weight 0 to both) is written all the same, dropping that group, and
    ``first.dropped`` says what was dropped (``TrafficRouter.dropping_others``); any other write
    refuses such a rule before it.

    ``moving``: what the move is, as the run's log names it ("the rollback's move back").

    A send whose answer was lost and whose read-back went unanswered may have landed: if the sends
    after it fail too, that send's error is the one raised (its cause the read-back not answered,
    as ``undoable.landed_although_lost`` raises it), the last one's logged. Raised, the last send's
    refusal (a throttle) had a rollback page "could NOT be moved back" and "Done before it failed:
    nothing" of a move that may have landed. What the load balancer showed last decides
    (``may_have_landed``): a later send's read-back that answered with other weights says that
    send did not land, and the send's own error is raised. A refusal for good after it (AWS's, a
    permission denied; or rollway's own before the write, a rule gone) is raised as
    ``RefusedAfterLostAnswer``, which names both; as is a later send the load balancer took whose
    read-back was refused for good (the rule deleted in between: ``taken``); with no earlier send in
    doubt, that send is raised as ``TakenNotReadBack``.

    A send AWS took whose check read then got no answer, or an answer short of a refusal for good (a
    throttle, AWS's own side failing), to its last look (``traffic.unknown_after``) landed as far as
    AWS said, and is not read back: on
    the last try, that ReadBackUnanswered is raised (from the read's error), as a check read not
    answered by its bound is; before it, the move is sent again, and if the sends after it fail,
    it is the one raised, as a send whose lost answer was not read back is. Raised as the read's
    own error, it had a rollback page "could NOT be moved back" of a move the load balancer took.
    So had one whose read-back failed before AWS answered it (credentials not renewed for the read):
    before the last try it is sent again, and if the sends after it fail, it is raised as the
    ``TakenNotReadBack`` it is on the last. A send whose answer was lost and whose read-back was then
    refused for good (the rule deleted, DescribeRules denied, a ValidationError), or failed before AWS
    answered it, may have landed as well, and goes the same way, its ``lost`` the send's error: raised
    as the read's own error, a rollback paged "could NOT be moved back" and "Done before it failed:
    nothing" of it.
    """
    delay = WRITE_RETRY_FIRST_DELAY_SECONDS
    first = FirstRead() if first is None else first
    writer = env.router.dropping_others(first) if dropping else env.router
    landed: BaseException | None = None  # the last send not known to have failed to land
    for attempt in range(1, tries + 1):
        # While a send is left, a lost answer is read back briefly: a write that did not land is
        # sent again seconds later rather than after the whole read-back wait (users wait on it).
        lost = timeout_seconds if attempt == tries else min(timeout_seconds, LOST_ANSWER_READ_BACK_SECONDS)
        # Named as the bound it is: "within 5 s (verify_timeout_seconds)" sent people to raise a
        # setting that does not set this wait.
        bound = "verify_timeout_seconds" if lost == timeout_seconds else LOST_ANSWER_BOUND
        sent = False  # the send answered, or its lost answer was read back: what fails after is the read-back's
        # The send's own error, when its answer was lost and its read-back then failed on an error of its
        # own (refused for good, or before AWS answered it): it may have landed, as a send taken may.
        answer: list[BaseException] = []
        try:
            read = _send_once(env, writer, target, lost, first, bound, moving, answer)
            sent = True
            return read if read is not None else traffic.verify_weights(env.router, target, timeout_seconds)
        except (BotoCoreError, ClientError) as err:
            # A send AWS took whose check read got no answer, or one short of a refusal for good (a
            # throttle, AWS's own side failing, a code of no known kind: ``traffic.unknown_after``), to
            # the last: the move landed as far as AWS said, not read back. Raised as the read's own
            # error, it was taken for a send that did not land, and a rollback paged "could NOT be
            # moved back" of a move the load balancer took. A read refused for good is raised below.
            unread = traffic.unknown_after(err, timeout_seconds, "verify_timeout_seconds") if sent else None
            lost_answer = answer[0] if answer else None
            if unread is not None:
                landed, unread.__cause__ = unread, err  # a later failed send raises it from the read's error
                if attempt == tries:
                    raise unread  # from the read's error, set above
                failed = f"was taken, not read back ({unread})"
            else:
                earlier, landed = landed, may_have_landed(landed, err)
                if earlier is not None and landed is None:
                    get_run_logger().warning(
                        "try %d of %d read the weights back as %s, not %s: the earlier try %s, so it is not the one "
                        "failed on", attempt, tries, read_back_of(err), target, _not_held(earlier))
                if attempt == tries or traffic.final_for_elb(err):
                    _fail_unread_if_taken(sent, landed, err, target, tries, lost=lost_answer)
                    if landed is None or landed is err:
                        raise
                    _fail_after_lost_answer(landed, err, target, attempt, tries, taken=sent,
                                            again_lost=lost_answer is not None)
                failed = f"failed ({err})"
                if sent or lost_answer is not None:
                    # The send was taken (or its answer lost), and its read-back failed before AWS answered
                    # it (credentials not renewed for the read): "setting the weights failed" was untrue of
                    # it, and it may have landed. Forgotten, the sends after it that failed raised their own
                    # error, and a rollback paged "could NOT be moved back" of a move that may have landed.
                    landed = TakenNotReadBack(target, err, lost=lost_answer)
                    landed.__cause__ = err
                    failed = (f"was taken, but its read-back failed ({err})" if sent else
                              f"had its answer lost ({lost_answer}), and its read-back failed ({err})")
            get_run_logger().warning("setting the weights to %s %s; sending it again in %g s (try %d of %d)",
                                     target, failed, delay, attempt + 1, tries)
            time.sleep(delay)
            delay *= 2
        except Exception as err:
            # Rollway's own refusal of a send (a rule gone, another service's rule left on its path)
            # is not AWS's error, and escaped the branch above: an earlier send that may have landed
            # was forgotten, and a rollback paged "could NOT be moved back" and "Done before it failed:
            # nothing". So did one failing the read-back of a send the load balancer took (the rule
            # deleted in between): it is raised with the earlier send too, or, none in doubt, as the
            # send taken (``_fail_unread_if_taken``). A read-back that says what
            # the load balancer shows now (other weights), or that it did not answer (the move taken,
            # not read back), is raised as it is.
            if sent and isinstance(err, (WeightMismatch, ReadBackUnanswered)):
                raise
            if traffic.final_for_elb(err):
                _fail_unread_if_taken(sent, landed, err, target, tries, lost=answer[0] if answer else None)
            if landed is None:
                raise
            _fail_after_lost_answer(landed, err, target, attempt, tries, taken=sent, again_lost=bool(answer))
    raise AssertionError("unreachable")


def _fail_after_lost_answer(landed: BaseException, err: BaseException, target: Weights, attempt: int,
                            tries: int, *, taken: bool = False, again_lost: bool = False) -> NoReturn:
    """End the move on ``err``, the failure of try ``attempt`` of ``tries``, after the earlier send
    ``landed`` whose answer was lost, or that AWS took (``landed``: its check read's
    ReadBackUnanswered), not read back: it may have landed, which what is raised
    says. ``taken``: try ``attempt`` was taken by the load balancer, and ``err`` failed its read-back;
    ``again_lost``: try ``attempt``'s answer was lost too, and ``err`` failed its read-back.
    A refusal for good (``traffic.final_for_elb``) is raised as ``RefusedAfterLostAnswer``, unless
    ``landed`` was taken (or its answer lost) and its read-back failed (``TakenNotReadBack``: raised
    again with the refusal as its ``again``); any other failure is logged and ``landed`` raised, a bug (neither
    AWS's error nor rollway's refusal) logged with its own traceback, which raising ``landed`` leaves off."""
    if traffic.final_for_elb(err) and not isinstance(landed, TakenNotReadBack):
        raise RefusedAfterLostAnswer(landed, err, taken=taken, again_lost=again_lost) from landed
    if traffic.final_for_elb(err) and not (taken or again_lost):
        # The move sent again was refused for good after one taken (or lost) whose read-back failed:
        # raised as that one, with the refusal beside it, which the next run meets first.
        raise TakenNotReadBack(landed.target, landed.refused, lost=landed.lost, again=err) from landed.__cause__  # type: ignore[attr-defined]
    failed = (f"try {attempt} of {tries} setting the weights to {target} was taken, and reading them back failed"
              if taken else f"try {attempt} of {tries} setting the weights to {target} had its answer lost, and "
              "reading them back failed" if again_lost
              else f"setting the weights to {target} failed on try {attempt} of {tries}")
    bug = not isinstance(err, (BotoCoreError, ClientError, AdapterError))
    get_run_logger().error(
        "%s (%s); an earlier try %s was not read back, so it may have landed: failing on that one (%s)", failed, err,
        _how_sent(landed), landed, exc_info=err if bug else None)
    raise landed from landed.__cause__


def _fail_unread_if_taken(sent: bool, landed: BaseException | None, err: BaseException, target: Weights,
                          tries: int, *, lost: BaseException | None = None) -> None:
    """Raise ``TakenNotReadBack`` when ``err``, the last failure of a move with sends to spare
    (``tries`` > 1, a rollback's), failed the read-back of a send the load balancer took (``sent``),
    or of one whose answer was lost (``lost``: the send's own error, its read-back then refused for
    good or failed before AWS answered it), no earlier send in doubt (``landed`` None, or an earlier
    one whose read-back failed as well, which this later one takes over): raised as the read's own
    error, it was paged as a move that "could NOT be moved back" and "Done before it failed:
    nothing", of a move that may have landed. A move sent once (a shift, a finalize) raises the
    read's own error, which its callers say as they did."""
    if (sent or lost is not None) and (landed is None or isinstance(landed, TakenNotReadBack)) and tries > 1:
        raise TakenNotReadBack(target, err, lost=lost) from err


class TakenNotReadBack(PicklableError, RuntimeError):
    """A send of the weights ``target`` the load balancer took (its ModifyRule answered), or whose
    answer was lost (``lost``: the send's own error, in words), whose read-back was then refused for
    good (``refused``: the rule deleted in between, DescribeRules denied), or failed before AWS
    answered it (a BotoCoreError: credentials not renewed for the read), no earlier send in doubt:
    the move may have landed, and is not known to have. Raised from ``refused``. "The load balancer
    took" was untrue of a send whose answer was lost: it may not have."""

    lost: str | None = None  # a class default: one pickled before the field existed was taken
    again: BaseException | None = None  # likewise: none was sent again and refused

    def __init__(self, target: Weights, refused: BaseException, *, lost: BaseException | str | None = None,
                 again: BaseException | None = None) -> None:
        self.target, self.refused, self.lost, self.again = target, refused, None if lost is None else str(lost), again
        sent = (f"the load balancer took the weights {target}, but" if self.lost is None
                else f"the answer to setting the weights {target} was lost ({self.lost}), and")
        # ``again``: the move sent after it, refused for good (the rule deleted, ModifyRule denied), which
        # fails the next run the same way: said only in the log, the page sent people to put right the
        # read-back's error alone.
        refused_again = "" if again is None else f"; sent again, the move was refused: {again}"
        super().__init__(f"{sent} their read-back {self.went}: {refused}{refused_again}")

    @property
    def went(self) -> str:
        """How its read-back ended, as every message of it says it: "was refused" was untrue of a read
        that failed before AWS answered it (nothing refused it; what its error says is to put right)."""
        return "failed" if isinstance(self.refused, BotoCoreError) else "was refused"


def _how_sent(landed: BaseException) -> str:
    """How the earlier send ``landed`` went, for the log ("the earlier try whose answer was lost"):
    AWS took it (its check read failed without an answer: ``landed`` is that read's
    ReadBackUnanswered; or before AWS answered it: a TakenNotReadBack), or its answer was lost."""
    return "that the load balancer took" if _taken(landed) else "whose answer was lost"


def _taken(landed: BaseException) -> bool:
    """Whether the earlier send ``landed`` was taken by the load balancer (``_how_sent``)."""
    if isinstance(landed, TakenNotReadBack):
        return landed.lost is None  # one whose answer was lost is not known to have been taken
    return isinstance(landed, ReadBackUnanswered)


def _not_held(earlier: BaseException) -> str:
    """What a later read-back showing other weights says of the ``earlier`` send, for the log: one
    whose answer was lost did not land (or was moved since); one the load balancer took landed as
    far as AWS said, so the weights were moved since, or the load balancer does not show them yet
    ("did not land" was untrue of it)."""
    if _taken(earlier):
        return f"{_how_sent(earlier)} is not what it holds now (moved since, or not shown yet)"
    return f"{_how_sent(earlier)} did not land (or was moved since)"


def read_back_of(err: BaseException) -> Weights | None:
    """The weights a send's read-back found other than the ones sent, when ``err`` (the send's own
    error) was raised after it answered (``undoable.landed_although_lost`` raises it from None,
    the read-back's WeightMismatch its context); None when nothing was read back."""
    context = err.__context__
    return context.actual if err.__suppress_context__ and isinstance(context, WeightMismatch) else None


def may_have_landed(earlier: BaseException | None, err: BaseException) -> BaseException | None:
    """Which failed send may have landed after ``err`` failed the last (``earlier``: the one that
    may have before it, if any): the load balancer's last answer decides.

    ``err`` itself when its answer was lost and its read-back went unanswered; None when its
    read-back answered with other weights (the earlier send did not land either, or someone moved
    the traffic since: what the load balancer showed last is what users get); ``earlier`` when
    nothing was read back (a throttle, a refusal: they say nothing of the earlier send)."""
    if isinstance(err.__cause__, ReadBackUnanswered):
        return err
    return None if read_back_of(err) is not None else earlier


class RefusedAfterLostAnswer(PicklableError, RuntimeError):
    """A send of the weights refused for good (``refused``: a permission denied, a rule gone) after
    an earlier send whose answer was lost and whose read-back went unanswered (``lost``, raised from
    that ReadBackUnanswered): the earlier one may have landed, and sending again will not, until
    what the refusal names is put right. Or (``taken``) the send again was taken by the load balancer,
    and its read-back refused for good (a rule deleted in between, DescribeRules denied): it may have
    landed too, and "the weights were refused" was untrue of it. So was it of a send again whose answer
    was lost too (``again_lost``), its read-back refused for good. Raised from ``lost``.

    Attributes:
        lost: the earlier send's error; or, of a send AWS took whose check read got no answer or one
            short of a refusal for good (``traffic.unknown_after``), that read's ReadBackUnanswered.
        refused: the refusal (of the send again, or, ``taken``, of its read-back).
        taken: the load balancer took the send again; ``refused`` failed its read-back.
        again_lost: the send again's answer was lost too; ``refused`` failed its read-back.
    """

    taken: bool = False  # a class default: one pickled before the field existed was a send refused
    again_lost = False  # as ``taken``

    def __init__(self, lost: BaseException, refused: BaseException, *, taken: bool = False,
                 again_lost: bool = False) -> None:
        self.lost, self.refused, self.taken, self.again_lost = lost, refused, taken, again_lost
        again = ("the weights were taken but could not be read back" if taken
                 else "its answer was lost too and the weights could not be read back" if again_lost
                 else "the weights were refused")
        super().__init__(f"{lost}; sent again, {again}: {refused}")


# Wall seconds: throttling and a load balancer's own errors pass on AWS's time, not the rollout clock's.
# A rollback's move to stable is a write Prefect runs once: as patient as its flag disables and undos.
WRITE_RETRY_FIRST_DELAY_SECONDS = PATIENT_FIRST_DELAY_SECONDS
# How long a lost answer is read back before the write is sent again (wall seconds): a ModifyRule
# that landed shows in a read-back within about a second.
LOST_ANSWER_READ_BACK_SECONDS = 5.0
# What sets that wait, as a read-back's error names it: no setting does (it is not the spec's
# verify_timeout_seconds, which bounds the read-back of the last send and of a send that answered).
LOST_ANSWER_BOUND = "a lost answer's brief read-back before the move is sent again"

DRIFT_LOOK_SECONDS = 300.0
"""How often (rollout-clock seconds) a stage's bake reads the load balancer's weights to find them
moved by someone else: at the first look this long after the last read that answered. A read at every
look (one a minute for hours) was a fifth of a stage's orchestration overhead."""


def _send_once(env: Environment, writer: TrafficRouter, target: Weights, lost_timeout_seconds: float,
               first: FirstRead, bound: str, moving: str, answer: list[BaseException]) -> Weights | None:
    """Send ``target`` once: None when the load balancer answered (its read-back is the caller's),
    else the weights a lost answer was read back as (``undoable.landed_although_lost``). A lost
    answer whose read-back failed on its own error (refused for good, or before AWS answered it)
    raises that error, the send's own put in ``answer``: the send may have landed."""
    log = get_run_logger()

    def waiting(elapsed: float) -> None:
        log.warning("still waiting for Elastic Load Balancing to take the weights %s (DescribeRules, then ModifyRule "
                    "on load balancer %s) after %.0f s; not given up on: each call is asked again for up to a minute "
                    "before it fails", target, env.targets.load_balancer, elapsed)

    try:
        # Not bounded: the run's clients (six attempts of 10 s) outlast a throttled or slow load
        # balancer, and a rollback's move to stable must not give up before they do. Said while it
        # lasts instead: a load balancer that stopped answering held the rollback a minute, silent.
        first.answered(within(math.inf, lambda: traffic.set_weights(writer, target), name="rollway-write-elbv2",
                              waiting=waiting))
    except Exception as err:
        # What this send read before it failed, if it did, is in ``first`` already (``dropping_others``).
        try:
            return undoable.landed_although_lost(env.router, target, err, lost_timeout_seconds, bound=bound,
                                                 moving=moving)
        except Exception as read_err:
            if read_err is not err and answer_lost(err):
                # The read-back's own error, after an answer that may have been lost (not a send that
                # never reached AWS: credentials not renewed): told apart from the send's, it was taken
                # for a send that did not land, and a rollback paged "could NOT be moved back" of one
                # that may have.
                answer.append(err)
            raise
    return None


def shift_to(
    env: Environment, spec: RolloutSpec, weight: int, stable_desired: int, before: Weights, *, actor: str,
    rollout: str, between: Callable[[], None] | None = None,
) -> tuple[Weights, list]:
    """Scale the canary for ``weight``, wait for healthy targets, set and verify the weights.

    ``between``: called at each poll of those waits (up to the spec's scale_timeout_seconds and
    healthy_timeout_seconds): the canary serves the passed stage's share meanwhile, and
    ``PauseWatch`` (``scaling``) keeps judging it; what it raises (``FailedWhileScaling``) ends the shift
    before any traffic moves.

    Bound feature flags move with the weights, in one transaction: if the flags cannot follow,
    the weights go back to ``before`` so traffic and flags never disagree.

    Returns:
        The verified weights and the flag updates made.
    """
    t = env.targets
    needed = canary_capacity(stable_desired, weight)
    canary = ecs.describe_service(env.deployer, t.canary_service)
    if canary.desired < needed:
        sized = canary_capacity(stable_desired, before.canary) if before.canary else 0
        if canary.desired < sized:
            # Someone scaled it down since this run sized it (an autoscaling policy, a colleague): said,
            # since this scale-up undoes their change, and the stage before was judged on fewer tasks.
            get_run_logger().warning(
                "the canary service %s runs %d task(s), not the %d this run scaled it to for %d%%: someone scaled "
                "it down since; scaling it to %d for %d%%", t.canary_service, canary.desired, sized, before.canary,
                needed, weight)
        ecs.update_service(env.deployer, t.canary_service, desired=needed)
    if canary.desired < needed or canary.running < needed:
        # Also when it was scaled already, ECS still starting the tasks: a run that died in this
        # wait scaled it, and the run resuming it went straight to the health wait, the rest of
        # ECS's start unwatched (and taken out of healthy_timeout_seconds).
        # The revision read just now is the one to come up: after a resume in a new process the
        # adapter remembers no revision of its own, and a deployment ECS's circuit breaker rolled
        # back (steady, on the old revision) must fail the wait rather than pass it.
        ended = ecs.wait_stable(env.deployer, [t.canary_service], spec.scale_timeout_seconds,
                                {t.canary_service: canary.task_definition}, bound="scale_timeout_seconds",
                                between=between, ends=(FailedWhileScaling,))
        if ended is not None:
            raise ended
    wait_healthy(env, "canary", spec.healthy_timeout_seconds, needed, setting="the spec's healthy_timeout_seconds",
                 between=between)
    target = Weights.canary_at(weight)
    if not (spec.flags and env.flags is not None):
        return set_and_verify(env, target, spec.verify_timeout_seconds), []
    with transaction():
        # The ledger and the rollout go along: the undo must not put traffic back on the canary
        # once the rollout is being rolled back (by `rollway abort`, say).
        # A lost answer is read back, as set_and_verify does: a shift that landed goes on with its
        # flags, rather than being undone and the healthy rollout failed and rolled back.
        undoable.set_weights(env.router, target, before, env.ledger, t.canary_service, rollout,
                             lost_answer_seconds=spec.verify_timeout_seconds)
        verified = traffic.verify_weights(env.router, target, spec.verify_timeout_seconds)
        updates = undoable.apply_flags(env.flags, list(spec.flags), weight, actor, env.clock.now(), rollout, env.ledger,
                                       t.canary_service)
    return verified, updates


class AlertsOnce:
    """Alerts by kind, for one stage or one monitoring window: the figure in an alert moves
    every tick, and people hear of each kind of trouble once, with its first message; again only
    when it is in something it was not in before (``Alert.about``: a second dead-letter queue
    gaining messages is another consumer failing, which the first queue's alert did not name)."""

    def __init__(self) -> None:
        self.sent: list[str] = []  # the messages sent, in order
        self._named: dict[str, set[str]] = {}  # kind of trouble -> what its messages named

    def new(self, verdict: Verdict) -> list[str]:
        """The messages of the verdict's alerts of a kind not raised before, or about something new."""
        fresh = []
        for alert in verdict.alerts:
            named = self._named.get(alert.kind)
            if named is None or not named.issuperset(alert.about):
                fresh.append(alert.message)
                self._named.setdefault(alert.kind, set()).update(alert.about)
        self.sent += fresh
        return fresh

    def messages(self) -> tuple[str, ...]:
        return tuple(self.sent)


class LookRenewals:
    """The journal's tick at each look, which renews the run's lease (and is the check that nobody
    began rolling the rollout back).

    A renewal DynamoDB refuses (throttled past botocore's retries, say) failed the run, and its hook
    rolled a healthy rollout back, though a renewal is needed only before the lease runs out: one
    lost with minutes left on it is logged, and the next look renews it. Raised as before once the
    lease would lapse before the next look could renew it (another run may take the rollout over
    then). ``tick`` says whether the renewal went through: before a shift, the check it is must
    have been made, so the shift waits for the next look."""

    def __init__(self, env: Environment, spec: RolloutSpec, journal: Journal) -> None:
        self.env, self.spec, self.journal = env, spec, journal
        # When the lease was last written, never later than it was: counted from when the loop began,
        # a lease written by the steps before it (minutes of them, on a resume) was taken for a fresher one.
        written = journal.lease_written
        self.held = env.wall() if written is None else min(written, env.wall())
        self.failures = 0  # renewals refused in a row

    def tick(self, state: StageState, verdict: Verdict | None, *, during: str = "") -> bool:
        sent = self.env.wall()
        try:
            self.journal.tick(state, verdict)
        except STORAGE_ERRORS as err:
            self.failures += 1
            lease = self.journal.lease_seconds
            left = self.held + lease - self.env.wall() if lease is not None else 0.0
            # The next look comes within an analysis interval on the rollout clock (no more on the
            # wall, which a sped-up clock outruns), and its reads within their bound.
            nxt = self.spec.analysis.interval_seconds + self.spec.verify_timeout_seconds
            # Refused for good (a permission, the table gone, an item too large): the next look is
            # refused as well, and the run would only look on, shifting nothing, until the lease lapsed.
            if left <= nxt or not again(err, denied=FINAL_DYNAMODB):
                raise
            get_run_logger().warning("%s", trouble_said(
                "the rollout's lease", err, self.env.targets, self.spec.analysis.interval_seconds, left,
                self.failures, "another run may take the rollout over", during=during))
            return False
        if self.failures:
            get_run_logger().log(*recovered_said("the rollout's lease", self.failures, 0.0, "run"))
        self.held, self.failures = sent, 0
        return True

    def wrote(self, sent: float) -> None:
        """The journal wrote the lease outside a tick (a shift's record, an answer's), sent at
        wall ``sent``: without it, a renewal refused after an hour's pause or scale-up was taken
        for a lease that had lapsed, and failed the run."""
        self.held = sent


class StageTracker:
    """Accumulates the current stage's report from each tick's observation and verdict."""

    def __init__(self) -> None:
        self.ticks = 0
        self.observation: Observation | None = None
        self.verdict: Verdict | None = None
        self.alerts = AlertsOnce()

    def update(self, observation: Observation, verdict: Verdict, settled_until: float | None = None) -> list[str]:
        """Take one tick in; returns the alerts of a kind this stage has not raised before.

        The report counts what the verdict stood on: the intervals up to the one it decided at,
        when it says; otherwise a rollback (the guardrails') counts every interval, and a pass
        or no decision yet only those ending by ``settled_until``, as the judge does.
        """
        self.ticks += 1
        if observation.error is None:
            cut = verdict.decided_at_t
            if cut is None and verdict.phase is not Phase.FAILED:
                cut = settled_until
            if cut is not None:
                observation = observation.model_copy(
                    update={"intervals": tuple(i for i in observation.intervals if i.t <= cut)})
            self.observation = observation
        self.verdict = verdict
        return self.alerts.new(verdict)

    def report(self, state: StageState, weights: Weights, now: float, decision: str) -> StageReport:
        # self.observation is None when no read of the stage's metrics succeeded: nothing was measured.
        return StageReport.counting(
            self.observation,
            stage_index=state.stage_index,
            weights=weights,
            started_at=state.started_at or now,
            ended_at=now,
            ticks=self.ticks,
            verdict=self.verdict or Verdict(phase=Phase.INCONCLUSIVE, reason="no analysis yet"),
            decision=decision,
            alerts=self.alerts.messages(),
        )


PAUSE_ROLLBACK = "rollback during the approval pause"
"""The decision of the row a passed stage's pause gets when its looks roll back (``PauseWatch.pause_report``)."""


def scaling_rollback(weight: int) -> str:
    """The decision of the row a passed stage gets when the looks made while the canary scaled for
    the next stage's ``weight`` roll back (``PauseWatch.pause_report``, ``scaling``)."""
    return f"{SCALING_ROLLBACK} {weight}%"


SCALING_ROLLBACK = "rollback while scaling for"


class FailedWhileScaling(PicklableError, RuntimeError):
    """A look made while a shift waited for the canary's tasks (``PauseWatch`` with ``scaling``)
    rolls back: the wait ends and no traffic moves; the engine rolls back as the watch says."""


class PassedWindows:
    """The windows the looks at a passed stage judged (``window_looked``), as this run counts them:
    from the ledger's count when it resumed the rollout, each new one recorded there
    (``Journal.looked``) before its first look judges it, so that a run resuming the rollout after
    this one dies gives no share of the alpha twice. Shared by the run's pause and scale-up watches."""

    def __init__(self, journal: Journal, looks: PassedLooks | None) -> None:
        self.journal, self.looks = journal, looks

    def share(self, stage_index: int, window: float) -> int:
        """The index of the alpha share (``window_alpha``) of a look at ``stage_index``'s window
        beginning at ``window``. Raises what recording a new window raised: the look is not judged."""
        looks = window_looked(self.looks, stage_index, window)
        if looks != self.looks:
            self.journal.looked(looks)
            self.looks = looks
        return looks.windows - 1


class PauseWatch:
    """What the run keeps looking at while a person is asked, the canary serving traffic: every
    ``interval_seconds`` of the rollout clock, the weights and the canary's service as this run
    set them (``_interference``) and the judge with the guardrails on its metrics (``assess``).
    A pause waits up to an hour by default, and a canary holding 5-75 % of the traffic that began
    failing meanwhile served errors to users until a person answered or the pause timed out.

    A stage still running (the judge could not decide: an inconclusive or metrics pause) is
    judged on its own window, from its analysis start (the judge's tests are valid at any look);
    a stage that passed (an approval pause before the next shift), on a window from its pass,
    begun again on its latest half whenever it grows past the stage's bake, each window looked at
    judged at a smaller share of the alpha than the one before (``passed_window``, ``window_alpha``,
    counted in ``windows``: all of them together at the spec's alpha). Only a rollback acts: a pass
    never answers for the person.

    The approver calls it at each poll (``rollway.approvals.Watch``); it looks when a look is due,
    and answers why the pause ends (kept in ``ended`` with what the rollback needs), or None.

    ``act`` rolls back as ``ended`` says; the engine calls it once the approver has left the
    pause, or the approver calls ``act_now`` first when it cannot leave it yet (the Prefect API is
    away): the rollback needs AWS alone, and users stayed on a failing canary for as long as the
    API was down. What it returned (or raised) is kept in ``acted``.

    ``scaling``: the weight a shift scales the canary for, when the watch looks while the shift
    waits for its tasks (``shift_to``'s ``between``, up to 15 minutes at the spec's defaults)
    rather than while a person is asked. ``passed_at``: when a passed stage passed (rollout clock),
    from which its windows are counted, whichever watch, and whichever run, looks at them (None:
    ``since``, the watch's start). ``windows``: the windows looked at since the pass, as the ledger
    counts them for every watch and run, which set each window's share of the alpha.
    """

    def __init__(self, env: Environment, spec: RolloutSpec, state: StageState, weights: Weights,
                 tracker: "StageTracker", history: tuple[Interval, ...] | None, since: float,
                 act: Callable[[], RolloutResult] | None = None, *, scaling: int | None = None,
                 passed_at: float | None = None, windows: PassedWindows) -> None:
        self.env, self.spec, self.state, self.weights = env, spec, state, weights
        self.tracker, self.history, self.since, self.act = tracker, history, since, act
        self.scaling = scaling
        # A passed stage's windows: on a grid from its pass, each from a whole period (see analysis_start).
        self.passed_at = (since if passed_at is None else passed_at) if state.passed else None
        self.windows = windows
        # Where a running stage's window starts; a passed stage's is found at each look (``_judged``).
        self.start = analysis_start(spec, state)
        # A passed stage's row is final: what the pause's looks counted is a row of its own, shown
        # when they roll back (``pause_report``).
        self.looks = StageTracker() if state.passed else None
        self.next_look = since + spec.analysis.interval_seconds
        self.ended: tuple[Weights, str, str] | None = None  # (weights, reason, actor) of the rollback
        self.acted: RolloutResult | Exception | None = None
        self.paused = True  # whether the pause was made when ``act_now`` acted (False: never known to be)

    def __call__(self) -> str | None:
        if self.ended is not None:
            return self.ended[1]
        if self.env.clock.now() < self.next_look:
            return None
        return self.look()

    def act_now(self, paused: bool = True) -> None:
        """Roll back now, as ``ended`` says, before the pause is left (``rollway.approvals.act_now``).
        Once: what it returned or raised is kept in ``acted``, for the engine once the pause is left.
        ``paused``: False when the API went away as the run paused, and no pause is known to be
        made: "the pause is left" was said of a pause nobody had been shown."""
        if self.ended is None or self.acted is not None or self.act is None:
            return
        self.paused = paused
        get_run_logger().warning(
            "the Prefect API cannot be reached to leave the pause: rolling back now, the pause is left once the API "
            "answers again" if paused else
            "the Prefect API cannot be reached to pause the run: rolling back now; once the API answers again, the "
            "run goes on without the pause (leaving it, if a try of it landed)")
        try:
            self.acted = self.act()
        except Exception as err:  # noqa: BLE001 - raised by the engine once the pause is left
            self.acted = err

    def pause_report(self, now: float) -> StageReport:
        """The row of a passed stage's pause that ends in a rollback: from the pause's start, what
        its looks counted and judged (none: nothing measured, as the traffic moved, say)."""
        return self.looks.report(self.state.model_copy(update={"started_at": self.since}), self.weights, now,
                                 PAUSE_ROLLBACK if self.scaling is None else scaling_rollback(self.scaling))

    def look(self, answering: bool = False) -> str | None:
        """Look now, whenever the last look was; the reason to end the pause, or None.
        ``answering``: the look made before an approval is taken."""
        log, spec, state = get_run_logger(), self.spec, self.state
        now = self.env.clock.now()
        self.next_look = now + spec.analysis.interval_seconds
        weight = spec.stages[state.stage_index].weight
        scaling = self.scaling
        # What the run does meanwhile, as each line says it: a pause's, or a shift's wait for the canary's tasks.
        at = (f"paused at {weight}%" if scaling is None else
              f"at {weight}%, watching the canary while it scales for {scaling}%")
        # Doing what, what goes on after a passing look, when a failing one was judged (its log line's
        # words and its reason's) and what is then not done. The scale-up's line says when already (``at``).
        if answering:
            doing, goes_on, when, judged, not_done = (
                "taking the approval", "the approval is taken", " before the approval was taken",
                "when an approval came, before it was taken", "the approval is not applied")
        elif scaling is None:
            doing, goes_on, when, judged, not_done = (
                "waiting for an answer", "still waiting for an answer", " while the run waited for an answer",
                "while the run waited for an answer, before it had read one",
                "the pause ends without waiting for an answer")
        else:
            doing, goes_on, when, judged, not_done = (
                f"scaling the canary for {scaling}%", "the scale-up goes on", "",
                f"while the canary scaled for {scaling}%, before the shift", f"the shift to {scaling}% is not made")
        try:
            changed = _interference(self.env, spec, self.weights, doing, inline=True)
            if changed is not None:
                self.ended = changed
                return changed[1]
            observation, verdict = self._judged(now)
        except Exception as err:  # noqa: BLE001 - a look that failed leaves the pause as it was
            # Failing the run here would have its hooks roll back a rollout a person may be approving.
            log.warning("%s: could not look at the canary (%s); %s", at, err,
                        "the approval is taken on the looks before" if answering else
                        f"looking again in {seconds_said(spec.analysis.interval_seconds)}; {goes_on}")
            return None
        # The same decision as a look during the stage; a passed stage's is judged as if running.
        decision = decide(spec, state.model_copy(update={"passed": False}), verdict, now)
        if isinstance(decision, Rollback):
            reason = f"{decision.reason} (judged {judged})"
            log.warning("%s: the canary failed the judge%s: %s; %s and the rollout rolls back", at, when,
                        decision.reason, not_done)
            self.ended = (self.weights, reason, asked_by(decision.reason))
            return reason
        guarded = "" if observation.error is not None else f"; {guardrails_said(spec, observation)}"
        log.info("%s: the judge looked again: %s: %s (canary %s req, baseline %s req)%s; %s", at,
                 verdict.phase.value, verdict.reason, f"{verdict.canary_requests:,}", f"{verdict.baseline_requests:,}",
                 guarded, goes_on)
        return None

    def _judged(self, now: float) -> tuple[Observation, Verdict]:
        env, spec, state = self.env, self.spec, self.state
        if self.passed_at is not None:
            # A passed stage's window starts again on its latest half once it is as long as the
            # stage's bake: a pause held for weeks (each timeout asking again) read and judged a
            # window of weeks at every look. Restarted on time alone, each window is a test of its
            # own, so each window looked at gets a smaller share of the alpha than the one before (see
            # window_alpha); on time since the pass, the scale-up after a pause, or a run that resumed
            # either, goes on with the window of the moment rather than spending a share of its own.
            # The share is counted by the windows looked at, not by the time: those nobody looked at
            # (the run dead for a day) tested nothing, and spend nothing.
            start, _ = passed_window(spec, state.stage_index, self.passed_at, now)
            window = self.windows.share(state.stage_index, start)
        else:
            start, window = self.start, 0
        # A stage still running goes on with its own test; a passed one's pause has tests of its own.
        judge = (judge_for_pause_window(spec, state.stage_index, window) if state.passed
                 else judge_for_stage(spec, state.stage_index))
        if self.history is None:
            self.history = baseline_history(env, spec, judge, state.started_at, inline=True)
        observation, settled_until, verdict = look_at_canary(
            env, spec, judge, start, now, stage_over=not state.passed and stage_over(spec, state, now),
            history=self.history, inline=True)
        # A running stage's row counts its looks during the pause; a passed stage's row is final, and
        # the pause's looks count toward a row of their own (its alerts still raised once per stage).
        if state.passed:
            self.looks.update(observation, verdict, settled_until)
            fresh = self.tracker.alerts.new(verdict)
        else:
            fresh = self.tracker.update(observation, verdict, settled_until)
        stage_alerts(env, spec, state, fresh, inline=True)
        return observation, verdict


def look_at_canary(env: Environment, spec: RolloutSpec, judge, start: float, now: float, *, stage_over: bool,
                   history: tuple[Interval, ...] | None, inline: bool = False) -> tuple[Observation, float, Verdict]:
    """One look at the canary, a stage's tick or a pause's: its metrics from ``start`` to ``now``,
    judged with the guardrails. Returns the observation, the end of its settled periods (later ones
    may still be filling in) and the verdict. ``inline``: see ``tasks.inline.run_as``."""
    observation = run_as(metrics.observe, inline)(env.metrics, start, now)
    settled_until = now - spec.analysis.metrics_delay_seconds
    healthy = canary_targets_if_unattributed(env, observation, monitoring=False,
                                             seconds=spec.verify_timeout_seconds, inline=inline)
    period = spec.analysis.interval_seconds
    verdict = assess(judge, spec.guardrails, observation, stage_over=stage_over, history=history or (),
                     settled_until=settled_until, healthy_targets=healthy,
                     interval_said=lambda t: f"period {window_utc(t - period, t)}")
    if observation.error is None:
        # A pass stands on the settled periods: the canary's slow requests must have been measured in them.
        settled = [i for i in observation.intervals if i.t <= settled_until]
        verdict = unmeasured_slow(verdict, spec.analysis, settled, history or (), stage_over=stage_over)
    return observation, settled_until, verdict


def guardrails_said(spec: RolloutSpec, observation: Observation) -> str:
    """How near the canary is to the stage's guardrails, for a look's line: its error rate beside the
    rate that rolls back, its average response time beside the one that alerts, over what the
    guardrails judge (every period read). A look's reason gives them only when the guardrails'
    verdict is the worse: while the judge passed, a canary creeping toward either showed nothing."""
    guard, canary = spec.guardrails, observation.totals("canary")
    limit = guard.canary_error_rate
    latency = "none measured" if canary.latency_avg_ms is None else f"{canary.latency_avg_ms / 1000:,.2f} s"
    # Each rate named by its setting: "rolls back over 1%" here and the monitoring window's "within
    # the 5% guardrail" after promotion read as two limits for one rate.
    window = (f"; the monitoring window's after promotion, monitor_error_rate: {setting_percent(guard.monitor_error_rate)}"
              if spec.monitor_seconds else "")
    return (f"guardrails: {canary_rate(canary.errors, canary.requests, limit)} (the stage's error-rate guardrail, "
            f"canary_error_rate: rolls back over {setting_percent(limit)}{window}), average response {latency} "
            f"(alerts over {guard.response_time_seconds:g} s)")


def stage_alerts(env: Environment, spec: RolloutSpec, state: StageState, fresh: list[str], inline: bool = False) -> None:
    """Tell people of a stage's alerts of a kind not raised before (``StageTracker.update``).
    Alerts do not roll back; they reach people once per kind of trouble per stage."""
    weight = spec.stages[state.stage_index].weight
    for alert in fresh:
        get_run_logger().warning("stage %s%%: %s", weight, alert)
        metrics.alert(env.notifier, f"Alert: {env.targets.canary_service}", f"Stage {weight}% of {spec.image}: {alert}",
                      targets=env.targets, inline=inline)


def watching(watch: PauseWatch | None) -> Callable[[], None] | None:
    """A shift's ``between`` from a scale-up's watch: it looks when a look is due, and raises
    FailedWhileScaling once a look rolls back (None: nothing to watch, no canary traffic)."""
    if watch is None:
        return None

    def between() -> None:
        reason = watch()
        if reason is not None:
            raise FailedWhileScaling(reason)
    return between


def baked_by_said(stage: Stage) -> str:
    """What a look the judge passes before ``stage``'s minimum bake waits for, as its log line ends:
    the bake in whole seconds (a 20-day one read "1.728e+06 s")."""
    return f"; it passes once the stage has baked {seconds_said(stage.earliest_pass_seconds)}"


def run_stages(
    env: Environment,
    spec: RolloutSpec,
    *,
    state: StageState,
    stable_desired: int,
    approver: Approver,
    rollback: Rollbacker,
    journal: Journal | None = None,
    reports: list[StageReport] | None = None,
    actor: str = "rollway",
    rollout: str,
    held_by: ApprovalAnswer | None = None,
    passed_at: float | None = None,
    looks: PassedLooks | None = None,
) -> RolloutResult:
    """Drive a rollout from ``state`` until it is promoted or rolled back.

    Args:
        env: the ports to act on.
        spec: the rollout policy.
        state: where to start (a fresh rollout: StageState(); a resumed one: from its ledger).
        stable_desired: tasks the stable service runs at full traffic; sizes the canary.
        approver: asked at every Pause; its answer is final for that pause.
        rollback: performs the rollback when the judge or a person says so.
        journal: records transitions; None records nothing.
        reports: stage reports of earlier stages (a resumed rollout), extended in place.
        actor: who drives the rollout, for flag audit trails.
        rollout: the rollout's id, which marks its flag writes (a flag someone changed since the
            rollout last wrote it is left as they set it).
        held_by: a person's hold the ledger records as the last answer to the pause of ``state``'s
            stage (a resumed rollout): its pause is asked again, not passed over by the judge.
        passed_at: for a ``state`` whose stage passed before this run (a resumed rollout, or its next
            weekly phase), when its looks began, from the ledger (``stage_passed_at``, rollout clock): its
            watches' windows are counted from it (``passed_window``), not begun again by this run.
            None: from this run's start; never later than it.
        looks: the windows of ``state``'s passed stage looked at before this run (a resumed rollout),
            from the ledger: this run's looks count on from them (``PassedWindows``).
    """
    log = get_run_logger()
    # A run that stands down (another run, or another rollout, drives the traffic now) says why
    # on one line: a traceback under it read as a crash of rollway, to the person on call.
    without_traceback(RolloutMovedOn, RolloutSuperseded)
    journal = journal or NullJournal()
    reports = reports if reports is not None else []
    tracker = StageTracker()
    renewals = LookRenewals(env, spec, journal)
    weights = traffic.weights_within(env.router, spec.verify_timeout_seconds)
    history: tuple[Interval, ...] | None = None  # the baseline's past, read once per stage (again while it fails)
    # why the last answer was not applied, or who held, for the next form
    refusal: str | None = held_note(held_by, None) if held_by is not None else None
    held: ApprovalAnswer | None = held_by  # a person's hold the next pause asks again after
    told = False  # a notice said ``held`` already: a refused answer asks again without telling it again
    watch: PauseWatch | None = None  # what the run looks at while this stage's pause waits
    weights_read_at: float | None = None  # the bake's last read of the weights that answered (DRIFT_LOOK_SECONDS)
    # When the stage passed, for its watches (``passed_window``), never later than now: a pass stamped
    # by a host whose clock ran ahead put the first window past every look, and they read nothing.
    # None (a ledger that does not say): from this run's start, so that its pause and scale-up share a grid.
    passed_at = min(env.clock.now(), passed_at if passed_at is not None else math.inf) if state.passed else None
    windows = PassedWindows(journal, looks)  # the passed stage's windows looked at, for each share of the alpha

    def ended_by_watch(decision: Pause, answer: ApprovalAnswer | None) -> RolloutResult:
        """Roll back as the look that ended the pause said (the look said why, once); an answer
        given at that moment is recorded as not applied: the judge (or the drift) came first."""
        reason = watch.ended[1]
        if watch.acted is not None:
            # Rolled back while the Prefect API was away (``PauseWatch.act_now``): the pause is left
            # now, or was never made. An answer is read only now, whenever it was given: "rolled
            # back before it came" was not always so.
            failed = isinstance(watch.acted, Exception)
            if answer is not None:
                why = ("not applied: the run's look at the canary ended the pause before the run could read it, and "
                       + (f"the rollback it began while the Prefect API could not be reached failed ({watch.acted})"
                          if failed else "rolled the rollout back while the Prefect API could not be reached")
                       + f": {reason}")
                log.warning("%s's answer (%s) %s", answer.who, answer.action, why)
                if not failed:  # a rollout left open (or driven by another run) is not written beside
                    journal.not_applied(decision, answer, why)
            if failed:
                raise watch.acted
            log.warning("%s once the Prefect API answered again; the rollback was done while it could not be reached",
                        "the run left its pause" if watch.paused else "the run went on without its pause")
            return watch.acted
        if answer is not None:
            why = f"not applied: the run's look at the canary came first, and the rollout rolls back: {reason}"
            log.warning("%s's answer (%s) %s", answer.who, answer.action, why)
            journal.refused(decision, answer, why)
        return roll_back_as_watched()

    def roll_back_as_watched(taking_back: bool = True) -> RolloutResult:
        """The rollback a pause's look asked for (``PauseWatch.ended``), with the stage's row:
        a running stage's ends in it; a passed stage's stays, and the pause gets one of its own.
        ``taking_back``: False after a shift's scale-up, whose wait kept the rollout held."""
        live, reason, who = watch.ended
        try:
            if taking_back:
                journal.taking_back(decision, reason)
        except (RolloutMovedOn, RolloutEnded, RolloutSuperseded) as moved:
            # Said before the run fails: the look that ended the pause said the rollout rolls back.
            log.warning("%s", moved)
            raise
        now = env.clock.now()
        made: list[StageReport] = []

        def row() -> None:
            # Made once this run is the one rolling back (``_rolled_back``'s ``before``): a run that
            # finds another rollback (an abort's) under way stops without a row beside that one's.
            if state.stage_index >= 0:
                made.append(tracker.report(state, weights, now, "rollback") if not state.passed
                            else watch.pause_report(now))
                reports.append(made[0])

        try:
            return _rolled_back(env, spec, rollback, journal, reports, live, reason, actor=who, before=row)
        finally:
            # Its table once the traffic is back: the Prefect API may be away (``PauseWatch.act_now``),
            # and an artifact sent to it waits out its client's retries (a minute on a 503).
            for report in made:
                journal.stage_ended(state, report)

    def finish_stage(decision_text: str, now: float, record=None) -> StageReport:
        report = tracker.report(state, weights, now, decision_text)
        reports.append(report)
        if record is not None:
            record(state, report)  # the ledger before what people see
        journal.stage_ended(state, report)
        return report

    while True:
        now = env.clock.now()
        verdict: Verdict | None = None
        if state.stage_index >= 0 and not state.passed:
            start = analysis_start(spec, state)
            judge = judge_for_stage(spec, state.stage_index)
            if history is None:
                # None again when the read failed: the next look reads it again.
                history = baseline_history(env, spec, judge, state.started_at)
            observation, settled_until, verdict = look_at_canary(
                env, spec, judge, start, now, stage_over=stage_over(spec, state, now), history=history)
            stage_alerts(env, spec, state, tracker.update(observation, verdict, settled_until))
        renewals.tick(state, verdict)
        decision = decide(spec, state, verdict, now)
        if held is not None and decision.stage_passed and not isinstance(decision, Pause):
            # A person's hold says "stay and ask again": a pass the judge reached since (the traffic
            # came back, say) does not move the stage on without a person, as none does while a pause waits.
            decision = Pause(reason=(f"{spec.stages[state.stage_index].weight}%: the judge passes it now "
                                     f"({verdict.reason}), but {PERSON_HELD}: it goes on once a person "
                                     "approves"), cause="inconclusive", stage_index=state.stage_index)

        if (isinstance(decision, Hold) and verdict is not None
                and (weights_read_at is None or now - weights_read_at >= DRIFT_LOOK_SECONDS)):
            # A look that read the metrics reads the weights too (one DescribeRules), once per
            # DRIFT_LOOK_SECONDS: moved mid-bake (by a person, a stack update), they went unseen until
            # the next shift, hours later, while the judge took a canary at another share for the
            # stage's. Said and rolled back as a shift's check does. Read inline, not as a task run of
            # its own: a look a minute for hours, each a task run, added their orchestration to every
            # stage's overhead.
            weight = spec.stages[state.stage_index].weight
            try:
                changed = _interference(env, spec, weights, f"baking the {weight}% stage", inline=True, scaled=False)
                weights_read_at = now
            except Exception as err:  # noqa: BLE001 - a read that failed leaves the bake as it was
                # Failing the run here would have its hook roll back a healthy canary over one read.
                log.warning("stage %s%%: could not read the load balancer's weights to check that nobody moved them "
                            "(%s); reading them again at the next look", weight, err)
                changed = None
            if changed is not None:
                live, reason, who = changed
                return _rolled_back(env, spec, rollback, journal, reports, live, reason, actor=who,
                                    before=lambda: finish_stage("rollback", now))
        if isinstance(decision, Hold):
            # A bake lasts minutes to hours: each look shows in the run's log, with the judge's reading.
            # A pass before the stage's minimum bake waits for it: say so, or the log reads "pass" and nothing moves.
            waits = (baked_by_said(spec.stages[state.stage_index])
                     if verdict is not None and verdict.phase is Phase.SUCCESSFUL else "")
            # From the clock after the look, not ``now``: a read that ran out its bound (15 s) would
            # otherwise put that much more between the final look's reads than their rule says.
            left = max(0.0, decision.until - env.clock.now())
            # Beside the judge's reading, how near the guardrails the canary is (a read that failed has no figures).
            guarded = (f"; {guardrails_said(spec, observation)}"
                       if verdict is not None and observation.error is None else "")
            (log.warning if verdict is not None and verdict.phase is Phase.ERROR else log.info)(
                "stage %s%s%s; next look in %.0f s", decision.reason, waits, guarded, left)
            env.clock.sleep(left)
            continue

        if decision.stage_passed:
            report = finish_stage("passed", now, record=journal.stage_passed)
            passed_at = now
            log.info("stage %s%% passed: %s", spec.stages[state.stage_index].weight, report.verdict.reason)
            state = state.model_copy(update={"passed": True})

        if isinstance(decision, SetWeight):
            # Claim the rollout again right before moving traffic: if a person or a hook rolled
            # it back since the last tick, this raises RolloutEnded and nothing moves.
            if not renewals.tick(state, None, during=f"before shifting to {decision.weight}%, nor check that nobody "
                                                     "began rolling the rollout back: the shift waits for the next look"):
                env.clock.sleep(spec.analysis.interval_seconds)
                continue
            # The traffic was moved behind this run's back: by a rollback the ledger could not
            # record (so nothing told this run), or by hand. Never shift from weights this run
            # did not set; finish the rollback instead (idempotent, and recorded if it can be).
            # Nor scale up again a canary someone scaled to 0.
            interfered = _someone_else(env, spec, rollback, journal, reports, weights, f"shifting to {decision.weight}%")
            if interfered is not None:
                return interfered
            before, left = weights, state.stage_index if state.stage_index >= 0 else None
            # The canary serves the passed stage's share while the shift waits for its tasks (up to
            # scale_timeout_seconds and healthy_timeout_seconds): judged meanwhile as a pause's
            # looks judge it, it rolls back from there, rather than at the next stage's first look.
            scaling = (PauseWatch(env, spec, state, weights, tracker, history, since=now, scaling=decision.weight,
                                  passed_at=passed_at, windows=windows)
                       if state.stage_index >= 0 and state.passed and weights.canary > 0 else None)
            try:
                with journal.renewing():  # the scale-up and health waits can outlast the lease
                    weights, flag_updates = shift_to(env, spec, decision.weight, stable_desired, before, actor=actor,
                                                     rollout=rollout, between=watching(scaling))
            except FailedWhileScaling:  # raised only by ``watching(scaling)``, once a look set ``scaling.ended``
                watch = scaling
                return roll_back_as_watched(taking_back=False)
            state = StageState(
                stage_index=decision.stage_index, started_at=env.clock.now(),
                approved=state.approved, until_stage=state.until_stage, accepted=state.accepted,
            )
            tracker, history, held, watch, passed_at = StageTracker(), None, None, None, None
            try:
                sent = env.wall()
                journal.shifted(state, before, weights, decision.reason, flag_updates, from_stage=left)
                renewals.wrote(sent)
            except RolloutEnded:
                # Rolled back between the claim and the shift, by someone who pages people: the
                # traffic this shift may have moved goes back off the canary before this run stops,
                # through that rollback's claim (the journal's), so nobody is paged twice.
                journal.overtaken(f"the rollout was rolled back while this run shifted to {weights.canary}%",
                                  rollback)
                raise
            log.info("%s", shift_said(spec, state, before, weights, decision.reason))
            if any(update.changed for update in flag_updates):
                # Looked at again once the flags moved: a rollback that landed after the check above
                # moved the traffic (or stopped the canary) before it disabled the flags, and this
                # shift's flag write then raised them after it. Nothing in the flag's trail ties a
                # rollback naming no rollout (the `rollback` flow run by hand on a `canary` run, which
                # keeps no ledger) to this run, so only the load balancer and the service tell; until
                # the next shift's check, users of the stable version got the stage's features.
                interfered = _someone_else(env, spec, rollback, journal, reports, weights,
                                           f"baking the {decision.weight}% stage its flags were just moved for")
                if interfered is not None:
                    return interfered
            continue

        if isinstance(decision, Pause):
            # The stage in progress gets a row; before the first stage there is none to show.
            running = state.stage_index >= 0 and not state.passed
            # Checked before a person is asked, as before a shift: the form says "traffic now" with the
            # weights this run set, and weights moved since (by hand, or by a rollback the ledger could
            # not record) had a person approve on a false picture, the shift then rolling back anyway.
            # A canary someone scaled to 0 turns its share away for as long as the pause lasts.
            interfered = _someone_else(
                env, spec, rollback, journal, reports, weights,
                f"asking for {'approval' if decision.cause == 'approval' else 'an answer'}",
                before=(lambda: finish_stage("rollback", now)) if running else None)
            if interfered is not None:
                return interfered
            summary = evidence(journal, reports + ([tracker.report(state, weights, now, "paused")] if running else []),
                               state.stage_index + 1)
            note = f"> {refusal}\n\n" if refusal else ""
            refusal = None
            # What is being rolled out, and where: the form is all a person sees when answering
            # (the run's name is random), and before the first stage its table has no row at all.
            what = (f"{_plain(spec.image)} on {_plain(env.targets.canary_service)}: "
                    f"traffic now {weights} (stable/canary)")
            # Judged while it waits when the canary has traffic; before the first stage it has none.
            watched = state.stage_index >= 0 and weights.canary > 0
            if watched and (watch is None or watch.state is not state):
                watch = PauseWatch(env, spec, state, weights, tracker, history, since=now, act=roll_back_as_watched,
                                   passed_at=passed_at, windows=windows)
            judging = (f"While this pause waits, the run keeps judging the canary every "
                       f"{seconds_said(spec.analysis.interval_seconds)} (rollout clock) and rolls back on its own if "
                       "it fails or its traffic is moved: the pause then ends, and an answer is no longer taken.\n\n"
                       if watched and takes_watch(approver) else "")  # a two-argument one is given no watch
            # The same pause, when its run died waiting and this run took the rollout over: by its own
            # deadline, not a new timeout from zero; past it, the timeout policy acts (hold asks anew).
            taken = journal.taken_over(decision)
            expired = taken is not None and taken.began is not None and env.wall() >= taken.deadline
            if expired and spec.approvals.on_timeout == "hold":
                taken, expired = taken.model_copy(update={"began": None}), False
            if expired:
                answer = taken_over_timeout(spec.approvals, taken, env.wall())
                log.warning("the %s pause timed out while no run waited for its answer: %s", decision.cause,
                            answer.comment)
            else:
                unsent = journal.asking(decision, None if told else held, judging.strip(),
                                        taken)  # the notice says it as the form does
                told = True
                again = f"> {_plain(taken_over_said(taken))}.\n\n" if taken is not None else ""
                # Said first in the form: nobody was paged (or may not have been), and a form read late
                # is the only place it shows.
                answer = ask(approver, decision, f"{not_told(unsent) if unsent else ''}{again}**{decision.reason}**\n\n{what}\n\n{note}{judging}{summary}\n\n"
                             + next_weight_hint(spec, decision, state.until_stage), watch if watched else None,
                             began=taken.began if taken is not None else None)
            # An approval is taken only after one more look: one given between two looks (a minute
            # apart, or an hour at interval_seconds 3600) must not shift a canary failing by now.
            if watched and (watch.ended is not None
                            or (answer is not None and answer.action == "approve" and watch.look(answering=True))):
                return ended_by_watch(decision, answer)
            if answer is None:
                raise TypeError(f"the approver gave no answer to the pause ({decision.reason}), which nothing ended")
            target = None
            try:
                if answer.action == "approve" and decision.cause == "approval":
                    target = approved_stage(spec, decision, answer, state.until_stage)
                elif answer.action == "approve" and answer.next_weight is not None:
                    # Accepting a stage the judge could not pass is not a skip ahead: silently
                    # shifting to the next stage instead would lose the person's choice.
                    article = "an" if decision.cause[0] in "aeiou" else "a"  # an inconclusive, a metrics
                    raise ValueError(f"next_weight ({answer.next_weight}%) applies only at an approval pause; "
                                     f"this is {article} {decision.cause} pause: approve without it to accept "
                                     "this stage")
                elif answer.action == "hold" and answer.next_weight is not None:
                    # A hold keeps the traffic where it is: a weight with it may have meant an
                    # approval to skip ahead, and holding silently would lose that choice.
                    raise ValueError(f"next_weight ({answer.next_weight}%) goes only with approve: hold keeps the "
                                     f"traffic at {weights.canary}%; answer hold without it, or approve with it")
            except ValueError as refused:
                # Checked before anything is recorded: a refused answer approves nothing. It is
                # recorded as refused (who, what, why), beside the history: the pause stays open.
                said = "approval" if answer.action == "approve" else answer.action
                log.warning("%s not applied: %s; asking again", said, refused)
                journal.refused(decision, answer, str(refused))
                # The next form says why it asks again: from the UI the answer looks lost otherwise.
                # The name is shown as typed on one line: markdown in it would render in the form.
                refusal = (f"{_plain(answer.approver)}'s {said} was not applied: {_plain(str(refused))}. "
                           "Please answer again.")
                # Asked again at once: the person who mistyped is at the form now, and an analysis
                # interval later (an hour, at interval_seconds 3600) they had gone. A person's hold
                # stays: a refused answer approves nothing, and the judge's pass must not move the stage on.
                continue
            held = None  # answered: a hold below holds again, an approval or a reject ends it
            if answer.action == "reject" and answer.next_weight is not None:
                # Never refused: a person who rejects wants the traffic off the canary now.
                log.warning("%s's reject named next_weight %s%%, which a reject does not use: ignored, the rollout "
                            "rolls back", answer.who, answer.next_weight)
            sent = env.wall()
            journal.answered(decision, answer, target)
            renewals.wrote(sent)
            # The comment is a text area's: its line breaks and escape sequences shown escaped, so a
            # second line cannot read as a line of the run's own log.
            log.info("pause (%s) answered %s by %s: %s", decision.cause, answer.action, answer.who,
                     escaped(answer.comment, keep=""))
            # The stage's row ends at the answer: it was judged while the pause waited (``PauseWatch``).
            answered = env.clock.now()
            if answer.action == "reject":
                # Rejected while a stage bakes: that stage ends rejected. Before the first
                # stage (index -1) no stage ran, and none is reported.
                if state.stage_index >= 0 and not state.passed:
                    finish_stage("rejected", answered)
                # A blank comment (the form takes "  " or a bare line break) says nothing: the
                # page then gave no reason at all.
                why = (timeout_reason(answer.comment, decision.reason) if answer.timed_out
                       else f"rejected by {answer.who}: {on_one_line(answer.comment) or decision.reason}")
                return _rolled_back(env, spec, rollback, journal, reports, weights, why, actor=answer.approver)
            if answer.action == "hold":
                # Stay at these weights; the next decision pauses again after another tick. The next
                # form says who held and why (or that nobody answered): without it, the person who
                # opens it next could not tell a colleague had held this stage, for a reason.
                refusal = held_note(answer, env.wall())
                # A person's hold is told again when the pause is asked again: whoever follows the
                # rollout by its notifications never heard that it waits for them once more.
                held, told = (None if answer.timed_out else answer), False
                env.clock.sleep(spec.analysis.interval_seconds)
                # A running stage is judged by the next tick; a passed one only by the watch, which
                # looks now: the hold's interval must not go blind.
                if watched and state.passed and watch.look() is not None:
                    return ended_by_watch(decision, None)
                continue
            if target is not None:
                # decide() shifts to the approved stage next, skipping any stages in between
                # (the same rule resumes a run that died before the shift).
                state = state.model_copy(update={"approved": target})
            else:
                # A person accepts an inconclusive stage: it counts as passed, on their word.
                finish_stage(f"accepted by {answer.who}", answered)
                passed_at = answered
                state = state.model_copy(update={"passed": True,
                                                 "accepted": (*state.accepted, (state.stage_index, answer.approver))})
            continue

        if isinstance(decision, Rollback):
            log.warning("rolling back: %s", decision.reason)
            # Asked by the guardrail or the judge, whichever verdict failed the stage: the page,
            # the ledger and the incident report name the same one.
            return _rolled_back(env, spec, rollback, journal, reports, weights, decision.reason,
                                actor=asked_by(decision.reason), before=lambda: finish_stage("rollback", now))

        if isinstance(decision, (PhaseComplete, Promote)):
            done = isinstance(decision, Promote)
            # Recorded as holding (or promoted at) the weights this run set: weights moved during the
            # stage (a rollback the ledger could not record, a change by hand) are checked for as
            # before a shift, or the ledger and people were told of a split the load balancer lacks.
            interfered = _someone_else(env, spec, rollback, journal, reports, weights,
                                       "promoting" if done else "holding")
            if interfered is not None:
                return interfered
            result = RolloutResult(
                outcome="promoted" if done else "holding", reason=decision.reason, image=spec.image,
                final_weights=weights, stages=tuple(reports),
            )
            (journal.promoted if done else journal.phase_complete)(result)
            return result

        raise TypeError(f"unhandled decision {decision!r}")


def shift_said(spec: RolloutSpec, state: StageState, before: Weights, after: Weights, reason: str) -> str:
    """The run log's line for a shift that began ``state``'s stage: which stage of how many, the
    weights read back, why, and how long the judge watches it and from when it may pass. The
    canary flow keeps no ledger and sends no stage notice: its log is all a person has."""
    stage = spec.stages[state.stage_index]
    watched = stage_end(spec, state) - state.started_at
    return (f"stage {state.stage_index + 1} of {len(spec.stages)} ({stage.weight}%): shifted {before} -> {after} "
            f"(stable/canary, read back from the load balancer): {reason}; judged every "
            f"{seconds_said(spec.analysis.interval_seconds)} for up to {duration_said(watched)} (its bake, until a "
            f"whole metric period has ended, and the metrics' delay), and may pass from "
            f"{duration_said(stage.earliest_pass_seconds, given=True)}")


def evidence(journal: Journal, shown: list[StageReport], next_stage: int) -> str:
    """The form's evidence: this run's stage table, after what the journal recorded of the stages
    before them. Week 2 opens with the approval before 25 % in a run that judged no stage itself:
    its table had a header and no row, and the person approving saw nothing of week 1's 5 %."""
    before = min((report.stage_index for report in shown), default=next_stage)
    parts = [part for part in (journal.earlier_stages(before) if before > 0 else None,
                               markdown_table(shown) if shown else None) if part]
    if parts:
        return "\n\n".join(parts)
    if before <= 0:
        return "No stage has been judged yet: there is no evidence to show."
    return f"Nothing is recorded of the {before} stage(s) before this one: there is no evidence to show for them."


def canary_targets_if_unattributed(env: Environment, observation: Observation, *, monitoring: bool,
                                   seconds: float, inline: bool = False) -> int | None:
    """The canary's healthy targets when ``observation`` holds load-balancer 5xx and no request
    count at all: only they say whether those 5xx are its (none: it refuses its traffic, and
    rolls back). None otherwise, or when they cannot be read within ``seconds`` (the spec's
    ``verify_timeout_seconds``; unknown: no pass, no rollback). ``inline``: see ``tasks.inline.run_as``."""
    if not unattributed(observation, monitoring=monitoring):
        return None
    return traffic.healthy_targets_or_unknown(env.router, "canary", seconds, inline=inline)


def baseline_history(env: Environment, spec: RolloutSpec, judge, shifted_at: float,
                     inline: bool = False) -> tuple[Interval, ...] | None:
    """The baseline's intervals in the ``calibration_seconds`` before a stage: one read per stage
    (None when the read failed, and the next look reads again).

    Read whatever the judge: the guardrail measures the load balancer's own 5xx rate in them.
    With ``calibration_seconds`` 0 the judge is not given them (``uses_history``), but the hour
    before is still read for the guardrail: without that rate every load-balancer 5xx of the
    stage may be the canary's, and a steady background held every healthy canary at a low
    weight until a person accepted the stage.

    They end with the last whole period before the shift: the period holding the shift mixes
    two weightings, and on the stage's first tick it has not even ended.

    Without them the judge keeps its one-interval cap, which is the safe side; a failed read
    is therefore logged and the look judged without them rather than stopped. It is read again
    at the next look: one throttled read used to leave the whole stage without the load
    balancer's 5xx rate before it, and a steady background then kept a healthy canary from passing.

    ``inline``: see ``tasks.inline.run_as``.
    """
    seconds = spec.analysis.calibration_seconds or BACKGROUND_SECONDS
    end = math.floor(shifted_at / spec.analysis.interval_seconds) * spec.analysis.interval_seconds
    past = run_as(metrics.observe, inline)(env.metrics, end - seconds, end)
    if past.error is not None:
        get_run_logger().warning("baseline history unavailable (%s); judging this look without it and reading it "
                                 "again at the next", past.error)
        return None
    return past.intervals


def _plain(text: str) -> str:
    """``text`` for a markdown form as it reads: one line, markdown's characters escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", " ".join(text.split()))


def held_note(answer: ApprovalAnswer, wall: float | None) -> str:
    """The next form's line after ``answer`` held the rollout (a person's hold, or a timeout whose
    policy holds), at the wall-clock time ``wall``, as the form's deadline is given (None: held in
    a run before this one, which resumed the rollout; the ledger keeps no wall time for it)."""
    at = ("before this run resumed the rollout" if wall is None
          else time.strftime("at %Y-%m-%d %H:%M:%S UTC", time.gmtime(wall)))
    if answer.timed_out:
        return f"Nobody answered the last pause ({_plain(answer.comment)}): it timed out {at} and asks again."
    why = f": {_plain(answer.comment)}" if answer.comment.strip() else " (no comment)"
    return f"{_plain(answer.approver)} answered **hold** {at}{why}."


def next_weight_hint(spec: RolloutSpec, pause: Pause, until_stage: int | None) -> str:
    """The form's line on ``next_weight`` at this pause: the weights it may name, or that it does
    not apply. The form's field takes any weight from 1 to 100, and one the run then refuses is
    only said on the next form."""
    if pause.cause != "approval":
        return ("Leave **next_weight** empty: approving here accepts this stage as passed on your word, "
                "and skipping ahead applies only at an approval pause.")
    last = len(spec.stages) - 1 if until_stage is None else until_stage
    later = [f"{stage.weight}" for stage in spec.stages[pause.stage_index + 1:last + 1]]
    shift = f"Approving shifts to {spec.stages[pause.stage_index].weight}%"
    if not later:
        return f"{shift}; leave **next_weight** empty (there is no later stage to skip to)."
    return f"{shift}; to skip ahead instead, set **next_weight** to one of {', '.join(later)}."


def approved_stage(spec: RolloutSpec, pause: Pause, answer: ApprovalAnswer, until_stage: int | None) -> int:
    """The stage an approval lets the rollout shift to: the paused one, or a later one it names.

    Raises:
        ValueError: the answer's ``next_weight`` is not a stage it may skip to.
    """
    if answer.next_weight is None:
        return pause.stage_index
    return next_stage_for(spec, pause, answer.next_weight, until_stage)


def _drift(env: Environment, expected: Weights, lag_seconds: float, inline: bool = False) -> Weights | None:
    """The load balancer's weights when they are not ``expected``, None when they are.

    One read when they match (the normal path); otherwise they are read again, so that a stale
    read never rolls back a healthy rollout. The whole check is one wait of the spec's read-back
    lag (``verify_timeout_seconds``): the reads made again get what the first left of it (at
    least one is made), where they got a whole lag more, and the check took up to twice it.

    ``inline``: see ``tasks.inline.run_as``.

    Raises:
        ReadBackUnanswered: the load balancer did not answer a read within the lag.
    """
    deadline = time.monotonic() + lag_seconds
    if run_as(traffic.weights_within, inline)(env.router, lag_seconds) == expected:
        return None
    live = run_as(traffic.weights_settled, inline)(env.router, expected, lag_seconds, left=deadline - time.monotonic())
    return None if live == expected else live


def _someone_else(env, spec, rollback, journal, reports, weights: Weights, instead: str,
                  before: Callable[[], object] | None = None) -> RolloutResult | None:
    """Roll back (``before``: see ``_rolled_back``) when someone else changed what this run set,
    and it would otherwise go on ``instead`` (``_interference``). None when nothing was changed."""
    changed = _interference(env, spec, weights, instead)
    if changed is None:
        return None
    live, reason, actor = changed
    return _rolled_back(env, spec, rollback, journal, reports, live, reason, actor=actor, before=before)


def _interference(env, spec, weights: Weights, instead: str, inline: bool = False,
                  scaled: bool = True) -> tuple[Weights, str, str] | None:
    """What someone else changed of what this run set, said (logged) as the reason it rolls back
    instead of going on ``instead``: the load balancer's weights (``_drift``), or the canary
    service scaled to 0 while the load balancer sends it a share of the traffic (a `terraform
    apply` of its desired count, or a person stopping it), which turns those users away. Going
    on, a shift scaled the canary up again without a word, overriding whoever scaled it down.

    Returns:
        (the weights the rollback starts from, its reason, its actor "drift"), or None when
        nothing was changed. ``inline``: see ``tasks.inline.run_as``. ``scaled``: False, the weights
        alone are read (a bake's looks: one DescribeRules a look, not a DescribeServices as well).
    """
    # The reason is recorded only by a rollback this run does; the log is written before the ledger
    # is asked, and that other rollback, or another run driving the rollout, may stop this one.
    unless = (", unless the ledger shows another rollback or another run driving the rollout already: this run then "
              "stops without moving traffic, and says why")
    live = _drift(env, weights, spec.verify_timeout_seconds, inline)
    if live is not None:
        reason = (f"the load balancer holds {live} (stable/canary), not the {weights} this run set: the traffic was "
                  f"moved by someone else, so this run rolls back instead of {instead}")
        get_run_logger().warning("%s%s", reason, unless)
        return live, reason, "drift"
    if scaled and weights.canary > 0:
        canary = run_as(ecs.describe_service, inline)(env.deployer, env.targets.canary_service)
        if canary.desired == 0:
            reason = (f"the canary service {env.targets.canary_service} was scaled to 0 by someone else while the load "
                      f"balancer sends it {weights.canary}% of the traffic, which it turns away: this run rolls back "
                      f"instead of {instead}")
            get_run_logger().warning("%s%s", reason, unless)
            return weights, reason, "drift"
    return None


def _rolled_back(env, spec, rollback, journal, reports, weights, reason: str, actor: str = "judge",
                 before: Callable[[], object] | None = None) -> RolloutResult:
    # Intent first: a run that dies mid-rollback is finished on resume. A ledger that cannot
    # record it does not stop the rollback; the journal fails the run once it is done.
    unrecorded = journal.rolling_back(reason, actor)
    if before is not None:
        # The running stage's "rollback" row, once this run is the one rolling back: another
        # rollback already under way (an abort's) stops it above, and that one tells the story.
        before()
    try:
        result = rollback(reason, actor=actor, ledger_failure=unrecorded)
    except BaseException as error:
        journal.rollback_failed(error)
        raise
    journal.rolled_back(result, reports)
    return RolloutResult(
        outcome="rolled_back", reason=reason, image=spec.image,
        final_weights=result.weights, stages=tuple(reports), rollback=result,
    )
