"""progressive_rollout: the whole gradual rollout, resumable from its ledger.

A first run creates the rollout in the ledger (refused while another rollout of the service
is unfinished), deploys the new task definition to the canary service (register + point,
undone together if either fails), and runs the first weekly phase. The weekly
``advance_phase`` deployment runs the next phase; a run killed at any point and started
again reconciles the ledger with the load balancer and carries on from the recorded stage.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from dataclasses import dataclass
from typing import Callable

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from pydantic import ValidationError

from flows.approvals import duration_said, prefect_approver, unheard_answers
from flows.canary import (RolloutRefused, approvals_asked, before_any_write, dead_letter_check,
                          latency_unpublished_said, pin_image, pinning_in_any_region, preflight, unanswered)
from flows.engine import canary_capacity, run_stages
from flows.env import load_session, mark_rollout, owner_finished, owner_run_id, run_label, run_owner, tick_actor
from flows.hooks import rollback_hooks
from flows.artifacts import create_markdown_artifact, for_people
from flows.journal import LedgerJournal, artifact_key, on_the_wall, rule_recorded
from flows.monitor import after_window, run_monitor, send_owed_decommission_page, unwatched_dead_letters_said
from flows.params import MAX_LEASE_SECONDS, Actor, EarlyReason, LeaseSeconds, PollSeconds
from flows.rollback import finish_rollback, judge_rollback, sleep_wall
from rollway import lapse, weekly
from rollway.api_error import as_cause
from rollway.approvals import (
    COMMENT_LIMIT, UNHEARD_AFTER, ApprovalAnswer, Approver, not_yet_recorded, unheard_said, unheard_transitions,
)
from rollway.aws.denied import names_rollout_denials, rollout_said
from rollway.bounds import whole_minutes
from rollway.cli.blocks import deployment_path
from rollway.clock import ClockSettings
from rollway.decide import StageState, accepted_stages, held_by_person, looks_shown, unrecorded_shift
from rollway.decommission_page import page_owed, why_owed
from rollway.environment import Environment
from rollway.failure_words import failures_writable
from rollway.finalize import is_finalized, same_revision
from rollway.ledger import (
    RECONCILE,
    LockHeld,
    RolloutInProgress,
    RolloutRecord,
    Transition,
    answer_said,
    begin_rollback,
    lease_free,
    monitoring_left,
    monitoring_owed,
    new_rollout_id,
    owed_rejection,
    pause_cause,
    rejection_owed,
    rejection_reason,
    wall_utc,
    written_since,
)
from rollway.model import ServiceState, ShiftedRule, Weights, validation_problems
from rollway.one_line import on_one_line, shown
from rollway.phases import RolloutPhase
from rollway.report import RolloutResult, markdown_cell
from rollway.reports import PHASE_ENDS, waiting_pause
from rollway.spec import Approvals, RolloutSpec, phase_end_stage
from rollway.url_passwords import passwords_hidden
from tasks import ecs, flags, metrics, traffic, undoable


class DriftDetected(RuntimeError):
    """The load balancer's weights are not what the ledger says."""


class PhaseRefused(RuntimeError):
    """The next weekly phase may not start (the previous one did not pass, or nothing is running)."""


class RolloutMovedSinceRead(RuntimeError):
    """Another run wrote on the rollout between the read the next phase was decided on and the
    lease taken to start it: the lease was given back, and the decision is made again."""


def recorded_policy(record: RolloutRecord) -> RolloutSpec:
    """The spec recorded with ``record``, which a resume runs as a whole.

    Today's rules may refuse a spec recorded under older ones (say, an ``interval_seconds`` of
    30). Such a rollout can be rolled back, since a rollback reads only what it needs
    (``RolloutSpec.for_rollback``), but not resumed: the run refuses before it writes anything,
    so its hooks leave the rollout as it is instead of rolling it back.
    """
    try:
        return RolloutSpec.from_record(record.spec_json)
    except ValidationError as err:
        problems = validation_problems(err, "spec")
        raise RolloutRefused(
            f"rollout {record.rollout_id} of {record.image} was recorded with a spec today's rules refuse "
            f"({problems}), so it cannot be resumed. Nothing was changed; roll it back with `rollway abort`, "
            "then start the rollout again"
        ) from err


def metrics_period(record: RolloutRecord | None, spec: RolloutSpec) -> int:
    """The period CloudWatch is read at for a run given ``spec``: the recorded spec's when the run
    will drive that one (``run_progressive`` resumes an unfinished rollout of the same image, or
    watches a promoted one's monitoring window, on its recorded spec), else ``spec``'s.

    The judge counts each tick at the governing spec's interval: metrics read at another period
    would count a tick's requests several times over, or only a part of them.

    Raises:
        RolloutRefused: the recorded spec is one today's rules refuse (as the resume would).
    """
    if record is not None and record.image == spec.image and (
            not record.phase.terminal or _watch_owed(record)):
        return recorded_policy(record).analysis.interval_seconds
    return spec.analysis.interval_seconds


def _watch_owed(record: RolloutRecord) -> bool:
    """Whether ``record`` is a promoted rollout whose monitoring window a run of its image still
    watches, read leniently (as advance_phase reads it): one whose window is over is production,
    and a run of its image has nothing to do, whatever rules its recorded spec was written under.
    Read as a whole, such a spec refused the run and said to roll it back with `rollway abort`,
    which refuses a promoted rollout whose window is over."""
    return record.phase is RolloutPhase.PROMOTED and monitoring_owed(RolloutSpec.for_rollback(record.spec_json), record)


def create_rollout(env: Environment, spec: RolloutSpec, *, owner: str, actor: str, lease_seconds: float,
                   phased: bool = True) -> RolloutRecord:
    """Record a new rollout (refused while another one of the service is unfinished).

    ``phased`` is recorded with it: the run's mode is part of the rollout from its first write,
    so a run that dies before its first stage is resumed the way it ran, and a fresh run's
    history does not open with a "resume".
    """
    t = env.targets
    stable, canary = preflight(env, spec)
    # Pinned once, here, and recorded: a resumed run (days later, after the tag may have moved)
    # registers and reports this digest, never what the tag names then.
    pinned = pin_image(env, spec)
    now = env.clock.now()
    with before_any_write(env.targets):
        newest = env.ledger.get(t.canary_service)
    comment = f"rollout of {spec.image}" + (f" (pinned as {pinned})" if pinned != spec.image else "")
    record = RolloutRecord(
        # Stamped after the newest id even when this clock is behind the one that stamped it.
        service=t.canary_service, rollout_id=new_rollout_id(now, after=newest.rollout_id if newest else None),
        image=spec.image, spec_json=spec.model_dump_json(), phase=RolloutPhase.PENDING,
        previous_task_definition=canary.task_definition, stable_desired=stable.desired,
        created_at=now, updated_at=now, phased=phased,
        history=(Transition(at=now, kind="start", actor=actor, comment=comment, run=run_label()),),
        pinned_image=pinned,
    )
    try:
        created = env.ledger.create(record, owner=owner, now=now, lease_seconds=lease_seconds, wall=env.wall())
    except ValueError as err:
        # Refused before anything was written (an id or a lease the ledger will not take): as a
        # RolloutRefused, the hooks leave alone the rollout that holds the service.
        raise RolloutRefused(f"refused before any write: {err}") from err
    # The seed's communication plan tells people before the deployment, and the first notice a
    # progressive rollout sent was its first stage's, after traffic had moved. Sent once the ledger
    # took the rollout (a refused one starts nothing) and before any traffic moves; a notice SNS
    # refuses is logged (``alert``), as the rollout it is about is healthy.
    metrics.alert(env.notifier, f"Rollout starting: {t.canary_service}", starting_notice(spec, created, actor, phased, t.cluster),
                  targets=t)
    return created


def starting_notice(spec: RolloutSpec, record: RolloutRecord, actor: str, phased: bool, cluster: str) -> str:
    """What the "Rollout starting" notice says: who started what, where, and the plan it follows."""
    pinned = f" (pinned as {record.pinned_image})" if record.pinned_image and record.pinned_image != spec.image else ""
    if phased and len(spec.phases) > 1:
        plan = "weekly phases " + "; ".join(
            f"{p.name}: {', '.join(f'{w}%' for w in p.weights)}{' then decommission' if p.decommission else ''}"
            for p in spec.phases)
    else:
        plan = "stages " + ", ".join(f"{w}%" for w in spec.weights)
    # Said before the first Monday: the schedule starts each phase whether anyone is at work or not.
    return (f"{actor} started rollout {record.rollout_id} of {spec.image}{pinned} on {record.service} in cluster "
            f"{cluster}: {plan}; {spec.analysis.judge} judge, automatic rollback on failure{approvals_asked(spec)}.")


def policy_not_followed(given: RolloutSpec, recorded: RolloutSpec, record: RolloutRecord) -> None:
    """Warn, in the log and the ``<service>-spec-not-followed`` artifact, when the spec a run was
    given differs from the one its rollout recorded: which fields, and that the recorded spec governs.

    The recorded one governs (its stages were judged and approved under it), and a person who
    edited the spec before starting the run again (an approval before 50 %, a stricter alpha),
    or edited the advance_phase deployment's between weeks, otherwise believed the rest of the
    rollout followed the edit. Warned, not refused: the weekly schedule's runs carry the
    deployment's spec, and a refusal would stop the rollout every Monday over an edit.
    """
    differs = [name for name in RolloutSpec.model_fields if getattr(given, name) != getattr(recorded, name)]
    if not differs:
        return
    said = (f"the spec given to this run differs from the one rollout {record.rollout_id} of {record.image} recorded "
            f"in {', '.join(differs)}: the recorded spec governs this run, and the given one is not followed. To roll "
            "out under the given one, roll this rollout back (`rollway abort`) and start it again")
    get_run_logger().warning("%s", said)

    def value(spec: RolloutSpec, name: str) -> str:
        return markdown_cell(f"`{json.dumps(spec.model_dump(mode='json', include={name})[name], separators=(',', ':'))}`")

    rows = "\n".join(f"| {name} | {value(recorded, name)} | {value(given, name)} |" for name in differs)
    for_people("spec not followed", lambda: create_markdown_artifact(
        key=artifact_key(record.service, "spec-not-followed"), description="the given spec's edits, not followed",
        markdown=f"# Spec not followed\n\n{markdown_cell(said)}\n\n| field | recorded (followed) | given (not followed) |"
                 f"\n|---|---|---|\n{rows}\n"))


def edits_not_followed(given: RolloutSpec, record: RolloutRecord) -> None:
    """``policy_not_followed`` against the spec ``record`` recorded, where the run goes on without
    reading it as a whole (a phase already complete, ``advance_phase`` before it resumes).

    Compared with the recorded spec as a whole only: one today's rules refuse is read in part
    (``phase_already_complete``, ``RolloutSpec.for_rollback``), and every other part would be
    named as edited.
    """
    with contextlib.suppress(ValidationError):
        policy_not_followed(given, RolloutSpec.from_record(record.spec_json), record)


def tag_moved_note(env: Environment, record: RolloutRecord) -> None:
    """Warn when the rollout's tag names another image now than the digest it was pinned to.

    A person who pushed the tag again (a fix under the same version) and started the rollout
    again would otherwise watch it resume on the image pinned at its start, with nothing saying
    the new build is not the one running. The resume goes on with the recorded digest either way:
    that is the image its stages judged.
    """
    if env.images is None or record.pinned_image in (None, record.image):
        return
    log = get_run_logger()
    try:
        names = env.images.pin(record.image)
    except Exception as err:  # noqa: BLE001 - a read for a warning: the tag deleted, say, stops no resume
        log.info("could not read which image %s names now (%s): going on with %s, pinned when rollout %s started",
                 record.image, err, record.pinned_image, record.rollout_id)
        return
    if names != record.pinned_image:
        log.warning(
            "%s names %s now, but rollout %s pinned it to %s when it started: this run goes on with %s, the image its "
            "stages judged. To roll out what the tag names now, roll this rollout back (`rollway abort`) and start "
            "a new one, under a tag of its own", record.image, names, record.rollout_id, record.pinned_image,
            record.pinned_image)


def deploy_canary(env: Environment, spec: RolloutSpec, record: RolloutRecord, *, owner: str, actor: str,
                  lease_seconds: float, image: str) -> RolloutRecord:
    """Register the new revision of ``image`` (the rollout's pinned image) and point the canary
    service at it, undone together on failure.

    A run that died after pointing the canary and before recording it left the canary on a
    revision of this image: that one is recorded, not a second one registered (the first would
    be left behind, unused). One of an older release that died so before images were pinned
    left a revision naming the tag: it is replaced by one naming the digest, and deregistered
    (``_retire_unpinned``), not left behind.
    """
    t = env.targets
    # Looked up before any write: a resumed run has made no lookup yet, and one failing after the
    # deploy left the canary on the new revision, unrecorded.
    rule = rule_recorded(env.router)
    canary = ecs.describe_service(env.deployer, t.canary_service)
    ran = (ecs.image_of(env.deployer, canary.task_definition)
           if canary.task_definition != record.previous_task_definition else None)
    retired = ""
    if ran == image:
        revision = canary.task_definition
    else:
        stable = ecs.describe_service(env.deployer, t.stable_service)
        revision = undoable.deploy_revision(env.deployer, t.canary_service, image, stable.task_definition,
                                            record.previous_task_definition, lambda seconds: sleep_wall(env, seconds))
        if ran == record.image != image and canary.task_definition != stable.task_definition:
            retired = _retire_unpinned(env, canary.task_definition, record.image)
    return env.ledger.record(
        t.canary_service, owner=owner, now=env.clock.now(), lease_seconds=lease_seconds, wall=env.wall(),
        transition=Transition(at=env.clock.now(), kind="deploy", actor=actor,
                              comment=f"{t.canary_service} on {revision} ({image}){retired}"),
        canary_task_definition=revision, phase=RolloutPhase.PROGRESSING, **rule,
        # A record from before images were pinned gets the image its revision names.
        **({} if record.pinned_image == image else {"pinned_image": image}),
    )


def _retire_unpinned(env: Environment, revision: str, tag: str) -> str:
    """Deregister ``revision``, which names ``tag``: a run of an older release registered it for
    this rollout and died before recording it, ahead of pinning; the canary runs the pinned one
    now. Returns what the deploy's history entry says of it.

    Nothing else of the rollout's uses it (its rollback restores the previous revision). A
    deregistration ECS refuses stops nothing: the log and the history name the revision to
    deregister by hand."""
    log = get_run_logger()
    try:
        ecs.deregister_revision(env.deployer, revision)
    except Exception as err:  # noqa: BLE001 - a leftover, not a step of the rollout
        log.warning("%s, registered for %s before the rollout was pinned, is no longer used, and ECS refused to "
                    "deregister it (%s): deregister it by hand", revision, tag, err)
        return f"; {revision}, registered for {tag} before pinning, is unused: ECS refused to deregister it ({err})"
    log.info("deregistered %s: registered for %s before the rollout was pinned, replaced by the pinned revision",
             revision, tag)
    return f"; deregistered {revision}, registered for {tag} before pinning and replaced"


def stable_count_for_phase(env: Environment, record: RolloutRecord, stable: ServiceState) -> int | None:
    """The stable service's task count the next phase sizes the canary for, when it grew past the
    one ``record`` holds (None otherwise); a count that changed is said in the log either way.

    The count is read at the rollout's start and a phased rollout runs for weeks: an autoscaling
    policy that scaled the stable service out meanwhile left the canary sized for the old count at
    50 % and 75 % (and a rollback scaling the stable service back to it). A count lower than the
    recorded one is kept as recorded: the stable service carries less than all the traffic by then,
    and scaling in with it would size the canary, and what a rollback gives back, for that share.
    """
    recorded, now = record.stable_desired, stable.desired
    if recorded is None or now == recorded:
        return None
    log = get_run_logger()
    if now < recorded:
        log.info("%s runs %d tasks now, fewer than the %d recorded at the rollout's start (it carries %d%% of the "
                 "traffic): the canary stays sized for %d", stable.name, now, recorded, record.weights.stable, recorded)
        return None
    log.warning("%s runs %d tasks now, not the %d recorded at the rollout's start (scaled out since, by autoscaling "
                "or a person): from this phase on the canary is sized for %d, and a rollback gives the stable "
                "service at least %d", stable.name, now, recorded, now, now)
    return now


def start_phase(env: Environment, spec: RolloutSpec, index: int, *, owner: str, actor: str,
                lease_seconds: float, why: str = "", stable_desired: int | None = None,
                phased: bool = True) -> RolloutRecord:
    """Record weekly phase ``index`` started now; ``why`` is added to the transition's comment.

    ``stable_desired``: the stable service's count read again for this phase
    (``stable_count_for_phase``), recorded with it; None leaves the recorded one. ``phased``: False
    when the run goes on through every stage (its log then names every pause still to come).
    """
    now = env.clock.now()
    # Said in the run's log: a scheduled start logged only "resuming ... at stage 1", so the
    # advance_phase run did not say which phase it started, nor that it started one at all.
    get_run_logger().info("starting %s of %s (phase %s of %s: %s)%s%s", spec.phases[index].name,
                          env.targets.canary_service, index + 1, len(spec.phases),
                          ", ".join(f"{w}%" for w in spec.phases[index].weights), f",{why}" if why else "",
                          phase_pauses(spec, index, env.wall(), through_the_end=not phased))
    return env.ledger.record(
        env.targets.canary_service, owner=owner, now=now, lease_seconds=lease_seconds, wall=env.wall(),
        # Named: the advance_phase run that starts a phase writes this first, and the reports list
        # each run by its first named entry (a later pause otherwise, or nothing at all).
        transition=Transition(at=now, kind="phase", actor=actor, comment=f"starting {spec.phases[index].name}{why}",
                              run=run_label()),
        weekly_phase_index=index, weekly_phase_passed=False, weekly_phase_started_at=now,
        phase=RolloutPhase.PROGRESSING, **({} if stable_desired is None else {"stable_desired": stable_desired}),
    )


def phase_pauses(spec: RolloutSpec, index: int, wall: float, *, through_the_end: bool = False) -> str:
    """What a phase's start line adds of the approvals it will ask for, and what an unanswered one
    does ("" when it asks none); ``wall``: the wall clock's now, which a pause's timeout counts on.

    The Monday schedule starts a phase whether anyone is at work or not: the pause it asks said its
    deadline only once asked, and nothing at the start said that, by default, nobody answering
    within the hour rolls the rollout back. ``through_the_end``: the run does not stop at the
    phase's end, and every later pause is named too.
    """
    first = phase_end_stage(spec, index - 1) + 1 if index > 0 else 0
    last = len(spec.stages) - 1 if through_the_end else phase_end_stage(spec, index)
    asks = [i for i in range(first, last + 1) if spec.stages[i].approval]
    if not asks:
        return ""
    approvals = spec.approvals
    said = "; it asks for approval before " + ", ".join(f"{spec.stages[i].weight}%" for i in asks)
    if asks[0] == first:
        # Asked as the phase starts: its deadline is known now.
        said += (f" ({spec.stages[first].weight}% is asked now: answer by about "
                 f"{weekly.describe(wall + approvals.timeout_seconds, 'UTC')}, wall clock, "
                 f"{duration_said(approvals.timeout_seconds, given=True)} from now)")
    return f"{said}; {unanswered(approvals)}"


def resize_canary(env: Environment, record: RolloutRecord) -> None:
    """Scale the canary for the share it carries now, on ``record``'s stable count, if it has fewer
    tasks: after the count grew, the canary carried its share of the grown traffic on tasks sized
    for the old count, and the next shift would take its tasks for ones someone scaled in. Not
    waited for: the next shift waits for ECS and the health checks as it always does.

    Nor needed: the next shift sizes the canary for the recorded count too. ECS refusing it (past
    the task's retries) is said and the phase goes on; failing the run instead had its hooks roll
    back a healthy canary over a head start."""
    needed = canary_capacity(record.stable_desired or 1, record.weights.canary) if record.weights.canary else 0
    try:
        canary = ecs.describe_service(env.deployer, env.targets.canary_service)
        if canary.desired < needed:
            get_run_logger().info("scaling %s from %d to %d tasks for the %d%% it carries", canary.name,
                                  canary.desired, needed, record.weights.canary)
            ecs.update_service(env.deployer, canary.name, desired=needed)
    except Exception as err:  # noqa: BLE001 - any failure leaves the sizing to the next shift
        get_run_logger().warning("could not scale %s to %d tasks for the %d%% it carries now (%s): the next shift "
                                 "sizes it for the new count", env.targets.canary_service, needed,
                                 record.weights.canary, err)


def reconcile(env: Environment, spec: RolloutSpec, record: RolloutRecord, *, owner: str, actor: str,
              adopt_live_weights: bool, lease_seconds: float, died_holding: bool = False) -> RolloutRecord:
    """Make the ledger and the load balancer agree before acting, or refuse.

    A shift that was made but not recorded (the run died between the two) is recognised and
    recorded, so it is neither repeated nor skipped. Anything else is drift: refused unless
    the operator asks to adopt the live weights.

    ``died_holding``: the run before this one stopped holding the rollout (killed, or its machine
    lost), perhaps as a stage's shift was being undone; its bound flags are then brought back to the
    recorded stage (``flags_back_to_the_stage``).
    """
    live = traffic.weights_within(env.router, spec.verify_timeout_seconds)
    if live == record.weights:
        record = _rule_noted(env, record, owner=owner, lease_seconds=lease_seconds)
        return flags_back_to_the_stage(env, spec, record, owner=owner, actor=actor, lease_seconds=lease_seconds) \
            if died_holding else record
    now = env.clock.now()
    made = unrecorded_shift(spec, record, live)
    if made is None and not adopt_live_weights:
        raise DriftDetected(
            f"the ledger says {record.service} is at {record.weights} (stable/canary) but the load balancer "
            f"holds {live}; run again with adopt_live_weights=true to continue from the live weights, "
            "or roll back (rollway abort)"
        )
    # Either the run died after moving traffic and before recording it, or the operator adopts
    # weights moved by hand: the bound flags follow the live weights before the stage bakes
    # (idempotent: unchanged flags are not written). Checked as a stage's write is (``exclusive``):
    # a run killed after its first shift, before that stage's flag write, has never written the
    # flags, and another rollout may have taken them since this one's start check.
    updates = flags.apply_bindings(env.flags, list(spec.flags), live.canary, actor=actor, now=now,
                                   rollout=record.rollout_id, exclusive=True, ledger=env.ledger,
                                   service=record.service) \
        if spec.flags and env.flags is not None else []
    found: list[str] = []
    if made is not None:
        transition = Transition(at=now, kind="shift", actor=RECONCILE, from_weights=record.weights, to_weights=live,
                                to_stage=made, comment="shift found on the load balancer but not in the ledger")
        if spec.flags and env.flags is not None:
            # The dead run moved the bound flags with the shift; applying the stage again moved
            # nothing, so the moves are read from the flags' audit trails, or never recorded.
            found = flags.unrecorded_moves(env.flags, list(spec.flags), spec.stages[made].weight,
                                           rollout=record.rollout_id, skip=[u.feature for u in updates])
    else:
        below = [i for i, s in enumerate(spec.stages) if s.weight <= live.canary]
        made = below[-1] if below else -1
        transition = Transition(at=now, kind="adopt", actor=actor, from_weights=record.weights, to_weights=live,
                                to_stage=made, comment="operator adopted the live weights")
    # One write, as the journal records a shift: a kill between two would lose the flag moves.
    flag_moves = tuple(Transition(at=now, kind="flag", actor=transition.actor, comment=line)
                       for line in found + [update.describe() for update in updates])
    rule = rule_recorded(env.router)
    replaced = _other_rule(record.shifted_rule, rule.get("shifted_rule"))
    if replaced is not None:
        transition = transition.model_copy(update={"comment": f"{transition.comment}; {replaced}"})
    # With the rule the weights were read on, as each shift records its own: a rollout an older
    # ledger began recorded none, and its rollback looked the rule up afresh by path. The stage
    # bakes from the start, and its pass is a new one: the windows counted after the last pass are
    # dropped, as a shift drops them (``LedgerJournal.shifted``).
    return env.ledger.record(record.service, owner=owner, now=now, lease_seconds=lease_seconds, wall=env.wall(),
                             transition=transition, followed_by=flag_moves, weights=live, stage_index=made,
                             stage_started_at=now, stage_passed=False, passed_looks=None, **rule)


def _rule_noted(env: Environment, record: RolloutRecord, *, owner: str, lease_seconds: float) -> RolloutRecord:
    """``record`` with the rule the weights were just read on (``rule_recorded``), when it recorded none
    (a rollout an older ledger began) or another: a resume finding the recorded weights wrote nothing,
    and until the next shift, a stage's bake away, a rollback looked the rule up afresh by path, where
    another rule naming the canary group fails it, or moved the traffic over the rule recorded, which
    no longer carried the rollout's path, its users left on the canary. None recorded is noted alone
    (``Ledger.note``: no entry, the lease left as it is); another is replaced in an entry saying so."""
    rule = rule_recorded(env.router)
    found = rule.get("shifted_rule")
    if found is None or found == record.shifted_rule:
        return record
    if record.shifted_rule is None:
        return env.ledger.note(record.service, owner=owner, now=env.clock.now(), rollout=record.rollout_id, **rule)
    now = env.clock.now()
    said = Transition(at=now, kind="resume", actor=RECONCILE, comment=_other_rule(record.shifted_rule, found))
    get_run_logger().warning("%s", said.comment)
    return env.ledger.record(record.service, owner=owner, now=now, lease_seconds=lease_seconds, wall=env.wall(),
                             transition=said, **rule)


def _other_rule(recorded: ShiftedRule | None, found: ShiftedRule | None) -> str | None:
    """The ledger's words for the rule ``found`` (the one the weights were read on) replacing the
    rule the rollout ``recorded``; None when they are the same, or either is not known."""
    if recorded is None or found is None or recorded == found:
        return None
    if recorded.rule_arn != found.rule_arn:
        return (f"the load balancer holds the traffic's weights on rule {found.rule_arn}, not on the rule the ledger "
                f"recorded ({recorded.rule_arn}): that one is recorded now, and a rollback moves the traffic over it")
    return (f"rule {found.rule_arn} forwards to target groups {found.stable_arn} and {found.canary_arn}, not to those "
            f"the ledger recorded ({recorded.stable_arn} and {recorded.canary_arn}): they are recorded now, and a "
            "rollback moves the traffic between them")


def flags_back_to_the_stage(env: Environment, spec: RolloutSpec, record: RolloutRecord, *, owner: str, actor: str,
                            lease_seconds: float) -> RolloutRecord:
    """The bound flags a dead run left at another stage than the one the ledger and the load balancer
    agree on, moved back to it and recorded.

    A run killed while a stage's shift was undone (Prefect's transaction puts the weights back as
    the kill leaves the flags' task, whose put-back never runs; or a put-back the flags table
    refused) left the flags a stage ahead of the traffic. The ledger records nothing of a shift in
    flight, so the resume saw the ledger and the load balancer agree and baked the stage with the
    flags at the next one, their move recorded nowhere (the next stage, finding them at its
    settings, wrote and recorded nothing either). Read only on a resume of a run that died holding
    the rollout: one read of each flag's newest audit entry, and the stage applied again only when
    one was written for another stage (idempotent; a person's change after it is kept).
    """
    if not (spec.flags and env.flags is not None):
        return record
    weight = record.weights.canary
    if not flags.stage_writes_elsewhere(env.flags, list(spec.flags), weight, rollout=record.rollout_id):
        return record
    now = env.clock.now()
    updates = flags.apply_bindings(env.flags, list(spec.flags), weight, actor=actor, now=now,
                                   rollout=record.rollout_id, exclusive=True, ledger=env.ledger,
                                   service=record.service,
                                   reason="back to the stage the traffic is at: the run before died undoing a shift")
    if not updates:
        return record
    moves = [Transition(at=now, kind="flag", actor=RECONCILE, comment=update.describe()) for update in updates]
    log = get_run_logger()
    log.warning("bound feature flags left at another stage than the traffic's %s%% by the run that died: %s",
                weight, "; ".join(t.comment for t in moves))
    return env.ledger.record(record.service, owner=owner, now=now, lease_seconds=lease_seconds, wall=env.wall(),
                             transition=moves[0], followed_by=tuple(moves[1:]))


def record_mode(env: Environment, record: RolloutRecord, *, phased: bool, owner: str, actor: str,
                lease_seconds: float) -> RolloutRecord:
    """Record how this run drives the rollout, before it moves anything.

    The watchdog resumes a dead run the same way (phased or every stage now). A run that goes
    past a completed phase marks the rollout progressing first, so a shift found later on the
    load balancer while the ledger still says paused is drift, never this run's.
    """
    leaving_pause = not phased and record.phase is RolloutPhase.PAUSED
    if record.phased == phased and not leaving_pause:
        return record
    now = env.clock.now()
    how = "at the end of each weekly phase" if phased else "after the last stage, running every remaining stage now"
    # Going on past a completed phase, the phase is no longer "passed, waiting for the
    # schedule": the schedule must treat the rollout as driven by this run (left alone while it
    # lives, resumed unphased if it dies), not start the next phase over it.
    leaving = {"phase": RolloutPhase.PROGRESSING, "weekly_phase_passed": False} if leaving_pause else {}
    return env.ledger.record(
        record.service, owner=owner, now=now, lease_seconds=lease_seconds, wall=env.wall(),
        transition=Transition(at=now, kind="resume", actor=actor, comment=f"this run stops {how}"),
        phased=phased, **leaving,
    )


def catch_up_phase(env: Environment, spec: RolloutSpec, record: RolloutRecord, *, owner: str, actor: str,
                   lease_seconds: float) -> RolloutRecord:
    """Record the weekly phase the rollout's stage is in, when an unphased run took it past the
    recorded one: a phased run must stop at the end of that phase, not judge the current stage
    the end of a phase that is long over and hold there."""
    index = record.weekly_phase_index
    while index + 1 < len(spec.phases) and record.stage_index > phase_end_stage(spec, index):
        index += 1
    if index == record.weekly_phase_index:
        return record
    now = env.clock.now()
    return env.ledger.record(
        record.service, owner=owner, now=now, lease_seconds=lease_seconds, wall=env.wall(),
        transition=Transition(at=now, kind="phase", actor=actor,
                              comment=f"in {spec.phases[index].name}: the rollout is at "
                                      f"{spec.stages[record.stage_index].weight}% already"),
        weekly_phase_index=index, weekly_phase_passed=False, weekly_phase_started_at=now,
        phase=RolloutPhase.PROGRESSING,
    )


def record_unheard_answers(env: Environment, record: RolloutRecord, held_by: str | None, *, owner: str,
                           lease_seconds: float) -> RolloutRecord:
    """Record in the ledger the answers the flow run this run took ``record`` over from
    (``held_by``: this very run, when it is the Prefect UI's Retry of it after it crashed) was
    given after its process died, paused: the Prefect UI took them, and nothing
    acted on them or wrote them down, so the rollout's history had no word of who approved or
    rejected it. Recorded as ``unheard`` (who, how, and that it was not acted on): this run asks
    again at its own pause. Not read (the Prefect API failed), when they were is recorded on the
    open pause (``OpenPause.answers_unread``): one may be an approval, and the pause, taken over past
    its deadline, was rolled back at once "with no answer"; it is asked anew, saying why. Returns
    the record as it stands after.

    Record-keeping only: an answer that cannot be read or written is logged, never raised (the
    run holds the rollout, and a failure here would have its hooks roll it back)."""
    run_id = owner_run_id(held_by)
    if run_id is None:
        return record
    log = get_run_logger()
    try:
        # Those not in the ledger yet: a run retried again before it paused anew finds them again.
        unheard = not_yet_recorded(unheard_answers(run_id), record.history)
    except Exception as err:  # noqa: BLE001 - see above
        asked = record.open_pause
        log.warning("could not read whether flow run %s, which held %s's rollout, was answered %s (%s): any such "
                    "answer is not in the ledger%s", run_id, record.service, UNHEARD_AFTER, passwords_hidden(str(err)),
                    "" if asked is None else ", and the pause it waited at is asked anew with a new deadline"
                    if asked.answers_unread is None else ", and the pause it waited at keeps the deadline it was "
                    "asked anew with once already")
        return _answers_unread(env, record, owner=owner, lease_seconds=lease_seconds, what="could not be read")
    if not unheard:
        return record
    now = env.clock.now()
    entries = unheard_transitions(unheard, now, history=record.history)
    try:
        recorded = env.ledger.record(record.service, owner=owner, now=now, lease_seconds=lease_seconds,
                                     wall=env.wall(), rollout=record.rollout_id, transition=entries[0],
                                     followed_by=tuple(entries[1:]))
    except Exception as err:  # noqa: BLE001 - see above
        log.warning("could not record in the ledger the answers flow run %s was given %s (%s: %s): not acted on; the "
                    "pause it waited at is asked anew", run_id, UNHEARD_AFTER, unheard_said(unheard), err)
        # A person answered: past its deadline, the pause must not be rolled back as unanswered.
        return _answers_unread(env, record, owner=owner, lease_seconds=lease_seconds, what="could not be recorded",
                               unrecorded=unheard_said(unheard))
    for u in unheard:
        log.warning("%s answered %s to flow run %s %s: not acted on (recorded in the ledger); this run asks again",
                    u.answer.who, u.answer.action, u.run, UNHEARD_AFTER)
    return recorded


def _answers_unread(env: Environment, record: RolloutRecord, *, owner: str, lease_seconds: float,
                    what: str, unrecorded: str | None = None) -> RolloutRecord:
    """Mark ``record``'s open pause as one whose dead run's answers ``what`` (could not be read, or
    recorded: ``unrecorded`` says who gave what): the run asks it anew, its deadline passing no "no
    answer" (``OpenPause.answers_unread``). Marked once while it stays open: asked anew since, its new
    deadline stands (``taken_over_pause``), and a failure again is kept as such
    (``answers_unread_again``), for its timeout to say what is known. Returns the record as it stands
    after; a write refused is logged."""
    asked = record.open_pause
    if asked is None:
        return record
    if asked.answers_unread is None:
        update = {"answers_unread": env.wall(), "answers_unrecorded": unrecorded,
                  "answers_not_read": True if unrecorded is None else None}
    else:
        update = {"answers_unread_again": env.wall(), "answers_unrecorded_again": unrecorded}
    try:
        return env.ledger.acquire(record.service, owner=owner, now=env.clock.now(), lease_seconds=lease_seconds,
                                  rollout=record.rollout_id, wall=env.wall(),
                                  open_pause=asked.model_copy(update=update))
    except Exception as write_err:  # noqa: BLE001 - record-keeping, as ``record_unheard_answers``
        get_run_logger().warning("could not record on %s's rollout that those answers %s (%s): past its deadline, "
                                 "the pause is acted on as unanswered", record.service, what, write_err)
        return record


def hold_rollout(env: Environment, record: RolloutRecord, *, owner: str) -> None:
    """Tag this run with the rollout it now holds, before its first change to AWS: should it fail,
    its hooks roll back this rollout and no other (``flows.hooks``).

    Raises:
        RolloutRefused: the Prefect API did not take the tag. The run gives the lease back and
            stops before it changes anything on AWS, as a refusal its hooks leave alone: going on
            untagged, a crash later would leave a hook elsewhere unable to tell this run's rollout
            from the next one, and it would roll back whichever is the newest then.
    """
    try:
        mark_rollout(record.rollout_id)
    except Exception as err:
        try:
            env.ledger.release(record.service, owner=owner)
            released = "the rollout's lease was given back"
        except Exception as release_err:  # the refusal must still reach the hooks as one
            released = f"the rollout's lease could not be given back ({release_err}) and lapses on its own"
        raise RolloutRefused(
            f"could not tag this run with rollout {record.rollout_id} on the Prefect API "
            f"({passwords_hidden(str(err))}), which its rollback hooks need: nothing was changed on AWS and "
            f"{released}; run again to resume it (or roll it back with `rollway abort`)"
        ) from as_cause(err)


@names_rollout_denials
def run_progressive(
    env: Environment,
    spec: RolloutSpec,
    approver: Approver | None,
    *,
    owner: str,
    actor: str = "operator",
    phased: bool = True,
    adopt_live_weights: bool = False,
    lease_seconds: float = 600.0,
    owner_finished: Callable[[str | None], bool] = lambda owner: True,
    approver_for: Callable[[Approvals], Approver] | None = None,
    queues_checked: bool = False,
    run_again: str = "progressive_rollout",
) -> RolloutResult:
    """Start or resume the service's rollout and run it to the end of the current phase.

    Args:
        approver: asked at every pause; None with ``approver_for``.
        approver_for: builds the approver from the approval policy of the spec that governs the
            run, instead of ``approver``: on a resume that is the recorded spec, not ``spec``.
        phased: stop at the end of the weekly phase (the schedule starts the next one);
            False runs every remaining stage now.
        adopt_live_weights: on drift, continue from the load balancer's weights.
        lease_seconds: how long the run's ownership lasts without renewal (wall seconds: leases are on the wall clock).
        owner_finished: whether the run that owns the rollout has ended (a resume never
            takes the rollout from a live run, whatever its lease says).
        queues_checked: the caller has just checked the watched queues (``_next_phase``, which
            started the phase this run goes on with); a resume checks them again otherwise.
        run_again: the flow a refusal of the resume says to run again: the weekly tick's resume
            (``advance``) names advance_phase, which resumes it with nothing to give again.

    A lease left running by a run that has ended (Prefect says it crashed, say, less than a lease
    ago) is waited out, bounded, as the weekly tick waits (``wait_out_an_ended_runs_lease``), when
    this run would resume the rollout or finish its monitoring window.

    Raises:
        LockHeld: that lease runs longer than this run waits (its own lease and a minute), or its
            holder renewed it while this run waited (its run is alive after all); nothing was changed.
    """
    log = get_run_logger()
    if env.ledger is None:
        raise ValueError("a progressive rollout needs a ledger")
    service = env.targets.canary_service
    owner_finished = functools.cache(owner_finished)  # each question is a call to the Prefect API
    waited = wait_out_an_ended_runs_lease(
        env, owner=owner, lease_seconds=lease_seconds, owner_finished=owner_finished,
        needs_the_lease=functools.partial(lapse.run_needs_the_lease, spec.image, phased=phased),
        refusal=LockHeld, run_again=run_again)
    if waited is not None and waited.renewed:
        # Prefect said its run had ended, yet it wrote its lease: it is alive, and the rollout stays
        # its own (as the tick leaves it). Said here: the ledger's own LockHeld would not say why.
        raise LockHeld(
            f"{service}'s rollout is held by {waited.held.owner}: Prefect says its run has ended, but it renewed "
            f"its lease (now until {weekly.describe(waited.changed.lease_expires, 'UTC')}) while this run waited "
            f"for it to lapse, so it is still at work. Nothing was changed; run {run_again} again once that "
            "run has finished or its lease has run out"
        )
    with before_any_write(env.targets):  # a ledger that cannot be read refuses the run: its hooks leave it alone
        record = env.ledger.get(service)
    if record is not None and record.phase is RolloutPhase.PROMOTED and record.image == spec.image:
        left = None
        if _watch_owed(record):
            recorded = recorded_policy(record)
            left = monitoring_left(recorded, record, env.clock.now())
        if left is not None:
            log.info("%s was promoted but its monitoring did not finish: watching for the %.0f s left", service, left)
            hold_rollout(env, record, owner=owner)
            unwatched_dead_letters_said(env, record, owner=owner, actor=actor, lease_seconds=lease_seconds)
            watched = run_monitor(env, recorded, window_seconds=left, decommission=recorded.phases[-1].decommission,
                                  previous_task_definition=record.previous_task_definition,
                                  stable_desired=record.stable_desired, owner=owner, lease_seconds=lease_seconds,
                                  rollout=record.rollout_id, opened_at=record.last_transition("promote").at,
                                  pinned_image=record.pinned_image, actor=actor, shifted_rule=record.shifted_rule)
            promoted = RolloutResult(outcome="promoted", reason=watched.reason, image=spec.image,
                                     final_weights=record.weights)
            return after_window(promoted, watched)
        # A re-run (or a resume of a run that died after promoting) has nothing left to do but
        # the decommission's page, if the run that decommissioned died before sending it. After a
        # finalize the stable service runs it and the canary service is idle: naming the canary
        # sent a person to a service at 0 tasks.
        owed = page_owed(record)  # the decommission whose page goes out late, and why_owed says why
        late = send_owed_decommission_page(env, record, actor=actor)
        where = (f" and finalized (rollout {record.rollout_id}): {env.targets.stable_service} runs it"
                 if is_finalized(record) else f" (rollout {record.rollout_id}): {service} runs it")
        reason = f"{spec.image} was already promoted{where}" + (
            f"; the page of its decommission was sent late ({why_owed(record, owed)})" if late else "; nothing to do")
        log.info("%s", reason)
        return RolloutResult(outcome="promoted", reason=reason, image=spec.image, final_weights=record.weights)
    if record is not None and rejection_owed(record) and (record.owner in (None, owner) or owner_finished(record.owner)):
        # A person rejected the rollout and its run died before recording the rollback's start:
        # the answer is final, so it is carried out (below) rather than asked for again.
        rejected = owed_rejection(record)
        record = begin_rollback(env.ledger, service, actor=rejected.actor,
                                reason=rejection_reason(rejected), now=env.clock.now(),
                                rollout=record.rollout_id)
    if record is not None and record.phase is RolloutPhase.ROLLING_BACK:
        # A rollback was begun and its run died: finish it before anything else moves traffic.
        finished = finish_rollback(env, record, actor=actor)
        if record.image == spec.image:
            return finished  # the rollback was the decision on this image; re-running does not undo it
        record = env.ledger.get(service)  # rolled back now: the new image's rollout starts below
    unpinned: str | None = None
    died_holding = carried_on = took_released = False
    if record is None or record.phase.terminal:
        if record is not None and record.phase is RolloutPhase.ROLLED_BACK and record.image == spec.image:
            # Started again as if to resume: a new rollout at the first phase's weights, which only
            # "starting week 1" said.
            get_run_logger().warning("%s: it is not resumed; this run starts a new rollout of it, from %s",
                                     rolled_back(service, record), phase_name(spec, 0))
        record = create_rollout(env, spec, owner=owner, actor=actor, lease_seconds=lease_seconds, phased=phased)
    else:
        if record.image != spec.image:
            raise RolloutInProgress(
                f"{service} is rolling out {record.image} ({record.phase.value}, stage {record.stage_index + 1}); "
                f"finish or roll it back before starting {spec.image}"
            )
        if phased and record.phase is RolloutPhase.PAUSED and record.weekly_phase_passed \
                and traffic.weights_within(env.router, spec.verify_timeout_seconds) == record.weights:
            # Nothing is left of this phase: resumed, the run found its last stage passed and
            # recorded the phase complete again, with a second "phase complete" sent over SNS.
            # Weights moved since are drift, refused or adopted (then the phase they are in runs) below.
            # A spec edited between weeks is said here too: the next phases run the recorded one.
            edits_not_followed(spec, record)
            return phase_already_complete(env, record)
        if record.owner not in (None, owner) and not owner_finished(record.owner):
            # A run paused for an approval renews no lease, yet it is alive: taking the rollout
            # from it would leave two runs driving it (and its timeout would undo the other's work).
            raise RolloutInProgress(
                f"{service}'s rollout of {record.image} is driven by {record.owner}, whose run has not ended "
                "(it may be waiting for an approval): answer, cancel or wait for that run. A run left Cancelling is "
                "ended only by its own process (its hooks roll the rollout back): should that process be gone, "
                "nothing ends it, and `rollway abort` rolls the rollout back"
            )
        given, spec = spec, recorded_policy(record)  # the recorded policy governs a resume; checked before taking it
        policy_not_followed(given, spec, record)
        if record.canary_task_definition is not None:
            # Read before taking it: a resume days later would shift the traffic onto whatever was put
            # on the canary service meanwhile, and promote it as this rollout's image.
            with before_any_write(env.targets):
                canary = ecs.describe_service(env.deployer, service)
            if (refusal := canary_replaced(record, canary, env.targets.cluster, moving="resumed, this run would move",
                                           run_again=run_again,
                                           image=replaced_canary_image(env, record, canary))) is not None:
                raise RolloutRefused(refusal)
        # Checked at the start only, a queue deleted since (days before a resume) left the DLQ
        # guardrail watching nothing. Not again for a phase this run has just started: it checked.
        # Told by the caller, not by the lease: a retry of the same flow run (the UI's Retry) days
        # after its process died finds its own name on the rollout, and its queues unchecked.
        if not queues_checked and (refusal := dead_letter_check(env, run_again=run_again)) is not None:
            raise RolloutRefused(refusal)
        tag_moved_note(env, record)
        if record.canary_task_definition is None and record.pinned_image is None:
            # Recorded before images were pinned, and not deployed yet: pinned now, before taking it.
            try:
                unpinned = pin_image(env, spec)
            except RolloutRefused as err:
                # The recorded image cannot be given again by digest: what the person can do differs.
                raise RolloutRefused(
                    f"{err}. Rollout {record.rollout_id} was recorded before images were pinned and has not deployed "
                    "yet, so its image cannot be changed: roll it back (`rollway abort`) and start it again with an "
                    "image that can be pinned") from err
        held_by = record.owner
        took_released = held_by is None  # no ``takeover`` is written: whose pause is open, the journal tells
        # A run that died holding it (not the phase this run's caller has just started) may have
        # died undoing a shift, its flags left at the next stage: reconcile looks at them.
        died_holding = held_by is not None and not queues_checked
        record = env.ledger.acquire(service, owner=owner, now=env.clock.now(), lease_seconds=lease_seconds,
                                    rollout=record.rollout_id, wall=env.wall())
        if not (queues_checked and held_by == owner):  # else the caller took it from its holder, and looked
            record = record_unheard_answers(env, record, held_by, owner=owner, lease_seconds=lease_seconds)
        log.info("resuming %s at stage %s (%s)", service, record.stage_index + 1, record.weights)
        carried_on = True  # a resume, or the next weekly phase the caller has just started
    hold_rollout(env, record, owner=owner)
    # Each step below is recorded when done, so a run that died between them redoes only
    # what is missing.
    if record.canary_task_definition is None:
        record = deploy_canary(env, spec, record, owner=owner, actor=actor, lease_seconds=lease_seconds,
                               image=record.pinned_image or unpinned or pin_image(env, spec))
    if record.weekly_phase_index < 0:
        # An unphased run records week 1 too (a phased run that resumes it later stops at the end
        # of the right phase), but says it will not stop there: the history read "starting week 1"
        # while `rollway status` said the rollout follows no weekly phase.
        record = start_phase(env, spec, 0, owner=owner, actor=actor, lease_seconds=lease_seconds, phased=phased,
                             why="" if phased else " and going on through every stage (unphased: the run does "
                                                   "not stop at the end of a weekly phase)")
    phase_index = record.weekly_phase_index
    try:
        record = reconcile(env, spec, record, owner=owner, actor=actor,
                           adopt_live_weights=adopt_live_weights, lease_seconds=lease_seconds,
                           died_holding=died_holding)
    except DriftDetected:
        give_back_refused(env, spec, record, owner=owner, lease_seconds=lease_seconds, actor=actor)
        raise
    record = record_mode(env, record, phased=phased, owner=owner, actor=actor, lease_seconds=lease_seconds)
    if phased:
        record = catch_up_phase(env, spec, record, owner=owner, actor=actor, lease_seconds=lease_seconds)
        phase_index = record.weekly_phase_index
    if carried_on:
        # Said at the start only, a resumed run's log, and the next weekly phase's a week later, never
        # said its stages pass unmeasured on latency: each is the log people follow for those stages.
        # Read once the traffic and flags are as the run bakes them (``reconcile``).
        latency_unpublished_said(env, spec)
    state = StageState(
        stage_index=record.stage_index, started_at=record.stage_started_at, passed=record.stage_passed,
        approved=record.approved_stage, until_stage=phase_end_stage(spec, phase_index) if phased else None,
        accepted=accepted_stages(record),
    )

    rollback = judge_rollback(env, spec, previous_task_definition=record.previous_task_definition,
                              stable_desired=record.stable_desired, rollout=record.rollout_id, ledgered=True,
                              pinned_image=record.pinned_image)

    # The record as this run last wrote it, or read it since (no later than the lease's last write).
    written = record.lease_expires - lease_seconds if record.owner == owner else None
    passed_at = stage_passed_at(record)
    journal = LedgerJournal(env, spec, owner=owner, lease_seconds=lease_seconds, actor=actor,
                            rollout_id=record.rollout_id, lease_written=written, took_released=took_released)
    result = run_stages(
        env, spec, state=state, stable_desired=record.stable_desired or 1,
        # The pauses' timeout and its policy are the governing spec's, as everything else here.
        approver=approver_for(spec.approvals) if approver_for is not None else approver,
        rollback=rollback, journal=journal, actor=actor, rollout=record.rollout_id, held_by=person_hold(record),
        passed_at=passed_at, looks=looks_shown(spec, record, passed_at),
    ).model_copy(update={"pinned_image": record.pinned_image})
    # Promotion ends the last phase and opens the monitoring window; the plan says whether the
    # window ends by decommissioning the old service.
    if result.outcome == "promoted" and spec.monitor_seconds > 0:
        watched = run_monitor(
            env, spec, window_seconds=spec.monitor_seconds, decommission=spec.phases[-1].decommission,
            previous_task_definition=record.previous_task_definition,
            stable_desired=record.stable_desired, owner=owner, lease_seconds=lease_seconds, rollout=record.rollout_id,
            pinned_image=record.pinned_image, actor=actor, shifted_rule=record.shifted_rule,
        )
        ended = after_window(result, watched)
        unsent = watched.pages_unsent()
        journal.window_ended(ended, page_not_sent=bool(unsent), page_lost=any(page.lost for page in unsent))
        return ended
    if result.outcome == "promoted" and spec.phases[-1].decommission:
        # The plan's decommission ends the monitoring window, and there is none: said, so that
        # nobody takes the old service, still running at 0 %, for one scaled down.
        get_run_logger().warning(
            "monitor_seconds is 0: no monitoring window, so the plan's decommission does not run; %s keeps its "
            "tasks at 0 %% of the traffic until `rollway finalize` moves the promoted version onto it",
            env.targets.stable_service)
    return result


def stage_passed_at(record: RolloutRecord) -> float | None:
    """When the looks at ``record``'s passed stage began, as its ledger says (rollout clock): its pass
    (the judge's verdict, or a person's acceptance), or, when its weekly phase ended there, the
    first entry of the run that took the held rollout up again (the next phase's start, or a run
    through every stage); None when the stage has not passed. A resumed run's watches lay the
    stage's windows on a grid from it, as the run that died did (``rollway.decide.passed_window``),
    so that the window that run last judged is the same test, at the same share of the alpha.

    Nobody looks at the canary while a completed phase holds: counted from the pass, the run a week
    later judged its pause and scale-up at the share of a window a week on (1e-9 while the shares
    were halved by time); the shares are now counted by the windows looked at (``PassedLooks``),
    and no grid's origin sets one. Any other entry after the pass (a phase recorded on resume,
    ``catch_up_phase``; a hold) comes while looks go on: counted from it, the windows would lie on
    another grid, and the window the run before was judging would take a share of its own again."""
    if not record.stage_passed:
        return None
    stage, at, held = record.stage_index, None, False
    for t in record.history:
        if held:  # the first entry after the phase ended: the run taking the held rollout up again
            at, held = t.at, False
        if (t.kind == "verdict" and t.from_stage == stage) or (t.kind == "approve" and t.to_stage == stage):
            at = t.at
        elif t.kind == "phase" and PHASE_ENDS in (t.comment or ""):
            held = True
    return at


def person_hold(record: RolloutRecord) -> ApprovalAnswer | None:
    """The hold a person gave at the pause ``record``'s stage waits at, when it is the last answer
    to it (``held_by_person``), as the answer the resumed run asks again after: who, and why."""
    hold = held_by_person(record)
    if hold is None:
        return None
    return ApprovalAnswer(action="hold", approver=hold.actor, comment=answer_said("hold", hold.comment)[:COMMENT_LIMIT])


def phase_name(spec: RolloutSpec, index: int) -> str:
    """Weekly phase ``index`` by its name ("week 1"), as the summary, status and SNS say it; by
    number for an index the plan does not have."""
    return spec.phases[index].name if 0 <= index < len(spec.phases) else f"phase {index + 1}"


def phase_already_complete(env: Environment, record: RolloutRecord) -> RolloutResult:
    """What a phased run finds at a weekly phase already complete and holding: nothing to do, and
    when the next phase may start. Read leniently: nothing here acts on the recorded policy."""
    spec = RolloutSpec.for_rollback(record.spec_json)
    index, service = record.weekly_phase_index, env.targets.canary_service
    name = phase_name(spec, index)
    nxt = ""
    if index + 1 < len(spec.phases) and record.weekly_phase_started_at is not None:
        due, now = weekly.next_phase_due(record.weekly_phase_started_at, **spec.phase_calendar(record)), env.clock.now()
        following, when = spec.phases[index + 1].name, weekly.describe(due, spec.weekly_timezone)
        if due <= now:
            # Already due (no advance_phase run since; under `make up` the cron fires on the wall
            # calendar): "may start from" a past day, "or sooner" with an early start, misled.
            nxt = f" The next phase, {following}, {weekly.due_since(due, spec.weekly_timezone)}"
        else:
            nxt = (f" The next phase, {following}, may start from {when}{on_the_wall(env.clock, due, now)}: the "
                   "first advance_phase run from then on starts it (or a person's, with start_early_because, sooner).")
    reason = (f"{name} of {service}'s rollout is already complete, holding at {record.weights} (stable/canary): "
              f"nothing was changed.{nxt} A run with phased=false runs every remaining stage now")
    get_run_logger().info("%s", reason)
    return RolloutResult(outcome="holding", reason=reason, image=record.image, final_weights=record.weights)


def refuse_the_schedule_early(actor: str, early_reason: str | None) -> None:
    """Refuse, before anything is read, an early start whose actor is "schedule" (the advance_phase
    form's default): the schedule keeps to the calendar; an early start is a person's decision,
    recorded with their name."""
    if early_reason is not None and actor == "schedule":
        raise PhaseRefused("a phase started early needs the name of the person who starts it as actor, "
                           "not 'schedule': nothing was changed")


@names_rollout_denials
def advance(env: Environment, approver: Approver, *, owner: str, actor: str = "schedule",
            lease_seconds: float = 600.0, adopt_live_weights: bool = False,
            owner_finished: Callable[[str | None], bool] = lambda owner: True,
            early_reason: str | None = None, decided_again: bool = False) -> RolloutResult | None:
    """Start the next weekly phase of the service's rollout, at most once per calendar week.

    It is also the rollout's watchdog: a phase whose run died (its lease ran out and
    ``owner_finished`` says its run has ended) is resumed, so is a post-promotion monitoring
    window whose run died (the old service would otherwise run unwatched and never be
    decommissioned), and a rollback left half-done is finished.

    A phase whose last stage passed but whose run died before recording the phase complete
    is recorded complete, and the next phase starts on the same tick if it is due, as it would
    have without the kill.

    Whether the next phase is due is read on the calendar of the recorded spec's
    ``weekly_timezone`` (``rollway.weekly``).

    A lease left running by a run that has ended (killed less than a lease before this tick)
    is waited out, up to this run's own lease and a minute (``wait_out_an_ended_runs_lease``),
    when the tick has something to do; a longer one is refused with PhaseRefused saying until when.

    ``early_reason``: a person starts the next phase now, before the calendar says it is due,
    and says why (recorded in the ledger with ``actor``). Everything else still holds: the
    current phase must have passed its stages, and a live run driving it is left alone. An
    early start that finds no phase to start raises PhaseRefused saying why.

    The next phase is started only on the record as this run took its lease: another run that
    wrote on the rollout between this run's read and its lease (a twin run of the schedule that
    started the phase) has the decision made again from the ledger as it stands (``decided_again``:
    this is that second decision; a rollout that moved again under it is refused).

    Returns None when there is nothing to do (no rollout, finished, or this week's phase
    already started and still owned). Raises PhaseRefused when the previous phase did not pass,
    DriftDetected (before anything is recorded) when the load balancer disagrees with the ledger.
    """
    log = get_run_logger()
    service = env.targets.canary_service
    refuse_the_schedule_early(actor, early_reason)
    owner_finished = functools.cache(owner_finished)  # each question is a call to the Prefect API
    # A run killed less than a lease before this tick left its lease running: waited out here,
    # so the tick resumes or advances the rollout today, not a week later.
    waited = wait_out_an_ended_runs_lease(env, owner=owner, lease_seconds=lease_seconds, owner_finished=owner_finished)
    if waited is not None and waited.renewed:
        # Prefect said its run had ended, yet it wrote its lease: it is alive and the rollout stays
        # its own. Said here: going on, the tick refused with "week N has not passed; approve or
        # roll it back first" (or the ledger's bare LockHeld), sending people to act on a rollout
        # another run was driving.
        raise PhaseRefused(
            f"{service}'s rollout is held by {waited.held.owner}: Prefect says its run has ended, but it renewed "
            f"its lease (now until {weekly.describe(waited.changed.lease_expires, 'UTC')}) while this run waited "
            "for it to lapse, so it is still at work. Nothing was changed; run advance_phase again once that run "
            "has finished or its lease has run out"
        )
    with before_any_write(env.targets):  # as in run_progressive: nothing read, nothing to roll back
        record = env.ledger.get(service)
    if record is not None and record.phase is RolloutPhase.ROLLING_BACK:
        # First, and before the recorded policy is read as a whole: a rollback must be finished
        # even for a record whose spec today's rules refuse.
        return finish_rollback(env, record, actor=actor)
    now = env.clock.now()
    # Whether anything is left to do is read leniently: a finished rollout whose spec today's
    # rules refuse is history, not an error every week. What resumes runs the whole policy.
    window_owed = record is not None and monitoring_owed(RolloutSpec.for_rollback(record.spec_json), record)
    if window_owed and _abandoned(record, env.wall(), owner_finished):
        # A window that ended unverified was released by its run: no owner to name then.
        if record.owner is None:
            log.warning("the monitoring window of %s is unfinished and no run holds it: resuming it", service)
        else:
            log.warning("the monitoring window of %s was left unfinished by %s: resuming it", service, record.owner)
        return run_progressive(env, recorded_policy(record), approver, owner=owner, actor=actor, phased=True,
                               lease_seconds=lease_seconds, run_again="advance_phase")
    if record is None or record.phase.terminal:
        # The weekly tick is what looks at a finished rollout again: a decommission whose run died
        # before paging is paged now, late (nothing else in the tick acts on a finished rollout).
        send_owed_decommission_page(env, record, actor=actor)
        if early_reason is not None:
            raise PhaseRefused(f"no unfinished rollout of {service}: there is no next phase to start early; "
                               "nothing was changed")
        if window_owed and record.owner is not None and lease_free(record, env.wall()) \
                and not owner_finished(record.owner):
            if not holder_looks_hung(env, record, lease_seconds):
                # What is known: when the lease lapsed, and that it is not long enough ago to call the run
                # hung. Why it lapsed is not ("a look running long renews it late" was said as a fact).
                log.info("the monitoring window of %s is watched by %s, whose run has not ended: its lease lapsed "
                         "%s, %s, so the run is not taken for hung: nothing to do", service, record.owner,
                         lapsed_said(env, record), hung_grace_said(record, lease_seconds))
                return None
            # The window's run asks nothing and renews its lease at every look: "promoted: nothing
            # to advance" at INFO left the new version unwatched and its window open, unsaid.
            hung_holder_warned(env, record, f"nothing watches its monitoring window of {record.image}, which "
                               "stays open", "the window")
            return None
        log.info("%s", nothing_to_advance(service, record))
        return None
    spec = recorded_policy(record)
    completed = None
    # PENDING: the first run died before its first phase started (or before it deployed).
    if (not record.weekly_phase_passed or not record.phased) and record.phase in (RolloutPhase.PROGRESSING, RolloutPhase.PENDING):
        if _abandoned(record, env.wall(), owner_finished):
            # Read before the resume: its run passed the phase's last stage and died before
            # recording the phase complete (stage_passed and phase_complete are two writes).
            passed_unrecorded = phase_passed_unrecorded(spec, record)
            # A run that gave the lease back unfinished (refused on drift, say) leaves no owner to name.
            its_run = f"its run ({record.owner})" if record.owner else "the run that drove it"
            if early_reason is not None and not passed_unrecorded:
                # A person asked for the next phase, not a resume of this one: resumed, the run
                # ended "holding" at this phase's end and the early start was dropped unsaid.
                raise PhaseRefused(
                    f"{service}: {phase_name(spec, max(record.weekly_phase_index, 0))} has not passed: {its_run} "
                    f"ended at {record.weights} (stable/canary) before the "
                    f"{'phase' if record.phased else 'rollout (unphased)'} did; nothing was changed, and no phase was "
                    f"started early for {actor}. Resume it first: run advance_phase without start_early_because "
                    "(or progressive_rollout with the same image)")
            log.warning("%s of %s was left unfinished %s: resuming it at %s",
                        phase_name(spec, max(record.weekly_phase_index, 0)), service,
                        f"by {record.owner}" if record.owner else "and no run holds it", record.weights)
            resumed = run_progressive(env, spec, approver, owner=owner, actor=actor, phased=record.phased,
                                      adopt_live_weights=adopt_live_weights, lease_seconds=lease_seconds,
                                      run_again="advance_phase")
            if not (passed_unrecorded and resumed.outcome == "holding"):
                return resumed
            # The resume only recorded what the dead run had earned: without the kill the phase
            # would have been complete already, and this tick would start the next one if it is
            # due. So it does, instead of leaving that to next week's schedule.
            log.info("%s of %s had passed before its run died; its completion is recorded now",
                     phase_name(spec, record.weekly_phase_index), service)
            completed = resumed
            record, now = env.ledger.get(service), env.clock.now()
            if record is None or record.phase is not RolloutPhase.PAUSED or not record.weekly_phase_passed:
                return completed
    try:
        started = _next_phase(env, spec, record, now, approver, owner=owner, actor=actor, lease_seconds=lease_seconds,
                              adopt_live_weights=adopt_live_weights, owner_finished=owner_finished,
                              early_reason=early_reason)
    except RolloutMovedSinceRead as moved:
        if decided_again:
            raise PhaseRefused(f"{moved}; it changed again after this run read it afresh: run advance_phase again "
                               "once the other runs are done with it") from None
        # Decided again, from the rollout as it stands: the phase the other run started is left to
        # it while it lives, and resumed if it has ended, as for any tick that finds it so.
        log.warning("%s: deciding again from the ledger as it stands", moved)
        # A dead run's passed phase this tick recorded complete above stays its result when the
        # second decision finds nothing to do (the other run went on with the next phase).
        started = advance(env, approver, owner=owner, actor=actor, lease_seconds=lease_seconds,
                          adopt_live_weights=adopt_live_weights, owner_finished=owner_finished,
                          early_reason=early_reason, decided_again=True)
    return started if started is not None else completed


LAPSE_MARGIN_WALL_SECONDS = 60.0
"""How much longer than its own lease a run (the tick, or one by hand) waits for an ended run's lease (wall s): for
clocks that disagree a little between the two runs' hosts."""

LAPSE_PROGRESS_WALL_SECONDS = 60.0
"""How often a run waiting for a lease to lapse says how long is left (wall seconds)."""


@dataclass(frozen=True)
class LeaseWaited:
    """What ``wait_out_an_ended_runs_lease`` waited for, and how the wait ended.

    Attributes:
        held: the record whose lease was waited for.
        changed: the record as read when its lease changed while this run waited (released,
            taken by another run, or renewed); None when the lease ran out.
    """

    held: RolloutRecord
    changed: RolloutRecord | None = None

    @property
    def renewed(self) -> bool:
        """Whether the holder renewed its lease while this run waited: its run is alive after all."""
        return self.changed is not None and self.changed.owner == self.held.owner


def wait_out_an_ended_runs_lease(
    env: Environment, *, owner: str, lease_seconds: float, owner_finished: Callable[[str | None], bool],
    needs_the_lease: Callable[[RolloutSpec, RolloutRecord, float], bool] = lapse.tick_needs_the_lease,
    refusal: Callable[[str], Exception] = PhaseRefused, run_again: str = "advance_phase",
) -> LeaseWaited | None:
    """Wait, bounded, for the lease of a run that has ended to lapse, when this run needs it.

    Only a lease whose holder's flow run has ended (``owner_finished``: Prefect says so, or the
    holder is no flow run) is waited for, and only when this run has something to do with the
    rollout (``needs_the_lease``: the weekly tick's ``rollway.lapse.tick_needs_the_lease``, a run
    started by hand ``rollway.lapse.run_needs_the_lease``). The wait ends early when the record's
    lease changes (released, taken or renewed: the caller then reads the record afresh).

    Args:
        needs_the_lease: whether this run would act on the rollout (recorded spec, record, rollout clock's now).
        refusal: the error raised for a lease longer than this run waits...
        run_again: ...and the flow its message says to run again once that lease has run out.

    Returns:
        What was waited for and how the wait ended, or None when nothing was waited for.

    Raises:
        PhaseRefused (or ``refusal``): the lease runs out further off than this run waits (a longer
            lease than this run's own): nothing was changed; the message says when to run again.
    """
    log = get_run_logger()
    service = env.targets.canary_service
    with before_any_write(env.targets):
        record = env.ledger.get(service)
    # Leases are stamped on the wall clock (Environment.wall) and last wall seconds; the phase
    # calendar a run acts on is the rollout clock's.
    now, wall = env.clock.now(), env.wall()
    if record is None or record.owner == owner or lease_free(record, wall):
        return None
    if not needs_the_lease(RolloutSpec.for_rollback(record.spec_json), record, now):
        return None
    if not owner_finished(record.owner):
        return None  # a live run (one paused for an approval renews no lease): left alone, as before
    wait = lapse.lapse_wait(record.lease_expires, wall, max_wait=lease_seconds + LAPSE_MARGIN_WALL_SECONDS)
    until = weekly.describe(record.lease_expires, "UTC")
    if wait is None:
        raise refusal(
            f"{service}'s rollout is held by {record.owner}, whose run has ended, under a lease that runs until "
            f"{until}: longer than this run waits ({lease_seconds:.0f} wall s and a margin). Nothing was "
            f"changed; run {run_again} again once that lease has run out"
        )
    log.warning("%s's rollout is held by %s, whose run has ended, under a lease until %s: waiting about %.0f wall s "
                "for it to lapse, then going on", service, record.owner, until, wait)
    deadline = wall + wait
    while (left := deadline - env.wall()) > 0:
        sleep_wall(env, min(left, LAPSE_PROGRESS_WALL_SECONDS))
        with before_any_write(env.targets):
            current = env.ledger.get(service)
        if current is None or (current.owner, current.lease_expires) != (record.owner, record.lease_expires):
            # Released (its hook ended it), taken by another run, or renewed: a renewal means the
            # holder is alive after all, and this run leaves the rollout to it.
            log.warning("%s's lease changed while this run waited (now %s until %s): going on from the record as "
                        "it is", service, current and current.owner,
                        current and weekly.describe(current.lease_expires, "UTC"))
            return LeaseWaited(held=record, changed=current)
        if deadline - env.wall() > 0:
            log.info("waiting for %s's lease on %s to lapse: about %.0f wall s left", record.owner, service,
                     deadline - env.wall())
    log.info("%s's lease on %s has lapsed: going on", record.owner, service)
    return LeaseWaited(held=record)


def holder_looks_hung(env: Environment, record: RolloutRecord, lease_seconds: float) -> bool:
    """Whether ``record``'s holder's lease lapsed longer ago than the holder's lease and the lapse margin
    (``lapse.looks_hung``, ``hung_grace``): a live run that asks nothing and has not renewed in that long is hung."""
    return lapse.looks_hung(record.lease_expires, env.wall(), grace=hung_grace(record, lease_seconds))


def hung_grace(record: RolloutRecord, lease_seconds: float) -> float:
    """How long after its lease lapsed ``record``'s holder is taken for hung: the lease it took, as the
    ledger tells it (``held_lease_seconds``), and the margin; never less than this run's own
    ``lease_seconds``. Judged by this run's own alone, a holder renewing hourly leases was called hung
    11 minutes past a lapse. Not by the recorded length alone either: a worker of the version before
    lengths were recorded, taking the rollout over during an upgrade, writes its lease's end and leaves
    the length the run before it took, which may be far shorter than its own."""
    return max(held_lease_seconds(record), lease_seconds) + LAPSE_MARGIN_WALL_SECONDS


def held_lease_seconds(record: RolloutRecord) -> float:
    """How long the lease ``record``'s holder last took was, as far as the record tells: its recorded
    length, and no less than the time from the record's last write to the lease's end. A worker of the
    version before lengths were recorded writes its lease's end (and the write's time) alone: judged by
    the length the run before it left, and a tick's own no longer, its hourly lease was taken for hung
    12 minutes past its lapse. The lease was renewed at that write or before it, so the span is no more
    than the lease it took while the rollout clock stamping ``updated_at`` does not run behind the wall
    clock stamping leases (at real time the two are one; sped up, it runs ahead from its anchor on). A
    sped-up clock anchored ahead of the wall clock runs behind it until it gets there: a span longer
    than any lease a run may take (``MAX_LEASE_SECONDS``) is that gap, not a lease, and is not taken
    (taken, a hung run anchored a day ahead at 60x went unwarned for two months)."""
    span = record.lease_expires - record.updated_at
    return max(record.lease_seconds or 0.0, span if span <= MAX_LEASE_SECONDS else 0.0)


def hung_grace_said(record: RolloutRecord, lease_seconds: float) -> str:
    """``hung_grace`` in words: whose lease it is ("its": the holder's, as the record tells) and how long."""
    whose = "its" if held_lease_seconds(record) >= lease_seconds else "this run's"
    return f"within {whose} lease and the lapse margin ({duration_said(hung_grace(record, lease_seconds))})"


def hung_holder_warned(env: Environment, record: RolloutRecord, idle: str, resumed: str) -> None:
    """Warn that ``record`` is held by a run Prefect shows as not ended whose lease lapsed while it
    asked nothing (the caller has checked all three): asking nothing, a live run renews its lease at
    every look, so one Prefect still shows Running is hung, or its machine was lost, and no tick
    takes the rollout from it. ``idle``: what no run does meanwhile; ``resumed``: what the next
    advance_phase run resumes once Prefect marks the run Crashed."""
    get_run_logger().warning(
        "%s's rollout is held by %s, which Prefect shows as not ended, but whose lease lapsed %s, while it "
        "asks nothing: no run renews it, so %s. Its process may be hung, or its machine lost (Prefect keeps such a "
        "run Running). Nothing was changed; look at the worker that ran it: once Prefect marks the run Crashed (its "
        "zombie-flow automation does, see the README), the next advance_phase run resumes %s; or roll the rollout "
        "back with `rollway abort`", record.service, record.owner, lapsed_said(env, record), idle, resumed)


def lapsed_said(env: Environment, record: RolloutRecord) -> str:
    """When ``record``'s lease lapsed, and how long ago: "at <wall time>, 5 min ago"."""
    since = env.wall() - record.lease_expires
    ago = duration_said(whole_minutes(since)) if since >= 60 else "under a minute"
    return f"at {wall_utc(record.lease_expires)}, {ago} ago"


def phase_passed_unrecorded(spec: RolloutSpec, record: RolloutRecord) -> bool:
    """Whether the last stage of the recorded weekly phase passed, but the phase was not
    recorded complete (its run died between the two writes), and a later phase follows it."""
    index = record.weekly_phase_index
    return (record.phased and record.phase is RolloutPhase.PROGRESSING and not record.weekly_phase_passed
            and record.stage_passed and 0 <= index < len(spec.phases) - 1
            and record.stage_index == phase_end_stage(spec, index))


def _next_phase(env: Environment, spec: RolloutSpec, record: RolloutRecord, now: float, approver: Approver, *,
                owner: str, actor: str, lease_seconds: float, adopt_live_weights: bool,
                owner_finished: Callable[[str | None], bool],
                early_reason: str | None = None) -> RolloutResult | None:
    """Start the next weekly phase if the calendar says it is due, or now if a person gave
    ``early_reason``; None when there is nothing to do."""
    log = get_run_logger()
    service = env.targets.canary_service
    # The person's name and words as this function's log lines, refusals and the phase's entry in the
    # ledger quote them, escaped (``rollway.one_line``): the form refuses a line break in a name but
    # not a right-to-left override, and the reason is a text area's, whose line break wrote a line
    # of its own in the run's log and whose override reordered the words after it.
    who = shown(actor, keep="")
    because = None if early_reason is None else on_one_line(early_reason)
    # A person who asked for an early start is told why nothing started: a run that completed
    # after only logging "nothing to do" looked, in the UI, like the phase had started.
    refuse_early = f"; nothing was changed, and no phase was started early for {who}"
    if record.owner is not None and not owner_finished(record.owner):
        # A live run drives it (one paused for an approval renews no lease, so the lease says
        # nothing): starting a phase over it would leave two runs moving the traffic.
        if early_reason is not None:
            raise PhaseRefused(f"{service}: {phase_name(spec, record.weekly_phase_index)} is still driven by "
                               f"{record.owner}, whose run has not ended (it may be waiting for an approval)"
                               f"{refuse_early}")
        waiting = waiting_for_an_answer(spec, record)
        if waiting is None and record.phase is RolloutPhase.PROGRESSING and holder_looks_hung(env, record,
                                                                                             lease_seconds):
            # Said at INFO as "driven by", the rollout sat unjudged on the canary, week after week,
            # and nobody was told.
            hung_holder_warned(env, record, f"nothing judges the canary at {record.weights} (stable/canary)",
                               "the phase")
            return None
        if waiting is None:
            log.info("%s's rollout is driven by %s, whose run has not ended: nothing to do", service, record.owner)
            return None
        # A tick a week after the pause was asked: the next phase is held up by a person, which
        # "driven by ..., whose run has not ended" at info level did not tell anyone reading it.
        answer = "(the Prefect UI's form, or `rollway promote`, `hold` or `abort`): the rollout is left to that run"
        if not record.phased:
            # Its week 1 is a record of its start: no weekly phase follows, none is the last.
            log.warning("%s's rollout runs every stage in one run (unphased) and waits for an answer to its %s in "
                        "%s's run %s, nothing to do", service, waiting, record.owner, answer)
            return None
        current = phase_name(spec, record.weekly_phase_index)
        following = (f"{phase_name(spec, record.weekly_phase_index + 1)} starts only once {current} has passed"
                     if record.weekly_phase_index + 1 < len(spec.phases) else "it is the last phase")
        log.warning("%s of %s waits for an answer to its %s in %s's run %s, nothing to do; %s", current, service,
                    waiting, record.owner, answer, following)
        return None
    if not record.phased:
        if early_reason is not None:
            raise PhaseRefused(f"{service}'s rollout runs every stage now (unphased), not by weekly phases"
                               f"{refuse_early}")
        log.info("%s's rollout runs every stage now (unphased), not by the weekly plan: nothing to do", service)
        return None
    # Calendar weeks in the rollout's own zone (the one its Monday cron fires in), and at least
    # min_phase_seconds: calendar weeks alone would end a phase started on Sunday evening the
    # next morning.
    wait = weekly.phase_wait(record.weekly_phase_started_at, now, **spec.phase_calendar(record))
    # Logged by the phases' names, as the summary, status and SNS say them; a phase that passed
    # holds its weights (it "ran on" in these lines, as if its run still moved the traffic).
    current, following = phase_name(spec, record.weekly_phase_index), phase_name(spec, record.weekly_phase_index + 1)
    state = (f"{current} of {service} is complete, holding at {record.weights}" if record.weekly_phase_passed
             else f"{current} of {service} runs on")
    due = (None if record.weekly_phase_started_at is None
           else weekly.next_phase_due(record.weekly_phase_started_at, **spec.phase_calendar(record)))
    when = due and weekly.describe(due, spec.weekly_timezone)
    why = ""
    if wait is not None and early_reason is not None:
        why = f" early, before {when}, by {who}: {because}"
    elif wait is not None:
        nxt_at = (f"{following} may start from {when}{on_the_wall(env.clock, due, now)}"
                  if record.weekly_phase_index + 1 < len(spec.phases) else "it is the last phase")
        log.info("%s: %s; %s: nothing to do", state, wait, nxt_at)
        return None
    elif early_reason is not None:
        # Due already (no tick since; under `make up` the cron fires on the wall calendar): the
        # person's reason is still theirs to have on record, or it was lost without a word.
        why = f", asked early by {who}{f', due anyway since {when}' if when else ''}: {because}"
    if not record.weekly_phase_passed:
        raise PhaseRefused(
            f"{service}: {phase_name(spec, record.weekly_phase_index)} has not passed "
            f"({record.phase.value} at {record.weights}); approve or roll it back first"
        )
    nxt = record.weekly_phase_index + 1
    if nxt >= len(spec.phases):
        if early_reason is not None:
            raise PhaseRefused(f"every phase of {service}'s rollout has run{refuse_early}")
        log.info("every phase of %s has run", service)
        return None
    # Read before the rollout is taken: ECS not answering refuses the tick, and nothing is rolled back.
    with before_any_write(env.targets):
        stable = ecs.describe_service(env.deployer, env.targets.stable_service)
        canary = ecs.describe_service(env.deployer, service)
    if (refusal := canary_replaced(record, canary, env.targets.cluster, moving=f"{following} would move",
                                   run_again="advance_phase", image=replaced_canary_image(env, record, canary))) is not None:
        raise PhaseRefused(refusal)
    # A week passes between phases: a dead-letter queue deleted meanwhile reads as an empty one,
    # and the next phase would move traffic with the DLQ guardrail watching nothing.
    if (refusal := dead_letter_check(env, run_again="advance_phase")) is not None:
        raise PhaseRefused(refusal)
    asked = "" if early_reason is None else f" ({who} asked to start it early: {because}; it was due anyway)"
    if wait is not None:
        log.warning("%s (%s); %s starts %s now: %s", state, wait, who, following, because)
    elif when:
        log.info("%s of %s passed, and %s has been due since %s: starting it%s", current, service, following, when,
                 asked)
    elif asked:
        log.info("%s of %s passed: starting %s%s", current, service, following, asked)
    # On the rollout read above: were it rolled back and another begun since, the tick took that
    # one's lease and recorded this one's next phase on it.
    try:
        taken = env.ledger.acquire(service, owner=owner, now=now, lease_seconds=lease_seconds,
                                   rollout=record.rollout_id, wall=env.wall())
    except LockHeld as held:
        # Another run took it since the read above: two runs of the schedule at once (its late runs
        # caught up after a Prefect outage) or one by hand. Failed on the ledger's bare LockHeld, this
        # run went red and its rollback hook had to judge a rollout the other run was starting.
        with before_any_write(env.targets):
            now_held = env.ledger.get(service)
        early = "" if early_reason is None else f", and no phase was started early for {who}"
        if now_held is not None and now_held.owner is None:
            # Taken and let go since (the other run refused on drift, say): the bare LockHeld, with
            # nobody holding the rollout, had this run's hook roll back a rollout neither run moved.
            raise PhaseRefused(f"{service}'s rollout was taken by another run as this run was about to start "
                               f"{following}, and let go since ({held}): nothing was changed{early}; run "
                               "advance_phase again") from None
        holder = now_held.owner if now_held is not None and now_held.owner != owner else None
        if holder is None:
            raise
        if (holder, now_held.lease_expires) == (record.owner, record.lease_expires):
            # No run took it since the read: the lease read there, of a run that has ended (a live
            # one was left alone above), still runs; one the tick had to wait for was waited out
            # (``advance``), not an early start's. Said as a run taking over, it was "left to" a
            # run that had ended, and nobody went on with it.
            until = weekly.describe(record.lease_expires, "UTC")
            raise PhaseRefused(f"{service}'s rollout is held by {holder}, whose run has ended, under a lease that "
                               f"runs until {until}: nothing was changed{early}; run advance_phase again once that "
                               "lease has run out") from None
        said = (f"{holder} took the rollout as this run was about to start {following} of {service} (two runs of "
                "the schedule at once, after an outage, or one by hand): it is left to that run; nothing was "
                f"changed ({held})")
        if early_reason is not None:
            raise PhaseRefused(f"{said}; no phase was started early for {who}") from None
        log.warning("%s", said)
        return None
    if moved := written_since(record, taken):
        # Another run wrote on it since the read above (a twin run of the schedule started the phase,
        # moved traffic and let go, say). Decided from that read, this run took the twin's shift for
        # drift, or wrote a second "starting week N" and restarted the week's clock.
        give_back_refused(env, spec, taken, owner=owner, lease_seconds=lease_seconds, actor=actor)
        # Escaped once (``shown``): quoted with repr, a comment the ledger keeps escaped read "\\u202e".
        last = f"{moved[-1].kind}, '{shown(moved[-1].comment, keep='')}'" if moved[-1].comment else moved[-1].kind
        raise RolloutMovedSinceRead(
            f"{service}'s rollout changed since this run read it, before it took the rollout to start {following}: "
            f"{', '.join(sorted({shown(entry.actor, keep='') for entry in moved}))} wrote {len(moved)} entr"
            f"{'y' if len(moved) == 1 else 'ies'} since (the last: {last}); it is now at "
            f"{phase_name(spec, taken.weekly_phase_index)} of {service}, {taken.phase.value} at {taken.weights} "
            "(stable/canary), and this run changed nothing on it")
    record_unheard_answers(env, taken, record.owner, owner=owner, lease_seconds=lease_seconds)
    hold_rollout(env, record, owner=owner)
    try:
        # Drift is refused before the phase is recorded, so this week's start is not used up.
        reconcile(env, spec, record, owner=owner, actor=actor, adopt_live_weights=adopt_live_weights,
                  lease_seconds=lease_seconds)
    except DriftDetected:
        give_back_refused(env, spec, taken, owner=owner, lease_seconds=lease_seconds, actor=actor)
        raise
    grown = stable_count_for_phase(env, record, stable)
    started = start_phase(env, spec, nxt, owner=owner, actor=actor, lease_seconds=lease_seconds, why=why,
                          stable_desired=grown)
    if grown is not None:
        resize_canary(env, started)
    return run_progressive(env, spec, approver, owner=owner, actor=actor, phased=True, lease_seconds=lease_seconds,
                           owner_finished=owner_finished, queues_checked=True, run_again="advance_phase")


def give_back_refused(env: Environment, spec: RolloutSpec, held: RolloutRecord, *, owner: str, lease_seconds: float,
                      actor: str) -> None:
    """Give the lease on ``held`` (the rollout as this run took it) back before a refusal is raised
    (a refused run holds nothing), as the journal gives it back after an outcome: a release DynamoDB
    refuses is logged with when the lease lapses, never raised. Raised, botocore's error replaced
    the refusal (a drift, which the hooks leave alone) and the hook rolled the rollout back."""
    journal = LedgerJournal(env, spec, owner=owner, lease_seconds=lease_seconds, actor=actor,
                            rollout_id=held.rollout_id)
    journal.give_back(held)


def canary_replaced(record: RolloutRecord, canary: ServiceState, cluster: str, *, moving: str,
                    run_again: str, image: str | None = None) -> str | None:
    """Why the next phase (or a resume) must not start on a canary service that runs another
    revision than the rollout deployed on it (None when it runs the rollout's).

    A week passes between phases: a CDK deploy of the service's stack, or a hotfix by hand, can put
    another revision on the canary service meanwhile. The next phase then moved the traffic onto a
    version nobody rolled out, judged it as the rollout's, and the last phase promoted it.

    Refused even when that revision names the rollout's image (``image``: the one it names, None
    when it could not be read): a revision is more than its image (the command, environment,
    secrets, roles, cpu and memory, the other containers), and the stages judged the one the rollout
    deployed. The refusal says which case it is, since "the same image" reads as a false alarm.
    """
    ours = record.canary_task_definition
    if ours is None or same_revision(canary.task_definition, ours):
        return None
    rollouts = record.pinned_image or record.image
    if image == rollouts:
        what = (f"it names the rollout's image, {image}, but as another revision, whose other settings (command, "
                "environment, secrets, roles, cpu and memory, other containers) this rollout's stages did not judge: "
                "only the revision they judged goes on")
    elif image is not None:
        what = f"it names {image}, not the rollout's {rollouts}"
    else:
        what = "which image it names could not be read"
    return (f"{canary.name} runs {canary.task_definition}, not the rollout's {ours} (another revision was put on it "
            "since: a deploy of its stack, a change by hand, or ECS's deployment circuit breaker rolling a failed "
            f"deployment back; {what}): {moving} traffic onto a version this rollout did not deploy. Nothing was "
            f"changed; put {ours} back on {canary.name} (aws ecs update-service --cluster {cluster} --service "
            f"{canary.name} --task-definition {ours}) and run {run_again} again, or, to roll out the new revision's "
            "settings, roll this rollout back (`rollway abort`) and start a new one, whose stages judge them")


def replaced_canary_image(env: Environment, record: RolloutRecord, canary: ServiceState) -> str | None:
    """The image the canary service's revision names, when it is not the rollout's revision (for
    ``canary_replaced``'s words); None when it is, or when ECS does not say (the refusal stands)."""
    if record.canary_task_definition is None or same_revision(canary.task_definition, record.canary_task_definition):
        return None
    try:
        return ecs.image_of(env.deployer, canary.task_definition)
    except Exception:  # noqa: BLE001 - read for the refusal's words only: it refuses either way
        return None


SCHEDULE_FIRES_COMPARED = 106
"""How many of the weekly schedule's next runs (two years of Mondays) are read for the one that
shows a zone disagreement: the next alone may fall where the two zones' clocks still agree."""


def schedule_fires(cron: str, timezone: str, after: float, count: int = SCHEDULE_FIRES_COMPARED) -> list[float]:
    """The first ``count`` instants after ``after`` (epoch seconds) at which ``cron`` fires in
    ``timezone``, as Prefect's scheduler reads it (with CronSchedule's day_or).

    Matched on the zone's wall clock, as Prefect's scheduler does: from an aware start, croniter
    kept that start's UTC offset, so counted the weekend before a daylight-saving switch, a Monday
    09:00 cron in Europe/Berlin was said to run at 08:00 CEST (and again at 09:00). A wall time the
    clocks repeat is its first reading, one they skip is read with the offset from before the jump
    (02:30 is 03:30 CEST), as Prefect's scheduler places them.
    """
    import datetime as dt
    from zoneinfo import ZoneInfo

    from rollway.cli.weekly_schedule import cron_walls

    tz = ZoneInfo(timezone)
    walls = cron_walls(cron, timezone, dt.datetime.fromtimestamp(after, tz).replace(tzinfo=None))
    fires: list[float] = []
    while len(fires) < count:
        # fold=0 (PEP 495): the earlier of two readings, and a skipped one with the offset before the jump.
        fire = walls.get_next(dt.datetime).replace(tzinfo=tz, fold=0).timestamp()
        if fire > after and (not fires or fire > fires[-1]):  # the repeated hour's wall times, read again
            fires.append(fire)
    return fires


ADVANCE_PHASE_DEPLOYMENT = deployment_path("advance_phase")
"""The weekly schedule's deployment, as serve.py and prefect.yaml name it."""


def schedule_zone_note(weekly_timezone: str, *, deployment: str | None, rollout: str) -> None:
    """Warn when the advance_phase deployment's active cron schedule fires in another zone than
    ``weekly_timezone``, the one the rollout counts its weeks in (``rollway.weekly.schedule_disagrees``).

    Nothing else compared them: a Monday 09:00 cron in UTC beside a rollout on New York's weeks
    started each phase, and asked its approvals, at 04:00 there, where an unanswered pause rolls
    back an hour later. Warned, not refused: a refusal would stop the rollout every Monday, while
    the schedule is the deployment's to fix.

    Args:
        deployment: the deployment's id (this run's own), or None for ``ADVANCE_PHASE_DEPLOYMENT``
            by name (a rollout's first run); none found, nothing is said.
        rollout: how the message names the rollout ("rollout <id>", "this rollout").
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    log = get_run_logger()
    try:
        with get_client(sync_client=True) as client:
            found = (client.read_deployment(deployment) if deployment is not None
                     else client.read_deployment_by_name(ADVANCE_PHASE_DEPLOYMENT))
        schedules = [(s.schedule.cron, s.schedule.timezone or "UTC") for s in found.schedules
                     if s.active and getattr(s.schedule, "cron", None)]
        said = [m for cron, zone in schedules if (m := weekly.schedule_disagrees(
            cron, zone, weekly_timezone, schedule_fires(cron, zone, time.time()))) is not None]
    except ObjectNotFound:
        return  # run outside a deployment, or none deployed under that name: no schedule to compare
    except Exception as err:  # noqa: BLE001 - a check for a warning stops no rollout
        log.info("could not read the advance_phase schedule to compare its time zone with %s's weekly_timezone "
                 "%s (%s)", rollout, weekly_timezone, passwords_hidden(str(err)))
        return
    for mismatch in said:
        log.warning("%s (%s). Give the schedule the rollout's zone: serve.py --weekly-timezone %s (`rollway up` takes "
                    "it too), or `timezone: %s` under advance_phase's schedules in deployments/prefect.yaml, deployed "
                    "again (a rollout keeps the weekly_timezone it was started with)", mismatch, rollout,
                    weekly_timezone, weekly_timezone)


def nothing_to_advance(service: str, record: RolloutRecord | None) -> str:
    """What the weekly tick says of a service whose newest rollout has ended (or that has none).

    "no unfinished rollout" after a rollback read as though nothing had run, and did not say
    that the plan stops there: no later week starts a rolled-back rollout again.
    """
    if record is None:
        return f"no rollout of {service} is recorded: nothing to advance"
    if record.phase is RolloutPhase.PROMOTED:
        return (f"{service}'s newest rollout ({record.image}, {record.rollout_id}) was promoted: every phase has run, "
                "nothing to advance")
    return (f"{rolled_back(service, record)}: the weekly plan stops there and no later phase starts, nothing to "
            f"advance; a new progressive_rollout run starts the plan again from "
            f"{phase_name(RolloutSpec.for_rollback(record.spec_json), 0)}")


def rolled_back(service: str, record: RolloutRecord) -> str:
    """A rolled-back rollout as the runs that find it name it: image, id and the phase it reached."""
    spec = RolloutSpec.for_rollback(record.spec_json)
    reached = phase_name(spec, record.weekly_phase_index) if record.weekly_phase_index >= 0 else "its first phase"
    return f"{service}'s newest rollout of {record.image} ({record.rollout_id}) was rolled back in {reached}"


def waiting_for_an_answer(spec: RolloutSpec, record: RolloutRecord) -> str | None:
    """The pause the rollout's run waits at for a person ("pause before 25%", "pause at 50%
    (inconclusive)"), or None when the record shows none open. Read as `rollway status` reads it
    (``waiting_pause``): from the history too, for a record written before the open pause was kept,
    where the question alone was looked for and a run paused for an approval, renewing no lease,
    was warned "may be hung"."""
    pause = waiting_pause(record)
    if pause is None or pause.to_stage is None:
        return None
    stage, cause = pause.to_stage, pause_cause(pause)
    weight = spec.stages[stage].weight if 0 <= stage < len(spec.stages) else None
    if weight is None or cause is None:  # an entry older still names no cause
        return f"pause at stage {stage + 1}"
    return f"pause before {weight}%" if cause == "approval" else f"pause at {weight}% ({cause})"


def _abandoned(record: RolloutRecord, wall: float, owner_finished: Callable[[str | None], bool]) -> bool:
    """Whether no live run drives the rollout: its lease ran out at ``wall`` (the wall clock,
    which stamps leases) and its run has ended."""
    return lease_free(record, wall) and owner_finished(record.owner)


@flow(name="progressive_rollout", log_prints=True, **rollback_hooks())
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def progressive_rollout(
    spec: RolloutSpec,
    actor: Actor = "operator",
    phased: bool = True,
    adopt_live_weights: bool = False,
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    clock: ClockSettings = ClockSettings(),
    approval_poll_seconds: PollSeconds = 2,
    lease_wall_seconds: LeaseSeconds = 600.0,
) -> RolloutResult:
    """Roll ``spec.image`` out through the stages, with approval pauses; resumes from the ledger.

    A run killed without a word keeps its lease for ``lease_wall_seconds``: a resumed run waits
    that long before it takes the rollout over.

    Args:
        spec: the rollout: image, stages, analysis, approvals, phases, flags (a resume runs the recorded one).
        actor: who starts the rollout (recorded in the ledger and the flags' audit trail).
        phased: on: stop at the end of the current weekly phase (advance_phase starts the next); off: run all.
        adopt_live_weights: on drift, continue from the load balancer's weights instead of refusing.
        targets_block: a saved RollwayTargets block; cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
        clock: the rollout clock; leave it for a real rollout (speed 1), the simulator speeds it up.
        approval_poll_seconds: how often a paused run looks for an answer or a Cancel (1 to 300 s).
        lease_wall_seconds: how long this run may go silent (wall time) before another run may take over.
    """
    session = load_session(targets_block, aws_credentials_block)
    env = session.environment(clock, interval_seconds=spec.analysis.interval_seconds)
    with before_any_write(env.targets):  # as in run_progressive: a ledger that cannot be read refuses the run
        record = env.ledger.get(env.targets.canary_service) if env.ledger is not None else None
    if phased and len(spec.phases) > 1 and (record is None or record.phase is RolloutPhase.ROLLED_BACK or (
            record.phase is RolloutPhase.PROMOTED and record.image != spec.image)):
        # A new rollout: the first moment its zone can be compared with the schedule's, and the
        # last at which changing it is free (the rollout keeps the zone it starts with).
        schedule_zone_note(spec.weekly_timezone, deployment=None, rollout="this rollout, which starts now; or start it "
                           "with the schedule's zone as its weekly_timezone")
    period = metrics_period(record, spec)
    if period != spec.analysis.interval_seconds:
        get_run_logger().warning(
            "the spec given to this run reads metrics every %s s, but %s's rollout %s was recorded with %s s, and the "
            "recorded spec governs this run: reading them every %s s", spec.analysis.interval_seconds,
            record.service, record.rollout_id, period, period)
        # On the same session: a second one asked STS again who the keys are.
        env = session.environment(clock, interval_seconds=period)
    env = pinning_in_any_region(env, session.credentials)
    return run_progressive(
        env, spec, None, owner=run_owner(), actor=actor,
        phased=phased, adopt_live_weights=adopt_live_weights, lease_seconds=lease_wall_seconds,
        owner_finished=owner_finished,
        # A resume runs the recorded spec: its pauses too, not the spec parameter's approvals.
        approver_for=lambda approvals: prefect_approver(approvals, approval_poll_seconds),
    )


@flow(name="advance_phase", log_prints=True, **rollback_hooks())
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def advance_phase(
    actor: Actor = "schedule",
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    clock: ClockSettings = ClockSettings(),
    approval_poll_seconds: PollSeconds = 2,
    lease_wall_seconds: LeaseSeconds = 600.0,
    adopt_live_weights: bool = False,
    spec: RolloutSpec | None = None,
    start_early_because: EarlyReason = None,
) -> RolloutResult | None:
    """Weekly: start the next phase of the running rollout (idempotent within a week); resume
    a phase whose run died; finish a half-done rollback.

    The run always drives the spec recorded in the ledger: a ``spec`` given names only the flags
    its rollback hooks disable when they cannot read the ledger, and one unlike the recorded spec
    is warned of (``policy_not_followed``). ``start_early_because`` is
    recorded in the ledger with ``actor``, and refused while the current phase has not passed
    its stages.

    Args:
        actor: who starts the phase (recorded in the ledger): "schedule" for the weekly run, else a person.
        targets_block: a saved RollwayTargets block; cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
        clock: the rollout clock; leave it for a real rollout (speed 1), the simulator speeds it up.
        approval_poll_seconds: how often a paused run looks for an answer or a Cancel (1 to 300 s).
        lease_wall_seconds: how long this run may go silent (wall time) before another run may take over.
        adopt_live_weights: on drift, continue from the load balancer's weights instead of refusing.
        spec: the rollout's spec, for the rollback hooks' flags only if the ledger cannot be read.
        start_early_because: why to start the next phase now, before the calendar says (``actor``: a person); empty: wait.
    """
    # First: refused after the blocks and AWS were read, a mistyped block or expired credentials
    # failed the run on that instead, and the person fixed it only to be refused for the actor.
    refuse_the_schedule_early(actor, start_early_because)
    session = load_session(targets_block, aws_credentials_block)
    env = session.environment(clock)
    with before_any_write(env.targets):  # a failed read here is a refusal: the hooks must not roll production back
        record = env.ledger.get(env.targets.canary_service)
    # Leniently: ``advance`` decides whether the recorded policy is needed, and refuses a resume
    # of one today's rules refuse.
    recorded = RolloutSpec.for_rollback(record.spec_json) if record else None
    if spec is not None and record is not None and not record.phase.terminal:
        if spec.image != record.image:
            # Said now: should this run fail with the ledger unreadable, its hooks would disable the
            # given spec's flags, which belong to another image's rollout.
            get_run_logger().warning(
                "the spec given to this run is for %s, but %s's rollout %s is of %s: the recorded spec governs this "
                "run; the given one only names the flags its rollback disables if the ledger cannot be read",
                spec.image, record.service, record.rollout_id, record.image)
        else:
            # The same image's spec edited (the deployment's, between weeks): silently, the edit
            # seemed to govern the next phase.
            edits_not_followed(spec, record)
    if recorded is not None:
        # CloudWatch must be read at the period the rollout's stages are aligned to (the blocks
        # are not read again).
        env = session.environment(clock, interval_seconds=recorded.analysis.interval_seconds)
    env = pinning_in_any_region(env, session.credentials)
    if recorded is not None and record.phased and not record.phase.terminal:
        run = FlowRunContext.get()
        if run is not None and run.flow_run is not None and run.flow_run.deployment_id is not None:
            schedule_zone_note(recorded.weekly_timezone, deployment=run.flow_run.deployment_id,
                               rollout=f"rollout {record.rollout_id} of {record.image}")
    approvals = recorded.approvals if recorded else None
    approver = prefect_approver(approvals, approval_poll_seconds) if approvals else None
    # The lease guards against a silent process, whose silence is wall time: leases are on the
    # wall clock (Environment.wall), whatever the rollout clock's speed.
    # An early start keeps "schedule" so that advance refuses it: it needs a person's name.
    who = actor if start_early_because is not None else tick_actor(actor)
    return advance(env, approver, owner=run_owner(), actor=who, lease_seconds=lease_wall_seconds,
                   adopt_live_weights=adopt_live_weights, owner_finished=owner_finished,
                   early_reason=start_early_because)
